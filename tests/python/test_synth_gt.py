#!/usr/bin/env python3
"""The ground truth of `nptrack synth` read back independently (h5py, numpy):

- video.h5: /frames shape, dtype, one frame per chunk, its attributes, the config and drawn
  parameters on the root; 16-bit frames use the 16-bit range;
- every box lies over a darker region of a (nearly) noiseless render, its visibility is the
  fraction of it inside the frame, and no box is reported for a particle entirely outside;
- events name parents whose tracks end before the event's frame and children whose tracks start
  at it (or later, when they are out of view at first);
- the support texture and the boxes move together with the specimen drift.

usage: test_synth_gt.py NPTRACK_BIN SCRATCH_DIR
"""
import csv
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

BIN, TMP = sys.argv[1], sys.argv[2]
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def synth(name, *sets):
    out = os.path.join(TMP, name)
    args = [BIN, "synth", "-q", "-o", out]
    for s in sets:
        args += ["-s", s]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
        sys.exit(f"nptrack synth failed ({r.returncode})")
    return out


def read_gt(d):
    rows = np.loadtxt(os.path.join(d, "gt.txt"), delimiter=",", ndmin=2)
    return rows


def read_events(d):
    with open(os.path.join(d, "events.csv")) as f:
        return [(int(r["frame"]), r["type"], [int(x) for x in r["parents"].split()],
                 [int(x) for x in r["children"].split()]) for r in csv.DictReader(f)]


shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)

# A busy little video with every kind of event, imaged without noise (a huge dose) on a faint,
# flat support, so that darkness can be checked box by box.
T, H, W = 60, 200, 240
quiet = ["synth.dose_e_px=1000000.0", "synth.support_contrast=0.02", "synth.fresnel_amp=0.0",
         "synth.gradient=0.0", "synth.blur_px=0.5", "synth.background=0.6",
         "synth.metal_mfp_nm=4.0", "synth.oxide_mfp_nm=8.0"]
busy = [f"synth.frames={T}", f"synth.height={H}", f"synth.width={W}", "synth.seed=3",
        "synth.pixel_size_nm=0.25", "synth.diameter_nm=4.0", "synth.coverage=0.3",
        "synth.min_gap_nm=0.5", "synth.sinter_rate_hz=0.08", "synth.sinter_approach_s=0.5",
        "synth.gas=\"cycle\"", "synth.gas_period_s=4.0", "synth.oxidation_rate_hz=1.0",
        "synth.reduction_rate_hz=1.0", "synth.split_prob=1.0", "synth.drift_nm_s=2.0",
        "synth.diffusion_nm2_s=0.01"]
d = synth("busy", *busy, *quiet)

# --- video.h5 ---------------------------------------------------------------------------------
with h5py.File(os.path.join(d, "video.h5"), "r") as f:
    fr = f["/frames"]
    check(fr.shape == (T, H, W), f"/frames shape {fr.shape}")
    check(fr.dtype == np.uint8, f"/frames dtype {fr.dtype}")
    check(fr.chunks == (1, H, W), f"/frames chunks {fr.chunks}")
    check(abs(fr.attrs["pixel_size_nm"] - 0.25) < 1e-12, "pixel_size_nm attribute")
    rate = float(fr.attrs["frame_rate_hz"])
    check(10.0 <= rate <= 25.0, f"frame_rate_hz attribute {rate}")
    frames = fr[...]
    cfg = f.attrs["config"]
    cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
    check("sinter_rate_hz = 0.08;" in cfg, "root attribute config lacks the override")
    check("nptrack_version" in f.attrs and str(f.attrs["nptrack_version"]), "no nptrack_version")
    check(abs(float(f.attrs["synth.frame_rate_hz"]) - rate) < 1e-12,
          "drawn synth.frame_rate_hz differs from /frames' frame_rate_hz")
    check(abs(float(f.attrs["synth.coverage"]) - 0.3) < 1e-12, "drawn synth.coverage")
    check(int(f.attrs["invert"]) == 0, "invert attribute")
