// The network's ops that cuDNN does not run for the cudnn backend (src/nn/cuda/): one
// elementwise kernel (conv epilogue, add, upsample, concat), a direct convolution for thin
// layers, pooling, and layout conversions for the backend's host interface.
//
// Tensors are NHWC.  The elementwise kernel has two versions: the simple one, one thread per
// element, for any channel count and type; and the one the network runs, eight fp16 channels per
// thread with 16-byte loads and stores, used when every tensor involved is fp16 with channel
// counts, strides and offsets that are multiples of 8.  Both compute the same fp32 sums; the
// tests run both against the CPU backend.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nn/cuda/cuda_check.h"
#include "npt_kernels.h"

namespace {

constexpr unsigned kThreads = 256;
constexpr int kDirectMaxWeights = 12288; // 48 KB of fp32 weights in shared memory

struct EpiArgs {
  npt_dview raw;
  int has_raw;
  const float *bias;
  int n_add;
  npt_addend adds[NPT_K_MAX_ADDENDS];
  int act;
  npt_dview out;
};

__device__ __forceinline__ float ld(const npt_dview &t, size_t i) {
  return t.dt == NPT_DT_F16 ? __half2float(static_cast<const __half *>(t.p)[i])
                            : static_cast<const float *>(t.p)[i];
}

__device__ __forceinline__ void st(const npt_dview &t, size_t i, float v) {
  if (t.dt == NPT_DT_F16)
    static_cast<__half *>(t.p)[i] = __float2half_rn(v);
  else
    static_cast<float *>(t.p)[i] = v;
}

__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
  case NPT_K_ACT_RELU:
    return v > 0.0f ? v : 0.0f;
  case NPT_K_ACT_SILU:
    return v / (1.0f + expf(-v));
  case NPT_K_ACT_SIGMOID:
    return 1.0f / (1.0f + expf(-v));
  default:
    return v;
  }
}

// V channels of pixel `pix` from channel ch of t: 8 fp16 in one 16-byte load, or one of any type.
template <int V>
__device__ __forceinline__ void load(const npt_dview &t, size_t pix, int ch, float *v) {
  size_t off = pix * (size_t)t.cs + t.c0 + ch;
  if constexpr (V == 8) {
    uint4 u = *reinterpret_cast<const uint4 *>(static_cast<const __half *>(t.p) + off);
    const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
    for (int k = 0; k < 4; k++) {
      float2 f = __half22float2(h[k]);
      v[2 * k] = f.x, v[2 * k + 1] = f.y;
    }
  } else {
    v[0] = ld(t, off);
  }
}

// PyTorch's bilinear source index (align_corners = false), as the CPU backend computes it.
__device__ __forceinline__ void bilinear_index(int dst, int scale, int in, int *i0, int *i1,
                                               float *l0, float *l1) {
  float src = __fsub_rn(__fmul_rn(1.0f / (float)scale, __fadd_rn((float)dst, 0.5f)), 0.5f);
  if (src < 0.0f)
    src = 0.0f;
  int i = (int)src;
  *i0 = i;
  *i1 = i < in - 1 ? i + 1 : i;
  *l1 = src - (float)i;
  *l0 = 1.0f - *l1;
}

