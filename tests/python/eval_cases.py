"""Deterministic test cases for `nptrack eval`: ground truth and predictions as MOT rows.

Each case is a dict with name, gt and pred (lists of rows (frame, id, x, y, w, h, conf, cls,
vis)) and optionally events_gt / events_pred (lists of (frame, type, parents, children)).
Everything comes from fixed seeds, so a failure reproduces exactly.
"""

import numpy as np


def row(frame, tid, x, y, w, h, cls=1, conf=1.0, vis=1.0):
    return (int(frame), int(tid), float(x), float(y), float(w), float(h), float(conf), int(cls),
            float(vis))


def write_mot(path, rows, columns=9, header_comment=True, blank_lines=False):
    """Writes rows as MOT text; floats use repr() so the C reader sees the same doubles."""
    with open(path, "w") as f:
        if header_comment:
            f.write("# frame,id,x,y,w,h,conf,class,visibility\n")
        for k, r in enumerate(rows):
            fields = [str(r[0]), str(r[1])] + [repr(v) for v in r[2:6]]
            fields += [repr(r[6]), str(r[7]), repr(r[8])]
            f.write(",".join(fields[:columns]) + "\n")
            if blank_lines and k % 7 == 3:
                f.write("\n")


def write_events(path, events):
    with open(path, "w") as f:
        f.write("frame,type,parents,children\n")
        for frame, kind, parents, children in events:
            f.write("%d,%s,%s,%s\n" % (frame, kind, " ".join(map(str, parents)),
                                       " ".join(map(str, children))))


# ------------------------------------------------------------------------------------------
# Scenes


