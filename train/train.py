"""Trains npt-s2 (train/model.py) on synthetic videos; resumable in segments.

    python3 train/train.py --data data/train --out ckpt --steps 24000 --time-budget 480
    python3 train/train.py --data data/train --out ckpt --resume ckpt   # next segment

Losses (as FairMOT): penalty-reduced focal loss on the class heatmaps (alpha 2, beta 4), L1 on
the sub-cell offset, relative L1 on the box size (|dw| / (w + 2) + |dh| / (h + 2): as strict for
a 5 px particle as for a 100 px one), identity classification (cross-entropy over every
particle identity of the training videos, on L2-normalised embeddings scaled by
sqrt(2) log(nID - 1)), combined by learned task-uncertainty weights.

A segment stops at --time-budget seconds or at --steps and writes its checkpoint (model.pt,
opt.pt: the Adam moments in bfloat16 so that both fit the device's 16 MiB return limit; the
identity classifier is per data set and is not kept).  The learning-rate schedule (linear
warm-up, cosine decay) follows the global step, so segments continue one run.  Losses go to
log.jsonl in --out.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as npt_model  # noqa: E402
from data import GpuData, load_videos  # noqa: E402


def focal_loss(pred, gt, ignore=None):
    """CenterNet's penalty-reduced focal loss; pred are probabilities.  ignore [b, 1, H, W]: 1
    where a negative is not penalised (the footprint of a particle nobody can see)."""
    pred = pred.float().clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    neg = 1 - pos
    if ignore is not None:
        neg = neg * (1 - ignore)
    pos_l = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_l = torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4 * neg
    n = pos.sum()
    return -(pos_l.sum() + neg_l.sum()) / n.clamp(min=1)


class Criterion(nn.Module):
    def __init__(self, n_ids, emb_dim):
        super().__init__()
        self.s_det = nn.Parameter(torch.tensor(-1.85))
        self.s_id = nn.Parameter(torch.tensor(-1.05))
        self.classifier = nn.Linear(emb_dim, max(n_ids, 2))
        self.emb_scale = math.sqrt(2) * math.log(max(n_ids - 1, 2))
        self.max_id_objects = 2048

    def forward(self, out, t):
        hm = focal_loss(out["heatmap"], t["hm"], t.get("ign"))
        mask = t["mask"] > 0
        n = mask.sum().clamp(min=1)
        size = out["size"].float().permute(0, 2, 3, 1)[mask]
        off = out["offset"].float().permute(0, 2, 3, 1)[mask]
        wh_t, reg_t = t["wh"][mask], t["reg"][mask]
        wh = ((size - wh_t).abs() / (wh_t + 2)).sum() / n
        reg = (off - reg_t).abs().sum() / n
        idm = mask & (t["ids"] >= 0)
        emb = out["embed"].float().permute(0, 2, 3, 1)[idm]
        ids = t["ids"][idm]
        if emb.shape[0] > self.max_id_objects:  # a random subset keeps the logits small
            keep = torch.randperm(emb.shape[0], device=emb.device)[:self.max_id_objects]
            emb, ids = emb[keep], ids[keep]
        if emb.shape[0]:
            logits = self.classifier(self.emb_scale * F.normalize(emb, dim=1))
            idl = F.cross_entropy(logits, ids)
        else:
            idl = emb.sum() * 0
        det = hm + wh + reg
        loss = 0.5 * (torch.exp(-self.s_det) * det + torch.exp(-self.s_id) * idl
                      + self.s_det + self.s_id)
        return loss, dict(hm=hm.item(), wh=wh.item(), off=reg.item(), id=idl.item(),
                          loss=loss.item())


def lr_at(step, total, base, warm=500, start=0):
    """Linear warm-up over `warm` steps, then one cosine down to 0 at `total`; with start > 0
    (a fine-tuning restart of a finished run) the warm-up and cosine begin at step `start`."""
    step, total = step - start, total - start
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def init_from_model(net, path):
    """Loads a shipped model file into `net` (same architecture): each convolution takes the
    file's folded weight and bias, each batch-norm becomes the identity (running mean 0,
    variance 1 - eps, scale 1, shift 0).  With frozen batch-norm the network then computes
    exactly the file's function.  Returns (the file's training step, (s_det, s_id)), the
    task-uncertainty weights from the loss log beside the file when there is one."""
    from export import read_model
    src = read_model(path)
    with torch.no_grad():
        for name, m in net.ops.items():
            if not hasattr(m, "conv"):
                continue
            sm = src.ops[name]
            if sm.conv.weight.shape != m.conv.weight.shape:
                raise ValueError(f"{path}: node {name}: weight {tuple(sm.conv.weight.shape)}, "
                                 f"the network has {tuple(m.conv.weight.shape)}")
            m.conv.weight.copy_(sm.conv.weight)
            m.conv.bias.copy_(sm.conv.bias)
            if m.bn is not None:
                m.bn.running_mean.zero_()
                m.bn.running_var.fill_(1.0 - m.bn.eps)
                m.bn.weight.fill_(1.0)
                m.bn.bias.zero_()
    step = int(src.meta["provenance"].get("steps", 0))
    s = (-1.85, -1.05)
    log = os.path.splitext(path)[0] + ".train-log.jsonl"
    if os.path.exists(log):
        with open(log) as f:
            last = json.loads(f.read().strip().splitlines()[-1])
        s = (last["s_det"], last["s_id"])
    return step, s


def save(path, net, crit, opt, step, args):
    os.makedirs(path, exist_ok=True)
    torch.save(dict(model=net.state_dict(), step=step, args=vars(args), arch=net.meta["arch"],
                    s_det=crit.s_det.item(), s_id=crit.s_id.item()),
               os.path.join(path, "model.pt.tmp"))
    os.replace(os.path.join(path, "model.pt.tmp"), os.path.join(path, "model.pt"))
    st = opt.state_dict()  # its per-parameter dicts are the optimiser's own: copy, then shrink
    st["state"] = {i: {k: (v.to(torch.bfloat16) if k in ("exp_avg", "exp_avg_sq") else v)
                       for k, v in s.items()} for i, s in st["state"].items()}
    torch.save(st, os.path.join(path, "opt.pt.tmp"))
    os.replace(os.path.join(path, "opt.pt.tmp"), os.path.join(path, "opt.pt"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", default=None, help="checkpoint folder to continue from")
    ap.add_argument("--steps", type=int, default=24000, help="total steps of the whole run")
    ap.add_argument("--time-budget", type=float, default=1e9, help="seconds for this segment")
    ap.add_argument("--stop-at", type=int, default=None,
                    help="end this segment at this global step (default: --steps)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--restart-at", type=int, default=0,
                    help="fine-tuning: a new warm-up and cosine (to --steps) from this step")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=2000, help="steps between checkpoints")
    ap.add_argument("--frame-step", type=int, default=2)
    ap.add_argument("--max-videos", type=int, default=None)
    ap.add_argument("--visible-k", type=float, default=0.0,
                    help="ignore particles under d' >= K (visibility.py; Rose: 5); 0: all count")
    ap.add_argument("--background-k", type=float, default=0.0,
                    help="with --visible-k: particles under d' >= this count as background")
    ap.add_argument("--init-model", default=None,
                    help="start from a shipped model file (models/nptrack.h5) instead of a "
                         "checkpoint: its folded convolutions, batch-norm as identity; use "
                         "with --freeze-bn")
    ap.add_argument("--freeze-bn", action="store_true",
                    help="batch-norm layers use their running statistics (eval mode) and only "
                         "their affine part trains: a fine-tuning that starts from the exact "
                         "function of the starting model")
    ap.add_argument("--border-p", type=float, default=0.0,
                    help="share of crops placed so that a random particle lies across the "
                         "crop border (particles cut by the image border)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    t0 = time.time()
    dev = torch.device(a.device)
    frames, objs, n_ids = load_videos(a.data, a.frame_step, a.max_videos,
                                      visible_k=a.visible_k, background_k=a.background_k)
    data = GpuData(frames, objs, n_ids, dev, crop=a.crop, border_p=a.border_p)
    print(f"train: {frames.shape[0]} frames, {n_ids} identities, loaded in "
          f"{time.time() - t0:.0f} s", flush=True)
    net = npt_model.build().to(dev)
    step = 0
    if a.resume and os.path.exists(os.path.join(a.resume, "model.pt")):
        ck = torch.load(os.path.join(a.resume, "model.pt"), map_location=dev)
        net.load_state_dict(ck["model"])
        step = ck["step"]
    elif a.init_model:
        step, init_s = init_from_model(net, a.init_model)
        ck = dict(s_det=init_s[0], s_id=init_s[1])
    crit = Criterion(n_ids, net.meta["embed_dim"]).to(dev)
    if step:  # the task-uncertainty weights are trained too: carry them over
        s_det, s_id = ck.get("s_det"), ck.get("s_id")
        if s_det is None:  # checkpoints before they were saved: the log's last record has them
            with open(os.path.join(a.resume, "log.jsonl")) as f:
                last = json.loads(f.read().strip().splitlines()[-1])
            s_det, s_id = last["s_det"], last["s_id"]
        with torch.no_grad():
            crit.s_det.fill_(s_det)
            crit.s_id.fill_(s_id)
    os.makedirs(a.out, exist_ok=True)
    if a.resume and os.path.abspath(a.resume) != os.path.abspath(a.out) and \
            os.path.exists(os.path.join(a.resume, "log.jsonl")) and \
            not os.path.exists(os.path.join(a.out, "log.jsonl")):
        shutil.copyfile(os.path.join(a.resume, "log.jsonl"), os.path.join(a.out, "log.jsonl"))
    opt = torch.optim.AdamW(list(net.parameters()) + [crit.s_det, crit.s_id], lr=a.lr,
                            weight_decay=1e-4)
    if a.resume and os.path.exists(os.path.join(a.resume, "opt.pt")):
        st = torch.load(os.path.join(a.resume, "opt.pt"), map_location=dev)
        for s in st["state"].values():
            for k in ("exp_avg", "exp_avg_sq"):
                if k in s:
                    s[k] = s[k].float()
        opt.load_state_dict(st)
    cls_opt = torch.optim.AdamW(crit.classifier.parameters(), lr=a.lr, weight_decay=0)
    net = net.to(memory_format=torch.channels_last)
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed * 1000003 + step)
    log = open(os.path.join(a.out, "log.jsonl"), "a") if os.makedirs(a.out, exist_ok=True) is \
        None else None
    net.train()
    if a.freeze_bn:
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.eval()
    acc, n_acc, start_step = {}, 0, step
    stop = min(a.steps, a.stop_at or a.steps)
    while step < stop and time.time() - t0 < a.time_budget:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, start=a.restart_at)
        for g in cls_opt.param_groups:
            g["lr"] = a.lr if step - start_step >= 200 else a.lr * 5
        img, t = data.batch(a.batch, gen)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = net(img.contiguous(memory_format=torch.channels_last))
        loss, parts = crit(out, t)
        opt.zero_grad(set_to_none=True)
        cls_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        cls_opt.step()
        step += 1
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        if step % 200 == 0 or step == a.steps:
            rec = {k: round(v / n_acc, 5) for k, v in acc.items()}
            rec.update(step=step, lr=round(lr_at(step, a.steps, a.lr, start=a.restart_at), 7),
                       s_det=round(crit.s_det.item(), 3), s_id=round(crit.s_id.item(), 3),
                       objects=t["n"], elapsed=round(time.time() - t0, 1))
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            acc, n_acc = {}, 0
        if step % a.ckpt_every == 0:
            save(a.out, net, crit, opt, step, a)
    save(a.out, net, crit, opt, step, a)
    print(f"train: stopped at step {step} of {a.steps} after {time.time() - t0:.0f} s; "
          f"checkpoint in {a.out}", flush=True)


if __name__ == "__main__":
    main()
