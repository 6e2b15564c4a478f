/* The cudnn backend: the network on an NVIDIA GPU in fp16 with cuDNN convolutions and nptrack's
 * own kernels (kernels/), and detection (preprocessing, network, peak decoding) on the device.
 * The vtable and the host interface; plans in cudnn_plan.c, detection in cudnn_detect.c, the
 * design in cudnn_internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cuda/cudnn_debug.h"
#include "nn/cuda/cudnn_internal.h"

static int g_poison;

static void gpu_free(void *vctx) {
  npt__gpu_ctx *ctx = vctx;
  if (!ctx)
    return;
  npt__gpu_kcaches_free(ctx);
  if (ctx->cudnn)
    cudnnDestroy(ctx->cudnn);
  if (ctx->compute)
    cudaStreamDestroy(ctx->compute);
  if (ctx->copy)
    cudaStreamDestroy(ctx->copy);
  free(ctx);
}

static int init(npt__gpu_ctx *ctx, const npt_backend_params *params) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return npt_error_set(NPT_ECUDA,
                         "cudnn backend: no usable GPU: %s (is an NVIDIA GPU there and its "
                         "driver loaded?)",
                         cudaGetErrorString(e));
  }
  if (count == 0)
    return npt_error_set(NPT_ECUDA, "cudnn backend: no GPU visible");
  if (params->device < 0 || params->device >= count)
    return npt_error_set(NPT_ECONFIG, "detect.device = %d, but %d GPU%s visible (0 to %d)",
                         params->device, count, count > 1 ? "s are" : " is", count - 1);
  ctx->device = params->device;
  NPT_CUDA_CHECK(cudaSetDevice(ctx->device));
  NPT_CUDA_CHECK(cudaGetDeviceProperties(&ctx->prop, ctx->device));
  if (ctx->prop.major < 7)
    return npt_error_set(NPT_EUNSUPPORTED,
                         "cudnn backend: GPU %d (%s) is sm_%d%d; fp16 tensor cores need sm_70 "
                         "or newer",
                         ctx->device, ctx->prop.name, ctx->prop.major, ctx->prop.minor);
  NPT_CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
  NPT_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->compute, cudaStreamNonBlocking));
  NPT_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->copy, cudaStreamNonBlocking));
  NPT_CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->compute));
  return 0;
}

static int gpu_init(void **out, const npt_backend_params *params) {
  *out = NULL;
  npt__gpu_ctx *ctx = calloc(1, sizeof *ctx);
  NPT_ALLOC_CHECK(ctx);
  int rc = init(ctx, params);
  if (rc < 0) {
    gpu_free(ctx);
    return rc;
  }
  *out = ctx;
  return 0;
}

static int gpu_supports(void *ctx, const npt_graph *g, const npt_node *n) {
  (void)ctx, (void)g;
  switch (n->op) {
  case NPT_OP_CONV2D:
  case NPT_OP_ADD:
  case NPT_OP_CONCAT:
  case NPT_OP_UPSAMPLE:
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    return n->op != NPT_OP_ADD || n->n_inputs <= NPT_K_MAX_ADDENDS;
  default:
    return 0; /* CONVT2D: no model uses it yet */
  }
}

static int gpu_plan(void *vctx, const npt_graph *g, int batch, int h, int w, void **plan) {
  npt__gpu_ctx *ctx = vctx;
  *plan = NULL;
  if (batch < 1 || h < 1 || w < 1 || h % g->multiple || w % g->multiple)
    return npt_error_set(NPT_EINVAL, "cudnn backend: cannot plan %d frames of %dx%d", batch, w, h);
  NPT_CUDA_CHECK(cudaSetDevice(ctx->device));
  npt__gpu_plan *p;
  NPT_TRY(npt__gpu_plan_make(ctx, g, batch, h, w, &p));
  p->poison = g_poison;
  *plan = p;
  return 0;
}

static void gpu_plan_free(void *vctx, void *plan) {
  npt__gpu_ctx *ctx = vctx;
  cudaSetDevice(ctx->device);
  cudaStreamSynchronize(ctx->compute);
  cudaStreamSynchronize(ctx->copy);
  npt__gpu_plan_destroy(plan);
}

