/* The detection engine: model file + backend + preprocessing + decoding.  Callers give frames
 * and get detections; which backend runs is a name in the config. */
#ifndef NPT_ENGINE_H
#define NPT_ENGINE_H

#include <stddef.h>

#include "nn/backend.h"
#include "nn/decode.h"

typedef struct npt_engine npt_engine;

/* Loads the model at `model_path` and prepares backend `backend`: "cpu", "cudnn" (in builds with
 * CUDA), or "auto" (cudnn when this build has it and it starts on params->device, else cpu;
 * npt_engine_describe says which and why).  Returns 0 or an error naming the model file or the
 * backend (no GPU, no driver, a device index out of range, ...). */
int npt_engine_open(npt_engine **out, const char *model_path, const char *backend,
                    const npt_backend_params *params);
void npt_engine_close(npt_engine *e);
const npt_graph *npt_engine_graph(const npt_engine *e);
/* The backend that runs ("cpu" or "cudnn"; auto resolved). */
const char *npt_engine_backend(const npt_engine *e);
/* One line for logs and archives: the backend, its device and libraries, and for `auto` why
 * the CPU was taken. */
void npt_engine_describe(const npt_engine *e, char *buf, size_t n);

/* Detects particles in n frames of h x w (uint8_t or uint16_t per bit_depth, contiguous),
 * numbered first_frame, first_frame + 1, ...; appends to `dets`.  Frames of any size are padded
 * to the network's multiple internally; plans are cached per (batch, size).  *saturated_frames
 * counts frames where top-K saturated.  Returns 0 or an error naming the frame. */
int npt_engine_detect(npt_engine *e, const void *frames, int bit_depth, int n, int h, int w,
                      int64_t first_frame, const npt_decode_params *p, npt_dets *dets,
                      int *saturated_frames);

#endif
