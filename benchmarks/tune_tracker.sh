#!/usr/bin/env bash
# Chooses the tracker's settings on the tracking benchmark's TUNING seeds, never on its test
# videos: 150-frame videos of the suite's four kinds at bench_tracking.py's tuning seeds
# (5000101-5000104), at 5000111-5000114, seven more sparse ones (5000121-5000181, every 10) and
# two more redox ones (5000123, 5000133), detected once down to score 0.1 (`nptrack detect`),
# then tracked with each setting by bench_retrack (the tracker alone, fed as `nptrack run` feeds
# it: detections down to track.low_score) and scored by `nptrack eval`.  Prints HOTA per video,
# the mean HOTA and IDF1 and the suite-weighted mean (the sparse videos weighing 2 of 5, the
# others 1 of 5 per kind, as in the suite); docs/performance.md records the runs.
#   usage: benchmarks/tune_tracker.sh [BUILD_DIR] [WORKDIR] [SETTING ...]
# Each SETTING is one line to compare: space-separated overrides ("track.split_shrink=0"), or
# "keep=S ..." to feed the tracker only detections scoring >= S (0.35: the detector's threshold,
# as before nptrack run decoded down to track.low_score).  Without any, the comparisons that
# chose the current defaults.  About 8 minutes on 2 cores the first time (synth + detect), then
# about 15 seconds per setting.
set -euo pipefail
B=${1:-build}
O=${2:-/tmp/tune_tracker}
shift $(($# < 2 ? $# : 2))
P=$(cd "$(dirname "$0")/.." && pwd)/config/synth
N=$B/nptrack
mkdir -p "$O"
mk() { # name preset seed [overrides...]
  [ -f "$O/$1/gt.txt" ] || "$N" synth -q -c "$P/$2.cfg" -s synth.frames=150 -s "synth.seed=$3" \
    "${@:4}" -o "$O/$1"
  [ -f "$O/$1.dets.h5" ] || "$N" detect -q -s detect.score_threshold=0.1 -o "$O/$1.dets.h5" \
    "$O/$1/video.h5"
}
mk sparse sparse 5000101
mk sintering sintering 5000102
mk redox redox 5000103 -s synth.frame_rate_hz=2.5
mk lowdose sintering 5000104 -s synth.dose_e_px=15 -s synth.drift_nm_s=5.0
mk sparse2 sparse 5000111
mk sintering2 sintering 5000112
mk redox2 redox 5000113 -s synth.frame_rate_hz=2.5
mk lowdose2 sintering 5000114 -s synth.dose_e_px=15 -s synth.drift_nm_s=5.0
mk sparse3 sparse 5000121
mk sparse4 sparse 5000131
mk sparse5 sparse 5000141
mk sparse6 sparse 5000151
mk sparse7 sparse 5000161
mk sparse8 sparse 5000171
mk sparse9 sparse 5000181
mk redox3 redox 5000123 -s synth.frame_rate_hz=2.5
mk redox4 redox 5000133 -s synth.frame_rate_hz=2.5
VIDEOS="sparse sintering redox lowdose sparse2 sintering2 redox2 lowdose2 sparse3 sparse4 sparse5
  sparse6 sparse7 sparse8 sparse9 redox3 redox4"

if [ $# -eq 0 ]; then
  set -- "keep=0.35 track.split_shrink=0 track.low_track_score=0 track.duplicate_iou=1 track.size_momentum=0" \
    "keep=0.35 track.low_track_score=0 track.duplicate_iou=1 track.size_momentum=0" \
    "track.low_track_score=0 track.duplicate_iou=1 track.size_momentum=0" \
    "track.duplicate_iou=1 track.size_momentum=0" \
    "track.split_reach=1.5" "track.split_shrink=0.7" "track.split_shrink=0.9" \
    "track.low_track_score=0.5" "track.size_momentum=0" "track.size_momentum=0.7" \
    "track.size_momentum=0.9" "track.merge_cover=0.15 track.merge_growth=1.1" ""
fi
for setting in "$@"; do
  keep=0.1
  args=()
  for a in $setting; do
    case $a in
    keep=*) keep=${a#keep=} ;;
    *) args+=("$a") ;;
    esac
  done
  line=""
  for v in $VIDEOS; do
    "$B/benchmarks/bench_retrack" "$O/$v.dets.h5" "$keep" "$O/$v.txt" ${args[@]+"${args[@]}"} 2>/dev/null
    line="$line $("$N" eval --gt "$O/$v/gt.txt" --pred "$O/$v.txt" --json |
      python3 -c "import json, sys; m = json.load(sys.stdin); print('%.4f,%.4f' % (m['HOTA'], m['IDF1']))")"
  done
  python3 - "${setting:-defaults}" $VIDEOS -- $line <<'PY'
import sys
a = sys.argv[1:]
names = a[1:a.index("--")]
vals = [tuple(map(float, x.split(","))) for x in a[a.index("--") + 1:]]
# the suite: 2 sparse videos of 5, one of each other kind
kind = lambda n: n.rstrip("0123456789")
count = {k: sum(kind(n) == k for n in names) for k in set(map(kind, names))}
w = [(2.0 if kind(n) == "sparse" else 1.0) / count[kind(n)] for n in names]
mean = lambda k: sum(v[k] for v in vals) / len(vals)
wmean = sum(wi * v[0] for wi, v in zip(w, vals)) / sum(w)
print("%s:\n  HOTA %s\n  mean HOTA %.4f IDF1 %.4f; suite-weighted HOTA %.4f" % (
    a[0], " ".join("%s %.3f" % (n, v[0]) for n, v in zip(names, vals)), mean(0), mean(1), wmean))
PY
done
