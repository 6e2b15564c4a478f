/* Centre-distance suppression in decoding (docs/decode.md, rule 3): duplicates on one large
 * particle go, touching small particles stay, the smaller box sets the limit, suppression runs
 * in score order across classes and before top-K (and the saturation count), ratio 0 changes
 * nothing, and the bucketed implementation gives exactly what a brute-force O(n^2) greedy pass
 * gives, on random frames with thousands of peaks of varied sizes. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "nn/decode.h"
#include "nn/decode_suppress.h"
#include "npt_test.h"

/* A fake model's heads and one frame of head outputs, all zero until a test writes them. */
typedef struct fixture {
  npt_tensor_info tensors[3];
  npt_graph g;
  npt_head_outputs out;
  float *heat, *size, *offset;
  int C, H, W, s;
} fixture;

static fixture *fx_new(int C, int H, int W, int s) {
  fixture *f = calloc(1, sizeof *f);
  f->C = C, f->H = H, f->W = W, f->s = s;
  f->tensors[0] = (npt_tensor_info){"heatmap", C, s};
  f->tensors[1] = (npt_tensor_info){"size", 2, s};
  f->tensors[2] = (npt_tensor_info){"offset", 2, s};
  f->g.n_tensors = 3;
  f->g.tensors = f->tensors;
  f->g.n_classes = C;
  f->g.path = "fake.h5";
  f->g.heads = (npt_heads){0, 1, 2, -1, 0, s};
  size_t plane = (size_t)H * W;
  f->heat = calloc((size_t)C * plane, sizeof(float));
  f->size = calloc(2 * plane, sizeof(float));
  f->offset = calloc(2 * plane, sizeof(float));
  f->out = (npt_head_outputs){f->heat, f->size, f->offset, NULL, 1, H, W};
  return f;
}

static void fx_free(fixture *f) {
  free(f->heat);
  free(f->size);
  free(f->offset);
  free(f);
}

/* A peak of class c (from 0) at cell (i, j) whose box decodes to centre (cx, cy), size w x h
 * (values chosen so that the offsets are exact in float). */
static void peak(fixture *f, int c, int i, int j, float score, double cx, double cy, float w,
                 float h) {
  size_t plane = (size_t)f->H * f->W, at = (size_t)i * f->W + j;
  double half = 0.5 * (f->s - 1);
  f->heat[c * plane + at] = score;
  f->offset[at] = (float)((cx - half) / f->s - j);
  f->offset[plane + at] = (float)((cy - half) / f->s - i);
  f->size[at] = w;
  f->size[plane + at] = h;
}

static int decode(fixture *f, float thr, int top_k, double ratio, npt_dets *d, int *sat) {
  npt_dets_init(d, 0);
  npt_decode_params p = {thr, top_k, 3, ratio, 0};
  return npt_decode_frame(&f->g, &f->out, 0, f->H * f->s, f->W * f->s, 0, &p, d, sat);
}

/* Number of rows of decoding at `ratio` (top_k large, threshold 0.5). */
static int64_t rows(fixture *f, double ratio) {
  npt_dets d;
  int sat;
  assert_int_equal(decode(f, 0.5f, 1000, ratio, &d, &sat), 0);
  int64_t n = d.n;
  npt_dets_free(&d);
  return n;
}

/* A broad hill on an 80 px particle at stride 2 has three local maxima, decoding to centres
 * 3-4 px apart: ratio 0 gives three detections, 0.5 the best one only.  A small particle just
 * outside it (centre 44 px away, 8 px) stays. */
