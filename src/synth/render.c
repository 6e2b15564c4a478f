/* Image formation of synthetic in-situ TEM frames (see render.h for the contract).
 *
 * A frame is built in float32 rows, in electrons per pixel:
 *  1. support: dose x illumination ramp x the support texture (texture.c), which moves with the
 *     drift;
 *  2. particles (render_particles.c): each multiplies the pixels it reaches by its transmission;
 *  3. detector blur: separable Gaussian truncated at 3 sigma (none below sigma 0.2), edges
 *     clamped; it acts on the expected image, before the shot noise, so the noise stays
 *     uncorrelated and Poisson;
 *  4. shot noise (noise.c) and grey levels: counts x background_level x full scale / dose, so bare
 *     support averages background_level of full scale; inverted polarity mirrors the grey levels
 *     about that level (grey = 2 background - counts x gain); rounded and clipped.
 * A blank frame (beam blanked) is dark current plus Gaussian read noise, drawn per video: mean
 * 0.5-2.5 % of full scale, standard deviation 0.2-0.6 % of full scale.
 *
 * Memory per renderer: one float frame, 2 x 3 sigma + 1 blurred rows, the support tile (texture.c,
 * one float per pixel of the frame rounded up to powers of two), 330 kB of noise tables and
 * about 60 kB of particle scratch. */
#include "synth/render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/render_internal.h"

enum {
  MAX_BLUR_RADIUS = 60,
  MAX_SIZE = 32768,
  FIR = 7 /* taps per pass of the blur kernels */
};

struct npt_synth_renderer {
  npt_synth_optics o;
  uint64_t frame_seed;
  int stride;          /* floats per row of the frame buffers */
  float full;          /* full scale, grey levels */
  float gain;          /* grey levels per electron */
  float dark, read_sd; /* blank frames: dark level and read noise, grey levels */
  npt__synth_shader shader;
  int blur_r, blur_taps; /* radius; taps rounded up to whole FIR passes (zero weights) */
  float blur_w[2 * MAX_BLUR_RADIUS + 1 + FIR];
  float *img;       /* height rows of `stride`: the frame in electrons */
  float *ring;      /* 2 blur_r + 1 horizontally blurred rows */
  float *pad;       /* blur input with clamped edges */
  float *lam, *cnt; /* one row each: blurred mean, counts then grey levels */
  uint8_t *out_row; /* one row of output pixels, rounded up to whole vectors */
  npt__synth_texture tex;
  npt__synth_noise noise;
};

static int bad_optics(const char *field, double value, const char *want) {
  return npt_error_set(NPT_EINVAL, "synth renderer: optics.%s = %g: must be %s", field, value,
                       want);
}

static int check_optics(const npt_synth_optics *o) {
  if (o->width < 1 || o->width > MAX_SIZE)
    return bad_optics("width", o->width, "in 1..32768");
  if (o->height < 1 || o->height > MAX_SIZE)
    return bad_optics("height", o->height, "in 1..32768");
  if (o->bit_depth != 8 && o->bit_depth != 16)
    return bad_optics("bit_depth", o->bit_depth, "8 or 16");
  if (!(o->dose > 0.0 && o->dose <= 1e6))
    return bad_optics("dose", o->dose, "in (0, 1e6] electrons per pixel");
  if (!(o->background_level > 0.0 && o->background_level <= 1.0))
    return bad_optics("background_level", o->background_level, "in (0, 1]");
  if (o->invert != 0 && o->invert != 1)
    return bad_optics("invert", o->invert, "0 or 1");
  /* Lower bounds keep mu x thickness within the range of npt__exp2_neg. */
  if (!(o->metal_mfp_px >= 0.01 && o->metal_mfp_px < HUGE_VAL))
    return bad_optics("metal_mfp_px", o->metal_mfp_px, ">= 0.01 px");
  if (!(o->oxide_mfp_px >= 0.01 && o->oxide_mfp_px < HUGE_VAL))
    return bad_optics("oxide_mfp_px", o->oxide_mfp_px, ">= 0.01 px");
  if (!(o->support_contrast >= 0.0 && o->support_contrast <= 0.5))
    return bad_optics("support_contrast", o->support_contrast, "in [0, 0.5]");
  if (!(o->support_grain_px >= 0.0 && o->support_grain_px <= 1024.0) ||
      (o->support_contrast > 0.0 && o->support_grain_px <= 0.0))
    return bad_optics("support_grain_px", o->support_grain_px, "in (0, 1024] px");
  if (!(o->fresnel_amp >= 0.0 && o->fresnel_amp <= 0.5))
    return bad_optics("fresnel_amp", o->fresnel_amp, "in [0, 0.5]");
  if (!(fabs(o->fresnel_width_px) <= 64.0))
    return bad_optics("fresnel_width_px", o->fresnel_width_px, "in [-64, 64] px");
  if (!(o->blur_sigma_px >= 0.0 && o->blur_sigma_px <= MAX_BLUR_RADIUS / 3.0))
    return bad_optics("blur_sigma_px", o->blur_sigma_px, "in [0, 20] px");
  if (!(o->gradient_amp >= 0.0 && o->gradient_amp <= 0.5))
    return bad_optics("gradient_amp", o->gradient_amp, "in [0, 0.5]");
  if (!isfinite(o->gradient_angle))
    return bad_optics("gradient_angle", o->gradient_angle, "finite");
  return 0;
}

