/* Frame preprocessing: integer frames to the network's normalised input.
 *
 * The model's contract (stored in its model file) says how grey levels map to network input,
 * in one of two modes:
 * - fixed: y = (x / full_scale - mean) / std, with full_scale 255 for 8-bit and 65535 for
 *   16-bit frames and (mean, std) from the model file;
 * - frame: each frame is standardised by its own statistics, for cameras that use a small and
 *   varying part of their range: y = (x - mu) / sigma, with mu the mean of the frame's h x w
 *   grey levels and sigma their population standard deviation, floored at 1 grey level so that
 *   blank frames stay finite.  The arithmetic is pinned down to the last bit, so that the CPU,
 *   the GPU and train/nptrack_ops.normalise agree exactly: with N = h w and the exact integer
 *   sums S1 = sum x and S2 = sum x^2 (hence at most 2^32 pixels a frame),
 *       mu    = double(S1) / double(N)
 *       var   = double(N S2 - S1^2) / (double(N) double(N))    (N S2 - S1^2 exact, >= 0)
 *       sigma = max(sqrt(var), 1)
 *       y     = float((double(x) - mu) / sigma)
 *   each operation rounded once, to nearest, in IEEE double.
 * Frames of h x w are placed at the top-left of an hp x wp plane (the network's multiple).  The
 * padding holds 0, the normalised mean grey level: a neutral border, where grey level 0 would
 * look like a dark object to the detector. */
#ifndef NPT_PREPROCESS_H
#define NPT_PREPROCESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  NPT_NORM_FIXED = 0, /* (x / full_scale - mean) / std */
  NPT_NORM_FRAME = 1, /* (x - frame mean) / max(frame std, 1) */
} npt_norm_mode;

typedef struct npt_norm {
  int bit_depth;      /* 8 or 16 */
  float mean;         /* in units of full scale (fixed mode; not used by frame mode) */
  float std;          /* in units of full scale, > 0 (fixed mode; not used by frame mode) */
  npt_norm_mode mode; /* 0 (zeroed memory): fixed */
} npt_norm;

/* CPU reference: n frames of h x w (uint8_t or uint16_t per norm.bit_depth, row-major,
 * contiguous) into n planes of hp x wp floats.  Returns 0 or NPT_EINVAL (message names the bad
 * argument). */
int npt_preprocess_cpu(const void *in, int n, int h, int w, int hp, int wp, const npt_norm *norm,
                       float *out);

#ifdef __cplusplus
}
#endif

#endif
