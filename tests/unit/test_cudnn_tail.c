/* The stride-2 tail kernel (kernels/tail.cu) without a GPU.
 *
 * 1. Its arithmetic (kernels/npt_tail.h: tiles, halos, shared-memory indices, weight packing,
 *    the per-pixel sums) in a plain-C emulation of the kernel, which calls the same inline
 *    functions in the same order as the kernel does, against a naive chain of convolutions
 *    written from the graph's own weight layout, in double, on random data and frame sizes that
 *    leave partial tiles.  Runs in every build.
 * 2. The plan's structural rule (npt__gpu_plan_layout with NPT_CUDNN_TAIL=1): the shipped
 *    model's f2, hm1, box1 and heads become one tail step; networks without the pattern, other
 *    channel counts, or too little shared memory keep their steps.  Needs the cudnn backend's
 *    sources (skipped in a build without CUDA), no GPU.
 * What the kernel computes on a GPU is compared with the CPU backend by
 * tests/gpu/test_gpu_backend.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "npt_tail.h"

enum { CI = NPT_TAIL_CI, CF = NPT_TAIL_CF, CT = NPT_TAIL_CT, NH = 3 };

/* A tail's parameters in the graph's layout ([c_out][c_in][3][3]) and three heads, as the
 * shipped model's: heatmap (2, sigmoid) on T's first 24 channels, size and offset (2 each, no
 * activation) on the last 24; head weights [c_out][CT], zero outside the channels they read. */
typedef struct tail_net {
  float wf[CF * CI * 9], bf[CF], wt[CT * CF * 9], bt[CT];
  float hw[NH][8 * CT], hb[NH][8];
  int hc[NH], hact[NH];
  int act_f, act_t;
} tail_net;

static float uni(npt_rng *r, float a) {
  return (float)((2.0 * npt_rng_uniform(r) - 1.0) * a);
}

static void make_net(tail_net *n, uint64_t seed) {
  npt_rng r;
  npt_rng_seed(&r, seed, 1);
  memset(n, 0, sizeof *n);
  for (int i = 0; i < CF * CI * 9; i++)
    n->wf[i] = uni(&r, 0.12f);
  for (int i = 0; i < CT * CF * 9; i++)
    n->wt[i] = uni(&r, 0.15f);
  for (int i = 0; i < CF; i++)
    n->bf[i] = uni(&r, 0.3f);
  for (int i = 0; i < CT; i++)
    n->bt[i] = uni(&r, 0.3f);
  const int c0[NH] = {0, CF, CF}, act[NH] = {3, 0, 0};
  for (int h = 0; h < NH; h++) {
    n->hc[h] = 2, n->hact[h] = act[h];
    for (int co = 0; co < 2; co++) {
      n->hb[h][co] = uni(&r, 0.5f);
      for (int ci = 0; ci < CF; ci++)
        n->hw[h][co * CT + c0[h] + ci] = uni(&r, 0.3f);
    }
  }
  n->act_f = 2, n->act_t = 2; /* SiLU, as the shipped model */
}

/* Random fp16 input (stored as the kernel reads it: IEEE half bits), NHWC, CI channels. */
static uint16_t *make_input(int b, int h, int w, uint64_t seed) {
  npt_rng r;
  npt_rng_seed(&r, seed, 2);
  size_t n = (size_t)b * h * w * CI;
  uint16_t *x = malloc(n * sizeof *x);
  assert_non_null(x);
  for (size_t i = 0; i < n; i++)
    x[i] = npt_tail_f2h(uni(&r, 2.0f));
  return x;
}

/* The kernel's algorithm in plain C: each tile as one block does it (load X with zeros outside
 * the frame, F on the tile grown by 1, T and the heads on the tile's pixels), with the same
 * header functions.  out[h]: [b][h][w][c] floats. */
