/* Part files (part_file.h). */
#include "pipeline/part_file.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/path.h"
#include "io/h5util.h"

/* ------------------------------------------------------------------------------------------- */
/* Rows */

static int grow(void *p, size_t size, int64_t k) {
  void *q = realloc(*(void **)p, size * (size_t)k);
  if (!q)
    return -1;
  *(void **)p = q;
  return 0;
}

int npt_part_rows_reserve(npt_part_rows *r, int64_t more) {
  if (r->n + more <= r->cap)
    return 0;
  int64_t c = r->cap ? r->cap : 1024;
  while (c < r->n + more)
    c *= 2;
  if (grow(&r->frame, sizeof *r->frame, c) || grow(&r->id, sizeof *r->id, c) ||
      grow(&r->x, sizeof *r->x, c) || grow(&r->y, sizeof *r->y, c) ||
      grow(&r->w, sizeof *r->w, c) || grow(&r->h, sizeof *r->h, c) ||
      grow(&r->score, sizeof *r->score, c) || grow(&r->cls, sizeof *r->cls, c) ||
      grow(&r->det, sizeof *r->det, c) ||
      (r->embed_dim && grow(&r->embed, sizeof *r->embed * (size_t)r->embed_dim, c)))
    return npt_error_set(NPT_ENOMEM, "out of memory for %lld detections", (long long)c);
  r->cap = c;
  return 0;
}

void npt_part_rows_free(npt_part_rows *r) {
  free(r->frame), free(r->id), free(r->x), free(r->y), free(r->w), free(r->h);
  free(r->score), free(r->cls), free(r->det), free(r->embed);
  *r = (npt_part_rows){.embed_dim = r->embed_dim};
}

npt_stitch_rows npt_part_rows_view(const npt_part_rows *r) {
  return (npt_stitch_rows){r->n, r->frame, r->id, r->det,       r->x,
                           r->y, r->w,     r->h,  r->embed_dim, r->embed_dim ? r->embed : NULL};
}

int npt_part_events_add(npt_part_events *e, const npt_track_event *ev) {
  int64_t k = (int64_t)(ev->n_parents + ev->n_children);
  if (e->n == e->cap) {
    int64_t c = e->cap ? 2 * e->cap : 64;
    if (grow(&e->frame, sizeof *e->frame, c) || grow(&e->kind, sizeof *e->kind, c) ||
        grow(&e->n_parents, sizeof *e->n_parents, c) ||
        grow(&e->n_children, sizeof *e->n_children, c) ||
        grow(&e->parent_off, sizeof *e->parent_off, c) ||
        grow(&e->child_off, sizeof *e->child_off, c))
      return npt_error_set(NPT_ENOMEM, "out of memory for %lld events", (long long)c);
    e->cap = c;
  }
  if (e->n_ids + k > e->ids_cap) {
    int64_t c = e->ids_cap ? e->ids_cap : 256;
    while (c < e->n_ids + k)
      c *= 2;
    if (grow(&e->ids, sizeof *e->ids, c))
      return npt_error_set(NPT_ENOMEM, "out of memory for %lld event ids", (long long)c);
    e->ids_cap = c;
  }
  int64_t i = e->n++;
  e->frame[i] = ev->frame, e->kind[i] = (int32_t)ev->kind;
  e->n_parents[i] = (int64_t)ev->n_parents, e->n_children[i] = (int64_t)ev->n_children;
  e->parent_off[i] = e->n_ids;
  memcpy(e->ids + e->n_ids, ev->parents, sizeof *e->ids * ev->n_parents);
  e->n_ids += (int64_t)ev->n_parents;
  e->child_off[i] = e->n_ids;
  memcpy(e->ids + e->n_ids, ev->children, sizeof *e->ids * ev->n_children);
  e->n_ids += (int64_t)ev->n_children;
  return 0;
}

void npt_part_events_free(npt_part_events *e) {
  free(e->frame), free(e->kind), free(e->n_parents), free(e->n_children);
  free(e->parent_off), free(e->child_off), free(e->ids);
  *e = (npt_part_events){0};
}

