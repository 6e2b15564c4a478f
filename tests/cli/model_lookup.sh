#!/usr/bin/env bash
# Which model `nptrack detect` uses when detect.model is not given (src/nn/model_locate.h):
# NPTRACK_MODEL first; else, for an installed nptrack, PREFIX/share/nptrack/models/nptrack.h5,
# found from any working directory; else one error that lists where it looked and how to choose
# a model.  Also: `cmake --install` lays out bin/ and share/ so that this works and the installed
# program starts (its RPATH), and an explicit detect.model wins and is named when missing.
#   usage: model_lookup.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR   (the build tree is BIN's folder)
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"
unset NPTRACK_MODEL

"$bin" synth -q -o "$tmp/s" -s synth.frames=3 -s synth.width=64 -s synth.height=48 ||
  { echo "synth failed"; exit 1; }
video=$tmp/s/video.h5
cp "$src/tests/data/tiny_model.h5" "$tmp/env_model.h5"
cp "$src/tests/data/tiny_model.h5" "$tmp/explicit.h5"

# --- (a) NPTRACK_MODEL: used, reported, recorded in the file; detect.model beats it ------------
# (threshold 0.3: at its own 0.4 the random tiny model peaks only at border cells whose centres
# fall outside this small frame, which decoding drops; docs/decode.md rule 3a)
expect 0 "" env NPTRACK_MODEL="$tmp/env_model.h5" "$bin" detect -s detect.score_threshold=0.3 -o "$tmp/a.h5" "$video"
[ "$(head -1 "$tmp/out")" = "nptrack detect: model $tmp/env_model.h5 (NPTRACK_MODEL)" ] ||
  fail "NPTRACK_MODEL: detect said $(cat "$tmp/out")"
grep -qF "$tmp/env_model.h5" "$tmp/a.h5" || fail "the detections file does not record $tmp/env_model.h5"
expect 0 "" env NPTRACK_MODEL="$tmp/env_model.h5" "$bin" --version
grep -qxF "  Model: $tmp/env_model.h5 (NPTRACK_MODEL)" "$tmp/out" || fail "--version: $(cat "$tmp/out")"
expect 0 "" env NPTRACK_MODEL="$tmp/env_model.h5" "$bin" detect -s "detect.model=$tmp/explicit.h5" \
  -o "$tmp/a2.h5" "$video"
[ "$(head -1 "$tmp/out")" = "nptrack detect: model $tmp/explicit.h5 (detect.model)" ] ||
  fail "detect.model did not beat NPTRACK_MODEL: $(cat "$tmp/out")"
expect 0 "" env NPTRACK_MODEL="$tmp/env_model.h5" "$bin" detect -q -o "$tmp/a3.h5" "$video"
[ -s "$tmp/out" ] && fail "-q printed: $(cat "$tmp/out")"
# A name that leads nowhere: exit 1, naming the file (and, for the variable, the variable).
expect 1 "^nptrack detect: error: $tmp/nothing.h5: no such model file \(named by NPTRACK_MODEL" \
  env NPTRACK_MODEL="$tmp/nothing.h5" "$bin" detect -o "$tmp/never.h5" "$video"
cd "$tmp/s" || exit 1
expect 1 "^nptrack detect: error: nothing.h5: cannot read model file" \
  "$bin" detect -s detect.model=nothing.h5 -o "$tmp/never.h5" video.h5 # relative: the working dir
cd - >/dev/null || exit 1

# --- (b) an installed copy finds its own model, from any working directory ---------------------
prefix=$tmp/prefix
cmake --install "$(dirname "$bin")" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { fail "cmake --install: $(tail -3 "$tmp/install.log")"; finish model_lookup; }
inst=$prefix/bin/nptrack
for f in bin/nptrack share/nptrack/config/default.cfg share/nptrack/config/synth/dense.cfg \
         share/doc/nptrack/README.md share/doc/nptrack/docs/model-format.md; do
  [ -f "$prefix/$f" ] || fail "not installed: $f"
