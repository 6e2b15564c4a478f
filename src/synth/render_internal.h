/* Parts of the synthetic-frame renderer shared by render.c, render_particles.c, texture.c and
 * noise.c; not a public interface (see render.h for that).
 *
 * Row buffers: every float row the renderer works on has room for its length rounded up to a
 * multiple of NPT__ROW_ALIGN plus NPT__ROW_ALIGN more, so inner loops can run a trip count that is
 * a multiple of the vector width.  GCC at -O2 vectorises only loops whose vector code replaces the
 * scalar code entirely (no epilogue), and only loops without calls, table look-ups or branches
 * that compute values: that is why the hot loops below use rounded-up counts, min/max instead of
 * if/else, and the inline arithmetic helpers of this header instead of sqrtf/expf (which set errno
 * and so are never vectorised without -fno-math-errno). */
#ifndef NPT_SYNTH_RENDER_INTERNAL_H
#define NPT_SYNTH_RENDER_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/rng.h"
#include "synth/render.h"

enum { NPT__ROW_ALIGN = 8 };

/* NPT__KERNEL marks a function holding a hot loop.  It is never inlined: GCC honours restrict
 * reliably only on the parameters of the function that runs the loop (a copy inlined into a
 * caller loses that, and with it the vectorisation).  On x86-64 Linux the function is also
 * compiled for AVX2 + FMA (x86-64-v3) and chosen at load time (GCC's and Clang's function
 * multi-versioning, through glibc's ifunc); elsewhere it stays portable. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define NPT__KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef NPT__KERNEL
#define NPT__KERNEL __attribute__((noinline))
#endif

/* n rounded up to a multiple of NPT__ROW_ALIGN. */
static inline int npt__row_round(int n) {
  return (n + NPT__ROW_ALIGN - 1) & ~(NPT__ROW_ALIGN - 1);
}

/* max(a, b) and min(a, b) without a branch.  GCC (without -ffinite-math-only) keeps a float
 * `a > b ? a : b` as a branch, folds what follows into the constant arm of a clamp, and then
 * refuses to vectorise the loop; fabsf is a plain bit operation.  Exact when b is 0, within an
 * ulp of max(|a|, |b|) otherwise. */
static inline float npt__maxf(float a, float b) {
  return 0.5f * (a + b + fabsf(a - b));
}
static inline float npt__minf(float a, float b) {
  return 0.5f * (a + b - fabsf(a - b));
}

/* max(v, c) and min(v, c) for c >= 0 (any v), exact: for such pairs the order of the floats is
 * the order of their bit patterns read as signed integers (negative floats read as negative
 * integers), and an integer max/min is one vector instruction (SSE4.1/AVX2) or four (SSE2). */
static inline float npt__max_pos(float v, float c) {
  int32_t i, j;
  memcpy(&i, &v, sizeof i);
  memcpy(&j, &c, sizeof j);
  i = i > j ? i : j;
  memcpy(&v, &i, sizeof v);
  return v;
}
static inline float npt__min_pos(float v, float c) {
  int32_t i, j;
  memcpy(&i, &v, sizeof i);
  memcpy(&j, &c, sizeof j);
  i = i < j ? i : j;
  memcpy(&v, &i, sizeof v);
  return v;
}

/* 1/sqrt(x) for x > 0 (x = 0 gives a large finite value): bit-level first guess and two Newton
 * steps, relative error < 5e-6. */
static inline float npt__rsqrt(float x) {
  int32_t i;
  float y;
  memcpy(&i, &x, sizeof i);
  i = 0x5f375a86 - (i >> 1);
  memcpy(&y, &i, sizeof y);
  y = y * (1.5f - 0.5f * x * y * y);
  y = y * (1.5f - 0.5f * x * y * y);
  return y;
}

/* 1/sqrt(x) with one Newton step: relative error < 1.8e-3, for the less demanding uses. */
static inline float npt__rsqrt_fast(float x) {
  int32_t i;
  float y;
  memcpy(&i, &x, sizeof i);
  i = 0x5f375a86 - (i >> 1);
  memcpy(&y, &i, sizeof y);
  return y * (1.5f - 0.5f * x * y * y);
}

/* 2^x for x <= 0 (values below -126 give 2^-126): x = n + f with n = round(x), 2^f by its
 * Taylor polynomial on |f| <= 1/2, 2^n from the exponent bits.  Relative error < 3e-7. */
static inline float npt__exp2_neg(float x) {
  x = -npt__min_pos(-x, 126.0f);
  int32_t n = -(int32_t)(0.5f - x); /* round(x): 0.5 - x > 0 */
  float f = x - (float)n;
  float p = 1.0f +
            f * (0.69314718f +
                 f * (0.24022651f +
                      f * (0.05550411f + f * (0.00961813f + f * (0.00133336f + f * 0.00015404f)))));
  int32_t bits = (n + 127) << 23;
  float s;
  memcpy(&s, &bits, sizeof s);
  return p * s;
}

/* cos(2 pi x) for |x| < 8192 cycles: reduction to f = x - round(x) in [-1/2, 1/2], then
 * cos(2 pi f) = sin(2 pi (1/4 - |f|)) by its odd Taylor polynomial on [-pi/2, pi/2]; absolute
 * error < 3e-7 (plus the float rounding of x itself). */
