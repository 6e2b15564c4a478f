/* Gated linear assignment: connected components of the allowed pairs, each solved exactly
 * (assign.h states the problem and the tie rule).
 *
 * Components come from a union-find over rows and columns whose root is always the smallest
 * node of its set (a union links the larger root under the smaller), so the root of a
 * component is its first row and components are numbered in the order of their first rows
 * without a sort.  Each component's rows and columns are listed in ascending index order, which
 * is what makes a component's result independent of everything but its own costs.  Nothing is
 * allocated once the workspace has grown to the largest problem seen. */
#include "track/assign.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

struct npt_assign_work {
  size_t cap_nodes, cap_edges;
  size_t *parent;    /* union-find over nodes: rows 0..nr-1, then columns nr..nr+nc-1 */
  int64_t *comp;     /* per node: component, -1 without allowed pairs */
  size_t *local;     /* per node: index among its component's rows (columns) */
  size_t *row_start; /* kept pairs of row i are [row_start[i], row_start[i+1]) */
  size_t *e_col;     /* kept pairs by row: column, cost */
  double *e_cost;
  size_t *c_row_off; /* component c's rows are c_rows[c_row_off[c] .. c_row_off[c+1]) */
  size_t *c_col_off; /* and its columns c_cols[c_col_off[c] .. c_col_off[c+1]) */
  size_t *c_rows, *c_cols;
  size_t *cursor; /* per component: next free slot while listing rows (columns) */
  /* The solver's state for one component, local indices: rows 0..k-1, columns 0..m-1 real and
   * m..m+k-1 the rows' "unmatched" columns. */
  double *u, *v, *dist;
  int64_t *col4row, *row4col, *path;
  size_t *touched, *rows_seen; /* columns reached and rows scanned by the current search */
  unsigned char *col_done;     /* column's distance is final in the current search */
};

int npt_assign_work_init(npt_assign_work **out) {
  *out = calloc(1, sizeof **out);
  NPT_ALLOC_CHECK(*out);
  return 0;
}

void npt_assign_work_free(npt_assign_work *w) {
  if (!w)
    return;
  free(w->parent);
  free(w->comp);
  free(w->local);
  free(w->row_start);
  free(w->e_col);
  free(w->e_cost);
  free(w->c_row_off);
  free(w->c_col_off);
  free(w->c_rows);
  free(w->c_cols);
  free(w->cursor);
  free(w->u);
  free(w->v);
  free(w->dist);
  free(w->col4row);
  free(w->row4col);
  free(w->path);
  free(w->touched);
  free(w->rows_seen);
  free(w->col_done);
  free(w);
}

/* Grows buffer `p` to n elements (realloc keeps the old one on failure; the caller's workspace
 * stays valid and is freed as a whole). */
#define GROW(p, n)                                                                                 \
  do {                                                                                             \
    void *npt__q = realloc((p), (n) * sizeof *(p));                                                \
    if (!npt__q)                                                                                   \
      return npt_error_set(NPT_ENOMEM, "assignment: out of memory (%zu elements)", (size_t)(n));   \
    (p) = npt__q;                                                                                  \
  } while (0)

/* Makes room for `nodes` rows plus columns and `edges` pairs; buffers only grow. */
static int reserve(npt_assign_work *w, size_t nodes, size_t edges) {
  if (nodes + 1 > w->cap_nodes) {
    size_t cap = nodes + 1 > 2 * w->cap_nodes ? nodes + 1 : 2 * w->cap_nodes;
    GROW(w->parent, cap);
    GROW(w->comp, cap);
    GROW(w->local, cap);
    GROW(w->row_start, cap);
    GROW(w->c_row_off, cap);
    GROW(w->c_col_off, cap);
    GROW(w->c_rows, cap);
    GROW(w->c_cols, cap);
    GROW(w->cursor, cap);
    GROW(w->u, cap);
    GROW(w->v, cap);
    GROW(w->dist, cap);
    GROW(w->col4row, cap);
    GROW(w->row4col, cap);
    GROW(w->path, cap);
    GROW(w->touched, cap);
    GROW(w->rows_seen, cap);
    GROW(w->col_done, cap);
    w->cap_nodes = cap;
  }
  if (edges > w->cap_edges) {
    size_t cap = edges > 2 * w->cap_edges ? edges : 2 * w->cap_edges;
    GROW(w->e_col, cap);
    GROW(w->e_cost, cap);
    w->cap_edges = cap;
  }
  return 0;
}

static size_t find(size_t *parent, size_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]]; /* path halving */
    x = parent[x];
  }
  return x;
}

/* Exact minimum-cost assignment of every row of one component to a distinct column, among its
 * allowed pairs and the rows' own "unmatched" columns (cost max_cost, so a row always has one;
 * the columns left over cost nothing, which makes the total the objective of assign.h up to a
 * constant).  Local indices: rows 0..k-1 (global rows[r]), columns 0..m-1 real and m..m+k-1
 * the rows' unmatched columns; w->e_col holds local columns by now.
 *
 * The shortest augmenting path method with dual variables (Jonker-Volgenant's augmentation
 * without its initialisation heuristics; the same updates as src/eval/lsa.c), one row added at
 * a time in ascending order, each search a Dijkstra over the pairs it reaches only, so its cost
 * follows the region explored, not the component's size.  Among columns at equal distance the
 * search settles a free one first, then the lowest index, so the result depends only on the
 * component's costs.  Answers in w->col4row[0..k). */
