/* Shot noise and read noise of synthetic frames, fast enough to draw one deviate per pixel at
 * hundreds of frames per second.
 *
 * Poisson counts of mean lambda are drawn two ways:
 *  - lambda < NPT__POISSON_EXACT_BELOW (16): Walker alias tables of the Poisson distribution for
 *    means on a grid of 1/64; the mean is first rounded to a neighbouring grid point at random
 *    (up with probability equal to the fraction), so the count has exactly the mean lambda and a
 *    variance larger than lambda by at most 1/(4 * 64^2) = 6e-5.  Counts >= 64 are dropped (their
 *    probability is < 1e-17 at lambda = 16).  32 random bits per pixel: 6 pick the table slot,
 *    16 choose between its two outcomes (probabilities resolved to 2^-16 / 64) and 10 round the
 *    mean (its expectation resolved to 2^-10 / 64 = 1.5e-5).
 *  - lambda >= 16: the Cornish-Fisher expansion of the Poisson quantile to first order in
 *    skewness, k = lambda + sqrt(lambda) z + (z^2 - 1) / 6, rounded to the nearest integer: mean
 *    lambda, variance lambda + 1/18 + 1/12 (the second and third terms: the skew correction and
 *    the rounding), skewness 1/sqrt(lambda) like the Poisson.  z comes from a table of the
 *    inverse normal CDF at 4096 equally probable cell midpoints, rescaled to unit variance, five
 *    deviates per 64-bit draw; its tails stop at 3.7 sigma (probability beyond, both sides:
 *    2.4e-4). */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "synth/render_internal.h"

enum {
  NORMAL_SIZE = 1 << NPT__NORMAL_BITS,
  ALIAS_GRID = 64,                                         /* mean grid points per unit */
  ALIAS_MEANS = NPT__POISSON_EXACT_BELOW * ALIAS_GRID + 1, /* grid 0, 1/64, ..., 16 */
  ALIAS_K = 64                                             /* counts 0..63 */
};

/* Inverse of the standard normal CDF: Acklam's rational approximation (relative error 1.2e-9)
 * refined by one Halley step on erfc. */
