#!/usr/bin/env bash
# Within one rank: reading frames, inference and tracking overlapped (the default: a reader
# thread, the engine, a tracking thread) against tracking after each batch's inference in the
# loop's thread (NPTRACK_SERIAL_TRACKING=1, the order before the tracking thread).  One process,
# CPU backend, one chunk of 512 frames (chunking.frames=512, the default), a dense synthetic
# video (seed 5000202); detect.threads = 2 (both cores to the engine) and 1 (a core left over).
# Prints each run's wall time, peak memory and the rank's stage times from the archive's
# provenance (busy and waiting: read, detect, track; the frame loop's wall time), then checks
# that both orders gave the same tables.
#   usage: bench_overlap.sh NPTRACK_BIN OUT_DIR PYTHON [SIZE] [FRAMES] [REPEATS]
set -euo pipefail
bin=$1 out=$2 py=$3 size=${4:-512} frames=${5:-512} reps=${6:-1}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
v="$out/v${size}_$frames/video.h5"
[ -e "$v" ] || "$bin" synth -q -c "$src/config/synth/dense.cfg" -s synth.frames="$frames" \
  -s synth.width="$size" -s synth.height="$size" -s synth.seed=5000202 -o "$out/v${size}_$frames"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for rep in $(seq "$reps"); do
  for threads in 2 1; do
    for mode in serial overlap; do
      a="$out/$mode-t$threads.h5"
      echo "== $mode, detect.threads=$threads, run $rep; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
      ser=0
      [ "$mode" = serial ] && ser=1
      NPTRACK_SERIAL_TRACKING=$ser /usr/bin/time -f "wall %e s, peak memory %M KiB" "$bin" run -q --force \
        -s detect.threads=$threads -o "$a" "$v"
      "$py" -c '
import sys, h5py
a = h5py.File(sys.argv[1], "r").attrs
print(a["ranks"].decode().strip())
print(" ".join("%s %.2f s," % (k[7:-2], float(a[k])) for k in sorted(a) if k.startswith("timing_")))' "$a"
    done
    "$py" "$src/tests/mpi/compare_tables.py" "$out/serial-t$threads.h5" "$out/overlap-t$threads.h5" &&
      echo "threads $threads: serial and overlapped tables are identical"
  done
done
