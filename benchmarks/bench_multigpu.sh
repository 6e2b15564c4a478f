#!/usr/bin/env bash
# Multi-GPU scaling of nptrack run on the GPUs of one node (issue "Last"): strong scaling (one
# replayed video of STRONG frames on 1, 2, 4, 8 ranks) and weak scaling (WEAK frames per rank),
# one rank per GPU, launched with mpirun (no Slurm, no NCCL: ranks share only MPI messages and
# the archive).  Each rank takes GPU local_rank % (GPUs of the node) (npt_run_pick_device,
# src/cli/run_setup.c; local_rank: MPI_COMM_TYPE_SHARED), so n ranks on n GPUs get one GPU each;
# the script checks that in each archive's `ranks` attribute.
#
# The video: nptrack synth, sparse preset, SIZE x SIZE px, 8-bit, STORED frames (seed 5000301),
# presented as a long video by detect.replay_frames (docs/config.md): frame i of the long video
# is stored frame i mod STORED, read from the file again through the normal reader (HDF5, the
# page cache), so reading is in every rank's `read` seconds.  Particles jump at each wrap (every
# STORED frames): their tracks end there and new ones start, as in any cut of a video.  The
# reading path alone is measured apart (bench_read: 1 reader, then one per rank at once).
#
# Per run: mpirun's wall time, the run's own time (timing_total_s, from setup to rename), the
# chunk phase, frames/s, parallel efficiency (frames/s over n x the 1-rank frames/s of the same
# mode), stitching and archive write time on the root, and every rank's line of the `ranks`
# attribute (busy and waiting seconds of read, detect, track; idle = waiting for the slowest
# rank).  The strong runs' tables are compared value for value with the fewest-rank strong run
# of the same length (tests/mpi/compare_tables.py), including archives left in WORK by an earlier
# call on the same machine.  A markdown table is written to OUT_DIR/table.md as runs finish.
#
#   usage: bench_multigpu.sh NPTRACK_BIN OUT_DIR [PYTHON] [STRONG_FRAMES] [WEAK_FRAMES_PER_RANK]
#          (defaults: python3, 360000, 60000: about 480 s on H100s at the assumed RATE)
# Environment (optional):
#   GPUS="1 2 4 8"  rank counts, cut to the node's GPUs (cudnn); several calls may split them
#                   ("8 4 2" in one, "1" in the next: WORK keeps the archives for comparing)
#   MODES="strong weak"   or one of them
#   BACKEND=cudnn   detect.backend (cpu for a dry run without GPUs)
#   SIZE=1024  STORED=512  BATCH=32  CHUNK=2048   frame side, stored frames, detect.batch,
#                   chunking.frames (overlap: the default, 48)
#   EXTRA=""        more nptrack options, e.g. "-s detect.threads=1" for CPU ranks
#   REFINE=none     detect.refine: none measures the GPU pipeline; fit, the default of nptrack,
#                   adds the host's box fit (0.15-0.6 ms per detection per core,
#                   docs/performance.md "Box refinement"), which the node's cores then limit
#   RATE=3000       assumed frames/s per GPU for the estimate (an H100 at 1024², batch 32:
#                   docs/performance.md), OVERHEAD_S=20 per run (start, model, cuDNN plans)
#   BUDGET_S=540    refuse to start when the estimate is above it (the device's 10-minute limit
#                   per command); FORCE=1 starts anyway
#   BASE_STRONG_FPS, BASE_WEAK_FPS  1-rank frames/s of an earlier call, when GPUS lacks 1
#   READ_FRAMES=16384   frames bench_read reads (per reader); BENCH_READ: its path (default:
#                   beside NPTRACK_BIN, or in its benchmarks/ folder)
#   WORK=/tmp/bench_multigpu   videos and archives (large: kept out of OUT_DIR)
#   MPIRUN=mpirun  MPI_ARGS="--bind-to none"  (a rank runs a reader, the engine and a tracker
#                   thread: binding it to one core would serialise them)
# On the device machine, from a bundle (../shared/DEVICE.md): LD_LIBRARY_PATH holds the bundle's
# lib/, NPTRACK_BIN is the bundle's bin/nptrack, bench_read beside it.
set -euo pipefail
bin=$1 out=$2 py=${3:-python3} strong=${4:-360000} weak=${5:-60000}
src=$(cd "$(dirname "$0")/.." && pwd)
GPUS=${GPUS:-1 2 4 8} MODES=${MODES:-strong weak} BACKEND=${BACKEND:-cudnn}
SIZE=${SIZE:-1024} STORED=${STORED:-512} BATCH=${BATCH:-32} CHUNK=${CHUNK:-2048} EXTRA=${EXTRA:-}
REFINE=${REFINE:-none}
RATE=${RATE:-3000} OVERHEAD_S=${OVERHEAD_S:-20} BUDGET_S=${BUDGET_S:-540} FORCE=${FORCE:-0}
READ_FRAMES=${READ_FRAMES:-16384} WORK=${WORK:-/tmp/bench_multigpu}
MPIRUN=${MPIRUN:-mpirun} MPI_ARGS=${MPI_ARGS:---bind-to none}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
read_bin=${BENCH_READ:-$(dirname "$bin")/bench_read}
[ -x "$read_bin" ] || read_bin=$(dirname "$bin")/benchmarks/bench_read
mkdir -p "$out" "$WORK"
t0=$SECONDS