static void test_large_particle_duplicates(void **state) {
  (void)state;
  fixture *f = fx_new(1, 100, 100, 2);
  peak(f, 0, 50, 50, 0.9f, 100.5, 100.5, 80, 78);
  peak(f, 0, 50, 53, 0.8f, 103.5, 101.5, 82, 80);
  peak(f, 0, 53, 51, 0.7f, 99.5, 104.5, 79, 81);
  assert_int_equal(rows(f, 0.0), 3);
  npt_dets d;
  int sat;
  assert_int_equal(decode(f, 0.5f, 10, 0.5, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  NPT_ASSERT_NEAR(d.det[0].score, 0.9f, 0);
  NPT_ASSERT_NEAR(d.det[0].x, 100.5 - 40, 0);
  NPT_ASSERT_NEAR(d.det[0].h, 78, 0);
  npt_dets_free(&d);
  peak(f, 0, 50, 72, 0.6f, 144.5, 100.5, 8, 8);
  assert_int_equal(rows(f, 0.5), 2);
  fx_free(f);
}

/* Two touching 6 px particles (centres one diameter apart) are never suppressed for ratio <= 1
 * (the test is strict: d < ratio x side); overlapping ones only closer than ratio x side. */
static void test_touching_small_particles(void **state) {
  (void)state;
  fixture *f = fx_new(1, 32, 32, 2);
  peak(f, 0, 10, 10, 0.9f, 20.5, 20.5, 6, 6);
  peak(f, 0, 10, 13, 0.8f, 26.5, 20.5, 6, 6); /* 6 px apart: touching */
  assert_int_equal(rows(f, 0.0), 2);
  assert_int_equal(rows(f, 0.5), 2);
  assert_int_equal(rows(f, 1.0), 2);          /* 36 < 36 is false */
  assert_int_equal(rows(f, 1.25), 1);         /* limit 7.5 px */
  peak(f, 0, 10, 13, 0.8f, 23.5, 20.5, 6, 6); /* 3 px apart: exactly half a diameter */
  assert_int_equal(rows(f, 0.5), 2);
  peak(f, 0, 10, 13, 0.8f, 23.25, 20.5, 6, 6); /* 2.75 px apart */
  assert_int_equal(rows(f, 0.5), 1);
  fx_free(f);
}

/* The limit is ratio x the smallest of the four sides: a thin box next to a large one stays. */
static void test_smaller_side_sets_the_limit(void **state) {
  (void)state;
  fixture *f = fx_new(1, 32, 32, 2);
  peak(f, 0, 10, 10, 0.9f, 20.5, 20.5, 40, 40);
  peak(f, 0, 10, 13, 0.8f, 26.5, 20.5, 40, 40); /* 6 px apart, limit 20 */
  assert_int_equal(rows(f, 0.5), 1);
  peak(f, 0, 10, 13, 0.8f, 26.5, 20.5, 40, 10); /* limit 5 */
  assert_int_equal(rows(f, 0.5), 2);
  peak(f, 0, 10, 10, 0.9f, 20.5, 20.5, 11, 40); /* the better one thin: limit 5.5 */
  peak(f, 0, 10, 13, 0.8f, 26.5, 20.5, 40, 40);
  assert_int_equal(rows(f, 0.5), 2);
  fx_free(f);
}

/* Score order across classes; only kept detections suppress (a dropped one does not drop its
 * own neighbours); ties by class; top-K after suppression, and saturation counts survivors. */
static void test_order_top_k_and_saturation(void **state) {
  (void)state;
  fixture *f = fx_new(2, 100, 100, 2);
  peak(f, 0, 25, 25, 0.9f, 50.5, 50.5, 20, 20);   /* A */
  peak(f, 1, 25, 29, 0.8f, 58.5, 50.5, 20, 20);   /* B: 8 px from A, another class: dropped */
  peak(f, 0, 25, 33, 0.7f, 66.5, 50.5, 20, 20);   /* C: 8 px from B (dropped), 16 from A */
  peak(f, 1, 75, 75, 0.6f, 150.5, 150.5, 20, 20); /* D: ties with E, class 2 after class 1 */
  peak(f, 0, 75, 76, 0.6f, 152.5, 150.5, 20, 20); /* E */
  npt_dets d;
  int sat;
  const float want[3] = {0.9f, 0.7f, 0.6f};
  assert_int_equal(decode(f, 0.5f, 3, 0.5, &d, &sat), 0);
  assert_int_equal(sat, 0);
  assert_int_equal(d.n, 3);
  for (int k = 0; k < 3; k++)
    NPT_ASSERT_NEAR(d.det[k].score, want[k], 0);
  assert_int_equal(d.det[2].cls, 1);
  NPT_ASSERT_NEAR(d.det[2].x, 152.5 - 10, 0);
  npt_dets_free(&d);
  assert_int_equal(decode(f, 0.5f, 2, 0.5, &d, &sat), 0);
  assert_int_equal(sat, 1);
  assert_int_equal(d.n, 2);
  NPT_ASSERT_NEAR(d.det[1].score, 0.7f, 0);
  npt_dets_free(&d);
  /* Without suppression the same top_k keeps B and saturates. */
  assert_int_equal(decode(f, 0.5f, 3, 0.0, &d, &sat), 0);
  assert_int_equal(sat, 1);
  assert_int_equal(d.n, 3);
  NPT_ASSERT_NEAR(d.det[1].score, 0.8f, 0);
  npt_dets_free(&d);
  assert_int_equal(decode(f, 0.5f, 5, 0.0, &d, &sat), 0);
  assert_int_equal(sat, 0);
  assert_int_equal(d.n, 5);
  npt_dets_free(&d);
  fx_free(f);
}

static void test_invalid_ratio(void **state) {
  (void)state;
  fixture *f = fx_new(1, 8, 8, 2);
  npt_dets d;
  int sat;
  assert_int_equal(decode(f, 0.5f, 10, -0.5, &d, &sat), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "suppress_ratio");
  assert_int_equal(decode(f, 0.5f, 10, NAN, &d, &sat), NPT_EINVAL);
  assert_int_equal(decode(f, 0.5f, 10, INFINITY, &d, &sat), NPT_EINVAL);
  npt_dets_free(&d);
  fx_free(f);
}

/* ---- against brute force */

/* The rule, written out with every product stored (volatile: no fused multiply-add, whatever
 * the compiler's default), as decode_suppress.c computes it. */
static int drops(const npt__centre *k, const npt__centre *c, double ratio) {
  double dx = k->x - c->x, dy = k->y - c->y;
  double lim = ratio * fmin(k->side, c->side);
  volatile double dx2 = dx * dx, dy2 = dy * dy, lim2 = lim * lim;
  return dx2 + dy2 < lim2;
}

/* Greedy over all pairs: the kept indices, at most max_keep. */
static int64_t brute_force(const npt__centre *c, int64_t n, double ratio, int64_t max_keep,
                           int64_t *keep) {
  int64_t nk = 0;
  for (int64_t i = 0; i < n && nk < max_keep; i++) {
    int dropped = 0;
    for (int64_t k = 0; k < nk && !dropped; k++)
      dropped = drops(&c[keep[k]], &c[i], ratio);
    if (!dropped)
      keep[nk++] = i;
  }
  return nk;
}

static void expect_same(const npt__centre *c, int64_t n, double ratio, int64_t max_keep,
                        const char *what) {
  int64_t *a = malloc(sizeof *a * (size_t)n), *b = malloc(sizeof *b * (size_t)n), na;
  assert_int_equal(npt__suppress_centres(c, n, ratio, max_keep, a, &na), 0);
  int64_t nb = brute_force(c, n, ratio, max_keep, b);
  if (na != nb)
    fail_msg("%s, ratio %g, max_keep %lld: %lld kept, brute force %lld", what, ratio,
             (long long)max_keep, (long long)na, (long long)nb);
  for (int64_t k = 0; k < na; k++)
    if (a[k] != b[k])
      fail_msg("%s, ratio %g: kept #%lld is %lld, brute force %lld", what, ratio, (long long)k,
               (long long)a[k], (long long)b[k]);
  free(a);
  free(b);
}

/* Random candidate sets: clusters of duplicates on large particles among small ones, zero and
 * huge sizes, far-off centres, and integer lattices where distances hit the limit exactly. */
static void test_bucketed_equals_brute_force(void **state) {
  (void)state;
  enum { N = 4000 };
  npt__centre *c = malloc(sizeof *c * N);
  const double ratios[] = {0.1, 0.5, 1.0, 2.0};
  npt_rng rng;
  npt_rng_seed(&rng, 2024, 0);
  for (int kind = 0; kind < 4; kind++) {
    for (int i = 0; i < N; i++) {
      double u = npt_rng_uniform(&rng);
      if (kind == 3) { /* lattice: exact ties at the limit */
        c[i] = (npt__centre){(double)npt_rng_int(&rng, 0, 60), (double)npt_rng_int(&rng, 0, 60),
                             2.0 * (double)npt_rng_int(&rng, 0, 6)};
        continue;
      }
      double x = 1024 * npt_rng_uniform(&rng), y = 1024 * npt_rng_uniform(&rng);
      double side = u < 0.7 ? 3 + 7 * npt_rng_uniform(&rng) : 40 + 80 * npt_rng_uniform(&rng);
      if (i > 0 && npt_rng_uniform(&rng) < 0.3) /* a duplicate near an earlier centre */
        x = c[i - 1].x + 4 * npt_rng_normal(&rng), y = c[i - 1].y + 4 * npt_rng_normal(&rng),
        side = c[i - 1].side * (0.9 + 0.2 * npt_rng_uniform(&rng));
      if (kind >= 1 && u > 0.97)
        side = 0;
      if (kind == 2 && u < 0.002)
        side = 1e6 * npt_rng_uniform(&rng);
      if (kind == 2 && u > 0.995)
        x = 1e9 * (npt_rng_uniform(&rng) - 0.5);
      c[i] = (npt__centre){x, y, side};
    }
    char what[32];
    snprintf(what, sizeof what, "candidate set %d", kind);
    for (int r = 0; r < 4; r++) {
      expect_same(c, N, ratios[r], N, what);
      expect_same(c, N, ratios[r], 37, what);
    }
    expect_same(c, N, 0.0, N, what);
    expect_same(c, 1, 0.5, 1, what);
  }
  free(c);
}

/* Through npt_decode_frame: a 400 x 400 px frame at stride 2 with distinct random heatmap values
 * (thousands of peaks), random offsets and sizes from 3 to 120 px.  The rows at each ratio are
 * those of a brute-force greedy pass over the peaks in their order, with centres decoded as
 * docs/decode.md says; ratio 0 gives every peak. */
static void test_frame_equals_brute_force(void **state) {
  (void)state;
  enum { HC = 200, WC = 200, S = 2, PLANE = HC * WC };
  fixture *f = fx_new(1, HC, WC, S);
  npt_rng rng;
  npt_rng_seed(&rng, 77, 0);
  int *perm = malloc(sizeof *perm * PLANE);
  for (int k = 0; k < PLANE; k++)
    perm[k] = k;
  for (int k = PLANE - 1; k > 0; k--) {
    int m = (int)npt_rng_int(&rng, 0, k), t = perm[k];
    perm[k] = perm[m], perm[m] = t;
  }
  for (int k = 0; k < PLANE; k++) {
    f->heat[k] = 0.25f + (float)perm[k] / (2.0f * PLANE); /* distinct, 0.25 .. 0.75 */
    f->offset[k] = (float)(2 * npt_rng_uniform(&rng) - 1);
    f->offset[PLANE + k] = (float)(2 * npt_rng_uniform(&rng) - 1);
    int large = npt_rng_uniform(&rng) < 0.2;
    f->size[k] = (float)(large ? 60 + 60 * npt_rng_uniform(&rng) : 3 + 5 * npt_rng_uniform(&rng));
    f->size[PLANE + k] = f->size[k] * (float)(0.8 + 0.4 * npt_rng_uniform(&rng));
  }
  /* The peaks (values are distinct: strict window maxima), in the decoder's order. */
  int64_t np = 0, *cell = malloc(sizeof *cell * PLANE);
  int *at = malloc(sizeof *at * PLANE); /* the cell of each value */
  for (int k = 0; k < PLANE; k++)
    at[perm[k]] = k;
  for (int v = PLANE - 1; v >= 0; v--) {
    int k = at[v];
    int i = k / WC, j = k % WC, is_peak = f->heat[k] >= 0.3f;
    for (int y = i - 1; y <= i + 1 && is_peak; y++)
      for (int x = j - 1; x <= j + 1; x++)
        if (y >= 0 && x >= 0 && y < HC && x < WC && y * WC + x != k &&
            f->heat[y * WC + x] > f->heat[k])
          is_peak = 0;
    if (is_peak)
      cell[np++] = k;
  }
  assert_true(np > 3000);
  npt__centre *c = malloc(sizeof *c * (size_t)np);
  int64_t n_in = 0; /* rule 3a: a centre outside the frame needs 2 px of its box in view */
  const double lim = S * WC - 0.5;
  for (int64_t n = 0; n < np; n++) {
    int64_t k = cell[n];
    volatile double sx = S * ((double)(k % WC) + f->offset[k]);
    volatile double sy = S * ((double)(k / WC) + f->offset[PLANE + k]);
    double cx = sx + 0.5 * (S - 1), cy = sy + 0.5 * (S - 1);
    double w = f->size[k], h = f->size[PLANE + k];
    int inside = cx >= -0.5 && cx <= lim && cy >= -0.5 && cy <= lim;
    if (!inside && !(fmin(cx + 0.5 * w, lim) - fmax(cx - 0.5 * w, -0.5) >= 2.0 &&
                     fmin(cy + 0.5 * h, lim) - fmax(cy - 0.5 * h, -0.5) >= 2.0))
      continue;
    cell[n_in] = k;
    c[n_in++] = (npt__centre){cx, cy, fmin(w, h)};
  }
  assert_true(n_in < np && n_in > np - 200); /* the border drops a few, not many */
  np = n_in;
  int64_t *keep = malloc(sizeof *keep * (size_t)np);
  const double ratios[] = {0.0, 0.25, 0.5, 1.0, 2.0};
  for (int r = 0; r < 5; r++)
    for (int t = 0; t < 2; t++) {
      int top_k = t == 0 ? 100000 : 500;
      int64_t all = brute_force(c, np, ratios[r], np, keep);
      int64_t nk = all < top_k ? all : top_k;
      npt_dets d;
      int sat;
      assert_int_equal(decode(f, 0.3f, top_k, ratios[r], &d, &sat), 0);
      if (d.n != nk || sat != (all > top_k))
        fail_msg("ratio %g, top_k %d: %lld rows (saturated %d), brute force %lld of %lld",
                 ratios[r], top_k, (long long)d.n, sat, (long long)nk, (long long)all);
      for (int64_t n = 0; n < nk; n++)
        if (d.det[n].score != f->heat[cell[keep[n]]])
          fail_msg("ratio %g: row %lld is not the brute force's", ratios[r], (long long)n);
      if (ratios[r] == 0)
        assert_int_equal(all, np);
      if (ratios[r] == 0.5)
        assert_true(all < np && all > np / 4);
      npt_dets_free(&d);
    }
  free(keep);
  free(c);
  free(cell);
  free(at);
  free(perm);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_large_particle_duplicates),
      cmocka_unit_test(test_touching_small_particles),
      cmocka_unit_test(test_smaller_side_sets_the_limit),
      cmocka_unit_test(test_order_top_k_and_saturation),
      cmocka_unit_test(test_invalid_ratio),
      cmocka_unit_test(test_bucketed_equals_brute_force),
      cmocka_unit_test(test_frame_equals_brute_force),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
