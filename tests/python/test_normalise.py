#!/usr/bin/env python3
"""The training side's input normalisation (train/input_norm.py, re-exported by nptrack_ops)
equals the C engine's, bit for bit, in both norm_modes:

- `nptrack detect` runs tests/data/probe_frame_model.h5, a frame-mode model whose detections
  show the network input itself (every cell a detection; w - h = the input y of its cell;
  train/make_tiny_model.py says how), on 8- and 16-bit videos of odd size (so the engine pads)
  whose frames have very different statistics: the full range, a narrow band, a bright frame
  with little contrast, a constant frame and one whose std is under the 1-grey-level floor;
- the engine's input, read back from the detections, must equal normalise() exactly, and again
  for a fixed-mode copy of the model;
- normalise's frame statistics agree with numpy's mean and std, and frames come out with mean
  0 and std 1 (or their own std, when under the floor).
No torch needed.

usage: test_normalise.py NPTRACK_BIN SCRATCH_DIR
"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

BIN, TMP = sys.argv[1], sys.argv[2]
SRC = os.environ.get("NPT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "train"))
from input_norm import frame_stats, normalise  # noqa: E402

PROBE = os.path.join(SRC, "tests", "data", "probe_frame_model.h5")
H, W = 29, 37
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def frames_of(bits, rng):
    """[T, H, W] frames, each uniform in its own [lo, hi]."""
    spans = {8: [(0, 255), (90, 110), (17, 17), (200, 201), (0, 3)],
             16: [(1000, 1050), (60000, 60009), (0, 65535), (31000, 31000), (5, 6)]}[bits]
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.stack([rng.integers(lo, hi, (H, W), endpoint=True).astype(dtype)
                     for lo, hi in spans])


def model_meta(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        mode = a.get("norm_mode", b"fixed")
        return dict(norm_mode=mode.decode() if isinstance(mode, bytes) else str(mode),
                    norm8=(float(a["norm8_mean"]), float(a["norm8_std"])),
                    norm16=(float(a["norm16_mean"]), float(a["norm16_std"])))


def engine_input(model, frames, name):
    """The network input the engine made from `frames`, read back from the probe's detections."""
    video = os.path.join(TMP, f"{name}_video.h5")
    dets = os.path.join(TMP, f"{name}_dets.h5")
    with h5py.File(video, "w") as f:
        f["frames"] = frames
    r = subprocess.run([BIN, "detect", "-s", f"detect.model={model}", "-o", dets, video],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{name}: nptrack detect failed ({r.returncode}): {r.stdout}{r.stderr}")
    with h5py.File(dets, "r") as f:
        g = f["detections"]
        fr, x, y, w, h = (g[k][()] for k in ("frame", "x", "y", "w", "h"))
    check(len(fr) == frames.size, f"{name}: {len(fr)} detections, one per pixel expected "
          f"({frames.size})")
    # Boxes are (centre - size / 2, size); the probe's centres are the pixels.
    cx, cy = x.astype(np.float64) + w / 2.0, y.astype(np.float64) + h / 2.0
    i, j = np.rint(cy).astype(np.int64), np.rint(cx).astype(np.int64)
    check(np.all(np.abs(cx - j) < 1e-4) and np.all(np.abs(cy - i) < 1e-4),
          f"{name}: detections off the pixels")
    check(np.all((w == 0) | (h == 0)), f"{name}: w and h both nonzero")
    got = np.full(frames.shape, np.nan, np.float32)
    got[fr, i, j] = w - h  # exact: one of them is 0
    return got


def compare(name, got, want):
    same = got.view(np.uint32) == want.view(np.uint32)
    if not np.all(same):
        k = np.argwhere(~same)
        for f, i, j in k[:5]:
            print(f"  frame {f} ({i}, {j}): engine {got[f, i, j]!r}, normalise {want[f, i, j]!r}")
    check(np.all(same), f"{name}: the engine's input differs from normalise() at "
          f"{np.count_nonzero(~same)} of {same.size} pixels")


shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
rng = np.random.default_rng(20250101)
fixed_model = os.path.join(TMP, "probe_fixed_model.h5")
shutil.copy(PROBE, fixed_model)
with h5py.File(fixed_model, "r+") as f:
    f.attrs["norm_mode"] = np.bytes_("fixed")
check(model_meta(PROBE)["norm_mode"] == "frame", "the probe model is not frame mode")

for bits in (8, 16):
    frames = frames_of(bits, rng)
    for model in (PROBE, fixed_model):
        meta = model_meta(model)
        name = f"{bits}-bit {meta['norm_mode']}"
        want = normalise(frames, bits, meta)
        check(want.dtype == np.float32 and want.shape == frames.shape, f"{name}: dtype, shape")
        compare(name, engine_input(model, frames, name.replace(" ", "_")), want)
    # The statistics themselves, and the result they promise.
    for t, frame in enumerate(frames):
        mu, sigma = frame_stats(frame)
        sd = float(np.std(frame.astype(np.float64)))
        check(abs(mu - np.mean(frame.astype(np.float64))) <= 1e-12 * max(1.0, mu)
              and abs(sigma - max(sd, 1.0)) <= 1e-12 * sigma,
              f"{bits}-bit frame {t}: frame_stats {mu!r}, {sigma!r}; numpy std {sd!r}")
        y = normalise(frame, bits, dict(norm_mode="frame")).astype(np.float64)
        check(abs(y.mean()) < 1e-6 and abs(y.std() - (1.0 if sd >= 1.0 else sd)) < 1e-5,
              f"{bits}-bit frame {t}: normalised mean {y.mean()!r}, std {y.std()!r}")

# The same frames as a stack with leading axes, and as a single frame, give the same values.
frames = frames_of(16, rng)
stack = normalise(frames.reshape(5, 1, H, W), 16, dict(norm_mode="frame"))
check(np.array_equal(stack[:, 0], normalise(frames, 16, dict(norm_mode="frame"))), "batch shape")
check(np.array_equal(stack[2, 0], normalise(frames[2], 16, dict(norm_mode="frame"))), "one frame")
try:
    normalise(frames, 16, dict(norm_mode="per_frame"))
    check(False, "normalise accepted norm_mode 'per_frame'")
except ValueError as e:
    check("unknown norm_mode 'per_frame'" in str(e), f"normalise's error: {e}")

if FAILS:
    sys.exit(f"{len(FAILS)} check(s) failed")
print("ok: the engine's input equals normalise() in both modes, 8 and 16 bits")
