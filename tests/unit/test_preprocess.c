/* Frame preprocessing: the CPU reference against hand-computed values and, in frame mode
 * (per-frame statistics), against a plain two-pass double-precision formula; the GPU kernels
 * against the CPU reference (skipped without a GPU): fixed mode to fp16 accuracy, frame mode
 * bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
  npt_norm norm = {8, 0.5f, 0.25f, NPT_NORM_FIXED};
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
  npt_norm norm = {16, 0.0f, 1.0f, NPT_NORM_FIXED};
  float out[2];
  assert_int_equal(npt_preprocess_cpu(in, 1, 1, 2, 1, 2, &norm, out), 0);
  NPT_ASSERT_NEAR(out[0], 0.0, 1e-7);
  NPT_ASSERT_NEAR(out[1], 1.0, 1e-6);
}

static void test_cpu_rejects_bad_arguments(void **state) {
  (void)state;
  uint8_t in[4] = {0};
  float out[4];
  npt_norm bad_depth = {12, 0.5f, 0.25f, NPT_NORM_FIXED}, bad_std = {8, 0.5f, 0.0f, NPT_NORM_FIXED},
           ok = {8, 0.5f, 0.25f, NPT_NORM_FIXED};
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 2, 2, &bad_depth, out), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "bit depth must be 8 or 16 (got 12)");
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 2, 2, &bad_std, out), NPT_EINVAL);
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 1, 2, &ok, out), NPT_EINVAL);
  npt_norm bad_mode = {8, 0.5f, 0.25f, (npt_norm_mode)7};
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 2, 2, &bad_mode, out), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "unknown normalisation mode 7");
  /* Frame mode does not use the stored std; its sums are exact up to 2^32 pixels a frame. */
  npt_norm frame = {8, 0.5f, 0.0f, NPT_NORM_FRAME};
  assert_int_equal(npt_preprocess_cpu(in, 1, 2, 2, 2, 2, &frame, out), 0);
  assert_int_equal(npt_preprocess_cpu(in, 1, 65537, 65537, 65537, 65537, &frame, out), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "65537x65537 frames are over the 2^32 pixels");
}

/* ---- frame mode */

/* n frames of count pixels: frame f uniform in [base[f], base[f] + range[f]]. */
static void *random_frames(int bits, int n, size_t count, const int *base, const int *range,
                           uint64_t seed) {
  void *in = malloc((size_t)n * count * (size_t)(bits / 8));
  npt_rng rng;
  npt_rng_seed(&rng, seed, (uint64_t)bits);
  for (int f = 0; f < n; f++)
    for (size_t i = 0; i < count; i++) {
      int64_t v = npt_rng_int(&rng, base[f], base[f] + range[f]);
      if (bits == 8)
        ((uint8_t *)in)[f * count + i] = (uint8_t)v;
      else
        ((uint16_t *)in)[f * count + i] = (uint16_t)v;
    }
  return in;
}

static double grey(const void *in, int bits, size_t i) {
  return bits == 8 ? ((const uint8_t *)in)[i] : ((const uint16_t *)in)[i];
}

/* Frame mode against the textbook two-pass formula in double, padding included, and the
 * property that matters: the frame's output has mean 0 and (unless floored) std 1. */
static void check_frame_mode(int bits, int n, int h, int w, int hp, int wp, const int *base,
                             const int *range) {
  size_t count = (size_t)h * w, plane = (size_t)hp * wp;
  void *in = random_frames(bits, n, count, base, range, (uint64_t)(h * 1000 + w));
  float *out = malloc(sizeof *out * plane * n);
  for (size_t i = 0; i < plane * n; i++)
    out[i] = NAN;
  npt_norm norm = {bits, 0.5f, 0.25f, NPT_NORM_FRAME};
  assert_int_equal(npt_preprocess_cpu(in, n, h, w, hp, wp, &norm, out), 0);
  for (int f = 0; f < n; f++) {
    const size_t first = (size_t)f * count;
    double sum = 0, ss = 0;
    for (size_t i = 0; i < count; i++)
      sum += grey(in, bits, first + i);
    double mu = sum / (double)count;
    for (size_t i = 0; i < count; i++)
      ss += (grey(in, bits, first + i) - mu) * (grey(in, bits, first + i) - mu);
    double sd = sqrt(ss / (double)count), sigma = sd > 1.0 ? sd : 1.0;
    double out_sum = 0, out_ss = 0;
    for (int y = 0; y < hp; y++)
      for (int x = 0; x < wp; x++) {
        float got = out[f * plane + (size_t)y * wp + x];
        double want = 0.0;
        if (y < h && x < w)
          want = (grey(in, bits, first + (size_t)y * w + x) - mu) / sigma;
        /* float rounding of the result (2^-24 relative), and a hair for the reference's own
         * summation error. */
        if (!(fabs(got - want) <= 1.2e-7 * fabs(want) + 1e-9))
          fail_msg("%d-bit frame %d of %dx%d (mean %.6g, std %.6g): (%d, %d) is %.9g, want %.9g",
                   bits, f, h, w, mu, sd, y, x, (double)got, want);
        if (y < h && x < w)
          out_sum += got, out_ss += (double)got * got;
      }
    NPT_ASSERT_NEAR(out_sum / (double)count, 0.0, 1e-6);
    double out_var = out_ss / (double)count;
    if (sd >= 1.0)
      NPT_ASSERT_NEAR(out_var, 1.0, 1e-5);
    else
      NPT_ASSERT_NEAR(out_var, sd * sd, 1e-5);
  }
  free(in);
  free(out);
}

