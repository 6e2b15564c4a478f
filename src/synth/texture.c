/* Amorphous support texture: a periodic tile of band-limited noise, built once per video and seen
 * through the frame window shifted by the specimen drift.
 *
 * The tile is white noise blurred with periodic boundaries at two scales, a fine grain (Gaussian
 * sigma = grain / 2, so that the autocorrelation exp(-r^2 / (4 sigma^2)) falls to 1/e at r =
 * grain) and a component four times coarser at half the amplitude (thickness undulations of the
 * film).  The sum n, normalised to zero mean and unit variance, becomes a transmission
 * exp(s n - s^2 / 2) with s^2 = ln(1 + contrast^2): log-normal, since the film's thickness
 * fluctuations enter the image through exp(-t / mfp), always positive, with mean 1 and relative
 * standard deviation `contrast`. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "synth/render_internal.h"

/* Above this sigma a Gaussian is approximated by three box passes (cost independent of sigma). */
#define DIRECT_GAUSS_MAX_SIGMA 3.0

static int next_pow2(int n) {
  int p = 16;
  while (p < n)
    p *= 2;
  return p;
}

/* Kernel of a direct Gaussian blur: w[0..2r], returns r. */
static int gauss_kernel(double sigma, float *w) {
  int r = (int)ceil(3.0 * sigma);
  double sum = 0.0, tmp[2 * 10 + 1];
  for (int k = -r; k <= r; k++)
    sum += tmp[k + r] = exp(-0.5 * k * k / (sigma * sigma));
  for (int k = 0; k <= 2 * r; k++)
    w[k] = (float)(tmp[k] / sum);
  return r;
}

/* Odd box width whose three passes have variance sigma^2: 3 (k^2 - 1) / 12 = sigma^2. */
static int box_width(double sigma, int n) {
  int k = (int)lround(sqrt(4.0 * sigma * sigma + 1.0));
  k |= 1;
  while (k > n - 1)
    k -= 2;
  return k < 1 ? 1 : k;
}

/* Periodic blur along x of every row of f (nx x ny, packed), with one row of scratch. */
static void blur_rows(float *f, int nx, int ny, double sigma, float *row) {
  if (sigma <= DIRECT_GAUSS_MAX_SIGMA) {
    float w[2 * 10 + 1];
    int r = gauss_kernel(sigma, w);
    for (int i = 0; i < ny; i++) {
      float *p = f + (size_t)i * nx;
      for (int j = 0; j < nx; j++)
        row[j] = p[j];
      for (int j = 0; j < nx; j++) {
        float acc = 0.0f;
        for (int k = -r; k <= r; k++)
          acc += w[k + r] * row[(j + k) & (nx - 1)];
        p[j] = acc;
      }
    }
    return;
  }
  int k = box_width(sigma, nx), h = k / 2;
  for (int i = 0; i < ny; i++) {
    float *p = f + (size_t)i * nx;
    for (int pass = 0; pass < 3; pass++) {
      for (int j = 0; j < nx; j++)
        row[j] = p[j];
      double acc = 0.0;
      for (int d = -h; d <= h; d++)
        acc += row[d & (nx - 1)];
      for (int j = 0; j < nx; j++) {
        p[j] = (float)(acc / k);
        acc += row[(j + h + 1) & (nx - 1)] - row[(j - h) & (nx - 1)];
      }
    }
  }
}

/* Periodic blur along y of f (packed nx x ny), through the scratch field g of the same size:
 * whole rows at a time, so the inner loops run along contiguous memory. */
static void blur_cols(float *f, float *g, int nx, int ny, double sigma) {
  size_t row = (size_t)nx;
  if (sigma <= DIRECT_GAUSS_MAX_SIGMA) {
    float w[2 * 10 + 1];
    int r = gauss_kernel(sigma, w);
    for (int i = 0; i < ny; i++) {
      float *o = g + i * row;
      for (int j = 0; j < nx; j++)
        o[j] = 0.0f;
      for (int k = -r; k <= r; k++) {
        const float *s = f + ((i + k) & (ny - 1)) * row;
        for (int j = 0; j < nx; j++)
          o[j] += w[k + r] * s[j];
      }
    }
    memcpy(f, g, sizeof(float) * row * ny);
    return;
  }
  int k = box_width(sigma, ny), h = k / 2;
  float inv = 1.0f / k;
  float *src = f, *dst = g;
  for (int pass = 0; pass < 3; pass++) {
    /* The running sum sits in the first output row until it is written out at the end. */
    float *acc = dst + (size_t)(ny - 1) * row;
    for (int j = 0; j < nx; j++)
      acc[j] = 0.0f;
    for (int d = -h; d <= h; d++) {
      const float *s = src + (d & (ny - 1)) * row;
      for (int j = 0; j < nx; j++)
        acc[j] += s[j];
    }
    for (int i = 0; i < ny; i++) {
      float *o = dst + i * row;
      const float *add = src + ((i + h + 1) & (ny - 1)) * row,
                  *sub = src + ((i - h) & (ny - 1)) * row;
      if (i < ny - 1) {
        for (int j = 0; j < nx; j++) {
          o[j] = acc[j] * inv;
          acc[j] += add[j] - sub[j];
        }
      } else {
        for (int j = 0; j < nx; j++)
          o[j] = acc[j] * inv;
      }
    }
    float *t = src;
    src = dst;
    dst = t;
  }
  if (src != f)
    memcpy(f, src, sizeof(float) * row * ny);
}

