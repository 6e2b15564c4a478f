#!/usr/bin/env python3
"""train/visibility.py, the detectability index d' and scoring on visible particles only:

- d' of a metal sphere on a flat support with no fringes equals the closed form
  C sqrt(dose x area), C = 4/e - 1 for a sphere as thick as one mean free path;
- d' grows with size, dose and contrast, falls with the support's grain contrast, and the
  fringe terms add in quadrature; lattice fringes finer than 2 px count for nothing;
- an oxide shell (hollow) shows less contrast than a solid particle of the same size and path;
- score_visible: a detection matched to an invisible particle is neither a true nor a false
  positive, missing one is no miss, and the visible ones are scored as detscore would.

usage: test_visibility.py NPTRACK_BIN SCRATCH_DIR (neither is used)
"""
import math
import os
import sys

import numpy as np

SRC = os.environ.get("NPT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "train"))
import detscore  # noqa: E402
import visibility as vis  # noqa: E402

FAILS = []


def check(ok, what):
    if not ok:
        FAILS.append(what)
        print("FAIL:", what)


def attrs(**kw):
    a = {"synth.pixel_size_nm": 0.5, "synth.dose_e_px": 100.0, "synth.support_grain_nm": 0.5,
         "synth.support_contrast": 0.0, "synth.fresnel_width_nm": 0.5, "synth.fresnel_amp": 0.0,
         "synth.blur_px": 0.5, "synth.metal_mfp_nm": 5.0, "synth.oxide_mfp_nm": 5.0,
         "synth.void_frac": 0.6, "synth.lattice_amp": 0.0, "synth.zone_axis_frac": 0.0}
    a.update({"synth." + k: v for k, v in kw.items()})
    return a


def d(box_px, cls=1, **kw):
    return float(vis.detectability(np.array([[0, 0, box_px, box_px]]), np.array([cls]),
                                   attrs(**kw))[0])


# closed form: 10 px at 0.5 nm/px = 5 nm thick = one mean free path
want = (4 / math.e - 1) * math.sqrt(100 * math.pi * 25)
check(abs(d(10) - want) < 1e-3 * want, f"closed form: d' {d(10):.4f}, want {want:.4f}")
check(d(5) < d(10) < d(20), "d' grows with size")
check(d(10, dose_e_px=20) < d(10), "d' grows with dose")
check(d(10, metal_mfp_nm=20) < d(10), "a longer mean free path (weaker contrast) lowers d'")
check(d(10, support_contrast=0.15) < d(10), "support grain lowers d'")
fr = d(10, fresnel_amp=0.1)
ring = 0.1 * math.sqrt(100 * 2 * math.pi * 5 * 1.0)
check(abs(fr - math.hypot(d(10), ring)) < 1e-6 * fr, "the Fresnel term adds in quadrature")
check(d(10, lattice_amp=0.1, zone_axis_frac=0.5) == d(10),
      "lattice fringes of 0.41 px (0.203 nm at 0.5 nm/px) are unresolved and count for nothing")
check(d(10, lattice_amp=0.1, zone_axis_frac=0.5, pixel_size_nm=0.05) >
      d(10, pixel_size_nm=0.05), "resolved lattice fringes (4 px) add to d'")
check(d(10, cls=2) < d(10, cls=1), "a hollow shell shows less contrast than a solid particle")

# score_visible: frame with three particles, the middle one invisible
g = np.array([[10, 10, 8, 8], [40, 10, 8, 8], [70, 10, 8, 8]], float)
key = ("v", 1)
dets = np.array([[10, 10, 8, 8], [40, 10, 8, 8], [100, 50, 8, 8]], float)  # hit, on-invisible, FP
r = vis.score_visible({key: dets}, {key: g}, {key: np.array([True, False, True])}, 128, 128,
                      [key])["all"]
check((r["tp"], r["fp"], r["fn"], r["n_ignored"]) == (1, 1, 1, 1),
      f"ignore semantics: tp/fp/fn/ignored {r['tp']}/{r['fp']}/{r['fn']}/{r['n_ignored']}, "
      "want 1/1/1/1")
r = vis.score_visible({key: dets}, {key: g}, {key: np.ones(3, bool)}, 128, 128, [key])["all"]
ref = detscore.score({1: dets}, {1: g})
check((r["tp"], r["fp"], r["fn"]) == (ref["tp"], ref["fp"], ref["fn"]),
      "all visible: the same counts as detscore.score")

if FAILS:
    sys.exit(f"{len(FAILS)} check(s) failed")
print("test_visibility: all checks passed")
