"""Detection scores (precision, recall, F1 at an IoU threshold) of boxes against ground truth, per
frame, class-agnostic; used to compare nptrack's detector with other methods on real and synthetic
images (benchmarks/bench_classical_real.py) and during training.

Boxes are (x, y, w, h) in nptrack's convention (docs/formats.md): the centre of pixel (0, 0) is
(0, 0), so a mask spanning columns c0..c1-1 has x = c0 - 0.5 and w = c1 - c0.  Frames are the
1-based numbers of MOTChallenge text files; load_nptrack_dets converts the 0-based frames of an
HDF5 detections file to them.

Matching is one-to-one and optimal: among the pairs with IoU >= iou_min it picks the set that
maximises the total IoU (scipy's linear_sum_assignment), so the result does not depend on the
order of the boxes, unlike a greedy match; only nearby pairs are compared, so frames with thousands
of particles score quickly.  Pure numpy + scipy (h5py only for load_nptrack_dets).
"""
from collections import namedtuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

# One frame's boxes [n, 4] with their scores [n] and classes [n] (scores 1 and classes 1 where the
# source has none).
FrameDets = namedtuple("FrameDets", "boxes scores classes")

# Size bins of size_bin, by the box's longer side max(w, h) in pixels.
SIZE_BINS = ("<=8", "8-30", ">30")


def _boxes(v):
    """The [n, 4] float64 boxes of a FrameDets or of a plain array."""
    b = v.boxes if isinstance(v, FrameDets) else v
    return np.asarray(b, dtype=np.float64).reshape(-1, 4)


def load_mot(path, full=False):
    """Reads a MOTChallenge-style text file (frame,id,x,y,w,h[,conf,class,...]; '#' lines and
    blank lines skipped).  Returns {frame: boxes [n, 4]}, or with full=True {frame: FrameDets},
    the score from column 7 (conf: a detection's score, 1 in ground truth) and the class from
    column 8 (1 when absent).  Frames with no line are absent from the dict."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append([float(v) for v in line.split(",")])
    out = {}
    if not rows:
        return out
    width = max(len(r) for r in rows)
    if min(len(r) for r in rows) < 6:
        raise ValueError(f"{path}: a line has fewer than 6 columns")
    a = np.array([r + [np.nan] * (width - len(r)) for r in rows])
    frames = a[:, 0].astype(np.int64)
    for t in np.unique(frames):
        r = a[frames == t]
        boxes = r[:, 2:6].copy()
        if not full:
            out[int(t)] = boxes
            continue
        scores = r[:, 6] if width > 6 else np.ones(len(r))
        classes = r[:, 7] if width > 7 else np.ones(len(r))
        out[int(t)] = FrameDets(boxes, np.nan_to_num(scores, nan=1.0),
                                np.nan_to_num(classes, nan=1.0).astype(np.int64))
    return out


def load_nptrack_dets(path):
    """Reads a detections file written by `nptrack detect` (docs/archive-format.md).  Returns
    {frame: FrameDets} with frames counted from 1 as in gt.txt (the file counts from 0), one entry
    for every frame that was searched (frame_begin..frame_end-1 of the file), empty ones included:
    a searched frame without rows found nothing.  Refuses incomplete or newer files."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "nptrack detections" or f.attrs.get("status") != "complete":
            raise ValueError(f"{path}: not a complete nptrack detections file")
        if int(f.attrs["format_version"]) > 1:
            raise ValueError(f"{path}: format_version {f.attrs['format_version']} is newer than 1")
        g = f["detections"]
        off = g["frame_offsets"][()]
        cols = {k: g[k][()] for k in ("frame", "x", "y", "w", "h", "score", "class")}
        begin, end = int(g.attrs["frame_begin"]), int(g.attrs["frame_end"])
    if not np.array_equal(np.repeat(np.arange(len(off) - 1), np.diff(off)), cols["frame"]):
        raise ValueError(f"{path}: the frame column disagrees with frame_offsets")
    boxes = np.stack([cols[k] for k in ("x", "y", "w", "h")], axis=1).astype(np.float64)
    out = {}
    for t in range(begin, end):
        r = slice(off[t], off[t + 1])
        out[t + 1] = FrameDets(boxes[r], cols["score"][r].astype(np.float64),
                               cols["class"][r].astype(np.int64))
    return out


