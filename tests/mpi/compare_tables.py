"""Compares the tables of two nptrack archives value by value: every dataset under /videos (its
shape, dtype and values, NaN equal to NaN) and every group's and dataset's attributes.  Every
video must have its lineage events table (written by nptrack run), so that it is compared.  Root
attributes (provenance: ranks, timings) are not compared.  Exit status 0 when equal, else 1 with
the differences listed.
  usage: compare_tables.py A.h5 B.h5"""
import sys

import h5py
import numpy as np


def items(f):
    out = {}
    f["videos"].visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


def attrs(obj):
    return {k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in obj.attrs.items()}


def main(a_path, b_path):
    diffs = []
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        for f in (a, b):
            if f.attrs.get("status") != b"complete":
                diffs.append("%s: status is not complete" % f.filename)
        for f in (a, b):
            for v in f["videos"]:
                for col in ("frame", "kind", "parent_offsets", "parent_ids", "child_offsets",
                            "child_ids"):
                    if "events/" + col not in f["videos"][v]:
                        diffs.append("%s: video %s has no events/%s" % (f.filename, v, col))
        ia, ib = items(a), items(b)
        if sorted(ia) != sorted(ib):
            diffs.append("objects differ: %s" % sorted(set(ia) ^ set(ib)))
        n_values = 0
        for name in sorted(set(ia) & set(ib)):
            x, y = ia[name], ib[name]
            if attrs(x) != attrs(y):
                diffs.append("%s: attributes differ" % name)
            if isinstance(x, h5py.Dataset):
                u, v = x[()], y[()]
                n_values += u.size
                if u.shape != v.shape or u.dtype != v.dtype:
                    diffs.append("%s: %s %s vs %s %s" % (name, u.shape, u.dtype, v.shape, v.dtype))
                elif not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
                    bad = np.flatnonzero(~((u == v) | (np.isnan(u) & np.isnan(v)) if u.dtype.kind == "f" else u == v))
                    diffs.append("%s: %d values differ, first at %d" % (name, bad.size, bad[0]))
        if n_values == 0:
            diffs.append("no values compared")
    for d in diffs:
        print("DIFF:", d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