static void emulate(const tail_net *n, const float *prm, const uint16_t *x, int b, int h, int w,
                    float *out[NH]) {
  uint16_t *xs = malloc(NPT_TAIL_XS_HALVES * sizeof *xs), *fs = malloc(NPT_TAIL_FS_HALVES * 2);
  assert_non_null(xs);
  assert_non_null(fs);
  int ty, tx;
  npt_tail_tiles(h, w, &ty, &tx);
  for (long blk = 0; blk < (long)b * ty * tx; blk++) {
    int f, y0, x0;
    npt_tail_tile(blk, ty, tx, &f, &y0, &x0);
    memset(xs, 0xff, NPT_TAIL_XS_HALVES * sizeof *xs); /* NaN: a read of an unloaded half shows */
    memset(fs, 0xff, NPT_TAIL_FS_HALVES * sizeof *fs);
    for (int r = 0; r < NPT_TAIL_XH; r++)
      for (int c = 0; c < NPT_TAIL_XW; c++) {
        int y, xx, in = npt_tail_x_src(y0, x0, r, c, h, w, &y, &xx);
        for (int k = 0; k < CI; k++)
          xs[npt_tail_xs(r, c, k)] = in ? x[(((size_t)f * h + y) * w + xx) * CI + k] : 0;
      }
    for (int pos = 0; pos < NPT_TAIL_FH * NPT_TAIL_FW; pos++) {
      int r = pos / NPT_TAIL_FW, c = pos % NPT_TAIL_FW;
      npt_tail_f_at(xs, prm, n->act_f, r, c, npt_tail_f_in(y0, x0, r, c, h, w), fs);
    }
    for (int tid = 0; tid < NPT_TAIL_THREADS; tid++) {
      int r = tid / NPT_TAIL_TW, c = tid % NPT_TAIL_TW, y = y0 + r, xx = x0 + c;
      if (y >= h || xx >= w)
        continue;
      float t[CT];
      npt_tail_t_at(fs, prm, n->act_t, r, c, t);
      size_t pix = ((size_t)f * h + y) * w + xx;
      for (int hd = 0; hd < NH; hd++)
        for (int co = 0; co < n->hc[hd]; co++)
          out[hd][pix * n->hc[hd] + co] = npt_tail_head(t, n->hw[hd], n->hb[hd], co, n->hact[hd]);
    }
  }
  free(xs), free(fs);
}

/* mma.m16n8k16 as the PTX ISA defines it (d += A B), over the fragments of a warp's 32 lanes
 * laid out by the header's fragment functions. */
static void mma_emulate(uint32_t a[32][4], uint32_t b[32][2], float d[32][4]) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; lane++) {
    for (int i = 0; i < 8; i++) {
      int row, k;
      npt_tail2_frag_a(lane, i, &row, &k);
      uint32_t v = a[lane][i / 2];
      A[row][k] = npt_tail_h2f((uint16_t)(i & 1 ? v >> 16 : v & 0xffffu));
    }
    for (int i = 0; i < 4; i++) {
      int k, n;
      npt_tail2_frag_b(lane, i, &k, &n);
      uint32_t v = b[lane][i / 2];
      B[k][n] = npt_tail_h2f((uint16_t)(i & 1 ? v >> 16 : v & 0xffffu));
    }
  }
  for (int lane = 0; lane < 32; lane++)
    for (int i = 0; i < 4; i++) {
      int row, n;
      npt_tail2_frag_c(lane, i, &row, &n);
      for (int k = 0; k < 16; k++)
        d[lane][i] += A[row][k] * B[k][n];
    }
}

/* Version 2's algorithm in plain C: each tile's F and T GEMMs warp by warp (every m-tile; the
 * kernel spreads them over its 8 warps), each lane's fragments loaded by the kernel's
 * functions, the mma emulated, the epilogues and the quad sums of the heads the kernel's. */
