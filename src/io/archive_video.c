/* Writing one video of the archive (npt_archive_add_video): its group, metadata and tables,
 * each column one dataset written whole from the tables of archive_tables.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "io/archive_internal.h"
#include "io/h5util.h"

enum { ROW_CHUNK = 16384, EMBED_CHUNK_BYTES = 262144 };

/* ------------------------------------------------------------------------------------------- */
/* Datasets */

int npt__arch_write_col(npt_archive *a, hid_t g, const char *where, const npt__col_spec *c,
                        hid_t *keep) {
  size_t esize = H5Tget_size(c->ftype);
  hsize_t rowbytes = (c->rank == 2 ? c->n1 : 1) * esize, rows = ROW_CHUNK;
  while (rows > 1 && rows * rowbytes > EMBED_CHUNK_BYTES)
    rows /= 2;
  hsize_t dims[2] = {c->n0, c->n1}, maxd[2] = {H5S_UNLIMITED, c->n1}, chunk[2] = {rows, c->n1};
  if (c->n0 > 0 && c->n0 < rows)
    chunk[0] = c->n0;
  hid_t space = H5Screate_simple(c->rank, dims, maxd);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t d = -1;
  int ok = space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, c->rank, chunk) >= 0 &&
           H5Pset_obj_track_times(dcpl, 0) >= 0;
  if (ok && a->opt.compression > 0)
    ok = H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)a->opt.compression) >= 0;
  if (ok)
    d = H5Dcreate2(g, c->name, c->ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ok = d >= 0 &&
       (c->n0 == 0 || !c->data ||
        H5Dwrite(d, c->mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->data) >= 0) &&
       npt_h5_write_fixed_str_attr(d, "units", c->units) >= 0 &&
       npt_h5_write_fixed_str_attr(d, "description", c->description) >= 0 &&
       (!c->is_frame || npt_h5_write_i64_attr(d, "frame_base", 0) >= 0);
  if (d >= 0 && (!ok || !keep))
    H5Dclose(d);
  else if (keep)
    *keep = d;
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (space >= 0)
    H5Sclose(space);
  if (!ok) {
    char what[256];
    snprintf(what, sizeof what, "cannot write %s/%s", where, c->name);
    return npt_h5_fail(a->path, what);
  }
  return 0;
}

static int write_cols(npt_archive *a, hid_t g, const char *where, const npt__col_spec *c, int n) {
  for (int i = 0; i < n; i++)
    if (c[i].name)
      NPT_TRY(npt__arch_write_col(a, g, where, &c[i], NULL));
  return 0;
}

/* IEEE binary16 from binary32, rounding to nearest even (what numpy's astype(float16) does). */
uint16_t npt__arch_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
  int32_t exp = (int32_t)((x >> 23) & 0xffu);
  if (exp == 255)
    return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31)
    return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10)
      return (uint16_t)sign;
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (h & 1)))
      h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
    h++; /* a carry into the exponent is right, up to infinity */
  return (uint16_t)(sign | h);
}

/* HDF5 1.10 has no predefined half type: IEEE binary16, little-endian, built from float32's. */
hid_t npt__arch_f16_type(void) {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  if (t < 0 || H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
      H5Tset_ebias(t, 15) < 0) {
    if (t >= 0)
      H5Tclose(t);
    return -1;
  }
  return t;
}

hid_t npt__arch_group(hid_t loc, const char *name) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl >= 0)
    H5Pset_obj_track_times(gcpl, 0);
  hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (gcpl >= 0)
    H5Pclose(gcpl);
  return g;
}

/* ------------------------------------------------------------------------------------------- */
/* A video */

typedef struct video_bufs {
  double *time_s, *frame_time_s;
  float *w_nm, *h_nm, *track_size_nm, *frame_size_nm;
  int64_t *frame_no;
  uint16_t *emb16;
} video_bufs;

static void bufs_free(video_bufs *b) {
  free(b->time_s);
  free(b->frame_time_s);
  free(b->w_nm);
  free(b->h_nm);
  free(b->track_size_nm);
  free(b->frame_size_nm);
  free(b->frame_no);
  free(b->emb16);
}

