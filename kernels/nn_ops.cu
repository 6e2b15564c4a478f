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

template <int CO>
__global__ void conv_direct_kernel(const npt_dview x, const float *__restrict__ w,
                                   const float *__restrict__ bias, int kh, int kw, int stride,
                                   int pad, int dil, int act, const npt_dview out) {
  extern __shared__ float sw[];
  const int c_in = x.c, c_out = out.c, per_out = kh * kw * c_in;
  for (int i = threadIdx.x; i < c_out * per_out; i += blockDim.x)
    sw[i] = w[i];
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
    acc[co] = co < c_out && bias ? bias[co] : 0.0f;
  for (int ky = 0; ky < kh; ky++) {
    int iy = oy * stride - pad + ky * dil;
    if (iy < 0 || iy >= x.h)
      continue;
    for (int kx = 0; kx < kw; kx++) {
      int ix = ox * stride - pad + kx * dil;
      if (ix < 0 || ix >= x.w)
        continue;
      size_t base = (((size_t)b * x.h + iy) * x.w + ix) * x.cs + x.c0;
      const float *wt = sw + (ky * kw + kx) * c_in;
      for (int ci = 0; ci < c_in; ci++) {
        float v = ld(x, base + ci);
#pragma unroll
        for (int co = 0; co < CO; co++)
          if (co < c_out)
            acc[co] += v * wt[co * per_out + ci];
      }
    }
  }
  size_t off = i * (size_t)out.cs + out.c0;
#pragma unroll
  for (int co = 0; co < CO; co++)
    if (co < c_out)
      st(out, off + co, activate(acc[co], act));
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
                                 int kw, int stride, int pad, int dilation, int act,
                                 const npt_dview *out, void *stream) {
  if (!view_ok(x) || !view_ok(out) || !w || kh < 1 || kw < 1 || stride < 1 || pad < 0 ||
      dilation < 1 || x->n != out->n)
    return npt_error_set(NPT_EINVAL, "direct conv kernel: bad arguments");
  long weights = (long)out->c * kh * kw * x->c;
  if (out->c > 64 || weights > kDirectMaxWeights)
    return npt_error_set(NPT_EINVAL,
                         "direct conv kernel: %d output channels and %ld weights (at most 64 "
                         "and %d)",
                         out->c, weights, kDirectMaxWeights);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  size_t pixels = (size_t)out->n * out->h * out->w;
  size_t smem = (size_t)weights * sizeof(float);
  unsigned blocks = blocks_for(pixels);
  if (out->c <= 8)
    conv_direct_kernel<8>
        <<<blocks, kThreads, smem, s>>>(*x, w, bias, kh, kw, stride, pad, dilation, act, *out);
  else if (out->c <= 16)
    conv_direct_kernel<16>
        <<<blocks, kThreads, smem, s>>>(*x, w, bias, kh, kw, stride, pad, dilation, act, *out);
  else if (out->c <= 32)
    conv_direct_kernel<32>
        <<<blocks, kThreads, smem, s>>>(*x, w, bias, kh, kw, stride, pad, dilation, act, *out);
  else
    conv_direct_kernel<64>
        <<<blocks, kThreads, smem, s>>>(*x, w, bias, kh, kw, stride, pad, dilation, act, *out);
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
