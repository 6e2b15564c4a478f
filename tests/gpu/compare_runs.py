#!/usr/bin/env python3
"""Two archives of `nptrack run` on the same video, the cpu backend's and the cudnn backend's:
the same detections and the same tracks.

Detections are paired frame by frame and class by class, nearest centres first (pairs further
than 1 px apart are no pair).  Every pair's box must agree within 0.1 px on each of x, y, w, h,
apart from pairs whose centres moved by more than MOVED_PX: there fp16 rounding moved the peak
to the neighbouring heatmap cell, whose value was within rounding of it (the peak test's own
margin, as MARGIN is the threshold's), and that cell predicts its own box.  At most
MOVED_SHARE of the pairs may be such, and the later rows of their tracks may differ by up to
what the moved peak did (the tracker smooths sizes); with the peak in its cell fp16 moves
boxes by 0.056 px at most (docs/performance.md, measured with the CPU backend's fp16
emulation).  A detection
without a partner is allowed only when its score lies within MARGIN of the model's threshold
(fp16 rounding moves it across).  Tracks: the pairs must induce a one-to-one map
between the cpu's and the gpu's track ids (a detection outside any track, id -1, in both), apart
from the tracks of unpaired near-threshold detections.  A third archive (backend auto) must say
`cudnn` and hold exactly the gpu's rows.

usage: compare_runs.py CPU.h5 GPU.h5 AUTO.h5 MODEL.h5
"""
import sys

import h5py
import numpy as np

BOX_TOL, MARGIN, PAIR_PX = 0.1, 0.02, 1.0
MOVED_PX, MOVED_SHARE = 0.05, 0.005
COLS = ("frame", "x", "y", "w", "h", "score", "class", "track_id")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    with h5py.File(path, "r") as f:
        assert text(f.attrs["status"]) == "complete", f"{path}: not complete"
        backend = text(f.attrs["backend"])
        (name,) = list(f["videos"].keys())
        d = f[f"videos/{name}/detections"]
        return backend, {c: d[c][()] for c in COLS}


def pair_frame(a, b, ia, ib):
    """Greedy nearest-centre pairs between rows ia of a and ib of b (same class)."""
    if len(ia) == 0 or len(ib) == 0:
        return []
    ca = np.stack([a["x"][ia] + a["w"][ia] / 2, a["y"][ia] + a["h"][ia] / 2], 1)
    cb = np.stack([b["x"][ib] + b["w"][ib] / 2, b["y"][ib] + b["h"][ib] / 2], 1)
    d = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
    pairs, used_a, used_b = [], set(), set()
    for k in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(k), len(ib))
        if d[i, j] > PAIR_PX:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i), used_b.add(j)
        pairs.append((ia[i], ib[j]))
    return pairs