/* The backend interface's run: host floats in, host heads out (plain fp32 [b][c][h][w]). */
static int gpu_run(void *vctx, void *vplan, const float *input, npt_head_outputs *out) {
  npt__gpu_ctx *ctx = vctx;
  npt__gpu_plan *p = vplan;
  NPT_CUDA_CHECK(cudaSetDevice(ctx->device));
  if (p->poison)
    NPT_TRY(npt__gpu_poison(ctx, p));
  NPT_CUDA_CHECK(cudaMemcpyAsync(p->d_in_f32, input, (size_t)p->batch * p->h * p->w * sizeof(float),
                                 cudaMemcpyHostToDevice, ctx->compute));
  npt_dview in = npt__gpu_view(p, p->g->input, 0);
  NPT_TRY(npt_k_from_nchw(p->d_in_f32, &in, ctx->compute));
  NPT_TRY(npt__gpu_forward(ctx, p, 0));
  for (int k = 0; k < 4; k++) {
    if (p->head_t[k] < 0)
      continue;
    npt_dview v = npt__gpu_view(p, p->head_t[k], 0);
    NPT_TRY(npt_k_to_nchw(&v, p->head_scale[k], p->d_heads_f32[k], ctx->compute));
    NPT_CUDA_CHECK(cudaMemcpyAsync(p->h_heads[k], p->d_heads_f32[k],
                                   p->head_floats[k] * sizeof(float), cudaMemcpyDeviceToHost,
                                   ctx->compute));
  }
  NPT_CUDA_CHECK(cudaStreamSynchronize(ctx->compute));
  *out = p->out;
  return 0;
}

