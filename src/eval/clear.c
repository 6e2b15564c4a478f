/* CLEAR-MOT (Bernardin & Stiefelhagen 2008) as TrackEval 1.3.0 computes it
 * (trackeval/metrics/clear.py), plus the class accuracy of its matches.
 *
 * Each frame is matched by maximising 1000 * [pair continues the previous step's match] + IoU
 * over pairs with IoU >= 0.5 - eps.  TrackEval quirks kept on purpose: a step where only one
 * side has boxes leaves the "previous step" matches untouched (so a continuation bonus and
 * fragment state survive a frame in which the tracker output nothing), IDSW compares with the
 * last tracker id ever matched to the gt id, and MT/PT/ML use ratio > 0.8 and >= 0.2. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

#define CLEAR_THRESHOLD 0.5

struct npt__clear {
  size_t n_gt_ids;
  int64_t *last_id;   /* per gt id: tracker id last matched at any time, -1 for none */
  int64_t *step_id;   /* per gt id: tracker id matched at the previous step, -1 for none */
  uint32_t *step_set; /* gt ids whose step_id is set, so clearing costs O(matches) */
  size_t n_step_set;
  int64_t *gt_count, *matched_count, *frag_count;
  int64_t tp, fn, fp, idsw, class_matches;
  double motp_sum;
  /* scratch, grown to the largest frame */
  double *cost, *score;
  int64_t *mrow, *mcol;
  unsigned char *was_tracked;
  size_t cap_cells;
};

int npt__clear_init(npt__clear **out, size_t n_gt_ids) {
  npt__clear *c = calloc(1, sizeof *c);
  NPT_ALLOC_CHECK(c);
  size_t n = n_gt_ids ? n_gt_ids : 1;
  c->n_gt_ids = n_gt_ids;
  c->last_id = malloc(n * sizeof *c->last_id);
  c->step_id = malloc(n * sizeof *c->step_id);
  c->step_set = malloc(n * sizeof *c->step_set);
  c->gt_count = calloc(n, sizeof *c->gt_count);
  c->matched_count = calloc(n, sizeof *c->matched_count);
  c->frag_count = calloc(n, sizeof *c->frag_count);
  if (!c->last_id || !c->step_id || !c->step_set || !c->gt_count || !c->matched_count ||
      !c->frag_count) {
    npt__clear_free(c);
    return npt_error_set(NPT_ENOMEM, "CLEAR: out of memory");
  }
  for (size_t g = 0; g < n_gt_ids; g++)
    c->last_id[g] = c->step_id[g] = -1;
  *out = c;
  return 0;
}

void npt__clear_free(npt__clear *c) {
  if (!c)
    return;
  free(c->last_id);
  free(c->step_id);
  free(c->step_set);
  free(c->gt_count);
  free(c->matched_count);
  free(c->frag_count);
  free(c->cost);
  free(c->score);
  free(c->mrow);
  free(c->mcol);
  free(c->was_tracked);
  free(c);
}

static int scratch(npt__clear *c, size_t cells) {
  if (cells <= c->cap_cells)
    return 0;
  free(c->cost);
  free(c->score);
  free(c->mrow);
  free(c->mcol);
  free(c->was_tracked);
  c->cost = malloc(cells * sizeof *c->cost);
  c->score = malloc(cells * sizeof *c->score);
  c->mrow = malloc(cells * sizeof *c->mrow);
  c->mcol = malloc(cells * sizeof *c->mcol);
  c->was_tracked = malloc(cells);
  c->cap_cells = cells;
  if (!c->cost || !c->score || !c->mrow || !c->mcol || !c->was_tracked) {
    c->cap_cells = 0;
    return npt_error_set(NPT_ENOMEM, "CLEAR: out of memory for a %zu-cell frame", cells);
  }
  return 0;
}

