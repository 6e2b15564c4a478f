/* The CPU backend (backend.h): fp32, the numerical reference, and what runs where no GPU is.
 *
 * A plan turns the graph into steps for one (batch, h, w): tensor shapes, the ADDs that can be
 * folded into the convolution before them, a memory plan over one arena (cpu_memplan.c), and a
 * oneDNN primitive per convolution (cpu_conv.c).  Running a plan does no allocation.  Step 0
 * copies the network input into blocked layout when some op other than a convolution reads it;
 * step k + 1 runs node k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cpu/cpu_debug.h"
#include "nn/cpu/cpu_internal.h"

static int cpu_init(void **out, const npt_backend_params *params) {
  *out = NULL;
  npt__cpu_ctx *ctx = calloc(1, sizeof *ctx);
  NPT_ALLOC_CHECK(ctx);
  ctx->threads = params && params->threads > 0 ? params->threads : 1;
  if (dnnl_engine_create(&ctx->engine, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags) != dnnl_success) {
    if (ctx->engine)
      dnnl_engine_destroy(ctx->engine);
    free(ctx);
    return npt_error_set(NPT_EINTERNAL, "cpu backend: cannot create a oneDNN CPU engine");
  }
  *out = ctx;
  return 0;
}

static void cpu_free(void *vctx) {
  npt__cpu_ctx *ctx = vctx;
  if (!ctx)
    return;
  dnnl_stream_destroy(ctx->stream);
  dnnl_engine_destroy(ctx->engine);
  free(ctx);
}

static int cpu_supports(void *ctx, const npt_graph *g, const npt_node *n) {
  (void)ctx, (void)g;
  switch (n->op) {
  case NPT_OP_CONV2D:
  case NPT_OP_CONVT2D:
    return npt__cpu_conv_supported(n);
  case NPT_OP_ADD:
  case NPT_OP_CONCAT:
    return n->n_inputs >= 1 && n->n_inputs <= NPT_MAX_INPUTS;
  case NPT_OP_UPSAMPLE:
    return n->scale >= 1;
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    return n->pool_k >= 1 && n->pool_stride >= 1 && n->pool_pad >= 0 &&
           2 * n->pool_pad <= n->pool_k;
  }
  return 0;
}

static void cpu_plan_free(void *vctx, void *vplan) {
  (void)vctx;
  npt__cpu_plan *p = vplan;
  if (!p)
    return;
  for (int i = 0; p->steps && i < p->n_steps; i++)
    npt__cpu_conv_release(&p->steps[i]);
  for (int k = 0; k < 4; k++) /* heads sharing a tensor share a buffer: free it once */
    for (int m = 0; m < k; m++)
      if (p->heads[m] == p->heads[k])
        p->heads[k] = NULL;
  for (int k = 0; k < 4; k++)
    free(p->heads[k]);
  free(p->round16);
  free(p->steps), free(p->t), free(p->arena), free(p->scratch), free(p->wino_scratch), free(p);
}

static int is_conv(const npt_node *n) {
  return n->op == NPT_OP_CONV2D || n->op == NPT_OP_CONVT2D;
}

/* Output size of a node along one axis (k: its kernel size there) from the input's, to check
 * the graph's strides against the op: a malformed graph must fail at plan time, not write out of
 * bounds. */
static int node_out_size(const npt_node *n, int k, int in) {
  int eff = n->dilation * (k - 1) + 1;
  switch (n->op) {
  case NPT_OP_CONV2D:
    return (in + 2 * n->pad - eff) / n->stride + 1;
  case NPT_OP_CONVT2D:
    return (in - 1) * n->stride - 2 * n->pad + eff + n->output_padding;
  case NPT_OP_UPSAMPLE:
    return in * n->scale;
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    return (in + 2 * n->pool_pad - n->pool_k) / n->pool_stride + 1;
  default:
    return in;
  }
}

