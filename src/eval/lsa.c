/* Linear sum assignment that picks the same solution as scipy.optimize.linear_sum_assignment.
 *
 * TrackEval matches boxes with scipy's solver, and where several assignments have the same
 * cost (identical boxes, integer Identity costs, constant rows) the metrics depend on which
 * one the solver returns.  So this is the same algorithm, not merely an optimal one: the
 * shortest augmenting path method of Crouse (IEEE TAES 52(4), 2016), one row added at a time,
 * columns scanned from the last to the first with swap-removal from the scan list, a column
 * that ends the path (unassigned) preferred among equal distances, the same dual updates in the
 * same floating-point order, and tall matrices solved transposed with pairs reported by
 * ascending row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

typedef struct lsa_work {
  double *u, *v, *dist, *buf;
  int64_t *path, *col4row, *row4col;
  size_t *remaining;
  unsigned char *row_seen, *col_seen;
} lsa_work;

static void work_free(lsa_work *w) {
  free(w->u);
  free(w->v);
  free(w->dist);
  free(w->buf);
  free(w->path);
  free(w->col4row);
  free(w->row4col);
  free(w->remaining);
  free(w->row_seen);
  free(w->col_seen);
}

static int work_alloc(lsa_work *w, size_t nr, size_t nc) {
  memset(w, 0, sizeof *w);
  w->u = calloc(nr, sizeof *w->u);
  w->v = calloc(nc, sizeof *w->v);
  w->dist = malloc(nc * sizeof *w->dist);
  w->buf = malloc(nc * sizeof *w->buf);
  w->path = malloc(nc * sizeof *w->path);
  w->col4row = malloc(nr * sizeof *w->col4row);
  w->row4col = malloc(nc * sizeof *w->row4col);
  w->remaining = malloc(nc * sizeof *w->remaining);
  w->row_seen = malloc(nr);
  w->col_seen = malloc(nc);
  if (!w->u || !w->v || !w->dist || !w->buf || !w->path || !w->col4row || !w->row4col ||
      !w->remaining || !w->row_seen || !w->col_seen) {
    work_free(w);
    return npt_error_set(NPT_ENOMEM, "linear assignment: out of memory (%zu x %zu)", nr, nc);
  }
  for (size_t j = 0; j < nc; j++)
    w->path[j] = w->row4col[j] = -1;
  for (size_t i = 0; i < nr; i++)
    w->col4row[i] = -1;
  return 0;
}

/* Finds the shortest augmenting path from free row `start`; returns its last (free) column or
 * -1 when every remaining distance is infinite.  *min_out is the path's reduced length. */
static int64_t shortest_path(lsa_work *w, size_t nr, size_t nc, npt__lsa_row_fn row, void *ctx,
                             size_t start, double *min_out) {
  double min_val = 0;
  size_t n_left = nc;
  /* Scanning from the last column makes a constant matrix give the identity (scipy #11602). */
  for (size_t k = 0; k < nc; k++)
    w->remaining[k] = nc - k - 1;
  memset(w->row_seen, 0, nr);
  memset(w->col_seen, 0, nc);
  for (size_t j = 0; j < nc; j++)
    w->dist[j] = INFINITY;

  size_t i = start;
  double *dist = w->dist, *v = w->v;
  int64_t *path = w->path;
  const int64_t *row4col = w->row4col;
  size_t *remaining = w->remaining;
  for (;;) {
    w->row_seen[i] = 1;
    const double *c = row(ctx, i, w->buf);
    const double ui = w->u[i];
    double lowest = INFINITY;
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < n_left; k++) {
      size_t j = remaining[k];
      double r = min_val + c[j] - ui - v[j];
      if (r < dist[j]) {
        path[j] = (int64_t)i;
        dist[j] = r;
      }
      /* Among equal distances a free column wins: it ends the path at once, which matters for
       * integer costs with many ties. */
      if (dist[j] < lowest || (dist[j] == lowest && row4col[j] == -1)) {
        lowest = dist[j];
        best = k;
      }
    }
    min_val = lowest;
    if (min_val == INFINITY || best == SIZE_MAX)
      return -1;
    size_t j = remaining[best];
    w->col_seen[j] = 1;
    remaining[best] = remaining[--n_left];
    if (w->row4col[j] == -1) {
      *min_out = min_val;
      return (int64_t)j;
    }
    i = (size_t)w->row4col[j];
  }
}

