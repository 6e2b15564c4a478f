/* Convolutions with their epilogue fused by cuDNN (cudnn_internal.h): one operation graph per
 * convolution step through cuDNN 9's backend API,
 *
 *     X (fp16 NHWC) * W (fp16) -> conv (fp32, virtual) -> + bias (fp32) -> [+ residual (fp16)]
 *                              -> [activation] -> Y (the output tensor's type, NHWC)
 *
 * so that the convolution's output is written once, after its epilogue, instead of being written
 * in fp16, read back and written again by npt_k_epilogue (the "pre-epilogue round trip" of
 * docs/performance.md).  The intermediates are virtual: cuDNN keeps them on chip.
 *
 * Which steps: a cuDNN convolution step (not grouped) whose epilogue has at most one addend, at
 * the output's own resolution (no fused upsample), and no 1x1 heads.  Anything else, and any
 * step for which cuDNN has no engine that accepts the graph, keeps the separate epilogue pass:
 * that path stays the fallback, and NPT_CUDNN_FUSE=0 forces it (benchmarks compare the two).
 *
 * The engine is chosen deterministically: cuDNN's heuristics (mode A, then the fallback list)
 * rank the engine configurations from the graph, the GPU and the cuDNN version alone; the first
 * one that is not marked non-deterministic, does not reduce in less than fp32, finalizes and
 * needs at most NPT__FUSED_WS_LIMIT of workspace is taken.  Nothing is timed.
 *
 * Plan time.  The engines cuDNN 9 ranks first for these graphs compile their kernels at plan
 * time (NVRTC), about 7 s per network plan on an H100, paid again for every new batch size or
 * frame size.  cuDNN (9.5 and later) can share compiled kernels between operation graphs of the
 * same topology through a kernel cache, for graphs marked dynamic-shape.  So each step's graph
 * is first made dynamic-shape and planned with the context's kernel cache for its topology
 * (npt__gpu_ctx.kcaches; the key is everything about the graph but the batch and the frame
 * size): a plan for another batch or frame size of the same network may bind the kernels
 * compiled for the first instead of compiling again ("may": cuDNN decides).  When cuDNN refuses
 * the dynamic-shape graph, or it has no engine for it, the step is planned as before (static
 * shapes, no cache).  Only with NPT_CUDNN_KERNEL_CACHE=1: until it has run on a GPU every step is
 * planned the static way by default.  Nothing here
 * depends on timing, so engines stay deterministic; a dynamic-shape graph may be given other
 * engines than the static one (the benchmark compares the two).
 *
 * The tensor unique ids of a graph: X 1, W 2, B 3, R 4, Y 5; virtual ones from 100. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cuda/cudnn_internal.h"

#define NPT__FUSED_WS_LIMIT ((size_t)1 << 30)

enum { UID_X = 1, UID_W = 2, UID_B = 3, UID_R = 4, UID_Y = 5, UID_VIRT = 100 };

/* Backend calls: a failed one records where and returns NPT_EUNSUPPORTED, which the caller
 * takes as "cuDNN cannot fuse this step", never as a run failure. */
