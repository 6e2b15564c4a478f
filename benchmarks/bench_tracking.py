#!/usr/bin/env python3
"""Tracking accuracy of nptrack against trackpy on a fixed suite of `nptrack synth` videos.

Three methods per video, all scored by `nptrack eval` (HOTA, DetA, AssA, IDF1, MOTA, IDSW; IoU
similarity, identical to TrackEval) against the video's exact ground truth:

  nptrack              `nptrack run` (shipped model, CPU backend) -> `nptrack export --tracks`.
  trackpy              trackpy.locate + trackpy.link, as a careful user would run it: parameters
                       tuned by a grid search maximising HOTA on a SEPARATE tuning video (same
                       preset and overrides, another seed), then run once on the test video.
                       Polarity comes from the video's `invert` attribute (particles dark on a
                       light support -> invert=True).  A feature's box is the square of side
                       2*sqrt(2)*size (size = radius of gyration; a uniform disc of diameter D has
                       size D/(2*sqrt(2))) centred on its centroid; pixel centres are at integers
                       in both trackpy and nptrack, so x = cx - side/2.
  nptrack dets+trackpy link
                       linking alone: nptrack's own detections (`nptrack detect`: the model's
                       threshold, boxes as detected; not the run archive's rows, whose low-score
                       rows and smoothed sizes come from nptrack's tracker) linked by trackpy.link with search_range, memory and a minimum track length
                       tuned the same way on the tuning video's nptrack detections.

Tuning (trackpy), in two stages, ties going to the first setting found:
  1. locate: diameter = odd(k * S), k in K_DIAM, S = median ground-truth box size sqrt(w h) of the
     tuning video (a user measures the particle size on the image); minmass at quantiles Q_MASS of
     the masses located with minmass 0 (minmass only filters located features, so one locate per
     diameter serves every minmass); linked with search_range S/2, memory 3.
  2. link: search_range = f * S for f in F_SEARCH, memory in MEMORY, tracks shorter than
     MIN_LEN frames dropped (trackpy.filter_stubs).
All seeds are >= 5000001, unseen by the shipped model's training.

frames/s: nptrack, frames / the archive's timing_total_s (detect + track; CPU backend, all
cores); trackpy, frames / (locate + link) wall time with locate spread over --processes
processes; dets+link, frames / (nptrack's timing_detect_s + trackpy link time).

Run (environment: benchmarks/requirements.txt; about 8 minutes on 2 idle cores, --quick about 3):
  python3 -m venv VENV && VENV/bin/pip install -r benchmarks/requirements.txt
  VENV/bin/python benchmarks/bench_tracking.py --nptrack build/nptrack --out /tmp/bench_tracking \\
      --json /tmp/bench_tracking.json
"""
import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import warnings

import h5py
import numpy as np
import pandas as pd
import trackpy as tp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = os.path.join(REPO, "config", "synth")

# name, preset, frames (full, --quick), test seed, tuning seed, overrides
SUITE = [
    ("sparse", "sparse", (150, 30), 5000001, 5000101, []),
    ("sintering", "sintering", (150, 30), 5000002, 5000102, []),
    # 2.5 frames/s so that 150 frames (60 s) hold a whole oxidation-reduction cycle (40-50 s)
    ("redox", "redox", (150, 30), 5000003, 5000103, ["synth.frame_rate_hz=2.5"]),
    ("lowdose-drift", "sintering", (150, 30), 5000004, 5000104,
     ["synth.dose_e_px=15", "synth.drift_nm_s=5.0"]),
    ("long-sparse", "sparse", (400, 60), 5000005, 5000101, []),
]
TUNE_FRAMES = (40, 20)  # full, --quick
K_DIAM = (0.5, 0.75, 1.0, 1.25)
Q_MASS = (0.0, 0.3, 0.5, 0.7, 0.85)
F_SEARCH = (0.1, 0.2, 0.35, 0.5)
MEMORY = (0, 3, 10)
MIN_LEN = (1, 5)

