/* The online tracker (tracker.h states the cascade, the lifecycle and the identity rules).
 *
 * Tracks live in one array in order of birth, so that every loop over them, and with it every
 * tie between them, runs in birth order.  Candidate pairs of each stage come from a uniform
 * grid over the centres of the frame's detections: a track looks only at the cells that its
 * gate (stage 1: the Mahalanobis ellipse's bounding box) or its box (stages 2-4: any detection
 * whose box overlaps it) can reach, so a frame costs time about linear in the number of
 * particles. */
#include "track/tracker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "track/assign.h"
#include "track/kalman.h"

enum { ST_NEW = 0, ST_TRACKED = 1, ST_LOST = 2 };
enum { DET_IGNORED = 0, DET_HIGH = 1, DET_LOW = 2 };

typedef struct track {
  npt_kalman_state kf;
  npt_kalman_gate gate; /* of the prediction for the current frame */
  int64_t id;           /* 0 until confirmed */
  int64_t last_frame;   /* last frame with a match */
  int hits;             /* consecutive frames with a match */
  int state;
  int gate_ok;
  int has_embed;
  int npend;     /* matches before confirmation, held in the tracker's pend[] */
  int ended;     /* merged, split or a duplicate this frame: removed now */
  int64_t match; /* this frame's detection, or -1 */
  double score;  /* the scores of its detections, smoothed (score_momentum) */
  double wh[2];  /* the sizes of its detections, smoothed (size_momentum) */
} track;

/* A lineage link found by the merge or split pass: a child detection and one parent's id. */
typedef struct lineage_link {
  int kind; /* NPT_TRACK_MERGE or NPT_TRACK_SPLIT; 0: already gathered into an event */
  size_t j;
  int64_t parent;
} lineage_link;

/* A confirmed track in stage 1's cascade: frames since its last match, and its slot. */
typedef struct cascade_key {
  int64_t age;
  size_t slot;
} cascade_key;

/* A detection that starts a track, with what orders the births. */
typedef struct birth_key {
  double score, y, x;
  size_t j;
} birth_key;

struct npt_tracker {
  npt_track_settings s;
  npt_kalman_settings ks;
  int dim;
  double chi2;
  int64_t frame; /* last frame stepped */
  int started;
  int64_t next_id;
  track *tr;  /* tracks, in order of birth */
  float *emb; /* tr[i]'s embedding: emb[i * dim ..] */
  size_t nt, cap_t;
  /* Per frame, for up to cap_d detections. */
  size_t cap_d;
  unsigned char *kind;
  unsigned char *child; /* per detection: 1 when a merge or split made it: born confirmed */
  double (*meas)[4];
  double *inv_norm;    /* 1 / |embedding|, 0 without one */
  int64_t *det_track;  /* per detection: its track's slot, or -1 */
  int64_t *col_local;  /* per detection: its column in the stage being solved; -1 between stages */
  size_t *cols;        /* a stage's columns: detections, ascending */
  int64_t *row_to_col; /* per assignment row (a stage's track): its detection, or -1 */
  size_t *order;       /* per detection: its grid cell */
  size_t *cand;        /* a grid query's detections */
  size_t *rows;        /* a stage's rows: track slots */
  cascade_key *levels; /* stage 1's cascade: confirmed tracks by frames since their last match */
  size_t *cell_start, *cell_item, cap_cells; /* grid: cell c holds cell_item[cell_start[c]..] */
  size_t gnx, gny;
  double gx0, gy0, gcell, max_half_w, max_half_h;
  npt_assign_edge *edges;
  size_t cap_e;
  npt_assign_work *aw;
  birth_key *births;
  /* Backfill: track slot i's matches before its confirmation, (frame, index, 0), are
   * pend[i * npend_max ..]; the confirmations of the last step hand them ids in bf[0..nbf). */
  int npend_max; /* confirm_frames - 1 */
  npt_track_backfill *pend, *bf;
  size_t nbf;
  /* Lineage of this step: links (kind, child detection, parent id) found by the merge and split
   * passes, turned into events once the children have ids. */
  lineage_link *links;
  size_t nlinks, cap_links;
  npt_track_event *ev;
  int64_t *ev_ids;
  size_t nev;
  size_t nlast; /* detections of the last step that completed */
};

npt_track_settings npt_track_settings_default(void) {
  npt_track_settings s = {
      .high_score = 0.4,
      .low_score = 0.1,
      .new_track_score = 0.4,
      .match_cost = 0.5,
      .embed_weight = 0.5,
      .iou_match = 0.8,
      .low_match = 0.5,
      .unconfirmed_match = 0.7,
      .confirm_frames = 2,
      .lost_frames = 30,
      .merge_cover = 0.3,
      .merge_growth = 1.2,
      .split_shrink = 0.8,
      .split_reach = 2.0,
      .low_track_score = 0.4,
      .duplicate_iou = 0.85,
      .size_momentum = 0.8,
      .score_momentum = 0.9,
      .embed_momentum = 0.9,
      .gate = NPT_TRACK_GATE_4D,
      .std_weight_position = NPT_KALMAN_STD_WEIGHT_POSITION,
      .std_weight_velocity = NPT_KALMAN_STD_WEIGHT_VELOCITY,
  };
  return s;
}

