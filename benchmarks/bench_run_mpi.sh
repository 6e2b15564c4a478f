#!/usr/bin/env bash
# nptrack run under MPI on this machine's CPUs: peak memory per rank against the video's length,
# and strong scaling from 1 to 2 ranks.  Videos: nptrack synth, dense preset, 64 x 64 px (seed
# 5000201); CPU backend, one thread per rank (detect.threads=1), chunks of 128 frames with the
# default overlap (48).
#   memory:  2 ranks on T = 400, 1600 and 6400 frames; each rank's maximum resident set size
#            (GNU time's %M) — rank 0 also stitches and writes the archive.
#   scaling: 688 frames = 8 chunks (so 2 ranks get 4 each), 1 rank then 2 ranks, 3 runs each,
#            the best wall time (timing_total_s) and the stitching time (timing_stitch_s) from
#            the archive; efficiency = T1 / (2 T2).
#   usage: bench_run_mpi.sh NPTRACK_BIN OUT_DIR [PYTHON] [MEMORY_REPEATS] [SKIP_SCALING]
#   (MEMORY_REPEATS, default 1: runs per length, for the spread of one length's peak memory;
#   SKIP_SCALING=1: the memory part only)
set -euo pipefail
bin=$1 out=$2 py=${3:-python3} reps=${4:-1} skip_scaling=${5:-0}
src=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
set_=(-s detect.threads=1 -s chunking.frames=128)
video() { # video FRAMES
  [ -e "$out/v$1/video.h5" ] || "$bin" synth -q -c "$src/config/synth/dense.cfg" -s synth.frames="$1" \
    -s synth.width=64 -s synth.height=64 -s synth.seed=5000201 -o "$out/v$1"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## peak memory per rank (2 ranks)"
for rep in $(seq "$reps"); do
  for t in 400 1600 6400; do
    video $t
    mpiexec -n 2 --oversubscribe sh -c '/usr/bin/time -f "T=$0 rank $OMPI_COMM_WORLD_RANK: %M KiB" "$@"' \
      $t "$bin" run -q --force "${set_[@]}" -o "$out/m$t.h5" "$out/v$t/video.h5" 2>&1 | grep KiB | sort
  done
done
[ "$skip_scaling" = 1 ] && exit 0
echo "## strong scaling"
video 688
for n in 1 2; do
  best=
  for rep in 1 2 3; do
    mpiexec -n $n --oversubscribe "$bin" run -q --force "${set_[@]}" -o "$out/s$n.h5" "$out/v688/video.h5"
    t=$("$py" -c 'import h5py,sys; a=h5py.File(sys.argv[1]).attrs; print("%.3f %.4f" % (a["timing_total_s"], a["timing_stitch_s"]))' "$out/s$n.h5")
    echo "ranks $n run $rep: total_s stitch_s = $t"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
