/* Decoding head outputs into detections (decode.h).  The rules, and why they are what they are,
 * are in docs/decode.md; in short:
 *
 * - peak test per class channel: a cell is a candidate when its value is >= score_threshold and
 *   no cell of its peak_kernel x peak_kernel window is greater.  Cells of equal value that reach
 *   each other through such windows form a plateau; a plateau gives exactly one peak, its
 *   lowest-index candidate (row-major within the channel).  Windows are clipped to the cells
 *   that map onto the frame, so neither the padding nor peaks in it count;
 * - a peak whose decoded centre lies outside the frame is kept only when its box covers at least
 *   2 px of the frame along both axes (a particle cut by the border);
 * - peaks sorted by score, ties by (class, index); with suppress_ratio > 0, a peak whose decoded
 *   centre lies within suppress_ratio x the smaller box side of an earlier kept one's is dropped
 *   (decode_suppress.c), so one large particle gives one detection;
 * - top-K per frame over all classes, after that; saturation is reported;
 * - each peak's box from the offset and size heads, its embedding L2-normalised. */
#include "nn/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/decode_internal.h"
#include "nn/decode_suppress.h"

typedef npt__dpeak peak;

typedef struct peak_list {
  peak *p;
  int64_t n, cap;
} peak_list;

/* Scratch for plateaus, allocated on the first one met: a per-cell mark (the channel + 1 that
 * visited it) and a queue for the flood fill. */
typedef struct plateau_scratch {
  int32_t *mark;
  int64_t *queue;
} plateau_scratch;

/* The region of output cells that map onto the frame, and the window radius. */
typedef struct grid {
  int64_t w_out; /* row length of the head tensors */
  int hv, wv;    /* valid rows and columns */
  int r;         /* window radius, (peak_kernel - 1) / 2 */
} grid;

static int push_peak(peak_list *l, float score, int cls, int64_t idx) {
  if (l->n == l->cap) {
    int64_t cap = l->cap ? 2 * l->cap : 256;
    peak *p = realloc(l->p, (size_t)cap * sizeof *p);
    NPT_ALLOC_CHECK(p);
    l->p = p, l->cap = cap;
  }
  l->p[l->n++] = (peak){.score = score, .cls = cls, .idx = idx};
  return 0;
}

/* 1 when no cell of (i, j)'s window is greater than v; *equal is set when one is equal. */
static int window_max(const float *heat, const grid *g, int i, int j, float v, int *equal) {
  int i0 = i - g->r < 0 ? 0 : i - g->r, i1 = i + g->r >= g->hv ? g->hv - 1 : i + g->r;
  int j0 = j - g->r < 0 ? 0 : j - g->r, j1 = j + g->r >= g->wv ? g->wv - 1 : j + g->r;
  *equal = 0;
  for (int y = i0; y <= i1; y++) {
    const float *row = heat + (int64_t)y * g->w_out;
    for (int x = j0; x <= j1; x++) {
      if (row[x] > v)
        return 0;
      if (row[x] == v && (y != i || x != j))
        *equal = 1;
    }
  }
  return 1;
}

/* Marks the plateau of value v that holds cell `start` (cells of value v reached through
 * windows, inside the valid region) with `stamp`. */
static void mark_plateau(const float *heat, const grid *g, int64_t start, float v, int32_t stamp,
                         plateau_scratch *s) {
  int64_t head = 0, tail = 0;
  s->queue[tail++] = start;
  s->mark[start] = stamp;
  while (head < tail) {
    int64_t c = s->queue[head++];
    int i = (int)(c / g->w_out), j = (int)(c % g->w_out);
    int i0 = i - g->r < 0 ? 0 : i - g->r, i1 = i + g->r >= g->hv ? g->hv - 1 : i + g->r;
    int j0 = j - g->r < 0 ? 0 : j - g->r, j1 = j + g->r >= g->wv ? g->wv - 1 : j + g->r;
    for (int y = i0; y <= i1; y++)
      for (int x = j0; x <= j1; x++) {
        int64_t n = (int64_t)y * g->w_out + x;
        if (heat[n] == v && s->mark[n] != stamp) {
          s->mark[n] = stamp;
          s->queue[tail++] = n;
        }
      }
  }
}

