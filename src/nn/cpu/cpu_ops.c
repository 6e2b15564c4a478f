/* The CPU backend's ops other than convolutions: ADD, CONCAT, UPSAMPLE, MAXPOOL, AVGPOOL, and
 * the conversions between plain and channel-blocked layouts (cpu_internal.h).
 *
 * All work on blocked tensors, eight channels (one block) per pixel at a time, so each inner loop
 * is eight independent lanes that the compiler vectorises.  Work items are one output row of one
 * channel block of one frame: fixed by the shapes, never by the thread count (cpu_threads.c).
 * Lanes past the tensor's channel count are kept at zero, as oneDNN keeps them.
 *
 * Arithmetic follows PyTorch's CPU kernels (order of the sum in ADD and AVGPOOL, source index
 * and weights of bilinear upsampling), so that the C forward pass stays close to PyTorch's. */
#include <math.h>
#include <string.h>

#include "common/error.h"
#include "nn/cpu/cpu_internal.h"

typedef struct job {
  const npt__cpu_plan *p;
  const npt_node *n;
  const npt__cpu_tensor *in[NPT_MAX_INPUTS];
  const npt__cpu_tensor *out;
  /* conversions */
  const float *src;
  float *dst;
  int c, h, w;
} job;

/* Item i of a blocked tensor of `cb` blocks and `h` rows: frame, block, row. */
static void item_pos(long i, int cb, int h, int *b, int *blk, int *y) {
  *y = (int)(i % h);
  i /= h;
  *blk = (int)(i % cb);
  *b = (int)(i / cb);
}

static float *row_of(const npt__cpu_tensor *t, int b, int blk, int y) {
  return t->data + ((((size_t)b * t->cb + blk) * t->h + y) * t->w) * NPT__BLK;
}

/* Lanes of the last block that lie past the channel count: set back to zero. */
static void zero_tail(float *row, int w, int c, int blk) {
  int valid = c - blk * NPT__BLK;
  if (valid >= NPT__BLK)
    return;
  for (int x = 0; x < w; x++)
    for (int l = valid; l < NPT__BLK; l++)
      row[(size_t)x * NPT__BLK + l] = 0.0f;
}

static float act(float v, npt_act a) {
  switch (a) {
  case NPT_ACT_RELU:
    return v > 0.0f ? v : 0.0f;
  case NPT_ACT_SILU:
    return v / (1.0f + expf(-v));
  case NPT_ACT_SIGMOID:
    return 1.0f / (1.0f + expf(-v));
  default:
    return v;
  }
}

static void add_item(void *arg, long i) {
  const job *j = arg;
  int b, blk, y;
  item_pos(i, j->out->cb, j->out->h, &b, &blk, &y);
  float *o = row_of(j->out, b, blk, y);
  const float *a = row_of(j->in[0], b, blk, y);
  size_t len = (size_t)j->out->w * NPT__BLK;
  memcpy(o, a, sizeof *o * len);
  /* Left to right, as PyTorch evaluates a + b + c. */
  for (int k = 1; k < j->n->n_inputs; k++) {
    const float *s = row_of(j->in[k], b, blk, y);
    for (size_t x = 0; x < len; x++)
      o[x] += s[x];
  }
  if (j->n->act != NPT_ACT_NONE) {
    for (size_t x = 0; x < len; x++)
      o[x] = act(o[x], j->n->act);
    zero_tail(o, j->out->w, j->out->c, blk);
  }
}

static void concat_item(void *arg, long i) {
  const job *j = arg;
  int b, blk, y;
  item_pos(i, j->out->cb, j->out->h, &b, &blk, &y);
  float *o = row_of(j->out, b, blk, y);
  int w = j->out->w;
  /* Each lane of the output block comes from one input channel; when the block is a whole
   * block of one input (channel offsets that are multiples of 8, the usual case) it is a copy. */
  int c0 = blk * NPT__BLK, base = 0, k = 0;
  while (k < j->n->n_inputs && base + j->in[k]->c <= c0)
    base += j->in[k++]->c;
  if ((c0 - base) % NPT__BLK == 0 && base % NPT__BLK == 0 &&
      (c0 + NPT__BLK <= base + j->in[k]->c || k == j->n->n_inputs - 1)) {
    memcpy(o, row_of(j->in[k], b, (c0 - base) / NPT__BLK, y), sizeof *o * (size_t)w * NPT__BLK);
    return;
  }
  for (int l = 0; l < NPT__BLK; l++) {
    int c = c0 + l;
    while (k < j->n->n_inputs && base + j->in[k]->c <= c)
      base += j->in[k++]->c;
    if (k == j->n->n_inputs) { /* past the last channel: padding lanes */
      for (int x = 0; x < w; x++)
        o[(size_t)x * NPT__BLK + l] = 0.0f;
      continue;
    }
    int ci = c - base;
    const float *s = row_of(j->in[k], b, ci / NPT__BLK, y) + ci % NPT__BLK;
    for (int x = 0; x < w; x++)
      o[(size_t)x * NPT__BLK + l] = s[(size_t)x * NPT__BLK];
  }
}

