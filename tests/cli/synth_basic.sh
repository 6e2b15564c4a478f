#!/usr/bin/env bash
# nptrack synth as a user meets it: the four outputs with the right headers and columns, no
# temporaries left behind, the same files for the same seed and different ones for another,
# the effective config reading back, exit 2 for usage/config errors and exit 1 (one line naming
# the directory) when the output cannot be written.
#   usage: synth_basic.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"
small=(-s synth.frames=12 -s synth.width=96 -s synth.height=80 -s synth.coverage=0.25
       -s synth.sinter_rate_hz=0.05)

# One small video: every output, no temporaries.
expect 0 "" "$bin" synth -c "$src/config/synth/sintering.cfg" "${small[@]}" -o "$tmp/a"
for f in video.h5 gt.txt events.csv config.cfg; do
  [ -s "$tmp/a/$f" ] || fail "synth did not write $f"
done
[ -z "$(find "$tmp/a" -name '*.part')" ] || fail "temporaries left: $(ls -a "$tmp/a")"
head -c 8 "$tmp/a/video.h5" | od -c | grep -q "H   D   F" || fail "video.h5 is not an HDF5 file"
[ "$(head -1 "$tmp/a/events.csv")" = "frame,type,parents,children" ] ||
  fail "events.csv header: $(head -1 "$tmp/a/events.csv")"
# gt.txt: frame,id,x,y,w,h,conf,class,visibility; frames 1..12 in order; conf 1; class 1|2;
# visibility in (0, 1]; positive sizes.
awk -F, 'NF != 9 { print "line " NR ": " NF " fields"; bad = 1 }
         $1 < 1 || $1 > 12 || $1 < last { print "line " NR ": frame " $1; bad = 1 }
         $7 != 1 || ($8 != 1 && $8 != 2) { print "line " NR ": conf/class " $7 "," $8; bad = 1 }
         $5 <= 0 || $6 <= 0 || $9 <= 0 || $9 > 1 { print "line " NR ": " $0; bad = 1 }
         { last = $1 }
         END { if (NR < 12) { print "only " NR " rows"; bad = 1 } exit bad }' "$tmp/a/gt.txt" ||
  fail "gt.txt is malformed"
# The effective config reads back to itself.
expect 0 "" "$bin" config -c "$tmp/a/config.cfg"
cmp -s "$tmp/out" "$tmp/a/config.cfg" || fail "config.cfg does not read back to the same settings"
grep -q "frames = 12;" "$tmp/a/config.cfg" || fail "config.cfg lacks the -s override"

# Deterministic: the same seed gives the same files, byte for byte; another seed does not.
expect 0 "" "$bin" synth -q -c "$src/config/synth/sintering.cfg" "${small[@]}" -o "$tmp/b"
[ ! -s "$tmp/out" ] || fail "synth -q printed: $(cat "$tmp/out")"
for f in video.h5 gt.txt events.csv config.cfg; do
  cmp -s "$tmp/a/$f" "$tmp/b/$f" || fail "same seed, different $f"
done
expect 0 "" "$bin" synth -q -c "$src/config/synth/sintering.cfg" "${small[@]}" -s synth.seed=2 \
  -o "$tmp/c"
cmp -s "$tmp/a/gt.txt" "$tmp/c/gt.txt" && fail "seeds 1 and 2 gave the same gt.txt"
cmp -s "$tmp/a/video.h5" "$tmp/c/video.h5" && fail "seeds 1 and 2 gave the same video.h5"

# Every preset is a valid configuration.
for p in sparse sintering redox dense train; do
  expect 0 "" "$bin" config -c "$src/config/synth/$p.cfg"
done

# Usage and configuration errors: exit 2, one line, nothing created.
expect 0 "" "$bin" synth --help
grep -q "Usage: nptrack synth" "$tmp/out" || fail "synth --help has no usage line"
expect 2 "unknown option '--bogus'" "$bin" synth --bogus -o "$tmp/never"
expect 2 "no output directory" "$bin" synth "${small[@]}"
expect 2 "option '-o' needs a value" "$bin" synth -o
expect 2 "synth.bit_depth must be 8 or 16 \(got 12\)" "$bin" synth -s synth.bit_depth=12 \
  -o "$tmp/never"
expect 2 "synth.coverage must be" "$bin" synth -s synth.coverage=2 -o "$tmp/never"
[ ! -e "$tmp/never" ] || fail "a refused run created its output directory"

# An output directory that cannot be created (a path through a regular file: even root cannot):
# exit 1, one line naming it.
touch "$tmp/file"
expect 1 "$tmp/file/sub: cannot create output directory" "$bin" synth "${small[@]}" \
  -o "$tmp/file/sub"
# A failure at the end (video.h5 cannot be renamed into place: it is a directory) leaves no
# temporaries and no partial video.
mkdir -p "$tmp/d/video.h5"
expect 1 "video.h5: cannot rename into place" "$bin" synth "${small[@]}" -o "$tmp/d"
[ -z "$(find "$tmp/d" -name '*.part')" ] || fail "temporaries left after a failure: $(ls -a "$tmp/d")"
[ -d "$tmp/d/video.h5" ] || fail "the failed run replaced video.h5"

finish synth_basic
