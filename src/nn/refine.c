/* Box refinement by fitting an elliptical particle to the frame's pixels (refine.h). */
#include "nn/refine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/refine_internal.h"

#define MAX_ITER     40
#define WINDOW       0.75 /* the fit's window reaches this many box sides from the centre, */
#define MARGIN       3.0  /* plus this many px */
#define MAX_SIDE     40.0 /* windows are subsampled so that a box side spans at most ~this many px */
#define RING         1.2  /* background pixels lie this far out, in the box's normalised radius */
#define CORE         0.5  /* the initial amplitude comes from pixels within this radius */
#define MAX_RATIO    1.5  /* a fitted side more than this factor from the network's is refused */
#define MAX_EXPONENT 0.7  /* a profile more peaked than this is no solid particle: refused */
#define STEP_PX      0.01  /* the fit stops when a step moves the centre by less than this (px) */
#define STEP_LOG     0.001 /* and the semi-axes by less than this factor (log) */

typedef struct scratch {
  float *gx, *gy, *v, *tmp; /* the window's unmasked pixels (npt__refine_window); median buffer */
  float *state[2];          /* two npt__refine_state: the current parameters' and a trial's */
  unsigned char *mask;      /* the window's pixels inside a neighbour's box */
  int *row;                 /* the window's rows (npt__refine_window) */
  float *row_gy;
  size_t cap; /* pixels */
} scratch;

static void scratch_free(scratch *s) {
  free(s->gx), free(s->gy), free(s->v), free(s->tmp), free(s->state[0]), free(s->state[1]);
  free(s->mask), free(s->row), free(s->row_gy);
}

static int scratch_reserve(scratch *s, size_t n) {
  if (n <= s->cap)
    return 0;
  size_t cap = n > 2 * s->cap ? n : 2 * s->cap;
  if (cap > (size_t)1 << 28)
    return npt_error_set(NPT_ENOMEM, "refine: a window of %zu px is too large", n);
  size_t n4 = (size_t)npt__refine_padded((int)cap);
  scratch t = {0};
  t.gx = malloc(sizeof(float) * n4), t.gy = malloc(sizeof(float) * n4);
  t.v = malloc(sizeof(float) * n4), t.tmp = malloc(sizeof(float) * n4);
  t.state[0] = malloc(sizeof(float) * 10 * n4), t.state[1] = malloc(sizeof(float) * 10 * n4);
  t.mask = malloc(cap), t.cap = cap;
  t.row = malloc(sizeof(int) * (cap + 1)), t.row_gy = malloc(sizeof(float) * cap);
  if (!t.gx || !t.gy || !t.v || !t.tmp || !t.state[0] || !t.state[1] || !t.mask || !t.row ||
      !t.row_gy) {
    scratch_free(&t);
    return npt_error_set(NPT_ENOMEM, "refine: out of memory for a window of %zu px", n);
  }
  scratch_free(s);
  *s = t;
  return 0;
}

/* The k-th smallest of v[0..n) (v reordered: v[0..k) <= v[k] <= v[k+1..n)).  Quickselect with
 * the middle element as pivot: deterministic, and the value is the sorted array's v[k]. */
static float select_kth(float *v, int n, int k) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    float pivot = v[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot)
        i++;
      while (v[j] > pivot)
        j--;
      if (i <= j) {
        float t = v[i];
        v[i] = v[j], v[j] = t;
        i++, j--;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      break;
  }
  return v[k];
}

static double median(float *v, int n) {
  float hi = select_kth(v, n, n / 2);
  if (n % 2)
    return hi;
  float lo = v[0];
  for (int k = 1; k < n / 2; k++)
    lo = v[k] > lo ? v[k] : lo;
  return 0.5 * ((double)lo + hi);
}

/* Solves (J^T J + lambda diag) d = -J^T r by Cholesky; returns 0, or -1 when not positive. */
static int solve(const double *jtj, const double *jtr, double lambda, double *d) {
  double m[NP * NP], y[NP];
  for (int k = 0; k < NP; k++)
    for (int l = k; l < NP; l++)
      m[k * NP + l] = m[l * NP + k] = jtj[k * NP + l];
  for (int k = 0; k < NP; k++)
    m[k * NP + k] += lambda * m[k * NP + k] + 1e-12;
  for (int k = 0; k < NP; k++) { /* m = L L^T, L in the lower triangle */
    for (int l = 0; l <= k; l++) {
      double sum = m[k * NP + l];
      for (int j = 0; j < l; j++)
        sum -= m[k * NP + j] * m[l * NP + j];
      if (l == k) {
        if (!(sum > 0))
          return -1;
        m[k * NP + k] = sqrt(sum);
      } else {
        m[k * NP + l] = sum / m[l * NP + l];
      }
    }
  }
  for (int k = 0; k < NP; k++) {
    double sum = -jtr[k];
    for (int j = 0; j < k; j++)
      sum -= m[k * NP + j] * y[j];
    y[k] = sum / m[k * NP + k];
  }
  for (int k = NP - 1; k >= 0; k--) {
    double sum = y[k];
    for (int j = k + 1; j < NP; j++)
      sum -= m[j * NP + k] * d[j];
    d[k] = sum / m[k * NP + k];
  }
  return 0;
}

