/* nptrack run: the whole pipeline on one process.  Each video's frames stream through the engine
 * exactly as in `nptrack detect` (detect_common.c), each frame's detections go to the online
 * tracker in frame order, and every video's rows go into one run archive (io/archive.h) with
 * the run's provenance.  The archive is written under a temporary name and renamed only when
 * complete, so a failed run leaves no archive at the target. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/detect_common.h"
#include "common/error.h"
#include "common/sha256.h"
#include "config/config.h"
#include "io/archive.h"
#include "io/frames.h"
#include "track/tracker.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: nptrack run [-c FILE] [-s K=V]... [--force] -o ARCHIVE.h5 VIDEO...\n\n"
          "Detects the particles in every frame of each VIDEO (as `nptrack detect` does),\n"
          "tracks them (section track) and writes one archive with a group per video\n"
          "(/videos/NAME, NAME = the file's name without extension) and the run's provenance:\n"
          "configuration, version, model and its SHA-256, backend, timings\n"
          "(docs/archive-format.md).  VIDEO is an HDF5 file with the frames in detect.dataset,\n"
          "or FILE.h5:/path/to/dataset.  An existing complete archive is replaced only with\n"
          "--force.  Progress (frames, frames/s, ETA) goes to stderr: one updating line on a\n"
          "terminal, else a line every NPTRACK_PROGRESS_S seconds (default 30).\n\n"
          "Options:\n"
          "  -c, --config FILE   configuration file (libconfig)\n"
          "  -s, --set K=V       override one setting, e.g. -s track.lost_frames=10 (repeatable)\n"
          "  -o, --output FILE   the archive to write\n"
          "  -f, --force         replace an existing complete archive\n"
          "  -q, --quiet         print nothing on success (no progress either)\n"
          "  -h, --help          this help\n\n"
          "Example:\n"
          "  nptrack run -o out/run.h5 out/a/video.h5 out/b/video.h5\n"
          "  nptrack info out/run.h5\n"
          "  nptrack export out/run.h5 --video video --tracks tracks.txt\n");
}

/* A video's rows, columnar and growing (npt_archive_rows points into it). */
typedef struct rows_buf {
  int64_t n, cap;
  int64_t *frame, *track_id;
  float *x, *y, *w, *h, *score, *embed;
  int32_t *cls;
  int dim;
} rows_buf;

static void rows_free(rows_buf *r) {
  free(r->frame), free(r->track_id), free(r->x), free(r->y), free(r->w), free(r->h);
  free(r->score), free(r->embed), free(r->cls);
  *r = (rows_buf){.dim = r->dim};
}

/* Resizes *p to k elements of `size` bytes; on failure *p is kept.  Returns 0 or -1. */
static int grow(void *p, size_t size, int64_t k) {
  void *q = realloc(*(void **)p, size * (size_t)k);
  if (!q)
    return -1;
  *(void **)p = q;
  return 0;
}

static int rows_reserve(rows_buf *r, int64_t more) {
  if (r->n + more <= r->cap)
    return 0;
  int64_t c = r->cap ? r->cap : 1024;
  while (c < r->n + more)
    c *= 2;
  if (grow(&r->frame, sizeof *r->frame, c) || grow(&r->track_id, sizeof *r->track_id, c) ||
      grow(&r->x, sizeof *r->x, c) || grow(&r->y, sizeof *r->y, c) ||
      grow(&r->w, sizeof *r->w, c) || grow(&r->h, sizeof *r->h, c) ||
      grow(&r->score, sizeof *r->score, c) || grow(&r->cls, sizeof *r->cls, c) ||
      (r->dim && grow(&r->embed, sizeof *r->embed * (size_t)r->dim, c)))
    return npt_error_set(NPT_ENOMEM, "out of memory for %lld detections", (long long)c);
  r->cap = c;
  return 0;
}

/* Progress of one video on stderr: on a terminal one line rewritten at most every 0.5 s; else
 * (a Slurm log, a pipe) a plain line every NPTRACK_PROGRESS_S seconds (default 30; 0: every
 * batch).  Off with --quiet. */
