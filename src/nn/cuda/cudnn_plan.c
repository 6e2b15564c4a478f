/* The cudnn backend's plans (cudnn_internal.h): steps from the graph with their fusions, cuDNN
 * descriptors and algorithms, device memory, and the CUDA graph of each slot.
 *
 * Algorithms are chosen once per plan from cuDNN's heuristics (cudnnGetConvolutionForward-
 * Algorithm_v7), never by timing: the first deterministic algorithm that needs at most
 * NPT__WS_LIMIT bytes of workspace.  The heuristics depend only on the shapes, the GPU and the
 * cuDNN version, so every run and every rank on the same kind of GPU runs the same kernels and
 * gets the same results; timing-based search (cudnnFind*) could pick differently from run to run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "nn/cuda/cudnn_internal.h"
#include "npt_tail.h"

#define NPT__WS_LIMIT ((size_t)1 << 30)

static size_t dt_size(npt_dtype dt) {
  return dt == NPT_DT_F16 ? 2 : 4;
}

npt_dview npt__gpu_view(const npt__gpu_plan *p, int t, int slot) {
  const npt__gpu_tensor *x = &p->t[t];
  npt_dview v = {x->d[x->per_slot ? slot : 0], x->dt, p->batch, x->h, x->w, x->c, x->c, 0};
  return v;
}

/* A thin convolution the direct kernel runs better than cuDNN (and that it can run): its
 * fp32 arithmetic on CUDA cores costs less than cuDNN's pre-epilogue round trip through memory
 * for one input channel, a few outputs, or a small 1x1. */
static int direct_conv(const npt_node *n) {
  int co_t = n->c_out <= 8 ? 8 : n->c_out <= 16 ? 16 : n->c_out <= 32 ? 32 : 64;
  long weights = (long)co_t * n->kh * n->kw * n->c_in;
  int small_1x1 = n->kh == 1 && n->kw == 1 && (long)n->c_in * n->c_out <= 2048;
  return n->groups == 1 && n->c_out <= 64 && weights <= 12288 &&
         (n->c_in <= 4 || n->c_out <= 8 || small_1x1);
}

/* A 1x1 conv that can be a head in its input's epilogue (npt_k_epilogue_heads). */
static int tail_conv(const npt_node *n) {
  return n->op == NPT_OP_CONV2D && n->kh == 1 && n->kw == 1 && n->stride == 1 && n->pad == 0 &&
         n->groups == 1 && n->c_out <= 8 && n->c_in <= 64;
}

typedef struct analysis {
  int *cons;     /* uses of each tensor */
  int *prod;     /* node writing each tensor (-1: the input) */
  int *virt_up;  /* UPSAMPLE output read only by an ADD: never stored */
  int *deferred; /* conv node fused into the ADD it feeds */
  int *fused;    /* per ADD node: the conv node fused into it, or -1 */
  int *is_head;
  int *absorbed;    /* per node: a 1x1 head computed in its input conv's epilogue */
  int *heads_conv;  /* per node: a conv whose every reader is such a head */
  int *merge_b;     /* per node: the head conv merged into this one, or -1 */
  int *merged_away; /* per node: a head conv that runs in an earlier one's merged step */
  int *tail_f;      /* per node: a conv run as a tail step with merged head node tail_f, or -1 */
  int *in_tail;     /* per node: a merged head node run inside a tail step */
  int n_merged, n_tails;
} analysis;

static void analysis_free(analysis *a) {
  free(a->cons), free(a->prod), free(a->virt_up), free(a->deferred), free(a->fused);
  free(a->is_head), free(a->absorbed), free(a->heads_conv), free(a->merge_b), free(a->merged_away);
  free(a->tail_f), free(a->in_tail);
}

/* 1 with NPT_CUDNN_MERGE_HEADS=1.  Off by default until it has run on a GPU (it was written and
 * tested without one, 2026-12-08; docs/performance.md). */
static int merge_heads_enabled(void) {
  const char *env = getenv("NPT_CUDNN_MERGE_HEADS");
  return env && strcmp(env, "1") == 0;
}

/* The stride-2 tail kernel's version (kernels/tail.cu): 1 with NPT_CUDNN_TAIL=1 (CUDA cores), 2
 * with NPT_CUDNN_TAIL=2 (tensor cores), else 0 (none).  Off by default until it has run on a GPU
 * (written and tested without one, 2026-12-08; docs/performance.md). */
static int tail_enabled(void) {
  const char *env = getenv("NPT_CUDNN_TAIL");
  return !env ? 0 : strcmp(env, "1") == 0 ? 1 : strcmp(env, "2") == 0 ? 2 : 0;
}

static unsigned tail_smem(int version) {
  return version == 2 ? npt_tail2_smem_bytes() : npt_tail_smem_bytes();
}

static int conv3x3_same(const npt_node *n) {
  return n->op == NPT_OP_CONV2D && n->n_inputs == 1 && n->kh == 3 && n->kw == 3 && n->stride == 1 &&
         n->pad == 1 && n->dilation == 1 && n->groups == 1;
}

/* For mergeable head convs hi and hj: the node of the convolution whose output they alone read,
 * when the three and their heads can run as one tail step (the kernel's channel counts, its
 * activations, 3x3 stride-1 convolutions padded by 1, its shared memory within smem_optin
 * unless 0); else -1 with the reason in why. */
static int tail_source(const npt_graph *g, const analysis *a, const npt_node *hi,
                       const npt_node *hj, size_t smem_optin, const char **why) {
  int t = hi->inputs[0], f = a->prod[t];
  const npt_node *n = f >= 0 ? &g->nodes[f] : NULL;
  *why = NULL;
  if (!n || n->op != NPT_OP_CONV2D || n->n_inputs != 1)
    *why = "their input is not a convolution's output";
  else if (a->cons[t] != 2 || a->is_head[t])
    *why = "the convolution's output has other readers";
  else if (a->deferred[f] || a->heads_conv[f] || a->absorbed[f])
    *why = "the convolution before them runs fused into another step";
  else if (!conv3x3_same(n) || !conv3x3_same(hi) || !conv3x3_same(hj))
    *why = "not three 3x3 convolutions with stride 1 and padding 1";
  else if (n->c_in != NPT_TAIL_CI || n->c_out != NPT_TAIL_CF || hi->c_in != NPT_TAIL_CF ||
           hi->c_out + hj->c_out != NPT_TAIL_CT)
    *why = "channel counts other than the kernel's (32 -> 24 -> 2 x 24)";
  else if ((int)n->act < 0 || (int)n->act > NPT_K_ACT_SIGMOID || (int)hi->act < 0 ||
           (int)hi->act > NPT_K_ACT_SIGMOID)
    *why = "an activation the kernel does not compute";
  else if (smem_optin > 0 && tail_smem(tail_enabled()) > smem_optin)
    *why = "the kernel needs more shared memory per block than the device has";
  return *why ? -1 : f;
}

