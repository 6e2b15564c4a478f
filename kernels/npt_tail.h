/* The stride-2 tail kernel's arithmetic (kernels/tail.cu), shared by the kernel, the plan that
 * packs its weights (src/nn/cuda/cudnn_plan.c) and the host test that emulates it
 * (tests/unit/test_cudnn_tail.c): which pixels a tile reads, where they sit in shared memory,
 * the packing of the weights, and the per-pixel sums.  Every function is inline and compiles
 * for the host and the device, so the test runs the kernel's own indexing and loops in plain C.
 *
 * The tail (the shipped model's f2, hm1, box1 and the 1x1 heads, found by structure):
 *   X (CI channels, fp16, NHWC)  -- 3x3 conv, pad 1, bias, act_f -->  F (CF channels)
 *   F -- two 3x3 convs, pad 1, concatenated along the outputs (CT = 2 x 24), bias, act_t --> T
 *   T -- 1x1 heads (at most NPT_K_MAX_HEADS, each <= 8 outputs, fp32, as npt_k_epilogue_heads).
 * One block computes a TH x TW tile of outputs of one frame.  It loads X on the tile grown by
 * 2 on each side (two chained 3x3s), computes F on the tile grown by 1 (F is 0 outside the
 * frame: the second conv's zero padding), then T and the heads for the tile's pixels.  X and F
 * are kept in shared memory as fp16, F rounded once after its bias and activation as cuDNN
 * stores f2; T stays in fp32 registers, as in the heads epilogue.  The weights are fp32 (the
 * CPU reference's; cuDNN rounds them to fp16), in shared memory.
 *
 * Cost (shipped model, per output pixel at stride 2; 1024^2 frames have 512^2 of them):
 *   MACs: F 32 x 24 x 9 = 6,912, x (18 x 18) / (16 x 16) = 8,748 with the halo recomputed;
 *         T 24 x 48 x 9 = 10,368; heads 48 x 6 = 288: about 19,400 (17,500 without the halo).
 *   Bytes (device memory): read X 32 x 2 = 64, write heads 6 x 4 = 24: 88 per pixel, 23 MB per
 *         1024^2 frame (the halo's re-reads come from L2).  The steps it replaces move
 *         f2 64 + 48 = 112, hm1 48 in + 2 x 48 pre-epilogue + 8 = 152, box1 48 + 96 + 16 = 160:
 *         424 B per pixel, 111 MB per frame (merged heads: f2 read once, 376 B, 99 MB).
 *   At 2.5 TB/s: 9.2 us per frame fused against 44 us for the current steps (measured together
 *   4.2 ms per 32 frames, 131 us per frame).  But version 1 runs its 5.1 GMAC per frame on
 *   CUDA cores in fp32: at the H100's ~60 TFLOP/s that is ~170 us per frame, slower than the
 *   steps it replaces.  It is the correct, simple reference; the tensor-core version (implicit
 *   GEMM for the 24 -> 48 conv and the 32 -> 24 one, mma.sync fp16 -> fp32) is what can reach
 *   the memory bound.  Neither number has been measured. */
#ifndef NPT_TAIL_H
#define NPT_TAIL_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define NPT_HD static inline __host__ __device__
#else
#include <math.h>
#define NPT_HD static inline
#endif
/* Loops over channels are unrolled on the device, so that the accumulators stay in registers. */
#ifdef __CUDA_ARCH__
#define NPT_TAIL_UNROLL _Pragma("unroll")
#else
#define NPT_TAIL_UNROLL
#endif

/* Channel counts the kernel is compiled for (the shipped model's; the plan falls back to the
 * separate steps for any other), the tile, and the shared-memory pixel strides (in halves: odd
 * numbers of 32-bit words, so that neighbouring pixels fall in different banks). */
enum {
  NPT_TAIL_CI = 32,
  NPT_TAIL_CF = 24,
  NPT_TAIL_CT = 48,
  NPT_TAIL_TH = 16,
  NPT_TAIL_TW = 16,
  NPT_TAIL_THREADS = NPT_TAIL_TH * NPT_TAIL_TW, /* one output pixel per thread */
  NPT_TAIL_XH = NPT_TAIL_TH + 4,
  NPT_TAIL_XW = NPT_TAIL_TW + 4,
  NPT_TAIL_FH = NPT_TAIL_TH + 2,
  NPT_TAIL_FW = NPT_TAIL_TW + 2,
  NPT_TAIL_XS = NPT_TAIL_CI + 2, /* halves per X pixel in shared memory */
  NPT_TAIL_FS = NPT_TAIL_CF + 2, /* halves per F pixel */
  /* Packed parameters (floats): F's weights [tap][ci][cf], T's [tap][cf][ct], F's bias, T's. */
  NPT_TAIL_WF_OFF = 0,
  NPT_TAIL_WT_OFF = 9 * NPT_TAIL_CI * NPT_TAIL_CF,
  NPT_TAIL_BF_OFF = NPT_TAIL_WT_OFF + 9 * NPT_TAIL_CF * NPT_TAIL_CT,
  NPT_TAIL_BT_OFF = NPT_TAIL_BF_OFF + NPT_TAIL_CF,
  NPT_TAIL_PARAMS = NPT_TAIL_BT_OFF + NPT_TAIL_CT,
  NPT_TAIL_XS_HALVES = NPT_TAIL_XH * NPT_TAIL_XW * NPT_TAIL_XS,
  NPT_TAIL_FS_HALVES = NPT_TAIL_FH * NPT_TAIL_FW * NPT_TAIL_FS,
};

