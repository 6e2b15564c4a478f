#!/usr/bin/env bash
# nptrack detect and export as a user meets them when something is wrong: help with an example,
# exit status 2 and one line for usage and configuration mistakes, 1 and one line naming the
# file for a missing or malformed video, model or detections file, and never a partial output.
#   usage: detect_errors.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"

model=$src/tests/data/tiny_model.h5
bad=$src/tests/data/detect/bad_frames.h5
"$bin" synth -q -o "$tmp/s" -s synth.frames=3 -s synth.width=64 -s synth.height=48 ||
  { echo "synth failed"; exit 1; }
video=$tmp/s/video.h5 out=$tmp/dets.h5
m=(-s "detect.model=$model")

# Help: options and an example.
expect 0 "" "$bin" detect --help
for want in "Usage: nptrack detect" "-o, --output FILE" "-s, --set" "detect.axis_order=HWT" \
            "Example" "nptrack export"; do
  grep -qF -- "$want" "$tmp/out" || fail "detect --help lacks '$want'"
done
expect 0 "" "$bin" export --help
grep -qF -- "frame,-1,x,y,w,h,score,class,-1" "$tmp/out" || fail "export --help lacks the columns"
"$bin" --help | grep -qE "^  detect " || fail "nptrack --help does not list detect"
"$bin" --help | grep -qE "^  export " || fail "nptrack --help does not list export"

# Usage errors: exit 2, one line.
expect 2 "nptrack detect: error: no output file \(-o DETS.h5\)" "$bin" detect "${m[@]}" "$video"
expect 2 "no video" "$bin" detect "${m[@]}" -o "$out"
expect 2 "unexpected argument 'extra'" "$bin" detect "${m[@]}" -o "$out" "$video" extra
expect 2 "unknown option '--bogus'" "$bin" detect --bogus -o "$out" "$video"
expect 2 "option '-o' needs a value" "$bin" detect "$video" -o
expect 2 "the output .* is the video itself" "$bin" detect "${m[@]}" -o "$video" "$video"

# Configuration errors: exit 2, one line naming the setting.
expect 2 "detect.top_k must be < 0 \(the model's default\) or in \[1, 1000000\] \(got 0\)" \
  "$bin" detect "${m[@]}" -s detect.top_k=0 -o "$out" "$video"
expect 2 "detect.peak_kernel must be odd" "$bin" detect "${m[@]}" -s detect.peak_kernel=4 -o "$out" "$video"
expect 2 "detect.suppress_ratio must be a number in \[-1, 2\] \(got 3\)" \
  "$bin" detect "${m[@]}" -s detect.suppress_ratio=3 -o "$out" "$video"
expect 2 "detect.axis_order" "$bin" detect "${m[@]}" -s detect.axis_order=TWH -o "$out" "$video"
expect 2 "unknown setting 'detect.bogus'" "$bin" detect -s detect.bogus=1 -o "$out" "$video"
expect 2 "detect.batch must be an integer" "$bin" detect -s detect.batch=0 -o "$out" "$video"
expect 2 "detect.last_frame \(2\) is before detect.first_frame \(3\)" \
  "$bin" detect "${m[@]}" -s detect.first_frame=3 -s detect.last_frame=2 -o "$out" "$video"
expect 2 "detect.first_frame = 4, detect.last_frame = 0: .*video.h5 has frames 1 to 3" \
  "$bin" detect "${m[@]}" -s detect.first_frame=4 -o "$out" "$video"
expect 2 "detect.last_frame = 9: .*has frames 1 to 3" "$bin" detect "${m[@]}" \
  -s detect.last_frame=9 -o "$out" "$video"
expect 2 "detect.dataset must be an absolute HDF5 path" "$bin" detect "${m[@]}" \
  -s detect.dataset=frames -o "$out" "$video"

# The video: missing, not HDF5, no such dataset, wrong rank, type, or no frames: exit 1.
expect 1 "nptrack detect: error: $tmp/missing.h5: cannot read video" \
  "$bin" detect "${m[@]}" -o "$out" "$tmp/missing.h5"
