#!/usr/bin/env python3
"""The run archive (docs/archive-format.md, "The archive"), written by the real writer through
the test helper archive_writer (made-up rows of known content; `nptrack run` writes real
ones, tests/cli/run_basic.sh), read back with h5py by the documented paths only:

- every dataset of every video exists with its documented dtype and shape, only gzip + shuffle,
  units and description on each, frame_base 0 on frame columns; fixed-length string attributes;
- the detections table is exactly the rows that went in (embeddings as float16, rounded as numpy
  rounds); time_s and the *_nm columns follow the video's frame rate and pixel size (NaN when
  unknown);
- the CSR frame index against the detections table; the per-track index (a permutation of the
  tracked rows, each track one slice, in frame order); the tracks table (first/last frame,
  length, counts, means, L2-normalised mean embedding); the per-frame summary;
- archive.embeddings none/track/all decide which embedding datasets exist;
- a writer that fails part-way (at each stage), or dies, leaves no file at the target and no
  file anywhere that claims to be complete;
- an existing complete archive is not overwritten without --force; an incomplete one is;
- `nptrack info` summarises it (and flags an incomplete one); `nptrack export --tracks` writes
  frame+1,id,x,y,w,h,score,class,-1 for the tracked rows; errors name the file and the videos.

usage: test_archive.py NPTRACK_BIN SCRATCH_DIR   (NPT_ARCHIVE_WRITER: the helper program)
"""
import glob
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

BIN, TMP = sys.argv[1], sys.argv[2]
WRITER = os.environ.get("NPT_ARCHIVE_WRITER") or os.path.join(
    os.path.dirname(BIN), "tests", "archive_writer")
FAILS = []
VIDEOS = {  # name: (frames, height, width, frame rate, pixel size, its source)
    "alpha": (40, 480, 512, 10.0, 0.25, "file attribute"),
    "beta": (25, 256, 256, np.nan, np.nan, "unknown"),
    "gamma": (5, 64, 64, 2.0, 1.5, "config"),
}
DIM, N_CLASSES = 8, 2
DET_COLS = {"frame": np.int64, "time_s": np.float64, "track_id": np.int64, "x": np.float32,
            "y": np.float32, "w": np.float32, "h": np.float32, "w_nm": np.float32,
            "h_nm": np.float32, "score": np.float32, "class": np.int32}
TRACK_COLS = {"track_id": np.int64, "first_frame": np.int64, "last_frame": np.int64,
              "length": np.int64, "n_detections": np.int64, "mean_w": np.float32,
              "mean_h": np.float32, "mean_size": np.float32, "mean_size_nm": np.float32}
FRAME_COLS = {"frame": np.int64, "time_s": np.float64, "count": np.int64,
              "mean_size": np.float32, "mean_size_nm": np.float32}
FRAME_VALUED = {"detections/frame", "tracks/first_frame", "tracks/last_frame", "frames/frame"}


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def run(args, expect=0):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout, r.stderr)
        sys.exit(f"{' '.join(args)}: exit {r.returncode}, expected {expect}")
    return r


def write(out, *extra, expect=0):
    return run([WRITER, out, *extra], expect=expect)


def s(attr):
    """A fixed-length string attribute as str (h5py gives numpy bytes)."""
    check(isinstance(attr, (bytes, np.bytes_)), f"string attribute {attr!r} is not fixed-length")
    return attr.decode() if isinstance(attr, (bytes, np.bytes_)) else attr


def same(a, b):  # equal, NaN equal to NaN
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def load_input(d, name):
    path = os.path.join(d, name + ".csv")
    raw = np.loadtxt(path, delimiter=",", ndmin=2) if os.path.getsize(path) else np.zeros((0, 8))
    emb = np.fromfile(os.path.join(d, name + ".emb"), dtype=np.float32).reshape(-1, DIM)
    cols = {"frame": raw[:, 0].astype(np.int64), "track_id": raw[:, 1].astype(np.int64),
            "class": raw[:, 7].astype(np.int32)}
    for k, c in zip(("x", "y", "w", "h", "score"), range(2, 7)):
        cols[k] = raw[:, c].astype(np.float32)
    return cols, emb


