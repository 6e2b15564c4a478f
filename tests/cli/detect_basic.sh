#!/usr/bin/env bash
# nptrack detect and export when all is well (no Python needed; tests/python/test_detect_file.py
# reads the file itself): one summary line, the text export's rows and columns, a frame range,
# quiet mode, an [H, W, T] dataset, the same output for the same input.
#   usage: detect_basic.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"

m=(-s "detect.model=$src/tests/data/tiny_model.h5")
"$bin" synth -q -o "$tmp/s" -s synth.frames=6 -s synth.width=80 -s synth.height=64 ||
  { echo "synth failed"; exit 1; }
video=$tmp/s/video.h5

expect 0 "" "$bin" detect "${m[@]}" -s detect.batch=4 -o "$tmp/dets.h5" "$video"
[ "$(wc -l <"$tmp/out")" = 2 ] || fail "detect did not print two lines: $(cat "$tmp/out")"
[ "$(head -1 "$tmp/out")" = "nptrack detect: model $src/tests/data/tiny_model.h5 (detect.model)" ] ||
  fail "model line: $(head -1 "$tmp/out")"
tail -1 "$tmp/out" | grep -qE "^nptrack detect: wrote $tmp/dets.h5: [0-9]+ detections in 6 frames \(1 to 6\), [0-9.]+ frames/s \(backend cpu( \(auto: [^)]*\))?\)$" ||
  fail "summary line: $(cat "$tmp/out")"
n=$(tail -1 "$tmp/out" | sed -E 's/.*: ([0-9]+) detections.*/\1/')
[ "$n" -gt 0 ] || fail "no detections: the export checks below learn nothing"
[ -s "$tmp/err" ] && fail "detect wrote to stderr: $(cat "$tmp/err")"

expect 0 "" "$bin" export "$tmp/dets.h5" --detections "$tmp/dets.txt"
grep -qx "nptrack export: wrote $tmp/dets.txt: $n detections" "$tmp/out" || fail "export said $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/dets.txt")" = "$n" ] || fail "export wrote $(wc -l <"$tmp/dets.txt") lines for $n rows"
bad=$(grep -cvE '^[1-6],-1,-?[0-9]+\.[0-9]{4},-?[0-9]+\.[0-9]{4},[0-9]+\.[0-9]{4},[0-9]+\.[0-9]{4},[01]\.[0-9]{6},[12],-1$' \
  "$tmp/dets.txt")
[ "$bad" = 0 ] || fail "$bad export lines are not frame,-1,x,y,w,h,score,class,-1: $(head -3 "$tmp/dets.txt")"
cut -d, -f1 "$tmp/dets.txt" | sort -n -c || fail "export rows are not in frame order"
expect 0 "" "$bin" export -q "$tmp/dets.h5" --detections -
cmp -s "$tmp/out" "$tmp/dets.txt" || fail "export to standard output differs from the file"

# The same input gives the same file; a frame range gives those frames' rows.
expect 0 "" "$bin" detect -q "${m[@]}" -s detect.batch=4 -o "$tmp/again.h5" "$video"
[ -s "$tmp/out" ] && fail "-q printed: $(cat "$tmp/out")"
cmp -s "$tmp/dets.h5" "$tmp/again.h5" || fail "two runs with the same settings differ"
expect 0 "" "$bin" detect -q "${m[@]}" -s detect.first_frame=2 -s detect.last_frame=4 \
  -o "$tmp/part.h5" "$video"
expect 0 "" "$bin" export -q "$tmp/part.h5" --detections "$tmp/part.txt"
grep -E '^[234],' "$tmp/dets.txt" | cmp -s - "$tmp/part.txt" ||
  fail "frames 2-4 alone differ from the same frames of the full run"

# An [H, W, T] stack.
expect 0 "" "$bin" detect -q "${m[@]}" -s detect.axis_order=HWT -o "$tmp/hwt.h5" \
  "$src/tests/data/detect/bad_frames.h5:/hwt"
expect 0 "" "$bin" export "$tmp/hwt.h5" --detections "$tmp/hwt.txt"
grep -qE "^nptrack export: wrote .*: [0-9]+ detections$" "$tmp/out" || fail "HWT export: $(cat "$tmp/out")"
ls -A "$tmp" | grep -q '\.part$' && fail "temporary files left: $(ls -A "$tmp")"

finish detect_basic
