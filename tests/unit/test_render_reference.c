/* The fast particle layer of the synthetic-frame renderer (render_particles.c, render_shade.c)
 * against the plain supersampled reference (render_reference.c) on small, large, layered and
 * shifted-core particles, wide and narrow Fresnel fringes of both signs, clipped particles and
 * lattice fringes. */
#include <math.h>
#include <stdlib.h>

#include "npt_test.h"

#include "common/rng.h"
#include "synth/render_internal.h"
#include "synth/shape.h"

/* Clean optics (test_render.c's): no support texture, fringe, blur or gradient. */
static npt_synth_optics clean_optics(int w, int h) {
  return (npt_synth_optics){.width = w,
                            .height = h,
                            .bit_depth = 16,
                            .dose = 1e6,
                            .background_level = 0.5,
                            .metal_mfp_px = 10.0,
                            .oxide_mfp_px = 40.0,
                            .support_contrast = 0.0,
                            .support_grain_px = 2.0};
}

static npt_synth_particle metal(double x, double y, double a, double b, double angle) {
  return (npt_synth_particle){.outer = {.x = x, .y = y, .a = a, .b = b, .angle = angle},
                              .core_frac = 1.0};
}

/* The fast particle layer (render_particles.c, render_shade.c) against the plain supersampled one
 * (render_reference.c), on a float frame of ones.  The differences are the fast renderer's
 * per-pixel estimates (see render_reference.c); the tolerances are what they allow, with some
 * room over what was measured (quoted).
 *  - Any pixel: the covered fraction clamp(1/2 + sd) is exact for an edge along a pixel axis, and
 *    for an oblique edge departs from the true fraction by up to about 0.09 (45 degrees, a quarter
 *    pixel from the centre); times the contrast (< 0.7) that is 0.06, the bound test_antialias
 *    uses too.  Away from edges pixels agree to about 1e-3.
 *  - Fringe-only pixels (about 2 px and more outside every outline): the fringe taken at the
 *    pixel's centre instead of averaged over it differs by about |A| F''/24 / w^2 <= 0.07 |A| /
 *    w^2, and the first-order distance (R - r) / g by up to a factor g from the true one where the
 *    outline is oblique to the radius: elongated particles with wide fringes.
 *  - The integrated contrast sum(1 - T): the edge errors mostly cancel, but the covered part's
 *    mean thickness overrates the edge a little: +1.3 % (8 px across) to +2.7 % (5 px) against
 *    the reference.
 * The frame's padding columns must stay untouched (they are filled with 7). */
static void compare_with_reference(const char *name, npt_synth_optics o,
                                   const npt_synth_particle *p, int n, int samples,
                                   double tol_pixel, double tol_fringe, double tol_sum) {
  int w = o.width, h = o.height, stride = npt__row_round(w) + NPT__ROW_ALIGN;
  float *fast = malloc(sizeof(float) * stride * h), *ref = malloc(sizeof(float) * stride * h);
  assert_non_null(fast);
  assert_non_null(ref);
  for (int i = 0; i < stride * h; i++)
    fast[i] = ref[i] = i % stride < w ? 1.0f : 7.0f;
  npt__synth_shader sh;
  assert_int_equal(npt__synth_shader_init(&sh, &o), 0);
  assert_int_equal(npt__synth_particles_check(p, n, 0), 0);
  assert_int_equal(npt__synth_particles_shade(&sh, p, n, fast, w, h, stride), 0);
  npt__synth_shader_free(&sh);
  assert_int_equal(npt__synth_render_particles_reference(&o, p, n, ref, w, h, stride, samples), 0);
  /* Fringe-only pixels: rho above 1 + 1.8 / (smaller semi-axis) for every particle. */
  double worst = 0.0, worst_fringe = 0.0, sum_fast = 0.0, sum_ref = 0.0, sum_abs = 0.0;
  for (int i = 0; i < h; i++)
    for (int j = 0; j < stride; j++) {
      double a = fast[i * stride + j], b = ref[i * stride + j];
      if (j >= w) {
        if (a != 7.0)
          fail_msg("%s: padding pixel (%d, %d) changed to %g", name, i, j, a);
        continue;
      }
      int uncovered = 1;
      for (int k = 0; k < n; k++)
        uncovered &=
            npt_synth_body_rho(&p[k].outer, j, i) > 1.0 + 1.8 / fmin(p[k].outer.a, p[k].outer.b);
      double d = fabs(a - b);
      worst = fmax(worst, d);
      if (uncovered)
        worst_fringe = fmax(worst_fringe, d);
      sum_fast += 1.0 - a;
      sum_ref += 1.0 - b;
      sum_abs += d;
    }
  print_message("%-22s worst pixel %.4f (tol %.3f), fringe-only %.5f (tol %.4f), contrast %.3f "
                "vs %.3f (tol %.1f %%), mean |diff| %.2e\n",
                name, worst, tol_pixel, worst_fringe, tol_fringe, sum_fast, sum_ref, 100 * tol_sum,
                sum_abs / (w * h));
  NPT_ASSERT_NEAR(worst, 0.0, tol_pixel);
  NPT_ASSERT_NEAR(worst_fringe, 0.0, tol_fringe);
  NPT_ASSERT_NEAR(sum_fast, sum_ref, tol_sum * fabs(sum_ref));
  free(fast);
  free(ref);
}