/* Whether head convs a and b (each read only by its 1x1 heads) can run as one convolution with
 * their outputs concatenated: the same input and geometry, the same activation (the epilogue
 * applies one to the whole trunk), and what one heads epilogue takes (npt_k_epilogue_heads: a
 * trunk of at most 64 channels, at most NPT_K_MAX_HEADS heads). */
static int mergeable(const analysis *an, const npt_node *a, const npt_node *b) {
  return a->n_inputs == 1 && b->n_inputs == 1 && a->inputs[0] == b->inputs[0] &&
         a->c_in == b->c_in && a->kh == b->kh && a->kw == b->kw && a->stride == b->stride &&
         a->pad == b->pad && a->dilation == b->dilation && a->groups == 1 && b->groups == 1 &&
         a->act == b->act && a->c_out + b->c_out <= 64 &&
         an->cons[a->output] + an->cons[b->output] <= NPT_K_MAX_HEADS;
}

/* The analysis of g for a plan of `batch` frames of h x w (the sizes bound what may be merged). */
static int analyse(const npt_graph *g, int batch, int h, int w, size_t smem_optin, analysis *a) {
  int nt = g->n_tensors, nn = g->n_nodes;
  a->cons = calloc((size_t)nt, sizeof(int));
  a->prod = malloc((size_t)nt * sizeof(int));
  a->virt_up = calloc((size_t)nt, sizeof(int));
  a->is_head = calloc((size_t)nt, sizeof(int));
  a->deferred = calloc((size_t)nn, sizeof(int));
  a->fused = malloc((size_t)nn * sizeof(int));
  a->absorbed = calloc((size_t)nn, sizeof(int));
  a->heads_conv = calloc((size_t)nn, sizeof(int));
  a->merge_b = malloc((size_t)nn * sizeof(int));
  a->merged_away = calloc((size_t)nn, sizeof(int));
  a->tail_f = malloc((size_t)nn * sizeof(int));
  a->in_tail = calloc((size_t)nn, sizeof(int));
  if (!a->cons || !a->prod || !a->virt_up || !a->is_head || !a->deferred || !a->fused ||
      !a->absorbed || !a->heads_conv || !a->merge_b || !a->merged_away || !a->tail_f || !a->in_tail)
    return npt_error_set(NPT_ENOMEM, "cudnn backend: out of memory");
  for (int i = 0; i < nn; i++)
    a->merge_b[i] = -1, a->tail_f[i] = -1;
  for (int t = 0; t < nt; t++)
    a->prod[t] = -1;
  const int heads[4] = {g->heads.heatmap, g->heads.size, g->heads.offset, g->heads.embed};
  for (int k = 0; k < 4; k++)
    if (heads[k] >= 0)
      a->is_head[heads[k]] = 1;
  int *consumer = malloc((size_t)nt * sizeof(int));
  NPT_ALLOC_CHECK(consumer);
  for (int i = 0; i < nn; i++) {
    const npt_node *n = &g->nodes[i];
    a->prod[n->output] = i;
    a->fused[i] = -1;
    for (int k = 0; k < n->n_inputs; k++) {
      a->cons[n->inputs[k]]++;
      consumer[n->inputs[k]] = i;
    }
  }
  for (int i = 0; i < nn; i++) {
    const npt_node *n = &g->nodes[i];
    int t = n->output;
    if (n->op == NPT_OP_UPSAMPLE && a->cons[t] == 1 && !a->is_head[t] &&
        g->nodes[consumer[t]].op == NPT_OP_ADD)
      a->virt_up[t] = 1;
  }
  for (int i = 0; i < nn; i++) {
    const npt_node *n = &g->nodes[i];
    if (n->op != NPT_OP_ADD)
      continue;
    for (int k = 0; k < n->n_inputs; k++) {
      int t = n->inputs[k], pn = a->prod[t];
      if (pn < 0 || a->cons[t] != 1 || a->is_head[t])
        continue;
      const npt_node *c = &g->nodes[pn];
      /* An input listed twice would be read after the fused conv no longer stores it. */
      int twice = 0;
      for (int m = 0; m < n->n_inputs; m++)
        twice += n->inputs[m] == t;
      if (c->op == NPT_OP_CONV2D && c->act == NPT_ACT_NONE && twice == 1) {
        a->fused[i] = pn;
        a->deferred[pn] = 1;
        break;
      }
    }
  }
  /* 1x1 heads into the cuDNN conv before them: every reader of the conv's output must be such a
   * head (at most NPT_K_MAX_HEADS), and the output no head of the network itself. */
  for (int i = 0; i < nn; i++) {
    const npt_node *n = &g->nodes[i];
    int t = n->output, ok = n->op == NPT_OP_CONV2D && !a->deferred[i] && !direct_conv(n) &&
                            !a->is_head[t] && a->cons[t] >= 1 && a->cons[t] <= NPT_K_MAX_HEADS &&
                            n->c_out <= 64;
    for (int j = i + 1; ok && j < nn; j++) {
      const npt_node *m = &g->nodes[j];
      for (int k = 0; ok && k < m->n_inputs; k++)
        if (m->inputs[k] == t && (!tail_conv(m) || a->deferred[j] || m->n_inputs != 1))
          ok = 0;
    }
    for (int j = i + 1; ok && j < nn; j++)
      if (g->nodes[j].n_inputs == 1 && g->nodes[j].inputs[0] == t)
        a->absorbed[j] = 1;
    a->heads_conv[i] = ok;
  }
  /* Pairs of head convs on one input: the later one runs in the earlier one's step (found by
   * the structure, not by names; only with NPT_CUDNN_MERGE_HEADS=1).  Not when the merged
   * trunk would have more elements than cuDNN's descriptors and our kernels index (2^31 - 1),
   * where each trunk alone might not.  With NPT_CUDNN_TAIL=1 or 2, a pair that forms a tail with
   * the conv before it (tail_source) is merged too, and that conv runs the tail step. */
  int merge = merge_heads_enabled(), tail = tail_enabled();
  for (int i = 0; (merge || tail) && i < nn; i++) {
    if (!a->heads_conv[i] || a->merged_away[i])
      continue;
    const npt_node *ni = &g->nodes[i];
    int st = g->tensors[ni->output].stride;
    size_t cells = (size_t)batch * (size_t)(h / st) * (size_t)(w / st);
    for (int j = i + 1; j < nn; j++)
      if (a->heads_conv[j] && !a->merged_away[j] && a->merge_b[j] < 0 &&
          mergeable(a, ni, &g->nodes[j]) &&
          cells * (size_t)(ni->c_out + g->nodes[j].c_out) <= 0x7fffffffu) {
        const char *why = NULL;
        int f = tail ? tail_source(g, a, ni, &g->nodes[j], smem_optin, &why) : -1;
        if (why && npt__gpu_verbose())
          fprintf(stderr, "nptrack: cudnn backend: no tail kernel for %s and %s: %s\n", ni->name,
                  g->nodes[j].name, why);
        if (!merge && f < 0)
          continue;
        a->merge_b[i] = j, a->merged_away[j] = 1, a->n_merged++;
        if (f >= 0)
          a->tail_f[f] = i, a->in_tail[i] = 1, a->n_tails++;
        break;
      }
  }
  free(consumer);
  return 0;
}

