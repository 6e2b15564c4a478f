/* Size-aware centre-distance suppression (decode_suppress.h; docs/decode.md, rule 3).
 *
 * A candidate c can only be dropped by a kept centre closer than R = ratio * c.side (its limit
 * is ratio * the smaller side, at most R), so it looks only at the kept centres in the square of
 * half-side R around its own.  Kept centres are filed in a uniform grid of square cells; c scans
 * the cells that its square overlaps or, when those are more than the kept centres filed so
 * far, the filed centres themselves.  Either way it learns whether some kept centre drops it,
 * which is all the rule asks: the grid changes the cost, never the result.
 *
 * The cell side is the median R of the candidates, so a typical candidate scans 2 x 2 to 3 x 3
 * cells, and a cell holds few kept centres (two kept centres of sides >= t are at least
 * ratio * t apart); a larger candidate scans more cells.  The grid spans the candidates'
 * centres and has at most 2n + 16 cells (the side doubles until it has), so that the far-off
 * centres of a broken model cannot make it large.
 *
 * The scanned cells are enough despite rounding: if k drops c, then |fl(k.x - c.x)| < lim <= R
 * (a rounded square is monotonic in its operand, and fl(dy * dy) >= 0), so |k.x - c.x| < R
 * exactly (R is a double), so fl(c.x - R) <= k.x <= fl(c.x + R) (rounding to nearest never
 * passes a double), and the cell index floor(fl(fl(v - x0) / side)) is monotonic in v.
 *
 * CMakeLists.txt compiles this file with -ffp-contract=off: a fused multiply-add in the distance
 * test would differ from train/decode_ref.py in the last bit and flip decisions at the limit. */
#include "nn/decode_suppress.h"

#include <math.h>
#include <stdlib.h>

#include "common/error.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct bucket_grid {
  double x0, y0, side; /* origin (the smallest centre coordinates) and cell side, px */
  int64_t gw, gh;      /* cells per row and per column */
  int64_t *head;       /* [gw * gh]: the last candidate filed in the cell, or -1 */
  int64_t *next;       /* [n]: the candidate filed before it in the same cell, or -1 */
  int64_t *filed;      /* [n]: the candidates filed, in order */
  int64_t n_filed;
} bucket_grid;

/* 1 when kept centre k drops candidate c: the rule, exactly as decode_suppress.h states it. */
static int drops(const npt__centre *k, const npt__centre *c, double ratio) {
  double dx = k->x - c->x, dy = k->y - c->y;
  double lim = ratio * fmin(k->side, c->side);
  return dx * dx + dy * dy < lim * lim;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The cell of coordinate v along an axis of g cells from v0, clipped to the grid (v is finite;
 * an overflowing quotient is clipped too). */
static int64_t cell_of(double v, double v0, double side, int64_t g) {
  double t = floor((v - v0) / side);
  return t < 0 ? 0 : t >= (double)g ? g - 1 : (int64_t)t;
}

/* Sizes the grid for the candidates that can take part (R > 0); *empty when there are none,
 * and then nothing can be dropped. */
static int grid_init(bucket_grid *g, const npt__centre *c, int64_t n, double ratio, int *empty) {
  double *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
  NPT_ALLOC_CHECK(r);
  int64_t m = 0;
  double x1 = 0, y1 = 0;
  for (int64_t i = 0; i < n; i++) {
    double ri = ratio * c[i].side;
    if (!(ri > 0))
      continue;
    if (m == 0)
      g->x0 = x1 = c[i].x, g->y0 = y1 = c[i].y;
    g->x0 = fmin(g->x0, c[i].x), x1 = fmax(x1, c[i].x);
    g->y0 = fmin(g->y0, c[i].y), y1 = fmax(y1, c[i].y);
    r[m++] = ri;
  }
  *empty = m == 0;
  if (m == 0) {
    free(r);
    return 0;
  }
  qsort(r, (size_t)m, sizeof *r, cmp_double);
  g->side = r[m / 2];
  free(r);
  const double ew = x1 - g->x0, eh = y1 - g->y0, cap = 2.0 * (double)m + 16;
  while ((floor(ew / g->side) + 1) * (floor(eh / g->side) + 1) > cap)
    g->side *= 2;
  g->gw = (int64_t)floor(ew / g->side) + 1;
  g->gh = (int64_t)floor(eh / g->side) + 1;
  g->head = malloc((size_t)(g->gw * g->gh) * sizeof *g->head);
  g->next = malloc((size_t)n * sizeof *g->next);
  g->filed = malloc((size_t)n * sizeof *g->filed);
  if (!g->head || !g->next || !g->filed)
    return npt_error_set(NPT_ENOMEM, "decode: out of memory for a suppression grid of %lld cells",
                         (long long)(g->gw * g->gh));
  for (int64_t k = 0; k < g->gw * g->gh; k++)
    g->head[k] = -1;
  return 0;
}

static void grid_free(bucket_grid *g) {
  free(g->head);
  free(g->next);
  free(g->filed);
}

static void grid_add(bucket_grid *g, const npt__centre *c, int64_t i) {
  int64_t at =
      cell_of(c[i].y, g->y0, g->side, g->gh) * g->gw + cell_of(c[i].x, g->x0, g->side, g->gw);
  g->next[i] = g->head[at];
  g->head[at] = i;
  g->filed[g->n_filed++] = i;
}

/* 1 when a filed centre drops candidate i, whose reach is r = ratio * side > 0. */
static int dropped(const bucket_grid *g, const npt__centre *c, int64_t i, double r, double ratio) {
  const npt__centre *p = &c[i];
  int64_t lx = cell_of(p->x - r, g->x0, g->side, g->gw);
  int64_t hx = cell_of(p->x + r, g->x0, g->side, g->gw);
  int64_t ly = cell_of(p->y - r, g->y0, g->side, g->gh);
  int64_t hy = cell_of(p->y + r, g->y0, g->side, g->gh);
  if ((hx - lx + 1) * (hy - ly + 1) > g->n_filed) {
    for (int64_t k = 0; k < g->n_filed; k++)
      if (drops(&c[g->filed[k]], p, ratio))
        return 1;
    return 0;
  }
  for (int64_t y = ly; y <= hy; y++)
    for (int64_t x = lx; x <= hx; x++)
      for (int64_t k = g->head[y * g->gw + x]; k >= 0; k = g->next[k])
        if (drops(&c[k], p, ratio))
          return 1;
  return 0;
}

int npt__suppress_centres(const npt__centre *c, int64_t n, double ratio, int64_t max_keep,
                          int64_t *keep, int64_t *n_keep) {
  *n_keep = 0;
  if (!(ratio >= 0) || !isfinite(ratio))
    return npt_error_set(NPT_EINVAL, "decode: suppress_ratio must be finite and >= 0 (got %g)",
                         ratio);
  bucket_grid g = {0};
  int empty = 1, rc = ratio > 0 && n > 0 ? grid_init(&g, c, n, ratio, &empty) : 0;
  int64_t nk = 0;
  for (int64_t i = 0; rc == 0 && i < n && nk < max_keep; i++) {
    /* A candidate of side 0 is never dropped and never drops one (its limit is 0). */
    double r = empty ? 0.0 : ratio * c[i].side;
    if (r > 0 && dropped(&g, c, i, r, ratio))
      continue;
    keep[nk++] = i;
    if (r > 0)
      grid_add(&g, c, i);
  }
  grid_free(&g);
  *n_keep = rc == 0 ? nk : 0;
  return rc;
}
