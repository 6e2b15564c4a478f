/* Convolutions of the CPU backend: CONV2D (any kernel, stride, padding, dilation, groups, so also
 * the 1x1 and depthwise cases) and CONVT2D, through oneDNN.
 *
 * Why oneDNN and not im2col + BLAS: on the benchmark network (benchmarks/bench_cpu.c, 3x3
 * convolutions of 16-96 channels) oneDNN's JIT direct convolutions ran 3-4x faster than im2col +
 * OpenBLAS sgemm on the same machine (docs/performance.md): with so few channels a GEMM is thin,
 * and im2col moves nine times the input through memory.  oneDNN also fuses what follows a
 * convolution (bias, activation, the residual sum) into the same pass over the output.
 *
 * Each step owns a primitive created for its exact shapes and its weights reordered once, at
 * plan time, into the layout that primitive wants.  Bias and activation are fused as post-ops;
 * an ADD that can be folded into the convolution before it (cpu_backend.c decides) becomes a
 * `sum` post-op: the convolution adds its result to what the output already holds. */
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "common/error.h"
#include "nn/cpu/cpu_internal.h"

int npt__dnnl_fail(dnnl_status_t st, const char *file, int line, const char *stmt) {
  int code = st == dnnl_unimplemented   ? NPT_EUNSUPPORTED
             : st == dnnl_out_of_memory ? NPT_ENOMEM
                                        : NPT_EINTERNAL;
  return npt__check_fail(code, file, line, stmt, dnnl_status2str(st));
}

int npt__cpu_conv_supported(const npt_node *n) {
  if (n->c_in <= 0 || n->c_out <= 0 || n->kh <= 0 || n->kw <= 0 || n->stride <= 0 ||
      n->dilation <= 0 || n->pad < 0 || n->groups <= 0 || !n->weight || !n->bias)
    return 0;
  if (n->op == NPT_OP_CONV2D)
    return n->c_in % n->groups == 0 && n->c_out % n->groups == 0;
  /* oneDNN expresses output_padding as a smaller right padding, which cannot go negative. */
  return n->op == NPT_OP_CONVT2D && n->groups == 1 && n->output_padding >= 0 &&
         n->output_padding <= n->pad;
}

static int append_act(dnnl_post_ops_t po, npt_act act) {
  switch (act) {
  case NPT_ACT_NONE:
    return 0;
  case NPT_ACT_RELU:
    NPT_DNNL_CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    return 0;
  case NPT_ACT_SILU: /* swish(x) = x * sigmoid(alpha x), alpha = 1 */
    NPT_DNNL_CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f));
    return 0;
  case NPT_ACT_SIGMOID:
    NPT_DNNL_CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f));
    return 0;
  }
  return npt_error_set(NPT_EFORMAT, "cpu backend: unknown activation %d", (int)act);
}

/* The attribute of a step's primitive: post-ops, and a scratchpad the plan provides (one buffer
 * shared by all steps instead of one per primitive). */
static int make_attr(dnnl_primitive_attr_t *attr, const npt__cpu_step *s) {
  dnnl_post_ops_t po = NULL;
  NPT_DNNL_CHECK(dnnl_primitive_attr_create(attr));
  NPT_DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user));
  NPT_DNNL_CHECK(dnnl_post_ops_create(&po));
  int rc = 0;
  if (s->sum_from >= 0 && dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success)
    rc = npt_error_set(NPT_EINTERNAL, "cpu backend: cannot fuse a sum into node %s", s->node->name);
  if (rc == 0)
    rc = append_act(po, s->act);
  if (rc == 0 && dnnl_primitive_attr_set_post_ops(*attr, po) != dnnl_success)
    rc = npt_error_set(NPT_EINTERNAL, "cpu backend: cannot set post-ops of node %s", s->node->name);
  dnnl_post_ops_destroy(po);
  return rc;
}

