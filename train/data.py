"""Training data on the GPU: synthetic videos from `nptrack synth` held in device memory, and
batches of augmented crops with their CenterNet/FairMOT targets made there too (no loader
processes: crops, augmentation and target drawing are a few batched tensor ops).

A video directory holds video.h5 (/frames, uint8 or uint16 [T, H, W]) and gt.txt
(`frame,id,x,y,w,h,1,class,visibility`, nptrack's box convention: the centre of pixel (0, 0) is
(0, 0), so a box's centre is (x + w/2, y + h/2)).
"""

import glob
import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor

import h5py
import numpy as np
import torch
import torch.nn.functional as F

import visibility


def _load_one(d, frame_step, visible_k=0.0, background_k=0.0):
    """One video: frames [T', H, W] float16 in [0, 1], its gt rows of the kept frames, the
    kept-frame index of each row, and per row its `valid` code (load_videos) from its
    detectability d' (visibility.py)."""
    with h5py.File(os.path.join(d, "video.h5"), "r") as f:
        v = f["/frames"][::frame_step]
        attrs = {k: float(x) for k, x in f.attrs.items() if k.startswith("synth.")}
    full = 255.0 if v.dtype == np.uint8 else 65535.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a video whose particles all left has no rows
        gt = np.loadtxt(os.path.join(d, "gt.txt"), delimiter=",", ndmin=2).reshape(-1, 9)
    k = gt[:, 0].astype(np.int64) - 1
    gt = gt[(k % frame_step == 0) & (k // frame_step < v.shape[0])]
    k = (gt[:, 0].astype(np.int64) - 1) // frame_step
    seen = np.ones(len(gt), np.float32)
    if visible_k > 0 and len(gt):
        dp = visibility.detectability(gt[:, 2:6], gt[:, 7], attrs)
        seen[dp < visible_k] = -1
        seen[dp < background_k] = -2
    return (v.astype(np.float32) / full).astype(np.float16), gt, k, seen


def load_videos(root, frame_step=2, max_videos=None, max_ids_per_video=400, workers=None,
                visible_k=0.0, background_k=0.0):
    """Frames scaled to [0, 1] by their full scale (float16), and per frame an [M, 7] float32
    table (cx, cy, w, h, class 0/1, global id, valid), M the most objects of any frame.  valid
    is 1 for a particle, 0 for padding; with visible_k > 0, a particle under the visibility
    criterion d' >= visible_k gets -1: no target, and its heatmap footprint is ignored by the
    loss (neither a positive nor a negative); under background_k (< visible_k) it gets -2 and
    counts as background, so the network learns not to put peaks where nothing can be seen
    instead of guessing.
    Identities are numbered across videos; videos with more than max_ids_per_video identities
    (dense monolayers) get id -1, which the identity loss skips: their thousands of look-alike
    particles would swamp the classifier and teach little about re-identification."""
    dirs = sorted(d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d))
    if max_videos:
        dirs = dirs[:max_videos]
    frames, objs, next_id = [], [], 0
    with ProcessPoolExecutor(workers or min(16, os.cpu_count())) as ex:
        for v, gt, k, seen in ex.map(_load_one, dirs, [frame_step] * len(dirs),
                                     [visible_k] * len(dirs), [background_k] * len(dirs),
                                     chunksize=4):
            uniq, inv = np.unique(gt[:, 1], return_inverse=True)
            if len(uniq) <= max_ids_per_video:
                gid = (next_id + inv).astype(np.float32)
                next_id += len(uniq)
            else:
                gid = np.full(len(gt), -1, np.float32)
            tab = np.stack([gt[:, 2] + gt[:, 4] / 2, gt[:, 3] + gt[:, 5] / 2, gt[:, 4], gt[:, 5],
                            gt[:, 7] - 1, gid, seen], 1).astype(np.float32)
            for t in range(v.shape[0]):
                objs.append(tab[k == t])
                frames.append(v[t])
    m = max(1, max(len(o) for o in objs))
    table = np.zeros((len(objs), m, 7), np.float32)
    for t, o in enumerate(objs):
        table[t, :len(o)] = o
    return np.stack(frames), table, next_id


class GpuData:
    """Holds frames and object tables on `device` and makes augmented batches."""

    def __init__(self, frames, objs, n_ids, device, crop=256, stride=2, n_classes=2,
                 max_zoomed_size=96.0, border_p=0.0):
        self.frames = torch.from_numpy(frames).to(device)  # [F, H, W] fp16
        self.objs = torch.from_numpy(objs).to(device)  # [F, M, 7]
        self.n_ids = n_ids
        self.dev = device
        self.crop = crop
        self.s = stride
        self.nc = n_classes
        valid = self.objs[..., 6] > 0
        side = torch.where(valid, torch.maximum(self.objs[..., 2], self.objs[..., 3]),
                           torch.full_like(self.objs[..., 2], float("nan")))
        med = torch.nanmedian(side, dim=1).values
        self.median_size = torch.nan_to_num(med, nan=1.0).clamp(min=1.0)  # [F] px
        self.max_zoomed_size = max_zoomed_size
        self.border_p = border_p

    def batch(self, b, gen):
        """b crops: (image [b,1,S,S] standardised, targets dict)."""
        dev, S = self.dev, self.crop
        nf, H, W = self.frames.shape
        idx = torch.randint(0, nf, (b,), generator=gen, device=dev)
        # geometry: zoom (log-uniform 0.5..2, capped so the crop stays in the frame),
        # a rotation by a multiple of 90 degrees, a flip, a translation
        r = lambda *shape: torch.rand(*shape, generator=gen, device=dev)
        # zoom: log-uniform in [zmin, zmax], zmax = 2 but capped so that the frame's median
        # particle stays <= max_zoomed_size px: a 256 crop cuts most particles zoomed past
        # ~100 px, and the network must see large particles whole too
        zmin = max(0.5, S / min(H, W))
        zmax = (self.max_zoomed_size / self.median_size[idx]).clamp(min=zmin, max=2.0)
        z = torch.exp(math.log(zmin) + r(b) * torch.log(zmax / zmin))
        rot = torch.randint(0, 4, (b,), generator=gen, device=dev)
        flip = r(b) < 0.5
        half = (S / z) / 2  # half side of the crop in input pixels
        cx = half - 0.5 + r(b) * (W - 2 * half)
        cy = half - 0.5 + r(b) * (H - 2 * half)
        if self.border_p > 0:
            cx, cy = self._across_border(idx, cx, cy, half, r, gen)
        # output pixel (u, v) -> input pixel p = c + M (u - (S-1)/2, v - (S-1)/2) / z
        cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=dev)[rot]
        sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=dev)[rot]
        fx = torch.where(flip, -1.0, 1.0)
        m = torch.stack([torch.stack([cos * fx, -sin], -1), torch.stack([sin * fx, cos], -1)],
                        -2) / z[:, None, None]  # [b, 2, 2]
        u = torch.arange(S, device=dev, dtype=torch.float32) - (S - 1) / 2
        uu, vv = torch.meshgrid(u, u, indexing="xy")
        q = torch.stack([uu, vv], -1).reshape(1, -1, 2)  # [1, S*S, 2] (u, v)
        p = torch.einsum("bij,bnj->bni", m, q.expand(b, -1, -1)) + torch.stack([cx, cy], -1)[
            :, None]
        grid = torch.stack([(2 * p[..., 0] + 1) / W - 1, (2 * p[..., 1] + 1) / H - 1], -1)
        src = self.frames[idx].float()[:, None]
        img = F.grid_sample(src, grid.view(b, S, S, 2), mode="bilinear",
                            padding_mode="border", align_corners=False)
        img = augment_intensity(img, gen)
        # objects: input centre -> output centre by the inverse map
        o = self.objs[idx]  # [b, M, 7]
        minv = torch.linalg.inv(m)
        d = o[..., :2] - torch.stack([cx, cy], -1)[:, None]
        c_out = torch.einsum("bij,bnj->bni", minv, d) + (S - 1) / 2
        swap = (rot % 2 == 1)[:, None]
        w = torch.where(swap, o[..., 3], o[..., 2]) * z[:, None]
        h = torch.where(swap, o[..., 2], o[..., 3]) * z[:, None]
        obj = torch.cat([c_out, w[..., None], h[..., None], o[..., 4:]], -1)
        return img, self.targets(obj)

    def _across_border(self, idx, cx, cy, half, r, gen):
        """For a share border_p of the crops, moves the crop so that one random visible
        particle of its frame lies across a crop edge: its centre from -0.45 to +0.45 of its
        size inside the edge (a random one of the four), the other coordinate anywhere in the
        crop.  Real images cut particles at their border, to any depth; a uniformly placed
        crop cuts few of them, and small ones rarely.  The crop stays inside the frame."""
        b = idx.shape[0]
        nf, H, W = self.frames.shape
        o = self.objs[idx]  # [b, M, 7]
        ok = o[..., 6] > 0
        has = ok.any(1) & (r(b) < self.border_p)
        pick = torch.multinomial(ok.float() + 1e-9, 1, generator=gen)[:, 0]
        ob = o[torch.arange(b, device=o.device), pick]  # [b, 7]
        size = torch.maximum(ob[:, 2], ob[:, 3])
        delta = (r(b) - 0.5) * 0.9 * size
        side = torch.randint(0, 4, (b,), generator=gen, device=o.device)
        sign = torch.where(side % 2 == 0, 1.0, -1.0)  # left/top edge or right/bottom edge
        edge = ob[:, 0:2] + sign[:, None] * (half - delta)[:, None]  # crop centre on that axis
        other = ob[:, 0:2] + ((r(b) - 0.5) * 1.6 * half)[:, None]
        horiz = side < 2
        nx = torch.where(horiz, edge[:, 0], other[:, 0]).clamp(half - 0.5, W - half - 0.5)
        ny = torch.where(horiz, other[:, 1], edge[:, 1]).clamp(half - 0.5, H - half - 0.5)
        return torch.where(has, nx, cx), torch.where(has, ny, cy)

    def targets(self, obj):
        """Heatmap (Gaussian per object at its nearest output cell), and at each centre cell:
        size (w, h) px, offset (cells), identity.  Objects cut by the crop border keep their
        whole box; one whose centre lies outside the crop is put at the nearest border cell
        with its offset pointing outside.  An object counts when at least a third of its box is
        in view, or, cut by the border, at least 16 px^2 of it with both visible sides >= 2 px:
        real labels keep such slivers, and a particle entering the field should be found as it
        enters (the decoder clips nothing; evaluation clips boxes to the frame)."""
        b, M, _ = obj.shape
        S, s, dev = self.crop, self.s, self.dev
        G = S // s
        cx, cy, w, h = obj[..., 0], obj[..., 1], obj[..., 2], obj[..., 3]
        x0, x1 = (cx - w / 2).clamp(-0.5, S - 0.5), (cx + w / 2).clamp(-0.5, S - 0.5)
        y0, y1 = (cy - h / 2).clamp(-0.5, S - 0.5), (cy + h / 2).clamp(-0.5, S - 0.5)
        vis_area = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
        enough = (vis_area >= (w * h) / 3) | (vis_area >= 16.0)
        valid = (obj[..., 6] > 0) & enough & ((x1 - x0) >= 2) & ((y1 - y0) >= 2) & (
            w >= 1.5) & (h >= 1.5)
        gx = (cx - (s - 1) / 2) / s
        gy = (cy - (s - 1) / 2) / s
        j = gx.round().clamp(0, G - 1)
        i = gy.round().clamp(0, G - 1)
        size_cells = torch.sqrt(w * h) / s
        sigma = (0.07 * size_cells + 0.15).clamp(min=0.35)
        rad = torch.ceil(3 * sigma).clamp(max=24)
        hm = torch.zeros(b, self.nc, G, G, device=dev)
        # barely visible particles (valid -1) in view: their footprint, over all classes, is
        # ignored; invisible ones (-2) are simply background
        hidden = (obj[..., 6] < -0.5) & (obj[..., 6] > -1.5) & (vis_area > 0)
        ign = torch.zeros(b, 1, G, G, device=dev)
        hb, ho = torch.nonzero(hidden, as_tuple=True)
        if hb.numel():
            cells, _, keep = _footprint(i[hb, ho], j[hb, ho], rad[hb, ho], None, G)
            ign.view(-1).scatter_(0, (hb[:, None] * G * G + cells)[keep], 1.0)
        bi, oi = torch.nonzero(valid, as_tuple=True)
        if bi.numel():
            cells, val, keep = _footprint(i[bi, oi], j[bi, oi], rad[bi, oi], sigma[bi, oi], G)
            cls = obj[bi, oi, 4].long()[:, None]
            flat = (bi[:, None] * self.nc + cls) * G * G + cells
            hm.view(-1).scatter_reduce_(0, flat[keep], val[keep], reduce="amax")
        # regression targets at centre cells
        cell = (bi * G + i[bi, oi].long()) * G + j[bi, oi].long()
        wh = torch.zeros(b * G * G, 2, device=dev)
        reg = torch.zeros(b * G * G, 2, device=dev)
        ids = torch.full((b * G * G,), -1, dtype=torch.long, device=dev)
        mask = torch.zeros(b * G * G, device=dev)
        wh[cell] = torch.stack([w[bi, oi], h[bi, oi]], -1)
        reg[cell] = torch.stack([gx[bi, oi] - j[bi, oi], gy[bi, oi] - i[bi, oi]], -1)
        ids[cell] = obj[bi, oi, 5].long()
        mask[cell] = 1.0
        return dict(hm=hm, ign=ign, wh=wh.view(b, G, G, 2), reg=reg.view(b, G, G, 2),
                    ids=ids.view(b, G, G), mask=mask.view(b, G, G), n=int(bi.numel()))


