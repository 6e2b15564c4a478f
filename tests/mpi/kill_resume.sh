#!/usr/bin/env bash
# Kill-and-resume (issue 8's acceptance): a job killed with SIGKILL during inference, in the
# middle of a part file's write, just before a part's rename, while the root stitches and while
# it writes the archive — each made to land there by NPTRACK_TEST_FAIL=RANK:kill-STAGE — and at
# random moments (a timed SIGKILL of one rank, fixed seed), then resumed with --resume on 1 rank
# and on 2 or 3 ranks (the random kills: once each, on 1, 2 and 3), gives the tables of an
# uninterrupted run, value for value.  After each kill: the job ends within 30 s, nothing is at the archive's path, no temporary archive says
# "complete", and every part file with its final name is whole.  A resumed run leaves neither
# the parts nor a killed run's temporary archive behind.  A kill after the archive's rename
# (before the parts' removal; and any random kill that came too late) leaves the complete
# archive: --resume then ends at once with status 0 on every rank, removes the parts and leaves
# the archive untouched.
#   usage: kill_resume.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR MPIEXEC
set -uo pipefail
bin=$1 src=$2 tmp=$3 mpiexec=$4
. "$src/tests/cli/lib/expect.bash"
. "$(dirname "$0")/lib.bash"

two_videos
t0=$(date +%s.%N)
expect 0 "" mpi 2 "$bin" run -q "${RUN_SET[@]}" -o "$tmp/ref.h5" "${videos[@]}"
ref_s=$(echo "$(date +%s.%N) - $t0" | bc)

# after_kill ARCHIVE WHAT: the state a kill must leave.
after_kill() {
  local a=$1 what=$2 base
  base=$(basename "$1")
  [ -e "$a" ] && fail "$what: an archive was left at $a"
  if [ -n "${NPTRACK_PYTHON:-}" ]; then
    "$NPTRACK_PYTHON" - "$tmp" "$base" <<'PY' || fail "$what: a file claims to be complete"
import glob, os, sys, h5py
tmp, base = sys.argv[1:]
# A killed writer's temporary archive may stay; it must not say "complete" (it cannot be whole).
for p in glob.glob(os.path.join(tmp, "." + base + ".*.part")):
    try:
        s = h5py.File(p, "r").attrs.get("status", b"")
    except OSError:
        continue  # cut short: not even HDF5
    assert s != b"complete", (p, s)
# Parts under their final name are whole: renamed only once written and synced.
for p in glob.glob(os.path.join(tmp, base + ".parts", "chunk_*.h5")):
    with h5py.File(p, "r") as f:
        assert f.attrs["format"] == b"nptrack part", p
        n = int(f["rows"].attrs["n"])
        assert f["rows/frame"].shape == (n,) and "tracklets" in f and "events" in f, p
PY
  fi
}

# killed N RANK:kill-STAGE ARCHIVE: the job dies there, within 30 s, as after_kill says.
killed() {
  local s=$SECONDS
  NPTRACK_TEST_FAIL=$2 timeout 120 "$mpiexec" -n "$1" --oversubscribe "$bin" run -q \
    "${RUN_SET[@]}" -o "$3" "${videos[@]}" >"$tmp/out" 2>&1 && fail "$2: the job succeeded"
  [ $((SECONDS - s)) -le 30 ] || fail "$2: the killed job took $((SECONDS - s)) s to end"
  echo "$2 on $1 ranks: ended in $((SECONDS - s)) s"
  after_kill "$3" "$2"
}

# resumed N ARCHIVE [MIN_RESUMED]: --resume on N ranks (0: without mpiexec) completes ARCHIVE
# with the reference's tables, removes the parts and any temporary archive of a killed run, and
# took at least MIN_RESUMED chunks from the parts.
resumed() {
  local n=$1 a=$2 min=${3:-0}
  if [ "$n" = 0 ]; then
    expect 0 "" "$bin" run -q --resume "${RUN_SET[@]}" -o "$a" "${videos[@]}"
  else
    expect 0 "" mpi "$n" "$bin" run -q --resume "${RUN_SET[@]}" -o "$a" "${videos[@]}"
  fi
  same_tables "$tmp/ref.h5" "$a"
  [ -e "$a.parts" ] && fail "$a: the resumed run left its parts"
  ls -A "$(dirname "$a")" | grep -q "^\.$(basename "$a")\..*\.part$" &&
    fail "$a: a killed run's temporary archive was left"
  if [ -n "${NPTRACK_PYTHON:-}" ]; then
    "$NPTRACK_PYTHON" -c '
import sys, re, h5py
r = sum(int(m) for m in re.findall(r"\((\d+) resumed\)", h5py.File(sys.argv[1], "r").attrs["ranks"].decode()))
assert r >= int(sys.argv[2]), (r, sys.argv[2])' "$a" "$min" || fail "$a: fewer than $min chunks resumed"
  fi
}

# both NAME N MIN_RESUMED: resumes what the kill left twice, on 1 process and on N ranks (a
# copy of the parts and of any temporary archive for the second).
both() {
  local name=$1 n=$2 min=$3 f
  rm -rf "$tmp/${name}2.h5.parts"
  [ -d "$tmp/$name.h5.parts" ] && cp -r "$tmp/$name.h5.parts" "$tmp/${name}2.h5.parts"
  for f in "$tmp"/."$name".h5.*.part; do
    [ -e "$f" ] && cp "$f" "$tmp/.${name}2.h5.${f##*.h5.}"
  done
  resumed 0 "$tmp/$name.h5" "$min"
  resumed "$n" "$tmp/${name}2.h5" "$min"
}