printf 'not a video\n' >"$tmp/text.h5"
expect 1 "$tmp/text.h5: not an HDF5 file" "$bin" detect "${m[@]}" -o "$out" "$tmp/text.h5"
expect 1 "video.h5: no dataset /nope \(frames are expected in a \[T, H, W\] dataset\)" \
  "$bin" detect "${m[@]}" -o "$out" "$video:/nope"
expect 1 "video.h5: no dataset /exp/frames" "$bin" detect "${m[@]}" -s detect.dataset=/exp/frames \
  -o "$out" "$video"
expect 1 "bad_frames.h5: /rank2 must have 3 dimensions \[T, H, W\] \(it has 2\)" \
  "$bin" detect "${m[@]}" -o "$out" "$bad:/rank2"
expect 1 "/rank2 must have 3 dimensions \[H, W, T\]" "$bin" detect "${m[@]}" \
  -s detect.axis_order=HWT -o "$out" "$bad:/rank2"
expect 1 "bad_frames.h5: /float must hold uint8 or uint16 grey levels" \
  "$bin" detect "${m[@]}" -o "$out" "$bad:/float"
expect 1 "/signed must hold uint8 or uint16" "$bin" detect "${m[@]}" -o "$out" "$bad:/signed"
expect 1 "the video has no frames" "$bin" detect "${m[@]}" -o "$out" "$bad:/empty"
expect 1 "cannot open /group as the frames dataset" "$bin" detect "${m[@]}" -o "$out" "$bad:/group"

# The model: missing, not HDF5, truncated, HDF5 but not a model: exit 1, one line naming it.
expect 1 "$tmp/nomodel.h5: cannot read model file" "$bin" detect -s "detect.model=$tmp/nomodel.h5" \
  -o "$out" "$video"
# (The default, the shipped model, and its errors: model_lookup.sh.)
head -c 4000 "$model" >"$tmp/truncated.h5"
expect 1 "$tmp/truncated.h5: .*(truncated|corrupt)" "$bin" detect -s "detect.model=$tmp/truncated.h5" \
  -o "$out" "$video"
head -c 4000 /dev/urandom >"$tmp/noise.h5"
expect 1 "$tmp/noise.h5: " "$bin" detect -s "detect.model=$tmp/noise.h5" -o "$out" "$video"
expect 1 "$video: not an nptrack model file" "$bin" detect -s "detect.model=$video" -o "$out" "$video"

# No failure left an output or a temporary file behind.
[ -e "$out" ] && fail "a failed run left $out"
ls -A "$tmp" | grep -q '\.part$' && fail "a failed run left a temporary file: $(ls -A "$tmp")"

# An output directory that does not exist: exit 1, naming the output.
expect 1 "$tmp/no/dir/dets.h5: cannot create" "$bin" detect "${m[@]}" -o "$tmp/no/dir/dets.h5" "$video"

# export: usage (2) and input (1) errors.
expect 2 "nptrack export: error: nothing to export \(give --detections OUT.txt" "$bin" export "$out"
expect 2 "no input file" "$bin" export --detections "$tmp/d.txt"
expect 2 "$video is not an archive: it has no tracks" "$bin" export "$video" --tracks "$tmp/t.txt"
expect 1 "$tmp/nothing.h5: cannot read" "$bin" export "$tmp/nothing.h5" --tracks "$tmp/t.txt"
expect 2 "give one of --detections and --tracks" "$bin" export "$out" --tracks "$tmp/t.txt" \
  --detections "$tmp/d.txt"
expect 2 "--video is for archives" "$bin" export "$out" --video a --detections "$tmp/d.txt"
expect 2 "option '--detections' needs a value" "$bin" export "$out" --detections
expect 2 "unexpected argument 'more'" "$bin" export "$out" more --detections "$tmp/d.txt"
expect 1 "nptrack export: error: $tmp/nothing.h5: cannot read" "$bin" export "$tmp/nothing.h5" \
  --detections "$tmp/d.txt"
expect 1 "$video: not a complete nptrack detections file: no status \"complete\"" \
  "$bin" export "$video" --detections "$tmp/d.txt"
expect 1 "$tmp/text.h5: not an HDF5 file" "$bin" export "$tmp/text.h5" --detections "$tmp/d.txt"
[ -e "$tmp/d.txt" ] && fail "a failed export left $tmp/d.txt"

finish detect_errors
