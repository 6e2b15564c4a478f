#!/usr/bin/env python3
"""What stitching costs: chunked `nptrack run` against a one-chunk run of the same long videos.

For each video (nptrack synth, 64 x 64 px: presets dense (two seeds), sparse, sintering (merges),
redox (oxide shells, regeneration), and two at low dose: dense at 30 e/px, and sintering at 15
e/px with strong drift as in bench_tracking.py's lowdose-drift; seeds unseen by the shipped
model's training),
`nptrack run` once with one chunk (chunking.frames larger than the video) and once per chunk
length in CHUNKS with the default overlap (48 frames), then
`nptrack export --tracks` and `nptrack eval --json` against the exact ground truth: IDF1, HOTA,
IDSW.  Identity switches are also located: per frame, ground truth and predicted boxes are
matched one-to-one (IoU >= 0.5, maximum total IoU, scipy's linear_sum_assignment, as CLEAR-MOT
matches), and a switch is a ground-truth particle matched to another predicted id than at its
previous match.  A switch is "at a boundary" when it is within WINDOW frames of a frame where
ownership passes from one chunk to the next; the table counts those, and those the one-chunk run
does not have (same particle, same frame +- 2).  "d IDF1" is the chunked run's IDF1 minus the
one-chunk run's.  With the default 1800 frames every chunk length has at least 21 boundaries
over the seven videos (512: 3 per video).  NAMEs, if given, pick videos by name.

  usage: bench_stitching.py NPTRACK_BIN OUT_DIR [FRAMES [NAME...]]
Prints a Markdown table (docs/performance.md), then the boundaries and the new switches at a
boundary summed per chunk length."""
import json
import os
import subprocess
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment

CHUNKS = (128, 256, 512)
OVERLAP = 48
TAIL = 1  # track.confirm_frames - 1: the later chunk owns the overlap's last TAIL frames
WINDOW = 5
# name, preset, seed, settings over the preset's
VIDEOS = (("dense", "dense", 5000101, ()), ("dense", "dense", 5000104, ()),
          ("sparse", "sparse", 5000102, ()), ("sintering", "sintering", 5000103, ()),
          ("redox", "redox", 5000105, ()),
          ("lowdose-dense", "dense", 5000106, ("synth.dose_e_px=30",)),
          ("lowdose-drift", "sintering", 5000107, ("synth.dose_e_px=15", "synth.drift_nm_s=5.0")))


def run(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout


def read_mot(path):
    m = np.loadtxt(path, delimiter=",", ndmin=2)
    return {int(f): m[m[:, 0] == f] for f in np.unique(m[:, 0])} if m.size else {}


def iou(a, b):
    ax0, ay0, ax1, ay1 = a[:, 2], a[:, 3], a[:, 2] + a[:, 4], a[:, 3] + a[:, 5]
    bx0, by0, bx1, by1 = b[:, 2], b[:, 3], b[:, 2] + b[:, 4], b[:, 3] + b[:, 5]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None]), 0, None)
    inter = iw * ih
    union = (a[:, 4] * a[:, 5])[:, None] + (b[:, 4] * b[:, 5])[None] - inter
    return inter / np.maximum(union, 1e-12)


def switches(gt, pred):
    """(frame, gt id) of every identity switch (1-based frames)."""
    last, out = {}, []
    for f in sorted(gt):
        g = gt[f]
        p = pred.get(f)
        if p is None or not len(p):
            continue
        s = iou(g, p)
        r, c = linear_sum_assignment(-s)
        for i, j in zip(r, c):
            if s[i, j] < 0.5:
                continue
            gid, pid = int(g[i, 1]), int(p[j, 1])
            if gid in last and last[gid] != pid:
                out.append((f, gid))
            last[gid] = pid
    return out


def boundaries(n_frames, chunk):
    """1-based first frames owned by each chunk after the first (chunk_plan.h)."""
    step, b, out = chunk - OVERLAP, chunk - OVERLAP, []
    while b - step + chunk < n_frames:
        out.append(b + OVERLAP - TAIL + 1)
        b += step
    return out


def main(bin_, out, frames, names):
    os.makedirs(out, exist_ok=True)
    rows = []
    for name, preset, seed, extra in VIDEOS:
        if names and name not in names:
            continue
        d = os.path.join(out, "%s_%d" % (name, seed))
        video = os.path.join(d, "video.h5")
        if not os.path.exists(video):
            over = [a for kv in extra for a in ("-s", kv)]
            run(bin_, "synth", "-q", "-c", os.path.join(SRC, "config", "synth", preset + ".cfg"),
                "-s", "synth.frames=%d" % frames, "-s", "synth.width=64", "-s", "synth.height=64",
                "-s", "synth.seed=%d" % seed, *over, "-o", d)
        gt = read_mot(os.path.join(d, "gt.txt"))
        base = None
        for chunk in (0,) + CHUNKS:
            arch = os.path.join(d, "run_%d.h5" % chunk)
            tr = os.path.join(d, "tracks_%d.txt" % chunk)
            length = frames + 1 if chunk == 0 else chunk
            run(bin_, "run", "-q", "--force", "-s", "chunking.frames=%d" % max(length, 2 * OVERLAP + 1),
                "-s", "chunking.overlap=%d" % OVERLAP, "-o", arch, video)
            run(bin_, "export", "-q", arch, "--tracks", tr)
            m = json.loads(run(bin_, "eval", "--gt", os.path.join(d, "gt.txt"), "--pred", tr, "--json"))
            sw = switches(gt, read_mot(tr))
            bd = boundaries(frames, chunk) if chunk else []
            near = [s for s in sw if any(abs(s[0] - b) <= WINDOW for b in bd)]
            if chunk == 0:
                base, base_idf1 = sw, m["IDF1"]
                new = []
            else:
                new = [s for s in near if not any(t[1] == s[1] and abs(t[0] - s[0]) <= 2 for t in base)]
            rows.append(("%s %d" % (name, seed), frames, chunk or "one chunk", len(bd), m["IDF1"],
                         m["IDF1"] - base_idf1, m["HOTA"], m["IDSW"], len(sw), len(near), len(new)))
    print("| video | frames | chunk | boundaries | IDF1 | d IDF1 | HOTA | IDSW (eval) | switches | at a boundary (±%d) | at a boundary, not in the one-chunk run |" % WINDOW)
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %s | %d | %.4f | %+.4f | %.4f | %d | %d | %d | %d |" % r)
    print()
    for chunk in CHUNKS:
        mine = [r for r in rows if r[2] == chunk]
        print("chunks of %d: %d boundaries, %d new switches at a boundary, worst d IDF1 %+.4f" % (
            chunk, sum(r[3] for r in mine), sum(r[10] for r in mine), min(r[5] for r in mine)))


SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1800, sys.argv[4:])