static int make_bufs(video_bufs *b, const npt_archive_video *v, const npt_archive_rows *r,
                     const npt__arch_tables *t, int embed_all) {
  memset(b, 0, sizeof *b);
  size_t n = (size_t)(r->n ? r->n : 1), nt = (size_t)(t->n_frames ? t->n_frames : 1),
         nk = (size_t)(t->n_tracks ? t->n_tracks : 1);
  b->time_s = malloc(n * sizeof(double));
  b->frame_time_s = malloc(nt * sizeof(double));
  b->frame_no = malloc(nt * sizeof(int64_t));
  b->w_nm = malloc(n * sizeof(float));
  b->h_nm = malloc(n * sizeof(float));
  b->track_size_nm = malloc(nk * sizeof(float));
  b->frame_size_nm = malloc(nt * sizeof(float));
  if (embed_all && r->embed_dim > 0)
    b->emb16 = malloc(n * (size_t)r->embed_dim * sizeof(uint16_t));
  if (!b->time_s || !b->frame_time_s || !b->frame_no || !b->w_nm || !b->h_nm || !b->track_size_nm ||
      !b->frame_size_nm || (embed_all && r->embed_dim > 0 && !b->emb16))
    return npt_error_set(NPT_ENOMEM, "video %s: out of memory", v->name);
  /* Unknown frame rate or pixel size: NAN columns, so the layout never depends on them. */
  double rate = v->frame_rate_hz > 0 ? v->frame_rate_hz : NAN;
  double px = v->pixel_size_nm > 0 ? v->pixel_size_nm : NAN;
  for (int64_t i = 0; i < r->n; i++) {
    b->time_s[i] = (double)r->frame[i] / rate;
    b->w_nm[i] = (float)(r->w[i] * px);
    b->h_nm[i] = (float)(r->h[i] * px);
  }
  for (int64_t f = 0; f < t->n_frames; f++) {
    b->frame_no[f] = f;
    b->frame_time_s[f] = (double)f / rate;
    b->frame_size_nm[f] = (float)(t->frame_mean_size[f] * px);
  }
  for (int64_t k = 0; k < t->n_tracks; k++)
    b->track_size_nm[k] = (float)(t->mean_size[k] * px);
  if (b->emb16)
    for (size_t i = 0; i < (size_t)r->n * (size_t)r->embed_dim; i++)
      b->emb16[i] = npt__arch_f16(r->embedding[i]);
  return 0;
}

#define I64 H5T_STD_I64LE, H5T_NATIVE_INT64
#define I32 H5T_STD_I32LE, H5T_NATIVE_INT32
#define F32 H5T_IEEE_F32LE, H5T_NATIVE_FLOAT
#define F64 H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE

void npt__arch_det_specs(npt__col_spec c[NPT__DET_COLS], hsize_t n, hsize_t nt1, hsize_t embed_dim,
                         hid_t f16, const npt__det_data *d) {
  const npt__col_spec spec[NPT__DET_COLS] = {
      {"frame", I64, 1, n, 0, d->frame, "frame", "frame index in the video, counted from 0", 1},
      {"time_s", F64, 1, n, 0, d->time_s, "s",
       "frame / frame_rate_hz; NaN when the frame rate "
       "is unknown",
       0},
      {"track_id", I64, 1, n, 0, d->track_id, "1",
       "track identity (tracks/track_id); -1: in no "
       "track",
       0},
      {"x", F32, 1, n, 0, d->x, "px",
       "left edge of the box; pixel centres are at integers, the "
       "top-left pixel's at (0, 0)",
       0},
      {"y", F32, 1, n, 0, d->y, "px", "top edge of the box (y grows downwards)", 0},
      {"w", F32, 1, n, 0, d->w, "px", "box width: the particle's tight outline, not clipped", 0},
      {"h", F32, 1, n, 0, d->h, "px", "box height: the particle's tight outline, not clipped", 0},
      {"w_nm", F32, 1, n, 0, d->w_nm, "nm",
       "box width in nm (w x pixel_size_nm); NaN when the "
       "pixel size is unknown",
       0},
      {"h_nm", F32, 1, n, 0, d->h_nm, "nm",
       "box height in nm; NaN when the pixel size is "
       "unknown",
       0},
      {"score", F32, 1, n, 0, d->score, "1", "detection score, 0 to 1", 0},
      {"class", I32, 1, n, 0, d->cls, "1",
       "particle class, counted from 1 (root attribute "
       "class_names)",
       0},
      {"frame_offsets", I64, 1, nt1, 0, d->frame_offsets, "row",
       "CSR index by frame: the rows of frame t (0-based) are frame_offsets[t] to "
       "frame_offsets[t+1] - 1 (Python: [t]:[t+1])",
       0},
      {d->with_emb16 ? "embedding" : NULL, f16, f16, 2, n, embed_dim, d->emb16, "1",
       "appearance embedding of each detection, float16, row-aligned with the columns", 0},
  };
  memcpy(c, spec, sizeof spec);
}