static void clamp_params(double *p, const double *lo, const double *hi) {
  for (int k = 0; k < NP; k++)
    p[k] = p[k] < lo[k] ? lo[k] : p[k] > hi[k] ? hi[k] : p[k];
}

/* Levenberg-Marquardt from p; returns the final cost (p updated).  The evaluation at an
 * accepted step leaves what the next iteration's Jacobian needs (npt__refine_eval's state), so
 * the profile is computed once per trial and never again for the Jacobian. */
static double fit(double *p, const npt__refine_window *win, scratch *s, const double *lo,
                  const double *hi) {
  double jtj[NP * NP], jtr[NP], d[NP], q[NP], lambda = 1e-3;
  npt__refine_state st[2];
  npt__refine_state_init(&st[0], s->state[0], win->n);
  npt__refine_state_init(&st[1], s->state[1], win->n);
  int cur = 0;
  double cost = npt__refine_eval(p, win, &st[cur]);
  npt__refine_jacobian(p, win, &st[cur], jtj, jtr);
  for (int it = 0; it < MAX_ITER; it++) {
    int improved = 0;
    while (lambda < 1e10) {
      if (solve(jtj, jtr, lambda, d) == 0) {
        for (int k = 0; k < NP; k++)
          q[k] = p[k] + d[k];
        clamp_params(q, lo, hi);
        double c2 = npt__refine_eval(q, win, &st[1 - cur]);
        if (c2 < cost) {
          memcpy(p, q, sizeof q);
          cur = 1 - cur;
          /* done when the cost stops falling or the step no longer moves the box: the centre
           * by less than STEP_PX, the semi-axes by less than STEP_LOG (relative) */
          improved =
              cost - c2 > 1e-7 * cost && (fabs(d[P_CX]) >= STEP_PX || fabs(d[P_CY]) >= STEP_PX ||
                                          fabs(d[P_LA]) >= STEP_LOG || fabs(d[P_LB]) >= STEP_LOG)
                  ? 1
                  : 2;
          cost = c2;
          lambda = lambda * 0.3 > 1e-9 ? lambda * 0.3 : 1e-9;
          break;
        }
      }
      lambda *= 5;
    }
    if (improved != 1)
      break;
    npt__refine_jacobian(p, win, &st[cur], jtj, jtr);
  }
  return cost;
}

static inline double pixel(const void *f, int bits, int w, int y, int x) {
  size_t i = (size_t)y * (size_t)w + (size_t)x;
  return bits == 8 ? ((const uint8_t *)f)[i] : ((const uint16_t *)f)[i];
}

/* Marks in mask (nx x ny samples, x = x0 + step * ix, y likewise) the samples in the inner 80 %
 * of a masking neighbour's box.  The box test is separable: columns and rows apart. */
static void mask_neighbours(const npt_detection *det, const int *nb, int n_nb, int x0, int y0,
                            int step, int nx, int ny, unsigned char *mask) {
  memset(mask, 0, (size_t)nx * (size_t)ny);
  for (int k = 0; k < n_nb; k++) {
    const npt_detection *o = det + nb[k];
    int ix0 = nx, ix1 = -1, iy0 = ny, iy1 = -1;
    for (int ix = 0; ix < nx; ix++) {
      double x = x0 + step * ix;
      if (x > o->x + 0.1 * o->w && x < o->x + 0.9 * o->w)
        ix0 = ix < ix0 ? ix : ix0, ix1 = ix;
    }
    for (int iy = 0; iy < ny; iy++) {
      double y = y0 + step * iy;
      if (y > o->y + 0.1 * o->h && y < o->y + 0.9 * o->h)
        iy0 = iy < iy0 ? iy : iy0, iy1 = iy;
    }
    for (int iy = iy0; iy <= iy1; iy++)
      memset(mask + (size_t)iy * nx + ix0, 1, ix1 >= ix0 ? (size_t)(ix1 - ix0 + 1) : 0);
  }
}

/* The detections that mask their neighbours' windows (score >= neighbour_score), sorted by the
 * left edge of their inner box, so that a window finds them by a binary search. */
typedef struct nb_entry {
  double xl; /* the left edge of the inner box */
  int64_t j; /* the detection */
} nb_entry;