def _footprint(i, j, rad, sigma, G):
    """The output cells around n centre cells (i, j) within a square of half side rad (clipped
    to the G x G grid): their flat index i' G + j' [n, K], the Gaussian of std sigma there (None
    without sigma) and which are in the window and on the grid [n, K]."""
    R = int(rad.max().item())
    off = torch.arange(-R, R + 1, device=i.device, dtype=torch.float32)
    dy, dx = torch.meshgrid(off, off, indexing="ij")
    dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)
    ii, jj = i[:, None] + dy, j[:, None] + dx
    keep = (dx.abs() <= rad[:, None]) & (dy.abs() <= rad[:, None]) & (ii >= 0) & (ii < G) & (
        jj >= 0) & (jj < G)
    cells = ii.long().clamp(0, G - 1) * G + jj.long().clamp(0, G - 1)
    val = None
    if sigma is not None:
        sg = sigma[:, None]
        val = torch.exp(-(dx * dx + dy * dy) / (2 * sg * sg))
    return cells, val, keep


def _blur(img, sigma):
    """Separable Gaussian blur of [b,1,H,W] with one sigma per sample (px)."""
    R = int(math.ceil(3 * float(sigma.max()))) if sigma.numel() else 0
    if R < 1:
        return img
    x = torch.arange(-R, R + 1, device=img.device, dtype=img.dtype)
    k = torch.exp(-x[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = k / k.sum(1, keepdim=True)  # [b, K]
    b = img.shape[0]
    y = F.conv2d(F.pad(img.transpose(0, 1), (R, R, 0, 0), mode="replicate"),
                 k[:, None, None, :], groups=b)
    y = F.conv2d(F.pad(y, (0, 0, R, R), mode="replicate"), k[:, None, :, None], groups=b)
    return y.transpose(0, 1)


def _noise_field(b, S, scale, gen, dev):
    """Zero-mean unit-variance noise correlated over about `scale` pixels."""
    n = max(2, int(S / scale))
    z = torch.randn(b, 1, n, n, generator=gen, device=dev)
    f = F.interpolate(z, size=(S, S), mode="bicubic", align_corners=False)
    return (f - f.mean((2, 3), keepdim=True)) / (f.std((2, 3), keepdim=True) + 1e-6)


def augment_intensity(img, gen):
    """Photometric randomisation on top of the simulator's: gamma, extra blur, support grain
    of random coarseness, slow background, a brightness ramp, extra noise, polarity; then the
    engine's per-frame standardisation ((x - mean) / std)."""
    b, _, S, _ = img.shape
    dev = img.device
    r = lambda *shape: torch.rand(*shape, generator=gen, device=dev)
    on = lambda p: (r(b) < p).float()[:, None, None, None]
    img = img.clamp(min=0)
    g = torch.exp((r(b) - 0.5) * 1.0)[:, None, None, None]  # gamma 0.61..1.65
    img = torch.where(on(0.5) > 0, img.clamp(min=1e-6) ** g, img)
    std = img.std((2, 3), keepdim=True) + 1e-6
    sig = torch.where(r(b) < 0.3, 0.4 + r(b) * 1.6, torch.zeros(b, device=dev))
    img = _blur(img, sig)
    grain = 1.5 + r(1).item() * 6.0
    img = img + on(0.5) * (r(b) * 0.5)[:, None, None, None] * std * _noise_field(
        b, S, grain, gen, dev)
    img = img + on(0.4) * (r(b) * 1.0)[:, None, None, None] * std * _noise_field(
        b, S, 24.0 + r(1).item() * 64.0, gen, dev)
    ramp = torch.linspace(-1, 1, S, device=dev)
    ang = r(b) * 2 * math.pi
    plane = torch.cos(ang)[:, None, None, None] * ramp[None, None, None, :] + torch.sin(ang)[
        :, None, None, None] * ramp[None, None, :, None]
    img = img + on(0.3) * (r(b) * 1.5)[:, None, None, None] * std * plane
    img = img + on(0.4) * (r(b) * 0.8)[:, None, None, None] * std * torch.randn(
        img.shape, generator=gen, device=dev)
    img = torch.where(on(0.1) > 0, -img, img)
    m = img.mean((2, 3), keepdim=True)
    sd = img.std((2, 3), unbiased=False, keepdim=True).clamp(min=1e-6)
    return (img - m) / sd
