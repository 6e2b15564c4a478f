#!/usr/bin/env bash
# One device call (docs/performance.md, cuDNN fusion): GPU tests against the CPU (incl. `nptrack run` GPU vs CPU
# and per-detection comparisons with the CPU's fp16 emulation), then the 1024^2 benchmark: the
# cudnn backend without (NPT_CUDNN_FUSE=0) and with cuDNN-fused convolutions, and PyTorch's modes.
# The bundle it runs from (made on the build machine, carried to the device machine):
#   B=<CUDA build>; D=<repo>/.device-X
#   /work/shared/tools/device-bundle -o $D $B/nptrack $B/tests/test_gpu_backend $B/benchmarks/bench_gpu
#   strip --strip-unneeded $D/bin/*; tar -cJf $D/lib.tar.xz -C $D lib && rm -r $D/lib   (64 MiB limit)
#   mkdir -p $D/{tests,benchmarks,train,models}; cp tests/gpu/{gpu_backend.sh,run_gpu_vs_cpu.sh,compare_runs.py} $D/tests
#   cp benchmarks/{bench_gpu_torch.py,gpu_summary.py,fp16_box_error.py} $D/benchmarks
#   cp train/{export.py,nptrack_ops.py,input_norm.py} $D/train; cp models/nptrack.h5 $D/models
#   cp benchmarks/gpu_fusion_check.sh $D/run_all.sh
# then, there: bash $D/run_all.sh  (results under $OUT)
set -uo pipefail
# (The run of 2026-12-07 wrote its files straight into $OUT; only 8 come back, and tests.log was
# lost.  Now they go to a scratch folder and come back as tests.log, summary.md, all.tar.gz.)
D=$(cd "$(dirname "$0")" && pwd); B=$D/bin; O=/tmp/gpu_fusion_check; mkdir -p "$O"
mkdir -p /tmp/cudnn2 && tar -xJf "$D/lib.tar.xz" -C /tmp/cudnn2
export LD_LIBRARY_PATH=/tmp/cudnn2/lib:${LD_LIBRARY_PATH:-} NPT_SOURCE_DIR=$D NPTRACK_PYTHON=python3
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;
  "$B/nptrack" --version; } 2>&1 | tee "$O/tests.log"
t0=$SECONDS
echo "== gpu.backend" | tee -a "$O/tests.log"
NPT_CUDNN_FUSE_VERBOSE=1 timeout 90 bash "$D/tests/gpu_backend.sh" "$B/nptrack" "$B/test_gpu_backend" /tmp/gb >> "$O/tests.log" 2>&1
echo "rc $? ($((SECONDS - t0)) s)" | tee -a "$O/tests.log"
echo "== gpu.run_gpu_vs_cpu" | tee -a "$O/tests.log"
timeout 100 bash "$D/tests/run_gpu_vs_cpu.sh" "$B/nptrack" "$D" /tmp/rg >> "$O/tests.log" 2>&1
echo "rc $? ($((SECONDS - t0)) s)" | tee -a "$O/tests.log"
echo "== detect: cpu fp32, cpu fp16 emulation, cudnn (same video)" | tee -a "$O/tests.log"
m="-s detect.model=$D/models/nptrack.h5"
( "$B/nptrack" detect -q $m -s detect.backend=cpu -s detect.threads=12 -o /tmp/rg/d32.h5 /tmp/rg/v/video.h5 &&
  NPTRACK_CPU_FP16=on "$B/nptrack" detect -q $m -s detect.backend=cpu -s detect.threads=12 -o /tmp/rg/d16.h5 /tmp/rg/v/video.h5 &&
  "$B/nptrack" detect -q $m -s detect.backend=cudnn -s detect.batch=16 -o /tmp/rg/dgpu.h5 /tmp/rg/v/video.h5 &&
  for p in "d32 dgpu" "d16 dgpu" "d32 d16"; do set -- $p; echo "-- $1 vs $2";
    python3 "$D/benchmarks/fp16_box_error.py" /tmp/rg/$1.h5 /tmp/rg/$2.h5; done ) >> "$O/tests.log" 2>&1
echo "rc $? ($((SECONDS - t0)) s)" | tee -a "$O/tests.log"
grep -E "plan:|FAIL|passed|largest|pairs|proposed|unfused|^rc|^--|^all|^ *[0-9]+- " "$O/tests.log" | head -60
echo "== bench 1024^2 ($((SECONDS - t0)) s)"
"$B/nptrack" synth -q -s synth.frames=16 -s synth.width=512 -s synth.height=512 -s synth.seed=9 -o /tmp/bv
NPT_CUDNN_FUSE=0 timeout 45 "$B/bench_gpu" --model "$D/models/nptrack.h5" --video /tmp/bv/video.h5 \
  --sizes 1024 --batches 32,64 --bits 8 --steps 6 --csv "$O/bench_c_unfused.csv" --profile "$O/steps_unfused.csv" 2>&1 | tee "$O/bench_c.log"
NPT_CUDNN_FUSE_VERBOSE=1 timeout 70 "$B/bench_gpu" --model "$D/models/nptrack.h5" --video /tmp/bv/video.h5 \
  --sizes 1024 --batches 32,64 --bits 8 --steps 6 --csv "$O/bench_c.csv" --profile "$O/steps.csv" 2>&1 | tee -a "$O/bench_c.log"
echo "== torch ($((SECONDS - t0)) s)"
PYTHONUNBUFFERED=1 timeout 80 python3 "$D/benchmarks/bench_gpu_torch.py" --model "$D/models/nptrack.h5" \
  --csv "$O/bench_torch.csv" --sizes 1024 --batches 32 --compile-at 1024:32 2>&1 | tee "$O/bench_torch.log" | tail -8
python3 "$D/benchmarks/gpu_summary.py" "$O/bench_c.csv" "$O/bench_torch.csv" > "$O/summary.md" 2>&1
python3 "$D/benchmarks/gpu_summary.py" "$O/bench_c_unfused.csv" "$O/bench_torch.csv" > "$O/summary_unfused.md" 2>&1
echo "== done ($((SECONDS - t0)) s)"; cat "$O/summary.md" | head -12; grep -E "^1024" "$O/bench_c_unfused.csv" "$O/bench_c.csv"
R=${OUT:-/tmp/out}; mkdir -p "$R"; tar -czf "$R/all.tar.gz" -C "$O" . && cp "$O/tests.log" "$O/summary.md" "$R/"