static int check_settings(const npt_track_settings *s) {
#define IN(v, lo, hi)                                                                              \
  if (!(s->v >= (lo) && s->v <= (hi)))                                                             \
    return npt_error_set(NPT_EINVAL, "tracker: track.%s must be in [%g, %g] (got %g)", #v,         \
                         (double)(lo), (double)(hi), (double)(s->v));
  IN(high_score, 0, 1)
  IN(low_score, 0, 1)
  IN(new_track_score, 0, 1)
  IN(match_cost, 0, 3)
  IN(embed_weight, 0, 1)
  IN(iou_match, 0, 1)
  IN(low_match, 0, 1)
  IN(unconfirmed_match, 0, 1)
  IN(confirm_frames, 1, 1000)
  IN(lost_frames, 0, 1000000)
  IN(merge_cover, 0, 1)
  IN(merge_growth, 1, 100)
  IN(split_shrink, 0, 1)
  IN(split_reach, 0, 10)
  IN(low_track_score, 0, 1)
  IN(score_momentum, 0, 1)
  IN(duplicate_iou, 0, 1)
  IN(size_momentum, 0, 1)
  IN(embed_momentum, 0, 1)
  IN(std_weight_position, 1e-6, 10)
  IN(std_weight_velocity, 1e-6, 10)
#undef IN
  if (s->low_score > s->high_score)
    return npt_error_set(NPT_EINVAL, "tracker: track.low_score (%g) is above track.high_score (%g)",
                         s->low_score, s->high_score);
  if (s->gate != NPT_TRACK_GATE_4D && s->gate != NPT_TRACK_GATE_POSITION)
    return npt_error_set(NPT_EINVAL, "tracker: unknown gate kind %d", (int)s->gate);
  return 0;
}

int npt_tracker_create(const npt_track_settings *s, int embed_dim, npt_tracker **out) {
  *out = NULL;
  NPT_TRY(check_settings(s));
  if (embed_dim < 0 || embed_dim > 65536)
    return npt_error_set(NPT_EINVAL, "tracker: embedding size %d outside [0, 65536]", embed_dim);
  npt_tracker *t = calloc(1, sizeof *t);
  NPT_ALLOC_CHECK(t);
  t->s = *s;
  t->ks.std_weight_position = s->std_weight_position;
  t->ks.std_weight_velocity = s->std_weight_velocity;
  t->dim = embed_dim;
  t->chi2 = s->gate == NPT_TRACK_GATE_4D ? NPT_KALMAN_CHI2_4DOF : NPT_KALMAN_CHI2_2DOF;
  t->npend_max = s->confirm_frames - 1;
  int rc = npt_assign_work_init(&t->aw);
  if (rc < 0) {
    free(t);
    return rc;
  }
  *out = t;
  return 0;
}

void npt_tracker_free(npt_tracker *t) {
  if (!t)
    return;
  free(t->tr);
  free(t->emb);
  free(t->kind);
  free(t->child);
  free(t->meas);
  free(t->inv_norm);
  free(t->det_track);
  free(t->col_local);
  free(t->cols);
  free(t->row_to_col);
  free(t->order);
  free(t->cand);
  free(t->rows);
  free(t->levels);
  free(t->cell_start);
  free(t->cell_item);
  free(t->edges);
  free(t->births);
  free(t->pend);
  free(t->bf);
  free(t->links);
  free(t->ev);
  free(t->ev_ids);
  npt_assign_work_free(t->aw);
  free(t);
}

size_t npt_tracker_num_tracks(const npt_tracker *t) {
  return t->nt;
}
int64_t npt_tracker_num_ids(const npt_tracker *t) {
  return t->next_id;
}
size_t npt_tracker_backfill(const npt_tracker *t, const npt_track_backfill **out) {
  *out = t->bf;
  return t->nbf;
}
int npt_tracker_box(const npt_tracker *t, size_t index, float box[4]) {
  if (index >= t->nlast || t->det_track[index] < 0)
    return 0;
  const double *z = t->meas[index], *wh = t->tr[t->det_track[index]].wh;
  box[0] = (float)(z[0] - 0.5 * wh[0]);
  box[1] = (float)(z[1] - 0.5 * wh[1]);
  box[2] = (float)wh[0];
  box[3] = (float)wh[1];
  return 1;
}
size_t npt_tracker_events(const npt_tracker *t, const npt_track_event **out) {
  *out = t->ev;
  return t->nev;
}

#define GROW(p, n)                                                                                 \
  do {                                                                                             \
    void *npt__q = realloc((p), (n) * sizeof *(p));                                                \
    if (!npt__q)                                                                                   \
      return npt_error_set(NPT_ENOMEM, "tracker: out of memory (%zu elements)", (size_t)(n));      \
    (p) = npt__q;                                                                                  \
  } while (0)

