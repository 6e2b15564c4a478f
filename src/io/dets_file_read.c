/* Reading the detections file (dets_file.h): the layout is checked when the file is opened, so
 * that exports and later stages meet one clear message instead of half-read tables. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "io/dets_file.h"
#include "io/dets_file_internal.h"
#include "io/h5util.h"

struct npt_dets_file {
  char *path;
  hid_t file, dset[NPT__N_COLS], embed;
  npt_dets_file_info info;
  int64_t *offsets; /* [n_frames + 1] */
  void *scratch;    /* one column of a read block */
  size_t scratch_bytes;
};

void npt_dets_file_close(npt_dets_file *f) {
  if (!f)
    return;
  for (int c = 0; c < NPT__N_COLS; c++)
    if (f->dset[c] >= 0)
      H5Dclose(f->dset[c]);
  if (f->embed >= 0)
    H5Dclose(f->embed);
  if (f->file >= 0)
    H5Fclose(f->file);
  free(f->offsets);
  free(f->scratch);
  free(f->path);
  free(f);
}

static int bad(const npt_dets_file *f, const char *what) {
  return npt_error_set(NPT_EFORMAT, "%s: not a complete nptrack detections file: %s", f->path,
                       what);
}

static int read_i64_attr(hid_t obj, const char *name, int64_t *v) {
  if (H5Aexists(obj, name) <= 0)
    return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  int rc = a >= 0 && H5Aread(a, H5T_NATIVE_INT64, v) >= 0 ? 0 : -1;
  if (a >= 0)
    H5Aclose(a);
  return rc;
}

/* Opens /detections/NAME and checks its rank and first dimension; *dim1 gets the second. */
static int open_column(npt_dets_file *f, const char *name, int rank, int64_t rows, hid_t *out,
                       hsize_t *dim1) {
  char full[96], what[160];
  snprintf(full, sizeof full, "/detections/%s", name);
  if (H5Lexists(f->file, full, H5P_DEFAULT) <= 0) {
    snprintf(what, sizeof what, "no dataset %s", full);
    return bad(f, what);
  }
  *out = H5Dopen2(f->file, full, H5P_DEFAULT);
  if (*out < 0)
    return npt_h5_fail(f->path, full);
  hid_t s = H5Dget_space(*out);
  hsize_t dims[2] = {0, 0};
  int r = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (r == rank)
    H5Sget_simple_extent_dims(s, dims, NULL);
  if (s >= 0)
    H5Sclose(s);
  if (r != rank || (rows >= 0 && dims[0] != (hsize_t)rows)) {
    snprintf(what, sizeof what, "%s has shape of rank %d and %llu rows, expected rank %d and %lld",
             full, r, (unsigned long long)dims[0], rank, (long long)rows);
    return bad(f, what);
  }
  if (dim1)
    *dim1 = dims[1];
  return 0;
}

static int check_offsets(npt_dets_file *f) {
  const npt_dets_file_info *in = &f->info;
  hid_t d;
  NPT_TRY(open_column(f, "frame_offsets", 1, in->n_frames + 1, &d, NULL));
  f->offsets = malloc(((size_t)in->n_frames + 1) * sizeof *f->offsets);
  if (!f->offsets) {
    H5Dclose(d);
    return npt_error_set(NPT_ENOMEM, "%s: out of memory for the frame index", f->path);
  }
  herr_t st = H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->offsets);
  H5Dclose(d);
  if (st < 0)
    return npt_h5_fail(f->path, "cannot read /detections/frame_offsets");
  if (f->offsets[0] != 0 || f->offsets[in->n_frames] != in->n_rows)
    return bad(f, "frame_offsets does not run from 0 to the number of rows");
  for (int64_t t = 0; t < in->n_frames; t++)
    if (f->offsets[t + 1] < f->offsets[t])
      return bad(f, "frame_offsets decreases");
  return 0;
}

