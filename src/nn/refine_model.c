/* Box refinement's model of one particle and its two evaluations (refine_internal.h).
 *
 * Model of a pixel at (x, y), grey level v:  b0 + bx gx + by gy + amp q^p  with  q = 1 - u^2 - w^2
 * inside the ellipse (q > 0) and 0 outside, (u, w) the pixel's position in the ellipse's axes
 * divided by the semi-axes a = e^la, b = e^lb, p = e^lp.
 *
 * The fast evaluation is written with GCC/Clang vector extensions, 4 floats wide (SSE2 on any
 * x86-64, NEON on arm64): the loops are reductions, which the compiler does not vectorise itself
 * without -ffast-math (that would reorder sums anywhere in the file, and vary with the flags),
 * and the profile needs a log and a power, which libm offers one at a time.  Sums run in float
 * over blocks of BLOCK pixels and in double across blocks, in a fixed order: the result depends
 * on the window alone (not on threads, not on the other detections). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/refine_internal.h"

typedef float vf __attribute__((vector_size(16)));
typedef int32_t vi __attribute__((vector_size(16)));
typedef double vd __attribute__((vector_size(16)));
typedef int64_t vl __attribute__((vector_size(16)));
enum { VL = 4 };       /* lanes */
enum { BLOCK = 256 };  /* pixels summed in float before the sum goes to double */
#define OUTSIDE 1.0e6f /* the padding's position: outside any ellipse the fit can reach */
#define RIM     1e-3f  /* d q^p / d q = p q^(p-1) is capped at q = RIM (the rim's singularity) */

static inline vf ld(const float *p) {
  vf x;
  memcpy(&x, p, sizeof x);
  return x;
}

static inline void st(float *p, vf x) {
  memcpy(p, &x, sizeof x);
}

static inline vf splat(double s) {
  float f = (float)s;
  return (vf){f, f, f, f};
}

/* m ? a : b, lane by lane (m: all bits set or none). */
static inline vf sel(vi m, vf a, vf b) {
  return (vf)(((vi)a & m) | ((vi)b & ~m));
}

static inline double hsum(vf x) {
  return (double)x[0] + (double)x[1] + (double)x[2] + (double)x[3];
}

/* Natural log of x in [2^-24, 1] (q > 0 in float is at least 2^-24; the padding holds 1):
 * x = m 2^k with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(t), t = (m - 1) / (m + 1), |t| <=
 * 0.172, by its series to t^9 (truncation < 1e-9).  Relative error ~1e-7. */
static inline vf vlog(vf x) {
  vi bits = (vi)x;
  vi k = ((bits >> 23) & 0xff) - 127;
  vf m = (vf)((bits & 0x7fffff) | 0x3f800000); /* [1, 2) */
  vi big = m > splat(1.41421356);
  m = sel(big, m * 0.5f, m);
  k = k - big; /* big is -1 where set */
  vf t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
  vf s = 1.0f + t2 * (1.0f / 3 + t2 * (1.0f / 5 + t2 * (1.0f / 7 + t2 * (1.0f / 9))));
  return __builtin_convertvector(k, vf) * 0.693147181f + 2.0f * t * s;
}

/* e^y for y in [-87, 0] (y = p log q >= 3 log 2^-24 here): y = k log 2 + r, |r| <= log(2)/2,
 * k by rounding (the 1.5 * 2^23 trick: exact in round-to-nearest), log 2 split in two so that
 * k log 2 is exact, e^r by its series to r^7 (truncation < 6e-9), 2^k put in the exponent. */