#define FCHECK(stmt)                                                                               \
  do {                                                                                             \
    cudnnStatus_t npt__s = (stmt);                                                                 \
    if (npt__s != CUDNN_STATUS_SUCCESS) {                                                          \
      rc = npt_error_set(NPT_EUNSUPPORTED, "cuDNN fusion: %s: %s", #stmt,                          \
                         cudnnGetErrorString(npt__s));                                             \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

/* Every descriptor a fused step made, kept until the step is released: the execution plan
 * was finalized from them, and cuDNN's documentation does not say it copies them. */
typedef struct desc_list {
  cudnnBackendDescriptor_t d[48];
  int n;
} desc_list;

static cudnnStatus_t make_desc(desc_list *l, cudnnBackendDescriptorType_t type,
                               cudnnBackendDescriptor_t *out) {
  *out = NULL;
  if (l->n >= (int)(sizeof l->d / sizeof l->d[0]))
    return CUDNN_STATUS_ALLOC_FAILED;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(type, out);
  if (st == CUDNN_STATUS_SUCCESS)
    l->d[l->n++] = *out;
  return st;
}

static void free_descs(desc_list *l) {
  while (l->n > 0)
    cudnnBackendDestroyDescriptor(l->d[--l->n]);
}

/* An NHWC tensor [n, c, h, w] (dims in NCHW order, as cuDNN's backend wants them). */
static cudnnStatus_t tensor(desc_list *l, int64_t uid, cudnnDataType_t dt, int64_t n, int64_t c,
                            int64_t h, int64_t w, int virt, cudnnBackendDescriptor_t *out) {
  cudnnBackendDescriptor_t t;
  cudnnStatus_t st = make_desc(l, CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t);
  int64_t dims[4] = {n, c, h, w}, strides[4] = {h * w * c, 1, w * c, c}, align = 16;
  bool v = virt != 0;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendFinalize(t);
  *out = t;
  return st;
}

/* A pointwise operation y = mode(x[, b]) computed in fp32. */
static cudnnStatus_t pointwise(desc_list *l, cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                               cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y,
                               cudnnBackendDescriptor_t *op) {
  cudnnBackendDescriptor_t pw;
  cudnnDataType_t prec = CUDNN_DATA_FLOAT;
  cudnnStatus_t st = make_desc(l, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1,
                                  &mode);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1,
                                  &prec);
  if (st == CUDNN_STATUS_SUCCESS && mode == CUDNN_POINTWISE_SWISH_FWD) {
    double beta = 1.0; /* SiLU: x * sigmoid(1 * x) */
    float beta_f = 1.0f;
    st = cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta);
    if (st != CUDNN_STATUS_SUCCESS)
      st = cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_FLOAT, 1,
                                    &beta_f);
  }
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendFinalize(pw);
  if (st == CUDNN_STATUS_SUCCESS)
    st = make_desc(l, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
  if (st == CUDNN_STATUS_SUCCESS && b)
    st = cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendFinalize(*op);
  return st;
}

int npt__gpu_fused_eligible(const npt__gpu_plan *p, const npt__gpu_step *s) {
  const npt_node *n = s->node;
  if (s->kind != NPT__STEP_CUDNN || s->n_tail > 0 || s->n_add > 1 || n->groups != 1)
    return 0;
  if (s->act != NPT_ACT_NONE && s->act != NPT_ACT_RELU && s->act != NPT_ACT_SILU &&
      s->act != NPT_ACT_SIGMOID)
    return 0;
  for (int k = 0; k < s->n_add; k++) {
    const npt__gpu_tensor *a = &p->t[s->add_t[k]], *y = &p->t[s->out];
    if (s->add_scale[k] != 1 || a->c != y->c || a->h != y->h || a->w != y->w)
      return 0;
  }
  return 1;
}

/* 1 when engine configuration `cfg` may be used: deterministic, fp32 reduction; 0 when its
 * numerical notes say otherwise, -1 when they cannot be read. */
static int engine_ok(cudnnBackendDescriptor_t cfg, int64_t *index, int *rtc) {
  cudnnBackendDescriptor_t eng = NULL;
  int ok = 0;
  *index = -1, *rtc = 0;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) != CUDNN_STATUS_SUCCESS)
    return 0;
  int64_t got = 0;
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                               &got, &eng) == CUDNN_STATUS_SUCCESS &&
      got == 1 &&
      cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                               CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &got,
                               notes) == CUDNN_STATUS_SUCCESS) {
    ok = 1;
    int64_t n_b = 0;
    cudnnBackendBehaviorNote_t beh[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
    cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n_b, index);
    if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                 CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n_b, beh) == CUDNN_STATUS_SUCCESS)
      for (int64_t k = 0; k < n_b; k++)
        *rtc |= beh[k] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
    for (int64_t k = 0; k < got; k++)
      if (notes[k] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC ||
          notes[k] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
          notes[k] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)
        ok = 0;
  } else
    ok = -1; /* notes unreadable: not taken (determinism cannot be checked) */
  cudnnBackendDestroyDescriptor(eng);
  return ok;
}