done
for m in "$src"/models/*.h5; do # whatever models the tree ships are installed
  [ -e "$m" ] || continue
  cmp -s "$m" "$prefix/share/nptrack/models/$(basename "$m")" || fail "model $m not installed"
done
# The installed program starts (its RPATH still finds every library, CUDA's included) and keeps
# the build tree's CUDA library folders in its RUNPATH.
expect 0 "" "$inst" --version
if command -v readelf >/dev/null; then
  built=$(readelf -d "$bin" | sed -nE 's/.*(RPATH|RUNPATH).*\[(.*)\]/\2/p' | tr : '\n' | grep cuda)
  have=$(readelf -d "$inst" | sed -nE 's/.*(RPATH|RUNPATH).*\[(.*)\]/\2/p' | tr : '\n')
  for d in $built; do
    grep -qxF "$d" <<<"$have" || fail "the installed nptrack's RUNPATH lacks $d"
  done
fi

mkdir -p "$prefix/share/nptrack/models" "$tmp/elsewhere"
cp "$src/tests/data/tiny_model.h5" "$prefix/share/nptrack/models/nptrack.h5"
want=$(cd "$prefix" && pwd -P)/share/nptrack/models/nptrack.h5
cd "$tmp/elsewhere" || exit 1
expect 0 "" "$inst" detect -s detect.score_threshold=0.3 -o b.h5 "$video"
[ "$(head -1 "$tmp/out")" = "nptrack detect: model $want (installed)" ] ||
  fail "installed: detect said $(cat "$tmp/out")"
expect 0 "" "$inst" --version
grep -qxF "  Model: $want (installed)" "$tmp/out" || fail "installed --version: $(cat "$tmp/out")"
cd - >/dev/null || exit 1
# It really ran that model: the same rows as the NPTRACK_MODEL run of the same file.
"$bin" export -q "$tmp/a.h5" --detections "$tmp/a.txt" &&
  "$bin" export -q "$tmp/elsewhere/b.h5" --detections "$tmp/b.txt" &&
  cmp -s "$tmp/a.txt" "$tmp/b.txt" || fail "the installed model's detections differ from the same model's"
[ -s "$tmp/a.txt" ] || fail "no detections: the comparison above learns nothing"
# NPTRACK_MODEL beats the installed model.
expect 0 "" env NPTRACK_MODEL="$tmp/env_model.h5" "$inst" --version
grep -qxF "  Model: $tmp/env_model.h5 (NPTRACK_MODEL)" "$tmp/out" || fail "installed --version with NPTRACK_MODEL: $(cat "$tmp/out")"

# --- (c) no model anywhere: one line that says where it looked, exit 2 --------------------------
# An installed program looks only beside itself, never in the source tree it was built from, so
# this holds whether or not the source tree has its models/nptrack.h5.
rm "$prefix/share/nptrack/models/nptrack.h5"
cd "$tmp/elsewhere" || exit 1
for empty in unset ""; do
  if [ "$empty" = unset ]; then run=(env -u NPTRACK_MODEL "$inst"); else run=(env NPTRACK_MODEL= "$inst"); fi
  expect 2 "^nptrack detect: error: no model file: detect.model is empty \(the shipped model\) and none was found \(NPTRACK_MODEL is not set; no installed model at $want\); choose one with -s detect.model=PATH or NPTRACK_MODEL=PATH$" \
    "${run[@]}" detect -o c.h5 "$video"
  [ -e c.h5 ] && fail "a run without a model left c.h5"
  expect 0 "" "${run[@]}" --version
  grep -qxF "  Model: none found (NPTRACK_MODEL is not set; no installed model at $want)" "$tmp/out" ||
    fail "--version without a model ($empty): $(cat "$tmp/out")"
done
cd - >/dev/null || exit 1

# The build tree's program uses the source tree's model, when there is one.
expect 0 "" "$bin" --version
if [ -f "$src/models/nptrack.h5" ]; then
  grep -qxF "  Model: $src/models/nptrack.h5 (build tree)" "$tmp/out" || fail "build tree: $(cat "$tmp/out")"
else
  grep -qxF "  Model: none found (NPTRACK_MODEL is not set; no model in the source tree at $src/models/nptrack.h5)" \
    "$tmp/out" || fail "build tree without a model: $(cat "$tmp/out")"
  expect 2 "no model in the source tree at $src/models/nptrack.h5\); choose one with -s detect.model=PATH" \
    "$bin" detect -o "$tmp/never.h5" "$video"
fi

finish model_lookup