typedef struct progress {
  int on, tty;
  double interval, t0, last;
  int64_t total, done;
  const char *video;
} progress;

static void progress_start(progress *p, int on, const char *video, int64_t total) {
  const char *env = getenv("NPTRACK_PROGRESS_S");
  char *end = NULL;
  double iv = env && *env ? strtod(env, &end) : 30.0;
  if (env && *env && (*end || !(iv >= 0)))
    iv = 30.0;
  *p = (progress){on, isatty(STDERR_FILENO), 0.0, npt_cli_now_s(), 0.0, total, 0, video};
  p->interval = p->tty ? 0.5 : iv;
  p->last = p->t0;
}

/* "1h02m", "12m05s" or "42s". */
static void fmt_duration(double s, char *out, size_t n) {
  long t = s < 0 ? 0 : (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(out, n, "%lds", t);
}

static void progress_step(progress *p, int64_t frames, int final) {
  p->done += frames;
  double now = npt_cli_now_s();
  if (!p->on || (!final && now - p->last < p->interval) || (final && !p->tty && p->done == 0))
    return;
  p->last = now;
  double rate = now > p->t0 ? (double)p->done / (now - p->t0) : 0.0;
  char eta[32] = "?";
  if (rate > 0)
    fmt_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
  if (final)
    fmt_duration(now - p->t0, eta, sizeof eta);
  /* On a terminal: back to the line's start, and clear what a longer line left after it. */
  fprintf(stderr, "%snptrack run: %s: %lld/%lld frames (%.0f%%), %.1f frames/s, %s %s%s%s",
          p->tty ? "\r" : "", p->video, (long long)p->done, (long long)p->total,
          p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0, rate,
          final ? "took" : "ETA", eta, p->tty ? "\033[K" : "", p->tty && !final ? "" : "\n");
  fflush(stderr);
}

/* The state of one video's frame loop, handed to the sink. */
typedef struct video_run {
  npt_tracker *tracker;
  rows_buf rows;
  npt_track_det *tdets;
  int64_t *ids;
  int64_t tcap;
  double track_s;
  const char *video;
  progress prog;
} video_run;

/* Ids that the tracker's last step gave detections of earlier frames (the first frames of
 * tracks it confirmed): those rows are already written, in frame order. */
static void backfill_ids(rows_buf *r, const npt_tracker *t) {
  const npt_track_backfill *bf;
  size_t n = npt_tracker_backfill(t, &bf);
  for (size_t k = 0; k < n; k++) {
    int64_t lo = 0, hi = r->n; /* the first row of frame bf[k].frame */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (r->frame[mid] < bf[k].frame)
        lo = mid + 1;
      else
        hi = mid;
    }
    int64_t row = lo + bf[k].index;
    if (row < r->n && r->frame[row] == bf[k].frame)
      r->track_id[row] = bf[k].id;
  }
}