static void emulate2(const tail_net *n, const uint32_t *words, const uint16_t *x, int b, int h,
                     int w, float *out[NH]) {
  const uint16_t *wh = (const uint16_t *)words; /* little-endian: the lower half first */
  const float *bias = (const float *)(words + NPT_TAIL2_B_OFF);
  uint16_t *xs = malloc(NPT_TAIL_XS_HALVES * sizeof *xs), *fs = malloc(NPT_TAIL_FS_HALVES * 2);
  assert_non_null(xs);
  assert_non_null(fs);
  static uint32_t a[32][4], bb[32][2];
  static float d[32][4], acc[32][6][4];
  int ty, tx;
  npt_tail_tiles(h, w, &ty, &tx);
  for (long blk = 0; blk < (long)b * ty * tx; blk++) {
    int f, y0, x0;
    npt_tail_tile(blk, ty, tx, &f, &y0, &x0);
    memset(xs, 0xff, NPT_TAIL_XS_HALVES * sizeof *xs);
    memset(fs, 0xff, NPT_TAIL_FS_HALVES * sizeof *fs);
    for (int r = 0; r < NPT_TAIL_XH; r++)
      for (int c = 0; c < NPT_TAIL_XW; c++) {
        int y, xx, in = npt_tail_x_src(y0, x0, r, c, h, w, &y, &xx);
        for (int k = 0; k < CI; k++)
          xs[npt_tail_xs(r, c, k)] = in ? x[(((size_t)f * h + y) * w + xx) * CI + k] : 0;
      }
    for (int gemm = 0; gemm < 2; gemm++) {
      int mts = gemm ? NPT_TAIL2_MT : NPT_TAIL2_MF, nts = gemm ? 6 : 3;
      int kss = (gemm ? NPT_TAIL2_KT : NPT_TAIL2_KF) / 16;
      for (int mt = 0; mt < mts; mt++) {
        memset(acc, 0, sizeof acc);
        for (int ks = 0; ks < kss; ks++)
          for (int nt = 0; nt < nts; nt++) {
            for (int lane = 0; lane < 32; lane++) {
              npt_tail2_load_a(gemm ? fs : xs, gemm, lane, mt, ks, a[lane]);
              npt_tail2_load_b(wh, gemm, lane, nt, ks, bb[lane]);
              memcpy(d[lane], acc[lane][nt], sizeof d[lane]);
            }
            mma_emulate(a, bb, d);
            for (int lane = 0; lane < 32; lane++)
              memcpy(acc[lane][nt], d[lane], sizeof d[lane]);
          }
        if (!gemm) {
          for (int lane = 0; lane < 32; lane++)
            for (int nt = 0; nt < 3; nt++)
              npt_tail2_store_f(fs, bias, n->act_f, lane, mt, nt, acc[lane][nt], y0, x0, h, w);
          continue;
        }
        for (int lane = 0; lane < 32; lane++)
          npt_tail2_finish_t(acc[lane], bias + CF, n->act_t, lane);
        for (int g = 0; g < 8; g++)
          for (int hr = 0; hr < 2; hr++) {
            int p = mt * 16 + g + 8 * hr, y = y0 + p / NPT_TAIL_TW, xx = x0 + p % NPT_TAIL_TW;
            if (y >= h || xx >= w)
              continue;
            size_t pix = ((size_t)f * h + y) * w + xx;
            for (int hd = 0; hd < NH; hd++)
              for (int co = 0; co < n->hc[hd]; co++) {
                float v = 0;
                for (int q = 0; q < 4; q++)
                  v += npt_tail2_head_part(acc[4 * g + q], n->hw[hd], co, 4 * g + q, hr);
                out[hd][pix * n->hc[hd] + co] = npt_tail_act(v + n->hb[hd][co], n->hact[hd]);
              }
          }
      }
    }
  }
  free(xs), free(fs);
}

static double act_d(double v, int act) {
  return act == 1   ? (v > 0 ? v : 0)
         : act == 2 ? v / (1 + exp(-v))
         : act == 3 ? 1 / (1 + exp(-v))
                    : v;
}

/* The naive chain from the graph's layout, in double: F rounded to fp16 as cuDNN stores f2,
 * frame by frame with zero padding. */
/* bias + the zero-padded 3x3 convolution of output channel co at (f, y, xx) over in, an NHWC
 * [b, h, w, cin] map, with PyTorch's [cout][cin][3][3] weights; in double. */
static double conv3x3_at(const float *wts, float bias, const float *in, int cin, int f, int y,
                         int xx, int h, int w, int co) {
  double acc = bias;
  for (int ky = 0; ky < 3; ky++)
    for (int kx = 0; kx < 3; kx++) {
      int sy = y + ky - 1, sx = xx + kx - 1;
      if (sy < 0 || sy >= h || sx < 0 || sx >= w)
        continue;
      for (int ci = 0; ci < cin; ci++)
        acc += wts[((co * cin + ci) * 3 + ky) * 3 + kx] *
               (double)in[(((size_t)f * h + sy) * w + sx) * cin + ci];
    }
  return acc;
}

static void reference(const tail_net *n, const uint16_t *x, int b, int h, int w, float *out[NH]) {
  size_t px = (size_t)b * h * w;
  float *xf = malloc(px * CI * sizeof *xf), *fmap = malloc(px * CF * sizeof *fmap);
  assert_non_null(xf);
  assert_non_null(fmap);
  for (size_t i = 0; i < px * CI; i++)
    xf[i] = npt_tail_h2f(x[i]);
  for (int f = 0; f < b; f++)
    for (int y = 0; y < h; y++)
      for (int xx = 0; xx < w; xx++)
        for (int co = 0; co < CF; co++)
          fmap[(((size_t)f * h + y) * w + xx) * CF + co] = npt_tail_h2f(npt_tail_f2h(
              (float)act_d(conv3x3_at(n->wf, n->bf[co], xf, CI, f, y, xx, h, w, co), n->act_f)));
  for (int f = 0; f < b; f++)
    for (int y = 0; y < h; y++)
      for (int xx = 0; xx < w; xx++) {
        double t[CT];
        for (int co = 0; co < CT; co++)
          t[co] = act_d(conv3x3_at(n->wt, n->bt[co], fmap, CF, f, y, xx, h, w, co), n->act_t);
        size_t pix = ((size_t)f * h + y) * w + xx;
        for (int hd = 0; hd < NH; hd++)
          for (int co = 0; co < n->hc[hd]; co++) {
            double acc = n->hb[hd][co];
            for (int ci = 0; ci < CT; ci++)
              acc += n->hw[hd][co * CT + ci] * t[ci];
            out[hd][pix * n->hc[hd] + co] = (float)act_d(acc, n->hact[hd]);
          }
      }
  free(xf), free(fmap);
}

