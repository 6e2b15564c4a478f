#!/usr/bin/env bash
# Archive writing of `nptrack run` (the phase after stitching: the root's tables, then the
# detections columns written in parallel by the ranks that hold the chunks), on 1 and 2 ranks.
# The chunk phase runs once: its part files are kept (the root is killed at stitching with the
# test-only NPTRACK_TEST_FAIL=0:kill-stitch) and every measured run takes them with --resume, so
# it re-reads the frames for their hashes but runs no inference; the figures are the archive's
# timing_write_s, timing_write_tables_s and timing_write_rows_s.
#   Video: nptrack synth, dense preset, FRAMES frames of 256 x 256 px (seed 5000201); chunks of
#   128 frames; CPU backend, one thread per rank.  archive.embeddings = track and all.
#   OTHER_BIN (optional): another nptrack (e.g. an older commit's, built elsewhere) timed on the
#   same parts alone, its timing_write_s only.
#   usage: bench_archive_write.sh NPTRACK_BIN OUT_DIR [PYTHON] [FRAMES] [REPS] [OTHER_BIN]
set -euo pipefail
bin=$1 out=$2 py=${3:-python3} frames=${4:-1200} reps=${5:-3} other=${6:-}
src=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mkdir -p "$out"
set_=(-s detect.threads=1 -s chunking.frames=128)
v=$out/v$frames/video.h5
[ -e "$v" ] || "$bin" synth -q -c "$src/config/synth/dense.cfg" -s synth.frames="$frames" \
  -s synth.width=256 -s synth.height=256 -s synth.seed=5000201 -o "$out/v$frames"
parts=$out/p$frames.h5.parts
if [ ! -d "$parts" ]; then
  NPTRACK_TEST_FAIL=0:kill-stitch mpiexec -n 2 --oversubscribe "$bin" run -q "${set_[@]}" \
    -o "$out/p$frames.h5" "$v" >/dev/null 2>&1 || true
  ls "$parts"/chunk_*.h5 >/dev/null
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for emb in track all; do
  for rep in $(seq "$reps"); do
    for n in 1 2 other; do
      [ "$n" = other ] && [ -z "$other" ] && continue
      rm -rf "$out/w.h5" "$out/w.h5.parts"
      cp -r "$parts" "$out/w.h5.parts"
      if [ "$n" = other ]; then
        "$other" run -q --resume "${set_[@]}" -s archive.embeddings=$emb -o "$out/w.h5" "$v"
      else
        mpiexec -n $n --oversubscribe "$bin" run -q --resume "${set_[@]}" -s archive.embeddings=$emb \
          -o "$out/w.h5" "$v"
      fi
      "$py" - "$out/w.h5" "$emb" "$n" "$rep" <<'PY'
import os, sys, h5py
f = h5py.File(sys.argv[1], "r")
a, v = f.attrs, f["videos/video"].attrs
parts = ", tables %.3f, rows %.3f" % (a["timing_write_tables_s"], a["timing_write_rows_s"]) \
    if "timing_write_rows_s" in a else ""
print("embeddings %-5s ranks %-5s run %s: rows %d, file %.1f MB, write %.3f s%s; load %s"
      % (sys.argv[2], sys.argv[3], sys.argv[4], v["n_detections"], os.path.getsize(sys.argv[1]) / 1e6,
         a["timing_write_s"], parts, open("/proc/loadavg").read().split()[0]))
PY
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
