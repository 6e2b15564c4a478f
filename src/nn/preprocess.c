/* Frame preprocessing (preprocess.h): the CPU reference of both normalisation modes.  The GPU
 * kernels (kernels/preprocess.cu) follow the same arithmetic, operation for operation. */
#include "nn/preprocess.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/error.h"

/* Frame mode: the frame's mean and floored standard deviation from its exact sums (N pixels,
 * S1 = sum x, S2 = sum x^2), as preprocess.h defines them.  N S2 - S1^2 is computed exactly in
 * 128 bits: it is N^2 times the variance, never negative (Cauchy-Schwarz), and free of the
 * cancellation of double(S2) / N - mu^2 for bright frames with little contrast. */
static void frame_stats(uint64_t count, uint64_t s1, uint64_t s2, double *mu, double *sigma) {
  unsigned __int128 d = (unsigned __int128)count * s2 - (unsigned __int128)s1 * s1;
  double n = (double)count;
  double var = (double)d / (n * n);
  double sd = sqrt(var);
  *mu = (double)s1 / n;
  *sigma = sd > 1.0 ? sd : 1.0;
}

/* One frame of h x w into one hp x wp plane. */
static void frame_fixed(const void *in, int bits, int h, int w, int wp, float a, float b,
                        float *o) {
  for (int y = 0; y < h; y++) {
    float *row = o + (size_t)y * wp;
    if (bits == 8) {
      const uint8_t *src = (const uint8_t *)in + (size_t)y * w;
      for (int x = 0; x < w; x++)
        row[x] = (float)src[x] * a + b;
    } else {
      const uint16_t *src = (const uint16_t *)in + (size_t)y * w;
      for (int x = 0; x < w; x++)
        row[x] = (float)src[x] * a + b;
    }
  }
}

static void frame_standardise(const void *in, int bits, int h, int w, int wp, float *o) {
  size_t count = (size_t)h * w;
  uint64_t s1 = 0, s2 = 0;
  /* Exact: each sum is below 2^64 for frames of at most 2^32 pixels. */
  if (bits == 8) {
    const uint8_t *src = in;
    for (size_t i = 0; i < count; i++)
      s1 += src[i], s2 += (uint64_t)src[i] * src[i];
  } else {
    const uint16_t *src = in;
    for (size_t i = 0; i < count; i++)
      s1 += src[i], s2 += (uint64_t)src[i] * src[i];
  }
  double mu, sigma;
  frame_stats(count, s1, s2, &mu, &sigma);
  for (int y = 0; y < h; y++) {
    float *row = o + (size_t)y * wp;
    if (bits == 8) {
      const uint8_t *src = (const uint8_t *)in + (size_t)y * w;
      for (int x = 0; x < w; x++)
        row[x] = (float)(((double)src[x] - mu) / sigma);
    } else {
      const uint16_t *src = (const uint16_t *)in + (size_t)y * w;
      for (int x = 0; x < w; x++)
        row[x] = (float)(((double)src[x] - mu) / sigma);
    }
  }
}

int npt_preprocess_cpu(const void *in, int n, int h, int w, int hp, int wp, const npt_norm *norm,
                       float *out) {
  if (!in || !out || !norm)
    return npt_error_set(NPT_EINVAL, "preprocess: NULL argument");
  if (norm->bit_depth != 8 && norm->bit_depth != 16)
    return npt_error_set(NPT_EINVAL, "preprocess: bit depth must be 8 or 16 (got %d)",
                         norm->bit_depth);
  if (norm->mode != NPT_NORM_FIXED && norm->mode != NPT_NORM_FRAME)
    return npt_error_set(NPT_EINVAL, "preprocess: unknown normalisation mode %d", (int)norm->mode);
  if (norm->mode == NPT_NORM_FIXED && !(norm->std > 0.0f))
    return npt_error_set(NPT_EINVAL, "preprocess: std must be > 0 (got %g)", (double)norm->std);
  if (n < 0 || h <= 0 || w <= 0 || hp < h || wp < w)
    return npt_error_set(NPT_EINVAL, "preprocess: bad shape n=%d h=%d w=%d into %dx%d", n, h, w, hp,
                         wp);
  if (norm->mode == NPT_NORM_FRAME && (uint64_t)h * (uint64_t)w > ((uint64_t)1 << 32))
    return npt_error_set(NPT_EINVAL,
                         "preprocess: %dx%d frames are over the 2^32 pixels that per-frame "
                         "normalisation sums exactly",
                         h, w);
  float full = norm->bit_depth == 8 ? 255.0f : 65535.0f, a = 0.0f, b = 0.0f;
  if (norm->mode == NPT_NORM_FIXED) /* y = x * a + b, in the same order as the GPU kernel */
    a = 1.0f / (full * norm->std), b = -norm->mean / norm->std;
  size_t frame_bytes = (size_t)h * w * (size_t)(norm->bit_depth / 8);
  for (int f = 0; f < n; f++) {
    const char *src = (const char *)in + frame_bytes * f;
    float *o = out + (size_t)f * hp * wp;
    if (norm->mode == NPT_NORM_FRAME)
      frame_standardise(src, norm->bit_depth, h, w, wp, o);
    else
      frame_fixed(src, norm->bit_depth, h, w, wp, a, b, o);
    for (int y = 0; y < h; y++)
      memset(o + (size_t)y * wp + w, 0, sizeof *o * (size_t)(wp - w));
    memset(o + (size_t)h * wp, 0, sizeof *o * (size_t)(hp - h) * wp);
  }
  return 0;
}
