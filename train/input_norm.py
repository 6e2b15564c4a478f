"""The network input of nptrack's engine, in numpy: frames normalised as a model file's
`norm_mode` says (docs/model-format.md, src/nn/preprocess.h), to the last bit of the C engine's
CPU path.  Pure numpy (no torch), so that tests without PyTorch can check the engine with it;
nptrack_ops re-exports `normalise`.

- "fixed": y = (x / full_scale - mean) / std with (mean, std) = meta["norm8"] or meta["norm16"]
  (full scale 255 or 65535), computed as the engine does, in float32: x * a + b with
  a = 1 / (full_scale * std) and b = -mean / std.  (The GPU fuses x * a + b: it may differ in
  the last bit.)
- "frame": each frame standardised by its own statistics.  With N = h * w and the exact integer
  sums S1 = sum x and S2 = sum x^2:
      mu    = double(S1) / double(N)
      var   = double(N S2 - S1^2) / (double(N) * double(N))
      sigma = max(sqrt(var), 1)          (at least 1 grey level: blank frames stay finite)
      y     = float32((double(x) - mu) / sigma)
  every operation rounded once in IEEE double, as on the CPU and the GPU; meta's norm8/norm16
  are not used.
"""

import math

import numpy as np

NORM_MODES = ("fixed", "frame")
FULL_SCALE = {8: 255.0, 16: 65535.0}


def frame_stats(frame):
    """(mu, sigma) of one integer frame [h, w] in frame mode, as Python floats."""
    x = np.asarray(frame)
    n = x.size
    if n == 0 or n > 1 << 32:
        raise ValueError(f"frame mode needs 1 to 2^32 pixels a frame, not {n}")
    wide = x.astype(np.uint64).ravel()
    s1 = int(wide.sum(dtype=np.uint64))  # exact: below 2^64 for <= 2^32 pixels of 16 bits
    s2 = int((wide * wide).sum(dtype=np.uint64))
    nd = float(n)
    mu = float(s1) / nd
    var = float(n * s2 - s1 * s1) / (nd * nd)  # Python ints: exact, then rounded once
    return mu, max(math.sqrt(var), 1.0)


def _check_frames(x, bit_depth):
    if bit_depth not in FULL_SCALE:
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"frames must be integer arrays [..., h, w], not {x.dtype} {x.shape}")
    if x.size and (x.min() < 0 or x.max() >= 1 << bit_depth):
        raise ValueError(f"grey levels outside 0..{(1 << bit_depth) - 1}")


def normalise(frames, bit_depth, meta):
    """The engine's network input for integer `frames` [..., h, w] (numpy, or a torch tensor:
    the answer is then a tensor on the same device), as float32 of the same shape.  meta: a
    Net's meta dict (norm_mode, absent meaning "fixed"; norm8 and norm16 as (mean, std))."""
    if type(frames).__module__.split(".")[0] == "torch":
        import torch  # only when given a tensor

        y = normalise(frames.detach().cpu().numpy(), bit_depth, meta)
        return torch.from_numpy(y).to(frames.device)
    x = np.asarray(frames)
    _check_frames(x, bit_depth)
    mode = meta.get("norm_mode", "fixed")
    if mode == "fixed":
        mean, std = meta[f"norm{bit_depth}"]
        a = np.float32(1.0) / (np.float32(FULL_SCALE[bit_depth]) * np.float32(std))
        b = -np.float32(mean) / np.float32(std)
        return x.astype(np.float32) * a + b
    if mode != "frame":
        raise ValueError(f"unknown norm_mode {mode!r} (one of {', '.join(NORM_MODES)})")
    h, w = x.shape[-2:]
    flat = x.reshape(-1, h, w)
    out = np.empty(flat.shape, np.float32)
    for i, frame in enumerate(flat):
        mu, sigma = frame_stats(frame)
        out[i] = ((frame.astype(np.float64) - mu) / sigma).astype(np.float32)
    return out.reshape(x.shape)


__all__ = ["FULL_SCALE", "NORM_MODES", "frame_stats", "normalise"]