with open(os.path.join(d, "config.cfg")) as f:
    check(f.read() == cfg, "config.cfg differs from the config attribute")

# --- gt.txt -----------------------------------------------------------------------------------
gt = read_gt(d)
check(gt.shape[1] == 9, f"gt.txt has {gt.shape[1]} columns")
fno, ids = gt[:, 0].astype(int), gt[:, 1].astype(int)
x, y, w, h, conf, cls, vis = gt[:, 2], gt[:, 3], gt[:, 4], gt[:, 5], gt[:, 6], gt[:, 7], gt[:, 8]
check(fno.min() == 1 and fno.max() == T and np.all(np.diff(fno) >= 0), "frames 1..T in order")
check(np.all(conf == 1) and set(np.unique(cls)) <= {1, 2}, "conf 1, class 1|2")
check(set(np.unique(cls)) == {1, 2}, "both metal and oxide particles appear")
# Visibility: fraction of the box inside [-0.5, W-0.5] x [-0.5, H-0.5]; no row for a box
# entirely outside; boxes are not clipped.
ix = np.clip(x + w, -0.5, W - 0.5) - np.clip(x, -0.5, W - 0.5)
iy = np.clip(y + h, -0.5, H - 0.5) - np.clip(y, -0.5, H - 0.5)
check(np.all(np.abs(vis - ix * iy / (w * h)) < 2e-3), "visibility is not the box's inside share")
check(np.all(vis > 0) and np.any(vis < 1) and np.any(x < -0.5), "border boxes (not clipped)")
for t in range(1, T + 1):
    k = ids[fno == t]
    check(len(k) == len(np.unique(k)), f"frame {t}: an id twice")

# Every box lies over a darker region: the mean of its central part (half its size) is below the
# bare support's level, measured away from all boxes.
dark_fail = 0
for t in range(1, T + 1):
    img = frames[t - 1].astype(float)
    sel = fno == t
    mask = np.zeros((H, W), bool)
    for bx, by, bw, bh in zip(x[sel], y[sel], w[sel], h[sel]):
        c0, c1 = max(int(np.floor(bx - 1)), 0), min(int(np.ceil(bx + bw + 2)), W)
        r0, r1 = max(int(np.floor(by - 1)), 0), min(int(np.ceil(by + bh + 2)), H)
        mask[r0:r1, c0:c1] = True
    support = np.median(img[~mask])
    for bx, by, bw, bh, v in zip(x[sel], y[sel], w[sel], h[sel], vis[sel]):
        if v < 1 or bw < 4 or bh < 4:
            continue
        cx, cy = bx + 0.5 + bw / 2, by + 0.5 + bh / 2  # box centre in array index space
        c0, c1 = int(round(cx - bw / 4)), int(round(cx + bw / 4))
        r0, r1 = int(round(cy - bh / 4)), int(round(cy + bh / 4))
        centre = img[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)].mean()
        if not centre < 0.93 * support:
            dark_fail += 1
            if dark_fail <= 3:
                print(f"frame {t}: box {bx:.1f},{by:.1f},{bw:.1f},{bh:.1f}: centre {centre:.1f}"
                      f" vs support {support:.1f}")
check(dark_fail == 0, f"{dark_fail} boxes do not lie over a darker region")
# ... and nothing dark is left without a box: pixels far below the support level are inside one.
t = T // 2
img = frames[t - 1].astype(float)
sel = fno == t
inside = np.zeros((H, W), bool)
for bx, by, bw, bh in zip(x[sel], y[sel], w[sel], h[sel]):
    c0, c1 = max(int(np.floor(bx - 1)), 0), min(int(np.ceil(bx + bw + 2)), W)
    r0, r1 = max(int(np.floor(by - 1)), 0), min(int(np.ceil(by + bh + 2)), H)
    inside[r0:r1, c0:c1] = True
support = np.median(img[~inside])
check(np.mean(img[~inside] < 0.7 * support) < 1e-3, "dark pixels outside every box")

