/* The detection engine: model file + backend + preprocessing + decoding.  Callers give frames
 * and get detections; which backend runs is a name in the config. */
#ifndef NPT_ENGINE_H
#define NPT_ENGINE_H

#include "nn/backend.h"
#include "nn/decode.h"

typedef struct npt_engine npt_engine;

/* Loads the model at `model_path` and prepares backend `backend` ("cpu"; later "cudnn").
 * Returns 0 or an error naming the model file or the backend. */
int npt_engine_open(npt_engine **out, const char *model_path, const char *backend,
                    const npt_backend_params *params);
void npt_engine_close(npt_engine *e);
const npt_graph *npt_engine_graph(const npt_engine *e);

/* Detects particles in n frames of h x w (uint8_t or uint16_t per bit_depth, contiguous),
 * numbered first_frame, first_frame + 1, ...; appends to `dets`.  Frames of any size are padded
 * to the network's multiple internally; plans are cached per (batch, size).  *saturated_frames
 * counts frames where top-K saturated.  Returns 0 or an error naming the frame. */
int npt_engine_detect(npt_engine *e, const void *frames, int bit_depth, int n, int h, int w,
                      int64_t first_frame, const npt_decode_params *p, npt_dets *dets,
                      int *saturated_frames);

#endif