/* The largest |emulated - reference| over every head output, relative to max |reference|;
 * a NaN (an output never written) gives infinity. */
static double run_case(const tail_net *n, const void *prm, int version, int b, int h, int w,
                       uint64_t seed) {
  uint16_t *x = make_input(b, h, w, seed);
  size_t px = (size_t)b * h * w;
  float *got[NH], *ref[NH];
  for (int hd = 0; hd < NH; hd++) {
    got[hd] = malloc(px * n->hc[hd] * sizeof(float));
    ref[hd] = malloc(px * n->hc[hd] * sizeof(float));
    assert_non_null(got[hd]);
    assert_non_null(ref[hd]);
    for (size_t i = 0; i < px * n->hc[hd]; i++)
      got[hd][i] = NAN;
  }
  if (version == 2)
    emulate2(n, prm, x, b, h, w, got);
  else
    emulate(n, prm, x, b, h, w, got);
  reference(n, x, b, h, w, ref);
  double worst = 0;
  for (int hd = 0; hd < NH; hd++) {
    double mx = 1e-6, err = 0;
    for (size_t i = 0; i < px * n->hc[hd]; i++) {
      mx = fmax(mx, fabs(ref[hd][i]));
      double d = fabs((double)got[hd][i] - ref[hd][i]);
      err = isnan(got[hd][i]) ? INFINITY : fmax(err, d);
    }
    worst = fmax(worst, err / mx);
    free(got[hd]), free(ref[hd]);
  }
  free(x);
  return worst;
}

static void test_emulation_matches_naive_chain(void **state) {
  (void)state;
  tail_net *n = malloc(sizeof *n);
  float *prm = malloc(NPT_TAIL_PARAMS * sizeof *prm);
  assert_non_null(n);
  assert_non_null(prm);
  make_net(n, 5);
  npt_tail_pack(n->wf, n->bf, n->wt, n->bt, prm);
  /* Frames of whole tiles, partial tiles, narrower than a tile, and one pixel; several frames,
   * so that a halo that crossed into the next frame would show. */
  const int sizes[][3] = {{2, 32, 16}, {3, 37, 23}, {2, 5, 40}, {2, 1, 1}, {1, 17, 33}};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    double e = run_case(n, prm, 1, sizes[k][0], sizes[k][1], sizes[k][2], 100 + k);
    printf("  %d frames of %dx%d: max |emulated - naive| / max |naive| = %.2e\n", sizes[k][0],
           sizes[k][2], sizes[k][1], e);
    if (!(e < 2e-3))
      fail_msg("%d x %dx%d: relative error %.3e (limit 2e-3)", sizes[k][0], sizes[k][2],
               sizes[k][1], e);
  }
  /* The comparison can fail: the same weights packed with the taps mirrored (a transposed
   * kernel), or a different act_f, are far off. */
  float *bad = malloc(NPT_TAIL_PARAMS * sizeof *bad);
  assert_non_null(bad);
  memcpy(bad, prm, NPT_TAIL_PARAMS * sizeof *bad);
  for (int tap = 0; tap < 9; tap++)
    for (int ci = 0; ci < CI; ci++)
      for (int co = 0; co < CF; co++)
        bad[npt_tail_wf(tap, ci, co)] = prm[npt_tail_wf((tap % 3) * 3 + tap / 3, ci, co)];
  double e = run_case(n, bad, 1, 2, 21, 19, 7);
  printf("  f2's taps transposed: %.2e\n", e);
  assert_true(e > 2e-2);
  n->act_f = 1;
  e = run_case(n, prm, 1, 1, 20, 20, 8); /* emulation ReLU, reference ReLU: equal */
  assert_true(e < 2e-3);
  free(bad), free(prm), free(n);
}

/* Every output pixel of every frame belongs to exactly one tile; a tile's reads stay in its
 * frame; the shared-memory indices are distinct and in range; packing is a permutation. */