def check_dataset(ds, path, dtype, shape):
    check(ds.dtype == np.dtype(dtype), f"{path}: dtype {ds.dtype}, expected {np.dtype(dtype)}")
    check(ds.shape == shape, f"{path}: shape {ds.shape}, expected {shape}")
    check(ds.compression in ("gzip", None), f"{path}: compression {ds.compression}")
    filters = set(ds._filters.keys()) if hasattr(ds, "_filters") else set()
    check(filters <= {"gzip", "shuffle"}, f"{path}: filters {filters}")
    for a in ("units", "description"):
        check(a in ds.attrs and s(ds.attrs[a]) != "" or (a == "units" and a in ds.attrs),
              f"{path}: no {a}")
    rel = "/".join(path.split("/")[-2:])
    if rel in FRAME_VALUED:
        check(ds.attrs.get("frame_base") == 0, f"{path}: frame_base is not 0")


def check_video(f, name, inp, emb_in, mode):
    T, H, W, rate, px, src = VIDEOS[name]
    g = f[f"/videos/{name}"]
    n = len(inp["frame"])
    # Group attributes.
    check(s(g.attrs["name"]) == name and g.attrs["n_frames"] == T and g.attrs["height"] == H
          and g.attrs["width"] == W, f"{name}: video attributes {dict(g.attrs)}")
    check(same(g.attrs["frame_rate_hz"], rate) and same(g.attrs["pixel_size_nm"], px),
          f"{name}: frame rate / pixel size attributes")
    check(s(g.attrs["pixel_size_source"]) == src, f"{name}: pixel_size_source")
    check(g.attrs["n_detections"] == n, f"{name}: n_detections")
    check(g.attrs["embed_dim"] == (0 if mode == "none" else DIM), f"{name}: embed_dim")

    # Detections: exactly the input rows, and the derived columns.
    d = {}
    for col, dt in DET_COLS.items():
        p = f"/videos/{name}/detections/{col}"
        check_dataset(f[p], p, dt, (n,))
        d[col] = f[p][()]
    for col in ("frame", "track_id", "x", "y", "w", "h", "score", "class"):
        check(np.array_equal(d[col], inp[col]), f"{name}: detections/{col} differs from input")
    check(same(d["time_s"], d["frame"] / rate), f"{name}: time_s")
    check(same(d["w_nm"], (d["w"] * px).astype(np.float32)), f"{name}: w_nm")
    check(same(d["h_nm"], (d["h"] * px).astype(np.float32)), f"{name}: h_nm")
    pe = f"/videos/{name}/detections/embedding"
    if mode == "all":
        check_dataset(f[pe], pe, np.float16, (n, DIM))
        check(np.array_equal(f[pe][()], emb_in.astype(np.float16)),
              f"{name}: float16 embeddings differ from numpy's rounding")
    else:
        check(pe not in f, f"{name}: per-detection embeddings with archive.embeddings={mode}")

    # The CSR index by frame against the detections table.
    po = f"/videos/{name}/detections/frame_offsets"
    check_dataset(f[po], po, np.int64, (T + 1,))
    off = f[po][()]
    check(off[0] == 0 and off[-1] == n and np.all(np.diff(off) >= 0), f"{name}: offsets shape")
    for t in range(T):
        check(np.all(d["frame"][off[t]:off[t + 1]] == t), f"{name}: frame {t}'s slice")
    check(np.array_equal(np.diff(off), np.bincount(d["frame"], minlength=T)),
          f"{name}: offsets against frame counts")

    # Tracks and the per-track index.
    tracked = d["track_id"] >= 0
    ids = np.unique(d["track_id"][tracked])
    K = len(ids)
    check(g.attrs["n_tracks"] == K, f"{name}: n_tracks attribute")
    tr = {}
    for col, dt in TRACK_COLS.items():
        p = f"/videos/{name}/tracks/{col}"
        check_dataset(f[p], p, dt, (K,))
        tr[col] = f[p][()]
    pro, pri = f"/videos/{name}/tracks/row_offsets", f"/videos/{name}/tracks/row_index"
    check_dataset(f[pro], pro, np.int64, (K + 1,))
    check_dataset(f[pri], pri, np.int64, (int(tracked.sum()),))
    roff, rix = f[pro][()], f[pri][()]
    check(np.array_equal(np.sort(rix), np.flatnonzero(tracked)),
          f"{name}: row_index is not a permutation of the tracked rows")
    check(np.array_equal(tr["track_id"], ids), f"{name}: track ids not sorted/unique")
    pm = f"/videos/{name}/tracks/mean_embedding"
    if mode == "none":
        check(pm not in f, f"{name}: mean_embedding with archive.embeddings=none")
    else:
        check_dataset(f[pm], pm, np.float32, (K, DIM))
        mean_emb = f[pm][()]
    size = np.sqrt(d["w"].astype(np.float64) * d["h"])
    for k, tid in enumerate(ids):
        rows = rix[roff[k]:roff[k + 1]]
        want = np.flatnonzero(d["track_id"] == tid)
        check(np.array_equal(rows, want), f"{name}: track {tid}'s rows")
        fr = d["frame"][rows]
        check(tr["first_frame"][k] == fr.min() and tr["last_frame"][k] == fr.max()
              and tr["length"][k] == fr.max() - fr.min() + 1
              and tr["n_detections"][k] == len(rows), f"{name}: track {tid} frames/length")
        check(np.isclose(tr["mean_w"][k], d["w"][rows].mean(), rtol=1e-6)
              and np.isclose(tr["mean_h"][k], d["h"][rows].mean(), rtol=1e-6)
              and np.isclose(tr["mean_size"][k], size[rows].mean(), rtol=1e-6),
              f"{name}: track {tid} mean sizes")
        check(same(tr["mean_size_nm"][k], np.float32(tr["mean_size"][k] * px))
              or np.isclose(tr["mean_size_nm"][k], tr["mean_size"][k] * px, rtol=1e-6),
              f"{name}: track {tid} mean_size_nm")
        if mode != "none":
            m = emb_in[rows].astype(np.float64).mean(axis=0)
            m /= np.linalg.norm(m)
            check(np.allclose(mean_emb[k], m, atol=1e-6), f"{name}: track {tid} mean embedding")
    if K:
        check(np.any(tr["length"] > tr["n_detections"]), f"{name}: no track with a gap to test")

    # The per-frame summary.
    fs = {}
    for col, dt in FRAME_COLS.items():
        p = f"/videos/{name}/frames/{col}"
        check_dataset(f[p], p, dt, (T,))
        fs[col] = f[p][()]
    pc = f"/videos/{name}/frames/count_by_class"
    check_dataset(f[pc], pc, np.int64, (T, N_CLASSES))
    cbc = f[pc][()]
    check(np.array_equal(fs["frame"], np.arange(T)), f"{name}: frames/frame")
    check(same(fs["time_s"], np.arange(T) / rate), f"{name}: frames/time_s")
    check(np.array_equal(fs["count"], np.diff(off)), f"{name}: frames/count")
    for c in range(N_CLASSES):
        check(np.array_equal(cbc[:, c], np.bincount(d["frame"][d["class"] == c + 1],
                                                    minlength=T)), f"{name}: class {c+1} counts")
    for t in range(T):
        sl = size[off[t]:off[t + 1]]
        want = sl.mean() if len(sl) else np.nan
        check(same(fs["mean_size"][t], np.float32(want)) or np.isclose(fs["mean_size"][t], want,
              rtol=1e-6), f"{name}: frame {t} mean size")
    check(same(fs["mean_size_nm"], (fs["mean_size"] * px).astype(np.float32)) or
          np.allclose(fs["mean_size_nm"], fs["mean_size"] * px, rtol=1e-6, equal_nan=True),
          f"{name}: frames/mean_size_nm")
    return d, off


