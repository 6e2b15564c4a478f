/* Outputs of `nptrack synth` (see synth_io.h): video.h5 through HDF5, the text files through
 * stdio with a hand-written fixed-point formatter (printf's %f costs more than the rest of a
 * dense frame's ground truth). */
#include "synth/synth_io.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "io/h5util.h"
#include "npt_buildinfo.h"

enum { F_VIDEO, F_GT, F_EVENTS, F_CONFIG, N_FILES };
static const char *const final_names[N_FILES] = {"video.h5", "gt.txt", "events.csv", "config.cfg"};

struct npt_synth_writer {
  const npt_synth_video *v;
  char *path[N_FILES]; /* final paths */
  char *tmp[N_FILES];  /* temporary paths (same directory, so rename is atomic) */
  hid_t file, dset;
  FILE *gt, *events;
  char *buf; /* one frame's ground-truth rows */
  size_t cap;
};

/* mkdir -p: each missing component in turn. */
static int make_dirs(const char *dir) {
  char *p = strdup(dir);
  if (!p)
    return npt_error_set(NPT_ENOMEM, "out of memory");
  int rc = 0;
  for (char *c = p + 1;; c++) {
    if (*c != '/' && *c != '\0')
      continue;
    char keep = *c;
    *c = '\0';
    struct stat st;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      rc = npt_error_set(NPT_EIO, "%s: cannot create output directory: %s", dir, strerror(errno));
      break;
    }
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
      rc = npt_error_set(NPT_EIO, "%s: cannot create output directory: %s is not a directory", dir,
                         p);
      break;
    }
    *c = keep;
    if (keep == '\0')
      break;
  }
  free(p);
  return rc;
}

static char *join(const char *dir, const char *prefix, const char *name, const char *suffix) {
  size_t n = strlen(dir) + strlen(prefix) + strlen(name) + strlen(suffix) + 2;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s/%s%s%s", dir, prefix, name, suffix);
  return s;
}

static void close_all(npt_synth_writer *w) {
  if (w->dset >= 0)
    H5Dclose(w->dset);
  if (w->file >= 0)
    H5Fclose(w->file);
  w->dset = w->file = -1;
  if (w->gt)
    fclose(w->gt);
  if (w->events)
    fclose(w->events);
  w->gt = w->events = NULL;
}

static void writer_free(npt_synth_writer *w) {
  for (int k = 0; k < N_FILES; k++) {
    free(w->path[k]);
    free(w->tmp[k]);
  }
  free(w->buf);
  free(w);
}

void npt_synth_writer_abort(npt_synth_writer *w) {
  if (!w)
    return;
  close_all(w);
  for (int k = 0; k < N_FILES; k++)
    if (w->tmp[k])
      unlink(w->tmp[k]);
  writer_free(w);
}

static int open_text(npt_synth_writer *w, int k, FILE **f, const char *header) {
  *f = fopen(w->tmp[k], "w");
  if (!*f)
    return npt_error_set(NPT_EIO, "%s: cannot write: %s", w->path[k], strerror(errno));
  fputs(header, *f);
  return 0;
}

