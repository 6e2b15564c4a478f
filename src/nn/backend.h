/* Backends run a graph (graph.h) on some hardware.  One small vtable: the engine (engine.h)
 * talks only to this, so it never knows which backend runs. */
#ifndef NPT_BACKEND_H
#define NPT_BACKEND_H

#include <stddef.h>

#include "nn/graph.h"

struct npt_decode_params;
struct npt_dets;

typedef struct npt_backend_params {
  int threads; /* CPU worker threads (>= 1); results must not depend on it */
  int device;  /* GPU ordinal, for GPU backends */
  /* Frames per call the caller will pass (detect.batch), 0 when unknown.  The engine then plans
   * a backend with `detect` for that many frames (at most max_batch) and runs a shorter call,
   * the end of a video, through the same plan instead of planning again for fewer frames. */
  int batch;
} npt_backend_params;

/* Head outputs of one run: pointers into backend-owned host memory, valid until the next run or
 * plan_free.  Each is [batch][channels][h_out][w_out], h_out = padded h / output_stride. */
typedef struct npt_head_outputs {
  const float *heatmap, *size, *offset, *embed; /* embed NULL when the model has none */
  int batch, h_out, w_out;
} npt_head_outputs;

typedef struct npt_backend_i {
  const char *name;
  int (*init)(void **ctx, const npt_backend_params *params);
  void (*free)(void *ctx);
  /* 1 when the backend can run this node, else 0. */
  int (*supports)(void *ctx, const npt_graph *g, const npt_node *node);
  /* Prepares to run `g` on batches of `batch` frames of h x w (multiples of g->multiple):
   * allocates buffers, picks algorithms.  *plan is the backend's. */
  int (*plan)(void *ctx, const npt_graph *g, int batch, int h, int w, void **plan);
  /* Runs the planned graph on `input` ([batch][1][h][w] normalised floats, host memory) and
   * points `out` at the head tensors. */
  int (*run)(void *ctx, void *plan, const float *input, npt_head_outputs *out);
  void (*plan_free)(void *ctx, void *plan);
  /* Optional (NULL: the engine preprocesses on the host, calls run and decodes on the host).
   * Frames to detections on the backend's device: n >= 1 frames of h x w (uint8_t or uint16_t
   * per norm->bit_depth, contiguous, host memory) numbered first_frame, ...; the plan was made
   * for batches of at most max_batch frames of the padded size, and the backend runs the frames
   * through it a batch at a time (a last batch of fewer frames than the plan's runs the whole
   * planned batch, the frames past n being whatever the buffers held, and decodes only its
   * own).  Appends to dets what npt_decode_frame would give on the backend's heads; *saturated
   * counts frames where top-K saturated. */
  int (*detect)(void *ctx, void *plan, const void *frames, const npt_norm *norm, int n, int h,
                int w, int64_t first_frame, const struct npt_decode_params *p,
                struct npt_dets *dets, int *saturated);
  int max_batch; /* frames per plan when detect is set */
  /* Optional: one line saying what runs (device, library versions), for logs and archives. */
  void (*describe)(void *ctx, char *buf, size_t n);
} npt_backend_i;

/* The CPU backend (fp32, the numerical reference). */
extern const npt_backend_i npt_backend_cpu;

/* A backend by name ("cpu", "cudnn"); NULL when this build has none of that name. */
const npt_backend_i *npt_backend_find(const char *name);

#endif
