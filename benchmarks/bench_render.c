/* Speed of the synthetic-frame renderer (src/synth/render.c) on one core: median milliseconds per
 * 512x512 8-bit frame for a blank frame, an empty field, a sparse scene (30 particles 40-120 px
 * across) and a dense monolayer (2000 particles 5-8 px across), at doses 50 and 500, with every
 * effect on: support texture (grain 2 px), Fresnel fringe (width 1 px), blur (sigma 1 px),
 * illumination gradient; an eighth of the particles are oxide shells, an eighth core-shell with
 * a shifted core, a third show lattice fringes.  The drift changes every frame.
 *
 * Then the particle layer alone (render_particles.c, render_shade.c: npt__synth_particles_shade)
 * against the plain supersampled reference of render_reference.c (4 x 4 samples per pixel), on
 * the first particles of each scene: microseconds per particle.
 *
 *   bench_render [frames [scene]]   (default 200 frames per row of the table, every scene;
 *                                   scene: blank, empty, sparse or dense, for profiling) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/rng.h"
#include "synth/render.h"
#include "synth/render_internal.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* n particles of diameter d_lo..d_hi px at random places; a quarter core-shell or hollow, a third
 * with lattice fringes. */
static void make_scene(npt_synth_particle *p, int n, double d_lo, double d_hi, npt_rng *g) {
  for (int i = 0; i < n; i++) {
    npt_synth_particle *q = &p[i];
    double r = 0.5 * npt_rng_range(g, d_lo, d_hi), e = npt_rng_range(g, 0.8, 1.0);
    *q = (npt_synth_particle){0};
    q->outer = (npt_synth_body){.x = npt_rng_range(g, 0, 512),
                                .y = npt_rng_range(g, 0, 512),
                                .a = r / sqrt(e),
                                .b = r * sqrt(e),
                                .angle = npt_rng_range(g, 0, 6.3),
                                .h3 = npt_rng_range(g, -0.05, 0.05),
                                .p3 = npt_rng_range(g, 0, 6.3),
                                .h4 = npt_rng_range(g, -0.05, 0.05),
                                .p4 = npt_rng_range(g, 0, 6.3)};
    q->core_frac = 1.0;
    int kind = (int)npt_rng_int(g, 0, 7);
    if (kind == 0) {
      q->core_frac = 0.0;
      q->void_frac = 0.6;
    } else if (kind == 1) {
      q->core_frac = 0.7;
      q->core_dx = 0.1 * r;
    }
    if (npt_rng_int(g, 0, 2) == 0) {
      q->lattice_period_px = 3.0;
      q->lattice_amp = 0.2;
      q->lattice_angle = npt_rng_range(g, 0, 3.14);
    }
  }
}

int main(int argc, char **argv) {
  int frames = argc > 1 ? atoi(argv[1]) : 200;
  if (frames < 1)
    frames = 1;
  npt_rng g;
  npt_rng_seed(&g, 42, 0);
  static npt_synth_particle sparse[30], dense[2000];
  make_scene(sparse, 30, 40, 120, &g);
  make_scene(dense, 2000, 5, 8, &g);
  struct {
    const char *name;
    const npt_synth_particle *p;
    int n, blank;
  } scenes[] = {{"blank", NULL, 0, 1},
                {"empty", NULL, 0, 0},
                {"sparse 30 x 40-120 px", sparse, 30, 0},
                {"dense 2000 x 5-8 px", dense, 2000, 0}};
  const double doses[] = {50, 500};
  uint8_t *out = malloc(512 * 512);
  double *t = malloc(sizeof(double) * frames);
  if (!out || !t)
    return 1;
  printf(
      "| scene                  | dose | median ms/frame | min ms/frame | frames/s (median) |\n");
  printf(
      "|------------------------|-----:|----------------:|-------------:|------------------:|\n");
  for (size_t s = 0; s < sizeof scenes / sizeof scenes[0]; s++)
    for (size_t d = 0; d < sizeof doses / sizeof doses[0]; d++) {
      if (argc > 2 && strncmp(scenes[s].name, argv[2], strlen(argv[2])) != 0)
        continue;
      npt_synth_optics o = {.width = 512,
                            .height = 512,
                            .bit_depth = 8,
                            .dose = doses[d],
                            .background_level = 0.6,
                            .metal_mfp_px = 25,
                            .oxide_mfp_px = 80,
                            .support_contrast = 0.08,
                            .support_grain_px = 2.0,
                            .fresnel_amp = 0.15,
                            .fresnel_width_px = 1.0,
                            .blur_sigma_px = 1.0,
                            .gradient_amp = 0.1,
                            .gradient_angle = 0.5};
      npt_synth_renderer *r;
      if (npt_synth_renderer_init(&r, &o, 7) < 0) {
        fprintf(stderr, "bench_render: %s\n", npt_error_msg(NPT_EINVAL));
        return 1;
      }
      for (int f = 0; f < frames; f++) {
        double t0 = now_ms();
        int rc = npt_synth_render(r, scenes[s].p, scenes[s].n, 0.37 * f, -0.21 * f, scenes[s].blank,
                                  f, out);
        t[f] = now_ms() - t0;
        if (rc < 0) {
          fprintf(stderr, "bench_render: %s\n", npt_error_msg(rc));
          return 1;
        }
      }
      qsort(t, frames, sizeof *t, cmp_double);
      double med = t[frames / 2];
      printf("| %-22s | %4.0f | %15.3f | %12.3f | %17.0f |\n", scenes[s].name, doses[d], med, t[0],
             1e3 / med);
      npt_synth_renderer_free(r);
    }
  /* The particle layer alone, fast against the reference, with the optics above at dose 500. */
  npt_synth_optics o = {.width = 512,
                        .height = 512,
                        .bit_depth = 8,
                        .dose = 500,
                        .background_level = 0.6,
                        .metal_mfp_px = 25,
                        .oxide_mfp_px = 80,
                        .support_contrast = 0.08,
                        .support_grain_px = 2.0,
                        .fresnel_amp = 0.15,
                        .fresnel_width_px = 1.0,
                        .blur_sigma_px = 1.0,
                        .gradient_amp = 0.1,
                        .gradient_angle = 0.5};
  int stride = 512 + 8;
  float *img = malloc(sizeof(float) * stride * 512);
  npt__synth_shader sh;
  if (!img || npt__synth_shader_init(&sh, &o) < 0)
    return 1;
  printf("\n| particle layer alone   | particles | fast us/particle | reference us/particle |\n");
  printf("|------------------------|----------:|-----------------:|----------------------:|\n");
  for (size_t s = 2; s < sizeof scenes / sizeof scenes[0]; s++) {
    if (argc > 2 && strncmp(scenes[s].name, argv[2], strlen(argv[2])) != 0)
      continue;
    int n = s == 2 ? 3 : 100, reps = 20;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
      for (int i = 0; i < stride * 512; i++)
        img[i] = 1.0f;
      double t0 = now_ms();
      npt__synth_particles_shade(&sh, scenes[s].p, n, img, 512, 512, stride);
      double dt = now_ms() - t0;
      best = dt < best ? dt : best;
    }
    double t0 = now_ms();
    if (npt__synth_render_particles_reference(&o, scenes[s].p, n, img, 512, 512, stride, 4) < 0)
      return 1;
    double ref = now_ms() - t0;
    printf("| %-22s | %9d | %16.2f | %21.0f |\n", scenes[s].name, n, 1e3 * best / n, 1e3 * ref / n);
  }
  npt__synth_shader_free(&sh);
  free(img);
  free(out);
  free(t);
  return 0;
}
