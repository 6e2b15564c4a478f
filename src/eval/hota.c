/* HOTA (Luiten et al., IJCV 2021) as TrackEval 1.3.0 computes it (trackeval/metrics/hota.py).
 *
 * Pass 1 accumulates, for every (gt id, tracker id) pair, the sum over frames of
 * sim / (row sum + column sum - sim) of the frame's IoU matrix (numpy's summation order), and
 * the number of boxes of every id; between the passes these become the global alignment score
 * A = pmc / (n_gt + n_tr - pmc).  Pass 2 matches each frame by maximising A * IoU with the
 * scipy-equivalent assignment and counts, for each alpha, the matches whose IoU >= alpha - eps.
 * Pair statistics live in a hash map: only overlapping pairs have non-zero values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

struct npt__hota {
  size_t n_gt_ids, n_pr_ids;
  double *gt_count, *pr_count; /* boxes per id (numpy float counts) */
  npt__pairmap pairs;
  size_t pair_cap;
  double *pmc;     /* per pair: potential matches count */
  double *align;   /* per pair: global alignment score */
  int32_t *counts; /* per pair, per alpha: frames matched at that alpha */
  double tp[NPT__N_ALPHA], fn[NPT__N_ALPHA], fp[NPT__N_ALPHA], loca[NPT__N_ALPHA];
  /* scratch, grown to the largest frame */
  double *rowsum, *colsum, *cost;
  int64_t *mrow, *mcol;
  size_t cap_rows, cap_cols, cap_cells;
};

int npt__hota_init(npt__hota **out, size_t n_gt_ids, size_t n_pr_ids) {
  npt__hota *h = calloc(1, sizeof *h);
  NPT_ALLOC_CHECK(h);
  h->n_gt_ids = n_gt_ids;
  h->n_pr_ids = n_pr_ids;
  h->gt_count = calloc(n_gt_ids ? n_gt_ids : 1, sizeof *h->gt_count);
  h->pr_count = calloc(n_pr_ids ? n_pr_ids : 1, sizeof *h->pr_count);
  npt__pairmap_init(&h->pairs);
  if (!h->gt_count || !h->pr_count) {
    npt__hota_free(h);
    return npt_error_set(NPT_ENOMEM, "HOTA: out of memory");
  }
  *out = h;
  return 0;
}

void npt__hota_free(npt__hota *h) {
  if (!h)
    return;
  free(h->gt_count);
  free(h->pr_count);
  npt__pairmap_free(&h->pairs);
  free(h->pmc);
  free(h->align);
  free(h->counts);
  free(h->rowsum);
  free(h->colsum);
  free(h->cost);
  free(h->mrow);
  free(h->mcol);
  free(h);
}

/* Index of pair (g, t), creating it (zeroed) when new. */
static int pair_index(npt__hota *h, uint32_t g, uint32_t t, size_t *idx) {
  int added;
  NPT_TRY(npt__pairmap_get(&h->pairs, g, t, idx, &added));
  if (added && *idx >= h->pair_cap) {
    size_t cap = h->pair_cap ? 2 * h->pair_cap : 1024;
    double *pmc = realloc(h->pmc, cap * sizeof *pmc);
    if (pmc)
      h->pmc = pmc;
    double *align = realloc(h->align, cap * sizeof *align);
    if (align)
      h->align = align;
    int32_t *counts = realloc(h->counts, cap * NPT__N_ALPHA * sizeof *counts);
    if (counts)
      h->counts = counts;
    if (!pmc || !align || !counts)
      return npt_error_set(NPT_ENOMEM, "HOTA: out of memory for %zu id pairs", cap);
    h->pair_cap = cap;
  }
  if (added) {
    h->pmc[*idx] = 0;
    h->align[*idx] = 0;
    memset(&h->counts[*idx * NPT__N_ALPHA], 0, NPT__N_ALPHA * sizeof *h->counts);
  }
  return 0;
}