def pairs_of(a, b):
    """Pairs (row of a, row of b) [n, 2], frame by frame and class by class (pair_frame)."""
    out = []
    for fr in np.union1d(a["frame"], b["frame"]):
        for cls in np.union1d(a["class"], b["class"]):
            ia = np.nonzero((a["frame"] == fr) & (a["class"] == cls))[0]
            ib = np.nonzero((b["frame"] == fr) & (b["class"] == cls))[0]
            out += pair_frame(a, b, ia, ib)
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def main():
    cpu_path, gpu_path, auto_path, model = sys.argv[1:5]
    with h5py.File(model, "r") as f:
        thr = float(f.attrs["score_threshold"])
    bc, c = load(cpu_path)
    bg, g = load(gpu_path)
    ba, a = load(auto_path)
    fails = []
    if bc != "cpu" or bg != "cudnn" or ba != "cudnn":
        fails.append(f"backends recorded: {bc}, {bg}, {ba} (want cpu, cudnn, cudnn)")
    for col in COLS:
        if not np.array_equal(a[col], g[col]):
            fails.append(f"auto and cudnn archives differ in {col}")
    pairs = pairs_of(c, g)
    pc, pg = pairs[:, 0], pairs[:, 1]
    d = np.max(np.stack([np.abs(c[k][pc] - g[k][pg]) for k in ("x", "y", "w", "h")]),
               axis=0) if len(pc) else np.zeros(0)
    dev = float(d.max()) if len(d) else 0.0
    dscore = float(np.max(np.abs(c["score"][pc] - g["score"][pg]))) if len(pc) else 0.0
    lone_c = np.setdiff1d(np.arange(len(c["frame"])), pc)
    lone_g = np.setdiff1d(np.arange(len(g["frame"])), pg)
    near = lambda s: np.abs(s - thr) <= MARGIN  # noqa: E731
    bad_c = lone_c[~near(c["score"][lone_c])]
    bad_g = lone_g[~near(g["score"][lone_g])]
    print(f"cpu {len(c['frame'])} detections, gpu {len(g['frame'])}: {len(pairs)} pairs, "
          f"largest box difference {dev:.4f} px, largest score difference {dscore:.2e}; "
          f"unpaired: {len(lone_c)} cpu, {len(lone_g)} gpu (near the threshold {thr}: "
          f"{len(lone_c) - len(bad_c)}, {len(lone_g) - len(bad_g)})")
    if len(pairs) == 0:
        fails.append("no pairs: the comparison learns nothing")
    moved = np.hypot((c["x"][pc] + c["w"][pc] / 2) - (g["x"][pg] + g["w"][pg] / 2),
                     (c["y"][pc] + c["h"][pc] / 2) - (g["y"][pg] + g["h"][pg] / 2)) > MOVED_PX
    # The tracker smooths a track's box size (track.size_momentum), so a moved peak's size
    # carries into its track's later rows, fading: those may differ by up to what the moved
    # peak's did, no more.
    carried = {}  # cpu track id -> (first frame of a moved peak in it, its box difference)
    for k in np.nonzero(moved)[0]:
        t, fr = int(c["track_id"][pc[k]]), int(c["frame"][pc[k]])
        if t >= 0 and (t not in carried or fr < carried[t][0]):
            carried[t] = (fr, max(float(d[k]), carried.get(t, (0, 0.0))[1]))
    limit = np.full(len(pc), BOX_TOL)
    for k, i in enumerate(pc.tolist()):
        t = int(c["track_id"][i])
        if t in carried and int(c["frame"][i]) > carried[t][0]:
            limit[k] = max(BOX_TOL, carried[t][1])
    after = limit > BOX_TOL
    print(f"{int(moved.sum())} of {len(pc)} pairs whose peak moved to a neighbouring cell "
          f"(centres > {MOVED_PX} px apart; allowed: {MOVED_SHARE:.1%}), box difference up to "
          f"{d[moved].max() if moved.any() else 0:.4f} px; {int(after.sum())} later rows of "
          f"their tracks up to {d[after].max() if after.any() else 0:.4f} px; the other pairs "
          f"up to {d[~moved & ~after].max() if (~moved & ~after).any() else 0:.4f} px")
    if moved.sum() > MOVED_SHARE * len(pc):
        fails.append(f"{int(moved.sum())} of {len(pc)} pairs' peaks moved cell (more than "
                     f"{MOVED_SHARE:.1%})")
    if np.any((d > limit) & ~moved):
        over = np.nonzero((d > limit) & ~moved)[0]
        print(f"{len(over)} of {len(pc)} pairs (peak in the same cell) differ by more than {BOX_TOL} px "
              f"(quantiles of the largest box difference per pair: 50% {np.quantile(d, 0.5):.4f}, "
              f"99% {np.quantile(d, 0.99):.4f}, 99.9% {np.quantile(d, 0.999):.4f}); the worst:")
        for k in over[np.argsort(-d[over])][:12]:
            i, j = pc[k], pg[k]
            print(f"  frame {c['frame'][i]} class {c['class'][i]}: cpu ({c['x'][i]:.2f} "
                  f"{c['y'][i]:.2f} {c['w'][i]:.2f} {c['h'][i]:.2f}) score {c['score'][i]:.4f}, "
                  f"gpu ({g['x'][j]:.2f} {g['y'][j]:.2f} {g['w'][j]:.2f} {g['h'][j]:.2f}) score "
                  f"{g['score'][j]:.4f}")
        fails.append(f"{len(over)} pairs' boxes differ by more than {BOX_TOL} px (up to "
                     f"{d[over].max():.4f}) with the peak in the same cell (or more than the "
                     "moved peak of their track)")
    if len(bad_c) or len(bad_g):
        fails.append(f"{len(bad_c)} cpu and {len(bad_g)} gpu detections unpaired away from the "
                     "threshold")
    # Tracks: a one-to-one map between the track ids of paired detections, except tracks that
    # hold an unpaired near-threshold detection.
    skip_c = set(c["track_id"][lone_c].tolist()) - {-1}
    skip_g = set(g["track_id"][lone_g].tolist()) - {-1}
    fwd, back, clash = {}, {}, 0
    for i, j in zip(pc.tolist(), pg.tolist()):
        tc, tg = int(c["track_id"][i]), int(g["track_id"][j])
        if tc in skip_c or tg in skip_g:
            continue
        if (tc == -1) != (tg == -1):
            clash += 1
            continue
        if tc == -1:
            continue
        if fwd.setdefault(tc, tg) != tg or back.setdefault(tg, tc) != tc:
            clash += 1
    n_tracks = len(set(c["track_id"].tolist()) - {-1})
    print(f"tracks: cpu {n_tracks}, gpu {len(set(g['track_id'].tolist()) - {-1})}; "
          f"{len(fwd)} mapped one to one, {clash} paired detections disagree "
          f"({len(skip_c)} cpu / {len(skip_g)} gpu tracks hold near-threshold detections)")
    if clash:
        fails.append(f"{clash} paired detections are in different tracks")
    for f in fails:
        print("FAIL:", f)
    print("all passed" if not fails else f"{len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
