/* Test hooks of the CPU backend (used by tests/unit/test_cpu_ops.c): plans whose every tensor
 * can be read back after a run, and poisoned buffers, so that a test can compare each tensor of
 * a network with a reference and catch elements that an op never wrote. */
#ifndef NPT_CPU_DEBUG_H
#define NPT_CPU_DEBUG_H

#include "common/rng.h"
#include "nn/backend.h"

/* Like npt_backend_cpu.plan; keep_all: no storage reuse and no in-place add, so that every
 * tensor survives the run; poison: arena and head buffers are filled with NaN before each run. */
int npt__cpu_plan_debug(void *ctx, const npt_graph *g, int batch, int h, int w, int keep_all,
                        int poison, void **plan);

/* Copies tensor `t` of the last run into `out` as plain [batch][c][h][w].  Returns 0, or
 * NPT_EINVAL when the plan did not keep it (a conv output summed straight into an add, or a
 * plan made without keep_all). */
int npt__cpu_plan_tensor(void *ctx, void *plan, int t, float *out);

/* After a run of a keep_all plan: the first tensor whose lanes past its channel count (in the
 * blocked layout) are not all zero, or -1.  The backend keeps them zero, as oneDNN does. */
int npt__cpu_plan_bad_padding(void *plan);

/* How plans made after the call run eligible 3x3 convolutions: Winograd F(4x4, 3x3) (m = 4,
 * the default), F(2x2, 3x3) (m = 2), or oneDNN's direct convolutions (0).  Tests run all three,
 * the benchmark compares them.  Not thread-safe: for tests and benchmarks only. */
void npt__cpu_set_winograd(int m);

/* Number of ADD nodes the plan folded into the convolution before them. */
int npt__cpu_plan_fused_adds(void *plan);

/* A graph builder (cpu_testnet.c) for networks made in C with random weights.  Each call adds
 * one node and returns its output tensor's index, or -1 (a later call given -1 fails too, so a
 * builder sequence can be checked once at the end).  Tensor 0 is the 1-channel input; each
 * tensor's stride follows from the ops, `multiple` from the coarsest stride.  finish() sets
 * the heads (embed may be -1) and hands over the graph (free it with npt_graph_free). */
typedef struct npt__gb {
  npt_graph *g;
  npt_rng rng;
} npt__gb;
int npt__gb_init(npt__gb *b, uint64_t seed);
int npt__gb_conv(npt__gb *b, const char *name, int in, int c_out, int k, int stride, int pad,
                 int dilation, int groups, npt_act act);
int npt__gb_convt(npt__gb *b, const char *name, int in, int c_out, int k, int stride, int pad,
                  int output_padding, npt_act act);
int npt__gb_add(npt__gb *b, const char *name, int n_in, const int *in, npt_act act);
int npt__gb_concat(npt__gb *b, const char *name, int n_in, const int *in);
int npt__gb_upsample(npt__gb *b, const char *name, int in, int scale, int bilinear);
int npt__gb_pool(npt__gb *b, const char *name, npt_op op, int in, int k, int stride, int pad);
npt_graph *npt__gb_finish(npt__gb *b, int heatmap, int size, int offset, int embed);

/* The benchmark network (benchmarks/bench_cpu.c; the same in bench_cpu_torch.py) with random
 * weights from `seed`: ~12.9 GFLOP per 1024^2 frame. */
int npt__cpu_bench_graph(npt_graph **out, uint64_t seed);

#endif
