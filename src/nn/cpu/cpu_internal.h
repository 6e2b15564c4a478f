/* The CPU backend's insides, shared by the files of src/nn/cpu/ (and the unit tests, through
 * cpu_debug.h).  Not part of nptrack's public interface.
 *
 * Layout.  Every tensor but the network input is kept in oneDNN's channel-blocked layout nChw8c:
 * [batch][ceil(C/8)][H][W][8], the eight channels of a block interleaved per pixel, the lanes past
 * C zero.  It is the layout oneDNN's AVX2 convolutions run fastest in, so convolutions chain
 * without a reorder; the other ops (cpu_ops.c) work on it directly, eight lanes at a time.  The
 * network input stays plain [batch][1][H][W] (oneDNN's first-layer kernels read it as is); when a
 * node other than a convolution reads it, the plan adds a blocked copy.  Head tensors are copied
 * to plain [batch][C][H][W] at the end of a run, the form the backend interface promises. */
#ifndef NPT_CPU_INTERNAL_H
#define NPT_CPU_INTERNAL_H

#include <stddef.h>

#include <oneapi/dnnl/dnnl.h>

#include "nn/backend.h"

enum { NPT__BLK = 8 };

typedef struct npt__cpu_ctx {
  int threads;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
} npt__cpu_ctx;

typedef struct npt__cpu_tensor {
  int c, h, w, cb; /* logical channels, spatial size, channel blocks */
  int plain;       /* 1 for the network input ([batch][c][h][w]) */
  size_t floats;   /* storage size (batch included) */
  int def, last;   /* step that writes it (-1: the input), last step that reads it */
  int alias;       /* shares the storage of this tensor (in-place fused add), else -1 */
  int elided;      /* never stored: a conv output summed straight into its add's output */
  size_t offset;   /* in the arena, in floats (from the memory plan) */
  float *data;
} npt__cpu_tensor;

/* One executable step per graph node (and one for the input copy, when needed). */
typedef struct npt__cpu_step {
  const npt_node *node; /* NULL for the input copy */
  int out;              /* tensor written */
  int skip;             /* nothing to run (an add fused into the conv before it) */
  npt_act act;          /* activation applied last (the fused add's, when there is one) */
  /* Convolutions (cpu_conv.c). */
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  dnnl_memory_t m_src, m_wei, m_bias, m_dst, m_scratch;
  float *wei;          /* weights reordered to the primitive's layout, owned */
  int wino;            /* tile size m when run by cpu_winograd.c (wei: the transformed weights) */
  int sum_from;        /* tensor copied into the output before the conv adds to it, else -1 */
  const float *weight; /* the weights the conv reads: node->weight, or weight16 */
  float *weight16;     /* fp16-rounded copy of node->weight (NPTRACK_CPU_FP16), owned */
  int in_override; /* tensor read instead of node->inputs[0] (the input's blocked copy), or -1 */
} npt__cpu_step;

typedef struct npt__cpu_plan {
  int batch, h, w;
  int n_tensors; /* graph tensors + 1 (the input's blocked copy, used or not) */
  npt__cpu_tensor *t;
  int n_steps;
  npt__cpu_step *steps;
  float *arena;
  size_t arena_floats;
  void *scratch; /* oneDNN scratchpad, shared by all primitives (they run one at a time) */
  size_t scratch_bytes;
  float *wino_scratch; /* per thread: wino_floats floats (cpu_winograd.c) */
  size_t wino_floats;
  float *heads[4]; /* plain copies of heatmap, size, offset, embed */
  size_t head_floats[4];
  npt_head_outputs out;
  const npt_graph *g;
  /* Test hooks (cpu_debug.h). */
  int keep_all; /* no storage reuse, no in-place add: every tensor readable after a run */
  int poison;   /* fill arena and head buffers with NaN before each run */
  /* fp16 emulation (cpu_fp16.c, NPTRACK_CPU_FP16): round each listed tensor after the step
   * that writes it (and the input) to fp16, as the cudnn backend stores it. */
  int fp16;
  unsigned char *round16; /* per tensor: 1 to round */
} npt__cpu_plan;

/* cpu_threads.c: runs fn(arg, i) for i in [0, n) on the context's threads.  Items are fixed by
 * the caller, never by the thread count, and each item is computed by one thread, so results do
 * not depend on the number of threads. */
