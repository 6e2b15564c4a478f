#!/usr/bin/env bash
# One device call for branch `heads` (merged head convolutions, cuDNN kernel caches, one plan per
# frame size): the GPU tests against the CPU (test_gpu_backend through gpu_backend.sh, `nptrack
# run` GPU vs CPU with compare_runs.py), then the 1024^2 8-bit benchmark at batches 32 and 64:
# hm1 and box1 unmerged (the default), merged (NPT_CUDNN_MERGE_HEADS=1), and merged with
# dynamic-shape plans and kernel caches (NPT_CUDNN_KERNEL_CACHE=1), then PyTorch's modes (compile + CUDA graphs) at batch 32
# for the ratio (branch `tail` adds `bench tail` and `bench tail2`: the stride-2 tail kernel,
# version 1 and 2, NPT_CUDNN_TAIL=1 and 2, and the GPU tests' tail cases), and last, if time is
# left, `nptrack detect` of one video on the CPU and on the
# GPU with and without merging, with the plan lines (one plan per frame size).
# Every step has a timeout and the whole stays under ~8 minutes (including ~7 s per cuDNN plan
# that compiles its kernels); results go to $OUT as tests.log, summary.md and all.tar.gz.
#
# The bundle it runs from (made on the build machine from the CUDA build of this commit, then
# copied to <repo>/.device-heads and carried to the device machine; at most 64 MiB):
#   cd /work/wt-heads && B=$PWD/build-cuda D=$PWD/.device-heads && rm -rf $D
#   mkdir -p /tmp/bundle-top/.git/info && (cd /tmp/bundle-top && /work/shared/tools/device-bundle \
#       -o $D $B/nptrack $B/tests/test_gpu_backend $B/benchmarks/bench_gpu)
#   strip --strip-unneeded $D/bin/*; tar -cJf $D/lib.tar.xz -C $D lib && rm -r $D/lib
#   mkdir -p $D/tests/gpu $D/benchmarks $D/train $D/models
#   cp tests/gpu/{gpu_backend.sh,run_gpu_vs_cpu.sh,compare_runs.py} $D/tests/gpu
#   cp benchmarks/{bench_gpu_torch.py,gpu_summary.py,fp16_box_error.py} $D/benchmarks
#   cp train/{export.py,nptrack_ops.py,input_norm.py} $D/train; cp models/nptrack.h5 $D/models
#   mkdir -p $D/synth && cp config/synth/sparse.cfg $D/synth
#   cp benchmarks/gpu_heads_check.sh $D/run_all.sh; du -sh $D
# (device-bundle is run from a scratch folder with a .git/info of its own because it appends the
# bundle's name to .git/info/exclude of the repository it is run in, and a worktree's .git is a
# file.)  Then, on the device machine, from the repository root: bash .device-heads/run_all.sh
# (For branch `tail`: the same from /work/wt-tail with D=$PWD/.device-tail, and bash
# .device-tail/run_all.sh.)
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd); B=$D/bin; O=/tmp/gpu_heads_check; R=${OUT:-/tmp/out}
rm -rf "$O" && mkdir -p "$O" "$R"
L=$O/tests.log
BUDGET=470 # seconds of work (470 since branch tail's two more benchmarks); the rest of the
# device call's 10 minutes is for unpacking and packing
# The timeout for a step: at most $1 s, and never past the budget.
tmo() {
  local t=$1 left=$((BUDGET - SECONDS))
  ((left < t)) && t=$left
  ((t < 5)) && t=5
  echo "$t"
}
pack() {
  tar -czf "$R/all.tar.gz" -C "$O" . && cp "$L" "$R/tests.log"
  if [ -s "$O/summary.md" ]; then cp "$O/summary.md" "$R/"; else echo "(no summary)" > "$R/summary.md"; fi
}
trap pack EXIT

