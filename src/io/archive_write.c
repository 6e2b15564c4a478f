/* Writing the archive (archive.h; layout in docs/archive-format.md, "The archive").
 *
 * Everything goes into a temporary file beside the target, whose root `status` says "writing"
 * from the start; status becomes "complete" as the last attribute, then the file is closed,
 * fsync'ed and renamed into place (and the directory fsync'ed), so a file with the final name
 * and status "complete" is whole even after a crash.  Each video's tables are computed from its
 * rows first (archive_tables.c) and then written whole, one dataset per column. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/path.h"
#include "io/archive_internal.h"
#include "io/h5util.h"
#include "npt_buildinfo.h"

static const char *fail_stage;
static int fail_crash;

void npt__archive_test_fail_at(const char *stage, int crash) {
  fail_stage = stage;
  fail_crash = crash;
}

int npt__archive_hook(const npt_archive *a, const char *stage) {
  if (!fail_stage || strcmp(fail_stage, stage))
    return 0;
  if (fail_crash)
    _exit(3);
  return npt_error_set(NPT_EIO, "%s: failing at '%s' (test hook)", a->path, stage);
}

const char *npt_archive_temp_path(const npt_archive *a) {
  return a->tmp;
}

static void run_free(npt_archive_run *r) {
  free((char *)r->config_text);
  free((char *)r->model_path);
  free((char *)r->model_sha256);
  free((char *)r->backend);
  free((char *)r->class_names);
  for (int i = 0; i < r->n_timings; i++)
    free((char *)r->timings[i].name);
  free((npt_archive_timing *)r->timings);
  memset(r, 0, sizeof *r);
}

static void archive_free(npt_archive *a) {
  run_free(&a->run);
  free(a->path);
  free(a->tmp);
  free(a);
}

static void close_h5(npt_archive *a) {
  if (a->videos >= 0)
    H5Gclose(a->videos), a->videos = -1;
  if (a->file >= 0)
    H5Fclose(a->file), a->file = -1;
}

void npt_archive_abort(npt_archive *a) {
  if (!a)
    return;
  close_h5(a);
  if (a->tmp)
    unlink(a->tmp);
  archive_free(a);
}

/* The overwrite policy of npt_archive_open. */
static int check_target(const char *path, int force) {
  struct stat st;
  if (stat(path, &st) != 0)
    return errno == ENOENT
               ? 0
               : npt_error_set(NPT_EIO, "%s: cannot check the target: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return npt_error_set(NPT_EIO, "%s: is a directory", path);
  if (force)
    return 0;
  char *format = NULL;
  if (npt_h5_file_format(path, &format) < 0 || !format || strcmp(format, NPT_ARCHIVE_FORMAT)) {
    free(format);
    return npt_error_set(NPT_EIO,
                         "%s: exists and is not an nptrack archive; not overwritten (--force "
                         "replaces it)",
                         path);
  }
  free(format);
  char *status = NULL;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f >= 0) {
    npt_h5_read_str_attr(f, "status", &status);
    H5Fclose(f);
  }
  int complete = status && !strcmp(status, "complete");
  free(status);
  if (complete)
    return npt_error_set(
        NPT_EIO, "%s: a complete archive exists; not overwritten (--force replaces it)", path);
  return 0; /* an incomplete archive: replaced */
}

static const char *embed_mode_name(npt_archive_embed_mode m) {
  return m == NPT_ARCHIVE_EMBED_NONE ? "none" : m == NPT_ARCHIVE_EMBED_ALL ? "all" : "track";
}

