"""Golden detections of a model on a video: what PyTorch and the decoding rules say `nptrack
detect` must find, for tests/python/test_detect_golden.py.

    /work/venv-torch/bin/python train/make_golden_dets.py MODEL.h5 VIDEO.h5 OUT.h5 [--frames N]
        [--score-threshold T] [--top-k K] [--peak-kernel P] [--suppress-ratio R]
        [--synth-args "ARGS"]

The first N frames of VIDEO.h5 (/frames, [T, H, W]) go through the engine's preprocessing
(decode_ref.preprocess), the network read back from MODEL.h5 (export.read_model) in float32 on
the CPU, and the engine's decoding (decode_ref.decode_frame).  --synth-args records how the video
was made (`nptrack synth ARGS`, run from the source tree), so that the test can make it again:
synthetic videos are the same byte for byte for the same arguments.  Decoding settings default to
the model's own; whatever is used is recorded, and the test passes the same to `nptrack detect`.

OUT.h5 layout (gzip):
  /detections/{frame, x, y, w, h, score, class, cell_i, cell_j, margin}, /detections/embedding
      [n, D], /detections/frame_offsets [N + 1]: as in a detections file (docs/archive-format.md),
      plus the peak's cell and its margin (the smallest of score - threshold, score - the
      largest other cell of its window and, with suppression, its distance - limit in px to
      the nearest kept centre: below `eps`, a float32 rounding elsewhere may move or drop the
      detection, and the test allows that);
  /near/{frame, class, cell_i, cell_j, x, y, w, h, score}: cells that are no peak here but
      within `eps` of being one, and peaks that suppression dropped within `eps` px of its
      limit (the test allows them as extra detections);
  attributes: model (file name), model_sha256, video_synth_args, video_frames_sha256 (of the
      [N, H, W] frames' bytes), video_shape, video_config, frames, score_threshold, top_k,
      peak_kernel, suppress_ratio, eps, norm_mode, output_stride, torch_version, command.
Frames whose peaks exceed top_k are refused (the top-K cut would be one more near tie): raise
--top-k.
"""

import argparse
import hashlib
import os
import shlex
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_ref as ref  # noqa: E402
from export import read_model  # noqa: E402

