/* Test and benchmark hooks of the cudnn backend (tests/gpu/, benchmarks/bench_gpu.c). */
#ifndef NPT_CUDNN_DEBUG_H
#define NPT_CUDNN_DEBUG_H

#include <stddef.h>
#include <stdio.h>

#include "nn/backend.h"

/* The backend, when this build has it (else NULL). */
const npt_backend_i *npt__cudnn_backend(void);

/* poison: every tensor of plans made after the call is filled with NaN before each run(), so
 * that an element no step writes fails a comparison.  Not thread-safe: tests only. */
void npt__cudnn_set_poison(int poison);

/* Copies tensor `t` of slot 0 after the last run() into `out` as plain [batch][c][h][w] fp32.
 * Returns 0, or NPT_EINVAL when the plan never stores it (fused away). */
int npt__cudnn_plan_tensor(void *ctx, void *plan, int t, float *out);

/* What a plan is: steps, how many run in cuDNN, whether it runs as a CUDA graph, device bytes. */
typedef struct npt__cudnn_plan_info {
  int steps, cudnn_convs, direct_convs, eltwise, fused_adds, graphs;
  int fused_convs;   /* cuDNN convolutions with bias, addend and activation fused by cuDNN */
  int dynamic_convs; /* of them, planned as dynamic-shape graphs with a shared kernel cache */
  int merged_steps;  /* steps running two merged head convolutions (hm1 + box1) */
  int tail_steps;    /* steps running the tail kernel (f2, hm1 + box1, heads; NPT_CUDNN_TAIL) */
  double plan_s, fused_plan_s; /* time to make the plan; of it, building cuDNN-fused plans */
  size_t device_bytes, workspace_bytes;
  /* Device-memory traffic of one network run (a batch), modelled from the steps: each step
   * reads its input tensors once and writes its output once; a cuDNN convolution also writes
   * and reads back its pre-epilogue output (raw_bytes of the total). */
  double bytes, raw_bytes;
} npt__cudnn_plan_info;
void npt__cudnn_plan_info_get(void *plan, npt__cudnn_plan_info *info);

/* Times `reps` launches of the network alone (slot 0), after `warmup` ones: the median of
 * per-launch CUDA-event times, in ms. */
int npt__cudnn_time_forward(void *ctx, void *plan, int warmup, int reps, double *median_ms);

/* Times each step alone (median of reps, CUDA events) and writes one CSV row per step to f:
 * node, kind, fused, ms, modelled MB, GB/s. */
int npt__cudnn_profile(void *ctx, void *plan, int reps, FILE *f);

/* The plan's compute stream (a cudaStream_t), for timing around detect. */
void *npt__cudnn_stream(void *ctx);

#endif
