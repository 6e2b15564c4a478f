/* nptrack detect: detections (boxes, scores, classes, embeddings) in every frame of a video, no
 * tracking.  Frames are independent: they stream through the engine in batches of detect.batch,
 * and the detections stream into the detections file, so memory does not grow with the video. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/detect_common.h"
#include "common/error.h"
#include "config/config.h"
#include "io/dets_file.h"
#include "io/frames.h"
#include "nn/detect_settings.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: nptrack detect [-c FILE] [-s detect.key=value]... -o DETS.h5 VIDEO\n\n"
          "Finds the particles in every frame of VIDEO with the network of detect.model and\n"
          "writes the detections (box, score, class, appearance embedding) to DETS.h5; no\n"
          "tracking.  VIDEO is an HDF5 file with the frames in detect.dataset ([T,H,W] uint8 or\n"
          "uint16; detect.axis_order=HWT for [H,W,T]), or FILE.h5:/path/to/dataset.\n\n"
          "detect.model is empty by default: the shipped model, the file named by\n"
          "$NPTRACK_MODEL or else the one installed with nptrack (`nptrack --version` names\n"
          "it; `nptrack detect` prints the model it uses).\n\n"
          "DETS.h5 holds /detections/{frame,x,y,w,h,score,class,track_id,embedding,\n"
          "frame_offsets} (docs/archive-format.md); `nptrack export DETS.h5 --detections\n"
          "DETS.txt` writes them as text.\n\n"
          "Options:\n"
          "  -c, --config FILE   configuration file (libconfig)\n"
          "  -s, --set K=V       override one setting, e.g. -s detect.batch=16 (repeatable);\n"
          "                      see config/default.cfg, section detect\n"
          "  -o, --output FILE   the detections file to write\n"
          "  -q, --quiet         print nothing on success\n"
          "  -h, --help          this help\n\n"
          "Example:\n"
          "  nptrack detect -o out/dets.h5 out/synth/video.h5\n"
          "  nptrack detect -s detect.model=my_model.h5 -o out/dets.h5 out/synth/video.h5\n");
}

typedef struct run_stats {
  int64_t first, end, rows;
  int saturated, top_k;
  double seconds;
  char backend[400];
} run_stats;

static int append_to_file(void *w, int64_t first, int n, const npt_dets *d) {
  (void)first;
  (void)n;
  return npt_dets_writer_append(w, d);
}

/* Everything after the configuration: video, engine, the frame loop, the file. */
static int detect(const npt_config *cfg, const npt_detect_options *o, const char *video,
                  const char *out_path, run_stats *st) {
  npt_cli_engine ce;
  NPT_TRY(npt_cli_engine_open(&ce, o, o->device));
  snprintf(st->backend, sizeof st->backend, "%s", ce.backend);
  npt_frames *fr = NULL;
  int rc = npt_frames_open_opts(&fr, video, &ce.fo);
  if (rc < 0) {
    npt_cli_engine_close(&ce);
    return rc;
  }
  const npt_frames_info *in = npt_frames_get_info(fr);
  rc = npt_cli_frame_range(o, video, in, &st->first, &st->end);
  const npt_graph *g = ce.g;
  npt_dets_writer *w = NULL;
  char *text = NULL;
  st->top_k = ce.dp.top_k;
  if (rc == 0) {
    text = npt_config_text(cfg);
    if (!text)
      rc = npt_error_set(NPT_ENOMEM, "out of memory");
  }
  if (rc == 0) {
    char names[512];
    npt_cli_class_names(g, names, sizeof names);
    char dataset[256];
    const char *colon = strrchr(video, ':');
    snprintf(dataset, sizeof dataset, "%s", colon && colon[1] == '/' ? colon + 1 : o->dataset);
    npt_dets_meta m = {.config_text = text,
                       .video_path = video,
                       .video_dataset = dataset,
                       .model_path = o->model,
                       .model_provenance = g->provenance,
                       .class_names = names,
                       .n_frames = in->n_frames,
                       .frame_begin = st->first,
                       .frame_end = st->end,
                       .embed_dim = ce.embed_dim,
                       .score_threshold = ce.dp.score_threshold,
                       .top_k = ce.dp.top_k,
                       .peak_kernel = ce.dp.peak_kernel,
                       .suppress_ratio = ce.dp.suppress_ratio,
                       .pixel_size_nm = in->pixel_size_nm,
                       .frame_rate_hz = in->frame_rate_hz};
    rc = npt_dets_writer_open(&w, out_path, &m);
  }
  free(text);
  double t0 = npt_cli_now_s();
  if (rc == 0)
    rc = npt_cli_detect_frames(&ce, fr, st->first, st->end, o->batch, append_to_file, w,
                               &st->saturated);
  st->seconds = npt_cli_now_s() - t0;
  st->rows = 0;
  if (rc == 0) {
    rc = npt_dets_writer_finish(w, &st->rows);
    w = NULL;
  }
  npt_dets_writer_abort(w);
  npt_cli_engine_close(&ce);
  npt_frames_close(fr);
  return rc;
}

