#!/usr/bin/env bash
# The nptrack program as a user meets it: help, version, exit codes, one-line errors that name
# the file, line or setting.
#   usage: cli_basic.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"

# --help lists every command; each command's --help has usage and an example.
expect 0 "" "$bin" --help
cp "$tmp/out" "$tmp/help"
for c in synth eval info config; do
  grep -qE "^  $c " "$tmp/help" || fail "nptrack --help does not list $c"
  expect 0 "" "$bin" "$c" --help
  grep -q "Usage: nptrack $c" "$tmp/out" || fail "nptrack $c --help has no usage line"
  grep -q "Example" "$tmp/out" || fail "nptrack $c --help has no example"
done
expect 2 "" "$bin"
expect 2 "unknown command 'bogus'" "$bin" bogus

# --version: version, commit and build features.
expect 0 "" "$bin" --version
for want in "^nptrack [0-9]+\.[0-9]+\.[0-9]+ \(commit " "CUDA: +(yes|no)" "GPU: " "MPI: .*Open MPI" \
            "HDF5: +[0-9]+\.[0-9]+\.[0-9]+, parallel"; do
  grep -qE "$want" "$tmp/out" || fail "--version lacks '$want': $(cat "$tmp/out")"
done

# Configuration errors: exit 2, one line naming file:line and the setting.
printf 'synth = {\n  frames = -3;\n};\n' >"$tmp/bad.cfg"
expect 2 "bad.cfg:2: synth.frames must be an integer .*\(got -3\)" "$bin" config -c "$tmp/bad.cfg"
expect 2 "bad.cfg:2: synth.frames must be" "$bin" synth -c "$tmp/bad.cfg" -o "$tmp/never"
[ ! -e "$tmp/never" ] || fail "synth with a bad config left $tmp/never behind"
printf 'synth = {\n  frames = 3;\n  franes = 4;\n};\n' >"$tmp/unknown.cfg"
expect 2 "unknown.cfg:3: unknown setting 'synth.franes'" "$bin" config -c "$tmp/unknown.cfg"
printf 'synth = {\n  frames = 3;\n  width = = 64;\n};\n' >"$tmp/syntax.cfg"
expect 2 "syntax.cfg:3: " "$bin" config -c "$tmp/syntax.cfg"
expect 2 "missing.cfg: cannot read config file" "$bin" config -c "$tmp/missing.cfg"
expect 2 "synth.frames must be an integer" "$bin" config -s synth.frames=abc
expect 2 "unknown setting 'synth.nope'" "$bin" config -s synth.nope=1
expect 2 "unknown option '--frobnicate'" "$bin" config --frobnicate
expect 2 "unknown option '--frobnicate'" "$bin" synth --frobnicate
expect 2 "unknown option '--frobnicate'" "$bin" eval --frobnicate
expect 2 "unknown option '--frobnicate'" "$bin" info --frobnicate
# An override beats the file, and the effective text says so.
expect 0 "" "$bin" config -s synth.frames=1234
grep -q "frames = 1234;" "$tmp/out" || fail "config -s did not reach the effective config"

# Input videos: a missing, a non-HDF5, a truncated file: exit 1, one line naming the file.
expect 1 "missing.h5: cannot read video" "$bin" info "$tmp/missing.h5"
echo "not a video" >"$tmp/text.h5"
expect 1 "text.h5: not an HDF5 file" "$bin" info "$tmp/text.h5"
if "$bin" synth -o "$tmp/v" -s synth.frames=6 -s synth.width=64 -s synth.height=48 >/dev/null 2>&1; then
  expect 0 "" "$bin" info --check "$tmp/v/video.h5"
  grep -q "frames:      6 of 64 x 48 px, 8-bit" "$tmp/out" || fail "info: $(cat "$tmp/out")"
  expect 1 "video.h5:/nope: cannot read video|no dataset /nope" "$bin" info "$tmp/v/video.h5:/nope"
  size=$(stat -c %s "$tmp/v/video.h5")
  head -c $((size / 2)) "$tmp/v/video.h5" >"$tmp/trunc.h5"
  "$bin" info --check "$tmp/trunc.h5" >"$tmp/out" 2>"$tmp/err"; rc=$?
  [ "$rc" = 1 ] || fail "truncated video: exit $rc, expected 1"
  [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "trunc.h5" "$tmp/err" || fail "truncated video: $(cat "$tmp/err")"
  chmod 000 "$tmp/v/video.h5"
  if [ "$(id -u)" != 0 ]; then expect 1 "video.h5: cannot read video" "$bin" info "$tmp/v/video.h5"; fi
  chmod 644 "$tmp/v/video.h5"
else
  fail "nptrack synth could not make a small video"
fi

finish cli_basic
