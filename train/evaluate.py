"""Scores a checkpoint or a model file with PyTorch: synthetic validation videos (per size bin,
per dose, per family) and the real labelled TEM images (per half of the fixed split).

    python3 train/evaluate.py --ckpt ckpt --synth data/val --real ../shared/data/real-tem/msa-train
    python3 train/evaluate.py --model models/nptrack.h5 --real ... --json scores.json
    python3 train/evaluate.py --model models/nptrack.h5 --engine build/nptrack --synth data/val

Detection is PyTorch's, decoded with a max-pool peak test (docs/decode.md without its plateau
rule, which matters only for exactly equal heatmap values): quick enough to steer training.
With --engine the detections are the C engine's (`nptrack detect`, the model's own decoding
defaults): the model card's numbers are made that way.

Matching: one-to-one at IoU >= 0.5 (train/detscore.py); both sides are clipped to the frame
before comparing, since the real labels are clipped at the border and nptrack's boxes are not.
"""

import argparse
import json
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detscore  # noqa: E402
from input_norm import normalise  # noqa: E402

REAL_TUNE = [2, 3, 5, 8, 9]       # frames (1-based) the steering may look at
REAL_HELD_OUT = [1, 4, 6, 7, 10, 11]  # scored once per candidate model, never tuned on


def load_net(ckpt=None, model=None, device="cpu"):
    if model:
        from export import read_model
        net = read_model(model)
    else:
        import model as npt_model
        ck = torch.load(os.path.join(ckpt, "model.pt"), map_location="cpu")
        net = npt_model.build(norm_mode="frame")
        net.load_state_dict(ck["model"])
    return net.to(device).eval()


# NPT_SUPPRESS overrides the model's suppress_ratio (docs/decode.md rule 3), for steering
SUPPRESS = float(os.environ["NPT_SUPPRESS"]) if os.environ.get("NPT_SUPPRESS") else None


def centre_suppress(cx, cy, wh, alpha):
    """docs/decode.md rule 3, before top-K: greedy by score (rows are sorted), a detection is
    dropped when its centre lies closer than alpha * min(side of either box) (side = min(w, h))
    to the centre of one kept before it.  Neighbours come from a k-d tree."""
    from scipy.spatial import cKDTree
    pts = torch.stack([cx, cy], 1).cpu().numpy()
    side = wh.min(0).values.cpu().numpy()
    n = len(pts)
    pairs = cKDTree(pts).query_pairs(alpha * float(side.max()), output_type="ndarray")
    keep = np.ones(n, bool)
    if len(pairs):
        i, j = pairs.min(1), pairs.max(1)
        d2 = ((pts[i] - pts[j]) ** 2).sum(1)
        lim = alpha * np.minimum(side[i], side[j])
        close = d2 < lim * lim
        i, j = i[close], j[close]
        order = np.argsort(i, kind="stable")
        i, j = i[order], j[order]
        starts = np.searchsorted(i, np.arange(n + 1))
        for a in range(n):
            if keep[a]:
                keep[j[starts[a]:starts[a + 1]]] = False
    return torch.from_numpy(keep).to(cx.device)


