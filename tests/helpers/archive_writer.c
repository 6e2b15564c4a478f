/* Test helper (not installed, not a user command): writes an archive with the real writer from
 * made-up but valid rows, since no command produces one yet (tests/python/test_archive.py).
 *
 *   archive_writer OUT.h5 [--dump DIR] [--force] [--fail-at STAGE | --crash-at STAGE]
 *                  [-s section.key=value ...]
 *
 * Three videos: "alpha" (40 frames, pixel size and frame rate known, tracks with gaps, a few
 * detections in no track), "beta" (25 frames, nothing known, empty frames, one frame with 300
 * detections) and "gamma" (5 frames, no detections).  --dump writes each video's input rows to
 * DIR/NAME.csv (frame,track_id,x,y,w,h,score,class) and DIR/NAME.emb (float32, N x 8) so the
 * test compares the archive with what went in.  --fail-at makes the writer fail at a stage
 * (open, video, tables, attrs, rename); --crash-at ends the process there (exit status 3).
 * Exit status: 0 written, 1 the writer failed (message on stderr), 2 usage. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "config/config.h"
#include "io/archive.h"
#include "io/archive_internal.h"

enum { DIM = 8, MAX_ROWS = 4096 };

typedef struct rows_buf {
  int64_t n, frame[MAX_ROWS], track[MAX_ROWS];
  float x[MAX_ROWS], y[MAX_ROWS], w[MAX_ROWS], h[MAX_ROWS], score[MAX_ROWS];
  int32_t cls[MAX_ROWS];
  float emb[MAX_ROWS * DIM];
} rows_buf;

static uint64_t rng_state;

static double uniform(void) { /* splitmix64: a fixed, portable stream */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static void add_row(rows_buf *b, int64_t frame, int64_t track) {
  int64_t i = b->n++;
  b->frame[i] = frame;
  b->track[i] = track;
  b->x[i] = (float)(uniform() * 500 - 5);
  b->y[i] = (float)(uniform() * 400 - 5);
  b->w[i] = (float)(3 + uniform() * 40);
  b->h[i] = (float)(3 + uniform() * 40);
  b->score[i] = (float)uniform();
  b->cls[i] = 1 + (uniform() < 0.3);
  double norm = 0;
  for (int c = 0; c < DIM; c++) {
    b->emb[i * DIM + c] = (float)(uniform() * 2 - 1);
    norm += b->emb[i * DIM + c] * b->emb[i * DIM + c];
  }
  for (int c = 0; c < DIM; c++)
    b->emb[i * DIM + c] = (float)(b->emb[i * DIM + c] / sqrt(norm));
}

/* Rows of `n_tracks` tracks (ids 7, 10, 13, ... so ids are not row numbers) with gaps, plus
 * `n_loose` detections in no track, plus `burst` detections in frame `burst_frame`; in frame
 * order. */
static void make_rows(rows_buf *b, int64_t n_frames, int n_tracks, int n_loose, int burst,
                      int64_t burst_frame) {
  b->n = 0;
  for (int64_t f = 0; f < n_frames; f++) {
    for (int k = 0; k < n_tracks; k++) {
      int64_t first = (k * 7) % (n_frames / 2 + 1), last = first + 3 + (k * 5) % n_frames;
      int gap = (f - first) % 4 == 2 && k % 2 == 0; /* even tracks miss every fourth frame */
      if (f >= first && f <= last && !gap)
        add_row(b, f, 7 + 3 * k);
    }
    if (f % 5 == 1)
      for (int j = 0; j < n_loose; j++)
        add_row(b, f, -1);
    if (f == burst_frame)
      for (int j = 0; j < burst; j++)
        add_row(b, f, 1000 + j);
  }
}

static int dump(const char *dir, const char *name, const rows_buf *b) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.csv", dir, name);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  for (int64_t i = 0; i < b->n; i++)
    fprintf(f, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%d\n", (long long)b->frame[i],
            (long long)b->track[i], b->x[i], b->y[i], b->w[i], b->h[i], b->score[i], b->cls[i]);
  fclose(f);
  snprintf(path, sizeof path, "%s/%s.emb", dir, name);
  f = fopen(path, "wb");
  if (!f)
    return -1;
  fwrite(b->emb, sizeof(float), (size_t)(b->n * DIM), f);
  fclose(f);
  return 0;
}