def clip_boxes(boxes, width, height):
    """Clips boxes [n, 4] to the image [-0.5, width - 0.5] x [-0.5, height - 0.5], the area its
    pixels cover, as hand labels made from masks are.  Keeps every row: a box wholly outside gets
    zero width or height (IoU 0 with anything).  A FrameDets gives a FrameDets."""
    if isinstance(boxes, FrameDets):
        return boxes._replace(boxes=clip_boxes(boxes.boxes, width, height))
    b = _boxes(boxes)
    x0 = np.clip(b[:, 0], -0.5, width - 0.5)
    y0 = np.clip(b[:, 1], -0.5, height - 0.5)
    x1 = np.clip(b[:, 0] + b[:, 2], -0.5, width - 0.5)
    y1 = np.clip(b[:, 1] + b[:, 3], -0.5, height - 0.5)
    return np.stack([x0, y0, np.maximum(x1 - x0, 0), np.maximum(y1 - y0, 0)], axis=1)


def iou_pairs(a, b):
    """IoU [n] of the boxes a[k] and b[k], two [n, 4] arrays; 0 where the union has no area."""
    a, b = _boxes(a), _boxes(b)
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_matrix(a, b):
    """IoU [len(a), len(b)] of two sets of boxes; 0 where the union has no area."""
    a, b = _boxes(a), _boxes(b)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, 0][:, None], b[:, 0][None])
    ih = np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, 1][:, None], b[:, 1][None])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _overlapping_pairs(a, b):
    """Index arrays (i, j) of the pairs of boxes of a and b whose centres are close enough for the
    boxes to overlap (a superset of the overlapping pairs), found with k-d trees, so that frames
    with thousands of particles need not compare every pair."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ta = cKDTree(a[:, :2] + a[:, 2:] / 2)
    tb = cKDTree(b[:, :2] + b[:, 2:] / 2)
    # Overlapping boxes have centres at most (w_a + w_b) / 2 apart in x and (h_a + h_b) / 2 in y.
    r = (a[:, 2:].max() + b[:, 2:].max()) / 2 * (1 + 1e-9) + 1e-9
    m = ta.sparse_distance_matrix(tb, r, p=np.inf, output_type="ndarray")
    return m["i"].astype(np.int64), m["j"].astype(np.int64)


def match_frame(det_boxes, gt_boxes, iou_min=0.5):
    """Optimal one-to-one matching of one frame's detections to its ground truth: of all sets of
    pairs with IoU >= iou_min (0 < iou_min <= 1), no box in two pairs, the one with the largest
    total IoU.  Returns (det_index, gt_index) as two int arrays of equal length, sorted by
    detection."""
    if not 0 < iou_min <= 1:
        raise ValueError(f"iou_min {iou_min}: must be in (0, 1]")
    d, g = _boxes(det_boxes), _boxes(gt_boxes)
    i, j = _overlapping_pairs(d, g)
    iou = iou_pairs(d[i], g[j])
    keep = iou >= iou_min
    i, j, iou = i[keep], j[keep], iou[keep]
    # The valid pairs form a bipartite graph; the best matching is the union of the best matchings
    # of its connected components, most of which are single pairs.
    n = len(d)
    graph = coo_matrix((np.ones(len(i)), (i, n + j)), shape=(n + len(g),) * 2)
    _, comp = connected_components(graph, directed=False)
    edges = np.bincount(comp[i], minlength=n + len(g))
    single = edges[comp[i]] == 1
    out_d, out_g = [i[single]], [j[single]]
    rest = np.flatnonzero(~single)
    for c in np.unique(comp[i[rest]]):
        e = rest[comp[i[rest]] == c]
        rows, ri = np.unique(i[e], return_inverse=True)
        cols, ci = np.unique(j[e], return_inverse=True)
        # Pairs below the threshold weigh 0, so a full assignment that uses them is worth exactly
        # the partial matching of the valid pairs it contains: the optimum of one is the other's.
        weight = np.zeros((len(rows), len(cols)))
        weight[ri, ci] = iou[e]
        valid = np.zeros(weight.shape, bool)
        valid[ri, ci] = True
        r, k = linear_sum_assignment(weight, maximize=True)
        ok = valid[r, k]
        out_d.append(rows[r[ok]])
        out_g.append(cols[k[ok]])
    md, mg = np.concatenate(out_d), np.concatenate(out_g)
    order = np.argsort(md, kind="stable")
    return md[order].astype(np.int64), mg[order].astype(np.int64)


def size_bin(box):
    """The size bin of a box, by its longer side max(w, h) in pixels: "<=8", "8-30" (over 8, at
    most 30) or ">30".  The longer side, not sqrt(w h), so a border sliver of a large particle
    still counts as large-ish and a round particle's bin is its diameter."""
    s = max(box[2], box[3])
    return SIZE_BINS[0] if s <= 8 else SIZE_BINS[1] if s <= 30 else SIZE_BINS[2]


