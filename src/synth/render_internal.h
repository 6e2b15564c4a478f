/* Parts of the synthetic-frame renderer shared by render.c, render_particles.c, render_shade.c,
 * render_reference.c, texture.c and noise.c; not a public interface (see render.h for that).
 *
 * Row buffers: every float row the renderer works on has room for its length rounded up to a
 * multiple of NPT__ROW_ALIGN plus NPT__ROW_ALIGN more, so inner loops can run a trip count that is
 * a multiple of the vector width.  GCC at -O2 vectorises only loops whose vector code replaces the
 * scalar code entirely (no epilogue), and only loops without calls, table look-ups or branches
 * that compute values: that is why the hot loops below use rounded-up counts, min/max instead of
 * if/else, and the inline arithmetic helpers of this header instead of expf.  sqrtf and division
 * are vectorised (the build passes -fno-math-errno), and are cheaper than the helpers where the
 * multiply-add pipes are the bottleneck: they run on the divider beside them. */
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

/* ---- Particles (render_particles.c: footprints, render_shade.c: pixels) --------------------- */

enum { NPT__SHADE_SOLID, NPT__SHADE_LAYERED, NPT__SHADE_SHIFTED };

/* One particle prepared for the pixel loops.  The outline's formulas are evaluated in the image
 * frame, from the pixel's offset (dx, dy) from the centre: the ellipse's rotation is folded into
 * two quadratic forms and the harmonics' phases. */
typedef struct npt__synth_prep {
  float cx, cy;     /* centre */
  float qa, qb, qc; /* u^2/a^2 + v^2/b^2 = qa dx^2 + qb dx dy + qc dy^2 (u, v: body frame) */
  float pa, pb, pc; /* u v (1/a^2 - 1/b^2), likewise */
  float h3c, h3s, h4c, h4s;  /* h_k cos, sin of (p_k - k angle) */
  float d3c, d3s, d4c, d4s;  /* -k times those: for the derivative */
  float two_c;               /* thickness at the centre: 2 x mean radius */
  float vf, ivf, cf, icf;    /* void and core scales (0: none) and their inverses (0 for none) */
  float kdx, kdy;            /* core offset from the centre */
  float mu_core, mu_shell;   /* 1/mfp of the core and of the rest (solid bodies: the body) */
  float lkx, lky, lph, lamp; /* lattice: wave vector in cycles/px, phase in cycles, amplitude */
  int kind, lattice;
  /* Footprint: chords of the ellipse that holds the outline (rotated, semi-axes m a, m b with
   * m = 1 + |h3| + |h4|), x = (-(bq dy) -+ sqrt((bq dy)^2 - aq (gq dy^2 - 1))) / aq; ey: its half
   * height; dy_right: the row offset of its rightmost point.  reach: how far beyond that ellipse
   * a pixel may change, body: how far it may be covered (render_particles.c derives both). */
  float aq, iaq, bq, gq, ey, dy_right, reach, body;
  float ea_max; /* the ellipse's larger semi-axis */
  int round;    /* its semi-axes are within 30 % of each other: use the circle of radius ea_max */
} npt__synth_prep;

/* A slot: 8 pixels, one vector in the pixel loops.  Lanes k <= last change pixel px[k], at offset
 * (dx + k, dy) from the particle's centre, for k < fold, and pixel px[hole + k], at offset
 * (dx + hole + k, dy), for k >= fold: 8 consecutive pixels of a row (fold 8), or the two ends of
 * a row's 16-pixel window with an 8-pixel hole (the fringe round a body slot).  Lanes past `last`
 * change nothing. */
enum { NPT__SLOT = 8 };
typedef struct npt__synth_slot {
  float *px;            /* first pixel in the frame */
  float dx, dy;         /* its offset from the particle's centre */
  int last, fold, hole; /* see above; body slots have fold 8 */
} npt__synth_slot;

/* Per-pixel scratch of the pixel loops: NPT__GEO_ARRAYS arrays of NPT__GEO_SLOTS slots' pixels. */
enum { NPT__GEO_ARRAYS = 9, NPT__GEO_SLOTS = 128 };

/* Where the renderer's particle shading keeps its settings and scratch. */
typedef struct npt__synth_shader {
  float mu_metal, mu_oxide;    /* 1 / attenuation length, 1/px */
  float fringe_amp;            /* Fresnel fringe: signed amplitude (> 0: bright first fringe) */
  float fringe_inv_w;          /* 1 / fringe width, 1/px (1 when there is no fringe) */
  float fringe_reach;          /* 3 x fringe width, px (0 when there is no fringe) */
  int cap;                     /* slots of one particle laid out at once */
  npt__synth_slot *slot;       /* those that may hold covered pixels from the front, the others
                                  (the fringe only) from the back */
  float *geo[NPT__GEO_ARRAYS]; /* per-pixel scratch of render_shade.c */
  int *x0, *x1, *b0, *b1;      /* per row of a particle: the columns it reaches, its body's */
  int *band;                   /* per particle: its band of rows */
  int bands, *band_start;      /* particles sorted by band of rows: band starts, */
  int *order, order_cap;       /* and the order */
} npt__synth_shader;

/* Settings from the optics (already checked) and scratch for frames of its width.  Returns 0 or
 * NPT_ENOMEM; on error `sh` holds nothing to free. */
int npt__synth_shader_init(npt__synth_shader *sh, const npt_synth_optics *optics);
void npt__synth_shader_free(npt__synth_shader *sh);

/* Checks the particles' fields: 0, or NPT_EINVAL with a message naming the particle and field. */
int npt__synth_particles_check(const npt_synth_particle *particles, int n, int64_t frame);

/* Prepares particle q (checked) for the pixel loops. */
void npt__synth_prepare(const npt__synth_shader *sh, const npt_synth_particle *q,
                        npt__synth_prep *p);

/* Multiplies the frame `img` (height rows of `stride` floats, stride >= npt__row_round(width) +
 * NPT__ROW_ALIGN) by the transmission of each (checked) particle.  Returns 0 or NPT_ENOMEM. */
int npt__synth_particles_shade(npt__synth_shader *sh, const npt_synth_particle *particles, int n,
                               float *img, int width, int height, int stride);

/* Multiplies the pixels of n slots by particle p's transmission (render_shade.c) -- `body`: with
 * the full model, else as uncovered pixels, which only the Fresnel fringe changes.  Any n (taken
 * NPT__GEO_SLOTS at a time). */
void npt__synth_slots_shade(const npt__synth_shader *sh, const npt__synth_prep *p,
                            const npt__synth_slot *slots, int n, int body);

/* The particle layer the plain way (render_reference.c): per pixel, n x n samples of shape.h's
 * npt_synth_body_rho, exact thickness and transmission per sample, the fringe from the sample's
 * distance to the outline (found along the outline itself).  Slow; for tests and benchmarks.
 * Multiplies `img` (height rows of `stride` floats) like npt__synth_particles_shade.  Returns 0
 * or NPT_ENOMEM. */
int npt__synth_render_particles_reference(const npt_synth_optics *optics,
                                          const npt_synth_particle *particles, int n, float *img,
                                          int width, int height, int stride, int samples);

#endif
