#!/usr/bin/env bash
# One fine-tuning segment on the `device` GPU machine, within one 10-minute call.  Makes its data
# there with the bundled nptrack synth, starts from the shipped model (first segment) or from the
# checkpoint carried back in (later segments), and writes the checkpoint and logs to $OUT.
#
#   here:  cmake --build build && ../shared/tools/device-bundle -o .device-train build/nptrack
#          (cd .device-train && tar -cJf lib.tar.xz lib && rm -rf lib)   # stay under 64 MiB
#   there: [EXTRA="train.py options"] [BUDGET=seconds] [LR=peak lr, default 6e-4] \
#          train/device_segment.sh DATA_SEED TOTAL_STEPS TRAIN_SEED
#          with carry [".device-train"]; for the next segment copy $OUT/ckpt/* to .device-train/ckpt/
#
# The 2026-12-07 experiment (docs/model.md) ran `train/device_segment.sh 140001 108000 11` and
# `BUDGET=330 train/device_segment.sh 160001 108000 12` with the default EXTRA (then called
# .device-train/seg.sh; the second call reused the first call's data, which this version avoids
# by giving each data seed its own folder).
set -euo pipefail
START=$(date +%s)
B=$PWD/.device-train
mkdir -p /tmp/dev && tar -xJf "$B/lib.tar.xz" -C /tmp/dev
export LD_LIBRARY_PATH=/tmp/dev/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
data=/tmp/data-$1
python3 train/gen_data.py --nptrack "$B/bin/nptrack" --out "$data" --videos "${VIDEOS:-700}" \
  --frames 24 --seed "$1" > "$OUT/gen.log" 2>&1 || { tail -20 "$OUT/gen.log"; exit 1; }
echo "gen: $(($(date +%s) - START)) s"
if [[ -f $B/ckpt/model.pt ]]; then init=(--resume "$B/ckpt"); else init=(--init-model models/nptrack.h5); fi
budget=$((${BUDGET:-565} - ($(date +%s) - START)))
# shellcheck disable=SC2086  # EXTRA is a list of options
python3 train/train.py --data "$data" --out "$OUT/ckpt" "${init[@]}" --freeze-bn \
  --restart-at 88500 --lr "${LR:-6e-4}" --steps "$2" --time-budget "$budget" --seed "$3" \
  ${EXTRA:---visible-k 5 --background-k 3 --border-p 0.3} 2>&1 | tee "$OUT/train.log" | grep -v '^{' || true
tail -3 "$OUT/ckpt/log.jsonl"
echo "total: $(($(date +%s) - START)) s"