/* Appends the peaks of one class channel to `l`. */
static int channel_peaks(const float *heat, const grid *g, int cls, float thr, peak_list *l,
                         plateau_scratch *s, int64_t plane) {
  for (int i = 0; i < g->hv; i++) {
    const float *row = heat + (int64_t)i * g->w_out;
    for (int j = 0; j < g->wv; j++) {
      float v = row[j];
      if (!(v >= thr)) /* also skips NaN */
        continue;
      int equal;
      if (!window_max(heat, g, i, j, v, &equal))
        continue;
      int64_t idx = (int64_t)i * g->w_out + j;
      if (equal) {
        /* Raster order meets a plateau's lowest-index candidate first; it marks the plateau so
         * that its other cells are passed over. */
        if (!s->mark) {
          s->mark = calloc((size_t)plane, sizeof *s->mark);
          s->queue = malloc((size_t)plane * sizeof *s->queue);
          if (!s->mark || !s->queue)
            return npt_error_set(NPT_ENOMEM, "decode: out of memory for a %lld-cell plateau map",
                                 (long long)plane);
        }
        if (s->mark[idx] == cls + 1)
          continue;
        mark_plateau(heat, g, idx, v, cls + 1, s);
      }
      NPT_TRY(push_peak(l, v, cls, idx));
    }
  }
  return 0;
}

