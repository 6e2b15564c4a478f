/* Image formation of synthetic frames (src/synth/render.c): geometry of the dark region against
 * the ground-truth boxes, anti-aliasing, contrast polarity, oxide shells, fringes, the support's
 * drift, shot-noise statistics, grey-level ranges, blank frames and argument checks. */
#include <math.h>
#include <stdlib.h>

#include "npt_test.h"

#include "common/error.h"
#include "common/rng.h"
#include "synth/render.h"
#include "synth/render_internal.h"
#include "synth/shape.h"

/* Clean optics: 16-bit, a high dose (shot noise 1e-3 of the support), uniform support, no
 * fringe, blur or gradient; tests switch on what they look at. */
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

/* Realistic optics (8-bit, dose 100, every effect on). */
static npt_synth_optics busy_optics(int w, int h) {
  return (npt_synth_optics){.width = w,
                            .height = h,
                            .bit_depth = 8,
                            .dose = 100,
                            .background_level = 0.55,
                            .metal_mfp_px = 20.0,
                            .oxide_mfp_px = 60.0,
                            .support_contrast = 0.1,
                            .support_grain_px = 2.0,
                            .fresnel_amp = 0.15,
                            .fresnel_width_px = 1.5,
                            .blur_sigma_px = 1.0,
                            .gradient_amp = 0.1,
                            .gradient_angle = 0.7};
}

static npt_synth_particle metal(double x, double y, double a, double b, double angle) {
  return (npt_synth_particle){.outer = {.x = x, .y = y, .a = a, .b = b, .angle = angle},
                              .core_frac = 1.0};
}

/* Renders one frame into a new buffer (16-bit values widened to double for the checks). */
static double *render(const npt_synth_optics *o, uint64_t seed, const npt_synth_particle *p, int n,
                      double dx, double dy, int blank, int64_t frame) {
  npt_synth_renderer *r = NULL;
  int rc = npt_synth_renderer_init(&r, o, seed);
  if (rc < 0)
    fail_msg("renderer_init: %s", npt_error_msg(rc));
  size_t np = (size_t)o->width * o->height;
  void *raw = malloc(np * (o->bit_depth == 8 ? 1 : 2));
  double *v = malloc(np * sizeof(double));
  assert_non_null(raw);
  assert_non_null(v);
  rc = npt_synth_render(r, p, n, dx, dy, blank, frame, raw);
  if (rc < 0)
    fail_msg("render: %s", npt_error_msg(rc));
  for (size_t i = 0; i < np; i++)
    v[i] = o->bit_depth == 8 ? ((uint8_t *)raw)[i] : ((uint16_t *)raw)[i];
  free(raw);
  npt_synth_renderer_free(r);
  return v;
}

static double mean_of(const double *v, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += v[i];
  return s / n;
}

static void test_deterministic(void **state) {
  (void)state;
  npt_synth_optics o = busy_optics(96, 80);
  npt_synth_particle p[2] = {metal(30.3, 40.7, 12, 9, 0.4), metal(70.1, 20.2, 6, 5, 1.0)};
  p[1].core_frac = 0.0;
  p[1].void_frac = 0.5;
  size_t np = 96 * 80;
  double *a = render(&o, 9, p, 2, 1.3, -2.1, 0, 5);
  double *b = render(&o, 9, p, 2, 1.3, -2.1, 0, 5);
  double *c = render(&o, 9, p, 2, 1.3, -2.1, 0, 6);
  size_t same = 0, differ = 0;
  for (size_t i = 0; i < np; i++) {
    same += a[i] == b[i];
    differ += a[i] != c[i];
  }
  assert_int_equal(same, np);
  /* Another frame: other shot noise almost everywhere. */
  if (differ < np * 8 / 10)
    fail_msg("frames 5 and 6 differ in only %zu of %zu pixels", differ, np);
  free(a);
  free(b);
  free(c);
}

/* Dark region (grey below `frac` of the support level) of a noiseless frame: its extent in
 * continuous coordinates, pixel (i, j) covering [j - 1/2, j + 1/2]. */
static void dark_extent(const double *v, int w, int h, double level, double *x0, double *y0,
                        double *x1, double *y1) {
  int jmin = w, jmax = -1, imin = h, imax = -1;
  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++)
      if (v[(size_t)i * w + j] < level) {
        jmin = j < jmin ? j : jmin;
        jmax = j > jmax ? j : jmax;
        imin = i < imin ? i : imin;
        imax = i > imax ? i : imax;
      }
  assert_true(jmax >= 0);
  *x0 = jmin - 0.5;
  *x1 = jmax + 0.5;
  *y0 = imin - 0.5;
  *y1 = imax + 0.5;
}

