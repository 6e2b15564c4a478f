/* Frame preprocessing: integer frames to the network's normalised input.
 *
 * The model's contract (stored in its model file) says how grey levels map to network input:
 * y = (x / full_scale - mean) / std, with full_scale 255 for 8-bit and 65535 for 16-bit frames.
 * Frames of h x w are placed at the top-left of an hp x wp plane (the network's multiple).  The
 * padding holds 0, the normalised mean grey level: a neutral border, where grey level 0 would
 * look like a dark object to the detector. */
#ifndef NPT_PREPROCESS_H
#define NPT_PREPROCESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct npt_norm {
  int bit_depth; /* 8 or 16 */
  float mean;    /* in units of full scale */
  float std;     /* in units of full scale, > 0 */
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
