"""Checks that a run archive's detections columns agree with the tables made from them: under
MPI the ranks write the columns and the root the rest (tracks, row index, frame summary, CSR
index), each from its own reading of the part files, so a row written at the wrong place shows
here even when two archives agree with each other.  For every video: frames in order and
frame_offsets their CSR index, frames/count its differences, each track's rows (tracks/row_index)
carry its id, in frame order, between its first and last frame, with its mean box size; every row
with a track id is in the index; with per-detection embeddings (detections/embedding, float16),
every row's is of unit length or zero and each track's mean_embedding is the normalised mean of
its rows'.  Exit status 0, else 1 with the problems listed.
  usage: check_archive.py ARCHIVE.h5 [--embeddings]   (--embeddings: detections/embedding must exist)"""
import sys

import h5py
import numpy as np


def check_video(name, v, want_emb, bad):
    d, t = v["detections"], v["tracks"]
    fr, tid = d["frame"][()], d["track_id"][()]
    n, nf = len(fr), v.attrs["n_frames"]
    if n == 0:
        bad.append("%s: no rows: nothing is checked" % name)
        return
    off = d["frame_offsets"][()]
    if np.any(np.diff(fr) < 0):
        bad.append("%s: rows not in frame order" % name)
    if not np.array_equal(off, np.searchsorted(fr, np.arange(nf + 1), side="left")):
        bad.append("%s: frame_offsets is not the CSR index of frame" % name)
    if not np.array_equal(v["frames/count"][()], np.diff(off)):
        bad.append("%s: frames/count differs from the rows" % name)
    ids, ro, ri = t["track_id"][()], t["row_offsets"][()], t["row_index"][()]
    if len(ri) != np.count_nonzero(tid >= 0):
        bad.append("%s: row_index holds %d rows, %d have a track" % (name, len(ri), np.count_nonzero(tid >= 0)))
    w, h = d["w"][()].astype(np.float64), d["h"][()].astype(np.float64)
    emb = d["embedding"][()].astype(np.float64) if "embedding" in d else None
    if want_emb and emb is None:
        bad.append("%s: no detections/embedding" % name)
    if emb is not None:
        norm = np.linalg.norm(emb, axis=1)
        if not np.all((np.abs(norm - 1) < 5e-3) | (norm == 0)):
            bad.append("%s: embeddings not of unit length" % name)
    mean_emb = t["mean_embedding"][()] if "mean_embedding" in t else None
    for k, i in enumerate(ids):
        rows = ri[ro[k]:ro[k + 1]]
        if len(rows) == 0 or np.any(tid[rows] != i) or np.any(np.diff(fr[rows]) <= 0):
            bad.append("%s: track %d: its rows do not carry its id in frame order" % (name, i))
            continue
        if fr[rows[0]] != t["first_frame"][k] or fr[rows[-1]] != t["last_frame"][k]:
            bad.append("%s: track %d: first or last frame differs from its rows" % (name, i))
        if abs(w[rows].mean() - t["mean_w"][k]) > 1e-4 * max(1, w[rows].mean()) or \
                abs(h[rows].mean() - t["mean_h"][k]) > 1e-4 * max(1, h[rows].mean()):
            bad.append("%s: track %d: mean size differs from its rows" % (name, i))
        if emb is not None and mean_emb is not None:
            m = emb[rows].sum(axis=0)
            m = m / np.linalg.norm(m) if np.linalg.norm(m) > 0 else m
            if np.max(np.abs(m - mean_emb[k])) > 5e-3:
                bad.append("%s: track %d: mean_embedding is not its rows' mean" % (name, i))
        if len(bad) > 20:
            return


def main(path, want_emb):
    bad = []
    with h5py.File(path, "r") as f:
        if f.attrs.get("status") != b"complete":
            bad.append("status is not complete")
        for name, v in f["videos"].items():
            check_video(name, v, want_emb, bad)
    for b in bad:
        print("%s: %s" % (path, b))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--embeddings" in sys.argv[2:]))
