#!/usr/bin/env bash
# The cudnn backend against the CPU backend (test_gpu_backend.c), with frames of a synthetic
# video made here.  Exits 77 (skipped) without a GPU or without CUDA in the build.
#   usage: gpu_backend.sh NPTRACK_BIN TEST_BIN SCRATCH_DIR
set -uo pipefail
bin=$1 test=$2 tmp=$3
"$bin" --version | grep -qE '[0-9]+ GPUs? visible' || { echo "SKIP: no GPU"; "$bin" --version; exit 77; }
rm -rf "$tmp" && mkdir -p "$tmp"
"$bin" synth -q -s synth.frames=6 -s synth.width=320 -s synth.height=288 -s synth.seed=21 \
  -o "$tmp/v" || { echo "synth failed"; exit 1; }
exec "$test" "$tmp/v/video.h5"
