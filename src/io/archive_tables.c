/* The archive's derived tables (archive_internal.h): the CSR frame index, the tracks table with
 * per-track means, the per-track row index and the per-frame summary, from a video's rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "io/archive_internal.h"

float npt__arch_size(float w, float h) {
  return sqrtf(w * h);
}

void npt__arch_tables_free(npt__arch_tables *t) {
  free(t->frame_offsets);
  free(t->track_id);
  free(t->first_frame);
  free(t->last_frame);
  free(t->length);
  free(t->n_det);
  free(t->mean_w);
  free(t->mean_h);
  free(t->mean_size);
  free(t->mean_embedding);
  free(t->track_rows);
  free(t->track_offsets);
  free(t->count);
  free(t->count_by_class);
  free(t->frame_mean_size);
  memset(t, 0, sizeof *t);
}

static int check_rows(const npt_archive_video *v, const npt_archive_rows *r, int n_classes) {
  if (r->n < 0 || r->embed_dim < 0 || (r->embed_dim > 0 && !r->embedding))
    return npt_error_set(NPT_EINVAL, "video %s: bad row count or embedding", v->name);
  int64_t last = 0;
  for (int64_t i = 0; i < r->n; i++) {
    const char *why = NULL;
    if (r->frame[i] < 0 || r->frame[i] >= v->n_frames)
      why = "frame outside the video";
    else if (r->frame[i] < last)
      why = "rows not in frame order";
    else if (r->track_id[i] < -1)
      why = "track_id below -1";
    else if (r->cls[i] < 1 || r->cls[i] > n_classes)
      why = "class outside 1..n_classes";
    else if (!isfinite(r->x[i]) || !isfinite(r->y[i]) || !(r->w[i] >= 0) || !(r->h[i] >= 0) ||
             !isfinite(r->w[i]) || !isfinite(r->h[i]))
      why = "box not finite or of negative size";
    if (why)
      return npt_error_set(NPT_EINVAL, "video %s: row %lld (frame %lld): %s", v->name, (long long)i,
                           (long long)r->frame[i], why);
    last = r->frame[i];
  }
  return 0;
}

typedef struct {
  int64_t tid, row;
} tid_row;

static int cmp_tid_row(const void *a, const void *b) {
  const tid_row *p = a, *q = b;
  if (p->tid != q->tid)
    return p->tid < q->tid ? -1 : 1;
  return (p->row > q->row) - (p->row < q->row);
}

static int build_tracks(npt__arch_tables *t, const npt_archive_video *v,
                        const npt_archive_rows *r) {
  int64_t m = 0;
  for (int64_t i = 0; i < r->n; i++)
    m += r->track_id[i] >= 0;
  tid_row *p = malloc((size_t)(m ? m : 1) * sizeof *p);
  NPT_ALLOC_CHECK(p);
  m = 0;
  for (int64_t i = 0; i < r->n; i++)
    if (r->track_id[i] >= 0)
      p[m++] = (tid_row){r->track_id[i], i};
  /* Rows are in frame order, so sorting by (track, row) puts each track's rows in frame order. */
  qsort(p, (size_t)m, sizeof *p, cmp_tid_row);
  int64_t k = 0;
  for (int64_t j = 0; j < m; j++) {
    if (j > 0 && p[j].tid == p[j - 1].tid && r->frame[p[j].row] == r->frame[p[j - 1].row]) {
      int64_t tid = p[j].tid, fr = r->frame[p[j].row];
      free(p);
      return npt_error_set(NPT_EINVAL, "video %s: track %lld appears twice in frame %lld", v->name,
                           (long long)tid, (long long)fr);
    }
    k += j == 0 || p[j].tid != p[j - 1].tid;
  }
  const int d = t->embed_dim;
  size_t nk = (size_t)(k ? k : 1);
  t->n_tracks = k;
  t->n_tracked = m;
  t->track_id = malloc(nk * sizeof(int64_t));
  t->first_frame = malloc(nk * sizeof(int64_t));
  t->last_frame = malloc(nk * sizeof(int64_t));
  t->length = malloc(nk * sizeof(int64_t));
  t->n_det = malloc(nk * sizeof(int64_t));
  t->mean_w = malloc(nk * sizeof(float));
  t->mean_h = malloc(nk * sizeof(float));
  t->mean_size = malloc(nk * sizeof(float));
  t->track_rows = malloc((size_t)(m ? m : 1) * sizeof(int64_t));
  t->track_offsets = malloc((nk + 1) * sizeof(int64_t));
  t->mean_embedding = d > 0 ? calloc(nk * (size_t)d, sizeof(float)) : NULL;
  double *acc = d > 0 ? calloc((size_t)d, sizeof(double)) : NULL;
  if (!t->track_id || !t->first_frame || !t->last_frame || !t->length || !t->n_det || !t->mean_w ||
      !t->mean_h || !t->mean_size || !t->track_rows || !t->track_offsets ||
      (d > 0 && (!t->mean_embedding || !acc))) {
    free(p);
    free(acc);
    return npt_error_set(NPT_ENOMEM, "video %s: out of memory", v->name);
  }
  k = 0;
  for (int64_t j0 = 0; j0 < m;) {
    int64_t j1 = j0;
    while (j1 < m && p[j1].tid == p[j0].tid)
      j1++;
    double sw = 0, sh = 0, ss = 0;
    if (d > 0)
      memset(acc, 0, (size_t)d * sizeof *acc);
    for (int64_t j = j0; j < j1; j++) {
      int64_t i = p[j].row;
      t->track_rows[j] = i;
      sw += r->w[i];
      sh += r->h[i];
      ss += npt__arch_size(r->w[i], r->h[i]);
      for (int c = 0; c < d; c++)
        acc[c] += r->embedding[i * d + c];
    }
    double n = (double)(j1 - j0);
    t->track_offsets[k] = j0;
    t->track_id[k] = p[j0].tid;
    t->first_frame[k] = r->frame[p[j0].row];
    t->last_frame[k] = r->frame[p[j1 - 1].row];
    t->length[k] = t->last_frame[k] - t->first_frame[k] + 1;
    t->n_det[k] = j1 - j0;
    t->mean_w[k] = (float)(sw / n);
    t->mean_h[k] = (float)(sh / n);
    t->mean_size[k] = (float)(ss / n);
    /* The mean direction: the mean of unit vectors, scaled back to unit length (zero stays). */
    double norm = 0;
    for (int c = 0; c < d; c++)
      norm += acc[c] * acc[c];
    norm = sqrt(norm);
    for (int c = 0; c < d && norm > 0; c++)
      t->mean_embedding[k * d + c] = (float)(acc[c] / norm);
    k++;
    j0 = j1;
  }
  t->track_offsets[k] = m;
  free(p);
  free(acc);
  return 0;
}