/* The node of the convolution that runs head convs a and b at once (c_out a's then b's),
 * writing tensor `out`: weights [c_out][c_in][kh][kw] and biases concatenated. */
static int merged_node(const npt_node *a, const npt_node *b, int out, npt_node *m) {
  memset(m, 0, sizeof *m);
  m->op = NPT_OP_CONV2D;
  snprintf(m->name, sizeof m->name, "%.30s+%.30s", a->name, b->name);
  m->n_inputs = 1, m->inputs[0] = a->inputs[0], m->output = out, m->act = a->act;
  m->c_in = a->c_in, m->c_out = a->c_out + b->c_out, m->kh = a->kh, m->kw = a->kw;
  m->stride = a->stride, m->pad = a->pad, m->dilation = a->dilation, m->groups = 1;
  size_t per = (size_t)a->c_in * a->kh * a->kw; /* weights per output channel */
  m->weight = malloc(sizeof(float) * per * m->c_out);
  m->bias = malloc(sizeof(float) * m->c_out);
  NPT_ALLOC_CHECK(m->weight);
  NPT_ALLOC_CHECK(m->bias);
  memcpy(m->weight, a->weight, sizeof(float) * per * a->c_out);
  memcpy(m->weight + per * a->c_out, b->weight, sizeof(float) * per * b->c_out);
  memcpy(m->bias, a->bias, sizeof(float) * a->c_out);
  memcpy(m->bias + a->c_out, b->bias, sizeof(float) * b->c_out);
  return 0;
}

/* Adds tensor t (or, for a fused upsample, its input with the scale) as an addend of s. */
static void push_addend(const npt_graph *g, const analysis *a, npt__gpu_step *s, int t) {
  int k = s->n_add++;
  if (a->virt_up[t]) {
    const npt_node *u = &g->nodes[a->prod[t]];
    s->add_t[k] = u->inputs[0], s->add_scale[k] = u->scale, s->add_bilinear[k] = u->bilinear;
  } else {
    s->add_t[k] = t, s->add_scale[k] = 1, s->add_bilinear[k] = 0;
  }
}

/* The index in p->mnodes of merged head node i's merged node (made in node order). */
static int mnode_index(const analysis *a, int i) {
  int k = 0;
  for (int j = 0; j < i; j++)
    k += a->merge_b[j] >= 0;
  return k;
}

/* The 1x1 heads of merged head node i (and of its partner) into step s, with the first trunk
 * channel each reads; their outputs are stored. */
static void collect_heads(npt__gpu_plan *p, const analysis *a, npt__gpu_step *s, int i) {
  const npt_graph *g = p->g;
  const npt_node *n = &g->nodes[i], *b = &g->nodes[a->merge_b[i]];
  for (int j = i + 1; j < g->n_nodes; j++) {
    int c0 = g->nodes[j].inputs[0] == n->output   ? 0
             : g->nodes[j].inputs[0] == b->output ? n->c_out
                                                  : -1;
    if (a->absorbed[j] && c0 >= 0) {
      s->tail_c0[s->n_tail] = c0;
      s->tail[s->n_tail++] = &g->nodes[j];
      p->t[g->nodes[j].output].stored = 1;
    }
  }
}

static int build_steps(npt__gpu_plan *p, const analysis *a) {
  const npt_graph *g = p->g;
  p->steps = calloc((size_t)g->n_nodes + 1, sizeof *p->steps);
  NPT_ALLOC_CHECK(p->steps);
  for (int i = 0; i < g->n_nodes; i++) {
    const npt_node *n = &g->nodes[i];
    npt__gpu_step *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    s->node = n, s->out = n->output, s->act = (int)n->act;
    switch (n->op) {
    case NPT_OP_CONV2D:
      if (a->tail_f[i] >= 0) { /* this conv, the merged head convs after it, their heads */
        const npt_node *m = &p->mnodes[mnode_index(a, a->tail_f[i])];
        s->kind = NPT__STEP_TAIL, s->trunk = m, s->out = m->output;
        s->tail_version = tail_enabled();
        collect_heads(p, a, s, a->tail_f[i]);
        p->tail_steps++;
        p->n_steps++;
        continue;
      }
      if (a->deferred[i] || a->absorbed[i] || a->merged_away[i] || a->in_tail[i])
        continue;
      if (a->merge_b[i] >= 0) { /* two head convs in one cuDNN convolution, one epilogue */
        const npt_node *m = &p->mnodes[mnode_index(a, i)];
        s->node = m, s->out = m->output, s->kind = NPT__STEP_CUDNN, s->merged = 1;
        collect_heads(p, a, s, i);
        p->merged_steps++;
        p->n_steps++;
        continue;
      }
      s->kind = direct_conv(n) ? NPT__STEP_DIRECT : NPT__STEP_CUDNN;
      for (int j = i + 1; s->kind == NPT__STEP_CUDNN && j < g->n_nodes; j++)
        if (a->absorbed[j] && g->nodes[j].inputs[0] == n->output) {
          s->tail[s->n_tail++] = &g->nodes[j];
          p->t[g->nodes[j].output].stored = 1;
        }
      if (s->n_tail > 0) {
        p->n_steps++;
        continue; /* the conv's own output is not stored */
      }
      break;
    case NPT_OP_ADD:
      if (a->fused[i] >= 0) {
        const npt_node *c = &g->nodes[a->fused[i]];
        s->kind = direct_conv(c) ? NPT__STEP_DIRECT : NPT__STEP_CUDNN, s->node = c;
        for (int k = 0; k < n->n_inputs; k++)
          if (n->inputs[k] != c->output)
            push_addend(g, a, s, n->inputs[k]);
      } else {
        s->kind = NPT__STEP_ELTWISE;
        for (int k = 0; k < n->n_inputs; k++)
          push_addend(g, a, s, n->inputs[k]);
      }
      break;
    case NPT_OP_UPSAMPLE:
      if (a->virt_up[n->output] || (n->output == g->heads.embed && p->head_scale[3] > 1))
        continue;
      s->kind = NPT__STEP_ELTWISE;
      s->n_add = 1, s->add_t[0] = n->inputs[0], s->add_scale[0] = n->scale;
      s->add_bilinear[0] = n->bilinear;
      break;
    case NPT_OP_CONCAT:
      s->kind = NPT__STEP_ELTWISE;
      for (int k = 0; k < n->n_inputs; k++)
        s->add_t[k] = n->inputs[k], s->add_scale[k] = 1;
      s->n_add = n->n_inputs;
      break;
    case NPT_OP_MAXPOOL:
    case NPT_OP_AVGPOOL:
      s->kind = NPT__STEP_POOL;
      break;
    default:
      return npt_error_set(NPT_EUNSUPPORTED, "cudnn backend: node %s: op not supported", n->name);
    }
    p->t[s->out].stored = 1;
    p->n_steps++;
  }
  return 0;
}