/* A seed for one purpose (texture, frames, blank levels) derived from the video's seed. */
static uint64_t derive_seed(uint64_t seed, uint64_t purpose) {
  npt_rng g;
  npt_rng_seed(&g, seed, purpose);
  return npt_rng_u64(&g);
}

int npt_synth_renderer_init(npt_synth_renderer **out, const npt_synth_optics *optics,
                            uint64_t seed) {
  if (!out || !optics)
    return npt_error_set(NPT_EINVAL, "synth renderer: NULL argument");
  *out = NULL;
  NPT_TRY(check_optics(optics));
  npt_synth_renderer *r = calloc(1, sizeof *r);
  NPT_ALLOC_CHECK(r);
  const npt_synth_optics *o = optics;
  r->o = *o;
  r->frame_seed = derive_seed(seed, 0x6672616d65ULL /* "frame" */);
  r->stride = npt__row_round(o->width) + NPT__ROW_ALIGN;
  r->full = o->bit_depth == 8 ? 255.0f : 65535.0f;
  r->gain = (float)(o->background_level * r->full / o->dose);

  npt_rng g;
  npt_rng_seed(&g, derive_seed(seed, 0x626c616e6bULL /* "blank" */), 0);
  r->dark = (float)(npt_rng_range(&g, 0.005, 0.025) * r->full);
  r->read_sd = (float)(npt_rng_range(&g, 0.002, 0.006) * r->full);

  if (o->blur_sigma_px >= 0.2) {
    double s = o->blur_sigma_px, sum = 0.0;
    r->blur_r = (int)ceil(3.0 * s);
    r->blur_taps = (2 * r->blur_r + FIR) / FIR * FIR;
    for (int k = -r->blur_r; k <= r->blur_r; k++)
      sum += exp(-0.5 * k * k / (s * s));
    for (int k = -r->blur_r; k <= r->blur_r; k++)
      r->blur_w[k + r->blur_r] = (float)(exp(-0.5 * k * k / (s * s)) / sum);
  }

  size_t row = (size_t)r->stride;
  r->img = calloc(row * o->height, sizeof(float));
  r->ring = calloc(row * (2 * r->blur_r + 1), sizeof(float));
  r->pad = calloc(row + r->blur_taps, sizeof(float));
  r->lam = calloc(row, sizeof(float));
  r->cnt = calloc(row, sizeof(float));
  r->out_row = calloc(row, sizeof(uint16_t));
  if (!r->img || !r->ring || !r->pad || !r->lam || !r->cnt || !r->out_row) {
    npt_synth_renderer_free(r);
    return npt_error_set(NPT_ENOMEM, "synth renderer: out of memory for %dx%d frame buffers",
                         o->width, o->height);
  }
  int rc = npt__synth_noise_init(&r->noise);
  if (rc == 0)
    rc = npt__synth_shader_init(&r->shader, o);
  if (rc == 0)
    rc =
        npt__synth_texture_init(&r->tex, o->width, o->height, o->support_contrast,
                                o->support_grain_px, derive_seed(seed, 0x74657874ULL /* "text" */));
  if (rc < 0) {
    npt_synth_renderer_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void npt_synth_renderer_free(npt_synth_renderer *r) {
  if (!r)
    return;
  npt__synth_texture_free(&r->tex);
  npt__synth_noise_free(&r->noise);
  npt__synth_shader_free(&r->shader);
  free(r->img);
  free(r->ring);
  free(r->pad);
  free(r->lam);
  free(r->cnt);
  free(r->out_row);
  free(r);
}

/* ---- Row kernels ----------------------------------------------------------------------------
 * Over n8 (a multiple of NPT__ROW_ALIGN) elements.  They are functions of their own, not inlined,
 * with restrict parameters: that is where GCC reliably uses restrict to rule out aliasing, which
 * it must to vectorise at -O2 (a copy inlined into a caller loses it). */
#define ROW_KERNEL NPT__KERNEL static void

ROW_KERNEL row_ramp(float *restrict y, float base, float slope, int n8) {
  n8 = npt__row_round(n8); /* a no-op that tells the vectoriser */
  for (int j = 0; j < n8; j++)
    y[j] *= base + slope * (float)j;
}

/* y[j] (+)= sum over k < FIR of w[k] x[j + k]: one pass of the horizontal blur. */
ROW_KERNEL row_fir(float *restrict y, const float *restrict x, const float *restrict w, int add,
                   int n8) {
  n8 = npt__row_round(n8); /* a no-op that tells the vectoriser */
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6];
  if (add)
    for (int j = 0; j < n8; j++)
      y[j] += w0 * x[j] + w1 * x[j + 1] + w2 * x[j + 2] + w3 * x[j + 3] + w4 * x[j + 4] +
              w5 * x[j + 5] + w6 * x[j + 6];
  else
    for (int j = 0; j < n8; j++)
      y[j] = w0 * x[j] + w1 * x[j + 1] + w2 * x[j + 2] + w3 * x[j + 3] + w4 * x[j + 4] +
             w5 * x[j + 5] + w6 * x[j + 6];
}

/* y[j] (+)= sum over k < FIR of w[k] x_k[j]: one pass of the vertical blur. */
ROW_KERNEL rows_fir(float *restrict y, const float *restrict x0, const float *restrict x1,
                    const float *restrict x2, const float *restrict x3, const float *restrict x4,
                    const float *restrict x5, const float *restrict x6, const float *restrict w,
                    int add, int n8) {
  n8 = npt__row_round(n8); /* a no-op that tells the vectoriser */
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6];
  if (add)
    for (int j = 0; j < n8; j++)
      y[j] +=
          w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j] + w4 * x4[j] + w5 * x5[j] + w6 * x6[j];
  else
    for (int j = 0; j < n8; j++)
      y[j] =
          w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j] + w4 * x4[j] + w5 * x5[j] + w6 * x6[j];
}

