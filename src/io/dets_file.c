/* Writing the detections file (dets_file.h; layout in docs/archive-format.md).
 *
 * Rows are buffered BUF_ROWS at a time and appended to extendible chunked datasets, so memory
 * does not grow with the video; the per-frame row counts (8 bytes a frame) become the CSR index
 * /detections/frame_offsets at the end.  Everything goes into a temporary file beside the final
 * one, renamed into place after the last attribute (status = "complete") is written. */
#include "io/dets_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/path.h"
#include "io/dets_file_internal.h"
#include "io/h5util.h"
#include "npt_buildinfo.h"

enum {
  BUF_ROWS = 16384,           /* rows buffered, and the chunk of the 1-D columns */
  EMBED_CHUNK_BYTES = 262144, /* target chunk size of the embedding (readers' cache is 1 MiB) */
  GZIP_LEVEL = 4,
};

const npt__col_def npt__dets_cols[NPT__N_COLS] = {
    {"frame", NPT__COL_I64, "frame",
     "frame index in the video, counted from 0 (text exports count from 1)"},
    {"x", NPT__COL_F32, "px",
     "left edge of the box; pixel centres are at integers, the top-left pixel's at (0, 0)"},
    {"y", NPT__COL_F32, "px", "top edge of the box (y grows downwards)"},
    {"w", NPT__COL_F32, "px", "box width: the particle's tight outline, not clipped at the border"},
    {"h", NPT__COL_F32, "px",
     "box height: the particle's tight outline, not clipped at the border"},
    {"score", NPT__COL_F32, "1", "detection score: the class heatmap's peak value, 0 to 1"},
    {"class", NPT__COL_I32, "1", "particle class, counted from 1"},
    {"track_id", NPT__COL_I64, "1", "track identity; -1: not tracked (nptrack detect)"},
};

size_t npt__col_size(npt__col_kind k) {
  return k == NPT__COL_I64 ? 8 : 4;
}

hid_t npt__col_file_type(npt__col_kind k) {
  return k == NPT__COL_I64 ? H5T_STD_I64LE : k == NPT__COL_I32 ? H5T_STD_I32LE : H5T_IEEE_F32LE;
}

hid_t npt__col_mem_type(npt__col_kind k) {
  return k == NPT__COL_I64   ? H5T_NATIVE_INT64
         : k == NPT__COL_I32 ? H5T_NATIVE_INT32
                             : H5T_NATIVE_FLOAT;
}

struct npt_dets_writer {
  char *path, *tmp;
  hid_t file, group, dset[NPT__N_COLS], embed;
  npt_dets_meta meta; /* strings owned (copied) */
  int64_t written;    /* rows in the file */
  int64_t nbuf;       /* rows buffered */
  void *buf[NPT__N_COLS];
  float *ebuf;
  int64_t *counts; /* rows per video frame */
  int64_t last_frame;
};

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

static void close_h5(npt_dets_writer *w) {
  for (int c = 0; c < NPT__N_COLS; c++)
    if (w->dset[c] >= 0)
      H5Dclose(w->dset[c]), w->dset[c] = -1;
  if (w->embed >= 0)
    H5Dclose(w->embed), w->embed = -1;
  if (w->group >= 0)
    H5Gclose(w->group), w->group = -1;
  if (w->file >= 0)
    H5Fclose(w->file), w->file = -1;
}

static void writer_free(npt_dets_writer *w) {
  free(w->path);
  free(w->tmp);
  for (int c = 0; c < NPT__N_COLS; c++)
    free(w->buf[c]);
  free(w->ebuf);
  free(w->counts);
  free((char *)w->meta.config_text);
  free((char *)w->meta.video_path);
  free((char *)w->meta.video_dataset);
  free((char *)w->meta.model_path);
  free((char *)w->meta.model_provenance);
  free((char *)w->meta.class_names);
  free(w);
}

void npt_dets_writer_abort(npt_dets_writer *w) {
  if (!w)
    return;
  close_h5(w);
  if (w->tmp)
    unlink(w->tmp);
  writer_free(w);
}

/* A chunked, gzip + shuffle compressed dataset of `rank` dimensions whose first one grows. */
static hid_t create_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                            const hsize_t *maxdims, const hsize_t *chunk) {
  hid_t space = H5Screate_simple(rank, dims, maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t d = -1;
  if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
      H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, GZIP_LEVEL) >= 0 &&
      H5Pset_obj_track_times(dcpl, 0) >= 0)
    d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (space >= 0)
    H5Sclose(space);
  return d;
}

