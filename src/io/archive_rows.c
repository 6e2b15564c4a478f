/* The parallel writer of the detections columns (archive_rows.h).
 *
 * Each piece of a rank is one selection of the table, the union of its runs of rows (a rank may
 * hold several chunks of a video that are not next to each other), written with one H5Dwrite
 * per column; HDF5 maps a union of hyperslabs to memory in increasing file order, which is why
 * the runs must increase and the rows come in table order.  A rank with no rows joins with an
 * empty selection: with MPI-IO every rank must enter every collective write. */
#include "io/archive_rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "io/archive_internal.h"
#include "io/h5util.h"

struct npt_archive_rows_file {
  char *path;
  int parallel;
  hid_t file, dxpl, f16;
  /* the open video */
  char where[300];
  hid_t det[NPT__DET_COLS];
  int64_t n_rows, n_frames;
  int embed_dim, n_classes;
  double rate, px;
  /* the prepared piece */
  const npt_archive_rows *rows;
  hid_t space1, space2; /* the file's selections, 1-D and (embeddings) 2-D */
  double *time_s;
  float *w_nm, *h_nm;
  uint16_t *emb16;
  int64_t scratch_n;
};

static void close_video(npt_archive_rows_file *f) {
  for (int i = 0; i < NPT__DET_COLS; i++)
    if (f->det[i] >= 0)
      H5Dclose(f->det[i]), f->det[i] = -1;
  if (f->space1 >= 0)
    H5Sclose(f->space1), f->space1 = -1;
  if (f->space2 >= 0)
    H5Sclose(f->space2), f->space2 = -1;
  f->rows = NULL;
}

int npt_archive_rows_close(npt_archive_rows_file *f) {
  if (!f)
    return 0;
  close_video(f);
  int rc = 0;
  if (f->file >= 0 && H5Fclose(f->file) < 0)
    rc = npt_h5_fail(f->path, "cannot close after writing the rows");
  if (f->dxpl >= 0)
    H5Pclose(f->dxpl);
  if (f->f16 >= 0)
    H5Tclose(f->f16);
  free(f->time_s), free(f->w_nm), free(f->h_nm), free(f->emb16);
  free(f->path);
  free(f);
  return rc;
}

int npt_archive_rows_open(npt_archive_rows_file **out, const char *tmp, const char *path,
                          MPI_Comm comm) {
  *out = NULL;
  npt_h5_quiet();
  npt_archive_rows_file *f = calloc(1, sizeof *f);
  NPT_ALLOC_CHECK(f);
  f->file = f->dxpl = f->f16 = f->space1 = f->space2 = -1;
  for (int i = 0; i < NPT__DET_COLS; i++)
    f->det[i] = -1;
  f->parallel = comm != MPI_COMM_NULL;
  if (!(f->path = strdup(path))) {
    free(f);
    return npt_error_set(NPT_ENOMEM, "%s: out of memory", path);
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  f->dxpl = H5Pcreate(H5P_DATASET_XFER);
  int ok = fapl >= 0 && f->dxpl >= 0;
  if (ok && f->parallel)
    ok = H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) >= 0 &&
         H5Pset_dxpl_mpio(f->dxpl, H5FD_MPIO_COLLECTIVE) >= 0;
  if (ok)
    f->file = H5Fopen(tmp, H5F_ACC_RDWR, fapl);
  if (fapl >= 0)
    H5Pclose(fapl);
  f->f16 = npt__arch_f16_type();
  if (!ok || f->file < 0 || f->f16 < 0) {
    int rc = npt_h5_fail(path, f->parallel ? "cannot open the temporary archive with MPI-IO"
                                           : "cannot open the temporary archive");
    npt_archive_rows_close(f);
    return rc;
  }
  *out = f;
  return 0;
}