int npt__arch_det_group_attrs(npt_archive *a, hid_t g, const char *where, int64_t n_rows) {
  if (npt_h5_write_i64_attr(g, "n_rows", n_rows) < 0 ||
      npt_h5_write_fixed_str_attr(g, "description",
                                  "one row per particle per frame, rows in frame order") < 0)
    return npt_h5_fail(a->path, where);
  return 0;
}

static int write_detections(npt_archive *a, hid_t vg, const char *vpath, const npt_archive_rows *r,
                            const npt__arch_tables *t, const video_bufs *b, hid_t f16) {
  char where[512];
  snprintf(where, sizeof where, "%s/detections", vpath);
  hid_t g = npt__arch_group(vg, "detections");
  if (g < 0)
    return npt_h5_fail(a->path, where);
  npt__det_data d = {r->frame, b->time_s,       r->track_id, r->x,     r->y,   r->w,
                     r->h,     b->w_nm,         b->h_nm,     r->score, r->cls, t->frame_offsets,
                     b->emb16, b->emb16 != NULL};
  npt__col_spec c[NPT__DET_COLS];
  npt__arch_det_specs(c, (hsize_t)r->n, (hsize_t)t->n_frames + 1, (hsize_t)r->embed_dim, f16, &d);
  int rc = write_cols(a, g, where, c, NPT__DET_COLS);
  if (rc == 0)
    rc = npt__arch_det_group_attrs(a, g, where, r->n);
  H5Gclose(g);
  return rc;
}

void npt__arch_track_specs(npt__col_spec c[NPT__TRACK_COLS], const npt__arch_tables *t,
                           const float *track_size_nm, int with_embedding) {
  hsize_t k = (hsize_t)t->n_tracks;
  const npt__col_spec spec[NPT__TRACK_COLS] = {
      {"track_id", I64, 1, k, 0, t->track_id, "1", "track identity, increasing", 0},
      {"first_frame", I64, 1, k, 0, t->first_frame, "frame", "first frame of the track, from 0", 1},
      {"last_frame", I64, 1, k, 0, t->last_frame, "frame", "last frame of the track, from 0", 1},
      {"length", I64, 1, k, 0, t->length, "frame",
       "frames spanned, last_frame - first_frame + 1 (gaps included)", 0},
      {"n_detections", I64, 1, k, 0, t->n_det, "1", "detections in the track (<= length)", 0},
      {"mean_w", F32, 1, k, 0, t->mean_w, "px", "mean box width", 0},
      {"mean_h", F32, 1, k, 0, t->mean_h, "px", "mean box height", 0},
      {"mean_size", F32, 1, k, 0, t->mean_size, "px", "mean size, sqrt(w h) per detection", 0},
      {"mean_size_nm", F32, 1, k, 0, track_size_nm, "nm",
       "mean size in nm; NaN when the pixel size is unknown", 0},
      {with_embedding ? "mean_embedding" : NULL, F32, 2, k, (hsize_t)t->embed_dim,
       t->mean_embedding, "1",
       "mean of the track's embeddings, scaled to unit length (L2); zero when the mean is", 0},
      {"row_offsets", I64, 1, k + 1, 0, t->track_offsets, "row",
       "per-track index: track k's detection rows are row_index[row_offsets[k]:"
       "row_offsets[k+1]]",
       0},
      {"row_index", I64, 1, (hsize_t)t->n_tracked, 0, t->track_rows, "row",
       "rows of detections/ grouped by track (in the order of track_id), each in frame order", 0},
  };
  memcpy(c, spec, sizeof spec);
}