static int open_checked(npt_dets_file *f) {
  const char *path = f->path;
  if (access(path, R_OK) != 0)
    return npt_error_set(NPT_EIO, "%s: cannot read: %s", path, strerror(errno));
  if (H5Fis_hdf5(path) <= 0)
    return npt_error_set(NPT_EFORMAT, "%s: not an HDF5 file (or truncated/corrupt)", path);
  f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f->file < 0)
    return npt_h5_fail(path, "cannot open");
  char *status = NULL;
  int rc = npt_h5_read_str_attr(f->file, "status", &status);
  int complete = rc == 0 && status && !strcmp(status, "complete");
  free(status);
  if (!complete)
    return bad(f, "no status \"complete\" (an interrupted run, or another kind of file)");
  int64_t version = 0;
  if (read_i64_attr(f->file, "format_version", &version) < 0)
    return bad(f, "no format_version");
  if (version > NPT_DETS_FORMAT_VERSION)
    return npt_error_set(NPT_EUNSUPPORTED,
                         "%s: detections format version %lld is newer than this nptrack reads "
                         "(%d)",
                         path, (long long)version, NPT_DETS_FORMAT_VERSION);
  if (H5Lexists(f->file, "/detections", H5P_DEFAULT) <= 0)
    return bad(f, "no group /detections");
  hid_t g = H5Gopen2(f->file, "/detections", H5P_DEFAULT);
  npt_dets_file_info *in = &f->info;
  int64_t dim = 0;
  int ok = g >= 0 && read_i64_attr(g, "n_rows", &in->n_rows) == 0 &&
           read_i64_attr(g, "n_frames", &in->n_frames) == 0 &&
           read_i64_attr(g, "frame_begin", &in->frame_begin) == 0 &&
           read_i64_attr(g, "frame_end", &in->frame_end) == 0 &&
           read_i64_attr(g, "embed_dim", &dim) == 0;
  if (g >= 0)
    H5Gclose(g);
  if (!ok || in->n_rows < 0 || in->n_frames < 0 || in->frame_begin < 0 ||
      in->frame_end < in->frame_begin || in->frame_end > in->n_frames || dim < 0 || dim > 65536)
    return bad(f, "/detections lacks n_rows, n_frames, frame_begin, frame_end or embed_dim");
  in->embed_dim = (int)dim;
  for (int c = 0; c < NPT__N_COLS; c++)
    NPT_TRY(open_column(f, npt__dets_cols[c].name, 1, in->n_rows, &f->dset[c], NULL));
  if (in->embed_dim > 0) {
    hsize_t d1 = 0;
    NPT_TRY(open_column(f, "embedding", 2, in->n_rows, &f->embed, &d1));
    if (d1 != (hsize_t)in->embed_dim)
      return bad(f, "embedding width differs from embed_dim");
  }
  return check_offsets(f);
}

int npt_dets_file_open(npt_dets_file **out, const char *path) {
  *out = NULL;
  npt_h5_quiet();
  npt_dets_file *f = calloc(1, sizeof *f);
  NPT_ALLOC_CHECK(f);
  f->file = f->embed = -1;
  for (int c = 0; c < NPT__N_COLS; c++)
    f->dset[c] = -1;
  f->path = strdup(path);
  int rc = f->path ? open_checked(f) : npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc < 0) {
    npt_dets_file_close(f);
    return rc;
  }
  *out = f;
  return 0;
}

const npt_dets_file_info *npt_dets_file_get_info(const npt_dets_file *f) {
  return &f->info;
}

int npt_dets_file_frame_rows(const npt_dets_file *f, int64_t frame, int64_t *row0, int64_t *row1) {
  if (frame < 0 || frame >= f->info.n_frames)
    return npt_error_set(NPT_EINVAL, "%s: frame %lld is outside the video's %lld frames", f->path,
                         (long long)frame, (long long)f->info.n_frames);
  *row0 = f->offsets[frame];
  *row1 = f->offsets[frame + 1];
  return 0;
}