# The rank counts: those of GPUS that the node's GPUs allow (cudnn), each at most once.
if [ "$BACKEND" = cpu ]; then
  ngpu=cpu
else
  ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  [ "$ngpu" -ge 1 ] || { echo "bench_multigpu: no GPU (nvidia-smi -L); BACKEND=cpu for a dry run"; exit 1; }
fi
ranks=()
for n in $GPUS; do
  if [ "$ngpu" = cpu ] || [ "$n" -le "$ngpu" ]; then ranks+=("$n"); else echo "skipped: $n ranks (the node has $ngpu GPUs)"; fi
done
[ "${#ranks[@]}" -ge 1 ] || { echo "bench_multigpu: no rank count left of GPUS='$GPUS'"; exit 1; }

gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort | uniq -c | xargs || true)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; GPUs: ${gpus:-none}; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $($MPIRUN --version 2>/dev/null | head -1); backend $BACKEND; NPT_CUDNN_FUSE=${NPT_CUDNN_FUSE:-default}"
echo "video: ${SIZE}x$SIZE px, $STORED stored frames replayed; strong $strong frames; weak $weak frames per rank; ranks ${ranks[*]}; modes $MODES; batch $BATCH, chunks of $CHUNK"

# The estimate: each run's frames at RATE per rank plus OVERHEAD_S, the synthesis at ~150
# frames/s (1024²; 4x that per halving of the side), the reading at ~2 GB/s.
est=$(awk -v s="$strong" -v w="$weak" -v r="$RATE" -v o="$OVERHEAD_S" -v m="$MODES" -v st="$STORED" \
  -v sz="$SIZE" -v rf="$READ_FRAMES" -v ns="${ranks[*]}" 'BEGIN{
  split(ns, n, " "); t = st / (150 * (1024 / sz) ^ 2) + 2 * rf * sz * sz / 2e9;
  for (i in n) { if (m ~ /strong/) t += s / (r * n[i]) + o; if (m ~ /weak/) t += w / r + o }
  printf "%.0f", t }')
echo "estimate: $est s at $RATE frames/s per rank and $OVERHEAD_S s per run (budget $BUDGET_S s)"
if [ "$est" -gt "$BUDGET_S" ] && [ "$FORCE" != 1 ]; then
  echo "bench_multigpu: the estimate exceeds BUDGET_S=$BUDGET_S s: give fewer frames, split GPUS over calls, or FORCE=1"
  exit 1
fi

video=$WORK/v${SIZE}x$STORED/video.h5
if [ ! -e "$video" ]; then
  "$bin" synth -q -c "$src/config/synth/sparse.cfg" -s synth.frames="$STORED" -s synth.width="$SIZE" \
    -s synth.height="$SIZE" -s synth.bit_depth=8 -s synth.seed=5000301 -o "$(dirname "$video")"
fi
echo "synth: $((SECONDS - t0)) s, $(du -h "$video" | cut -f1)"

# The reading path alone: one reader, then as many readers at once as the largest rank count.
nmax=$(printf '%s\n' "${ranks[@]}" | sort -n | tail -1)
if [ -x "$read_bin" ]; then
  echo "## HDF5 reading alone (bench_read: npt_frames_read, batches of $BATCH, $READ_FRAMES frames per reader)"
  "$read_bin" "$video" "$READ_FRAMES" "$BATCH" | tee "$out/read-1.log"
  $MPIRUN -n "$nmax" --oversubscribe $MPI_ARGS "$read_bin" "$video" "$READ_FRAMES" "$BATCH" > "$out/read-$nmax.log"
  awk -v n="$nmax" '{for (i = 1; i <= NF; i++) if ($(i+1) == "frames/s,") s += $i}
    END{printf "%d readers at once: %.0f frames/s in all, %.0f per reader\n", n, s, s / n}' "$out/read-$nmax.log"
else
  echo "## HDF5 reading alone: no bench_read at $read_bin (BENCH_READ=...): skipped"
fi

