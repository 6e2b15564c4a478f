/* 3x3 stride-1 convolutions by Winograd's minimal filtering (Lavin & Gray, 2016) on AVX2 + FMA
 * CPUs: F(4x4, 3x3) by default, F(2x2, 3x3) its simpler, more exact predecessor, kept beside it
 * (npt__cpu_set_winograd(2)) for comparison and as a fallback.
 *
 * Why: nearly nine tenths of the detector's multiply-adds are in 3x3 stride-1 convolutions, and
 * oneDNN's direct convolutions already run them near this CPU's peak.  Per output pixel and
 * channel pair, F(2x2, 3x3) needs 16/4 = 4 multiplies instead of 9, F(4x4, 3x3) 36/16 = 2.25.
 * (Debian's oneDNN 2.6 has Winograd only for AVX-512.)  The price is rounding: relative to
 * max |y|, errors of about 1e-6 for F(2x2) and 1e-5 for F(4x4) with 96 channels, inside the
 * 1e-4 the C forward pass must keep to PyTorch's.
 *
 * Per m x m output tile: V = B^T d B of the (m+2) x (m+2) input patch (per input channel); for
 * each of the (m+2)^2 positions xi a product over channels M[xi] = V[xi] U[xi] (U = G g G^T,
 * the weights transformed once at plan time); Y = A^T M A, bias, the fused sum, the activation.
 * Work items are (frame, tile row, chunk of tiles): fixed by the shapes, each computed by one
 * thread with its own scratch, every sum in a fixed order, so results do not depend on the
 * thread count. */
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cpu/cpu_internal.h"

enum { MR = 6 }; /* tiles per kernel pass */

/* Tiles per work item (a multiple of MR): V and M of a chunk stay in L2 (36 x 24 x 96 x 2 floats
 * for F(4x4) at 96 channels). */
static int chunk_of(int m) {
  return m == 2 ? 48 : 24;
}

int npt__cpu_wino_eligible(const npt_node *n) {
  return n->op == NPT_OP_CONV2D && n->kh == 3 && n->kw == 3 && n->stride == 1 && n->dilation == 1 &&
         n->groups == 1 && n->pad == 1 && n->c_in >= 8 && n->c_out >= 8 &&
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* G of F(m x m, 3x3): (m + 2) x 3. */
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};

/* U[xi] = (G g G^T)[xi] for each (ic, oc), stored per xi in chunks of 16 output channels (8 for
 * a last odd block): chunk c at offset icp * 16c, laid out [ic][width], the order the kernel
 * reads.  Padded channels are zero.  The bias follows, padded to ocp. */
