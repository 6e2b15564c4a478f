#!/usr/bin/env bash
# Lineage events in the archive: a short synthetic sintering video run in several chunks (alone,
# and over 2 ranks: the same tables, events included) and in one chunk; each archive has merge
# events, `nptrack info` counts them, `nptrack export --events` writes an events.csv that
# `nptrack eval --events-pred` scores against `nptrack synth`'s ground truth, and (with h5py)
# every parent and child id of the events table is a track of the tracks table.
#   usage: run_events.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR MPIEXEC
set -uo pipefail
bin=$1 src=$2 tmp=$3 mpiexec=$4
. "$src/tests/cli/lib/expect.bash"
. "$(dirname "$0")/lib.bash"

# 160 x 160 px, 160 frames, particles sintering often: about ten true merges, of which the
# tracker finds a few at this size.
"$bin" synth -q -c "$src/config/synth/sintering.cfg" -s synth.frames=160 -s synth.width=160 \
  -s synth.height=160 -s synth.seed=6 -s 'synth.sinter_rate_hz=[0.08,0.1]' -o "$tmp/s" ||
  { echo "synth failed"; exit 1; }
CHUNKED=(-s chunking.frames=50 -s chunking.overlap=12 -s track.lost_frames=10 -s detect.threads=1)
expect 0 "" "$bin" run -q "${CHUNKED[@]}" -o "$tmp/c1.h5" "$tmp/s/video.h5"
expect 0 "" mpi 2 "$bin" run -q "${CHUNKED[@]}" -o "$tmp/c2.h5" "$tmp/s/video.h5"
expect 0 "" "$bin" run -q -s chunking.frames=512 -s detect.threads=1 -o "$tmp/one.h5" "$tmp/s/video.h5"
same_tables "$tmp/c1.h5" "$tmp/c2.h5"

for a in c1 one; do
  expect 0 "" "$bin" info "$tmp/$a.h5"
  n=$(sed -nE 's/^  video .* ([0-9]+) events \(merges and splits\).*/\1/p' "$tmp/out")
  [ -n "$n" ] && [ "$n" -ge 1 ] || fail "$a: info shows no events: $(cat "$tmp/out")"
  expect 0 "" "$bin" export "$tmp/$a.h5" --tracks "$tmp/$a.txt" --events "$tmp/$a.csv"
  grep -q "wrote $tmp/$a.csv: $n lineage events of video video" "$tmp/out" ||
    fail "$a: export: $(cat "$tmp/out")"
  [ "$(head -1 "$tmp/$a.csv")" = "frame,type,parents,children" ] || fail "$a: no events.csv header"
  [ "$(($(wc -l <"$tmp/$a.csv") - 1))" = "$n" ] || fail "$a: $n events, csv: $(cat "$tmp/$a.csv")"
  grep -vqE '^(frame,type,parents,children|[0-9]+,(merge|split),[0-9]+( [0-9]+)*,[0-9]+( [0-9]+)*)$' \
    "$tmp/$a.csv" && fail "$a: malformed events.csv: $(cat "$tmp/$a.csv")"
  expect 0 "" "$bin" eval --gt "$tmp/s/gt.txt" --pred "$tmp/$a.txt" --events-gt "$tmp/s/events.csv" \
    --events-pred "$tmp/$a.csv"
  grep -qE "^  merge +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ / [0-9]+ / $n$" "$tmp/out" ||
    fail "$a: eval did not count the $n predicted merges: $(cat "$tmp/out")"
  # Only --events and --video: the tracks are not needed.
  expect 0 "" "$bin" export -q "$tmp/$a.h5" --video video --events "$tmp/$a.2.csv"
  cmp -s "$tmp/$a.csv" "$tmp/$a.2.csv" || fail "$a: --events alone wrote another file"
done
expect 2 "is not an archive: it has no lineage events" "$bin" export "$tmp/s/video.h5" --events "$tmp/x.csv"
expect 2 "give one of --detections and --tracks or --events" "$bin" export "$tmp/c1.h5" \
  --detections "$tmp/x.txt" --events "$tmp/x.csv"

if [ -n "${NPTRACK_PYTHON:-}" ]; then
  for a in c1 c2 one; do
    "$NPTRACK_PYTHON" - "$tmp/$a.h5" "$tmp/${a/c2/c1}.csv" <<'PY' || fail "$a: events table checks"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    v = f["videos/video"]
    e, tracks = v["events"], v["tracks"]
    ids = set(tracks["track_id"][()].tolist())
    fr, kind = e["frame"][()], e["kind"][()]
    po, pi, co, ci = (e[k][()] for k in ("parent_offsets", "parent_ids", "child_offsets", "child_ids"))
    n = len(fr)
    assert n >= 1 and n == e.attrs["n_events"] == v.attrs["n_events"], (n, dict(e.attrs))
    assert e.attrs["kind_names"] == b"1 merge, 2 split", e.attrs["kind_names"]
    assert e.attrs["dropped_ids"] == 0 and e.attrs["dropped_events"] == 0, dict(e.attrs)
    for k in ("frame", "kind", "parent_offsets", "parent_ids", "child_offsets", "child_ids"):
        d = e[k]
        assert d.attrs["units"] and d.attrs["description"], k
        assert d.compression == "gzip" and d.shuffle, k
    assert fr.dtype == np.int64 and kind.dtype == np.int32 and pi.dtype == ci.dtype == np.int64
    assert e["frame"].attrs["frame_base"] == 0
    assert np.all(np.diff(fr) >= 0) and fr.min() >= 0 and fr.max() < v.attrs["n_frames"]
    assert set(kind.tolist()) <= {1, 2}
    assert len(po) == len(co) == n + 1 and po[0] == co[0] == 0
    assert po[-1] == len(pi) and co[-1] == len(ci)
    assert np.all(np.diff(po) >= 1) and np.all(np.diff(co) >= 1)
    missing = sorted(set(pi.tolist() + ci.tolist()) - ids)
    assert not missing, "ids not in the tracks table: %s" % missing
    # A merge has one child; a split one parent; a track is never its own parent.
    for i in range(n):
        p, c = pi[po[i]:po[i + 1]], ci[co[i]:co[i + 1]]
        assert (kind[i] == 1 and len(c) == 1) or (kind[i] == 2 and len(p) == 1), i
        assert not set(p) & set(c), i
        assert list(c) == sorted(c), i
    # The csv export says the same, frames from 1.
    lines = open(sys.argv[2]).read().splitlines()[1:]
    for i, l in enumerate(lines):
        t, ty, ps, cs = l.split(",")
        assert int(t) == fr[i] + 1 and ty == ("merge" if kind[i] == 1 else "split")
        assert [int(x) for x in ps.split()] == pi[po[i]:po[i + 1]].tolist()
        assert [int(x) for x in cs.split()] == ci[co[i]:co[i + 1]].tolist()
PY
  done
fi
finish run_events