/* The batch's detections, frame by frame, through the tracker into the rows. */
static int track_batch(void *ctx, int64_t first, int n, const npt_dets *d) {
  video_run *v = ctx;
  double t0 = npt_cli_now_s();
  if (d->n > v->tcap) {
    free(v->tdets), free(v->ids);
    v->tdets = malloc(sizeof *v->tdets * (size_t)d->n);
    v->ids = malloc(sizeof *v->ids * (size_t)d->n);
    v->tcap = v->tdets && v->ids ? d->n : 0;
    if (!v->tcap)
      return npt_error_set(NPT_ENOMEM, "out of memory");
  }
  NPT_TRY(rows_reserve(&v->rows, d->n));
  int64_t i = 0;
  for (int64_t f = first; f < first + n; f++) {
    int64_t b = i;
    while (i < d->n && d->det[i].frame == f)
      i++;
    for (int64_t k = b; k < i; k++) {
      const npt_detection *p = &d->det[k];
      v->tdets[k - b] = (npt_track_det){
          p->x, p->y, p->w, p->h, p->score, p->cls, d->embed ? d->embed + k * d->embed_dim : NULL};
    }
    NPT_TRY(npt_tracker_step(v->tracker, f, v->tdets, (size_t)(i - b), v->ids));
    rows_buf *r = &v->rows;
    backfill_ids(r, v->tracker);
    for (int64_t k = b; k < i; k++, r->n++) {
      const npt_detection *p = &d->det[k];
      /* A tracked detection gets its track's box (smoothed size, track.size_momentum). */
      float box[4] = {p->x, p->y, p->w, p->h};
      if (v->ids[k - b] >= 0)
        (void)npt_tracker_box(v->tracker, (size_t)(k - b), box);
      r->frame[r->n] = f, r->track_id[r->n] = v->ids[k - b];
      r->x[r->n] = box[0], r->y[r->n] = box[1], r->w[r->n] = box[2], r->h[r->n] = box[3];
      r->score[r->n] = p->score, r->cls[r->n] = p->cls;
      if (r->dim)
        memcpy(r->embed + r->n * r->dim, d->embed + k * d->embed_dim, sizeof(float) * r->dim);
    }
  }
  if (i != d->n)
    return npt_error_set(NPT_EINVAL, "%s: the engine's detections are not in frame order",
                         v->video);
  v->track_s += npt_cli_now_s() - t0;
  progress_step(&v->prog, n, 0);
  return 0;
}

/* Drops the rows that scored below `keep` (the detector's threshold) and are in no track: the
 * low-score detections decoded only for the tracker's second pass that no track took. */
static void drop_untracked_low(rows_buf *r, float keep) {
  int64_t m = 0;
  for (int64_t i = 0; i < r->n; i++) {
    if (r->score[i] < keep && r->track_id[i] < 0)
      continue;
    if (m != i) {
      r->frame[m] = r->frame[i], r->track_id[m] = r->track_id[i];
      r->x[m] = r->x[i], r->y[m] = r->y[i], r->w[m] = r->w[i], r->h[m] = r->h[i];
      r->score[m] = r->score[i], r->cls[m] = r->cls[i];
      if (r->dim)
        memcpy(r->embed + m * r->dim, r->embed + i * r->dim, sizeof(float) * (size_t)r->dim);
    }
    m++;
  }
  r->n = m;
}

/* The archive's name for `path`: its base name without extension (and without a dataset after
 * a colon), "_2", "_3", ... appended when an earlier video has the name. */
static void video_name(char **names, int i, const char *path, char *out, size_t n) {
  char base[256];
  const char *colon = strstr(path, ":/");
  size_t len = colon ? (size_t)(colon - path) : strlen(path);
  const char *s = path;
  for (size_t k = 0; k < len; k++)
    if (path[k] == '/')
      s = path + k + 1;
  len -= (size_t)(s - path);
  snprintf(base, sizeof base, "%.*s", (int)len, s);
  char *dot = strrchr(base, '.');
  if (dot && dot != base)
    *dot = '\0';
  if (!base[0])
    snprintf(base, sizeof base, "video");
  snprintf(out, n, "%s", base);
  for (int k = 2;; k++) {
    int taken = 0;
    for (int j = 0; j < i && !taken; j++)
      taken = !strcmp(names[j], out);
    if (!taken)
      return;
    snprintf(out, n, "%.240s_%d", base, k);
  }
}

typedef struct run_totals {
  int64_t frames, dets, tracks;
  int saturated, top_k;
  double detect_s, track_s, write_s;
} run_totals;