void npt__cpu_parallel(const npt__cpu_ctx *ctx, long n, void (*fn)(void *arg, long i), void *arg);
void npt__cpu_set_threads(const npt__cpu_ctx *ctx);

/* cpu_memplan.c: assigns arena offsets (in floats, 16-float aligned) to the plan's tensors so
 * that tensors alive at the same time never overlap; sets plan->arena_floats. */
int npt__cpu_memplan(npt__cpu_plan *p);
/* 64-byte aligned memory of at least `bytes` (free with free()). */
void *npt__cpu_alloc(size_t bytes);

/* cpu_conv.c: creates the oneDNN primitive of a CONV2D / CONVT2D step (after the memory plan,
 * tensor data pointers set) and its weights in the primitive's layout, and grows
 * p->scratch_bytes to the primitive's scratchpad size; bind_scratch hands it the shared
 * scratchpad once that is allocated.  conv_run runs a prepared step. */
int npt__cpu_conv_prepare(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s);
int npt__cpu_conv_bind_scratch(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s);
int npt__cpu_conv_run(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s);
void npt__cpu_conv_release(npt__cpu_step *s);
int npt__cpu_conv_supported(const npt_node *n);

/* cpu_winograd.c: F(m x m, 3x3), m = 2 or 4, for 3x3 stride-1 convolutions on AVX2 + FMA
 * CPUs.  eligible() says whether a node can run there (and the CPU can); prepare() transforms
 * the weights, sets s->wino = m and grows p->wino_floats to the per-thread scratch it needs.
 * npt__cpu_winograd_on: the m plans use (0: oneDNN's direct convolutions only). */
int npt__cpu_wino_eligible(const npt_node *n);
int npt__cpu_wino_prepare(npt__cpu_plan *p, npt__cpu_step *s, int m);
int npt__cpu_wino_run(const npt__cpu_ctx *ctx, npt__cpu_plan *p, const npt__cpu_step *s);
extern int npt__cpu_winograd_on;

/* cpu_fp16.c: a debug emulation of the cudnn backend's fp16 storage, read from the environment
 * variable NPTRACK_CPU_FP16 when a plan is made (after its steps, before its convolutions are
 * prepared).  Unset, empty or "0": off.  Otherwise a comma-separated list of
 *   on          every tensor the cudnn backend stores in fp16 is rounded to fp16 after the step
 *               that writes it, the network input too, and the weights of the convolutions
 *               cuDNN runs (fp16 there) are rounded once;
 *   fp32:NAME   tensor NAME stays fp32 (what keeping it in fp32 on the GPU would give);
 *   w32:NAME    node NAME's weights stay fp32.
 * Never for production: it makes the CPU backend lose precision on purpose, to measure what
 * fp16 storage costs the detections (docs/performance.md). */
int npt__cpu_fp16_setup(npt__cpu_plan *p, const npt_graph *g);
void npt__cpu_fp16_round(const npt__cpu_ctx *ctx, float *x, size_t n);
float npt__round_half(float x);

/* cpu_ops.c: the other ops on blocked tensors, and the layout conversions. */
int npt__cpu_op_run(const npt__cpu_ctx *ctx, npt__cpu_plan *p, const npt__cpu_step *s);
void npt__cpu_plain_to_blocked(const npt__cpu_ctx *ctx, const float *src, float *dst, int batch,
                               int c, int h, int w);
void npt__cpu_blocked_to_plain(const npt__cpu_ctx *ctx, const float *src, float *dst, int batch,
                               int c, int h, int w);

/* Records where a oneDNN call failed (statement, file:line, oneDNN's status) and returns an
 * nptrack status from the calling function. */
#define NPT_DNNL_CHECK(stmt)                                                                       \
  do {                                                                                             \
    dnnl_status_t npt__st = (stmt);                                                                \
    if (npt__st != dnnl_success)                                                                   \
      return npt__dnnl_fail(npt__st, __FILE__, __LINE__, #stmt);                                   \
  } while (0)
int npt__dnnl_fail(dnnl_status_t st, const char *file, int line, const char *stmt);

#define NPT__CPU_BLOCKS(c) (((c) + NPT__BLK - 1) / NPT__BLK)

#endif
