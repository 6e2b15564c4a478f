"""Which synthetic particles can be seen at all, and detection scores on those alone.

    python3 train/visibility.py --synth /tmp/val --model models/nptrack.h5 --engine build/nptrack

The generator draws contrast, support texture, dose and blur independently, so some validation
videos hold particles that no observer, human or machine, can find (docs/model.md shows one).
For each ground-truth particle this estimates a detectability index d' (the signal of an ideal
matched filter over its noise) from the video's drawn imaging parameters (the `synth.*`
attributes of video.h5) and its box and class, and deliberately errs towards "visible":

- thickness contrast: the mean of 1 - exp(-t / mfp) over the particle's disc, for a sphere of
  the box's geometric-mean diameter (an oxide shell: the same minus its void), with the metal or
  oxide mean free path;
- against quantum noise, 1 / sqrt(dose x area), and the support's fine grain averaged over the
  disc, 0.8 x contrast^2 x pi g^2 / (area + pi g^2) (texture.c: the fine component carries 0.8 of
  the variance, with autocorrelation exp(-r^2 / g^2)); the coarse component is left out;
- plus, in quadrature and against quantum noise alone, the Fresnel fringe (amplitude over a ring
  of the fringe width at the outline) and lattice fringes (amplitude / sqrt 2 over the disc, for
  every particle, as if all were on a zone axis, when the period spans >= 2 px, damped by the
  blur's transfer at that period).

A particle is *visible* when d' >= k (Rose's criterion, k = 5 by default).  Scores on visible
particles treat the others as "don't care": a detection matched to one is neither a true nor a
false positive, and missing one is no miss (MOTChallenge's ignore regions).  Matching is
evaluate.py's (one to one at IoU >= 0.5, boxes clipped to the frame).
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detscore  # noqa: E402

LATTICE_NM = {1: 0.203, 2: 0.209}  # config/synth/train.cfg: lattice_metal_nm, lattice_oxide_nm


def mean_attenuation(tmax_nm, mfp_nm, void=0.0, n=256):
    """Mean of 1 - exp(-t / mfp) over the disc of a sphere of thickness tmax at its centre; with
    void > 0, a shell whose hollow core is the sphere scaled by `void`.  tmax_nm and void may be
    arrays (one value per particle); returns an array of their shape."""
    tmax = np.asarray(tmax_nm, np.float64)[..., None]
    v = np.broadcast_to(np.asarray(void, np.float64), np.shape(tmax_nm))[..., None]
    u = (np.arange(n) + 0.5) / n  # r^2 / R^2: uniform over the disc's area
    t = tmax * np.sqrt(1 - u)
    vv = np.where(v > 0, v, 1.0)
    inner = np.where(v > 0, tmax * v * np.sqrt(np.clip(1 - u / (vv * vv), 0, None)), 0.0)
    return np.mean(1 - np.exp(-(t - inner) / mfp_nm), axis=-1)


def detectability(boxes, classes, attrs, chunk=16384):
    """d' of each ground-truth particle (boxes [n, 4] px, classes 1 metal / 2 oxide) of a video
    whose drawn parameters are `attrs` (the synth.* attributes of its video.h5)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1).astype(np.int64)
    p = attrs["synth.pixel_size_nm"]
    dose = attrs["synth.dose_e_px"]
    g = attrs["synth.support_grain_nm"] / p
    sc = attrs["synth.support_contrast"]
    fw = attrs["synth.fresnel_width_nm"] / p
    blur = attrs["synth.blur_px"]
    out = np.zeros(len(boxes))
    for k0 in range(0, len(boxes), chunk):
        b, c = boxes[k0:k0 + chunk], classes[k0:k0 + chunk]
        d_px = np.sqrt(np.maximum(b[:, 2], 1e-3) * np.maximum(b[:, 3], 1e-3))
        r = d_px / 2
        area = np.pi * r * r
        oxide = c == 2
        contrast = np.where(
            oxide, mean_attenuation(d_px * p, attrs["synth.oxide_mfp_nm"],
                                    np.where(oxide, attrs["synth.void_frac"], 0.0)),
            mean_attenuation(d_px * p, attrs["synth.metal_mfp_nm"]))
        var = 0.8 * sc * sc * np.pi * g * g / (area + np.pi * g * g) + 1.0 / (dose * area)
        d_thick = contrast / np.sqrt(var)
        d_fresnel = attrs["synth.fresnel_amp"] * np.sqrt(dose * 2 * np.pi * r * fw)
        period = np.where(oxide, LATTICE_NM[2], LATTICE_NM[1]) / p
        mtf = np.exp(-2 * np.pi ** 2 * blur ** 2 / period ** 2)
        on = (period >= 2) & (attrs["synth.zone_axis_frac"] > 0)
        d_lattice = np.where(on, attrs["synth.lattice_amp"] * mtf / np.sqrt(2) *
                             np.sqrt(dose * area), 0.0)
        out[k0:k0 + chunk] = np.sqrt(d_thick ** 2 + d_fresnel ** 2 + d_lattice ** 2)
    return out


