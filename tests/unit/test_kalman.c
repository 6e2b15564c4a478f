/* Kalman filter (src/track/kalman.h) against a plain textbook implementation written here with
 * general matrix products, transposes and a Gauss-Jordan inverse, on random sequences of
 * predictions and updates; gating distances against the explicit inverse; convergence on a
 * still and on a uniformly moving particle; input checks. */
#include <math.h>

#include "common/error.h"
#include "common/rng.h"
#include "npt_test.h"
#include "track/kalman.h"

/* ---- reference: dense matrices of any shape, row-major ---- */

static void mat_mul(int n, int m, int p, const double *a, const double *b, double *c) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p; j++) {
      double x = 0;
      for (int k = 0; k < m; k++)
        x += a[i * m + k] * b[k * p + j];
      c[i * p + j] = x;
    }
}

static void mat_t(int n, int m, const double *a, double *t) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++)
      t[j * n + i] = a[i * m + j];
}

/* Gauss-Jordan with partial pivoting; n <= 8. */
static void mat_inv(int n, const double *a, double *inv) {
  double w[8][16];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2 * n; j++)
      w[i][j] = j < n ? a[i * n + j] : (j - n == i);
  for (int c = 0; c < n; c++) {
    int piv = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(w[r][c]) > fabs(w[piv][c]))
        piv = r;
    for (int j = 0; j < 2 * n; j++) {
      double t = w[c][j];
      w[c][j] = w[piv][j];
      w[piv][j] = t;
    }
    double d = w[c][c];
    for (int j = 0; j < 2 * n; j++)
      w[c][j] /= d;
    for (int r = 0; r < n; r++)
      if (r != c) {
        double f = w[r][c];
        for (int j = 0; j < 2 * n; j++)
          w[r][j] -= f * w[c][j];
      }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      inv[i * n + j] = w[i][n + j];
}

typedef struct ref {
  double x[8], P[64];
} ref;

static const double WP = 1.0 / 20, WV = 1.0 / 160;

static void ref_init(ref *r, const double z[4]) {
  double std[8] = {2 * WP * z[2],  2 * WP * z[3],  2 * WP * z[2],  2 * WP * z[3],
                   10 * WV * z[2], 10 * WV * z[3], 10 * WV * z[2], 10 * WV * z[3]};
  for (int i = 0; i < 8; i++) {
    r->x[i] = i < 4 ? z[i] : 0;
    for (int j = 0; j < 8; j++)
      r->P[i * 8 + j] = i == j ? std[i] * std[i] : 0;
  }
}

static void ref_predict(ref *r) {
  double F[64] = {0}, Ft[64], Q[64] = {0}, FP[64], x[8];
  double w = r->x[2], h = r->x[3];
  double std[8] = {WP * w, WP * h, WP * w, WP * h, WV * w, WV * h, WV * w, WV * h};
  for (int i = 0; i < 8; i++) {
    F[i * 8 + i] = 1;
    Q[i * 8 + i] = std[i] * std[i];
  }
  for (int i = 0; i < 4; i++)
    F[i * 8 + i + 4] = 1;
  mat_mul(8, 8, 1, F, r->x, x);
  memcpy(r->x, x, sizeof x);
  mat_t(8, 8, F, Ft);
  mat_mul(8, 8, 8, F, r->P, FP);
  mat_mul(8, 8, 8, FP, Ft, r->P);
  for (int k = 0; k < 64; k++)
    r->P[k] += Q[k];
}

static void ref_project(const ref *r, double Hx[4], double S[16]) {
  double H[32] = {0}, Ht[32], HP[32];
  for (int i = 0; i < 4; i++)
    H[i * 8 + i] = 1;
  mat_mul(4, 8, 1, H, r->x, Hx);
  mat_t(4, 8, H, Ht);
  mat_mul(4, 8, 8, H, r->P, HP);
  mat_mul(4, 8, 4, HP, Ht, S);
  double w = r->x[2], h = r->x[3];
  double std[4] = {WP * w, WP * h, WP * w, WP * h};
  for (int i = 0; i < 4; i++)
    S[i * 4 + i] += std[i] * std[i];
}