static int write_archive(const char *out, const npt_config *cfg, int force, const char *dumpdir) {
  static rows_buf b;
  npt_archive_options opt;
  npt_archive_options_get(cfg, &opt);
  opt.force = force;
  char *cfg_text = npt_config_text(cfg);
  npt_archive *a = NULL;
  int rc = npt_archive_open(&a, out, &opt);
  if (rc < 0) {
    free(cfg_text);
    return rc;
  }
  npt_archive_timing tm[] = {{"total", 0.0}, {"detect", 10.25}, {"track", 1.5}};
  npt_archive_run run = {cfg_text,
                         "models/test.h5",
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                         "cpu",
                         "1 metal, 2 oxide_shell",
                         2,
                         tm,
                         3};
  rc = npt_archive_set_run(a, &run);
  free(cfg_text);
  const struct {
    npt_archive_video v;
    int tracks, loose, burst;
    int64_t burst_frame;
  } videos[] = {
      {{"alpha", "data/alpha.h5", 40, 480, 512, 10.0, 0.25, NPT_PIXEL_SOURCE_FILE, 0}, 9, 2, 0, -1},
      {{"beta", "data/beta.h5", 25, 256, 256, NAN, NAN, NPT_PIXEL_SOURCE_UNKNOWN, 0},
       3,
       0,
       300,
       17},
      {{"gamma", "data/gamma.h5", 5, 64, 64, 2.0, 1.5, NPT_PIXEL_SOURCE_CONFIG, 0}, 0, 0, 0, -1},
  };
  for (size_t i = 0; i < sizeof videos / sizeof videos[0] && rc == 0; i++) {
    rng_state = 12345 + i;
    make_rows(&b, videos[i].v.n_frames, videos[i].tracks, videos[i].loose, videos[i].burst,
              videos[i].burst_frame);
    if (dumpdir && dump(dumpdir, videos[i].v.name, &b) < 0)
      rc = npt_error_set(NPT_EIO, "%s: cannot dump", dumpdir);
    npt_archive_rows r = {b.n, b.frame, b.track, b.x, b.y, b.w, b.h, b.score, b.cls, DIM, b.emb};
    if (rc == 0)
      rc = npt_archive_add_video(a, &videos[i].v, &r);
  }
  if (rc < 0) {
    npt_archive_abort(a);
    return rc;
  }
  /* The total is known last: it replaces the provisional one. */
  if ((rc = npt_archive_set_timing(a, "total", 12.5)) < 0) {
    npt_archive_abort(a);
    return rc;
  }
  return npt_archive_finish(a);
}

int main(int argc, char **argv) {
  const char *out = NULL, *dumpdir = NULL;
  const char *sets[16];
  int n_sets = 0, force = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--force"))
      force = 1;
    else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
      dumpdir = argv[++i];
    else if (!strcmp(argv[i], "--fail-at") && i + 1 < argc)
      npt__archive_test_fail_at(argv[++i], 0);
    else if (!strcmp(argv[i], "--crash-at") && i + 1 < argc)
      npt__archive_test_fail_at(argv[++i], 1);
    else if (!strcmp(argv[i], "-s") && i + 1 < argc && n_sets < 16)
      sets[n_sets++] = argv[++i];
    else if (argv[i][0] != '-' && !out)
      out = argv[i];
    else {
      fprintf(stderr, "archive_writer: bad argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!out) {
    fprintf(stderr, "usage: archive_writer OUT.h5 [--dump DIR] [--force] [--fail-at STAGE]\n");
    return 2;
  }
  npt_config *cfg = NULL;
  int rc = npt_config_load(&cfg, NULL, sets, n_sets);
  if (rc == 0)
    rc = write_archive(out, cfg, force, dumpdir);
  npt_config_free(cfg);
  if (rc < 0) {
    fprintf(stderr, "archive_writer: error: %s\n", npt_error_msg(rc));
    return 1;
  }
  return 0;
}