/* cuDNN descriptors and the algorithm of a convolution step. */
static int conv_prepare(npt__gpu_ctx *ctx, npt__gpu_plan *p, npt__gpu_step *s) {
  const npt_node *n = s->node;
  const npt__gpu_tensor *x = &p->t[n->inputs[0]], *y = &p->t[n->output];
  NPT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->xd));
  NPT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->yd));
  NPT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&s->wd));
  NPT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&s->cd));
  NPT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, p->batch,
                                             x->c, x->h, x->w));
  NPT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(s->wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, n->c_out,
                                             n->c_in / n->groups, n->kh, n->kw));
  NPT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(s->cd, n->pad, n->pad, n->stride, n->stride,
                                                  n->dilation, n->dilation, CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
  NPT_CUDNN_CHECK(cudnnSetConvolutionGroupCount(s->cd, n->groups));
  NPT_CUDNN_CHECK(cudnnSetConvolutionMathType(s->cd, CUDNN_TENSOR_OP_MATH));
  int on, oc, oh, ow;
  NPT_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(s->cd, s->xd, s->wd, &on, &oc, &oh, &ow));
  if (on != p->batch || oc != y->c || oh != y->h || ow != y->w)
    return npt_error_set(NPT_EINTERNAL,
                         "cudnn backend: node %s: cuDNN's output %dx%dx%d differs from the "
                         "graph's %dx%dx%d",
                         n->name, oc, oh, ow, y->c, y->h, y->w);
  NPT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, p->batch,
                                             y->c, y->h, y->w));
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int got = 0;
  NPT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
      ctx->cudnn, s->xd, s->wd, s->cd, s->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
  int pick = -1;
  for (int pass = 0; pass < 2 && pick < 0; pass++) /* tensor-core algorithms first */
    for (int k = 0; k < got && pick < 0; k++)
      if (perf[k].status == CUDNN_STATUS_SUCCESS && perf[k].determinism == CUDNN_DETERMINISTIC &&
          perf[k].memory <= NPT__WS_LIMIT &&
          (pass == 1 || perf[k].mathType == CUDNN_TENSOR_OP_MATH))
        pick = k;
  if (pick < 0)
    return npt_error_set(NPT_EUNSUPPORTED,
                         "cudnn backend: node %s: cuDNN has no deterministic algorithm for this "
                         "convolution (%d candidates)",
                         n->name, got);
  s->algo = perf[pick].algo;
  NPT_CUDNN_CHECK(cudnnSetConvolutionMathType(s->cd, perf[pick].mathType));
  NPT_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, s->xd, s->wd, s->cd, s->yd,
                                                          s->algo, &s->ws));
  if (s->ws > p->ws_bytes)
    p->ws_bytes = s->ws;
  return 0;
}

/* Milliseconds on a monotonic clock. */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int npt__gpu_verbose(void) {
  const char *venv = getenv("NPT_CUDNN_FUSE_VERBOSE");
  return venv && strcmp(venv, "1") == 0;
}

/* Fuses what cuDNN can fuse (cudnn_fused.c), unless NPT_CUDNN_FUSE=0; then sizes the scratch
 * buffer for the pre-epilogue outputs of the convolutions left unfused.  NPT_CUDNN_FUSE_VERBOSE=1
 * says on stderr why a step that could be fused is not, and what each fused plan took. */
static int fuse_convs(npt__gpu_ctx *ctx, npt__gpu_plan *p) {
  const char *env = getenv("NPT_CUDNN_FUSE");
  int fuse = !(env && strcmp(env, "0") == 0);
  int verbose = npt__gpu_verbose();
  for (int i = 0; i < p->n_steps; i++) {
    npt__gpu_step *s = &p->steps[i];
    if (fuse && npt__gpu_fused_eligible(p, s)) {
      double t0 = now_ms();
      int rc = npt__gpu_fused_prepare(ctx, p, s);
      s->fplan_ms = now_ms() - t0;
      p->fused_plan_ms += s->fplan_ms;
      if (rc == NPT_EUNSUPPORTED) {
        if (verbose)
          fprintf(stderr, "nptrack: cudnn backend: node %s runs unfused (%.0f ms spent): %s\n",
                  s->node->name, s->fplan_ms, npt_error_msg(rc));
        npt_error_clear(); /* the separate epilogue runs it */
      } else if (rc < 0) {
        return rc;
      }
      p->fused_convs += s->fplan != NULL;
      if (verbose && s->fplan)
        fprintf(stderr,
                "nptrack: cudnn backend: node %s fused by cuDNN engine %lld%s%s, %zu bytes "
                "of workspace, planned in %.0f ms\n",
                s->node->name, s->fengine, s->frtc ? " (runtime-compiled)" : "",
                s->fdynamic ? " (dynamic shapes, kernel cache)" : "", s->fws, s->fplan_ms);
    }
    if (s->kind == NPT__STEP_CUDNN && !s->fplan) {
      const npt__gpu_tensor *y = &p->t[s->node->output];
      size_t raw = (size_t)p->batch * y->h * y->w * y->c * 2;
      if (raw > p->scratch_bytes)
        p->scratch_bytes = raw;
    }
  }
  return 0;
}

/* The 1x1 heads' weights of step s, [c_out][trunk channels]: the graph's [c_out][c_in], placed
 * at the head's channels of a merged trunk with zeros elsewhere, and their biases. */