/* x += K (z - Hx), P = (I - K H) P with K = P H^T S^-1. */
static void ref_update(ref *r, const double z[4]) {
  double H[32] = {0}, Ht[32], PHt[32], Sinv[16], K[32], Hx[4], S[16], KH[64], IKH[64], P[64];
  for (int i = 0; i < 4; i++)
    H[i * 8 + i] = 1;
  ref_project(r, Hx, S);
  mat_t(4, 8, H, Ht);
  mat_mul(8, 8, 4, r->P, Ht, PHt);
  mat_inv(4, S, Sinv);
  mat_mul(8, 4, 4, PHt, Sinv, K);
  double y[4], Ky[8];
  for (int i = 0; i < 4; i++)
    y[i] = z[i] - Hx[i];
  mat_mul(8, 4, 1, K, y, Ky);
  for (int i = 0; i < 8; i++)
    r->x[i] += Ky[i];
  mat_mul(8, 4, 8, K, H, KH);
  for (int k = 0; k < 64; k++)
    IKH[k] = (k % 9 == 0) - KH[k];
  mat_mul(8, 8, 8, IKH, r->P, P);
  memcpy(r->P, P, sizeof P);
}

/* Relative agreement, scaled by the largest magnitude of the reference. */
static void assert_close(const double *got, const double *want, int n, double rel, const char *what,
                         int step) {
  double scale = 0;
  for (int k = 0; k < n; k++)
    scale = fmax(scale, fabs(want[k]));
  for (int k = 0; k < n; k++)
    if (fabs(got[k] - want[k]) > rel * scale)
      fail_msg("%s[%d] at step %d: %.15g, reference %.15g", what, k, step, got[k], want[k]);
}

static void test_against_reference(void **state) {
  (void)state;
  npt_kalman_settings s = npt_kalman_settings_default();
  assert_true(s.std_weight_position == WP && s.std_weight_velocity == WV);
  npt_rng g;
  npt_rng_seed(&g, 5, 1);
  for (int seq = 0; seq < 200; seq++) {
    double z[4] = {npt_rng_range(&g, 0, 1000), npt_rng_range(&g, 0, 1000), npt_rng_range(&g, 3, 60),
                   npt_rng_range(&g, 3, 60)};
    double v[4] = {npt_rng_normal(&g) * 3, npt_rng_normal(&g) * 3, npt_rng_normal(&g) * 0.2,
                   npt_rng_normal(&g) * 0.2};
    npt_kalman_state st;
    ref r;
    assert_int_equal(npt_kalman_init(&s, z, &st), 0);
    ref_init(&r, z);
    for (int step = 0; step < 60; step++) {
      npt_kalman_predict(&s, &st);
      ref_predict(&r);
      assert_close(st.mean, r.x, 8, 1e-12, "predicted mean", step);
      assert_close(&st.cov[0][0], r.P, 64, 1e-10, "predicted cov", step);
      for (int k = 0; k < 4; k++)
        z[k] += v[k];
      if (npt_rng_uniform(&g) < 0.8) { /* a detection, sometimes missed */
        double m[4];
        for (int k = 0; k < 4; k++)
          m[k] = z[k] + npt_rng_normal(&g) * (k < 2 ? 1.0 : 0.3);
        m[2] = fmax(m[2], 1), m[3] = fmax(m[3], 1);
        double pm[4], pc[4][4], rm[4], rc[16];
        npt_kalman_project(&s, &st, pm, pc);
        ref_project(&r, rm, rc);
        assert_close(pm, rm, 4, 1e-12, "projected mean", step);
        assert_close(&pc[0][0], rc, 16, 1e-10, "projected cov", step);
        assert_int_equal(npt_kalman_update(&s, &st, m, NULL), 0);
        ref_update(&r, m);
        assert_close(st.mean, r.x, 8, 1e-9, "updated mean", step);
        assert_close(&st.cov[0][0], r.P, 64, 1e-8, "updated cov", step);
      }
    }
  }
}

/* An update through a gate made of the same state is the update without one, bit for bit,
 * whichever kind of gate. */