tp.quiet()
warnings.filterwarnings("ignore")


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def synth(nptrack, preset, frames, seed, overrides, out):
    if not os.path.exists(os.path.join(out, "gt.txt")):
        cmd = [nptrack, "synth", "-q", "-c", os.path.join(PRESETS, preset + ".cfg"),
               "-s", "synth.frames=%d" % frames, "-s", "synth.seed=%d" % seed, "-o", out]
        for o in overrides:
            cmd += ["-s", o]
        sh(cmd)
    return out


def evaluate(nptrack, gt, pred):
    return json.loads(sh([nptrack, "eval", "--gt", gt, "--pred", pred, "--json"]))


def gt_size(gt):
    a = np.loadtxt(gt, delimiter=",", ndmin=2)
    return float(np.median(np.sqrt(a[:, 4] * a[:, 5])))


def write_mot(path, df):
    """df: frame (0-based), particle, x, y, w, h."""
    with open(path, "w") as f:
        for r in df.sort_values(["frame", "particle"]).itertuples(index=False):
            f.write("%d,%d,%.4f,%.4f,%.4f,%.4f,1,1,-1\n"
                    % (r.frame + 1, r.particle + 1, r.x, r.y, r.w, r.h))


def score(nptrack, gt, df, path):
    write_mot(path, df)
    return evaluate(nptrack, gt, path)


# --- trackpy -------------------------------------------------------------------------------

_FRAMES = {}


def _locate_one(args):
    i, d, invert = args
    f = tp.locate(_FRAMES["v"][i], d, invert=invert, minmass=0)
    f["frame"] = i
    return f


def locate_all(frames, d, invert, processes):
    _FRAMES["v"] = frames
    jobs = [(i, d, invert) for i in range(len(frames))]
    if processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_locate_one, jobs, chunksize=4)
    else:
        parts = [_locate_one(j) for j in jobs]
    f = pd.concat(parts, ignore_index=True)
    side = 2.0 * math.sqrt(2.0) * f["size"]
    f["w"] = side
    f["h"] = side
    return f


def link(feats, search_range, memory, min_len):
    """trackpy.link on centroids (cx, cy); returns the frame with a 'particle' column, or None
    where trackpy gives up (subnetwork too large)."""
    if len(feats) == 0:
        return None
    f = feats[["frame", "cx", "cy", "w", "h"]].rename(columns={"cx": "x", "cy": "y"})
    try:
        t = tp.link(f, search_range, memory=memory)
    except Exception:  # SubnetOversizeException and kin: the setting is unusable
        return None
    if min_len > 1:
        t = tp.filter_stubs(t, min_len)
    t = t.rename(columns={"x": "cx", "y": "cy"})
    t["x"] = t["cx"] - t["w"] / 2
    t["y"] = t["cy"] - t["h"] / 2
    return t.reset_index(drop=True)


def tp_features(frames, d, invert, processes):
    f = locate_all(frames, d, invert, processes)
    f["cx"] = f["x"]
    f["cy"] = f["y"]
    return f[["frame", "cx", "cy", "w", "h", "mass"]]


def tune_link(nptrack, gt, feats, S, work):
    best = None
    for fs in F_SEARCH:
        for mem in MEMORY:
            for ml in MIN_LEN:
                t = link(feats, max(1.0, fs * S), mem, ml)
                if t is None:
                    continue
                m = score(nptrack, gt, t, os.path.join(work, "tune.txt"))
                if best is None or m["HOTA"] > best[0]:
                    best = (m["HOTA"], {"search_range": max(1.0, fs * S), "memory": mem,
                                        "min_len": ml})
    return best