/* PyTorch's source coordinate for align_corners = false with a scale factor given:
 * (dst + 0.5) / scale - 0.5, clamped at 0 (area_pixel_compute_source_index). */
static void bilinear_index(int dst, int scale, int in, int *i0, int *i1, float *l0, float *l1) {
  float src = (1.0f / (float)scale) * ((float)dst + 0.5f) - 0.5f;
  if (src < 0.0f)
    src = 0.0f;
  int i = (int)src;
  *i0 = i;
  *i1 = i < in - 1 ? i + 1 : i;
  *l1 = src - (float)i;
  *l0 = 1.0f - *l1;
}

static void upsample_item(void *arg, long i) {
  const job *j = arg;
  const npt__cpu_tensor *in = j->in[0], *out = j->out;
  int b, blk, y, s = j->n->scale;
  item_pos(i, out->cb, out->h, &b, &blk, &y);
  float *o = row_of(out, b, blk, y);
  if (!j->n->bilinear) {
    const float *r = row_of(in, b, blk, y / s);
    for (int x = 0; x < out->w; x++)
      memcpy(o + (size_t)x * NPT__BLK, r + (size_t)(x / s) * NPT__BLK, sizeof *o * NPT__BLK);
    return;
  }
  int y0, y1, x0, x1;
  float hy0, hy1, wx0, wx1;
  bilinear_index(y, s, in->h, &y0, &y1, &hy0, &hy1);
  const float *r0 = row_of(in, b, blk, y0), *r1 = row_of(in, b, blk, y1);
  for (int x = 0; x < out->w; x++) {
    bilinear_index(x, s, in->w, &x0, &x1, &wx0, &wx1);
    const float *a = r0 + (size_t)x0 * NPT__BLK, *bb = r0 + (size_t)x1 * NPT__BLK;
    const float *c = r1 + (size_t)x0 * NPT__BLK, *d = r1 + (size_t)x1 * NPT__BLK;
    float *ov = o + (size_t)x * NPT__BLK;
    for (int l = 0; l < NPT__BLK; l++)
      ov[l] = hy0 * (wx0 * a[l] + wx1 * bb[l]) + hy1 * (wx0 * c[l] + wx1 * d[l]);
  }
}

static void pool_item(void *arg, long i) {
  const job *j = arg;
  const npt__cpu_tensor *in = j->in[0], *out = j->out;
  const npt_node *n = j->n;
  int b, blk, y, k = n->pool_k, st = n->pool_stride, pad = n->pool_pad;
  int is_max = n->op == NPT_OP_MAXPOOL;
  item_pos(i, out->cb, out->h, &b, &blk, &y);
  float *o = row_of(out, b, blk, y);
  int ys = y * st - pad, ye = ys + k;
  int y0 = ys < 0 ? 0 : ys, y1 = ye > in->h ? in->h : ye;
  for (int x = 0; x < out->w; x++) {
    int xs = x * st - pad, xe = xs + k;
    int x0 = xs < 0 ? 0 : xs, x1 = xe > in->w ? in->w : xe;
    float acc[NPT__BLK];
    for (int l = 0; l < NPT__BLK; l++)
      acc[l] = is_max ? -INFINITY : 0.0f;
    for (int yy = y0; yy < y1; yy++) {
      const float *r = row_of(in, b, blk, yy);
      for (int xx = x0; xx < x1; xx++)
        for (int l = 0; l < NPT__BLK; l++) {
          float v = r[(size_t)xx * NPT__BLK + l];
          if (is_max)
            acc[l] = v > acc[l] || isnan(v) ? v : acc[l];
          else
            acc[l] += v;
        }
    }
    float *ov = o + (size_t)x * NPT__BLK;
    if (is_max) {
      for (int l = 0; l < NPT__BLK; l++)
        ov[l] = acc[l];
    } else {
      /* count_include_pad: the window clipped to the padded input, as PyTorch divides. */
      int ph = (ye < in->h + pad ? ye : in->h + pad) - ys;
      int pw = (xe < in->w + pad ? xe : in->w + pad) - xs;
      float div = (float)(ph * pw);
      for (int l = 0; l < NPT__BLK; l++)
        ov[l] = acc[l] / div;
    }
  }
  /* A window entirely in the padding would leave -inf in a max (PyTorch refuses pad > k/2). */
  zero_tail(o, out->w, out->c, blk);
}

