/* The cudnn backend's test and benchmark hooks in a build without CUDA: there is no backend, and
 * the hooks say so. */
#ifndef NPT_HAVE_CUDNN_BACKEND
#include <string.h>

#include "common/error.h"
#include "nn/cuda/cudnn_debug.h"

const npt_backend_i *npt__cudnn_backend(void) {
  return NULL;
}

void npt__cudnn_set_poison(int poison) {
  (void)poison;
}

int npt__cudnn_plan_tensor(void *ctx, void *plan, int t, float *out) {
  (void)ctx, (void)plan, (void)t, (void)out;
  return npt_error_set(NPT_EUNSUPPORTED, "this build has no cudnn backend");
}

void npt__cudnn_plan_info_get(void *plan, npt__cudnn_plan_info *info) {
  (void)plan;
  memset(info, 0, sizeof *info);
}

int npt__cudnn_time_forward(void *ctx, void *plan, int warmup, int reps, double *median_ms) {
  (void)ctx, (void)plan, (void)warmup, (void)reps, (void)median_ms;
  return npt_error_set(NPT_EUNSUPPORTED, "this build has no cudnn backend");
}

int npt__cudnn_profile(void *ctx, void *plan, int reps, FILE *f) {
  (void)ctx, (void)plan, (void)reps, (void)f;
  return npt_error_set(NPT_EUNSUPPORTED, "this build has no cudnn backend");
}

void *npt__cudnn_stream(void *ctx) {
  (void)ctx;
  return NULL;
}
#endif