/* The dark region of metal bodies, large and small, of random shape, angle and sub-pixel place,
 * spans the ground-truth box to well under a pixel (the pixel grid alone allows 1/2). */
static void check_boxes(double a_lo, double a_hi, double tol) {
  npt_rng g;
  npt_rng_seed(&g, 77, (uint64_t)(a_lo * 10));
  npt_synth_optics o = clean_optics(160, 160);
  o.fresnel_amp = 0.2; /* a bright fringe outside must not move the dark region */
  o.fresnel_width_px = 1.5;
  double worst = 0.0, sum_signed = 0.0;
  for (int rep = 0; rep < 12; rep++) {
    double a = npt_rng_range(&g, a_lo, a_hi);
    npt_synth_particle p = metal(npt_rng_range(&g, 70, 90), npt_rng_range(&g, 70, 90), a,
                                 a * npt_rng_range(&g, 0.6, 1.0), npt_rng_range(&g, 0, 6.3));
    p.outer.h3 = npt_rng_range(&g, -0.08, 0.08);
    p.outer.p3 = npt_rng_range(&g, 0, 6.3);
    p.outer.h4 = npt_rng_range(&g, -0.06, 0.06);
    p.outer.p4 = npt_rng_range(&g, 0, 6.3);
    double *v = render(&o, 1, &p, 1, 0, 0, 0, rep);
    double ref[4], got[4];
    npt_synth_body_bbox(&p.outer, &ref[0], &ref[1], &ref[2], &ref[3]);
    /* Dark: 10 % below the support, about what a half-covered edge pixel of these bodies
     * absorbs, so the region is that of the pixels whose centre is inside. */
    dark_extent(v, 160, 160, 0.5 * 65535 * 0.9, &got[0], &got[1], &got[2], &got[3]);
    for (int k = 0; k < 4; k++) {
      double err = fabs(got[k] - ref[k]);
      sum_signed += (k == 0 || k == 2) ? ref[k] - got[k] : got[k] - ref[k]; /* > 0: too big */
      worst = err > worst ? err : worst;
      if (err > tol)
        fail_msg("body %d (a %.2f b %.2f): box edge %d at %.3f, ground truth %.3f (tol %.2f)", rep,
                 p.outer.a, p.outer.b, k, got[k], ref[k], tol);
    }
    free(v);
  }
  print_message("bodies a in [%.1f, %.0f] px: box edges off by %.3f px at worst, %+.3f px on "
                "average (outwards)\n",
                a_lo, a_hi, worst, sum_signed / 48);
  /* The pixel grid alone puts edges up to 1/2 px off, but not on average. */
  assert_true(fabs(sum_signed / 48) < 0.15);
}

static void test_box_large(void **state) {
  (void)state;
  check_boxes(20, 50, 0.75);
}

static void test_box_small(void **state) {
  (void)state;
  check_boxes(2.5, 4, 0.75);
}

/* Anti-aliasing: a small particle's pixels against a 16 x 16 supersampled reference built from
 * shape.h's npt_synth_body_rho. */
static void test_antialias(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(32, 32);
  o.metal_mfp_px = 4.0;
  npt_synth_particle p = metal(15.37, 16.81, 4.1, 3.2, 0.6);
  p.outer.h3 = 0.05;
  p.outer.p3 = 1.0;
  double c = sqrt(p.outer.a * p.outer.b * (1 + 0.5 * p.outer.h3 * p.outer.h3));
  double *v = render(&o, 2, &p, 1, 0, 0, 0, 0);
  double support = 0.5 * 65535, sum_got = 0.0, sum_ref = 0.0, worst = 0.0;
  for (int i = 0; i < 32; i++)
    for (int j = 0; j < 32; j++) {
      double ref = 0.0;
      for (int si = 0; si < 16; si++)
        for (int sj = 0; sj < 16; sj++) {
          double rho =
              npt_synth_body_rho(&p.outer, j - 0.5 + (sj + 0.5) / 16, i - 0.5 + (si + 0.5) / 16);
          ref += rho < 1.0 ? 1.0 - exp(-2.0 * c * sqrt(1.0 - rho * rho) / o.metal_mfp_px) : 0.0;
        }
      ref /= 256.0;
      double got = 1.0 - v[i * 32 + j] / support;
      sum_got += got;
      sum_ref += ref;
      worst = fabs(got - ref) > worst ? fabs(got - ref) : worst;
    }
  print_message("antialias: integrated contrast %.3f (reference %.3f), worst pixel %.3f\n", sum_got,
                sum_ref, worst);
  NPT_ASSERT_NEAR(sum_got, sum_ref, 0.03 * sum_ref);
  assert_true(worst < 0.06);
  free(v);
}

