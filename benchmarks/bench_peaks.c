/* How many touching small particles does the peak test lose?  (docs/decode.md)
 *
 * Pairs of particles of 5-8 px diameter, 0 or 1 px apart (centres 5-9 px apart, i.e. 1.25-2.25
 * cells at stride 4), at a random orientation and sub-pixel position, are turned into the head
 * outputs an ideal network would give, then decoded:
 *
 *   heatmap  "target": CenterNet/FairMOT training targets, a Gaussian of sigma cells around the
 *            integer cell nearest each centre (value 1 there), pairs combined by max - what a
 *            perfectly trained network outputs;
 *            "smooth": a Gaussian of sigma cells around the true (sub-cell) centre, peak < 1 -
 *            a network whose heatmap follows the sub-pixel position;
 *   offset, size: perfect at every cell for the particle nearest to the cell (an optimistic
 *            assumption away from the centre cells, where training does not constrain them).
 *
 * A particle is found when some detection's decoded centre lies within a quarter of its
 * diameter of its true centre.  Peak tests: the product's max-pool test (npt_decode_frame) with
 * kernel 3 or 5 at stride 4 or 2, also followed by the product's centre-distance suppression
 * (suppress_ratio 0.5: docs/decode.md, rule 3), and a sub-cell test, here only: a cell is
 * suppressed by a higher window neighbour only when their decoded centres are closer than half
 * the smaller box (with perfect offsets everywhere, and with offsets known at the centre cells
 * only).
 *
 * usage: bench_peaks [TRIALS]   (default 20000 pairs per row; seeds fixed, output reproducible) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/rng.h"
#include "nn/decode.h"

enum { GRID = 24 }; /* output cells per side; the pair sits in the middle */

typedef struct particle {
  double x, y, d; /* centre (px, nptrack's convention), diameter (px) */
} particle;

typedef struct scene {
  int s; /* stride */
  float heat[GRID * GRID], size[2 * GRID * GRID], offset[2 * GRID * GRID];
} scene;

static double cell_centre(int s, int j) {
  return s * j + 0.5 * (s - 1);
}

/* offsets_everywhere 0: the offset head is right at the particles' centre cells only and 0
 * elsewhere (training constrains it there only). */
static void render(scene *sc, const particle *p, int n, int smooth, double sigma,
                   int offsets_everywhere) {
  const int s = sc->s;
  memset(sc->heat, 0, sizeof sc->heat);
  for (int i = 0; i < GRID; i++)
    for (int j = 0; j < GRID; j++) {
      int at = i * GRID + j, near = 0;
      double best = INFINITY;
      for (int k = 0; k < n; k++) {
        /* Distance in cells to the centre (smooth) or to the centre's nearest cell (target). */
        double u = (p[k].x - 0.5 * (s - 1)) / s, v = (p[k].y - 0.5 * (s - 1)) / s;
        if (!smooth)
          u = round(u), v = round(v);
        double r2 = (u - j) * (u - j) + (v - i) * (v - i);
        float h = (float)exp(-r2 / (2 * sigma * sigma));
        if (h > sc->heat[at])
          sc->heat[at] = h;
        double dx = p[k].x - cell_centre(s, j), dy = p[k].y - cell_centre(s, i);
        if (dx * dx + dy * dy < best)
          best = dx * dx + dy * dy, near = k;
      }
      int centre_cell = 0;
      for (int k = 0; k < n; k++)
        centre_cell |= lround((p[k].x - 0.5 * (s - 1)) / s) == j &&
                       lround((p[k].y - 0.5 * (s - 1)) / s) == i && k == near;
      int known = offsets_everywhere || centre_cell;
      sc->offset[at] = known ? (float)((p[near].x - cell_centre(s, j)) / s) : 0.0f;
      sc->offset[GRID * GRID + at] = known ? (float)((p[near].y - cell_centre(s, i)) / s) : 0.0f;
      sc->size[at] = sc->size[GRID * GRID + at] = (float)p[near].d;
    }
}

/* The sub-cell test: a candidate is dropped only for a higher (or equal, lower-index) window
 * neighbour that decodes to nearly the same centre. */
static int decode_subcell(const scene *sc, float thr, npt_detection *out, int max) {
  const int s = sc->s;
  int n = 0;
  for (int i = 0; i < GRID; i++)
    for (int j = 0; j < GRID; j++) {
      int c = i * GRID + j;
      float v = sc->heat[c];
      if (!(v >= thr))
        continue;
      double cx = s * (j + sc->offset[c]) + 0.5 * (s - 1);
      double cy = s * (i + sc->offset[GRID * GRID + c]) + 0.5 * (s - 1);
      int keep = 1;
      for (int y = i - 1; y <= i + 1 && keep; y++)
        for (int x = j - 1; x <= j + 1 && keep; x++) {
          int m = y * GRID + x;
          if (y < 0 || x < 0 || y >= GRID || x >= GRID || m == c)
            continue;
          if (!(sc->heat[m] > v || (sc->heat[m] == v && m < c)))
            continue;
          double mx = s * (x + sc->offset[m]) + 0.5 * (s - 1);
          double my = s * (y + sc->offset[GRID * GRID + m]) + 0.5 * (s - 1);
          double lim = 0.5 * fmin(sc->size[c], sc->size[m]);
          if ((mx - cx) * (mx - cx) + (my - cy) * (my - cy) < lim * lim)
            keep = 0;
        }
      if (keep && n < max)
        out[n++] = (npt_detection){0, (float)cx, (float)cy, 0, 0, v, 1};
    }
  return n;
}

typedef struct tally {
  long particles, lost, dets, extra;
} tally;