/* One video: frames → engine → tracker → rows → the archive's group. */
static int run_video(npt_cli_engine *ce, const npt_detect_options *o, const npt_track_settings *ts,
                     float keep, npt_archive *a, const char *path, const char *name, int quiet,
                     run_totals *tot) {
  npt_frames *fr = NULL;
  NPT_TRY(npt_frames_open_opts(&fr, path, &ce->fo));
  const npt_frames_info *in = npt_frames_get_info(fr);
  int64_t first = 0, end = 0;
  video_run v = {.rows = {.dim = ce->embed_dim}, .video = path};
  int rc = npt_cli_frame_range(o, path, in, &first, &end);
  if (rc == 0)
    rc = npt_tracker_create(ts, ce->embed_dim, &v.tracker);
  double t0 = npt_cli_now_s();
  progress_start(&v.prog, !quiet, path, end - first);
  if (rc == 0)
    rc = npt_cli_detect_frames(ce, fr, first, end, o->batch, track_batch, &v, &tot->saturated);
  if (rc == 0)
    progress_step(&v.prog, 0, 1);
  else if (v.prog.on && v.prog.tty && v.prog.done > 0)
    fputc('\n', stderr); /* the error goes on a line of its own */
  double t1 = npt_cli_now_s();
  tot->detect_s += t1 - t0 - v.track_s;
  tot->track_s += v.track_s;
  if (rc == 0) {
    int unknown = isnan(in->pixel_size_nm);
    npt_archive_video av = {name,
                            path,
                            in->n_frames,
                            in->height,
                            in->width,
                            in->frame_rate_hz,
                            in->pixel_size_nm,
                            unknown ? NPT_PIXEL_SOURCE_UNKNOWN : NPT_PIXEL_SOURCE_FILE};
    rows_buf *r = &v.rows;
    drop_untracked_low(r, keep);
    npt_archive_rows ar = {r->n,
                           r->frame,
                           r->track_id,
                           r->x,
                           r->y,
                           r->w,
                           r->h,
                           r->score,
                           r->cls,
                           r->dim,
                           r->dim ? r->embed : NULL};
    rc = npt_archive_add_video(a, &av, &ar);
    tot->write_s += npt_cli_now_s() - t1;
    tot->frames += end - first;
    tot->dets += r->n;
    tot->tracks += npt_tracker_num_ids(v.tracker);
  }
  npt_tracker_free(v.tracker);
  rows_free(&v.rows);
  free(v.tdets), free(v.ids);
  npt_frames_close(fr);
  return rc;
}

/* Checks every video opens before the (long) run starts, so a typo fails at once. */
static int check_videos(const npt_cli_engine *ce, char **videos, int n) {
  for (int i = 0; i < n; i++) {
    npt_frames *fr = NULL;
    NPT_TRY(npt_frames_open_opts(&fr, videos[i], &ce->fo));
    npt_frames_close(fr);
  }
  return 0;
}

static int run(const npt_config *cfg, const npt_detect_options *o, int force, int quiet,
               char **videos, int n_videos, const char *out, run_totals *tot) {
  npt_track_settings ts;
  npt_archive_options ao;
  NPT_TRY(npt_track_settings_get(cfg, &ts));
  NPT_TRY(npt_archive_options_get(cfg, &ao));
  ao.force = force;
  char sha[65];
  NPT_TRY(npt_sha256_file(o->model, sha));
  double t_start = npt_cli_now_s();
  npt_cli_engine ce;
  NPT_TRY(npt_cli_engine_open(&ce, o));
  tot->top_k = ce.dp.top_k;
  /* ByteTrack's second pass continues tracks with detections scoring from track.low_score up
   * to the detector's threshold: the network decodes down to track.low_score, and the rows
   * below its threshold are kept only where a track took them (drop_untracked_low). */
  const float keep = ce.dp.score_threshold;
  if (ts.low_score > 0 && ts.low_score < keep)
    ce.dp.score_threshold = (float)ts.low_score;
  npt_archive *a = NULL;
  char *text = NULL;
  char **names = calloc((size_t)n_videos, sizeof *names);
  int rc = names ? check_videos(&ce, videos, n_videos) : npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0)
    rc = npt_archive_open(&a, out, &ao);
  if (rc == 0 && !(text = npt_config_text(cfg)))
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0) {
    char classes[512];
    npt_cli_class_names(ce.g, classes, sizeof classes);
    npt_archive_timing tm[] = {{"detect", 0.0}, {"track", 0.0}, {"write", 0.0}, {"total", 0.0}};
    npt_archive_run r = {text, o->model, sha, o->backend, classes, ce.g->n_classes, tm, 4};
    rc = npt_archive_set_run(a, &r);
  }
  for (int i = 0; i < n_videos && rc == 0; i++) {
    char name[256];
    video_name(names, i, videos[i], name, sizeof name);
    if (!(names[i] = strdup(name)))
      rc = npt_error_set(NPT_ENOMEM, "out of memory");
    else
      rc = run_video(&ce, o, &ts, keep, a, videos[i], name, quiet, tot);
  }
  const struct {
    const char *name;
    double s;
  } t[] = {{"detect", tot->detect_s},
           {"track", tot->track_s},
           {"write", tot->write_s},
           {"total", npt_cli_now_s() - t_start}};
  for (size_t i = 0; i < sizeof t / sizeof t[0] && rc == 0; i++)
    rc = npt_archive_set_timing(a, t[i].name, t[i].s);
  if (rc == 0)
    rc = npt_archive_finish(a);
  else if (a)
    npt_archive_abort(a);
  for (int i = 0; names && i < n_videos; i++)
    free(names[i]);
  free(names);
  free(text);
  npt_cli_engine_close(&ce);
  return rc;
}