static void test_small_particle_visible(void **state) {
  (void)state;
  npt_synth_optics o = busy_optics(48, 48);
  o.dose = 1e5; /* the check is on contrast, not noise */
  o.support_contrast = 0.0;
  o.gradient_amp = 0.0;
  npt_synth_particle p = metal(24.2, 23.6, 3.0, 3.0, 0.0);
  double *v = render(&o, 3, &p, 1, 0, 0, 0, 0);
  double support = mean_of(v, 48 * 4); /* top rows: bare support */
  double centre = v[24 * 48 + 24];
  print_message("6 px particle: centre %.1f, support %.1f\n", centre, support);
  assert_true(centre < 0.95 * support);
  free(v);
}

/* Inside a body the transmission is exp(-2 c sqrt(1 - rho^2) / mfp), c the mean radius. */
static void test_thickness_profile(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(96, 96);
  o.metal_mfp_px = 30.0;
  npt_synth_particle p = metal(47.3, 48.6, 36, 24, 0.5);
  p.outer.h4 = 0.05;
  double c = sqrt(36 * 24 * (1 + 0.5 * 0.05 * 0.05)), worst = 0.0, sum = 0.0;
  int count = 0;
  double *v = render(&o, 15, &p, 1, 0, 0, 0, 0);
  for (int i = 0; i < 96; i++)
    for (int j = 0; j < 96; j++) {
      double rho = npt_synth_body_rho(&p.outer, j, i);
      if (rho > 0.9)
        continue;
      double want = 0.5 * 65535 * exp(-2.0 * c * sqrt(1 - rho * rho) / o.metal_mfp_px);
      double err = fabs(v[i * 96 + j] - want) / want;
      worst = err > worst ? err : worst;
      sum += err;
      count++;
    }
  /* Shot noise alone is 0.26 % here (dose 1e6, T down to 0.15); pixels are means over their
   * area, a little lighter than the point values. */
  print_message("thickness profile: relative error %.4f on average, %.4f at worst\n", sum / count,
                worst);
  assert_true(sum / count < 0.004);
  assert_true(worst < 0.015);
  free(v);
}

/* Inverted polarity: particles bright, support still at the background level. */
static void test_invert(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(64, 64);
  npt_synth_particle p = metal(32, 32, 10, 8, 0.3);
  double *n = render(&o, 4, &p, 1, 0, 0, 0, 0);
  o.invert = 1;
  double *i = render(&o, 4, &p, 1, 0, 0, 0, 0);
  double level = 0.5 * 65535;
  assert_true(n[32 * 64 + 32] < 0.8 * level);
  assert_true(i[32 * 64 + 32] > 1.2 * level);
  NPT_ASSERT_NEAR(n[2 * 64 + 2], level, 0.01 * level);
  NPT_ASSERT_NEAR(i[2 * 64 + 2], level, 0.01 * level);
  free(n);
  free(i);
}

/* A Kirkendall shell (oxide, void 0.6, no core) is lighter at its centre than at its rim; a
 * core-shell particle is darker at its metal centre than in its oxide rim. */
static void test_oxide_shell(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(80, 80);
  npt_synth_particle p = metal(40, 40, 25, 25, 0.0);
  p.core_frac = 0.0;
  p.void_frac = 0.6;
  double *v = render(&o, 5, &p, 1, 0, 0, 0, 0);
  double centre = v[40 * 80 + 40], rim = v[40 * 80 + 40 + 17], support = v[2 * 80 + 2];
  print_message("shell: centre %.0f, rim %.0f, support %.0f\n", centre, rim, support);
  assert_true(centre > rim + 0.05 * support);
  assert_true(rim < 0.9 * support);
  free(v);
  p.void_frac = 0.0;
  p.core_frac = 0.5;
  p.core_dx = 2.0;
  v = render(&o, 5, &p, 1, 0, 0, 0, 0);
  centre = v[40 * 80 + 42];
  rim = v[40 * 80 + 40 - 20];
  assert_true(centre < rim - 0.05 * support);
  free(v);
}

