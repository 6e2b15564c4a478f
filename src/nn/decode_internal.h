/* The parts of decoding (decode.c) that a GPU backend shares with the CPU decoder: it finds the
 * peaks and gathers the head values at them on the device, and the host finishes each frame with
 * these same functions, so that both give the same detections from the same heads.  Internal to
 * src/nn (and its tests). */
#ifndef NPT_DECODE_INTERNAL_H
#define NPT_DECODE_INTERNAL_H

#include <stdint.h>

#include "nn/decode.h"

/* A peak of the heatmap with the head values at its cell. */
typedef struct npt__dpeak {
  float score;
  int cls;              /* 0-based class channel */
  int64_t idx;          /* cell i * w_out + j */
  float ox, oy, sw, sh; /* offset (x, y) and size (w, h) heads at the cell, as the network gave */
  int64_t row;          /* the caller's (a GPU backend: where its embedding is) */
} npt__dpeak;

/* 0, or NPT_EINVAL naming the bad decoding parameter. */
int npt__decode_check_params(const npt_decode_params *p);

/* Rules 3a, 3 and top-K (docs/decode.md) on the n peaks of one frame, in any order: sorts them
 * (score descending, then class, then cell), drops those out of view and those suppressed, and
 * keeps at most top_k; *n becomes the number kept, p[0 .. *n) the kept peaks in order.
 * *saturated: 1 when more than top_k survived.  Returns 0 or NPT_ENOMEM. */
int npt__decode_select(npt__dpeak *p, int64_t *n, int s, int64_t w_out, int frame_h, int frame_w,
                       const npt_decode_params *dp, int *saturated);

/* Writes the detections of the n peaks (boxes, score, 1-based class, `frame`) at
 * dets->det[dets->n ..] without counting them in dets->n: the caller fills their embedding rows
 * (dets->embed + (dets->n + k) * embed_dim) and then adds n.  Returns 0 or NPT_ENOMEM. */
int npt__decode_emit(const npt__dpeak *p, int64_t n, int s, int64_t w_out, int64_t frame,
                     npt_dets *dets);

#endif