/* f = white noise blurred to `sigma`, then zero mean and unit variance. */
static void make_field(float *f, float *g, float *row, int nx, int ny, double sigma, npt_rng *rng) {
  size_t n = (size_t)nx * ny;
  for (size_t i = 0; i < n; i++)
    f[i] = (float)npt_rng_uniform(rng) - 0.5f;
  if (sigma > 0.05) {
    blur_rows(f, nx, ny, sigma, row);
    blur_cols(f, g, nx, ny, sigma);
  }
  double s1 = 0.0, s2 = 0.0;
  for (size_t i = 0; i < n; i++) {
    s1 += f[i];
    s2 += (double)f[i] * f[i];
  }
  double mean = s1 / n, sd = sqrt(fmax(s2 / n - mean * mean, 1e-30));
  for (size_t i = 0; i < n; i++)
    f[i] = (float)((f[i] - mean) / sd);
}

int npt__synth_texture_init(npt__synth_texture *tex, int width, int height, double contrast,
                            double grain_px, uint64_t seed) {
  tex->nx = tex->ny = tex->stride = 0;
  tex->tile = NULL;
  if (contrast <= 0.0)
    return 0;
  int nx = next_pow2(width), ny = next_pow2(height), stride = nx + NPT__TEX_PAD;
  size_t n = (size_t)nx * ny;
  float *tile = malloc(sizeof(float) * (size_t)stride * ny);
  float *f = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
  float *row = malloc(sizeof(float) * nx);
  /* The coarse field is built in the tile's memory (packed), then combined into place. */
  if (!tile || !f || !g || !row) {
    free(tile);
    free(f);
    free(g);
    free(row);
    return npt_error_set(NPT_ENOMEM, "synth renderer: out of memory for a %dx%d support texture",
                         nx, ny);
  }
  npt_rng rng;
  npt_rng_seed(&rng, seed, 0);
  double sigma = 0.5 * grain_px;
  make_field(f, g, row, nx, ny, sigma, &rng);
  make_field(tile, g, row, nx, ny, 4.0 * sigma, &rng);

  /* n = (fine + coarse / 2) / sqrt(5/4), then the log-normal transmission; the tile is filled
   * from its last row backwards because its rows are longer than the packed rows. */
  double s = sqrt(log(1.0 + contrast * contrast)), norm = 1.0 / sqrt(1.25), sum = 0.0;
  for (int i = ny - 1; i >= 0; i--) {
    float *dst = tile + (size_t)i * stride;
    const float *fine = f + (size_t)i * nx, *coarse = tile + (size_t)i * nx;
    for (int j = nx - 1; j >= 0; j--) {
      double v = exp(s * norm * (fine[j] + 0.5 * coarse[j]) - 0.5 * s * s);
      dst[j] = (float)v;
      sum += v;
    }
  }
  float inv_mean = (float)(n / sum);
  for (int i = 0; i < ny; i++) {
    float *dst = tile + (size_t)i * stride;
    for (int j = 0; j < nx; j++)
      dst[j] *= inv_mean;
    for (int j = 0; j < NPT__TEX_PAD; j++)
      dst[nx + j] = dst[j & (nx - 1)];
  }
  free(f);
  free(g);
  free(row);
  tex->nx = nx;
  tex->ny = ny;
  tex->stride = stride;
  tex->tile = tile;
  return 0;
}

void npt__synth_texture_free(npt__synth_texture *tex) {
  free(tex->tile);
  tex->tile = NULL;
  tex->nx = tex->ny = tex->stride = 0;
}

/* Bilinear interpolation of n8 values starting at column c of rows a and b (which may be read up
 * to c + n8 + 1 < stride). */
NPT__KERNEL static void lerp_span(float *restrict out, const float *restrict a,
                                  const float *restrict b, int n8, float w00, float w01, float w10,
                                  float w11) {
  n8 = npt__row_round(n8); /* a no-op that tells the vectoriser */
  for (int j = 0; j < n8; j++)
    out[j] = w00 * a[j] + w01 * a[j + 1] + w10 * b[j] + w11 * b[j + 1];
}

void npt__synth_texture_row(const npt__synth_texture *tex, float *out, int n, int y, double shift_x,
                            double shift_y, float scale) {
  if (!tex->tile) {
    int n8 = npt__row_round(n);
    for (int j = 0; j < n8; j++)
      out[j] = scale;
    return;
  }
  int nx = tex->nx, ny = tex->ny;
  /* Tile coordinates of pixel (0, y): (-shift_x, y - shift_y), taken modulo the tile. */
  double tx = -shift_x, ty = y - shift_y;
  double fx0 = floor(tx), fy0 = floor(ty);
  float fx = (float)(tx - fx0), fy = (float)(ty - fy0);
  int ix = (int)(fx0 - nx * floor(fx0 / nx)) & (nx - 1);
  int iy = (int)(fy0 - ny * floor(fy0 / ny)) & (ny - 1);
  const float *a = tex->tile + (size_t)iy * tex->stride;
  const float *b = tex->tile + (size_t)((iy + 1) & (ny - 1)) * tex->stride;
  float w00 = scale * (1 - fx) * (1 - fy), w01 = scale * fx * (1 - fy);
  float w10 = scale * (1 - fx) * fy, w11 = scale * fx * fy;
  /* Columns ix .. nx-1 of the tile, then (after the wrap) from column 0 on; each span is computed
   * in whole vectors, the second overwriting what the first wrote past its end.  A span of n8
   * values reads to column ix + n8 + 1 <= nx + NPT__ROW_ALIGN < stride. */
  int n1 = nx - ix < n ? nx - ix : n;
  lerp_span(out, a + ix, b + ix, npt__row_round(n1), w00, w01, w10, w11);
  if (n1 < n)
    lerp_span(out + n1, a, b, npt__row_round(n - n1), w00, w01, w10, w11);
}
