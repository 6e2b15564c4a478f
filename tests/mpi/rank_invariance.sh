#!/usr/bin/env bash
# nptrack run over 1 (no launcher), 1, 2, 3 and 4 MPI ranks gives the same tables value by value:
# two videos, 8 chunks (7 + 1; 3 ranks do not divide them), and a run with more ranks
# than chunks.  The chunked run has more than one chunk boundary to stitch, and its stitching
# made links.  The detections columns are written in parallel by the ranks that hold the chunks
# (the root writes the other tables): every dataset is compared, per-detection embeddings
# (archive.embeddings = all) included, also when each rank writes in several pieces, and each
# archive's columns must agree with the tables the root made from its own reading of the parts
# (check_archive.py).
#   usage: rank_invariance.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR MPIEXEC
set -uo pipefail
bin=$1 src=$2 tmp=$3 mpiexec=$4
. "$src/tests/cli/lib/expect.bash"
. "$(dirname "$0")/lib.bash"

two_videos

expect 0 "" "$bin" run -q "${RUN_SET[@]}" -o "$tmp/r0.h5" "${videos[@]}"
# check_archive A [--embeddings]: A's columns agree with its tables (h5py; skipped without it).
check_archive() {
  [ -z "${NPTRACK_PYTHON:-}" ] || "$NPTRACK_PYTHON" "$src/tests/mpi/check_archive.py" "$@" ||
    fail "$1: the columns disagree with the tables"
}
check_archive "$tmp/r0.h5"
for n in 1 2 3 4; do
  expect 0 "" mpi $n "$bin" run -q "${RUN_SET[@]}" -o "$tmp/r$n.h5" "${videos[@]}"
  [ -e "$tmp/r$n.h5.parts" ] && fail "$n ranks left the parts folder"
  same_tables "$tmp/r0.h5" "$tmp/r$n.h5"
  check_archive "$tmp/r$n.h5"
done
# Every detection's embedding too (float16 [N, D]).  Alone, then on 1 to 4 ranks, those on 2 to 4
# in pieces of at most 4000 (2 ranks: neighbouring chunks a rank holds share a piece) or 300 rows
# (NPTRACK_TEST_WRITE_ROWS, test-only): several collective writes per column, ranks with
# different numbers of pieces (the others join with empty selections), several ranks writing
# into one HDF5 chunk.
EMB=(-s archive.embeddings=all)
expect 0 "" "$bin" run -q "${RUN_SET[@]}" "${EMB[@]}" -o "$tmp/e0.h5" "${videos[@]}"
check_archive "$tmp/e0.h5" --embeddings
expect 0 "" mpi 1 "$bin" run -q "${RUN_SET[@]}" "${EMB[@]}" -o "$tmp/e1.h5" "${videos[@]}"
same_tables "$tmp/e0.h5" "$tmp/e1.h5"
for n in 2 3 4; do
  NPTRACK_TEST_WRITE_ROWS=$([ $n = 2 ] && echo 4000 || echo 300) expect 0 "" mpi $n "$bin" run -q "${RUN_SET[@]}" "${EMB[@]}" \
    -o "$tmp/e$n.h5" "${videos[@]}"
  same_tables "$tmp/e0.h5" "$tmp/e$n.h5"
  check_archive "$tmp/e$n.h5" --embeddings
done
# The same on 3 ranks with the default budget (one collective write per column per video).
expect 0 "" mpi 3 "$bin" run -q "${RUN_SET[@]}" "${EMB[@]}" -o "$tmp/e3d.h5" "${videos[@]}"
same_tables "$tmp/e0.h5" "$tmp/e3d.h5"
if [ -n "${NPTRACK_PYTHON:-}" ]; then
  "$NPTRACK_PYTHON" - "$tmp/e3.h5" "$tmp/r3.h5" <<'PY' || fail "embeddings = all: the tables"
import re, sys, h5py
e, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
d = e["videos/long/detections"]
assert d["embedding"].shape[0] == d["frame"].shape[0] > 0 and d["embedding"].dtype == "float16"
for k in r["videos/long/detections"]:       # the other columns as without embeddings
    assert (d[k][()] == r["videos/long/detections"][k][()]).all() or k in ("time_s", "w_nm", "h_nm"), k
# Several pieces: the ranks' write times are there, and 3 ranks held chunks of the long video.
lines = e.attrs["ranks"].decode().splitlines()
assert len(lines) == 3 and all(re.search(r"write rows [0-9.]+ s$", l) for l in lines), lines
PY
fi
# The counter keeps serving while rank 0 is busy: rank 0 sleeps 5 s in the middle of its first
# chunk; over TCP only (no shared memory, as between nodes) the other two ranks take all the
# other chunks meanwhile (were requests served only when rank 0 enters MPI, they would have
# taken 2 before it woke and then shared the rest with it), and the tables do not change.
OMPI_MCA_btl=tcp,self NPTRACK_TEST_FAIL=0:slow-chunk expect 0 "" mpi 3 "$bin" run -q "${RUN_SET[@]}" \
  -o "$tmp/slow.h5" "${videos[@]}"
same_tables "$tmp/r0.h5" "$tmp/slow.h5"
if [ -n "${NPTRACK_PYTHON:-}" ]; then
  "$NPTRACK_PYTHON" -c '
