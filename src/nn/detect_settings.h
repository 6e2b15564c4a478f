/* Settings of `nptrack detect` (section `detect`): the model, the backend, which frames of which
 * dataset, and the decoding overrides.  The table is in detect_settings.c, listed in
 * src/config/schema.c; config/default.cfg documents every entry. */
#ifndef NPT_DETECT_SETTINGS_H
#define NPT_DETECT_SETTINGS_H

#include <stdint.h>

#include "config/config.h"
#include "nn/decode.h"
#include "nn/graph.h"
#include "nn/model_locate.h"

typedef struct npt_detect_options {
  char model[NPT_MODEL_PATH_MAX]; /* model file path, resolved (model_locate.h) */
  npt_model_source model_source;  /* where it came from */
  const char *backend;            /* "cpu", "cudnn" or "auto" */
  int device;                     /* GPU index (cudnn) */
  const char *dataset;            /* HDF5 dataset of the frames, "/frames" */
  const char *axis_order;         /* "THW" or "HWT" */
  int threads;                    /* >= 1 (0 in the config: one per online core, resolved here) */
  int batch;                      /* frames per forward pass, >= 1 */
  int64_t first_frame;            /* 1-based */
  int64_t last_frame;             /* 1-based, inclusive; 0: to the end of the video */
  int64_t replay_frames;          /* > 0: a benchmark's replayed video (io/frames.h); 0: off */
  float score_threshold;          /* < 0: the model's default */
  int top_k;                      /* < 0: the model's default */
  int peak_kernel;                /* < 0: the model's default */
  double suppress_ratio;          /* < 0: the model's default */
  int refine;                     /* detect.refine: 1 fit, 0 none */
} npt_detect_options;

/* Reads the `detect` section of `cfg` (pointers stay owned by cfg) and checks what the schema's
 * bounds cannot: top_k is not 0, peak_kernel is odd, last_frame is not before first_frame.
 * Then resolves detect.model (empty: the shipped model) with npt_model_locate, after every
 * other check.  Returns 0, NPT_ECONFIG with a message naming the setting, or an error of
 * npt_model_locate (no model found, NPTRACK_MODEL naming no file). */
int npt_detect_options_get(const npt_config *cfg, npt_detect_options *out);

/* The decoding parameters: the settings where given, the model's defaults where they are < 0. */
void npt_detect_decode_params(const npt_detect_options *s, const npt_decode_defaults *model,
                              npt_decode_params *out);

#endif