/* Room for `nd` detections, and for the tracks alive plus as many births. */
static int reserve(npt_tracker *t, size_t nd) {
  if (nd > t->cap_d) {
    size_t cap = nd > 2 * t->cap_d ? nd : 2 * t->cap_d;
    GROW(t->kind, cap);
    GROW(t->child, cap);
    GROW(t->meas, cap);
    GROW(t->inv_norm, cap);
    GROW(t->det_track, cap);
    GROW(t->col_local, cap);
    GROW(t->cols, cap);
    for (size_t j = t->cap_d; j < cap; j++)
      t->col_local[j] = -1;
    GROW(t->order, cap);
    GROW(t->cand, cap);
    GROW(t->cell_item, cap);
    GROW(t->births, cap);
    t->cap_d = cap;
  }
  size_t need_t = t->nt + nd;
  if (need_t > t->cap_t || !t->tr) {
    size_t cap = need_t > 2 * t->cap_t ? need_t : 2 * t->cap_t;
    if (cap == 0)
      cap = 16;
    GROW(t->tr, cap);
    GROW(t->row_to_col, cap);
    GROW(t->rows, cap);
    GROW(t->levels, cap);
    if (t->dim > 0)
      GROW(t->emb, cap * (size_t)t->dim);
    if (t->npend_max > 0) {
      GROW(t->pend, cap * (size_t)t->npend_max);
      GROW(t->bf, cap * (size_t)t->npend_max);
    }
    t->cap_t = cap;
  }
  if (t->nt + nd > t->cap_links) {
    size_t cap = t->cap_t + t->cap_d;
    GROW(t->links, cap);
    GROW(t->ev, cap);
    GROW(t->ev_ids, 2 * cap);
    t->cap_links = cap;
  }
  return 0;
}

/* ---- the grid over detection centres ---- */

/* Cells about the mean detection size, at most 4 per detection (plus a few): a query then reads
 * a handful of cells and each cell a handful of detections. */
static int grid_build(npt_tracker *t, size_t n) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY, size = 0;
  size_t m = 0;
  t->max_half_w = t->max_half_h = 0;
  for (size_t j = 0; j < n; j++) {
    if (t->kind[j] == DET_IGNORED)
      continue;
    const double *z = t->meas[j];
    x0 = fmin(x0, z[0]);
    x1 = fmax(x1, z[0]);
    y0 = fmin(y0, z[1]);
    y1 = fmax(y1, z[1]);
    size += fmax(z[2], z[3]);
    t->max_half_w = fmax(t->max_half_w, 0.5 * z[2]);
    t->max_half_h = fmax(t->max_half_h, 0.5 * z[3]);
    m++;
  }
  if (m == 0) {
    t->gnx = t->gny = 0;
    return 0;
  }
  double cell = fmax(size / (double)m, 1e-3);
  const double max_cells = 4.0 * (double)m + 64;
  double nx = floor((x1 - x0) / cell) + 1, ny = floor((y1 - y0) / cell) + 1;
  while (nx * ny > max_cells) {
    cell *= sqrt(nx * ny / max_cells) * 1.01;
    nx = floor((x1 - x0) / cell) + 1;
    ny = floor((y1 - y0) / cell) + 1;
  }
  t->gnx = (size_t)nx;
  t->gny = (size_t)ny;
  t->gx0 = x0;
  t->gy0 = y0;
  t->gcell = cell;
  size_t nc = t->gnx * t->gny;
  if (nc + 1 > t->cap_cells) {
    GROW(t->cell_start, nc + 1);
    t->cap_cells = nc + 1;
  }
  size_t *start = t->cell_start;
  memset(start, 0, (nc + 1) * sizeof *start);
  /* Counting sort by cell; detections of a cell stay in index order.  order[j] holds j's cell. */
  for (size_t j = 0; j < n; j++) {
    if (t->kind[j] == DET_IGNORED)
      continue;
    size_t cx = (size_t)((t->meas[j][0] - x0) / cell), cy = (size_t)((t->meas[j][1] - y0) / cell);
    if (cx >= t->gnx)
      cx = t->gnx - 1;
    if (cy >= t->gny)
      cy = t->gny - 1;
    t->order[j] = cy * t->gnx + cx;
    start[t->order[j] + 1]++;
  }
  for (size_t c = 0; c < nc; c++)
    start[c + 1] += start[c];
  for (size_t j = 0; j < n; j++)
    if (t->kind[j] != DET_IGNORED)
      t->cand[start[t->order[j]]++] = j;
  /* start[c] is now the end of cell c: shift back. */
  for (size_t c = nc; c > 0; c--)
    start[c] = start[c - 1];
  start[0] = 0;
  memcpy(t->cell_item, t->cand, m * sizeof *t->cand);
  return 0;
}

/* Detections whose centre lies in [x0, x1] x [y0, y1] (a superset: whole cells), into t->cand;
 * returns how many. */
static size_t grid_query(npt_tracker *t, double x0, double x1, double y0, double y1) {
  if (t->gnx == 0 || !(x1 >= x0 && y1 >= y0))
    return 0;
  double fx0 = floor((x0 - t->gx0) / t->gcell), fx1 = floor((x1 - t->gx0) / t->gcell);
  double fy0 = floor((y0 - t->gy0) / t->gcell), fy1 = floor((y1 - t->gy0) / t->gcell);
  if (fx1 < 0 || fy1 < 0 || fx0 >= (double)t->gnx || fy0 >= (double)t->gny)
    return 0;
  size_t cx0 = fx0 < 0 ? 0 : (size_t)fx0, cy0 = fy0 < 0 ? 0 : (size_t)fy0;
  size_t cx1 = fx1 >= (double)t->gnx ? t->gnx - 1 : (size_t)fx1;
  size_t cy1 = fy1 >= (double)t->gny ? t->gny - 1 : (size_t)fy1;
  size_t k = 0;
  for (size_t cy = cy0; cy <= cy1; cy++) {
    const size_t *start = t->cell_start + cy * t->gnx;
    for (size_t e = start[cx0]; e < start[cx1 + 1]; e++)
      t->cand[k++] = t->cell_item[e];
  }
  return k;
}

/* ---- the stages ---- */

