/* Identity metrics (IDF1, Ristani et al. 2016) as TrackEval 1.3.0 computes them
 * (trackeval/metrics/identity.py).
 *
 * Every gt id is matched to at most one tracker id for the whole sequence by a minimum-cost
 * assignment on the (n_gt + n_tr) square matrix TrackEval builds: real pairs cost
 * (gt boxes - co-occurrences) + (tracker boxes - co-occurrences), where a co-occurrence is a
 * frame with IoU >= 0.5 (no eps here, unlike CLEAR); each id may instead take its own dummy at
 * the cost of all its boxes; other dummy cells cost 1e10.  The matrix is produced a row at a
 * time, so memory stays O(n_gt + n_tr + pairs) although the solver's time is that of a dense
 * (n_gt + n_tr)^2 problem, as in TrackEval. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

#define IDENTITY_THRESHOLD 0.5
#define NO_MATCH_COST      1e10

struct npt__identity {
  size_t n_gt, n_tr;
  double *gt_count, *tr_count;
  npt__pairmap pairs;
  double *co; /* per pair: frames with IoU >= threshold */
  size_t co_cap;
};

int npt__identity_init(npt__identity **out, size_t n_gt_ids, size_t n_pr_ids) {
  npt__identity *d = calloc(1, sizeof *d);
  NPT_ALLOC_CHECK(d);
  d->n_gt = n_gt_ids;
  d->n_tr = n_pr_ids;
  d->gt_count = calloc(n_gt_ids ? n_gt_ids : 1, sizeof *d->gt_count);
  d->tr_count = calloc(n_pr_ids ? n_pr_ids : 1, sizeof *d->tr_count);
  npt__pairmap_init(&d->pairs);
  if (!d->gt_count || !d->tr_count) {
    npt__identity_free(d);
    return npt_error_set(NPT_ENOMEM, "Identity: out of memory");
  }
  *out = d;
  return 0;
}

void npt__identity_free(npt__identity *d) {
  if (!d)
    return;
  free(d->gt_count);
  free(d->tr_count);
  npt__pairmap_free(&d->pairs);
  free(d->co);
  free(d);
}

int npt__identity_step(npt__identity *d, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                       const double *sim) {
  size_t np = s->p1 - s->p0;
  for (size_t i = s->g0; i < s->g1; i++)
    d->gt_count[gt->id[i]] += 1;
  for (size_t j = s->p0; j < s->p1; j++)
    d->tr_count[pr->id[j]] += 1;
  for (size_t i = 0; i < s->g1 - s->g0; i++)
    for (size_t j = 0; j < np; j++) {
      if (!(sim[i * np + j] >= IDENTITY_THRESHOLD))
        continue;
      size_t p;
      int added;
      NPT_TRY(npt__pairmap_get(&d->pairs, (uint32_t)gt->id[s->g0 + i], (uint32_t)pr->id[s->p0 + j],
                               &p, &added));
      if (added && p >= d->co_cap) {
        size_t cap = d->co_cap ? 2 * d->co_cap : 1024;
        double *co = realloc(d->co, cap * sizeof *co);
        NPT_ALLOC_CHECK(co);
        d->co = co;
        d->co_cap = cap;
      }
      if (added)
        d->co[p] = 0;
      d->co[p] += 1;
    }
  return 0;
}

/* The cost matrix, row by row; co-occurrences of gt id g are co_t/co_n[row_start[g]..).
 * Dummy rows differ from one another in a single cell, so they are served from one template
 * row patched in place rather than refilled (a search visits many of them). */
typedef struct cost_rows {
  const npt__identity *d;
  size_t *row_start;
  uint32_t *co_t;
  double *co_n;
  double *dummy;      /* template of the dummy rows: NO_MATCH_COST, then zeros */
  size_t dummy_patch; /* the column currently patched in `dummy` */
} cost_rows;

static const double *cost_row(void *ctx, size_t i, double *buf) {
  cost_rows *c = ctx;
  const npt__identity *d = c->d;
  size_t nt = d->n_tr, ng = d->n_gt;
  if (i >= ng) {
    size_t own = i - ng;
    c->dummy[c->dummy_patch] = NO_MATCH_COST;
    c->dummy[own] = d->tr_count[own];
    c->dummy_patch = own;
    return c->dummy;
  }
  double gc = d->gt_count[i];
  for (size_t t = 0; t < nt; t++)
    buf[t] = gc + d->tr_count[t];
  for (size_t k = c->row_start[i]; k < c->row_start[i + 1]; k++) {
    size_t t = c->co_t[k];
    buf[t] = (gc - c->co_n[k]) + (d->tr_count[t] - c->co_n[k]);
  }
  for (size_t k = 0; k < ng; k++)
    buf[nt + k] = NO_MATCH_COST;
  buf[nt + i] = gc;
  return buf;
}

