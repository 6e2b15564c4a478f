/* Tracking evaluation: HOTA, CLEAR-MOT and Identity (IDF1) computed exactly as TrackEval 1.3.0
 * defines them, class accuracy of matched boxes, and scores for merge/split events.
 *
 * The module reads MOT text files (npt_mot_read), scores a prediction against ground truth
 * (npt_eval_run) and matches merge/split events through the Identity metric's global id
 * matching (npt_events_score).  docs/eval.md gives the definitions and TrackEval's quirks that
 * are reproduced on purpose.  Nothing here is collective: evaluation runs on one process. */
#ifndef NPT_EVAL_H
#define NPT_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------------------------------ */
/* Linear assignment */

/* Minimum-cost assignment of an nr x nc cost matrix (row-major), reproducing
 * scipy.optimize.linear_sum_assignment (scipy 1.4 and later) down to its choice among equal-cost
 * solutions: the same shortest augmenting path algorithm (Crouse 2016), the same column scan
 * order and tie rule, and the same transposition when nr > nc.  Writes k = min(nr, nc) pairs to
 * rows[] and cols[], rows ascending.  Returns 0, NPT_EINVAL when a cost is NaN or -inf, or
 * NPT_ENOMEM.  `cost` is not modified. */
int npt_lsa_solve(size_t nr, size_t nc, const double *cost, int64_t *rows, int64_t *cols);

/* ------------------------------------------------------------------------------------------ */
/* MOT files */

/* Boxes of one MOT text file, `frame,id,x,y,w,h[,conf,class,visibility[,extra]]`, held sorted
 * by frame (rows of one frame keep their file order) with ids relabelled 0..n_ids-1 in the
 * sorted order of the file's ids, as TrackEval does. */
typedef struct npt_mot npt_mot;

/* Reads `path`.  Blank lines and lines starting with '#' are skipped; 6 to 10 comma-separated
 * fields per row; class (field 8) defaults to 1; conf and visibility are read and ignored.  On
 * error returns NPT_EIO (cannot open or read; the message names the file) or NPT_EFORMAT (the
 * message names file:line), and *out is NULL.  The caller frees *out with npt_mot_free(). */
int npt_mot_read(const char *path, npt_mot **out);

/* One box as a row of a file, for building a table in memory (tests). */
typedef struct npt_mot_row {
  int64_t frame; /* 1-based */
  int64_t id;
  double box[4]; /* x, y (top-left corner), w, h in pixels */
  int64_t cls;
} npt_mot_row;

/* Builds a table from rows in "file order"; `name` is used in messages.  Same checks and
 * errors as npt_mot_read (line numbers are row indices + 1). */
int npt_mot_from_rows(const char *name, const npt_mot_row *rows, size_t n, npt_mot **out);
void npt_mot_free(npt_mot *m);

size_t npt_mot_n_rows(const npt_mot *m);
int64_t npt_mot_n_frames(const npt_mot *m); /* the largest frame number, 0 when empty */
size_t npt_mot_n_ids(const npt_mot *m);

/* ------------------------------------------------------------------------------------------ */
/* Metrics */

/* IoU of two (x, y, w, h) boxes exactly as TrackEval's _calculate_box_ious computes it in
 * double precision: corners x+w, y+h; no clipping; 0 when either area or the union is at most
 * machine epsilon. */
double npt_eval_box_iou(const double a[4], const double b[4]);

/* Every score of one evaluation.  Ratios are in [0, 1] (MOTA may be negative); HOTA-family
 * values are TrackEval's per-alpha values averaged over alpha = 0.05, 0.10, ..., 0.95. */
typedef struct npt_eval_result {
  double hota, deta, assa, loca, detre, detpr, assre, asspr;
  double mota, motp;
  int64_t idsw, frag, fp, fn, tp, mt, pt, ml;
  double idf1, idp, idr;
  int64_t idtp, idfp, idfn;
  double class_accuracy; /* class_matches / max(1, tp) */
  int64_t class_matches; /* CLEAR-matched pairs whose class agrees */
  int64_t n_frames;      /* timesteps 1..max frame of either file */
  int64_t n_gt_dets, n_pred_dets;
  int64_t n_gt_ids, n_pred_ids;
} npt_eval_result;

/* A gt id and the prediction id that the Identity metric's global assignment gives it, kept
 * only where the two share at least one IDTP (IoU >= 0.5 in some frame).  Raw file ids. */
typedef struct npt_id_pair {
  int64_t gt_id;
  int64_t pred_id;
} npt_id_pair;

/* Scores `pred` against `gt`.  When `pairs` is not NULL, *pairs receives the id
 * correspondences sorted by gt_id (free() it) and *n_pairs their number.  Returns 0, NPT_ENOMEM
 * or NPT_EINTERNAL. */
int npt_eval_run(const npt_mot *gt, const npt_mot *pred, npt_eval_result *res, npt_id_pair **pairs,
                 size_t *n_pairs);

/* ------------------------------------------------------------------------------------------ */
/* Merge and split events */

typedef enum npt_event_type { NPT_EVENT_MERGE = 0, NPT_EVENT_SPLIT = 1 } npt_event_type;

/* Frames by which a predicted event may miss the true one and still match. */
#define NPT_EVENT_FRAME_TOLERANCE 3

/* A list of events, each with a frame, a type and parent and child track ids. */
typedef struct npt_events npt_events;

int npt_events_init(npt_events **out);
void npt_events_free(npt_events *ev);
/* Appends one event (ids are copied).  Returns 0, NPT_EINVAL (no parent or no child) or
 * NPT_ENOMEM. */
int npt_events_add(npt_events *ev, int64_t frame, npt_event_type type, const int64_t *parents,
                   size_t n_parents, const int64_t *children, size_t n_children);
size_t npt_events_count(const npt_events *ev);

/* Reads an events.csv: the header `frame,type,parents,children`, then rows such as
 * `57,merge,3 8,21` (type merge or split, ids separated by spaces).  Blank lines and lines
 * starting with '#' are skipped.  Errors as npt_mot_read. */
int npt_events_read(const char *path, npt_events **out);

typedef struct npt_event_prf {
  int64_t n_gt, n_pred, tp;
  double precision, recall, f1; /* tp/max(1,n_pred), tp/max(1,n_gt), 2PR/(P+R) or 0 */
} npt_event_prf;

typedef struct npt_event_scores {
  npt_event_prf merge, split, all;
} npt_event_scores;

/* Matches predicted events to true ones one-to-one: a pair may match when the types agree,
 * the frames differ by at most NPT_EVENT_FRAME_TOLERANCE, and at least one gt parent and one gt
 * child correspond (through `pairs`, sorted by gt_id as npt_eval_run gives them) to a parent
 * and a child of the predicted event.  Among those pairs the matching has the most pairs, then
 * the smallest total frame difference.  When gt_match is not NULL, gt_match[i] receives the
 * index of the predicted event matched to gt event i, or -1.  Returns 0 or NPT_ENOMEM. */
int npt_events_score(const npt_events *gt, const npt_events *pred, const npt_id_pair *pairs,
                     size_t n_pairs, npt_event_scores *out, int64_t *gt_match);

/* ------------------------------------------------------------------------------------------ */
/* Reports */

/* One JSON object with the keys of docs/eval.md; `events` may be NULL. */
void npt_eval_write_json(FILE *f, const npt_eval_result *r, const npt_event_scores *events);
/* A short human-readable table. */
void npt_eval_write_table(FILE *f, const npt_eval_result *r, const npt_event_scores *events);

#endif
