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
 *   steps it replaces.  It is the correct, simple reference; version 2 (below: both 3x3 convs
 *   as implicit GEMMs on tensor cores, ~1 PFLOP/s dense fp16 on the H100, ~10 us of tensor
 *   work per frame at peak) is the one that can approach the memory bound.  None of these
 *   numbers has been measured. */
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
NPT_HD void npt_tail_t_at(const uint16_t *fs, const float *prm, int act_t, int r, int c, float *t) {
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

/* ---- Version 2: tensor cores (kernels/tail.cu, tail_mma_kernel) ---------------------------
 * Both 3x3 convolutions as implicit GEMMs on mma.sync.m16n8k16 (fp16 x fp16 -> fp32), with the
 * same tiles, halos and shared-memory X and F as version 1:
 *   F:  rows = F's tile positions p (FH x FW = 324, padded to 21 m-tiles of 16), k = tap x CI +
 *       ci (288: 18 k-steps), n = CF (3 n-tiles of 8).  A(p, k) = X's (p / FW + ky, p % FW +
 *       kx, ci); B(k, n) = the weight, fp16 [n][k] (cuDNN's own [c_out][kh][kw][c_in]).
 *   T:  rows = the 256 output positions (16 m-tiles, two per warp), k = tap x CF + ci (216,
 *       padded to 224 with zeros: 14 k-steps), n = CT (6 n-tiles).  A reads F's tile.
 * The weights are rounded to fp16, as cuDNN uses them; the sums are fp32.  Each warp's T rows
 * stay in its registers, spread over the 4 lanes of each row's quad, for the heads: each lane
 * sums its 12 channels, then the quad adds its four sums (shuffles). */
enum {
  NPT_TAIL2_KF = 9 * NPT_TAIL_CI,                       /* 288 */
  NPT_TAIL2_KT = (9 * NPT_TAIL_CF + 15) / 16 * 16,      /* 224 */
  NPT_TAIL2_MF = (NPT_TAIL_FH * NPT_TAIL_FW + 15) / 16, /* 21 m-tiles of F */
  NPT_TAIL2_MT = NPT_TAIL_TH * NPT_TAIL_TW / 16,        /* 16 m-tiles of T */
  /* Packed fp16 weights (halves): F's [CF][KF], then T's [CT][KT] (zeros past 9 x CF). */
  NPT_TAIL2_WT_OFF = NPT_TAIL_CF * NPT_TAIL2_KF,
  NPT_TAIL2_W_HALVES = NPT_TAIL2_WT_OFF + NPT_TAIL_CT * NPT_TAIL2_KT,
  /* Packed parameters of version 2 as 32-bit words: the fp16 weights, then the fp32 biases
   * (F's CF, T's CT). */
  NPT_TAIL2_B_OFF = NPT_TAIL2_W_HALVES / 2,
  NPT_TAIL2_WORDS = NPT_TAIL2_B_OFF + NPT_TAIL_CF + NPT_TAIL_CT,
};

NPT_HD unsigned npt_tail2_smem_bytes(void) {
  return (unsigned)(NPT_TAIL2_WORDS * 4 + NPT_TAIL_XS_HALVES * 2 + NPT_TAIL_FS_HALVES * 2);
}

/* Fragment layouts of mma.m16n8k16 with fp16 inputs (PTX ISA, "Matrix fragments for
 * mma.m16n8k16"): lane = 4 g + q.  A (16 x 16, row-major) element i of 8: row g (+8 for i = 2,
 * 3, 6, 7), column 2 q + (i & 1) (+8 for i >= 4).  B (16 x 8) element i of 4: row 2 q + (i & 1)
 * (+8 for i >= 2), column g.  C, D (16 x 8, fp32) element i of 4: row g (+8 for i >= 2),
 * column 2 q + (i & 1).  Elements 2j and 2j + 1 of A and B share one 32-bit register, the
 * lower half first.  (Checked by hand against CUTLASS/CuTe's SM80_16x8x16 thread-value layouts,
 * an independent statement of the same table; the unit test can only check our own use of it.) */
NPT_HD void npt_tail2_frag_a(int lane, int i, int *row, int *k) {
  *row = (lane >> 2) + ((i >> 1) & 1) * 8;
  *k = (lane & 3) * 2 + (i & 1) + (i >> 2) * 8;
}
NPT_HD void npt_tail2_frag_b(int lane, int i, int *k, int *n) {
  *k = (lane & 3) * 2 + (i & 1) + (i >> 1) * 8;
  *n = lane >> 2;
}
NPT_HD void npt_tail2_frag_c(int lane, int i, int *row, int *n) {
  *row = (lane >> 2) + (i >> 1) * 8;
  *n = (lane & 3) * 2 + (i & 1);
}

/* Shared-memory half index of A(p, k) of the F GEMM (X's tile), or -1 for a padding row. */
NPT_HD int npt_tail2_a_f(int p, int k) {
  if (p >= NPT_TAIL_FH * NPT_TAIL_FW)
    return -1;
  int tap = k / NPT_TAIL_CI, ci = k % NPT_TAIL_CI;
  return npt_tail_xs(p / NPT_TAIL_FW + tap / 3, p % NPT_TAIL_FW + tap % 3, ci);
}
/* ... of A(p, k) of the T GEMM (F's tile), or -1 for a padding column. */
NPT_HD int npt_tail2_a_t(int p, int k) {
  if (k >= 9 * NPT_TAIL_CF)
    return -1;
  int tap = k / NPT_TAIL_CF, ci = k % NPT_TAIL_CF;
  return npt_tail_fs(p / NPT_TAIL_TW + tap / 3, p % NPT_TAIL_TW + tap % 3, ci);
}
/* Packed weight half index of B(k, n) of the F and the T GEMM. */
NPT_HD int npt_tail2_b_f(int k, int n) {
  return n * NPT_TAIL2_KF + k;
}
NPT_HD int npt_tail2_b_t(int k, int n) {
  return NPT_TAIL2_WT_OFF + n * NPT_TAIL2_KT + k;
}

/* Packs version 2's parameters (NPT_TAIL2_WORDS words into out) from the graph's layout, as
 * npt_tail_pack's arguments. */
NPT_HD void npt_tail2_pack(const float *wf, const float *bf, const float *wt, const float *bt,
                           uint32_t *out) {
  for (int i = 0; i < NPT_TAIL2_WORDS; i++)
    out[i] = 0;
  uint16_t h[2];
  for (int n = 0; n < NPT_TAIL_CF; n++)
    for (int k = 0; k < NPT_TAIL2_KF; k += 2) {
      for (int e = 0; e < 2; e++) {
        int tap = (k + e) / NPT_TAIL_CI, ci = (k + e) % NPT_TAIL_CI;
        h[e] = npt_tail_f2h(wf[(n * NPT_TAIL_CI + ci) * 9 + tap]);
      }
      out[npt_tail2_b_f(k, n) / 2] = (uint32_t)h[0] | (uint32_t)h[1] << 16;
    }
  for (int n = 0; n < NPT_TAIL_CT; n++)
    for (int k = 0; k < 9 * NPT_TAIL_CF; k += 2) {
      for (int e = 0; e < 2; e++) {
        int tap = (k + e) / NPT_TAIL_CF, ci = (k + e) % NPT_TAIL_CF;
        h[e] = npt_tail_f2h(wt[(n * NPT_TAIL_CF + ci) * 9 + tap]);
      }
      out[npt_tail2_b_t(k, n) / 2] = (uint32_t)h[0] | (uint32_t)h[1] << 16;
    }
  float *b = (float *)(out + NPT_TAIL2_B_OFF);
  for (int n = 0; n < NPT_TAIL_CF; n++)
    b[n] = bf[n];
  for (int n = 0; n < NPT_TAIL_CT; n++)
    b[NPT_TAIL_CF + n] = bt[n];
}

/* Two halves at half index i (even) as one 32-bit word, the lower first. */
NPT_HD uint32_t npt_tail2_ld2(const uint16_t *p, int i) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const uint32_t *>(p + i);
#else
  return (uint32_t)p[i] | (uint32_t)p[i + 1] << 16;
#endif
}

