// Peak decoding on the GPU (npt_kernels.h): the peak test and threshold over every cell, then a
// packing pass that gathers each peak's embedding, L2-normalised, so that only compact peak lists
// travel back to the host.  The host finishes with the rules that need the whole, sorted list of
// a frame (src/nn/decode.c: out-of-view peaks, suppression, top-K), on the very values the CPU
// decoder would use, so the detections are the CPU decoder's to the bit.
//
// Plateaus (a candidate with an equal neighbour) are rare with continuous heads; the CPU decoder
// resolves them with a flood fill.  Rather than a second, parallel flood fill that would have to
// agree with it exactly, the kernel flags the frame and the host decodes that frame from its
// heads with the CPU decoder itself.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nn/cuda/cuda_check.h"
#include "npt_kernels.h"

namespace {

constexpr unsigned kThreads = 256;

__device__ __forceinline__ float ld(const npt_dview &t, size_t i) {
  return t.dt == NPT_DT_F16 ? __half2float(static_cast<const __half *>(t.p)[i])
                            : static_cast<const float *>(t.p)[i];
}

__device__ __forceinline__ size_t at(const npt_dview &t, int b, int y, int x, int c) {
  return (((size_t)b * t.h + y) * t.w + x) * t.cs + t.c0 + c;
}

__global__ void peaks_kernel(const npt_dview heat, const npt_dview size, const npt_dview off,
                             int hv, int wv, int r, float thr, int cap,
                             npt_gpu_peak *__restrict__ peaks, int *__restrict__ counts,
                             int *__restrict__ flags) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)heat.n * hv * wv)
    return;
  int j = (int)(i % wv);
  size_t rest = i / wv;
  int row = (int)(rest % hv), b = (int)(rest / hv);
  int y0 = row - r < 0 ? 0 : row - r, y1 = row + r >= hv ? hv - 1 : row + r;
  int x0 = j - r < 0 ? 0 : j - r, x1 = j + r >= wv ? wv - 1 : j + r;
  for (int c = 0; c < heat.c; c++) {
    float v = ld(heat, at(heat, b, row, j, c));
    if (!(v >= thr)) // also skips NaN
      continue;
    bool greater = false, equal = false;
    for (int y = y0; y <= y1 && !greater; y++)
      for (int x = x0; x <= x1; x++) {
        float u = ld(heat, at(heat, b, y, x, c));
        if (u > v) {
          greater = true;
          break;
        }
        if (u == v && (y != row || x != j))
          equal = true;
      }
    if (greater)
      continue;
    if (equal) {
      atomicOr(&flags[b], 1);
      continue;
    }
    int k = atomicAdd(&counts[b], 1);
    if (k >= cap)
      continue;
    npt_gpu_peak p;
    p.score = v;
    p.cls = c;
    p.idx = row * heat.w + j;
    p.ox = ld(off, at(off, b, row, j, 0));
    p.oy = ld(off, at(off, b, row, j, 1));
    p.sw = ld(size, at(size, b, row, j, 0));
    p.sh = ld(size, at(size, b, row, j, 1));
    p.pad_ = 0;
    peaks[(size_t)b * cap + k] = p;
  }
}

__global__ void offsets_kernel(const int *__restrict__ counts, int n, int cap,
                               int *__restrict__ offsets) {
  if (blockIdx.x != 0 || threadIdx.x != 0)
    return;
  int sum = 0;
  for (int f = 0; f < n; f++) {
    offsets[f] = sum;
    sum += counts[f] < cap ? counts[f] : cap;
  }
  offsets[n] = sum;
}