int npt__cpu_wino_prepare(npt__cpu_plan *p, npt__cpu_step *s, int m) {
  const npt_node *n = s->node;
  int a = m + 2, nxi = a * a;
  int icp = NPT__CPU_BLOCKS(n->c_in) * NPT__BLK, ocp = NPT__CPU_BLOCKS(n->c_out) * NPT__BLK;
  size_t floats = (size_t)nxi * icp * ocp + ocp;
  s->wei = npt__cpu_alloc(sizeof(float) * floats);
  NPT_ALLOC_CHECK(s->wei);
  memset(s->wei, 0, sizeof(float) * floats);
  const double(*G)[3] = m == 2 ? G2 : G4;
  for (int oc = 0; oc < n->c_out; oc++)
    for (int ic = 0; ic < n->c_in; ic++) {
      const float *g = s->weight + ((size_t)oc * n->c_in + ic) * 9;
      double t[6][3]; /* G g, then (G g) G^T, in double: U is made once */
      for (int i = 0; i < a; i++)
        for (int j = 0; j < 3; j++)
          t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
      int c0 = oc / 16 * 16, wc = ocp - c0 < 16 ? ocp - c0 : 16;
      for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++)
          s->wei[(size_t)(i * a + j) * icp * ocp + (size_t)icp * c0 + (size_t)ic * wc + (oc - c0)] =
              (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
  memcpy(s->wei + (size_t)nxi * icp * ocp, n->bias, sizeof(float) * n->c_out);
  s->wino = m;
  size_t per_thread = (size_t)nxi * chunk_of(m) * (icp + ocp);
  if (per_thread > p->wino_floats)
    p->wino_floats = per_thread;
  return 0;
}

/* M[t][oc0 .. oc0 + 16) = sum over ic of V[t][ic] U[ic][..], MR = 6 tiles at a time: twelve
 * accumulators, two weight vectors and one broadcast fill fifteen of the sixteen AVX2 registers.
 * Named variables, not arrays: GCC keeps an array of accumulators in memory. */
#define FMA2(r)                                                                                    \
  do {                                                                                             \
    __m256 a = _mm256_broadcast_ss(vt + (size_t)(r)*icp + ic);                                     \
    c##r##0 = _mm256_fmadd_ps(a, u0, c##r##0);                                                     \
    c##r##1 = _mm256_fmadd_ps(a, u1, c##r##1);                                                     \
  } while (0)
#define STORE2(r)                                                                                  \
  do {                                                                                             \
    _mm256_store_ps(m + (size_t)(t + (r)) * ocp, c##r##0);                                         \
    _mm256_store_ps(m + (size_t)(t + (r)) * ocp + 8, c##r##1);                                     \
  } while (0)

static void kernel16(const float *v, const float *u, float *m, int tiles, int icp, int ocp) {
  for (int t = 0; t < tiles; t += MR) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *vt = v + (size_t)t * icp;
    for (int ic = 0; ic < icp; ic++) {
      __m256 u0 = _mm256_load_ps(u + ic * 16), u1 = _mm256_load_ps(u + ic * 16 + 8);
      FMA2(0);
      FMA2(1);
      FMA2(2);
      FMA2(3);
      FMA2(4);
      FMA2(5);
    }
    STORE2(0);
    STORE2(1);
    STORE2(2);
    STORE2(3);
    STORE2(4);
    STORE2(5);
  }
}

#define FMA1(r)   c##r = _mm256_fmadd_ps(_mm256_broadcast_ss(vt + (size_t)(r)*icp + ic), u0, c##r)
#define STORE1(r) _mm256_store_ps(m + (size_t)(t + (r)) * ocp, c##r)

static void kernel8(const float *v, const float *u, float *m, int tiles, int icp, int ocp) {
  for (int t = 0; t < tiles; t += MR) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    const float *vt = v + (size_t)t * icp;
    for (int ic = 0; ic < icp; ic++) {
      __m256 u0 = _mm256_load_ps(u + ic * 8);
      FMA1(0);
      FMA1(1);
      FMA1(2);
      FMA1(3);
      FMA1(4);
      FMA1(5);
    }
    STORE1(0);
    STORE1(1);
    STORE1(2);
    STORE1(3);
    STORE1(4);
    STORE1(5);
  }
}

/* x -> B^T x for one column (or row) of a patch. */
static inline __attribute__((always_inline)) void bt(const __m256 *d, __m256 *o, const int m) {
  if (m == 2) {
    o[0] = _mm256_sub_ps(d[0], d[2]);
    o[1] = _mm256_add_ps(d[1], d[2]);
    o[2] = _mm256_sub_ps(d[2], d[1]);
    o[3] = _mm256_sub_ps(d[1], d[3]);
    return;
  }
  const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
  const __m256 two = _mm256_set1_ps(2.0f);
  __m256 d4_d2 = _mm256_sub_ps(d[4], d[2]), d3_d1 = _mm256_sub_ps(d[3], d[1]);
  __m256 d4_4d2 = _mm256_fnmadd_ps(four, d[2], d[4]); /* d4 - 4 d2 */
  __m256 d3_4d1 = _mm256_fnmadd_ps(four, d[1], d[3]); /* d3 - 4 d1 */
  o[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
  o[1] = _mm256_add_ps(d4_4d2, d3_4d1);
  o[2] = _mm256_sub_ps(d4_4d2, d3_4d1);
  o[3] = _mm256_fmadd_ps(two, d3_d1, d4_d2);
  o[4] = _mm256_fnmadd_ps(two, d3_d1, d4_d2);
  o[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

/* x -> A^T x: m + 2 values in, m out. */
static inline __attribute__((always_inline)) void at(const __m256 *x, __m256 *o, const int m) {
  if (m == 2) {
    o[0] = _mm256_add_ps(_mm256_add_ps(x[0], x[1]), x[2]);
    o[1] = _mm256_sub_ps(_mm256_sub_ps(x[1], x[2]), x[3]);
    return;
  }
  __m256 s12 = _mm256_add_ps(x[1], x[2]), d12 = _mm256_sub_ps(x[1], x[2]);
  __m256 s34 = _mm256_add_ps(x[3], x[4]), d34 = _mm256_sub_ps(x[3], x[4]);
  o[0] = _mm256_add_ps(_mm256_add_ps(x[0], s12), s34);
  o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d34, d12);
  o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s34, s12);
  o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d34, d12), x[5]);
}

