/* Scoring merge/split events against ground truth.
 *
 * A predicted event may match a true one when the types agree, the frames differ by at most
 * NPT_EVENT_FRAME_TOLERANCE and the events share a parent and a child through the Identity
 * metric's id correspondence.  The one-to-one matching is the assignment with the most pairs,
 * then the smallest total frame difference: a linear assignment where a candidate pair costs
 * |frame difference| - K with K > 3 * (largest possible number of pairs), so that one more pair
 * always outweighs any frame differences, and a non-candidate pair costs 0 (not a match).
 * Candidates connect only events a few frames apart, so the assignment is solved separately on
 * each connected group of candidates. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

typedef struct edge {
  size_t g, p; /* gt event, predicted event */
  int64_t df;  /* |frame difference| */
  size_t root; /* group */
} edge;

static int cmp_pair_gt(const void *a, const void *b) {
  int64_t x = ((const npt_id_pair *)a)->gt_id, y = ((const npt_id_pair *)b)->gt_id;
  return (x > y) - (x < y);
}

/* The predicted id corresponding to gt id `id`, or 0 with *found = 0. */
static int64_t map_id(const npt_id_pair *pairs, size_t n, int64_t id, int *found) {
  npt_id_pair key = {id, 0};
  const npt_id_pair *hit = n ? bsearch(&key, pairs, n, sizeof *pairs, cmp_pair_gt) : NULL;
  *found = hit != NULL;
  return hit ? hit->pred_id : 0;
}

/* Whether some gt id in gids[0..ng) corresponds to some predicted id in pids[0..np). */
static int share_one(const int64_t *gids, size_t ng, const int64_t *pids, size_t np,
                     const npt_id_pair *pairs, size_t n_pairs) {
  for (size_t a = 0; a < ng; a++) {
    int found;
    int64_t mapped = map_id(pairs, n_pairs, gids[a], &found);
    if (!found)
      continue;
    for (size_t b = 0; b < np; b++)
      if (pids[b] == mapped)
        return 1;
  }
  return 0;
}

static int is_candidate(const npt_events *gt, size_t i, const npt_events *pr, size_t j,
                        const npt_id_pair *pairs, size_t n_pairs) {
  const npt__event *e = &gt->ev[i], *f = &pr->ev[j];
  if (e->type != f->type)
    return 0;
  return share_one(gt->ids + e->parents, e->n_parents, pr->ids + f->parents, f->n_parents, pairs,
                   n_pairs) &&
         share_one(gt->ids + e->children, e->n_children, pr->ids + f->children, f->n_children,
                   pairs, n_pairs);
}

static size_t find_root(size_t *parent, size_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

typedef struct frame_key {
  int64_t frame;
  size_t index;
} frame_key;

static int cmp_frame_key(const void *a, const void *b) {
  const frame_key *x = a, *y = b;
  if (x->frame != y->frame)
    return (x->frame > y->frame) - (x->frame < y->frame);
  return (x->index > y->index) - (x->index < y->index);
}

static int cmp_edge(const void *a, const void *b) {
  const edge *x = a, *y = b;
  if (x->root != y->root)
    return (x->root > y->root) - (x->root < y->root);
  if (x->g != y->g)
    return (x->g > y->g) - (x->g < y->g);
  return (x->p > y->p) - (x->p < y->p);
}

/* Collects candidate pairs: for each gt event, the predicted events within the frame window. */
static int find_edges(const npt_events *gt, const npt_events *pr, const npt_id_pair *pairs,
                      size_t n_pairs, edge **out, size_t *n_out) {
  frame_key *by_frame = malloc((pr->n ? pr->n : 1) * sizeof *by_frame);
  NPT_ALLOC_CHECK(by_frame);
  for (size_t j = 0; j < pr->n; j++)
    by_frame[j] = (frame_key){pr->ev[j].frame, j};
  qsort(by_frame, pr->n, sizeof *by_frame, cmp_frame_key);

  edge *edges = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < gt->n; i++) {
    int64_t f = gt->ev[i].frame;
    size_t lo = 0, hi = pr->n; /* first predicted event with frame >= f - tolerance */
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (by_frame[mid].frame < f - NPT_EVENT_FRAME_TOLERANCE)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (size_t k = lo; k < pr->n && by_frame[k].frame <= f + NPT_EVENT_FRAME_TOLERANCE; k++) {
      size_t j = by_frame[k].index;
      if (!is_candidate(gt, i, pr, j, pairs, n_pairs))
        continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 64;
        edge *grown = realloc(edges, cap * sizeof *grown);
        if (!grown) {
          free(edges);
          free(by_frame);
          return npt_error_set(NPT_ENOMEM, "events: out of memory");
        }
        edges = grown;
      }
      int64_t df = pr->ev[j].frame - f;
      edges[n++] = (edge){i, j, df < 0 ? -df : df, 0};
    }
  }
  free(by_frame);
  *out = edges;
  *n_out = n;
  return 0;
}