__global__ void pack_kernel(const npt_gpu_peak *__restrict__ peaks, const int *__restrict__ counts,
                            int cap, int w_out, const npt_dview emb, int has_emb, int emb_scale,
                            const int *__restrict__ offsets, npt_gpu_peak *__restrict__ packed,
                            float *__restrict__ packed_emb) {
  int f = blockIdx.y;
  int cnt = counts[f] < cap ? counts[f] : cap;
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < cnt; k += gridDim.x * blockDim.x) {
    npt_gpu_peak p = peaks[(size_t)f * cap + k];
    int o = offsets[f] + k;
    packed[o] = p;
    if (!has_emb)
      continue;
    // As the CPU decoder (decode.c, gather_embedding): the sum of squares in double in channel
    // order, each operation rounded once; a zero or non-finite norm gives zeros.
    int ei = p.idx / w_out / emb_scale, ej = p.idx % w_out / emb_scale;
    size_t base = at(emb, f, ei, ej, 0);
    double ss = 0.0;
    for (int d = 0; d < emb.c; d++) {
      double v = (double)ld(emb, base + d);
      ss = __dadd_rn(ss, __dmul_rn(v, v));
    }
    double norm = __dsqrt_rn(ss);
    float *dst = packed_emb + (size_t)o * emb.c;
    bool zero = !(norm > 0.0) || isinf(norm) || isnan(norm);
    for (int d = 0; d < emb.c; d++)
      dst[d] = zero ? 0.0f : __double2float_rn(__ddiv_rn((double)ld(emb, base + d), norm));
  }
}

bool view_ok(const npt_dview *t) {
  return t && t->p && t->n > 0 && t->h > 0 && t->w > 0 && t->c > 0 && t->c0 >= 0 &&
         t->c0 + t->c <= t->cs && (t->dt == NPT_DT_F16 || t->dt == NPT_DT_F32);
}

} // namespace

extern "C" int npt_k_decode_peaks(const npt_dview *heat, const npt_dview *size,
                                  const npt_dview *offset, int hv, int wv, int r, float thr,
                                  int cap, npt_gpu_peak *peaks, int *counts, int *flags,
                                  void *stream) {
  if (!view_ok(heat) || !view_ok(size) || !view_ok(offset) || !peaks || !counts || !flags)
    return npt_error_set(NPT_EINVAL, "decode kernel: NULL or bad head views");
  if (size->c != 2 || offset->c != 2 || size->n != heat->n || offset->n != heat->n ||
      size->h != heat->h || size->w != heat->w || offset->h != heat->h || offset->w != heat->w)
    return npt_error_set(NPT_EINVAL,
                         "decode kernel: size (%dx%dx%d) and offset (%dx%dx%d) heads must have 2 "
                         "channels on the heatmap's %dx%d cells",
                         size->h, size->w, size->c, offset->h, offset->w, offset->c, heat->h,
                         heat->w);
  if (hv < 1 || wv < 1 || hv > heat->h || wv > heat->w || r < 0 || cap < 1 ||
      (long long)heat->h * heat->w > 0x7fffffffLL)
    return npt_error_set(NPT_EINVAL,
                         "decode kernel: valid region %dx%d of %dx%d cells, radius %d, cap %d", hv,
                         wv, heat->h, heat->w, r, cap);
  size_t total = (size_t)heat->n * hv * wv;
  peaks_kernel<<<(unsigned)((total + kThreads - 1) / kThreads), kThreads, 0,
                 static_cast<cudaStream_t>(stream)>>>(*heat, *size, *offset, hv, wv, r, thr, cap,
                                                      peaks, counts, flags);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

extern "C" int npt_k_decode_pack(const npt_gpu_peak *peaks, const int *counts, int n, int cap,
                                 int w_out, const npt_dview *emb, int emb_scale,
                                 npt_gpu_peak *packed, float *packed_emb, int *offsets,
                                 void *stream) {
  if (!peaks || !counts || !packed || !offsets || n < 1 || n > 65535 || cap < 1 || w_out < 1 ||
      (emb && (!view_ok(emb) || !packed_emb || emb_scale < 1 || emb->n < n)))
    return npt_error_set(NPT_EINVAL, "decode pack kernel: bad arguments (%d frames)", n);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  offsets_kernel<<<1, 1, 0, s>>>(counts, n, cap, offsets);
  NPT_CUDA_CHECK(cudaGetLastError());
  npt_dview e = emb ? *emb : npt_dview{};
  pack_kernel<<<dim3(16, (unsigned)n), kThreads, 0, s>>>(
      peaks, counts, cap, w_out, e, emb != nullptr, emb_scale, offsets, packed, packed_emb);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}