// acc += addend a at output pixel (b, y, x), channels ch .. ch + V - 1.
template <int V>
__device__ __forceinline__ void add_term(const npt_addend &a, int b, int y, int x, int ch,
                                         float *acc) {
  const npt_dview &t = a.t;
  float v[V];
  if (a.scale == 1 || !a.bilinear) {
    int sy = y / a.scale, sx = x / a.scale;
    load<V>(t, ((size_t)b * t.h + sy) * t.w + sx, ch, v);
#pragma unroll
    for (int k = 0; k < V; k++)
      acc[k] += v[k];
    return;
  }
  int y0, y1, x0, x1;
  float hy0, hy1, wx0, wx1;
  bilinear_index(y, a.scale, t.h, &y0, &y1, &hy0, &hy1);
  bilinear_index(x, a.scale, t.w, &x0, &x1, &wx0, &wx1);
  size_t r0 = ((size_t)b * t.h + y0) * t.w, r1 = ((size_t)b * t.h + y1) * t.w;
  float p00[V], p01[V], p10[V], p11[V];
  load<V>(t, r0 + x0, ch, p00);
  load<V>(t, r0 + x1, ch, p01);
  load<V>(t, r1 + x0, ch, p10);
  load<V>(t, r1 + x1, ch, p11);
#pragma unroll
  for (int k = 0; k < V; k++)
    acc[k] += hy0 * (wx0 * p00[k] + wx1 * p01[k]) + hy1 * (wx0 * p10[k] + wx1 * p11[k]);
}

template <int V> __global__ void epilogue_kernel(const EpiArgs a) {
  const npt_dview &o = a.out;
  const int groups = o.c / V;
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  size_t total = (size_t)o.n * o.h * o.w * groups;
  if (i >= total)
    return;
  int ch = (int)(i % groups) * V;
  size_t pix = i / groups;
  int x = (int)(pix % o.w);
  size_t row = pix / o.w;
  int y = (int)(row % o.h), b = (int)(row / o.h);
  float acc[V];
#pragma unroll
  for (int k = 0; k < V; k++)
    acc[k] = 0.0f;
  if (a.has_raw)
    load<V>(a.raw, pix, ch, acc);
  if (a.bias) {
#pragma unroll
    for (int k = 0; k < V; k++)
      acc[k] += a.bias[ch + k];
  }
  for (int m = 0; m < a.n_add; m++)
    add_term<V>(a.adds[m], b, y, x, ch, acc);
  size_t off = pix * (size_t)o.cs + o.c0 + ch;
  if constexpr (V == 8) {
    uint4 u;
    __half2 *h = reinterpret_cast<__half2 *>(&u);
#pragma unroll
    for (int k = 0; k < 4; k++)
      h[k] = __floats2half2_rn(activate(acc[2 * k], a.act), activate(acc[2 * k + 1], a.act));
    *reinterpret_cast<uint4 *>(static_cast<__half *>(o.p) + off) = u;
  } else {
    st(o, off, activate(acc[0], a.act));
  }
}

bool vec8_ok(const npt_dview &t) {
  return t.dt == NPT_DT_F16 && t.c % 8 == 0 && t.cs % 8 == 0 && t.c0 % 8 == 0 &&
         reinterpret_cast<uintptr_t>(t.p) % 16 == 0;
}

bool view_ok(const npt_dview *t) {
  return t && t->p && t->n > 0 && t->h > 0 && t->w > 0 && t->c > 0 && t->c0 >= 0 &&
         t->c0 + t->c <= t->cs && (t->dt == NPT_DT_F16 || t->dt == NPT_DT_F32);
}

unsigned blocks_for(size_t total) {
  return (unsigned)((total + kThreads - 1) / kThreads);
}

struct DirectArgs {
  npt_dview x;
  const float *w, *bias;
  int kh, kw, stride, pad, dil, act;
  int n_add;
  npt_addend adds[NPT_K_MAX_ADDENDS];
  npt_dview out;
};

// One thread per output pixel computes all c_out <= CO channels in fp32.  The weights sit in
// shared memory as [tap][c_in][CO] (zero past c_out), read four output channels at a time, the
// same address across the warp (a broadcast).  VIN: the input is read eight fp16 channels per
// 16-byte load; VOUT: the addends are read and the output written eight channels at a time.
template <int CO, bool VIN, bool VOUT> __global__ void conv_direct_kernel(const DirectArgs a) {
  extern __shared__ float4 sw4[];
  float *sw = reinterpret_cast<float *>(sw4);
  const npt_dview &x = a.x, &out = a.out;
  const int c_in = x.c, c_out = out.c, taps = a.kh * a.kw * c_in;
  for (int i = threadIdx.x; i < taps * CO; i += blockDim.x) {
    int co = i % CO, k = i / CO;
    sw[i] = co < c_out ? a.w[(size_t)k * c_out + co] : 0.0f;
  }
  __syncthreads();
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)out.n * out.h * out.w)
    return;
  int ox = (int)(i % out.w);
  size_t row = i / out.w;
  int oy = (int)(row % out.h), b = (int)(row / out.h);
  float acc[CO];
