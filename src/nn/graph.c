/* The graph's own rules (graph.h): every op's parameters agree with its inputs, and every
 * tensor's size is the input's divided by its stride for any input whose sides are multiples
 * of `multiple`.  The model-file reader (model_file.c) calls npt__graph_check() once it has read
 * every node; the engine and backends can then trust the graph without checking again. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"
#include "nn/graph.h"
#include "nn/graph_internal.h"

static const char *op_name(npt_op op) {
  switch (op) {
  case NPT_OP_CONV2D:
    return "conv2d";
  case NPT_OP_CONVT2D:
    return "convt2d";
  case NPT_OP_ADD:
    return "add";
  case NPT_OP_CONCAT:
    return "concat";
  case NPT_OP_UPSAMPLE:
    return "upsample";
  case NPT_OP_MAXPOOL:
    return "maxpool";
  case NPT_OP_AVGPOOL:
    return "avgpool";
  }
  return "?";
}

static int node_fail(const npt_graph *g, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int node_fail(const npt_graph *g, int i, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return npt_error_set(NPT_EFORMAT, "%s: node %04d_%s: %s", g->path, i, g->nodes[i].name, msg);
}

/* A window of k taps spread by `dilation`, moved by `stride`, with `pad` on both sides, maps
 * n -> floor((n + 2 pad - dilation (k - 1) - 1) / stride) + 1 outputs.  That is n / stride for
 * every n divisible by stride exactly when this holds. */
static int keeps_size(int k, int stride, int pad, int dilation) {
  int e = 2 * pad - dilation * (k - 1) - 1;
  return e >= -stride && e <= -1;
}

static int check_conv(npt_graph *g, int i, int *channels, int *stride) {
  const npt_node *n = &g->nodes[i];
  const npt_tensor_info *x = &g->tensors[n->inputs[0]];
  if (n->n_inputs != 1)
    return node_fail(g, i, "%s takes 1 input, not %d", op_name(n->op), n->n_inputs);
  if (n->op == NPT_OP_CONV2D) {
    if (n->c_in % n->groups || n->c_out % n->groups)
      return node_fail(g, i, "groups %d does not divide %d input and %d output channels", n->groups,
                       n->c_in, n->c_out);
    if (n->c_in != x->channels)
      return node_fail(g, i,
                       "weight [%d, %d, %d, %d] with groups %d takes %d input channels, but its "
                       "input '%s' has %d",
                       n->c_out, n->c_in / n->groups, n->kh, n->kw, n->groups, n->c_in, x->name,
                       x->channels);
    if (!keeps_size(n->kh, n->stride, n->pad, n->dilation) ||
        !keeps_size(n->kw, n->stride, n->pad, n->dilation))
      return node_fail(g, i,
                       "kernel %dx%d, stride %d, padding %d, dilation %d does not give output "
                       "size = input size / %d (need dilation (k - 1) + 1 - stride <= 2 padding "
                       "<= dilation (k - 1) for both kernel sides)",
                       n->kh, n->kw, n->stride, n->pad, n->dilation, n->stride);
    *stride = x->stride * n->stride;
  } else {
    if (n->c_in != x->channels)
      return node_fail(g, i,
                       "weight [%d, %d, %d, %d] takes %d input channels, but its input "
                       "'%s' has %d",
                       n->c_in, n->c_out, n->kh, n->kw, n->c_in, x->name, x->channels);
    if (x->stride % n->stride)
      return node_fail(g, i, "stride %d does not divide the stride %d of its input '%s'", n->stride,
                       x->stride, x->name);
    if (n->output_padding >= n->stride)
      return node_fail(g, i, "output_padding %d must be smaller than stride %d", n->output_padding,
                       n->stride);
    if (n->kh + n->output_padding != n->stride + 2 * n->pad ||
        n->kw + n->output_padding != n->stride + 2 * n->pad)
      return node_fail(g, i,
                       "kernel %dx%d, stride %d, padding %d, output_padding %d does not give "
                       "output size = input size x %d (need kernel + output_padding = stride + "
                       "2 padding)",
                       n->kh, n->kw, n->stride, n->pad, n->output_padding, n->stride);
    *stride = x->stride / n->stride;
  }
  *channels = n->c_out;
  return 0;
}