/* Tensor shapes from the input size, with every node's shapes checked. */
static int plan_shapes(npt__cpu_plan *p, const npt_graph *g) {
  for (int i = 0; i < g->n_tensors; i++) {
    const npt_tensor_info *ti = &g->tensors[i];
    npt__cpu_tensor *t = &p->t[i];
    if (ti->stride <= 0 || p->h % ti->stride || p->w % ti->stride || ti->channels <= 0)
      return npt_error_set(
          NPT_EINVAL, "%s: tensor %s (stride %d, %d channels) does not fit a %dx%d input",
          g->path ? g->path : "model", ti->name, ti->stride, ti->channels, p->h, p->w);
    t->c = ti->channels, t->h = p->h / ti->stride, t->w = p->w / ti->stride;
    t->cb = NPT__CPU_BLOCKS(t->c);
    t->plain = i == g->input;
    t->floats = (size_t)p->batch * t->h * t->w * (t->plain ? (size_t)t->c : (size_t)t->cb * 8);
  }
  npt__cpu_tensor *copy = &p->t[g->n_tensors]; /* the input's blocked copy */
  *copy = p->t[g->input];
  copy->plain = 0;
  copy->floats = (size_t)p->batch * copy->h * copy->w * (size_t)copy->cb * NPT__BLK;
  for (int k = 0; k < g->n_nodes; k++) {
    const npt_node *n = &g->nodes[k];
    const npt__cpu_tensor *o = &p->t[n->output];
    int ch = 0;
    for (int j = 0; j < n->n_inputs; j++) {
      const npt__cpu_tensor *in = &p->t[n->inputs[j]];
      int ho = node_out_size(n, n->kh, in->h), wo = node_out_size(n, n->kw, in->w);
      ch += in->c;
      if (ho != o->h || wo != o->w || (is_conv(n) && in->c != n->c_in) ||
          (n->op == NPT_OP_ADD && in->c != o->c))
        return npt_error_set(NPT_EFORMAT,
                             "%s: node %s: input %s (%d ch, %dx%d) does not give output %s "
                             "(%d ch, %dx%d)",
                             g->path ? g->path : "model", n->name, g->tensors[n->inputs[j]].name,
                             in->c, in->h, in->w, g->tensors[n->output].name, o->c, o->h, o->w);
    }
    if ((is_conv(n) && (n->n_inputs != 1 || o->c != n->c_out)) ||
        (n->op == NPT_OP_CONCAT && ch != o->c) ||
        ((n->op == NPT_OP_UPSAMPLE || n->op == NPT_OP_MAXPOOL || n->op == NPT_OP_AVGPOOL) &&
         (n->n_inputs != 1 || ch != o->c)))
      return npt_error_set(NPT_EFORMAT, "%s: node %s: channels do not match (%d in, %d out)",
                           g->path ? g->path : "model", n->name, ch, o->c);
  }
  return 0;
}

static int is_head(const npt_graph *g, int t) {
  return t == g->heads.heatmap || t == g->heads.size || t == g->heads.offset || t == g->heads.embed;
}

/* Lifetimes in steps, and the storage a tensor shares (in-place adds). */
static int root_of(const npt__cpu_plan *p, int t) {
  while (p->t[t].alias >= 0)
    t = p->t[t].alias;
  return t;
}

/* Folds ADD node k (two inputs) into the convolution that produces one of them, when that
 * convolution has no activation and nothing else reads its output: the convolution then writes
 * the add's output, starting from the other input's values (oneDNN's sum post-op), saving a
 * pass over both tensors.  In place (the output takes the other input's storage) when nothing
 * reads that input any more. */
