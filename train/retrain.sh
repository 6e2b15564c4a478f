#!/usr/bin/env bash
# Retrains the shipped detector from scratch, on one GPU, in resumable segments:
#
#   train/retrain.sh build/nptrack /scratch/npt-train            # then, when it has finished:
#   python3 train/ship.py --ckpt /scratch/npt-train/ckpt --out models/nptrack.h5
#
# Each segment makes 900 fresh synthetic videos (train/gen_data.py, seeds 1, 20001, 40001, ...)
# and trains 12 000 steps on them; the learning rate follows one cosine over all segments.
# Run it again after an interruption (a Slurm time limit, a 10-minute device call): finished
# segments are skipped and the last checkpoint is resumed.  Needs python3 with torch, h5py,
# numpy and a GPU (about 24 steps/s, ~9 minutes a segment on an H100; 30 GB of GPU memory).
# SEGMENTS and STEPS_PER_SEGMENT may be set in the environment.
set -euo pipefail
NPTRACK=${1:?usage: train/retrain.sh NPTRACK_BINARY WORKDIR}
WORK=${2:?usage: train/retrain.sh NPTRACK_BINARY WORKDIR}
SEGMENTS=${SEGMENTS:-5}
PER=${STEPS_PER_SEGMENT:-12000}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
TOTAL=$((SEGMENTS * PER))
mkdir -p "$WORK/ckpt"
for ((k = 0; k < SEGMENTS; k++)); do
  stop=$(((k + 1) * PER))
  done_steps=0
  if [[ -f $WORK/ckpt/model.pt ]]; then
    done_steps=$("$PY" -c "import torch,sys; print(torch.load(sys.argv[1], map_location='cpu')['step'])" "$WORK/ckpt/model.pt")
  fi
  if ((done_steps >= stop)); then
    continue
  fi
  data=$WORK/data
  rm -rf "$data"
  "$PY" "$HERE/gen_data.py" --nptrack "$NPTRACK" --out "$data" --videos 900 --frames 24 \
    --seed $((1 + 20000 * k))
  "$PY" "$HERE/train.py" --data "$data" --out "$WORK/ckpt" --resume "$WORK/ckpt" \
    --steps "$TOTAL" --stop-at "$stop" --seed $((k + 1))
done
echo "retrain: $TOTAL steps done; export with: $PY $HERE/ship.py --ckpt $WORK/ckpt --out models/nptrack.h5"