/* The Fresnel fringe: bright just outside the outline for a positive width (under-focus), dark
 * for a negative one, nothing beyond 3 widths; the box stays dark-region-tight (test_box_*). */
static void test_fresnel_sign(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(80, 80);
  o.fresnel_amp = 0.2;
  o.fresnel_width_px = 2.0;
  npt_synth_particle p = metal(40, 40.5, 20, 20, 0.0); /* right edge at x = 60 */
  double *b = render(&o, 6, &p, 1, 0, 0, 0, 0);
  o.fresnel_width_px = -2.0;
  double *d = render(&o, 6, &p, 1, 0, 0, 0, 0);
  double level = 0.5 * 65535;
  int row = 40 * 80;
  /* Pixel 60 is half covered; 61 is 1 px (w / 2) outside: 1 +- A (1 - 1/2) (1 - 1/6)^2. */
  NPT_ASSERT_NEAR(b[row + 61], 1.069 * level, 0.004 * level);
  NPT_ASSERT_NEAR(d[row + 61], 0.931 * level, 0.004 * level);
  /* The opposite fringe: 1 + A (1 - u) (1 - u/3)^2 at u = 1.5 and 2.5. */
  NPT_ASSERT_NEAR(b[row + 63], 0.975 * level, 0.003 * level);
  NPT_ASSERT_NEAR(b[row + 65], 0.99167 * level, 0.003 * level);
  NPT_ASSERT_NEAR(d[row + 63], 1.025 * level, 0.003 * level);
  NPT_ASSERT_NEAR(b[row + 68], level, 0.003 * level);
  NPT_ASSERT_NEAR(d[row + 68], level, 0.003 * level);
  free(b);
  free(d);
}

/* Lattice fringes modulate the particle along their wave vector and leave the support alone. */
static void test_lattice(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(64, 64);
  o.metal_mfp_px = 40.0;
  npt_synth_particle p = metal(32, 32, 20, 20, 0.0);
  p.lattice_period_px = 4.0;
  p.lattice_amp = 0.3;
  p.lattice_angle = 0.0; /* fringes vary along x */
  double *v = render(&o, 7, &p, 1, 0, 0, 0, 0);
  double along = 0.0, across = 0.0;
  for (int k = 0; k < 8; k++) {
    along += fabs(v[32 * 64 + 28 + k + 1] - v[32 * 64 + 28 + k]);
    across += fabs(v[(28 + k + 1) * 64 + 32] - v[(28 + k) * 64 + 32]);
  }
  print_message("lattice: |step| along k %.0f, across %.0f\n", along / 8, across / 8);
  assert_true(along > 10.0 * across + 100.0);
  NPT_ASSERT_NEAR(v[2 * 64 + 2], 0.5 * 65535, 0.003 * 65535);
  free(v);
}

/* The support texture moves with the drift: an integer drift shifts it exactly. */
static void test_support_drifts(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(64, 48);
  o.support_contrast = 0.2;
  double *a = render(&o, 8, NULL, 0, 0, 0, 0, 0);
  double *b = render(&o, 8, NULL, 0, 5, -3, 0, 0);
  double worst = 0.0, moved = 0.0;
  /* b(x, y) = texture(x - 5, y + 3) = a(x - 5, y + 3). */
  for (int i = 3; i < 48; i++)
    for (int j = 0; j < 59; j++) {
      double x = a[i * 64 + j], y = b[(i - 3) * 64 + j + 5];
      worst = fabs(x - y) > worst ? fabs(x - y) : worst;
      moved += fabs(a[i * 64 + j] - b[i * 64 + j]);
    }
  /* Shot noise at dose 1e6: 1e-3 of the level, 5 sigma. */
  assert_true(worst < 0.005 * 0.5 * 65535 * 1.6);
  assert_true(moved / (45 * 59) > 0.05 * 0.5 * 65535);
  free(a);
  free(b);
}

/* Shot noise: mean and variance of the counts against lambda, through the exact (lambda < 16)
 * and the approximate sampler.  With gain 1 (background_level = dose / 65535) grey levels are
 * counts.  The approximation's variance is lambda + 0.14 (its documented excess). */
