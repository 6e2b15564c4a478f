"""Writes tests/data/tiny_model.h5 (a tiny random-weight network that uses every op and option
of the model format) and tests/data/tiny_golden.h5 (PyTorch's output of every tensor for a few
inputs), the fixtures of nptrack's model-file and backend tests, and tests/data/
probe_frame_model.h5 (a frame-mode model whose detections show its input, for
tests/python/test_normalise.py):

    /work/venv-torch/bin/python train/make_tiny_model.py tests/data [--probe-only]

Golden layout (docs/model-format.md): /inputs/<i> [N,1,H,W] float32 network input (already
normalised); /outputs/<i>/<tensor> [N,C,H/s,W/s] float32 for every tensor the nodes produce.
The outputs are computed in float64 from the weights as stored in the model file (batch-norm
already folded, float32 values), so they are the exact answer for the file up to float32
rounding of the result.
"""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import LIBVER, folded_conv, read_model, write_model  # noqa: E402
from nptrack_ops import Conv, ConvT, NetBuilder, macs_per_pixel  # noqa: E402

SEED = 20240611
INPUT_SHAPES = [(3, 1, 32, 32), (1, 1, 64, 96), (2, 1, 16, 48)]
GZIP = dict(compression="gzip", compression_opts=9, shuffle=True)  # 25% smaller


def build_tiny():
    """Every op and option: groups > 1 (depthwise and not), dilation 2, stride 2, paddings 0, 1,
    2, a non-square 4x3 kernel, batch-norm on conv and transposed conv, both pools with padding,
    both upsample modes, concat of 3, add of 2 and of 3 with and without activation, transposed conv
    with and without output_padding, every activation.  Heads at output stride 4."""
    b = NetBuilder("input")
    b.conv("stem", "input", 8, k=3, stride=2, bn=True, act="silu")  # /2
    b.maxpool("mp", "stem", 3, stride=2, padding=1)  # /4
    b.avgpool("ap", "stem", 3, stride=2, padding=1)  # /4, padding counted
    b.conv("dw", "stem", 8, k=3, stride=2, groups=8, act="relu")  # depthwise /4
    b.concat("cat3", ["mp", "ap", "dw"])  # 24 channels
    b.conv("pw", "cat3", 8, k=1, bn=True, act="relu")
    b.conv("dil", "pw", 8, k=3, dilation=2, groups=2, act="silu")  # padding 2
    b.add("res", ["pw", "dil"], act="relu")
    b.conv("down", "res", 8, k=5, stride=2, bias=False, bn=True)  # /8, padding 2
    b.maxpool("mp2", "res", 2, stride=2)  # /8
    b.add("add8", ["down", "mp2"])
    b.conv("deep", "add8", 8, k=(4, 3), stride=2, padding=1, act="silu")  # /16
    b.conv("deep2", "deep", 8, k=3, groups=4, act="relu")
    b.convt("up16", "deep2", 8, k=4, stride=2, padding=1, bn=True, act="relu")  # /8
    b.convt("up16b", "deep2", 4, k=3, stride=2, padding=1, output_padding=1)  # /8
    b.concat("fuse8", ["up16", "up16b", "add8"])  # 20 channels
    b.conv("fuse8c", "fuse8", 8, k=3, act="silu")
    b.upsample("up8", "fuse8c", 2, mode="bilinear")  # /4
    b.upsample("upn", "deep2", 4, mode="nearest")  # /4
    b.conv("lat", "res", 8, k=1)
    b.add("neck", ["up8", "upn", "lat"], act="silu")
    b.avgpool("smooth", "neck", 3, stride=1, padding=1)
    b.conv("hm1", "smooth", 8, k=3, act="relu")
    b.conv("heatmap", "hm1", 2, k=1, act="sigmoid")
    b.conv("wh1", "neck", 8, k=3, act="relu")
    b.conv("size", "wh1", 2, k=1)
    b.conv("offset", "neck", 2, k=1)
    b.conv("embed", "neck", 8, k=3)
    return b.build(dict(heatmap="heatmap", size="size", offset="offset", embed="embed"),
                   class_names=["metal", "oxide_shell"], multiple=16, norm8=(0.45, 0.2),
                   norm16=(0.3, 0.15), score_threshold=0.4, top_k=100, peak_kernel=3)


