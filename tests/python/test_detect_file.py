#!/usr/bin/env python3
"""`nptrack detect` end to end with the tiny test model (random weights), read back with h5py:

- the file's layout is MATLAB-friendly: one 1-D dataset per column, a 2-D embedding, only the
  gzip and shuffle filters, units and descriptions on every column, provenance on the root,
  status "complete", no temporary file left;
- rows are consistent: the CSR frame index, frame order, per-frame top-K, score threshold,
  track_id -1, classes of the model, unit-length (or zero) embeddings;
- `nptrack export` writes frame,-1,x,y,w,h,score,class,-1 with 1-based frames;
- frames are independent and results deterministic: other batch sizes and thread counts give
  the same rows; a frame range gives exactly the full run's rows of those frames; the same
  settings give the same file byte for byte; an [H, W, T] copy of the video gives the same rows;
- a stricter threshold keeps a subset; a saturated top-K warns.

usage: test_detect_file.py NPTRACK_BIN SCRATCH_DIR
"""
import filecmp
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

BIN, TMP = sys.argv[1], sys.argv[2]
SRC = os.environ.get("NPT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(SRC, "tests", "data", "tiny_model.h5")
FAILS = []
COLUMNS = {"frame": np.int64, "x": np.float32, "y": np.float32, "w": np.float32,
           "h": np.float32, "score": np.float32, "class": np.int32, "track_id": np.int64}


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def run(*args, expect=0):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout, r.stderr)
        sys.exit(f"{' '.join(args)}: exit {r.returncode}, expected {expect}")
    return r


def detect(video, out, *sets):
    args = ["detect", "-s", f"detect.model={MODEL}", "-o", out]
    for s in sets:
        args += ["-s", s]
    return run(*args, video)


def rows(path):
    with h5py.File(path, "r") as f:
        g = f["detections"]
        cols = {k: g[k][()] for k in COLUMNS}
        emb = g["embedding"][()] if "embedding" in g else None
        return cols, emb, g["frame_offsets"][()], dict(g.attrs)


shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
run("synth", "-q", "-o", os.path.join(TMP, "s"), "-s", "synth.frames=12", "-s", "synth.width=96",
    "-s", "synth.height=72", "-s", "synth.coverage=0.3", "-s", "synth.diameter_nm=[2,3]")
video = os.path.join(TMP, "s", "video.h5")
with h5py.File(video, "r") as f:
    frames = f["frames"][()]
T = frames.shape[0]

# --- A full run and its layout -----------------------------------------------------------------
dets = os.path.join(TMP, "out", "dets.h5")
os.makedirs(os.path.dirname(dets))
r = detect(video, dets, "detect.batch=5", "detect.score_threshold=0.3")
out_lines = r.stdout.splitlines()
check(len(out_lines) == 2 and out_lines[0] == f"nptrack detect: model {MODEL} (detect.model)"
      and out_lines[1].startswith(f"nptrack detect: wrote {dets}: ")
      and "in 12 frames (1 to 12)" in out_lines[1], f"model and summary lines: {r.stdout!r}")
check(os.listdir(os.path.dirname(dets)) == ["dets.h5"],
      f"temporary files left: {os.listdir(os.path.dirname(dets))}")
with h5py.File(dets, "r") as f:
    a = f.attrs
    check(a["status"] == "complete", "status is not complete")
    check(a["format"] == "nptrack detections" and a["format_version"] == 1, "format attributes")
    check(a["model"] == MODEL and a["video"] == video and a["video_dataset"] == "/frames",
          "model/video attributes")
    check("detect = {" in a["config"] and "score_threshold = 0.3" in a["config"],
          "config attribute lacks the detect section")
    check(len(a["model_provenance"]) > 0, "no model provenance")
    check(a["nptrack_version"].startswith("0."), "nptrack_version")
    check("pixel_size_nm" in a and "frame_rate_hz" in a, "the video's pixel size/frame rate")
    g = f["detections"]
    n = int(g.attrs["n_rows"])
    D = int(g.attrs["embed_dim"])
    check(D > 0, "the tiny model has embeddings")
    check(set(g.keys()) == set(COLUMNS) | {"embedding", "frame_offsets"},
          f"unexpected datasets: {sorted(g.keys())}")
    for name, ds in g.items():
        want = (n, D) if name == "embedding" else (T + 1,) if name == "frame_offsets" else (n,)
        check(ds.shape == want, f"{name}: shape {ds.shape}, expected {want}")
        if name in COLUMNS:
            check(ds.dtype == COLUMNS[name], f"{name}: dtype {ds.dtype}")
        plist = ds.id.get_create_plist()
        filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
        check(filters == {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE},
              f"{name}: filters {filters}, expected gzip + shuffle only")
        check(ds.dtype.kind in "iuf" and ds.dtype.names is None, f"{name}: not a plain number type")
        check("units" in ds.attrs and len(ds.attrs.get("description", "")) > 10,
              f"{name}: no units/description")
    check(g.attrs["frame_begin"] == 0 and g.attrs["frame_end"] == T and g.attrs["n_frames"] == T,
          "frame range attributes")
    thr, top_k = float(g.attrs["score_threshold"]), int(g.attrs["top_k"])
    check(abs(thr - 0.3) < 1e-6 and g.attrs["peak_kernel"] == 3
          and g.attrs["suppress_ratio"] == 0.0, "decoding attributes")
    check("1 " in g["class"].attrs["description"], "class description lacks the class names")

