"""Makes the synthetic training or validation videos with `nptrack synth`, in parallel.

    python3 train/gen_data.py --nptrack build/nptrack --out data/train --videos 800 --seed 1
    python3 train/gen_data.py --nptrack build/nptrack --out data/val --videos 96 --seed 900001 \
        --frames 8 --val

Every video starts from config/synth/train.cfg (wide domain randomisation: magnification,
sizes, crowding, motion, physics, dose, contrast and polarity, fringes, blur, gradients) and
belongs to one of five families, which shift the draws towards the cases that matter most:

    general  train.cfg as it is
    large    particles 15-160 px across, crowded and touching (sintering-like fields)
    dense    monolayers of 4-9 px particles that almost touch
    faint    large particles of weak contrast (long mean free path) on a grainy support, as
             bright-field images of thin or light particles look
    lowdose  3-30 e/px, any size

and a bit depth (8 or 16).  A video's family, bit depth and seed follow from its index and
--seed alone, so a data set is reproduced exactly by the same command.  Validation sets use
seeds far from the training ones (--seed 900001) and, with --val, a dose fixed per video in
one of three bins, so scores can be reported per dose.
"""

import argparse
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

FAMILIES = {
    "general": [],
    "large": ["synth.pixel_size_nm=[0.04, 0.2]", "synth.diameter_nm=[3.0, 8.0]",
              "synth.coverage=[0.1, 0.5]", "synth.min_gap_nm=[0.0, 1.0]",
              "synth.sinter_rate_hz=[0.0, 0.05]"],
    "dense": ["synth.pixel_size_nm=[0.3, 0.5]", "synth.diameter_nm=[1.8, 3.6]",
              "synth.size_spread=[0.05, 0.2]", "synth.coverage=[0.3, 0.55]",
              "synth.min_gap_nm=[0.0, 0.6]", "synth.aspect_max=[1.0, 1.25]"],
    "faint": ["synth.pixel_size_nm=[0.04, 0.15]", "synth.diameter_nm=[3.0, 8.0]",
              "synth.coverage=[0.1, 0.45]", "synth.metal_mfp_nm=[6.0, 30.0]",
              "synth.oxide_mfp_nm=[15.0, 60.0]", "synth.support_contrast=[0.03, 0.15]",
              "synth.dose_e_px=[30.0, 400.0]", "synth.fresnel_amp=[0.03, 0.3]"],
    "lowdose": ["synth.dose_e_px=[3.0, 30.0]"],
}
WEIGHTS = {"general": 0.25, "large": 0.2, "faint": 0.25, "dense": 0.15, "lowdose": 0.15}
VAL_DOSES = {"low": 20.0, "mid": 100.0, "high": 600.0}


def plan(n, seed, val):
    """[(name, seed, [settings])] for n videos; deterministic in (n, seed, val)."""
    rng = random.Random(seed)
    fams = list(WEIGHTS)
    out = []
    for i in range(n):
        fam = fams[i % len(fams)] if val else rng.choices(fams, [WEIGHTS[f] for f in fams])[0]
        bits = 16 if rng.random() < 0.5 else 8
        s = seed + i
        sets = [f"synth.seed={s}", f"synth.bit_depth={bits}"] + FAMILIES[fam]
        dose = None
        if val:
            dose = list(VAL_DOSES)[(i // len(fams)) % len(VAL_DOSES)]
            sets.append(f"synth.dose_e_px={VAL_DOSES[dose]}")
        out.append(dict(name=f"{i:05d}", seed=s, family=fam, bits=bits, dose=dose,
                        settings=sets))
    return out


def run_one(nptrack, cfg, out, frames, size, job):
    d = os.path.join(out, job["name"])
    if os.path.exists(os.path.join(d, "video.h5")):
        return None
    cmd = [nptrack, "synth", "-c", cfg, "-o", d, "-s", f"synth.frames={frames}",
           "-s", f"synth.width={size}", "-s", f"synth.height={size}"]
    for s in job["settings"]:
        cmd += ["-s", s]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return f"{' '.join(cmd)}\n{r.stderr.strip()}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nptrack", required=True)
    ap.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "config",
                                                      "synth", "train.cfg"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--videos", type=int, default=800)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val", action="store_true")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    jobs = plan(a.videos, a.seed, a.val)
    with ThreadPoolExecutor(a.jobs) as ex:
        errs = [e for e in ex.map(lambda j: run_one(a.nptrack, a.config, a.out, a.frames, a.size,
                                                    j), jobs) if e]
    for e in errs:
        print(f"gen_data: error: {e}", file=sys.stderr)
    with open(os.path.join(a.out, "plan.json"), "w") as f:
        json.dump(dict(args=vars(a), videos=jobs), f, indent=1)
    print(f"gen_data: {len(jobs) - len(errs)} of {len(jobs)} videos in {a.out}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