def randomise(net, gen):
    """Random weights, and batch-norm statistics far from identity so that folding matters."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (Conv, ConvT)):
                w = m.conv.weight
                fan_in = w.shape[1] * w.shape[2] * w.shape[3]
                if isinstance(m, ConvT):
                    fan_in = w.shape[0] * w.shape[2] * w.shape[3] / m.conv.stride[0] ** 2
                w.copy_(torch.randn(w.shape, generator=gen) * (1.5 / fan_in) ** 0.5)
                if m.conv.bias is not None:
                    m.conv.bias.copy_(torch.randn(m.conv.bias.shape, generator=gen) * 0.2)
                if m.bn is not None:
                    c = m.bn.num_features
                    m.bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
                    m.bn.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                    m.bn.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
                    m.bn.running_var.copy_(0.3 + 2 * torch.rand(c, generator=gen))
    net.ops["heatmap"].conv.bias.data.fill_(-1.0)  # sparse-ish heatmap, as after training
    return net.eval()


def build_probe():
    """A frame-mode model whose detections show the network input y itself: every cell is a
    peak (heatmap sigmoid(1) everywhere, peak window 1, top-K above any test frame's cells), the
    offset is 0 (so a detection sits at its cell's pixel) and the size head is (y, -y), of which
    the decoder keeps the positive part: w - h = y exactly (1x1 convs by +-1 and 0 are exact)."""
    b = NetBuilder("input")
    b.conv("heatmap", "input", 1, k=1, act="sigmoid")
    b.conv("size", "input", 2, k=1)
    b.conv("offset", "input", 2, k=1)
    net = b.build(dict(heatmap="heatmap", size="size", offset="offset"), class_names=["probe"],
                  multiple=8, norm8=(0.45, 0.2), norm16=(0.3, 0.15), score_threshold=0.5,
                  top_k=65536, peak_kernel=1, norm_mode="frame")
    with torch.no_grad():
        for name in ("heatmap", "size", "offset"):
            net.ops[name].conv.weight.zero_()
            net.ops[name].conv.bias.zero_()
        net.ops["heatmap"].conv.bias.fill_(1.0)
        net.ops["size"].conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
    return net.eval()


def write_probe(outdir):
    path = os.path.join(outdir, "probe_frame_model.h5")
    write_model(build_probe(), path, dict(
        data="none: hand-set weights, a test fixture", code_commit=git_commit(),
        script="train/make_tiny_model.py", validation=None))
    back = read_model(path)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["format_version"]) == 2, "frame-mode models are format version 2"
    assert back.meta["norm_mode"] == "frame", back.meta
    x = torch.linspace(-3, 3, 64).reshape(1, 1, 8, 8)
    with torch.no_grad():
        size = back(x)["size"]
    assert torch.equal(size[:, 0:1], x) and torch.equal(size[:, 1:2], -x), "probe is not exact"
    print(f"{path}: {os.path.getsize(path)} bytes")


def weight_checksum(path):
    """sum over nodes i (file order) of (i + 1) * sum_j ((j % 7) + 1) * v_j, for v = weight
    then bias (each flattened in stored order, j from 0), in float64.  Also the value count."""
    total, count = 0.0, 0
    with h5py.File(path, "r") as f:
        for i, key in enumerate(sorted(f["nodes"].keys())):
            g = f["nodes"][key]
            for d in ("weight", "bias"):
                if d in g:
                    v = np.asarray(g[d], dtype=np.float64).ravel()
                    total += (i + 1) * float(np.sum(v * (np.arange(v.size) % 7 + 1)))
                    count += v.size
    return total, count


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(outdir):
    gen = torch.Generator().manual_seed(SEED)
    net = randomise(build_tiny(), gen)
    model_path = os.path.join(outdir, "tiny_model.h5")
    golden_path = os.path.join(outdir, "tiny_golden.h5")
    write_model(net, model_path, dict(
        data="none: random weights, a test fixture", seed=SEED, code_commit=git_commit(),
        script="train/make_tiny_model.py", validation=None))

    stored = read_model(model_path)
    ref = stored.double()
    rng = np.random.default_rng(SEED)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in INPUT_SHAPES]

    tmp = golden_path + ".tmp"
    checksum, n_values = weight_checksum(model_path)
    with h5py.File(tmp, "w", libver=LIBVER) as f:
        f.attrs["model"] = np.bytes_("tiny_model.h5")
        f.attrs["n_inputs"] = np.int32(len(inputs))
        f.attrs["weight_checksum"] = np.float64(checksum)
        f.attrs["n_weight_values"] = np.int64(n_values)
        f.attrs["macs_per_pixel"] = np.float64(macs_per_pixel(stored))
        f.attrs["torch_version"] = np.bytes_(torch.__version__)
        worst = 0.0
        for i, x in enumerate(inputs):
            f.create_dataset(f"inputs/{i}", data=x, **GZIP)
            with torch.no_grad():
                out = ref.forward_all(torch.from_numpy(x).double())
                # The original network (float32, batch-norm unfolded) agrees with the file.
                orig = net.forward_all(torch.from_numpy(x))
            for name, _ in stored.nodes:
                y = out[name].numpy()
                c, s = stored.tensors[name]
                assert y.shape == (x.shape[0], c, x.shape[2] // s, x.shape[3] // s), name
                err = np.max(np.abs(orig[name].numpy() - y)) / (1e-3 + np.max(np.abs(y)))
                worst = max(worst, err)
                f.create_dataset(f"outputs/{i}/{name}", data=y.astype(np.float32), **GZIP)
        assert worst < 1e-5, f"export does not match the network: relative error {worst:.3g}"
    os.replace(tmp, golden_path)
    print(f"{model_path}: {os.path.getsize(model_path)} bytes, {len(stored.nodes)} nodes, "
          f"{n_values} weights, checksum {checksum!r}")
    print(f"{golden_path}: {os.path.getsize(golden_path)} bytes; float32 network vs file: "
          f"relative error {worst:.3g}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--probe-only"]):
        sys.exit("usage: make_tiny_model.py OUTDIR (tests/data) [--probe-only]")
    if len(sys.argv) == 2:
        main(sys.argv[1])
    write_probe(sys.argv[1])
