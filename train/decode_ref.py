"""A numpy reference of what nptrack's engine does around the network: the input it feeds the
network (src/nn/engine.c: normalised as train/input_norm.py says, padded to the multiple) and
the decoding of the heads into detections (src/nn/decode.c, docs/decode.md).  With PyTorch's head outputs it gives the detections the C
engine must give for the same frames (train/make_golden_dets.py writes them as goldens).

Numpy and h5py only (no torch), so a test can use it too:

    meta = model_meta("model.h5")                       # norm, multiple, stride, decoding defaults
    x = preprocess(frames, meta)                        # [N, 1, Hp, Wp] float32, as the engine
    heads = net(torch.from_numpy(x))                    # PyTorch (train/export.read_model)
    dets = decode_frame(hm[b], size[b], offset[b], emb[b], frame_h, frame_w, meta["output_stride"],
                        thr, top_k, peak_kernel, suppress_ratio)

Every rule below is the C code's, down to the order and precision of each operation, so that
detections agree to float32 rounding of the network's outputs (the network itself is the only
source of difference: PyTorch's float32 convolutions against oneDNN's).
"""

import math
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from input_norm import normalise  # noqa: E402  (the engine's normalisation, both norm_modes)


def _attr(f, name, default=None):
    if name not in f.attrs:
        return default
    v = f.attrs[name]
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode("utf-8") if isinstance(v, bytes) else v


def model_meta(path):
    """What the engine reads from a model file besides the graph: normalisation (norm_mode
    "fixed" or "frame"; absent means fixed), multiple, output stride, heads and decoding
    defaults."""
    with h5py.File(path, "r") as f:
        meta = dict(
            format_version=int(_attr(f, "format_version")),
            norm_mode=str(_attr(f, "norm_mode", "fixed")),
            norm8=(float(_attr(f, "norm8_mean")), float(_attr(f, "norm8_std"))),
            norm16=(float(_attr(f, "norm16_mean")), float(_attr(f, "norm16_std"))),
            multiple=int(_attr(f, "multiple")),
            output_stride=int(_attr(f, "output_stride")),
            embed_dim=int(_attr(f, "embed_dim")),
            score_threshold=float(_attr(f, "score_threshold")),
            top_k=int(_attr(f, "top_k")),
            peak_kernel=int(_attr(f, "peak_kernel")),
            suppress_ratio=float(_attr(f, "suppress_ratio", 0.0)),  # optional, absent = 0
        )
    if meta["norm_mode"] not in ("fixed", "frame"):
        raise ValueError(f"{path}: unknown norm_mode {meta['norm_mode']!r}")
    return meta


def preprocess(frames, meta):
    """frames: uint8 or uint16 [N, H, W] -> the network input [N, 1, Hp, Wp] float32, as
    src/nn/engine.c builds it: each frame normalised by the model's contract for its bit depth
    (input_norm.normalise, to the last bit of src/nn/preprocess.c), placed top-left, the padding
    (bottom and right, up to the model's multiple) 0, the normalised mean grey level."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        bits = 8
    elif frames.dtype == np.uint16:
        bits = 16
    else:
        raise ValueError(f"frames must be uint8 or uint16, not {frames.dtype}")
    n, h, w = frames.shape
    m = max(1, meta["multiple"])
    hp, wp = (h + m - 1) // m * m, (w + m - 1) // m * m
    out = np.zeros((n, 1, hp, wp), np.float32)
    out[:, 0, :h, :w] = normalise(frames, bits, meta)
    return out


def _window_max(a, r):
    """Max over the (2r+1)^2 window of every cell, the window clipped to the array (cells
    outside count as -inf).  NaN counts as -inf: it never suppresses a peak."""
    a = np.where(np.isnan(a), -np.inf, a)
    h, w = a.shape
    p = np.full((h + 2 * r, w + 2 * r), -np.inf, a.dtype)
    p[r:r + h, r:r + w] = a
    out = np.full((h, w), -np.inf, a.dtype)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            np.maximum(out, p[dy:dy + h, dx:dx + w], out=out)
    return out


def _neighbour_max(a, r):
    """Max over each cell's clipped window without the cell itself (-inf when alone)."""
    a = np.where(np.isnan(a), -np.inf, a)
    h, w = a.shape
    p = np.full((h + 2 * r, w + 2 * r), -np.inf, a.dtype)
    p[r:r + h, r:r + w] = a
    out = np.full((h, w), -np.inf, a.dtype)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            if dy != r or dx != r:
                np.maximum(out, p[dy:dy + h, dx:dx + w], out=out)
    return out


def _plateau(heat, start, r):
    """Cells of value heat[start] reachable from `start` through windows (the valid region)."""
    h, w = heat.shape
    v = heat[start]
    seen = {start}
    queue = [start]
    while queue:
        i, j = queue.pop()
        for y in range(max(0, i - r), min(h, i + r + 1)):
            for x in range(max(0, j - r), min(w, j + r + 1)):
                if heat[y, x] == v and (y, x) not in seen:
                    seen.add((y, x))
                    queue.append((y, x))
    return seen