mkdir -p /tmp/heads_lib && tar -xJf "$D/lib.tar.xz" -C /tmp/heads_lib
export LD_LIBRARY_PATH=/tmp/heads_lib/lib:${LD_LIBRARY_PATH:-} NPT_SOURCE_DIR=$D NPTRACK_PYTHON=python3
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$B/nptrack" --version; python3 -c 'import torch; print("torch", torch.__version__)'; } 2>&1 | tee "$L"

step() { echo "== $1 (at $SECONDS s)" | tee -a "$L"; }
rc() { echo "rc $1 (at $SECONDS s)" | tee -a "$L"; }

# --- GPU tests -------------------------------------------------------------------------------
step "gpu.backend (test_gpu_backend; verbose: merges, fused plans, plan times)"
NPT_CUDNN_FUSE_VERBOSE=1 timeout "$(tmo 240)" bash "$D/tests/gpu/gpu_backend.sh" "$B/nptrack" \
  "$B/test_gpu_backend" /tmp/gb > "$O/gpu_backend.log" 2>&1
rc $? ; cat "$O/gpu_backend.log" >> "$L"
grep -E "^[a-z].*: [0-9]+ x |plan:|first plan|FAIL|SKIP|identical|merged head conv|no head conv|dynamic-shape plan|tail kernel|tail-kernel steps|all passed|FAILURES" \
  "$O/gpu_backend.log" | head -120

step "gpu.run_gpu_vs_cpu (nptrack run, cudnn vs cpu, compare_runs.py)"
NPT_CUDNN_FUSE_VERBOSE=1 timeout "$(tmo 120)" bash "$D/tests/gpu/run_gpu_vs_cpu.sh" "$B/nptrack" "$D" \
  /tmp/rg > "$O/run_gpu_vs_cpu.log" 2>&1
rc $? ; cat "$O/run_gpu_vs_cpu.log" >> "$L"
grep -E "plan for|detections|pairs|FAIL|passed|unpaired|tracks|proposed" "$O/run_gpu_vs_cpu.log" | head -30

# --- Benchmark at 1024^2, 8-bit ------------------------------------------------------------------
"$B/nptrack" synth -q -s synth.frames=16 -s synth.width=512 -s synth.height=512 -s synth.seed=9 -o /tmp/bv
bench() { # name, then env assignments for bench_gpu
  local name=$1; shift
  step "bench_gpu $name: $*"
  env "$@" NPT_CUDNN_FUSE_VERBOSE=1 timeout "$(tmo 100)" "$B/bench_gpu" --model "$D/models/nptrack.h5" \
    --video /tmp/bv/video.h5 --sizes 1024 --batches 32,64 --bits 8 --steps 6 \
    --csv "$O/bench_$name.csv" --profile "$O/steps_$name.csv" > "$O/bench_$name.log" 2>&1
  rc $?
  grep -vE "^nptrack: cudnn backend: node .* fused by" "$O/bench_$name.log" | tee -a "$L" | tail -12
}
bench unmerged NPT_CUDNN_MERGE_HEADS=0
bench tail NPT_CUDNN_TAIL=1
bench tail2 NPT_CUDNN_TAIL=2
bench merged NPT_CUDNN_MERGE_HEADS=1
bench merged_dynamic NPT_CUDNN_MERGE_HEADS=1 NPT_CUDNN_KERNEL_CACHE=1

step "torch (compile + CUDA graphs at batch 32)"
PYTHONUNBUFFERED=1 timeout "$(tmo 120)" python3 "$D/benchmarks/bench_gpu_torch.py" --model "$D/models/nptrack.h5" \
  --csv "$O/bench_torch.csv" --sizes 1024 --batches 32 --compile-at 1024:32 > "$O/bench_torch.log" 2>&1
rc $? ; tail -8 "$O/bench_torch.log" | tee -a "$L"

