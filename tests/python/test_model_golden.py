#!/usr/bin/env python3
"""The tiny model's goldens, recomputed from docs/model-format.md alone (numpy, float64):

every node of tests/data/tiny_model.h5 is evaluated by a plain numpy implementation of its op
as the format document defines it, and compared with PyTorch's output in tests/data/
tiny_golden.h5.  This checks that the two checked-in files belong together (regenerating one
without the other fails here) and that the document's op semantics (weight layouts, padding,
transposed-conv cropping, bilinear sampling, pool padding) are PyTorch's.  No torch needed.

usage: test_model_golden.py NPTRACK_BIN SCRATCH_DIR   (neither is used)
"""
import os
import sys

import h5py
import numpy as np

SRC = os.environ.get("NPT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(SRC, "tests", "data")


def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def act(x, a):
    if a == "relu":
        return np.maximum(x, 0)
    if a == "silu":
        return x / (1 + np.exp(-x))
    if a == "sigmoid":
        return 1 / (1 + np.exp(-x))
    return x


def conv2d(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, co, ho, wo))
    cog = co // groups
    for g in range(groups):
        xs = xp[:, g * cig:(g + 1) * cig]
        for ky in range(kh):
            for kx in range(kw):
                patch = xs[:, :, ky * dil:ky * dil + stride * (ho - 1) + 1:stride,
                           kx * dil:kx * dil + stride * (wo - 1) + 1:stride]
                out[:, g * cog:(g + 1) * cog] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * cog:(g + 1) * cog, :, ky, kx])
    return out + b[None, :, None, None]


def convt2d(x, w, b, stride, pad, out_pad):
    n, ci, h, wd = x.shape
    _, co, kh, kw = w.shape
    full = np.zeros((n, co, (h - 1) * stride + kh + out_pad, (wd - 1) * stride + kw + out_pad))
    for ky in range(kh):
        for kx in range(kw):
            rows = slice(ky, ky + stride * (h - 1) + 1, stride)
            cols = slice(kx, kx + stride * (wd - 1) + 1, stride)
            full[:, :, rows, cols] += np.einsum("nchw,cd->ndhw", x, w[:, :, ky, kx])
    return full[:, :, pad:pad + h * stride, pad:pad + wd * stride] + b[None, :, None, None]


def upsample(x, scale, mode):
    n, c, h, w = x.shape
    if mode == "nearest":
        return x[:, :, np.arange(h * scale) // scale][:, :, :, np.arange(w * scale) // scale]

    def axis(size):  # align_corners=False: source = (dst + 0.5) / scale - 0.5, clamped at 0
        src = np.maximum((np.arange(size * scale) + 0.5) / scale - 0.5, 0)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, size - 1), src - i0

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]
    return rows[:, :, :, x0] * (1 - fx) + rows[:, :, :, x1] * fx


def pool(x, k, stride, pad, kind):
    fill = -np.inf if kind == "maxpool" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    ho = (x.shape[2] + 2 * pad - k) // stride + 1
    wo = (x.shape[3] + 2 * pad - k) // stride + 1
    taps = [xp[:, :, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            for ky in range(k) for kx in range(k)]
    return np.max(taps, axis=0) if kind == "maxpool" else np.sum(taps, axis=0) / (k * k)


def forward(f, x):
    t = {s(f.attrs["input"]): x}
    for key in sorted(f["nodes"].keys()):
        g, name = f["nodes"][key], key[5:]
        a = g.attrs
        op = s(a["op"])
        ins = [t[s(v)] for v in np.atleast_1d(a["inputs"])]
        if op in ("conv2d", "convt2d"):
            w, b = g["weight"][()].astype(np.float64), g["bias"][()].astype(np.float64)
            if op == "conv2d":
                y = conv2d(ins[0], w, b, int(a["stride"]), int(a["padding"]), int(a["dilation"]),
                           int(a["groups"]))
            else:
                y = convt2d(ins[0], w, b, int(a["stride"]), int(a["padding"]),
                            int(a["output_padding"]))
            y = act(y, s(a["act"]))
        elif op == "add":
            y = act(np.sum(ins, axis=0), s(a["act"]))
        elif op == "concat":
            y = np.concatenate(ins, axis=1)
        elif op == "upsample":
            y = upsample(ins[0], int(a["scale"]), s(a["mode"]))
        else:
            y = pool(ins[0], int(a["kernel"]), int(a["stride"]), int(a["padding"]), op)
        t[name] = y
    return t


def main():
    fails = 0
    with h5py.File(os.path.join(DATA, "tiny_model.h5"), "r") as m, \
            h5py.File(os.path.join(DATA, "tiny_golden.h5"), "r") as gold:
        ops = {s(m["nodes"][k].attrs["op"]) for k in m["nodes"]}
        if len(ops) != 7:
            print(f"FAIL: the tiny model uses {sorted(ops)}, not all 7 ops")
            fails += 1
        for i in range(int(gold.attrs["n_inputs"])):
            x = gold[f"inputs/{i}"][()].astype(np.float64)
            got = forward(m, x)
            for name, want in gold[f"outputs/{i}"].items():
                want = want[()]
                y = got[name]
                err = np.inf
                if y.shape == want.shape:
                    err = np.max(np.abs(y - want)) / (np.max(np.abs(want)) + 1e-6)
                if not err < 1e-6:
                    print(f"FAIL: input {i} {x.shape}: tensor {name}: {y.shape} vs {want.shape}, "
                          f"relative error {err:.3g}")
                    fails += 1
            print(f"input {i} {list(x.shape)}: {len(gold[f'outputs/{i}'])} tensors agree")
    if fails:
        sys.exit(f"{fails} failures")
    print("OK")


if __name__ == "__main__":
    main()
