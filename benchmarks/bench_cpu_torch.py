#!/usr/bin/env python3
"""The CPU benchmark network (the same graph that bench_cpu.c builds) in PyTorch, on the same CPU,
threads and batch sizes, in each of PyTorch's inference modes; prints PyTorch's best per setting
and, given bench_cpu's results (--c-results), the ratio table C / PyTorch (frames/s).

Run (numbers in docs/performance.md), interleaving the two so that both see the same machine:
  /work/venv-torch/bin/python benchmarks/bench_cpu_torch.py --rounds 2 \
      --c-bench build-cpu/benchmarks/bench_cpu --c-variant nptrack= --c-variant direct=--direct
or from a finished bench_cpu run:  ... bench_cpu_torch.py --c-results c.csv
"""
import argparse
import os
import sys
import warnings
import csv
import statistics
import subprocess
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k=3, s=1):
    return nn.Conv2d(cin, cout, k, s, k // 2, bias=True)


class BenchNet(nn.Module):
    """Single-channel input; stem at stride 2; residual stages at 4/8/16 with 24/48/96 channels; an
    upsampling neck back to stride 4 (nearest + add, bilinear + concat); four FairMOT-style heads
    (3x3 + 1x1): heatmap 2 (sigmoid), size 2, offset 2, embedding 64.  ~12.9 GFLOP per 1024^2."""

    def __init__(self):
        super().__init__()
        self.stem1, self.stem2 = conv(1, 16, 3, 2), conv(16, 16)
        self.d4, self.c4a, self.c4b = conv(16, 24, 3, 2), conv(24, 24), conv(24, 24)
        self.d8, self.c8a, self.c8b = conv(24, 48, 3, 2), conv(48, 48), conv(48, 48)
        self.d16, self.c16a, self.c16b = conv(48, 96, 3, 2), conv(96, 96), conv(96, 96)
        self.lat16, self.f8 = conv(96, 48, 1), conv(48, 48)
        self.lat8, self.f4 = conv(48, 24, 1), conv(48, 32)
        self.heads = nn.ModuleList(
            nn.Sequential(conv(32, 24), nn.ReLU(), conv(24, n, 1)) for n in (2, 2, 2, 64))

    def forward(self, x):
        r = F.relu
        x = r(self.stem2(r(self.stem1(x))))
        d4 = r(self.d4(x))
        s4 = r(self.c4b(r(self.c4a(d4))) + d4)
        d8 = r(self.d8(s4))
        s8 = r(self.c8b(r(self.c8a(d8))) + d8)
        d16 = r(self.d16(s8))
        s16 = r(self.c16b(r(self.c16a(d16))) + d16)
        m8 = F.interpolate(self.lat16(s16), scale_factor=2, mode="nearest") + s8
        f8 = r(self.f8(m8))
        u4 = F.interpolate(self.lat8(f8), scale_factor=2, mode="bilinear", align_corners=False)
        f4 = r(self.f4(torch.cat([u4, s4], 1)))
        hm, sz, off, emb = (h(f4) for h in self.heads)
        return torch.sigmoid(hm), sz, off, emb


class HeadsTuple(nn.Module):
    """A model file's network with its heads as a tuple (torch.jit.trace wants no dict)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return tuple(self.net(x).values())


def build(mode, net, example):
    """A callable for one inference mode, and the input layout it wants."""
    if mode == "eager":
        return net, torch.contiguous_format
    if mode == "channels_last":
        return net.to(memory_format=torch.channels_last), torch.channels_last
    if mode == "jit":  # trace + freeze + optimize_for_inference: conv/relu fusion, oneDNN layouts
        m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, example).eval()))
        return m, torch.contiguous_format
    if mode == "jit_channels_last":
        net_cl = net.to(memory_format=torch.channels_last)
        ex = example.to(memory_format=torch.channels_last)
        m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net_cl, ex).eval()))
        return m, torch.channels_last
    raise ValueError(mode)


def time_runs(fn, x, runs, warmup):
    for _ in range(warmup):
        fn(x)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def run_c(exe, extra, size, threads, batch, runs, warmup):
    """frames/s of one bench_cpu setting (its median of `runs`)."""
    with tempfile.NamedTemporaryFile(suffix=".csv") as f:
        subprocess.run([exe, "--sizes", str(size), "--threads", str(threads), "--batches",
                        str(batch), "--runs", str(runs), "--warmup", str(warmup), "--csv", f.name]
                       + extra, check=True, stdout=subprocess.DEVNULL)
        rows = list(csv.DictReader(open(f.name)))
    return float(rows[0]["fps"])


def main():
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit's deprecation notes
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1024,2048")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--modes", default="eager,channels_last,jit,jit_channels_last")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure each setting this many times, alternating PyTorch and "
                         "bench_cpu, and keep each one's best median (a shared machine's other "
                         "work only ever slows a round down)")
    ap.add_argument("--c-bench", help="path of bench_cpu: run it on each setting, interleaved")
    ap.add_argument("--c-variant", action="append", default=[],
                    help="NAME=ARGS: a bench_cpu column run with extra ARGS (e.g. direct=--direct);"
                         " the first column is the one compared (default: nptrack=)")
    ap.add_argument("--c-results", help="CSV written by bench_cpu --csv (instead of --c-bench)")
    ap.add_argument("--csv", help="write the results here")
    ap.add_argument("--model", help="time this model file (read back with train/export.py) "
                    "instead of BenchNet; passed on to bench_cpu too")
    a = ap.parse_args()
    variants = [v.split("=", 1) for v in (a.c_variant or ["nptrack="])] if a.c_bench else []
    c_given = {}
    if a.c_results:
        with open(a.c_results) as f:
            for r in csv.DictReader(f):
                c_given[(int(r["size"]), int(r["threads"]), int(r["batch"]))] = float(r["fps"])
    torch.manual_seed(0)
    net = BenchNet().eval()
    if a.model:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "train"))
        from export import read_model
        net = HeadsTuple(read_model(a.model)).eval()
        variants = [(n, e + " --model " + a.model) for n, e in variants]
    modes = a.modes.split(",")
    names = [n for n, _ in variants] or (["nptrack"] if c_given else [])
    print(f"torch {torch.__version__}; frames/s, best of {a.rounds} round(s) of a median of "
          f"{a.runs} runs ({max(3, a.runs // 2)} above 1024^2 pixels per batch)")
    print(f"{'size':>5} {'thr':>3} {'batch':>5} " + " ".join(f"{m:>17}" for m in modes)
          + "".join(f" {n:>9}" for n in names) + f" {'ratio':>6}  (first column / PyTorch's best)",
          flush=True)
    rows = []
    with torch.inference_mode():
        for threads in map(int, a.threads.split(",")):
            torch.set_num_threads(threads)
            for size in map(int, a.sizes.split(",")):
                for batch in map(int, a.batches.split(",")):
                    x = torch.randn(batch, 1, size, size)
                    # Fewer repetitions where one pass takes seconds; the median is still taken.
                    runs = a.runs if size * size * batch <= 1024 * 1024 else max(3, a.runs // 2)
                    fps = dict.fromkeys(modes, 0.0)
                    cfps = dict.fromkeys(names, 0.0)
                    for _ in range(a.rounds):
                        for mode in modes:
                            fn, fmt = build(mode, net, x)
                            xin = x.contiguous(memory_format=fmt)
                            fps[mode] = max(fps[mode], batch / time_runs(fn, xin, runs, a.warmup))
                        for name, extra in variants:
                            cfps[name] = max(cfps[name], run_c(a.c_bench, extra.split(), size,
                                                               threads, batch, runs, a.warmup))
                    if c_given:
                        cfps["nptrack"] = c_given.get((size, threads, batch), float("nan"))
                    best = max(fps, key=fps.get)
                    ratio = cfps[names[0]] / fps[best] if names else float("nan")
                    print(f"{size:>5} {threads:>3} {batch:>5} "
                          + " ".join(f"{fps[m]:>17.2f}" for m in modes)
                          + "".join(f" {cfps[n]:>9.2f}" for n in names)
                          + f" {ratio:>6.2f}  best PyTorch mode: {best}", flush=True)
                    rows.append([size, threads, batch, best, fps[best]] + [cfps[n] for n in names])
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["size", "threads", "batch", "torch_mode", "torch_fps"] + names)
            w.writerows(rows)


if __name__ == "__main__":
    main()
