/* Graphs built in C with random weights, for the CPU backend's tests and benchmark: they need
 * networks of a given shape before (and independently of) any trained model file.  The
 * benchmark network here is the one benchmarks/bench_cpu_torch.py builds in PyTorch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cpu/cpu_debug.h"

enum { CAP = 256 };

int npt__gb_init(npt__gb *b, uint64_t seed) {
  memset(b, 0, sizeof *b);
  npt_rng_seed(&b->rng, seed, 0);
  npt_graph *g = b->g = calloc(1, sizeof *g);
  NPT_ALLOC_CHECK(g);
  g->tensors = calloc(CAP, sizeof *g->tensors);
  g->nodes = calloc(CAP, sizeof *g->nodes);
  g->path = strdup("(built in C)");
  if (!g->tensors || !g->nodes || !g->path) {
    npt_graph_free(g);
    b->g = NULL;
    return npt_error_set(NPT_ENOMEM, "graph builder: out of memory");
  }
  g->format_version = 1;
  g->n_tensors = 1;
  snprintf(g->tensors[0].name, NPT_NAME_MAX, "input");
  g->tensors[0].channels = 1, g->tensors[0].stride = 1;
  g->input = 0, g->multiple = 1;
  g->heads.heatmap = g->heads.size = g->heads.offset = g->heads.embed = -1;
  g->norm8 = (npt_norm){8, 0.5f, 0.25f, NPT_NORM_FIXED};
  g->norm16 = (npt_norm){16, 0.5f, 0.25f, NPT_NORM_FIXED};
  g->decode = (npt_decode_defaults){0.3f, 100, 3, 0.0};
  return 0;
}

/* A new node writing a new tensor of `channels` at `stride`; -1 when the graph is full or a
 * stride would not be a whole number. */
static npt_node *add_node(npt__gb *b, npt_op op, const char *name, int n_in, const int *in,
                          int channels, int stride) {
  npt_graph *g = b->g;
  if (!g || g->n_nodes >= CAP - 1 || g->n_tensors >= CAP || stride <= 0 || n_in < 1 ||
      n_in > NPT_MAX_INPUTS)
    return NULL;
  for (int i = 0; i < n_in; i++)
    if (in[i] < 0 || in[i] >= g->n_tensors)
      return NULL;
  npt_node *n = &g->nodes[g->n_nodes++];
  memset(n, 0, sizeof *n);
  n->op = op;
  snprintf(n->name, NPT_NAME_MAX, "%s", name);
  n->n_inputs = n_in;
  memcpy(n->inputs, in, sizeof *in * (size_t)n_in);
  n->output = g->n_tensors++;
  npt_tensor_info *t = &g->tensors[n->output];
  snprintf(t->name, NPT_NAME_MAX, "%s", name);
  t->channels = channels, t->stride = stride;
  n->stride = n->dilation = n->groups = 1;
  if (stride > g->multiple) /* sizes must stay whole down to the coarsest tensor */
    g->multiple = stride;
  return n;
}

/* Uniform weights scaled by fan-in (He), so activations keep their size through deep nets. */
static float *random_floats(npt__gb *b, size_t n, double a) {
  float *x = malloc(sizeof *x * (n ? n : 1));
  for (size_t i = 0; x && i < n; i++)
    x[i] = (float)npt_rng_range(&b->rng, -a, a);
  return x;
}

int npt__gb_conv(npt__gb *b, const char *name, int in, int c_out, int k, int stride, int pad,
                 int dilation, int groups, npt_act act) {
  if (!b->g || in < 0 || in >= b->g->n_tensors)
    return -1;
  const npt_tensor_info *x = &b->g->tensors[in];
  npt_node *n = add_node(b, NPT_OP_CONV2D, name, 1, &in, c_out, x->stride * stride);
  if (!n)
    return -1;
  n->c_in = x->channels, n->c_out = c_out, n->kh = n->kw = k, n->stride = stride, n->pad = pad;
  n->dilation = dilation, n->groups = groups, n->act = act;
  int fan_in = n->c_in / groups * k * k;
  n->weight = random_floats(b, (size_t)c_out * fan_in, sqrt(6.0 / fan_in));
  n->bias = random_floats(b, (size_t)c_out, 0.1);
  return n->weight && n->bias ? n->output : -1;
}

int npt__gb_convt(npt__gb *b, const char *name, int in, int c_out, int k, int stride, int pad,
                  int output_padding, npt_act act) {
  if (!b->g || in < 0 || in >= b->g->n_tensors || b->g->tensors[in].stride % stride)
    return -1;
  const npt_tensor_info *x = &b->g->tensors[in];
  npt_node *n = add_node(b, NPT_OP_CONVT2D, name, 1, &in, c_out, x->stride / stride);
  if (!n)
    return -1;
  n->c_in = x->channels, n->c_out = c_out, n->kh = n->kw = k, n->stride = stride, n->pad = pad;
  n->output_padding = output_padding, n->act = act;
  int fan_in = n->c_in * k * k / (stride * stride);
  n->weight = random_floats(b, (size_t)n->c_in * c_out * k * k, sqrt(6.0 / fan_in));
  n->bias = random_floats(b, (size_t)c_out, 0.1);
  return n->weight && n->bias ? n->output : -1;
}

int npt__gb_add(npt__gb *b, const char *name, int n_in, const int *in, npt_act act) {
  if (!b->g || n_in < 1 || in[0] < 0 || in[0] >= b->g->n_tensors)
    return -1;
  const npt_tensor_info *x = &b->g->tensors[in[0]];
  npt_node *n = add_node(b, NPT_OP_ADD, name, n_in, in, x->channels, x->stride);
  if (!n)
    return -1;
  n->act = act;
  return n->output;
}

