#!/usr/bin/env bash
# Load balance of the chunk hand-out order on a campaign of uneven videos: nptrack run on 2 and
# 3 ranks, chunking.order in_order against largest_first, 3 runs each; per run the wall time of
# the chunk phase (timing_chunks_s) and the ranks' idle time at its end (waiting for the slowest
# rank; the "idle" of the archive's per-rank lines), summed over ranks.  Videos: nptrack synth
# dense, 64 x 64 px, 700, 420, 300, 200 and 150 frames (seeds 5000301-5000305); chunks of 128
# frames, overlap 48; CPU backend, one thread per rank.
#   usage: bench_chunk_order.sh NPTRACK_BIN OUT_DIR [PYTHON]
set -euo pipefail
bin=$1 out=$2 py=${3:-python3}
src=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
videos=()
i=1
for t in 700 420 300 200 150; do
  d=$out/v$i
  [ -e "$d/video.h5" ] || "$bin" synth -q -c "$src/config/synth/dense.cfg" -s synth.frames=$t \
    -s synth.width=64 -s synth.height=64 -s synth.seed=$((5000300 + i)) -o "$d"
  videos+=("$d/video.h5")
  i=$((i + 1))
done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 2 3; do
  for order in in_order largest_first; do
    for rep in 1 2 3; do
      mpiexec -n $n --oversubscribe "$bin" run -q --force -s detect.threads=1 -s chunking.frames=128 \
        -s chunking.order=$order -o "$out/r.h5" "${videos[@]}"
      "$py" -c '
import re, sys, h5py
a = h5py.File(sys.argv[1]).attrs
idle = sum(float(x) for x in re.findall(r"idle ([0-9.]+) s", a["ranks"].decode()))
print("ranks %s %-13s run %s: chunk phase %.3f s, idle summed over ranks %.3f s" % (sys.argv[2], sys.argv[3], sys.argv[4], a["timing_chunks_s"], idle))' \
        "$out/r.h5" $n $order $rep
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
