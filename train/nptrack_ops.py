"""nptrack's network ops in PyTorch, and a small builder that wires them into a graph.

The op set is exactly the one nptrack's C engine runs (src/nn/graph.h, docs/model-format.md):
conv2d (+ optional batch-norm, folded at export) + bias + activation, transposed conv, add (+
activation), concat, upsample (nearest, or bilinear with align_corners=False) by an integer
factor, max-pool and average pool (count_include_pad=True).  A network is a list of nodes over
named tensors; every node produces one tensor that has the node's name.  Every tensor's spatial
size is the input's divided by its stride, for any input whose sides are multiples of
`multiple`: the builder checks the same rules as the C loader, so a network that builds here
exports to a file nptrack loads.

    b = NetBuilder()                       # the input tensor is "input": 1 channel, stride 1
    b.conv("stem", "input", 16, k=3, stride=2, bn=True, act="silu")
    b.upsample("up", "stem", 2, mode="bilinear")
    ...
    net = b.build(heads=dict(heatmap="hm", size="wh", offset="reg", embed="emb"),
                  class_names=["metal", "oxide"], norm_mode="frame")
    x = normalise(frames, 16, net.meta)    # integer frames [..., h, w] -> the network's input
"""

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from input_norm import NORM_MODES, normalise  # noqa: F401 (re-exported: the network's input)

ACTS = ("none", "relu", "silu", "sigmoid")
OPS = ("conv2d", "convt2d", "add", "concat", "upsample", "maxpool", "avgpool")
NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,63}$")
MAX_INPUTS = 8


def activate(x, act):
    if act == "none":
        return x
    if act == "relu":
        return F.relu(x)
    if act == "silu":
        return F.silu(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(f"unknown activation {act!r}")


def _pair(k):
    return (k, k) if isinstance(k, int) else tuple(k)


def same_size_ok(k, stride, pad, dilation=1):
    """True when a conv/pool window keeps size n -> n / stride for every n divisible by stride:
    floor((n + 2 pad - dilation (k - 1) - 1) / stride) + 1 == n / stride."""
    e = 2 * pad - dilation * (k - 1) - 1
    return -stride <= e <= -1


def default_padding(kh, kw, stride, dilation):
    """The padding that keeps `input / stride` in both directions, or an error."""
    for p in range(0, max(kh, kw) * dilation + 1):
        if same_size_ok(kh, stride, p, dilation) and same_size_ok(kw, stride, p, dilation):
            return p
    raise ValueError(f"no single padding keeps the size for kernel {kh}x{kw}, stride {stride}, "
                     f"dilation {dilation}")


class Conv(nn.Module):
    """conv2d, optional batch-norm (folded into weight and bias at export), activation."""

    def __init__(self, c_in, c_out, k=3, stride=1, padding=None, dilation=1, groups=1, bias=True,
                 bn=False, act="none"):
        super().__init__()
        kh, kw = _pair(k)
        if padding is None:
            padding = default_padding(kh, kw, stride, dilation)
        self.conv = nn.Conv2d(c_in, c_out, (kh, kw), stride, padding, dilation, groups, bias=bias)
        self.bn = nn.BatchNorm2d(c_out) if bn else None
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return activate(x, self.act)


class ConvT(nn.Module):
    """Transposed conv (groups 1, dilation 1), optional batch-norm, activation."""

    def __init__(self, c_in, c_out, k=4, stride=2, padding=1, output_padding=0, bias=True,
                 bn=False, act="none"):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, _pair(k), stride, padding, output_padding,
                                       bias=bias)
        self.bn = nn.BatchNorm2d(c_out) if bn else None
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return activate(x, self.act)


class Add(nn.Module):
    def __init__(self, act="none"):
        super().__init__()
        self.act = act

    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return activate(y, self.act)


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, dim=1)


class Upsample(nn.Module):
    def __init__(self, scale, mode="nearest"):
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample mode must be nearest or bilinear, not {mode!r}")
        self.scale, self.mode = int(scale), mode

    def forward(self, x):
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class MaxPool(nn.Module):
    def __init__(self, k, stride, padding=0):
        super().__init__()
        self.k, self.stride, self.padding = k, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.k, self.stride, self.padding)


class AvgPool(nn.Module):
    def __init__(self, k, stride, padding=0):
        super().__init__()
        self.k, self.stride, self.padding = k, stride, padding

    def forward(self, x):
        return F.avg_pool2d(x, self.k, self.stride, self.padding, count_include_pad=True)