static inline vf vexp(vf y) {
  y = sel(y > splat(-87.0), y, splat(-87.0));
  vf k = (y * 1.44269504f + 12582912.0f) - 12582912.0f;
  vf r = (y - k * 0.693145752f) - k * 1.42860677e-6f;
  vf s = 1.0f +
         r * (1.0f +
              r * (1.0f / 2 +
                   r * (1.0f / 6 + r * (1.0f / 24 +
                                        r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  vi scale = (__builtin_convertvector(k, vi) + 127) << 23;
  return s * (vf)scale;
}

/* The first index in [lo, hi) of the ascending v whose value is >= x (hi when none). */
static int lower_bound(const float *v, int lo, int hi, double x) {
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (v[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int npt__refine_padded(int n) {
  return (n + VL - 1) / VL * VL;
}

void npt__refine_window_ready(npt__refine_window *win) {
  for (int i = win->n; i < npt__refine_padded(win->n); i++)
    win->gx[i] = win->gy[i] = OUTSIDE, win->v[i] = 0;
  win->nrow = 0;
  for (int i = 0; i < win->n; i++)
    if (i == 0 || win->gy[i] != win->gy[i - 1])
      win->row_gy[win->nrow] = win->gy[i], win->row[win->nrow++] = i;
  win->row[win->nrow] = win->n;
  double *s = win->plane;
  memset(win->plane, 0, sizeof win->plane);
  for (int i = 0; i < win->n; i++) {
    double x = win->gx[i], y = win->gy[i];
    s[0] += 1, s[1] += x, s[2] += y, s[3] += x * x, s[4] += x * y, s[5] += y * y;
  }
}

void npt__refine_state_init(npt__refine_state *st, float *buf, int n) {
  size_t n4 = (size_t)npt__refine_padded(n);
  float **arr[] = {&st->r, &st->u, &st->w, &st->q, &st->lq, &st->prof, &st->gx, &st->gy, &st->ri};
  for (size_t k = 0; k < sizeof arr / sizeof *arr; k++)
    *arr[k] = buf + k * n4;
  st->idx = (int *)(buf + 9 * n4);
  st->m = 0;
}

double npt__refine_eval_simple(const double *p, const npt__refine_window *win, double *jtj,
                               double *jtr) {
  double a = exp(p[P_LA]), b = exp(p[P_LB]), c = cos(p[P_TH]), sn = sin(p[P_TH]);
  double e = exp(p[P_LP]), amp = p[P_AMP], ba = b / a - a / b, cost = 0;
  double ccx = p[P_CX] - win->cx0, ccy = p[P_CY] - win->cy0, b0 = p[P_B0] - win->vref;
  if (jtj) {
    memset(jtj, 0, sizeof(double) * NP * NP);
    memset(jtr, 0, sizeof(double) * NP);
  }
  for (int i = 0; i < win->n; i++) {
    double gx = win->gx[i], gy = win->gy[i], dx = gx - ccx, dy = gy - ccy;
    double u = (dx * c + dy * sn) / a, v = (-dx * sn + dy * c) / b, q = 1 - u * u - v * v;
    double prof = 0, lq = 0;
    if (q > 0) {
      lq = log(q);
      prof = exp(e * lq);
    }
    double r = b0 + p[P_BX] * gx + p[P_BY] * gy + amp * prof - win->v[i];
    cost += r * r;
    if (!jtj)
      continue;
    double jac[NP];
    /* d model / d rho^2 = -amp * e * q^(e-1); the rim's singularity is capped */
    double g = q > 0 ? -amp * e * prof / (q > RIM ? q : RIM) : 0;
    jac[P_CX] = g * (2 * u * (-c / a) + 2 * v * (sn / b));
    jac[P_CY] = g * (2 * u * (-sn / a) + 2 * v * (-c / b));
    jac[P_LA] = g * (-2 * u * u);
    jac[P_LB] = g * (-2 * v * v);
    jac[P_TH] = g * (2 * u * v * ba);
    jac[P_AMP] = prof;
    jac[P_B0] = 1;
    jac[P_BX] = gx;
    jac[P_BY] = gy;
    jac[P_LP] = amp * prof * lq * e;
    for (int k = 0; k < NP; k++) {
      jtr[k] += jac[k] * r;
      for (int l = k; l < NP; l++)
        jtj[k * NP + l] += jac[k] * jac[l];
    }
  }
  return cost;
}

double npt__refine_eval(const double *p, const npt__refine_window *win, npt__refine_state *s) {
  double a = exp(p[P_LA]), b = exp(p[P_LB]), e = exp(p[P_LP]);
  double c = cos(p[P_TH]), sn = sin(p[P_TH]);
  /* The ellipse's coordinates in double: at the rim q = 1 - u^2 - w^2 cancels, and the profile
   * (q^p, p down to 0.05) and its derivative (q^(p-1)) need q to its own relative precision. */
  const vd cd = {c, c}, sd = {sn, sn}, iad = {1 / a, 1 / a}, ibd = {1 / b, 1 / b},
           ccx = {p[P_CX] - win->cx0, p[P_CX] - win->cx0},
           ccy = {p[P_CY] - win->cy0, p[P_CY] - win->cy0}, zero = {0, 0};
  const vf b0 = splat(p[P_B0] - win->vref), bx = splat(p[P_BX]), by = splat(p[P_BY]);
  int n4 = npt__refine_padded(win->n), m = 0;
  /* every pixel: the background's residual */
  for (int i = 0; i < n4; i += VL) {
    vf x = ld(win->gx + i), y = ld(win->gy + i);
    st(s->r + i, b0 + bx * x + by * y - ld(win->v + i));
  }
  /* the pixels inside the ellipse gathered, from the rows and columns of its bounding box (with a
   * margin: the test q > 0 decides, the box only spares the pixels far outside) */
  double hw = sqrt(a * a * c * c + b * b * sn * sn) + 1e-3;
  double hh = sqrt(a * a * sn * sn + b * b * c * c) + 1e-3;
  int k0 = lower_bound(win->row_gy, 0, win->nrow, ccy[0] - hh);
  for (int k = k0; k < win->nrow && win->row_gy[k] <= ccy[0] + hh; k++) {
    int j0 = lower_bound(win->gx, win->row[k], win->row[k + 1], ccx[0] - hw);
    int j1 = lower_bound(win->gx, j0, win->row[k + 1], ccx[0] + hw);
    for (int i = j0; i < j1; i += 2) {
      int two = i + 1 < j1;
      vd x = {win->gx[i], win->gx[i + two]}, y = {win->gy[i], win->gy[i + two]};
      vd dx = x - ccx, dy = y - ccy;
      vd u = (dx * cd + dy * sd) * iad, w = (dy * cd - dx * sd) * ibd, q = 1.0 - u * u - w * w;
      vl in = q > zero;
      in[1] &= -(int64_t)two;
      if (in[0] | in[1])
        for (int l = 0; l < 2; l++) { /* branch-free: an outside lane is overwritten next */
          s->idx[m] = i + l, s->u[m] = (float)u[l], s->w[m] = (float)w[l], s->q[m] = (float)q[l];
          m -= (int)in[l];
        }
    }
  }
  for (int i = win->n; i < n4; i++)
    s->r[i] = 0;
  int m4 = npt__refine_padded(m);
  for (int j = m; j < m4; j++)
    s->u[j] = s->w[j] = 0, s->q[j] = 1;
  /* the pixels inside: the profile q^p = e^(p log q) */
  const vf ve = splat(e), fzero = {0};
  for (int j = 0; j < m4; j += VL) {
    vf lq = vlog(ld(s->q + j));
    st(s->lq + j, lq);
    st(s->prof + j, vexp(ve * lq));
  }
  for (int j = m; j < m4; j++) /* the padding takes no part in the Jacobian */
    s->prof[j] = s->lq[j] = 0;
  float amp = (float)p[P_AMP];
  for (int j = 0; j < m; j++)
    s->r[s->idx[j]] += amp * s->prof[j];
  s->m = m;
  double cost = 0;
  for (int i0 = 0; i0 < n4; i0 += BLOCK) {
    vf acc = fzero;
    for (int i = i0; i < i0 + BLOCK && i < n4; i += VL) {
      vf r = ld(s->r + i);
      acc += r * r;
    }
    cost += hsum(acc);
  }
  return cost;
}

/* Sets element (k, l) of the upper triangle of a symmetric NP x NP matrix. */
static void put(double *jtj, int k, int l, double v) {
  if (k > l) {
    int t = k;
    k = l, l = t;
  }
  jtj[k * NP + l] = v;
}

enum { NG = 7, NX = 4 }; /* the particle's parameters; 1, gx, gy and r beside them */

void npt__refine_jacobian(const double *p, const npt__refine_window *win, npt__refine_state *s,
                          double *jtj, double *jtr) {
  static const int G[NG] = {P_CX, P_CY, P_LA, P_LB, P_TH, P_AMP, P_LP};
  double a = exp(p[P_LA]), b = exp(p[P_LB]), c = cos(p[P_TH]), sn = sin(p[P_TH]);
  double e = exp(p[P_LP]), amp = p[P_AMP];
  const vf cxa = splat(-2 * c / a), sxb = splat(2 * sn / b), sxa = splat(-2 * sn / a),
           cxb = splat(-2 * c / b), ba2 = splat(2 * (b / a - a / b)), mae = splat(-amp * e),
           ae = splat(amp * e), rim = splat(RIM), one = splat(1), zero = {0};
  int n4 = npt__refine_padded(win->n), m = s->m, m4 = npt__refine_padded(m);
  memset(jtj, 0, sizeof(double) * NP * NP);
  /* the background plane's rows: J = (1, gx, gy) at every pixel */
  double sr[3] = {0};
  for (int i0 = 0; i0 < n4; i0 += BLOCK) {
    vf a0 = zero, a1 = zero, a2 = zero;
    for (int i = i0; i < i0 + BLOCK && i < n4; i += VL) {
      vf r = ld(s->r + i);
      a0 += r, a1 += r * ld(win->gx + i), a2 += r * ld(win->gy + i);
    }
    sr[0] += hsum(a0), sr[1] += hsum(a1), sr[2] += hsum(a2);
  }
  const double *pl = win->plane;
  put(jtj, P_B0, P_B0, pl[0]), put(jtj, P_B0, P_BX, pl[1]), put(jtj, P_B0, P_BY, pl[2]);
  put(jtj, P_BX, P_BX, pl[3]), put(jtj, P_BX, P_BY, pl[4]), put(jtj, P_BY, P_BY, pl[5]);
  jtr[P_B0] = sr[0], jtr[P_BX] = sr[1], jtr[P_BY] = sr[2];
  /* the particle's rows: non-zero inside the ellipse only */
  for (int j = 0; j < m; j++) {
    int i = s->idx[j];
    s->gx[j] = win->gx[i], s->gy[j] = win->gy[i], s->ri[j] = s->r[i];
  }
  for (int j = m; j < m4; j++)
    s->gx[j] = s->gy[j] = s->ri[j] = 0;
  /* The columns of a block of pixels are written out, then each particle row k is multiplied
   * with the columns l >= k in one pass, its 11 - k sums in registers (the loops unrolled). */
  float col[NG + NX][BLOCK];
  double sum[NG][NG + NX] = {{0}};
  for (int j0 = 0; j0 < m4; j0 += BLOCK) {
    int nb = m4 - j0 < BLOCK ? m4 - j0 : BLOCK;
    for (int j = 0; j < nb; j += VL) {
      vf u = ld(s->u + j0 + j), w = ld(s->w + j0 + j), q = ld(s->q + j0 + j);
      vf pr = ld(s->prof + j0 + j), g = mae * pr / sel(q > rim, q, rim);
      st(col[0] + j, g * (u * cxa + w * sxb));
      st(col[1] + j, g * (u * sxa + w * cxb));
      st(col[2] + j, -2.0f * g * u * u);
      st(col[3] + j, -2.0f * g * w * w);
      st(col[4] + j, g * u * w * ba2);
      st(col[5] + j, pr);
      st(col[6] + j, ae * pr * ld(s->lq + j0 + j));
      st(col[7] + j, one);
      st(col[8] + j, ld(s->gx + j0 + j));
      st(col[9] + j, ld(s->gy + j0 + j));
      st(col[10] + j, ld(s->ri + j0 + j));
    }
#pragma GCC unroll 7
    for (int k = 0; k < NG; k++) {
      vf acc[NG + NX];
#pragma GCC unroll 11
      for (int l = 0; l < NG + NX; l++)
        acc[l] = zero;
      for (int j = 0; j < nb; j += VL) {
        vf jk = ld(col[k] + j);
#pragma GCC unroll 11
        for (int l = k; l < NG + NX; l++)
          acc[l] += jk * ld(col[l] + j);
      }
#pragma GCC unroll 11
      for (int l = k; l < NG + NX; l++)
        sum[k][l] += hsum(acc[l]);
    }
  }
  for (int k = 0; k < NG; k++) {
    for (int l = k; l < NG; l++)
      put(jtj, G[k], G[l], sum[k][l]);
    put(jtj, G[k], P_B0, sum[k][NG]);
    put(jtj, G[k], P_BX, sum[k][NG + 1]);
    put(jtj, G[k], P_BY, sum[k][NG + 2]);
    jtr[G[k]] = sum[k][NG + 3];
  }
}