#pragma unroll
  for (int co = 0; co < CO; co++)
    acc[co] = a.bias && co < c_out ? a.bias[co] : 0.0f;
  for (int ky = 0; ky < a.kh; ky++) {
    int iy = oy * a.stride - a.pad + ky * a.dil;
    if (iy < 0 || iy >= x.h)
      continue;
    for (int kx = 0; kx < a.kw; kx++) {
      int ix = ox * a.stride - a.pad + kx * a.dil;
      if (ix < 0 || ix >= x.w)
        continue;
      size_t pix = ((size_t)b * x.h + iy) * x.w + ix;
      const float4 *wt = sw4 + (size_t)(ky * a.kw + kx) * c_in * (CO / 4);
      for (int ci = 0; ci < c_in; ci += VIN ? 8 : 1) {
        float v[VIN ? 8 : 1];
        load<VIN ? 8 : 1>(x, pix, ci, v);
#pragma unroll
        for (int k = 0; k < (VIN ? 8 : 1); k++) {
          const float4 *wk = wt + (size_t)(ci + k) * (CO / 4);
#pragma unroll
          for (int q = 0; q < CO / 4; q++) {
            float4 w4 = wk[q];
            acc[4 * q] += v[k] * w4.x;
            acc[4 * q + 1] += v[k] * w4.y;
            acc[4 * q + 2] += v[k] * w4.z;
            acc[4 * q + 3] += v[k] * w4.w;
          }
        }
      }
    }
  }
  size_t off = i * (size_t)out.cs + out.c0;
  if constexpr (VOUT) {
#pragma unroll
    for (int g = 0; g < CO / 8; g++) {
      if (8 * g >= c_out)
        break;
      for (int m = 0; m < a.n_add; m++)
        add_term<8>(a.adds[m], b, oy, ox, 8 * g, &acc[8 * g]);
      uint4 u;
      __half2 *h = reinterpret_cast<__half2 *>(&u);
#pragma unroll
      for (int k = 0; k < 4; k++)
        h[k] = __floats2half2_rn(activate(acc[8 * g + 2 * k], a.act),
                                 activate(acc[8 * g + 2 * k + 1], a.act));
      *reinterpret_cast<uint4 *>(static_cast<__half *>(out.p) + off + 8 * g) = u;
    }
  } else {
#pragma unroll
    for (int co = 0; co < CO; co++) {
      if (co >= c_out)
        break;
      for (int m = 0; m < a.n_add; m++)
        add_term<1>(a.adds[m], b, oy, ox, co, &acc[co]);
      st(out, off + co, activate(acc[co], a.act));
    }
  }
}

struct HeadsArgs {
  npt_dview raw;
  const float *bias;
  int act, n_heads;
  npt_k_head heads[NPT_K_MAX_HEADS];
};

// A convolution's raw output through bias and activation, kept in registers, then straight into
// the 1x1 heads that read it: the trunk tensor is never stored.  One thread per pixel; the
// trunk has c <= CI channels; each head at most 8 outputs.
template <int CI, bool VIN> __global__ void epilogue_heads_kernel(const HeadsArgs a) {
  const npt_dview &r = a.raw;
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)r.n * r.h * r.w)
    return;
  float v[CI];