int npt_archive_rows_video(npt_archive_rows_file *f, const char *name) {
  close_video(f);
  snprintf(f->where, sizeof f->where, "/videos/%s/detections", name);
  char vpath[260];
  snprintf(vpath, sizeof vpath, "/videos/%s", name);
  hid_t g = H5Gopen2(f->file, vpath, H5P_DEFAULT);
  int64_t n_classes = 0;
  int ok = g >= 0 && npt_h5_read_i64_attr(g, "n_detections", &f->n_rows) == 0 &&
           npt_h5_read_i64_attr(g, "n_frames", &f->n_frames) == 0 &&
           npt_h5_read_f64_attr(g, "frame_rate_hz", &f->rate) == 0 &&
           npt_h5_read_f64_attr(g, "pixel_size_nm", &f->px) == 0 &&
           npt_h5_read_i64_attr(f->file, "n_classes", &n_classes) == 0;
  if (g >= 0)
    H5Gclose(g);
  if (!ok)
    return npt_h5_fail(f->path, vpath);
  /* As the root's writer computes them (archive_stream.c): NaN where unknown. */
  f->rate = f->rate > 0 ? f->rate : NAN;
  f->px = f->px > 0 ? f->px : NAN;
  f->n_classes = (int)n_classes;
  f->embed_dim = 0;
  npt__col_spec c[NPT__DET_COLS];
  npt__det_data none = {.with_emb16 = 1};
  npt__arch_det_specs(c, 0, 0, 0, f->f16, &none);
  for (int i = 0; i < NPT__DET_COLS; i++) {
    if (i == NPT__DET_OFFSETS)
      continue;
    char p[400];
    snprintf(p, sizeof p, "%s/%s", f->where, c[i].name);
    if (i == NPT__DET_EMBED && H5Lexists(f->file, p, H5P_DEFAULT) <= 0)
      continue; /* archive.embeddings is not `all` */
    if ((f->det[i] = H5Dopen2(f->file, p, H5P_DEFAULT)) < 0)
      return npt_h5_fail(f->path, p);
  }
  f->space1 = H5Dget_space(f->det[0]);
  hsize_t dims[2] = {0, 0};
  if (f->space1 < 0 || H5Sget_simple_extent_dims(f->space1, dims, NULL) != 1 ||
      (int64_t)dims[0] != f->n_rows)
    return npt_h5_fail(f->path, f->where);
  if (f->det[NPT__DET_EMBED] >= 0) {
    f->space2 = H5Dget_space(f->det[NPT__DET_EMBED]);
    if (f->space2 < 0 || H5Sget_simple_extent_dims(f->space2, dims, NULL) != 2 ||
        (int64_t)dims[0] != f->n_rows)
      return npt_h5_fail(f->path, f->where);
    f->embed_dim = (int)dims[1];
  }
  return 0;
}

static int grow_scratch(npt_archive_rows_file *f, int64_t n) {
  if (n <= f->scratch_n)
    return 0;
  free(f->time_s), free(f->w_nm), free(f->h_nm), free(f->emb16);
  f->time_s = malloc(sizeof *f->time_s * (size_t)n);
  f->w_nm = malloc(sizeof *f->w_nm * (size_t)n);
  f->h_nm = malloc(sizeof *f->h_nm * (size_t)n);
  f->emb16 = f->embed_dim ? malloc(sizeof *f->emb16 * (size_t)n * (size_t)f->embed_dim) : NULL;
  f->scratch_n = f->time_s && f->w_nm && f->h_nm && (!f->embed_dim || f->emb16) ? n : 0;
  return f->scratch_n ? 0 : npt_error_set(NPT_ENOMEM, "%s: out of memory", f->where);
}

