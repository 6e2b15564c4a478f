#!/usr/bin/env python3
"""Draws a grid of frames of an `nptrack synth` output directory with their ground-truth boxes.

Boxes: green for metal (class 1), orange for oxide (class 2); children of a merge or split that
starts in a shown frame are drawn thicker, in magenta.  Usage:

    python3 scripts/synth_montage.py DIR -o montage.png [--frames 1,50,100,200] [--cols 2]
        [--crop X,Y,W,H] [--zoom X,Y,W,H] [--size 512] [--title TEXT] [--no-boxes]

--crop shows the same region of every frame (e.g. a dense monolayer), scaled to the panel size;
--zoom adds one more panel: that region of the last frame shown, without boxes (to see the
texture, fringes and shells; or the whole frame, when --crop zooms in).  The PNG has a 256-colour palette, to stay small.
Needs numpy, h5py and pillow.
"""
import argparse
import csv
import os
import sys

import h5py
import numpy as np
from PIL import Image, ImageDraw

GREEN = (40, 220, 60)
ORANGE = (255, 140, 0)
MAGENTA = (255, 0, 200)


def read_gt(path):
    rows = {}
    with open(path) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 9:
                continue
            fr = int(p[0])
            rows.setdefault(fr, []).append(
                (int(p[1]), float(p[2]), float(p[3]), float(p[4]), float(p[5]), int(p[7])))
    return rows


def read_events(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for r in csv.DictReader(f):
            kids = [int(x) for x in r["children"].split()]
            out.setdefault(int(r["frame"]), []).append((r["type"], kids))
    return out


def to_grey8(frame):
    f = frame.astype(np.float64)
    if frame.dtype != np.uint8:
        lo, hi = np.percentile(f, [0.5, 99.5])
        f = (f - lo) / max(hi - lo, 1e-9) * 255.0
    return np.clip(f, 0, 255).astype(np.uint8)


def panel(frame, boxes, events, crop, size, label, draw_boxes):
    h, w = frame.shape
    x0, y0, cw, ch = crop if crop else (0, 0, w, h)
    img = Image.fromarray(to_grey8(frame[y0:y0 + ch, x0:x0 + cw])).convert("RGB")
    s = size / max(cw, ch)
    img = img.resize((int(round(cw * s)), int(round(ch * s))), Image.NEAREST if s >= 2 else
                     Image.BILINEAR)
    d = ImageDraw.Draw(img)
    kids = {k for _, ks in events for k in ks}
    if draw_boxes:
        for (tid, bx, by, bw, bh, cls) in boxes:
            # Box edges in continuous coordinates: pixel (i, j) covers [j-0.5, j+0.5].
            l, t = (bx + 0.5 - x0) * s, (by + 0.5 - y0) * s
            r, b = l + bw * s, t + bh * s
            if r < 0 or b < 0 or l > img.width or t > img.height:
                continue
            colour = MAGENTA if tid in kids else (GREEN if cls == 1 else ORANGE)
            d.rectangle([l, t, r, b], outline=colour, width=3 if tid in kids else 1)
    n_ev = ", ".join(f"{t}" for t, _ in events)
    text = label + (f"  [{n_ev}]" if n_ev else "")
    d.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 80))
    return img


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--frames", help="1-based frame numbers, comma-separated")
    ap.add_argument("--cols", type=int, default=2)
    ap.add_argument("--crop", help="X,Y,W,H region in pixels")
    ap.add_argument("--zoom", help="X,Y,W,H region of the last frame, as an extra panel")
    ap.add_argument("--size", type=int, default=512, help="panel size in pixels")
    ap.add_argument("--title", default="")
    ap.add_argument("--no-boxes", action="store_true")
    a = ap.parse_args(argv)

    with h5py.File(os.path.join(a.dir, "video.h5"), "r") as f:
        frames = f["/frames"]
        T = frames.shape[0]
        if a.frames:
            want = [int(x) for x in a.frames.split(",")]
        else:
            want = sorted({1, T // 3 + 1, 2 * T // 3 + 1, T})
        px = frames.attrs.get("pixel_size_nm", float("nan"))
        shown = [(n, frames[n - 1]) for n in want if 1 <= n <= T]
    gt = read_gt(os.path.join(a.dir, "gt.txt"))
    ev = read_events(os.path.join(a.dir, "events.csv"))
    crop = tuple(int(x) for x in a.crop.split(",")) if a.crop else None

    panels = [panel(fr, gt.get(n, []), ev.get(n, []), crop, a.size,
                    f"frame {n}: {len(gt.get(n, []))} boxes", not a.no_boxes)
              for n, fr in shown]
    if a.zoom:
        n, fr = shown[-1]
        z = tuple(int(x) for x in a.zoom.split(","))
        panels.append(panel(fr, [], [], z, a.size,
                            f"frame {n}, x {z[0]}-{z[0] + z[2]}, y {z[1]}-{z[1] + z[3]}", False))
    cols = min(a.cols, len(panels))
    rows = (len(panels) + cols - 1) // cols
    pw = max(p.width for p in panels)
    ph = max(p.height for p in panels)
    top = 18 if a.title else 0
    out = Image.new("RGB", (cols * pw + (cols - 1) * 4, top + rows * ph + (rows - 1) * 4),
                    (40, 40, 40))
    if a.title:
        ImageDraw.Draw(out).text((4, 3), f"{a.title}  ({px:.3g} nm/px)", fill=(255, 255, 255))
    for k, p in enumerate(panels):
        out.paste(p, ((k % cols) * (pw + 4), top + (k // cols) * (ph + 4)))
    out.convert("P", palette=Image.ADAPTIVE, colors=256).save(a.out, optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