/* Why pick_plan found no plan, or which engine it took. */
typedef struct pick_stats {
  int configs, notes_refused, notes_unread, not_finalized, too_much_ws;
  int64_t engine; /* the chosen engine's global index */
  int rtc;        /* 1 when it compiles its kernel at run time (NVRTC) */
} pick_stats;

/* The first usable execution plan of heuristics mode `mode` for graph `og`, or NULL; the
 * heuristics and the chosen engine configuration go into `keep`. */
static cudnnBackendDescriptor_t pick_plan(npt__gpu_ctx *ctx, desc_list *keep,
                                          cudnnBackendDescriptor_t og, cudnnBackendHeurMode_t mode,
                                          cudnnBackendDescriptor_t kcache, size_t *ws,
                                          pick_stats *ps) {
  cudnnBackendDescriptor_t heur = NULL, plan = NULL, cfgs[64];
  int64_t n_cfg = 0;
  int made = 0, chosen = -1;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur) !=
      CUDNN_STATUS_SUCCESS)
    return NULL;
  if (cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og) != CUDNN_STATUS_SUCCESS ||
      cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode) !=
          CUDNN_STATUS_SUCCESS ||
      cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS)
    goto out;
  for (; made < 64; made++)
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[made]) !=
        CUDNN_STATUS_SUCCESS)
      break;
  if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                               made, &n_cfg, cfgs) != CUDNN_STATUS_SUCCESS)
    n_cfg = 0;
  ps->configs += (int)n_cfg;
  for (int64_t k = 0; k < n_cfg && k < made && !plan; k++) {
    int64_t index;
    int rtc;
    int ok = engine_ok(cfgs[k], &index, &rtc);
    if (ok <= 0) {
      ps->notes_refused += ok == 0, ps->notes_unread += ok < 0;
      continue;
    }
    cudnnBackendDescriptor_t pl = NULL;
    int64_t w = 0;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &pl) !=
        CUDNN_STATUS_SUCCESS)
      continue;
    if (cudnnBackendSetAttribute(pl, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                 &ctx->cudnn) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendSetAttribute(pl, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &cfgs[k]) == CUDNN_STATUS_SUCCESS &&
        (!kcache || cudnnBackendSetAttribute(pl, CUDNN_ATTR_EXECUTION_PLAN_KERNEL_CACHE,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                             &kcache) == CUDNN_STATUS_SUCCESS) &&
        cudnnBackendFinalize(pl) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendGetAttribute(pl, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                 NULL, &w) == CUDNN_STATUS_SUCCESS) {
      if (w >= 0 && (size_t)w <= NPT__FUSED_WS_LIMIT) {
        plan = pl, *ws = (size_t)w, chosen = (int)k;
        ps->engine = index, ps->rtc = rtc;
      } else {
        ps->too_much_ws++;
        cudnnBackendDestroyDescriptor(pl);
      }
    } else {
      ps->not_finalized++;
      cudnnBackendDestroyDescriptor(pl);
    }
  }
out:
  if (plan && keep->n + 2 > (int)(sizeof keep->d / sizeof keep->d[0])) {
    cudnnBackendDestroyDescriptor(plan);
    plan = NULL;
  }
  for (int k = 0; k < made; k++)
    if (plan && k == chosen)
      keep->d[keep->n++] = cfgs[k];
    else
      cudnnBackendDestroyDescriptor(cfgs[k]);
  if (plan)
    keep->d[keep->n++] = heur;
  else
    cudnnBackendDestroyDescriptor(heur);
  return plan;
}

/* 1 with NPT_CUDNN_KERNEL_CACHE=1, and only with a cuDNN that has kernel caches bound to an
 * operation graph (9.5).  Off by default until it has run on a GPU (docs/performance.md). */
static int kcache_enabled(void) {
  const char *env = getenv("NPT_CUDNN_KERNEL_CACHE");
  return env && strcmp(env, "1") == 0 && cudnnGetVersion() >= 90500;
}