static inline float npt__cos_cycles(float x) {
  float n = (float)(int32_t)(x + 8192.5f) - 8192.0f;
  float f = fabsf(x - n);
  float z = 6.28318531f * (0.25f - f), z2 = z * z;
  return z *
         (1.0f + z2 * (-1.6666667e-1f +
                       z2 * (8.3333333e-3f +
                             z2 * (-1.9841270e-4f + z2 * (2.7557319e-6f - z2 * 2.5052108e-8f)))));
}

/* ---- Periodic support texture (texture.c) ---------------------------------------------------- */

typedef struct npt__synth_texture {
  int nx, ny;  /* tile size, powers of two; 0 when the support is uniform */
  int stride;  /* floats per tile row: nx + NPT__TEX_PAD */
  float *tile; /* ny rows; columns nx.. repeat columns 0.. so rows can be read past their end */
} npt__synth_texture;

enum { NPT__TEX_PAD = 2 * NPT__ROW_ALIGN };

/* Builds a tile of at least width x height of log-normal amorphous-support texture: mean 1,
 * relative standard deviation `contrast`, fine grain whose autocorrelation falls to 1/e at
 * `grain_px`, plus a weaker component four times coarser.  contrast 0 gives a uniform support
 * and no tile.  Returns 0 or NPT_ENOMEM; on error `tex` holds nothing to free. */
int npt__synth_texture_init(npt__synth_texture *tex, int width, int height, double contrast,
                            double grain_px, uint64_t seed);
void npt__synth_texture_free(npt__synth_texture *tex);

/* Writes out[j] = scale * texture(j - shift_x, y - shift_y) for j in [0, n): bilinear sampling of
 * the tile with wrap-around.  `out` must have room for npt__row_round(n) + NPT__ROW_ALIGN
 * floats. */
void npt__synth_texture_row(const npt__synth_texture *tex, float *out, int n, int y, double shift_x,
                            double shift_y, float scale);

/* ---- Shot and read noise (noise.c) ----------------------------------------------------------- */

enum { NPT__NORMAL_BITS = 12, NPT__POISSON_EXACT_BELOW = 16 };

typedef struct npt__synth_noise {
  float *normal;        /* 2^NPT__NORMAL_BITS inverse-normal-CDF values, unit variance */
  uint16_t *alias_prob; /* Poisson alias tables, one per mean on a grid of 1/64 in [0, 16] */
  uint8_t *alias_other;
} npt__synth_noise;

/* Fills the tables.  Returns 0 or NPT_ENOMEM; on error `nz` holds nothing to free. */
int npt__synth_noise_init(npt__synth_noise *nz);
void npt__synth_noise_free(npt__synth_noise *nz);

/* z[j] for j < npt__row_round(n): standard normal deviates from the table (5 per 64-bit draw). */
void npt__synth_noise_normal_row(const npt__synth_noise *nz, npt_rng *rng, float *z, int n);

/* counts[j] = a Poisson deviate of mean lam[j] (>= 0) for j < n, as a float holding an integer.
 * `counts` needs room for npt__row_round(n) floats; lam and counts must not overlap. */
void npt__synth_noise_poisson_row(const npt__synth_noise *nz, npt_rng *rng, const float *lam,
                                  float *counts, int n);

/* ---- Particles (render_particles.c) --------------------------------------------------------- */

/* Where the renderer's particle shading keeps its settings and scratch. */
typedef struct npt__synth_span {
  int row, col, n; /* a row span of a packed run: frame row, first column, length */
} npt__synth_span;

typedef struct npt__synth_run {
  float *x, *y, *t;       /* pixels' offsets from the particle's centre, their transmission */
  npt__synth_span *spans; /* where the pixels are in the frame */
  int used, nspans;
} npt__synth_run;

typedef struct npt__synth_shader {
  float mu_metal, mu_oxide;    /* 1 / attenuation length, 1/px */
  float fringe_amp;            /* Fresnel fringe: signed amplitude (> 0: bright first fringe) */
  float fringe_inv_w;          /* 1 / fringe width, 1/px (1 when there is no fringe) */
  float margin;                /* how far beyond the outline a particle changes pixels, px */
  int cap;                     /* pixels per packed run */
  npt__synth_run body, fringe; /* packed runs of pixels that may be covered, and the others */
  float *geo[8];               /* outline geometry of a run: of the body and of a shifted core */
  float *xl, *xr, *bl, *br;    /* row spans of one particle: all it reaches, its body part */
  int bands, *band_start;      /* particles sorted by band of rows: band starts, */
  int *order, order_cap;       /* and the order */
} npt__synth_shader;

/* Settings from the optics (already checked) and scratch for frames of its width.  Returns 0 or
 * NPT_ENOMEM; on error `sh` holds nothing to free. */
int npt__synth_shader_init(npt__synth_shader *sh, const npt_synth_optics *optics);
void npt__synth_shader_free(npt__synth_shader *sh);

/* Checks the particles' fields: 0, or NPT_EINVAL with a message naming the particle and field. */
int npt__synth_particles_check(const npt_synth_particle *particles, int n, int64_t frame);

/* Multiplies the frame `img` (height rows of `stride` floats, stride >= npt__row_round(width) +
 * NPT__ROW_ALIGN) by the transmission of each (checked) particle.  Returns 0 or NPT_ENOMEM. */
int npt__synth_particles_shade(npt__synth_shader *sh, const npt_synth_particle *particles, int n,
                               float *img, int width, int height, int stride);

#endif
