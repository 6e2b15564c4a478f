"""Draws the model card's picture of typical misses (docs/img/model_misses.png): crops of
synthetic validation frames around missed particles and false positives, ground truth in green,
the C engine's detections in red (boxes clipped to the frame, matched one to one at IoU 0.5, as
train/evaluate.py scores them).

    python3 train/draw_misses.py --engine build/nptrack --synth /tmp/val --out docs/img/model_misses.png

For each size bin (<= 8, 8-30, > 30 px) it takes the video of the validation set with the most
misses of that bin among particles a person can see (d' >= 5, train/visibility.py), and crops
around its largest cluster of misses; a fourth panel shows the frame with the most false
positives.  Missed ground truth is green, false positives red, matched detections dark yellow.  Frame 1 of each video; the selection is deterministic.  Needs numpy, h5py, scipy
and Pillow (no PyTorch).
"""

import argparse
import json
import os
import subprocess
import sys

import h5py
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detscore  # noqa: E402
import visibility  # noqa: E402

SIDE = 384   # panel side in pixels; the crop around the misses is 48, 96 or 192 input pixels


def frame_one(engine, model, video, scratch):
    out = os.path.join(scratch, "draw_misses_dets.h5")
    cmd = [engine, "detect", "-q", "-s", "detect.last_frame=1", "-o", out, video]
    if model:
        cmd[3:3] = ["-s", f"detect.model={model}"]
    subprocess.run(cmd, check=True)
    return detscore.load_nptrack_dets(out)[1].boxes


def analyse(engine, model, root, scratch):
    """Per video: frame 1, ground truth, detections, the missed and visible ground truth, the
    false positives."""
    plan = json.load(open(os.path.join(root, "plan.json")))["videos"]
    out = []
    for v in plan:
        d = os.path.join(root, v["name"])
        with h5py.File(os.path.join(d, "video.h5"), "r") as f:
            img = f["/frames"][0].astype(np.float64)
            attrs = {k: float(x) for k, x in f.attrs.items() if k.startswith("synth.")}
        gt = np.loadtxt(os.path.join(d, "gt.txt"), delimiter=",", ndmin=2).reshape(-1, 9)
        gt = gt[gt[:, 0] == 1]
        h, w = img.shape
        g = detscore.clip_boxes(gt[:, 2:6], w, h)
        det = detscore.clip_boxes(frame_one(engine, model, os.path.join(d, "video.h5"), scratch),
                                  w, h)
        md, mg = detscore.match_frame(det, g) if len(det) and len(g) else (
            np.zeros(0, np.int64), np.zeros(0, np.int64))
        missed = np.ones(len(g), bool)
        missed[mg] = False
        fp = np.ones(len(det), bool)
        fp[md] = False
        dp = visibility.detectability(gt[:, 2:6], gt[:, 7], attrs) if len(gt) else np.zeros(0)
        out.append(dict(name=v["name"], family=v["family"], dose=v.get("dose"), img=img,
                        gt=g, det=det, missed=missed, visible=dp >= 5, fp=fp))
    return out


def densest(points, side):
    """The centre of the side x side window (on a grid of half-side steps) holding most points."""
    best, centre = -1, points[0]
    for p in points:
        n = np.sum(np.all(np.abs(points - p) <= side / 2, axis=1))
        if n > best:
            best, centre = n, p
    return centre


def panel(v, centre, title, crop_side):
    """A crop of crop_side input pixels around centre, enlarged to SIDE: missed ground truth in
    green, false positives in red, matched detections in dark yellow."""
    img = v["img"]
    h, w = img.shape
    CROP, ZOOM = crop_side, SIDE // crop_side
    x0 = int(np.clip(round(centre[0] - CROP / 2), 0, max(0, w - CROP)))
    y0 = int(np.clip(round(centre[1] - CROP / 2), 0, max(0, h - CROP)))
    crop = img[y0:y0 + CROP, x0:x0 + CROP]
    lo, hi = np.percentile(crop, [0.5, 99.5])
    g8 = (255 * np.clip((crop - lo) / max(hi - lo, 1e-9), 0, 1)).astype(np.uint8)
    pic = Image.fromarray(g8).resize((CROP * ZOOM, CROP * ZOOM), Image.NEAREST).convert("RGB")
    dr = ImageDraw.Draw(pic)

    def box(b, colour):
        x, y, bw, bh = b
        dr.rectangle([ZOOM * (x - x0 + 0.5), ZOOM * (y - y0 + 0.5),
                      ZOOM * (x + bw - x0 + 0.5), ZOOM * (y + bh - y0 + 0.5)], outline=colour)

    for b in v["det"][~v["fp"]]:
        box(b, (150, 130, 0))
    for b in v["gt"][v["missed"]]:
        box(b, (0, 230, 0))
    for b in v["det"][v["fp"]]:
        box(b, (255, 40, 40))
    dr.rectangle([0, 0, SIDE, 14], fill=(0, 0, 0))
    dr.text((3, 1), title, fill=(255, 255, 255))
    return pic


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, help="the nptrack binary")
    ap.add_argument("--model", default=None, help="model file (default: the shipped one)")
    ap.add_argument("--synth", required=True, help="a gen_data.py --val set (plan.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--scratch", default="/tmp")
    a = ap.parse_args()
    vids = analyse(a.engine, a.model, a.synth, a.scratch)
    panels = []
    for name, lo, hi, crop in (("<= 8 px", 0, 8, 48), ("8-30 px", 8, 30, 96),
                               ("> 30 px", 30, 1e9, 192)):
        def sel(v):
            side = np.maximum(v["gt"][:, 2], v["gt"][:, 3]) if len(v["gt"]) else np.zeros(0)
            return v["missed"] & v["visible"] & (side > lo) & (side <= hi)
        v = max(vids, key=lambda v: (int(sel(v).sum()), v["name"]))
        m = sel(v)
        if not m.any():
            continue
        c = v["gt"][m, :2] + v["gt"][m, 2:] / 2
        panels.append(panel(v, densest(c, crop), f"{v['name']} {v['family']}, dose "
                            f"{v['dose']}: {int(m.sum())} visible {name} missed", crop))
    v = max(vids, key=lambda v: (int(v["fp"].sum()), v["name"]))
    if v["fp"].any():
        c = v["det"][v["fp"], :2] + v["det"][v["fp"], 2:] / 2
        panels.append(panel(v, densest(c, 96), f"{v['name']} {v['family']}, dose "
                            f"{v['dose']}: {int(v['fp'].sum())} false positives", 96))
    side = SIDE
    sheet = Image.new("RGB", (2 * side + 4, ((len(panels) + 1) // 2) * (side + 4)), (255,) * 3)
    for k, p in enumerate(panels):
        sheet.paste(p, ((k % 2) * (side + 4), (k // 2) * (side + 4)))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    sheet.save(a.out, optimize=True)
    print(f"draw_misses: {len(panels)} panels in {a.out}")


if __name__ == "__main__":
    main()