char *npt_part_path(const char *dir, int64_t chunk) {
  size_t n = strlen(dir) + 32;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/chunk_%06lld.h5", dir, (long long)chunk);
  return p;
}

/* ------------------------------------------------------------------------------------------- */
/* Datasets */

static int put(hid_t g, const char *name, hid_t ftype, hid_t mtype, int64_t n0, int64_t n1,
               const void *data) {
  hsize_t dims[2] = {(hsize_t)n0, (hsize_t)n1};
  hid_t s = H5Screate_simple(n1 > 0 ? 2 : 1, dims, NULL);
  hid_t d = s >= 0 ? H5Dcreate2(g, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int ok = d >= 0 && (n0 == 0 || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  if (d >= 0)
    H5Dclose(d);
  if (s >= 0)
    H5Sclose(s);
  return ok ? 0 : -1;
}

/* Reads dataset `name` of n0 x max(n1, 1) values into buf; its shape must be that. */
static int get(hid_t g, const char *name, hid_t mtype, int64_t n0, int64_t n1, void *buf) {
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  hid_t s = d >= 0 ? H5Dget_space(d) : -1;
  hsize_t dims[2] = {0, 0};
  int rank = s >= 0 ? H5Sget_simple_extent_dims(s, dims, NULL) : -1;
  int ok =
      rank == (n1 > 0 ? 2 : 1) && dims[0] == (hsize_t)n0 && (n1 == 0 || dims[1] == (hsize_t)n1);
  if (ok && n0 > 0)
    ok = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
  if (s >= 0)
    H5Sclose(s);
  if (d >= 0)
    H5Dclose(d);
  return ok ? 0 : -1;
}

#define I64 H5T_STD_I64LE, H5T_NATIVE_INT64
#define I32 H5T_STD_I32LE, H5T_NATIVE_INT32
#define F32 H5T_IEEE_F32LE, H5T_NATIVE_FLOAT
#define F64 H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE

static const char *const meta_i64[] = {"chunk",     "video",   "index", "begin",     "end",
                                       "own_begin", "own_end", "rank",  "saturated", NULL};

static int64_t *meta_i64_field(npt_part_meta *m, int k) {
  int64_t *f[] = {&m->chunk,     &m->video,   &m->index, &m->begin,    &m->end,
                  &m->own_begin, &m->own_end, &m->rank,  &m->saturated};
  return f[k];
}

static int write_meta(hid_t f, const npt_part_meta *m) {
  npt_part_meta c = *m;
  int bad = npt_h5_write_fixed_str_attr(f, "format", NPT_PART_FORMAT) < 0 ||
            npt_h5_write_i64_attr(f, "format_version", NPT_PART_FORMAT_VERSION) < 0 ||
            npt_h5_write_fixed_str_attr(f, "config_sha256", m->config_sha256) < 0 ||
            npt_h5_write_fixed_str_attr(f, "model_sha256", m->model_sha256) < 0 ||
            npt_h5_write_fixed_str_attr(f, "input_sha256", m->input_sha256) < 0 ||
            npt_h5_write_f64_attr(f, "detect_s", m->detect_s) < 0 ||
            npt_h5_write_f64_attr(f, "track_s", m->track_s) < 0;
  for (int k = 0; meta_i64[k] && !bad; k++)
    bad = npt_h5_write_i64_attr(f, meta_i64[k], *meta_i64_field(&c, k)) < 0;
  return bad ? -1 : 0;
}

static int write_rows(hid_t f, const npt_part_rows *r) {
  hid_t g = H5Gcreate2(f, "rows", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int bad = g < 0 || put(g, "frame", I64, r->n, 0, r->frame) < 0 ||
            put(g, "id", I64, r->n, 0, r->id) < 0 || put(g, "x", F32, r->n, 0, r->x) < 0 ||
            put(g, "y", F32, r->n, 0, r->y) < 0 || put(g, "w", F32, r->n, 0, r->w) < 0 ||
            put(g, "h", F32, r->n, 0, r->h) < 0 || put(g, "score", F32, r->n, 0, r->score) < 0 ||
            put(g, "class", I32, r->n, 0, r->cls) < 0 || put(g, "det", I32, r->n, 0, r->det) < 0 ||
            (r->embed_dim > 0 && put(g, "embedding", F32, r->n, r->embed_dim, r->embed) < 0) ||
            npt_h5_write_i64_attr(g, "n", r->n) < 0 ||
            npt_h5_write_i64_attr(g, "embed_dim", r->embed_dim) < 0;
  if (g >= 0)
    H5Gclose(g);
  return bad ? -1 : 0;
}

/* The tracklets, columnar; scratch holds one column at a time. */
static int write_tracklets(hid_t f, const npt_tracklets *t) {
  int64_t k = (int64_t)t->n, d = t->embed_dim;
  size_t need = (size_t)(k ? k : 1) * (64 + (size_t)(d > 4 ? d : 4)) * sizeof(double);
  char *s = malloc(need);
  hid_t g = s ? H5Gcreate2(f, "tracklets", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int bad =
      g < 0 || npt_h5_write_i64_attr(g, "n", k) < 0 || npt_h5_write_i64_attr(g, "embed_dim", d) < 0;
  int64_t *si = (int64_t *)s;
  float *sf = (float *)s;
  double *sd = (double *)s;
#define COL_I64(name, field)                                                                       \
  if (!bad) {                                                                                      \
    for (int64_t i = 0; i < k; i++)                                                                \
      si[i] = t->t[i].field;                                                                       \
    bad = put(g, name, I64, k, 0, si) < 0;                                                         \
  }
  COL_I64("id", id)
  COL_I64("n", n)
  COL_I64("first_frame", first_frame)
  COL_I64("last_frame", last_frame)
  COL_I64("own_frame", own_frame)
#undef COL_I64
  if (!bad) {
    for (int64_t i = 0; i < k; i++)
      sf[2 * i] = t->t[i].own_x, sf[2 * i + 1] = t->t[i].own_y;
    bad = put(g, "own_xy", F32, k, 2, sf) < 0;
  }
  if (!bad) {
    for (int64_t i = 0; i < k; i++)
      memcpy(sf + 4 * i, t->t[i].head, 4 * sizeof(float));
    bad = put(g, "head", F32, k, 4, sf) < 0;
  }
  if (!bad) {
    for (int64_t i = 0; i < k; i++)
      memcpy(sd + 8 * i, t->t[i].tail.mean, 8 * sizeof(double));
    bad = put(g, "tail_mean", F64, k, 8, sd) < 0;
  }
  if (!bad) {
    for (int64_t i = 0; i < k; i++)
      memcpy(sd + 64 * i, t->t[i].tail.cov, 64 * sizeof(double));
    bad = put(g, "tail_cov", F64, k, 64, sd) < 0;
  }
  if (!bad && d > 0) {
    for (int64_t i = 0; i < k; i++)
      memcpy(sf + d * i, t->t[i].head_embed, (size_t)d * sizeof(float));
    bad = put(g, "head_embed", F32, k, d, sf) < 0;
    for (int64_t i = 0; i < k && !bad; i++)
      memcpy(sf + d * i, t->t[i].tail_embed, (size_t)d * sizeof(float));
    bad = bad || put(g, "tail_embed", F32, k, d, sf) < 0;
  }
  if (g >= 0)
    H5Gclose(g);
  free(s);
  return bad ? -1 : 0;
}

/* The events: per event its frame, kind and counts of parents and children; one column of ids,
 * each event's parents then its children. */
static int write_events(hid_t f, const npt_part_events *e) {
  hid_t g = H5Gcreate2(f, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int bad = g < 0 || put(g, "frame", I64, e->n, 0, e->frame) < 0 ||
            put(g, "kind", I32, e->n, 0, e->kind) < 0 ||
            put(g, "n_parents", I64, e->n, 0, e->n_parents) < 0 ||
            put(g, "n_children", I64, e->n, 0, e->n_children) < 0 ||
            put(g, "ids", I64, e->n_ids, 0, e->ids) < 0 ||
            npt_h5_write_i64_attr(g, "n", e->n) < 0 ||
            npt_h5_write_i64_attr(g, "n_ids", e->n_ids) < 0;
  if (g >= 0)
    H5Gclose(g);
  return bad ? -1 : 0;
}

int (*npt__part_write_hook)(const char *path, const char *point);

int npt_part_write(const char *path, const npt_part_meta *m, const npt_part_rows *r,
                   const npt_tracklets *t, const npt_part_events *e) {
  npt_h5_quiet();
  char *tmp = npt_temp_path(path);
  if (!tmp)
    return npt_error_set(NPT_ENOMEM, "%s: out of memory", path);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  int rc = 0;
  if (f < 0)
    rc = npt_h5_fail(path, "cannot create the part file");
  else if (write_meta(f, m) < 0 || write_rows(f, r) < 0)
    rc = npt_h5_fail(path, "cannot write the part file");
  if (rc == 0 && npt__part_write_hook) {
    H5Fflush(f, H5F_SCOPE_LOCAL); /* so that a kill here leaves a file cut short, not empty */
    rc = npt__part_write_hook(path, "rows");
  }
  if (rc == 0 && (write_tracklets(f, t) < 0 || write_events(f, e) < 0))
    rc = npt_h5_fail(path, "cannot write the part file");
  if (f >= 0 && H5Fclose(f) < 0 && rc == 0)
    rc = npt_h5_fail(path, "cannot close the part file");
  if (rc == 0) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0)
      rc = npt_error_set(NPT_EIO, "%s: cannot sync: %s", path, strerror(errno));
    if (fd >= 0)
      close(fd);
  }
  if (rc == 0 && npt__part_write_hook)
    rc = npt__part_write_hook(path, "rename");
  if (rc == 0 && rename(tmp, path) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
  if (rc < 0)
    unlink(tmp);
  free(tmp);
  return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Reading */

static int read_hash(hid_t f, const char *name, char out[65]) {
  char *s = NULL;
  int rc = npt_h5_read_str_attr(f, name, &s);
  int ok = rc == 0 && s && strlen(s) == 64;
  if (ok)
    memcpy(out, s, 65);
  free(s);
  return ok ? 0 : -1;
}

static int read_meta(hid_t f, const char *path, npt_part_meta *m) {
  memset(m, 0, sizeof *m);
  char *format = NULL;
  int64_t version = 0;
  npt_h5_read_str_attr(f, "format", &format);
  int ok = format && !strcmp(format, NPT_PART_FORMAT) &&
           npt_h5_read_i64_attr(f, "format_version", &version) == 0 &&
           version == NPT_PART_FORMAT_VERSION;
  free(format);
  if (!ok)
    return npt_error_set(NPT_EFORMAT, "%s: not an nptrack part file of format version %d", path,
                         NPT_PART_FORMAT_VERSION);
  for (int k = 0; meta_i64[k] && ok; k++)
    ok = npt_h5_read_i64_attr(f, meta_i64[k], meta_i64_field(m, k)) == 0;
  ok = ok && read_hash(f, "config_sha256", m->config_sha256) == 0 &&
       read_hash(f, "model_sha256", m->model_sha256) == 0 &&
       read_hash(f, "input_sha256", m->input_sha256) == 0 &&
       npt_h5_read_f64_attr(f, "detect_s", &m->detect_s) == 0 &&
       npt_h5_read_f64_attr(f, "track_s", &m->track_s) == 0;
  return ok ? 0 : npt_error_set(NPT_EFORMAT, "%s: incomplete part file metadata", path);
}

int npt_part_read_meta(const char *path, npt_part_meta *m) {
  npt_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return npt_h5_fail(path, "cannot open the part file");
  int rc = read_meta(f, path, m);
  H5Fclose(f);
  return rc;
}

static int read_rows(hid_t f, npt_part_rows *r) {
  hid_t g = H5Gopen2(f, "rows", H5P_DEFAULT);
  int64_t n = -1, d = -1;
  int ok = g >= 0 && npt_h5_read_i64_attr(g, "n", &n) == 0 &&
           npt_h5_read_i64_attr(g, "embed_dim", &d) == 0 && n >= 0 && d >= 0 && d < 100000;
  if (ok) {
    *r = (npt_part_rows){.embed_dim = (int)d};
    ok = npt_part_rows_reserve(r, n) == 0;
  }
  ok = ok && get(g, "frame", H5T_NATIVE_INT64, n, 0, r->frame) == 0 &&
       get(g, "id", H5T_NATIVE_INT64, n, 0, r->id) == 0 &&
       get(g, "x", H5T_NATIVE_FLOAT, n, 0, r->x) == 0 &&
       get(g, "y", H5T_NATIVE_FLOAT, n, 0, r->y) == 0 &&
       get(g, "w", H5T_NATIVE_FLOAT, n, 0, r->w) == 0 &&
       get(g, "h", H5T_NATIVE_FLOAT, n, 0, r->h) == 0 &&
       get(g, "score", H5T_NATIVE_FLOAT, n, 0, r->score) == 0 &&
       get(g, "class", H5T_NATIVE_INT32, n, 0, r->cls) == 0 &&
       get(g, "det", H5T_NATIVE_INT32, n, 0, r->det) == 0 &&
       (d == 0 || get(g, "embedding", H5T_NATIVE_FLOAT, n, d, r->embed) == 0);
  if (ok)
    r->n = n;
  if (g >= 0)
    H5Gclose(g);
  return ok ? 0 : -1;
}

static int read_tracklets(hid_t f, npt_tracklets *t) {
  hid_t g = H5Gopen2(f, "tracklets", H5P_DEFAULT);
  int64_t k = -1, d = -1;
  int ok = g >= 0 && npt_h5_read_i64_attr(g, "n", &k) == 0 &&
           npt_h5_read_i64_attr(g, "embed_dim", &d) == 0 && k >= 0 && d >= 0 && d < 100000;
  ok = ok && npt_tracklets_alloc(t, (size_t)k, (int)d) == 0;
  size_t need = (size_t)(k > 0 ? k : 1) * (64 + (size_t)(d > 4 ? d : 4)) * sizeof(double);
  char *s = ok ? malloc(need) : NULL;
  ok = ok && s;
  int64_t *si = (int64_t *)s;
  float *sf = (float *)s;
  double *sd = (double *)s;
#define COL_I64(name, field)                                                                       \
  if (ok && (ok = get(g, name, H5T_NATIVE_INT64, k, 0, si) == 0))                                  \
    for (int64_t i = 0; i < k; i++)                                                                \
      t->t[i].field = si[i];
  COL_I64("id", id)
  COL_I64("n", n)
  COL_I64("first_frame", first_frame)
  COL_I64("last_frame", last_frame)
  COL_I64("own_frame", own_frame)
#undef COL_I64
  if (ok && (ok = get(g, "own_xy", H5T_NATIVE_FLOAT, k, 2, sf) == 0))
    for (int64_t i = 0; i < k; i++)
      t->t[i].own_x = sf[2 * i], t->t[i].own_y = sf[2 * i + 1];
  if (ok && (ok = get(g, "head", H5T_NATIVE_FLOAT, k, 4, sf) == 0))
    for (int64_t i = 0; i < k; i++)
      memcpy(t->t[i].head, sf + 4 * i, 4 * sizeof(float));
  if (ok && (ok = get(g, "tail_mean", H5T_NATIVE_DOUBLE, k, 8, sd) == 0))
    for (int64_t i = 0; i < k; i++)
      memcpy(t->t[i].tail.mean, sd + 8 * i, 8 * sizeof(double));
  if (ok && (ok = get(g, "tail_cov", H5T_NATIVE_DOUBLE, k, 64, sd) == 0))
    for (int64_t i = 0; i < k; i++)
      memcpy(t->t[i].tail.cov, sd + 64 * i, 64 * sizeof(double));
  if (ok && d > 0 && (ok = get(g, "head_embed", H5T_NATIVE_FLOAT, k, d, sf) == 0))
    for (int64_t i = 0; i < k; i++)
      memcpy(t->t[i].head_embed, sf + d * i, (size_t)d * sizeof(float));
  if (ok && d > 0 && (ok = get(g, "tail_embed", H5T_NATIVE_FLOAT, k, d, sf) == 0))
    for (int64_t i = 0; i < k; i++)
      memcpy(t->t[i].tail_embed, sf + d * i, (size_t)d * sizeof(float));
  for (int64_t i = 1; i < k && ok; i++)
    ok = t->t[i].id > t->t[i - 1].id;
  free(s);
  if (g >= 0)
    H5Gclose(g);
  return ok ? 0 : -1;
}

static int read_events(hid_t f, npt_part_events *e) {
  hid_t g = H5Gopen2(f, "events", H5P_DEFAULT);
  int64_t n = -1, k = -1;
  int ok = g >= 0 && npt_h5_read_i64_attr(g, "n", &n) == 0 &&
           npt_h5_read_i64_attr(g, "n_ids", &k) == 0 && n >= 0 && k >= 0;
  if (ok) {
    size_t n1 = (size_t)(n ? n : 1), k1 = (size_t)(k ? k : 1);
    e->frame = malloc(n1 * sizeof *e->frame), e->kind = malloc(n1 * sizeof *e->kind);
    e->n_parents = malloc(n1 * sizeof *e->n_parents);
    e->n_children = malloc(n1 * sizeof *e->n_children);
    e->parent_off = malloc(n1 * sizeof *e->parent_off);
    e->child_off = malloc(n1 * sizeof *e->child_off), e->ids = malloc(k1 * sizeof *e->ids);
    ok = e->frame && e->kind && e->n_parents && e->n_children && e->parent_off && e->child_off &&
         e->ids;
    e->cap = n, e->ids_cap = k;
  }
  ok = ok && get(g, "frame", H5T_NATIVE_INT64, n, 0, e->frame) == 0 &&
       get(g, "kind", H5T_NATIVE_INT32, n, 0, e->kind) == 0 &&
       get(g, "n_parents", H5T_NATIVE_INT64, n, 0, e->n_parents) == 0 &&
       get(g, "n_children", H5T_NATIVE_INT64, n, 0, e->n_children) == 0 &&
       get(g, "ids", H5T_NATIVE_INT64, k, 0, e->ids) == 0;
  int64_t off = 0;
  for (int64_t i = 0; i < n && ok; i++) {
    ok = e->n_parents[i] >= 0 && e->n_children[i] >= 0 &&
         e->n_parents[i] + e->n_children[i] <= k - off;
    e->parent_off[i] = off, e->child_off[i] = off + (ok ? e->n_parents[i] : 0);
    off += ok ? e->n_parents[i] + e->n_children[i] : 0;
  }
  ok = ok && off == k;
  if (ok)
    e->n = n, e->n_ids = k;
  if (g >= 0)
    H5Gclose(g);
  return ok ? 0 : -1;
}

int npt_part_read(const char *path, npt_part_meta *m, npt_part_rows *r, npt_tracklets *t,
                  npt_part_events *e) {
  npt_h5_quiet();
  memset(r, 0, sizeof *r);
  memset(t, 0, sizeof *t);
  memset(e, 0, sizeof *e);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return npt_h5_fail(path, "cannot open the part file");
  int rc = read_meta(f, path, m);
  if (rc == 0 && (read_rows(f, r) < 0 || read_tracklets(f, t) < 0 || read_events(f, e) < 0))
    rc = npt_h5_fail(path, "cannot read the part file");
  H5Fclose(f);
  if (rc < 0) {
    npt_part_rows_free(r);
    npt_tracklets_free(t);
    npt_part_events_free(e);
  }
  return rc;
}