static void fuse_add(npt__cpu_plan *p, const npt_graph *g, int k, const int *consumers) {
  const npt_node *add = &g->nodes[k];
  if (add->n_inputs != 2)
    return;
  for (int side = 0; side < 2; side++) {
    int a = add->inputs[side], b = add->inputs[1 - side];
    int ps = p->t[a].def; /* step of a's producer */
    if (ps < 1 || a == b || consumers[a] != 1 || is_head(g, a) || b == g->input)
      continue;
    npt__cpu_step *cs = &p->steps[ps];
    if (!cs->node || !is_conv(cs->node) || cs->act != NPT_ACT_NONE || cs->sum_from >= 0 ||
        p->t[b].def >= ps)
      continue;
    cs->out = add->output, cs->sum_from = b, cs->act = add->act;
    p->steps[k + 1].skip = 1;
    p->t[a].elided = 1;
    p->t[add->output].def = ps;
    /* In place only if no step after the conv (but the add) reads b, and the conv does not
     * read b's storage itself. */
    int in_place =
        !p->keep_all && !is_head(g, b) && root_of(p, cs->node->inputs[0]) != root_of(p, b);
    for (int j = 0; j < g->n_nodes && in_place; j++)
      for (int i = 0; i < g->nodes[j].n_inputs; i++)
        if (g->nodes[j].inputs[i] == b && j != k && j + 1 >= ps)
          in_place = 0;
    if (in_place)
      p->t[add->output].alias = root_of(p, b);
    return;
  }
}

static int plan_steps(npt__cpu_plan *p, const npt_graph *g) {
  int *consumers = calloc((size_t)p->n_tensors, sizeof *consumers);
  NPT_ALLOC_CHECK(consumers);
  for (int i = 0; i < p->n_tensors; i++)
    p->t[i].def = -2, p->t[i].last = -1, p->t[i].alias = -1;
  p->t[g->input].def = -1;
  int copy = g->n_tensors, need_copy = 0;
  for (int k = 0; k < g->n_nodes; k++) {
    const npt_node *n = &g->nodes[k];
    npt__cpu_step *s = &p->steps[k + 1];
    s->node = n, s->out = n->output, s->act = n->act, s->sum_from = -1, s->in_override = -1;
    p->t[n->output].def = k + 1;
    for (int j = 0; j < n->n_inputs; j++) {
      int t = n->inputs[j];
      if (t == g->input && !is_conv(n))
        t = copy, need_copy = 1;
      consumers[t]++;
      p->t[t].last = k + 1;
    }
  }
  p->steps[0].out = copy, p->steps[0].skip = !need_copy, p->steps[0].sum_from = -1;
  p->steps[0].in_override = -1;
  p->t[copy].def = need_copy ? 0 : -2;
  if (!need_copy)
    p->t[copy].floats = 0;
  int heads[4] = {g->heads.heatmap, g->heads.size, g->heads.offset, g->heads.embed};
  for (int k = 0; k < 4; k++)
    if (heads[k] >= 0)
      p->t[heads[k]].last = p->n_steps;
  for (int k = 0; k < g->n_nodes; k++)
    if (g->nodes[k].op == NPT_OP_ADD)
      fuse_add(p, g, k, consumers);
  free(consumers);
  for (int i = 0; i < g->n_tensors; i++)
    if (p->t[i].def == -2 && p->t[i].last >= 0)
      return npt_error_set(NPT_EFORMAT, "%s: tensor %s is read but never written",
                           g->path ? g->path : "model", g->tensors[i].name);
  return 0;
}