/* Creates the primitive descriptor for step s; the op descriptors hold no resources. */
static int make_pd(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s,
                   dnnl_memory_desc_t *user_wei) {
  const npt_node *n = s->node;
  const npt__cpu_tensor *ti = &p->t[s->in_override >= 0 ? s->in_override : n->inputs[0]];
  const npt__cpu_tensor *to = &p->t[s->out];
  dnnl_memory_desc_t src, wei, bias, dst;
  dnnl_dims_t sd = {p->batch, n->c_in, ti->h, ti->w}, dd = {p->batch, n->c_out, to->h, to->w};
  dnnl_dims_t bd = {n->c_out};
  NPT_DNNL_CHECK(
      dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, ti->plain ? dnnl_nchw : dnnl_nChw8c));
  NPT_DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nChw8c));
  NPT_DNNL_CHECK(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x));
  dnnl_dims_t strides = {n->stride, n->stride}, dil = {n->dilation - 1, n->dilation - 1};
  dnnl_dims_t pad_l = {n->pad, n->pad}, pad_r = {n->pad, n->pad};
  dnnl_primitive_attr_t attr = NULL;
  int rc = make_attr(&attr, s);
  dnnl_status_t st = dnnl_success;
  if (rc == 0 && n->op == NPT_OP_CONV2D) {
    if (n->groups == 1) {
      dnnl_dims_t wd = {n->c_out, n->c_in, n->kh, n->kw};
      dnnl_memory_desc_init_by_tag(user_wei, 4, wd, dnnl_f32, dnnl_oihw);
      dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any);
    } else {
      dnnl_dims_t wd = {n->groups, n->c_out / n->groups, n->c_in / n->groups, n->kh, n->kw};
      dnnl_memory_desc_init_by_tag(user_wei, 5, wd, dnnl_f32, dnnl_goihw);
      dnnl_memory_desc_init_by_tag(&wei, 5, wd, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_convolution_desc_t cd;
    st = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                    dnnl_convolution_direct, &src, &wei, &bias,
                                                    &dst, strides, dil, pad_l, pad_r);
    if (st == dnnl_success)
      st = dnnl_primitive_desc_create(&s->pd, &cd, attr, ctx->engine, NULL);
  } else if (rc == 0) {
    /* PyTorch stores transposed-conv weights [c_in][c_out][kh][kw]: oneDNN's iohw. */
    dnnl_dims_t wd = {n->c_out, n->c_in, n->kh, n->kw};
    dnnl_memory_desc_init_by_tag(user_wei, 4, wd, dnnl_f32, dnnl_iohw);
    dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any);
    pad_r[0] = pad_r[1] = n->pad - n->output_padding;
    dnnl_deconvolution_desc_t cd;
    st = dnnl_dilated_deconvolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                      dnnl_deconvolution_direct, &src, &wei, &bias,
                                                      &dst, strides, dil, pad_l, pad_r);
    if (st == dnnl_success)
      st = dnnl_primitive_desc_create(&s->pd, &cd, attr, ctx->engine, NULL);
  }
  if (attr)
    dnnl_primitive_attr_destroy(attr);
  if (rc == 0 && st != dnnl_success)
    rc = npt_error_set(st == dnnl_unimplemented ? NPT_EUNSUPPORTED : NPT_EINTERNAL,
                       "cpu backend: oneDNN cannot run node %s (%dx%d, %d->%d ch, groups %d, "
                       "on %dx%d): %s",
                       n->name, n->kh, n->kw, n->c_in, n->c_out, n->groups, ti->h, ti->w,
                       dnnl_status2str(st));
  return rc;
}

/* Reorders the node's weights (plain PyTorch order) into the primitive's layout, once. */
static int reorder_weights(npt__cpu_ctx *ctx, npt__cpu_step *s, const dnnl_memory_desc_t *user) {
  const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(s->pd, dnnl_query_weights_md, 0);
  size_t bytes = dnnl_memory_desc_get_size(want);
  s->wei = npt__cpu_alloc(bytes);
  NPT_ALLOC_CHECK(s->wei);
  dnnl_memory_t from = NULL;
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_t r = NULL;
  NPT_DNNL_CHECK(dnnl_memory_create(&s->m_wei, want, ctx->engine, s->wei));
  NPT_DNNL_CHECK(dnnl_memory_create(&from, user, ctx->engine, (void *)s->weight));
  dnnl_status_t st =
      dnnl_reorder_primitive_desc_create(&rpd, user, ctx->engine, want, ctx->engine, NULL);
  if (st == dnnl_success)
    st = dnnl_primitive_create(&r, rpd);
  if (st == dnnl_success) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, s->m_wei}};
    st = dnnl_primitive_execute(r, ctx->stream, 2, args);
  }
  if (st == dnnl_success)
    st = dnnl_stream_wait(ctx->stream);
  if (r)
    dnnl_primitive_destroy(r);
  if (rpd)
    dnnl_primitive_desc_destroy(rpd);
  dnnl_memory_destroy(from);
  NPT_DNNL_CHECK(st);
  return 0;
}