static double inverse_normal_cdf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    double q = sqrt(-2.0 * log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else if (p > 1.0 - 0.02425) {
    double q = sqrt(-2.0 * log(1.0 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else {
    double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
  double u = e * sqrt(2.0 * M_PI) * exp(0.5 * x * x);
  return x - u / (1.0 + 0.5 * x * u);
}

static void fill_normal_table(float *t) {
  double sum2 = 0.0;
  double z[NORMAL_SIZE];
  for (int i = 0; i < NORMAL_SIZE; i++) {
    z[i] = inverse_normal_cdf((i + 0.5) / NORMAL_SIZE);
    sum2 += z[i] * z[i];
  }
  /* The midpoints' variance is a little under 1 (the tails are cut); rescale. */
  double scale = 1.0 / sqrt(sum2 / NORMAL_SIZE);
  for (int i = 0; i < NORMAL_SIZE; i++)
    t[i] = (float)(z[i] * scale);
}

/* Vose's alias method for one Poisson mean: slot k keeps outcome k with probability
 * prob[k] / 2^16 (1 when prob[k] is 0xffff and other[k] is k), else gives other[k]. */
static void fill_alias(double lambda, uint16_t *prob, uint8_t *other) {
  double q[ALIAS_K], sum = 0.0;
  double p = exp(-lambda);
  for (int k = 0; k < ALIAS_K; k++) {
    q[k] = p;
    sum += p;
    p *= lambda / (k + 1);
  }
  int small[ALIAS_K], large[ALIAS_K], ns = 0, nl = 0;
  for (int k = 0; k < ALIAS_K; k++) {
    q[k] *= ALIAS_K / sum;
    if (q[k] < 1.0)
      small[ns++] = k;
    else
      large[nl++] = k;
  }
  while (ns > 0 && nl > 0) {
    int s = small[--ns], l = large[--nl];
    prob[s] = (uint16_t)fmin(q[s] * 65536.0 + 0.5, 65535.0);
    other[s] = (uint8_t)l;
    q[l] -= 1.0 - q[s];
    if (q[l] < 1.0)
      small[ns++] = l;
    else
      large[nl++] = l;
  }
  /* What is left has probability 1 (up to rounding): keep it whichever way the draw goes. */
  while (nl > 0) {
    int l = large[--nl];
    prob[l] = UINT16_MAX;
    other[l] = (uint8_t)l;
  }
  while (ns > 0) {
    int s = small[--ns];
    prob[s] = UINT16_MAX;
    other[s] = (uint8_t)s;
  }
}

int npt__synth_noise_init(npt__synth_noise *nz) {
  nz->normal = malloc(sizeof(float) * NORMAL_SIZE);
  nz->alias_prob = malloc(sizeof(uint16_t) * ALIAS_MEANS * ALIAS_K);
  nz->alias_other = malloc((size_t)ALIAS_MEANS * ALIAS_K);
  if (!nz->normal || !nz->alias_prob || !nz->alias_other) {
    npt__synth_noise_free(nz);
    return npt_error_set(NPT_ENOMEM, "synth renderer: out of memory for the noise tables");
  }
  fill_normal_table(nz->normal);
  for (int m = 0; m < ALIAS_MEANS; m++)
    fill_alias((double)m / ALIAS_GRID, nz->alias_prob + (size_t)m * ALIAS_K,
               nz->alias_other + (size_t)m * ALIAS_K);
  return 0;
}

void npt__synth_noise_free(npt__synth_noise *nz) {
  free(nz->normal);
  free(nz->alias_prob);
  free(nz->alias_other);
  nz->normal = NULL;
  nz->alias_prob = NULL;
  nz->alias_other = NULL;
}

/* npt_rng_u64 (common/rng.c: xoshiro256**) step for step, on a state the caller keeps in
 * registers: the out-of-line call per draw cost more than the rest of the row.  test_render.c
 * checks that the stream is npt_rng_u64's. */
static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
static inline uint64_t next(uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3) {
  uint64_t result = rotl(*s1 * 5, 7) * 9, t = *s1 << 17;
  *s2 ^= *s0;
  *s3 ^= *s1;
  *s1 ^= *s2;
  *s0 ^= *s3;
  *s2 ^= t;
  *s3 = rotl(*s3, 45);
  return result;
}

void npt__synth_noise_normal_row(const npt__synth_noise *nz, npt_rng *rng, float *restrict z,
                                 int n) {
  const float *restrict t = nz->normal;
  const uint64_t mask = NORMAL_SIZE - 1;
  uint64_t s0 = rng->s[0], s1 = rng->s[1], s2 = rng->s[2], s3 = rng->s[3];
  int n8 = npt__row_round(n), j = 0;
  for (; j + 5 <= n8; j += 5) {
    uint64_t r = next(&s0, &s1, &s2, &s3);
    z[j] = t[r & mask];
    z[j + 1] = t[(r >> 12) & mask];
    z[j + 2] = t[(r >> 24) & mask];
    z[j + 3] = t[(r >> 36) & mask];
    z[j + 4] = t[(r >> 48) & mask];
  }
  if (j < n8) {
    uint64_t r = next(&s0, &s1, &s2, &s3);
    for (; j < n8; j++, r >>= 12)
      z[j] = t[r & mask];
  }
  rng->s[0] = s0;
  rng->s[1] = s1;
  rng->s[2] = s2;
  rng->s[3] = s3;
}

/* One Poisson deviate of mean lam in [0, 16] from the alias tables and 32 random bits r: bits
 * 0-5 pick the slot, bits 6-21 decide between its two outcomes, bits 22-31 round the mean to the
 * grid. */
static float poisson_small(const npt__synth_noise *nz, uint32_t r, float lam) {
  float frac = (float)(r >> 22) * 0x1.0p-10f;
  int m = (int)(lam * ALIAS_GRID + frac);
  m = m < ALIAS_MEANS - 1 ? m : ALIAS_MEANS - 1;
  int k = (int)(r & (ALIAS_K - 1));
  size_t slot = (size_t)m * ALIAS_K + (size_t)k;
  uint32_t t = (r >> 6) & 0xffff;
  return (float)(t < nz->alias_prob[slot] || nz->alias_prob[slot] == UINT16_MAX
                     ? k
                     : nz->alias_other[slot]);
}

/* counts[j] = the Cornish-Fisher approximation for mean lam[j], given z[j] (counts and z may be
 * the same array); returns how many lam[j] < NPT__POISSON_EXACT_BELOW. */
NPT__KERNEL static int poisson_large(const float *restrict lam, float *counts, int n8) {
  n8 = npt__row_round(n8);
  int small = 0;
  for (int j = 0; j < n8; j++) {
    float l = npt__max_pos(lam[j], 1e-6f);
    float z = counts[j];
    float k = l + l * npt__rsqrt(l) * z + (z * z - 1.0f) * (1.0f / 6.0f);
    int32_t m = (int32_t)(k + 0.5f); /* k < 2^31: the mean is bounded by the dose limit */
    counts[j] = npt__max_pos((float)m, 0.0f);
    small += lam[j] < (float)NPT__POISSON_EXACT_BELOW;
  }
  return small;
}

void npt__synth_noise_poisson_row(const npt__synth_noise *nz, npt_rng *rng,
                                  const float *restrict lam, float *restrict counts, int n) {
  /* Every pixel first gets the approximation for large means (a vectorised loop), ... */
  npt__synth_noise_normal_row(nz, rng, counts, n);
  if (poisson_large(lam, counts, npt__row_round(n)) == 0)
    return;
  /* ... then the pixels of small mean are drawn again exactly, two per 64-bit draw. */
  uint64_t bits = 0;
  int have = 0;
  for (int j = 0; j < n; j++)
    if (lam[j] < (float)NPT__POISSON_EXACT_BELOW) {
      if (have == 0) {
        bits = npt_rng_u64(rng);
        have = 2;
      }
      counts[j] = poisson_small(nz, (uint32_t)bits, npt__max_pos(lam[j], 0.0f));
      bits >>= 32;
      have--;
    }
}
