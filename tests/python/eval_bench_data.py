"""Large gt/pred files for timing `nptrack eval` (docs/eval.md, Performance).

Usage: python3 eval_bench_data.py OUT_DIR [FRAMES [PARTICLES [LIFETIME]]]

PARTICLES slots each hold a random-walking 20-px box; a slot's particle is replaced by a new
gt id with probability 1/LIFETIME per frame, and the tracker changes id twice as often, misses
5 % of the boxes and jitters them by 2 px.  Defaults: 2000 frames x 500 particles (1e6 gt
boxes, about 3000 gt ids and 8000 tracker ids).  Needs numpy only.
"""

import os
import sys

import numpy as np


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    n_frames = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    n_part = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    life = float(sys.argv[4]) if len(sys.argv) > 4 else 400.0
    rng = np.random.default_rng(1)
    os.makedirs(out, exist_ok=True)
    x, y = rng.uniform(0, 4000, n_part), rng.uniform(0, 4000, n_part)
    gid, pid = np.arange(n_part), np.arange(n_part) + 10**6
    next_g, next_p = n_part, 10**6 + n_part
    with open(os.path.join(out, "gt.txt"), "w") as fg, \
            open(os.path.join(out, "pred.txt"), "w") as fp:
        for f in range(1, n_frames + 1):
            new = rng.random(n_part) < 1.0 / life
            gid[new] = np.arange(next_g, next_g + new.sum())
            next_g += new.sum()
            switch = (rng.random(n_part) < 2.0 / life) | new
            pid[switch] = np.arange(next_p, next_p + switch.sum())
            next_p += switch.sum()
            x += rng.normal(0, 1, n_part)
            y += rng.normal(0, 1, n_part)
            keep = rng.random(n_part) > 0.05
            jx, jy = rng.normal(0, 2, n_part), rng.normal(0, 2, n_part)
            fg.write("".join("%d,%d,%.3f,%.3f,20,20,1,1,1\n" % (f, g, a, b)
                             for g, a, b in zip(gid, x, y)))
            fp.write("".join("%d,%d,%.3f,%.3f,20,20,1,1,1\n" % (f, p, a, b)
                             for p, a, b, k in zip(pid, x + jx, y + jy, keep) if k))
    print("%d gt ids, %d tracker ids" % (next_g, next_p - 10**6))


if __name__ == "__main__":
    main()