static int plan_buffers(npt__cpu_ctx *ctx, npt__cpu_plan *p, const npt_graph *g) {
  NPT_TRY(npt__cpu_memplan(p));
  p->arena = npt__cpu_alloc(p->arena_floats * sizeof(float));
  NPT_ALLOC_CHECK(p->arena);
  for (int i = 0; i < p->n_tensors; i++)
    p->t[i].data = p->t[i].elided ? NULL : p->arena + p->t[i].offset;
  npt__cpu_set_threads(ctx);
  for (int k = 0; k < g->n_nodes; k++)
    if (is_conv(&g->nodes[k]))
      NPT_TRY(npt__cpu_conv_prepare(ctx, p, &p->steps[k + 1]));
  if (p->wino_floats) {
    p->wino_scratch = npt__cpu_alloc(sizeof(float) * p->wino_floats * (size_t)ctx->threads);
    NPT_ALLOC_CHECK(p->wino_scratch);
  }
  if (p->scratch_bytes) {
    p->scratch = npt__cpu_alloc(p->scratch_bytes);
    NPT_ALLOC_CHECK(p->scratch);
  }
  for (int k = 0; k < g->n_nodes; k++)
    if (is_conv(&g->nodes[k]))
      NPT_TRY(npt__cpu_conv_bind_scratch(ctx, p, &p->steps[k + 1]));
  int heads[4] = {g->heads.heatmap, g->heads.size, g->heads.offset, g->heads.embed};
  const float **outs[4] = {&p->out.heatmap, &p->out.size, &p->out.offset, &p->out.embed};
  for (int k = 0; k < 4; k++) {
    if (heads[k] < 0 || heads[k] >= g->n_tensors) {
      if (k < 3)
        return npt_error_set(NPT_EFORMAT, "%s: head %d is not a tensor",
                             g->path ? g->path : "model", k);
      continue;
    }
    for (int m = 0; m < k && !p->heads[k]; m++)
      if (heads[m] == heads[k])
        p->heads[k] = p->heads[m];
    const npt__cpu_tensor *t = &p->t[heads[k]];
    p->head_floats[k] = (size_t)p->batch * t->c * t->h * t->w;
    if (!p->heads[k])
      p->heads[k] = malloc(sizeof(float) * p->head_floats[k]);
    NPT_ALLOC_CHECK(p->heads[k]);
    *outs[k] = p->heads[k];
  }
  const npt__cpu_tensor *hm = &p->t[g->heads.heatmap];
  p->out.batch = p->batch, p->out.h_out = hm->h, p->out.w_out = hm->w;
  return 0;
}

int npt__cpu_plan_debug(void *vctx, const npt_graph *g, int batch, int h, int w, int keep_all,
                        int poison, void **out) {
  npt__cpu_ctx *ctx = vctx;
  *out = NULL;
  int mult = g->multiple > 0 ? g->multiple : 1;
  if (batch < 1 || h < 1 || w < 1 || h % mult || w % mult)
    return npt_error_set(NPT_EINVAL,
                         "cpu backend: cannot plan batch %d of %dx%d (a multiple of %d needed)",
                         batch, h, w, mult);
  if (g->input < 0 || g->input >= g->n_tensors || g->tensors[g->input].channels != 1)
    return npt_error_set(NPT_EFORMAT, "%s: the input must be a 1-channel tensor",
                         g->path ? g->path : "model");
  for (int k = 0; k < g->n_nodes; k++)
    if (!cpu_supports(ctx, g, &g->nodes[k]))
      return npt_error_set(NPT_EUNSUPPORTED, "%s: the cpu backend cannot run node %s",
                           g->path ? g->path : "model", g->nodes[k].name);
  npt__cpu_plan *p = calloc(1, sizeof *p);
  NPT_ALLOC_CHECK(p);
  p->batch = batch, p->h = h, p->w = w, p->g = g, p->keep_all = keep_all, p->poison = poison;
  p->n_tensors = g->n_tensors + 1, p->n_steps = g->n_nodes + 1;
  p->t = calloc((size_t)p->n_tensors, sizeof *p->t);
  p->steps = calloc((size_t)p->n_steps, sizeof *p->steps);
  int rc = p->t && p->steps ? 0 : npt_error_set(NPT_ENOMEM, "cpu backend: out of memory");
  if (rc == 0)
    rc = plan_shapes(p, g);
  if (rc == 0)
    rc = plan_steps(p, g);
  if (rc == 0)
    rc = npt__cpu_fp16_setup(p, g);
  if (rc == 0)
    rc = plan_buffers(ctx, p, g);
  if (rc < 0) {
    cpu_plan_free(ctx, p);
    return rc;
  }
  *out = p;
  return 0;
}

static int cpu_plan(void *ctx, const npt_graph *g, int batch, int h, int w, void **plan) {
  return npt__cpu_plan_debug(ctx, g, batch, h, w, 0, 0, plan);
}

static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    x[i] = NAN;
}

