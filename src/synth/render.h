/* Image formation for synthetic in-situ TEM frames: bright-field thickness contrast of metal and
 * oxide particles on an amorphous support, Fresnel fringes, lattice fringes, illumination
 * gradient, detector blur, Poisson shot noise at a given dose and quantisation to 8 or 16 bits.
 *
 * The renderer knows nothing about particle dynamics: the scene (synth.c) gives it, per frame, the
 * particles as they are and the specimen drift; all randomness of a frame comes from
 * (seed, frame index), so any frame can be rendered alone and the result is deterministic. */
#ifndef NPT_SYNTH_RENDER_H
#define NPT_SYNTH_RENDER_H

#include <stdint.h>

#include "synth/shape.h"

/* Imaging conditions of one video (drawn once per video from the config's ranges). */
typedef struct npt_synth_optics {
  int width, height;       /* frame size, px */
  int bit_depth;           /* 8 or 16 */
  double dose;             /* electrons per pixel per frame through bare support (> 0) */
  double background_level; /* mean grey level of bare support, fraction of full scale (0..1) */
  int invert;              /* 1: contrast polarity inverted (particles bright) */
  double metal_mfp_px;     /* attenuation length of metal, px: I = I0 exp(-t / mfp) */
  double oxide_mfp_px;     /* attenuation length of oxide, px (larger: oxide is lighter) */
  double support_contrast; /* relative std of the amorphous support texture (0..0.5) */
  double support_grain_px; /* correlation length of the support texture, px */
  double fresnel_amp;      /* relative amplitude of the Fresnel fringe at outlines (0..0.5) */
  double fresnel_width_px; /* width of the fringe, px; its sign follows the defocus sign */
  double blur_sigma_px;    /* detector point-spread function, Gaussian sigma, px (0: none) */
  double gradient_amp;     /* relative illumination change across the field (0..0.5) */
  double gradient_angle;   /* direction of the gradient, rad */
} npt_synth_optics;

/* One particle as it looks in one frame.  Material inside `outer` is oxide, except the metal
 * core and the void: a fully metal particle has core_frac 1 and void_frac 0; an oxide shell
 * (Kirkendall) has core_frac 0 and void_frac > 0. */
typedef struct npt_synth_particle {
  npt_synth_body outer;   /* outline: also the ground-truth box (npt_synth_body_bbox) */
  double void_frac;       /* void = outer shape scaled by this about the centre (0..0.95) */
  double core_frac;       /* metal core = outer shape scaled by this ... */
  double core_dx, core_dy; /* ... and shifted by this from the centre, px */
  double lattice_period_px; /* lattice fringe period, px (0 or < 2: none, unresolved) */
  double lattice_angle;   /* direction of the fringe wave vector, rad */
  double lattice_phase;   /* rad */
  double lattice_amp;     /* relative amplitude inside the particle (0..0.5) */
} npt_synth_particle;

typedef struct npt_synth_renderer npt_synth_renderer;

/* Prepares a renderer: precomputes a periodic support texture from `seed`.  Returns 0,
 * NPT_EINVAL (message names the bad field) or NPT_ENOMEM. */
int npt_synth_renderer_init(npt_synth_renderer **out, const npt_synth_optics *optics,
                            uint64_t seed);
void npt_synth_renderer_free(npt_synth_renderer *r);

/* Renders frame number `frame` into `out` (uint8_t or uint16_t per optics.bit_depth, row-major
 * height x width).  The support and particles are seen shifted by the specimen drift
 * (drift_x, drift_y) px -- particle centres are already in image coordinates, the drift moves
 * only the support texture.  `blank` renders a beam-blanked frame (dark current and read noise
 * only).  Deterministic in (seed, frame, inputs).  Not thread-safe on one renderer. */
int npt_synth_render(npt_synth_renderer *r, const npt_synth_particle *particles, int n,
                     double drift_x, double drift_y, int blank, int64_t frame, void *out);

#endif