static int push_edge(npt_tracker *t, size_t *ne, size_t row, size_t col, double cost) {
  if (*ne == t->cap_e) {
    size_t cap = t->cap_e ? 2 * t->cap_e : 1024;
    GROW(t->edges, cap);
    t->cap_e = cap;
  }
  t->edges[(*ne)++] = (npt_assign_edge){(int64_t)row, (int64_t)col, cost};
  return 0;
}

/* Area of the intersection of two boxes given as centre and size. */
static double overlap_area(const double a[4], const double b[4]) {
  double ix =
      fmin(a[0] + 0.5 * a[2], b[0] + 0.5 * b[2]) - fmax(a[0] - 0.5 * a[2], b[0] - 0.5 * b[2]);
  double iy =
      fmin(a[1] + 0.5 * a[3], b[1] + 0.5 * b[3]) - fmax(a[1] - 0.5 * a[3], b[1] - 0.5 * b[3]);
  return ix > 0 && iy > 0 ? ix * iy : 0.0;
}

/* 1 - IoU of a track's predicted box and detection j's. */
static double iou_cost(const double a[4], const double b[4]) {
  double inter = overlap_area(a, b);
  if (!(inter > 0))
    return 1;
  return 1 - inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

static double embed_dist(const npt_tracker *t, size_t i, const npt_track_det *d, size_t j) {
  const float *a = t->emb + i * (size_t)t->dim, *b = d->embed;
  float dot = 0;
  for (int k = 0; k < t->dim; k++)
    dot += a[k] * b[k];
  return 1 - (double)dot * t->inv_norm[j];
}

/* Merges (sintering): a confirmed track B tracked in the previous frame and unmatched now, whose
 * predicted box is covered (intersection / its area) by at least merge_cover by a high
 * detection j that was matched to another confirmed track A, where j also covers A's predicted
 * box by merge_cover and is at least merge_growth times its area: A and B end, and j starts a
 * new track, confirmed at birth (a merge gives the particle a new identity).  Tracks are
 * visited in birth order and each B takes the detection covering it most (lower index on
 * ties), so the outcome is deterministic. */
static void merge_pass(npt_tracker *t) {
  const npt_track_settings *s = &t->s;
  if (!(s->merge_cover > 0))
    return;
  for (size_t i = 0; i < t->nt; i++) {
    track *b = &t->tr[i];
    if (b->id == 0 || b->state != ST_TRACKED || b->match >= 0 || b->ended)
      continue;
    const double *pb = b->kf.mean;
    double area_b = pb[2] * pb[3];
    if (!(area_b > 0))
      continue;
    double hx = 0.5 * pb[2] + t->max_half_w, hy = 0.5 * pb[3] + t->max_half_h;
    size_t nc = grid_query(t, pb[0] - hx, pb[0] + hx, pb[1] - hy, pb[1] + hy);
    int64_t best = -1;
    double best_cover = 0;
    for (size_t c = 0; c < nc; c++) {
      size_t j = t->cand[c];
      int64_t ia = t->det_track[j];
      if (t->kind[j] != DET_HIGH || ia < 0 || (size_t)ia == i)
        continue;
      const track *a = &t->tr[ia];
      if (a->id == 0)
        continue;
      const double *z = t->meas[j], *pa = a->kf.mean;
      double cover_b = overlap_area(pb, z) / area_b;
      double area_a = pa[2] * pa[3];
      /* A box j covers almost exactly is the same particle, a duplicate (duplicate_pass). */
      if (!(cover_b >= s->merge_cover) || !(area_a > 0) ||
          !(iou_cost(pb, z) >= 1 - s->duplicate_iou) ||
          !(overlap_area(pa, z) / area_a >= s->merge_cover) ||
          !(z[2] * z[3] >= s->merge_growth * area_a))
        continue;
      if (cover_b > best_cover || (cover_b == best_cover && (int64_t)j < best))
        best = (int64_t)j, best_cover = cover_b;
    }
    if (best < 0)
      continue;
    b->ended = 1;
    if (!t->child[best]) {
      t->child[best] = 1;
      track *a = &t->tr[t->det_track[best]];
      a->ended = 1;
      a->match = -1;
      t->links[t->nlinks++] = (lineage_link){NPT_TRACK_MERGE, (size_t)best, a->id};
    }
    t->links[t->nlinks++] = (lineage_link){NPT_TRACK_MERGE, (size_t)best, b->id};
  }
}

/* Splits (regeneration): a confirmed track A tracked in the previous frame next to which new
 * fragments appear -- high detections scoring at least new_track_score that the cascade left
 * free, each at most split_shrink times A's predicted area, centred within split_reach times its
 * predicted half-width and half-height of its predicted centre -- splits when its own match
 * shrank to a fragment's size and at least one fragment appeared, or, unmatched, when at least
 * two did.  A ends and every piece (its own match first, then the fragments) starts a new
 * track, confirmed at birth (a split gives each piece a new identity).  A track matched to a
 * low detection never splits.
 * Tracks are visited in birth order and a detection joins one split at most, so the outcome is
 * deterministic. */
static void split_pass(npt_tracker *t, const npt_track_det *d) {
  const npt_track_settings *s = &t->s;
  if (!(s->split_shrink > 0))
    return;
  for (size_t i = 0; i < t->nt; i++) {
    track *a = &t->tr[i];
    if (a->id == 0 || a->state != ST_TRACKED || a->ended)
      continue;
    const double *pa = a->kf.mean;
    const double max_area = s->split_shrink * pa[2] * pa[3];
    if (!(max_area > 0))
      continue;
    const int64_t own = a->match;
    if (own >= 0 && (t->kind[own] != DET_HIGH || t->child[own]))
      continue;
    /* A matched track splits only when its match shrank: small detections appearing beside a
     * particle that keeps its size are new particles or false detections (support texture
     * beside a large particle), not its fragments. */
    const int shrunk = own >= 0 && t->meas[own][2] * t->meas[own][3] <= max_area;
    double rx = 0.5 * s->split_reach * pa[2], ry = 0.5 * s->split_reach * pa[3];
    size_t nc = grid_query(t, pa[0] - rx, pa[0] + rx, pa[1] - ry, pa[1] + ry);
    size_t nnew = 0, first = t->nlinks + (own >= 0);
    for (size_t c = 0; c < nc; c++) {
      size_t j = t->cand[c];
      const double *z = t->meas[j];
      if (t->kind[j] != DET_HIGH || t->det_track[j] >= 0 || t->child[j] ||
          !(d[j].score >= s->new_track_score) || !(fabs(z[0] - pa[0]) <= rx) ||
          !(fabs(z[1] - pa[1]) <= ry) || !(z[2] * z[3] <= max_area))
        continue;
      t->links[first + nnew++] = (lineage_link){NPT_TRACK_SPLIT, j, a->id};
    }
    if ((own >= 0 && !shrunk) || nnew + (size_t)shrunk < 2)
      continue;
    size_t nfrag = nnew;
    first = t->nlinks;
    /* The split: A ends, its fragments (its own match first) are born confirmed. */
    if (own >= 0) {
      nfrag++;
      t->links[first] = (lineage_link){NPT_TRACK_SPLIT, (size_t)own, a->id};
      t->det_track[own] = -1;
      a->match = -1;
    }
    for (size_t k = first; k < first + nfrag; k++)
      t->child[t->links[k].j] = 1;
    t->nlinks += nfrag;
    a->ended = 1;
  }
}

/* Duplicates (ByteTrack's remove_duplicate_stracks, one way): a confirmed track left unmatched
 * this frame whose predicted box overlaps, with IoU above duplicate_iou, the detection that
 * another track took or that a merge or split made: the same particle under two identities, the
 * one that has lost it is removed instead of kept for lost_frames (where it could take a
 * neighbour's detection later).  The matched track keeps its identity. */
static void duplicate_pass(npt_tracker *t) {
  const double max_cost = 1 - t->s.duplicate_iou;
  if (!(max_cost > 0))
    return;
  for (size_t i = 0; i < t->nt; i++) {
    track *b = &t->tr[i];
    if (b->id == 0 || b->match >= 0 || b->ended)
      continue;
    const double *pb = b->kf.mean;
    if (!(pb[2] > 0 && pb[3] > 0))
      continue;
    double hx = 0.5 * pb[2] + t->max_half_w, hy = 0.5 * pb[3] + t->max_half_h;
    size_t nc = grid_query(t, pb[0] - hx, pb[0] + hx, pb[1] - hy, pb[1] + hy);
    for (size_t c = 0; c < nc && !b->ended; c++) {
      size_t j = t->cand[c];
      if ((t->det_track[j] >= 0 || t->child[j]) && iou_cost(pb, t->meas[j]) < max_cost)
        b->ended = 1;
    }
  }
}

static int cmp_id(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  return (a > b) - (a < b);
}

/* The step's events from its links, now that every child has its id (out[j]): a merge per
 * child detection (its parents in the order the merge pass found them), a split per parent
 * (children by increasing id), in the order of their first link. */
static void build_events(npt_tracker *t, int64_t frame, const int64_t *out) {
  size_t nid = 0;
  t->nev = 0;
  for (size_t k = 0; k < t->nlinks;) {
    const lineage_link *l = &t->links[k];
    size_t e = k + 1;
    if (l->kind == NPT_TRACK_SPLIT)
      while (e < t->nlinks && t->links[e].kind == NPT_TRACK_SPLIT &&
             t->links[e].parent == l->parent)
        e++;
    npt_track_event *ev = &t->ev[t->nev++];
    ev->kind = l->kind;
    ev->frame = frame;
    int64_t *ids = t->ev_ids + nid;
    if (l->kind == NPT_TRACK_SPLIT) {
      ids[0] = l->parent;
      for (size_t q = k; q < e; q++)
        ids[1 + q - k] = out[t->links[q].j];
      qsort(ids + 1, e - k, sizeof *ids, cmp_id);
      ev->n_parents = 1;
      ev->n_children = e - k;
    } else {
      /* Merge links of one child are not contiguous when two children share a pass: gather. */
      size_t np = 0;
      for (size_t q = k; q < t->nlinks; q++)
        if (t->links[q].kind == NPT_TRACK_MERGE && t->links[q].j == l->j)
          ids[np++] = t->links[q].parent;
      ids[np] = out[l->j];
      ev->n_parents = np;
      ev->n_children = 1;
      /* Later links of this child are skipped below. */
      for (size_t q = k + 1; q < t->nlinks; q++)
        if (t->links[q].kind == NPT_TRACK_MERGE && t->links[q].j == l->j)
          t->links[q].kind = 0;
    }
    ev->parents = ids;
    ev->children = ids + ev->n_parents;
    nid += ev->n_parents + ev->n_children;
    k = e;
    while (k < t->nlinks && t->links[k].kind == 0)
      k++;
  }
}

static int cmp_size(const void *pa, const void *pb) {
  size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
  return (a > b) - (a < b);
}

/* Solves the stage whose k rows (t->rows) and edges are set and records its matches.  The
 * assignment sees only the columns (detections) its edges use, renumbered in ascending order:
 * columns without a pair are unmatched in any solution, and the solver's results and ties depend
 * only on the order of the columns (assign.h), so they are those of all n; but its time is then
 * that of the stage's pairs, not of the frame's detections, which matters for stage 1's cascade
 * (one assignment per level). */
static int solve_stage(npt_tracker *t, size_t k, size_t n, size_t ne, double max_cost) {
  if (ne == 0)
    return 0;
  size_t m = 0;
  for (size_t e = 0; e < ne; e++) {
    size_t j = (size_t)t->edges[e].col;
    if (t->col_local[j] < 0) {
      t->col_local[j] = 0;
      t->cols[m++] = j;
    }
  }
  if (m > n / 16) { /* most of the frame's detections: a scan is cheaper than a sort */
    m = 0;
    for (size_t j = 0; j < n; j++)
      if (t->col_local[j] == 0)
        t->cols[m++] = j;
  } else {
    qsort(t->cols, m, sizeof *t->cols, cmp_size);
  }
  for (size_t c = 0; c < m; c++)
    t->col_local[t->cols[c]] = (int64_t)c;
  for (size_t e = 0; e < ne; e++)
    t->edges[e].col = t->col_local[t->edges[e].col];
  int rc = npt_assign_solve(k, m, t->edges, ne, max_cost, t->row_to_col, NULL, t->aw);
  for (size_t c = 0; c < m; c++)
    t->col_local[t->cols[c]] = -1;
  NPT_TRY(rc);
  for (size_t r = 0; r < k; r++) {
    int64_t j = t->row_to_col[r] < 0 ? -1 : (int64_t)t->cols[t->row_to_col[r]];
    if (j < 0)
      continue;
    t->tr[t->rows[r]].match = j;
    t->det_track[j] = (int64_t)t->rows[r];
  }
  return 0;
}

/* Stage 1, one level of the cascade: the confirmed tracks level[0..m) (in birth order, all last
 * matched the same number of frames ago) x the high detections still free, fused
 * appearance and motion, Mahalanobis gate. */
static int stage_fused(npt_tracker *t, const npt_track_det *d, size_t n, const cascade_key *level,
                       size_t m) {
  size_t k = 0, ne = 0;
  const double lam = t->s.embed_weight, chi2 = t->chi2;
  for (size_t q = 0; q < m; q++) {
    size_t i = level[q].slot;
    track *tr = &t->tr[i];
    const npt_kalman_gate *g = &tr->gate;
    /* The ellipse d2 < chi2 lies within sqrt(chi2 S_xx) of the centre along x (and y). */
    double sxx = g->chol[0][0] * g->chol[0][0];
    double syy = g->chol[1][0] * g->chol[1][0] + g->chol[1][1] * g->chol[1][1];
    double rx = sqrt(chi2 * sxx), ry = sqrt(chi2 * syy);
    size_t nc = grid_query(t, g->mean[0] - rx, g->mean[0] + rx, g->mean[1] - ry, g->mean[1] + ry);
    size_t row = k;
    int any = 0;
    for (size_t c = 0; c < nc; c++) {
      size_t j = t->cand[c];
      if (t->kind[j] != DET_HIGH || t->det_track[j] >= 0)
        continue;
      double d2 = npt_kalman_gate_distance(g, t->meas[j]);
      if (!(d2 < chi2))
        continue;
      double cost = d2 / chi2;
      if (tr->has_embed && t->inv_norm[j] > 0)
        cost = lam * embed_dist(t, i, &d[j], j) + (1 - lam) * cost;
      NPT_TRY(push_edge(t, &ne, row, j, cost));
      any = 1;
    }
    if (any)
      t->rows[k++] = i;
  }
  return solve_stage(t, k, n, ne, t->s.match_cost);
}

/* Stages 2-4: the unmatched tracks of one state x the free detections of one kind, 1 - IoU. */
static int stage_iou(npt_tracker *t, size_t n, int want_confirmed, int det_kind, double max_cost) {
  size_t k = 0, ne = 0;
  const double min_score = det_kind == DET_LOW ? t->s.low_track_score : 0;
  for (size_t i = 0; i < t->nt; i++) {
    track *tr = &t->tr[i];
    if (tr->match >= 0 || (want_confirmed ? tr->id == 0 || tr->state != ST_TRACKED : tr->id != 0) ||
        !(tr->score >= min_score))
      continue;
    const double *a = tr->kf.mean;
    if (!(a[2] > 0 && a[3] > 0))
      continue;
    double hx = 0.5 * a[2] + t->max_half_w, hy = 0.5 * a[3] + t->max_half_h;
    size_t nc = grid_query(t, a[0] - hx, a[0] + hx, a[1] - hy, a[1] + hy);
    size_t row = k;
    int any = 0;
    for (size_t c = 0; c < nc; c++) {
      size_t j = t->cand[c];
      if (t->kind[j] != det_kind || t->det_track[j] >= 0)
        continue;
      double cost = iou_cost(a, t->meas[j]);
      if (!(cost < max_cost))
        continue;
      NPT_TRY(push_edge(t, &ne, row, j, cost));
      any = 1;
    }
    if (any)
      t->rows[k++] = i;
  }
  return solve_stage(t, k, n, ne, max_cost);
}

/* ---- lifecycle ---- */

/* e = normalise(m e + (1 - m) d / |d|); the detection's alone when e has none yet or the sum
 * vanishes. */
static void fold_embedding(npt_tracker *t, track *tr, float *e, const float *d, double inv_norm) {
  const double m = tr->has_embed ? t->s.embed_momentum : 0;
  double ss = 0;
  for (int k = 0; k < t->dim; k++) {
    double v = m * e[k] + (1 - m) * d[k] * inv_norm;
    e[k] = (float)v;
    ss += v * v;
  }
  if (!(ss > 1e-20)) {
    for (int k = 0; k < t->dim; k++)
      e[k] = (float)(d[k] * inv_norm);
    ss = 1;
  }
  double s = 1 / sqrt(ss);
  for (int k = 0; k < t->dim; k++)
    e[k] = (float)(e[k] * s);
  tr->has_embed = 1;
}

/* The cascade's order: increasing age, then slot (birth order). */
static int cmp_cascade(const void *pa, const void *pb) {
  const cascade_key *a = pa, *b = pb;
  if (a->age != b->age)
    return a->age < b->age ? -1 : 1;
  return (a->slot > b->slot) - (a->slot < b->slot);
}

/* Births in order of decreasing score, then increasing y, x, index. */
static int cmp_birth(const void *pa, const void *pb) {
  const birth_key *a = pa, *b = pb;
  if (a->score != b->score)
    return a->score > b->score ? -1 : 1;
  if (a->y != b->y)
    return a->y < b->y ? -1 : 1;
  if (a->x != b->x)
    return a->x < b->x ? -1 : 1;
  return a->j < b->j ? -1 : a->j > b->j;
}

int npt_tracker_step(npt_tracker *t, int64_t frame, const npt_track_det *d, size_t n,
                     int64_t *out) {
  if (t->started && frame <= t->frame)
    return npt_error_set(NPT_EINVAL, "tracker: frame %lld does not follow frame %lld",
                         (long long)frame, (long long)t->frame);
  for (size_t j = 0; j < n; j++)
    if (!(isfinite(d[j].x) && isfinite(d[j].y) && d[j].w > 0 && d[j].h > 0 && isfinite(d[j].w) &&
          isfinite(d[j].h) && !isnan(d[j].score)))
      return npt_error_set(NPT_EINVAL,
                           "tracker: frame %lld: detection %zu has box (%g, %g, %g, %g) score %g",
                           (long long)frame, j, d[j].x, d[j].y, d[j].w, d[j].h, d[j].score);
  NPT_TRY(reserve(t, n));
  const npt_track_settings *s = &t->s;
  t->nbf = 0;
  t->nev = 0;
  t->nlast = 0;

  /* Prediction over the frames since the last step (a track more than lost_frames + 1 frames
   * old is removed at the end of this step anyway, so no more are needed), and the gates. */
  int64_t gap = t->started ? frame - t->frame : 1;
  if (gap > (int64_t)s->lost_frames + 1)
    gap = (int64_t)s->lost_frames + 1;
  t->frame = frame;
  t->started = 1;
  for (size_t i = 0; i < t->nt; i++) {
    track *tr = &t->tr[i];
    for (int64_t g = 0; g < gap; g++)
      npt_kalman_predict(&t->ks, &tr->kf);
    tr->gate_ok =
        npt_kalman_gate_init(&t->ks, &tr->kf, s->gate == NPT_TRACK_GATE_POSITION, &tr->gate) == 0;
    tr->match = -1;
    tr->ended = 0;
  }
  npt_error_clear();

  for (size_t j = 0; j < n; j++) {
    const npt_track_det *dj = &d[j];
    double *z = t->meas[j];
    z[0] = (double)dj->x + 0.5 * (double)dj->w;
    z[1] = (double)dj->y + 0.5 * (double)dj->h;
    z[2] = dj->w;
    z[3] = dj->h;
    t->kind[j] = dj->score >= s->high_score  ? DET_HIGH
                 : dj->score >= s->low_score ? DET_LOW
                                             : DET_IGNORED;
    t->det_track[j] = -1;
    t->child[j] = 0;
    t->inv_norm[j] = 0;
    if (dj->embed && t->dim > 0) {
      double ss = 0;
      for (int k = 0; k < t->dim; k++)
        ss += (double)dj->embed[k] * dj->embed[k];
      if (ss > 0 && isfinite(ss))
        t->inv_norm[j] = 1 / sqrt(ss);
    }
  }
  NPT_TRY(grid_build(t, n));

  /* Stage 1 as a cascade (DeepSORT's), by the frames since each track's last match: the
   * confirmed tracks sorted by (that age, slot), each run of one age a level, in birth order. */
  size_t nlev = 0, ntracked;
  for (int lost = 0; lost < 2; lost++) {
    ntracked = nlev;
    for (size_t i = 0; i < t->nt; i++)
      if (t->tr[i].id != 0 && t->tr[i].gate_ok && (t->tr[i].state == ST_LOST) == lost)
        t->levels[nlev++] = (cascade_key){frame - t->tr[i].last_frame, i};
  }
  /* The tracked tracks, matched in the last step, are one level already in slot order; only the
   * few lost ones need sorting. */
  qsort(t->levels + ntracked, nlev - ntracked, sizeof *t->levels, cmp_cascade);
  for (size_t l0 = 0, l1; l0 < nlev; l0 = l1) {
    for (l1 = l0 + 1; l1 < nlev && t->levels[l1].age == t->levels[l0].age; l1++)
      ;
    NPT_TRY(stage_fused(t, d, n, t->levels + l0, l1 - l0));
  }
  NPT_TRY(stage_iou(t, n, 1, DET_HIGH, s->iou_match));
  NPT_TRY(stage_iou(t, n, 1, DET_LOW, s->low_match));
  NPT_TRY(stage_iou(t, n, 0, DET_HIGH, s->unconfirmed_match));
  t->nlinks = 0;
  merge_pass(t);
  split_pass(t, d);
  duplicate_pass(t);
  for (size_t j = 0; j < n; j++)
    if (t->child[j])
      t->det_track[j] = -1; /* its parent no longer holds it: it is born below */

  /* Updates, confirmations, losses and removals, in birth order. */
  size_t keep = 0;
  for (size_t i = 0; i < t->nt; i++) {
    track *tr = &t->tr[i];
    float *e = t->emb ? t->emb + i * (size_t)t->dim : NULL;
    int alive = 1;
    if (tr->ended) {
      alive = 0;
    } else if (tr->match >= 0) {
      size_t j = (size_t)tr->match;
      if (npt_kalman_update(&t->ks, &tr->kf, t->meas[j], tr->gate_ok ? &tr->gate : NULL) < 0) {
        /* A filter that cannot take the measurement starts again from it; the identity stays. */
        npt_error_clear();
        (void)npt_kalman_init(&t->ks, t->meas[j], &tr->kf);
      }
      tr->last_frame = frame;
      tr->hits++;
      tr->state = ST_TRACKED;
      tr->score = s->score_momentum * tr->score + (1 - s->score_momentum) * d[j].score;
      for (int k = 0; k < 2; k++)
        tr->wh[k] = s->size_momentum * tr->wh[k] + (1 - s->size_momentum) * t->meas[j][2 + k];
      if (t->kind[j] == DET_HIGH && t->inv_norm[j] > 0)
        fold_embedding(t, tr, e, d[j].embed, t->inv_norm[j]);
      if (tr->id == 0 && tr->hits >= s->confirm_frames) {
        tr->id = ++t->next_id;
        /* Its earlier detections take the id too (npt_tracker_backfill). */
        const npt_track_backfill *p = t->pend + i * (size_t)t->npend_max;
        for (int k = 0; k < tr->npend; k++)
          t->bf[t->nbf++] = (npt_track_backfill){p[k].frame, p[k].index, tr->id};
        tr->npend = 0;
      } else if (tr->id == 0) {
        t->pend[i * (size_t)t->npend_max + (size_t)tr->npend++] =
            (npt_track_backfill){frame, (int64_t)j, 0};
      }
    } else if (tr->id == 0) {
      alive = 0;
    } else {
      tr->state = ST_LOST;
      tr->hits = 0;
      alive = frame - tr->last_frame <= (int64_t)s->lost_frames;
    }
    if (!alive)
      continue;
    if (keep != i) {
      t->tr[keep] = *tr;
      if (t->dim > 0)
        memcpy(t->emb + keep * (size_t)t->dim, e, (size_t)t->dim * sizeof *e);
      if (tr->npend > 0)
        memcpy(t->pend + keep * (size_t)t->npend_max, t->pend + i * (size_t)t->npend_max,
               (size_t)tr->npend * sizeof *t->pend);
    }
    /* det_track now points at the kept slot. */
    if (t->tr[keep].match >= 0)
      t->det_track[t->tr[keep].match] = (int64_t)keep;
    keep++;
  }
  t->nt = keep;

  /* Births. */
  size_t nb = 0;
  for (size_t j = 0; j < n; j++)
    if (t->kind[j] == DET_HIGH && t->det_track[j] < 0 &&
        (d[j].score >= s->new_track_score || t->child[j]))
      t->births[nb++] = (birth_key){d[j].score, t->meas[j][1], t->meas[j][0], j};
  qsort(t->births, nb, sizeof *t->births, cmp_birth);
  for (size_t b = 0; b < nb; b++) {
    size_t j = t->births[b].j;
    track *tr = &t->tr[t->nt];
    memset(tr, 0, sizeof *tr);
    if (npt_kalman_init(&t->ks, t->meas[j], &tr->kf) < 0)
      return npt_error_set(NPT_EINTERNAL, "tracker: cannot start a track at detection %zu", j);
    tr->last_frame = frame;
    tr->hits = 1;
    tr->state = ST_TRACKED;
    tr->score = d[j].score;
    tr->wh[0] = t->meas[j][2];
    tr->wh[1] = t->meas[j][3];
    tr->match = (int64_t)j;
    if (t->inv_norm[j] > 0)
      fold_embedding(t, tr, t->emb + t->nt * (size_t)t->dim, d[j].embed, t->inv_norm[j]);
    if (s->confirm_frames <= 1 || t->child[j]) {
      tr->id = ++t->next_id;
    } else {
      t->pend[t->nt * (size_t)t->npend_max] = (npt_track_backfill){frame, (int64_t)j, 0};
      tr->npend = 1;
    }
    t->det_track[j] = (int64_t)t->nt;
    t->nt++;
  }

  for (size_t j = 0; j < n; j++)
    out[j] = t->det_track[j] >= 0 ? t->tr[t->det_track[j]].id : -1;
  for (size_t j = 0; j < n; j++)
    if (out[j] == 0)
      out[j] = -1;
  build_events(t, frame, out);
  t->nlast = n;
  return 0;
}