static int upload_heads(npt__gpu_plan *p, npt__gpu_step *s, int trunk) {
  for (int h = 0; h < s->n_tail; h++) {
    const npt_node *t = s->tail[h];
    if (s->tail_c0[h] < 0 || s->tail_c0[h] + t->c_in > trunk)
      return npt_error_set(NPT_EINTERNAL, "cudnn backend: head %s does not fit the trunk of %s",
                           t->name, s->node->name);
    size_t wn = (size_t)t->c_out * trunk;
    float *wh = calloc(wn, sizeof(float));
    NPT_ALLOC_CHECK(wh);
    for (int co = 0; co < t->c_out; co++)
      memcpy(wh + (size_t)co * trunk + s->tail_c0[h], t->weight + (size_t)co * t->c_in,
             sizeof(float) * t->c_in);
    cudaError_t te = cudaMalloc((void **)&s->d_tail_w[h], wn * sizeof(float));
    if (te == cudaSuccess)
      te = cudaMemcpy(s->d_tail_w[h], wh, wn * sizeof(float), cudaMemcpyHostToDevice);
    free(wh);
    NPT_CUDA_CHECK(te);
    NPT_CUDA_CHECK(cudaMalloc((void **)&s->d_tail_b[h], (size_t)t->c_out * sizeof(float)));
    NPT_CUDA_CHECK(cudaMemcpy(s->d_tail_b[h], t->bias, (size_t)t->c_out * sizeof(float),
                              cudaMemcpyHostToDevice));
    p->device_bytes += (wn + t->c_out) * sizeof(float);
  }
  return 0;
}

/* A tail step's parameters, packed for its kernel's version (npt_tail_pack, npt_tail2_pack),
 * and its heads. */
static int upload_tail(npt__gpu_plan *p, npt__gpu_step *s) {
  size_t bytes = s->tail_version == 2 ? NPT_TAIL2_WORDS * 4 : NPT_TAIL_PARAMS * sizeof(float);
  void *host = malloc(bytes);
  NPT_ALLOC_CHECK(host);
  if (s->tail_version == 2)
    npt_tail2_pack(s->node->weight, s->node->bias, s->trunk->weight, s->trunk->bias, host);
  else
    npt_tail_pack(s->node->weight, s->node->bias, s->trunk->weight, s->trunk->bias, host);
  cudaError_t e = cudaMalloc(&s->d_w, bytes);
  if (e == cudaSuccess)
    e = cudaMemcpy(s->d_w, host, bytes, cudaMemcpyHostToDevice);
  free(host);
  NPT_CUDA_CHECK(e);
  p->device_bytes += bytes;
  return upload_heads(p, s, s->trunk->c_out);
}

/* Weights in the layout of the step's kernel, and the bias, on the device. */
static int upload_weights(npt__gpu_plan *p, npt__gpu_step *s) {
  if (s->kind == NPT__STEP_TAIL)
    return upload_tail(p, s);
  const npt_node *n = s->node;
  int cg = n->c_in / n->groups, taps = n->kh * n->kw;
  size_t count = (size_t)n->c_out * cg * taps;
  int half = s->kind == NPT__STEP_CUDNN;
  void *host = malloc(count * (half ? 2 : 4));
  NPT_ALLOC_CHECK(host);
  for (int co = 0; co < n->c_out; co++)
    for (int ci = 0; ci < cg; ci++)
      for (int k = 0; k < taps; k++) {
        float v = n->weight[((size_t)co * cg + ci) * taps + k];
        size_t dst = half ? ((size_t)co * taps + k) * cg + ci /* [c_out][kh][kw][c_in/groups] */
                          : ((size_t)k * cg + ci) * n->c_out + co; /* [kh][kw][c_in][c_out] */
        if (half)
          ((uint16_t *)host)[dst] = npt_tail_f2h(v); /* round to nearest even */
        else
          ((float *)host)[dst] = v;
      }
  cudaError_t e = cudaMalloc(&s->d_w, count * (half ? 2 : 4));
  if (e == cudaSuccess)
    e = cudaMemcpy(s->d_w, host, count * (half ? 2 : 4), cudaMemcpyHostToDevice);
  free(host);
  NPT_CUDA_CHECK(e);
  NPT_CUDA_CHECK(cudaMalloc((void **)&s->d_bias, (size_t)n->c_out * sizeof(float)));
  NPT_CUDA_CHECK(
      cudaMemcpy(s->d_bias, n->bias, (size_t)n->c_out * sizeof(float), cudaMemcpyHostToDevice));
  p->device_bytes += count * (half ? 2 : 4) + (size_t)n->c_out * sizeof(float);
  return upload_heads(p, s, n->c_out);
}

static int run_step(npt__gpu_ctx *ctx, npt__gpu_plan *p, const npt__gpu_step *s, int slot) {
  cudaStream_t st = ctx->compute;
  npt_dview out = npt__gpu_view(p, s->out, slot);
  npt_addend adds[NPT_MAX_INPUTS];
  for (int k = 0; k < s->n_add; k++)
    adds[k] =
        (npt_addend){npt__gpu_view(p, s->add_t[k], slot), s->add_scale[k], s->add_bilinear[k]};
  const npt_node *n = s->node;
  switch (s->kind) {
  case NPT__STEP_CUDNN: {
    if (s->fplan)
      return npt__gpu_fused_run(ctx, p, s, slot);
    npt_dview x = npt__gpu_view(p, n->inputs[0], slot);
    const float one = 1.0f, zero = 0.0f;
    NPT_CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, s->xd, x.p, s->wd, s->d_w, s->cd,
                                            s->algo, p->workspace, s->ws, &zero, s->yd,
                                            p->scratch));
    npt_dview raw = out;
    raw.p = p->scratch, raw.dt = NPT_DT_F16;
    if (s->n_tail > 0) {
      npt_k_head heads[NPT_K_MAX_HEADS];
      raw.c = raw.cs = n->c_out;
      for (int h = 0; h < s->n_tail; h++)
        heads[h] = (npt_k_head){s->d_tail_w[h], s->d_tail_b[h], (int)s->tail[h]->act,
                                npt__gpu_view(p, s->tail[h]->output, slot)};
      return npt_k_epilogue_heads(&raw, s->d_bias, s->act, s->n_tail, heads, st);
    }
    return npt_k_epilogue(&raw, s->d_bias, s->n_add, adds, s->act, &out, st);
  }
  case NPT__STEP_DIRECT: {
    npt_dview x = npt__gpu_view(p, n->inputs[0], slot);
    return npt_k_conv_direct(&x, s->d_w, s->d_bias, n->kh, n->kw, n->stride, n->pad, n->dilation,
                             s->n_add, adds, s->act, &out, st);
  }
  case NPT__STEP_ELTWISE:
    if (n->op == NPT_OP_CONCAT) {
      int c0 = 0;
      for (int k = 0; k < s->n_add; k++) {
        npt_dview slice = out;
        slice.c = adds[k].t.c, slice.c0 = c0;
        c0 += slice.c;
        NPT_TRY(npt_k_epilogue(NULL, NULL, 1, &adds[k], NPT_K_ACT_NONE, &slice, st));
      }
      return 0;
    }
    return npt_k_epilogue(NULL, NULL, s->n_add, adds, s->act, &out, st);
  case NPT__STEP_TAIL: {
    npt_dview x = npt__gpu_view(p, n->inputs[0], slot);
    npt_k_head heads[NPT_K_MAX_HEADS];
    for (int h = 0; h < s->n_tail; h++)
      heads[h] = (npt_k_head){s->d_tail_w[h], s->d_tail_b[h], (int)s->tail[h]->act,
                              npt__gpu_view(p, s->tail[h]->output, slot)};
    return npt_k_tail(s->tail_version, &x, s->d_w, (int)n->act, (int)s->trunk->act, s->n_tail,
                      heads, s->tail_blocks, st);
  }
  case NPT__STEP_POOL: {
    npt_dview x = npt__gpu_view(p, n->inputs[0], slot);
    return npt_k_pool(&x, n->pool_k, n->pool_stride, n->pool_pad, n->op == NPT_OP_MAXPOOL, &out,
                      st);
  }
  }
  return npt_error_set(NPT_EINTERNAL, "cudnn backend: unknown step kind");
}