/* Grey levels a + b y rounded (half up where >= 0; negative values truncate towards zero, then
 * clip) and clipped to [0, full], over n16 (a multiple of 16) pixels: narrowing to 8 bits takes 16
 * floats per vector step. */
ROW_KERNEL row_to_u8(uint8_t *restrict o, const float *restrict y, float a, float b, int n16) {
  n16 = (n16 + 15) & ~15;
  for (int j = 0; j < n16; j++) {
    float g = a + b * y[j];
    int32_t x = (int32_t)(g + 0.5f);
    x = x < 255 ? x : 255;
    x = x > 0 ? x : 0;
    o[j] = (uint8_t)x;
  }
}

ROW_KERNEL row_to_u16(uint16_t *restrict o, const float *restrict y, float a, float b, int n16) {
  n16 = (n16 + 15) & ~15;
  for (int j = 0; j < n16; j++) {
    float g = a + b * y[j];
    int32_t x = (int32_t)(g + 0.5f);
    x = x < 65535 ? x : 65535;
    x = x > 0 ? x : 0;
    o[j] = (uint16_t)x;
  }
}

/* ---- Frame ----------------------------------------------------------------------------------- */

/* Support times the illumination ramp, in electrons: the ramp is 1 + gradient_amp x (projection
 * on the gradient direction) / (extent of the frame along it), mean 1 over the frame. */
static void fill_support(npt_synth_renderer *r, double drift_x, double drift_y) {
  const npt_synth_optics *o = &r->o;
  double cg = cos(o->gradient_angle), sg = sin(o->gradient_angle);
  double extent = fmax((o->width - 1) * fabs(cg) + (o->height - 1) * fabs(sg), 1.0);
  int n8 = npt__row_round(o->width);
  for (int i = 0; i < o->height; i++) {
    float *row = r->img + (size_t)i * r->stride;
    npt__synth_texture_row(&r->tex, row, o->width, i, drift_x, drift_y, (float)o->dose);
    if (o->gradient_amp > 0.0) {
      double base = -(o->width - 1) * 0.5 * cg + (i - (o->height - 1) * 0.5) * sg;
      row_ramp(row, (float)(1.0 + o->gradient_amp * base / extent),
               (float)(o->gradient_amp * cg / extent), n8);
    }
  }
}