def _walk(rng, n_tracks, n_frames, size=(12, 40), area=(0, 600), speed=3.0, life=True):
    """Random gt tracks: boxes drifting across an image; some start late or end early."""
    rows = []
    for tid in range(1, n_tracks + 1):
        start, end = 1, n_frames
        if life and rng.random() < 0.5:
            start = int(rng.integers(1, n_frames // 2))
            end = int(rng.integers(start + 3, n_frames + 1))
        x, y = rng.uniform(*area, size=2)
        w, h = rng.uniform(*size, size=2)
        vx, vy = rng.normal(0, speed, size=2)
        cls = 1 if rng.random() < 0.6 else 2
        for f in range(start, end + 1):
            if rng.random() < 0.05:
                cls = 3 - cls  # metal <-> oxide: the particle keeps its identity
            rows.append(row(f, tid, x, y, w, h, cls))
            x += vx + rng.normal(0, 0.5)
            y += vy + rng.normal(0, 0.5)
            w = max(1.0, w + rng.normal(0, 0.3))
            h = max(1.0, h + rng.normal(0, 0.3))
    rows.sort(key=lambda r: r[0])
    return rows


def _perturb(rng, gt, jitter=2.0, drop=0.1, fp_rate=0.1, switch=0.02, split=0.02, cls_err=0.1,
             id_offset=100):
    """A noisy tracker: jittered boxes, misses, false positives, id switches and new ids."""
    ids = sorted({r[1] for r in gt})
    idmap = {g: id_offset + k for k, g in enumerate(ids)}
    next_id = id_offset + len(ids) + 1000
    frames = sorted({r[0] for r in gt})
    out = []
    for f in frames:
        in_frame = [r for r in gt if r[0] == f]
        if len(in_frame) >= 2 and rng.random() < switch * len(in_frame):
            a, b = rng.choice(len(in_frame), size=2, replace=False)
            ga, gb = in_frame[a][1], in_frame[b][1]
            idmap[ga], idmap[gb] = idmap[gb], idmap[ga]
        for r in in_frame:
            if rng.random() < split:
                idmap[r[1]] = next_id
                next_id += 1
            if rng.random() < drop:
                continue
            x, y, w, h = r[2:6]
            s = jitter * rng.normal(size=4)
            cls = r[7] if rng.random() >= cls_err else 3 - r[7]
            out.append(row(f, idmap[r[1]], x + s[0], y + s[1], max(0.5, w + s[2]),
                           max(0.5, h + s[3]), cls, conf=float(rng.random())))
        for _ in range(rng.poisson(fp_rate * max(1, len(in_frame)))):
            out.append(row(f, next_id, *rng.uniform(0, 600, size=2), *rng.uniform(8, 40, size=2),
                           cls=int(rng.integers(1, 3))))
            next_id += 1
    # Rows of one frame in a shuffled order: TrackEval keeps file order within a frame.
    out.sort(key=lambda r: (r[0], rng.random()))
    return out


# Box pairs whose IoU, computed as TrackEval does (corners first), lies within machine epsilon
# below a threshold (an alpha of HOTA, or 0.5): TrackEval's "- eps" in HOTA and CLEAR counts
# them as matches, Identity (no eps) does not, and computing areas as w*h instead of from the
# corners changes several of the decisions.  Found by a search over 1-decimal coordinates.
THRESHOLD_PAIRS = [
    ((43.9, 276.8, 35.7, 6.1), (76.2, 276.8, 35.7, 6.1)),      # 0.05
    ((1.1, 30.0, 27.5, 39.9), (23.6, 30.0, 27.5, 39.9)),       # 0.10
    ((225.4, 271.5, 39.6, 13.1), (257.8, 271.5, 39.6, 13.1)),  # 0.10
    ((176.1, 246.1, 23.0, 7.4), (193.1, 246.1, 23.0, 7.4)),    # 0.15
    ((148.6, 228.1, 25.3, 4.8), (167.3, 228.1, 25.3, 4.8)),    # 0.15
    ((61.5, 160.4, 36.3, 20.7), (85.7, 160.4, 36.3, 20.7)),    # 0.20
    ((10.2, 157.2, 39.9, 3.8), (36.8, 157.2, 39.9, 3.8)),      # 0.20
    ((220.6, 236.5, 23.0, 26.4), (234.4, 236.5, 23.0, 26.4)),  # 0.25
    ((59.7, 278.1, 29.5, 19.1), (77.4, 278.1, 29.5, 19.1)),    # 0.25
    ((41.8, 264.2, 22.1, 18.1), (53.7, 264.2, 22.1, 18.1)),    # 0.30
    ((0.3, 79.7, 39.0, 10.1), (21.3, 79.7, 39.0, 10.1)),       # 0.30
    ((23.3, 68.8, 13.5, 31.9), (29.8, 68.8, 13.5, 31.9)),      # 0.35
    ((39.4, 264.6, 19.6, 17.5), (47.8, 264.6, 19.6, 17.5)),    # 0.40
    ((20.3, 199.0, 34.8, 21.6), (33.5, 199.0, 34.8, 21.6)),    # 0.45
    ((87.8, 0.4, 39.0, 12.6), (87.8, 0.4, 78.0, 12.6)),        # 0.50
    ((58.1, 64.2, 34.5, 5.9), (58.1, 64.2, 69.0, 5.9)),        # 0.50
    ((90.8, 156.4, 24.8, 6.6), (98.0, 156.4, 24.8, 6.6)),      # 0.55
    ((277.7, 133.0, 2.0, 23.1), (278.2, 133.0, 2.0, 23.1)),    # 0.60
    ((79.6, 62.5, 33.0, 27.4), (86.6, 62.5, 33.0, 27.4)),      # 0.65
    ((148.6, 115.4, 17.0, 5.8), (151.6, 115.4, 17.0, 5.8)),    # 0.70
    ((295.0, 224.9, 7.0, 23.4), (296.0, 224.9, 7.0, 23.4)),    # 0.75
    ((62.4, 270.0, 26.1, 19.0), (65.3, 270.0, 26.1, 19.0)),    # 0.80
    ((29.2, 95.9, 37.0, 12.9), (32.2, 95.9, 37.0, 12.9)),      # 0.85
    ((99.0, 130.4, 34.2, 17.9), (100.8, 130.4, 34.2, 17.9)),   # 0.90
    ((136.4, 63.2, 19.5, 25.8), (136.9, 63.2, 19.5, 25.8)),    # 0.95
]


def cases():
    rng = np.random.default_rng(20240601)
    out = []

    # Two particles crossing; the tracker swaps their ids after the crossing.
    gt = [row(f, 1, 10 + 5 * f, 50, 20, 20) for f in range(1, 21)]
    gt += [row(f, 2, 110 - 5 * f, 52, 20, 20) for f in range(1, 21)]
    pred = [row(f, 7 if f <= 10 else 8, 10 + 5 * f + 1, 50, 20, 20) for f in range(1, 21)]
    pred += [row(f, 8 if f <= 10 else 7, 110 - 5 * f, 53, 20, 20) for f in range(1, 21)]
    out.append(dict(name="id_switch", gt=sorted(gt), pred=sorted(pred)))

    # Fragmented predictions: gaps, then the track resumes under the same and new ids.
    gt = [row(f, 3, 100, 100 + f, 30, 30) for f in range(1, 41)]
    pred = [row(f, 1 if f < 20 else 2, 101, 100 + f, 30, 29)
            for f in range(1, 41) if not (8 <= f <= 11 or 25 <= f <= 27 or f == 33)]
    out.append(dict(name="fragmented", gt=gt, pred=pred))

    # Empty frames on both sides; frames with only gt; frames with only predictions.
    gt = [row(f, k, 20 * k, 30, 15, 15) for f in range(1, 31) for k in (1, 2, 3)
          if not (5 <= f <= 9) and not (k == 2 and 14 <= f <= 18)]
    pred = [row(f, k + 10, 20 * k + 1, 30, 15, 15) for f in range(1, 34) for k in (1, 2, 3)
            if not (5 <= f <= 9) and not (20 <= f <= 22)]
    out.append(dict(name="empty_frames", gt=gt, pred=pred))

    # Ground truth with no rows in some frames while the tracker has boxes there (CLEAR keeps
    # its previous-step matches across such frames).
    gt = [row(f, 1, 50, 50, 25, 25) for f in range(1, 26) if not 10 <= f <= 13]
    gt += [row(f, 2, 150, 50, 25, 25) for f in range(1, 26) if not 10 <= f <= 13]
    pred = [row(f, 5 if f < 12 else 6, 51, 50, 25, 25) for f in range(1, 26)]
    pred += [row(f, 9, 149, 51, 25, 25) for f in range(1, 26) if f % 6]
    out.append(dict(name="gt_gaps", gt=sorted(gt), pred=sorted(pred)))

    # A tracker that outputs nothing, and a ground truth with no boxes at all.
    gt = _walk(rng, 5, 12)
    out.append(dict(name="tracker_no_output", gt=gt, pred=[]))
    out.append(dict(name="gt_no_rows", gt=[], pred=_perturb(rng, gt)))
    out.append(dict(name="both_empty", gt=[], pred=[]))

    # Ids reused for different particles after the first one left (gt and tracker).
    gt = [row(f, 4, 40, 40, 20, 20) for f in range(1, 11)]
    gt += [row(f, 4, 300, 200, 22, 22) for f in range(15, 26)]
    gt += [row(f, 5, 200, 40, 20, 20) for f in range(1, 26)]
    pred = [row(f, 1, 41, 40, 20, 20) for f in range(1, 11)]
    pred += [row(f, 1, 200, 41, 20, 20) for f in range(12, 26)]
    pred += [row(f, 2, 200, 40, 20, 20) for f in range(1, 12)]
    pred += [row(f, 2, 301, 200, 22, 22) for f in range(15, 26)]
    out.append(dict(name="id_reuse", gt=sorted(gt), pred=sorted(pred)))

    # Tiny boxes (1-5 px) at sub-pixel offsets, plus degenerate ones (zero/negative size).
    gt, pred = [], []
    for f in range(1, 31):
        for k in range(12):
            w = 1 + (k % 5)
            gt.append(row(f, k + 1, 10 * k + 0.25 * f, 20 + 0.5 * k, w, w))
            pred.append(row(f, k + 21, 10 * k + 0.25 * f + rng.uniform(-0.7, 0.7),
                            20 + 0.5 * k + rng.uniform(-0.7, 0.7), w + rng.uniform(-0.5, 0.5),
                            w + rng.uniform(-0.5, 0.5)))
        gt.append(row(f, 99, 5, 5, 0.0, 3))
        pred.append(row(f, 98, 5, 5, 3, -1.0))
        pred.append(row(f, 97, 5, 5, 1e-9, 1e-9))
    out.append(dict(name="tiny_boxes", gt=gt, pred=pred))

    # Boxes past the image border (negative corners, beyond 512 px): never clipped.
    gt, pred = [], []
    for f in range(1, 21):
        gt.append(row(f, 1, -15 + f, -8, 30, 30))
        gt.append(row(f, 2, 500 + f, 495, 40, 40))
        gt.append(row(f, 3, -100, 250, 90, 20))
        pred.append(row(f, 1, -14 + f, -9, 31, 30))
        pred.append(row(f, 2, 498 + f, 496, 40, 41))
        pred.append(row(f, 3, -20, 250, 10, 20))  # overlaps only the part left of x = -10
    out.append(dict(name="past_border", gt=gt, pred=pred))

    # Classes 1 and 2 mixed, turning mid-track; tracking metrics must ignore them.
    gt = _walk(rng, 10, 30)
    pred = _perturb(rng, gt, cls_err=0.3)
    out.append(dict(name="mixed_classes", gt=gt, pred=pred, class_free_twin=True))

    # Ties: identical boxes on both sides, integer coordinates with equal IoUs, one box
    # against many, many against one (single row / single column frames).
    gt, pred = [], []
    for f in range(1, 16):
        gt += [row(f, 1, 10, 10, 20, 20), row(f, 2, 10, 10, 20, 20), row(f, 3, 40, 10, 20, 20)]
        pred += [row(f, 11, 10, 10, 20, 20), row(f, 12, 10, 10, 20, 20),
                 row(f, 13, 20, 10, 20, 20), row(f, 14, 30, 10, 20, 20)]
        if f % 3 == 0:
            pred += [row(f, 15, 10, 10, 20, 20)]
    for f in range(16, 26):
        gt += [row(f, 5, 100, 100, 10, 10)]
        pred += [row(f, 21 + k, 100 + dx, 100, 10, 10) for k, dx in enumerate((0, 0, 5, -5))]
    for f in range(26, 36):
        gt += [row(f, 6 + k, 200 + dx, 100, 10, 10) for k, dx in enumerate((0, 0, 5, -5))]
        pred += [row(f, 31, 200, 100, 10, 10)]
    out.append(dict(name="ties", gt=gt, pred=pred))

    # IoUs just below the thresholds, one pair per block of 4 frames; in the odd blocks the
    # tracker's box is also offered to a second gt box (an assignment with an exact tie).
    gt, pred = [], []
    for k, (a, b) in enumerate(THRESHOLD_PAIRS):
        for f in range(4 * k + 1, 4 * k + 5):
            gt.append(row(f, k + 1, *a))
            pred.append(row(f, k + 101, *b))
            if k % 2:
                gt.append(row(f, k + 51, *a))
    out.append(dict(name="thresholds", gt=gt, pred=pred))

    # A file in no particular frame order (the reader sorts stably by frame).
    gt = _walk(rng, 6, 15)
    pred = _perturb(rng, gt)
    perm = rng.permutation(len(pred))
    shuffled = [pred[k] for k in perm]
    out.append(dict(name="unsorted_file", gt=gt, pred=shuffled))

    # Non-contiguous and large ids.
    gt = [(r[0], [1000, 5, 77, 123456789][(r[1] - 1) % 4] + 1000 * ((r[1] - 1) // 4)) + r[2:]
          for r in _walk(rng, 8, 20)]
    pred = _perturb(rng, gt, id_offset=3)
    out.append(dict(name="sparse_ids", gt=gt, pred=pred))

    # Random perturbed trackers on ~30 gt tracks x 50 frames, several noise levels.
    for k, (jit, drop, fp, sw) in enumerate([(1.0, 0.05, 0.05, 0.01), (3.0, 0.1, 0.1, 0.02),
                                              (6.0, 0.2, 0.3, 0.05), (10.0, 0.3, 0.5, 0.1),
                                              (2.0, 0.0, 0.0, 0.0), (4.0, 0.15, 0.2, 0.03)]):
        gt = _walk(rng, 30, 50)
        pred = _perturb(rng, gt, jitter=jit, drop=drop, fp_rate=fp, switch=sw)
        out.append(dict(name="random_%d" % k, gt=gt, pred=pred))

    # Crowded small scene: many overlapping boxes per frame (exercises pairwise sums > 8).
    gt = _walk(rng, 40, 20, size=(20, 60), area=(0, 150), speed=1.0, life=False)
    pred = _perturb(rng, gt, jitter=3.0)
    out.append(dict(name="crowded", gt=gt, pred=pred))

    # Merge and split events over tracks with known correspondences.
    gt, pred = [], []
    for f in range(1, 41):
        if f < 20:  # tracks 1, 2 merge into 3 at frame 20
            gt += [row(f, 1, 10, 10, 20, 20), row(f, 2, 35, 10, 20, 20)]
            pred += [row(f, 51, 11, 10, 20, 20), row(f, 52, 35, 11, 20, 20)]
        else:
            gt += [row(f, 3, 20, 10, 30, 20)]
            pred += [row(f, 53, 21, 10, 30, 20)]
        if f < 25:  # track 4 splits into 5, 6 at frame 25
            gt += [row(f, 4, 200, 200, 30, 30)]
            pred += [row(f, 54, 200, 201, 30, 30)]
        else:
            gt += [row(f, 5, 190, 200, 20, 20), row(f, 6, 215, 200, 20, 20)]
            pred += [row(f, 55, 191, 200, 20, 20), row(f, 56, 215, 199, 20, 20)]
    events_gt = [(20, "merge", [1, 2], [3]), (25, "split", [4], [5, 6]),
                 (30, "merge", [5, 6], [4])]
    events_pred = [(22, "merge", [51, 52], [53]), (24, "split", [54], [55, 56]),
                   (26, "split", [54], [55]), (30, "split", [55], [54]),
                   (35, "merge", [51], [53])]
    out.append(dict(name="events", gt=gt, pred=pred, events_gt=events_gt,
                    events_pred=events_pred))
    return out


def lsa_matrices():
    """Tie-heavy cost matrices for comparing the C assignment with scipy's."""
    rng = np.random.default_rng(7)
    mats = [np.zeros((1, 1)), np.zeros((3, 3)), np.ones((4, 2)), np.ones((2, 5)),
            np.arange(12.0).reshape(3, 4) % 2, -np.eye(5)]
    for _ in range(300):
        nr, nc = rng.integers(1, 9, size=2)
        hi = int(rng.integers(1, 4))
        mats.append(rng.integers(0, hi + 1, size=(nr, nc)).astype(float))
    for _ in range(40):
        nr, nc = rng.integers(10, 40, size=2)
        mats.append(rng.integers(0, 3, size=(nr, nc)).astype(float))
    for _ in range(40):
        nr, nc = rng.integers(1, 12, size=2)
        m = np.round(rng.random((nr, nc)), 1) * (rng.random((nr, nc)) < 0.4)
        mats.append(-m)
    return mats