int npt_archive_open(npt_archive **out, const char *path, const npt_archive_options *opt) {
  *out = NULL;
  npt_h5_quiet();
  if (opt->compression < 0 || opt->compression > 9)
    return npt_error_set(NPT_EINVAL, "%s: gzip level %d outside 0..9", path, opt->compression);
  NPT_TRY(check_target(path, opt->force));
  npt_archive *a = calloc(1, sizeof *a);
  NPT_ALLOC_CHECK(a);
  a->file = a->videos = -1;
  a->opt = *opt;
  a->path = strdup(path);
  a->tmp = npt_temp_path(path);
  if (!a->path || !a->tmp) {
    npt_archive_abort(a);
    return npt_error_set(NPT_ENOMEM, "%s: out of memory", path);
  }
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), gcpl = H5Pcreate(H5P_GROUP_CREATE);
  /* No timestamps: the same rows and provenance give the same file. */
  if (fcpl >= 0)
    H5Pset_obj_track_times(fcpl, 0);
  if (gcpl >= 0)
    H5Pset_obj_track_times(gcpl, 0);
  a->file = H5Fcreate(a->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  if (a->file >= 0)
    a->videos = H5Gcreate2(a->file, "videos", H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (fcpl >= 0)
    H5Pclose(fcpl);
  if (gcpl >= 0)
    H5Pclose(gcpl);
  int rc = 0;
  if (a->file < 0 || a->videos < 0)
    rc = npt_h5_fail(path, "cannot create the archive");
  /* status first, as "writing": a temporary file left by a crash says what it is. */
  else if (npt_h5_write_fixed_str_attr(a->file, "format", NPT_ARCHIVE_FORMAT) < 0 ||
           npt_h5_write_i64_attr(a->file, "format_version", NPT_ARCHIVE_FORMAT_VERSION) < 0 ||
           npt_h5_write_fixed_str_attr(a->file, "status", "writing") < 0)
    rc = npt_h5_fail(path, "cannot write the root attributes");
  if (rc == 0)
    rc = npt__archive_hook(a, "open");
  if (rc < 0) {
    npt_archive_abort(a);
    return rc;
  }
  *out = a;
  return 0;
}

static char *dup0(const char *s) {
  return strdup(s ? s : "");
}

int npt_archive_set_timing(npt_archive *a, const char *name, double seconds) {
  char attr[128];
  if (!name || !*name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name) ||
      strlen(name) > 100)
    return npt_error_set(NPT_EINVAL, "%s: bad timing name '%s' ([a-z0-9_]+)", a->path,
                         name ? name : "");
  snprintf(attr, sizeof attr, "timing_%s_s", name);
  if ((H5Aexists(a->file, attr) > 0 && H5Adelete(a->file, attr) < 0) ||
      npt_h5_write_f64_attr(a->file, attr, seconds) < 0)
    return npt_h5_fail(a->path, "cannot write a timing");
  return 0;
}