static void test_frame_mode_random(void **state) {
  (void)state;
  const int base8[3] = {0, 90, 200}, range8[3] = {255, 20, 1}; /* the last: std 0.5 */
  check_frame_mode(8, 3, 37, 53, 48, 64, base8, range8);
  check_frame_mode(8, 1, 1, 1, 16, 16, base8 + 1, range8 + 1);
  /* 16-bit: a camera using a small part of its range, a bright frame with little contrast,
   * and the full range on a frame big enough that N S2 needs more than 64 bits. */
  const int base16[3] = {1000, 60000, 0}, range16[3] = {50, 9, 65535};
  check_frame_mode(16, 2, 61, 29, 64, 32, base16, range16);
  check_frame_mode(16, 1, 509, 383, 512, 384, base16 + 2, range16 + 2);
}

static void test_frame_mode_values(void **state) {
  (void)state;
  /* Half 0, half 255: mean 127.5, std 127.5, so exactly -1 and +1.  A constant frame: all 0
   * (std floored at 1).  One pixel of 101 among 100s: std 0.37, floored, so y = x - mean. */
  uint8_t in[3][2][3] = {
      {{0, 255, 0}, {255, 0, 255}}, {{7, 7, 7}, {7, 7, 7}}, {{100, 100, 101}, {100, 100, 100}}};
  float out[3][4][4];
  memset(out, 0xff, sizeof out); /* NaN */
  npt_norm norm = {8, 0.45f, 0.2f, NPT_NORM_FRAME};
  assert_int_equal(npt_preprocess_cpu(in, 3, 2, 3, 4, 4, &norm, &out[0][0][0]), 0);
  const double mean2 = 601.0 / 6.0;
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) {
      int inside = y < 2 && x < 3;
      NPT_ASSERT_NEAR(out[0][y][x], inside ? (in[0][y][x] ? 1.0 : -1.0) : 0.0, 0.0);
      NPT_ASSERT_NEAR(out[1][y][x], 0.0, 0.0);
      NPT_ASSERT_NEAR(out[2][y][x], inside ? (float)(in[2][y][x] - mean2) : 0.0, 0.0);
    }
  /* Each frame by its own statistics: a frame alone gives what it gave in the batch. */
  float alone[4][4];
  assert_int_equal(npt_preprocess_cpu(in[2], 1, 2, 3, 4, 4, &norm, &alone[0][0]), 0);
  assert_memory_equal(alone, out[2], sizeof alone);
  /* 16-bit: no full-scale factor in frame mode, so 8- and 16-bit frames of the same grey
   * levels give the same input. */
  uint16_t in16[2][3];
  for (int i = 0; i < 6; i++)
    in16[i / 3][i % 3] = in[2][i / 3][i % 3];
  norm.bit_depth = 16;
  assert_int_equal(npt_preprocess_cpu(in16, 1, 2, 3, 4, 4, &norm, &alone[0][0]), 0);
  assert_memory_equal(alone, out[2], sizeof alone);
}

#ifdef NPT_HAVE_CUDA
static float half_to_float(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0 ? ldexpf((float)man, -24) : ldexpf((float)(man | 1024), exp - 25);
  return sign ? -v : v;
}

/* IEEE half nearest to finite f (ties to even), as __float2half_rn rounds. */
static uint16_t float_to_half(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffff;
  if (a >= 0x477ff000) /* 65520 and up round to infinity */
    return sign | 0x7c00;
  if (a < 0x38800000) { /* below 2^-14: a subnormal half, in units of 2^-24 */
    float m;
    memcpy(&m, &a, sizeof m);
    return sign | (uint16_t)lrintf(m * 16777216.0f);
  }
  a += 0xfff + ((a >> 13) & 1); /* round the 13 dropped bits to nearest even */
  return sign | (uint16_t)((a - ((uint32_t)(127 - 15) << 23)) >> 13);
}

/* The GPU against the CPU on the same frames.  Fixed mode: to fp16 accuracy (the GPU fuses
 * x * a + b).  Frame mode: bit for bit, the CPU's float rounded to half, because the sums are
 * exact integers and the rest is the same correctly rounded double arithmetic. */
