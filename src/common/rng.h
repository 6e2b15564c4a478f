/* Small, fast, reproducible random numbers (xoshiro256** seeded through splitmix64).
 * Streams are derived from (seed, stream id) so that, e.g., each synthetic frame has its own
 * stream and can be generated alone, in any order, with the same result. */
#ifndef NPT_RNG_H
#define NPT_RNG_H

#include <stdint.h>

typedef struct npt_rng {
  uint64_t s[4];
} npt_rng;

/* Seeds `r` from a seed and a stream id (different ids give independent streams). */
void npt_rng_seed(npt_rng *r, uint64_t seed, uint64_t stream);
uint64_t npt_rng_u64(npt_rng *r);
/* Uniform in [0, 1). */
double npt_rng_uniform(npt_rng *r);
/* Uniform in [lo, hi). */
double npt_rng_range(npt_rng *r, double lo, double hi);
/* Log-uniform in [lo, hi) (lo > 0). */
double npt_rng_logrange(npt_rng *r, double lo, double hi);
/* Integer uniform in [lo, hi] (inclusive). */
int64_t npt_rng_int(npt_rng *r, int64_t lo, int64_t hi);
/* Standard normal (polar Box-Muller; exact, not table-based). */
double npt_rng_normal(npt_rng *r);
/* Poisson with mean `lambda` >= 0 (exact for lambda < 30; transformed rejection above). */
int64_t npt_rng_poisson(npt_rng *r, double lambda);

#endif