def score_visible(dets, gts, visible, w, h, keys):
    """tp, fp, fn, per size bin too, over the visible ground truth (see the module's text)."""
    tot = {b: [0, 0, 0, 0] for b in ("all",) + detscore.SIZE_BINS}  # tp, fp, fn, n_ignored
    for key in keys:
        d = detscore.clip_boxes(dets[key], w, h)
        g = detscore.clip_boxes(gts[key], w, h)
        vis = visible[key]
        md, mg = detscore.match_frame(d, g)
        matched_d = np.zeros(len(d), bool)
        matched_d[md] = True
        hit = np.zeros(len(g), bool)
        hit[mg] = True
        for i, j in zip(md, mg):
            if vis[j]:
                for b in ("all", detscore.size_bin(g[j])):
                    tot[b][0] += 1
        for i in np.flatnonzero(~matched_d):
            for b in ("all", detscore.size_bin(d[i])):
                tot[b][1] += 1
        for j in range(len(g)):
            b = detscore.size_bin(g[j])
            if vis[j] and not hit[j]:
                tot["all"][2] += 1
                tot[b][2] += 1
            if not vis[j]:
                tot["all"][3] += 1
                tot[b][3] += 1
    res = {}
    for b, (tp, fp, fn, ign) in tot.items():
        p, r, f1 = detscore._rates(tp, fp, fn)
        res[b] = dict(tp=tp, fp=fp, fn=fn, n_visible=tp + fn, n_ignored=ign, precision=p,
                      recall=r, f1=f1)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", required=True, help="a gen_data.py set (plan.json)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--engine", help="score the C engine (nptrack binary), else PyTorch")
    ap.add_argument("--k", type=float, nargs="+", default=[5.0],
                    help="visible when d' >= k (Rose: 5); several values score each")
    ap.add_argument("--json")
    a = ap.parse_args()
    import evaluate as ev
    net = None
    if a.engine:
        ev.ENGINE, ev.ENGINE_MODEL = a.engine, a.model
    else:
        net = ev.load_net(model=a.model, device="cpu")
    plan = json.load(open(os.path.join(a.synth, "plan.json")))["videos"]
    dets, gts, vis, keys_by = {}, {}, {}, {}
    for v in plan:
        d = os.path.join(a.synth, v["name"])
        with h5py.File(os.path.join(d, "video.h5"), "r") as f:
            frames = f["/frames"][:]
            attrs = {k: float(x) for k, x in f.attrs.items() if k.startswith("synth.")}
        gt = np.loadtxt(os.path.join(d, "gt.txt"), delimiter=",", ndmin=2).reshape(-1, 9)
        res = ev.run_detect(net, frames, "cpu", None, os.path.join(d, "video.h5"))
        for t, r in enumerate(res):
            key = (v["name"], t + 1)
            rows = gt[gt[:, 0] == t + 1]
            dets[key], gts[key] = r[0], rows[:, 2:6]
            vis[key] = detectability(rows[:, 2:6], rows[:, 7], attrs)
            for grp in ("all", "dose:" + str(v.get("dose")), "family:" + v["family"],
                        "video:" + v["name"]):
                keys_by.setdefault(grp, []).append(key)
    h, w = frames.shape[1:]
    allout = {}
    for k in a.k:
        seen = {key: dp >= k for key, dp in vis.items()}
        out = {g: score_visible(dets, gts, seen, w, h, ks) for g, ks in sorted(keys_by.items())}
        allout[str(k)] = out
        print(f"visible: d' >= {k:g}")
        for g in ["all"] + [x for x in sorted(out) if x != "all" and not x.startswith("video:")]:
            for b in ("all",) + detscore.SIZE_BINS:
                r = out[g][b]
                if r["n_visible"] + r["n_ignored"] == 0:
                    continue
                print(f"  {g:16s} {b:>5s}: F1 {r['f1']:.3f}  P {r['precision']:.3f}  "
                      f"R {r['recall']:.3f}  visible {r['n_visible']:6d}  not {r['n_ignored']:6d}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(model=a.model, engine=a.engine, scores=allout), f, indent=1)


if __name__ == "__main__":
    main()