#pragma unroll
  for (int g = 0; g < CI / 8; g++) {
    if (8 * g >= r.c)
      break;
    if constexpr (VIN) {
      load<8>(r, i, 8 * g, &v[8 * g]);
    } else {
#pragma unroll
      for (int k = 0; k < 8; k++)
        if (8 * g + k < r.c)
          load<1>(r, i, 8 * g + k, &v[8 * g + k]);
    }
#pragma unroll
    for (int k = 0; k < 8; k++)
      if (8 * g + k < r.c)
        v[8 * g + k] = activate(v[8 * g + k] + (a.bias ? a.bias[8 * g + k] : 0.0f), a.act);
  }
  for (int h = 0; h < a.n_heads; h++) {
    const npt_k_head &hd = a.heads[h];
    size_t off = i * (size_t)hd.out.cs + hd.out.c0;
    for (int co = 0; co < hd.out.c; co++) {
      const float *w = hd.w + (size_t)co * r.c;
      float acc = hd.bias ? hd.bias[co] : 0.0f;
#pragma unroll
      for (int ci = 0; ci < CI; ci++)
        if (ci < r.c)
          acc += v[ci] * __ldg(w + ci);
      st(hd.out, off + co, activate(acc, hd.act));
    }
  }
}

__global__ void pool_kernel(const npt_dview x, int k, int stride, int pad, int is_max,
                            const npt_dview out) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)out.n * out.h * out.w * out.c)
    return;
  int c = (int)(i % out.c);
  size_t pix = i / out.c;
  int ox = (int)(pix % out.w);
  size_t row = pix / out.w;
  int oy = (int)(row % out.h), b = (int)(row / out.h);
  int ys = oy * stride - pad, ye = ys + k, xs = ox * stride - pad, xe = xs + k;
  int y0 = ys < 0 ? 0 : ys, y1 = ye > x.h ? x.h : ye;
  int x0 = xs < 0 ? 0 : xs, x1 = xe > x.w ? x.w : xe;
  float acc = is_max ? -INFINITY : 0.0f;
  for (int yy = y0; yy < y1; yy++)
    for (int xx = x0; xx < x1; xx++) {
      float v = ld(x, (((size_t)b * x.h + yy) * x.w + xx) * x.cs + x.c0 + c);
      if (is_max)
        acc = v > acc || isnan(v) ? v : acc;
      else
        acc += v;
    }
  if (!is_max) {
    int ph = (ye < x.h + pad ? ye : x.h + pad) - ys;
    int pw = (xe < x.w + pad ? xe : x.w + pad) - xs;
    acc /= (float)(ph * pw);
  }
  st(out, pix * (size_t)out.cs + out.c0 + c, acc);
}

__global__ void to_nchw_kernel(const npt_dview x, int scale, float *__restrict__ out) {
  int H = x.h * scale, W = x.w * scale;
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)x.n * x.c * H * W)
    return;
  int X = (int)(i % W);
  size_t r = i / W;
  int Y = (int)(r % H);
  r /= H;
  int c = (int)(r % x.c), b = (int)(r / x.c);
  out[i] = ld(x, (((size_t)b * x.h + Y / scale) * x.w + X / scale) * x.cs + x.c0 + c);
}

__global__ void from_nchw_kernel(const float *__restrict__ in, const npt_dview out) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)out.n * out.c * out.h * out.w)
    return;
  int X = (int)(i % out.w);
  size_t r = i / out.w;
  int Y = (int)(r % out.h);
  r /= out.h;
  int c = (int)(r % out.c), b = (int)(r / out.c);
  st(out, (((size_t)b * out.h + Y) * out.w + X) * out.cs + out.c0 + c, in[i]);
}

} // namespace

