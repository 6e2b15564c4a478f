/* Frames per second of the online tracker (src/track/tracker.h) alone, one core: N particles of
 * 8-20 px moving with constant velocity (bouncing off the field's edges) at a constant density
 * (200 per 512 x 512), detected with 0.3 px of noise, 64-d embeddings with noise, 2 % missed
 * detections, 2 % false positives, 5 % low scores.  Only npt_tracker_step is timed; the
 * detections are generated between calls.
 *
 * usage: bench_tracker [FRAMES]   (default 2000 frames at 200 particles, a fifth as many at
 * 1000 and 5000) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/rng.h"
#include "track/tracker.h"

#define DIM 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int frames0 = argc > 1 ? atoi(argv[1]) : 2000;
  const size_t sizes[] = {200, 1000, 5000};
  printf("# online tracker, npt_tracker_step only, one core, %d-d embeddings\n", DIM);
  printf("%8s %8s %12s %12s %10s\n", "N", "frames", "us/frame", "frames/s", "ids");
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    const size_t n = sizes[k];
    const int frames = n == 200 ? frames0 : frames0 / 5;
    const double side = 512 * sqrt((double)n / 200);
    npt_rng g;
    npt_rng_seed(&g, 5, n);
    double *px = malloc(n * 5 * sizeof *px);
    float *pe = malloc(n * DIM * sizeof *pe), *de = malloc((n + n / 10) * DIM * sizeof *de);
    npt_track_det *d = malloc((n + n / 10) * sizeof *d);
    int64_t *ids = malloc((n + n / 10) * sizeof *ids);
    if (!px || !pe || !de || !d || !ids)
      return 1;
    for (size_t i = 0; i < n; i++) {
      double *q = px + 5 * i;
      q[0] = npt_rng_range(&g, 0, side);
      q[1] = npt_rng_range(&g, 0, side);
      q[2] = npt_rng_range(&g, -1.5, 1.5);
      q[3] = npt_rng_range(&g, -1.5, 1.5);
      q[4] = npt_rng_range(&g, 8, 20);
      double ss = 0;
      for (int c = 0; c < DIM; c++) {
        pe[i * DIM + c] = (float)npt_rng_normal(&g);
        ss += (double)pe[i * DIM + c] * pe[i * DIM + c];
      }
      for (int c = 0; c < DIM; c++)
        pe[i * DIM + c] = (float)(pe[i * DIM + c] / sqrt(ss));
    }
    npt_track_settings s = npt_track_settings_default();
    npt_tracker *t;
    if (npt_tracker_create(&s, DIM, &t) < 0)
      return 1;
    double spent = 0;
    for (int f = 0; f < frames; f++) {
      size_t m = 0;
      for (size_t i = 0; i < n; i++) {
        double *q = px + 5 * i;
        for (int a = 0; a < 2; a++) {
          q[a] += q[2 + a];
          if (q[a] < 0 || q[a] > side)
            q[2 + a] = -q[2 + a];
        }
        double u = npt_rng_uniform(&g);
        if (u < 0.02)
          continue;
        float *e = de + m * DIM;
        for (int c = 0; c < DIM; c++)
          e[c] = pe[i * DIM + c] + 0.02f * (float)(npt_rng_uniform(&g) - 0.5);
        double cx = q[0] + 0.3 * npt_rng_normal(&g), cy = q[1] + 0.3 * npt_rng_normal(&g);
        d[m++] = (npt_track_det){(float)(cx - q[4] / 2),
                                 (float)(cy - q[4] / 2),
                                 (float)q[4],
                                 (float)q[4],
                                 u < 0.07 ? 0.3f : 0.9f,
                                 1,
                                 e};
      }
      for (size_t i = 0; i < n / 50; i++) {
        float *e = de + m * DIM;
        for (int c = 0; c < DIM; c++)
          e[c] = (float)npt_rng_normal(&g) * 0.125f;
        d[m++] = (npt_track_det){(float)npt_rng_range(&g, 0, side),
                                 (float)npt_rng_range(&g, 0, side),
                                 12,
                                 12,
                                 0.8f,
                                 1,
                                 e};
      }
      double t0 = now();
      if (npt_tracker_step(t, f, d, m, ids) < 0)
        return 1;
      spent += now() - t0;
    }
    printf("%8zu %8d %12.1f %12.0f %10lld\n", n, frames, spent / frames * 1e6, frames / spent,
           (long long)npt_tracker_num_ids(t));
    npt_tracker_free(t);
    free(px);
    free(pe);
    free(de);
    free(d);
    free(ids);
  }
  return 0;
}
