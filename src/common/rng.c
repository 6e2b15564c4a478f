#include "common/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void npt_rng_seed(npt_rng *r, uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t npt_rng_u64(npt_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double npt_rng_uniform(npt_rng *r) { return (double)(npt_rng_u64(r) >> 11) * 0x1.0p-53; }

double npt_rng_range(npt_rng *r, double lo, double hi) {
  return lo + (hi - lo) * npt_rng_uniform(r);
}

double npt_rng_logrange(npt_rng *r, double lo, double hi) {
  return exp(npt_rng_range(r, log(lo), log(hi)));
}

int64_t npt_rng_int(npt_rng *r, int64_t lo, int64_t hi) {
  uint64_t span = (uint64_t)(hi - lo) + 1;
  if (span == 0)
    return (int64_t)npt_rng_u64(r);
  /* Rejection keeps it unbiased. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t x;
  do
    x = npt_rng_u64(r);
  while (x >= limit);
  return lo + (int64_t)(x % span);
}

double npt_rng_normal(npt_rng *r) {
  double u, v, s;
  do {
    u = 2.0 * npt_rng_uniform(r) - 1.0;
    v = 2.0 * npt_rng_uniform(r) - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  return u * sqrt(-2.0 * log(s) / s);
}

int64_t npt_rng_poisson(npt_rng *r, double lambda) {
  if (lambda <= 0.0)
    return 0;
  if (lambda < 30.0) {
    /* Multiplication of uniforms (Knuth). */
    double l = exp(-lambda), p = 1.0;
    int64_t k = 0;
    do {
      k++;
      p *= npt_rng_uniform(r);
    } while (p > l);
    return k - 1;
  }
  /* Transformed rejection with squeeze (Hoermann 1993, PTRS). */
  double slam = sqrt(lambda), loglam = log(lambda);
  double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    double u = npt_rng_uniform(r) - 0.5, v = npt_rng_uniform(r);
    double us = 0.5 - fabs(u);
    double k = floor((2 * a / us + b) * u + lambda + 0.43);
    if (us >= 0.07 && v <= vr)
      return (int64_t)k;
    if (k < 0 || (us < 0.013 && v > us))
      continue;
    if (log(v) + log(invalpha) - log(a / (us * us) + b) <= -lambda + k * loglam - lgamma(k + 1))
      return (int64_t)k;
  }
}