static void test_noise_statistics(void **state) {
  (void)state;
  const double lambdas[] = {0.3, 2.5, 9.7, 15.9, 16.2, 40.0, 300.0, 5000.0};
  const int w = 256, h = 256;
  size_t n = (size_t)w * h;
  for (size_t k = 0; k < sizeof lambdas / sizeof lambdas[0]; k++) {
    double lam = lambdas[k];
    npt_synth_optics o = clean_optics(w, h);
    o.dose = lam;
    o.background_level = lam / 65535.0;
    double *v = render(&o, 10 + k, NULL, 0, 0, 0, 0, 3);
    double m = mean_of(v, n), s2 = 0.0;
    for (size_t i = 0; i < n; i++)
      s2 += (v[i] - m) * (v[i] - m);
    double var = s2 / (n - 1), excess = lam >= 16 ? 0.14 : 0.0;
    print_message("lambda %7.1f: mean %9.3f  variance %9.3f\n", lam, m, var);
    NPT_ASSERT_NEAR(m, lam, 5.0 * sqrt(lam / n) + 1e-9);
    NPT_ASSERT_NEAR(var, lam + excess, 5.0 * sqrt((2.0 * lam * lam + lam) / n));
    free(v);
  }
}

/* The normal deviates of the shot noise come from the frame's npt_rng stream, five table look-ups
 * per npt_rng_u64 draw (noise.c runs its own inline copy of the generator), and leave the stream
 * where npt_rng_u64 would. */
static void test_noise_stream(void **state) {
  (void)state;
  npt__synth_noise nz;
  assert_int_equal(npt__synth_noise_init(&nz), 0);
  npt_rng a, b;
  npt_rng_seed(&a, 31, 7);
  npt_rng_seed(&b, 31, 7);
  float z[48];
  for (int row = 0; row < 3; row++) {
    npt__synth_noise_normal_row(&nz, &a, z, 43); /* 48 deviates: 9 draws of 5, 1 of 3 */
    for (int j = 0; j < 48; j += 5) {
      uint64_t r = npt_rng_u64(&b);
      for (int k = 0; k < 5 && j + k < 48; k++)
        assert_true(z[j + k] == nz.normal[(r >> (12 * k)) & ((1 << NPT__NORMAL_BITS) - 1)]);
    }
  }
  assert_true(npt_rng_u64(&a) == npt_rng_u64(&b));
  npt__synth_noise_free(&nz);
}

/* Grey levels: bare support at background_level of full scale for 8 and 16 bits; clipping at
 * full scale without wrap-around. */
static void test_bit_depths(void **state) {
  (void)state;
  npt_synth_optics o = busy_optics(128, 128);
  o.bit_depth = 8;
  double *v8 = render(&o, 11, NULL, 0, 0, 0, 0, 0);
  o.bit_depth = 16;
  double *v16 = render(&o, 11, NULL, 0, 0, 0, 0, 0);
  size_t n = 128 * 128;
  NPT_ASSERT_NEAR(mean_of(v8, n), 0.55 * 255, 0.01 * 255);
  NPT_ASSERT_NEAR(mean_of(v16, n), 0.55 * 65535, 0.01 * 65535);
  double hi = 0.0;
  for (size_t i = 0; i < n; i++) {
    assert_true(v8[i] >= 0 && v8[i] <= 255);
    hi = v16[i] > hi ? v16[i] : hi;
  }
  assert_true(hi > 0.6 * 65535);
  free(v8);
  free(v16);
  /* Bright (inverted) particle on a bright background: clipped at full scale, not wrapped. */
  o = clean_optics(48, 48);
  o.bit_depth = 8;
  o.background_level = 0.8;
  o.invert = 1;
  npt_synth_particle p = metal(24, 24, 12, 12, 0.0);
  double *c = render(&o, 12, &p, 1, 0, 0, 0, 0);
  assert_true(c[24 * 48 + 24] == 255);
  for (int j = 14; j <= 34; j++)
    assert_true(c[24 * 48 + j] >= 0.75 * 255);
  free(c);
}