static int attr_name_ok(const char *name) {
  static const char *const owned[] = {"format", "format_version", "status", "n_videos", NULL};
  if (!name || !*name || strlen(name) > 100 ||
      strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
    return 0;
  for (int i = 0; owned[i]; i++)
    if (!strcmp(name, owned[i]))
      return 0;
  return 1;
}

int npt_archive_set_attr_str(npt_archive *a, const char *name, const char *value) {
  if (!attr_name_ok(name))
    return npt_error_set(NPT_EINVAL, "%s: bad attribute name '%s'", a->path, name ? name : "");
  if (npt_h5_write_fixed_str_attr(a->file, name, value ? value : "") < 0)
    return npt_h5_fail(a->path, "cannot write a root attribute");
  return 0;
}

int npt_archive_set_attr_i64(npt_archive *a, const char *name, int64_t value) {
  if (!attr_name_ok(name))
    return npt_error_set(NPT_EINVAL, "%s: bad attribute name '%s'", a->path, name ? name : "");
  if ((H5Aexists(a->file, name) > 0 && H5Adelete(a->file, name) < 0) ||
      npt_h5_write_i64_attr(a->file, name, value) < 0)
    return npt_h5_fail(a->path, "cannot write a root attribute");
  return 0;
}

/* The run's provenance on the root, written as soon as it is known: an archive whose writer
 * died still says what made it. */
static int root_attrs(npt_archive *a) {
  const npt_archive_run *r = &a->run;
  hid_t f = a->file;
  int bad = npt_h5_write_fixed_str_attr(f, "nptrack_version", NPT_VERSION) < 0 ||
            npt_h5_write_fixed_str_attr(f, "git_commit", NPT_GIT_COMMIT) < 0 ||
            npt_h5_write_fixed_str_attr(f, "config", r->config_text) < 0 ||
            npt_h5_write_fixed_str_attr(f, "model", r->model_path) < 0 ||
            npt_h5_write_fixed_str_attr(f, "model_sha256", r->model_sha256) < 0 ||
            npt_h5_write_fixed_str_attr(f, "backend", r->backend) < 0 ||
            npt_h5_write_fixed_str_attr(f, "class_names", r->class_names) < 0 ||
            npt_h5_write_i64_attr(f, "n_classes", r->n_classes) < 0 ||
            npt_h5_write_fixed_str_attr(f, "embeddings", embed_mode_name(a->opt.embeddings)) < 0 ||
            npt_h5_write_fixed_str_attr(f, "frame_numbering", "0-based") < 0;
  if (bad)
    return npt_h5_fail(a->path, "cannot write the root attributes");
  for (int i = 0; i < r->n_timings; i++)
    NPT_TRY(npt_archive_set_timing(a, r->timings[i].name, r->timings[i].seconds));
  return 0;
}

int npt_archive_set_run(npt_archive *a, const npt_archive_run *run) {
  if (run->n_classes < 1 || run->n_timings < 0)
    return npt_error_set(NPT_EINVAL, "%s: the run needs n_classes >= 1", a->path);
  if (a->have_run)
    return npt_error_set(NPT_EINVAL, "%s: the run's provenance is set once", a->path);
  run_free(&a->run);
  npt_archive_run *r = &a->run;
  r->config_text = dup0(run->config_text);
  r->model_path = dup0(run->model_path);
  r->model_sha256 = dup0(run->model_sha256);
  r->backend = dup0(run->backend);
  r->class_names = dup0(run->class_names);
  r->n_classes = run->n_classes;
  npt_archive_timing *tm = calloc((size_t)run->n_timings + 1, sizeof *tm);
  r->timings = tm;
  int ok = r->config_text && r->model_path && r->model_sha256 && r->backend && r->class_names && tm;
  for (int i = 0; ok && i < run->n_timings; i++) {
    ok = (tm[i].name = strdup(run->timings[i].name)) != NULL;
    tm[i].seconds = run->timings[i].seconds;
    r->n_timings = i + 1;
  }
  if (!ok)
    return npt_error_set(NPT_ENOMEM, "%s: out of memory", a->path);
  NPT_TRY(root_attrs(a));
  a->have_run = 1;
  return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Handing the file to the parallel row writer and back */

int npt_archive_suspend(npt_archive *a) {
  if (a->failed || a->file < 0)
    return npt_error_set(NPT_EINVAL, "%s: cannot suspend: an earlier error stopped this archive",
                         a->path);
  int bad = H5Gclose(a->videos) < 0;
  bad |= H5Fclose(a->file) < 0;
  a->videos = a->file = -1;
  if (bad) {
    a->failed = 1;
    return npt_h5_fail(a->path, "cannot close");
  }
  return 0;
}

int npt_archive_resume(npt_archive *a) {
  if (a->failed || a->file >= 0)
    return npt_error_set(NPT_EINVAL, "%s: cannot resume: not suspended", a->path);
  a->file = H5Fopen(a->tmp, H5F_ACC_RDWR, H5P_DEFAULT);
  if (a->file >= 0)
    a->videos = H5Gopen2(a->file, "videos", H5P_DEFAULT);
  if (a->file < 0 || a->videos < 0) {
    a->failed = 1;
    return npt_h5_fail(a->path, "cannot open the temporary archive again");
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Finishing */

static int fsync_path(const char *path, int dir) {
  int fd = open(path, O_RDONLY | (dir ? O_DIRECTORY : 0));
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int npt_archive_finish(npt_archive *a) {
  int rc = 0;
  if (a->failed)
    rc = npt_error_set(NPT_EINVAL, "%s: an earlier error stopped this archive", a->path);
  else if (!a->have_run)
    rc = npt_error_set(NPT_EINVAL, "%s: no run provenance (npt_archive_set_run)", a->path);
  if (rc == 0 && npt_h5_write_i64_attr(a->file, "n_videos", a->n_videos) < 0)
    rc = npt_h5_fail(a->path, "cannot write the root attributes");
  if (rc == 0)
    rc = npt__archive_hook(a, "attrs");
  /* Last: a reader that finds "complete" finds everything else. */
  if (rc == 0 && npt_h5_write_fixed_str_attr(a->file, "status", "complete") < 0)
    rc = npt_h5_fail(a->path, "cannot write the status");
  if (rc == 0) {
    int bad = H5Gclose(a->videos) < 0;
    bad |= H5Fclose(a->file) < 0;
    a->videos = a->file = -1;
    if (bad)
      rc = npt_h5_fail(a->path, "cannot close");
  }
  if (rc == 0 && fsync_path(a->tmp, 0) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot sync: %s", a->path, strerror(errno));
  if (rc == 0)
    rc = npt__archive_hook(a, "rename");
  if (rc == 0 && rename(a->tmp, a->path) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot rename into place: %s", a->path, strerror(errno));
  if (rc < 0) {
    npt_archive_abort(a);
    return rc;
  }
  /* The rename itself reaches the disk with the directory. */
  char *dir = strdup(a->path);
  if (dir) {
    char *slash = strrchr(dir, '/');
    if (slash)
      *(slash == dir ? slash + 1 : slash) = '\0';
    fsync_path(slash ? dir : ".", 1);
    free(dir);
  }
  archive_free(a);
  return 0;
}
