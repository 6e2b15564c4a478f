#include "common/search.h"

int64_t npt_lower_bound_i64(const int64_t *a, int64_t n, int64_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int64_t npt_find_i64(const int64_t *a, int64_t n, int64_t key) {
  int64_t i = npt_lower_bound_i64(a, n, key);
  return i < n && a[i] == key ? i : -1;
}