static void solve_comp(npt_assign_work *w, const size_t *rows, size_t k, size_t m,
                       double max_cost) {
  const size_t n_cols = m + k;
  double *restrict u = w->u, *restrict v = w->v, *restrict dist = w->dist;
  int64_t *restrict col4row = w->col4row, *restrict row4col = w->row4col;
  int64_t *restrict path = w->path;
  size_t *restrict touched = w->touched, *restrict seen = w->rows_seen;
  unsigned char *restrict done = w->col_done;
  const size_t *restrict row_start = w->row_start, *restrict e_col = w->e_col;
  const double *restrict e_cost = w->e_cost;
  for (size_t r = 0; r < k; r++) {
    u[r] = 0;
    col4row[r] = -1;
  }
  for (size_t j = 0; j < n_cols; j++) {
    v[j] = 0;
    dist[j] = INFINITY;
    row4col[j] = path[j] = -1;
    done[j] = 0;
  }
  for (size_t cur = 0; cur < k; cur++) {
    size_t n_touched = 0, n_seen = 0, i = cur, sink;
    double min_val = 0;
    for (;;) {
      seen[n_seen++] = i;
      const double base = min_val - u[i];
      const size_t e1 = row_start[rows[i] + 1];
      for (size_t e = row_start[rows[i]]; e <= e1; e++) {
        /* The row's pairs, then (e == e1) its own unmatched column. */
        const size_t j = e < e1 ? e_col[e] : m + i;
        if (done[j])
          continue;
        const double r = base + (e < e1 ? e_cost[e] : max_cost) - v[j];
        if (r < dist[j]) {
          if (dist[j] == INFINITY)
            touched[n_touched++] = j;
          dist[j] = r;
          path[j] = (int64_t)i;
        }
      }
      /* Settle the nearest column not yet final: free first, then lowest index, among equals.
       * A row's own unmatched column is always reachable, so there is one. */
      size_t best = SIZE_MAX;
      for (size_t t = 0; t < n_touched; t++) {
        size_t j = touched[t];
        if (done[j])
          continue;
        if (best == SIZE_MAX || dist[j] < dist[best])
          best = j;
        else if (dist[j] == dist[best]) {
          int free_j = row4col[j] < 0, free_b = row4col[best] < 0;
          if (free_j > free_b || (free_j == free_b && j < best))
            best = j;
        }
      }
      min_val = dist[best];
      done[best] = 1;
      if (row4col[best] < 0) {
        sink = best;
        break;
      }
      i = (size_t)row4col[best];
    }
    /* Duals (reduced costs stay non-negative), then flip the path, then reset the search. */
    u[cur] += min_val;
    for (size_t s = 1; s < n_seen; s++)
      u[seen[s]] += min_val - dist[col4row[seen[s]]];
    for (size_t t = 0; t < n_touched; t++) {
      size_t j = touched[t];
      if (done[j])
        v[j] -= min_val - dist[j];
    }
    for (int64_t j = (int64_t)sink;;) {
      int64_t r = path[j];
      row4col[j] = r;
      int64_t prev = col4row[r];
      col4row[r] = j;
      j = prev;
      if ((size_t)r == cur)
        break;
    }
    for (size_t t = 0; t < n_touched; t++) {
      dist[touched[t]] = INFINITY;
      done[touched[t]] = 0;
    }
  }
}

