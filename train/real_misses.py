"""Lists, frame by frame, what a model misses and invents on the real labelled TEM images: each
missed label (box, distance of its box from the image edge, best IoU of any detection) and each
false positive (box, score, best IoU of any label), then TP / FP / FN and F1.  Detection is
PyTorch's (train/evaluate.py's detect(), the model's decoding; it gives the C engine's F1 on the
shipped model); matching as evaluate.py, one to one at IoU >= 0.5, both sides clipped.

    python3 train/real_misses.py --model models/nptrack.h5 [--threshold 0.3] [--real DIR]

Only the tune half is listed: the held-out half is scored once per candidate by evaluate.py and
never looked at box by box (docs/model.md, Validation and steering)."""

import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detscore  # noqa: E402
import evaluate  # noqa: E402

REAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                    "real-tem", "msa-train")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threshold", type=float, default=None, help="default: the model's own")
    ap.add_argument("--real", default=REAL, help="folder with images.h5 and gt.txt")
    a = ap.parse_args()
    with h5py.File(os.path.join(a.real, "images.h5"), "r") as f:
        frames = f["frames"][...]
    _, h, w = frames.shape
    gts = detscore.load_mot(os.path.join(a.real, "gt.txt"))
    net = evaluate.load_net(model=a.model)
    dets = evaluate.detect(net, frames, "cpu", threshold=a.threshold)
    tp = fp = fn = 0
    for t in evaluate.REAL_TUNE:
        boxes, scores, _ = dets[t - 1]
        g = detscore.clip_boxes(np.asarray(gts.get(t, np.zeros((0, 4)))), w, h)
        d = detscore.clip_boxes(boxes, w, h)
        md, mg = detscore.match_frame(d, g)
        iou = detscore.iou_matrix(d, g) if len(d) and len(g) else np.zeros((len(d), len(g)))
        tp, fp, fn = tp + len(md), fp + len(d) - len(md), fn + len(g) - len(mg)
        for j in sorted(set(range(len(g))) - set(mg.tolist())):
            x, y, bw, bh = g[j]
            edge = min(x, y, w - x - bw, h - y - bh)
            best = iou[:, j].max() if len(d) else 0.0
            print(f"frame {t:2d} missed  {x:6.1f} {y:6.1f} {bw:5.1f} x {bh:5.1f}  "
                  f"edge {edge:5.1f} px  best IoU {best:.2f}")
        for i in sorted(set(range(len(d))) - set(md.tolist())):
            x, y, bw, bh = d[i]
            best = iou[i].max() if len(g) else 0.0
            print(f"frame {t:2d} false   {x:6.1f} {y:6.1f} {bw:5.1f} x {bh:5.1f}  "
                  f"score {scores[i]:.2f}  best IoU {best:.2f}")
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    print(f"tune half: TP {tp} FP {fp} FN {fn} F1 {f1:.3f}")


if __name__ == "__main__":
    main()