cols, emb, off, attrs = rows(dets)
check(n > 2 * T, f"only {n} detections in {T} frames: the test learns little")
check(off[0] == 0 and off[-1] == n and np.all(np.diff(off) >= 0), "frame_offsets is not a CSR index")
check(np.array_equal(np.repeat(np.arange(T), np.diff(off)), cols["frame"]),
      "the frame column disagrees with frame_offsets")
check(np.all(np.diff(off) <= top_k), "a frame has more than top_k rows")
check(np.all(cols["track_id"] == -1), "track_id is not -1")
check(np.all((cols["score"] >= np.float32(thr)) & (cols["score"] <= 1)), "scores out of range")
check(set(np.unique(cols["class"])) <= {1, 2}, f"classes {np.unique(cols['class'])}")
check(np.all(cols["w"] >= 0) and np.all(cols["h"] >= 0), "negative box sizes")
norms = np.linalg.norm(emb.astype(np.float64), axis=1)
check(np.all((np.abs(norms - 1) < 1e-5) | (norms == 0)), "embeddings are not unit length")
for t in range(T):  # within a frame: by descending score
    s = cols["score"][off[t]:off[t + 1]]
    check(np.all(np.diff(s) <= 0), f"frame {t}: rows not by descending score")

# --- export ------------------------------------------------------------------------------------
txt = os.path.join(TMP, "out", "dets.txt")
r = run("export", dets, "--detections", txt)
check(r.stdout.strip() == f"nptrack export: wrote {txt}: {n} detections", f"export said {r.stdout!r}")
lines = open(txt).read().splitlines()
check(len(lines) == n, f"export wrote {len(lines)} lines for {n} rows")
if lines:
    t = np.array([[float(v) for v in ln.split(",")] for ln in lines])
    check(t.shape[1] == 9, "export: not 9 columns")
    check(np.array_equal(t[:, 0], cols["frame"] + 1), "export: frames are not 1-based")
    check(np.all(t[:, 1] == -1) and np.all(t[:, 8] == -1), "export: columns 2 and 9 are not -1")
    for k, name in enumerate(["x", "y", "w", "h"]):
        check(np.allclose(t[:, 2 + k], cols[name], rtol=0, atol=5.1e-5), f"export: {name} differs")
    check(np.allclose(t[:, 6], cols["score"], rtol=0, atol=5.1e-7), "export: score differs")
    check(np.array_equal(t[:, 7], cols["class"]), "export: class differs")
r = run("export", dets, "--detections", "-")
check(r.stdout == open(txt).read(), "export to standard output differs from the file")

# --- Determinism and independence of frames ----------------------------------------------------
same = os.path.join(TMP, "same.h5")
detect(video, same, "detect.batch=5", "detect.score_threshold=0.3")
check(filecmp.cmp(dets, same, shallow=False), "the same settings gave a different file")
other = os.path.join(TMP, "other.h5")
detect(video, other, "detect.batch=1", "detect.threads=3", "detect.score_threshold=0.3")
c2, e2, o2, _ = rows(other)
check(all(np.array_equal(cols[k], c2[k]) for k in COLUMNS) and np.array_equal(emb, e2)
      and np.array_equal(off, o2), "batch 1 / 3 threads changed the detections")

part = os.path.join(TMP, "part.h5")
detect(video, part, "detect.first_frame=4", "detect.last_frame=9", "detect.batch=4",
       "detect.score_threshold=0.3")
c3, e3, o3, a3 = rows(part)
sel = (cols["frame"] >= 3) & (cols["frame"] < 9)
check(a3["frame_begin"] == 3 and a3["frame_end"] == 9, "frame range attributes of a partial run")
check(all(np.array_equal(cols[k][sel], c3[k]) for k in COLUMNS) and np.array_equal(emb[sel], e3),
      "frames 4-9 alone differ from the same frames of the full run")
