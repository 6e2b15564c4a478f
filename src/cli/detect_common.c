#include "cli/detect_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/error.h"

int npt_cli_engine_open(npt_cli_engine *ce, const npt_detect_options *o) {
  *ce = (npt_cli_engine){.fo = {o->dataset, NPT_FRAMES_THW}};
  NPT_TRY(npt_frames_axes_parse(o->axis_order, &ce->fo.axes));
  npt_backend_params bp = {o->threads, o->device};
  NPT_TRY(npt_engine_open(&ce->e, o->model, o->backend, &bp));
  ce->g = npt_engine_graph(ce->e);
  npt_detect_decode_params(o, &ce->g->decode, &ce->dp);
  ce->embed_dim = ce->g->heads.embed >= 0 ? ce->g->heads.embed_dim : 0;
  npt_engine_describe(ce->e, ce->backend, sizeof ce->backend);
  return 0;
}

void npt_cli_engine_close(npt_cli_engine *ce) {
  npt_engine_close(ce->e);
  ce->e = NULL;
  ce->g = NULL;
}

int npt_cli_frame_range(const npt_detect_options *o, const char *video, const npt_frames_info *in,
                        int64_t *first, int64_t *end) {
  *first = o->first_frame - 1;
  *end = o->last_frame ? o->last_frame : in->n_frames;
  if (in->n_frames == 0)
    return npt_error_set(NPT_EFORMAT, "%s: the video has no frames", video);
  if (*first >= in->n_frames || *end > in->n_frames)
    return npt_error_set(NPT_ECONFIG,
                         "detect.first_frame = %lld, detect.last_frame = %lld: %s has frames 1 "
                         "to %lld",
                         (long long)o->first_frame, (long long)o->last_frame, video,
                         (long long)in->n_frames);
  return 0;
}

int npt_cli_detect_frames(npt_cli_engine *ce, npt_frames *fr, int64_t first, int64_t end, int batch,
                          npt_cli_dets_sink sink, void *ctx, int *saturated) {
  const npt_frames_info *in = npt_frames_get_info(fr);
  size_t fbytes = (size_t)in->height * (size_t)in->width * (size_t)(in->bit_depth / 8);
  void *frames = malloc(fbytes * (size_t)batch);
  if (!frames)
    return npt_error_set(NPT_ENOMEM, "out of memory for a batch of %d frames of %dx%d px", batch,
                         in->width, in->height);
  npt_dets d;
  npt_dets_init(&d, ce->embed_dim);
  int rc = 0;
  for (int64_t t = first; t < end && rc == 0; t += batch) {
    int n = end - t < batch ? (int)(end - t) : batch;
    int sat = 0;
    npt_dets_clear(&d);
    rc = npt_frames_read(fr, t, n, frames);
    if (rc == 0)
      rc = npt_engine_detect(ce->e, frames, in->bit_depth, n, in->height, in->width, t, &ce->dp, &d,
                             &sat);
    if (rc == 0)
      rc = sink(ctx, t, n, &d);
    *saturated += sat;
  }
  npt_dets_free(&d);
  free(frames);
  return rc;
}

void npt_cli_class_names(const npt_graph *g, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int c = 0; c < g->n_classes && used < n; c++)
    used += (size_t)snprintf(buf + used, n - used, "%s%d %s", c ? ", " : "", c + 1,
                             g->class_names ? g->class_names[c] : "");
}

double npt_cli_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