/* 1 when `a` and `b` name the same existing file. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int npt_cmd_run(int argc, char **argv) {
  static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                           {"set", required_argument, NULL, 's'},
                                           {"output", required_argument, NULL, 'o'},
                                           {"force", no_argument, NULL, 'f'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  npt_cli_cfgopts co = {0};
  const char *out = NULL;
  int quiet = 0, force = 0, opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":c:s:o:fqh", longopts, NULL)) != -1) {
    int st = npt_cli_cfgopt("run", opt, argv, &co, usage);
    if (st != NPT_CLI_OWN) {
      if (st >= 0)
        return st;
      continue;
    }
    if (opt == 'o')
      out = optarg;
    else if (opt == 'f')
      force = 1;
    else if (opt == 'q')
      quiet = 1;
  }
  int n_videos = argc - optind;
  char **videos = argv + optind;
  if (n_videos < 1 || !out || !*out) {
    npt_cli_cfgopts_free(&co);
    if (n_videos < 1)
      return npt_cli_usage_error("run", "no video (nptrack run -o ARCHIVE.h5 VIDEO...)");
    return npt_cli_usage_error("run", "no output file (-o ARCHIVE.h5)");
  }
  for (int i = 0; i < n_videos; i++)
    if (same_file(out, videos[i])) {
      npt_cli_cfgopts_free(&co);
      return npt_cli_usage_error("run", "the output %s is the video %s", out, videos[i]);
    }
  npt_config *cfg = NULL;
  int rc = npt_config_load(&cfg, co.path, co.overrides, co.n_overrides);
  npt_cli_cfgopts_free(&co);
  npt_detect_options o;
  if (rc == 0)
    rc = npt_detect_options_get(cfg, &o);
  if (rc == 0 && !quiet) {
    printf("nptrack run: model %s (%s)\n", o.model, npt_model_source_name(o.model_source));
    fflush(stdout);
  }
  run_totals tot = {0};
  if (rc == 0)
    rc = run(cfg, &o, force, quiet, videos, n_videos, out, &tot);
  npt_config_free(cfg);
  if (rc < 0)
    return npt_cli_fail("run", rc);
  if (tot.saturated > 0)
    fprintf(stderr,
            "nptrack run: warning: in %d frames more than top_k = %d peaks passed the score "
            "threshold; the best %d were kept (raise detect.top_k or detect.score_threshold)\n",
            tot.saturated, tot.top_k, tot.top_k);
  double busy = tot.detect_s + tot.track_s;
  if (!quiet)
    printf("nptrack run: wrote %s: %d videos, %lld frames, %lld detections, %lld tracks, %.1f "
           "frames/s\n",
           out, n_videos, (long long)tot.frames, (long long)tot.dets, (long long)tot.tracks,
           busy > 0 ? (double)tot.frames / busy : 0.0);
  return NPT_EXIT_OK;
}