static void check_gpu(npt_norm_mode mode, int bit_depth, int n, int h, int w, int hp, int wp,
                      const int *base, const int *range) {
  size_t count = (size_t)h * w, in_bytes = (size_t)n * count * (bit_depth / 8),
         plane = (size_t)hp * wp;
  void *in = random_frames(bit_depth, n, count, base, range, (uint64_t)(bit_depth * 1000 + w));
  float *want = malloc(sizeof *want * plane * n);
  uint16_t *got = malloc(sizeof *got * plane * n);
  npt_norm norm = {bit_depth, 0.37f, 0.19f, mode};
  assert_int_equal(npt_preprocess_cpu(in, n, h, w, hp, wp, &norm, want), 0);
  void *d_in;
  uint16_t *d_out;
  assert_int_equal(cudaMalloc(&d_in, in_bytes), cudaSuccess);
  assert_int_equal(cudaMalloc((void **)&d_out, sizeof *d_out * plane * n), cudaSuccess);
  assert_int_equal(cudaMemcpy(d_in, in, in_bytes, cudaMemcpyHostToDevice), cudaSuccess);
  assert_int_equal(cudaMemset(d_out, 0xff, sizeof *d_out * plane * n), cudaSuccess); /* NaN */
  int rc = npt_preprocess_cuda(d_in, n, h, w, hp, wp, &norm, d_out, NULL);
  if (rc)
    fail_msg("%s", npt_error_msg(rc));
  assert_int_equal(cudaMemcpy(got, d_out, sizeof *got * plane * n, cudaMemcpyDeviceToHost),
                   cudaSuccess);
  for (size_t i = 0; i < plane * n; i++) {
    float g = half_to_float(got[i]), r = want[i];
    if (mode == NPT_NORM_FRAME ? got[i] != float_to_half(r)
                               /* One fp16 rounding: relative 2^-11, plus a little for the fma. */
                               : !(fabsf(g - r) <= 1e-3f * fabsf(r) + 1e-4f))
      fail_msg("%s mode, %d-bit, frame %zu of %dx%d, element %zu: GPU %.9g (0x%04x), CPU %.9g",
               mode == NPT_NORM_FRAME ? "frame" : "fixed", bit_depth, i / plane, h, w, i % plane,
               (double)g, got[i], (double)r);
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
  /* The half converter itself: exact values, a tie to even, a subnormal, overflow. */
  assert_int_equal(float_to_half(1.0f), 0x3c00);
  assert_int_equal(float_to_half(-2.0f), 0xc000);
  assert_int_equal(float_to_half(1.0f + 0x1p-11f), 0x3c00);
  assert_int_equal(float_to_half(1.0f + 0x3p-11f), 0x3c02);
  assert_int_equal(float_to_half(0x1p-24f), 0x0001);
  assert_int_equal(float_to_half(65520.0f), 0x7c00);
  const int full8[3] = {0, 0, 0}, span8[3] = {255, 255, 255};
  const int full16[2] = {0, 0}, span16[2] = {65535, 65535};
  check_gpu(NPT_NORM_FIXED, 8, 3, 37, 53, 40, 64, full8, span8);
  check_gpu(NPT_NORM_FIXED, 16, 2, 64, 64, 64, 64, full16, span16);
  check_gpu(NPT_NORM_FIXED, 8, 1, 512, 512, 512, 512, full8, span8);
  /* Frame mode: frames of different statistics in one call (the full range, a narrow band, a
   * constant frame, std below the floor), odd sizes with padding, one block and many blocks
   * per frame, and 16-bit frames whose N S2 needs more than 64 bits. */
  const int base8[4] = {0, 90, 17, 200}, range8[4] = {255, 20, 0, 1};
  check_gpu(NPT_NORM_FRAME, 8, 4, 37, 53, 48, 64, base8, range8);
  check_gpu(NPT_NORM_FRAME, 8, 4, 1, 1, 16, 16, base8, range8);
  check_gpu(NPT_NORM_FRAME, 8, 3, 1021, 1531, 1024, 1536, base8, range8);
  const int base16[4] = {1000, 60000, 0, 31000}, range16[4] = {50, 9, 65535, 0};
  check_gpu(NPT_NORM_FRAME, 16, 4, 61, 29, 64, 32, base16, range16);
  check_gpu(NPT_NORM_FRAME, 16, 3, 2048, 2048, 2048, 2048, base16 + 1, range16 + 1);
}
#else
static void test_gpu_matches_cpu(void **state) {
  (void)state;
  skip(); /* built without CUDA */
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cpu_values_and_padding),    cmocka_unit_test(test_cpu_16bit),
      cmocka_unit_test(test_cpu_rejects_bad_arguments), cmocka_unit_test(test_frame_mode_random),
      cmocka_unit_test(test_frame_mode_values),         cmocka_unit_test(test_gpu_matches_cpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