static void gpu_describe(void *vctx, char *buf, size_t n) {
  npt__gpu_ctx *ctx = vctx;
  size_t v = cudnnGetVersion();
  snprintf(buf, n, "cudnn: GPU %d (%s, sm_%d%d, %.0f MiB), cuDNN %zu.%zu.%zu", ctx->device,
           ctx->prop.name, ctx->prop.major, ctx->prop.minor, ctx->prop.totalGlobalMem / 1048576.0,
           v / 10000, (v % 10000) / 100, v % 100);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

const npt_backend_i npt_backend_cudnn = {
    .name = "cudnn",
    .init = gpu_init,
    .free = gpu_free,
    .supports = gpu_supports,
    .plan = gpu_plan,
    .run = gpu_run,
    .plan_free = gpu_plan_free,
    .detect = npt__gpu_detect,
    .max_batch = 32,
    .describe = gpu_describe,
};

const npt_backend_i *npt__cudnn_backend(void) {
  return &npt_backend_cudnn;
}

void npt__cudnn_set_poison(int poison) {
  g_poison = poison;
}

int npt__cudnn_plan_tensor(void *vctx, void *vplan, int t, float *out) {
  npt__gpu_ctx *ctx = vctx;
  npt__gpu_plan *p = vplan;
  if (t < 0 || t >= p->n_tensors || !p->t[t].stored)
    return npt_error_set(NPT_EINVAL, "cudnn backend: tensor %d is not stored by this plan", t);
  npt_dview v = npt__gpu_view(p, t, 0);
  size_t floats = (size_t)v.n * v.c * v.h * v.w;
  float *d = NULL;
  NPT_CUDA_CHECK(cudaMalloc((void **)&d, floats * sizeof(float)));
  int rc = npt_k_to_nchw(&v, 1, d, ctx->compute);
  cudaError_t e = cudaSuccess;
  if (rc == 0)
    e = cudaMemcpyAsync(out, d, floats * sizeof(float), cudaMemcpyDeviceToHost, ctx->compute);
  if (rc == 0 && e == cudaSuccess)
    e = cudaStreamSynchronize(ctx->compute);
  cudaFree(d);
  NPT_TRY(rc);
  NPT_CUDA_CHECK(e);
  return 0;
}

void npt__cudnn_plan_info_get(void *vplan, npt__cudnn_plan_info *info) {
  const npt__gpu_plan *p = vplan;
  memset(info, 0, sizeof *info);
  info->steps = p->n_steps;
  for (int i = 0; i < p->n_steps; i++) {
    const npt__gpu_step *s = &p->steps[i];
    info->cudnn_convs += s->kind == NPT__STEP_CUDNN;
    info->direct_convs += s->kind == NPT__STEP_DIRECT;
    info->eltwise += s->kind == NPT__STEP_ELTWISE;
    info->fused_adds += s->kind != NPT__STEP_ELTWISE && s->node->output != s->out && !s->n_tail;
  }
  for (int i = 0; i < p->n_steps; i++) {
    double raw;
    info->bytes += npt__gpu_step_bytes(p, &p->steps[i], &raw);
    info->raw_bytes += raw;
  }
  info->fused_convs = p->fused_convs;
  info->merged_steps = p->merged_steps;
  info->tail_steps = p->tail_steps;
  info->plan_s = p->plan_ms / 1e3, info->fused_plan_s = p->fused_plan_ms / 1e3;
  for (int i = 0; i < p->n_steps; i++)
    info->dynamic_convs += p->steps[i].fplan && p->steps[i].fdynamic;
  info->graphs = p->use_graphs;
  info->device_bytes = p->device_bytes;
  info->workspace_bytes = p->ws_bytes;
}

double npt__gpu_step_bytes(const npt__gpu_plan *p, const npt__gpu_step *s, double *raw) {
  double b = s->n_tail ? 0.0 : (double)p->t[s->out].bytes;
  *raw = 0;
  if (s->kind != NPT__STEP_ELTWISE)
    b += (double)p->t[s->node->inputs[0]].bytes;
  for (int k = 0; k < s->n_add; k++)
    b += (double)p->t[s->add_t[k]].bytes;
  for (int h = 0; h < s->n_tail; h++)
    b += (double)p->t[s->tail[h]->output].bytes;
  if (s->kind == NPT__STEP_CUDNN && !s->fplan) {
    const npt__gpu_tensor *y = &p->t[s->node->output];
    *raw = 2.0 * p->batch * y->h * y->w * y->c * 2;
    b += *raw;
  }
  return b;
}

int npt__cudnn_profile(void *vctx, void *vplan, int reps, FILE *f) {
  npt__gpu_ctx *ctx = vctx;
  npt__gpu_plan *p = vplan;
  static const char *const kinds[] = {"cudnn", "direct", "eltwise", "pool", "tail"};
  cudaEvent_t a, b;
  NPT_CUDA_CHECK(cudaEventCreate(&a));
  NPT_CUDA_CHECK(cudaEventCreate(&b));
  double total = 0;
  fprintf(f, "step,node,kind,fused,ms,mb,gbs\n");
  for (int i = 0; i < p->n_steps; i++) {
    const npt__gpu_step *s = &p->steps[i];
    double t[64], raw;
    int n = reps < 64 ? reps : 64;
    for (int r = 0; r < n + 2; r++) {
      float ms = 0;
      cudaEventRecord(a, ctx->compute);
      NPT_TRY(npt__gpu_run_step(ctx, p, i, 0));
      cudaEventRecord(b, ctx->compute);
      NPT_CUDA_CHECK(cudaEventSynchronize(b));
      cudaEventElapsedTime(&ms, a, b);
      if (r >= 2)
        t[r - 2] = ms;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double mb = npt__gpu_step_bytes(p, s, &raw) / 1e6;
    total += t[n / 2];
    char name[160]; /* a tail step: its first conv and the merged head convs (f2+hm1+box1) */
    snprintf(name, sizeof name, "%s%s%s", s->node->name, s->trunk ? "+" : "",
             s->trunk ? s->trunk->name : "");
    fprintf(f, "%d,%s,%s,%s,%.4f,%.1f,%.0f\n", i, name, kinds[s->kind],
            s->trunk    ? "tail+heads"
            : s->n_tail ? "heads"
            : s->fplan  ? (s->node->output != s->out ? "cudnn-graph+add" : "cudnn-graph")
            : s->node->output != s->out ? "add"
                                        : "",
            t[n / 2], mb, mb / 1e3 / (t[n / 2] * 1e-3));
  }
  fprintf(f, "total,,,,%.4f,,\n", total);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 0;
}

int npt__cudnn_time_forward(void *vctx, void *vplan, int warmup, int reps, double *median_ms) {
  npt__gpu_ctx *ctx = vctx;
  npt__gpu_plan *p = vplan;
  cudaEvent_t a, b;
  NPT_CUDA_CHECK(cudaEventCreate(&a));
  NPT_CUDA_CHECK(cudaEventCreate(&b));
  double *t = malloc(sizeof *t * (size_t)(reps > 0 ? reps : 1));
  NPT_ALLOC_CHECK(t);
  int rc = 0;
  for (int i = 0; i < warmup && rc == 0; i++)
    rc = npt__gpu_forward(ctx, p, 0);
  for (int i = 0; i < reps && rc == 0; i++) {
    float ms = 0;
    cudaEventRecord(a, ctx->compute);
    rc = npt__gpu_forward(ctx, p, 0);
    cudaEventRecord(b, ctx->compute);
    if (rc == 0 && cudaEventSynchronize(b) == cudaSuccess &&
        cudaEventElapsedTime(&ms, a, b) == cudaSuccess)
      t[i] = ms;
    else if (rc == 0)
      rc = npt_error_set(NPT_ECUDA, "timing the network: %s",
                         cudaGetErrorString(cudaGetLastError()));
  }
  if (rc == 0 && reps > 0) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *median_ms = t[reps / 2];
  }
  free(t);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return rc;
}

void *npt__cudnn_stream(void *vctx) {
  return ((npt__gpu_ctx *)vctx)->compute;
}
