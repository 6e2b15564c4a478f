// Frame preprocessing on the GPU: integer frames to normalised fp16 planes, padded.
//
// Fixed mode: one thread per output element; the arithmetic matches npt_preprocess_cpu (x * a + b
// in fp32, then one rounding to half).
//
// Frame mode (per-frame statistics, src/nn/preprocess.h), in three launches on the stream:
//   1. frame_sums: each frame's S1 = sum x and S2 = sum x^2 in 64-bit integers.  A group of
//      blocks per frame; each block reduces its share and adds it to the frame's sums with an
//      integer atomic.  Integer sums are exact, so the result does not depend on the order the
//      blocks finish in: the statistics equal the CPU's to the last bit, not merely to 1e-12.
//   2. frame_finish: one thread per frame turns the sums into (mu, sigma) in double, with the
//      CPU's operations (the 128-bit N S2 - S1^2 by hand, then IEEE double, each rounded once).
//   3. frame_apply: one thread per output element, y = (x - mu) / sigma in double, rounded to
//      float (the CPU's value) and then to half.
// Explicit _rn intrinsics keep nvcc from fusing a multiply and an add, which would change the
// last bit.  The sums and statistics live in a stream-ordered scratch allocation (32 bytes a
// frame), freed on the stream.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nn/cuda/cuda_check.h"
#include "npt_kernels.h"

namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kMaxBlocksPerFrame = 512;
constexpr unsigned kPixelsPerThread = 16; // before another block is worth starting

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

// Block b of frame b / per_frame sums its strided share of the frame's count pixels into
// sums[2 f] (S1) and sums[2 f + 1] (S2), which start at 0.
template <typename T>
__global__ void frame_sums(const T *__restrict__ in, size_t count, unsigned per_frame,
                           unsigned long long *__restrict__ sums) {
  unsigned f = blockIdx.x / per_frame, part = blockIdx.x % per_frame;
  const T *src = in + (size_t)f * count;
  unsigned long long s1 = 0, s2 = 0;
  for (size_t i = (size_t)part * blockDim.x + threadIdx.x; i < count;
       i += (size_t)per_frame * blockDim.x) {
    unsigned long long x = src[i];
    s1 += x;
    s2 += x * x;
  }
  for (int off = 16; off > 0; off /= 2) {
    s1 += __shfl_down_sync(0xffffffffu, s1, off);
    s2 += __shfl_down_sync(0xffffffffu, s2, off);
  }
  __shared__ unsigned long long warp_s1[kThreads / 32], warp_s2[kThreads / 32];
  unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0)
    warp_s1[warp] = s1, warp_s2[warp] = s2;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (unsigned k = 1; k < blockDim.x / 32; k++)
      s1 += warp_s1[k], s2 += warp_s2[k];
    atomicAdd(&sums[2 * f], s1);
    atomicAdd(&sums[2 * f + 1], s2);
  }
}

// The unsigned 128-bit (hi, lo) rounded to the nearest double (ties to even), as the CPU's
// conversion of an unsigned __int128 rounds: the leading 64 bits, with the bits shifted out
// folded into the lowest one ("sticky"), convert with one correct rounding, because the sticky
// bit lies below the rounding position and only breaks false ties.
__device__ double u128_to_double(unsigned long long hi, unsigned long long lo) {
  if (hi == 0)
    return __ull2double_rn(lo);
  int k = 64 - __clzll((long long)hi); // bits of hi, 1..64
  unsigned long long top = k == 64 ? hi : (hi << (64 - k)) | (lo >> k);
  unsigned long long rest = k == 64 ? lo : lo << (64 - k);
  return scalbn(__ull2double_rn(top | (rest != 0)), k);
}

// ms[2 f], ms[2 f + 1] = mu, sigma of frame f (preprocess.h), from its sums.
__global__ void frame_finish(const unsigned long long *__restrict__ sums, int n,
                             unsigned long long count, double *__restrict__ ms) {
  int f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= n)
    return;
  unsigned long long s1 = sums[2 * f], s2 = sums[2 * f + 1];
  // d = count * s2 - s1 * s1, exact in 128 bits (and >= 0).
  unsigned long long a_lo = count * s2, a_hi = __umul64hi(count, s2);
  unsigned long long b_lo = s1 * s1, b_hi = __umul64hi(s1, s1);
  unsigned long long d_lo = a_lo - b_lo, d_hi = a_hi - b_hi - (a_lo < b_lo);
  double nd = __ull2double_rn(count);
  double var = __ddiv_rn(u128_to_double(d_hi, d_lo), __dmul_rn(nd, nd));
  double sd = __dsqrt_rn(var);
  ms[2 * f] = __ddiv_rn(__ull2double_rn(s1), nd);
  ms[2 * f + 1] = sd > 1.0 ? sd : 1.0;
}