{
  for name in merged unmerged tail tail2 merged_dynamic; do
    echo "## $name"
    python3 "$D/benchmarks/gpu_summary.py" "$O/bench_$name.csv" "$O/bench_torch.csv" 2>&1 | head -12
    echo
  done
  echo "## rows (size,batch,bits,net_ms,net_fps,step_fps,...,plan_s,merged_steps,dynamic_convs)"
  grep -hE "^#|^size|^1024" "$O"/bench_*.csv
  echo
  echo "## per-step times at batch 32 (f2, hm1/box1, the tail step f2+hm1+box1, and totals)"
  grep -HE ",f2,|hm1|box1|,tail,|^total" "$O"/steps_*.csv
} > "$O/summary.md"
step "summary"
cat "$O/summary.md"

# --- Detections of one video: CPU, GPU merged, GPU unmerged (time permitting) ------------------
if ((BUDGET - SECONDS > 60)); then
  step "detect: cpu, cudnn merged, cudnn unmerged (batch 16 on 40 frames: one plan)"
  m="-s detect.model=$D/models/nptrack.h5"
  # shellcheck disable=SC2086  # $m is two words on purpose
  ( timeout "$(tmo 40)" "$B/nptrack" detect -q $m -s detect.backend=cpu -o /tmp/rg/d32.h5 /tmp/rg/v/video.h5 &&
    NPT_CUDNN_MERGE_HEADS=1 NPT_CUDNN_FUSE_VERBOSE=1 timeout "$(tmo 40)" "$B/nptrack" detect -q $m -s detect.backend=cudnn \
      -s detect.batch=16 -o /tmp/rg/dgpu.h5 /tmp/rg/v/video.h5 2> "$O/detect_merged.err" &&
    NPT_CUDNN_MERGE_HEADS=0 timeout "$(tmo 40)" "$B/nptrack" detect -q $m -s detect.backend=cudnn \
      -s detect.batch=16 -o /tmp/rg/dgpu0.h5 /tmp/rg/v/video.h5 &&
    grep -E "plan for|merged head" "$O/detect_merged.err" &&
    echo "plans made by the merged run: $(grep -c "plan for" "$O/detect_merged.err") (1 expected)" &&
    for p in "d32 dgpu" "d32 dgpu0" "dgpu0 dgpu"; do set -- $p; echo "-- $1 vs $2"
      python3 "$D/benchmarks/fp16_box_error.py" "/tmp/rg/$1.h5" "/tmp/rg/$2.h5"; done ) > "$O/detect.log" 2>&1
  rc $? ; tee -a "$L" < "$O/detect.log" | head -40
fi
# --- nptrack run on the GPU with and without box refinement (time permitting) -------------------
# What the host's box fit (detect.refine = fit, the default; docs/decode.md rule 8) costs a GPU run
# on this node's cores: the same 1024^2 8-bit video (256 frames of the sparse preset) run with
# refine none and fit, batch 32; total seconds and the ranks line (busy/wait per stage).
if ((BUDGET - SECONDS > 70)); then
  step "run: cudnn, detect.refine none vs fit (1024^2, 256 frames)"
  ( "$B/nptrack" synth -q -c "$D/synth/sparse.cfg" -s synth.frames=256 -s synth.width=1024 \
      -s synth.height=1024 -s synth.seed=5000301 -o /tmp/rr &&
    for r in none fit; do
      timeout "$(tmo 40)" "$B/nptrack" run -q --force -s detect.model="$D/models/nptrack.h5" \
        -s detect.backend=cudnn -s detect.batch=32 -s detect.refine=$r -o /tmp/rr/$r.h5 /tmp/rr/video.h5 &&
        python3 -c "import sys, h5py; a = h5py.File(sys.argv[1], 'r').attrs; print(sys.argv[2], 'total', a['timing_total_s'], 's;', (lambda r: r.decode() if isinstance(r, bytes) else str(r))(a.get('ranks', b'')))" /tmp/rr/$r.h5 $r
    done ) > "$O/run_refine.log" 2>&1
  rc $? ; tee -a "$L" < "$O/run_refine.log" | tail -6
fi
step "done"
grep -E "^== |^rc " "$L"
