/* fp16 emulation of the CPU backend (cpu_internal.h, NPTRACK_CPU_FP16): a debug switch that
 * rounds what the cudnn backend stores in fp16, so that the CPU can say what fp16 storage costs
 * the detections without a GPU.
 *
 * What the cudnn backend keeps in fp16 (src/nn/cuda/cudnn_internal.h): the network input, every
 * stored tensor, and the weights of the convolutions cuDNN runs.  It keeps in fp32: the heatmap,
 * size and offset heads, the weights of the convolutions its direct kernel runs and of the 1x1
 * heads computed in a convolution's epilogue, and everything inside one kernel (accumulation,
 * bias, activation, an interpolated addend).  The emulation follows that with two
 * simplifications: a convolution's pre-epilogue output (fp16 on the GPU before the bias and the
 * activation) is not rounded separately, the step's output is; and an UPSAMPLE output read by
 * an ADD (never stored on the GPU) is not rounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cpu/cpu_internal.h"

float npt__round_half(float x) {
  float a = fabsf(x);
  if (isnan(x))
    return x;
  if (!(a < 65520.0f)) /* 65520 and above round to infinity */
    return copysignf(INFINITY, x);
  if (a < 6.103515625e-05f) /* fp16 subnormals: a fixed step of 2^-24 */
    return nearbyintf(x * 16777216.0f) / 16777216.0f;
  int e;
  frexpf(a, &e);                    /* a in [2^(e-1), 2^e) */
  float ulp = ldexpf(1.0f, e - 11); /* 11 significant bits */
  return nearbyintf(x / ulp) * ulp; /* ties to even under the default rounding mode */
}

typedef struct round_job {
  float *x;
  size_t n, per;
} round_job;

static void round_item(void *arg, long i) {
  const round_job *j = arg;
  size_t a = (size_t)i * j->per, b = a + j->per < j->n ? a + j->per : j->n;
  for (size_t k = a; k < b; k++)
    j->x[k] = npt__round_half(j->x[k]);
}

void npt__cpu_fp16_round(const npt__cpu_ctx *ctx, float *x, size_t n) {
  round_job j = {x, n, 65536};
  npt__cpu_parallel(ctx, (long)((n + j.per - 1) / j.per), round_item, &j);
}

/* Mirrors direct_conv() and tail_conv() of src/nn/cuda/cudnn_plan.c: convolutions whose weights
 * the cudnn backend keeps in fp32 (its direct kernel, or a 1x1 head of at most 8 outputs in an
 * epilogue).  Keep the two in step. */
static int gpu_fp32_weights(const npt_node *n) {
  int co_t = n->c_out <= 8 ? 8 : n->c_out <= 16 ? 16 : n->c_out <= 32 ? 32 : 64;
  long weights = (long)co_t * n->kh * n->kw * n->c_in;
  int small_1x1 = n->kh == 1 && n->kw == 1 && (long)n->c_in * n->c_out <= 2048;
  int direct = n->groups == 1 && n->c_out <= 64 && weights <= 12288 &&
               (n->c_in <= 4 || n->c_out <= 8 || small_1x1);
  int head = n->kh == 1 && n->kw == 1 && n->stride == 1 && n->pad == 0 && n->groups == 1 &&
             n->c_out <= 8 && n->c_in <= 64;
  return n->op != NPT_OP_CONV2D || direct || head;
}

/* 1 when the comma-separated list `spec` holds "PREFIX:name". */
static int listed(const char *spec, const char *prefix, const char *name) {
  size_t lp = strlen(prefix), ln = strlen(name);
  for (const char *s = spec; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == lp + ln && strncmp(s, prefix, lp) == 0 && strncmp(s + lp, name, ln) == 0)
      return 1;
    s += len + (e != NULL);
  }
  return 0;
}

int npt__cpu_fp16_setup(npt__cpu_plan *p, const npt_graph *g) {
  for (int k = 0; k < g->n_nodes; k++)
    p->steps[k + 1].weight = g->nodes[k].weight;
  const char *spec = getenv("NPTRACK_CPU_FP16");
  if (!spec || !*spec || strcmp(spec, "0") == 0)
    return 0;
  p->fp16 = 1;
  p->round16 = calloc((size_t)p->n_tensors, 1);
  NPT_ALLOC_CHECK(p->round16);
  int *readers = calloc((size_t)g->n_tensors, sizeof(int));
  NPT_ALLOC_CHECK(readers);
  for (int k = 0; k < g->n_nodes; k++)
    for (int i = 0; i < g->nodes[k].n_inputs; i++)
      readers[g->nodes[k].inputs[i]]++;
  const int fp32_heads[3] = {g->heads.heatmap, g->heads.size, g->heads.offset};
  for (int t = 0; t < g->n_tensors; t++) {
    int r = !listed(spec, "fp32:", g->tensors[t].name);
    for (int h = 0; h < 3; h++)
      r &= !(t == fp32_heads[h] && readers[t] == 0);
    p->round16[t] = (unsigned char)r;
  }
  p->round16[p->n_tensors - 1] = p->round16[g->input]; /* the input's blocked copy */
  for (int k = 0; k < g->n_nodes; k++) {
    const npt_node *n = &g->nodes[k];
    if (n->op == NPT_OP_UPSAMPLE && readers[n->output] == 1)
      for (int j = 0; j < g->n_nodes; j++)
        for (int i = 0; i < g->nodes[j].n_inputs; i++)
          if (g->nodes[j].inputs[i] == n->output && g->nodes[j].op == NPT_OP_ADD)
            p->round16[n->output] = 0;
  }
  free(readers);
  for (int k = 0; k < g->n_nodes; k++) {
    const npt_node *n = &g->nodes[k];
    npt__cpu_step *s = &p->steps[k + 1];
    if ((n->op != NPT_OP_CONV2D && n->op != NPT_OP_CONVT2D) || gpu_fp32_weights(n) ||
        listed(spec, "w32:", n->name))
      continue;
    size_t count = (size_t)n->c_out * (n->c_in / n->groups) * n->kh * n->kw;
    s->weight16 = malloc(count * sizeof(float));
    NPT_ALLOC_CHECK(s->weight16);
    for (size_t i = 0; i < count; i++)
      s->weight16[i] = npt__round_half(n->weight[i]);
    s->weight = s->weight16;
  }
  return 0;
}