int npt__gpu_run_step(npt__gpu_ctx *ctx, npt__gpu_plan *p, int i, int slot) {
  return run_step(ctx, p, &p->steps[i], slot);
}

static int run_steps(npt__gpu_ctx *ctx, npt__gpu_plan *p, int slot) {
  for (int i = 0; i < p->n_steps; i++) {
    int rc = run_step(ctx, p, &p->steps[i], slot);
    if (rc < 0) {
      char why[512];
      snprintf(why, sizeof why, "%s", npt_error_msg(rc));
      return npt_error_set(rc, "node %s: %s", p->steps[i].node->name, why);
    }
  }
  return 0;
}

int npt__gpu_forward(npt__gpu_ctx *ctx, npt__gpu_plan *p, int slot) {
  if (p->use_graphs) {
    NPT_CUDA_CHECK(cudaGraphLaunch(p->graph[slot], ctx->compute));
    return 0;
  }
  return run_steps(ctx, p, slot);
}

/* Captures each slot's steps into a CUDA graph.  A capture that fails (a library call that
 * cannot be captured) leaves the plan running step by step, which is correct, only slower. */
static void capture_graphs(npt__gpu_ctx *ctx, npt__gpu_plan *p) {
  const char *env = getenv("NPT_CUDNN_GRAPHS");
  if (env && strcmp(env, "0") == 0)
    return;
  for (int slot = 0; slot < NPT__SLOTS; slot++) {
    cudaGraph_t graph = NULL;
    if (cudaStreamBeginCapture(ctx->compute, cudaStreamCaptureModeThreadLocal) != cudaSuccess)
      break;
    int rc = run_steps(ctx, p, slot);
    cudaError_t e = cudaStreamEndCapture(ctx->compute, &graph);
    if (rc == 0 && e == cudaSuccess && graph)
      e = cudaGraphInstantiate(&p->graph[slot], graph, 0);
    if (graph)
      cudaGraphDestroy(graph);
    if (rc < 0 || e != cudaSuccess) {
      cudaGetLastError();
      npt_error_clear();
      for (int k = 0; k < slot; k++)
        cudaGraphExecDestroy(p->graph[k]);
      memset(p->graph, 0, sizeof p->graph);
      fprintf(stderr,
              "nptrack: cudnn backend: the network could not be captured in a CUDA graph "
              "(%s); it runs step by step\n",
              rc < 0 ? "a library call refused" : cudaGetErrorString(e));
      return;
    }
  }
  p->use_graphs = 1;
}

static int dev_alloc(npt__gpu_plan *p, void **d, size_t bytes) {
  NPT_CUDA_CHECK(cudaMalloc(d, bytes ? bytes : 16));
  p->device_bytes += bytes;
  return 0;
}

int npt__gpu_poison(npt__gpu_ctx *ctx, npt__gpu_plan *p) {
  for (int t = 0; t < p->n_tensors; t++)
    for (int s = 0; s < NPT__SLOTS; s++)
      if (p->t[t].d[s] && (s == 0 || p->t[t].per_slot))
        NPT_CUDA_CHECK(cudaMemsetAsync(p->t[t].d[s], 0xff, p->t[t].bytes, ctx->compute));
  return 0;
}

/* Device memory the plan will take, to refuse it with numbers before allocating. */
static size_t plan_bytes(const npt__gpu_plan *p, size_t detect_bytes) {
  size_t sum = p->scratch_bytes + p->ws_bytes + detect_bytes;
  for (int t = 0; t < p->n_tensors; t++)
    if (p->t[t].stored)
      sum += p->t[t].bytes * (p->t[t].per_slot ? NPT__SLOTS : 1);
  for (int k = 0; k < 4; k++)
    sum += p->head_floats[k] * sizeof(float);
  return sum + (size_t)p->batch * p->h * p->w * sizeof(float);
}

size_t npt__gpu_detect_bytes(const npt__gpu_plan *p);