static int describe(hid_t obj, const char *units, const char *description) {
  return npt_h5_write_str_attr(obj, "units", units) < 0 ||
                 npt_h5_write_str_attr(obj, "description", description) < 0
             ? -1
             : 0;
}

static int create_layout(npt_dets_writer *w) {
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  /* No timestamps: the same input gives the same file, byte for byte. */
  if (fcpl >= 0)
    H5Pset_obj_track_times(fcpl, 0);
  if (gcpl >= 0)
    H5Pset_obj_track_times(gcpl, 0);
  w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  if (w->file >= 0)
    w->group = H5Gcreate2(w->file, "detections", H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (fcpl >= 0)
    H5Pclose(fcpl);
  if (gcpl >= 0)
    H5Pclose(gcpl);
  if (w->file < 0)
    return npt_h5_fail(w->path, "cannot create");
  if (w->group < 0)
    return npt_h5_fail(w->path, "cannot create group /detections");
  hsize_t zero[2] = {0, 0}, unlim[2] = {H5S_UNLIMITED, 0}, chunk[2] = {BUF_ROWS, 0};
  for (int c = 0; c < NPT__N_COLS; c++) {
    const npt__col_def *col = &npt__dets_cols[c];
    w->dset[c] =
        create_dataset(w->group, col->name, npt__col_file_type(col->kind), 1, zero, unlim, chunk);
    const char *desc = col->description;
    char cls_desc[512];
    if (c == NPT__C_CLASS && w->meta.class_names[0]) {
      snprintf(cls_desc, sizeof cls_desc, "%s: %s", col->description, w->meta.class_names);
      desc = cls_desc;
    }
    if (w->dset[c] < 0 || describe(w->dset[c], col->units, desc) < 0) {
      char what[96];
      snprintf(what, sizeof what, "cannot create /detections/%s", col->name);
      return npt_h5_fail(w->path, what);
    }
  }
  if (w->meta.embed_dim > 0) {
    hsize_t d = (hsize_t)w->meta.embed_dim, rows = BUF_ROWS;
    while (rows > 1 && rows * d * sizeof(float) > EMBED_CHUNK_BYTES)
      rows /= 2;
    hsize_t edims[2] = {0, d}, emax[2] = {H5S_UNLIMITED, d}, echunk[2] = {rows, d};
    w->embed = create_dataset(w->group, "embedding", H5T_IEEE_F32LE, 2, edims, emax, echunk);
    if (w->embed < 0 ||
        describe(w->embed, "1",
                 "appearance embedding of each detection (row i belongs to row i of the "
                 "columns), L2-normalised; all zeros when the network gave a zero vector") < 0)
      return npt_h5_fail(w->path, "cannot create /detections/embedding");
  }
  return 0;
}

int npt_dets_writer_open(npt_dets_writer **out, const char *path, const npt_dets_meta *meta) {
  *out = NULL;
  npt_h5_quiet();
  if (meta->n_frames < 0 || meta->frame_begin < 0 || meta->frame_end < meta->frame_begin ||
      meta->frame_end > meta->n_frames || meta->embed_dim < 0)
    return npt_error_set(NPT_EINVAL, "%s: bad frame range [%lld, %lld) of %lld frames", path,
                         (long long)meta->frame_begin, (long long)meta->frame_end,
                         (long long)meta->n_frames);
  npt_dets_writer *w = calloc(1, sizeof *w);
  NPT_ALLOC_CHECK(w);
  w->file = w->group = w->embed = -1;
  for (int c = 0; c < NPT__N_COLS; c++)
    w->dset[c] = -1;
  w->meta = *meta;
  w->meta.config_text = dup_or_empty(meta->config_text);
  w->meta.video_path = dup_or_empty(meta->video_path);
  w->meta.video_dataset = dup_or_empty(meta->video_dataset);
  w->meta.model_path = dup_or_empty(meta->model_path);
  w->meta.model_provenance = dup_or_empty(meta->model_provenance);
  w->meta.class_names = dup_or_empty(meta->class_names);
  w->path = strdup(path);
  w->tmp = npt_temp_path(path);
  w->counts = calloc((size_t)meta->n_frames + 1, sizeof *w->counts);
  int ok = w->path && w->tmp && w->counts && w->meta.config_text && w->meta.video_path &&
           w->meta.video_dataset && w->meta.model_path && w->meta.model_provenance &&
           w->meta.class_names;
  for (int c = 0; c < NPT__N_COLS && ok; c++)
    ok = (w->buf[c] = malloc(BUF_ROWS * npt__col_size(npt__dets_cols[c].kind))) != NULL;
  if (ok && meta->embed_dim > 0)
    ok = (w->ebuf = malloc((size_t)BUF_ROWS * (size_t)meta->embed_dim * sizeof(float))) != NULL;
  if (!ok) {
    npt_dets_writer_abort(w);
    return npt_error_set(NPT_ENOMEM, "%s: out of memory", path);
  }
  for (int k = 0; k < BUF_ROWS; k++)
    ((int64_t *)w->buf[NPT__C_TRACK])[k] = -1;
  w->last_frame = meta->frame_begin;
  int rc = create_layout(w);
  if (rc < 0) {
    npt_dets_writer_abort(w);
    return rc;
  }
  *out = w;
  return 0;
}

/* Appends the buffered rows to the datasets. */
static int flush(npt_dets_writer *w) {
  if (w->nbuf == 0)
    return 0;
  hsize_t start[2] = {(hsize_t)w->written, 0}, count[2] = {(hsize_t)w->nbuf, 0};
  hsize_t total[2] = {(hsize_t)(w->written + w->nbuf), (hsize_t)w->meta.embed_dim};
  int ok = 1;
  const char *what = "";
  for (int c = 0; c < NPT__N_COLS + 1 && ok; c++) {
    int is_embed = c == NPT__N_COLS;
    if (is_embed && w->embed < 0)
      break;
    hid_t d = is_embed ? w->embed : w->dset[c];
    int rank = is_embed ? 2 : 1;
    count[1] = (hsize_t)w->meta.embed_dim;
    what = is_embed ? "embedding" : npt__dets_cols[c].name;
    hid_t fs = -1, ms = -1;
    ok = H5Dset_extent(d, total) >= 0 && (fs = H5Dget_space(d)) >= 0 &&
         (ms = H5Screate_simple(rank, count, NULL)) >= 0 &&
         H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
         H5Dwrite(d, is_embed ? H5T_NATIVE_FLOAT : npt__col_mem_type(npt__dets_cols[c].kind), ms,
                  fs, H5P_DEFAULT, is_embed ? (void *)w->ebuf : w->buf[c]) >= 0;
    if (ms >= 0)
      H5Sclose(ms);
    if (fs >= 0)
      H5Sclose(fs);
  }
  if (!ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "cannot write /detections/%s", what);
    return npt_h5_fail(w->path, msg);
  }
  w->written += w->nbuf;
  w->nbuf = 0;
  return 0;
}

