/* Writing a video of the archive in pieces (npt_archive_stream_*, archive.h): the detections
 * table and the per-track row index are created whole at the start and filled by hyperslabs as
 * rows come; the per-frame summary and the tracks table are accumulated (sums in the same order
 * as archive_tables.c adds them, so the values are the same to the bit) and written at the end,
 * with the column definitions of archive_video.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/search.h"
#include "io/archive_internal.h"
#include "io/h5util.h"

enum { INDEX_RUN = 4096 }; /* row numbers buffered per track before they are written */

struct npt_archive_stream {
  npt_archive *a;
  const npt_archive_video *v;
  char where[256], dwhere[300], twhere[300];
  hid_t g, gdet, gtrk, f16, det[NPT__DET_COLS], row_index;
  int64_t n_rows, written, last_frame;
  int embed_dim, with_emb16, n_classes;
  int defer_rows; /* the detections columns are written by another writer (archive_rows.h) */
  double rate, px;
  /* per frame */
  int64_t *count, *count_by_class;
  double *size_sum;
  /* per track */
  int64_t n_tracks;
  const int64_t *ids, *want;
  int64_t *offset, *seen, *flushed, *first, *last, *last_row_frame;
  double *sw, *sh, *ss, *se; /* se: n_tracks x embed_dim */
  int64_t **buf;
  int *nbuf;
  /* per call */
  double *time_s;
  float *w_nm, *h_nm;
  uint16_t *emb16;
  int64_t scratch_n;
};

void npt_archive_stream_free(npt_archive_stream *s) {
  if (!s)
    return;
  for (int i = 0; i < NPT__DET_COLS; i++)
    if (s->det[i] >= 0)
      H5Dclose(s->det[i]);
  if (s->row_index >= 0)
    H5Dclose(s->row_index);
  if (s->gdet >= 0)
    H5Gclose(s->gdet);
  if (s->gtrk >= 0)
    H5Gclose(s->gtrk);
  if (s->g >= 0)
    H5Gclose(s->g);
  if (s->f16 >= 0)
    H5Tclose(s->f16);
  for (int64_t k = 0; s->buf && k < s->n_tracks; k++)
    free(s->buf[k]);
  free(s->buf), free(s->nbuf);
  free(s->count), free(s->count_by_class), free(s->size_sum);
  free(s->offset), free(s->seen), free(s->flushed), free(s->first), free(s->last);
  free(s->last_row_frame), free(s->sw), free(s->sh), free(s->ss), free(s->se);
  free(s->time_s), free(s->w_nm), free(s->h_nm), free(s->emb16);
  free(s);
}

/* Writes n rows (of n1 values each, rank 2 when n1 > 0) at row `off` of dataset d. */
static int put_rows(hid_t d, hid_t mtype, hsize_t off, hsize_t n, hsize_t n1, const void *data) {
  if (n == 0)
    return 0;
  hsize_t start[2] = {off, 0}, count[2] = {n, n1};
  int rank = n1 > 0 ? 2 : 1;
  hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
  int ok = fs >= 0 && ms >= 0 &&
           H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
           H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, data) >= 0;
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  return ok ? 0 : -1;
}

static int64_t find_track(const npt_archive_stream *s, int64_t id) {
  return npt_find_i64(s->ids, s->n_tracks, id);
}

#define ALLOC(p, n) ((p) = calloc((size_t)((n) > 0 ? (n) : 1), sizeof *(p)))