/* Shared memory of one block: the parameters, then X's tile, then F's. */
NPT_HD unsigned npt_tail_smem_bytes(void) {
  return (unsigned)(NPT_TAIL_PARAMS * 4 + NPT_TAIL_XS_HALVES * 2 + NPT_TAIL_FS_HALVES * 2);
}

/* Tiles per frame of h x w (at the tail's resolution). */
NPT_HD void npt_tail_tiles(int h, int w, int *tiles_y, int *tiles_x) {
  *tiles_y = (h + NPT_TAIL_TH - 1) / NPT_TAIL_TH;
  *tiles_x = (w + NPT_TAIL_TW - 1) / NPT_TAIL_TW;
}

/* Tile `blk` (frame-major, then rows, then columns): its frame and first output row and column. */
NPT_HD void npt_tail_tile(long blk, int tiles_y, int tiles_x, int *b, int *y0, int *x0) {
  long per = (long)tiles_y * tiles_x, rem = blk % per;
  *b = (int)(blk / per);
  *y0 = (int)(rem / tiles_x) * NPT_TAIL_TH;
  *x0 = (int)(rem % tiles_x) * NPT_TAIL_TW;
}

/* The frame pixel of X's tile position (r, c) (0 <= r < XH, 0 <= c < XW): 1 if it lies in the
 * frame, else 0 (read as 0: the first conv's padding). */
NPT_HD int npt_tail_x_src(int y0, int x0, int r, int c, int h, int w, int *y, int *x) {
  *y = y0 - 2 + r, *x = x0 - 2 + c;
  return *y >= 0 && *y < h && *x >= 0 && *x < w;
}

/* Whether F's tile position (r, c) (0 <= r < FH, 0 <= c < FW) lies in the frame (else F is 0
 * there: the second conv's padding). */
NPT_HD int npt_tail_f_in(int y0, int x0, int r, int c, int h, int w) {
  int y = y0 - 1 + r, x = x0 - 1 + c;
  return y >= 0 && y < h && x >= 0 && x < w;
}

/* Shared-memory indices (in halves) of channel k of X's and F's tile positions.  F's (r, c)
 * reads X's (r + ky, c + kx); output (r, c) reads F's (r + ky, c + kx), ky, kx in 0..2. */
NPT_HD int npt_tail_xs(int r, int c, int k) {
  return (r * NPT_TAIL_XW + c) * NPT_TAIL_XS + k;
}
NPT_HD int npt_tail_fs(int r, int c, int k) {
  return (r * NPT_TAIL_FW + c) * NPT_TAIL_FS + k;
}

/* Packed weight indices (tap = ky * 3 + kx). */
NPT_HD int npt_tail_wf(int tap, int ci, int co) {
  return NPT_TAIL_WF_OFF + (tap * NPT_TAIL_CI + ci) * NPT_TAIL_CF + co;
}
NPT_HD int npt_tail_wt(int tap, int ci, int co) {
  return NPT_TAIL_WT_OFF + (tap * NPT_TAIL_CF + ci) * NPT_TAIL_CT + co;
}

/* Packs the parameters (NPT_TAIL_PARAMS floats into out) from the graph's layout: wf
 * [CF][CI][3][3] and bf [CF] of the first conv; wt [CT][CF][3][3] and bt [CT] of the two
 * branch convs concatenated along their outputs (a merged node's). */
NPT_HD void npt_tail_pack(const float *wf, const float *bf, const float *wt, const float *bt,
                          float *out) {
  for (int co = 0; co < NPT_TAIL_CF; co++)
    for (int ci = 0; ci < NPT_TAIL_CI; ci++)
      for (int tap = 0; tap < 9; tap++)
        out[npt_tail_wf(tap, ci, co)] = wf[(co * NPT_TAIL_CI + ci) * 9 + tap];
  for (int co = 0; co < NPT_TAIL_CT; co++)
    for (int ci = 0; ci < NPT_TAIL_CF; ci++)
      for (int tap = 0; tap < 9; tap++)
        out[npt_tail_wt(tap, ci, co)] = wt[(co * NPT_TAIL_CF + ci) * 9 + tap];
  for (int co = 0; co < NPT_TAIL_CF; co++)
    out[NPT_TAIL_BF_OFF + co] = bf[co];
  for (int co = 0; co < NPT_TAIL_CT; co++)
    out[NPT_TAIL_BT_OFF + co] = bt[co];
}

