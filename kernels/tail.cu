// The stride-2 tail in one pass (npt_tail.h says what it computes and what it costs): version 1,
// CUDA-core fp32 FMAs, the simple reference for a tensor-core version.  Every index and sum is
// the shared header's, which tests/unit/test_cudnn_tail.c runs on the host against a naive
// convolution chain; tests/gpu/test_gpu_backend.c compares the kernel with the CPU backend.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nn/cuda/cuda_check.h"
#include "npt_kernels.h"
#include "npt_tail.h"

namespace {

struct TailArgs {
  npt_dview x;        // CI channels, fp16, the heads' resolution
  const float *prm;   // NPT_TAIL_PARAMS floats (npt_tail_pack)
  int act_f, act_t;   // activations of F and T
  int tiles_y, tiles_x;
  long tiles;         // x.n * tiles_y * tiles_x
  int n_heads;
  npt_k_head heads[NPT_K_MAX_HEADS];
};

__device__ __forceinline__ void store(const npt_dview &t, size_t i, float v) {
  if (t.dt == NPT_DT_F16)
    static_cast<__half *>(t.p)[i] = __float2half_rn(v);
  else
    static_cast<float *>(t.p)[i] = v;
}

// Persistent blocks: the parameters are loaded into shared memory once per block, then the block
// walks the tiles blockIdx.x, blockIdx.x + gridDim.x, ...
__global__ void __launch_bounds__(NPT_TAIL_THREADS) tail_kernel(const TailArgs a) {
  extern __shared__ float4 smem4[];
  float *prm = reinterpret_cast<float *>(smem4);
  uint16_t *xs = reinterpret_cast<uint16_t *>(prm + NPT_TAIL_PARAMS);
  uint16_t *fs = xs + NPT_TAIL_XS_HALVES;
  const int tid = threadIdx.x;
  for (int i = tid; i < NPT_TAIL_PARAMS; i += NPT_TAIL_THREADS)
    prm[i] = __ldg(a.prm + i);
  const npt_dview &x = a.x;
  const __half *xp = static_cast<const __half *>(x.p);
  for (long blk = blockIdx.x; blk < a.tiles; blk += gridDim.x) {
    int b, y0, x0;
    npt_tail_tile(blk, a.tiles_y, a.tiles_x, &b, &y0, &x0);
    __syncthreads(); // the previous tile's readers are done (and the parameters are in)
    // X's tile, 8 channels (16 bytes) per load; zeros outside the frame.
    constexpr int kGroups = NPT_TAIL_CI / 8;
    for (int i = tid; i < NPT_TAIL_XH * NPT_TAIL_XW * kGroups; i += NPT_TAIL_THREADS) {
      int pos = i / kGroups, g = i % kGroups, r = pos / NPT_TAIL_XW, c = pos % NPT_TAIL_XW, y, xx;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (npt_tail_x_src(y0, x0, r, c, x.h, x.w, &y, &xx))
        v = __ldg(reinterpret_cast<const uint4 *>(
            xp + (((size_t)b * x.h + y) * x.w + xx) * (size_t)x.cs + x.c0 + 8 * g));
      // The pixel stride is an odd number of words, not a multiple of 16 bytes: 4 word stores.
      uint32_t *d = reinterpret_cast<uint32_t *>(xs + npt_tail_xs(r, c, 8 * g));
      d[0] = v.x, d[1] = v.y, d[2] = v.z, d[3] = v.w;
    }
    __syncthreads();
    for (int pos = tid; pos < NPT_TAIL_FH * NPT_TAIL_FW; pos += NPT_TAIL_THREADS) {
      int r = pos / NPT_TAIL_FW, c = pos % NPT_TAIL_FW;
      npt_tail_f_at(xs, prm, a.act_f, r, c, npt_tail_f_in(y0, x0, r, c, x.h, x.w), fs);
    }
    __syncthreads();
    int r = tid / NPT_TAIL_TW, c = tid % NPT_TAIL_TW, y = y0 + r, xx = x0 + c;
    if (y >= x.h || xx >= x.w)
      continue;
    float t[NPT_TAIL_CT];
    npt_tail_t_at(fs, prm, a.act_t, r, c, t);
    size_t pix = ((size_t)b * x.h + y) * x.w + xx;
    for (int h = 0; h < a.n_heads; h++) {
      const npt_k_head &hd = a.heads[h];
      size_t off = pix * (size_t)hd.out.cs + hd.out.c0;
      for (int co = 0; co < hd.out.c; co++)
        store(hd.out, off + co, npt_tail_head(t, hd.w, hd.bias, co, hd.act));
    }
  }
}

bool view_ok(const npt_dview *v) {
  return v && v->p && v->n > 0 && v->h > 0 && v->w > 0 && v->c > 0 && v->c0 >= 0 &&
         v->c0 + v->c <= v->cs;
}

} // namespace