EPS = 1e-4  # as the test's score tolerance: PyTorch and oneDNN differ by about 1e-6
GZIP = dict(compression="gzip", compression_opts=9, shuffle=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_frames(frames):
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


def heads_of(net, x):
    """The network's heads for input x [N, 1, Hp, Wp], float32 numpy arrays."""
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    return {k: v.float().numpy() for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=4, help="the first N frames (4)")
    ap.add_argument("--dataset", default="/frames")
    ap.add_argument("--score-threshold", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--peak-kernel", type=int, default=None)
    ap.add_argument("--suppress-ratio", type=float, default=None,
                    help="centre-distance suppression (docs/decode.md); the model's by default")
    ap.add_argument("--synth-args", default="", help="the `nptrack synth` arguments of the video")
    ap.add_argument("--eps", type=float, default=EPS)
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    meta = ref.model_meta(a.model)
    net = read_model(a.model).float().eval()
    thr = meta["score_threshold"] if a.score_threshold is None else a.score_threshold
    top_k = meta["top_k"] if a.top_k is None else a.top_k
    pk = meta["peak_kernel"] if a.peak_kernel is None else a.peak_kernel
    ratio = meta["suppress_ratio"] if a.suppress_ratio is None else a.suppress_ratio
    if not 0.0 <= ratio <= 2.0:
        sys.exit(f"--suppress-ratio must be in [0, 2], not {ratio}")
    s = meta["output_stride"]

    with h5py.File(a.video, "r") as f:
        ds = f[a.dataset]
        if a.frames > ds.shape[0]:
            sys.exit(f"{a.video}: {ds.shape[0]} frames, fewer than --frames {a.frames}")
        frames = ds[:a.frames]
        config = f.attrs.get("config", "")
        config = config.decode() if isinstance(config, bytes) else str(config)
    n, fh, fw = frames.shape

    x = ref.preprocess(frames, meta)
    heads = heads_of(net, x)
    cols = {k: [] for k in ("frame", "x", "y", "w", "h", "score", "class", "cell_i", "cell_j",
                            "margin")}
    near = {k: [] for k in ("frame", "class", "cell_i", "cell_j", "x", "y", "w", "h", "score")}
    emb, offsets = [], [0]
    for t in range(n):
        e = heads["embed"][t] if "embed" in heads else None
        dropped = []
        dets, saturated, cells = ref.decode_frame(heads["heatmap"][t], heads["size"][t],
                                                  heads["offset"][t], e, fh, fw, s, thr, top_k, pk,
                                                  ratio, dropped)
        if saturated:
            sys.exit(f"frame {t}: more than top_k = {top_k} peaks; raise --top-k")
        margins, near_cells = ref.fragility(heads["heatmap"][t], dets, cells, thr, pk, a.eps,
                                            dropped)
        # A distance within eps px of the suppression limit is as fragile as a near tie.
        margins = [min(m, d["suppress_margin"]) for d, m in zip(dets, margins)]
        near_cells += [(d["cls"] - 1, *d["cell"]) for d in dropped if d["suppress_margin"] < a.eps]
        for d, m in zip(dets, margins):
            for k in ("x", "y", "w", "h", "score"):
                cols[k].append(d[k])
            cols["frame"].append(t)
            cols["class"].append(d["cls"])
            cols["cell_i"].append(d["cell"][0])
            cols["cell_j"].append(d["cell"][1])
            cols["margin"].append(m)
            if e is not None:
                emb.append(d["embedding"])
        for c, i, j in near_cells:
            b = ref.box_at(heads["size"][t], heads["offset"][t], i, j, s)
            for k in ("x", "y", "w", "h"):
                near[k].append(b[k])
            near["frame"].append(t)
            near["class"].append(c + 1)
            near["cell_i"].append(i)
            near["cell_j"].append(j)
            near["score"].append(heads["heatmap"][t][c, i, j])
        offsets.append(len(cols["frame"]))
        fragile = sum(m < a.eps for m in margins)
        print(f"frame {t}: {len(dets)} detections ({fragile} within {a.eps:g} of a tie or the "
              f"threshold), {len(near_cells)} near peaks, {len(dropped)} suppressed")

    tmp = a.out + ".tmp"
    with h5py.File(tmp, "w") as f:
        g = f.create_group("detections")
        for k, v in cols.items():
            dt = (np.int64 if k == "frame" else np.int32 if k in ("class", "cell_i", "cell_j")
                  else np.float64 if k == "margin" else np.float32)
            g.create_dataset(k, data=np.asarray(v, dt), **GZIP)
        if "embed" in heads:
            D = heads["embed"].shape[1]
            g.create_dataset("embedding", data=np.asarray(emb, np.float32).reshape(-1, D), **GZIP)
        g.create_dataset("frame_offsets", data=np.asarray(offsets, np.int64))
        g2 = f.create_group("near")
        for k, v in near.items():
            dt = (np.int64 if k == "frame" else np.int32 if k in ("class", "cell_i", "cell_j")
                  else np.float32)
            g2.create_dataset(k, data=np.asarray(v, dt), **GZIP)
        at = f.attrs
        at["model"] = os.path.basename(a.model)
        at["model_sha256"] = sha256_file(a.model)
        at["video_synth_args"] = a.synth_args
        at["video_frames_sha256"] = sha256_frames(frames)
        at["video_shape"] = np.asarray(frames.shape, np.int64)
        at["video_config"] = config
        at["frames"] = n
        at["score_threshold"] = float(thr)
        at["top_k"] = int(top_k)
        at["peak_kernel"] = int(pk)
        at["suppress_ratio"] = float(ratio)
        at["eps"] = float(a.eps)
        at["norm_mode"] = meta["norm_mode"]
        at["output_stride"] = s
        at["torch_version"] = str(torch.__version__)
        at["command"] = shlex.join(["train/make_golden_dets.py"] + sys.argv[1:])
    os.replace(tmp, a.out)
    print(f"wrote {a.out}: {len(cols['frame'])} detections in {n} frames, "
          f"{len(near['frame'])} near peaks ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
