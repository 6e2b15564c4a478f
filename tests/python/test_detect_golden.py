#!/usr/bin/env python3
"""`nptrack detect` finds what PyTorch finds: the C engine's detections (preprocessing, CPU
backend, decoding) against golden detections that train/make_golden_dets.py computed with
PyTorch and train/decode_ref.py (a numpy reference of docs/decode.md) for a model and a
synthetic video.

For each (model, golden) pair: the golden belongs to this model (sha256); the video is made
again with `nptrack synth` and the golden's recorded arguments and must be the same frames
(sha256); `nptrack detect` runs with the golden's decoding settings; then every golden detection
has an engine detection of its class with a box within 0.05 px, a score within 1e-4 and an
embedding within 1e-3 (elementwise), and vice versa.  Only near ties may differ (a float32
rounding elsewhere in the network may move them): a golden detection within `eps` of the
threshold or of a window neighbour may be missing, and an engine detection may be extra where
the golden lists a near peak.  Last, the comparison is shown to fail on a golden with one box
moved by 0.1 px and on one with a detection removed.

Pairs: tests/data/tiny_model.h5 with tests/data/tiny_golden_dets.h5 and with
tests/data/tiny_golden_dets_suppress.h5 (the same, decoded with suppress_ratio 0.5: the tiny
model's two classes peak at the same cells, and suppression keeps the better one; always), and
models/nptrack.h5 with tests/data/nptrack_golden_dets.h5 when the shipped model exists (then its
golden must exist too).  Regenerate a golden as train/README.md says.

usage: test_detect_golden.py NPTRACK_BIN SCRATCH_DIR [MODEL.h5 GOLDEN.h5]
"""
import hashlib
import os
import shlex
import shutil
import subprocess
import sys

import h5py
import numpy as np

BIN, TMP = sys.argv[1], sys.argv[2]
SRC = os.path.abspath(os.environ.get("NPT_SOURCE_DIR",
                                     os.path.join(os.path.dirname(__file__), "..", "..")))
BOX_TOL, SCORE_TOL, EMBED_TOL = 0.05, 1e-4, 1e-3
REGEN = "regenerate it as train/README.md says (train/make_golden_dets.py)"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def run(args, **kw):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"nptrack {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def read_table(g, names):
    return {k: g[k][()] for k in names if k in g}