@torch.no_grad()
def detect(net, frames, device, threshold=None, top_k=None, batch=8):
    """frames uint8/uint16 [N, H, W] -> list of (boxes [n, 4] x, y, w, h; scores; classes)."""
    meta = net.meta
    thr = meta["score_threshold"] if threshold is None else threshold
    k = meta["top_k"] if top_k is None else top_k
    s, mult = meta["output_stride"], meta["multiple"]
    n, h, w = frames.shape
    hp, wp = -(-h // mult) * mult, -(-w // mult) * mult
    out = []
    for b0 in range(0, n, batch):
        x = normalise(frames[b0:b0 + batch], 8 if frames.dtype == np.uint8 else 16, meta)
        x = np.pad(np.asarray(x, np.float32), ((0, 0), (0, hp - h), (0, wp - w)))
        heads = net(torch.from_numpy(x)[:, None].to(device))
        hm = heads["heatmap"].float()
        ho, wo = -(-h // s), -(-w // s)
        hm = hm[:, :, :ho, :wo]
        peak = (hm == F.max_pool2d(hm, 3, 1, 1)) & (hm >= thr)
        for i in range(hm.shape[0]):
            c, yy, xx = torch.nonzero(peak[i], as_tuple=True)
            sc = hm[i, c, yy, xx]
            order = torch.argsort(sc, descending=True, stable=True)
            c, yy, xx, sc = c[order], yy[order], xx[order], sc[order]
            off = heads["offset"][i, :, yy, xx].float()
            wh = heads["size"][i, :, yy, xx].float().clamp(min=0)
            cx = s * (xx + off[0]) + (s - 1) / 2
            cy = s * (yy + off[1]) + (s - 1) / 2
            boxes = torch.stack([cx - wh[0] / 2, cy - wh[1] / 2, wh[0], wh[1]], 1)
            # rule 3a: a centre outside the frame needs >= 2 px of its box in view
            x1, y1 = w - 0.5, h - 0.5
            inside = (cx >= -0.5) & (cx <= x1) & (cy >= -0.5) & (cy <= y1)
            vx = torch.clamp(cx + wh[0] / 2, max=x1) - torch.clamp(cx - wh[0] / 2, min=-0.5)
            vy = torch.clamp(cy + wh[1] / 2, max=y1) - torch.clamp(cy - wh[1] / 2, min=-0.5)
            ok = inside | ((vx >= 2) & (vy >= 2))
            boxes, sc, c, cx, cy, wh = boxes[ok], sc[ok], c[ok], cx[ok], cy[ok], wh[:, ok]
            ratio = meta.get("suppress_ratio", 0.0) if SUPPRESS is None else SUPPRESS
            if ratio > 0 and len(boxes):
                keep = centre_suppress(cx.double(), cy.double(), wh.double(), ratio)
                boxes, sc, c = boxes[keep], sc[keep], c[keep]
            boxes, sc, c = boxes[:k], sc[:k], c[:k]
            out.append((boxes.cpu().numpy().astype(np.float64), sc.cpu().numpy(),
                        c.cpu().numpy() + 1))
    return out


def engine_detect(binary, video, scratch):
    """The C engine's detections (`nptrack detect` with the model's defaults) of every frame of
    `video`, in the same form as detect()."""
    import subprocess
    out = os.path.join(scratch, "dets.h5")
    subprocess.run([binary, "detect", "-q", "-s", f"detect.model={ENGINE_MODEL}", "-o", out,
                    video], check=True)
    d = detscore.load_nptrack_dets(out)
    return [(np.asarray(detscore._boxes(d[t]), np.float64), None, None) for t in sorted(d)]


ENGINE, ENGINE_MODEL, SCRATCH = None, None, "/tmp"


def run_detect(net, frames, device, threshold, video):
    if ENGINE:
        return engine_detect(ENGINE, video, SCRATCH)
    return detect(net, frames, device, threshold)


def _score(dets, gts, w, h, frames, bins=True):
    d = {t: detscore.clip_boxes(dets[t], w, h) for t in frames}
    g = {t: detscore.clip_boxes(gts.get(t, np.zeros((0, 4))), w, h) for t in frames}
    r = detscore.score(d, g, frames=frames, bins=detscore.size_bin if bins else None)
    r.pop("center_errors")
    return r


def eval_real(net, root, device, threshold=None):
    with h5py.File(os.path.join(root, "images.h5"), "r") as f:
        frames = f["/frames"][:]
    gts = {t: np.asarray(v) for t, v in detscore.load_mot(os.path.join(root, "gt.txt")).items()}
    res = run_detect(net, frames, device, threshold, os.path.join(root, "images.h5"))
    dets = {t + 1: r[0] for t, r in enumerate(res)}
    h, w = frames.shape[1:]
    return {"tune": _score(dets, gts, w, h, REAL_TUNE),
            "held_out": _score(dets, gts, w, h, REAL_HELD_OUT)}


def eval_synth(net, root, device, threshold=None):
    """Every video of a gen_data.py set (plan.json): overall, per size bin, dose and family."""
    plan = json.load(open(os.path.join(root, "plan.json")))["videos"]
    groups = {}
    allres = {}
    for v in plan:
        d = os.path.join(root, v["name"])
        with h5py.File(os.path.join(d, "video.h5"), "r") as f:
            frames = f["/frames"][:]
        gt = np.loadtxt(os.path.join(d, "gt.txt"), delimiter=",", ndmin=2).reshape(-1, 9)
        res = run_detect(net, frames, device, threshold, os.path.join(d, "video.h5"))
        key = v["name"]
        for t, r in enumerate(res):
            allres[(key, t + 1)] = r[0]
            rows = gt[gt[:, 0] == t + 1]
            groups.setdefault("gt", {})[(key, t + 1)] = rows[:, 2:6]
            for g in ("dose:" + str(v.get("dose")), "family:" + v["family"],
                      "bits:" + str(v["bits"])):
                groups.setdefault(g, []).append((key, t + 1))
    h, w = frames.shape[1:]
    gts = groups.pop("gt")
    out = {"all": _score(allres, gts, w, h, sorted(allres))}
    for g, keys in sorted(groups.items()):
        out[g] = _score(allres, gts, w, h, keys, bins=False)
    return out


def summary(name, r):
    line = (f"{name:24s} P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}  "
            f"n_gt {r['n_gt']:6d}  centre err {r['median_center_error']:.3f} px")
    for b, c in r.get("bins", {}).items():
        line += f"\n{'':26s}{b:>6s}: F1 {c['f1']:.4f}  P {c['precision']:.4f}  " \
                f"R {c['recall']:.4f}  n_gt {c['n_gt']}"
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt")
    ap.add_argument("--model")
    ap.add_argument("--synth", action="append", default=[])
    ap.add_argument("--real")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--json")
    ap.add_argument("--engine", help="detect with this nptrack binary (C engine, the model's "
                    "own decoding defaults) instead of PyTorch; needs --model")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    global ENGINE, ENGINE_MODEL
    if a.engine:
        if not a.model or a.threshold is not None:
            ap.error("--engine needs --model and takes the model's own threshold")
        ENGINE, ENGINE_MODEL = a.engine, a.model
    net = load_net(a.ckpt, a.model, dev)
    res = {}
    for s in a.synth:
        res[s] = eval_synth(net, s, dev, a.threshold)
        for k, r in res[s].items():
            print(summary(f"{os.path.basename(s)} {k}", r))
    if a.real:
        res["real"] = eval_real(net, a.real, dev, a.threshold)
        for k, r in res["real"].items():
            print(summary(f"real {k}", r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=float)


if __name__ == "__main__":
    main()