static int build_frames(npt__arch_tables *t, const npt_archive_video *v,
                        const npt_archive_rows *r) {
  size_t nt = (size_t)v->n_frames, c = (size_t)t->n_classes;
  t->frame_offsets = calloc(nt + 1, sizeof(int64_t));
  t->count = calloc(nt ? nt : 1, sizeof(int64_t));
  t->count_by_class = calloc((nt ? nt : 1) * c, sizeof(int64_t));
  t->frame_mean_size = malloc((nt ? nt : 1) * sizeof(float));
  double *sum = calloc(nt ? nt : 1, sizeof(double));
  if (!t->frame_offsets || !t->count || !t->count_by_class || !t->frame_mean_size || !sum) {
    free(sum);
    return npt_error_set(NPT_ENOMEM, "video %s: out of memory", v->name);
  }
  for (int64_t i = 0; i < r->n; i++) {
    int64_t f = r->frame[i];
    t->count[f]++;
    t->count_by_class[(size_t)f * c + (size_t)(r->cls[i] - 1)]++;
    sum[f] += npt__arch_size(r->w[i], r->h[i]);
  }
  int64_t off = 0;
  for (size_t f = 0; f < nt; f++) {
    t->frame_offsets[f] = off;
    off += t->count[f];
    t->frame_mean_size[f] = t->count[f] ? (float)(sum[f] / (double)t->count[f]) : NAN;
  }
  t->frame_offsets[nt] = off;
  free(sum);
  return 0;
}

int npt__arch_tables_build(npt__arch_tables *t, const npt_archive_video *v,
                           const npt_archive_rows *rows, int n_classes) {
  memset(t, 0, sizeof *t);
  NPT_TRY(check_rows(v, rows, n_classes));
  t->n_rows = rows->n;
  t->n_frames = v->n_frames;
  t->n_classes = n_classes;
  t->embed_dim = rows->embed_dim;
  int rc = build_frames(t, v, rows);
  if (rc == 0)
    rc = build_tracks(t, v, rows);
  if (rc < 0)
    npt__arch_tables_free(t);
  return rc;
}