int npt_assign_solve(size_t nr, size_t nc, const npt_assign_edge *edges, size_t n_edges,
                     double max_cost, int64_t *row_to_col, int64_t *col_to_row,
                     npt_assign_work *work) {
  if (!isfinite(max_cost))
    return npt_error_set(NPT_EINVAL, "assignment: max_cost must be finite (got %g)", max_cost);
  npt_assign_work *own = NULL;
  if (!work) {
    NPT_TRY(npt_assign_work_init(&own));
    work = own;
  }
  int rc = reserve(work, nr + nc, n_edges);
  if (rc < 0)
    goto done;
  npt_assign_work *w = work;
  const size_t nodes = nr + nc;
  size_t *restrict parent = w->parent, *restrict row_start = w->row_start;
  size_t *restrict local = w->local;
  int64_t *restrict comp = w->comp;

  /* One pass over the pairs: checks, kept pairs counted by row, components joined.  A
   * union links the larger root under the smaller, so a root is its set's smallest node.
   * comp -2 marks a node with a kept pair until it gets its component's number. */
  for (size_t x = 0; x < nodes; x++) {
    parent[x] = x;
    comp[x] = -1;
  }
  memset(row_start, 0, (nr + 1) * sizeof *row_start);
  for (size_t e = 0; e < n_edges; e++) {
    const npt_assign_edge *ed = &edges[e];
    if (ed->row < 0 || (uint64_t)ed->row >= nr || ed->col < 0 || (uint64_t)ed->col >= nc) {
      rc =
          npt_error_set(NPT_EINVAL, "assignment: pair %zu (%lld, %lld) outside a %zu x %zu problem",
                        e, (long long)ed->row, (long long)ed->col, nr, nc);
      goto done;
    }
    if (isnan(ed->cost) || ed->cost == -INFINITY) {
      rc = npt_error_set(NPT_EINVAL, "assignment: pair %zu has cost %g", e, ed->cost);
      goto done;
    }
    if (!(ed->cost < max_cost))
      continue;
    size_t i = (size_t)ed->row, jn = nr + (size_t)ed->col;
    row_start[i + 1]++;
    comp[i] = comp[jn] = -2;
    size_t a = find(parent, i), b = find(parent, jn);
    if (a < b)
      parent[b] = a;
    else if (b < a)
      parent[a] = b;
  }
  if (row_to_col)
    for (size_t i = 0; i < nr; i++)
      row_to_col[i] = -1;
  if (col_to_row)
    for (size_t j = 0; j < nc; j++)
      col_to_row[j] = -1;

  size_t n_comp = 0;
  for (size_t x = 0; x < nodes; x++)
    if (comp[x] == -2) {
      size_t r = find(parent, x);
      /* The root is the component's smallest node, a row, met before any other node. */
      comp[x] = r == x ? (int64_t)n_comp++ : comp[r];
    }

  /* Each component's rows and columns in ascending order, and each node's local index. */
  size_t *restrict row_off = w->c_row_off, *restrict col_off = w->c_col_off;
  size_t *restrict cursor = w->cursor;
  memset(row_off, 0, (n_comp + 1) * sizeof *row_off);
  memset(col_off, 0, (n_comp + 1) * sizeof *col_off);
  for (size_t i = 0; i < nr; i++)
    if (comp[i] >= 0)
      row_off[comp[i] + 1]++;
  for (size_t j = 0; j < nc; j++)
    if (comp[nr + j] >= 0)
      col_off[comp[nr + j] + 1]++;
  for (size_t c = 0; c < n_comp; c++) {
    row_off[c + 1] += row_off[c];
    col_off[c + 1] += col_off[c];
  }
  for (size_t c = 0; c < n_comp; c++)
    cursor[c] = row_off[c];
  for (size_t i = 0; i < nr; i++)
    if (comp[i] >= 0) {
      size_t c = (size_t)comp[i];
      local[i] = cursor[c] - row_off[c];
      w->c_rows[cursor[c]++] = i;
    }
  for (size_t c = 0; c < n_comp; c++)
    cursor[c] = col_off[c];
  for (size_t j = 0; j < nc; j++)
    if (comp[nr + j] >= 0) {
      size_t c = (size_t)comp[nr + j];
      local[nr + j] = cursor[c] - col_off[c];
      w->c_cols[cursor[c]++] = j;
    }

  /* Kept pairs grouped by row (counting sort), with local column indices. */
  for (size_t i = 0; i < nr; i++)
    row_start[i + 1] += row_start[i];
  for (size_t i = 0; i < nr; i++)
    cursor[i] = row_start[i];
  for (size_t e = 0; e < n_edges; e++)
    if (edges[e].cost < max_cost) {
      size_t at = cursor[edges[e].row]++;
      w->e_col[at] = local[nr + (size_t)edges[e].col];
      w->e_cost[at] = edges[e].cost;
    }

  for (size_t c = 0; c < n_comp; c++) {
    const size_t *rows = w->c_rows + row_off[c], *cols = w->c_cols + col_off[c];
    size_t k = row_off[c + 1] - row_off[c], m = col_off[c + 1] - col_off[c];
    if (k == 1) {
      /* One row: its cheapest pair, the lowest column among equals (all are below max_cost);
       * what the solver gives too, without its set-up. */
      size_t i = rows[0], best_j = SIZE_MAX;
      double best = max_cost;
      for (size_t e = row_start[i]; e < row_start[i + 1]; e++)
        if (w->e_cost[e] < best || (w->e_cost[e] == best && w->e_col[e] < best_j)) {
          best = w->e_cost[e];
          best_j = w->e_col[e];
        }
      if (row_to_col)
        row_to_col[i] = (int64_t)cols[best_j];
      if (col_to_row)
        col_to_row[cols[best_j]] = (int64_t)i;
      continue;
    }
    solve_comp(w, rows, k, m, max_cost);
    for (size_t r = 0; r < k; r++) {
      int64_t j = w->col4row[r];
      if ((size_t)j >= m)
        continue; /* left unmatched */
      if (row_to_col)
        row_to_col[rows[r]] = (int64_t)cols[j];
      if (col_to_row)
        col_to_row[cols[j]] = (int64_t)rows[r];
    }
  }
done:
  npt_assign_work_free(own);
  return rc;
}
