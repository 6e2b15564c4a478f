#!/usr/bin/env python3
"""train/detscore.py, the detection scorer that nptrack's detector is judged by on real images:

- match_frame finds an optimal one-to-one matching: on small random cases its total IoU equals the
  best of every one-to-one assignment enumerated by brute force, it never pairs a box twice or
  below the IoU threshold, and a greedy matcher (the usual mistake) is beaten on some case;
- clip_boxes follows the convention "centre of pixel (0, 0) is (0, 0)": boxes are cut to
  [-0.5, W - 0.5] x [-0.5, H - 0.5], a box made from a mask is unchanged, one outside gets no area;
- score's counts, P/R/F1, centre errors and size bins are right on hand-made frames;
- load_mot reads MOTChallenge text; load_nptrack_dets reads `nptrack detect`'s file with frames
  counted from 1, exactly the rows `nptrack export` writes as text, and only the searched frames.

usage: test_detscore.py NPTRACK_BIN SCRATCH_DIR
"""
import itertools
import os
import shutil
import subprocess
import sys

import numpy as np

BIN, TMP = sys.argv[1], sys.argv[2]
SRC = os.environ.get("NPT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "train"))
import detscore as ds  # noqa: E402

MODEL = os.path.join(SRC, "tests", "data", "tiny_model.h5")
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def close(a, b, tol=1e-12):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def brute_best(iou, iou_min):
    """The largest total IoU over every one-to-one partial assignment of valid pairs."""
    n_det, n_gt = iou.shape
    best = 0.0
    gts = list(range(n_gt)) + [None] * n_det  # None: the detection stays unmatched
    for perm in set(itertools.permutations(gts, n_det)):
        total = 0.0
        for i, j in enumerate(perm):
            if j is not None:
                if iou[i, j] < iou_min:
                    break
                total += iou[i, j]
        else:
            best = max(best, total)
    return best


def greedy_total(iou, iou_min):
    """Greedy matching by descending IoU: not optimal, used to show the random cases can tell."""
    used_d, used_g, total = set(), set(), 0.0
    for k in np.argsort(-iou, axis=None, kind="stable"):
        i, j = np.unravel_index(k, iou.shape)
        if iou[i, j] >= iou_min and i not in used_d and j not in used_g:
            used_d.add(i), used_g.add(j)
            total += iou[i, j]
    return total


# --- Matching against brute force ---------------------------------------------------------------
rng = np.random.default_rng(20240611)
greedy_worse = 0
n_matched = 0
for case in range(400):
    n_gt, n_det = rng.integers(0, 6), rng.integers(0, 6)
    # Boxes crowded into a small area, and detections that are jittered copies of ground truth or
    # of each other, so several detections compete for one box and the threshold often bites.
    gt = np.column_stack([rng.uniform(0, 6, (n_gt, 2)), rng.uniform(3, 8, (n_gt, 2))])
    src = np.vstack([gt, np.column_stack([rng.uniform(0, 6, (2, 2)), rng.uniform(3, 8, (2, 2))])])
    det = src[rng.integers(0, len(src), n_det)] + rng.normal(0, 1.0, (n_det, 4)) * [1, 1, .5, .5]
    det[:, 2:] = np.abs(det[:, 2:]) + 0.5
    iou_min = [0.5, 0.3, 0.1][case % 3]
    iou = ds.iou_matrix(det, gt)
    di, gi = ds.match_frame(det, gt, iou_min)
    n_matched += len(di)
    check(len(di) == len(gi) and len(set(di.tolist())) == len(di)
          and len(set(gi.tolist())) == len(gi), f"case {case}: not one-to-one: {di} {gi}")
    check(bool(np.all(iou[di, gi] >= iou_min)), f"case {case}: a pair below iou_min {iou_min}")
    best = brute_best(iou, iou_min)
    got = float(iou[di, gi].sum())
    check(close(got, best, 1e-9), f"case {case}: total IoU {got}, brute force finds {best}")
    greedy_worse += greedy_total(iou, iou_min) < best - 1e-9
check(greedy_worse > 0, "no random case where greedy matching is suboptimal: too easy cases")
check(n_matched > 400, f"only {n_matched} matches in 400 cases: the cases are too sparse")

# A crowded frame (the dense synthetic preset has ~3000 particles): match_frame only compares
# nearby pairs and solves each cluster apart; the total must equal one assignment over all pairs.
from scipy.optimize import linear_sum_assignment  # noqa: E402
gt = np.column_stack([rng.uniform(0, 300, (900, 2)), rng.uniform(4, 12, (900, 2))])
gt = np.vstack([gt, [[0, 0, 300, 300], [100, 100, 60, 40]]])   # and two large ones
det = np.vstack([gt[rng.integers(0, len(gt), 1000)] + rng.normal(0, 1.5, (1000, 4)),
                 np.column_stack([rng.uniform(0, 300, (100, 2)), rng.uniform(4, 12, (100, 2))]),
                 [[0, 0, 250, 250], [110, 95, 50, 50]]])
det[:, 2:] = np.abs(det[:, 2:]) + 0.5
for iou_min in (0.5, 0.2):
    iou = ds.iou_matrix(det, gt)
    r, c = linear_sum_assignment(np.where(iou >= iou_min, iou, 0), maximize=True)
    ok = iou[r, c] >= iou_min
    di, gi = ds.match_frame(det, gt, iou_min)
    check(len(di) == ok.sum() and close(iou[di, gi].sum(), iou[r[ok], c[ok]].sum(), 1e-9)
          and bool(np.all(iou[di, gi] >= iou_min)) and len(set(gi.tolist())) == len(gi),
          f"crowded frame, iou_min {iou_min}: {len(di)} matches with total {iou[di, gi].sum()}, "
          f"dense assignment {ok.sum()} with {iou[r[ok], c[ok]].sum()}")
check(ds.match_frame(det[-2:], gt[-2:])[0].tolist() == [0, 1], "large boxes matched")

# IoU itself, by hand: two 2x2 boxes overlapping by 1x2 share 2 of 6 units; touching boxes 0.
check(close(ds.iou_matrix([[0, 0, 2, 2]], [[1, 0, 2, 2]])[0, 0], 1 / 3), "IoU, shifted boxes")
check(ds.iou_matrix([[0, 0, 2, 2]], [[2, 0, 2, 2]])[0, 0] == 0, "IoU of touching boxes")
check(ds.iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0, "IoU of empty boxes")
# A pair exactly at the threshold counts; the matching is independent of the boxes' order.
di, gi = ds.match_frame([[1, 0, 2, 2]], [[0, 0, 2, 2]], iou_min=1 / 3)
check(len(di) == 1, "a pair with IoU equal to iou_min is not matched")
# Greedy takes det 0 - gt 0 (IoU 0.905) and leaves det 1 without a partner (0.43 with gt 1); the
# optimum crosses: det 0 - gt 1 (0.667) and det 1 - gt 0 (0.739).
a = np.array([[0, 0, 10, 10], [2, 0, 10, 10]], float)
g = np.array([[0.5, 0, 10, 10], [-2, 0, 10, 10]], float)
di, gi = ds.match_frame(a, g)
check(sorted(zip(di.tolist(), gi.tolist())) == [(0, 1), (1, 0)],
      f"crossed pairs: got {list(zip(di.tolist(), gi.tolist()))}, expected [(0, 1), (1, 0)]")

# --- Clipping -----------------------------------------------------------------------------------
W, H = 20, 10
mask = np.zeros((H, W), bool)
mask[0:4, 15:20] = True  # rows 0..3, columns 15..19: touches the top and right borders
rows, cols = np.nonzero(mask)
mbox = np.array([[cols.min() - 0.5, rows.min() - 0.5, cols.max() + 1 - cols.min(),
                  rows.max() + 1 - rows.min()]])
check(np.array_equal(mbox, [[14.5, -0.5, 5, 4]]), f"box of a mask: {mbox}")
check(np.array_equal(ds.clip_boxes(mbox, W, H), mbox), "clipping changed a box made from a mask")
got = ds.clip_boxes([[-3, -2, 6, 5], [17, 8, 6, 5], [25, 3, 4, 4], [2, 2, 3, 3]], W, H)
want = [[-0.5, -0.5, 3.5, 3.5], [17, 8, 2.5, 1.5], [19.5, 3, 0, 4], [2, 2, 3, 3]]
check(np.allclose(got, want), f"clip_boxes: {got.tolist()}, expected {want}")
fd = ds.clip_boxes(ds.FrameDets(np.array([[-3., -2, 6, 5]]), np.array([.7]), np.array([2])), W, H)
check(isinstance(fd, ds.FrameDets) and np.allclose(fd.boxes, [want[0]]) and fd.scores[0] == .7
      and fd.classes[0] == 2, "clip_boxes of FrameDets")

# --- Scores on hand-made frames -----------------------------------------------------------------
gt = {1: np.array([[0, 0, 10, 10], [20, 20, 5, 5], [40, 40, 40, 40]], float),
      2: np.array([[0, 0, 6, 6]], float),
      4: np.zeros((0, 4))}
det = {1: np.array([[1, 0, 10, 10],        # gt 0, IoU 9/11, centre error 1
                    [40, 43, 40, 40],      # gt 2, centre error 3
                    [20, 20, 2, 2]]),      # on gt 1 but IoU 0.16: a false positive, size 2
       3: np.array([[0, 0, 20, 20]]),      # a frame without ground truth: a false positive
       4: np.zeros((0, 4))}
s = ds.score(det, gt, bins=ds.size_bin)
check((s["tp"], s["fp"], s["fn"], s["n_det"], s["n_gt"]) == (2, 2, 2, 4, 4),
      f"counts tp/fp/fn/n_det/n_gt: {s['tp'], s['fp'], s['fn'], s['n_det'], s['n_gt']}")
check(close(s["precision"], 0.5) and close(s["recall"], 0.5) and close(s["f1"], 0.5),
      f"P/R/F1 {s['precision'], s['recall'], s['f1']}")
check(np.allclose(np.sort(s["center_errors"]), [1, 3]) and close(s["median_center_error"], 2),
      f"centre errors {s['center_errors']}")
# tp, fp, fn: the small false positive and both small misses in "<=8", frame 3's 20-px one in "8-30"
want_bins = {"<=8": (0, 1, 2), "8-30": (1, 1, 0), ">30": (1, 0, 0)}
got_bins = {k: (v["tp"], v["fp"], v["fn"]) for k, v in s["bins"].items()}
check(got_bins == want_bins and list(s["bins"]) == list(ds.SIZE_BINS), f"bins {got_bins}")
b = s["bins"]["8-30"]
check(close(b["precision"], 0.5) and close(b["recall"], 1) and close(b["f1"], 2 / 3),
      f"bin 8-30 P/R/F1 {b['precision'], b['recall'], b['f1']}")
check(ds.size_bin([0, 0, 8, 3]) == "<=8" and ds.size_bin([0, 0, 3, 8.01]) == "8-30"
      and ds.size_bin([0, 0, 30, 30]) == "8-30" and ds.size_bin([0, 0, 31, 2]) == ">30",
      "size_bin edges")
# Restricting to frames; a stricter IoU (the first match has 0.818, the second 0.860) turns the
# first match into an error on both sides.
s = ds.score(det, gt, frames=[1])
check((s["tp"], s["fp"], s["fn"]) == (2, 1, 1), f"frames=[1]: {s['tp'], s['fp'], s['fn']}")
s = ds.score(det, gt, frames=[1], iou_min=0.85)
check((s["tp"], s["fp"], s["fn"]) == (1, 2, 2) and close(s["f1"], 1 / 3),
      f"iou_min 0.85: {s['tp'], s['fp'], s['fn'], s['f1']}")
s = ds.score({}, {}, frames=[1, 2])
check((s["tp"], s["precision"], s["recall"], s["f1"]) == (0, 0, 0, 0), "empty scores are 0")
check(np.isnan(s["median_center_error"]), "median centre error without matches is not NaN")

# --- Readers ------------------------------------------------------------------------------------
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
txt = os.path.join(TMP, "d.txt")
with open(txt, "w") as f:
    f.write("# comment\n3,-1,1.5,2,3,4,0.25,2,-1\n\n1,7,0,0,1,1,1,1,1\n3,-1,5,6,7,8,0.5,1,-1\n")
m = ds.load_mot(txt)
check(sorted(m) == [1, 3] and np.array_equal(m[3], [[1.5, 2, 3, 4], [5, 6, 7, 8]]), f"load_mot {m}")
m = ds.load_mot(txt, full=True)
check(np.array_equal(m[3].scores, [.25, .5]) and np.array_equal(m[3].classes, [2, 1]),
      "load_mot scores and classes")


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")


run("synth", "-q", "-o", os.path.join(TMP, "s"), "-s", "synth.frames=6", "-s", "synth.width=96",
    "-s", "synth.height=72", "-s", "synth.coverage=0.3", "-s", "synth.diameter_nm=[2,3]")
video = os.path.join(TMP, "s", "video.h5")
PART = ["-s", "detect.first_frame=3", "-s", "detect.last_frame=5"]
for name, sets in (("all", []), ("part", PART)):
    h5 = os.path.join(TMP, name + ".h5")
    run("detect", "-q", "-s", f"detect.model={MODEL}", "-s", "detect.score_threshold=0.3",
        *sets, "-o", h5, video)
    run("export", h5, "--detections", os.path.join(TMP, name + ".txt"))
    got = ds.load_nptrack_dets(h5)
    want = ds.load_mot(os.path.join(TMP, name + ".txt"), full=True)
    frames = [1, 2, 3, 4, 5, 6] if name == "all" else [3, 4, 5]
    check(sorted(got) == frames, f"{name}: frames {sorted(got)}, expected {frames}")
    check(sum(len(v.boxes) for v in got.values()) > 10, f"{name}: too few detections to learn")
    for t in frames:
        g, w = got[t], want.get(t, ds.FrameDets(np.zeros((0, 4)), np.zeros(0), np.zeros(0)))
        check(len(g.boxes) == len(w.boxes) and np.allclose(g.boxes, w.boxes, atol=6e-5)
              and np.allclose(g.scores, w.scores, atol=6e-7)
              and np.array_equal(g.classes, w.classes), f"{name}: frame {t} differs from export")

if FAILS:
    sys.exit(f"{len(FAILS)} check(s) failed")
print("test_detscore: all checks passed")