/* Sets the channels and stride of node i's output, or fails naming the node. */
static int check_node(npt_graph *g, int i) {
  const npt_node *n = &g->nodes[i];
  const npt_tensor_info *x = &g->tensors[n->inputs[0]];
  int channels = x->channels, stride = x->stride;
  switch (n->op) {
  case NPT_OP_CONV2D:
  case NPT_OP_CONVT2D:
    NPT_TRY(check_conv(g, i, &channels, &stride));
    break;
  case NPT_OP_ADD:
  case NPT_OP_CONCAT:
    if (n->n_inputs < 2)
      return node_fail(g, i, "%s needs 2 or more inputs, not %d", op_name(n->op), n->n_inputs);
    for (int k = 1; k < n->n_inputs; k++) {
      const npt_tensor_info *y = &g->tensors[n->inputs[k]];
      if (y->stride != x->stride)
        return node_fail(g, i, "input '%s' has stride %d, but input '%s' has stride %d", y->name,
                         y->stride, x->name, x->stride);
      if (n->op == NPT_OP_ADD && y->channels != x->channels)
        return node_fail(g, i, "input '%s' has %d channels, but input '%s' has %d", y->name,
                         y->channels, x->name, x->channels);
      if (n->op == NPT_OP_CONCAT)
        channels += y->channels;
    }
    if (channels > NPT__MAX_CHANNELS)
      return node_fail(g, i, "%d channels (at most %d)", channels, NPT__MAX_CHANNELS);
    break;
  case NPT_OP_UPSAMPLE:
    if (n->n_inputs != 1)
      return node_fail(g, i, "upsample takes 1 input, not %d", n->n_inputs);
    if (x->stride % n->scale)
      return node_fail(g, i, "scale %d does not divide the stride %d of its input '%s'", n->scale,
                       x->stride, x->name);
    stride = x->stride / n->scale;
    break;
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    if (n->n_inputs != 1)
      return node_fail(g, i, "%s takes 1 input, not %d", op_name(n->op), n->n_inputs);
    if (2 * n->pool_pad > n->pool_k || !keeps_size(n->pool_k, n->pool_stride, n->pool_pad, 1))
      return node_fail(g, i,
                       "kernel %d, stride %d, padding %d does not give output size = input size "
                       "/ %d (need kernel - stride <= 2 padding <= kernel - 1, padding <= "
                       "kernel / 2)",
                       n->pool_k, n->pool_stride, n->pool_pad, n->pool_stride);
    stride = x->stride * n->pool_stride;
    break;
  }
  if (stride > g->multiple || g->multiple % stride)
    return node_fail(g, i,
                     "output stride %d does not divide multiple %d (input sides that are "
                     "multiples of %d would not give whole output sizes)",
                     stride, g->multiple, g->multiple);
  g->tensors[n->output].channels = channels;
  g->tensors[n->output].stride = stride;
  return 0;
}

static int check_head(const npt_graph *g, const char *head, int t, int channels) {
  const npt_tensor_info *x = &g->tensors[t];
  if (x->stride != g->heads.output_stride)
    return npt_error_set(NPT_EFORMAT, "%s: head_%s '%s' has stride %d, but output_stride is %d",
                         g->path, head, x->name, x->stride, g->heads.output_stride);
  if (x->channels != channels)
    return npt_error_set(NPT_EFORMAT, "%s: head_%s '%s' has %d channels, %d expected", g->path,
                         head, x->name, x->channels, channels);
  return 0;
}

/* 1 when every value of tensor t is in [0, 1] for any input: a sigmoid, or pooling, nearest or
 * bilinear upsampling (convex combinations) and concatenation of such tensors. */
static int is_probability(const npt_graph *g, int t) {
  if (t == g->input)
    return 0;
  const npt_node *n = &g->nodes[t - 1];
  switch (n->op) {
  case NPT_OP_CONV2D:
  case NPT_OP_CONVT2D:
  case NPT_OP_ADD:
    return n->act == NPT_ACT_SIGMOID;
  case NPT_OP_CONCAT:
  case NPT_OP_UPSAMPLE:
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    for (int k = 0; k < n->n_inputs; k++)
      if (!is_probability(g, n->inputs[k]))
        return 0;
    return 1;
  }
  return 0;
}

int npt__graph_check(npt_graph *g) {
  g->tensors[g->input].channels = 1;
  g->tensors[g->input].stride = 1;
  for (int i = 0; i < g->n_nodes; i++)
    NPT_TRY(check_node(g, i));
  const npt_heads *h = &g->heads;
  NPT_TRY(check_head(g, "heatmap", h->heatmap, g->n_classes));
  if (!is_probability(g, h->heatmap))
    return npt_error_set(NPT_EFORMAT,
                         "%s: head_heatmap '%s' must hold probabilities: end it with a sigmoid "
                         "(act sigmoid)",
                         g->path, g->tensors[h->heatmap].name);
  NPT_TRY(check_head(g, "size", h->size, 2));
  NPT_TRY(check_head(g, "offset", h->offset, 2));
  if (h->embed >= 0)
    NPT_TRY(check_head(g, "embed", h->embed, h->embed_dim));
  return 0;
}

void npt_graph_free(npt_graph *g) {
  if (!g)
    return;
  for (int i = 0; g->nodes && i < g->n_nodes; i++) {
    free(g->nodes[i].weight);
    free(g->nodes[i].bias);
  }
  free(g->nodes);
  free(g->tensors);
  free(g->class_names);
  free(g->provenance);
  free(g->path);
  free(g);
}

double npt_graph_macs_per_pixel(const npt_graph *g) {
  double macs = 0.0;
  for (int i = 0; i < g->n_nodes; i++) {
    const npt_node *n = &g->nodes[i];
    double per_position = (double)n->c_out * n->c_in / n->groups * n->kh * n->kw;
    if (n->op == NPT_OP_CONV2D) { /* per output position */
      double s = g->tensors[n->output].stride;
      macs += per_position / (s * s);
    } else if (n->op == NPT_OP_CONVT2D) { /* per input position, each scattered to k x k */
      double s = g->tensors[n->inputs[0]].stride;
      macs += per_position / (s * s);
    }
  }
  return macs;
}