extern "C" int npt_k_epilogue(const npt_dview *raw, const float *bias, int n_add,
                              const npt_addend *adds, int act, const npt_dview *out, void *stream) {
  if (!view_ok(out) || n_add < 0 || n_add > NPT_K_MAX_ADDENDS || (n_add > 0 && !adds))
    return npt_error_set(NPT_EINVAL, "epilogue kernel: bad output view or %d addends", n_add);
  if (raw && (!view_ok(raw) || raw->n != out->n || raw->h != out->h || raw->w != out->w ||
              raw->c != out->c))
    return npt_error_set(NPT_EINVAL, "epilogue kernel: the conv output is not of the output's "
                                     "shape");
  if (act < NPT_K_ACT_NONE || act > NPT_K_ACT_SIGMOID)
    return npt_error_set(NPT_EINVAL, "epilogue kernel: unknown activation %d", act);
  EpiArgs a = {};
  a.has_raw = raw != nullptr;
  if (raw)
    a.raw = *raw;
  a.bias = bias;
  a.n_add = n_add;
  a.act = act;
  a.out = *out;
  bool vec = vec8_ok(*out) && (!raw || vec8_ok(*raw));
  for (int m = 0; m < n_add; m++) {
    const npt_addend &d = adds[m];
    if (!view_ok(&d.t) || d.scale < 1 || d.t.n != out->n || d.t.c != out->c ||
        d.t.h * d.scale != out->h || d.t.w * d.scale != out->w)
      return npt_error_set(NPT_EINVAL,
                           "epilogue kernel: addend %d (%dx%dx%d x %d) does not fit the output "
                           "(%dx%dx%d)",
                           m, d.t.h, d.t.w, d.t.c, d.scale, out->h, out->w, out->c);
    a.adds[m] = d;
    vec = vec && vec8_ok(d.t);
  }
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  size_t pixels = (size_t)out->n * out->h * out->w;
  if (vec)
    epilogue_kernel<8><<<blocks_for(pixels * (out->c / 8)), kThreads, 0, s>>>(a);
  else
    epilogue_kernel<1><<<blocks_for(pixels * out->c), kThreads, 0, s>>>(a);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

extern "C" int npt_k_conv_direct(const npt_dview *x, const float *w, const float *bias, int kh,
                                 int kw, int stride, int pad, int dilation, int n_add,
                                 const npt_addend *adds, int act, const npt_dview *out,
                                 void *stream) {
  if (!view_ok(x) || !view_ok(out) || !w || kh < 1 || kw < 1 || stride < 1 || pad < 0 ||
      dilation < 1 || x->n != out->n || n_add < 0 || n_add > NPT_K_MAX_ADDENDS ||
      (n_add > 0 && !adds))
    return npt_error_set(NPT_EINVAL, "direct conv kernel: bad arguments");
  int co_t = out->c <= 8 ? 8 : out->c <= 16 ? 16 : out->c <= 32 ? 32 : 64;
  long weights = (long)co_t * kh * kw * x->c;
  if (out->c > 64 || weights > kDirectMaxWeights)
    return npt_error_set(NPT_EINVAL,
                         "direct conv kernel: %d output channels and %ld padded weights (at most "
                         "64 and %d)",
                         out->c, weights, kDirectMaxWeights);
  DirectArgs a = {};
  a.x = *x, a.w = w, a.bias = bias, a.kh = kh, a.kw = kw, a.stride = stride, a.pad = pad;
  a.dil = dilation, a.act = act, a.n_add = n_add, a.out = *out;
  bool vout = vec8_ok(*out);
  for (int m = 0; m < n_add; m++) {
    const npt_addend &d = adds[m];
    if (!view_ok(&d.t) || d.scale < 1 || d.t.n != out->n || d.t.c != out->c ||
        d.t.h * d.scale != out->h || d.t.w * d.scale != out->w)
      return npt_error_set(NPT_EINVAL, "direct conv kernel: addend %d does not fit the output", m);
    a.adds[m] = d;
    vout = vout && vec8_ok(d.t);
  }
  bool vin = vec8_ok(*x);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  size_t pixels = (size_t)out->n * out->h * out->w;
  size_t smem = (size_t)weights * sizeof(float);
  unsigned blocks = blocks_for(pixels);
#define NPT__DIRECT(CO)                                                                            \
  do {                                                                                             \
    if (vin && vout)                                                                               \
      conv_direct_kernel<CO, true, true><<<blocks, kThreads, smem, s>>>(a);                        \
    else if (vin)                                                                                  \
      conv_direct_kernel<CO, true, false><<<blocks, kThreads, smem, s>>>(a);                       \
    else if (vout)                                                                                 \
      conv_direct_kernel<CO, false, true><<<blocks, kThreads, smem, s>>>(a);                       \
    else                                                                                           \
      conv_direct_kernel<CO, false, false><<<blocks, kThreads, smem, s>>>(a);                      \
  } while (0)
  if (co_t == 8)
    NPT__DIRECT(8);
  else if (co_t == 16)
    NPT__DIRECT(16);
  else if (co_t == 32)
    NPT__DIRECT(32);
  else
    NPT__DIRECT(64);
#undef NPT__DIRECT
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

extern "C" int npt_k_epilogue_heads(const npt_dview *raw, const float *bias, int act, int n_heads,
                                    const npt_k_head *heads, void *stream) {
  if (!view_ok(raw) || raw->c > 64 || n_heads < 1 || n_heads > NPT_K_MAX_HEADS || !heads)
    return npt_error_set(NPT_EINVAL, "heads epilogue kernel: bad trunk (%d channels) or %d heads",
                         raw ? raw->c : 0, n_heads);
  HeadsArgs a = {};
  a.raw = *raw, a.bias = bias, a.act = act, a.n_heads = n_heads;
  for (int h = 0; h < n_heads; h++) {
    const npt_k_head &d = heads[h];
    if (!view_ok(&d.out) || !d.w || d.out.c > 8 || d.out.n != raw->n || d.out.h != raw->h ||
        d.out.w != raw->w)
      return npt_error_set(NPT_EINVAL, "heads epilogue kernel: head %d does not fit", h);
    a.heads[h] = d;
  }
  bool vin = vec8_ok(*raw);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  unsigned blocks = blocks_for((size_t)raw->n * raw->h * raw->w);
  if (raw->c <= 32) {
    if (vin)
      epilogue_heads_kernel<32, true><<<blocks, kThreads, 0, s>>>(a);
    else
      epilogue_heads_kernel<32, false><<<blocks, kThreads, 0, s>>>(a);
  } else {
    if (vin)
      epilogue_heads_kernel<64, true><<<blocks, kThreads, 0, s>>>(a);
    else
      epilogue_heads_kernel<64, false><<<blocks, kThreads, 0, s>>>(a);
  }
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

extern "C" int npt_k_pool(const npt_dview *x, int k, int stride, int pad, int is_max,
                          const npt_dview *out, void *stream) {
  if (!view_ok(x) || !view_ok(out) || k < 1 || stride < 1 || pad < 0 || x->c != out->c ||
      x->n != out->n)
    return npt_error_set(NPT_EINVAL, "pool kernel: bad arguments");
  size_t total = (size_t)out->n * out->h * out->w * out->c;
  pool_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      *x, k, stride, pad, is_max, *out);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

extern "C" int npt_k_to_nchw(const npt_dview *x, int scale, float *out, void *stream) {
  if (!view_ok(x) || scale < 1 || !out)
    return npt_error_set(NPT_EINVAL, "to_nchw kernel: bad arguments");
  size_t total = (size_t)x->n * x->c * x->h * scale * x->w * scale;
  to_nchw_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(*x, scale,
                                                                                        out);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}

extern "C" int npt_k_from_nchw(const float *in, const npt_dview *out, void *stream) {
  if (!view_ok(out) || !in)
    return npt_error_set(NPT_EINVAL, "from_nchw kernel: bad arguments");
  size_t total = (size_t)out->n * out->c * out->h * out->w;
  from_nchw_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(in, *out);
  NPT_CUDA_CHECK(cudaGetLastError());
  return 0;
}
