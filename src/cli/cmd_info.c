/* nptrack info: what a video file holds (frames, size, depth, pixel size, provenance), or an
 * archive's summary (videos, frames, detections, tracks, status, run provenance): the kind of
 * file is told by its root attribute `format`. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/error.h"
#include "io/archive.h"
#include "io/frames.h"
#include "io/h5util.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: nptrack info [--check] VIDEO\n"
          "       nptrack info ARCHIVE.h5\n\n"
          "Prints what a video holds: frames, frame size, bit depth, pixel size, frame rate and\n"
          "the configuration that made it (synthetic videos).  VIDEO is an HDF5 file with a\n"
          "[T, H, W] uint8/uint16 dataset /frames, or FILE.h5:/path/to/dataset.\n"
          "For an archive (docs/archive-format.md): its status (complete or not), the run's\n"
          "provenance and each video's frames, detections and tracks.\n\n"
          "Options:\n"
          "      --check     read every frame, and name the first one that cannot be read\n"
          "  -h, --help      this help\n\n"
          "Example:\n"
          "  nptrack info --check out/demo/synth/video.h5\n");
}

static int check_all(npt_frames *fr, const npt_frames_info *in, double *mean) {
  size_t fsize = (size_t)in->height * in->width;
  void *buf = malloc(fsize * (size_t)(in->bit_depth / 8));
  NPT_ALLOC_CHECK(buf);
  double sum = 0.0;
  for (int64_t t = 0; t < in->n_frames; t++) {
    int rc = npt_frames_read(fr, t, 1, buf);
    if (rc < 0) {
      free(buf);
      return rc;
    }
    for (size_t i = 0; i < fsize; i++)
      sum += in->bit_depth == 8 ? ((unsigned char *)buf)[i] : ((unsigned short *)buf)[i];
  }
  free(buf);
  *mean = in->n_frames ? sum / ((double)fsize * (double)in->n_frames) : 0.0;
  return 0;
}

static void print_nm(const npt_archive_video_info *v) {
  if (isnan(v->pixel_size_nm))
    printf("pixel size unknown");
  else
    printf("%g nm/px (%s)", v->pixel_size_nm, v->pixel_size_source ? v->pixel_size_source : "?");
}

/* The archive's summary.  An incomplete archive is summarised too, flagged as such. */
static int archive_info(const char *path) {
  npt_archive_file *f = NULL;
  NPT_TRY(npt_archive_file_open(&f, path));
  char *version = NULL, *commit = NULL, *model = NULL, *sha = NULL, *backend = NULL,
       *embeddings = NULL, *config = NULL, *timings = NULL, *plan = NULL, *ranks = NULL;
  int rc = 0;
  const char *names[] = {"nptrack_version", "git_commit", "model",      "model_sha256", "backend",
                         "embeddings",      "config",     "chunk_plan", "ranks"};
  char **vals[] = {&version, &commit, &model, &sha, &backend, &embeddings, &config, &plan, &ranks};
  for (int i = 0; i < 9 && rc == 0; i++)
    rc = npt_archive_file_root_attr(f, names[i], vals[i]);
  if (rc == 0)
    rc = npt_archive_file_timings(f, &timings);
  if (rc == 0) {
    int n = npt_archive_file_n_videos(f);
    int64_t frames = 0, dets = 0, tracks = 0, events = 0;
    int with_events = 0;
    for (int i = 0; i < n; i++) {
      const npt_archive_video_info *v = npt_archive_file_video_info(f, i);
      frames += v->n_frames;
      dets += v->n_detections;
      tracks += v->n_tracks;
      events += v->n_events > 0 ? v->n_events : 0;
      with_events += v->n_events >= 0;
    }
    printf("archive:     %s\n", path);
    if (npt_archive_file_is_complete(f))
      printf("status:      complete\n");
    else
      printf("status:      INCOMPLETE (status '%s'): the run that wrote it did not finish; "
             "its tables may be partial\n",
             npt_archive_file_status(f));
    printf("written by:  nptrack %s (commit %s), backend %s\n", version ? version : "?",
           commit ? commit : "?", backend && *backend ? backend : "?");
    printf("model:       %s", model && *model ? model : "?");
    if (sha && *sha)
      printf(" (sha256 %.16s...)", sha);
    printf("\n");
    if (timings && *timings)
      printf("timings:     %s\n", timings);
    if (plan && *plan) {
      int n_ranks = 0;
      for (const char *l = ranks; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
        n_ranks += !strncmp(l, "rank ", 5);
      printf("chunks:      %s; %d ranks (h5py: f.attrs['ranks'])\n", plan, n_ranks);
    }
    printf("embeddings:  %s\n", embeddings && *embeddings ? embeddings : "?");
    if (config)
      printf("config:      embedded (%zu bytes; h5py: f.attrs['config'])\n", strlen(config));
    printf("videos:      %d; %lld frames, %lld detections, %lld tracks", n, (long long)frames,
           (long long)dets, (long long)tracks);
    if (with_events)
      printf(", %lld lineage events", (long long)events);
    printf(" in all\n");
    for (int i = 0; i < n; i++) {
      const npt_archive_video_info *v = npt_archive_file_video_info(f, i);
      printf("  %-16s %lld frames of %lld x %lld px, %lld detections, %lld tracks, ", v->name,
             (long long)v->n_frames, (long long)v->width, (long long)v->height,
             (long long)v->n_detections, (long long)v->n_tracks);
      /* Archives written without lineage (the test writer) have no events table. */
      if (v->n_events >= 0)
        printf("%lld events (merges and splits), ", (long long)v->n_events);
      print_nm(v);
      if (!isnan(v->frame_rate_hz))
        printf(", %g Hz", v->frame_rate_hz);
      if (v->replay_source_frames > 0)
        printf("; REPLAYED benchmark input: %lld stored frames of %s, cyclically",
               (long long)v->replay_source_frames, v->source_path ? v->source_path : "?");
      printf("\n");
    }
  }
  free(version), free(commit), free(model), free(sha), free(backend), free(embeddings);
  free(config), free(timings), free(plan), free(ranks);
  npt_archive_file_close(f);
  return rc;
}

int npt_cmd_info(int argc, char **argv) {
  static const struct option longopts[] = {
      {"check", no_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  int check = 0, opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'C':
      check = 1;
      break;
    case 'h':
      usage(stdout);
      return NPT_EXIT_OK;
    default:
      return npt_cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind != argc - 1)
    return npt_cli_usage_error("info", "expected one VIDEO argument");
  const char *path = argv[optind];
  /* An archive?  Anything that is not one (or not a plain HDF5 path) goes on as a video. */
  char *format = NULL;
  if (npt_h5_file_format(path, &format) == 0 && format && !strcmp(format, NPT_ARCHIVE_FORMAT)) {
    free(format);
    if (check)
      return npt_cli_usage_error("info", "--check is for videos, not archives");
    int arc = archive_info(path);
    return arc < 0 ? npt_cli_fail("info", arc) : NPT_EXIT_OK;
  }
  free(format);
  npt_error_clear();
  npt_frames *fr = NULL;
  int rc = npt_frames_open(&fr, path);
  if (rc < 0)
    return npt_cli_fail("info", rc);
  const npt_frames_info *in = npt_frames_get_info(fr);
  printf("video:       %s\n", path);
  printf("frames:      %lld of %d x %d px, %d-bit\n", (long long)in->n_frames, in->width,
         in->height, in->bit_depth);
  if (isnan(in->pixel_size_nm))
    printf("pixel size:  unknown\n");
  else
    printf("pixel size:  %g nm (field of view %.4g x %.4g nm)\n", in->pixel_size_nm,
           in->pixel_size_nm * in->width, in->pixel_size_nm * in->height);
  if (isnan(in->frame_rate_hz))
    printf("frame rate:  unknown\n");
  else
    printf("frame rate:  %g Hz (%.4g s of video)\n", in->frame_rate_hz,
           (double)in->n_frames / in->frame_rate_hz);
  char *version = NULL, *config = NULL;
  if ((rc = npt_frames_root_attr(fr, "nptrack_version", &version)) == 0 &&
      (rc = npt_frames_root_attr(fr, "config", &config)) == 0) {
    if (version)
      printf("written by:  nptrack %s\n", version);
    if (config)
      printf("config:      embedded (%zu bytes; h5py: f.attrs['config'])\n", strlen(config));
  }
  free(version);
  free(config);
  if (rc == 0 && check) {
    double mean = 0.0;
    rc = check_all(fr, in, &mean);
    if (rc == 0)
      printf("check:       all %lld frames read, mean grey level %.2f\n", (long long)in->n_frames,
             mean);
  }
  npt_frames_close(fr);
  return rc < 0 ? npt_cli_fail("info", rc) : NPT_EXIT_OK;
}