extern "C" int npt_k_tail_prepare(int device, npt_k_tail_info *info) {
  if (!info)
    return npt_error_set(NPT_EINVAL, "tail kernel: no info");
  memset(info, 0, sizeof *info);
  int optin = 0, sms = 0, per_sm = 0;
  unsigned smem = npt_tail_smem_bytes();
  NPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  NPT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if ((int)smem > optin)
    return npt_error_set(NPT_EUNSUPPORTED,
                         "tail kernel: needs %u bytes of shared memory per block, device %d "
                         "allows %d",
                         smem, device, optin);
  NPT_CUDA_CHECK(
      cudaFuncSetAttribute(tail_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  NPT_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, tail_kernel, NPT_TAIL_THREADS, smem));
  if (per_sm < 1)
    return npt_error_set(NPT_EUNSUPPORTED, "tail kernel: no block fits an SM (%u bytes)", smem);
  info->smem_bytes = (int)smem;
  info->blocks_per_sm = per_sm;
  info->max_blocks = per_sm * sms;
  info->tile_h = NPT_TAIL_TH, info->tile_w = NPT_TAIL_TW, info->threads = NPT_TAIL_THREADS;
  return 0;
}

extern "C" int npt_k_tail(const npt_dview *x, const float *params, int act_f, int act_t,
                          int n_heads, const npt_k_head *heads, int max_blocks, void *stream) {
  if (!view_ok(x) || x->dt != NPT_DT_F16 || x->c != NPT_TAIL_CI || x->cs % 8 || x->c0 % 8 ||
      reinterpret_cast<uintptr_t>(x->p) % 16 || !params || max_blocks < 1)
    return npt_error_set(NPT_EINVAL,
                         "tail kernel: the input must be fp16 with %d channels at 16-byte "
                         "aligned pixels (got %d of %d from %d), and max_blocks >= 1 (%d)",
                         NPT_TAIL_CI, x ? x->c : 0, x ? x->cs : 0, x ? x->c0 : 0, max_blocks);
  if (n_heads < 1 || n_heads > NPT_K_MAX_HEADS || !heads)
    return npt_error_set(NPT_EINVAL, "tail kernel: %d heads", n_heads);
  TailArgs a = {};
  a.x = *x, a.prm = params, a.act_f = act_f, a.act_t = act_t, a.n_heads = n_heads;
  for (int h = 0; h < n_heads; h++) {
    const npt_k_head &d = heads[h];
    if (!view_ok(&d.out) || !d.w || d.out.c > 8 || d.out.n != x->n || d.out.h != x->h ||
        d.out.w != x->w)
      return npt_error_set(NPT_EINVAL, "tail kernel: head %d does not fit the input's %dx%dx%d",
                           h, x->n, x->h, x->w);
    a.heads[h] = d;
  }
  npt_tail_tiles(x->h, x->w, &a.tiles_y, &a.tiles_x);
  a.tiles = (long)x->n * a.tiles_y * a.tiles_x;
  long blocks = a.tiles < max_blocks ? a.tiles : max_blocks;
  tail_kernel<<<(unsigned)blocks, NPT_TAIL_THREADS, npt_tail_smem_bytes(),
                static_cast<cudaStream_t>(stream)>>>(a);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}