typedef struct wjob {
  const npt__cpu_plan *p;
  const npt__cpu_step *s;
  const npt__cpu_tensor *in, *out;
  int tx, ty, chunks, chunk; /* tiles per row and column, chunks per row, tiles per chunk */
} wjob;

static __m256 load_px(const npt__cpu_tensor *in, const float *plane, int y, int x) {
  if (y < 0 || y >= in->h || x < 0 || x >= in->w)
    return _mm256_setzero_ps();
  return _mm256_load_ps(plane + ((size_t)y * in->w + x) * NPT__BLK);
}

static inline __attribute__((always_inline)) void
input_transform(const wjob *j, int b, int ty, int t0, int nt, float *v, int icp, const int m) {
  const npt__cpu_tensor *in = j->in;
  const int a = m + 2;
  size_t xs = (size_t)j->chunk * icp; /* stride between xi planes */
  int y0 = m * ty - 1;
  for (int icb = 0; icb < in->cb; icb++) {
    const float *plane = in->data + ((size_t)b * in->cb + icb) * in->h * in->w * NPT__BLK;
    for (int tl = 0; tl < nt; tl++) {
      int x0 = m * (t0 + tl) - 1;
      int inside = y0 >= 0 && y0 + a <= in->h && x0 >= 0 && x0 + a <= in->w;
      __m256 h[6][6], d[6], col[6], o[6];
      for (int r = 0; r < a; r++) { /* each row of the patch times B */
        for (int c = 0; c < a; c++)
          d[c] = inside ? _mm256_load_ps(plane + ((size_t)(y0 + r) * in->w + x0 + c) * NPT__BLK)
                        : load_px(in, plane, y0 + r, x0 + c);
        bt(d, h[r], m);
      }
      float *dst = v + (size_t)tl * icp + icb * NPT__BLK;
      for (int c = 0; c < a; c++) { /* then B^T times each column */
        for (int r = 0; r < a; r++)
          col[r] = h[r][c];
        bt(col, o, m);
        for (int i = 0; i < a; i++)
          _mm256_store_ps(dst + (size_t)(i * a + c) * xs, o[i]);
      }
    }
  }
  /* Tiles past the row's end, up to a whole kernel pass: zero, so the kernel reads numbers. */
  int pad_to = (nt + MR - 1) / MR * MR;
  for (int xi = 0; xi < a * a; xi++)
    memset(v + xi * xs + (size_t)nt * icp, 0, sizeof(float) * (size_t)(pad_to - nt) * icp);
}

static void finish(__m256 *y, npt_act act, __m256 mask) {
  if (act == NPT_ACT_RELU) {
    *y = _mm256_max_ps(*y, _mm256_setzero_ps());
  } else if (act == NPT_ACT_SILU || act == NPT_ACT_SIGMOID) {
    float a[8];
    _mm256_storeu_ps(a, *y);
    for (int l = 0; l < 8; l++)
      a[l] = act == NPT_ACT_SILU ? a[l] / (1.0f + expf(-a[l])) : 1.0f / (1.0f + expf(-a[l]));
    *y = _mm256_loadu_ps(a);
  }
  *y = _mm256_and_ps(*y, mask); /* lanes past the channel count stay zero */
}

