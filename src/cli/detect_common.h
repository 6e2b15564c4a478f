/* What `nptrack detect` and `nptrack run` share: the engine opened from the `detect` settings,
 * the frame range, and the loop that streams a video's frames through the engine in batches. */
#ifndef NPT_CLI_DETECT_COMMON_H
#define NPT_CLI_DETECT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"
#include "io/frames.h"
#include "nn/detect_settings.h"
#include "nn/detections.h"
#include "nn/engine.h"

typedef struct npt_cli_engine {
  npt_engine *e;
  const npt_graph *g;     /* owned by e */
  npt_decode_params dp;   /* the settings, else the model's defaults */
  npt_frames_opts fo;     /* detect.dataset, detect.axis_order */
  int embed_dim;          /* 0: the model has no embedding head */
  npt_sha256 *frame_hash; /* when set, npt_cli_detect_frames feeds it every frame it reads */
  int prefetch;           /* read the next batch in a thread of its own (see below) */
  char backend[400];      /* what runs (npt_engine_describe), for the log and the archive */
} npt_cli_engine;

/* Opens the model and backend of `o` on GPU `device` (GPU backends; ignored by the CPU one).
 * The model file is read whole and closed here, so its errors come before any frame is read.
 * Returns 0 or an error; on error nothing is held. */
int npt_cli_engine_open(npt_cli_engine *ce, const npt_detect_options *o, int device);
void npt_cli_engine_close(npt_cli_engine *ce);

/* The 0-based frames [*first, *end) that detect.first_frame/last_frame select in a video of
 * in->n_frames.  Returns 0, NPT_EFORMAT (no frames) or NPT_ECONFIG, naming `video`. */
int npt_cli_frame_range(const npt_detect_options *o, const char *video, const npt_frames_info *in,
                        int64_t *first, int64_t *end);

/* Receives the detections of frames first .. first + n - 1 (rows in frame order). */
typedef int (*npt_cli_dets_sink)(void *ctx, int64_t first, int n, const npt_dets *d);

/* Runs frames [first, end) of `fr` through the engine, `batch` frames per pass, handing each
 * batch's detections to `sink` (which must not keep `d`).  With ce->prefetch a reader thread
 * reads the next batch while this one runs through the engine and the sink; `fr` is then read
 * by that thread only, and the sink must not call HDF5 (HDF5 is not built thread-safe).  *saturated
 * counts the frames where top-K saturated.  Returns 0, or the first error of the reader, the engine
 * or the sink. */
int npt_cli_detect_frames(npt_cli_engine *ce, npt_frames *fr, int64_t first, int64_t end, int batch,
                          npt_cli_dets_sink sink, void *ctx, int *saturated);

/* "1 metal, 2 oxide" from the model's class names. */
void npt_cli_class_names(const npt_graph *g, char *buf, size_t n);

/* Monotonic clock, seconds. */
double npt_cli_now_s(void);

#endif
