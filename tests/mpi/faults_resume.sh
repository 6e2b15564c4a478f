#!/usr/bin/env bash
# Failures under MPI end the whole job within 30 s with the failing rank's message (naming the
# rank) and no archive: a rank failing at start, in the middle of a chunk, while writing its part
# file, the root failing while writing the archive's tables, and a rank failing in the parallel
# write of the detections columns, before a collective write (agreed: every rank stops together)
# or inside one (the others are left in HDF5's collective calls: only MPI_Abort ends them)
# (NPTRACK_TEST_FAIL, test-only); a damaged video.  A rank killed (SIGKILL) after saving a part,
# or in the parallel write, is resumed with --resume on another rank count and gives the same
# tables as an uninterrupted run; --resume refuses parts made from another configuration or
# other frames.  (Kills in every other phase: kill_resume.sh.)
#   usage: faults_resume.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR MPIEXEC
set -uo pipefail
bin=$1 src=$2 tmp=$3 mpiexec=$4
. "$src/tests/cli/lib/expect.bash"
. "$(dirname "$0")/lib.bash"

two_videos
expect 0 "" "$bin" run -q "${RUN_SET[@]}" -o "$tmp/ref.h5" "${videos[@]}"

# failing N RANK:STAGE PATTERN: the job fails within 30 s, prints PATTERN, leaves no archive.
failing() {
  local n=$1 fault=$2 pat=$3 t0=$SECONDS
  rm -rf "$tmp/f.h5" "$tmp/f.h5.parts"
  NPTRACK_TEST_FAIL=$fault timeout 120 "$mpiexec" -n "$n" --oversubscribe "$bin" run -q \
    "${RUN_SET[@]}" -o "$tmp/f.h5" "${videos[@]}" >"$tmp/out" 2>"$tmp/err"
  local rc=$? took=$((SECONDS - t0))
  echo "$fault on $n ranks: failed in $took s"
  [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$fault: exit status $rc"
  [ "$took" -le 30 ] || fail "$fault: took $took s"
  grep -qE "$pat" "$tmp/err" || fail "$fault: no '$pat' in: $(head -c 2000 "$tmp/err")"
  [ -e "$tmp/f.h5" ] && fail "$fault: an archive was left at the target"
  ls -A "$tmp" | grep -q '^\.f\.h5\..*\.part$' && fail "$fault: a temporary archive was left"
}
failing 3 1:start "^nptrack run: error: rank 1: test fault at 'start' \(NPTRACK_TEST_FAIL\)$"
[ "$(grep -c 'nptrack run: error' "$tmp/err")" = 1 ] || fail "start: not one error line: $(cat "$tmp/err")"
failing 3 2:chunk "^nptrack run: error: rank 2: chunk [0-9]+ \((long|short), frames [0-9]+-[0-9]+\): test fault at 'chunk'"
failing 3 1:partrows "^nptrack run: error: rank 1: chunk [0-9]+ \((long|short), frames [0-9]+-[0-9]+\): test fault at 'partrows'"
# (other ranks, ended by MPI_Abort, may leave theirs: only the failed write's is checked)
c=$(printf %06d "$(sed -nE "s/.*rank 1: chunk ([0-9]+) .*/\1/p" "$tmp/err")")
ls -A "$tmp/f.h5.parts" 2>/dev/null | grep -q "^\.chunk_$c\.h5\..*\.part$" && fail "partrows: the failed write left its temporary part"
failing 2 0:write "^nptrack run: error: rank 0: test fault at 'write' \(NPTRACK_TEST_FAIL\)$"
# The parallel write: the fault comes at the last video, after the first was written
# collectively; that video has one chunk, so on 4 ranks most have nothing to write there (they
# agree all the same).
failing 3 1:rows "^nptrack run: error: rank 1: test fault at 'rows' \(NPTRACK_TEST_FAIL\)$"
[ "$(grep -c 'nptrack run: error' "$tmp/err")" = 1 ] || fail "rows: not one error line: $(cat "$tmp/err")"
failing 4 3:rows "^nptrack run: error: rank 3: test fault at 'rows' \(NPTRACK_TEST_FAIL\)$"
failing 3 2:rowswrite "^nptrack run: error: rank 2: test fault at 'rowswrite' \(NPTRACK_TEST_FAIL\)$"
# A real bad frame: a gzip'ed video with a damaged chunk of frames in the middle; the rank that
# reads it (in its reader thread) names the chunk, the file and the frame.
"$bin" synth -q -c "$src/config/synth/dense.cfg" -s synth.frames=200 -s synth.width=64 \
  -s synth.height=64 -s synth.seed=11 -s synth.gzip_level=4 -o "$tmp/gz" || fail "synth gz"
cp "$tmp/gz/video.h5" "$tmp/bad.h5"
size=$(stat -c %s "$tmp/bad.h5")
printf '%*s' 2000 '' | tr ' ' '\0' | dd of="$tmp/bad.h5" bs=1 seek=$((size * 6 / 10)) conv=notrunc status=none
t0=$SECONDS
timeout 120 "$mpiexec" -n 3 --oversubscribe "$bin" run -q "${RUN_SET[@]}" -o "$tmp/b.h5" \
  "$tmp/bad.h5" >"$tmp/out" 2>"$tmp/err" && fail "a damaged video gave an archive"
[ $((SECONDS - t0)) -le 30 ] || fail "the damaged video took $((SECONDS - t0)) s to fail"
grep -qE "^nptrack run: error: (rank [0-9]: )?chunk [0-9]+ \(bad, frames [0-9]+-[0-9]+\): .*bad\.h5: frame [0-9]+: cannot read" "$tmp/err" ||
  fail "damaged video: $(head -c 2000 "$tmp/err")"
[ -e "$tmp/b.h5" ] && fail "damaged video: an archive was left"

# resumed N ARCHIVE MIN_RESUMED: --resume on N ranks completes ARCHIVE with the reference's tables
# and at least MIN_RESUMED chunks taken from the parts.
resumed() {
  expect 0 "" mpi "$1" "$bin" run -q --resume "${RUN_SET[@]}" -o "$2" "${videos[@]}"
  same_tables "$tmp/ref.h5" "$2"
  [ -e "$2.parts" ] && fail "the resumed run left its parts"
  if [ -n "${NPTRACK_PYTHON:-}" ]; then
    "$NPTRACK_PYTHON" -c '
import sys, re, h5py
r = sum(int(m) for m in re.findall(r"\((\d+) resumed\)", h5py.File(sys.argv[1], "r").attrs["ranks"].decode()))
assert r >= int(sys.argv[2]), (r, sys.argv[2])' "$2" "$3" || fail "$2: fewer than $3 chunks resumed"
  fi
}

# killed N RANK:kill-STAGE ARCHIVE: the job is killed there (SIGKILL) and leaves no archive.
killed() {
  NPTRACK_TEST_FAIL=$2 timeout 120 "$mpiexec" -n "$1" --oversubscribe "$bin" run -q \
    "${RUN_SET[@]}" -o "$3" "${videos[@]}" >"$tmp/out" 2>&1 && fail "$2: the job succeeded"
  [ -e "$3" ] && fail "$2: an archive was left"
}

# A rank killed after saving its first part: the job ends; the parts stay; resume on 2 ranks.
killed 3 1:kill-part "$tmp/k.h5"
ls "$tmp/k.h5.parts"/chunk_*.h5 >/dev/null 2>&1 || fail "kill-part: no part was kept"
# Parts from another configuration, or from other frames, are refused.
mpi 2 "$bin" run -q --resume "${RUN_SET[@]}" -s track.high_score=0.45 -o "$tmp/k.h5" \
  "${videos[@]}" >"$tmp/out" 2>"$tmp/err" && fail "resume with another configuration succeeded"
grep -qE "nptrack run: error: (rank [0-9]+: )?--resume: .*chunk_[0-9]+\.h5 was made from a different configuration" "$tmp/err" ||
  fail "resume with another configuration: $(head -c 2000 "$tmp/err")"
# ... also when only the CPU backend's fp16 emulation (a debug switch) differs.
NPTRACK_CPU_FP16=on mpi 2 "$bin" run -q --resume "${RUN_SET[@]}" -o "$tmp/k.h5" \
  "${videos[@]}" >"$tmp/out" 2>"$tmp/err" && fail "resume under NPTRACK_CPU_FP16 succeeded"
grep -qE "nptrack run: error: (rank [0-9]+: )?--resume: .*chunk_[0-9]+\.h5 was made from a different configuration" "$tmp/err" ||
  fail "resume under NPTRACK_CPU_FP16: $(head -c 2000 "$tmp/err")"
cp "$tmp/long.h5" "$tmp/long.keep"
synth_video "$tmp/l2" 200 99
cp "$tmp/l2/video.h5" "$tmp/long.h5"
mpi 2 "$bin" run -q --resume "${RUN_SET[@]}" -o "$tmp/k.h5" "${videos[@]}" >"$tmp/out" 2>"$tmp/err" &&
  fail "resume with other frames succeeded"
grep -qE "nptrack run: error: (rank [0-9]+: )?--resume: .*was made from different input frames" "$tmp/err" ||
  fail "resume with other frames: $(head -c 2000 "$tmp/err")"
cp "$tmp/long.keep" "$tmp/long.h5"
resumed 2 "$tmp/k.h5" 1

# A rank killed in the parallel write of the columns: every chunk is saved; resume on 2 ranks.
killed 3 1:kill-rows "$tmp/c.h5"
resumed 2 "$tmp/c.h5" 8

finish faults_resume
