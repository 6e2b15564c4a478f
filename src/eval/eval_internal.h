/* Internals shared by the files of src/eval: the MOT table layout, the timestep walk, numpy's
 * summation order, the (gt id, tracker id) pair map and the per-metric accumulators. */
#ifndef NPT_EVAL_INTERNAL_H
#define NPT_EVAL_INTERNAL_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/eval.h"

/* Bit-exact agreement with numpy needs every product rounded before it is added: a fused
 * multiply-add (allowed by GCC's default -ffp-contract=fast in GNU C mode, and by clang's
 * default within expressions, once -march enables FMA) changes IoUs in the last bit, which
 * flips comparisons at the thresholds.  CMakeLists.txt compiles src/eval/ with
 * -ffp-contract=off; clang also gets the standard pragma (GCC ignores it, with a warning). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* np.finfo('float').eps, which TrackEval adds to or subtracts from its thresholds. */
#define NPT__EPS DBL_EPSILON

/* HOTA's 19 alpha thresholds: np.arange(0.05, 0.99, 0.05)[a] == 0.05 + a * 0.05 bit for bit. */
#define NPT__N_ALPHA  19
#define NPT__ALPHA(a) (0.05 + (double)(a)*0.05)

struct npt_mot {
  char *name;          /* file name for messages */
  size_t n;            /* rows */
  int64_t max_frame;   /* 0 when empty */
  int32_t *id;         /* relabelled id per row, 0..n_ids-1 */
  int64_t *raw_id;     /* id as in the file, per row */
  double *box;         /* x, y, w, h per row */
  int64_t *cls;        /* class per row */
  size_t n_ids;        /* distinct ids */
  int64_t *id_values;  /* sorted distinct raw ids */
  size_t n_steps;      /* distinct frames */
  int64_t *step_frame; /* frame of each distinct frame, ascending */
  size_t *step_start;  /* rows of step k are [step_start[k], step_start[k+1]) */
};

/* Events: ids of all events in one array, each event holding offsets into it. */
typedef struct npt__event {
  int64_t frame;
  npt_event_type type;
  size_t parents, n_parents, children, n_children; /* offsets into ids[] and counts */
} npt__event;

struct npt_events {
  npt__event *ev;
  size_t n, cap;
  int64_t *ids;
  size_t n_ids, ids_cap;
};

/* One timestep where at least one side has boxes: gt rows [g0, g1), prediction rows [p0, p1). */
typedef struct npt__step {
  int64_t frame;
  size_t g0, g1, p0, p1;
} npt__step;

/* Sum of a[0..n) in numpy's order for a contiguous reduction (pairwise, 8 accumulators in
 * blocks of up to 128), so that sums equal numpy's bit for bit. */
double npt__np_sum(const double *a, size_t n);

/* S[i * (p1-p0) + j] = IoU of gt row g0+i with prediction row p0+j. */
void npt__similarity(const npt_mot *gt, const npt_mot *pr, const npt__step *s, double *sim);

/* Assignment on rows fetched one at a time (nr <= nc).  row() returns a pointer to row i's nc
 * costs, either its own storage or `buf` filled.  col4row[i] receives row i's column.  Returns
 * 0, NPT_EINVAL (infeasible) or NPT_ENOMEM. */
typedef const double *(*npt__lsa_row_fn)(void *ctx, size_t i, double *buf);
int npt__lsa_solve_rows(size_t nr, size_t nc, npt__lsa_row_fn row, void *ctx, int64_t *col4row);

/* Open-addressing map from (gt id, tracker id) to a dense index 0..count-1 in insertion order. */
typedef struct npt__pairmap {
  uint64_t *slots; /* key + 1, 0 = empty */
  size_t *slot_index;
  size_t cap;      /* power of two */
  size_t count;    /* pairs stored */
  uint32_t *g, *t; /* pair of each index */
  size_t g_cap;
} npt__pairmap;

void npt__pairmap_init(npt__pairmap *m);
void npt__pairmap_free(npt__pairmap *m);
/* Index of (g, t), added when absent (*added set to 1).  Returns 0 or NPT_ENOMEM. */
int npt__pairmap_get(npt__pairmap *m, uint32_t g, uint32_t t, size_t *idx, int *added);
/* Index of (g, t), or SIZE_MAX when absent. */
size_t npt__pairmap_find(const npt__pairmap *m, uint32_t g, uint32_t t);

/* Metrics accumulate over the timesteps in two passes (HOTA needs global id statistics before it
 * can match), each pass handed the similarity matrix of the step. */
typedef struct npt__hota npt__hota;
int npt__hota_init(npt__hota **h, size_t n_gt_ids, size_t n_pr_ids);
void npt__hota_free(npt__hota *h);
int npt__hota_pass1(npt__hota *h, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                    const double *sim);
void npt__hota_between(npt__hota *h);
int npt__hota_pass2(npt__hota *h, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                    const double *sim);
void npt__hota_finish(npt__hota *h, npt_eval_result *res);
void npt__hota_empty(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res);

typedef struct npt__clear npt__clear;
int npt__clear_init(npt__clear **c, size_t n_gt_ids);
void npt__clear_free(npt__clear *c);
int npt__clear_step(npt__clear *c, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                    const double *sim);
void npt__clear_finish(npt__clear *c, npt_eval_result *res);
void npt__clear_empty(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res);

typedef struct npt__identity npt__identity;
int npt__identity_init(npt__identity **d, size_t n_gt_ids, size_t n_pr_ids);
void npt__identity_free(npt__identity *d);
int npt__identity_step(npt__identity *d, const npt_mot *gt, const npt_mot *pr, const npt__step *s,
                       const double *sim);
/* Solves the global assignment; fills the ID fields and, when pairs != NULL, the id pairs. */
int npt__identity_finish(npt__identity *d, const npt_mot *gt, const npt_mot *pr,
                         npt_eval_result *res, npt_id_pair **pairs, size_t *n_pairs);
void npt__identity_empty(const npt_mot *gt, const npt_mot *pr, npt_eval_result *res);

#endif
