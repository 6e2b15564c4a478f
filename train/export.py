"""Writes an nptrack model file (docs/model-format.md) from a Net of nptrack_ops, and reads one
back into a Net (to check an export, or to compute reference outputs).

Batch-norm is folded into the preceding conv in float64, then weights are stored as float32
(never fp16: the GPU backend converts at load time, the file keeps the reference precision).
The file is written under a temporary name and renamed when complete.
"""

import json
import os

import h5py
import numpy as np
import torch

from nptrack_ops import ACTS, NORM_MODES, Conv, ConvT, NetBuilder, op_of

FORMAT = "nptrack-model"
# The newest version written and read.  A file is written with the oldest version that holds
# its meaning (file_version): version 1 readers ignore norm_mode, so only frame-mode models,
# which a version-1 reader would misread, are version 2.
FORMAT_VERSION = 2
# HDF5 1.10 object formats: every metadata block carries a checksum (a corrupt file fails to
# open instead of being misread), and the system HDF5 of Debian/Ubuntu (1.10) reads it.
LIBVER = ("v110", "v110")


def _str_attr(obj, name, value):
    """A fixed-length UTF-8 string attribute: no global heap, so all of it is checksummed."""
    b = value.encode("utf-8")
    obj.attrs.create(name, np.array(b, dtype=f"S{max(1, len(b))}"),
                     dtype=h5py.string_dtype("utf-8", max(1, len(b))))


def _str_array_attr(obj, name, values):
    bs = [v.encode("utf-8") for v in values]
    n = max(1, max(len(b) for b in bs))
    obj.attrs.create(name, np.array(bs, dtype=f"S{n}"), dtype=h5py.string_dtype("utf-8", n))


def _int_attr(obj, name, value):
    obj.attrs.create(name, np.int32(value))


def _f64_attr(obj, name, value):
    obj.attrs.create(name, np.float64(value))


def folded_conv(m):
    """(weight, bias) of a Conv/ConvT with its batch-norm folded in, float64 numpy arrays.
    Conv weight is [c_out, c_in/groups, kh, kw]; ConvT weight is [c_in, c_out, kh, kw]."""
    w = m.conv.weight.detach().double()
    c_out = w.shape[1] if isinstance(m, ConvT) else w.shape[0]
    b = m.conv.bias.detach().double() if m.conv.bias is not None else torch.zeros(c_out).double()
    if m.bn is not None:
        bn = m.bn
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        shape = (1, -1, 1, 1) if isinstance(m, ConvT) else (-1, 1, 1, 1)
        w = w * scale.reshape(shape)
        b = (b - bn.running_mean.double()) * scale + bn.bias.detach().double()
    return w.numpy(), b.numpy()


def file_version(meta):
    """The format_version a model with this meta is written with."""
    return 2 if meta.get("norm_mode", "fixed") == "frame" else 1


def write_model(net, path, provenance):
    """Writes `net` (a nptrack_ops.Net, in eval mode) to `path`.  provenance: a dict (data config,
    seed, code commit, validation scores), stored as JSON."""
    meta = net.meta
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", libver=LIBVER) as f:
        _str_attr(f, "format", FORMAT)
        norm_mode = meta.get("norm_mode", "fixed")
        if norm_mode not in NORM_MODES:
            raise ValueError(f"norm_mode must be one of {NORM_MODES}, not {norm_mode!r}")
        _int_attr(f, "format_version", file_version(meta))
        _str_attr(f, "norm_mode", norm_mode)
        _str_attr(f, "input", net.input_name)
        _int_attr(f, "multiple", meta["multiple"])
        _int_attr(f, "output_stride", meta["output_stride"])
        _str_array_attr(f, "class_names", meta["class_names"])
        _int_attr(f, "embed_dim", meta["embed_dim"])
        for bits in (8, 16):
            mean, std = meta[f"norm{bits}"]
            _f64_attr(f, f"norm{bits}_mean", mean)
            _f64_attr(f, f"norm{bits}_std", std)
        _f64_attr(f, "score_threshold", meta["score_threshold"])
        _int_attr(f, "top_k", meta["top_k"])
        _int_attr(f, "peak_kernel", meta["peak_kernel"])
        # Optional in the format (absent: 0); written only when on, so that a model without
        # suppression is the same file, byte for byte, as before the attribute existed.
        ratio = float(meta.get("suppress_ratio", 0.0))
        if not 0.0 <= ratio <= 2.0:
            raise ValueError(f"suppress_ratio must be in [0, 2], not {ratio!r}")
        if ratio > 0:
            _f64_attr(f, "suppress_ratio", ratio)
        for h, t in meta["heads"].items():
            if t:
                _str_attr(f, f"head_{h}", t)
        _str_attr(f, "provenance", json.dumps(provenance, sort_keys=True))
        nodes = f.create_group("nodes")
        for i, (name, inputs) in enumerate(net.nodes):
            m = net.ops[name]
            op = op_of(m)
            g = nodes.create_group(f"{i:04d}_{name}")
            _str_attr(g, "op", op)
            _str_array_attr(g, "inputs", inputs)
            if op in ("conv2d", "convt2d"):
                c = m.conv
                if c.padding[0] != c.padding[1] or c.stride[0] != c.stride[1]:
                    raise ValueError(f"{name}: padding and stride must be the same in x and y")
                _str_attr(g, "act", m.act)
                _int_attr(g, "stride", c.stride[0])
                _int_attr(g, "padding", c.padding[0])
                if op == "conv2d":
                    _int_attr(g, "dilation", c.dilation[0])
                    _int_attr(g, "groups", c.groups)
                else:
                    if c.output_padding[0] != c.output_padding[1]:
                        raise ValueError(f"{name}: output_padding must be the same in x and y")
                    _int_attr(g, "output_padding", c.output_padding[0])
                w, b = folded_conv(m)
                g.create_dataset("weight", data=w.astype(np.float32))
                g.create_dataset("bias", data=b.astype(np.float32))
            elif op == "add":
                _str_attr(g, "act", m.act)
            elif op == "upsample":
                _int_attr(g, "scale", m.scale)
                _str_attr(g, "mode", m.mode)
            elif op in ("maxpool", "avgpool"):
                _int_attr(g, "kernel", m.k)
                _int_attr(g, "stride", m.stride)
                _int_attr(g, "padding", m.padding)
    os.replace(tmp, path)