def op_of(module):
    for cls, op in ((Conv, "conv2d"), (ConvT, "convt2d"), (Add, "add"), (Concat, "concat"),
                    (Upsample, "upsample"), (MaxPool, "maxpool"), (AvgPool, "avgpool")):
        if isinstance(module, cls):
            return op
    raise TypeError(f"{type(module).__name__} is not an nptrack op")


class Net(nn.Module):
    """A graph of nptrack ops.  forward(x) returns the heads as a dict (heatmap, size, offset,
    embed); forward_all(x) returns every tensor by name, in node order, the input first."""

    def __init__(self, input_name, nodes, tensors, meta):
        super().__init__()
        self.input_name = input_name
        self.nodes = [(name, list(inputs)) for name, inputs, _ in nodes]
        self.ops = nn.ModuleDict({name: m for name, _, m in nodes})
        self.tensors = dict(tensors)  # name -> (channels, stride)
        self.meta = dict(meta)

    def forward_all(self, x):
        t = {self.input_name: x}
        for name, inputs in self.nodes:
            t[name] = self.ops[name](*[t[i] for i in inputs])
        return t

    def forward(self, x):
        t = self.forward_all(x)
        return {h: t[n] for h, n in self.meta["heads"].items() if n}


class NetBuilder:
    """Builds a Net node by node, checking channels and strides as nptrack's loader does."""

    def __init__(self, input="input"):
        self._check_name(input)
        self.input = input
        self.tensors = {input: (1, 1)}  # name -> (channels, stride)
        self.nodes = []  # (name, inputs, module)

    @staticmethod
    def _check_name(name):
        if not NAME_RE.match(name):
            raise ValueError(f"tensor name {name!r}: use 1 to 63 of A-Z a-z 0-9 _")

    def _new(self, name, inputs, module, channels, stride):
        self._check_name(name)
        if name in self.tensors:
            raise ValueError(f"tensor {name!r} is already defined")
        if stride < 1 or stride != int(stride):
            raise ValueError(f"{name}: stride {stride} is not a positive integer")
        self.tensors[name] = (channels, int(stride))
        self.nodes.append((name, list(inputs), module))
        return name

    def _get(self, name):
        if name not in self.tensors:
            raise ValueError(f"no tensor {name!r} defined yet")
        return self.tensors[name]

    def conv(self, out, x, c_out, k=3, stride=1, padding=None, dilation=1, groups=1, bias=True,
             bn=False, act="none"):
        c_in, s = self._get(x)
        kh, kw = _pair(k)
        if padding is None:
            padding = default_padding(kh, kw, stride, dilation)
        if c_in % groups or c_out % groups:
            raise ValueError(f"{out}: groups {groups} must divide {c_in} and {c_out} channels")
        if not (same_size_ok(kh, stride, padding, dilation)
                and same_size_ok(kw, stride, padding, dilation)):
            raise ValueError(f"{out}: kernel {kh}x{kw}, stride {stride}, padding {padding}, "
                             f"dilation {dilation} does not give input size / stride")
        assert act in ACTS, act
        m = Conv(c_in, c_out, (kh, kw), stride, padding, dilation, groups, bias, bn, act)
        return self._new(out, [x], m, c_out, s * stride)

    def convt(self, out, x, c_out, k=4, stride=2, padding=1, output_padding=0, bias=True,
              bn=False, act="none"):
        c_in, s = self._get(x)
        kh, kw = _pair(k)
        if s % stride:
            raise ValueError(f"{out}: stride {s} / {stride} is not an integer")
        if any(kk + output_padding != stride + 2 * padding for kk in (kh, kw)):
            raise ValueError(f"{out}: transposed conv must give size * stride: need "
                             f"kernel + output_padding == stride + 2 padding")
        if output_padding >= stride:
            raise ValueError(f"{out}: output_padding must be < stride")
        assert act in ACTS, act
        m = ConvT(c_in, c_out, (kh, kw), stride, padding, output_padding, bias, bn, act)
        return self._new(out, [x], m, c_out, s // stride)

    def add(self, out, xs, act="none"):
        shapes = {self._get(x) for x in xs}
        if len(xs) < 2 or len(xs) > MAX_INPUTS or len(shapes) != 1:
            raise ValueError(f"{out}: add needs 2 to {MAX_INPUTS} inputs of one shape: {shapes}")
        assert act in ACTS, act
        c, s = shapes.pop()
        return self._new(out, xs, Add(act), c, s)

    def concat(self, out, xs):
        shapes = [self._get(x) for x in xs]
        if len(xs) < 2 or len(xs) > MAX_INPUTS or len({s for _, s in shapes}) != 1:
            raise ValueError(f"{out}: concat needs 2 to {MAX_INPUTS} inputs of one stride")
        return self._new(out, xs, Concat(), sum(c for c, _ in shapes), shapes[0][1])

    def upsample(self, out, x, scale, mode="nearest"):
        c, s = self._get(x)
        if scale < 1 or s % scale:
            raise ValueError(f"{out}: stride {s} / scale {scale} is not an integer")
        return self._new(out, [x], Upsample(scale, mode), c, s // scale)

    def _pool(self, cls, out, x, k, stride, padding):
        c, s = self._get(x)
        stride = k if stride is None else stride
        if not same_size_ok(k, stride, padding) or 2 * padding > k:
            raise ValueError(f"{out}: pool {k}, stride {stride}, padding {padding} does not give "
                             f"input size / stride")
        return self._new(out, [x], cls(k, stride, padding), c, s * stride)

    def maxpool(self, out, x, k, stride=None, padding=0):
        return self._pool(MaxPool, out, x, k, stride, padding)

    def avgpool(self, out, x, k, stride=None, padding=0):
        return self._pool(AvgPool, out, x, k, stride, padding)

    def build(self, heads, class_names, multiple=None, embed_dim=None, norm8=(0.5, 0.25),
              norm16=(0.5, 0.25), score_threshold=0.3, top_k=500, peak_kernel=3,
              norm_mode="fixed", suppress_ratio=0.0):
        """heads: dict heatmap/size/offset[/embed] -> tensor name.  multiple defaults to the
        largest tensor stride.  norm_mode: how frames become the network input (normalise()):
        "fixed" with norm8/norm16 = (mean, std) in units of full scale, or "frame" (each
        frame by its own mean and std; norm8/norm16 are then stored but not used).
        score_threshold, top_k, peak_kernel, suppress_ratio: the decoding defaults
        (docs/decode.md; suppress_ratio in [0, 2], 0 for no centre-distance suppression)."""
        if norm_mode not in NORM_MODES:
            raise ValueError(f"norm_mode must be one of {NORM_MODES}, not {norm_mode!r}")
        if not 0.0 <= float(suppress_ratio) <= 2.0:
            raise ValueError(f"suppress_ratio must be in [0, 2], not {suppress_ratio!r}")
        for h in ("heatmap", "size", "offset"):
            if h not in heads:
                raise ValueError(f"head {h!r} missing")
        heads = {h: heads.get(h) or "" for h in ("heatmap", "size", "offset", "embed")}
        strides = {self._get(heads[h])[1] for h in heads if heads[h]}
        if len(strides) != 1:
            raise ValueError(f"heads must share one stride, not {sorted(strides)}")
        max_stride = max(s for _, s in self.tensors.values())
        multiple = multiple or max_stride
        for n, (_, s) in self.tensors.items():
            if multiple % s:
                raise ValueError(f"tensor {n}: stride {s} does not divide multiple {multiple}")
        if self._get(heads["heatmap"])[0] != len(class_names):
            raise ValueError("heatmap channels != number of class names")
        for h in ("size", "offset"):
            if self._get(heads[h])[0] != 2:
                raise ValueError(f"head {h} must have 2 channels")
        if heads["embed"]:
            embed_dim = self._get(heads["embed"])[0]
        meta = dict(heads=heads, class_names=list(class_names), multiple=multiple,
                    output_stride=strides.pop(), embed_dim=embed_dim or 0, norm8=tuple(norm8),
                    norm16=tuple(norm16), score_threshold=float(score_threshold),
                    top_k=int(top_k), peak_kernel=int(peak_kernel), norm_mode=norm_mode,
                    suppress_ratio=float(suppress_ratio))
        return Net(self.input, self.nodes, self.tensors, meta)


def macs_per_pixel(net):
    """Multiply-accumulates of conv and transposed conv per input pixel (as the C engine says)."""
    total = 0.0
    for name, inputs in net.nodes:
        m = net.ops[name]
        if isinstance(m, Conv):
            w = m.conv.weight
            s_out = net.tensors[name][1]
            total += w.numel() / (s_out * s_out)
        elif isinstance(m, ConvT):
            s_in = net.tensors[inputs[0]][1]
            total += m.conv.weight.numel() / (s_in * s_in)
    return total


__all__ = ["ACTS", "NORM_MODES", "OPS", "Add", "AvgPool", "Concat", "Conv", "ConvT", "MaxPool",
           "Net", "NetBuilder", "Upsample", "activate", "macs_per_pixel", "normalise", "op_of",
           "same_size_ok"]