import sys, h5py
lines = h5py.File(sys.argv[1], "r").attrs["ranks"].decode().splitlines()
n = [int(l.split(" chunks")[0].split()[-1]) for l in lines]
assert n[1] + n[2] >= 6, lines' "$tmp/slow.h5" || fail "rank 0 busy: the counter stalled"
fi
# Tracking in the loop's thread after each batch's inference (NPTRACK_SERIAL_TRACKING, the order
# before tracking overlapped inference), and overlapped with small batches (many hand-offs to
# the tracker's thread): the same tables.
NPTRACK_SERIAL_TRACKING=1 expect 0 "" mpi 2 "$bin" run -q "${RUN_SET[@]}" -o "$tmp/ser.h5" "${videos[@]}"
same_tables "$tmp/r0.h5" "$tmp/ser.h5"
expect 0 "" mpi 2 "$bin" run -q "${RUN_SET[@]}" -s detect.batch=3 -o "$tmp/b3.h5" "${videos[@]}"
same_tables "$tmp/r0.h5" "$tmp/b3.h5"
# Chunks handed out longest first: the same tables.
expect 0 "" mpi 3 "$bin" run -q "${RUN_SET[@]}" -s chunking.order=largest_first -o "$tmp/lf.h5" "${videos[@]}"
same_tables "$tmp/r0.h5" "$tmp/lf.h5"
# The same videos from a manifest (a comment, a blank line, paths relative to its folder).
printf '# campaign\nlong.h5\n\n  short.h5  \n' >"$tmp/videos.txt"
expect 0 "" mpi 2 "$bin" run -q "${RUN_SET[@]}" -o "$tmp/man.h5" -m "$tmp/videos.txt"
same_tables "$tmp/r0.h5" "$tmp/man.h5"
expect 2 "cannot read the manifest .*nope\.txt" "$bin" run -q -o "$tmp/x.h5" -m "$tmp/nope.txt"
expect 0 "" "$bin" info "$tmp/r4.h5"
grep -qE "^chunks: +8 chunks of 40 frames, overlap 12; 4 ranks " "$tmp/out" || fail "info: $(cat "$tmp/out")"
# More ranks (3, 4) than chunks (1): the ranks without a chunk join every collective write with
# nothing to write.
expect 0 "" "$bin" run -q "${RUN_SET[@]}" -o "$tmp/s0.h5" "$tmp/short.h5"
expect 0 "" mpi 3 "$bin" run -q "${RUN_SET[@]}" -o "$tmp/s3.h5" "$tmp/short.h5"
expect 0 "" "$bin" run -q "${RUN_SET[@]}" "${EMB[@]}" -o "$tmp/se0.h5" "$tmp/short.h5"
expect 0 "" mpi 4 "$bin" run -q "${RUN_SET[@]}" "${EMB[@]}" -o "$tmp/se4.h5" "$tmp/short.h5"
if [ -n "${NPTRACK_PYTHON:-}" ]; then
  "$NPTRACK_PYTHON" "$src/tests/mpi/compare_tables.py" "$tmp/s0.h5" "$tmp/s3.h5" || fail "more ranks than chunks differ"
  "$NPTRACK_PYTHON" "$src/tests/mpi/compare_tables.py" "$tmp/se0.h5" "$tmp/se4.h5" || fail "more ranks than chunks differ (embeddings)"
  check_archive "$tmp/se4.h5" --embeddings
  "$NPTRACK_PYTHON" - "$tmp/r0.h5" "$tmp/r4.h5" <<'PY' || fail "provenance checks"
import re, sys, h5py
for path, ranks in ((sys.argv[1], 1), (sys.argv[2], 4)):
    a = h5py.File(path, "r").attrs
    assert a["mpi_ranks"] == ranks and a["mpi_nodes"] == 1, dict(a)
    assert a["chunk_plan"].decode() == "8 chunks of 40 frames, overlap 12", a["chunk_plan"]
    lines = a["ranks"].decode().splitlines()
    assert len(lines) == ranks and all("device cpu" in l for l in lines), lines
    assert sum(int(l.split(" chunks")[0].split()[-1]) for l in lines) == 8, lines
    # 6 boundaries in the long video, each with tracks that cross it.
    assert a["stitch_links_shared"] >= 6, a["stitch_links_shared"]
    assert a["mpi_hosts"].decode().split() == [l.split("host ")[1].split(",")[0] for l in lines][:1], a["mpi_hosts"]
    assert all(" write rows " in l for l in lines), lines
    for t in ("read", "detect", "track", "stitch", "write", "write_tables", "write_rows", "total"):
        assert a["timing_%s_s" % t] >= 0
    # Each rank's stage times: the frame loop, and its stages busy and waiting.
    assert all(re.search(r"frame loop [0-9.]+ s: read [0-9.]+ s \(waited [0-9.]+ s\), detect "
                         r"[0-9.]+ s \(waited [0-9.]+ s for frames, [0-9.]+ s for the tracker\), "
                         r"track [0-9.]+ s \(waited [0-9.]+ s\);.* peak memory [0-9.]+ MB, write rows [0-9.]+ s$", l)
               for l in lines), lines
PY
fi
finish rank_invariance
