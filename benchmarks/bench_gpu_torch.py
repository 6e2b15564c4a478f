#!/usr/bin/env python3
"""The shipped network in PyTorch on the same GPU, for bench_gpu.sh: the model file read back
into PyTorch (train/export.py read_model: the very weights nptrack runs), fp16, channels-last,
in PyTorch's inference modes:
  eager            fp16 channels-last, torch.inference_mode
  compile          torch.compile (inductor, default mode)
  compile_graphs   torch.compile(mode="reduce-overhead"): inductor kernels in CUDA graphs
  max_autotune     torch.compile(mode="max-autotune") (only with --autotune SIZE,BATCH)
Timed as bench_gpu times the network alone: the network on a batch of fp16 frames already on
the GPU (two input buffers, alternated), CUDA events around each call after warm-up, median.
The forward pass is the model's: its four heads, the embedding nearest-upsampled to stride 2 as
the model file says (nptrack's GPU decoder reads the stride-4 embedding instead).

usage: bench_gpu_torch.py --model M.h5 --sizes 512,1024,2048 --batches 8,32 [--modes ...]
                          [--compile-at 1024:32,...] [--autotune 1024,32] [--csv out.csv]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from export import read_model  # noqa: E402


def timed(fn, xs, warmup, reps):
    for i in range(warmup):
        fn(xs[i % 2])
    torch.cuda.synchronize()
    ts = []
    for i in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(xs[i % 2])
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--batches", default="8,32")
    ap.add_argument("--compile-at", default="1024:32",
                    help="size:batch pairs where the compiled modes run (compiling is slow)")
    ap.add_argument("--autotune", default="", help="SIZE,BATCH for max-autotune")
    ap.add_argument("--csv", default="")
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    net = read_model(args.model).cuda().half().to(memory_format=torch.channels_last).eval()
    for p in net.parameters():
        p.requires_grad_(False)

    def fwd(m):
        def f(x):
            out = m(x)
            return out["heatmap"], out["size"], out["offset"], out["embed"]
        return f

    compiled = {}
    rows = []
    out = open(args.csv, "w") if args.csv else None
    hdr = "mode,size,batch,ms,fps,compile_s"
    print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(hdr)
    if out:
        out.write(hdr + "\n")
    at = {tuple(int(v) for v in p.split(":")) for p in args.compile_at.split(",") if p}
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    plan = [("eager", s, b) for s in sizes for b in batches]
    plan += [(m, s, b) for (s, b) in sorted(at) for m in ("compile", "compile_graphs")]
    if args.autotune:
        s, b = (int(v) for v in args.autotune.split(","))
        plan.append(("max_autotune", s, b))
    for mode, s, b in plan:
        xs = [torch.randn(b, 1, s, s, device="cuda", dtype=torch.half).contiguous(
            memory_format=torch.channels_last) for _ in range(2)]
        t0 = time.time()
        with torch.inference_mode():
            if mode == "eager":
                fn = fwd(net)
            else:
                kw = {"compile": {}, "compile_graphs": {"mode": "reduce-overhead"},
                      "max_autotune": {"mode": "max-autotune"}}[mode]
                torch._dynamo.reset()
                fn = torch.compile(fwd(net), dynamic=False, **kw)
            try:
                for _ in range(3):
                    fn(xs[0])
                torch.cuda.synchronize()
                ct = time.time() - t0
                if mode == "compile_graphs" or mode == "max_autotune":
                    # Outputs of CUDA-graph replays are overwritten by the next replay: fine here.
                    pass
                ms = timed(fn, xs, 10, args.reps)
            except torch.cuda.OutOfMemoryError:
                print(f"# {mode} {s} {b}: out of memory")
                torch.cuda.empty_cache()
                continue
        line = f"{mode},{s},{b},{ms:.3f},{b / ms * 1e3:.0f},{ct:.0f}"
        print(line, flush=True)
        rows.append(line)
        if out:
            out.write(line + "\n")
            out.flush()
        del xs
        torch.cuda.empty_cache()
    compiled.clear()


if __name__ == "__main__":
    main()