static void test_tiles_halos_indices(void **state) {
  (void)state;
  const int sizes[][3] = {{3, 37, 23}, {1, 16, 16}, {2, 1, 50}, {2, 512, 512}};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    int b = sizes[k][0], h = sizes[k][1], w = sizes[k][2], ty, tx;
    npt_tail_tiles(h, w, &ty, &tx);
    unsigned char *seen = calloc((size_t)b * h * w, 1);
    assert_non_null(seen);
    for (long blk = 0; blk < (long)b * ty * tx; blk++) {
      int f, y0, x0;
      npt_tail_tile(blk, ty, tx, &f, &y0, &x0);
      assert_true(f >= 0 && f < b && y0 >= 0 && y0 < h && x0 >= 0 && x0 < w);
      for (int r = 0; r < NPT_TAIL_TH; r++)
        for (int c = 0; c < NPT_TAIL_TW; c++)
          if (y0 + r < h && x0 + c < w)
            seen[((size_t)f * h + y0 + r) * w + x0 + c]++;
      for (int r = 0; r < NPT_TAIL_XH; r++)
        for (int c = 0; c < NPT_TAIL_XW; c++) {
          int y, x, in = npt_tail_x_src(y0, x0, r, c, h, w, &y, &x);
          assert_int_equal(y, y0 - 2 + r);
          assert_int_equal(x, x0 - 2 + c);
          assert_int_equal(in, y >= 0 && y < h && x >= 0 && x < w);
        }
      for (int r = 0; r < NPT_TAIL_FH; r++)
        for (int c = 0; c < NPT_TAIL_FW; c++) {
          int y, x, xin = npt_tail_x_src(y0, x0, r + 1, c + 1, h, w, &y, &x);
          assert_int_equal(npt_tail_f_in(y0, x0, r, c, h, w), xin); /* F(r,c) sits on X(r+1,c+1) */
        }
    }
    for (size_t i = 0; i < (size_t)b * h * w; i++)
      if (seen[i] != 1)
        fail_msg("%dx%dx%d: pixel %zu covered %d times", b, h, w, i, seen[i]);
    free(seen);
  }
  unsigned char *x = calloc(NPT_TAIL_XS_HALVES, 1), *f = calloc(NPT_TAIL_FS_HALVES, 1);
  unsigned char *wp = calloc(NPT_TAIL_PARAMS, 1);
  assert_non_null(x);
  assert_non_null(f);
  assert_non_null(wp);
  for (int r = 0; r < NPT_TAIL_XH; r++)
    for (int c = 0; c < NPT_TAIL_XW; c++)
      for (int k = 0; k < CI; k++) {
        int i = npt_tail_xs(r, c, k);
        assert_true(i >= 0 && i < NPT_TAIL_XS_HALVES && !x[i]);
        x[i] = 1;
        if (k % 8 == 0) /* the kernel's 16-byte loads land as four 32-bit words */
          assert_int_equal(i % 2, 0);
      }
  for (int r = 0; r < NPT_TAIL_FH; r++)
    for (int c = 0; c < NPT_TAIL_FW; c++)
      for (int k = 0; k < CF; k++) {
        int i = npt_tail_fs(r, c, k);
        assert_true(i >= 0 && i < NPT_TAIL_FS_HALVES && !f[i]);
        f[i] = 1;
      }
  for (int tap = 0; tap < 9; tap++) {
    for (int ci = 0; ci < CI; ci++)
      for (int co = 0; co < CF; co++) {
        int i = npt_tail_wf(tap, ci, co);
        assert_true(i >= 0 && i < NPT_TAIL_BF_OFF && !wp[i]);
        wp[i] = 1;
      }
    for (int ci = 0; ci < CF; ci++)
      for (int co = 0; co < CT; co++) {
        int i = npt_tail_wt(tap, ci, co);
        assert_true(i >= NPT_TAIL_WT_OFF && i < NPT_TAIL_BF_OFF && !wp[i]);
        wp[i] = 1;
      }
  }
  for (int i = 0; i < NPT_TAIL_BF_OFF; i++)
    assert_int_equal(wp[i], 1);
  /* Within the H100's 227 KB per block, and two blocks per SM (228 KB). */
  printf("  shared memory per block: %u bytes\n", npt_tail_smem_bytes());
  assert_true(npt_tail_smem_bytes() <= 232448u);
  assert_true(2 * (npt_tail_smem_bytes() + 1024u) <= 233472u);
  assert_int_equal((NPT_TAIL_PARAMS * 4) % 16, 0); /* X's tile starts 16-byte aligned */
  /* fp16 round trips (the host half of npt_tail_h2f / f2h). */
  const float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333333f};
  for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
    float r = npt_tail_h2f(npt_tail_f2h(vals[k]));
    assert_true(fabsf(r - vals[k]) <= fabsf(vals[k]) * 4.9e-4f);
  }
  assert_int_equal(npt_tail_f2h(1.0f), 0x3c00);
  assert_int_equal(npt_tail_f2h(-2.0f), 0xc000);
  free(x), free(f), free(wp);
}

