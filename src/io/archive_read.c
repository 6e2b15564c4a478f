/* Reading the archive (archive.h): the root's status and provenance, the videos' metadata and
 * their detections, for nptrack info and nptrack export. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "io/archive_internal.h"
#include "io/h5util.h"

struct npt_archive_file {
  char *path, *status;
  hid_t file;
  int n_videos;
  npt_archive_video_info *videos; /* sorted by name */
};

void npt_archive_file_close(npt_archive_file *f) {
  if (!f)
    return;
  for (int i = 0; i < f->n_videos; i++) {
    free((char *)f->videos[i].name);
    free(f->videos[i].source_path);
    free(f->videos[i].pixel_size_source);
  }
  free(f->videos);
  if (f->file >= 0)
    H5Fclose(f->file);
  free(f->path);
  free(f->status);
  free(f);
}

typedef struct {
  npt_archive_file *f;
  int rc;
} iter_ctx;

static herr_t add_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)g;
  (void)info;
  iter_ctx *c = data;
  npt_archive_video_info *v = realloc(c->f->videos, (size_t)(c->f->n_videos + 1) * sizeof *v);
  if (!v) {
    c->rc = npt_error_set(NPT_ENOMEM, "out of memory");
    return -1;
  }
  c->f->videos = v;
  v += c->f->n_videos;
  memset(v, 0, sizeof *v);
  if (!(v->name = strdup(name))) {
    c->rc = npt_error_set(NPT_ENOMEM, "out of memory");
    return -1;
  }
  c->f->n_videos++;
  return 0;
}

static int read_video_info(npt_archive_file *f, npt_archive_video_info *v) {
  char path[256];
  snprintf(path, sizeof path, "/videos/%s", v->name);
  hid_t g = H5Gopen2(f->file, path, H5P_DEFAULT);
  if (g < 0)
    return npt_h5_fail(f->path, path);
  v->frame_rate_hz = v->pixel_size_nm = NAN;
  /* An incomplete archive may lack any of these: the numbers stay 0 / NAN then. */
  npt_h5_read_i64_attr(g, "n_frames", &v->n_frames);
  npt_h5_read_i64_attr(g, "n_detections", &v->n_detections);
  npt_h5_read_i64_attr(g, "n_tracks", &v->n_tracks);
  v->n_events = -1;
  if (H5Lexists(g, "events", H5P_DEFAULT) > 0)
    npt_h5_read_i64_attr(g, "n_events", &v->n_events);
  npt_h5_read_i64_attr(g, "height", &v->height);
  npt_h5_read_i64_attr(g, "width", &v->width);
  npt_h5_read_i64_attr(g, "embed_dim", &v->embed_dim);
  if (H5Aexists(g, "replay_source_frames") > 0)
    npt_h5_read_i64_attr(g, "replay_source_frames", &v->replay_source_frames);
  npt_h5_read_f64_attr(g, "frame_rate_hz", &v->frame_rate_hz);
  npt_h5_read_f64_attr(g, "pixel_size_nm", &v->pixel_size_nm);
  int rc = npt_h5_read_str_attr(g, "source", &v->source_path);
  if (rc >= 0)
    rc = npt_h5_read_str_attr(g, "pixel_size_source", &v->pixel_size_source);
  H5Gclose(g);
  if (rc < 0)
    return npt_error_set(NPT_EFORMAT, "%s: video %s: %s", f->path, v->name, npt_error_msg(rc));
  return 0;
}

int npt_archive_file_open(npt_archive_file **out, const char *path) {
  *out = NULL;
  npt_h5_quiet();
  npt_archive_file *f = calloc(1, sizeof *f);
  NPT_ALLOC_CHECK(f);
  f->file = -1;
  f->path = strdup(path);
  if (!f->path) {
    free(f);
    return npt_error_set(NPT_ENOMEM, "out of memory");
  }
  int rc = 0;
  char *format = NULL;
  int64_t version = 0;
  f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f->file < 0)
    rc = npt_h5_fail(path, "cannot open as HDF5");
  else if (npt_h5_read_str_attr(f->file, "format", &format) != 0 || !format ||
           strcmp(format, NPT_ARCHIVE_FORMAT))
    rc = npt_error_set(NPT_EFORMAT, "%s: not an nptrack archive (root attribute format is '%s')",
                       path, format ? format : "");
  else if (npt_h5_read_i64_attr(f->file, "format_version", &version) != 0 || version < 1)
    rc = npt_error_set(NPT_EFORMAT, "%s: no valid format_version", path);
  else if (version > NPT_ARCHIVE_FORMAT_VERSION)
    rc = npt_error_set(NPT_EFORMAT,
                       "%s: archive format version %lld is newer than this nptrack reads (%d)",
                       path, (long long)version, NPT_ARCHIVE_FORMAT_VERSION);
  free(format);
  if (rc == 0 && npt_h5_read_str_attr(f->file, "status", &f->status) < 0)
    rc = npt_error_set(NPT_EFORMAT, "%s: unreadable status", path);
  if (rc == 0 && !f->status && !(f->status = strdup("")))
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0 && H5Lexists(f->file, "/videos", H5P_DEFAULT) > 0) {
    iter_ctx c = {f, 0};
    hid_t g = H5Gopen2(f->file, "/videos", H5P_DEFAULT);
    if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, add_name, &c) < 0)
      rc = c.rc < 0 ? c.rc : npt_h5_fail(path, "cannot list /videos");
    if (g >= 0)
      H5Gclose(g);
  }
  for (int i = 0; rc == 0 && i < f->n_videos; i++)
    rc = read_video_info(f, &f->videos[i]);
  if (rc < 0) {
    npt_archive_file_close(f);
    return rc;
  }
  *out = f;
  return 0;
}

