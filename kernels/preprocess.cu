// Frame preprocessing on the GPU: integer frames to normalised fp16 planes, padded.
// One thread per output element; the arithmetic matches npt_preprocess_cpu (x * a + b in fp32,
// then one rounding to half).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nn/cuda/cuda_check.h"
#include "npt_kernels.h"

template <typename T>
__global__ void preprocess_kernel(const T *__restrict__ in, int n, int h, int w, int hp, int wp,
                                  float a, float b, __half *__restrict__ out) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  size_t plane = (size_t)hp * wp;
  if (i >= plane * n)
    return;
  int f = (int)(i / plane);
  int y = (int)(i % plane / wp), x = (int)(i % wp);
  float v = 0.0f;
  if (y < h && x < w)
    v = __fmaf_rn((float)in[((size_t)f * h + y) * w + x], a, b);
  out[i] = __float2half_rn(v);
}

extern "C" int npt_preprocess_cuda(const void *d_in, int n, int h, int w, int hp, int wp,
                                   const npt_norm *norm, uint16_t *d_out, void *stream) {
  if (!d_in || !d_out || !norm)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): NULL argument");
  if (norm->bit_depth != 8 && norm->bit_depth != 16)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): bit depth must be 8 or 16 (got %d)",
                         norm->bit_depth);
  if (!(norm->std > 0.0f))
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): std must be > 0");
  if (n < 0 || h <= 0 || w <= 0 || hp < h || wp < w)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): bad shape n=%d h=%d w=%d into %dx%d", n,
                         h, w, hp, wp);
  if (n == 0)
    return 0;
  float full = norm->bit_depth == 8 ? 255.0f : 65535.0f;
  float a = 1.0f / (full * norm->std), b = -norm->mean / norm->std;
  size_t total = (size_t)n * hp * wp;
  unsigned threads = 256, blocks = (unsigned)((total + threads - 1) / threads);
  cudaStream_t s = (cudaStream_t)stream;
  __half *out = reinterpret_cast<__half *>(d_out);
  if (norm->bit_depth == 8)
    preprocess_kernel<<<blocks, threads, 0, s>>>((const uint8_t *)d_in, n, h, w, hp, wp, a, b, out);
  else
    preprocess_kernel<<<blocks, threads, 0, s>>>((const uint16_t *)d_in, n, h, w, hp, wp, a, b,
                                                 out);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}