def channel_peaks(heat, thr, r):
    """Peaks of one class channel restricted to the frame's cells (docs/decode.md, rules 1-2):
    a candidate is >= thr with no greater cell in its window; a plateau of equal cells joined
    through windows gives one peak, its lowest row-major candidate.  Returns [(i, j)] in raster
    order."""
    heat = np.asarray(heat, np.float32)
    wmax = _window_max(heat, r)
    cand = (heat >= np.float32(thr)) & (heat >= wmax)  # NaN fails both
    nmax = _neighbour_max(heat, r)
    peaks, done = [], set()
    for i, j in zip(*np.nonzero(cand)):  # row-major order
        i, j = int(i), int(j)
        if (i, j) in done:
            continue
        if nmax[i, j] == heat[i, j]:  # an equal neighbour: a plateau
            done |= _plateau(heat, (i, j), r)
        peaks.append((i, j))
    return peaks


def suppress(cx, cy, side, ratio, max_keep):
    """Centre-distance suppression (docs/decode.md, rule 3), exactly as src/nn/decode_suppress.c:
    candidates in their order (score descending, ties by class, then cell); candidate c is
    dropped when a candidate k kept before it has

        dx * dx + dy * dy < lim * lim,  dx = x_k - x_c, dy = y_k - y_c,
                                        lim = ratio * min(side_k, side_c)

    in float64, each operation rounded once, in this order (numpy ufuncs, one operation each;
    the C file is compiled without fused multiply-adds), stopping once max_keep are kept.
    Brute force over the kept ones (the C code files them in a grid: same result).

    Returns (keep, examined, margins): the kept indices in order, how many candidates were
    looked at, and per candidate looked at a margin in px: for a kept one the smallest
    distance - limit to an earlier kept one (inf when none), for a dropped one the largest
    limit - distance among those that drop it (a small margin: a rounding elsewhere could
    flip it)."""
    cx, cy, side = (np.asarray(v, np.float64) for v in (cx, cy, side))
    ratio = float(ratio)
    n = len(cx)
    kx, ky, ks = np.empty(n), np.empty(n), np.empty(n)
    keep, margins = [], []
    for c in range(n):
        if len(keep) >= max_keep:
            return keep, c, margins
        m = len(keep)
        dx = kx[:m] - cx[c]
        dy = ky[:m] - cy[c]
        lim = ratio * np.minimum(ks[:m], side[c])
        d2 = dx * dx + dy * dy
        drop = d2 < lim * lim
        dist = np.sqrt(d2)
        if drop.any():
            margins.append(float(np.max(lim[drop] - dist[drop])))
            continue
        on = lim > 0
        margins.append(float(np.min(dist[on] - lim[on])) if on.any() else math.inf)
        kx[m], ky[m], ks[m] = cx[c], cy[c], side[c]
        keep.append(c)
    return keep, n, margins


def decode_frame(heatmap, size, offset, embed, frame_h, frame_w, stride, score_threshold, top_k,
                 peak_kernel=3, suppress_ratio=0.0, suppressed=None):
    """One frame's detections from its head outputs ([C, Ho, Wo], [2, Ho, Wo], [2, Ho, Wo],
    [D, Ho, Wo] or None; float32), exactly as npt_decode_frame.  Returns (dets, saturated, cells)
    with dets a list of dicts (x, y, w, h, score, class from 1, cell (i, j), embedding,
    suppress_margin: see suppress(), inf without suppression) in the engine's row order, and
    cells the frame's valid region (rows, columns).  suppressed: a list, or None; when given,
    the peaks that suppression dropped are appended to it as dicts (x, y, w, h, score, cls,
    cell, suppress_margin)."""
    s = int(stride)
    r = (int(peak_kernel) - 1) // 2
    hv, wv = (frame_h + s - 1) // s, (frame_w + s - 1) // s
    heatmap = np.asarray(heatmap, np.float32)
    peaks = []
    for c in range(heatmap.shape[0]):
        hm = heatmap[c, :hv, :wv]
        for i, j in channel_peaks(hm, score_threshold, r):
            peaks.append((float(hm[i, j]), c, i * heatmap.shape[2] + j, i, j))
    # Score descending, then class, then the cell's index in the full head tensor.
    peaks.sort(key=lambda p: (-p[0], p[1], p[2]))
    # Rule 3a: a peak whose centre lies outside the frame needs >= 2 px of its box in view.
    peaks = [p for p in peaks if in_view(*decoded_box(size, offset, p[3], p[4], s), frame_w,
                                         frame_h)]
    margins = [math.inf] * len(peaks)
    if suppress_ratio > 0 and peaks:
        # Suppression before top-K: one survivor beyond top_k tells that the frame saturates.
        geo = [decoded_box(size, offset, i, j, s) for _, _, _, i, j in peaks]
        keep, examined, m = suppress([g[0] for g in geo], [g[1] for g in geo],
                                     [min(g[2], g[3]) for g in geo], suppress_ratio, top_k + 1)
        if suppressed is not None:
            kept = set(keep)
            for k in range(examined):
                if k not in kept:
                    score, c, _, i, j = peaks[k]
                    d = box_at(size, offset, i, j, s)
                    d.update(score=np.float32(score), cls=c + 1, cell=(i, j), suppress_margin=m[k])
                    suppressed.append(d)
        peaks = [peaks[k] for k in keep]
        margins = [m[k] for k in keep]
    saturated = len(peaks) > top_k
    peaks = peaks[:top_k]
    dets = []
    for (score, c, _, i, j), margin in zip(peaks, margins):
        d = box_at(size, offset, i, j, s)
        d.update(score=np.float32(score), cls=c + 1, cell=(i, j), suppress_margin=margin)
        d["embedding"] = None if embed is None else normalise_embedding(embed[:, i, j])
        dets.append(d)
    return dets, saturated, (hv, wv)