/* The topology of step s's fused graph: all of it but the batch and the frame size. */
static void topology_key(const npt__gpu_plan *p, const npt__gpu_step *s, char *key, size_t n) {
  const npt_node *c = s->node;
  const npt__gpu_tensor *y = &p->t[s->out];
  int rdt = s->n_add == 1 ? (int)p->t[s->add_t[0]].dt : -1;
  snprintf(key, n, "conv %d->%d k%dx%d s%d p%d d%d | bias | add %d (dt %d) | act %d | y dt %d",
           c->c_in, c->c_out, c->kh, c->kw, c->stride, c->pad, c->dilation, s->n_add, rdt, s->act,
           (int)y->dt);
}

/* The context's kernel cache for `key`, made now from graph og when there is none (*made = 1;
 * og must then stay alive as long as the cache: the caller hands its descriptors to it).  NULL
 * when cuDNN refuses one. */
static npt__kcache *kcache_get(npt__gpu_ctx *ctx, const char *key, cudnnBackendDescriptor_t og,
                               int *made) {
  *made = 0;
  for (int i = 0; i < ctx->n_kcaches; i++)
    if (strcmp(ctx->kcaches[i].key, key) == 0)
      return &ctx->kcaches[i];
  if (ctx->n_kcaches >= NPT__MAX_KCACHES)
    return NULL;
  cudnnBackendDescriptor_t kc = NULL;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_KERNEL_CACHE_DESCRIPTOR, &kc) !=
      CUDNN_STATUS_SUCCESS)
    return NULL;
  if (cudnnBackendSetAttribute(kc, CUDNN_ATTR_KERNEL_CACHE_OPERATION_GRAPH,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og) != CUDNN_STATUS_SUCCESS ||
      cudnnBackendFinalize(kc) != CUDNN_STATUS_SUCCESS) {
    cudnnBackendDestroyDescriptor(kc);
    return NULL;
  }
  npt__kcache *e = &ctx->kcaches[ctx->n_kcaches++];
  memset(e, 0, sizeof *e);
  snprintf(e->key, sizeof e->key, "%s", key);
  e->cache = kc;
  *made = 1;
  return e;
}

/* Forgets the context's last kernel cache (made by a prepare that then failed). */
static void kcache_drop_last(npt__gpu_ctx *ctx) {
  npt__kcache *e = &ctx->kcaches[--ctx->n_kcaches];
  cudnnBackendDestroyDescriptor(e->cache);
  if (e->keep) {
    free_descs(e->keep);
    free(e->keep);
  }
  memset(e, 0, sizeof *e);
}

void npt__gpu_kcaches_free(npt__gpu_ctx *ctx) {
  while (ctx->n_kcaches > 0)
    kcache_drop_last(ctx);
}

/* Builds step s's fused graph and plan; dynamic: as a dynamic-shape graph with the context's
 * kernel cache for its topology. */
