#!/usr/bin/env bash
# `nptrack run` with the cudnn backend against the cpu backend on one synthetic video: the same
# detections (boxes within 0.1 px) apart from those whose score lies within a small margin of
# the threshold, and the same tracks (compare_runs.py).  Exits 77 (skipped) without a GPU.
#   usage: run_gpu_vs_cpu.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR   (NPTRACK_PYTHON: h5py, numpy)
set -uo pipefail
bin=$1 src=$2 tmp=$3
py=${NPTRACK_PYTHON:-python3}
"$bin" --version | grep -qE '[0-9]+ GPUs? visible' || { echo "SKIP: no GPU"; exit 77; }
rm -rf "$tmp" && mkdir -p "$tmp"
# The network's boxes (detect.refine = none): the box fit after decoding is host code, the same for
# both backends, and would start from boxes that differ by fp16 rounding.
m="-s detect.model=$src/models/nptrack.h5 -s detect.refine=none"
"$bin" synth -q -s synth.frames=40 -s synth.width=512 -s synth.height=512 -s synth.seed=5 \
  -o "$tmp/v" || { echo "synth failed"; exit 1; }
"$bin" run -q $m -s detect.backend=cpu -o "$tmp/cpu.h5" "$tmp/v/video.h5" || exit 1
"$bin" run $m -s detect.backend=cudnn -s detect.batch=16 -o "$tmp/gpu.h5" "$tmp/v/video.h5" \
  > "$tmp/gpu.out" || exit 1
cat "$tmp/gpu.out"
grep -q "backend cudnn: GPU" "$tmp/gpu.out" || { echo "FAIL: the log does not name the GPU"; exit 1; }
"$bin" run $m -s detect.backend=auto -s detect.batch=16 -o "$tmp/auto.h5" "$tmp/v/video.h5" > "$tmp/auto.out" || exit 1
grep -q "backend cudnn: GPU" "$tmp/auto.out" || { echo "FAIL: auto did not take the GPU"; exit 1; }
exec "$py" "$(dirname "$0")/compare_runs.py" "$tmp/cpu.h5" "$tmp/gpu.h5" "$tmp/auto.h5" "$src/models/nptrack.h5"