int npt_archive_rows_prepare(npt_archive_rows_file *f, const npt_archive_rows *r, int n_runs,
                             const int64_t *offset, const int64_t *count) {
  f->rows = NULL;
  if (f->space1 < 0)
    return npt_error_set(NPT_EINVAL, "%s: no video open", f->path);
  const int d = f->embed_dim;
  if (r->n < 0 || n_runs < 0 || (d > 0 && (r->embed_dim != d || (r->n > 0 && !r->embedding))))
    return npt_error_set(NPT_EINVAL, "%s: %s: bad row count or embedding size (%d, not %d)",
                         f->path, f->where, r->embed_dim, d);
  int64_t sum = 0, end = 0;
  for (int i = 0; i < n_runs; i++) {
    if (offset[i] < end || count[i] < 1 || offset[i] + count[i] > f->n_rows)
      return npt_error_set(NPT_EINVAL,
                           "%s: %s: rows %lld to %lld: outside the %lld rows, or not "
                           "after the previous run",
                           f->path, f->where, (long long)offset[i],
                           (long long)(offset[i] + count[i] - 1), (long long)f->n_rows);
    end = offset[i] + count[i];
    sum += count[i];
  }
  if (sum != r->n)
    return npt_error_set(NPT_EINVAL, "%s: %s: %lld rows for runs of %lld", f->path, f->where,
                         (long long)r->n, (long long)sum);
  for (int64_t i = 0; i < r->n; i++)
    if (r->frame[i] < 0 || r->frame[i] >= f->n_frames || r->cls[i] < 1 ||
        r->cls[i] > f->n_classes || r->track_id[i] < -1)
      return npt_error_set(NPT_EINVAL,
                           "%s: %s: a row of frame %lld, class %d, track %lld does "
                           "not belong here",
                           f->path, f->where, (long long)r->frame[i], (int)r->cls[i],
                           (long long)r->track_id[i]);
  NPT_TRY(grow_scratch(f, r->n > 0 ? r->n : 1));
  for (int64_t i = 0; i < r->n; i++) {
    f->time_s[i] = (double)r->frame[i] / f->rate;
    f->w_nm[i] = (float)(r->w[i] * f->px);
    f->h_nm[i] = (float)(r->h[i] * f->px);
  }
  for (size_t i = 0; d > 0 && i < (size_t)r->n * (size_t)d; i++)
    f->emb16[i] = npt__arch_f16(r->embedding[i]);
  int ok = H5Sselect_none(f->space1) >= 0 && (f->space2 < 0 || H5Sselect_none(f->space2) >= 0);
  for (int i = 0; i < n_runs && ok; i++) {
    hsize_t start[2] = {(hsize_t)offset[i], 0}, cnt[2] = {(hsize_t)count[i], (hsize_t)d};
    ok = H5Sselect_hyperslab(f->space1, H5S_SELECT_OR, start, NULL, cnt, NULL) >= 0 &&
         (f->space2 < 0 ||
          H5Sselect_hyperslab(f->space2, H5S_SELECT_OR, start, NULL, cnt, NULL) >= 0);
  }
  if (!ok)
    return npt_h5_fail(f->path, "cannot select the rows");
  f->rows = r;
  return 0;
}

int npt_archive_rows_write(npt_archive_rows_file *f) {
  const npt_archive_rows *r = f->rows;
  if (!r)
    return npt_error_set(NPT_EINVAL, "%s: no prepared rows", f->path);
  const int d = f->embed_dim;
  hsize_t mdims[2] = {(hsize_t)r->n, (hsize_t)d};
  hid_t m1 = H5Screate_simple(1, mdims, NULL), m2 = d ? H5Screate_simple(2, mdims, NULL) : -1;
  /* HDF5 refuses a NULL buffer even for an empty selection: any valid address will do. */
  static const char dummy[8];
  const void *data[NPT__DET_COLS] = {r->frame, f->time_s, r->track_id, r->x,   r->y, r->w,    r->h,
                                     f->w_nm,  f->h_nm,   r->score,    r->cls, NULL, f->emb16};
  npt__col_spec c[NPT__DET_COLS];
  npt__det_data none = {.with_emb16 = 1};
  npt__arch_det_specs(c, 0, 0, 0, f->f16, &none);
  int rc = m1 >= 0 && (!d || m2 >= 0) ? 0 : npt_h5_fail(f->path, "cannot make a dataspace");
  for (int i = 0; i < NPT__DET_COLS && rc == 0; i++) {
    if (f->det[i] < 0)
      continue;
    int two = i == NPT__DET_EMBED;
    const void *buf = r->n > 0 && data[i] ? data[i] : dummy;
    if (H5Dwrite(f->det[i], c[i].mtype, two ? m2 : m1, two ? f->space2 : f->space1, f->dxpl, buf) <
        0) {
      char what[400];
      snprintf(what, sizeof what, "cannot write %s/%s", f->where, c[i].name);
      rc = npt_h5_fail(f->path, what);
    }
  }
  if (m1 >= 0)
    H5Sclose(m1);
  if (m2 >= 0)
    H5Sclose(m2);
  f->rows = NULL;
  return rc;
}