int npt__cpu_op_run(const npt__cpu_ctx *ctx, npt__cpu_plan *p, const npt__cpu_step *s) {
  job j = {.p = p, .n = s->node, .out = &p->t[s->out]};
  for (int k = 0; k < s->node->n_inputs; k++) {
    int t = s->node->inputs[k];
    /* Ops other than convolutions read the network input's blocked copy. */
    j.in[k] = &p->t[t == p->g->input ? p->n_tensors - 1 : t];
  }
  long items = (long)p->batch * j.out->cb * j.out->h;
  switch (s->node->op) {
  case NPT_OP_ADD:
    npt__cpu_parallel(ctx, items, add_item, &j);
    return 0;
  case NPT_OP_CONCAT:
    npt__cpu_parallel(ctx, items, concat_item, &j);
    return 0;
  case NPT_OP_UPSAMPLE:
    npt__cpu_parallel(ctx, items, upsample_item, &j);
    return 0;
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    npt__cpu_parallel(ctx, items, pool_item, &j);
    return 0;
  default:
    return npt_error_set(NPT_EINTERNAL, "cpu backend: node %s is not an elementwise op",
                         s->node->name);
  }
}

static void to_blocked_item(void *arg, long i) {
  const job *j = arg;
  int cb = NPT__CPU_BLOCKS(j->c), b, blk, y;
  item_pos(i, cb, j->h, &b, &blk, &y);
  float *o = j->dst + ((((size_t)b * cb + blk) * j->h + y) * j->w) * NPT__BLK;
  for (int l = 0; l < NPT__BLK; l++) {
    int c = blk * NPT__BLK + l;
    if (c >= j->c) {
      for (int x = 0; x < j->w; x++)
        o[(size_t)x * NPT__BLK + l] = 0.0f;
      continue;
    }
    const float *s = j->src + (((size_t)b * j->c + c) * j->h + y) * j->w;
    for (int x = 0; x < j->w; x++)
      o[(size_t)x * NPT__BLK + l] = s[x];
  }
}

static void to_plain_item(void *arg, long i) {
  const job *j = arg;
  int cb = NPT__CPU_BLOCKS(j->c), b, blk, y;
  item_pos(i, cb, j->h, &b, &blk, &y);
  const float *s = j->src + ((((size_t)b * cb + blk) * j->h + y) * j->w) * NPT__BLK;
  for (int l = 0; l < NPT__BLK && blk * NPT__BLK + l < j->c; l++) {
    float *o = j->dst + (((size_t)b * j->c + blk * NPT__BLK + l) * j->h + y) * j->w;
    for (int x = 0; x < j->w; x++)
      o[x] = s[(size_t)x * NPT__BLK + l];
  }
}

void npt__cpu_plain_to_blocked(const npt__cpu_ctx *ctx, const float *src, float *dst, int batch,
                               int c, int h, int w) {
  job j = {.src = src, .dst = dst, .c = c, .h = h, .w = w};
  npt__cpu_parallel(ctx, (long)batch * NPT__CPU_BLOCKS(c) * h, to_blocked_item, &j);
}

void npt__cpu_blocked_to_plain(const npt__cpu_ctx *ctx, const float *src, float *dst, int batch,
                               int c, int h, int w) {
  job j = {.src = src, .dst = dst, .c = c, .h = h, .w = w};
  npt__cpu_parallel(ctx, (long)batch * NPT__CPU_BLOCKS(c) * h, to_plain_item, &j);
}