static npt_synth_particle random_body(npt_rng *g, int w, int h, double a_lo, double a_hi,
                                      double h_max) {
  double a = npt_rng_range(g, a_lo, a_hi);
  npt_synth_particle p =
      metal(npt_rng_range(g, 0.1 * w, 0.9 * w), npt_rng_range(g, 0.1 * h, 0.9 * h), a,
            a * npt_rng_range(g, 0.7, 1.0), npt_rng_range(g, 0, 6.3));
  p.outer.h3 = npt_rng_range(g, -h_max, h_max);
  p.outer.p3 = npt_rng_range(g, 0, 6.3);
  p.outer.h4 = npt_rng_range(g, -h_max, h_max);
  p.outer.p4 = npt_rng_range(g, 0, 6.3);
  return p;
}

static void test_reference_small(void **state) {
  (void)state;
  npt_rng g;
  npt_rng_seed(&g, 21, 0);
  npt_synth_optics o = clean_optics(60, 50);
  o.metal_mfp_px = 8.0;
  o.fresnel_amp = 0.1;
  o.fresnel_width_px = 1.2;
  npt_synth_particle p[8];
  for (int k = 0; k < 8; k++)
    p[k] = random_body(&g, 60, 50, 2.5, 4.0, 0.03);
  /* 0.0236, 0.0019, +3.2 % (the fringe's share of the sum is small and of the other sign). */
  compare_with_reference("small (dense-like)", o, p, 8, 8, 0.06, 0.005, 0.04);
}

static void test_reference_large(void **state) {
  (void)state;
  npt_rng g;
  npt_rng_seed(&g, 22, 0);
  npt_synth_optics o = clean_optics(96, 80);
  o.metal_mfp_px = 30.0;
  o.fresnel_amp = 0.15;
  o.fresnel_width_px = -2.0;
  npt_synth_particle p[2] = {random_body(&g, 96, 80, 15, 22, 0.08),
                             random_body(&g, 96, 80, 15, 22, 0.08)};
  p[1].outer.b = 0.5 * p[1].outer.a; /* elongated: the footprint from the ellipse's chords */
  /* 0.0102, 0.0029, -0.05 % */
  compare_with_reference("large, over-focus", o, p, 2, 4, 0.06, 0.005, 0.01);
}

static void test_reference_shells(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(96, 40);
  o.metal_mfp_px = 6.0;
  o.oxide_mfp_px = 20.0;
  npt_synth_particle p[3] = {metal(16.3, 20.2, 12, 11, 0.3), metal(48.6, 19.7, 13, 12, 1.1),
                             metal(80.1, 20.5, 11, 11, 0.0)};
  p[0].core_frac = 0.0; /* Kirkendall shell: oxide with a void */
  p[0].void_frac = 0.6;
  p[1].core_frac = 0.55; /* oxide shell round a shifted metal core */
  p[1].core_dx = 1.5;
  p[1].core_dy = -1.0;
  p[2].core_frac = 0.7; /* centred core */
  /* 0.0171, 0, +0.3 % */
  compare_with_reference("shells and cores", o, p, 3, 6, 0.06, 1e-6, 0.01);
}

static void test_reference_fringes(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(80, 60);
  o.metal_mfp_px = 15.0;
  o.fresnel_amp = 0.3;
  o.fresnel_width_px = 4.0; /* a wide fringe, reaching 12 px out */
  npt_synth_particle p[3] = {metal(22.4, 30.3, 8, 8, 0.0), metal(58.1, 28.8, 9, 4.5, 0.7),
                             metal(78.2, 2.1, 5, 5, 0.0)}; /* the last one partly outside */
  p[0].outer.h3 = 0.06;
  p[0].outer.p3 = 0.4;
  /* 0.0319, 0.0154 (around the elongated particle: g up to 1.3 there), +1.8 % */
  compare_with_reference("wide fringes, clipped", o, p, 3, 6, 0.06, 0.025, 0.04);
}

/* Lattice fringes: the fast renderer takes them at the pixel's centre, which for a period of 3 px
 * overstates their amplitude by up to 1 / sinc(1/3) - 1 = 21 % (of amp x contrast < 0.1). */
static void test_reference_lattice(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(48, 48);
  o.metal_mfp_px = 10.0;
  npt_synth_particle p = metal(23.7, 24.2, 14, 13, 0.2);
  p.lattice_period_px = 3.0;
  p.lattice_amp = 0.3;
  p.lattice_angle = 0.6;
  p.lattice_phase = 1.0;
  /* 0.0649, 0, +0.2 % */
  compare_with_reference("lattice", o, &p, 1, 6, 0.08, 1e-6, 0.01);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_small),   cmocka_unit_test(test_reference_large),
      cmocka_unit_test(test_reference_shells),  cmocka_unit_test(test_reference_fringes),
      cmocka_unit_test(test_reference_lattice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