/* Horizontal blur of frame row i into dst: edges clamped, n8 outputs. */
static void blur_row(npt_synth_renderer *r, int i, float *dst) {
  int w = r->o.width, rad = r->blur_r, n8 = npt__row_round(w);
  const float *src = r->img + (size_t)i * r->stride;
  float *pad = r->pad;
  for (int k = 0; k < rad; k++)
    pad[k] = src[0];
  memcpy(pad + rad, src, sizeof(float) * w);
  for (int k = rad + w; k < n8 + r->blur_taps - 1; k++)
    pad[k] = src[w - 1];
  for (int k = 0; k < r->blur_taps; k += FIR)
    row_fir(dst, pad + k, r->blur_w + k, k > 0, n8);
}

/* Vertical blur for output row i from the ring of horizontally blurred rows into dst. */
static void blur_col(npt_synth_renderer *r, int i, float *dst) {
  int h = r->o.height, rad = r->blur_r, slots = 2 * rad + 1, n8 = npt__row_round(r->o.width);
  const float *x[FIR];
  for (int k = 0; k < r->blur_taps; k += FIR) {
    for (int t = 0; t < FIR; t++) {
      int src = i + k + t - rad; /* taps past 2 rad have weight 0: any row will do */
      src = src < 0 ? 0 : (src > h - 1 ? h - 1 : src);
      x[t] = r->ring + (size_t)(src % slots) * r->stride;
    }
    rows_fir(dst, x[0], x[1], x[2], x[3], x[4], x[5], x[6], r->blur_w + k, k > 0, n8);
  }
}

/* Grey levels a + b v into row i of `out`.  (Row buffers have room for the width rounded up to
 * 16: npt__row_round(w) + NPT__ROW_ALIGN >= that.) */
static void store_row(const npt_synth_renderer *r, const float *v, float a, float b, void *out,
                      int i) {
  int w = r->o.width, n16 = (w + 15) & ~15;
  if (r->o.bit_depth == 8) {
    row_to_u8(r->out_row, v, a, b, n16);
    memcpy((uint8_t *)out + (size_t)i * w, r->out_row, (size_t)w);
  } else {
    row_to_u16((uint16_t *)r->out_row, v, a, b, n16);
    memcpy((uint16_t *)out + (size_t)i * w, r->out_row, sizeof(uint16_t) * w);
  }
}

static void render_blank(npt_synth_renderer *r, npt_rng *rng, void *out) {
  for (int i = 0; i < r->o.height; i++) {
    npt__synth_noise_normal_row(&r->noise, rng, r->cnt, r->o.width);
    store_row(r, r->cnt, r->dark, r->read_sd, out, i);
  }
}

/* Blur (or not), shot noise and grey levels, one output row at a time.  The horizontally blurred
 * rows live in a ring of 2 rad + 1 rows: output row i needs rows i - rad .. i + rad (clamped). */
static void develop(npt_synth_renderer *r, npt_rng *rng, void *out) {
  const npt_synth_optics *o = &r->o;
  int rad = r->blur_r, slots = 2 * rad + 1, done = -1;
  const float gain = o->invert ? -r->gain : r->gain;
  const float offset = o->invert ? (float)(2.0 * o->background_level * r->full) : 0.0f;
  for (int i = 0; i < o->height; i++) {
    const float *lam = r->img + (size_t)i * r->stride;
    if (rad > 0) {
      int need = i + rad < o->height - 1 ? i + rad : o->height - 1;
      while (done < need) {
        done++;
        blur_row(r, done, r->ring + (size_t)(done % slots) * r->stride);
      }
      blur_col(r, i, r->lam);
      lam = r->lam;
    }
    npt__synth_noise_poisson_row(&r->noise, rng, lam, r->cnt, o->width);
    store_row(r, r->cnt, offset, gain, out, i);
  }
}

int npt_synth_render(npt_synth_renderer *r, const npt_synth_particle *particles, int n,
                     double drift_x, double drift_y, int blank, int64_t frame, void *out) {
  if (!r || !out || n < 0 || (n > 0 && !particles))
    return npt_error_set(NPT_EINVAL, "synth render: frame %lld: NULL buffer or bad count %d",
                         (long long)frame, n);
  if (!isfinite(drift_x) || !isfinite(drift_y) || fabs(drift_x) > 1e9 || fabs(drift_y) > 1e9)
    return npt_error_set(NPT_EINVAL, "synth render: frame %lld: drift (%g, %g) out of range",
                         (long long)frame, drift_x, drift_y);
  npt_rng rng;
  npt_rng_seed(&rng, r->frame_seed, (uint64_t)frame);
  if (blank) {
    render_blank(r, &rng, out);
    return 0;
  }
  NPT_TRY(npt__synth_particles_check(particles, n, frame));
  fill_support(r, drift_x, drift_y);
  NPT_TRY(npt__synth_particles_shade(&r->shader, particles, n, r->img, r->o.width, r->o.height,
                                     r->stride));
  develop(r, &rng, out);
  return 0;
}
