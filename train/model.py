"""The network nptrack ships: `npt-s2`, a compact FPN-style detector + re-ID embedder for
single-channel TEM frames (docs/model.md explains every choice).

    backbone  stride 2 (16 ch) -> 4 (32) -> 8 (64, 2 residual blocks) -> 16 (96, 2 blocks)
              -> 32 (128, 2 blocks)
    neck      top-down: 1x1 laterals, bilinear x2 upsampling, add, 3x3 conv at 16, 8, 4, 2
    heads     at stride 2: heatmap (3x3 + 1x1, sigmoid, one channel per class), size (3x3 + 1x1,
              box w, h in input pixels), offset (1x1 on the size trunk, in output cells);
              embedding at stride 4 (3x3 + 1x1, 64-d), nearest-upsampled to stride 2

Every op is one the C engine runs (train/nptrack_ops.py), so the trained network exports with
train/export.py without translation.  `python3 train/model.py` prints its cost and receptive
field.
"""

import math
import sys

from nptrack_ops import NetBuilder, macs_per_pixel

CLASS_NAMES = ["metal", "oxide_shell"]
WIDTHS = dict(s2=16, s4=32, s8=64, s16=96, s32=128, neck=64, head=24, embed=64)
BLOCKS = dict(s8=2, s16=2, s32=2)
HEATMAP_PRIOR = 0.01  # initial heatmap probability (bias of the last heatmap conv)


def _res_block(b, name, x, c):
    b.conv(f"{name}a", x, c, k=3, bn=True, act="silu")
    b.conv(f"{name}b", f"{name}a", c, k=3, bn=True)
    return b.add(name, [x, f"{name}b"], act="silu")


def build(widths=None, blocks=None, embed_dim=64, score_threshold=0.3, top_k=50000,
          norm_mode="frame", suppress_ratio=0.0):
    w = dict(WIDTHS, **(widths or {}))
    nb = dict(BLOCKS, **(blocks or {}))
    w["embed"] = embed_dim
    b = NetBuilder("input")
    # backbone
    b.conv("s2a", "input", w["s2"], k=3, stride=2, bn=True, act="silu")
    x = b.conv("s2", "s2a", w["s2"], k=3, bn=True, act="silu")
    b.conv("s4a", x, w["s4"], k=3, stride=2, bn=True, act="silu")
    x = b.conv("s4", "s4a", w["s4"], k=3, bn=True, act="silu")
    feats = {"s2": "s2", "s4": "s4"}
    prev = x
    for lvl in ("s8", "s16", "s32"):
        x = b.conv(f"{lvl}d", prev, w[lvl], k=3, stride=2, bn=True, act="silu")
        for i in range(nb[lvl]):
            x = _res_block(b, f"{lvl}r{i}", x, w[lvl])
        feats[lvl] = prev = x
    # neck: top-down path
    top = b.conv("n32", feats["s32"], w["neck"], k=1, bn=True)
    widths_down = {"s16": w["neck"], "s8": w["s4"], "s4": w["s4"], "s2": w["s2"]}
    c_top = w["neck"]
    for lvl, up in (("s16", "n32"), ("s8", "f16"), ("s4", "f8"), ("s2", "f4")):
        tag = lvl[1:]
        b.upsample(f"u{tag}", top if lvl == "s16" else up, 2, mode="bilinear")
        b.conv(f"l{tag}", feats[lvl], c_top, k=1, bn=True)
        b.add(f"a{tag}", [f"u{tag}", f"l{tag}"], act="silu")
        c_out = w["head"] if lvl == "s2" else widths_down[lvl]
        top = b.conv(f"f{tag}", f"a{tag}", c_out, k=3, bn=True, act="silu")
        c_top = c_out
    # heads at stride 2
    b.conv("hm1", "f2", w["head"], k=3, bn=True, act="silu")
    b.conv("heatmap", "hm1", len(CLASS_NAMES), k=1, act="sigmoid")
    b.conv("box1", "f2", w["head"], k=3, bn=True, act="silu")
    b.conv("size", "box1", 2, k=1)
    b.conv("offset", "box1", 2, k=1)
    # embedding at stride 4, upsampled (nearest) to the heads' stride
    b.conv("emb1", "f4", w["embed"], k=3, bn=True, act="silu")
    b.conv("emb4", "emb1", w["embed"], k=1)
    b.upsample("embed", "emb4", 2, mode="nearest")
    net = b.build(dict(heatmap="heatmap", size="size", offset="offset", embed="embed"),
                  class_names=CLASS_NAMES, multiple=32, score_threshold=score_threshold,
                  top_k=top_k, peak_kernel=3, norm_mode=norm_mode,
                  suppress_ratio=suppress_ratio)
    bias = -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR)
    net.ops["heatmap"].conv.bias.data.fill_(bias)
    net.meta["arch"] = dict(name="npt-s2", widths=w, blocks=nb)
    return net


def receptive_field(net):
    """Receptive field (input pixels) of one cell of each head tensor: the union of every path,
    computed node by node as (size, jump); bilinear upsampling adds one input cell each side."""
    rf = {net.input_name: (1, 1)}  # tensor -> (receptive field, jump = stride)
    for name, inputs in net.nodes:
        m = net.ops[name]
        r_in = max(rf[i][0] for i in inputs)
        j_in = net.tensors[inputs[0]][1]
        kind = type(m).__name__
        if kind == "Conv":
            k = m.conv.kernel_size[0]
            d = m.conv.dilation[0]
            rf[name] = (r_in + (k - 1) * d * j_in, j_in * m.conv.stride[0])
        elif kind == "Upsample":
            rf[name] = (r_in + (2 * j_in if m.mode == "bilinear" else 0), j_in // m.scale)
        elif kind in ("MaxPool", "AvgPool"):
            rf[name] = (r_in + (m.k - 1) * j_in, j_in * m.stride)
        else:
            rf[name] = (r_in, j_in)
    return {h: rf[t][0] for h, t in net.meta["heads"].items() if t}


def describe(net):
    macs = macs_per_pixel(net)
    params = sum(p.numel() for n, p in net.named_parameters() if "bn" not in n)
    lines = [f"architecture      {net.meta['arch']['name']}",
             f"parameters        {params:,} ({params * 4 / 1e6:.2f} MB float32)",
             f"MACs / pixel      {macs:,.0f}",
             f"GFLOP / Mpx       {2 * macs * 1e6 / 1e9:.1f}",
             f"GFLOP per 1024^2  {2 * macs * 1024 * 1024 / 1e9:.1f}",
             f"output stride     {net.meta['output_stride']}"]
    for h, r in receptive_field(net).items():
        lines.append(f"receptive field   {h}: {r} px")
    return "\n".join(lines)


def table(net):
    """One markdown row per node: op, output channels, stride, kernel, MACs per input pixel."""
    from nptrack_ops import Conv, op_of
    rows = ["| node | op | inputs | channels | stride | kernel | MACs/px |", "|---|---|---|---|---|---|---|"]
    for name, inputs in net.nodes:
        m = net.ops[name]
        c, s = net.tensors[name]
        k, macs = "", ""
        if isinstance(m, Conv):
            w = m.conv.weight
            k = f"{w.shape[2]}x{w.shape[3]}/{m.conv.stride[0]}"
            macs = f"{w.numel() / (s * s):.0f}"
        rows.append(f"| {name} | {op_of(m)} | {', '.join(inputs)} | {c} | {s} | {k} | {macs} |")
    return "\n".join(rows)


if __name__ == "__main__":
    net = build()
    print(table(net) if "--table" in sys.argv else describe(net))