static int cmp_peak(const void *a, const void *b) {
  const peak *x = a, *y = b;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  if (x->cls != y->cls)
    return x->cls < y->cls ? -1 : 1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

/* A head value that the box may use: NaN/inf become 0, sizes are not negative. */
static double finite_or_zero(float v) {
  return isfinite(v) ? (double)v : 0.0;
}

/* The decoded box of peak `pk` (row length w_out, stride s), in double: the centre (cx, cy) and
 * size (w, h), from the head values gathered at its cell.  Suppression and the detection rows
 * use these same values. */
static void decode_box(const peak *pk, int64_t w_out, int s, double *cx, double *cy, double *w,
                       double *h) {
  int64_t i = pk->idx / w_out, j = pk->idx % w_out;
  double ox = finite_or_zero(pk->ox), oy = finite_or_zero(pk->oy);
  *w = fmax(0.0, finite_or_zero(pk->sw));
  *h = fmax(0.0, finite_or_zero(pk->sh));
  /* Cell (i, j) covers pixels s*j .. s*j + s - 1, whose centre is s*j + (s - 1) / 2. */
  *cx = s * ((double)j + ox) + 0.5 * (s - 1);
  *cy = s * ((double)i + oy) + 0.5 * (s - 1);
}

/* Rule 3a (docs/decode.md): 1 when a peak's box may stand for a particle in view.  A decoded
 * centre inside the frame always may; one outside it (a particle cut by the border, whose
 * centre the offset head points to) only when the box covers at least 2 px of the frame along
 * both axes.  The frame spans -0.5 .. W - 0.5 in nptrack's pixel-centre convention. */
static int in_view(double cx, double cy, double w, double h, int frame_w, int frame_h) {
  const double x1 = frame_w - 0.5, y1 = frame_h - 0.5;
  if (cx >= -0.5 && cx <= x1 && cy >= -0.5 && cy <= y1)
    return 1;
  double vx = fmin(cx + 0.5 * w, x1) - fmax(cx - 0.5 * w, -0.5);
  double vy = fmin(cy + 0.5 * h, y1) - fmax(cy - 0.5 * h, -0.5);
  return vx >= 2.0 && vy >= 2.0;
}

/* Drops the peaks that rule 3a rejects; the rest keep their order. */
static void drop_out_of_view(peak_list *l, int64_t w_out, int s, int frame_w, int frame_h) {
  int64_t n = 0;
  for (int64_t k = 0; k < l->n; k++) {
    double cx, cy, w, h;
    decode_box(&l->p[k], w_out, s, &cx, &cy, &w, &h);
    if (in_view(cx, cy, w, h, frame_w, frame_h))
      l->p[n++] = l->p[k];
  }
  l->n = n;
}

/* Drops the sorted peaks that rule 3 suppresses (decode_suppress.h), keeping at most
 * max_keep; the rest keep their order. */
static int suppress_peaks(peak_list *l, int64_t w_out, int s, double ratio, int64_t max_keep) {
  npt__centre *c = malloc((size_t)l->n * sizeof *c);
  int64_t *keep = malloc((size_t)(max_keep < l->n ? max_keep : l->n) * sizeof *keep), n_keep = 0;
  if (!c || !keep) {
    free(c);
    free(keep);
    return npt_error_set(NPT_ENOMEM, "decode: out of memory for %lld peaks", (long long)l->n);
  }
  for (int64_t k = 0; k < l->n; k++) {
    double w, h;
    decode_box(&l->p[k], w_out, s, &c[k].x, &c[k].y, &w, &h);
    c[k].side = fmin(w, h);
  }
  int rc = npt__suppress_centres(c, l->n, ratio, max_keep, keep, &n_keep);
  for (int64_t k = 0; rc == 0 && k < n_keep; k++)
    l->p[k] = l->p[keep[k]]; /* keep[] ascends: each moves down or stays */
  if (rc == 0)
    l->n = n_keep;
  free(c);
  free(keep);
  return rc;
}

/* L2-normalises `dim` values from a strided source into `dst`; a zero (or non-finite) vector
 * gives zeros. */
static void gather_embedding(const float *src, int64_t plane, int dim, float *dst) {
  double ss = 0.0;
  for (int k = 0; k < dim; k++) {
    double v = src[(int64_t)k * plane];
    ss += v * v;
  }
  double norm = sqrt(ss);
  if (!(norm > 0.0) || !isfinite(norm)) {
    memset(dst, 0, (size_t)dim * sizeof *dst);
    return;
  }
  for (int k = 0; k < dim; k++)
    dst[k] = (float)(src[(int64_t)k * plane] / norm);
}

int npt__decode_check_params(const npt_decode_params *p) {
  if (!p || !(p->top_k >= 1) || p->peak_kernel < 1 || p->peak_kernel % 2 == 0 ||
      !isfinite(p->score_threshold) || !(p->suppress_ratio >= 0) || !isfinite(p->suppress_ratio))
    return npt_error_set(NPT_EINVAL,
                         "decode: top_k must be >= 1, peak_kernel odd and >= 1, the score "
                         "threshold finite and suppress_ratio finite and >= 0 (got %d, %d, %g, %g)",
                         p ? p->top_k : 0, p ? p->peak_kernel : 0, p ? p->score_threshold : 0.0,
                         p ? p->suppress_ratio : 0.0);
  return 0;
}

static int check_args(const npt_graph *g, const npt_head_outputs *out, int b, int frame_h,
                      int frame_w, const npt_decode_params *p, const npt_dets *dets) {
  const npt_heads *hd = &g->heads;
  int s = hd->output_stride;
  NPT_TRY(npt__decode_check_params(p));
  if (b < 0 || b >= out->batch || s < 1 || frame_h < 1 || frame_w < 1 ||
      frame_h > (int64_t)out->h_out * s || frame_w > (int64_t)out->w_out * s)
    return npt_error_set(NPT_EINVAL,
                         "decode: frame %d of a batch of %d, %dx%d px, does not fit head outputs "
                         "of %dx%d cells at stride %d",
                         b, out->batch, frame_w, frame_h, out->w_out, out->h_out, s);
  if (!out->heatmap || !out->size || !out->offset || g->tensors[hd->size].channels != 2 ||
      g->tensors[hd->offset].channels != 2 || g->tensors[hd->heatmap].channels < 1)
    return npt_error_set(NPT_EINVAL, "decode: %s: heads missing or of the wrong width", g->path);
  if (dets->embed_dim > 0 && (hd->embed < 0 || !out->embed || dets->embed_dim != hd->embed_dim ||
                              g->tensors[hd->embed].channels != hd->embed_dim))
    return npt_error_set(NPT_EINVAL,
                         "decode: detections list wants %d-dimensional embeddings, the model "
                         "gives %d",
                         dets->embed_dim, hd->embed >= 0 && out->embed ? hd->embed_dim : 0);
  return 0;
}

int npt__decode_select(npt__dpeak *p, int64_t *n, int s, int64_t w_out, int frame_h, int frame_w,
                       const npt_decode_params *dp, int *saturated) {
  peak_list l = {p, *n, *n};
  int rc = 0;
  *saturated = 0;
  if (l.n > 0) {
    qsort(l.p, (size_t)l.n, sizeof *l.p, cmp_peak);
    drop_out_of_view(&l, w_out, s, frame_w, frame_h);
    /* Suppression before top-K: a suppressed peak is no detection and takes no place in the
     * top K.  One survivor beyond K is enough to know that the frame is saturated. */
    if (dp->suppress_ratio > 0)
      rc = suppress_peaks(&l, w_out, s, dp->suppress_ratio, (int64_t)dp->top_k + 1);
    if (rc == 0 && l.n > dp->top_k) {
      *saturated = 1;
      l.n = dp->top_k;
    }
  }
  *n = l.n;
  return rc;
}

int npt__decode_emit(const npt__dpeak *p, int64_t n, int s, int64_t w_out, int64_t frame,
                     npt_dets *dets) {
  NPT_TRY(npt_dets_reserve(dets, n));
  for (int64_t k = 0; k < n; k++) {
    double cx, cy, w, h;
    decode_box(&p[k], w_out, s, &cx, &cy, &w, &h);
    dets->det[dets->n + k] = (npt_detection){.frame = frame,
                                             .x = (float)(cx - 0.5 * w),
                                             .y = (float)(cy - 0.5 * h),
                                             .w = (float)w,
                                             .h = (float)h,
                                             .score = p[k].score,
                                             .cls = p[k].cls + 1};
  }
  return 0;
}

int npt_decode_frame(const npt_graph *g, const npt_head_outputs *out, int b, int frame_h,
                     int frame_w, int64_t frame, const npt_decode_params *p, npt_dets *dets,
                     int *saturated) {
  *saturated = 0;
  NPT_TRY(check_args(g, out, b, frame_h, frame_w, p, dets));
  const npt_heads *hd = &g->heads;
  const int s = hd->output_stride, n_cls = g->tensors[hd->heatmap].channels;
  const int64_t plane = (int64_t)out->h_out * out->w_out;
  /* Cells whose s x s pixels include at least one of the frame's. */
  grid gr = {out->w_out, (frame_h + s - 1) / s, (frame_w + s - 1) / s, (p->peak_kernel - 1) / 2};

  peak_list l = {0};
  plateau_scratch scr = {0};
  int rc = 0;
  for (int c = 0; c < n_cls && rc == 0; c++)
    rc = channel_peaks(out->heatmap + ((int64_t)b * n_cls + c) * plane, &gr, c, p->score_threshold,
                       &l, &scr, plane);
  free(scr.mark);
  free(scr.queue);
  const float *size = out->size + (int64_t)b * 2 * plane;
  const float *offset = out->offset + (int64_t)b * 2 * plane;
  for (int64_t k = 0; rc == 0 && k < l.n; k++) {
    int64_t idx = l.p[k].idx;
    l.p[k].ox = offset[idx], l.p[k].oy = offset[plane + idx];
    l.p[k].sw = size[idx], l.p[k].sh = size[plane + idx];
  }
  int64_t n = l.n;
  if (rc == 0)
    rc = npt__decode_select(l.p, &n, s, out->w_out, frame_h, frame_w, p, saturated);
  if (rc == 0)
    rc = npt__decode_emit(l.p, n, s, out->w_out, frame, dets);
  if (rc < 0) {
    free(l.p);
    return rc;
  }
  const int dim = dets->embed_dim;
  for (int64_t k = 0; dim > 0 && k < n; k++)
    gather_embedding(out->embed + (int64_t)b * dim * plane + l.p[k].idx, plane, dim,
                     dets->embed + (dets->n + k) * dim);
  dets->n += n;
  free(l.p);
  return 0;
}
