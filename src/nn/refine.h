/* Box refinement: each detection's box fitted to the frame's own pixels.
 *
 * The network's size head is right on average but carries a per-particle bias (about 10 % rms
 * in width on the tracking suite's videos, docs/performance.md) that no smoothing over frames
 * removes.  Refinement fits, around each detection, a model of one particle seen in bright or
 * dark field: a plane for the local background plus an elliptical particle whose depth profile
 * is (1 - rho^2)^p (p = 1/2 is a sphere seen through its thickness, p -> 0 a flat disc with a
 * sharp edge, as a crystal in diffraction contrast), with the centre, the two semi-axes, the
 * angle, the amplitude (either sign), the background plane and p free; pixels inside the
 * neighbouring detections' boxes are left out.  Levenberg-Marquardt with the analytic
 * Jacobian.  The fitted ellipse's bounding box replaces the detection's box when the fit is
 * plausible (docs/decode.md, "Box refinement"); otherwise the network's box stays.
 * Deterministic: the result depends on the frame and its detections only. */
#ifndef NPT_REFINE_H
#define NPT_REFINE_H

#include <stdint.h>

#include "nn/detections.h"

typedef struct npt_refine_params {
  float
      neighbour_score; /* detections scoring at least this mask their boxes from the others' fits */
  float min_size;      /* px: boxes whose longer side is smaller are left as they are */
  int classes;         /* bit mask of the classes refined (bit c-1 for class c) */
} npt_refine_params;

/* Counts of one call, for the log. */
typedef struct npt_refine_stats {
  int64_t tried, accepted;
} npt_refine_stats;

/* Refines det[0..n) in place, all detections of one frame of h x w pixels (8- or 16-bit,
 * row-major).  Returns 0, NPT_EINVAL for bad arguments or NPT_ENOMEM. */
int npt_refine_frame(const void *frame, int bit_depth, int h, int w, npt_detection *det, int64_t n,
                     const npt_refine_params *p, npt_refine_stats *stats);

#endif
