#!/usr/bin/env bash
# detect.replay_frames, the benchmark input that presents a short stored video as a long one by
# replaying its frames cyclically: a replayed run gives the same tables, value for value, as a
# run on a real video made of the same frames one after another (a replay of 60 stored frames as
# 150, wrapping around twice, once inside a chunk); the same over 1 and 2 ranks; the archive says
# that it was replayed, from what and how long (attributes replay, replay_source_frames; nptrack
# info); bad values are refused naming the setting; --resume refuses the parts of another replay
# length and takes those of the same.
#   usage: replay.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR MPIEXEC
set -uo pipefail
bin=$1 src=$2 tmp=$3 mpiexec=$4
. "$src/tests/cli/lib/expect.bash"
. "$(dirname "$0")/lib.bash"

synth_video "$tmp/v" 60 11
REPLAY=(-s detect.replay_frames=150)
expect 0 "" "$bin" run -q "${RUN_SET[@]}" "${REPLAY[@]}" -o "$tmp/rp0.h5" "$tmp/v/video.h5"
expect 0 "" "$bin" info "$tmp/rp0.h5"
grep -qE "^  video +150 frames of 64 x 64 px, .*REPLAYED benchmark input: 60 stored frames of $tmp/v/video.h5" \
  "$tmp/out" || fail "info does not say the video was replayed: $(cat "$tmp/out")"

if [ -n "${NPTRACK_PYTHON:-}" ]; then
  # The real video: stored frame i mod 60 as frame i, with the stored dataset's attributes, in a
  # file of the same base name (the archive's group name).
  mkdir -p "$tmp/cat"
  "$NPTRACK_PYTHON" - "$tmp/v/video.h5" "$tmp/cat/video.h5" <<'PY' || fail "making the concatenated video"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as s, h5py.File(sys.argv[2], "w") as d:
    f = s["frames"]
    x = f[()]
    assert x.shape[0] == 60
    out = d.create_dataset("frames", data=x[np.arange(150) % 60])
    for k, v in f.attrs.items():
        out.attrs[k] = v
PY
  expect 0 "" "$bin" run -q "${RUN_SET[@]}" -o "$tmp/cat.h5" "$tmp/cat/video.h5"
  # Equal tables once the replay's own attributes are set aside (and the source named alike).
  "$NPTRACK_PYTHON" - "$tmp/rp0.h5" "$tmp/rp0_stripped.h5" "$tmp/v/video.h5" <<'PY' || fail "the replay's provenance"
import shutil, sys, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    g = f["videos/video"]
    a = g.attrs
    text = a["replay"].decode()
    assert a["replay_source_frames"] == 60 and a["n_frames"] == 150, dict(a)
    assert a["source"].decode() == sys.argv[3], a["source"]
    assert text.startswith("benchmark input, not a real video: the 150 frames are the 60 stored "
                           "frames of %s replayed cyclically" % sys.argv[3]), text
    assert "detect.replay_frames = 150" in text, text
    del a["replay"], a["replay_source_frames"]
    a["source"] = np.bytes_(a["source"].replace(b"/v/video.h5", b"/cat/video.h5"))
PY
  "$NPTRACK_PYTHON" "$src/tests/mpi/compare_tables.py" "$tmp/cat.h5" "$tmp/rp0_stripped.h5" ||
    fail "the replayed run differs from the run on the concatenated video"
  # A real video has no replay attributes.
  "$NPTRACK_PYTHON" -c '
import sys, h5py
a = h5py.File(sys.argv[1], "r")["videos/video"].attrs
assert "replay" not in a and "replay_source_frames" not in a, dict(a)' "$tmp/cat.h5" ||
    fail "a real video's archive has replay attributes"
fi

# Any rank count: the same tables.
for n in 1 2; do
  expect 0 "" mpi $n "$bin" run -q "${RUN_SET[@]}" "${REPLAY[@]}" -o "$tmp/rp$n.h5" "$tmp/v/video.h5"
  [ -n "${NPTRACK_PYTHON:-}" ] && { "$NPTRACK_PYTHON" "$src/tests/mpi/compare_tables.py" "$tmp/rp0.h5" \
    "$tmp/rp$n.h5" || fail "replay on $n ranks differs from the run alone"; }
done

# Bad values name the setting (exit status 2, one line).
expect 2 "detect\.replay_frames = 59: .*video\.h5 stores 60 frames" "$bin" run -q \
  -s detect.replay_frames=59 -o "$tmp/x.h5" "$tmp/v/video.h5"
expect 2 "detect\.replay_frames must be an integer" "$bin" run -q -s detect.replay_frames=-1 \
  -o "$tmp/x.h5" "$tmp/v/video.h5"
expect 2 "detect\.replay_frames = 100: replayed videos are a benchmark input of nptrack run only" \
  "$bin" detect -q -s detect.replay_frames=100 -o "$tmp/d.h5" "$tmp/v/video.h5"
[ -e "$tmp/x.h5" ] || [ -e "$tmp/d.h5" ] && fail "a refused run left an output"

# --resume: parts of a replay of 150 frames (the run failed after saving them) are refused by a
# replay of 160, whose first chunks have the same plan and frames (the input hash has the replay
# length), and taken by a replay of 150 (the same tables as an uninterrupted run).
NPTRACK_TEST_FAIL=0:stitch expect 1 "" "$bin" run -q "${RUN_SET[@]}" "${REPLAY[@]}" -o "$tmp/res.h5" \
  "$tmp/v/video.h5"
ls "$tmp/res.h5.parts"/chunk_*.h5 >/dev/null 2>&1 || fail "the failed run left no parts"
expect 2 "--resume: .*chunk_0+\.h5 was made from different input frames \(another video, or another detect\.replay_frames\)" \
  "$bin" run -q --resume "${RUN_SET[@]}" -s detect.replay_frames=160 -o "$tmp/res.h5" "$tmp/v/video.h5"
expect 0 "" "$bin" run -q --resume "${RUN_SET[@]}" "${REPLAY[@]}" -o "$tmp/res.h5" "$tmp/v/video.h5"
if [ -n "${NPTRACK_PYTHON:-}" ]; then
  "$NPTRACK_PYTHON" "$src/tests/mpi/compare_tables.py" "$tmp/rp0.h5" "$tmp/res.h5" ||
    fail "the resumed replay differs"
  "$NPTRACK_PYTHON" -c '
import re, sys, h5py
line = h5py.File(sys.argv[1], "r").attrs["ranks"].decode()
assert re.search(r" ([0-9]+) chunks \(\1 resumed\), 0 frames,", line), line' "$tmp/res.h5" ||
    fail "--resume did not take every part"
fi
finish replay