check(len(o3) == T + 1 and np.all(o3[:4] == 0) and np.all(o3[9:] == len(c3["frame"])),
      "frame_offsets of a partial run")

# --- An [H, W, T] copy of the video --------------------------------------------------------------
hwt = os.path.join(TMP, "hwt.h5")
with h5py.File(hwt, "w") as f:
    f.create_dataset("data/stack", data=np.ascontiguousarray(frames.transpose(1, 2, 0)),
                     chunks=(frames.shape[1], frames.shape[2], 1))
out_hwt = os.path.join(TMP, "hwt_dets.h5")
detect(hwt, out_hwt, "detect.axis_order=HWT", "detect.dataset=/data/stack", "detect.batch=5",
       "detect.score_threshold=0.3")
c4, e4, o4, _ = rows(out_hwt)
check(all(np.array_equal(cols[k], c4[k]) for k in COLUMNS) and np.array_equal(emb, e4),
      "the [H, W, T] copy gave other detections")
with h5py.File(out_hwt, "r") as f:
    check(f.attrs["video_dataset"] == "/data/stack", "video_dataset of the HWT run")

# --- Threshold and top-K -----------------------------------------------------------------------
strict = os.path.join(TMP, "strict.h5")
hi = float(np.median(cols["score"]))
detect(video, strict, f"detect.score_threshold={hi}", "detect.batch=5")
c5, _, _, _ = rows(strict)
keep = cols["score"] >= np.float32(hi)
check(all(np.array_equal(cols[k][keep], c5[k]) for k in COLUMNS),
      "a stricter threshold did not keep exactly the higher-scoring rows")
sat = os.path.join(TMP, "sat.h5")
r = detect(video, sat, "detect.top_k=2", "detect.score_threshold=0.3")
c6, _, o6, _ = rows(sat)
check(np.all(np.diff(o6) <= 2), "top_k=2 kept more than 2 rows in a frame")
busy = int(np.sum(np.diff(off) > 2))
check(f"warning: in {busy} frames more than top_k = 2 peaks" in r.stderr,
      f"no saturation warning for {busy} frames: {r.stderr!r}")
for t in range(T):  # the two best of each frame
    check(np.array_equal(c6["score"][o6[t]:o6[t + 1]], cols["score"][off[t]:off[t] + 2][:o6[t + 1] - o6[t]]),
          f"frame {t}: top-2 are not the two best")

# --- Centre-distance suppression (docs/decode.md, rule 3) ---------------------------------------
sup = os.path.join(TMP, "sup.h5")
detect(video, sup, "detect.suppress_ratio=2", "detect.score_threshold=0.3")
c7, _, o7, a7 = rows(sup)
check(a7["suppress_ratio"] == 2.0, f"suppress_ratio recorded as {a7['suppress_ratio']}")
check(0 < len(c7["score"]) < n, f"suppression kept {len(c7['score'])} of {n} rows")


def centre_side(c, r):
    x, y, w, h = (np.float64(c[k][r]) for k in ("x", "y", "w", "h"))
    return x + w / 2, y + h / 2, min(w, h)


def close(p, q, tol):  # centre distance below 2 x the smaller side, by more than tol px
    return np.hypot(p[0] - q[0], p[1] - q[1]) < 2 * min(p[2], q[2]) - tol


for t in range(T):  # rows kept in order; none too close to a better one; each dropped one is
    full = list(zip(*(cols[k][off[t]:off[t + 1]] for k in COLUMNS)))
    kept = list(zip(*(c7[k][o7[t]:o7[t + 1]] for k in COLUMNS)))
    it = iter(full)
    check(all(any(r == s for s in it) for r in kept), f"frame {t}: suppression reordered rows")
    kc = [centre_side(c7, r) for r in range(o7[t], o7[t + 1])]
    check(not any(close(p, q, 1e-3) for i, p in enumerate(kc) for q in kc[:i]),
          f"frame {t}: two kept rows closer than the limit")
    for r in range(off[t], off[t + 1]):
        if not any(np.array_equal(np.asarray(full[r - off[t]]), np.asarray(s)) for s in kept):
            check(any(close(centre_side(cols, r), q, -1e-3) for q in kc),
                  f"frame {t}: row {r} dropped without a kept row within the limit")

if FAILS:
    sys.exit(f"{len(FAILS)} check(s) failed")
print("test_detect_file: all checks passed")