static int prepare(npt__gpu_ctx *ctx, npt__gpu_plan *p, npt__gpu_step *s, int dynamic) {
  const npt_node *n = s->node;
  const npt__gpu_tensor *x = &p->t[n->inputs[0]], *y = &p->t[s->out];
  desc_list *lp = calloc(1, sizeof *lp);
  NPT_ALLOC_CHECK(lp);
  desc_list l = {.n = 0};
  int rc = 0, kc_made = 0;
  npt__kcache *kc = NULL;
  cudnnDataType_t ht = CUDNN_DATA_HALF, ft = CUDNN_DATA_FLOAT;
  cudnnDataType_t yt = y->dt == NPT_DT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  int64_t b = p->batch, uid = UID_VIRT;
  cudnnBackendDescriptor_t tx, tw, tb, tr = NULL, ty, tconv, cur, conv, ops[4];
  int n_ops = 0;
  FCHECK(tensor(&l, UID_X, ht, b, x->c, x->h, x->w, 0, &tx));
  FCHECK(tensor(&l, UID_W, ht, n->c_out, n->c_in, n->kh, n->kw, 0, &tw)); /* KRSC */
  FCHECK(tensor(&l, UID_B, ft, 1, n->c_out, 1, 1, 0, &tb));
  if (s->n_add == 1) {
    const npt__gpu_tensor *a = &p->t[s->add_t[0]];
    FCHECK(tensor(&l, UID_R, a->dt == NPT_DT_F16 ? ht : ft, b, a->c, a->h, a->w, 0, &tr));
  }
  FCHECK(tensor(&l, UID_Y, yt, b, y->c, y->h, y->w, 0, &ty));
  FCHECK(tensor(&l, uid++, ft, b, y->c, y->h, y->w, 1, &tconv));

  FCHECK(make_desc(&l, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
  {
    int64_t dims = 2, pad[2] = {n->pad, n->pad}, str[2] = {n->stride, n->stride};
    int64_t dil[2] = {n->dilation, n->dilation};
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    FCHECK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                    &ft));
    FCHECK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE,
                                    CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
    FCHECK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1,
                                    &dims));
    FCHECK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2,
                                    pad));
    FCHECK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2,
                                    pad));
    FCHECK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64,
                                    2, str));
    FCHECK(
        cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil));
    FCHECK(cudnnBackendFinalize(conv));
  }
  {
    cudnnBackendDescriptor_t op;
    float alpha = 1.0f, beta = 0.0f;
    FCHECK(make_desc(&l, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &op));
    FCHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx));
    FCHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw));
    FCHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tconv));
    FCHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
    FCHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                    CUDNN_TYPE_FLOAT, 1, &alpha));
    FCHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                                    CUDNN_TYPE_FLOAT, 1, &beta));
    FCHECK(cudnnBackendFinalize(op));
    ops[n_ops++] = op;
  }
  /* Bias, then the residual, then the activation; the last op writes Y. */
  int last_bias = s->n_add == 0 && s->act == NPT_ACT_NONE, last_add = s->act == NPT_ACT_NONE;
  cur = tconv;
  {
    cudnnBackendDescriptor_t out = ty;
    if (!last_bias)
      FCHECK(tensor(&l, uid++, ft, b, y->c, y->h, y->w, 1, &out));
    FCHECK(pointwise(&l, CUDNN_POINTWISE_ADD, cur, tb, out, &ops[n_ops++]));
    cur = out;
  }
  if (s->n_add == 1) {
    cudnnBackendDescriptor_t out = ty;
    if (!last_add)
      FCHECK(tensor(&l, uid++, ft, b, y->c, y->h, y->w, 1, &out));
    FCHECK(pointwise(&l, CUDNN_POINTWISE_ADD, cur, tr, out, &ops[n_ops++]));
    cur = out;
  }
  if (s->act != NPT_ACT_NONE) {
    cudnnPointwiseMode_t m = s->act == NPT_ACT_RELU   ? CUDNN_POINTWISE_RELU_FWD
                             : s->act == NPT_ACT_SILU ? CUDNN_POINTWISE_SWISH_FWD
                                                      : CUDNN_POINTWISE_SIGMOID_FWD;
    FCHECK(pointwise(&l, m, cur, NULL, ty, &ops[n_ops++]));
  }
  {
    cudnnBackendDescriptor_t og;
    FCHECK(make_desc(&l, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &og));
    FCHECK(cudnnBackendSetAttribute(og, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                    &ctx->cudnn));
    FCHECK(cudnnBackendSetAttribute(og, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops, ops));
    if (dynamic) {
      bool on = true;
      FCHECK(cudnnBackendSetAttribute(og, CUDNN_ATTR_OPERATIONGRAPH_IS_DYNAMIC_SHAPE_ENABLED,
                                      CUDNN_TYPE_BOOLEAN, 1, &on));
    }
    FCHECK(cudnnBackendFinalize(og));
    if (dynamic) {
      char key[128];
      topology_key(p, s, key, sizeof key);
      kc = kcache_get(ctx, key, og, &kc_made);
      if (!kc) {
        rc = npt_error_set(NPT_EUNSUPPORTED, "cuDNN fusion: no kernel cache for the graph of %s",
                           n->name);
        goto done;
      }
    }
    size_t ws = 0;
    pick_stats ps = {0};
    cudnnBackendDescriptor_t kd = kc ? kc->cache : NULL;
    s->fplan = pick_plan(ctx, &l, og, CUDNN_HEUR_MODE_A, kd, &ws, &ps);
    if (!s->fplan)
      s->fplan = pick_plan(ctx, &l, og, CUDNN_HEUR_MODE_FALLBACK, kd, &ws, &ps);
    if (!s->fplan) {
      rc = npt_error_set(NPT_EUNSUPPORTED,
                         "cuDNN fusion: no engine runs the %sfused graph of %s (%d "
                         "configurations: %d non-deterministic or reduced-precision, %d with "
                         "unreadable notes, %d not finalized, %d over the workspace limit)",
                         dynamic ? "dynamic-shape " : "", n->name, ps.configs, ps.notes_refused,
                         ps.notes_unread, ps.not_finalized, ps.too_much_ws);
      goto done;
    }
    s->fws = ws, s->fengine = ps.engine, s->frtc = ps.rtc, s->fdynamic = dynamic;
    if (kc)
      kc->plans++;
    if (ws > p->ws_bytes)
      p->ws_bytes = ws;
  }
