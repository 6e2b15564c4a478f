"""Exports a training checkpoint as the model nptrack ships (models/nptrack.h5).

    python3 train/ship.py --ckpt ckpt --out models/nptrack.h5 --threshold 0.35 --suppress 0.5

The decoding defaults (score threshold, centre-distance suppression ratio) are chosen on the
tune half of the real images and the synthetic validation set (docs/model.md says how); the
provenance attribute records them with the training data recipe, the steps and the commit.
"""

import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as npt_model  # noqa: E402
from export import read_model, write_model  # noqa: E402

# The training run of the shipped model: segments of train.py, each on freshly generated data.
DATA_SEGMENTS = [
    dict(seed=1, videos=800, families="general, large, dense, lowdose", steps="0-12488"),
    dict(seed=20001, videos=800, families="general, large, dense, lowdose", steps="12488-24542"),
    dict(seed=40001, videos=900, families="general, large, faint, dense, lowdose",
         steps="24542-36987 (schedule restarted for 50000 steps)"),
    dict(seed=60001, videos=900, families="general, large, faint, dense, lowdose",
         steps="36987-47712"),
    dict(seed=80001, videos=900, families="general, large, faint, dense, lowdose",
         steps="47712-60000 (schedule restarted for 60000 steps)"),
    # Fine-tuning (2026-11-25): zoom capped so the frame's median particle stays <= 96 px in a
    # crop, particles cut by the crop border kept down to 16 px^2 in view, a new warm-up and
    # cosine from 1e-3 over 60000-88500 (train.py --restart-at 60000 --lr 1e-3).
    dict(seed=100001, videos=900, families="general, large, faint, dense, lowdose",
         steps="60000-69593 (fine-tuning restart: 60000-88500, lr 1e-3)"),
    dict(seed=120001, videos=900, families="general, large, faint, dense, lowdose",
         steps="69593-88500 (two segments on the same data: the second found it in place)"),
]


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.25)
    ap.add_argument("--suppress", type=float, default=0.5)
    a = ap.parse_args()
    ck = torch.load(os.path.join(a.ckpt, "model.pt"), map_location="cpu")
    net = npt_model.build(score_threshold=a.threshold, suppress_ratio=a.suppress)
    net.load_state_dict(ck["model"])
    net.eval()
    prov = dict(model="npt-s2", arch=net.meta["arch"], code_commit=git_commit(),
                steps=ck["step"], train_args=ck["args"],
                data=dict(generator="train/gen_data.py (nptrack synth, config/synth/train.cfg "
                                    "+ families)", frames_per_video=24, frame_step=2,
                          size=512, segments=DATA_SEGMENTS),
                decode=dict(score_threshold=a.threshold, suppress_ratio=a.suppress,
                            chosen_on="real tune half {2,3,5,8,9} + synthetic validation"),
                card="docs/model.md")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_model(net, a.out, prov)
    back = read_model(a.out)  # the file reads back into the same network
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        d = (back(x)["heatmap"] - net(x)["heatmap"]).abs().max().item()
    print(f"ship: {a.out} ({os.path.getsize(a.out) / 1e6:.2f} MB), step {ck['step']}, "
          f"read-back heatmap difference {d:.2e}")


if __name__ == "__main__":
    main()