typedef struct nb_index {
  nb_entry *e; /* m entries, by left inner edge, then detection */
  int64_t m;
  double wmax; /* the widest inner box */
} nb_index;

static int cmp_entry(const void *a, const void *b) {
  const nb_entry *x = a, *y = b;
  return x->xl < y->xl ? -1 : x->xl > y->xl ? 1 : (x->j > y->j) - (x->j < y->j);
}

static int nb_index_build(const npt_detection *det, int64_t n, float min_score, nb_index *x) {
  x->e = malloc(sizeof *x->e * (size_t)(n ? n : 1));
  if (!x->e)
    return npt_error_set(NPT_ENOMEM, "refine: out of memory");
  x->m = 0, x->wmax = 0;
  for (int64_t j = 0; j < n; j++)
    if (det[j].score >= min_score) {
      x->e[x->m++] = (nb_entry){det[j].x + 0.1 * det[j].w, j};
      x->wmax = 0.8 * det[j].w > x->wmax ? 0.8 * det[j].w : x->wmax;
    }
  qsort(x->e, (size_t)x->m, sizeof *x->e, cmp_entry);
  return 0;
}

/* One detection: 1 and its refined box in *out when the fit is accepted, else 0. */
static int refine_one(const void *frame, int bits, int h, int w, const npt_detection *det,
                      const nb_index *nbi, int64_t i, scratch *s, int *nb, npt_detection *out) {
  const npt_detection *d = det + i;
  double cx0 = d->x + 0.5 * d->w, cy0 = d->y + 0.5 * d->h;
  double side = d->w > d->h ? d->w : d->h, reach = WINDOW * side + MARGIN;
  int x0 = (int)floor(cx0 - reach), x1 = (int)ceil(cx0 + reach);
  int y0 = (int)floor(cy0 - reach), y1 = (int)ceil(cy0 + reach);
  x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
  x1 = x1 > w - 1 ? w - 1 : x1, y1 = y1 > h - 1 ? h - 1 : y1;
  if (x1 - x0 < 3 || y1 - y0 < 3)
    return 0;
  int step = side > MAX_SIDE ? (int)lround(side / MAX_SIDE) : 1;
  /* neighbours whose inner box reaches into the window, other than duplicates of this one */
  int n_nb = 0;
  int64_t first = 0, last = nbi->m; /* the first left inner edge >= x0 - wmax */
  while (first < last) {
    int64_t mid = first + (last - first) / 2;
    if (nbi->e[mid].xl < x0 - nbi->wmax)
      first = mid + 1;
    else
      last = mid;
  }
  for (int64_t k = first; k < nbi->m && nbi->e[k].xl <= x1; k++) {
    int64_t j = nbi->e[k].j;
    const npt_detection *o = det + j;
    if (j == i || o->x + 0.9 * o->w < x0 || o->x + 0.1 * o->w > x1 || o->y + 0.9 * o->h < y0 ||
        o->y + 0.1 * o->h > y1)
      continue;
    double ux = (o->x + 0.5 * o->w - cx0) / (0.5 * d->w),
           uy = (o->y + 0.5 * o->h - cy0) / (0.5 * d->h);
    if (ux * ux + uy * uy < 1) /* its centre inside this box: the same particle, not a neighbour */
      continue;
    nb[n_nb++] = (int)j;
  }
  int nx = (x1 - x0) / step + 1, ny = (y1 - y0) / step + 1;
  if (scratch_reserve(s, (size_t)nx * (size_t)ny) < 0)
    return -1;
  mask_neighbours(det, nb, n_nb, x0, y0, step, nx, ny, s->mask);
  int np = 0, nring = 0;
  for (int iy = 0; iy < ny; iy++)
    for (int ix = 0; ix < nx; ix++) {
      if (s->mask[(size_t)iy * nx + ix])
        continue;
      int x = x0 + step * ix, y = y0 + step * iy;
      s->gx[np] = (float)(x - cx0), s->gy[np] = (float)(y - cy0);
      s->v[np] = (float)pixel(frame, bits, w, y, x);
      double ux = (x - cx0) / (0.5 * d->w), uy = (y - cy0) / (0.5 * d->h);
      if (ux * ux + uy * uy > RING * RING)
        s->tmp[nring++] = s->v[np];
      np++;
    }
  if (np < 2 * NP)
    return 0;
  double bg;
  if (nring >= 8) {
    bg = median(s->tmp, nring);
  } else {
    memcpy(s->tmp, s->v, sizeof(float) * (size_t)np);
    bg = median(s->tmp, np);
  }
  int ncore = 0;
  for (int k = 0; k < np; k++) {
    double ux = s->gx[k] / (0.5 * d->w), uy = s->gy[k] / (0.5 * d->h);
    if (ux * ux + uy * uy < CORE * CORE)
      s->tmp[ncore++] = s->v[k];
  }
  long px = lround(cx0), py = lround(cy0); /* the centre pixel, inside the frame */
  px = px < 0 ? 0 : px >= w ? w - 1 : px, py = py < 0 ? 0 : py >= h ? h - 1 : py;
  double amp0 = (ncore ? median(s->tmp, ncore) : pixel(frame, bits, w, (int)py, (int)px)) - bg;
  if (amp0 == 0)
    return 0;
  double a0 = 0.5 * d->w > 0.5 ? 0.5 * d->w : 0.5, b0 = 0.5 * d->h > 0.5 ? 0.5 * d->h : 0.5;
  double p[NP] = {cx0, cy0, log(a0), log(b0), 0, amp0, bg, 0, 0, log(0.5)};
  double big = 1e30;
  double lo[NP] = {x0, y0, log(a0 / 4), log(b0 / 4), -big, -big, -big, -big, -big, log(0.05)};
  double hi[NP] = {x1, y1, log(a0 * 4), log(b0 * 4), big, big, big, big, big, log(3.0)};
  /* grey levels relative to bg (exact in float: integers and halves below 2^17) */
  for (int k = 0; k < np; k++)
    s->v[k] -= (float)bg;
  npt__refine_window win = {.gx = s->gx,
                            .gy = s->gy,
                            .v = s->v,
                            .n = np,
                            .cx0 = cx0,
                            .cy0 = cy0,
                            .vref = bg,
                            .row = s->row,
                            .row_gy = s->row_gy};
  npt__refine_window_ready(&win);
  fit(p, &win, s, lo, hi);
  double a = exp(p[P_LA]), b = exp(p[P_LB]), c = cos(p[P_TH]), sn = sin(p[P_TH]);
  double fw = 2 * sqrt(a * a * c * c + b * b * sn * sn),
         fh = 2 * sqrt(a * a * sn * sn + b * b * c * c);
  double shift = hypot(p[P_CX] - cx0, p[P_CY] - cy0);
  int ok = isfinite(fw) && isfinite(fh) && isfinite(shift) && (p[P_AMP] > 0) == (amp0 > 0) &&
           fw < MAX_RATIO * d->w && fw * MAX_RATIO > d->w && fh < MAX_RATIO * d->h &&
           fh * MAX_RATIO > d->h && shift <= 0.25 * side + 0.5 && exp(p[P_LP]) <= MAX_EXPONENT;
  if (!ok)
    return 0;
  *out = *d;
  out->x = (float)(p[P_CX] - 0.5 * fw), out->y = (float)(p[P_CY] - 0.5 * fh);
  out->w = (float)fw, out->h = (float)fh;
  return 1;
}

