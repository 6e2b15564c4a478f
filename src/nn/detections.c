/* The growable detections list (detections.h). */
#include "nn/detections.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void npt_dets_init(npt_dets *d, int embed_dim) {
  memset(d, 0, sizeof *d);
  d->embed_dim = embed_dim > 0 ? embed_dim : 0;
}

int npt_dets_reserve(npt_dets *d, int64_t more) {
  if (more < 0 || d->n > INT64_MAX / 2 - more)
    return npt_error_set(NPT_EINVAL, "npt_dets_reserve: cannot hold %lld more detections",
                         (long long)more);
  int64_t need = d->n + more;
  if (need <= d->cap)
    return 0;
  /* Grow geometrically, so appending frame by frame costs amortised O(1) per detection. */
  int64_t cap = d->cap > 0 ? d->cap : 64;
  while (cap < need)
    cap *= 2;
  size_t row = (size_t)d->embed_dim * sizeof(float);
  if ((uint64_t)cap > SIZE_MAX / (sizeof(npt_detection) + row + 1))
    return npt_error_set(NPT_ENOMEM, "out of memory for %lld detections", (long long)cap);
  npt_detection *det = realloc(d->det, (size_t)cap * sizeof *det);
  if (!det)
    return npt_error_set(NPT_ENOMEM, "out of memory for %lld detections", (long long)cap);
  d->det = det;
  if (row > 0) {
    float *embed = realloc(d->embed, (size_t)cap * row);
    if (!embed)
      return npt_error_set(NPT_ENOMEM, "out of memory for %lld embeddings", (long long)cap);
    d->embed = embed;
  }
  d->cap = cap;
  return 0;
}

void npt_dets_clear(npt_dets *d) {
  d->n = 0;
}

void npt_dets_free(npt_dets *d) {
  free(d->det);
  free(d->embed);
  int dim = d->embed_dim;
  memset(d, 0, sizeof *d);
  d->embed_dim = dim;
}
