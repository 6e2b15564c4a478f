#!/usr/bin/env python3
"""Summary of a GPU benchmark run (bench_gpu.sh): per frame size, nptrack's best frames/s
(network alone, and the whole step from pinned frames to host detections) against PyTorch's
best mode on the same network, with the ratios; and the roofline at each size's best batch:
FLOPs and modelled bytes per frame, achieved TFLOP/s and GB/s against the measured ceilings.

usage: gpu_summary.py bench_c.csv bench_torch.csv   (markdown on stdout)
"""
import csv
import sys


def read(path):
    head, rows = [], []
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    head = [l[1:].strip() for l in lines if l.startswith("#")]
    rows = list(csv.DictReader(l for l in lines if not l.startswith("#")))
    return head, rows


def main():
    ch, c = read(sys.argv[1])
    th, t = read(sys.argv[2]) if len(sys.argv) > 2 else ([], [])
    ceil = {}
    for h in ch:
        for kv in h.split():
            if "=" in kv:
                k, v = kv.split("=")
                ceil[k] = float(v)
    print("\n".join(f"- {h}" for h in ch + th))
    print()
    print("| frame | bits | nptrack network (best batch) | nptrack whole step (best batch) | "
          "PyTorch best (mode, batch) | network / PyTorch | step / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    sizes = sorted({int(r["size"]) for r in c})
    for s in sizes:
        tb = [r for r in t if int(r["size"]) == s]
        best_t = max(tb, key=lambda r: float(r["fps"])) if tb else None
        for bits in sorted({int(r["bits"]) for r in c}):
            rs = [r for r in c if int(r["size"]) == s and int(r["bits"]) == bits]
            if not rs:
                continue
            bn = max(rs, key=lambda r: float(r["net_fps"]))
            bs = max(rs, key=lambda r: float(r["step_fps"]))
            tf = float(best_t["fps"]) if best_t else float("nan")
            tdesc = f"{tf:,.0f} ({best_t['mode']}, {best_t['batch']})" if best_t else "-"
            print(f"| {s}² | {bits} | {float(bn['net_fps']):,.0f} ({bn['batch']}) | "
                  f"{float(bs['step_fps']):,.0f} ({bs['batch']}) | {tdesc} | "
                  f"{float(bn['net_fps']) / tf:.2f} | {float(bs['step_fps']) / tf:.2f} |")
    print()
    print("PyTorch, every mode (frames/s):")
    print()
    print("| mode | frame | batch | ms per batch | frames/s | compile s |")
    print("|---|---|---|---|---|---|")
    for r in t:
        print(f"| {r['mode']} | {r['size']}² | {r['batch']} | {float(r['ms']):.2f} | "
              f"{float(r['fps']):,.0f} | {r['compile_s']} |")
    print()
    gb, tfl = ceil.get("copy_gbs", float("nan")), ceil.get("gemm_tflops", float("nan"))
    print(f"Roofline of the network alone, 8-bit, best batch per size (ceilings measured in the "
          f"same run: copy {gb:,.0f} GB/s, cuBLAS fp16 GEMM {tfl:,.0f} TFLOP/s):")
    print()
    print("| frame | batch | GFLOP/frame | MB/frame modelled (of it conv pre-epilogue) | "
          "TFLOP/s | % GEMM | GB/s | % copy | time at copy ceiling / measured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sizes:
        rs = [r for r in c if int(r["size"]) == s and int(r["bits"]) == 8]
        if not rs:
            continue
        b = max(rs, key=lambda r: float(r["net_fps"]))
        fps, mb = float(b["net_fps"]), float(b["mb_per_frame"])
        floor_ms = mb * 1e6 / (gb * 1e9) * 1e3
        meas_ms = 1e3 / fps
        print(f"| {s}² | {b['batch']} | {float(b['gflop_per_frame']):.1f} | {mb:.0f} "
              f"({float(b['raw_mb_per_frame']):.0f}) | {float(b['net_tflops']):.0f} | "
              f"{100 * float(b['net_tflops']) / tfl:.0f} % | {float(b['net_gbs']):,.0f} | "
              f"{100 * float(b['net_gbs']) / gb:.0f} % | {floor_ms / meas_ms:.2f} |")


if __name__ == "__main__":
    main()