def in_view(cx, cy, w, h, frame_w, frame_h):
    """docs/decode.md rule 3a, as in_view() of src/nn/decode.c: True when the decoded centre
    lies in the frame (-0.5 .. W - 0.5), or else the box covers >= 2 px of it along both axes."""
    x1, y1 = frame_w - 0.5, frame_h - 0.5
    if -0.5 <= cx <= x1 and -0.5 <= cy <= y1:
        return True
    vx = min(cx + 0.5 * w, x1) - max(cx - 0.5 * w, -0.5)
    vy = min(cy + 0.5 * h, y1) - max(cy - 0.5 * h, -0.5)
    return vx >= 2.0 and vy >= 2.0


def decoded_box(size, offset, i, j, stride):
    """The decoded centre and size of cell (i, j), (cx, cy, w, h) in double, as the C code
    computes them: the centre s (j + ox) + (s - 1) / 2, s (i + oy) + (s - 1) / 2; non-finite
    offsets count as 0, negative or non-finite sizes as 0."""
    s = int(stride)
    ox, oy = _finite(offset[0, i, j]), _finite(offset[1, i, j])
    w = max(0.0, _finite(size[0, i, j]))
    h = max(0.0, _finite(size[1, i, j]))
    cx = s * (j + ox) + 0.5 * (s - 1)
    cy = s * (i + oy) + 0.5 * (s - 1)
    return cx, cy, w, h


def box_at(size, offset, i, j, stride):
    """The box of cell (i, j), as a dict x, y, w, h (float32), from decoded_box()."""
    cx, cy, w, h = decoded_box(size, offset, i, j, stride)
    return dict(x=np.float32(cx - 0.5 * w), y=np.float32(cy - 0.5 * h), w=np.float32(w),
                h=np.float32(h))


def _finite(v):
    v = float(v)
    return v if math.isfinite(v) else 0.0


def normalise_embedding(v):
    """L2 normalisation with the sum of squares in double; a zero or non-finite vector gives
    zeros."""
    v = np.asarray(v, np.float32).astype(np.float64)
    norm = math.sqrt(float(np.sum(v * v)))
    if not (norm > 0.0) or not math.isfinite(norm):
        return np.zeros(v.shape, np.float32)
    return (v / norm).astype(np.float32)


def fragility(heatmap, dets, cells, score_threshold, peak_kernel, eps, dropped=()):
    """How safe each detection of an unsaturated frame is against a perturbation of the heatmap
    by eps (another float32 implementation of the network differs by about 1e-6): its margin is
    the smaller of (score - threshold) and (score - the largest other cell of its window); below
    eps it is fragile (a near tie could move or drop it).  Returns (margins, near) with near the
    non-peak cells (class from 0, i, j) that such a perturbation could make peaks: >= threshold
    - eps and within eps of the largest cell of their window.  dropped: peaks that suppression
    removed (the `suppressed` list of decode_frame); they are peaks, so not near ones (whether
    a rounding could bring one back is their suppress_margin's business)."""
    r = (int(peak_kernel) - 1) // 2
    hv, wv = cells
    thr = float(np.float32(score_threshold))
    margins = []
    for d in dets:
        c, (i, j) = d["cls"] - 1, d["cell"]
        hm = np.asarray(heatmap[c, :hv, :wv], np.float32)
        nmax = float(_neighbour_max(hm, r)[i, j])
        margins.append(min(float(d["score"]) - thr, float(d["score"]) - nmax))
    near = []
    peak_cells = {(d["cls"] - 1, d["cell"]) for d in list(dets) + list(dropped)}
    for c in range(heatmap.shape[0]):
        hm = np.asarray(heatmap[c, :hv, :wv], np.float32).astype(np.float64)
        wmax = _window_max(hm, r)
        ok = (hm >= thr - eps) & (hm >= wmax - eps)
        for i, j in zip(*np.nonzero(ok)):
            if (c, (int(i), int(j))) not in peak_cells:
                near.append((c, int(i), int(j)))
    return margins, near