int npt__lsa_solve_rows(size_t nr, size_t nc, npt__lsa_row_fn row, void *ctx, int64_t *col4row) {
  if (nr == 0 || nc == 0)
    return 0;
  if (nr > nc)
    return npt_error_set(NPT_EINTERNAL, "linear assignment: %zu rows > %zu columns", nr, nc);
  lsa_work w;
  NPT_TRY(work_alloc(&w, nr, nc));

  for (size_t cur = 0; cur < nr; cur++) {
    double min_val = 0;
    int64_t sink = shortest_path(&w, nr, nc, row, ctx, cur, &min_val);
    if (sink < 0) {
      work_free(&w);
      return npt_error_set(NPT_EINVAL, "linear assignment: cost matrix is infeasible");
    }
    /* Dual variables, in scipy's order of operations. */
    w.u[cur] += min_val;
    for (size_t i = 0; i < nr; i++)
      if (w.row_seen[i] && i != cur)
        w.u[i] += min_val - w.dist[w.col4row[i]];
    for (size_t j = 0; j < nc; j++)
      if (w.col_seen[j])
        w.v[j] -= min_val - w.dist[j];
    /* Flip the path's edges. */
    int64_t j = sink;
    for (;;) {
      int64_t i = w.path[j];
      w.row4col[j] = i;
      int64_t prev = w.col4row[i];
      w.col4row[i] = j;
      j = prev;
      if ((size_t)i == cur)
        break;
    }
  }
  memcpy(col4row, w.col4row, nr * sizeof *col4row);
  work_free(&w);
  return 0;
}

typedef struct dense_ctx {
  const double *cost;
  size_t nc;
} dense_ctx;

static const double *dense_row(void *ctx, size_t i, double *buf) {
  (void)buf;
  const dense_ctx *d = ctx;
  return d->cost + i * d->nc;
}

int npt_lsa_solve(size_t nr, size_t nc, const double *cost, int64_t *rows, int64_t *cols) {
  if (nr == 0 || nc == 0)
    return 0;
  for (size_t k = 0; k < nr * nc; k++)
    if (isnan(cost[k]) || cost[k] == -INFINITY)
      return npt_error_set(NPT_EINVAL, "linear assignment: cost matrix contains NaN or -inf");

  if (nr <= nc) {
    dense_ctx d = {cost, nc};
    NPT_TRY(npt__lsa_solve_rows(nr, nc, dense_row, &d, cols));
    for (size_t i = 0; i < nr; i++)
      rows[i] = (int64_t)i;
    return 0;
  }

  /* Tall matrix: solve the transpose (nc rows), then list pairs by ascending original row. */
  double *t = malloc(nr * nc * sizeof *t);
  int64_t *c4r = malloc(nc * sizeof *c4r);
  int64_t *col_of_row = malloc(nr * sizeof *col_of_row);
  if (!t || !c4r || !col_of_row) {
    free(t);
    free(c4r);
    free(col_of_row);
    return npt_error_set(NPT_ENOMEM, "linear assignment: out of memory (%zu x %zu)", nr, nc);
  }
  for (size_t i = 0; i < nr; i++)
    for (size_t j = 0; j < nc; j++)
      t[j * nr + i] = cost[i * nc + j];
  dense_ctx d = {t, nr};
  int rc = npt__lsa_solve_rows(nc, nr, dense_row, &d, c4r);
  if (rc == 0) {
    for (size_t i = 0; i < nr; i++)
      col_of_row[i] = -1;
    for (size_t j = 0; j < nc; j++)
      col_of_row[c4r[j]] = (int64_t)j;
    size_t k = 0;
    for (size_t i = 0; i < nr; i++)
      if (col_of_row[i] >= 0) {
        rows[k] = (int64_t)i;
        cols[k] = col_of_row[i];
        k++;
      }
  }
  free(t);
  free(c4r);
  free(col_of_row);
  return rc;
}