static int write_tracks(npt_archive *a, hid_t vg, const char *vpath, const npt__arch_tables *t,
                        const video_bufs *b) {
  char where[512];
  snprintf(where, sizeof where, "%s/tracks", vpath);
  hid_t g = npt__arch_group(vg, "tracks");
  if (g < 0)
    return npt_h5_fail(a->path, where);
  npt__col_spec c[NPT__TRACK_COLS];
  npt__arch_track_specs(c, t, b->track_size_nm,
                        a->opt.embeddings != NPT_ARCHIVE_EMBED_NONE && t->embed_dim > 0);
  int rc = write_cols(a, g, where, c, NPT__TRACK_COLS);
  if (rc == 0 && npt_h5_write_i64_attr(g, "n_tracks", t->n_tracks) < 0)
    rc = npt_h5_fail(a->path, where);
  H5Gclose(g);
  return rc;
}

int npt__arch_write_frames(npt_archive *a, hid_t vg, const char *vpath, const npt__arch_tables *t,
                           const int64_t *frame_no, const double *frame_time_s,
                           const float *frame_size_nm) {
  char where[512];
  snprintf(where, sizeof where, "%s/frames", vpath);
  hid_t g = npt__arch_group(vg, "frames");
  if (g < 0)
    return npt_h5_fail(a->path, where);
  hsize_t nt = (hsize_t)t->n_frames;
  npt__col_spec c[] = {
      {"frame", I64, 1, nt, 0, frame_no, "frame", "frame index, from 0 (row t is frame t)", 1},
      {"time_s", F64, 1, nt, 0, frame_time_s, "s", "frame / frame_rate_hz; NaN when unknown", 0},
      {"count", I64, 1, nt, 0, t->count, "1", "detections in the frame", 0},
      {"count_by_class", I64, 2, nt, (hsize_t)t->n_classes, t->count_by_class, "1",
       "detections in the frame by class: column c is class c + 1", 0},
      {"mean_size", F32, 1, nt, 0, t->frame_mean_size, "px",
       "mean size sqrt(w h) of the frame's detections; NaN for an empty frame", 0},
      {"mean_size_nm", F32, 1, nt, 0, frame_size_nm, "nm",
       "mean size in nm; NaN for an empty frame or an unknown pixel size", 0},
  };
  int rc = write_cols(a, g, where, c, (int)(sizeof c / sizeof c[0]));
  H5Gclose(g);
  return rc;
}

int npt__arch_video_attrs(npt_archive *a, hid_t g, const char *where, const npt_archive_video *v,
                          int64_t n_rows, int64_t n_tracks, int embed_dim) {
  int bad = npt_h5_write_fixed_str_attr(g, "name", v->name) < 0 ||
            npt_h5_write_fixed_str_attr(g, "source", v->source_path) < 0 ||
            npt_h5_write_i64_attr(g, "n_frames", v->n_frames) < 0 ||
            npt_h5_write_i64_attr(g, "height", v->height) < 0 ||
            npt_h5_write_i64_attr(g, "width", v->width) < 0 ||
            npt_h5_write_f64_attr(g, "frame_rate_hz",
                                  v->frame_rate_hz > 0 ? v->frame_rate_hz : NAN) < 0 ||
            npt_h5_write_f64_attr(g, "pixel_size_nm",
                                  v->pixel_size_nm > 0 ? v->pixel_size_nm : NAN) < 0 ||
            npt_h5_write_fixed_str_attr(g, "pixel_size_source",
                                        v->pixel_size_nm > 0 && v->pixel_size_source
                                            ? v->pixel_size_source
                                            : NPT_PIXEL_SOURCE_UNKNOWN) < 0 ||
            npt_h5_write_i64_attr(g, "n_detections", n_rows) < 0 ||
            npt_h5_write_i64_attr(g, "n_tracks", n_tracks) < 0 ||
            npt_h5_write_i64_attr(g, "embed_dim", embed_dim) < 0;
  if (!bad && v->replay_of > 0) {
    char replay[4400];
    snprintf(replay, sizeof replay,
             "benchmark input, not a real video: the %lld frames are the %lld stored frames of "
             "%s replayed cyclically (frame i is stored frame i mod %lld, read from the file "
             "each time; detect.replay_frames = %lld)",
             (long long)v->n_frames, (long long)v->replay_of, v->source_path,
             (long long)v->replay_of, (long long)v->n_frames);
    bad = npt_h5_write_fixed_str_attr(g, "replay", replay) < 0 ||
          npt_h5_write_i64_attr(g, "replay_source_frames", v->replay_of) < 0;
  }
  return bad ? npt_h5_fail(a->path, where) : 0;
}

