#!/usr/bin/env bash
# nptrack run: two videos (one of them given twice) into one archive with the shipped model;
# `info` and `export --tracks` read it; a complete archive is kept without --force and replaced
# with it; --resume of the run that made it does nothing and succeeds (removing parts a kill
# left), --resume of another run is refused naming what differs; a missing or corrupt video, or a full disk, fails naming the file and leaves no
# archive.  With NPTRACK_PYTHON
# set (a Python with h5py), the archive's groups and provenance are also read with h5py.
#   usage: run_basic.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"
unset NPTRACK_MODEL # the shipped model, as found from the build tree

for v in a b; do
  "$bin" synth -q -s synth.frames=8 -s synth.width=192 -s synth.height=192 -s synth.seed=$((7 + ${#v})) \
    -o "$tmp/$v" || { echo "synth failed"; exit 1; }
done
mv "$tmp/b/video.h5" "$tmp/b/other.h5"
arch=$tmp/run.h5

expect 0 "" "$bin" run -o "$arch" "$tmp/a/video.h5" "$tmp/b/other.h5" "$tmp/a/video.h5"
# stderr is not a terminal here: one closing progress line per video, nothing else
prog='^nptrack run: [0-9]+/[0-9]+ frames \([0-9]+%\), [0-9.]+ frames/s, (ETA|took) [0-9hms]+$'
grep -vqE "$prog" "$tmp/err" && fail "run wrote other things to stderr: $(cat "$tmp/err")"
[ "$(grep -cE '^nptrack run: 24/24 frames \(100%\), [0-9.]+ frames/s, took [0-9hms]+$' "$tmp/err")" = 1 ] ||
  fail "want one closing progress line for the run: $(cat "$tmp/err")"
[ "$(head -1 "$tmp/out")" = "nptrack run: model $src/models/nptrack.h5 (build tree), 1 ranks on 1 nodes, cpu" ] ||
  fail "model line: $(head -1 "$tmp/out")"
[ -e "$arch.parts" ] && fail "a complete run left its parts folder $arch.parts"
tail -1 "$tmp/out" | grep -qE "^nptrack run: wrote $arch: 3 videos, 24 frames, [0-9]+ detections, [0-9]+ tracks, [0-9]+ lineage events, [0-9.]+ frames/s$" ||
  fail "summary line: $(cat "$tmp/out")"
tail -2 "$tmp/out" | head -1 | grep -qE "^nptrack run: frame loops [0-9.]+ s over 1 ranks: read [0-9.]+ s, detect [0-9.]+ s \(waited [0-9.]+ s for frames, [0-9.]+ s for the tracker\), track [0-9.]+ s \(overlapping\)$" ||
  fail "stage times line: $(cat "$tmp/out")"
ntracks=$(tail -1 "$tmp/out" | sed -E 's/.* ([0-9]+) tracks.*/\1/')
[ "$ntracks" -gt 0 ] || fail "no tracks: the checks below learn nothing"

# NPTRACK_PROGRESS_S=0: a line after every chunk (4 chunks of 3, 3, 3 and 2 frames: 11 frames
# with the overlaps), then the closing one; -q: none.
chunks="-s chunking.frames=3 -s chunking.overlap=1 -s track.confirm_frames=1 -s track.lost_frames=0"
expect 0 "" env NPTRACK_PROGRESS_S=0 "$bin" run $chunks -o "$tmp/prog.h5" "$tmp/a/video.h5"
[ "$(grep -cE "$prog" "$tmp/err")" = 5 ] && grep -q ': 6/11 frames (55%), .* ETA ' "$tmp/err" ||
  fail "progress every chunk: $(cat "$tmp/err")"
expect 0 "" env NPTRACK_PROGRESS_S=0 "$bin" run -q --force -o "$tmp/prog.h5" "$tmp/a/video.h5"
[ -s "$tmp/err" ] || [ -s "$tmp/out" ] && fail "run -q printed: $(cat "$tmp/out" "$tmp/err")"

expect 0 "" "$bin" info "$arch"
grep -qE "^status: +complete$" "$tmp/out" || fail "info status: $(cat "$tmp/out")"
grep -qE "^videos: +3;" "$tmp/out" || fail "info videos: $(cat "$tmp/out")"
for name in video other video_2; do
  grep -qE "^  $name +8 frames of 192 x 192 px" "$tmp/out" || fail "info lacks video $name: $(cat "$tmp/out")"
done
grep -q "sha256" "$tmp/out" || fail "info shows no model hash: $(cat "$tmp/out")"

expect 0 "" "$bin" export "$arch" --video other --tracks "$tmp/tracks.txt"
rows=$(wc -l <"$tmp/tracks.txt")
[ "$rows" -gt 0 ] || fail "export --tracks wrote no rows"
bad=$(grep -cvE '^[1-8],[1-9][0-9]*,-?[0-9.]+,-?[0-9.]+,[0-9.]+,[0-9.]+,[01]\.[0-9]+,[12],-1$' "$tmp/tracks.txt")
[ "$bad" = 0 ] || fail "$bad track rows are not frame,id,x,y,w,h,score,class,-1: $(head -3 "$tmp/tracks.txt")"
# The same video twice gives the same rows.
expect 0 "" "$bin" export -q "$arch" --video video --tracks "$tmp/t1.txt"
expect 0 "" "$bin" export -q "$arch" --video video_2 --tracks "$tmp/t2.txt"
cmp -s "$tmp/t1.txt" "$tmp/t2.txt" || fail "the same video gave different tracks"

# A complete archive is kept without --force, replaced with it.
cp "$arch" "$tmp/before.h5"
# --resume of the run that made it (a requeued job that had finished): nothing to do, exit 0,
# one line, the archive untouched.  A kill between the archive's rename and the clean-up left
# the parts folder and a temporary archive (faked here): they go.
three=("$tmp/a/video.h5" "$tmp/b/other.h5" "$tmp/a/video.h5")
mtime=$(stat -c %y "$arch")
mkdir -p "$arch.parts" && cp "$tmp/before.h5" "$arch.parts/chunk_000000.h5" &&
  touch "$arch.parts/.chunk_000001.h5.4242.part" "$tmp/.run.h5.4242.part"
expect 0 "" "$bin" run --resume -o "$arch" "${three[@]}"
[ "$(cat "$tmp/out")" = "nptrack run: $arch is complete (same configuration, model and videos); nothing to resume" ] ||
  fail "--resume of a complete run printed: $(cat "$tmp/out")"
[ -s "$tmp/err" ] && fail "--resume of a complete run wrote to stderr: $(cat "$tmp/err")"
cmp -s "$arch" "$tmp/before.h5" && [ "$(stat -c %y "$arch")" = "$mtime" ] ||
  fail "--resume of a complete run touched the archive"
[ -e "$arch.parts" ] && fail "--resume of a complete run left the parts: $(ls -A "$arch.parts")"
[ -e "$tmp/.run.h5.4242.part" ] && fail "--resume of a complete run left a temporary archive"
expect 0 "" "$bin" run -q --resume -o "$arch" "${three[@]}"
[ -s "$tmp/out" ] && fail "--resume -q printed: $(cat "$tmp/out")"
# detect.threads changes no result (jobs/run.sbatch sets it from the job's cores): the same run.
expect 0 "" "$bin" run -q --resume -s detect.threads=3 -o "$arch" "${three[@]}"
# --resume of another run (a setting, the model, the videos): refused, naming what differs.
differs='^nptrack run: error: .*run\.h5: a complete archive of a different run exists \(it differs in'
expect 1 "$differs configuration\); not overwritten \(--force replaces it\)$" \
  "$bin" run -q --resume -s track.lost_frames=5 -o "$arch" "${three[@]}"
expect 1 "$differs videos\); not overwritten \(--force replaces it\)$" \
  "$bin" run -q --resume -o "$arch" "$tmp/a/video.h5" "$tmp/b/other.h5"
# Another model file (by its hash; never opened: the refusal comes first).
cp "$src/models/nptrack.h5" "$tmp/model2.h5" && printf x >>"$tmp/model2.h5"
expect 1 "$differs model\); not overwritten \(--force replaces it\)$" \
  env NPTRACK_MODEL="$tmp/model2.h5" "$bin" run -q --resume -o "$arch" "${three[@]}"
# The frames searched are settings: the configuration covers them.
expect 1 "$differs configuration\); not overwritten \(--force replaces it\)$" \
  "$bin" run -q --resume -s detect.last_frame=6 -o "$arch" "${three[@]}"
expect 1 "$differs configuration and videos\); not overwritten \(--force replaces it\)$" \
  "$bin" run -q --resume -s track.lost_frames=5 -o "$arch" "$tmp/a/video.h5"
cmp -s "$arch" "$tmp/before.h5" || fail "a refused --resume changed the archive"
expect 1 "^nptrack run: error: .*run\.h5: a complete archive exists.*--force" \
  "$bin" run -q -o "$arch" "$tmp/a/video.h5"
cmp -s "$arch" "$tmp/before.h5" || fail "a refused run changed the archive"
expect 0 "" "$bin" run -q --force -o "$arch" "$tmp/a/video.h5"
[ -s "$tmp/out" ] && fail "-q printed: $(cat "$tmp/out")"
expect 0 "" "$bin" info "$arch"
grep -qE "^videos: +1;" "$tmp/out" || fail "--force did not replace the archive: $(cat "$tmp/out")"

# A missing video: one line naming it, exit 1, nothing at the target.
expect 1 "nope\.h5" "$bin" run -q -o "$tmp/missing.h5" "$tmp/a/video.h5" "$tmp/nope.h5"
[ -e "$tmp/missing.h5" ] && fail "a failed run left $tmp/missing.h5"
# A corrupt one likewise.
echo "not hdf5" >"$tmp/bad.h5"
expect 1 "bad\.h5" "$bin" run -q -o "$tmp/corrupt.h5" "$tmp/bad.h5"
[ -e "$tmp/corrupt.h5" ] && fail "a failed run left $tmp/corrupt.h5"
# A full disk (here a 16 KiB file-size limit, whose writes fail with EFBIG as a full disk's do
# with ENOSPC): one line naming the archive and the cause, exit 1, no archive, no temporary
# file left, and no crash in HDF5's exit handler (it used to segfault on the half-closed file).
mkdir -p "$tmp/full"
expect 1 "^nptrack run: error: .*$tmp/full/run\.h5[^:]*: .*File too large\)$" \
  bash -c 'trap "" XFSZ; ulimit -f 16; exec "$0" "$@"' "$bin" run -q -s archive.embeddings=all \
  -o "$tmp/full/run.h5" "$tmp/a/video.h5"
# What is left is the parts folder (for --resume), nothing else.
[ -z "$(ls -A "$tmp/full" | grep -v '^run\.h5\.parts$')" ] ||
  fail "a run that hit the size limit left: $(ls -A "$tmp/full")"
expect 2 "no video" "$bin" run -o "$tmp/x.h5"
ls -A "$tmp" | grep -q '\.part$' && fail "temporary files left: $(ls -A "$tmp")"

py=${NPTRACK_PYTHON:-}
if [ -n "$py" ] && "$py" -c 'import h5py' 2>/dev/null; then
  expect 0 "" "$bin" run -q -o "$tmp/py.h5" "$tmp/a/video.h5" "$tmp/b/other.h5"
  "$py" - "$tmp/py.h5" "$src/models/nptrack.h5" <<'PY' || fail "h5py checks"
import hashlib, sys
import h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
assert a["status"] == "complete" and a["n_videos"] == 2, a
assert sorted(f["videos"]) == ["other", "video"], list(f["videos"])
assert a["model_sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
assert a["backend"] == "cpu" and "track" in a["config"], a
for s in ("detect", "track", "parts", "chunks", "stitch", "write", "total"):
    assert a["timing_%s_s" % s] >= 0, s
assert a["mpi_ranks"] == 1 and a["mpi_nodes"] == 1, a
assert a["chunk_plan"] == "2 chunks of 512 frames, overlap 48", a["chunk_plan"]
assert a["ranks"].startswith("rank 0: host ") and "device cpu, 2 chunks (0 resumed), 16 frames" in a["ranks"], a["ranks"]
for v in f["videos"].values():
    fr = v["detections/frame"][:]
    assert len(fr) > 0 and np.all(np.diff(fr) >= 0) and fr.min() >= 0 and fr.max() < 8
    assert (v["detections/track_id"][:] > 0).any()
    assert v.attrs["pixel_size_source"].decode() == "file attribute"
PY
  # ByteTrack's second pass: run decodes down to track.low_score (0.1), and keeps the rows below
  # the detector's threshold only where a track took them.  A low-dose video, where some are.
  "$bin" synth -q -c "$src/config/synth/sintering.cfg" -s synth.frames=24 -s synth.width=256 \
    -s synth.height=256 -s synth.dose_e_px=15 -s synth.seed=9 -o "$tmp/low" || fail "synth low"
  expect 0 "" "$bin" run -q -o "$tmp/low.h5" "$tmp/low/video.h5"
  expect 0 "" "$bin" detect -q -o "$tmp/low_thr.h5" "$tmp/low/video.h5"
  expect 0 "" "$bin" detect -q -s detect.score_threshold=0.1 -o "$tmp/low_01.h5" "$tmp/low/video.h5"
  "$py" - "$tmp/low.h5" "$tmp/low_thr.h5" "$tmp/low_01.h5" <<'PY' || fail "h5py checks (low scores)"
import sys
import h5py, numpy as np
def rows(path, group):  # (frame, score, box centre) per row; tracked rows' sizes are smoothed
    g = h5py.File(path, "r")[group]
    c = [g[k][:] + g[s][:] / 2 for k, s in (("x", "w"), ("y", "h"))]
    return g, sorted(zip(g["frame"][:].tolist(), g["score"][:].tolist(), *(v.tolist() for v in c)))
def same(a, b):
    return len(a) == len(b) and all(p[:2] == q[:2] and abs(p[2] - q[2]) < 1e-3 and
                                    abs(p[3] - q[3]) < 1e-3 for p, q in zip(a, b))
run, run_rows = rows(sys.argv[1], "videos/video/detections")
thr_g, thr_rows = rows(sys.argv[2], "detections")
_, all_rows = rows(sys.argv[3], "detections")
thr = thr_g.attrs["score_threshold"]
score, tid = run["score"][:], run["track_id"][:]
assert same([r for r in run_rows if r[1] >= thr], thr_rows), "rows at or above the threshold differ"
low = score < thr
assert low.any(), "no low-score rows: the check learns nothing"
assert (tid[low] > 0).all(), "a low-score row without a track"
low_rows = [r for r in run_rows if r[1] < thr]
assert same(low_rows, [r for r in all_rows if r[1] < thr and r[:2] in {q[:2] for q in low_rows}]), \
    "a low-score row the detector did not give"
PY
else
  echo "run_basic: no NPTRACK_PYTHON with h5py; h5py checks skipped"
fi

finish run_basic
