// The stride-2 tail in one pass (npt_tail.h says what it computes and what it costs).  Version 1
// (tail_kernel): CUDA-core fp32 FMAs, the simple reference.  Version 2 (tail_mma_kernel): the
// same tiles with both 3x3 convolutions on tensor cores (mma.sync m16n8k16, fp16 -> fp32).
// Every index and sum is the shared header's, which tests/unit/test_cudnn_tail.c runs on the
// host against a naive convolution chain (version 2 with an emulated mma); tests/gpu/
// test_gpu_backend.c compares both kernels with the CPU backend.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nn/cuda/cuda_check.h"
#include "npt_kernels.h"
#include "npt_tail.h"

namespace {

struct TailArgs {
  npt_dview x;      // CI channels, fp16, the heads' resolution
  const void *prm;  // version 1: NPT_TAIL_PARAMS floats (npt_tail_pack); 2: npt_tail2_pack's
  int act_f, act_t; // activations of F and T
  int tiles_y, tiles_x;
  long tiles; // x.n * tiles_y * tiles_x
  int n_heads;
  npt_k_head heads[NPT_K_MAX_HEADS];
};

__device__ __forceinline__ void store(const npt_dview &t, size_t i, float v) {
  if (t.dt == NPT_DT_F16)
    static_cast<__half *>(t.p)[i] = __float2half_rn(v);
  else
    static_cast<float *>(t.p)[i] = v;
}

// X's tile of frame b at (y0, x0) into xs, 8 channels (16 bytes) per load; zeros outside the
// frame.  The pixel stride is an odd number of words, not a multiple of 16 bytes: 4 word stores.
__device__ __forceinline__ void load_x(const npt_dview &x, int b, int y0, int x0, uint16_t *xs) {
  const __half *xp = static_cast<const __half *>(x.p);
  constexpr int kGroups = NPT_TAIL_CI / 8;
  for (int i = threadIdx.x; i < NPT_TAIL_XH * NPT_TAIL_XW * kGroups; i += NPT_TAIL_THREADS) {
    int pos = i / kGroups, g = i % kGroups, r = pos / NPT_TAIL_XW, c = pos % NPT_TAIL_XW, y, xx;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (npt_tail_x_src(y0, x0, r, c, x.h, x.w, &y, &xx))
      v = __ldg(reinterpret_cast<const uint4 *>(
          xp + (((size_t)b * x.h + y) * x.w + xx) * (size_t)x.cs + x.c0 + 8 * g));
    uint32_t *d = reinterpret_cast<uint32_t *>(xs + npt_tail_xs(r, c, 8 * g));
    d[0] = v.x, d[1] = v.y, d[2] = v.z, d[3] = v.w;
  }
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
    prm[i] = __ldg(static_cast<const float *>(a.prm) + i);
  const npt_dview &x = a.x;
  for (long blk = blockIdx.x; blk < a.tiles; blk += gridDim.x) {
    int b, y0, x0;
    npt_tail_tile(blk, a.tiles_y, a.tiles_x, &b, &y0, &x0);
    __syncthreads(); // the previous tile's readers are done (and the parameters are in)
    load_x(x, b, y0, x0, xs);
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

__device__ __forceinline__ void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
               "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Version 2: eight warps; F's 21 m-tiles, then T's 16 (two per warp, each warp keeping its T rows
// in registers for the heads).
__global__ void __launch_bounds__(NPT_TAIL_THREADS) tail_mma_kernel(const TailArgs a) {
  extern __shared__ float4 smem4[];
  uint32_t *prm = reinterpret_cast<uint32_t *>(smem4);
  const uint16_t *wh = reinterpret_cast<const uint16_t *>(prm);
  const float *bias = reinterpret_cast<const float *>(prm + NPT_TAIL2_B_OFF);
  uint16_t *xs = reinterpret_cast<uint16_t *>(prm + NPT_TAIL2_WORDS);
  uint16_t *fs = xs + NPT_TAIL_XS_HALVES;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int i = tid; i < NPT_TAIL2_WORDS; i += NPT_TAIL_THREADS)
    prm[i] = __ldg(static_cast<const uint32_t *>(a.prm) + i);
  const npt_dview &x = a.x;
  for (long blk = blockIdx.x; blk < a.tiles; blk += gridDim.x) {
    int b, y0, x0;
    npt_tail_tile(blk, a.tiles_y, a.tiles_x, &b, &y0, &x0);
    __syncthreads();
    load_x(x, b, y0, x0, xs);
    __syncthreads();
    for (int mt = warp; mt < NPT_TAIL2_MF; mt += NPT_TAIL_THREADS / 32) {
      float acc[3][4] = {};
      for (int ks = 0; ks < NPT_TAIL2_KF / 16; ks++) {
        uint32_t af[4];
        npt_tail2_load_a(xs, 0, lane, mt, ks, af);
#pragma unroll
        for (int nt = 0; nt < 3; nt++) {
          uint32_t bf[2];
          npt_tail2_load_b(wh, 0, lane, nt, ks, bf);
          mma16816(acc[nt], af, bf);
        }
      }
#pragma unroll
      for (int nt = 0; nt < 3; nt++)
        npt_tail2_store_f(fs, bias, a.act_f, lane, mt, nt, acc[nt], y0, x0, x.h, x.w);
    }
    __syncthreads();
    for (int mt = warp; mt < NPT_TAIL2_MT; mt += NPT_TAIL_THREADS / 32) {
      float acc[6][4] = {};
      for (int ks = 0; ks < NPT_TAIL2_KT / 16; ks++) {
        uint32_t af[4];
        npt_tail2_load_a(fs, 1, lane, mt, ks, af);
#pragma unroll
        for (int nt = 0; nt < 6; nt++) {
          uint32_t bf[2];
          npt_tail2_load_b(wh, 1, lane, nt, ks, bf);
          mma16816(acc[nt], af, bf);
        }
      }
      npt_tail2_finish_t(acc, bias + NPT_TAIL_CF, a.act_t, lane);
      for (int hr = 0; hr < 2; hr++) { // rows g and g + 8 of the m-tile
        int p = mt * 16 + (lane >> 2) + 8 * hr, y = y0 + p / NPT_TAIL_TW, xx = x0 + p % NPT_TAIL_TW;
        bool valid = y < x.h && xx < x.w;
        for (int h = 0; h < a.n_heads; h++) { // uniform over the warp: the shuffles see all lanes
          const npt_k_head &hd = a.heads[h];
          for (int co = 0; co < hd.out.c; co++) {
            float v = npt_tail2_head_part(acc, hd.w, co, lane, hr);
            v += __shfl_xor_sync(0xffffffffu, v, 1);
            v += __shfl_xor_sync(0xffffffffu, v, 2);
            if ((lane & 3) == 0 && valid) {
              size_t pix = ((size_t)b * x.h + y) * x.w + xx;
              store(hd.out, pix * (size_t)hd.out.cs + hd.out.c0 + co,
                    npt_tail_act(v + (hd.bias ? hd.bias[co] : 0.0f), hd.act));
            }
          }
        }
      }
    }
  }
}

bool view_ok(const npt_dview *v) {
  return v && v->p && v->n > 0 && v->h > 0 && v->w > 0 && v->c > 0 && v->c0 >= 0 &&
         v->c0 + v->c <= v->cs;
}

} // namespace

extern "C" int npt_k_tail_prepare(int device, int version, npt_k_tail_info *info) {
  if (!info || (version != 1 && version != 2))
    return npt_error_set(NPT_EINVAL, "tail kernel: no info or version %d", version);
  memset(info, 0, sizeof *info);
  int optin = 0, sms = 0, per_sm = 0;
  unsigned smem = version == 2 ? npt_tail2_smem_bytes() : npt_tail_smem_bytes();
  const void *fn = version == 2 ? reinterpret_cast<const void *>(tail_mma_kernel)
                                : reinterpret_cast<const void *>(tail_kernel);
  NPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  NPT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if ((int)smem > optin)
    return npt_error_set(NPT_EUNSUPPORTED,
                         "tail kernel: needs %u bytes of shared memory per block, device %d "
                         "allows %d",
                         smem, device, optin);
  NPT_CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  NPT_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, NPT_TAIL_THREADS, smem));
  if (per_sm < 1)
    return npt_error_set(NPT_EUNSUPPORTED, "tail kernel: no block fits an SM (%u bytes)", smem);
  info->smem_bytes = (int)smem;
  info->blocks_per_sm = per_sm;
  info->max_blocks = per_sm * sms;
  info->tile_h = NPT_TAIL_TH, info->tile_w = NPT_TAIL_TW, info->threads = NPT_TAIL_THREADS;
  return 0;
}

extern "C" int npt_k_tail(int version, const npt_dview *x, const void *params, int act_f, int act_t,
                          int n_heads, const npt_k_head *heads, int max_blocks, void *stream) {
  if (version != 1 && version != 2)
    return npt_error_set(NPT_EINVAL, "tail kernel: version %d (1 or 2)", version);
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
      return npt_error_set(NPT_EINVAL, "tail kernel: head %d does not fit the input's %dx%dx%d", h,
                           x->n, x->h, x->w);
    a.heads[h] = d;
  }
  npt_tail_tiles(x->h, x->w, &a.tiles_y, &a.tiles_x);
  a.tiles = (long)x->n * a.tiles_y * a.tiles_x;
  long blocks = a.tiles < max_blocks ? a.tiles : max_blocks;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (version == 2)
    tail_mma_kernel<<<(unsigned)blocks, NPT_TAIL_THREADS, npt_tail2_smem_bytes(), s>>>(a);
  else
    tail_kernel<<<(unsigned)blocks, NPT_TAIL_THREADS, npt_tail_smem_bytes(), s>>>(a);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}