/* A blank frame: dark level of 0.5-2.5 % of full scale and small read noise, no particles. */
static void test_blank(void **state) {
  (void)state;
  npt_synth_optics o = busy_optics(128, 128);
  npt_synth_particle p = metal(64, 64, 30, 30, 0.0);
  for (int bits = 8; bits <= 16; bits += 8) {
    o.bit_depth = bits;
    double full = bits == 8 ? 255 : 65535;
    double *a = render(&o, 13, &p, 1, 0, 0, 1, 4);
    double *b = render(&o, 13, NULL, 0, 0, 0, 1, 4);
    size_t n = 128 * 128;
    double m = mean_of(a, n), s2 = 0.0;
    for (size_t i = 0; i < n; i++) {
      s2 += (a[i] - m) * (a[i] - m);
      assert_true(a[i] == b[i]); /* the particles are not seen */
    }
    print_message("blank %d-bit: mean %.2f, sd %.2f\n", bits, m, sqrt(s2 / n));
    assert_true(m > 0.0 && m < 0.03 * full);
    assert_true(sqrt(s2 / n) < 0.01 * full);
    free(a);
    free(b);
  }
}

static void expect_bad_optics(npt_synth_optics o, const char *field) {
  npt_synth_renderer *r = (npt_synth_renderer *)&o; /* must be reset to NULL */
  npt_error_clear();
  assert_int_equal(npt_synth_renderer_init(&r, &o, 1), NPT_EINVAL);
  assert_null(r);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), field);
}

static void test_bad_arguments(void **state) {
  (void)state;
  npt_synth_optics o = clean_optics(32, 32);
  o.width = 0;
  expect_bad_optics(o, "width");
  o = clean_optics(32, 32);
  o.height = -3;
  expect_bad_optics(o, "height");
  o = clean_optics(32, 32);
  o.bit_depth = 12;
  expect_bad_optics(o, "bit_depth");
  o = clean_optics(32, 32);
  o.dose = 0.0;
  expect_bad_optics(o, "dose");
  o.dose = -5.0;
  expect_bad_optics(o, "dose");
  o.dose = NAN;
  expect_bad_optics(o, "dose");
  o = clean_optics(32, 32);
  o.background_level = 1.5;
  expect_bad_optics(o, "background_level");
  o = clean_optics(32, 32);
  o.metal_mfp_px = 0.0;
  expect_bad_optics(o, "metal_mfp_px");
  o = clean_optics(32, 32);
  o.blur_sigma_px = -1.0;
  expect_bad_optics(o, "blur_sigma_px");

  /* A bad particle: EINVAL naming the frame, the particle and the field; nothing written. */
  o = clean_optics(32, 32);
  npt_synth_renderer *r = NULL;
  assert_int_equal(npt_synth_renderer_init(&r, &o, 1), 0);
  npt_synth_particle p[2] = {metal(10, 10, 3, 3, 0), metal(20, 20, 0.0, 3, 0)};
  uint16_t out[32 * 32];
  memset(out, 0xab, sizeof out);
  assert_int_equal(npt_synth_render(r, p, 2, 0, 0, 0, 17, out), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "frame 17");
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "particle 1");
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "outer.a");
  assert_int_equal(out[0], 0xabab);
  p[1].outer.a = 3.0;
  p[1].void_frac = 0.99;
  assert_int_equal(npt_synth_render(r, p, 2, 0, 0, 0, 17, out), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "void_frac");
  assert_int_equal(npt_synth_render(r, NULL, 2, 0, 0, 0, 0, out), NPT_EINVAL);
  assert_int_equal(npt_synth_render(r, p, 0, NAN, 0, 0, 0, out), NPT_EINVAL);
  npt_synth_renderer_free(r);
}

/* Particles partly or wholly outside the frame are clipped, not an error. */
static void test_edges(void **state) {
  (void)state;
  npt_synth_optics o = busy_optics(40, 30);
  npt_synth_particle p[3] = {metal(-3, 5, 8, 6, 0.2), metal(38.5, 29, 10, 4, 1.0),
                             metal(-500, 1e5, 5, 5, 0)};
  double *v = render(&o, 14, p, 3, 0, 0, 0, 0);
  assert_true(v[5 * 40 + 0] < 0.5 * 0.55 * 255);
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_box_large),
      cmocka_unit_test(test_box_small),
      cmocka_unit_test(test_antialias),
      cmocka_unit_test(test_small_particle_visible),
      cmocka_unit_test(test_thickness_profile),
      cmocka_unit_test(test_invert),
      cmocka_unit_test(test_oxide_shell),
      cmocka_unit_test(test_fresnel_sign),
      cmocka_unit_test(test_lattice),
      cmocka_unit_test(test_support_drifts),
      cmocka_unit_test(test_noise_statistics),
      cmocka_unit_test(test_noise_stream),
      cmocka_unit_test(test_bit_depths),
      cmocka_unit_test(test_blank),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