#ifdef NPT_HAVE_CUDNN_BACKEND
#include "nn/cpu/cpu_debug.h"
#include "nn/cuda/cudnn_internal.h"
#include "nn/graph.h"

static npt__gpu_plan *layout(const npt_graph *g, int batch, int h, int w, size_t smem) {
  npt__gpu_plan *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->g = g, p->batch = batch, p->h = h, p->w = w, p->smem_optin = smem;
  int rc = npt__gpu_plan_layout(p);
  if (rc < 0)
    fail_msg("layout: %s", npt_error_msg(rc));
  return p;
}

static const npt__gpu_step *step_of(const npt__gpu_plan *p, const char *name) {
  for (int i = 0; i < p->n_steps; i++) {
    const npt__gpu_step *s = &p->steps[i];
    if (strcmp(s->node->name, name) == 0)
      return s;
    for (int h = 0; h < s->n_tail; h++)
      if (strcmp(s->tail[h]->name, name) == 0)
        return s;
  }
  return NULL;
}

static int tensor_of(const npt_graph *g, const char *node) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, node) == 0)
      return g->nodes[i].output;
  fail_msg("no node %s", node);
  return -1;
}

enum { H100_SMEM = 232448 };

static void test_shipped_model_tail(void **state) {
  (void)state;
  const char *src = getenv("NPT_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/models/nptrack.h5", src ? src : ".");
  npt_graph *g;
  int rc = npt_graph_load(&g, path);
  if (rc < 0)
    fail_msg("%s", npt_error_msg(rc));
  unsetenv("NPT_CUDNN_MERGE_HEADS");
  unsetenv("NPT_CUDNN_TAIL");
  npt__gpu_plan *q = layout(g, 2, 256, 192, H100_SMEM); /* the default: no tail */
  setenv("NPT_CUDNN_TAIL", "1", 1);
  npt__gpu_plan *p = layout(g, 2, 256, 192, H100_SMEM);
  npt__gpu_plan *small = layout(g, 2, 256, 192, 48 * 1024); /* too little shared memory */
  setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
  npt__gpu_plan *pm = layout(g, 2, 256, 192, H100_SMEM); /* both switches: the tail wins */
  npt__gpu_plan *sm = layout(g, 2, 256, 192, 48 * 1024); /* both, no room: merged heads */
  unsetenv("NPT_CUDNN_MERGE_HEADS");
  setenv("NPT_CUDNN_TAIL", "2", 1); /* version 2, tensor cores: the same step */
  npt__gpu_plan *p2 = layout(g, 2, 256, 192, H100_SMEM);
  setenv("NPT_CUDNN_TAIL", "3", 1); /* no such version: none */
  npt__gpu_plan *p3 = layout(g, 2, 256, 192, H100_SMEM);
  unsetenv("NPT_CUDNN_TAIL");
  assert_int_equal(p2->tail_steps, 1);
  assert_int_equal(p2->n_steps, q->n_steps - 2);
  assert_int_equal(step_of(p2, "f2")->kind, NPT__STEP_TAIL);
  assert_int_equal(step_of(p2, "f2")->tail_version, 2);
  assert_int_equal(p3->tail_steps, 0);
  npt__gpu_plan_destroy(p2), npt__gpu_plan_destroy(p3);

  assert_int_equal(q->tail_steps, 0);
  assert_int_equal(small->tail_steps, 0);
  assert_int_equal(small->merged_steps, 0);
  assert_int_equal(small->n_steps, q->n_steps);
  assert_int_equal(sm->tail_steps, 0);
  assert_int_equal(sm->merged_steps, 1);
  assert_int_equal(pm->tail_steps, 1);
  assert_int_equal(pm->merged_steps, 0);
  assert_int_equal(pm->n_steps, p->n_steps);

  assert_int_equal(p->tail_steps, 1);
  assert_int_equal(p->merged_steps, 0);
  assert_int_equal(p->n_steps, q->n_steps - 2); /* f2, hm1 and box1: one step */
  assert_null(step_of(p, "hm1"));
  assert_null(step_of(p, "box1"));
  const npt__gpu_step *s = step_of(p, "f2");
  assert_non_null(s);
  assert_int_equal(s->kind, NPT__STEP_TAIL);
  assert_int_equal(s->tail_version, 1);
  assert_string_equal(s->node->name, "f2");
  assert_non_null(s->trunk);
  assert_string_equal(s->trunk->name, "hm1+box1");
  assert_int_equal(s->trunk->c_out, NPT_TAIL_CT);
  assert_int_equal(s->trunk->inputs[0], tensor_of(g, "f2"));
  assert_int_equal(s->node->inputs[0], tensor_of(g, "a2")); /* f2 reads a2 as stored */
  assert_ptr_equal(step_of(p, "heatmap"), s);
  assert_ptr_equal(step_of(p, "size"), s);
  assert_ptr_equal(step_of(p, "offset"), s);
  assert_int_equal(s->n_tail, 3);
  assert_string_equal(s->tail[0]->name, "heatmap");
  assert_int_equal(s->tail_c0[0], 0);
  assert_int_equal(s->tail_c0[1], 24);
  assert_int_equal(s->tail_c0[2], 24);
  assert_int_equal(p->t[tensor_of(g, "a2")].stored, 1);
  assert_int_equal(p->t[tensor_of(g, "a2")].c, NPT_TAIL_CI);
  assert_int_equal(p->t[tensor_of(g, "a2")].dt, NPT_DT_F16);
  assert_int_equal(p->t[tensor_of(g, "f2")].stored, 0);
  assert_int_equal(p->t[tensor_of(g, "hm1")].stored, 0);
  assert_int_equal(p->t[tensor_of(g, "box1")].stored, 0);
  assert_int_equal(p->t[s->out].stored, 0);
  for (int h = 0; h < 3; h++) { /* the heads as the heads epilogue writes them: fp32, stored */
    const npt__gpu_tensor *t = &p->t[s->tail[h]->output];
    assert_int_equal(t->stored, 1);
    assert_int_equal(t->dt, NPT_DT_F32);
    assert_int_equal(t->per_slot, 1);
    assert_int_equal(t->h, 128);
    assert_int_equal(t->w, 96);
  }
  /* Modelled bytes: a2 read once, the heads written; nothing else. */
  double raw, b = npt__gpu_step_bytes(p, s, &raw);
  double want = (double)p->t[tensor_of(g, "a2")].bytes;
  for (int h = 0; h < 3; h++)
    want += (double)p->t[s->tail[h]->output].bytes;
  assert_true(b == want);
  assert_true(raw == 0);
  /* The other steps are the default plan's. */
  for (int i = 0, j = 0; i < q->n_steps; i++) {
    const char *nm = q->steps[i].node->name;
    if (!strcmp(nm, "f2") || !strcmp(nm, "hm1") || !strcmp(nm, "box1"))
      continue;
    while (j < p->n_steps && p->steps[j].kind == NPT__STEP_TAIL)
      j++;
    assert_string_equal(p->steps[j++].node->name, nm);
  }
  npt__gpu_plan_destroy(p), npt__gpu_plan_destroy(q), npt__gpu_plan_destroy(small);
  npt__gpu_plan_destroy(pm), npt__gpu_plan_destroy(sm);
  npt_graph_free(g);
}

