/* Constant-velocity Kalman filter (kalman.h).
 *
 * F = [I I; 0 I] and H = [I 0] in 4x4 blocks, so the products with them are block sums, written
 * out rather than multiplied; the only solve is with the 4x4 innovation covariance, through its
 * Cholesky factor. */
#include "track/kalman.h"

#include <math.h>
#include <string.h>

#include "common/error.h"

npt_kalman_settings npt_kalman_settings_default(void) {
  return (npt_kalman_settings){NPT_KALMAN_STD_WEIGHT_POSITION, NPT_KALMAN_STD_WEIGHT_VELOCITY};
}

int npt_kalman_init(const npt_kalman_settings *s, const double meas[4], npt_kalman_state *out) {
  for (int k = 0; k < 4; k++)
    if (!isfinite(meas[k]))
      return npt_error_set(NPT_EINVAL, "Kalman filter: measurement value %d is %g", k, meas[k]);
  if (!(meas[2] > 0 && meas[3] > 0))
    return npt_error_set(NPT_EINVAL, "Kalman filter: box size %g x %g is not positive", meas[2],
                         meas[3]);
  memset(out, 0, sizeof *out);
  const double w = meas[2], h = meas[3];
  const double wp = s->std_weight_position, wv = s->std_weight_velocity;
  const double std[8] = {2 * wp * w,  2 * wp * h,  2 * wp * w,  2 * wp * h,
                         10 * wv * w, 10 * wv * h, 10 * wv * w, 10 * wv * h};
  for (int k = 0; k < 4; k++)
    out->mean[k] = meas[k];
  for (int k = 0; k < 8; k++)
    out->cov[k][k] = std[k] * std[k];
  return 0;
}

void npt_kalman_predict(const npt_kalman_settings *s, npt_kalman_state *st) {
  const double w = st->mean[2], h = st->mean[3];
  const double wp = s->std_weight_position, wv = s->std_weight_velocity;
  const double q[8] = {wp * w, wp * h, wp * w, wp * h, wv * w, wv * h, wv * w, wv * h};
  for (int k = 0; k < 4; k++)
    st->mean[k] += st->mean[4 + k];
  /* With P = [A B; C D]: F P F^T = [A + B + C + D, B + D; C + D, D].  First the rows (F P),
   * then the columns (. F^T). */
  double(*P)[8] = st->cov;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++)
      P[i][j] += P[i + 4][j];
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 4; j++)
      P[i][j] += P[i][j + 4];
  for (int k = 0; k < 8; k++)
    P[k][k] += q[k] * q[k];
}

void npt_kalman_predict_batch(const npt_kalman_settings *s, npt_kalman_state *st, size_t n) {
  for (size_t t = 0; t < n; t++)
    npt_kalman_predict(s, &st[t]);
}

void npt_kalman_project(const npt_kalman_settings *s, const npt_kalman_state *st, double mean[4],
                        double cov[4][4]) {
  const double wp = s->std_weight_position;
  const double r[4] = {wp * st->mean[2], wp * st->mean[3], wp * st->mean[2], wp * st->mean[3]};
  for (int i = 0; i < 4; i++) {
    mean[i] = st->mean[i];
    for (int j = 0; j < 4; j++)
      cov[i][j] = st->cov[i][j];
    cov[i][i] += r[i] * r[i];
  }
}

/* Lower Cholesky factor of the symmetric 4 x 4 `a` (only its lower triangle is read); the upper
 * triangle of `l` is zeroed, inv_diag[j] = 1 / l[j][j] (the solves then multiply: a division costs
 * as much as the rest of a small solve).  Returns 0, or -1 when not positive definite. */
static int cholesky(const double a[4][4], double l[4][4], double inv_diag[4]) {
  const int n = 4;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      l[i][j] = 0;
  for (int j = 0; j < n; j++) {
    double d = a[j][j];
    for (int k = 0; k < j; k++)
      d -= l[j][k] * l[j][k];
    if (!(d > 0))
      return -1;
    l[j][j] = sqrt(d);
    inv_diag[j] = 1 / l[j][j];
    for (int i = j + 1; i < n; i++) {
      double x = a[i][j];
      for (int k = 0; k < j; k++)
        x -= l[i][k] * l[j][k];
      l[i][j] = x * inv_diag[j];
    }
  }
  return 0;
}