int npt_archive_stream_begin(npt_archive *a, const npt_archive_video *v, int64_t n_rows,
                             int embed_dim, int64_t n_tracks, const int64_t *track_ids,
                             const int64_t *track_rows, npt_archive_stream **out) {
  *out = NULL;
  if (a->failed)
    return npt_error_set(NPT_EINVAL, "%s: an earlier error stopped this archive", a->path);
  if (!a->have_run)
    return npt_error_set(NPT_EINVAL, "%s: npt_archive_set_run must come first", a->path);
  if (v->n_frames < 0 || v->height < 0 || v->width < 0 || n_rows < 0 || embed_dim < 0 ||
      n_tracks < 0)
    return npt_error_set(NPT_EINVAL, "%s: video %s: bad size", a->path, v->name);
  int64_t tracked = 0;
  for (int64_t k = 0; k < n_tracks; k++) {
    if (track_rows[k] < 1 || track_ids[k] < 0 || (k > 0 && track_ids[k] <= track_ids[k - 1]))
      return npt_error_set(NPT_EINVAL, "%s: video %s: bad track list at %lld", a->path, v->name,
                           (long long)k);
    tracked += track_rows[k];
  }
  if (tracked > n_rows)
    return npt_error_set(NPT_EINVAL, "%s: video %s: tracks hold more rows than the video", a->path,
                         v->name);
  NPT_TRY(npt__arch_check_name(a, v->name));
  npt_archive_stream *s = calloc(1, sizeof *s);
  NPT_ALLOC_CHECK(s);
  s->g = s->gdet = s->gtrk = s->f16 = s->row_index = -1;
  for (int i = 0; i < NPT__DET_COLS; i++)
    s->det[i] = -1;
  a->failed = 1; /* until the video is whole */
  s->a = a, s->v = v, s->n_rows = n_rows, s->n_tracks = n_tracks;
  s->ids = track_ids, s->want = track_rows;
  s->embed_dim = embed_dim;
  s->with_emb16 = a->opt.embeddings == NPT_ARCHIVE_EMBED_ALL && embed_dim > 0;
  s->n_classes = a->run.n_classes;
  s->rate = v->frame_rate_hz > 0 ? v->frame_rate_hz : NAN;
  s->px = v->pixel_size_nm > 0 ? v->pixel_size_nm : NAN;
  int64_t nt = v->n_frames, nk = n_tracks;
  ALLOC(s->count, nt), ALLOC(s->count_by_class, nt * s->n_classes), ALLOC(s->size_sum, nt);
  ALLOC(s->offset, nk + 1), ALLOC(s->seen, nk), ALLOC(s->flushed, nk), ALLOC(s->first, nk);
  ALLOC(s->last, nk), ALLOC(s->last_row_frame, nk), ALLOC(s->sw, nk), ALLOC(s->sh, nk);
  ALLOC(s->ss, nk), ALLOC(s->se, nk * (embed_dim ? embed_dim : 1)), ALLOC(s->buf, nk);
  ALLOC(s->nbuf, nk);
  if (!s->count || !s->count_by_class || !s->size_sum || !s->offset || !s->seen || !s->flushed ||
      !s->first || !s->last || !s->last_row_frame || !s->sw || !s->sh || !s->ss || !s->se ||
      !s->buf || !s->nbuf) {
    npt_archive_stream_free(s);
    return npt_error_set(NPT_ENOMEM, "%s: video %s: out of memory", a->path, v->name);
  }
  for (int64_t k = 0; k < nk; k++) {
    s->offset[k + 1] = s->offset[k] + track_rows[k];
    s->last_row_frame[k] = -1;
  }
  s->last_frame = 0;
  snprintf(s->where, sizeof s->where, "/videos/%s", v->name);
  snprintf(s->dwhere, sizeof s->dwhere, "%s/detections", s->where);
  snprintf(s->twhere, sizeof s->twhere, "%s/tracks", s->where);
  int rc = 0;
  if ((s->f16 = npt__arch_f16_type()) < 0)
    rc = npt_h5_fail(a->path, "cannot make the float16 type");
  if (rc == 0 && (s->g = npt__arch_group(a->videos, v->name)) < 0)
    rc = npt_h5_fail(a->path, s->where);
  if (rc == 0)
    rc = npt__archive_hook(a, "video");
  if (rc == 0)
    rc = npt__arch_video_attrs(a, s->g, s->where, v, n_rows, n_tracks,
                               a->opt.embeddings == NPT_ARCHIVE_EMBED_NONE ? 0 : embed_dim);
  if (rc == 0 && (s->gdet = npt__arch_group(s->g, "detections")) < 0)
    rc = npt_h5_fail(a->path, s->dwhere);
  npt__col_spec c[NPT__DET_COLS];
  npt__det_data none = {.with_emb16 = s->with_emb16};
  npt__arch_det_specs(c, (hsize_t)n_rows, (hsize_t)nt + 1, (hsize_t)embed_dim, s->f16, &none);
  for (int i = 0; i < NPT__DET_COLS && rc == 0; i++)
    if (i != NPT__DET_OFFSETS && c[i].name)
      rc = npt__arch_write_col(a, s->gdet, s->dwhere, &c[i], &s->det[i]);
  if (rc == 0 && (s->gtrk = npt__arch_group(s->g, "tracks")) < 0)
    rc = npt_h5_fail(a->path, s->twhere);
  npt__arch_tables t = {.n_tracks = n_tracks, .n_tracked = tracked};
  npt__col_spec tc[NPT__TRACK_COLS];
  npt__arch_track_specs(tc, &t, NULL, 0);
  if (rc == 0)
    rc = npt__arch_write_col(a, s->gtrk, s->twhere, &tc[NPT__TRACK_ROW_INDEX], &s->row_index);
  if (rc < 0) {
    npt_archive_stream_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void npt_archive_stream_defer_rows(npt_archive_stream *s) {
  s->defer_rows = 1;
}

/* Writes track k's buffered row numbers at their place in row_index. */
static int flush_track(npt_archive_stream *s, int64_t k) {
  if (s->nbuf[k] == 0)
    return 0;
  if (put_rows(s->row_index, H5T_NATIVE_INT64, (hsize_t)(s->offset[k] + s->flushed[k]),
               (hsize_t)s->nbuf[k], 0, s->buf[k]) < 0)
    return npt_h5_fail(s->a->path, "cannot write tracks/row_index");
  s->flushed[k] += s->nbuf[k];
  s->nbuf[k] = 0;
  if (s->flushed[k] == s->want[k]) {
    free(s->buf[k]);
    s->buf[k] = NULL;
  }
  return 0;
}

/* The checks of npt_archive_add_video (archive_tables.c), row by row. */
static const char *bad_row(const npt_archive_stream *s, const npt_archive_rows *r, int64_t i) {
  if (r->frame[i] < 0 || r->frame[i] >= s->v->n_frames)
    return "frame outside the video";
  if (r->frame[i] < s->last_frame)
    return "rows not in frame order";
  if (r->track_id[i] < -1)
    return "track_id below -1";
  if (r->cls[i] < 1 || r->cls[i] > s->n_classes)
    return "class outside 1..n_classes";
  if (!isfinite(r->x[i]) || !isfinite(r->y[i]) || !(r->w[i] >= 0) || !(r->h[i] >= 0) ||
      !isfinite(r->w[i]) || !isfinite(r->h[i]))
    return "box not finite or of negative size";
  return NULL;
}

static int grow_scratch(npt_archive_stream *s, int64_t n) {
  if (n <= s->scratch_n)
    return 0;
  free(s->time_s), free(s->w_nm), free(s->h_nm), free(s->emb16);
  s->time_s = malloc(sizeof *s->time_s * (size_t)n);
  s->w_nm = malloc(sizeof *s->w_nm * (size_t)n);
  s->h_nm = malloc(sizeof *s->h_nm * (size_t)n);
  s->emb16 = s->with_emb16 ? malloc(sizeof *s->emb16 * (size_t)n * (size_t)s->embed_dim) : NULL;
  s->scratch_n = s->time_s && s->w_nm && s->h_nm && (!s->with_emb16 || s->emb16) ? n : 0;
  return s->scratch_n ? 0 : npt_error_set(NPT_ENOMEM, "video %s: out of memory", s->v->name);
}

int npt_archive_stream_write(npt_archive_stream *s, const npt_archive_rows *r) {
  const npt_archive_video *v = s->v;
  const int d = s->embed_dim;
  if (r->n == 0)
    return 0;
  if (r->n < 0 || r->embed_dim != d || (d > 0 && !r->embedding))
    return npt_error_set(NPT_EINVAL, "video %s: bad row count or embedding", v->name);
  if (s->written + r->n > s->n_rows)
    return npt_error_set(NPT_EINVAL, "video %s: more rows than the %lld announced", v->name,
                         (long long)s->n_rows);
  if (!s->defer_rows)
    NPT_TRY(grow_scratch(s, r->n));
  for (int64_t i = 0; i < r->n; i++) {
    int64_t row = s->written + i, f = r->frame[i];
    const char *why = bad_row(s, r, i);
    int64_t k = why || r->track_id[i] < 0 ? -1 : find_track(s, r->track_id[i]);
    if (!why && r->track_id[i] >= 0 && (k < 0 || s->seen[k] == s->want[k]))
      why = k < 0 ? "track_id not announced" : "more rows of a track than announced";
    if (!why && k >= 0 && s->last_row_frame[k] == f)
      return npt_error_set(NPT_EINVAL, "video %s: track %lld appears twice in frame %lld", v->name,
                           (long long)r->track_id[i], (long long)f);
    if (why)
      return npt_error_set(NPT_EINVAL, "video %s: row %lld (frame %lld): %s", v->name,
                           (long long)row, (long long)f, why);
    s->last_frame = f;
    float size = npt__arch_size(r->w[i], r->h[i]);
    s->count[f]++;
    s->count_by_class[(size_t)f * (size_t)s->n_classes + (size_t)(r->cls[i] - 1)]++;
    s->size_sum[f] += size;
    if (!s->defer_rows) {
      s->time_s[i] = (double)f / s->rate;
      s->w_nm[i] = (float)(r->w[i] * s->px);
      s->h_nm[i] = (float)(r->h[i] * s->px);
      for (int c = 0; s->with_emb16 && c < d; c++)
        s->emb16[i * d + c] = npt__arch_f16(r->embedding[i * d + c]);
    }
    if (k < 0)
      continue;
    if (s->seen[k] == 0)
      s->first[k] = f;
    s->last[k] = s->last_row_frame[k] = f;
    s->seen[k]++;
    s->sw[k] += r->w[i];
    s->sh[k] += r->h[i];
    s->ss[k] += size;
    for (int c = 0; c < d; c++)
      s->se[k * d + c] += r->embedding[i * d + c];
    if (!s->buf[k] && !(s->buf[k] = malloc(sizeof **s->buf * INDEX_RUN)))
      return npt_error_set(NPT_ENOMEM, "video %s: out of memory", v->name);
    s->buf[k][s->nbuf[k]++] = row;
    if (s->nbuf[k] == INDEX_RUN || s->seen[k] == s->want[k])
      NPT_TRY(flush_track(s, k));
  }
  hsize_t off = (hsize_t)s->written, n = (hsize_t)r->n;
  const void *data[NPT__DET_COLS] = {r->frame, s->time_s, r->track_id, r->x,   r->y, r->w,    r->h,
                                     s->w_nm,  s->h_nm,   r->score,    r->cls, NULL, s->emb16};
  npt__col_spec c[NPT__DET_COLS];
  npt__det_data none = {.with_emb16 = s->with_emb16};
  npt__arch_det_specs(c, 0, 0, (hsize_t)d, s->f16, &none);
  for (int i = 0; i < NPT__DET_COLS && !s->defer_rows; i++)
    if (s->det[i] >= 0 &&
        put_rows(s->det[i], c[i].mtype, off, n, c[i].rank == 2 ? (hsize_t)d : 0, data[i]) < 0) {
      char what[400];
      snprintf(what, sizeof what, "cannot write %s/%s", s->dwhere, c[i].name);
      return npt_h5_fail(s->a->path, what);
    }
  s->written += r->n;
  return 0;
}

/* The tracks table and the frame summary from the sums, as archive_tables.c computes them. */
static int finish_tables(npt_archive_stream *s) {
  npt_archive *a = s->a;
  const int64_t nk = s->n_tracks, nt = s->v->n_frames;
  const int d = s->embed_dim;
  npt__arch_tables t = {.n_rows = s->n_rows,
                        .n_frames = nt,
                        .n_classes = s->n_classes,
                        .embed_dim = d,
                        .n_tracks = nk,
                        .n_tracked = s->offset[nk],
                        .track_id = (int64_t *)s->ids,
                        .first_frame = s->first,
                        .last_frame = s->last,
                        .n_det = s->seen,
                        .track_offsets = s->offset,
                        .count = s->count,
                        .count_by_class = s->count_by_class};
  ALLOC(t.length, nk), ALLOC(t.mean_w, nk), ALLOC(t.mean_h, nk), ALLOC(t.mean_size, nk);
  ALLOC(t.mean_embedding, nk * (d ? d : 1)), ALLOC(t.frame_offsets, nt + 1);
  ALLOC(t.frame_mean_size, nt);
  float *track_nm, *frame_nm;
  double *frame_time;
  int64_t *frame_no;
  ALLOC(track_nm, nk), ALLOC(frame_nm, nt), ALLOC(frame_time, nt), ALLOC(frame_no, nt);
  int rc = t.length && t.mean_w && t.mean_h && t.mean_size && t.mean_embedding && t.frame_offsets &&
                   t.frame_mean_size && track_nm && frame_nm && frame_time && frame_no
               ? 0
               : npt_error_set(NPT_ENOMEM, "video %s: out of memory", s->v->name);
  for (int64_t k = 0; k < nk && rc == 0; k++) {
    double n = (double)s->seen[k], norm = 0;
    t.length[k] = s->last[k] - s->first[k] + 1;
    t.mean_w[k] = (float)(s->sw[k] / n);
    t.mean_h[k] = (float)(s->sh[k] / n);
    t.mean_size[k] = (float)(s->ss[k] / n);
    track_nm[k] = (float)(t.mean_size[k] * s->px);
    for (int c = 0; c < d; c++)
      norm += s->se[k * d + c] * s->se[k * d + c];
    norm = sqrt(norm);
    for (int c = 0; c < d && norm > 0; c++)
      t.mean_embedding[k * d + c] = (float)(s->se[k * d + c] / norm);
  }
  int64_t off = 0;
  for (int64_t f = 0; f < nt && rc == 0; f++) {
    t.frame_offsets[f] = off;
    off += s->count[f];
    t.frame_mean_size[f] = s->count[f] ? (float)(s->size_sum[f] / (double)s->count[f]) : NAN;
    frame_no[f] = f;
    frame_time[f] = (double)f / s->rate;
    frame_nm[f] = (float)(t.frame_mean_size[f] * s->px);
  }
  if (rc == 0)
    t.frame_offsets[nt] = off;
  npt__col_spec c[NPT__DET_COLS];
  npt__det_data dd = {.frame_offsets = t.frame_offsets, .with_emb16 = s->with_emb16};
  npt__arch_det_specs(c, (hsize_t)s->n_rows, (hsize_t)nt + 1, (hsize_t)d, s->f16, &dd);
  if (rc == 0)
    rc = npt__arch_write_col(a, s->gdet, s->dwhere, &c[NPT__DET_OFFSETS], NULL);
  if (rc == 0)
    rc = npt__arch_det_group_attrs(a, s->gdet, s->dwhere, s->n_rows);
  if (rc == 0)
    rc = npt__archive_hook(a, "tables");
  npt__col_spec tc[NPT__TRACK_COLS];
  npt__arch_track_specs(tc, &t, track_nm, a->opt.embeddings != NPT_ARCHIVE_EMBED_NONE && d > 0);
  for (int i = 0; i < NPT__TRACK_COLS && rc == 0; i++)
    if (i != NPT__TRACK_ROW_INDEX && tc[i].name)
      rc = npt__arch_write_col(a, s->gtrk, s->twhere, &tc[i], NULL);
  if (rc == 0 && npt_h5_write_i64_attr(s->gtrk, "n_tracks", nk) < 0)
    rc = npt_h5_fail(a->path, s->twhere);
  if (rc == 0)
    rc = npt__arch_write_frames(a, s->g, s->where, &t, frame_no, frame_time, frame_nm);
  free(t.length), free(t.mean_w), free(t.mean_h), free(t.mean_size), free(t.mean_embedding);
  free(t.frame_offsets), free(t.frame_mean_size);
  free(track_nm), free(frame_nm), free(frame_time), free(frame_no);
  return rc;
}

int npt_archive_stream_end(npt_archive_stream *s) {
  if (s->written != s->n_rows)
    return npt_error_set(NPT_EINVAL, "video %s: %lld rows written of the %lld announced",
                         s->v->name, (long long)s->written, (long long)s->n_rows);
  for (int64_t k = 0; k < s->n_tracks; k++)
    if (s->seen[k] != s->want[k])
      return npt_error_set(NPT_EINVAL, "video %s: track %lld has %lld rows, %lld announced",
                           s->v->name, (long long)s->ids[k], (long long)s->seen[k],
                           (long long)s->want[k]);
  NPT_TRY(finish_tables(s));
  /* A long run's finished videos reach the disk (as npt_archive_add_video does). */
  if (H5Fflush(s->a->file, H5F_SCOPE_LOCAL) < 0)
    return npt_h5_fail(s->a->path, "cannot flush");
  s->a->failed = 0;
  s->a->n_videos++;
  return 0;
}
