/* Searching sorted arrays. */
#ifndef NPT_SEARCH_H
#define NPT_SEARCH_H

#include <stdint.h>

/* The first index i in [0, n) with a[i] >= key in the ascending array a, or n when none. */
int64_t npt_lower_bound_i64(const int64_t *a, int64_t n, int64_t key);

/* The index of `key` in the ascending array a, or -1 when it is not there. */
int64_t npt_find_i64(const int64_t *a, int64_t n, int64_t key);

#endif