# --- events.csv -------------------------------------------------------------------------------
events = read_events(d)
kinds = {e[1] for e in events}
check(kinds == {"merge", "split"}, f"event types {kinds}")
first = {i: fno[ids == i].min() for i in np.unique(ids)}
last = {i: fno[ids == i].max() for i in np.unique(ids)}
for (t, kind, parents, children) in events:
    if kind == "merge":
        check(len(parents) in (2, 3) and len(children) == 1, f"merge at {t}: {parents}->{children}")
    else:
        check(len(parents) == 1 and 2 <= len(children) <= 6, f"split at {t}: {parents}->{children}")
    for p in parents:
        check(last.get(p, 0) < t, f"{kind} at frame {t}: parent {p} seen at frame {last.get(p)}")
    for c in children:
        check(first.get(c, t) >= t, f"{kind} at frame {t}: child {c} seen before, at {first.get(c)}")
    # The event is visible where it happens: a parent in the frame before, or a child at it.
    check(any(last.get(p) == t - 1 for p in parents) or any(first.get(c) == t for c in children),
          f"{kind} at frame {t}: neither a parent ends at {t - 1} nor a child starts at {t}")

# --- 16-bit frames, and compressed ones (the same pixels as uncompressed) ----------------------
small = ["synth.bit_depth=16", "synth.frames=3", "synth.width=64", "synth.height=48"]
d16 = synth("sixteen", *small)
dz = synth("sixteen_gzip", *small, "synth.gzip_level=4")
with h5py.File(os.path.join(d16, "video.h5"), "r") as f, \
        h5py.File(os.path.join(dz, "video.h5"), "r") as fz:
    fr = f["/frames"][...]
    check(f["/frames"].dtype == np.uint16, f"16-bit dtype {f['/frames'].dtype}")
    check(fr.max() > 4000, f"16-bit frames use the 16-bit range (max {fr.max()})")
    check(fz["/frames"].compression == "gzip" and fz["/frames"].shuffle, "gzip_level: no gzip")
    check(np.array_equal(fz["/frames"][...], fr), "compressed frames differ")

# --- drift: the support and the boxes move together -------------------------------------------
dd = synth("drift", "synth.frames=40", "synth.width=256", "synth.height=256",
           "synth.drift_nm_s=3.0", "synth.diffusion_nm2_s=0.0", "synth.frame_rate_hz=10.0",
           "synth.pixel_size_nm=0.2", "synth.dose_e_px=100000.0", "synth.support_contrast=0.15",
           "synth.rotation_deg_s=0.0")
with h5py.File(os.path.join(dd, "video.h5"), "r") as f:
    a, b = f["/frames"][0].astype(float), f["/frames"][39].astype(float)
gd = read_gt(dd)


def box_centres(t):
    s = (gd[:, 0] == t) & (gd[:, 8] == 1)
    return {int(i): (bx + bw / 2, by + bh / 2) for i, bx, by, bw, bh in
            zip(gd[s, 1], gd[s, 2], gd[s, 3], gd[s, 4], gd[s, 5])}


ca, cb = box_centres(1), box_centres(40)
common = sorted(set(ca) & set(cb))
check(len(common) >= 3, f"only {len(common)} particles in view at frames 1 and 40")
shift = np.mean([np.subtract(cb[i], ca[i]) for i in common], axis=0)
# Phase correlation of the two frames finds the support's shift.
F = np.fft.fft2(a - a.mean()) * np.conj(np.fft.fft2(b - b.mean()))
r = np.fft.ifft2(F / (np.abs(F) + 1e-9)).real
py, px = np.unravel_index(np.argmax(r), r.shape)
py, px = (py + 128) % 256 - 128, (px + 128) % 256 - 128
support_shift = np.array([-px, -py], float)
check(np.hypot(*shift) > 10, f"drift too small to test ({shift})")
check(np.hypot(*(support_shift - shift)) < 2.0,
      f"support moved by {support_shift}, boxes by {shift}")

if FAILS:
    print(f"{len(FAILS)} failure(s)")
    sys.exit(1)
print("test_synth_gt: all checks passed")