int npt__arch_check_name(const npt_archive *a, const char *name) {
  if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || strlen(name) > 200)
    return npt_error_set(NPT_EINVAL, "%s: bad video name '%s' (not empty, no '/')", a->path,
                         name ? name : "");
  if (H5Lexists(a->videos, name, H5P_DEFAULT) > 0)
    return npt_error_set(NPT_EINVAL, "%s: video '%s' added twice", a->path, name);
  return 0;
}

int npt_archive_add_video(npt_archive *a, const npt_archive_video *v,
                          const npt_archive_rows *rows) {
  if (a->failed)
    return npt_error_set(NPT_EINVAL, "%s: an earlier error stopped this archive", a->path);
  if (!a->have_run)
    return npt_error_set(NPT_EINVAL, "%s: npt_archive_set_run must come first", a->path);
  if (v->n_frames < 0 || v->height < 0 || v->width < 0)
    return npt_error_set(NPT_EINVAL, "%s: video %s: bad size", a->path, v->name);
  NPT_TRY(npt__arch_check_name(a, v->name));
  a->failed = 1; /* until the video is whole */
  npt__arch_tables t;
  NPT_TRY(npt__arch_tables_build(&t, v, rows, a->run.n_classes));
  char where[256];
  snprintf(where, sizeof where, "/videos/%s", v->name);
  int embed_all = a->opt.embeddings == NPT_ARCHIVE_EMBED_ALL;
  int embed_dim = a->opt.embeddings == NPT_ARCHIVE_EMBED_NONE ? 0 : rows->embed_dim;
  video_bufs b;
  hid_t f16 = -1, g = -1;
  int rc = make_bufs(&b, v, rows, &t, embed_all);
  if (rc == 0 && (f16 = npt__arch_f16_type()) < 0)
    rc = npt_h5_fail(a->path, "cannot make the float16 type");
  if (rc == 0 && (g = npt__arch_group(a->videos, v->name)) < 0)
    rc = npt_h5_fail(a->path, where);
  if (rc == 0)
    rc = npt__archive_hook(a, "video");
  if (rc == 0)
    rc = npt__arch_video_attrs(a, g, where, v, t.n_rows, t.n_tracks, embed_dim);
  if (rc == 0)
    rc = write_detections(a, g, where, rows, &t, &b, f16);
  if (rc == 0)
    rc = npt__archive_hook(a, "tables");
  if (rc == 0)
    rc = write_tracks(a, g, where, &t, &b);
  if (rc == 0)
    rc = npt__arch_write_frames(a, g, where, &t, b.frame_no, b.frame_time_s, b.frame_size_nm);
  if (g >= 0)
    H5Gclose(g);
  /* A long run's finished videos reach the disk: a writer that dies later leaves a readable
   * temporary file whose status still says "writing". */
  if (rc == 0 && H5Fflush(a->file, H5F_SCOPE_LOCAL) < 0)
    rc = npt_h5_fail(a->path, "cannot flush");
  if (f16 >= 0)
    H5Tclose(f16);
  bufs_free(&b);
  npt__arch_tables_free(&t);
  if (rc == 0) {
    a->failed = 0;
    a->n_videos++;
  }
  return rc;
}