int npt_refine_frame(const void *frame, int bit_depth, int h, int w, npt_detection *det, int64_t n,
                     const npt_refine_params *p, npt_refine_stats *stats) {
  if (!frame || (n > 0 && !det) || !p || h <= 0 || w <= 0 || n < 0 ||
      (bit_depth != 8 && bit_depth != 16))
    return npt_error_set(NPT_EINVAL, "refine: bad arguments (%lld detections, %dx%d px, %d bits)",
                         (long long)n, w, h, bit_depth);
  if (n == 0)
    return 0;
  scratch s = {0};
  npt_detection *out = malloc(sizeof *out * (size_t)n);
  int *nb = malloc(sizeof *nb * (size_t)n);
  unsigned char *done = calloc((size_t)n, 1);
  nb_index ix = {0};
  int rc = out && nb && done ? 0 : npt_error_set(NPT_ENOMEM, "refine: out of memory");
  if (rc == 0)
    rc = nb_index_build(det, n, p->neighbour_score, &ix);
  /* every fit sees the network's boxes, so the result does not depend on the order */
  for (int64_t i = 0; i < n && rc == 0; i++) {
    const npt_detection *d = det + i;
    double side = d->w > d->h ? d->w : d->h;
    if (side < p->min_size || d->cls < 1 || d->cls > 30 || !(p->classes >> (d->cls - 1) & 1))
      continue;
    if (stats)
      stats->tried++;
    int r = refine_one(frame, bit_depth, h, w, det, &ix, i, &s, nb, &out[i]);
    if (r < 0)
      rc = r;
    else
      done[i] = (unsigned char)r;
  }
  for (int64_t i = 0; i < n && rc == 0; i++)
    if (done[i]) {
      det[i] = out[i];
      if (stats)
        stats->accepted++;
    }
  free(out), free(nb), free(done), free(ix.e);
  scratch_free(&s);
  return rc;
}