static void score(const particle *p, int n, const npt_detection *d, int nd, int centred, tally *t) {
  int used = 0;
  for (int k = 0; k < n; k++) {
    int found = 0;
    for (int m = 0; m < nd && !found; m++) {
      double cx = centred ? d[m].x : d[m].x + 0.5 * d[m].w;
      double cy = centred ? d[m].y : d[m].y + 0.5 * d[m].h;
      double r = 0.25 * p[k].d;
      found = (cx - p[k].x) * (cx - p[k].x) + (cy - p[k].y) * (cy - p[k].y) <= r * r;
    }
    t->lost += !found;
    used += found;
  }
  t->particles += n;
  t->dets += nd;
  t->extra += nd > used ? nd - used : 0;
}

typedef struct method {
  const char *name;
  int stride, kernel; /* kernel 0: the sub-cell test; -1: the same, offsets at centres only */
  double suppress_ratio;
} method;

int main(int argc, char **argv) {
  long trials = argc > 1 ? atol(argv[1]) : 20000;
  static const method methods[] = {
      {"3x3 max-pool, stride 4", 4, 3, 0},
      {"5x5 max-pool, stride 4", 4, 5, 0},
      {"3x3 max-pool + suppression 0.5, stride 4", 4, 3, 0.5},
      {"sub-cell test, stride 4", 4, 0, 0},
      {"sub-cell test, stride 4, offsets at centres only", 4, -1, 0},
      {"3x3 max-pool, stride 2", 2, 3, 0},
      {"5x5 max-pool, stride 2", 2, 5, 0},
      {"3x3 max-pool + suppression 0.5, stride 2", 2, 3, 0.5},
  };
  static const struct {
    const char *name;
    int smooth;
    double sigma; /* cells */
  } models[] = {{"target, sigma 1/6 cell", 0, 1.0 / 6},
                {"target, sigma 0.5 cell", 0, 0.5},
                {"smooth, sigma 0.5 cell", 1, 0.5},
                {"smooth, sigma 1 cell", 1, 1.0}};
  const double gaps[] = {0.0, 1.0};
  const float thr = 0.3f;
  printf("# %ld pairs per row, particles of 5-8 px; lost = particles without a detection within\n"
         "# d/4 of their centre; extra = detections beyond one per particle.  Singles: one\n"
         "# particle alone (the same models), as a check that nothing is lost without a\n"
         "# neighbour.\n",
         trials);
  printf("| heatmap | peak test | singles lost | gap 0 px: lost | gap 0: extra | "
         "gap 1 px: lost | gap 1: extra |\n|---|---|---|---|---|---|---|\n");
  for (size_t mo = 0; mo < sizeof models / sizeof models[0]; mo++)
    for (size_t me = 0; me < sizeof methods / sizeof methods[0]; me++) {
      const method *m = &methods[me];
      npt_tensor_info ti[3] = {
          {"heatmap", 1, m->stride}, {"size", 2, m->stride}, {"offset", 2, m->stride}};
      npt_graph g = {.n_tensors = 3, .tensors = ti, .n_classes = 1, .path = "bench"};
      g.heads = (npt_heads){0, 1, 2, -1, 0, m->stride};
      static scene sc;
      sc.s = m->stride;
      npt_head_outputs out = {sc.heat, sc.size, sc.offset, NULL, 1, GRID, GRID};
      npt_decode_params dp = {thr, 100, m->kernel, m->suppress_ratio, 0};
      printf("| %s | %s", models[mo].name, m->name);
      for (int gi = -1; gi < 2; gi++) {
        npt_rng rng;
        npt_rng_seed(&rng, 12345, (uint64_t)(gi + 1));
        tally t = {0};
        for (long k = 0; k < trials; k++) {
          particle p[2];
          double d1 = 5 + 3 * npt_rng_uniform(&rng), d2 = 5 + 3 * npt_rng_uniform(&rng);
          double gap = gi < 0 ? 0 : gaps[gi], dist = 0.5 * (d1 + d2) + gap;
          double th = 2 * M_PI * npt_rng_uniform(&rng);
          double mx = GRID * m->stride / 2.0 + 4 * npt_rng_uniform(&rng);
          double my = GRID * m->stride / 2.0 + 4 * npt_rng_uniform(&rng);
          p[0] = (particle){mx - 0.5 * dist * cos(th), my - 0.5 * dist * sin(th), d1};
          p[1] = (particle){mx + 0.5 * dist * cos(th), my + 0.5 * dist * sin(th), d2};
          int n = gi < 0 ? 1 : 2;
          render(&sc, p, n, models[mo].smooth, models[mo].sigma, m->kernel != -1);
          npt_detection buf[100];
          int nd;
          if (m->kernel <= 0) {
            nd = decode_subcell(&sc, thr, buf, 100);
            score(p, n, buf, nd, 1, &t);
          } else {
            npt_dets d;
            npt_dets_init(&d, 0);
            int sat;
            if (npt_decode_frame(&g, &out, 0, GRID * m->stride, GRID * m->stride, 0, &dp, &d,
                                 &sat) < 0) {
              fprintf(stderr, "bench_peaks: %s\n", npt_error_msg(NPT_EINVAL));
              return 1;
            }
            score(p, n, d.det, (int)d.n, 0, &t);
            npt_dets_free(&d);
          }
        }
        double lost = 100.0 * (double)t.lost / (double)t.particles;
        double extra = 100.0 * (double)t.extra / (double)t.particles;
        if (gi < 0)
          printf(" | %.1f %%", lost);
        else
          printf(" | %.1f %% | %.1f %%", lost, extra);
      }
      printf(" |\n");
    }
  return 0;
}