static void test_update_with_gate(void **state) {
  (void)state;
  npt_kalman_settings s = npt_kalman_settings_default();
  npt_rng g;
  npt_rng_seed(&g, 8, 4);
  for (int t = 0; t < 100; t++) {
    double z[4] = {npt_rng_range(&g, 0, 500), npt_rng_range(&g, 0, 500), npt_rng_range(&g, 4, 40),
                   npt_rng_range(&g, 4, 40)};
    npt_kalman_state a, b;
    assert_int_equal(npt_kalman_init(&s, z, &a), 0);
    for (int step = 0; step < 10; step++) {
      npt_kalman_predict(&s, &a);
      b = a;
      npt_kalman_gate gt;
      assert_int_equal(npt_kalman_gate_init(&s, &b, step % 2, &gt), 0);
      z[0] += npt_rng_normal(&g);
      z[1] += npt_rng_normal(&g);
      assert_int_equal(npt_kalman_update(&s, &a, z, NULL), 0);
      assert_int_equal(npt_kalman_update(&s, &b, z, &gt), 0);
      assert_memory_equal(&a, &b, sizeof a);
    }
  }
}

/* Batched prediction is the single one, state by state. */
static void test_predict_batch(void **state) {
  (void)state;
  npt_kalman_settings s = {0.07, 0.01};
  npt_kalman_state a[5], b[5];
  for (int t = 0; t < 5; t++) {
    double z[4] = {10.0 * t, 5, 4 + t, 6};
    assert_int_equal(npt_kalman_init(&s, z, &a[t]), 0);
    a[t].mean[4] = 0.5 * t;
    b[t] = a[t];
    npt_kalman_predict(&s, &b[t]);
  }
  npt_kalman_predict_batch(&s, a, 5);
  assert_memory_equal(a, b, sizeof a);
}

/* Gating distances: d^T S^-1 d with S inverted explicitly, on all four components and on the
 * position only (the leading 2x2 block). */
static void test_gating_distance(void **state) {
  (void)state;
  npt_kalman_settings s = npt_kalman_settings_default();
  npt_rng g;
  npt_rng_seed(&g, 11, 2);
  for (int t = 0; t < 500; t++) {
    double z[4] = {npt_rng_range(&g, 0, 500), npt_rng_range(&g, 0, 500), npt_rng_range(&g, 4, 40),
                   npt_rng_range(&g, 4, 40)};
    npt_kalman_state st;
    assert_int_equal(npt_kalman_init(&s, z, &st), 0);
    int steps = (int)npt_rng_int(&g, 0, 5);
    for (int k = 0; k < steps; k++) {
      npt_kalman_predict(&s, &st);
      double m[4] = {z[0] + npt_rng_normal(&g), z[1] + npt_rng_normal(&g), z[2] + 0.2, z[3]};
      assert_int_equal(npt_kalman_update(&s, &st, m, NULL), 0);
    }
    npt_kalman_predict(&s, &st);
    double pm[4], pc[4][4], inv4[16], inv2[4], S2[4];
    npt_kalman_project(&s, &st, pm, pc);
    mat_inv(4, &pc[0][0], inv4);
    S2[0] = pc[0][0], S2[1] = pc[0][1], S2[2] = pc[1][0], S2[3] = pc[1][1];
    mat_inv(2, S2, inv2);
    npt_kalman_gate g4, g2;
    assert_int_equal(npt_kalman_gate_init(&s, &st, 0, &g4), 0);
    assert_int_equal(npt_kalman_gate_init(&s, &st, 1, &g2), 0);
    for (int c = 0; c < 4; c++) {
      double m[4], d[4];
      for (int k = 0; k < 4; k++) {
        m[k] = pm[k] + npt_rng_normal(&g) * sqrt(pc[k][k]) * 2;
        d[k] = m[k] - pm[k];
      }
      double want4 = 0, want2 = 0;
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          want4 += d[i] * inv4[i * 4 + j] * d[j];
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
          want2 += d[i] * inv2[i * 2 + j] * d[j];
      NPT_ASSERT_NEAR(npt_kalman_gate_distance(&g4, m), want4, 1e-9 * want4);
      NPT_ASSERT_NEAR(npt_kalman_gate_distance(&g2, m), want2, 1e-9 * want2);
    }
  }
  /* A measurement equal to the prediction is at distance 0; one standard deviation away on
   * the first axis, with the axes uncorrelated at init, at distance 1. */
  npt_kalman_state st;
  double z[4] = {100, 50, 10, 20};
  assert_int_equal(npt_kalman_init(&s, z, &st), 0);
  npt_kalman_gate g4;
  assert_int_equal(npt_kalman_gate_init(&s, &st, 0, &g4), 0);
  NPT_ASSERT_NEAR(npt_kalman_gate_distance(&g4, z), 0, 0);
  double pm[4], pc[4][4];
  npt_kalman_project(&s, &st, pm, pc);
  double m[4] = {100 + sqrt(pc[0][0]), 50, 10, 20};
  NPT_ASSERT_NEAR(npt_kalman_gate_distance(&g4, m), 1, 1e-12);
  assert_true(NPT_KALMAN_CHI2_4DOF > NPT_KALMAN_CHI2_2DOF);
}