static int create_video(npt_synth_writer *w) {
  const npt_synth_video *v = w->v;
  const char *path = w->path[F_VIDEO];
  npt_h5_quiet();
  w->file = H5Fcreate(w->tmp[F_VIDEO], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (w->file < 0)
    return npt_h5_fail(path, "cannot create");
  hsize_t dims[3] = {(hsize_t)v->frames, (hsize_t)v->optics.height, (hsize_t)v->optics.width};
  hsize_t chunk[3] = {1, dims[1], dims[2]};
  hid_t space = H5Screate_simple(3, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  int ok = space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 3, chunk) >= 0;
  if (ok && v->gzip_level > 0) {
    if (v->optics.bit_depth == 16)
      ok = H5Pset_shuffle(dcpl) >= 0;
    ok = ok && H5Pset_deflate(dcpl, (unsigned)v->gzip_level) >= 0;
  }
  /* No fill value: every chunk is written once, whole.  No timestamps: the same seed gives the
   * same file, byte for byte. */
  ok = ok && H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0;
  ok = ok && H5Pset_obj_track_times(dcpl, 0) >= 0;
  hid_t type = v->optics.bit_depth == 8 ? H5T_STD_U8LE : H5T_STD_U16LE;
  if (ok)
    w->dset = H5Dcreate2(w->file, "/frames", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (space >= 0)
    H5Sclose(space);
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (!ok || w->dset < 0)
    return npt_h5_fail(path, "cannot create dataset /frames");
  if (npt_h5_write_f64_attr(w->dset, "pixel_size_nm", v->pixel_size_nm) < 0 ||
      npt_h5_write_f64_attr(w->dset, "frame_rate_hz", v->frame_rate_hz) < 0)
    return npt_h5_fail(path, "cannot write the attributes of /frames");
  return 0;
}

int npt_synth_writer_open(npt_synth_writer **out, const char *dir, const npt_synth_video *v) {
  *out = NULL;
  npt_synth_writer *w = calloc(1, sizeof *w);
  NPT_ALLOC_CHECK(w);
  w->v = v;
  w->file = w->dset = -1;
  char pid[32];
  snprintf(pid, sizeof pid, ".%ld.part", (long)getpid());
  for (int k = 0; k < N_FILES; k++) {
    w->path[k] = join(dir, "", final_names[k], "");
    w->tmp[k] = join(dir, ".", final_names[k], pid);
    if (!w->path[k] || !w->tmp[k]) {
      writer_free(w);
      return npt_error_set(NPT_ENOMEM, "out of memory");
    }
  }
  int rc = make_dirs(dir);
  if (rc == 0)
    rc = open_text(w, F_GT, &w->gt, "");
  if (rc == 0)
    rc = open_text(w, F_EVENTS, &w->events, "frame,type,parents,children\n");
  if (rc == 0)
    rc = create_video(w);
  if (rc < 0) {
    npt_synth_writer_abort(w);
    return rc;
  }
  *out = w;
  return 0;
}

int npt_synth_writer_frame(npt_synth_writer *w, int64_t frame, const void *pixels) {
  const npt_synth_optics *o = &w->v->optics;
  hsize_t start[3] = {(hsize_t)frame, 0, 0}, count[3] = {1, (hsize_t)o->height, (hsize_t)o->width};
  int ok;
  if (w->v->gzip_level == 0) {
    /* A frame is one whole chunk: hand it to the file as it is (no conversion, no cache). */
    size_t bytes = (size_t)o->height * (size_t)o->width * (o->bit_depth == 8 ? 1 : 2);
    ok = H5Dwrite_chunk(w->dset, H5P_DEFAULT, 0, start, bytes, pixels) >= 0;
  } else {
    hid_t fspace = H5Dget_space(w->dset);
    hid_t mspace = H5Screate_simple(3, count, NULL);
    hid_t type = o->bit_depth == 8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT16;
    ok = fspace >= 0 && mspace >= 0 &&
         H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
         H5Dwrite(w->dset, type, mspace, fspace, H5P_DEFAULT, pixels) >= 0;
    if (fspace >= 0)
      H5Sclose(fspace);
    if (mspace >= 0)
      H5Sclose(mspace);
  }
  if (!ok) {
    char what[64];
    snprintf(what, sizeof what, "cannot write frame %lld", (long long)frame + 1);
    return npt_h5_fail(w->path[F_VIDEO], what);
  }
  return 0;
}

/* Fixed-point with 4 decimals ("-12.3456"); returns the end. */
static char *put_fixed4(char *p, double x) {
  long long v = llround(x * 1e4);
  if (v < 0) {
    *p++ = '-';
    v = -v;
  }
  char tmp[32];
  int n = 0;
  long long ip = v / 10000;
  int fp = (int)(v % 10000);
  do
    tmp[n++] = (char)('0' + ip % 10), ip /= 10;
  while (ip);
  while (n)
    *p++ = tmp[--n];
  *p++ = '.';
  p[0] = (char)('0' + fp / 1000);
  p[1] = (char)('0' + fp / 100 % 10);
  p[2] = (char)('0' + fp / 10 % 10);
  p[3] = (char)('0' + fp % 10);
  return p + 4;
}

static char *put_int(char *p, long long v) {
  char tmp[24];
  int n = 0;
  if (v < 0) {
    *p++ = '-';
    v = -v;
  }
  do
    tmp[n++] = (char)('0' + v % 10), v /= 10;
  while (v);
  while (n)
    *p++ = tmp[--n];
  return p;
}

int npt_synth_writer_boxes(npt_synth_writer *w, int64_t frame, const npt_scene_obs *obs, int n) {
  size_t need = (size_t)n * 128 + 1;
  if (need > w->cap) {
    char *b = realloc(w->buf, need);
    NPT_ALLOC_CHECK(b);
    w->buf = b, w->cap = need;
  }
  char *p = w->buf;
  for (int k = 0; k < n; k++) {
    const npt_scene_obs *o = &obs[k];
    p = put_int(p, (long long)frame + 1);
    *p++ = ',';
    p = put_int(p, (long long)o->id);
    *p++ = ',';
    p = put_fixed4(p, o->x0);
    *p++ = ',';
    p = put_fixed4(p, o->y0);
    *p++ = ',';
    p = put_fixed4(p, o->x1 - o->x0);
    *p++ = ',';
    p = put_fixed4(p, o->y1 - o->y0);
    memcpy(p, ",1,", 3);
    p += 3;
    *p++ = (char)('0' + o->cls);
    *p++ = ',';
    p = put_fixed4(p, o->visibility);
    *p++ = '\n';
  }
  if (fwrite(w->buf, 1, (size_t)(p - w->buf), w->gt) != (size_t)(p - w->buf))
    return npt_error_set(NPT_EIO, "%s: cannot write: %s", w->path[F_GT], strerror(errno));
  return 0;
}

int npt_synth_writer_events(npt_synth_writer *w, const npt_scene_event *ev, int n) {
  for (int k = 0; k < n; k++) {
    fprintf(w->events, "%lld,%s,", (long long)ev[k].frame + 1,
            ev[k].type == NPT_EVENT_MERGE ? "merge" : "split");
    for (int m = 0; m < ev[k].n_parents; m++)
      fprintf(w->events, "%s%lld", m ? " " : "", (long long)ev[k].parents[m]);
    fputc(',', w->events);
    for (int m = 0; m < ev[k].n_children; m++)
      fprintf(w->events, "%s%lld", m ? " " : "", (long long)ev[k].children[m]);
    fputc('\n', w->events);
  }
  if (ferror(w->events))
    return npt_error_set(NPT_EIO, "%s: cannot write: %s", w->path[F_EVENTS], strerror(errno));
  return 0;
}

static int write_root_attrs(npt_synth_writer *w, const char *config_text) {
  const npt_synth_video *v = w->v;
  char version[128];
  snprintf(version, sizeof version, "%s (commit %s)", NPT_VERSION, NPT_GIT_COMMIT);
  int bad = npt_h5_write_str_attr(w->file, "config", config_text) < 0 ||
            npt_h5_write_str_attr(w->file, "nptrack_version", version) < 0 ||
            npt_h5_write_f64_attr(w->file, "pixel_size_nm", v->pixel_size_nm) < 0 ||
            npt_h5_write_f64_attr(w->file, "frame_rate_hz", v->frame_rate_hz) < 0;
  /* What was drawn for this video, under the settings' names (integers as int64). */
  for (int i = 0; i < v->n_drawn && !bad; i++) {
    if (!v->drawn[i].integer) {
      bad = npt_h5_write_f64_attr(w->file, v->drawn[i].name, v->drawn[i].value) < 0;
      continue;
    }
    long long x = (long long)v->drawn[i].value;
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(w->file, v->drawn[i].name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    bad = s < 0 || a < 0 || H5Awrite(a, H5T_NATIVE_LLONG, &x) < 0;
    if (a >= 0)
      H5Aclose(a);
    if (s >= 0)
      H5Sclose(s);
  }
  return bad ? npt_h5_fail(w->path[F_VIDEO], "cannot write the file's attributes") : 0;
}

int npt_synth_writer_finish(npt_synth_writer *w, const char *config_text) {
  int rc = write_root_attrs(w, config_text);
  if (rc == 0) {
    FILE *f = fopen(w->tmp[F_CONFIG], "w");
    if (!f || fputs(config_text, f) < 0 || fclose(f) != 0)
      rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", w->path[F_CONFIG], strerror(errno));
  }
  /* Close everything, checking that the data reached the files. */
  if (rc == 0) {
    herr_t e1 = H5Dclose(w->dset), e2 = H5Fclose(w->file);
    w->file = w->dset = -1;
    if (e1 < 0 || e2 < 0)
      rc = npt_h5_fail(w->path[F_VIDEO], "cannot close");
  }
  if (rc == 0 && fclose(w->gt) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", w->path[F_GT], strerror(errno));
  w->gt = NULL;
  if (rc == 0 && fclose(w->events) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", w->path[F_EVENTS], strerror(errno));
  w->events = NULL;
  /* Text files first, the video last: a complete video.h5 means a complete set. */
  static const int order[N_FILES] = {F_GT, F_EVENTS, F_CONFIG, F_VIDEO};
  for (int k = 0; k < N_FILES && rc == 0; k++)
    if (rename(w->tmp[order[k]], w->path[order[k]]) != 0)
      rc = npt_error_set(NPT_EIO, "%s: cannot rename into place: %s", w->path[order[k]],
                         strerror(errno));
  if (rc < 0) {
    npt_synth_writer_abort(w);
    return rc;
  }
  writer_free(w);
  return 0;
}
