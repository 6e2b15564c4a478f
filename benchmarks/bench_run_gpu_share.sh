#!/usr/bin/env bash
# nptrack run under MPI with 1, 2 and 4 ranks sharing ONE GPU (the MPI issue's "1→4 ranks sharing
# the H100"): what sharing one GPU does to a run, not multi-GPU scaling.  Every rank picks
# local_rank % device_count = GPU 0, so 2 and 4 ranks overlap their reading, tracking and part
# files with each other's inference on one card.
#   Video: nptrack synth, sparse preset at 1024 x 1024 px, FRAMES frames (default 2048), 8-bit,
#   seed 5000301; chunks of 256 frames with the default overlap (48), detect.batch 32, the cudnn
#   backend.  Each rank count runs REPS times (default 2); the table takes the best wall time
#   (timing_total_s) and prints the stitching and write times and every rank's line of the
#   `ranks` attribute (busy and wait seconds per stage) of that run.  The tables of the 2- and
#   4-rank archives are compared value for value with the 1-rank archive (compare_tables.py).
#   NPT_CUDNN_FUSE is passed through: the runtime-compiled fused engines cost ~7 s per plan per
#   rank, so the device call of 2026-12-08 ran with NPT_CUDNN_FUSE=0 (precompiled engines) to
#   measure the sharing rather than the planning.
#   usage: bench_run_gpu_share.sh NPTRACK_BIN OUT_DIR [PYTHON] [FRAMES] [REPS]
#   On the device machine, from a bundle (../shared/DEVICE.md): LD_LIBRARY_PATH holds the bundle's
#   lib/, NPTRACK_BIN is the bundle's bin/nptrack, and mpiexec is the machine's Open MPI.
set -euo pipefail
bin=$1 out=$2 py=${3:-python3} frames=${4:-2048} reps=${5:-2}
src=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
echo "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); NPT_CUDNN_FUSE=${NPT_CUDNN_FUSE:-1 (default)}; detect.refine=${REFINE:-none}"
t0=$SECONDS
[ -e "$out/v/video.h5" ] || "$bin" synth -q -c "$src/config/synth/sparse.cfg" -s synth.frames="$frames" \
  -s synth.width=1024 -s synth.height=1024 -s synth.bit_depth=8 -s synth.seed=5000301 -o "$out/v"
echo "synth: $((SECONDS - t0)) s, $(du -h "$out/v/video.h5" | cut -f1)"
# detect.refine: REFINE (default none, the GPU pipeline; fit adds the host's box fit, which the
# node's cores then limit: docs/performance.md, "Box refinement")
set_=(-s detect.backend=cudnn -s detect.batch=32 -s chunking.frames=256 -s detect.refine="${REFINE:-none}")
attr() { # attr ARCHIVE times|ranks: "total stitch write chunks" seconds, or the ranks lines
  "$py" - "$1" "$2" <<'EOF'
import sys, h5py
a = h5py.File(sys.argv[1], "r").attrs
g = lambda k: float(a[k]) if k in a else float("nan")
if sys.argv[2] == "times":
    print("%.3f %.3f %.3f %.3f" % (g("timing_total_s"), g("timing_stitch_s"), g("timing_write_s"), g("timing_chunks_s")))
else:
    r = a.get("ranks", b"")
    print((r.decode() if isinstance(r, bytes) else str(r)).rstrip())
EOF
}
printf '| ranks | wall s (best of %s) | chunk phase s | stitching s | archive write s | frames/s | speed-up | parallel efficiency |\n|---|---|---|---|---|---|---|---|\n' "$reps" > "$out/table.md"
t1=
for n in 1 2 4; do
  best="" bestrep=""
  for rep in $(seq "$reps"); do
    log="$out/run-n$n-r$rep.log"
    if ! mpiexec -n "$n" --oversubscribe "$bin" run --force "${set_[@]}" -o "$out/s$n-r$rep.h5" "$out/v/video.h5" > "$log" 2>&1; then
      echo "ranks $n run $rep FAILED:"; tail -20 "$log"; exit 1
    fi
    read -r tot st wr ch < <(attr "$out/s$n-r$rep.h5" times)
    echo "ranks $n run $rep: total $tot s, chunks $ch s, stitch $st s, write $wr s"
    if [ -z "$best" ] || awk "BEGIN{exit !($tot < $best)}"; then best=$tot bestrep=$rep; fi
  done
  echo "-- ranks $n, run $bestrep (best): per-rank lines"
  attr "$out/s$n-r$bestrep.h5" ranks
  read -r tot st wr ch < <(attr "$out/s$n-r$bestrep.h5" times)
  [ -z "$t1" ] && t1=$tot
  awk -v n="$n" -v t="$tot" -v c="$ch" -v s="$st" -v w="$wr" -v f="$frames" -v t1="$t1" \
    'BEGIN{printf "| %d | %.2f | %.2f | %.3f | %.3f | %.0f | %.2f | %.2f |\n", n, t, c, s, w, f/t, t1/t, t1/(n*t)}' >> "$out/table.md"
  if [ "$n" != 1 ]; then
    if "$py" "$src/tests/mpi/compare_tables.py" "$out/s1-r1.h5" "$out/s$n-r$bestrep.h5" > "$out/compare-n$n.log" 2>&1; then
      echo "tables: $n ranks == 1 rank"
    else
      echo "tables: $n ranks DIFFER from 1 rank"; head -20 "$out/compare-n$n.log"
    fi
  fi
done
cat "$out/table.md"
echo "total: $((SECONDS - t0)) s"