int npt__cpu_winograd_on = 4;

void npt__cpu_set_winograd(int on) { /* cpu_debug.h */
  npt__cpu_winograd_on = on == 2 || on == 4 ? on : 0;
}

int npt__cpu_conv_prepare(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s) {
  if (npt__cpu_winograd_on && npt__cpu_wino_eligible(s->node))
    return npt__cpu_wino_prepare(p, s, npt__cpu_winograd_on);
  dnnl_memory_desc_t user_wei;
  NPT_TRY(make_pd(ctx, p, s, &user_wei));
  NPT_TRY(reorder_weights(ctx, s, &user_wei));
  const npt_node *n = s->node;
  const npt__cpu_tensor *ti = &p->t[s->in_override >= 0 ? s->in_override : n->inputs[0]];
  const dnnl_memory_desc_t *md;
  md = dnnl_primitive_desc_query_md(s->pd, dnnl_query_src_md, 0);
  NPT_DNNL_CHECK(dnnl_memory_create(&s->m_src, md, ctx->engine, ti->data));
  md = dnnl_primitive_desc_query_md(s->pd, dnnl_query_dst_md, 0);
  NPT_DNNL_CHECK(dnnl_memory_create(&s->m_dst, md, ctx->engine, p->t[s->out].data));
  md = dnnl_primitive_desc_query_md(s->pd, dnnl_query_weights_md, 1);
  NPT_DNNL_CHECK(dnnl_memory_create(&s->m_bias, md, ctx->engine, n->bias));
  md = dnnl_primitive_desc_query_md(s->pd, dnnl_query_scratchpad_md, 0);
  size_t sb = md ? dnnl_memory_desc_get_size(md) : 0;
  if (sb > p->scratch_bytes)
    p->scratch_bytes = sb;
  NPT_DNNL_CHECK(dnnl_primitive_create(&s->prim, s->pd));
  return 0;
}

int npt__cpu_conv_bind_scratch(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s) {
  if (s->wino)
    return 0;
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(s->pd, dnnl_query_scratchpad_md, 0);
  if (md && dnnl_memory_desc_get_size(md) > 0)
    NPT_DNNL_CHECK(dnnl_memory_create(&s->m_scratch, md, ctx->engine, p->scratch));
  return 0;
}

int npt__cpu_conv_run(npt__cpu_ctx *ctx, npt__cpu_plan *p, npt__cpu_step *s) {
  if (s->wino)
    return npt__cpu_wino_run(ctx, p, s);
  if (s->sum_from >= 0) {
    const npt__cpu_tensor *from = &p->t[s->sum_from], *to = &p->t[s->out];
    if (from->data != to->data) /* not in place: the sum post-op adds to a copy */
      memcpy(to->data, from->data, sizeof(float) * to->floats);
  }
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, s->m_src},
                             {DNNL_ARG_WEIGHTS, s->m_wei},
                             {DNNL_ARG_BIAS, s->m_bias},
                             {DNNL_ARG_DST, s->m_dst},
                             {DNNL_ARG_SCRATCHPAD, s->m_scratch}};
  NPT_DNNL_CHECK(dnnl_primitive_execute(s->prim, ctx->stream, s->m_scratch ? 5 : 4, args));
  return 0;
}

void npt__cpu_conv_release(npt__cpu_step *s) {
  if (s->prim)
    dnnl_primitive_destroy(s->prim);
  if (s->pd)
    dnnl_primitive_desc_destroy(s->pd);
  dnnl_memory_t *m[] = {&s->m_src, &s->m_wei, &s->m_bias, &s->m_dst, &s->m_scratch};
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
    if (*m[i])
      dnnl_memory_destroy(*m[i]);
  free(s->wei);
  free(s->weight16);
  s->weight16 = NULL;
  s->prim = NULL, s->pd = NULL, s->wei = NULL;
  s->m_src = s->m_wei = s->m_bias = s->m_dst = s->m_scratch = NULL;
}