# Inference: rank 1 in the middle of its first chunk (the tracker's thread, while the engine
# runs the next batch).
killed 3 1:kill-chunk "$tmp/i.h5"
both i 2 0
# A part file's write: rank 2 with the part's rows written, its tracklets not yet (a temporary
# file cut short), then rank 1 with the part whole but not renamed.
killed 3 2:kill-partrows "$tmp/p.h5"
ls -A "$tmp/p.h5.parts" | grep -q '^\.chunk_.*\.part$' || fail "kill-partrows: no temporary part"
both p 3 0
killed 3 1:kill-partwrite "$tmp/q.h5"
ls -A "$tmp/q.h5.parts" | grep -q '^\.chunk_.*\.part$' || fail "kill-partwrite: no temporary part"
both q 2 0
# Stitching: every chunk is saved (8), the archive not begun.
killed 2 0:kill-stitch "$tmp/s.h5"
both s 3 8
# Assembly: the root killed after writing the first video into the temporary archive.
killed 2 0:kill-write "$tmp/w.h5"
ls -A "$tmp" | grep -q '^\.w\.h5\..*\.part$' || fail "kill-write: no temporary archive"
both w 2 8
# Clean-up: the root killed after the archive's rename, before removing the parts.  The archive
# is whole; resubmitting the job (--resume, 2 ranks) finds it complete and made by the same run:
# every rank ends at once with status 0 (no engine, no chunk counter), one line says so, the
# parts go and the archive is untouched.  Another configuration is refused, as promptly.
NPTRACK_TEST_FAIL=0:kill-renamed timeout 120 "$mpiexec" -n 2 --oversubscribe "$bin" run -q \
  "${RUN_SET[@]}" -o "$tmp/d.h5" "${videos[@]}" >"$tmp/out" 2>&1 && fail "kill-renamed: the job succeeded"
[ -d "$tmp/d.h5.parts" ] || fail "kill-renamed: no parts left (the kill came elsewhere)"
same_tables "$tmp/ref.h5" "$tmp/d.h5"
mtime=$(stat -c %y "$tmp/d.h5")
s=$SECONDS
expect 0 "" timeout 60 "$mpiexec" -n 2 --oversubscribe "$bin" run --resume "${RUN_SET[@]}" \
  -o "$tmp/d.h5" "${videos[@]}"
[ $((SECONDS - s)) -le 15 ] || fail "--resume of a complete run took $((SECONDS - s)) s"
[ "$(cat "$tmp/out")" = "nptrack run: $tmp/d.h5 is complete (same configuration, model and videos); nothing to resume" ] ||
  fail "--resume of a complete run on 2 ranks printed: $(cat "$tmp/out")"
[ -e "$tmp/d.h5.parts" ] && fail "--resume of a complete run left the parts"
[ "$(stat -c %y "$tmp/d.h5")" = "$mtime" ] || fail "--resume of a complete run touched the archive"
s=$SECONDS
timeout 60 "$mpiexec" -n 2 --oversubscribe "$bin" run -q --resume "${RUN_SET[@]}" \
  -s track.high_score=0.45 -o "$tmp/d.h5" "${videos[@]}" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] && grep -qE "^nptrack run: error: .*d\.h5: a complete archive of a different run exists \(it differs in configuration\)" "$tmp/err" ||
  fail "--resume of another run on 2 ranks: exit status $rc: $(head -c 2000 "$tmp/err")"
[ $((SECONDS - s)) -le 15 ] || fail "--resume of another run took $((SECONDS - s)) s"

# Random moments: one rank of 3 (chosen at random) killed after a random delay within the
# uninterrupted run's time.
RANDOM=20261207
for k in 1 2 3; do
  a="$tmp/r$k.h5"
  delay=$(echo "scale=2; $ref_s * (0.1 + 0.8 * $RANDOM / 32767)" | bc)
  victim=$((RANDOM % 3))
  s=$SECONDS
  "$mpiexec" -n 3 --oversubscribe "$bin" run -q "${RUN_SET[@]}" -o "$a" "${videos[@]}" \
    >"$tmp/out" 2>&1 &
  job=$!
  sleep "$delay"
  pid=
  for c in $(pgrep -P "$job"); do # the launcher's children are the ranks, in rank order
    [ -z "$pid" ] && [ "$(tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -c "^OMPI_COMM_WORLD_RANK=$victim$")" = 1 ] && pid=$c
  done
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  wait "$job"
  rc=$?
  [ $((SECONDS - s)) -le 30 ] || fail "random kill $k: the job took $((SECONDS - s)) s to end"
  echo "random kill $k: rank $victim after $delay s (of $ref_s s): exit status $rc"
  # A kill that came after the archive's rename (rank 0 was cleaning up) or none at all (too
  # late, or before the ranks started) leaves the complete archive: it must be the reference's,
  # and --resume finds it complete, leaves it untouched and removes any parts left.
  mtime=
  if [ "$rc" = 0 ] || [ -e "$a" ]; then
    same_tables "$tmp/ref.h5" "$a"
    mtime=$(stat -c %y "$a")
  else
    after_kill "$a" "random kill $k"
  fi
  resumed $((k == 1 ? 0 : k)) "$a" 0 # on 1 process, 2 ranks, 3 ranks
  [ -z "$mtime" ] || [ "$(stat -c %y "$a")" = "$mtime" ] ||
    fail "random kill $k: --resume rewrote the complete archive"
done

finish kill_resume