int npt_dets_writer_append(npt_dets_writer *w, const npt_dets *d) {
  if (d->n > 0 && d->embed_dim != w->meta.embed_dim)
    return npt_error_set(NPT_EINVAL, "%s: detections carry %d-dimensional embeddings, the file %d",
                         w->path, d->embed_dim, w->meta.embed_dim);
  const int dim = w->meta.embed_dim;
  for (int64_t k = 0; k < d->n; k++) {
    const npt_detection *r = &d->det[k];
    if (r->frame < w->last_frame || r->frame >= w->meta.frame_end)
      return npt_error_set(NPT_EINVAL,
                           "%s: detection in frame %lld out of order (after frame %lld, frames "
                           "[%lld, %lld))",
                           w->path, (long long)r->frame, (long long)w->last_frame,
                           (long long)w->meta.frame_begin, (long long)w->meta.frame_end);
    w->last_frame = r->frame;
    w->counts[r->frame]++;
    int64_t i = w->nbuf;
    ((int64_t *)w->buf[NPT__C_FRAME])[i] = r->frame;
    ((float *)w->buf[NPT__C_X])[i] = r->x;
    ((float *)w->buf[NPT__C_Y])[i] = r->y;
    ((float *)w->buf[NPT__C_W])[i] = r->w;
    ((float *)w->buf[NPT__C_H])[i] = r->h;
    ((float *)w->buf[NPT__C_SCORE])[i] = r->score;
    ((int32_t *)w->buf[NPT__C_CLASS])[i] = r->cls;
    if (dim > 0)
      memcpy(w->ebuf + i * dim, d->embed + k * dim, (size_t)dim * sizeof(float));
    if (++w->nbuf == BUF_ROWS)
      NPT_TRY(flush(w));
  }
  return 0;
}