static int scratch(npt__hota *h, size_t ng, size_t np) {
  if (ng > h->cap_rows) {
    double *r = realloc(h->rowsum, ng * sizeof *r);
    NPT_ALLOC_CHECK(r);
    h->rowsum = r;
    h->cap_rows = ng;
  }
  if (np > h->cap_cols) {
    double *c = realloc(h->colsum, np * sizeof *c);
    NPT_ALLOC_CHECK(c);
    h->colsum = c;
    h->cap_cols = np;
  }
  size_t cells = ng * np; /* also bounds the min(ng, np) matches */
  if (cells > h->cap_cells) {
    double *c = realloc(h->cost, cells * sizeof *c);
    NPT_ALLOC_CHECK(c);
    h->cost = c;
    int64_t *a = realloc(h->mrow, cells * sizeof *a);
    NPT_ALLOC_CHECK(a);
    h->mrow = a;
    int64_t *b = realloc(h->mcol, cells * sizeof *b);
    NPT_ALLOC_CHECK(b);
    h->mcol = b;
    h->cap_cells = cells;
  }
  return 0;
}

int npt__hota_pass1(npt__hota *h, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                    const double *sim) {
  size_t ng = s->g1 - s->g0, np = s->p1 - s->p0;
  for (size_t i = s->g0; i < s->g1; i++)
    h->gt_count[gt->id[i]] += 1;
  for (size_t j = s->p0; j < s->p1; j++)
    h->pr_count[pr->id[j]] += 1;
  if (ng == 0 || np == 0)
    return 0;
  NPT_TRY(scratch(h, ng, np));

  /* similarity.sum(1) reduces contiguous rows (pairwise); similarity.sum(0) adds rows one after
   * another, except for a single column, which numpy sees as contiguous. */
  for (size_t i = 0; i < ng; i++)
    h->rowsum[i] = npt__np_sum(sim + i * np, np);
  if (np == 1) {
    h->colsum[0] = npt__np_sum(sim, ng);
  } else {
    for (size_t j = 0; j < np; j++)
      h->colsum[j] = 0.0;
    for (size_t i = 0; i < ng; i++)
      for (size_t j = 0; j < np; j++)
        h->colsum[j] += sim[i * np + j];
  }

  for (size_t i = 0; i < ng; i++)
    for (size_t j = 0; j < np; j++) {
      double v = sim[i * np + j];
      if (v == 0.0)
        continue;
      double denom = h->colsum[j] + h->rowsum[i] - v;
      if (!(denom > 0 + NPT__EPS))
        continue;
      double iou_ratio = v / denom;
      if (iou_ratio == 0.0)
        continue;
      size_t p;
      NPT_TRY(pair_index(h, (uint32_t)gt->id[s->g0 + i], (uint32_t)pr->id[s->p0 + j], &p));
      h->pmc[p] += iou_ratio;
    }
  return 0;
}

void npt__hota_between(npt__hota *h) {
  for (size_t p = 0; p < h->pairs.count; p++) {
    double gc = h->gt_count[h->pairs.g[p]], tc = h->pr_count[h->pairs.t[p]];
    h->align[p] = h->pmc[p] / (gc + tc - h->pmc[p]);
  }
}