/* fp16 <-> fp32 of shared memory's halves (IEEE bits; round to nearest even), the device's
 * intrinsics or their host equivalent. */
NPT_HD float npt_tail_h2f(uint16_t h) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(h));
#else
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
  if (e == 0x1fu) {
    x = sign | 0x7f800000u | (m << 13);
  } else if (e != 0) {
    x = sign | ((e + 112u) << 23) | (m << 13);
  } else if (m == 0) {
    x = sign;
  } else { /* subnormal: m x 2^-24 */
    float f = (float)m * 5.9604644775390625e-8f;
    memcpy(&x, &f, sizeof x);
    x |= sign;
  }
  float f;
  memcpy(&f, &x, sizeof f);
  return f;
#endif
}

NPT_HD uint16_t npt_tail_f2h(float f) {
#ifdef __CUDA_ARCH__
  return __half_as_ushort(__float2half_rn(f));
#else
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
  if (e == 0xffu)
    return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
  int ex = (int)e - 127 + 15;
  if (ex >= 31)
    return (uint16_t)(sign | 0x7c00u);
  if (ex <= 0) {
    if (ex < -10)
      return (uint16_t)sign;
    m |= 0x800000u;
    int shift = 14 - ex;
    uint32_t half = m >> shift, rest = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1u)))
      half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)ex << 10) | (m >> 13), rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    half++;
  return (uint16_t)half;
#endif
}

/* The activations of npt_kernels.h (NPT_K_ACT_*: 0 none, 1 relu, 2 silu, 3 sigmoid). */
NPT_HD float npt_tail_act(float v, int act) {
  switch (act) {
  case 1:
    return v > 0.0f ? v : 0.0f;
  case 2:
    return v / (1.0f + expf(-v));
  case 3:
    return 1.0f / (1.0f + expf(-v));
  default:
    return v;
  }
}

/* F at its tile position (r, c): act_f(bias + the 3x3 sum over X's tile), rounded to fp16 into
 * fs; 0 when the position lies outside the frame (in_frame 0). */
NPT_HD void npt_tail_f_at(const uint16_t *xs, const float *prm, int act_f, int r, int c,
                          int in_frame, uint16_t *fs) {
  float acc[NPT_TAIL_CF];
  NPT_TAIL_UNROLL
  for (int co = 0; co < NPT_TAIL_CF; co++)
    acc[co] = prm[NPT_TAIL_BF_OFF + co];
  for (int tap = 0; tap < 9; tap++) {
    const uint16_t *px = xs + npt_tail_xs(r + tap / 3, c + tap % 3, 0);
    for (int ci = 0; ci < NPT_TAIL_CI; ci++) {
      float v = npt_tail_h2f(px[ci]);
      const float *wr = prm + npt_tail_wf(tap, ci, 0);
NPT_TAIL_UNROLL
      for (int co = 0; co < NPT_TAIL_CF; co++)
        acc[co] += v * wr[co];
    }
  }
  uint16_t *out = fs + npt_tail_fs(r, c, 0);
  NPT_TAIL_UNROLL
  for (int co = 0; co < NPT_TAIL_CF; co++)
    out[co] = in_frame ? npt_tail_f2h(npt_tail_act(acc[co], act_f)) : (uint16_t)0;
}

/* T at output tile position (r, c), in fp32: act_t(bias + the 3x3 sum over F's tile). */
NPT_HD void npt_tail_t_at(const uint16_t *fs, const float *prm, int act_t, int r, int c,
                          float *t) {
  NPT_TAIL_UNROLL
  for (int co = 0; co < NPT_TAIL_CT; co++)
    t[co] = prm[NPT_TAIL_BT_OFF + co];
  for (int tap = 0; tap < 9; tap++) {
    const uint16_t *pf = fs + npt_tail_fs(r + tap / 3, c + tap % 3, 0);
    for (int ci = 0; ci < NPT_TAIL_CF; ci++) {
      float v = npt_tail_h2f(pf[ci]);
      const float *wr = prm + npt_tail_wt(tap, ci, 0);
NPT_TAIL_UNROLL
      for (int co = 0; co < NPT_TAIL_CT; co++)
        t[co] += v * wr[co];
    }
  }
  NPT_TAIL_UNROLL
  for (int co = 0; co < NPT_TAIL_CT; co++)
    t[co] = npt_tail_act(t[co], act_t);
}

/* Output co of a 1x1 head on T: act(bias + w[co] . t), w [c_out][CT] (npt_k_head's layout). */
NPT_HD float npt_tail_head(const float *t, const float *w, const float *bias, int co, int act) {
  float acc = bias ? bias[co] : 0.0f;
  NPT_TAIL_UNROLL
  for (int ci = 0; ci < NPT_TAIL_CT; ci++)
    acc += t[ci] * w[co * NPT_TAIL_CT + ci];
  return npt_tail_act(acc, act);
}

#endif