/* 1 when `a` and `b` name the same existing file. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int npt_cmd_detect(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
      {"output", required_argument, NULL, 'o'}, {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  npt_cli_cfgopts co = {0};
  const char *out = NULL;
  int quiet = 0, opt, rc = 0;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":c:s:o:qh", longopts, NULL)) != -1) {
    int st = npt_cli_cfgopt("detect", opt, argv, &co, usage);
    if (st != NPT_CLI_OWN) {
      if (st >= 0)
        return st;
      continue;
    }
    switch (opt) {
    case 'o':
      out = optarg;
      break;
    case 'q':
      quiet = 1;
      break;
    }
  }
  const char *video = optind < argc ? argv[optind] : NULL;
  if (!video || optind + 1 < argc || !out || !*out) {
    npt_cli_cfgopts_free(&co);
    if (!video)
      return npt_cli_usage_error("detect", "no video (nptrack detect -o DETS.h5 VIDEO)");
    if (optind + 1 < argc)
      return npt_cli_usage_error("detect", "unexpected argument '%s'", argv[optind + 1]);
    return npt_cli_usage_error("detect", "no output file (-o DETS.h5)");
  }
  if (same_file(out, video)) {
    npt_cli_cfgopts_free(&co);
    return npt_cli_usage_error("detect", "the output %s is the video itself", out);
  }
  npt_config *cfg = NULL;
  rc = npt_config_load(&cfg, co.path, co.overrides, co.n_overrides);
  npt_cli_cfgopts_free(&co);
  npt_detect_options o;
  if (rc == 0)
    rc = npt_detect_options_get(cfg, &o);
  if (rc == 0 && o.replay_frames > 0)
    rc = npt_error_set(NPT_ECONFIG,
                       "detect.replay_frames = %lld: replayed videos are a benchmark input of "
                       "nptrack run only, whose archive records the replay (a detections file "
                       "would not); set it to 0",
                       (long long)o.replay_frames);
  /* Said before the run (which may be long), on stdout with the summary: stderr carries only
   * the one-line error or warnings. */
  if (rc == 0 && !quiet) {
    printf("nptrack detect: model %s (%s)\n", o.model, npt_model_source_name(o.model_source));
    fflush(stdout);
  }
  run_stats st = {0};
  if (rc == 0)
    rc = detect(cfg, &o, video, out, &st);
  npt_config_free(cfg);
  if (rc < 0)
    return npt_cli_fail("detect", rc);
  if (st.saturated > 0)
    fprintf(stderr,
            "nptrack detect: warning: in %d frames more than top_k = %d peaks passed the score "
            "threshold; the best %d were kept (raise detect.top_k or detect.score_threshold)\n",
            st.saturated, st.top_k, st.top_k);
  int64_t frames = st.end - st.first;
  if (!quiet)
    printf("nptrack detect: wrote %s: %lld detections in %lld frames (%lld to %lld), %.1f "
           "frames/s (backend %s)\n",
           out, (long long)st.rows, (long long)frames, (long long)st.first + 1, (long long)st.end,
           st.seconds > 0 ? (double)frames / st.seconds : 0.0, st.backend);
  return NPT_EXIT_OK;
}