int npt__gb_concat(npt__gb *b, const char *name, int n_in, const int *in) {
  if (!b->g || n_in < 1 || n_in > NPT_MAX_INPUTS)
    return -1;
  int c = 0;
  for (int i = 0; i < n_in; i++) {
    if (in[i] < 0 || in[i] >= b->g->n_tensors)
      return -1;
    c += b->g->tensors[in[i]].channels;
  }
  npt_node *n = add_node(b, NPT_OP_CONCAT, name, n_in, in, c, b->g->tensors[in[0]].stride);
  return n ? n->output : -1;
}

int npt__gb_upsample(npt__gb *b, const char *name, int in, int scale, int bilinear) {
  if (!b->g || in < 0 || in >= b->g->n_tensors || b->g->tensors[in].stride % scale)
    return -1;
  const npt_tensor_info *x = &b->g->tensors[in];
  npt_node *n = add_node(b, NPT_OP_UPSAMPLE, name, 1, &in, x->channels, x->stride / scale);
  if (!n)
    return -1;
  n->scale = scale, n->bilinear = bilinear;
  return n->output;
}

int npt__gb_pool(npt__gb *b, const char *name, npt_op op, int in, int k, int stride, int pad) {
  if (!b->g || in < 0 || in >= b->g->n_tensors)
    return -1;
  const npt_tensor_info *x = &b->g->tensors[in];
  npt_node *n = add_node(b, op, name, 1, &in, x->channels, x->stride * stride);
  if (!n)
    return -1;
  n->pool_k = k, n->pool_stride = stride, n->pool_pad = pad;
  return n->output;
}

npt_graph *npt__gb_finish(npt__gb *b, int heatmap, int size, int offset, int embed) {
  npt_graph *g = b->g;
  b->g = NULL;
  if (!g)
    return NULL;
  g->heads = (npt_heads){heatmap,
                         size,
                         offset,
                         embed,
                         embed >= 0 ? g->tensors[embed].channels : 0,
                         g->tensors[heatmap].stride};
  g->n_classes = g->tensors[heatmap].channels;
  return g;
}

/* The benchmark network (benchmarks/bench_cpu_torch.py, BenchNet, is the same in PyTorch):
 * stem at stride 2, residual stages at strides 4/8/16 with 24/48/96 channels, a neck back to
 * stride 4 (nearest upsample + add, bilinear upsample + concat), FairMOT-style heads. */
int npt__cpu_bench_graph(npt_graph **out, uint64_t seed) {
  npt__gb b;
  *out = NULL;
  NPT_TRY(npt__gb_init(&b, seed));
  const npt_act R = NPT_ACT_RELU, N = NPT_ACT_NONE;
  int x = npt__gb_conv(&b, "stem1", 0, 16, 3, 2, 1, 1, 1, R);
  x = npt__gb_conv(&b, "stem2", x, 16, 3, 1, 1, 1, 1, R);
  static const char *const names[3][4] = {
      {"d4", "c4a", "c4b", "s4"}, {"d8", "c8a", "c8b", "s8"}, {"d16", "c16a", "c16b", "s16"}};
  int widths[3] = {24, 48, 96}, stage[3];
  for (int s = 0; s < 3; s++) {
    int d = npt__gb_conv(&b, names[s][0], x, widths[s], 3, 2, 1, 1, 1, R);
    int c = npt__gb_conv(&b, names[s][1], d, widths[s], 3, 1, 1, 1, 1, R);
    c = npt__gb_conv(&b, names[s][2], c, widths[s], 3, 1, 1, 1, 1, N);
    int pair[2] = {c, d};
    x = stage[s] = npt__gb_add(&b, names[s][3], 2, pair, R);
  }
  int lat16 = npt__gb_conv(&b, "lat16", stage[2], 48, 1, 1, 0, 1, 1, N);
  int u8 = npt__gb_upsample(&b, "u8", lat16, 2, 0);
  int m8in[2] = {u8, stage[1]};
  int m8 = npt__gb_add(&b, "m8", 2, m8in, N);
  int f8 = npt__gb_conv(&b, "f8", m8, 48, 3, 1, 1, 1, 1, R);
  int lat8 = npt__gb_conv(&b, "lat8", f8, 24, 1, 1, 0, 1, 1, N);
  int u4 = npt__gb_upsample(&b, "u4", lat8, 2, 1);
  int cat_in[2] = {u4, stage[0]};
  int cat4 = npt__gb_concat(&b, "cat4", 2, cat_in);
  int f4 = npt__gb_conv(&b, "f4", cat4, 32, 3, 1, 1, 1, 1, R);
  static const char *const hn[4][2] = {
      {"hm_h", "heatmap"}, {"sz_h", "size"}, {"of_h", "offset"}, {"em_h", "embed"}};
  int hc[4] = {2, 2, 2, 64}, head[4];
  for (int h = 0; h < 4; h++) {
    int t = npt__gb_conv(&b, hn[h][0], f4, 24, 3, 1, 1, 1, 1, R);
    head[h] = npt__gb_conv(&b, hn[h][1], t, hc[h], 1, 1, 0, 1, 1,
                           h == 0 ? NPT_ACT_SIGMOID : NPT_ACT_NONE);
  }
  for (int h = 0; h < 4; h++)
    if (head[h] < 0) {
      npt_graph_free(b.g);
      return npt_error_set(NPT_EINTERNAL, "graph builder: cannot build the benchmark network");
    }
  *out = npt__gb_finish(&b, head[0], head[1], head[2], head[3]);
  return 0;
}