static double co_of(const cost_rows *c, size_t g, size_t t) {
  for (size_t k = c->row_start[g]; k < c->row_start[g + 1]; k++)
    if (c->co_t[k] == t)
      return c->co_n[k];
  return 0;
}

static void fill_scores(npt_eval_result *res, int64_t idtp, int64_t idfp, int64_t idfn) {
  res->idtp = idtp;
  res->idfp = idfp;
  res->idfn = idfn;
  double tp = (double)idtp, fp = (double)idfp, fn = (double)idfn;
  double r = tp + fn, p = tp + fp, f = tp + 0.5 * fp + 0.5 * fn;
  res->idr = tp / (r > 1.0 ? r : 1.0);
  res->idp = tp / (p > 1.0 ? p : 1.0);
  res->idf1 = tp / (f > 1.0 ? f : 1.0);
}

int npt__identity_finish(npt__identity *d, const npt_mot *gt, const npt_mot *pr,
                         npt_eval_result *res, npt_id_pair **pairs, size_t *n_pairs) {
  size_t ng = d->n_gt, nt = d->n_tr, n = ng + nt, np_ = d->pairs.count;
  cost_rows c = {d,
                 calloc(ng + 1, sizeof(size_t)),
                 malloc((np_ ? np_ : 1) * sizeof(uint32_t)),
                 malloc((np_ ? np_ : 1) * sizeof(double)),
                 malloc((n ? n : 1) * sizeof(double)),
                 0};
  int64_t *col4row = malloc((n ? n : 1) * sizeof *col4row);
  int rc = 0;
  if (!c.row_start || !c.co_t || !c.co_n || !c.dummy || !col4row) {
    rc = npt_error_set(NPT_ENOMEM, "Identity: out of memory for %zu ids", n);
    goto done;
  }
  for (size_t j = 0; j < n; j++)
    c.dummy[j] = j < nt ? NO_MATCH_COST : 0.0;
  for (size_t p = 0; p < np_; p++)
    c.row_start[d->pairs.g[p] + 1]++;
  for (size_t g = 0; g < ng; g++)
    c.row_start[g + 1] += c.row_start[g];
  {
    size_t *fill = malloc((ng ? ng : 1) * sizeof *fill);
    if (!fill) {
      rc = npt_error_set(NPT_ENOMEM, "Identity: out of memory");
      goto done;
    }
    memcpy(fill, c.row_start, ng * sizeof *fill);
    for (size_t p = 0; p < np_; p++) {
      size_t k = fill[d->pairs.g[p]]++;
      c.co_t[k] = d->pairs.t[p];
      c.co_n[k] = d->co[p];
    }
    free(fill);
  }

  rc = npt__lsa_solve_rows(n, n, cost_row, &c, col4row);
  if (rc < 0)
    goto done;

  double fn_sum = 0, fp_sum = 0, gt_total = 0;
  for (size_t g = 0; g < ng; g++)
    gt_total += d->gt_count[g];
  for (size_t i = 0; i < n; i++) {
    size_t j = (size_t)col4row[i];
    if (i < ng && j < nt) {
      double co = co_of(&c, i, j);
      fn_sum += d->gt_count[i] - co;
      fp_sum += d->tr_count[j] - co;
    } else if (i < ng) {
      fn_sum += (j - nt == i) ? d->gt_count[i] : NO_MATCH_COST;
    } else if (j < nt) {
      fp_sum += (i - ng == j) ? d->tr_count[j] : NO_MATCH_COST;
    }
  }
  int64_t idfn = (int64_t)fn_sum, idfp = (int64_t)fp_sum;
  fill_scores(res, (int64_t)gt_total - idfn, idfp, idfn);

  if (pairs) {
    size_t k = 0;
    npt_id_pair *out = malloc((ng ? ng : 1) * sizeof *out);
    if (!out) {
      rc = npt_error_set(NPT_ENOMEM, "Identity: out of memory");
      goto done;
    }
    for (size_t g = 0; g < ng; g++) {
      size_t j = (size_t)col4row[g];
      if (j < nt && co_of(&c, g, j) > 0)
        out[k++] = (npt_id_pair){gt->id_values[g], pr->id_values[j]};
    }
    *pairs = out;
    *n_pairs = k;
  }

done:
  free(c.row_start);
  free(c.co_t);
  free(c.co_n);
  free(c.dummy);
  free(col4row);
  return rc;
}

void npt__identity_empty(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res) {
  /* TrackEval's early return: all boxes of the non-empty side are misses. */
  if (npt_mot_n_rows(pr) == 0)
    fill_scores(res, 0, 0, (int64_t)npt_mot_n_rows(gt));
  else
    fill_scores(res, 0, (int64_t)npt_mot_n_rows(pr), 0);
}