/* A particle that does not move: the estimate converges to it and its velocity to zero. */
static void test_stationary_converges(void **state) {
  (void)state;
  npt_kalman_settings s = npt_kalman_settings_default();
  npt_kalman_state st;
  double first[4] = {95, 47, 11, 9}, z[4] = {100, 50, 12, 10};
  assert_int_equal(npt_kalman_init(&s, first, &st), 0);
  for (int t = 0; t < 300; t++) {
    npt_kalman_predict(&s, &st);
    assert_int_equal(npt_kalman_update(&s, &st, z, NULL), 0);
  }
  for (int k = 0; k < 4; k++) {
    NPT_ASSERT_NEAR(st.mean[k], z[k], 1e-6);
    NPT_ASSERT_NEAR(st.mean[4 + k], 0, 1e-6);
  }
}

/* A particle moving uniformly (and growing): a constant-velocity filter follows a ramp with no
 * steady-state error, so the velocity estimate converges to the true velocity. */
static void test_constant_velocity_converges(void **state) {
  (void)state;
  npt_kalman_settings s = npt_kalman_settings_default();
  npt_kalman_state st;
  const double v[4] = {1.5, -0.75, 0.01, 0.02};
  double z[4] = {200, 300, 20, 15};
  assert_int_equal(npt_kalman_init(&s, z, &st), 0);
  for (int t = 0; t < 400; t++) {
    for (int k = 0; k < 4; k++)
      z[k] += v[k];
    npt_kalman_predict(&s, &st);
    assert_int_equal(npt_kalman_update(&s, &st, z, NULL), 0);
  }
  for (int k = 0; k < 4; k++) {
    NPT_ASSERT_NEAR(st.mean[4 + k], v[k], 1e-6);
    NPT_ASSERT_NEAR(st.mean[k], z[k], 1e-6);
  }
  /* The prediction lands on the next position. */
  npt_kalman_predict(&s, &st);
  NPT_ASSERT_NEAR(st.mean[0], z[0] + v[0], 1e-6);
}

static void test_invalid(void **state) {
  (void)state;
  npt_kalman_settings s = npt_kalman_settings_default();
  npt_kalman_state st;
  double zero_w[4] = {1, 2, 0, 3}, nan_x[4] = {NAN, 2, 3, 3}, ok[4] = {1, 2, 3, 4};
  assert_int_equal(npt_kalman_init(&s, zero_w, &st), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "not positive");
  assert_int_equal(npt_kalman_init(&s, nan_x, &st), NPT_EINVAL);
  assert_int_equal(npt_kalman_init(&s, ok, &st), 0);
  npt_kalman_state before = st;
  double inf_m[4] = {1, INFINITY, 3, 4};
  assert_int_equal(npt_kalman_update(&s, &st, inf_m, NULL), NPT_EINVAL);
  assert_memory_equal(&st, &before, sizeof st);
  /* A covariance that is not positive definite is refused, the state kept. */
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++)
      st.cov[i][j] = -1;
  before = st;
  assert_int_equal(npt_kalman_update(&s, &st, ok, NULL), NPT_EINVAL);
  assert_memory_equal(&st, &before, sizeof st);
  npt_kalman_gate g;
  assert_int_equal(npt_kalman_gate_init(&s, &st, 1, &g), NPT_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_against_reference),
      cmocka_unit_test(test_predict_batch),
      cmocka_unit_test(test_update_with_gate),
      cmocka_unit_test(test_gating_distance),
      cmocka_unit_test(test_stationary_converges),
      cmocka_unit_test(test_constant_velocity_converges),
      cmocka_unit_test(test_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
