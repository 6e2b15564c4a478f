/* Scoring one prediction against ground truth: walks the timesteps twice, computing each
 * frame's IoU matrix once per pass and handing it to the metrics (HOTA needs its global id
 * statistics from a first pass before it can match). */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

/* The timesteps where either side has boxes, in frame order.  Frames where neither has any
 * change nothing in TrackEval's metrics, so they are not visited. */
static int build_steps(const npt_mot *gt, const npt_mot *pr, npt__step **out, size_t *n_out,
                       size_t *max_cells) {
  npt__step *steps = malloc((gt->n_steps + pr->n_steps + 1) * sizeof *steps);
  NPT_ALLOC_CHECK(steps);
  size_t a = 0, b = 0, n = 0;
  *max_cells = 0;
  while (a < gt->n_steps || b < pr->n_steps) {
    int64_t fa = a < gt->n_steps ? gt->step_frame[a] : INT64_MAX;
    int64_t fb = b < pr->n_steps ? pr->step_frame[b] : INT64_MAX;
    npt__step s = {fa < fb ? fa : fb, 0, 0, 0, 0};
    if (fa == s.frame) {
      s.g0 = gt->step_start[a];
      s.g1 = gt->step_start[a + 1];
      a++;
    }
    if (fb == s.frame) {
      s.p0 = pr->step_start[b];
      s.p1 = pr->step_start[b + 1];
      b++;
    }
    size_t cells = (s.g1 - s.g0) * (s.p1 - s.p0);
    if (cells > *max_cells)
      *max_cells = cells;
    steps[n++] = s;
  }
  *out = steps;
  *n_out = n;
  return 0;
}

static int empty_pairs(npt_id_pair **pairs, size_t *n_pairs) {
  if (!pairs)
    return 0;
  *pairs = malloc(sizeof **pairs);
  NPT_ALLOC_CHECK(*pairs);
  *n_pairs = 0;
  return 0;
}

int npt_eval_run(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res, npt_id_pair **pairs,
                 size_t *n_pairs) {
  memset(res, 0, sizeof *res);
  if (pairs) {
    *pairs = NULL;
    *n_pairs = 0;
  }
  res->n_frames = gt->max_frame > pr->max_frame ? gt->max_frame : pr->max_frame;
  res->n_gt_dets = (int64_t)gt->n;
  res->n_pred_dets = (int64_t)pr->n;
  res->n_gt_ids = (int64_t)gt->n_ids;
  res->n_pred_ids = (int64_t)pr->n_ids;

  if (gt->n == 0 || pr->n == 0) {
    npt__hota_empty(gt, pr, res);
    npt__clear_empty(gt, pr, res);
    npt__identity_empty(gt, pr, res);
    return empty_pairs(pairs, n_pairs);
  }

  npt__step *steps = NULL;
  size_t n_steps = 0, max_cells = 0;
  NPT_TRY(build_steps(gt, pr, &steps, &n_steps, &max_cells));
  double *sim = malloc((max_cells ? max_cells : 1) * sizeof *sim);
  npt__hota *h = NULL;
  npt__clear *c = NULL;
  npt__identity *d = NULL;
  int rc = 0;
  if (!sim) {
    rc = npt_error_set(NPT_ENOMEM, "evaluation: out of memory for a %zu-cell frame", max_cells);
    goto done;
  }
  if ((rc = npt__hota_init(&h, gt->n_ids, pr->n_ids)) < 0 ||
      (rc = npt__clear_init(&c, gt->n_ids)) < 0 ||
      (rc = npt__identity_init(&d, gt->n_ids, pr->n_ids)) < 0)
    goto done;

  for (size_t k = 0; k < n_steps; k++) {
    npt__similarity(gt, pr, &steps[k], sim);
    if ((rc = npt__hota_pass1(h, gt, pr, &steps[k], sim)) < 0 ||
        (rc = npt__identity_step(d, gt, pr, &steps[k], sim)) < 0)
      goto done;
  }
  npt__hota_between(h);
  for (size_t k = 0; k < n_steps; k++) {
    npt__similarity(gt, pr, &steps[k], sim);
    if ((rc = npt__hota_pass2(h, gt, pr, &steps[k], sim)) < 0 ||
        (rc = npt__clear_step(c, gt, pr, &steps[k], sim)) < 0)
      goto done;
  }
  npt__hota_finish(h, res);
  npt__clear_finish(c, res);
  rc = npt__identity_finish(d, gt, pr, res, pairs, n_pairs);

done:
  npt__hota_free(h);
  npt__clear_free(c);
  npt__identity_free(d);
  free(sim);
  free(steps);
  return rc;
}