def _attr_str(obj, name, default=None):
    if name not in obj.attrs:
        if default is None:
            raise ValueError(f"{obj.name}: attribute {name} missing")
        return default
    v = obj.attrs[name]
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _attr_strs(obj, name):
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in obj.attrs[name]]


def read_model(path):
    """Reads a model file into a Net (batch-norm already folded, float32 weights as stored)."""
    with h5py.File(path, "r") as f:
        version = int(f.attrs.get("format_version", 0))
        if _attr_str(f, "format", "") != FORMAT or not 1 <= version <= FORMAT_VERSION:
            raise ValueError(f"{path}: not an nptrack model file of version 1 to "
                             f"{FORMAT_VERSION}")
        norm_mode = _attr_str(f, "norm_mode", "fixed")
        if norm_mode not in NORM_MODES:
            raise ValueError(f"{path}: unknown norm_mode {norm_mode!r} (fixed, frame)")
        if version < file_version(dict(norm_mode=norm_mode)):
            raise ValueError(f"{path}: inconsistent file: norm_mode {norm_mode!r} needs "
                             f"format_version 2, but it says {version}")
        b = NetBuilder(_attr_str(f, "input"))
        names = sorted(f["nodes"].keys())
        for i, key in enumerate(names):
            g = f["nodes"][key]
            name = key[5:]
            op = _attr_str(g, "op")
            inputs = _attr_strs(g, "inputs")
            if op in ("conv2d", "convt2d"):
                w = torch.from_numpy(np.asarray(g["weight"], dtype=np.float32))
                bias = torch.from_numpy(np.asarray(g["bias"], dtype=np.float32))
                act = _attr_str(g, "act")
                assert act in ACTS, act
                k = (w.shape[2], w.shape[3])
                if op == "conv2d":
                    groups = int(g.attrs["groups"])
                    b.conv(name, inputs[0], w.shape[0], k, int(g.attrs["stride"]),
                           int(g.attrs["padding"]), int(g.attrs["dilation"]), groups, act=act)
                else:
                    b.convt(name, inputs[0], w.shape[1], k, int(g.attrs["stride"]),
                            int(g.attrs["padding"]), int(g.attrs["output_padding"]), act=act)
                m = b.nodes[-1][2]
                with torch.no_grad():
                    m.conv.weight.copy_(w)
                    m.conv.bias.copy_(bias)
            elif op == "add":
                b.add(name, inputs, _attr_str(g, "act"))
            elif op == "concat":
                b.concat(name, inputs)
            elif op == "upsample":
                b.upsample(name, inputs[0], int(g.attrs["scale"]), _attr_str(g, "mode"))
            elif op in ("maxpool", "avgpool"):
                pool = b.maxpool if op == "maxpool" else b.avgpool
                pool(name, inputs[0], int(g.attrs["kernel"]), int(g.attrs["stride"]),
                     int(g.attrs["padding"]))
            else:
                raise ValueError(f"{path}: node {key}: unknown op {op!r}")
        heads = {h: _attr_str(f, f"head_{h}", "") for h in ("heatmap", "size", "offset", "embed")}
        net = b.build(heads, _attr_strs(f, "class_names"), int(f.attrs["multiple"]),
                      int(f.attrs["embed_dim"]),
                      (float(f.attrs["norm8_mean"]), float(f.attrs["norm8_std"])),
                      (float(f.attrs["norm16_mean"]), float(f.attrs["norm16_std"])),
                      float(f.attrs["score_threshold"]), int(f.attrs["top_k"]),
                      int(f.attrs["peak_kernel"]), norm_mode,
                      float(f.attrs.get("suppress_ratio", 0.0)))
        net.meta["provenance"] = json.loads(_attr_str(f, "provenance", "{}"))
    return net.eval()
