/* Decoding head outputs into detections: peak test on the class heatmaps, score threshold,
 * centre-distance suppression, top-K per frame, then offset, size and embedding gathered at each
 * peak (docs/decode.md).  Runs on the engine's side of the backend interface.  Deterministic:
 * ties are broken by the lower index. */
#ifndef NPT_DECODE_H
#define NPT_DECODE_H

#include "nn/backend.h"
#include "nn/detections.h"

typedef struct npt_decode_params {
  float score_threshold;
  int top_k;
  int peak_kernel;       /* odd */
  double suppress_ratio; /* >= 0; 0: no suppression (docs/decode.md, rule 3) */
  int refine;            /* 1: boxes fitted to the frame's pixels after decoding (nn/refine.h); 0: not */
} npt_decode_params;

/* Decodes frame `b` of `out` (heads of graph `g`), for a frame of frame_h x frame_w px (peaks in
 * the padding are dropped), appending to `dets` with frame index `frame`.  *saturated is set to
 * 1 when more than top_k peaks passed the threshold and suppression (the caller warns).  Returns
 * 0 or an error (NPT_EINVAL for bad parameters or shapes, NPT_ENOMEM). */
int npt_decode_frame(const npt_graph *g, const npt_head_outputs *out, int b, int frame_h,
                     int frame_w, int64_t frame, const npt_decode_params *p, npt_dets *dets,
                     int *saturated);

#endif