template <typename T>
__global__ void frame_apply(const T *__restrict__ in, int n, int h, int w, int hp, int wp,
                            const double *__restrict__ ms, __half *__restrict__ out) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  size_t plane = (size_t)hp * wp;
  if (i >= plane * n)
    return;
  int f = (int)(i / plane);
  int y = (int)(i % plane / wp), x = (int)(i % wp);
  float v = 0.0f;
  if (y < h && x < w) {
    double d = __dsub_rn((double)in[((size_t)f * h + y) * w + x], ms[2 * f]);
    v = __double2float_rn(__ddiv_rn(d, ms[2 * f + 1]));
  }
  out[i] = __float2half_rn(v);
}

// The three launches of frame mode, given the scratch (sums, then ms).
template <typename T>
int frame_launch(const T *in, int n, int h, int w, int hp, int wp, unsigned per_frame,
                 unsigned long long *sums, double *ms, __half *out, cudaStream_t s) {
  size_t count = (size_t)h * w, total = (size_t)n * hp * wp;
  NPT_CUDA_CHECK(cudaMemsetAsync(sums, 0, (size_t)n * 2 * sizeof *sums, s));
  frame_sums<<<(unsigned)(n * per_frame), kThreads, 0, s>>>(in, count, per_frame, sums);
  NPT_CUDA_CHECK(cudaGetLastError());
  frame_finish<<<(unsigned)((n + 63) / 64), 64, 0, s>>>(sums, n, count, ms);
  NPT_CUDA_CHECK(cudaGetLastError());
  frame_apply<<<(unsigned)((total + kThreads - 1) / kThreads), kThreads, 0, s>>>(in, n, h, w, hp,
                                                                                 wp, ms, out);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

template <typename T>
int frame_mode(const T *in, int n, int h, int w, int hp, int wp, __half *out, cudaStream_t s) {
  size_t count = (size_t)h * w;
  size_t want = (count + kThreads * kPixelsPerThread - 1) / (kThreads * kPixelsPerThread);
  unsigned per_frame = want < kMaxBlocksPerFrame ? (unsigned)want : kMaxBlocksPerFrame;
  if ((size_t)n * per_frame > 0x7fffffffu)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): %d frames are too many for one call", n);
  void *scratch = nullptr;
  NPT_CUDA_CHECK(cudaMallocAsync(&scratch, (size_t)n * 4 * sizeof(double), s));
  auto *sums = static_cast<unsigned long long *>(scratch);
  double *ms = static_cast<double *>(scratch) + 2 * (size_t)n;
  int rc = frame_launch(in, n, h, w, hp, wp, per_frame, sums, ms, out, s);
  if (rc < 0) {
    cudaFreeAsync(scratch, s); /* the error that matters is the first */
    return rc;
  }
  NPT_CUDA_CHECK(cudaFreeAsync(scratch, s));
  return 0;
}

} // namespace

extern "C" int npt_preprocess_cuda(const void *d_in, int n, int h, int w, int hp, int wp,
                                   const npt_norm *norm, uint16_t *d_out, void *stream) {
  if (!d_in || !d_out || !norm)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): NULL argument");
  if (norm->bit_depth != 8 && norm->bit_depth != 16)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): bit depth must be 8 or 16 (got %d)",
                         norm->bit_depth);
  if (norm->mode != NPT_NORM_FIXED && norm->mode != NPT_NORM_FRAME)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): unknown normalisation mode %d",
                         (int)norm->mode);
  if (norm->mode == NPT_NORM_FIXED && !(norm->std > 0.0f))
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): std must be > 0");
  if (n < 0 || h <= 0 || w <= 0 || hp < h || wp < w)
    return npt_error_set(NPT_EINVAL, "preprocess (GPU): bad shape n=%d h=%d w=%d into %dx%d", n, h,
                         w, hp, wp);
  if (norm->mode == NPT_NORM_FRAME && (unsigned long long)h * w > (1ull << 32))
    return npt_error_set(NPT_EINVAL,
                         "preprocess (GPU): %dx%d frames are over the 2^32 pixels that "
                         "per-frame normalisation sums exactly",
                         h, w);
  if (n == 0)
    return 0;
  cudaStream_t s = (cudaStream_t)stream;
  __half *out = reinterpret_cast<__half *>(d_out);
  if (norm->mode == NPT_NORM_FRAME)
    return norm->bit_depth == 8
               ? frame_mode(static_cast<const uint8_t *>(d_in), n, h, w, hp, wp, out, s)
               : frame_mode(static_cast<const uint16_t *>(d_in), n, h, w, hp, wp, out, s);
  float full = norm->bit_depth == 8 ? 255.0f : 65535.0f;
  float a = 1.0f / (full * norm->std), b = -norm->mean / norm->std;
  size_t total = (size_t)n * hp * wp;
  unsigned threads = kThreads, blocks = (unsigned)((total + threads - 1) / threads);
  if (norm->bit_depth == 8)
    preprocess_kernel<<<blocks, threads, 0, s>>>((const uint8_t *)d_in, n, h, w, hp, wp, a, b, out);
  else
    preprocess_kernel<<<blocks, threads, 0, s>>>((const uint16_t *)d_in, n, h, w, hp, wp, a, b,
                                                 out);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}
