/* Time of the gated assignment (src/track/assign.h) per frame, one core.
 *
 * A frame: N tracks at uniform random positions in a square whose size gives each track about
 * `mean_cand` detections within the gate radius R (default 2.5, i.e. 1-4 candidates), and N
 * detections, each a track moved by Gaussian noise of R/3, 5% of tracks missed and replaced by
 * new detections elsewhere.  Allowed pairs are those within R, cost (distance / R)^2,
 * max_cost 1.  Only npt_assign_solve is timed (the pairs are built beforehand), with one
 * workspace reused over the frames, as the tracker does.
 *
 * usage: bench_assign [FRAMES [MEAN_CANDIDATES]]   (default 2000 frames per size, 2.5) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/error.h"
#include "common/rng.h"
#include "track/assign.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct frame {
  npt_assign_edge *e;
  size_t n_edges;
} frame;

/* Pairs within R by brute force over a uniform grid of cell R (bench setup, not timed). */
static size_t make_frame(npt_rng *g, size_t n, double mean_cand, npt_assign_edge *e, double *tx,
                         double *ty, double *dx, double *dy, size_t *cell_start,
                         size_t *cell_items) {
  const double r = 1.0;
  double side = sqrt((double)n * M_PI * r * r / mean_cand);
  size_t gn = (size_t)ceil(side / r);
  for (size_t i = 0; i < n; i++) {
    tx[i] = npt_rng_range(g, 0, side);
    ty[i] = npt_rng_range(g, 0, side);
    if (npt_rng_uniform(g) < 0.05) {
      dx[i] = npt_rng_range(g, 0, side);
      dy[i] = npt_rng_range(g, 0, side);
    } else {
      dx[i] = fmin(fmax(tx[i] + npt_rng_normal(g) * r / 3, 0), side * 0.999999);
      dy[i] = fmin(fmax(ty[i] + npt_rng_normal(g) * r / 3, 0), side * 0.999999);
    }
  }
  /* Bucket detections by cell. */
  for (size_t c = 0; c <= gn * gn; c++)
    cell_start[c] = 0;
  for (size_t j = 0; j < n; j++)
    cell_start[(size_t)(dy[j] / r) * gn + (size_t)(dx[j] / r) + 1]++;
  for (size_t c = 0; c < gn * gn; c++)
    cell_start[c + 1] += cell_start[c];
  for (size_t j = 0; j < n; j++) {
    size_t c = (size_t)(dy[j] / r) * gn + (size_t)(dx[j] / r);
    cell_items[cell_start[c]++] = j;
  }
  for (size_t c = gn * gn; c > 0; c--)
    cell_start[c] = cell_start[c - 1];
  cell_start[0] = 0;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    long cx = (long)(tx[i] / r), cy = (long)(ty[i] / r);
    for (long y = cy - 1; y <= cy + 1; y++)
      for (long x = cx - 1; x <= cx + 1; x++) {
        if (x < 0 || y < 0 || x >= (long)gn || y >= (long)gn)
          continue;
        size_t c = (size_t)y * gn + (size_t)x;
        for (size_t k = cell_start[c]; k < cell_start[c + 1]; k++) {
          size_t j = cell_items[k];
          double d2 = ((tx[i] - dx[j]) * (tx[i] - dx[j]) + (ty[i] - dy[j]) * (ty[i] - dy[j]));
          if (d2 < r * r)
            e[m++] = (npt_assign_edge){(int64_t)i, (int64_t)j, d2 / (r * r)};
        }
      }
  }
  return m;
}

int main(int argc, char **argv) {
  int frames = argc > 1 ? atoi(argv[1]) : 2000;
  double mean_cand = argc > 2 ? atof(argv[2]) : 2.5;
  const size_t sizes[] = {200, 1000, 5000};
  enum { SETS = 16 }; /* distinct frames cycled through (keeps setup time small) */
  printf("# gated assignment, one core, %d frames per size, %.1f candidates per track expected\n",
         frames, mean_cand);
  printf("%8s %12s %12s %12s\n", "N", "pairs/track", "us/frame", "frames/s");
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = sizes[s];
    npt_rng g;
    npt_rng_seed(&g, 1, n);
    double *buf = malloc(4 * n * sizeof *buf);
    size_t *cell_start = malloc((4 * n + 2) * sizeof *cell_start);
    size_t *cell_items = malloc(n * sizeof *cell_items);
    frame f[SETS];
    size_t total_edges = 0;
    for (int k = 0; k < SETS; k++) {
      f[k].e = malloc(n * 64 * sizeof *f[k].e);
      if (!buf || !cell_start || !cell_items || !f[k].e)
        return 1;
      f[k].n_edges = make_frame(&g, n, mean_cand, f[k].e, buf, buf + n, buf + 2 * n, buf + 3 * n,
                                cell_start, cell_items);
      total_edges += f[k].n_edges;
    }
    int64_t *r2c = malloc(n * sizeof *r2c), *c2r = malloc(n * sizeof *c2r);
    npt_assign_work *w;
    if (npt_assign_work_init(&w) < 0 || !r2c || !c2r)
      return 1;
    /* Warm-up: the workspace grows to its final size. */
    for (int k = 0; k < SETS; k++)
      npt_assign_solve(n, n, f[k].e, f[k].n_edges, 1.0, r2c, c2r, w);
    long matched = 0;
    double t0 = now();
    for (int t = 0; t < frames; t++) {
      const frame *fr = &f[t % SETS];
      if (npt_assign_solve(n, n, fr->e, fr->n_edges, 1.0, r2c, c2r, w) < 0) {
        fprintf(stderr, "bench_assign: %s\n", npt_error_msg(-1));
        return 1;
      }
      matched += r2c[t % n] >= 0;
    }
    double us = (now() - t0) / frames * 1e6;
    printf("%8zu %12.2f %12.1f %12.0f\n", n, (double)total_edges / SETS / (double)n, us, 1e6 / us);
    (void)matched;
    npt_assign_work_free(w);
    for (int k = 0; k < SETS; k++)
      free(f[k].e);
    free(buf);
    free(cell_start);
    free(cell_items);
    free(r2c);
    free(c2r);
  }
  return 0;
}