def tune_trackpy(nptrack, tune_dir, frames, invert, processes, work):
    gt = os.path.join(tune_dir, "gt.txt")
    S = gt_size(gt)
    best = None
    for k in K_DIAM:
        d = int(round(k * S)) | 1
        d = max(d, 3)
        feats = tp_features(frames, d, invert, processes)
        for q in Q_MASS:
            mm = float(np.quantile(feats["mass"], q)) if q > 0 and len(feats) else 0.0
            t = link(feats[feats["mass"] >= mm], max(1.0, S / 2), 3, 1)
            if t is None:
                continue
            m = score(nptrack, gt, t, os.path.join(work, "tune.txt"))
            if best is None or m["HOTA"] > best[0]:
                best = (m["HOTA"], {"diameter": d, "minmass": mm, "invert": invert})
    loc = best[1]
    feats = tp_features(frames, loc["diameter"], invert, processes)
    feats = feats[feats["mass"] >= loc["minmass"]]
    h, lk = tune_link(nptrack, gt, feats, S, work)
    return dict(loc, **lk), h


# --- nptrack -------------------------------------------------------------------------------

def nptrack_run(nptrack, video_dir, work, name):
    arch = os.path.join(work, name + ".h5")
    t0 = time.time()
    sh([nptrack, "run", "-q", "--force", "-o", arch, os.path.join(video_dir, "video.h5")])
    wall = time.time() - t0
    pred = os.path.join(work, name + "_nptrack.txt")
    sh([nptrack, "export", "-q", arch, "--tracks", pred])
    with h5py.File(arch, "r") as f:
        timing = {k: float(f.attrs[k]) for k in ("timing_total_s", "timing_detect_s")}
    return pred, timing, wall


def nptrack_dets(nptrack, video_dir, work, name):
    """The detector's own detections (`nptrack detect`, the model's threshold, boxes as
    detected): the archive's rows are not, since the tracker adds low-score rows it used and
    smooths the sizes of tracked rows."""
    path = os.path.join(work, name + "_dets.h5")
    sh([nptrack, "detect", "-q", "-o", path, os.path.join(video_dir, "video.h5")])
    with h5py.File(path, "r") as f:
        d = f["detections"]
        dets = pd.DataFrame({k: d[k][()] for k in ("frame", "x", "y", "w", "h")})
    dets["cx"] = dets["x"] + dets["w"] / 2
    dets["cy"] = dets["y"] + dets["h"] / 2
    return dets


