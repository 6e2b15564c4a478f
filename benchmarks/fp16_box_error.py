#!/usr/bin/env python3
"""Box and score differences between two detection sets of the same video, per box-size bin:
the CPU backend in fp32 against the same backend with the cudnn backend's fp16 storage emulated
(NPTRACK_CPU_FP16, src/nn/cpu/cpu_fp16.c), or against the cudnn backend itself.

Reads `nptrack detect` files (/detections) or `nptrack run` archives (/videos/NAME/detections).
Detections are paired as tests/gpu/compare_runs.py pairs them (per frame and class, nearest
centres first, at most 1 px apart).  Prints, per bin of the reference box's larger side: pairs,
the largest and the 99.9 % quantile of the box difference (max over x, y, w, h) in px, the same
relative to the box's larger side, how many pairs exceed 0.1 px, the largest score difference,
and the detections left unpaired away from the threshold (more than 0.02 from it).  Pairs whose
centres differ by more than 0.05 px are counted apart ("moved": a peak that went to a
neighbouring cell of nearly equal heatmap value; at a fixed cell the centre moves by the offset
head's error, a few thousandths of a pixel), with the largest box difference of the others
("fixed px").

usage: fp16_box_error.py REF.h5 TEST.h5 [THRESHOLD]
"""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gpu"))
from compare_runs import pairs_of  # noqa: E402  (the test's pairing, exactly)

MARGIN, TOL = 0.02, 0.1
BINS = (0, 16, 32, 64, 128, 1e9)
COLS = ("frame", "x", "y", "w", "h", "score", "class")


def load(path):
    with h5py.File(path, "r") as f:
        if "detections" in f:
            d = f["detections"]
        else:
            (name,) = list(f["videos"].keys())
            d = f[f"videos/{name}/detections"]
        return {c: d[c][()] for c in COLS}


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    thr = float(sys.argv[3]) if len(sys.argv) > 3 else 0.35
    p = pairs_of(a, b)
    pa, pb = p[:, 0], p[:, 1]
    d = np.max(np.stack([np.abs(a[k][pa] - b[k][pb]) for k in ("x", "y", "w", "h")]), axis=0)
    side = np.maximum(a["w"][pa], a["h"][pa])
    ds = np.abs(a["score"][pa] - b["score"][pb])
    moved = np.hypot((a["x"][pa] + a["w"][pa] / 2) - (b["x"][pb] + b["w"][pb] / 2),
                     (a["y"][pa] + a["h"][pa] / 2) - (b["y"][pb] + b["h"][pb] / 2)) > 0.05
    lone_a = np.setdiff1d(np.arange(len(a["frame"])), pa)
    lone_b = np.setdiff1d(np.arange(len(b["frame"])), pb)
    far_a = int(np.sum(np.abs(a["score"][lone_a] - thr) > MARGIN))
    far_b = int(np.sum(np.abs(b["score"][lone_b] - thr) > MARGIN))
    print(f"{len(a['frame'])} and {len(b['frame'])} detections, {len(p)} pairs; unpaired "
          f"{len(lone_a)} / {len(lone_b)} (away from the threshold: {far_a} / {far_b})")
    print("side px   | pairs | max px | 99.9% px | max rel  | >0.1px | max dscore | moved | "
          "fixed px")
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = (side >= lo) & (side < hi)
        if not np.any(m):
            continue
        print(f"{lo:>3.0f}-{hi if hi < 1e8 else 'inf':>5} | {int(m.sum()):5d} | {d[m].max():6.3f} | "
              f"{np.quantile(d[m], 0.999):8.3f} | {np.max(d[m] / side[m]):8.2e} | "
              f"{int(np.sum(d[m] > TOL)):6d} | {ds[m].max():.2e}   | {int(moved[m].sum()):5d} | "
              f"{fixed_max(d, m & ~moved):.3f}")
    print(f"all       | {len(p):5d} | {d.max():6.3f} | {np.quantile(d, 0.999):8.3f} | "
          f"{np.max(d / side):8.2e} | {int(np.sum(d > TOL)):6d} | {ds.max():.2e}   | "
          f"{int(moved.sum()):5d} | {fixed_max(d, ~moved):.3f}")


def fixed_max(d, m):
    return float(d[m].max()) if np.any(m) else 0.0


if __name__ == "__main__":
    main()
