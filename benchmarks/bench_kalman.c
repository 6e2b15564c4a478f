/* Time of the Kalman filter (src/track/kalman.h) per frame, one core: N tracks predicted (the
 * batched call), each gated against 3 candidate detections (npt_kalman_gate_init once, then
 * npt_kalman_gate_distance per candidate) and updated with one of them through the same gate,
 * as a tracker does for every track of every frame.
 *
 * usage: bench_kalman [FRAMES]   (default 2000 frames per size) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/rng.h"
#include "track/kalman.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int frames = argc > 1 ? atoi(argv[1]) : 2000;
  const size_t sizes[] = {200, 1000, 5000};
  npt_kalman_settings s = npt_kalman_settings_default();
  printf("# Kalman predict + gate (3 candidates) + update per track, one core, %d frames\n",
         frames);
  printf("%8s %12s %12s\n", "N", "us/frame", "ns/track");
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    size_t n = sizes[k];
    npt_rng g;
    npt_rng_seed(&g, 3, n);
    npt_kalman_state *st = malloc(n * sizeof *st);
    double(*pos)[4] = malloc(n * sizeof *pos);
    if (!st || !pos)
      return 1;
    for (size_t i = 0; i < n; i++) {
      pos[i][0] = npt_rng_range(&g, 0, 2000);
      pos[i][1] = npt_rng_range(&g, 0, 2000);
      pos[i][2] = npt_rng_range(&g, 5, 40);
      pos[i][3] = pos[i][2] * npt_rng_range(&g, 0.8, 1.25);
      if (npt_kalman_init(&s, pos[i], &st[i]) < 0)
        return 1;
    }
    double inside = 0, t0 = now();
    for (int f = 0; f < frames; f++) {
      npt_kalman_predict_batch(&s, st, n);
      for (size_t i = 0; i < n; i++) {
        npt_kalman_gate gt;
        if (npt_kalman_gate_init(&s, &st[i], 0, &gt) < 0)
          return 1;
        double m[4] = {pos[i][0] + 0.3 * (f % 3), pos[i][1] - 0.2 * (f % 5), pos[i][2], pos[i][3]};
        for (int c = 0; c < 3; c++) {
          m[0] += 0.5 * c;
          inside += npt_kalman_gate_distance(&gt, m) < NPT_KALMAN_CHI2_4DOF;
        }
        if (npt_kalman_update(&s, &st[i], m, &gt) < 0)
          return 1;
      }
    }
    double us = (now() - t0) / frames * 1e6;
    printf("%8zu %12.1f %12.1f\n", n, us, us * 1e3 / (double)n);
    if (inside < 0)
      printf("%g\n", inside);
    free(st);
    free(pos);
  }
  return 0;
}
