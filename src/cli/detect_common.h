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

/* Where the batched frame loop spent its time, in seconds, summed over batches (added to, never
 * reset): each stage's work and its waits on the stage before or after it.  With ce->prefetch
 * the reader, with ce->async_sink the sink run in threads of their own, so their times overlap
 * the engine's. */
typedef struct npt_cli_stage_times {
  double read_s, read_wait_s; /* reading frames; waiting for a free frame buffer */
  double infer_s;             /* the engine (preprocessing, network, decoding) */
  double infer_wait_frames_s; /* the engine waiting for the reader */
  double infer_wait_sink_s;   /* the engine waiting for a free detections slot */
  double sink_s, sink_wait_s; /* the sink (the run's tracker); waiting for the engine */
} npt_cli_stage_times;

typedef struct npt_cli_engine {
  npt_engine *e;
  const npt_graph *g;         /* owned by e */
  npt_decode_params dp;       /* the settings, else the model's defaults */
  npt_frames_opts fo;         /* detect.dataset, detect.axis_order, detect.replay_frames */
  int embed_dim;              /* 0: the model has no embedding head */
  npt_sha256 *frame_hash;     /* when set, npt_cli_detect_frames feeds it every frame it reads */
  int prefetch;               /* read the next batch in a thread of its own (see below) */
  int async_sink;             /* with prefetch: run the sink in a thread of its own (see below) */
  npt_cli_stage_times *times; /* when set, npt_cli_detect_frames adds its stage times there */
  char backend[400];          /* what runs (npt_engine_describe), for the log and the archive */
} npt_cli_engine;

/* Opens the model and backend of `o` on GPU `device` (GPU backends; ignored by the CPU one).
 * The model file is read whole and closed here, so its errors come before any frame is read.
 * Returns 0 or an error; on error nothing is held. */
int npt_cli_engine_open(npt_cli_engine *ce, const npt_detect_options *o, int device);
void npt_cli_engine_close(npt_cli_engine *ce);

/* The 0-based frames [*first, *end) that detect.first_frame/last_frame select in a video of
 * in->n_frames (replayed, when detect.replay_frames is set).  Returns 0, NPT_EFORMAT (no frames)
 * or NPT_ECONFIG (a range outside the video, a replay shorter than the stored video), naming
 * `video`. */
int npt_cli_frame_range(const npt_detect_options *o, const char *video, const npt_frames_info *in,
                        int64_t *first, int64_t *end);

/* Receives the detections of frames first .. first + n - 1 (rows in frame order). */
typedef int (*npt_cli_dets_sink)(void *ctx, int64_t first, int n, const npt_dets *d);

/* Runs frames [first, end) of `fr` through the engine, `batch` frames per pass, handing each
 * batch's detections to `sink` (which must not keep `d`).  With ce->prefetch a reader thread
 * reads the next batch while this one runs through the engine; `fr` is then read by that thread
 * only, and the sink must not call HDF5 (HDF5 is not built thread-safe).  With ce->async_sink as
 * well, the sink runs in a third thread, fed the batches' detections in order through two slots,
 * so it works on batch k while the engine runs batch k + 1 (the sink must then keep to state of
 * its own; it sees the same batches in the same order as without).  *saturated counts the frames
 * where top-K saturated.  Returns 0, or the first error of the reader, the engine or the sink
 * (the sink's when it failed, as it did on an earlier batch), with its message. */
int npt_cli_detect_frames(npt_cli_engine *ce, npt_frames *fr, int64_t first, int64_t end, int batch,
                          npt_cli_dets_sink sink, void *ctx, int *saturated);

/* "1 metal, 2 oxide" from the model's class names. */
void npt_cli_class_names(const npt_graph *g, char *buf, size_t n);

/* Monotonic clock, seconds. */
double npt_cli_now_s(void);

#endif