/* A network with the tail's shape (stem -> 32 -> f 24 -> two 24-channel branches -> heads),
 * varied: `variant` 1 adds a third reader of f, 2 gives f 16 outputs (and the branches 16
 * inputs), 3 gives the second branch ReLU (not mergeable), 4 makes f a 1x1. */
static npt_graph *tail_net_graph(int variant) {
  npt__gb b;
  assert_int_equal(npt__gb_init(&b, 3), 0);
  const npt_act S = NPT_ACT_SILU, N = NPT_ACT_NONE, G = NPT_ACT_SIGMOID;
  int stem = npt__gb_conv(&b, "stem", 0, 32, 3, 1, 1, 1, 1, S);
  int k = variant == 4 ? 1 : 3;
  int f = npt__gb_conv(&b, "f", stem, variant == 2 ? 16 : 24, k, 1, k / 2, 1, 1, S);
  int ha = npt__gb_conv(&b, "ha", f, 24, 3, 1, 1, 1, 1, S);
  int hm = npt__gb_conv(&b, "heatmap", ha, 3, 1, 1, 0, 1, 1, G);
  int hb = npt__gb_conv(&b, "hb", f, 24, 3, 1, 1, 1, 1, variant == 3 ? NPT_ACT_RELU : S);
  int sz = npt__gb_conv(&b, "size", hb, 2, 1, 1, 0, 1, 1, N);
  int of = npt__gb_conv(&b, "offset", hb, 2, 1, 1, 0, 1, 1, N);
  int emb = variant == 1 ? npt__gb_conv(&b, "emb", f, 8, 1, 1, 0, 1, 1, N) : -1;
  assert_true(hm >= 0 && sz >= 0 && of >= 0);
  return npt__gb_finish(&b, hm, sz, of, emb);
}