int npt__gpu_plan_layout(npt__gpu_plan *p) {
  const npt_graph *g = p->g;
  analysis a = {0};
  int rc = analyse(g, p->batch, p->h, p->w, p->smem_optin, &a);
  if (rc < 0) {
    analysis_free(&a);
    return rc;
  }
  p->n_tensors = g->n_tensors + a.n_merged;
  p->t = calloc((size_t)p->n_tensors, sizeof *p->t);
  p->mnodes = calloc((size_t)(a.n_merged > 0 ? a.n_merged : 1), sizeof *p->mnodes);
  if (!p->t || !p->mnodes) {
    analysis_free(&a);
    return npt_error_set(NPT_ENOMEM, "cudnn backend: out of memory");
  }
  for (int t = 0; t < g->n_tensors; t++) {
    npt__gpu_tensor *x = &p->t[t];
    x->c = g->tensors[t].channels;
    x->h = p->h / g->tensors[t].stride, x->w = p->w / g->tensors[t].stride;
    x->dt = NPT_DT_F16;
  }
  for (int i = 0; i < g->n_nodes; i++) { /* merged head convs and the trunks they write */
    if (a.merge_b[i] < 0)
      continue;
    const npt_node *na = &g->nodes[i], *nb = &g->nodes[a.merge_b[i]];
    int out = g->n_tensors + p->n_mnodes;
    rc = merged_node(na, nb, out, &p->mnodes[p->n_mnodes++]); /* destroy frees what it made */
    if (rc < 0) {
      analysis_free(&a);
      return rc;
    }
    npt__gpu_tensor *x = &p->t[out];
    *x = p->t[na->output];
    x->c = na->c_out + nb->c_out;
    if (npt__gpu_verbose() && !a.in_tail[i])
      fprintf(stderr,
              "nptrack: cudnn backend: merged head convolutions %s (%d channels, %d heads) and "
              "%s (%d channels, %d heads) on %s into one %d->%d convolution (%s) with one heads "
              "epilogue\n",
              na->name, na->c_out, a.cons[na->output], nb->name, nb->c_out, a.cons[nb->output],
              g->tensors[na->inputs[0]].name, na->c_in, x->c, p->mnodes[p->n_mnodes - 1].name);
  }
  if (a.n_merged == 0 && npt__gpu_verbose())
    fprintf(stderr, "nptrack: cudnn backend: no head convolutions merged (%s)\n",
            merge_heads_enabled() ? "no pair of head convolutions that can be merged"
                                  : "NPT_CUDNN_MERGE_HEADS is not 1");
  const npt_heads *hd = &g->heads;
  const int heads[4] = {hd->heatmap, hd->size, hd->offset, hd->embed};
  for (int k = 0; k < 4; k++) {
    p->head_t[k] = heads[k], p->head_scale[k] = 1;
    if (heads[k] < 0)
      continue;
    if (k < 3 && a.cons[heads[k]] == 0)
      p->t[heads[k]].dt = NPT_DT_F32;
  }
  if (hd->embed >= 0 && a.prod[hd->embed] >= 0) {
    const npt_node *u = &g->nodes[a.prod[hd->embed]];
    if (u->op == NPT_OP_UPSAMPLE && !u->bilinear && a.cons[hd->embed] == 0 &&
        hd->embed != hd->heatmap && hd->embed != hd->size && hd->embed != hd->offset &&
        u->inputs[0] != g->input)
      p->head_t[3] = u->inputs[0], p->head_scale[3] = u->scale;
  }
  p->t[g->input].stored = 1;
  rc = build_steps(p, &a);
  if (rc == 0 && npt__gpu_verbose() && tail_enabled() && a.n_tails == 0)
    fprintf(stderr, "nptrack: cudnn backend: NPT_CUDNN_TAIL is set but no tail kernel: %s\n",
            a.n_merged ? "no merged pair of head convolutions forms a tail (reasons above)"
                       : "no pair of head convolutions that can be merged (reasons above, if any)");
  for (int i = 0; rc == 0 && npt__gpu_verbose() && i < p->n_steps; i++) {
    const npt__gpu_step *s = &p->steps[i];
    if (s->kind != NPT__STEP_TAIL)
      continue;
    char names[256] = "";
    for (int h = 0; h < s->n_tail; h++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", h ? ", " : "",
               s->tail[h]->name);
    fprintf(stderr,
            "nptrack: cudnn backend: tail kernel version %d (NPT_CUDNN_TAIL=%d: %s) replaces "
            "the steps of %s and %s (heads %s): %d -> %d -> %d channels on %s, %dx%d per "
            "frame; tiles of %dx%d outputs (input %dx%d, %s %dx%d in shared memory as fp16), "
            "%u bytes of shared memory per block, %s weights, fp32 accumulation\n",
            s->tail_version, s->tail_version,
            s->tail_version == 2 ? "tensor cores, mma.sync" : "CUDA cores", s->node->name,
            s->trunk->name, names, NPT_TAIL_CI, NPT_TAIL_CF, NPT_TAIL_CT,
            g->tensors[s->node->inputs[0]].name, p->t[s->out].w, p->t[s->out].h, NPT_TAIL_TW,
            NPT_TAIL_TH, NPT_TAIL_XW, NPT_TAIL_XH, s->node->name, NPT_TAIL_FW, NPT_TAIL_FH,
            tail_smem(s->tail_version), s->tail_version == 2 ? "fp16" : "fp32");
  }
  analysis_free(&a);
  NPT_TRY(rc);
  for (int k = 0; k < 4; k++)
    if (p->head_t[k] >= 0)
      p->t[p->head_t[k]].per_slot = 1;
  for (int t = 0; t < p->n_tensors; t++) {
    npt__gpu_tensor *x = &p->t[t];
    size_t elems = (size_t)p->batch * x->h * x->w * x->c;
    x->bytes = elems * dt_size(x->dt);
    if (elems > 0x7fffffffu) /* cuDNN's 4-d descriptors and our kernels' cells index in int */
      return npt_error_set(NPT_EUNSUPPORTED,
                           "cudnn backend: tensor %s of a batch of %d frames of %dx%d has %zu "
                           "elements, over the 2^31 that cuDNN's descriptors index (lower "
                           "detect.batch)",
                           t < g->n_tensors ? g->tensors[t].name : "(merged heads trunk)", p->batch,
                           p->w, p->h, elems);
  }
  for (int k = 0; k < 4; k++)
    if (p->head_t[k] >= 0) {
      const npt__gpu_tensor *x = &p->t[p->head_t[k]];
      p->head_floats[k] =
          (size_t)p->batch * x->c * x->h * x->w * p->head_scale[k] * p->head_scale[k];
    }
  return 0;
}