/* Reads rows [row0, row0 + n) of one dataset (rank 1, or 2 with `width` columns) into dst. */
static int read_rows(npt_dets_file *f, hid_t d, const char *name, hid_t mt, int64_t row0, int64_t n,
                     int width, void *dst) {
  int rank = width > 0 ? 2 : 1;
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)width};
  hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
  int ok = fs >= 0 && ms >= 0 &&
           H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
           H5Dread(d, mt, ms, fs, H5P_DEFAULT, dst) >= 0;
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  if (ok)
    return 0;
  char what[128];
  snprintf(what, sizeof what, "cannot read rows %lld..%lld of /detections/%s", (long long)row0,
           (long long)(row0 + n - 1), name);
  return npt_h5_fail(f->path, what);
}

/* Where each float column goes in npt_detection. */
static const size_t float_field[NPT__N_COLS] = {[NPT__C_X] = offsetof(npt_detection, x),
                                                [NPT__C_Y] = offsetof(npt_detection, y),
                                                [NPT__C_W] = offsetof(npt_detection, w),
                                                [NPT__C_H] = offsetof(npt_detection, h),
                                                [NPT__C_SCORE] = offsetof(npt_detection, score)};

int npt_dets_file_read(npt_dets_file *f, int64_t row0, int64_t n, npt_dets *d) {
  if (row0 < 0 || n < 0 || row0 + n > f->info.n_rows)
    return npt_error_set(NPT_EINVAL, "%s: rows %lld..%lld requested, the file has %lld", f->path,
                         (long long)row0, (long long)(row0 + n - 1), (long long)f->info.n_rows);
  int dim = d->embed_dim;
  if (dim != 0 && dim != f->info.embed_dim)
    return npt_error_set(NPT_EINVAL, "%s: embeddings of %d dimensions requested, the file has %d",
                         f->path, dim, f->info.embed_dim);
  if (n == 0)
    return 0;
  NPT_TRY(npt_dets_reserve(d, n));
  if (f->scratch_bytes < (size_t)n * 8) {
    free(f->scratch);
    f->scratch_bytes = 0;
    f->scratch = malloc((size_t)n * 8);
    NPT_ALLOC_CHECK(f->scratch);
    f->scratch_bytes = (size_t)n * 8;
  }
  npt_detection *out = d->det + d->n;
  for (int c = 0; c < NPT__N_COLS; c++) {
    if (c == NPT__C_TRACK)
      continue;
    const npt__col_def *col = &npt__dets_cols[c];
    NPT_TRY(
        read_rows(f, f->dset[c], col->name, npt__col_mem_type(col->kind), row0, n, 0, f->scratch));
    for (int64_t k = 0; k < n; k++) {
      if (c == NPT__C_FRAME)
        out[k].frame = ((const int64_t *)f->scratch)[k];
      else if (c == NPT__C_CLASS)
        out[k].cls = ((const int32_t *)f->scratch)[k];
      else /* a float field of the row */
        *(float *)((char *)&out[k] + float_field[c]) = ((const float *)f->scratch)[k];
    }
  }
  /* Every row must lie inside its frame's CSR range. */
  for (int64_t k = 0; k < n; k++) {
    int64_t t = out[k].frame, row = row0 + k;
    if (t < 0 || t >= f->info.n_frames || row < f->offsets[t] || row >= f->offsets[t + 1])
      return npt_error_set(NPT_EFORMAT,
                           "%s: row %lld has frame %lld, which frame_offsets does not give it",
                           f->path, (long long)row, (long long)t);
  }
  if (dim > 0)
    NPT_TRY(
        read_rows(f, f->embed, "embedding", H5T_NATIVE_FLOAT, row0, n, dim, d->embed + d->n * dim));
  d->n += n;
  return 0;
}

int npt_dets_file_root_attr(npt_dets_file *f, const char *name, char **out) {
  int rc = npt_h5_read_str_attr(f->file, name, out);
  return rc < 0 ? rc : 0;
}
