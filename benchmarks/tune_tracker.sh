#!/usr/bin/env bash
# Chooses the tracker's score thresholds (track.high_score, track.new_track_score) on the
# tracking benchmark's TUNING videos (the seeds bench_tracking.py tunes trackpy on, 40 frames),
# never on its test videos: one HOTA per video and setting (docs/performance.md).
#   usage: benchmarks/tune_tracker.sh [NPTRACK_BIN] [WORKDIR]     (about 5 minutes on 2 cores)
set -euo pipefail
N=${1:-build/nptrack}
O=${2:-/tmp/tune_tracker}
P=$(cd "$(dirname "$0")/.." && pwd)/config/synth
mkdir -p "$O"
mk() { # name preset seed [overrides...]
  [ -f "$O/$1/gt.txt" ] || "$N" synth -q -c "$P/$2.cfg" -s synth.frames=40 -s "synth.seed=$3" \
    "${@:4}" -o "$O/$1"
}
mk sparse sparse 5000101
mk sintering sintering 5000102
mk redox redox 5000103 -s synth.frame_rate_hz=2.5
mk lowdose sintering 5000104 -s synth.dose_e_px=15 -s synth.drift_nm_s=5.0
for pair in "0.5 0.6" "0.5 0.5" "0.4 0.6" "0.4 0.5" "0.4 0.4" "0.35 0.4"; do
  read -r hi new <<<"$pair"
  line="high_score $hi new_track_score $new:"
  for v in sparse sintering redox lowdose; do
    a=$O/$v.$hi.$new
    "$N" run -q --force -s "track.high_score=$hi" -s "track.new_track_score=$new" -o "$a.h5" \
      "$O/$v/video.h5"
    "$N" export -q "$a.h5" --tracks "$a.txt"
    hota=$("$N" eval --gt "$O/$v/gt.txt" --pred "$a.txt" --json |
      python3 -c "import json, sys; print('%.3f' % json.load(sys.stdin)['HOTA'])")
    line="$line $v $hota"
  done
  echo "$line"
done
