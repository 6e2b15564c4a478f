#include "nn/preprocess.h"

#include <stddef.h>
#include <string.h>

#include "common/error.h"

int npt_preprocess_cpu(const void *in, int n, int h, int w, int hp, int wp, const npt_norm *norm,
                       float *out) {
  if (!in || !out || !norm)
    return npt_error_set(NPT_EINVAL, "preprocess: NULL argument");
  if (norm->bit_depth != 8 && norm->bit_depth != 16)
    return npt_error_set(NPT_EINVAL, "preprocess: bit depth must be 8 or 16 (got %d)",
                         norm->bit_depth);
  if (!(norm->std > 0.0f))
    return npt_error_set(NPT_EINVAL, "preprocess: std must be > 0 (got %g)", (double)norm->std);
  if (n < 0 || h <= 0 || w <= 0 || hp < h || wp < w)
    return npt_error_set(NPT_EINVAL, "preprocess: bad shape n=%d h=%d w=%d into %dx%d", n, h, w,
                         hp, wp);
  float full = norm->bit_depth == 8 ? 255.0f : 65535.0f;
  /* y = x * a + b, computed in the same order as the GPU kernel. */
  float a = 1.0f / (full * norm->std), b = -norm->mean / norm->std;
  for (int f = 0; f < n; f++) {
    float *o = out + (size_t)f * hp * wp;
    for (int y = 0; y < h; y++) {
      float *row = o + (size_t)y * wp;
      if (norm->bit_depth == 8) {
        const uint8_t *src = (const uint8_t *)in + ((size_t)f * h + y) * w;
        for (int x = 0; x < w; x++)
          row[x] = (float)src[x] * a + b;
      } else {
        const uint16_t *src = (const uint16_t *)in + ((size_t)f * h + y) * w;
        for (int x = 0; x < w; x++)
          row[x] = (float)src[x] * a + b;
      }
      memset(row + w, 0, sizeof *row * (size_t)(wp - w));
    }
    memset(o + (size_t)h * wp, 0, sizeof *o * (size_t)(hp - h) * wp);
  }
  return 0;
}