static int write_offsets(npt_dets_writer *w) {
  int64_t n = w->meta.n_frames;
  /* counts[t] becomes offsets[t]: an exclusive prefix sum, one more entry for the end. */
  int64_t sum = 0;
  for (int64_t t = 0; t <= n; t++) {
    int64_t c = t < n ? w->counts[t] : 0;
    w->counts[t] = sum;
    sum += c;
  }
  hsize_t dims[1] = {(hsize_t)n + 1}, chunk[1] = {(hsize_t)n + 1 < 65536 ? (hsize_t)n + 1 : 65536};
  hid_t d = create_dataset(w->group, "frame_offsets", H5T_STD_I64LE, 1, dims, NULL, chunk);
  int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->counts) >= 0 &&
           describe(d, "row",
                    "CSR index by frame: the rows of frame t (0-based) are "
                    "frame_offsets[t] to frame_offsets[t+1] - 1 (Python: [t]:[t+1])") >= 0;
  if (d >= 0)
    H5Dclose(d);
  return ok ? 0 : npt_h5_fail(w->path, "cannot write /detections/frame_offsets");
}

static int write_attrs(npt_dets_writer *w) {
  const npt_dets_meta *m = &w->meta;
  char version[128];
  snprintf(version, sizeof version, "%s (commit %s)", NPT_VERSION, NPT_GIT_COMMIT);
  hid_t g = w->group, f = w->file;
  int bad = npt_h5_write_i64_attr(g, "n_rows", w->written) < 0 ||
            npt_h5_write_i64_attr(g, "n_frames", m->n_frames) < 0 ||
            npt_h5_write_i64_attr(g, "frame_begin", m->frame_begin) < 0 ||
            npt_h5_write_i64_attr(g, "frame_end", m->frame_end) < 0 ||
            npt_h5_write_i64_attr(g, "embed_dim", m->embed_dim) < 0 ||
            npt_h5_write_f64_attr(g, "score_threshold", m->score_threshold) < 0 ||
            npt_h5_write_i64_attr(g, "top_k", m->top_k) < 0 ||
            npt_h5_write_i64_attr(g, "peak_kernel", m->peak_kernel) < 0 ||
            npt_h5_write_f64_attr(g, "suppress_ratio", m->suppress_ratio) < 0 ||
            npt_h5_write_str_attr(g, "description",
                                  "detections, one row per particle per frame, before tracking; "
                                  "frames [frame_begin, frame_end) were searched") < 0;
  bad = bad || npt_h5_write_i64_attr(f, "format_version", NPT_DETS_FORMAT_VERSION) < 0 ||
        npt_h5_write_str_attr(f, "format", "nptrack detections") < 0 ||
        npt_h5_write_str_attr(f, "config", m->config_text) < 0 ||
        npt_h5_write_str_attr(f, "nptrack_version", version) < 0 ||
        npt_h5_write_str_attr(f, "video", m->video_path) < 0 ||
        npt_h5_write_str_attr(f, "video_dataset", m->video_dataset) < 0 ||
        npt_h5_write_str_attr(f, "model", m->model_path) < 0 ||
        npt_h5_write_str_attr(f, "model_provenance", m->model_provenance) < 0;
  if (!bad && isfinite(m->pixel_size_nm))
    bad = npt_h5_write_f64_attr(f, "pixel_size_nm", m->pixel_size_nm) < 0;
  if (!bad && isfinite(m->frame_rate_hz))
    bad = npt_h5_write_f64_attr(f, "frame_rate_hz", m->frame_rate_hz) < 0;
  /* Last: a reader that finds "complete" finds everything else. */
  bad = bad || npt_h5_write_str_attr(f, "status", "complete") < 0;
  return bad ? npt_h5_fail(w->path, "cannot write the file's attributes") : 0;
}

int npt_dets_writer_finish(npt_dets_writer *w, int64_t *n_rows) {
  int rc = flush(w);
  if (rc == 0)
    rc = write_offsets(w);
  if (rc == 0)
    rc = write_attrs(w);
  if (n_rows)
    *n_rows = w->written;
  if (rc == 0) {
    /* Close everything, checking that the data reached the file. */
    int bad = 0;
    for (int c = 0; c < NPT__N_COLS; c++) {
      bad |= H5Dclose(w->dset[c]) < 0;
      w->dset[c] = -1;
    }
    if (w->embed >= 0)
      bad |= H5Dclose(w->embed) < 0;
    bad |= H5Gclose(w->group) < 0;
    bad |= H5Fclose(w->file) < 0;
    w->embed = w->group = w->file = -1;
    if (bad)
      rc = npt_h5_fail(w->path, "cannot close");
  }
  if (rc == 0 && rename(w->tmp, w->path) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot rename into place: %s", w->path, strerror(errno));
  if (rc < 0) {
    npt_dets_writer_abort(w);
    return rc;
  }
  writer_free(w);
  return 0;
}
