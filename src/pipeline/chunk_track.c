/* One chunk's tracking into part rows (pipeline/chunk_track.h). */
#include "pipeline/chunk_track.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/search.h"

int npt_chunk_track_open(npt_chunk_track *c, const npt_track_settings *s, int embed_dim,
                         int64_t own_begin, int64_t own_end) {
  memset(c, 0, sizeof *c);
  c->rows.embed_dim = embed_dim;
  c->own_begin = own_begin;
  c->own_end = own_end;
  return npt_tracker_create(s, embed_dim, &c->tracker);
}

/* Ids that the tracker's last step gave detections of earlier frames (the first frames of
 * tracks it confirmed): those rows are already in the buffer, in frame order. */
static void backfill_ids(npt_part_rows *r, const npt_tracker *t) {
  const npt_track_backfill *bf;
  size_t n = npt_tracker_backfill(t, &bf);
  for (size_t k = 0; k < n; k++) {
    int64_t row = npt_lower_bound_i64(r->frame, r->n, bf[k].frame) + bf[k].index;
    if (row < r->n && r->frame[row] == bf[k].frame)
      r->id[row] = bf[k].id;
  }
}

static int reserve_scratch(npt_chunk_track *c, int64_t n) {
  if (n <= c->cap)
    return 0;
  free(c->tdets), free(c->ids), free(c->keep);
  c->tdets = malloc(sizeof *c->tdets * (size_t)n);
  c->ids = malloc(sizeof *c->ids * (size_t)n);
  c->keep = malloc(sizeof *c->keep * (size_t)n);
  c->cap = c->tdets && c->ids && c->keep ? n : 0;
  return c->cap ? 0 : npt_error_set(NPT_ENOMEM, "out of memory");
}

int npt_chunk_track_frames(npt_chunk_track *c, int64_t first, int n, const npt_dets *d) {
  NPT_TRY(reserve_scratch(c, d->n));
  npt_part_rows *r = &c->rows;
  NPT_TRY(npt_part_rows_reserve(r, d->n));
  int64_t i = 0;
  for (int64_t f = first; f < first + n; f++) {
    int64_t b = i;
    while (i < d->n && d->det[i].frame == f)
      i++;
    size_t m = 0; /* c->keep[m]: the decoder index of the m-th detection kept */
    for (int64_t k = b; k < i; k++) {
      const npt_detection *p = &d->det[k];
      if (!(p->w > 0 && p->h > 0 && isfinite(p->w) && isfinite(p->h) && isfinite(p->x) &&
            isfinite(p->y)))
        continue;
      c->keep[m] = (int32_t)(k - b);
      c->tdets[m++] = (npt_track_det){
          p->x, p->y, p->w, p->h, p->score, p->cls, d->embed ? d->embed + k * d->embed_dim : NULL};
    }
    NPT_TRY(npt_tracker_step(c->tracker, f, c->tdets, m, c->ids));
    backfill_ids(r, c->tracker);
    /* An event in an overlap is the neighbour's to record: each is recorded once. */
    if (f >= c->own_begin && f < c->own_end) {
      const npt_track_event *ev;
      size_t nev = npt_tracker_events(c->tracker, &ev);
      for (size_t k = 0; k < nev; k++)
        NPT_TRY(npt_part_events_add(&c->events, &ev[k]));
    }
    for (size_t q = 0; q < m; q++, r->n++) {
      int64_t k = b + c->keep[q];
      const npt_detection *p = &d->det[k];
      float box[4] = {p->x, p->y, p->w, p->h};
      if (c->ids[q] >= 0)
        (void)npt_tracker_box(c->tracker, q, box);
      r->frame[r->n] = f, r->id[r->n] = c->ids[q];
      r->x[r->n] = box[0], r->y[r->n] = box[1], r->w[r->n] = box[2], r->h[r->n] = box[3];
      r->score[r->n] = p->score, r->cls[r->n] = p->cls, r->det[r->n] = c->keep[q];
      if (r->embed_dim)
        memcpy(r->embed + r->n * r->embed_dim, d->embed + k * d->embed_dim,
               sizeof(float) * (size_t)r->embed_dim);
    }
  }
  if (i != d->n)
    return npt_error_set(NPT_EINVAL, "the detections of frames %lld-%lld are not in frame order",
                         (long long)first + 1, (long long)first + n);
  return 0;
}

void npt_chunk_track_drop_untracked_low(npt_chunk_track *c, float keep) {
  npt_part_rows *r = &c->rows;
  int64_t m = 0;
  for (int64_t i = 0; i < r->n; i++) {
    if (r->score[i] < keep && r->id[i] < 0)
      continue;
    if (m != i) {
      r->frame[m] = r->frame[i], r->id[m] = r->id[i];
      r->x[m] = r->x[i], r->y[m] = r->y[i], r->w[m] = r->w[i], r->h[m] = r->h[i];
      r->score[m] = r->score[i], r->cls[m] = r->cls[i], r->det[m] = r->det[i];
      if (r->embed_dim)
        memcpy(r->embed + m * r->embed_dim, r->embed + i * r->embed_dim,
               sizeof(float) * (size_t)r->embed_dim);
    }
    m++;
  }
  r->n = m;
}

void npt_chunk_track_close(npt_chunk_track *c) {
  npt_tracker_free(c->tracker);
  npt_part_rows_free(&c->rows);
  npt_part_events_free(&c->events);
  free(c->tdets), free(c->ids), free(c->keep);
  memset(c, 0, sizeof *c);
}