static inline __attribute__((always_inline)) void output_transform(const wjob *j, int b, int ty,
                                                                   int t0, int nt, const float *mm,
                                                                   int ocp, const int m) {
  const npt__cpu_tensor *out = j->out;
  const npt__cpu_step *s = j->s;
  const int a = m + 2;
  const float *bias = s->wei + (size_t)a * a * NPT__CPU_BLOCKS(s->node->c_in) * NPT__BLK * ocp;
  size_t xs = (size_t)j->chunk * ocp;
  for (int ocb = 0; ocb < out->cb; ocb++) {
    float *plane = out->data + ((size_t)b * out->cb + ocb) * out->h * out->w * NPT__BLK;
    __m256 bv = _mm256_loadu_ps(bias + ocb * NPT__BLK);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i valid = _mm256_set1_epi32(out->c - ocb * NPT__BLK);
    __m256 mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(valid, lane));
    for (int tl = 0; tl < nt; tl++) {
      const float *mt = mm + (size_t)tl * ocp + ocb * NPT__BLK;
      __m256 r[4][6], col[6], o[4], row[6], y[4];
      for (int c = 0; c < a; c++) { /* A^T M, column by column */
        for (int i = 0; i < a; i++)
          col[i] = _mm256_load_ps(mt + (size_t)(i * a + c) * xs);
        at(col, o, m);
        for (int i = 0; i < m; i++)
          r[i][c] = o[i];
      }
      int oy = m * ty, ox = m * (t0 + tl);
      for (int i = 0; i < m && oy + i < out->h; i++) {
        for (int c = 0; c < a; c++)
          row[c] = r[i][c];
        at(row, y, m); /* (A^T M) A */
        for (int k = 0; k < m && ox + k < out->w; k++) {
          float *o_px = plane + ((size_t)(oy + i) * out->w + ox + k) * NPT__BLK;
          __m256 v = _mm256_add_ps(y[k], bv);
          if (s->sum_from >= 0) /* the fused add: what the output held */
            v = _mm256_add_ps(v, _mm256_load_ps(o_px));
          finish(&v, s->act, mask);
          _mm256_store_ps(o_px, v);
        }
      }
    }
  }
}

static inline __attribute__((always_inline)) void wino_item(void *arg, long i, const int m) {
  const wjob *j = arg;
  const npt__cpu_plan *p = j->p;
  const int nxi = (m + 2) * (m + 2);
  int chunk = (int)(i % j->chunks);
  i /= j->chunks;
  int ty = (int)(i % j->ty), b = (int)(i / j->ty);
  int icp = j->in->cb * NPT__BLK, ocp = j->out->cb * NPT__BLK;
  int t0 = chunk * j->chunk, nt = j->tx - t0 < j->chunk ? j->tx - t0 : j->chunk;
  float *v = p->wino_scratch + (size_t)omp_get_thread_num() * p->wino_floats;
  float *mm = v + (size_t)nxi * j->chunk * icp;
  input_transform(j, b, ty, t0, nt, v, icp, m);
  int tiles = (nt + MR - 1) / MR * MR;
  for (int xi = 0; xi < nxi; xi++) {
    const float *u = j->s->wei + (size_t)xi * icp * ocp;
    const float *vx = v + (size_t)xi * j->chunk * icp;
    float *mx = mm + (size_t)xi * j->chunk * ocp;
    for (int c0 = 0; c0 < ocp; c0 += 16) {
      if (ocp - c0 >= 16)
        kernel16(vx, u + (size_t)icp * c0, mx + c0, tiles, icp, ocp);
      else
        kernel8(vx, u + (size_t)icp * c0, mx + c0, tiles, icp, ocp);
    }
  }
  output_transform(j, b, ty, t0, nt, mm, ocp, m);
}

/* One instance per tile size, the transforms unrolled for it. */
static void wino_item2(void *arg, long i) {
  wino_item(arg, i, 2);
}

static void wino_item4(void *arg, long i) {
  wino_item(arg, i, 4);
}

int npt__cpu_wino_run(const npt__cpu_ctx *ctx, npt__cpu_plan *p, const npt__cpu_step *s) {
  int m = s->wino;
  wjob j = {.p = p,
            .s = s,
            .in = &p->t[s->in_override >= 0 ? s->in_override : s->node->inputs[0]],
            .out = &p->t[s->out],
            .chunk = chunk_of(m)};
  if (s->sum_from >= 0 && p->t[s->sum_from].data != j.out->data)
    memcpy(j.out->data, p->t[s->sum_from].data, sizeof(float) * j.out->floats);
  j.tx = (j.out->w + m - 1) / m;
  j.ty = (j.out->h + m - 1) / m;
  j.chunks = (j.tx + j.chunk - 1) / j.chunk;
  long items = (long)p->batch * j.ty * j.chunks;
  npt__cpu_parallel(ctx, items, m == 2 ? wino_item2 : wino_item4, &j);
  return 0;
}