static void test_structural_rule(void **state) {
  (void)state;
  setenv("NPT_CUDNN_TAIL", "1", 1);
  const struct { int variant, tail; } cases[] = {{0, 1}, {1, 0}, {2, 0}, {3, 0}, {4, 0}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    npt_graph *g = tail_net_graph(cases[k].variant);
    assert_non_null(g);
    npt__gpu_plan *p = layout(g, 2, 40, 24, H100_SMEM);
    if (p->tail_steps != cases[k].tail)
      fail_msg("variant %d: %d tail steps, %d expected", cases[k].variant, p->tail_steps,
               cases[k].tail);
    const npt__gpu_step *s = step_of(p, "size");
    assert_non_null(s);
    assert_int_equal(s->kind, cases[k].tail ? NPT__STEP_TAIL : NPT__STEP_CUDNN);
    assert_int_equal(p->merged_steps, 0); /* NPT_CUDNN_MERGE_HEADS is not set */
    if (cases[k].tail) {
      assert_string_equal(s->node->name, "f");
      assert_string_equal(s->trunk->name, "ha+hb");
      assert_int_equal(s->n_tail, 3);
      assert_int_equal(s->tail[0]->c_out, 3);
    }
    npt__gpu_plan_destroy(p);
    npt_graph_free(g);
  }
  unsetenv("NPT_CUDNN_TAIL");
}
#endif

/* Version 2 against the same naive chain, with the convolution weights rounded to fp16 as
 * version 2 (and cuDNN) uses them, so that only the order of the fp32 sums differs. */
static void test_mma_emulation_matches_naive_chain(void **state) {
  (void)state;
  tail_net *n = malloc(sizeof *n);
  uint32_t *words = malloc(NPT_TAIL2_WORDS * sizeof *words);
  assert_non_null(n);
  assert_non_null(words);
  make_net(n, 6);
  for (int i = 0; i < CF * CI * 9; i++)
    n->wf[i] = npt_tail_h2f(npt_tail_f2h(n->wf[i]));
  for (int i = 0; i < CT * CF * 9; i++)
    n->wt[i] = npt_tail_h2f(npt_tail_f2h(n->wt[i]));
  npt_tail2_pack(n->wf, n->bf, n->wt, n->bt, words);
  const int sizes[][3] = {{2, 32, 16}, {3, 37, 23}, {2, 1, 1}, {1, 17, 33}};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    double e = run_case(n, words, 2, sizes[k][0], sizes[k][1], sizes[k][2], 200 + k);
    printf("  version 2, %d frames of %dx%d: max |emulated - naive| / max |naive| = %.2e\n",
           sizes[k][0], sizes[k][2], sizes[k][1], e);
    if (!(e < 2e-3))
      fail_msg("version 2, %d x %dx%d: relative error %.3e (limit 2e-3)", sizes[k][0], sizes[k][2],
               sizes[k][1], e);
  }
  /* It can fail: T's weights of two output channels swapped. */
  uint16_t *wh = (uint16_t *)words;
  for (int k = 0; k < NPT_TAIL2_KT; k++) {
    uint16_t t = wh[npt_tail2_b_t(k, 3)];
    wh[npt_tail2_b_t(k, 3)] = wh[npt_tail2_b_t(k, 30)], wh[npt_tail2_b_t(k, 30)] = t;
  }
  double e = run_case(n, words, 2, 1, 20, 20, 9);
  printf("  version 2, two channels of T swapped: %.2e\n", e);
  assert_true(e > 2e-2);
  /* Shared memory within an H100 block's 227 KB. */
  printf("  version 2: shared memory per block: %u bytes\n", npt_tail2_smem_bytes());
  assert_true(npt_tail2_smem_bytes() <= 232448u);
  assert_int_equal((NPT_TAIL2_WORDS * 4) % 16, 0);
  free(words), free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiles_halos_indices),
      cmocka_unit_test(test_emulation_matches_naive_chain),
      cmocka_unit_test(test_mma_emulation_matches_naive_chain),
#ifdef NPT_HAVE_CUDNN_BACKEND
      cmocka_unit_test(test_shipped_model_tail),
      cmocka_unit_test(test_structural_rule),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
