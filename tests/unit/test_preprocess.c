/* Frame preprocessing: the CPU reference against hand-computed values, and the GPU kernel
 * against the CPU reference (skipped without a GPU). */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "nn/gpu_info.h"
#include "nn/preprocess.h"
#include "npt_test.h"
#ifdef NPT_HAVE_CUDA
#include <cuda_runtime.h>

#include "npt_kernels.h"
#endif

static void test_cpu_values_and_padding(void **state) {
  (void)state;
  const uint8_t in[2 * 2 * 3] = {0, 255, 51, 102, 153, 204, 1, 2, 3, 4, 5, 6};
  npt_norm norm = {8, 0.5f, 0.25f};
  float out[2 * 3 * 4];
  for (int i = 0; i < 24; i++)
    out[i] = NAN; /* poisoned: an unwritten element fails */
  assert_int_equal(npt_preprocess_cpu(in, 2, 2, 3, 3, 4, &norm, out), 0);
  for (int f = 0; f < 2; f++)
    for (int y = 0; y < 3; y++)
      for (int x = 0; x < 4; x++) {
        float got = out[(f * 3 + y) * 4 + x];
        float want = 0.0f;
        if (y < 2 && x < 3)
          want = ((float)in[(f * 2 + y) * 3 + x] / 255.0f - 0.5f) / 0.25f;
        NPT_ASSERT_NEAR(got, want, 1e-5);
      }
}

static void test_cpu_16bit(void **state) {
  (void)state;
  const uint16_t in[2] = {0, 65535};
  npt_norm norm = {16, 0.0f, 1.0f};
  float out[2];
  assert_int_equal(npt_preprocess_cpu(in, 1, 1, 2, 1, 2, &norm, out), 0);
  NPT_ASSERT_NEAR(out[0], 0.0, 1e-7);
  NPT_ASSERT_NEAR(out[1], 1.0, 1e-6);
}

static void test_cpu_rejects_bad_arguments(void **state) {
  (void)state;
  uint8_t in[4] = {0};
  float out[4];
  npt_norm bad_depth = {12, 0.5f, 0.25f}, bad_std = {8, 0.5f, 0.0f}, ok = {8, 0.5f, 0.25f};
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 2, 2, &bad_depth, out), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "bit depth must be 8 or 16 (got 12)");
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 2, 2, &bad_std, out), NPT_EINVAL);
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 1, 2, &ok, out), NPT_EINVAL);
}

#ifdef NPT_HAVE_CUDA
static float half_to_float(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0 ? ldexpf((float)man, -24) : ldexpf((float)(man | 1024), exp - 25);
  return sign ? -v : v;
}

static void check_gpu(int bit_depth, int n, int h, int w, int hp, int wp) {
  size_t in_bytes = (size_t)n * h * w * (bit_depth / 8), plane = (size_t)hp * wp;
  void *in = malloc(in_bytes);
  float *want = malloc(sizeof *want * plane * n);
  uint16_t *got = malloc(sizeof *got * plane * n);
  npt_rng rng;
  npt_rng_seed(&rng, 42, (uint64_t)(bit_depth * 1000 + w));
  for (size_t i = 0; i < in_bytes; i++)
    ((uint8_t *)in)[i] = (uint8_t)npt_rng_u64(&rng);
  npt_norm norm = {bit_depth, 0.37f, 0.19f};
  assert_int_equal(npt_preprocess_cpu(in, n, h, w, hp, wp, &norm, want), 0);
  void *d_in;
  uint16_t *d_out;
  assert_int_equal(cudaMalloc(&d_in, in_bytes), cudaSuccess);
  assert_int_equal(cudaMalloc((void **)&d_out, sizeof *d_out * plane * n), cudaSuccess);
  assert_int_equal(cudaMemcpy(d_in, in, in_bytes, cudaMemcpyHostToDevice), cudaSuccess);
  assert_int_equal(cudaMemset(d_out, 0xff, sizeof *d_out * plane * n), cudaSuccess); /* NaN */
  assert_int_equal(npt_preprocess_cuda(d_in, n, h, w, hp, wp, &norm, d_out, NULL), 0);
  assert_int_equal(cudaMemcpy(got, d_out, sizeof *got * plane * n, cudaMemcpyDeviceToHost),
                   cudaSuccess);
  for (size_t i = 0; i < plane * n; i++) {
    float g = half_to_float(got[i]), r = want[i];
    /* One fp16 rounding: relative 2^-11, plus a little for the fp32 fma. */
    if (!(fabsf(g - r) <= 1e-3f * fabsf(r) + 1e-4f))
      fail_msg("element %zu: GPU %g, CPU %g", i, (double)g, (double)r);
  }
  cudaFree(d_in);
  cudaFree(d_out);
  free(in);
  free(want);
  free(got);
}

static void test_gpu_matches_cpu(void **state) {
  (void)state;
  if (npt_gpu_count() == 0)
    skip();
  check_gpu(8, 3, 37, 53, 40, 64);
  check_gpu(16, 2, 64, 64, 64, 64);
  check_gpu(8, 1, 512, 512, 512, 512);
}
#else
static void test_gpu_matches_cpu(void **state) {
  (void)state;
  skip(); /* built without CUDA */
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cpu_values_and_padding),
      cmocka_unit_test(test_cpu_16bit),
      cmocka_unit_test(test_cpu_rejects_bad_arguments),
      cmocka_unit_test(test_gpu_matches_cpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