static int make(npt__gpu_ctx *ctx, npt__gpu_plan *p) {
  NPT_TRY(npt__gpu_plan_layout(p));
  for (int i = 0; i < p->n_steps; i++)
    if (p->steps[i].kind == NPT__STEP_CUDNN)
      NPT_TRY(conv_prepare(ctx, p, &p->steps[i]));
  for (int i = 0; i < p->n_steps; i++) {
    npt__gpu_step *s = &p->steps[i];
    if (s->kind != NPT__STEP_TAIL)
      continue;
    npt_k_tail_info ti;
    NPT_TRY(npt_k_tail_prepare(ctx->device, s->tail_version, &ti)); /* outside the capture */
    s->tail_blocks = ti.max_blocks;
    /* Test hook: a smaller persistent grid, so that a small test frame still has each block
     * run several tiles (tests/gpu/test_gpu_backend.c).  The results must not change. */
    const char *cap = getenv("NPT_CUDNN_TAIL_BLOCKS");
    if (cap && atoi(cap) > 0 && atoi(cap) < s->tail_blocks)
      s->tail_blocks = atoi(cap);
    if (npt__gpu_verbose()) {
      int ty, tx;
      npt_tail_tiles(p->t[s->out].h, p->t[s->out].w, &ty, &tx);
      fprintf(stderr,
              "nptrack: cudnn backend: tail kernel version %d on %s: %d bytes of shared "
              "memory, %d threads and %d blocks per SM, a persistent grid of %d blocks over %ld "
              "tiles (%d frames of %dx%d tiles)\n",
              s->tail_version, ctx->prop.name, ti.smem_bytes, ti.threads, ti.blocks_per_sm,
              ti.max_blocks, (long)p->batch * ty * tx, p->batch, tx, ty);
    }
  }
  NPT_TRY(fuse_convs(ctx, p));

  size_t need = plan_bytes(p, npt__gpu_detect_bytes(p)), free_b = 0, total_b = 0;
  NPT_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  if (need > free_b)
    return npt_error_set(NPT_ENOMEM,
                         "cudnn backend: batches of %d frames of %dx%d need %.0f MiB of GPU "
                         "memory; GPU %d (%s) has %.0f MiB free of %.0f MiB (lower "
                         "detect.batch or use a smaller frame)",
                         p->batch, p->w, p->h, need / 1048576.0, ctx->device, ctx->prop.name,
                         free_b / 1048576.0, total_b / 1048576.0);

  for (int t = 0; t < p->n_tensors; t++) {
    npt__gpu_tensor *x = &p->t[t];
    if (!x->stored)
      continue;
    for (int s = 0; s < (x->per_slot ? NPT__SLOTS : 1); s++)
      NPT_TRY(dev_alloc(p, &x->d[s], x->bytes));
  }
  NPT_TRY(dev_alloc(p, &p->scratch, p->scratch_bytes));
  NPT_TRY(dev_alloc(p, &p->workspace, p->ws_bytes));
  for (int i = 0; i < p->n_steps; i++)
    if (p->steps[i].kind == NPT__STEP_CUDNN || p->steps[i].kind == NPT__STEP_DIRECT)
      NPT_TRY(upload_weights(p, &p->steps[i]));
  NPT_TRY(dev_alloc(p, (void **)&p->d_in_f32, (size_t)p->batch * p->h * p->w * sizeof(float)));
  for (int k = 0; k < 4; k++)
    if (p->head_t[k] >= 0) {
      NPT_TRY(dev_alloc(p, (void **)&p->d_heads_f32[k], p->head_floats[k] * sizeof(float)));
      p->h_heads[k] = malloc(p->head_floats[k] * sizeof(float));
      NPT_ALLOC_CHECK(p->h_heads[k]);
    }
  NPT_TRY(npt__gpu_detect_alloc(ctx, p));
  NPT_CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->compute));
  capture_graphs(ctx, p);
  NPT_CUDA_CHECK(cudaStreamSynchronize(ctx->compute));
  return 0;
}

int npt__gpu_plan_make(npt__gpu_ctx *ctx, const npt_graph *g, int batch, int h, int w,
                       npt__gpu_plan **out) {
  *out = NULL;
  npt__gpu_plan *p = calloc(1, sizeof *p);
  NPT_ALLOC_CHECK(p);
  p->g = g, p->batch = batch, p->h = h, p->w = w;
  p->smem_optin = ctx->prop.sharedMemPerBlockOptin;
  double t0 = now_ms();
  int rc = make(ctx, p);
  if (rc < 0) {
    npt__gpu_plan_destroy(p);
    cudaGetLastError();
    return rc;
  }
  p->plan_ms = now_ms() - t0;
  if (npt__gpu_verbose()) {
    int rtc = 0, dyn = 0;
    for (int i = 0; i < p->n_steps; i++)
      rtc += p->steps[i].fplan && p->steps[i].frtc,
          dyn += p->steps[i].fplan && p->steps[i].fdynamic;
    fprintf(stderr,
            "nptrack: cudnn backend: plan for %d frames of %dx%d made in %.2f s (of it %.2f s "
            "building %d cuDNN-fused plans, %d runtime-compiled, %d with dynamic shapes and a "
            "kernel cache; %d kernel caches in this context): %d steps, %d merged head steps, "
            "%d tail steps\n",
            batch, w, h, p->plan_ms / 1e3, p->fused_plan_ms / 1e3, p->fused_convs, rtc, dyn,
            ctx->n_kcaches, p->n_steps, p->merged_steps, p->tail_steps);
  }
  int s = g->heads.output_stride;
  p->out = (npt_head_outputs){p->h_heads[0], p->h_heads[1], p->h_heads[2], p->h_heads[3],
                              batch,         h / s,         w / s};
  *out = p;
  return 0;
}

void npt__gpu_plan_destroy(npt__gpu_plan *p) {
  if (!p)
    return;
  for (int s = 0; s < NPT__SLOTS; s++) {
    if (p->graph[s])
      cudaGraphExecDestroy(p->graph[s]);
    cudaFree(p->d_raw[s]);
    cudaFreeHost(p->h_raw[s]);
    cudaFree(p->d_peaks[s]);
    cudaFree(p->d_packed[s]);
    cudaFree(p->d_packed_emb[s]);
    cudaFree(p->d_small[s]);
    cudaFreeHost(p->h_small[s]);
    cudaFreeHost(p->h_packed[s]);
    cudaFreeHost(p->h_packed_emb[s]);
    if (p->ev_raw[s])
      cudaEventDestroy(p->ev_raw[s]);
    if (p->ev_small[s])
      cudaEventDestroy(p->ev_small[s]);
    if (p->ev_done[s])
      cudaEventDestroy(p->ev_done[s]);
  }
  for (int t = 0; p->t && t < p->n_tensors; t++)
    for (int s = 0; s < NPT__SLOTS; s++)
      cudaFree(p->t[t].d[s]);
  for (int i = 0; p->steps && i < p->n_steps; i++) {
    npt__gpu_step *s = &p->steps[i];
    if (s->xd)
      cudnnDestroyTensorDescriptor(s->xd);
    if (s->yd)
      cudnnDestroyTensorDescriptor(s->yd);
    if (s->wd)
      cudnnDestroyFilterDescriptor(s->wd);
    if (s->cd)
      cudnnDestroyConvolutionDescriptor(s->cd);
    npt__gpu_fused_release(s);
    cudaFree(s->d_w);
    cudaFree(s->d_bias);
    for (int h = 0; h < s->n_tail; h++)
      cudaFree(s->d_tail_w[h]), cudaFree(s->d_tail_b[h]);
  }
  cudaFree(p->scratch);
  cudaFree(p->workspace);
  cudaFree(p->d_in_f32);
  for (int k = 0; k < 4; k++) {
    cudaFree(p->d_heads_f32[k]);
    free(p->h_heads[k]);
  }
  for (int k = 0; p->mnodes && k < p->n_mnodes; k++)
    free(p->mnodes[k].weight), free(p->mnodes[k].bias);
  free(p->mnodes);
  free(p->host_peaks);
  free(p->t);
  free(p->steps);
  free(p);
}