/* This lane's A fragment for m-tile mt, k-step ks of the F GEMM (from X's tile xs) or of the T
 * GEMM (from F's tile fs); its B fragment for n-tile nt from the packed weights w (halves). */
NPT_HD void npt_tail2_load_a(const uint16_t *s, int gemm_t, int lane, int mt, int ks,
                             uint32_t a[4]) {
  NPT_TAIL_UNROLL
  for (int j = 0; j < 4; j++) {
    int row, k;
    npt_tail2_frag_a(lane, 2 * j, &row, &k);
    int p = mt * 16 + row, kk = ks * 16 + k;
    int i = gemm_t ? npt_tail2_a_t(p, kk) : npt_tail2_a_f(p, kk);
    a[j] = i >= 0 ? npt_tail2_ld2(s, i) : 0u;
  }
}
NPT_HD void npt_tail2_load_b(const uint16_t *w, int gemm_t, int lane, int nt, int ks,
                             uint32_t b[2]) {
  NPT_TAIL_UNROLL
  for (int j = 0; j < 2; j++) {
    int k, n;
    npt_tail2_frag_b(lane, 2 * j, &k, &n);
    int kk = ks * 16 + k, nn = nt * 8 + n;
    b[j] = npt_tail2_ld2(w, gemm_t ? npt_tail2_b_t(kk, nn) : npt_tail2_b_f(kk, nn));
  }
}

