#!/usr/bin/env bash
# The GPU benchmark, one command (docs/performance.md): nptrack's cudnn backend (bench_gpu) and
# the same network in PyTorch (bench_gpu_torch.py) on the same GPU in the same run, then the
# summary table with the ratios and the roofline (gpu_summary.py).
#   usage: benchmarks/bench_gpu.sh BIN_DIR MODEL.h5 OUT_DIR [quick]
#   BIN_DIR holds nptrack and bench_gpu (a CUDA build's, or a device bundle's bin/); python3 must
#   have torch.  Writes OUT_DIR/bench_c.csv, bench_torch.csv, summary.md and the logs.
set -uo pipefail
bin=$1 model=$2 out=$3 quick=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The frames: tiles of a synthetic video (bench_gpu shifts them so that every frame differs).
"$bin/nptrack" synth -q -s synth.frames=16 -s synth.width=512 -s synth.height=512 -s synth.seed=9 \
  -o "$tmp/v" || exit 1
if [ "$quick" = quick ]; then
  c_args=(--sizes 1024 --batches 32 --bits 8) t_args=(--sizes 1024 --batches 32 --compile-at "")
else
  c_args=(--sizes 512,1024,2048 --batches ${NPT_C_BATCHES:-8,16,32,64} --bits 8,16 --steps 6)
  t_args=(--sizes 512,1024,2048 --batches ${NPT_T_BATCHES:-8,32} --compile-at "${NPT_TORCH_COMPILE_AT:-1024:32}")
  [ -n "${NPT_TORCH_AUTOTUNE:-}" ] && t_args+=(--autotune "$NPT_TORCH_AUTOTUNE")
fi
"$bin/bench_gpu" --model "$model" --video "$tmp/v/video.h5" --csv "$out/bench_c.csv" \
  --profile "$out/steps.csv" "${c_args[@]}" \
  2>&1 | tee "$out/bench_c.log"
PYTHONUNBUFFERED=1 python3 "$here/bench_gpu_torch.py" --model "$model" --csv "$out/bench_torch.csv" \
  "${t_args[@]}" 2>&1 | tee "$out/bench_torch.log"
python3 "$here/gpu_summary.py" "$out/bench_c.csv" "$out/bench_torch.csv" | tee "$out/summary.md"