int npt__clear_step(npt__clear *c, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                    const double *sim) {
  size_t ng = s->g1 - s->g0, np = s->p1 - s->p0;
  if (ng == 0) {
    c->fp += (int64_t)np;
    return 0;
  }
  if (np == 0) {
    c->fn += (int64_t)ng;
    for (size_t i = s->g0; i < s->g1; i++)
      c->gt_count[gt->id[i]]++;
    return 0;
  }
  NPT_TRY(scratch(c, ng * np));

  const double below = CLEAR_THRESHOLD - NPT__EPS;
  for (size_t i = 0; i < ng; i++) {
    int64_t prev = c->step_id[gt->id[s->g0 + i]];
    for (size_t j = 0; j < np; j++) {
      double v = sim[i * np + j];
      double score = (prev >= 0 && pr->id[s->p0 + j] == prev) ? 1000.0 + v : v;
      if (v < below)
        score = 0;
      c->score[i * np + j] = score;
      c->cost[i * np + j] = -score;
    }
  }
  NPT_TRY(npt_lsa_solve(ng, np, c->cost, c->mrow, c->mcol));
  size_t k = ng < np ? ng : np, nm = 0;
  for (size_t m = 0; m < k; m++) {
    size_t i = (size_t)c->mrow[m], j = (size_t)c->mcol[m];
    if (c->score[i * np + j] > 0 + NPT__EPS) {
      c->mrow[nm] = (int64_t)i;
      c->mcol[nm] = (int64_t)j;
      nm++;
    }
  }

  double motp = 0.0;
  for (size_t m = 0; m < nm; m++) {
    size_t gi = s->g0 + (size_t)c->mrow[m], pj = s->p0 + (size_t)c->mcol[m];
    int32_t g = gt->id[gi];
    int64_t t = pr->id[pj];
    if (c->last_id[g] >= 0 && c->last_id[g] != t)
      c->idsw++;
    c->matched_count[g]++;
    c->was_tracked[m] = c->step_id[g] >= 0;
    c->last_id[g] = t;
    motp += sim[(size_t)c->mrow[m] * np + (size_t)c->mcol[m]];
    if (gt->cls[gi] == pr->cls[pj])
      c->class_matches++;
  }
  for (size_t i = s->g0; i < s->g1; i++)
    c->gt_count[gt->id[i]]++;

  /* The previous-step matches become this step's; a gt id starting a new tracked run counts
   * one fragment (all but the first run are fragmentations). */
  for (size_t k2 = 0; k2 < c->n_step_set; k2++)
    c->step_id[c->step_set[k2]] = -1;
  c->n_step_set = 0;
  for (size_t m = 0; m < nm; m++) {
    int32_t g = gt->id[s->g0 + (size_t)c->mrow[m]];
    c->step_id[g] = pr->id[s->p0 + (size_t)c->mcol[m]];
    c->step_set[c->n_step_set++] = (uint32_t)g;
    if (!c->was_tracked[m])
      c->frag_count[g]++;
  }

  c->tp += (int64_t)nm;
  c->fn += (int64_t)(ng - nm);
  c->fp += (int64_t)(np - nm);
  if (nm > 0)
    c->motp_sum += motp;
  return 0;
}

void npt__clear_finish(npt__clear *c, npt_eval_result *res) {
  int64_t mt = 0, pt_or_mt = 0, frag = 0;
  for (size_t g = 0; g < c->n_gt_ids; g++) {
    if (c->gt_count[g] > 0) {
      double ratio = (double)c->matched_count[g] / (double)c->gt_count[g];
      mt += ratio > 0.8;
      pt_or_mt += ratio >= 0.2;
    }
    if (c->frag_count[g] > 0)
      frag += c->frag_count[g] - 1;
  }
  res->tp = c->tp;
  res->fn = c->fn;
  res->fp = c->fp;
  res->idsw = c->idsw;
  res->mt = mt;
  res->pt = pt_or_mt - mt;
  res->ml = (int64_t)c->n_gt_ids - mt - res->pt;
  res->frag = frag;
  double denom = (double)(c->tp + c->fn) > 1.0 ? (double)(c->tp + c->fn) : 1.0;
  res->mota = (double)(c->tp - c->fp - c->idsw) / denom;
  res->motp = c->motp_sum / ((double)c->tp > 1.0 ? (double)c->tp : 1.0);
  res->class_matches = c->class_matches;
  res->class_accuracy = (double)c->class_matches / ((double)c->tp > 1.0 ? (double)c->tp : 1.0);
}

void npt__clear_empty(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res) {
  /* TrackEval's early return: no final fields are computed, so MOTA and MOTP stay 0 even
   * when the tracker has false positives only. */
  res->tp = res->idsw = res->mt = res->pt = res->frag = 0;
  res->fn = res->fp = res->ml = 0;
  if (npt_mot_n_rows(pr) == 0) {
    res->fn = (int64_t)npt_mot_n_rows(gt);
    res->ml = (int64_t)npt_mot_n_ids(gt);
  } else {
    res->fp = (int64_t)npt_mot_n_rows(pr);
  }
  res->mota = res->motp = 0;
  res->class_matches = 0;
  res->class_accuracy = 0;
}