def check_archive(path, dump, mode):
    with h5py.File(path, "r") as f:
        a = f.attrs
        check(s(a["format"]) == "nptrack archive" and a["format_version"] == 1, "format")
        check(s(a["status"]) == "complete", "status")
        check(s(a["frame_numbering"]) == "0-based", "frame_numbering")
        check(s(a["embeddings"]) == mode, f"embeddings attribute {a['embeddings']}")
        for k in ("nptrack_version", "git_commit", "config", "model", "model_sha256", "backend",
                  "class_names"):
            check(k in a and s(a[k]) != "", f"root attribute {k} missing or empty")
        check(f"embeddings = \"{mode}\"" in s(a["config"]), "config text lacks archive.embeddings")
        check(a["n_classes"] == N_CLASSES and a["n_videos"] == len(VIDEOS), "counts")
        check(a["timing_total_s"] == 12.5 and a["timing_detect_s"] == 10.25, "timings")
        check(sorted(f["videos"].keys()) == sorted(VIDEOS), f"videos {list(f['videos'])}")
        out = {}
        for name in VIDEOS:
            inp, emb = load_input(dump, name)
            out[name] = check_video(f, name, inp, emb, mode)
        return out


def no_complete_file(d, target, what, whole_temp_ok=False):
    """No file at `target`; no file in `d` says "complete", except (whole_temp_ok: the writer
    died between the last attribute and the rename) a temporary file that really is whole."""
    check(not os.path.exists(target), f"{what}: the target exists")
    for p in glob.glob(os.path.join(d, ".*.part")) + glob.glob(os.path.join(d, "*")):
        if os.path.isdir(p) or not h5py.is_hdf5(p):
            continue
        try:
            with h5py.File(p, "r") as f:
                st = f.attrs.get("status")
        except OSError:  # what a process killed mid-write may leave: unreadable, so not complete
            continue
        if whole_temp_ok and st == b"complete" and os.path.basename(p).startswith("."):
            with h5py.File(p, "r") as f:
                check(sorted(f["videos"]) == sorted(VIDEOS) and f.attrs["n_videos"] == 3,
                      f"{what}: {p} says complete but is not whole")
            continue
        check(st is None or st != b"complete", f"{what}: {p} claims to be complete")


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    dump = os.path.join(TMP, "input")
    os.makedirs(dump)
    tables = None
    for mode in ("all", "track", "none"):
        out = os.path.join(TMP, f"run_{mode}.h5")
        write(out, "--dump", dump, "-s", f"archive.embeddings={mode}")
        got = check_archive(out, dump, mode)
        if mode == "all":
            tables = got
        check(not glob.glob(os.path.join(TMP, ".*.part")), f"{mode}: temporary file left")
    arc = os.path.join(TMP, "run_all.h5")

    # Failures part-way: an error at each stage, and a writer that dies.
    for stage in ("open", "video", "tables", "attrs", "rename"):
        d = os.path.join(TMP, f"fail_{stage}")
        os.makedirs(d)
        r = write(os.path.join(d, "run.h5"), "--fail-at", stage, expect=1)
        check("test hook" in r.stderr, f"fail at {stage}: message {r.stderr!r}")
        no_complete_file(d, os.path.join(d, "run.h5"), f"fail at {stage}")
        check(not os.listdir(d), f"fail at {stage}: left {os.listdir(d)}")
    for stage in ("tables", "attrs", "rename"):
        d = os.path.join(TMP, f"crash_{stage}")
        os.makedirs(d)
        write(os.path.join(d, "run.h5"), "--crash-at", stage, expect=3)
        no_complete_file(d, os.path.join(d, "run.h5"), f"crash at {stage}",
                         whole_temp_ok=stage == "rename")
        left = glob.glob(os.path.join(d, ".run.h5.*.part"))
        check(len(left) == 1, f"crash at {stage}: expected the temporary file, found {left}")
        if stage == "attrs" and left:
            # Every video was written (and flushed) before the crash: a readable, incomplete file.
            with h5py.File(left[0], "r") as f:
                check(f.attrs["status"] == b"writing", "a crashed archive's status")
            # The crashed writer's file, put at a target's name, is replaced without --force...
            partial = os.path.join(d, "run.h5")
            os.rename(left[0], partial)
            r = run([BIN, "info", partial])
            check("INCOMPLETE" in r.stdout and "backend cpu" in r.stdout,
                  f"info on an incomplete archive: {r.stdout}")
            r = run([BIN, "export", partial, "--video", "alpha", "--tracks",
                     os.path.join(d, "t.txt")], expect=1)
            check("incomplete archive" in r.stderr and partial in r.stderr,
                  f"export of an incomplete archive: {r.stderr}")
            write(partial)
            with h5py.File(partial, "r") as f:
                check(f.attrs["status"] == b"complete", "incomplete archive not replaced")

    # A complete archive is not overwritten without --force; other files neither.
    before = os.path.getmtime(arc), os.path.getsize(arc)
    r = write(arc, expect=1)
    check("complete archive exists" in r.stderr and "--force" in r.stderr, r.stderr)
    check((os.path.getmtime(arc), os.path.getsize(arc)) == before, "complete archive touched")
    other = os.path.join(TMP, "notes.txt")
    with open(other, "w") as fh:
        fh.write("mine\n")
    r = write(other, expect=1)
    check("not an nptrack archive" in r.stderr, r.stderr)
    check(open(other).read() == "mine\n", "another file overwritten")
    forced = os.path.join(TMP, "run_none.h5")
    write(forced, "--force", "-s", "archive.embeddings=all")
    with h5py.File(forced, "r") as f:
        check(s(f.attrs["embeddings"]) == "all", "--force did not replace the archive")

    # nptrack info.
    r = run([BIN, "info", arc])
    for want in ("status:      complete", "alpha", "beta", "gamma", "videos:      3",
                 "487 detections", "backend cpu", "models/test.h5", "0.25 nm/px (file attribute)"):
        check(want in r.stdout, f"info lacks {want!r}: {r.stdout}")

    # nptrack export --tracks: the tracked rows of the detections table, frames from 1.
    for name in VIDEOS:
        txt = os.path.join(TMP, f"{name}.txt")
        r = run([BIN, "export", arc, "--video", name, "--tracks", txt])
        d, _ = tables[name]
        keep = d["track_id"] >= 0
        lines = open(txt).read().splitlines()
        check(len(lines) == keep.sum(), f"{name}: {len(lines)} lines for {keep.sum()} rows")
        if lines:
            m = np.loadtxt(txt, delimiter=",", ndmin=2)
            check(np.array_equal(m[:, 0], d["frame"][keep] + 1), f"{name}: exported frames")
            check(np.array_equal(m[:, 1], d["track_id"][keep]), f"{name}: exported ids")
            for c, col in zip(range(2, 6), ("x", "y", "w", "h")):
                check(np.allclose(m[:, c], d[col][keep], atol=5e-5), f"{name}: exported {col}")
            check(np.allclose(m[:, 6], d["score"][keep], atol=5e-7), f"{name}: exported score")
            check(np.array_equal(m[:, 7], d["class"][keep]) and np.all(m[:, 8] == -1),
                  f"{name}: exported class / last column")
    r = run([BIN, "export", arc, "--tracks", os.path.join(TMP, "x.txt")], expect=1)
    check(arc in r.stderr and "alpha, beta, gamma" in r.stderr, f"no --video: {r.stderr}")
    r = run([BIN, "export", arc, "--video", "zeta", "--tracks", os.path.join(TMP, "x.txt")],
            expect=1)
    check("no video 'zeta'" in r.stderr and "alpha, beta, gamma" in r.stderr, r.stderr)
    r = run([BIN, "export", arc, "--detections", os.path.join(TMP, "x.txt")], expect=2)
    check("is an archive" in r.stderr, r.stderr)

    if FAILS:
        sys.exit(f"{len(FAILS)} check(s) failed")
    print("archive: all checks passed")


main()