done:
  if (rc < 0 || !s->fplan) {
    if (kc_made)
      kcache_drop_last(ctx); /* before its graph goes */
    free_descs(&l);
    free(lp);
  } else {
    *lp = l;
    if (kc_made)
      kc->keep = lp; /* the cache was made from this graph: its descriptors live as long */
    else
      s->fkeep = lp;
  }
  return rc;
}

/* Dynamic shapes first (unless switched off, or cuDNN refused them for the first steps this
 * context tried: a failed try costs plan time), then static shapes. */
int npt__gpu_fused_prepare(npt__gpu_ctx *ctx, npt__gpu_plan *p, npt__gpu_step *s) {
  if (kcache_enabled() && (ctx->dyn_ok > 0 || ctx->dyn_failed < 3)) {
    int rc = prepare(ctx, p, s, 1);
    if (rc == 0)
      ctx->dyn_ok++;
    if (rc != NPT_EUNSUPPORTED)
      return rc;
    ctx->dyn_failed++;
    if (npt__gpu_verbose())
      fprintf(stderr,
              "nptrack: cudnn backend: node %s: no dynamic-shape plan (%s); planning it with "
              "static shapes%s\n",
              s->node->name, npt_error_msg(rc),
              ctx->dyn_ok == 0 && ctx->dyn_failed >= 3
                  ? " (and every later step: the first three were refused)"
                  : "");
    npt_error_clear();
  }
  return prepare(ctx, p, s, 0);
}

int npt__gpu_fused_run(npt__gpu_ctx *ctx, npt__gpu_plan *p, const npt__gpu_step *s, int slot) {
  const npt_node *n = s->node;
  npt_dview x = npt__gpu_view(p, n->inputs[0], slot), y = npt__gpu_view(p, s->out, slot);
  void *ptrs[5] = {x.p, s->d_w, s->d_bias, y.p, NULL};
  int64_t uids[5] = {UID_X, UID_W, UID_B, UID_Y, UID_R};
  int n_ptr = 4;
  if (s->n_add == 1)
    ptrs[n_ptr++] = npt__gpu_view(p, s->add_t[0], slot).p;
  cudnnBackendDescriptor_t vp = NULL;
  NPT_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
  cudnnStatus_t st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                              CUDNN_TYPE_VOID_PTR, n_ptr, ptrs);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n_ptr,
                                  uids);
  void *ws = p->workspace;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
                                  &ws);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendFinalize(vp);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendExecute(ctx->cudnn, s->fplan, vp);
  cudnnBackendDestroyDescriptor(vp);
  NPT_CUDNN_CHECK(st);
  return 0;
}

void npt__gpu_fused_release(npt__gpu_step *s) {
  if (s->fplan)
    cudnnBackendDestroyDescriptor(s->fplan);
  if (s->fkeep) {
    free_descs(s->fkeep);
    free(s->fkeep);
  }
  s->fplan = NULL, s->fkeep = NULL;
}