/* This lane's part of F's m-tile mt, n-tile nt (acc: its C fragment) into F's tile: bias,
 * act_f, 0 outside the frame, fp16; padding rows are skipped. */
NPT_HD void npt_tail2_store_f(uint16_t *fs, const float *bias, int act_f, int lane, int mt, int nt,
                              const float acc[4], int y0, int x0, int h, int w) {
  NPT_TAIL_UNROLL
  for (int j = 0; j < 2; j++) {
    int row, n;
    npt_tail2_frag_c(lane, 2 * j, &row, &n);
    int p = mt * 16 + row, co = nt * 8 + n;
    if (p >= NPT_TAIL_FH * NPT_TAIL_FW)
      continue;
    int r = p / NPT_TAIL_FW, c = p % NPT_TAIL_FW, in = npt_tail_f_in(y0, x0, r, c, h, w);
    uint16_t *d = fs + npt_tail_fs(r, c, co);
    d[0] = in ? npt_tail_f2h(npt_tail_act(acc[2 * j] + bias[co], act_f)) : (uint16_t)0;
    d[1] = in ? npt_tail_f2h(npt_tail_act(acc[2 * j + 1] + bias[co + 1], act_f)) : (uint16_t)0;
  }
}

/* T's bias and act_t on this lane's fragments of one m-tile (6 n-tiles), in place. */
NPT_HD void npt_tail2_finish_t(float acc[6][4], const float *bias, int act_t, int lane) {
  NPT_TAIL_UNROLL
  for (int nt = 0; nt < 6; nt++) {
    NPT_TAIL_UNROLL
    for (int i = 0; i < 4; i++) {
      int row, n;
      npt_tail2_frag_c(lane, i, &row, &n);
      acc[nt][i] = npt_tail_act(acc[nt][i] + bias[nt * 8 + n], act_t);
    }
  }
}

/* This lane's share of head output co (weights w [c_out][CT]) for its row half hr (row g or
 * g + 8 of the m-tile): the sum over its 12 channels of T. */
NPT_HD float npt_tail2_head_part(const float acc[6][4], const float *w, int co, int lane, int hr) {
  float s = 0.0f;
  NPT_TAIL_UNROLL
  for (int nt = 0; nt < 6; nt++) {
    NPT_TAIL_UNROLL
    for (int j = 0; j < 2; j++) {
      int row, n;
      npt_tail2_frag_c(lane, 2 * hr + j, &row, &n);
      s += acc[nt][2 * hr + j] * w[co * NPT_TAIL_CT + nt * 8 + n];
    }
  }
  return s;
}

#endif