int npt_kalman_update(const npt_kalman_settings *s, npt_kalman_state *st, const double meas[4],
                      const npt_kalman_gate *gate) {
  for (int k = 0; k < 4; k++)
    if (!isfinite(meas[k]))
      return npt_error_set(NPT_EINVAL, "Kalman filter: measurement value %d is %g", k, meas[k]);
  npt_kalman_gate own;
  if (!gate) {
    NPT_TRY(npt_kalman_gate_init(s, st, 0, &own));
    gate = &own;
  }
  const double(*L)[4] = gate->chol;
  const double *pm = gate->mean, *inv_d = gate->inv_diag;
  /* K = P H^T S^-1, i.e. X = K^T solves S X = H P (S symmetric), the right-hand side being
   * P's first four rows: forward then backward substitution, column by column. */
  double X[4][8];
  const double l10 = L[1][0], l20 = L[2][0], l21 = L[2][1], l30 = L[3][0], l31 = L[3][1],
               l32 = L[3][2];
  for (int c = 0; c < 8; c++) {
    const double y0 = st->cov[0][c] * inv_d[0];
    const double y1 = (st->cov[1][c] - l10 * y0) * inv_d[1];
    const double y2 = (st->cov[2][c] - l20 * y0 - l21 * y1) * inv_d[2];
    const double y3 = (st->cov[3][c] - l30 * y0 - l31 * y1 - l32 * y2) * inv_d[3];
    const double x3 = y3 * inv_d[3];
    const double x2 = (y2 - l32 * x3) * inv_d[2];
    const double x1 = (y1 - l21 * x2 - l31 * x3) * inv_d[1];
    const double x0 = (y0 - l10 * x1 - l20 * x2 - l30 * x3) * inv_d[0];
    X[0][c] = x0;
    X[1][c] = x1;
    X[2][c] = x2;
    X[3][c] = x3;
  }
  for (int j = 0; j < 4; j++) {
    const double y = meas[j] - pm[j];
    for (int i = 0; i < 8; i++)
      st->mean[i] += X[j][i] * y;
  }
  /* P -= K S K^T = K (H P) = X^T (H P), on the upper triangle, copied to the lower: the result
   * is symmetric by construction, so rounding cannot build up an asymmetry over thousands of
   * frames. */
  double HP[4][8];
  memcpy(HP, st->cov, sizeof HP);
  for (int i = 0; i < 8; i++)
    for (int c = i; c < 8; c++) {
      st->cov[i][c] -=
          X[0][i] * HP[0][c] + X[1][i] * HP[1][c] + X[2][i] * HP[2][c] + X[3][i] * HP[3][c];
      st->cov[c][i] = st->cov[i][c];
    }
  return 0;
}

int npt_kalman_gate_init(const npt_kalman_settings *s, const npt_kalman_state *st,
                         int only_position, npt_kalman_gate *g) {
  double S[4][4];
  npt_kalman_project(s, st, g->mean, S);
  g->dims = only_position ? 2 : 4;
  /* The full factor either way: its leading 2 x 2 block is the factor of the position block,
   * and npt_kalman_update needs all of it. */
  if (cholesky(S, g->chol, g->inv_diag) < 0)
    return npt_error_set(NPT_EINVAL, "Kalman filter: innovation covariance not positive definite");
  return 0;
}

double npt_kalman_gate_distance(const npt_kalman_gate *g, const double meas[4]) {
  /* d^T S^-1 d = |L^-1 d|^2: one forward substitution. */
  double z[4], sum = 0;
  for (int i = 0; i < g->dims; i++) {
    double x = meas[i] - g->mean[i];
    for (int k = 0; k < i; k++)
      x -= g->chol[i][k] * z[k];
    z[i] = x * g->inv_diag[i];
    sum += z[i] * z[i];
  }
  return sum;
}