/* Solves one group's assignment (edges[0..ne) share a root) and records matches. */
static int match_group(const edge *edges, size_t ne, size_t *local, int64_t *gt_match,
                       size_t n_gt) {
  /* Local numbering: gt events and predicted events in order of first appearance. */
  size_t nr = 0, nc = 0;
  size_t *rows = malloc(ne * sizeof *rows), *cols = malloc(ne * sizeof *cols);
  if (!rows || !cols) {
    free(rows);
    free(cols);
    return npt_error_set(NPT_ENOMEM, "events: out of memory");
  }
  for (size_t k = 0; k < ne; k++) {
    if (local[edges[k].g] == SIZE_MAX) {
      local[edges[k].g] = nr;
      rows[nr++] = edges[k].g;
    }
    if (local[n_gt + edges[k].p] == SIZE_MAX) {
      local[n_gt + edges[k].p] = nc;
      cols[nc++] = edges[k].p;
    }
  }
  size_t kmax = nr < nc ? nr : nc;
  double big = 3.0 * (double)kmax + 4.0;
  double *cost = calloc(nr * nc, sizeof *cost);
  int64_t *mr = malloc(kmax * sizeof *mr), *mc = malloc(kmax * sizeof *mc);
  int rc = 0;
  if (!cost || !mr || !mc) {
    rc = npt_error_set(NPT_ENOMEM, "events: out of memory");
    goto done;
  }
  for (size_t k = 0; k < ne; k++)
    cost[local[edges[k].g] * nc + local[n_gt + edges[k].p]] = (double)edges[k].df - big;
  rc = npt_lsa_solve(nr, nc, cost, mr, mc);
  if (rc < 0)
    goto done;
  for (size_t k = 0; k < kmax; k++)
    if (cost[(size_t)mr[k] * nc + (size_t)mc[k]] < 0)
      gt_match[rows[mr[k]]] = (int64_t)cols[mc[k]];

done:
  for (size_t k = 0; k < nr; k++)
    local[rows[k]] = SIZE_MAX;
  for (size_t k = 0; k < nc; k++)
    local[n_gt + cols[k]] = SIZE_MAX;
  free(rows);
  free(cols);
  free(cost);
  free(mr);
  free(mc);
  return rc;
}

static void finish_prf(npt_event_prf *s) {
  double tp = (double)s->tp;
  s->precision = tp / (s->n_pred > 1 ? (double)s->n_pred : 1.0);
  s->recall = tp / (s->n_gt > 1 ? (double)s->n_gt : 1.0);
  double sum = s->precision + s->recall;
  s->f1 = sum > 0 ? 2.0 * s->precision * s->recall / sum : 0.0;
}

int npt_events_score(const npt_events *gt, const npt_events *pr, const npt_id_pair *pairs,
                     size_t n_pairs, npt_event_scores *out, int64_t *gt_match) {
  memset(out, 0, sizeof *out);
  size_t n = gt->n + pr->n;
  int64_t *match = malloc((gt->n ? gt->n : 1) * sizeof *match);
  size_t *parent = malloc((n ? n : 1) * sizeof *parent);
  size_t *local = malloc((n ? n : 1) * sizeof *local);
  edge *edges = NULL;
  size_t ne = 0;
  int rc = 0;
  if (!match || !parent || !local) {
    rc = npt_error_set(NPT_ENOMEM, "events: out of memory");
    goto done;
  }
  for (size_t i = 0; i < gt->n; i++)
    match[i] = -1;
  for (size_t k = 0; k < n; k++) {
    parent[k] = k;
    local[k] = SIZE_MAX;
  }
  rc = find_edges(gt, pr, pairs, n_pairs, &edges, &ne);
  if (rc < 0)
    goto done;
  for (size_t k = 0; k < ne; k++) {
    size_t a = find_root(parent, edges[k].g), b = find_root(parent, gt->n + edges[k].p);
    if (a != b)
      parent[a] = b;
  }
  for (size_t k = 0; k < ne; k++)
    edges[k].root = find_root(parent, edges[k].g);
  if (ne > 0)
    qsort(edges, ne, sizeof *edges, cmp_edge);
  for (size_t k = 0; k < ne;) {
    size_t end = k;
    while (end < ne && edges[end].root == edges[k].root)
      end++;
    rc = match_group(edges + k, end - k, local, match, gt->n);
    if (rc < 0)
      goto done;
    k = end;
  }

  for (size_t i = 0; i < gt->n; i++) {
    npt_event_prf *s = gt->ev[i].type == NPT_EVENT_MERGE ? &out->merge : &out->split;
    s->n_gt++;
    if (match[i] >= 0)
      s->tp++;
  }
  for (size_t j = 0; j < pr->n; j++)
    (pr->ev[j].type == NPT_EVENT_MERGE ? &out->merge : &out->split)->n_pred++;
  out->all.n_gt = out->merge.n_gt + out->split.n_gt;
  out->all.n_pred = out->merge.n_pred + out->split.n_pred;
  out->all.tp = out->merge.tp + out->split.tp;
  finish_prf(&out->merge);
  finish_prf(&out->split);
  finish_prf(&out->all);
  if (gt_match)
    memcpy(gt_match, match, gt->n * sizeof *match);

done:
  free(match);
  free(parent);
  free(local);
  free(edges);
  return rc;
}