def _rates(tp, fp, fn):
    """precision, recall and F1; each is 0 when its denominator is (no detections, no ground
    truth, neither)."""
    return (tp / max(tp + fp, 1), tp / max(tp + fn, 1), 2 * tp / max(2 * tp + fp + fn, 1))


def score(dets_by_frame, gt_by_frame, iou_min=0.5, frames=None, bins=None):
    """Scores detections against ground truth, both {frame: boxes [n, 4] or FrameDets}.

    frames: the frames to score (default: every frame of either dict); a frame missing from one
    dict has no boxes there.  bins: optional function box -> label (e.g. size_bin); each ground
    truth box falls in the bin of its own box, each matched detection in its ground truth's bin and
    each unmatched detection in the bin of its own box, giving per-bin counts and rates.

    Returns a dict: tp, fp, fn, n_det, n_gt, precision, recall, f1 (see _rates), iou_min,
    center_errors (an array: for each match, the distance between the two box centres in pixels),
    median_center_error (NaN without matches) and, with bins, "bins": {label: {tp, fp, fn, n_gt,
    precision, recall, f1}}, the labels of SIZE_BINS first in that order, then the others sorted.
    """
    if frames is None:
        frames = sorted(set(dets_by_frame) | set(gt_by_frame))
    empty = np.zeros((0, 4))
    tp = fp = fn = 0
    errors = []
    per_bin = {}

    def add(label, key):
        per_bin.setdefault(label, {"tp": 0, "fp": 0, "fn": 0})[key] += 1

    for t in frames:
        d = _boxes(dets_by_frame.get(t, empty))
        g = _boxes(gt_by_frame.get(t, empty))
        di, gi = match_frame(d, g, iou_min)
        tp += len(di)
        fp += len(d) - len(di)
        fn += len(g) - len(gi)
        cd = d[di, :2] + d[di, 2:] / 2
        cg = g[gi, :2] + g[gi, 2:] / 2
        errors.append(np.hypot(*(cd - cg).T))
        if bins is not None:
            matched_gt = set(gi.tolist())
            for j in range(len(g)):
                add(bins(g[j]), "tp" if j in matched_gt else "fn")
            matched_det = set(di.tolist())
            for i in range(len(d)):
                if i not in matched_det:
                    add(bins(d[i]), "fp")
    errors = np.concatenate(errors) if errors else np.zeros(0)
    p, r, f1 = _rates(tp, fp, fn)
    out = {"tp": tp, "fp": fp, "fn": fn, "n_det": tp + fp, "n_gt": tp + fn, "precision": p,
           "recall": r, "f1": f1, "iou_min": iou_min, "center_errors": errors,
           "median_center_error": float(np.median(errors)) if len(errors) else float("nan")}
    if bins is not None:
        for c in per_bin.values():
            c["n_gt"] = c["tp"] + c["fn"]
            c["precision"], c["recall"], c["f1"] = _rates(c["tp"], c["fp"], c["fn"])
        order = {b: i for i, b in enumerate(SIZE_BINS)}
        out["bins"] = dict(sorted(per_bin.items(),
                                  key=lambda kv: (order.get(kv[0], len(order)), str(kv[0]))))
    return out