static int cpu_run(void *vctx, void *vplan, const float *input, npt_head_outputs *out) {
  npt__cpu_ctx *ctx = vctx;
  npt__cpu_plan *p = vplan;
  const npt_graph *g = p->g;
  npt__cpu_set_threads(ctx);
  if (p->poison) {
    fill_nan(p->arena, p->arena_floats);
    for (int k = 0; k < 4; k++)
      if (p->heads[k])
        fill_nan(p->heads[k], p->head_floats[k]);
  }
  const npt__cpu_tensor *in = &p->t[g->input];
  memcpy(in->data, input, sizeof(float) * in->floats);
  if (p->fp16 && p->round16[g->input])
    npt__cpu_fp16_round(ctx, in->data, in->floats);
  if (!p->steps[0].skip)
    npt__cpu_plain_to_blocked(ctx, in->data, p->t[p->n_tensors - 1].data, p->batch, 1, in->h,
                              in->w);
  for (int k = 1; k < p->n_steps; k++) {
    npt__cpu_step *s = &p->steps[k];
    if (s->skip)
      continue;
    if (is_conv(s->node))
      NPT_TRY(npt__cpu_conv_run(ctx, p, s));
    else
      NPT_TRY(npt__cpu_op_run(ctx, p, s));
    if (p->fp16 && p->round16[s->out]) {
      NPT_DNNL_CHECK(dnnl_stream_wait(ctx->stream));
      npt__cpu_fp16_round(ctx, p->t[s->out].data, p->t[s->out].floats);
    }
  }
  NPT_DNNL_CHECK(dnnl_stream_wait(ctx->stream));
  int heads[4] = {g->heads.heatmap, g->heads.size, g->heads.offset, g->heads.embed};
  for (int k = 0; k < 4; k++) {
    int done = heads[k] < 0;
    for (int m = 0; m < k; m++)
      done |= p->heads[m] == p->heads[k];
    if (done)
      continue;
    const npt__cpu_tensor *t = &p->t[heads[k]];
    npt__cpu_blocked_to_plain(ctx, t->data, p->heads[k], p->batch, t->c, t->h, t->w);
  }
  *out = p->out;
  return 0;
}

int npt__cpu_plan_tensor(void *ctx, void *vplan, int t, float *out) {
  npt__cpu_plan *p = vplan;
  if (t < 0 || t >= p->g->n_tensors || p->t[t].elided || (!p->keep_all && t != p->g->input))
    return npt_error_set(NPT_EINVAL, "cpu backend: tensor %d is not kept by this plan", t);
  const npt__cpu_tensor *x = &p->t[t];
  if (x->plain)
    memcpy(out, x->data, sizeof(float) * x->floats);
  else
    npt__cpu_blocked_to_plain(ctx, x->data, out, p->batch, x->c, x->h, x->w);
  return 0;
}

int npt__cpu_plan_bad_padding(void *vplan) {
  const npt__cpu_plan *p = vplan;
  for (int i = 0; i < p->n_tensors; i++) {
    const npt__cpu_tensor *t = &p->t[i];
    if (t->plain || t->elided || !t->data || t->c % NPT__BLK == 0 ||
        (i == p->n_tensors - 1 && p->steps[0].skip))
      continue;
    size_t plane = (size_t)t->h * t->w * NPT__BLK;
    for (int b = 0; b < p->batch; b++) {
      const float *last = t->data + ((size_t)b * t->cb + t->cb - 1) * plane;
      for (size_t k = 0; k < plane; k++)
        if ((int)(k % NPT__BLK) >= t->c % NPT__BLK && last[k] != 0.0f)
          return i;
    }
  }
  return -1;
}

int npt__cpu_plan_fused_adds(void *vplan) {
  npt__cpu_plan *p = vplan;
  int n = 0;
  for (int k = 1; k < p->n_steps; k++)
    n += p->steps[k].skip;
  return n;
}

const npt_backend_i npt_backend_cpu = {
    .name = "cpu",
    .init = cpu_init,
    .free = cpu_free,
    .supports = cpu_supports,
    .plan = cpu_plan,
    .run = cpu_run,
    .plan_free = cpu_plan_free,
};