int npt__hota_pass2(npt__hota *h, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                    const double *sim) {
  size_t ng = s->g1 - s->g0, np = s->p1 - s->p0;
  if (ng == 0 || np == 0) {
    for (int a = 0; a < NPT__N_ALPHA; a++) {
      h->fp[a] += (double)np;
      h->fn[a] += (double)ng;
    }
    return 0;
  }
  NPT_TRY(scratch(h, ng, np));
  for (size_t i = 0; i < ng; i++)
    for (size_t j = 0; j < np; j++) {
      double v = sim[i * np + j], align = 0.0;
      if (v != 0.0) {
        size_t p =
            npt__pairmap_find(&h->pairs, (uint32_t)gt->id[s->g0 + i], (uint32_t)pr->id[s->p0 + j]);
        if (p != SIZE_MAX)
          align = h->align[p];
      }
      h->cost[i * np + j] = -(align * v);
    }
  NPT_TRY(npt_lsa_solve(ng, np, h->cost, h->mrow, h->mcol));
  size_t k = ng < np ? ng : np;

  for (int a = 0; a < NPT__N_ALPHA; a++) {
    double thr = NPT__ALPHA(a) - NPT__EPS;
    double loc = 0.0;
    size_t n = 0;
    for (size_t m = 0; m < k; m++) {
      size_t i = (size_t)h->mrow[m], j = (size_t)h->mcol[m];
      double v = sim[i * np + j];
      if (!(v >= thr))
        continue;
      n++;
      loc += v;
      size_t p;
      NPT_TRY(pair_index(h, (uint32_t)gt->id[s->g0 + i], (uint32_t)pr->id[s->p0 + j], &p));
      h->counts[p * NPT__N_ALPHA + a] += 1;
    }
    h->tp[a] += (double)n;
    h->fn[a] += (double)(ng - n);
    h->fp[a] += (double)(np - n);
    if (n > 0)
      h->loca[a] += loc;
  }
  return 0;
}

static double mean_over_alpha(const double *v) {
  return npt__np_sum(v, NPT__N_ALPHA) / (double)NPT__N_ALPHA;
}

static double max1(double x) {
  return x > 1.0 ? x : 1.0;
}

void npt__hota_finish(npt__hota *h, npt_eval_result *res) {
  double hota[NPT__N_ALPHA], deta[NPT__N_ALPHA], assa[NPT__N_ALPHA], loca[NPT__N_ALPHA];
  double detre[NPT__N_ALPHA], detpr[NPT__N_ALPHA], assre[NPT__N_ALPHA], asspr[NPT__N_ALPHA];
  for (int a = 0; a < NPT__N_ALPHA; a++) {
    /* Association: per pair, matches weighted by the pair's Jaccard / recall / precision,
     * averaged over all matches at this alpha. */
    double sa = 0, sr = 0, sp = 0;
    for (size_t p = 0; p < h->pairs.count; p++) {
      double mc = h->counts[p * NPT__N_ALPHA + a];
      if (mc == 0)
        continue;
      double gc = h->gt_count[h->pairs.g[p]], tc = h->pr_count[h->pairs.t[p]];
      sa += mc * (mc / max1(gc + tc - mc));
      sr += mc * (mc / max1(gc));
      sp += mc * (mc / max1(tc));
    }
    double tp = h->tp[a];
    assa[a] = sa / max1(tp);
    assre[a] = sr / max1(tp);
    asspr[a] = sp / max1(tp);
    loca[a] = (h->loca[a] > 1e-10 ? h->loca[a] : 1e-10) / (tp > 1e-10 ? tp : 1e-10);
    detre[a] = tp / max1(tp + h->fn[a]);
    detpr[a] = tp / max1(tp + h->fp[a]);
    deta[a] = tp / max1(tp + h->fn[a] + h->fp[a]);
    hota[a] = sqrt(deta[a] * assa[a]);
  }
  res->hota = mean_over_alpha(hota);
  res->deta = mean_over_alpha(deta);
  res->assa = mean_over_alpha(assa);
  res->loca = mean_over_alpha(loca);
  res->detre = mean_over_alpha(detre);
  res->detpr = mean_over_alpha(detpr);
  res->assre = mean_over_alpha(assre);
  res->asspr = mean_over_alpha(asspr);
}

void npt__hota_empty(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res) {
  /* TrackEval returns early when either side has no boxes at all: every score stays 0 and
   * LocA is set to 1. */
  (void)gt;
  (void)pr;
  res->hota = res->deta = res->assa = 0;
  res->detre = res->detpr = res->assre = res->asspr = 0;
  res->loca = 1.0;
}