def read_golden(path):
    with h5py.File(path, "r") as f:
        d = read_table(f["detections"], ["frame", "x", "y", "w", "h", "score", "class", "margin",
                                         "cell_i", "cell_j", "embedding", "frame_offsets"])
        near = read_table(f["near"], ["frame", "class", "x", "y", "w", "h", "score"])
        attrs = {k: (s(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
    return d, near, attrs


def read_engine(path):
    with h5py.File(path, "r") as f:
        g = f["detections"]
        d = read_table(g, ["frame", "x", "y", "w", "h", "score", "class", "embedding",
                           "frame_offsets"])
        d["attrs"] = dict(g.attrs)
    return d


def box(t, r):
    return np.array([t["x"][r], t["y"][r], t["w"][r], t["h"][r]], np.float64)


def compare(gold, near, eng, eps, frames):
    """Problems (strings) between the golden and the engine's detections; empty when they agree.
    Also returns counts (matched, fragile missing, near extra)."""
    problems, matched, missing_ok, extra_ok = [], 0, 0, 0
    for t in range(frames):
        for c in sorted(set(gold["class"][gold["frame"] == t]) | set(eng["class"][eng["frame"] == t])):
            G = np.nonzero((gold["frame"] == t) & (gold["class"] == c))[0]
            E = np.nonzero((eng["frame"] == t) & (eng["class"] == c))[0]
            N = np.nonzero((near["frame"] == t) & (near["class"] == c))[0]
            # Greedy one-to-one matching by the largest box difference, closest pairs first.
            bg = np.stack([gold[k][G] for k in ("x", "y", "w", "h")], 1).astype(np.float64)
            be = np.stack([eng[k][E] for k in ("x", "y", "w", "h")], 1).astype(np.float64)
            dist = np.abs(bg[:, None, :] - be[None, :, :]).max(2) if len(G) and len(E) else \
                np.zeros((len(G), len(E)))
            gi, ei = np.nonzero(dist <= BOX_TOL)  # only these pairs can match
            pairs = sorted(zip(dist[gi, ei].tolist(), G[gi].tolist(), E[ei].tolist()))
            used_g, used_e = set(), set()
            for d_ge, g, e in pairs:
                if d_ge > BOX_TOL or g in used_g or e in used_e:
                    continue
                used_g.add(g), used_e.add(e)
                matched += 1
                ds = abs(float(gold["score"][g]) - float(eng["score"][e]))
                if ds > SCORE_TOL:
                    problems.append(f"frame {t} class {c} box {box(gold, g)}: score "
                                    f"{eng['score'][e]:.7f}, golden {gold['score'][g]:.7f}")
                if "embedding" in gold:
                    de = float(np.max(np.abs(gold["embedding"][g] - eng["embedding"][e])))
                    if de > EMBED_TOL:
                        problems.append(f"frame {t} class {c} box {box(gold, g)}: embedding "
                                        f"differs by {de:.2e}")
            for g in G:
                if g in used_g:
                    continue
                if gold["margin"][g] < eps:
                    missing_ok += 1
                    continue
                near_e = float(dist[np.searchsorted(G, g)].min()) if len(E) else None
                problems.append(f"frame {t} class {c}: golden detection at cell "
                                f"({gold['cell_i'][g]}, {gold['cell_j'][g]}), box {box(gold, g)}, "
                                f"score {gold['score'][g]:.6f}, margin {gold['margin'][g]:.2e} is "
                                f"not in the engine's (nearest box differs by {near_e})")
            for e in E:
                if e in used_e:
                    continue
                if any(np.max(np.abs(box(near, n) - box(eng, e))) <= BOX_TOL for n in N):
                    extra_ok += 1
                    continue
                problems.append(f"frame {t} class {c}: the engine's detection box {box(eng, e)}, "
                                f"score {eng['score'][e]:.6f} is not in the golden")
    return problems, (matched, missing_ok, extra_ok)


def check_pair(model, golden, scratch):
    name = os.path.basename(golden)
    gold, near, at = read_golden(golden)
    if sha256_file(model) != at["model_sha256"]:
        return [f"{name} was made for another {at['model']} (sha256 differs): {REGEN}"]
    frames = int(at["frames"])
    # The video, made again: the same arguments give the same frames.
    vdir = os.path.join(scratch, "video")
    run(["synth", "-q", "-o", vdir, *shlex.split(at["video_synth_args"])], cwd=SRC)
    video = os.path.join(vdir, "video.h5")
    with h5py.File(video, "r") as f:
        fr = f["frames"][:frames]
    if hashlib.sha256(np.ascontiguousarray(fr).tobytes()).hexdigest() != at["video_frames_sha256"]:
        return [f"{name}: `nptrack synth {at['video_synth_args']}` no longer makes the golden's "
                f"frames (the generator changed?): {REGEN}"]
    dets = os.path.join(scratch, "dets.h5")
    thr, top_k, pk = float(at["score_threshold"]), int(at["top_k"]), int(at["peak_kernel"])
    ratio = float(at.get("suppress_ratio", 0.0))  # goldens made before suppression existed: 0
    r = run(["detect", "-q", "-s", f"detect.model={model}", "-s", f"detect.score_threshold={thr!r}",
             "-s", f"detect.top_k={top_k}", "-s", f"detect.peak_kernel={pk}",
             "-s", f"detect.suppress_ratio={ratio!r}", "-s", "detect.refine=none",
             "-s", f"detect.last_frame={frames}", "-o", dets, video])
    if r.stderr:
        return [f"detect warned: {r.stderr.strip()}"]
    eng = read_engine(dets)
    a = eng["attrs"]
    if (abs(float(a["score_threshold"]) - thr) > 1e-7 or int(a["top_k"]) != top_k
            or float(a["suppress_ratio"]) != ratio):
        return [f"detect used threshold {a['score_threshold']}, top_k {a['top_k']}, "
                f"suppress_ratio {a['suppress_ratio']}, not the golden's {thr}, {top_k}, {ratio}"]
    eps = float(at["eps"])
    problems, (m, miss, extra) = compare(gold, near, eng, eps, frames)
    n_gold = len(gold["frame"])
    print(f"{name}: {n_gold} golden detections in {frames} frames (threshold {thr}, top_k "
          f"{top_k}, suppress_ratio {ratio}); engine {len(eng['frame'])}; matched {m}, near "
          f"ties missing {miss}, near peaks extra {extra}")
    if n_gold < 10 * frames:
        problems.append(f"{name}: only {n_gold} golden detections: the comparison learns little")
    if m < 0.9 * n_gold:
        problems.append(f"{name}: only {m} of {n_gold} golden detections matched")

    # The comparison can fail: one box moved by 0.1 px, one detection taken out of the golden.
    solid = np.nonzero(gold["margin"] >= eps)[0]
    if len(solid):
        k = solid[len(solid) // 2]
        moved = dict(gold, x=gold["x"].copy())
        moved["x"][k] += np.float32(0.1)
        if not compare(moved, near, eng, eps, frames)[0]:
            problems.append("the comparison did not notice a box moved by 0.1 px")
        keep = np.arange(len(gold["frame"])) != k
        fewer = {key: (v[keep] if key != "frame_offsets" else v) for key, v in gold.items()}
        if not compare(fewer, near, eng, eps, frames)[0]:
            problems.append("the comparison did not notice a golden detection taken out")
    return problems


def pairs():
    if len(sys.argv) == 5:
        return [(os.path.abspath(sys.argv[3]), os.path.abspath(sys.argv[4]), True)]
    data = os.path.join(SRC, "tests", "data")
    tiny = os.path.join(data, "tiny_model.h5")
    return [(tiny, os.path.join(data, "tiny_golden_dets.h5"), True),
            (tiny, os.path.join(data, "tiny_golden_dets_suppress.h5"), True),
            (os.path.join(SRC, "models", "nptrack.h5"),
             os.path.join(data, "nptrack_golden_dets.h5"), False)]


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    fails = []
    for model, golden, required in pairs():
        if not os.path.exists(model):
            if required:
                fails.append(f"no model {model}")
            else:
                print(f"{os.path.relpath(model, SRC)}: not there, nothing to compare")
            continue
        if not os.path.exists(golden):
            fails.append(f"{model} has no golden {golden}: make it as train/README.md says")
            continue
        scratch = os.path.join(TMP, os.path.splitext(os.path.basename(golden))[0])
        os.makedirs(scratch)
        fails += check_pair(model, golden, scratch)
    for f in fails:
        print("FAIL:", f)
    if fails:
        sys.exit(f"{len(fails)} check(s) failed")
    print("test_detect_golden: all checks passed")


if __name__ == "__main__":
    main()