const char *npt_archive_file_status(const npt_archive_file *f) {
  return f->status;
}

int npt_archive_file_is_complete(const npt_archive_file *f) {
  return !strcmp(f->status, "complete");
}

int npt_archive_file_n_videos(const npt_archive_file *f) {
  return f->n_videos;
}

const char *npt_archive_file_video_name(const npt_archive_file *f, int i) {
  return f->videos[i].name;
}

const npt_archive_video_info *npt_archive_file_video_info(const npt_archive_file *f, int i) {
  return &f->videos[i];
}

int npt_archive_file_root_attr(npt_archive_file *f, const char *name, char **out) {
  int rc = npt_h5_read_str_attr(f->file, name, out);
  return rc < 0 ? npt_error_set(NPT_EFORMAT, "%s: root attribute %s: %s", f->path, name,
                                npt_error_msg(rc))
                : 0;
}

/* "a, b, c" of the video names, in buf. */
static const char *name_list(const npt_archive_file *f, char *buf, size_t n) {
  buf[0] = '\0';
  size_t used = 0;
  for (int i = 0; i < f->n_videos && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", f->videos[i].name);
  return f->n_videos ? buf : "none";
}

int npt_archive_file_find_video(const npt_archive_file *f, const char *name) {
  char list[1024];
  if (!name) {
    if (f->n_videos == 1)
      return 0;
    return npt_error_set(NPT_EINVAL, "%s: holds %d videos, name one with --video (%s)", f->path,
                         f->n_videos, name_list(f, list, sizeof list));
  }
  for (int i = 0; i < f->n_videos; i++)
    if (!strcmp(f->videos[i].name, name))
      return i;
  return npt_error_set(NPT_EINVAL, "%s: no video '%s' (videos: %s)", f->path, name,
                       name_list(f, list, sizeof list));
}

void npt_archive_cols_free(npt_archive_cols *c) {
  free(c->frame);
  free(c->track_id);
  free(c->x);
  free(c->y);
  free(c->w);
  free(c->h);
  free(c->score);
  free(c->cls);
  memset(c, 0, sizeof *c);
}

/* Reads /videos/NAME/TABLE/COL, which must hold n values, into a new array. */
static int read_table_col(npt_archive_file *f, const char *video, const char *table,
                          const char *col, hid_t mtype, size_t esize, int64_t n, void **out) {
  char path[512];
  snprintf(path, sizeof path, "/videos/%s/%s/%s", video, table, col);
  *out = malloc((size_t)(n ? n : 1) * esize);
  NPT_ALLOC_CHECK(*out);
  hid_t d = H5Lexists(f->file, path, H5P_DEFAULT) > 0 ? H5Dopen2(f->file, path, H5P_DEFAULT) : -1;
  if (d < 0)
    return npt_error_set(NPT_EFORMAT, "%s: no dataset %s", f->path, path);
  hid_t s = H5Dget_space(d);
  hssize_t np = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  int ndims = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (s >= 0)
    H5Sclose(s);
  int rc = 0;
  if (ndims != 1 || np != n)
    rc = npt_error_set(NPT_EFORMAT, "%s: %s holds %lld values, expected %lld", f->path, path,
                       (long long)np, (long long)n);
  else if (n > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
    rc = npt_h5_fail(f->path, path);
  H5Dclose(d);
  return rc;
}

static int read_col(npt_archive_file *f, const char *video, const char *col, hid_t mtype,
                    size_t esize, int64_t n, void **out) {
  return read_table_col(f, video, "detections", col, mtype, esize, n, out);
}

void npt_archive_events_cols_free(npt_archive_events_cols *c) {
  free(c->frame), free(c->kind), free(c->parent_offsets), free(c->parent_ids);
  free(c->child_offsets), free(c->child_ids);
  memset(c, 0, sizeof *c);
}

/* Offsets [n + 1] that start at 0 and never decrease. */
static int offsets_ok(const int64_t *o, int64_t n) {
  if (o[0] != 0)
    return 0;
  for (int64_t i = 0; i < n; i++)
    if (o[i + 1] < o[i])
      return 0;
  return 1;
}

int npt_archive_file_read_events(npt_archive_file *f, int video, npt_archive_events_cols *c) {
  memset(c, 0, sizeof *c);
  const npt_archive_video_info *v = &f->videos[video];
  int64_t n = v->n_events;
  if (n < 0)
    return 0;
  const char *t = "events";
  int rc = read_table_col(f, v->name, t, "frame", H5T_NATIVE_INT64, 8, n, (void **)&c->frame);
  if (rc == 0)
    rc = read_table_col(f, v->name, t, "kind", H5T_NATIVE_INT32, 4, n, (void **)&c->kind);
  if (rc == 0)
    rc = read_table_col(f, v->name, t, "parent_offsets", H5T_NATIVE_INT64, 8, n + 1,
                        (void **)&c->parent_offsets);
  if (rc == 0)
    rc = read_table_col(f, v->name, t, "child_offsets", H5T_NATIVE_INT64, 8, n + 1,
                        (void **)&c->child_offsets);
  if (rc == 0 && (!offsets_ok(c->parent_offsets, n) || !offsets_ok(c->child_offsets, n)))
    rc = npt_error_set(NPT_EFORMAT, "%s: video %s: bad events offsets", f->path, v->name);
  if (rc == 0)
    rc = read_table_col(f, v->name, t, "parent_ids", H5T_NATIVE_INT64, 8, c->parent_offsets[n],
                        (void **)&c->parent_ids);
  if (rc == 0)
    rc = read_table_col(f, v->name, t, "child_ids", H5T_NATIVE_INT64, 8, c->child_offsets[n],
                        (void **)&c->child_ids);
  if (rc < 0) {
    npt_archive_events_cols_free(c);
    return rc;
  }
  c->n = n;
  return 0;
}

int npt_archive_file_read_detections(npt_archive_file *f, int video, npt_archive_cols *c) {
  memset(c, 0, sizeof *c);
  const npt_archive_video_info *v = &f->videos[video];
  int64_t n = v->n_detections;
  int rc = read_col(f, v->name, "frame", H5T_NATIVE_INT64, 8, n, (void **)&c->frame);
  if (rc == 0)
    rc = read_col(f, v->name, "track_id", H5T_NATIVE_INT64, 8, n, (void **)&c->track_id);
  if (rc == 0)
    rc = read_col(f, v->name, "x", H5T_NATIVE_FLOAT, 4, n, (void **)&c->x);
  if (rc == 0)
    rc = read_col(f, v->name, "y", H5T_NATIVE_FLOAT, 4, n, (void **)&c->y);
  if (rc == 0)
    rc = read_col(f, v->name, "w", H5T_NATIVE_FLOAT, 4, n, (void **)&c->w);
  if (rc == 0)
    rc = read_col(f, v->name, "h", H5T_NATIVE_FLOAT, 4, n, (void **)&c->h);
  if (rc == 0)
    rc = read_col(f, v->name, "score", H5T_NATIVE_FLOAT, 4, n, (void **)&c->score);
  if (rc == 0)
    rc = read_col(f, v->name, "class", H5T_NATIVE_INT32, 4, n, (void **)&c->cls);
  if (rc < 0) {
    npt_archive_cols_free(c);
    return rc;
  }
  c->n = n;
  return 0;
}

typedef struct {
  char *text;
  size_t len, cap;
} timing_text;

static herr_t add_timing(hid_t obj, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  timing_text *t = data;
  size_t n = strlen(name);
  if (strncmp(name, "timing_", 7) || n < 10 || strcmp(name + n - 2, "_s"))
    return 0;
  double s = NAN;
  npt_h5_read_f64_attr(obj, name, &s);
  char item[160];
  int k =
      snprintf(item, sizeof item, "%s%.*s %.3g s", t->len ? ", " : "", (int)(n - 9), name + 7, s);
  if (t->len + (size_t)k + 1 > t->cap) {
    size_t cap = (t->cap + (size_t)k + 1) * 2;
    char *p = realloc(t->text, cap);
    if (!p)
      return -1;
    t->text = p;
    t->cap = cap;
  }
  memcpy(t->text + t->len, item, (size_t)k + 1);
  t->len += (size_t)k;
  return 0;
}

int npt_archive_file_timings(npt_archive_file *f, char **out) {
  timing_text t = {NULL, 0, 0};
  hsize_t idx = 0;
  if (H5Aiterate2(f->file, H5_INDEX_NAME, H5_ITER_INC, &idx, add_timing, &t) < 0) {
    free(t.text);
    return npt_error_set(NPT_ENOMEM, "%s: cannot list the timings", f->path);
  }
  *out = t.text ? t.text : strdup("");
  NPT_ALLOC_CHECK(*out);
  return 0;
}