attr() { # attr ARCHIVE times|ranks: "total chunks stitch write read" seconds, or the ranks lines
  "$py" - "$1" "$2" <<'EOF'
import sys, h5py
a = h5py.File(sys.argv[1], "r").attrs
g = lambda k: float(a[k]) if k in a else float("nan")
if sys.argv[2] == "times":
    print(" ".join("%.3f" % g("timing_%s_s" % k) for k in ("total", "chunks", "stitch", "write", "read")))
else:
    r = a.get("ranks", b"")
    print((r.decode() if isinstance(r, bytes) else str(r)).rstrip())
EOF
}
table=$out/table.md
printf '| mode | ranks | frames | mpirun wall s | run s | chunk phase s | frames/s | frames/s per rank | efficiency | efficiency, chunk phase | stitching s | archive write s | read s (all ranks) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n' > "$table"
declare -A base_run=([strong]=${BASE_STRONG_FPS:-} [weak]=${BASE_WEAK_FPS:-}) base_chunk=()
for mode in $MODES; do
  for n in "${ranks[@]}"; do
    frames=$([ "$mode" = strong ] && echo "$strong" || echo $((weak * n)))
    arc=$WORK/$mode-f$frames-n$n.h5 log=$out/$mode-n$n.log
    w0=$(date +%s.%N)
    if ! $MPIRUN -n "$n" --oversubscribe $MPI_ARGS "$bin" run --force -s detect.backend="$BACKEND" \
      -s detect.batch="$BATCH" -s chunking.frames="$CHUNK" -s detect.replay_frames="$frames" -s detect.refine="$REFINE" $EXTRA \
      -o "$arc" "$video" > "$log" 2>&1; then
      echo "$mode, $n ranks FAILED:"; tail -20 "$log"; exit 1
    fi
    wall=$(awk -v a="$w0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
    read -r tot ch st wr rd < <(attr "$arc" times)
    echo "-- $mode, $n ranks, $frames frames: mpirun $wall s, run $tot s, chunk phase $ch s, stitch $st s, write $wr s; per rank:"
    attr "$arc" ranks | tee "$out/$mode-n$n.ranks"
    devs=$(grep -o 'device [^,]*' "$out/$mode-n$n.ranks" | sort -u | wc -l)
    [ "$BACKEND" = cpu ] || [ "$devs" = "$n" ] || echo "WARNING: $n ranks ran on $devs distinct devices"
    # Efficiency against the 1-rank run of this mode (this call's, else BASE_*_FPS).
    fps=$(awk -v f="$frames" -v t="$tot" 'BEGIN{printf "%.1f", f / t}')
    cfps=$(awk -v f="$frames" -v t="$ch" 'BEGIN{printf "%.1f", f / t}')
    [ "$n" = 1 ] && base_run[$mode]=$fps base_chunk[$mode]=$cfps
    awk -v m="$mode" -v n="$n" -v f="$frames" -v w="$wall" -v t="$tot" -v c="$ch" -v s="$st" -v wr="$wr" \
      -v rd="$rd" -v fps="$fps" -v cfps="$cfps" -v b="${base_run[$mode]:-}" -v bc="${base_chunk[$mode]:-}" 'BEGIN{
      e = b == "" ? "n/a" : sprintf("%.2f", fps / (n * b)); ec = bc == "" ? "n/a" : sprintf("%.2f", cfps / (n * bc));
      printf "| %s | %d | %d | %.1f | %.1f | %.1f | %.0f | %.0f | %s | %s | %.3f | %.3f | %.3f |\n",
        m, n, f, w, t, c, fps, fps / n, e, ec, s, wr, rd}' >> "$table"
  done
done

# Identical tables across rank counts: each strong archive against the fewest-rank one of the
# same length in WORK.
if [[ " $MODES " == *" strong "* ]]; then
  ref=$(ls "$WORK"/strong-f$strong-n*.h5 | sed -E 's/.*-n([0-9]+)\.h5$/\1 &/' | sort -n | head -1 | cut -d' ' -f2)
  for a in "$WORK"/strong-f$strong-n*.h5; do
    [ "$a" = "$ref" ] && continue
    if "$py" "$src/tests/mpi/compare_tables.py" "$ref" "$a" > "$out/compare-$(basename "$a" .h5).log" 2>&1; then
      echo "tables: $(basename "$a") == $(basename "$ref")"
    else
      echo "tables: $(basename "$a") DIFFER from $(basename "$ref"):"; head -5 "$out/compare-$(basename "$a" .h5).log"
    fi
  done
fi
cat "$table"
echo "total: $((SECONDS - t0)) s (estimate $est s); load $(cut -d' ' -f1-3 /proc/loadavg)"