def load_frames(video_dir):
    with h5py.File(os.path.join(video_dir, "video.h5"), "r") as f:
        return f["frames"][()], bool(int(f.attrs["invert"]))


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, %s, Python %s" % (cpu, os.cpu_count(), platform.platform(),
                                            platform.python_version())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nptrack", default=os.path.join(REPO, "build", "nptrack"))
    ap.add_argument("--out", default="/tmp/bench_tracking", help="work directory (videos, tracks)")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--quick", action="store_true", help="short videos: checks that it runs")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                    help="processes for trackpy.locate (default: one per core)")
    ap.add_argument("--only", help="comma-separated video names")
    a = ap.parse_args()
    q = 1 if a.quick else 0
    os.makedirs(a.out, exist_ok=True)
    started = time.time()
    rows, tuned = [], {}
    suite = [s for s in SUITE if not a.only or s[0] in a.only.split(",")]
    for name, preset, frames, seed, tseed, ov in suite:
        T = frames[q]
        # videos are kept in --out and reused by a later run; their names carry the length
        vdir = synth(a.nptrack, preset, T, seed, ov, os.path.join(a.out, "%s-%d" % (name, T)))
        key = (preset, tuple(ov))
        tdir = synth(a.nptrack, preset, TUNE_FRAMES[q], tseed, ov,
                     os.path.join(a.out, "tune-%s-%d-%d" % (preset, tseed, TUNE_FRAMES[q])))
        gt = os.path.join(vdir, "gt.txt")
        S = gt_size(gt)
        # nptrack
        pred, timing, wall = nptrack_run(a.nptrack, vdir, a.out, name)
        dets = nptrack_dets(a.nptrack, vdir, a.out, name)
        m = evaluate(a.nptrack, gt, pred)
        rows.append(dict(video=name, method="nptrack", fps=T / timing["timing_total_s"], **m))
        # tuning (cached per preset + overrides: the long sparse video reuses sparse's)
        if key not in tuned:
            tframes, tinv = load_frames(tdir)
            tp_params, tp_h = tune_trackpy(a.nptrack, tdir, tframes, not tinv, a.processes, a.out)
            tdets = nptrack_dets(a.nptrack, tdir, a.out, "tune-" + name)
            lk_h, lk_params = tune_link(a.nptrack, os.path.join(tdir, "gt.txt"), tdets,
                                        gt_size(os.path.join(tdir, "gt.txt")), a.out)
            tuned[key] = {"tuning_video": tdir, "tuning_seed": tseed,
                          "trackpy": tp_params, "trackpy_tuning_hota": tp_h,
                          "link": lk_params, "link_tuning_hota": lk_h}
        tn = tuned[key]
        # trackpy
        vframes, vinv = load_frames(vdir)
        p = tn["trackpy"]
        t0 = time.time()
        feats = tp_features(vframes, p["diameter"], not vinv, a.processes)
        feats = feats[feats["mass"] >= p["minmass"]]
        t = link(feats, p["search_range"], p["memory"], p["min_len"])
        el = time.time() - t0
        if t is None:
            t = pd.DataFrame(columns=["frame", "particle", "x", "y", "w", "h"])
        m = score(a.nptrack, gt, t, os.path.join(a.out, name + "_trackpy.txt"))
        rows.append(dict(video=name, method="trackpy", fps=T / el, **m))
        # nptrack detections + trackpy link
        p = tn["link"]
        t0 = time.time()
        t = link(dets, p["search_range"], p["memory"], p["min_len"])
        el = time.time() - t0
        if t is None:
            t = pd.DataFrame(columns=["frame", "particle", "x", "y", "w", "h"])
        m = score(a.nptrack, gt, t, os.path.join(a.out, name + "_dets_tplink.txt"))
        rows.append(dict(video=name, method="nptrack dets + trackpy link",
                         fps=T / (timing["timing_detect_s"] + el), **m))
        for r in rows[-3:]:
            print("%-14s %-28s HOTA %.3f IDF1 %.3f MOTA %.3f IDSW %d  %.1f frames/s  (S %.0f px)"
                  % (r["video"], r["method"], r["HOTA"], r["IDF1"], r["MOTA"], r["IDSW"],
                     r["fps"], S), file=sys.stderr, flush=True)
    cmd = " ".join([os.path.basename(sys.executable)] + sys.argv)
    info = {"command": cmd, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "machine": machine(), "trackpy": tp.__version__,
        "seconds": round(time.time() - started, 1), "quick": a.quick,
        "suite": [{"video": s[0], "preset": s[1], "frames": s[2][q], "seed": s[3],
                   "tuning_seed": s[4], "overrides": s[5]} for s in suite],
        "tuned": [dict(v, preset=k[0], overrides=list(k[1])) for k, v in tuned.items()]}
    print("Command: `%s`  \nDate: %s  \nMachine: %s; trackpy %s; %.0f s\n"
          % (cmd, info["date"], info["machine"], tp.__version__, info["seconds"]))
    print("| video | method | HOTA | DetA | AssA | IDF1 | MOTA | IDSW | frames/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %d | %.1f |"
              % (r["video"], r["method"], r["HOTA"], r["DetA"], r["AssA"], r["IDF1"],
                 r["MOTA"], r["IDSW"], r["fps"]))
    print("\nTuned parameters:")
    for v in info["tuned"]:
        print("- %s %s: trackpy %s (tuning HOTA %.3f); link on nptrack dets %s (tuning HOTA %.3f)"
              % (v["preset"], " ".join(v["overrides"]), json.dumps(v["trackpy"]),
                 v["trackpy_tuning_hota"], json.dumps(v["link"]), v["link_tuning_hota"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(info, results=rows), f, indent=1)


if __name__ == "__main__":
    main()
