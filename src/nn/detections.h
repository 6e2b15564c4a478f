/* Detections: what the detector gives per frame, before tracking. */
#ifndef NPT_DETECTIONS_H
#define NPT_DETECTIONS_H

#include <stdint.h>

typedef struct npt_detection {
  int64_t frame;    /* 0-based frame index in the video */
  float x, y, w, h; /* box: top-left corner and size, px, nptrack's convention (docs/formats.md) */
  float score;      /* heatmap peak value, 0..1 */
  int cls;          /* class, 1-based (1 metal, 2 oxide for the shipped model) */
} npt_detection;

/* A growable list of detections with their embeddings (row i of `embed` belongs to det[i];
 * L2-normalised; embed is NULL when embed_dim is 0). */
typedef struct npt_dets {
  int64_t n, cap;
  npt_detection *det;
  float *embed;
  int embed_dim;
} npt_dets;

void npt_dets_init(npt_dets *d, int embed_dim);
/* Makes room for `more` detections.  Returns 0 or NPT_ENOMEM. */
int npt_dets_reserve(npt_dets *d, int64_t more);
void npt_dets_clear(npt_dets *d); /* n = 0, keeps the memory */
void npt_dets_free(npt_dets *d);

#endif
