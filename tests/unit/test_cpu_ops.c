/* The CPU backend: every op against a naive direct reference (double accumulation, plain NCHW)
 * on random inputs, with poisoned buffers so that an element no op wrote fails; results
 * bit-identical for any thread count and with or without storage reuse; the tiny model's every
 * tensor against PyTorch's (tests/data/tiny_golden.h5); and the engine on that model. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "nn/cpu/cpu_debug.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/engine.h"
#include "npt_test.h"

/* ---- naive references on plain [b][c][h][w] ---- */

static float ref_act(double v, npt_act a) {
  switch (a) {
  case NPT_ACT_RELU:
    return (float)(v > 0 ? v : 0);
  case NPT_ACT_SILU:
    return (float)(v / (1 + exp(-v)));
  case NPT_ACT_SIGMOID:
    return (float)(1 / (1 + exp(-v)));
  default:
    return (float)v;
  }
}

typedef struct shape {
  int c, h, w;
} shape;

static void ref_conv(const npt_node *n, const float *x, shape is, float *y, shape os, int B) {
  int cig = n->c_in / n->groups, cog = n->c_out / n->groups;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < n->c_out; o++)
      for (int oy = 0; oy < os.h; oy++)
        for (int ox = 0; ox < os.w; ox++) {
          double acc = n->bias[o];
          int g = o / cog;
          for (int ci = 0; ci < cig; ci++)
            for (int ky = 0; ky < n->kh; ky++)
              for (int kx = 0; kx < n->kw; kx++) {
                int iy = oy * n->stride - n->pad + ky * n->dilation;
                int ix = ox * n->stride - n->pad + kx * n->dilation;
                if (iy < 0 || iy >= is.h || ix < 0 || ix >= is.w)
                  continue;
                int c = g * cig + ci;
                acc += (double)n->weight[((o * cig + ci) * n->kh + ky) * n->kw + kx] *
                       x[(((size_t)b * is.c + c) * is.h + iy) * is.w + ix];
              }
          y[(((size_t)b * os.c + o) * os.h + oy) * os.w + ox] = ref_act(acc, n->act);
        }
}

/* Transposed conv as a scatter: input (iy, ix) adds w[ci][o][ky][kx] at
 * (iy * stride - pad + ky * dilation, ...). */
static void ref_convt(const npt_node *n, const float *x, shape is, float *y, shape os, int B) {
  size_t plane = (size_t)os.h * os.w;
  double *acc = malloc(sizeof *acc * plane);
  for (int b = 0; b < B; b++)
    for (int o = 0; o < n->c_out; o++) {
      for (size_t i = 0; i < plane; i++)
        acc[i] = n->bias[o];
      for (int ci = 0; ci < n->c_in; ci++)
        for (int iy = 0; iy < is.h; iy++)
          for (int ix = 0; ix < is.w; ix++)
            for (int ky = 0; ky < n->kh; ky++)
              for (int kx = 0; kx < n->kw; kx++) {
                int oy = iy * n->stride - n->pad + ky * n->dilation;
                int ox = ix * n->stride - n->pad + kx * n->dilation;
                if (oy < 0 || oy >= os.h || ox < 0 || ox >= os.w)
                  continue;
                acc[(size_t)oy * os.w + ox] +=
                    (double)n->weight[((ci * n->c_out + o) * n->kh + ky) * n->kw + kx] *
                    x[(((size_t)b * is.c + ci) * is.h + iy) * is.w + ix];
              }
      for (size_t i = 0; i < plane; i++)
        y[((size_t)b * os.c + o) * plane + i] = ref_act(acc[i], n->act);
    }
  free(acc);
}

/* Bilinear, align_corners = false: source (d + 0.5) / s - 0.5 clamped at 0, as PyTorch. */
static void ref_bilinear_index(int d, int s, int n, int *i0, int *i1, double *l1) {
  double src = (d + 0.5) / s - 0.5;
  if (src < 0)
    src = 0;
  *i0 = (int)src;
  *i1 = *i0 < n - 1 ? *i0 + 1 : *i0;
  *l1 = src - *i0;
}

static void ref_node(const npt_node *n, float *const *x, const shape *is, float *y, shape os,
                     int B) {
  size_t plane = (size_t)os.h * os.w;
  switch (n->op) {
  case NPT_OP_CONV2D:
    ref_conv(n, x[0], is[0], y, os, B);
    return;
  case NPT_OP_CONVT2D:
    ref_convt(n, x[0], is[0], y, os, B);
    return;
  case NPT_OP_ADD:
    for (size_t i = 0; i < (size_t)B * os.c * plane; i++) {
      double s = 0;
      for (int k = 0; k < n->n_inputs; k++)
        s += x[k][i];
      y[i] = ref_act(s, n->act);
    }
    return;
  case NPT_OP_CONCAT:
    for (int b = 0; b < B; b++) {
      float *o = y + (size_t)b * os.c * plane;
      for (int k = 0; k < n->n_inputs; k++) {
        size_t len = (size_t)is[k].c * plane;
        memcpy(o, x[k] + b * len, sizeof *o * len);
        o += len;
      }
    }
    return;
  default:
    break;
  }
  for (int b = 0; b < B; b++)
    for (int c = 0; c < os.c; c++) {
      const float *in = x[0] + ((size_t)b * is[0].c + c) * is[0].h * is[0].w;
      float *out = y + ((size_t)b * os.c + c) * plane;
      for (int oy = 0; oy < os.h; oy++)
        for (int ox = 0; ox < os.w; ox++) {
          double v = 0;
          if (n->op == NPT_OP_UPSAMPLE && !n->bilinear) {
            v = in[(size_t)(oy / n->scale) * is[0].w + ox / n->scale];
          } else if (n->op == NPT_OP_UPSAMPLE) {
            int y0, y1, x0, x1;
            double ly, lx;
            ref_bilinear_index(oy, n->scale, is[0].h, &y0, &y1, &ly);
            ref_bilinear_index(ox, n->scale, is[0].w, &x0, &x1, &lx);
            const float *r0 = in + (size_t)y0 * is[0].w, *r1 = in + (size_t)y1 * is[0].w;
            v = (1 - ly) * ((1 - lx) * r0[x0] + lx * r0[x1]) +
                ly * ((1 - lx) * r1[x0] + lx * r1[x1]);
          } else {
            int k = n->pool_k, ys = oy * n->pool_stride - n->pool_pad,
                xs = ox * n->pool_stride - n->pool_pad;
            v = n->op == NPT_OP_MAXPOOL ? -INFINITY : 0;
            for (int yy = ys; yy < ys + k; yy++)
              for (int xx = xs; xx < xs + k; xx++) {
                if (yy < 0 || yy >= is[0].h || xx < 0 || xx >= is[0].w)
                  continue; /* max: padding is -inf; avg: padding counts as 0 */
                double t = in[(size_t)yy * is[0].w + xx];
                v = n->op == NPT_OP_MAXPOOL ? (t > v ? t : v) : v + t;
              }
            if (n->op == NPT_OP_AVGPOOL)
              v /= (double)k * k;
          }
          out[(size_t)oy * os.w + ox] = (float)v;
        }
    }
}

/* ---- running graphs ---- */

typedef struct run {
  void *ctx, *plan;
  npt_head_outputs out;
} run;

static void run_graph(run *r, const npt_graph *g, int B, int h, int w, int threads, int keep_all,
                      const float *input) {
  npt_backend_params bp = {threads, 0, 0};
  assert_int_equal(npt_backend_cpu.init(&r->ctx, &bp), 0);
  int rc = npt__cpu_plan_debug(r->ctx, g, B, h, w, keep_all, 1, &r->plan);
  if (rc)
    fail_msg("plan: %s", npt_error_msg(rc));
  rc = npt_backend_cpu.run(r->ctx, r->plan, input, &r->out);
  if (rc)
    fail_msg("run: %s", npt_error_msg(rc));
}

static void run_free(run *r) {
  npt_backend_cpu.plan_free(r->ctx, r->plan);
  npt_backend_cpu.free(r->ctx);
}

static float *random_input(int B, int h, int w, uint64_t seed) {
  npt_rng rng;
  npt_rng_seed(&rng, seed, 7);
  float *x = malloc(sizeof *x * (size_t)B * h * w);
  for (size_t i = 0; i < (size_t)B * h * w; i++)
    x[i] = (float)npt_rng_normal(&rng);
  return x;
}

static shape shape_of(const npt_graph *g, int t, int h, int w) {
  const npt_tensor_info *x = &g->tensors[t];
  return (shape){x->channels, h / x->stride, w / x->stride};
}

static size_t numel(shape s, int B) {
  return (size_t)B * s.c * s.h * s.w;
}

/* Fails unless every element of `got` is within tol_rel x max|ref| of `ref` (NaN fails). */
static void expect_close(const char *what, const float *got, const float *ref, size_t n,
                         double tol_rel) {
  double mx = 0, worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++)
    mx = fmax(mx, fabs(ref[i]));
  double tol = tol_rel * fmax(mx, 1e-6);
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]);
    if (!(d <= worst)) /* NaN is the worst */
      worst = isnan(d) ? INFINITY : d, at = i;
  }
  if (!(worst <= tol))
    fail_msg("%s: element %zu = %.9g, reference %.9g (max |ref| %.4g, tolerance %.3g)", what, at,
             (double)got[at], (double)ref[at], mx, tol);
}

/* Runs g with every tensor kept and compares each node's output with the reference computed
 * from the backend's own inputs of that node, so each op is checked alone.  A tensor the plan
 * folded away (a conv output summed into its add) is recomputed by the reference. */
static void check_every_node(const npt_graph *g, int B, int h, int w, int threads, double tol) {
  float *input = random_input(B, h, w, 11);
  run r;
  run_graph(&r, g, B, h, w, threads, 1, input);
  int bad = npt__cpu_plan_bad_padding(r.plan);
  if (bad >= 0)
    fail_msg("tensor %s: lanes past its %d channels are not zero", g->tensors[bad].name,
             g->tensors[bad].channels);
  float **val = calloc((size_t)g->n_tensors, sizeof *val);
  for (int t = 0; t < g->n_tensors; t++) {
    val[t] = malloc(sizeof(float) * numel(shape_of(g, t, h, w), B));
    if (npt__cpu_plan_tensor(r.ctx, r.plan, t, val[t]) < 0)
      free(val[t]), val[t] = NULL;
  }
  for (int k = 0; k < g->n_nodes; k++) {
    const npt_node *n = &g->nodes[k];
    float *x[NPT_MAX_INPUTS];
    shape is[NPT_MAX_INPUTS];
    for (int i = 0; i < n->n_inputs; i++)
      x[i] = val[n->inputs[i]], is[i] = shape_of(g, n->inputs[i], h, w);
    shape os = shape_of(g, n->output, h, w);
    float *ref = malloc(sizeof *ref * numel(os, B));
    ref_node(n, x, is, ref, os, B);
    if (val[n->output])
      expect_close(n->name, val[n->output], ref, numel(os, B), tol);
    else
      val[n->output] = ref, ref = NULL; /* folded away: later nodes read the reference */
    free(ref);
  }
  for (int t = 0; t < g->n_tensors; t++)
    free(val[t]);
  free(val), free(input);
  run_free(&r);
}

/* ---- op tests ---- */

static const double TOL = 2e-5;

static void test_conv_variants(void **state) {
  (void)state;
  npt__gb b;
  assert_int_equal(npt__gb_init(&b, 1), 0);
  int pre = npt__gb_conv(&b, "pre", 0, 5, 3, 1, 1, 1, 1, NPT_ACT_SILU);
  int c11 = npt__gb_conv(&b, "k3_5to11_relu", pre, 11, 3, 1, 1, 1, 1, NPT_ACT_RELU);
  int s2 = npt__gb_conv(&b, "k3_s2_silu", c11, 16, 3, 2, 1, 1, 1, NPT_ACT_SILU);
  int p1 = npt__gb_conv(&b, "k1_sigmoid", s2, 8, 1, 1, 0, 1, 1, NPT_ACT_SIGMOID);
  int dil = npt__gb_conv(&b, "k5_dil2", p1, 8, 5, 1, 4, 2, 1, NPT_ACT_NONE);
  int dw = npt__gb_conv(&b, "depthwise", s2, 16, 3, 1, 1, 1, 16, NPT_ACT_RELU);
  int g12 = npt__gb_conv(&b, "k1_to12", dw, 12, 1, 1, 0, 1, 1, NPT_ACT_NONE);
  int grp = npt__gb_conv(&b, "grouped2", g12, 6, 3, 1, 1, 1, 2, NPT_ACT_RELU);
  int s21 = npt__gb_conv(&b, "k1_s2", grp, 9, 1, 2, 0, 1, 1, NPT_ACT_NONE);
  int k7 = npt__gb_conv(&b, "k7_s2_1ch", 0, 3, 7, 2, 3, 1, 1, NPT_ACT_RELU);
  /* Winograd candidates: 16 + 8 output channels, 11 (a partial block), odd sizes below. */
  int w24 = npt__gb_conv(&b, "k3_8to24_silu", p1, 24, 3, 1, 1, 1, 1, NPT_ACT_SILU);
  int w11 = npt__gb_conv(&b, "k3_24to11_sigmoid", w24, 11, 3, 1, 1, 1, 1, NPT_ACT_SIGMOID);
  int s8 = npt__gb_conv(&b, "to_stride8", w11, 16, 3, 4, 1, 1, 1, NPT_ACT_RELU);
  int w16 = npt__gb_conv(&b, "k3_at_stride8", s8, 16, 3, 1, 1, 1, 1, NPT_ACT_NONE);
  assert_true(dil >= 0 && s21 >= 0 && k7 >= 0 && w16 >= 0);
  npt_graph *g = npt__gb_finish(&b, s21, s21, s21, -1);
  for (int wino = 4; wino >= 0; wino -= 2) { /* Winograd F(4x4), F(2x2), then oneDNN only */
    npt__cpu_set_winograd(wino);
    check_every_node(g, 2, 16, 24, 2, TOL);
    check_every_node(g, 1, 40, 56, 1, TOL); /* 5x7 at stride 8: odd tile edges */
  }
  npt__cpu_set_winograd(4);
  npt_graph_free(g);
}

static void test_convt_variants(void **state) {
  (void)state;
  npt__gb b;
  assert_int_equal(npt__gb_init(&b, 2), 0);
  int x = npt__gb_conv(&b, "down", 0, 6, 3, 4, 1, 1, 1, NPT_ACT_RELU);
  int a = npt__gb_convt(&b, "k4_s2_p1", x, 5, 4, 2, 1, 0, NPT_ACT_RELU);
  int c = npt__gb_convt(&b, "k3_s2_p1_op1", x, 9, 3, 2, 1, 1, NPT_ACT_NONE);
  int d = npt__gb_convt(&b, "k2_s2", c, 8, 2, 2, 0, 0, NPT_ACT_SILU);
  assert_true(a >= 0 && d >= 0);
  npt_graph *g = npt__gb_finish(&b, d, d, d, -1);
  check_every_node(g, 2, 16, 24, 2, TOL);
  npt_graph_free(g);
}

static void test_elementwise_ops(void **state) {
  (void)state;
  npt__gb b;
  assert_int_equal(npt__gb_init(&b, 3), 0);
  int mpi = npt__gb_pool(&b, "maxpool_on_input", NPT_OP_MAXPOOL, 0, 3, 1, 1);
  int a5 = npt__gb_conv(&b, "a5", mpi, 5, 3, 2, 1, 1, 1, NPT_ACT_NONE);
  int b5 = npt__gb_conv(&b, "b5", 0, 5, 3, 2, 1, 1, 1, NPT_ACT_NONE);
  int c5 = npt__gb_conv(&b, "c5", 0, 5, 1, 2, 0, 1, 1, NPT_ACT_NONE);
  int in3[3] = {a5, b5, c5};
  int add3 = npt__gb_add(&b, "add3_relu", 3, in3, NPT_ACT_RELU);
  int add2 = npt__gb_add(&b, "add2_sigmoid", 2, in3, NPT_ACT_SIGMOID); /* lanes 5-7 stay 0 */
  int c11 = npt__gb_conv(&b, "c11", add3, 11, 3, 1, 1, 1, 1, NPT_ACT_NONE);
  int c8 = npt__gb_conv(&b, "c8", add3, 8, 3, 1, 1, 1, 1, NPT_ACT_NONE);
  int c16 = npt__gb_conv(&b, "c16", add3, 16, 3, 1, 1, 1, 1, NPT_ACT_NONE);
  int gin[4] = {add2, c11, c8, add3};
  int gather = npt__gb_concat(&b, "concat_5_11_8_5", 4, gin);
  int fin[2] = {c8, c16};
  int fast = npt__gb_concat(&b, "concat_8_16", 2, fin);
  int mp = npt__gb_pool(&b, "maxpool_k3_s2_p1", NPT_OP_MAXPOOL, gather, 3, 2, 1);
  int mp2 = npt__gb_pool(&b, "maxpool_k2_s2", NPT_OP_MAXPOOL, fast, 2, 2, 0);
  int ap = npt__gb_pool(&b, "avgpool_k3_s1_p1", NPT_OP_AVGPOOL, gather, 3, 1, 1);
  int ap2 = npt__gb_pool(&b, "avgpool_k2_s2", NPT_OP_AVGPOOL, ap, 2, 2, 0);
  int un = npt__gb_upsample(&b, "nearest_x2", mp, 2, 0);
  int un4 = npt__gb_upsample(&b, "nearest_x4", mp2, 4, 0);
  int ub = npt__gb_upsample(&b, "bilinear_x2", ap2, 2, 1);
  int ub4 = npt__gb_upsample(&b, "bilinear_x4", mp2, 4, 1);
  int ub3 = npt__gb_upsample(&b, "bilinear_x2_of_5", a5, 2, 1);
  assert_true(un >= 0 && un4 >= 0 && ub >= 0 && ub4 >= 0 && ub3 >= 0);
  npt_graph *g = npt__gb_finish(&b, ub, ub, ub, un4);
  check_every_node(g, 2, 16, 24, 2, TOL);
  check_every_node(g, 1, 8, 8, 1, TOL);
  npt_graph_free(g);
}

/* A conv without activation followed by an add becomes one oneDNN conv with a sum post-op,
 * in place where the skip tensor is dead: same numbers as the unfused reference. */
static void test_fused_add(void **state) {
  (void)state;
  npt__gb b;
  assert_int_equal(npt__gb_init(&b, 4), 0);
  int d = npt__gb_conv(&b, "d", 0, 12, 3, 2, 1, 1, 1, NPT_ACT_RELU);
  int c = npt__gb_conv(&b, "c", d, 12, 3, 1, 1, 1, 1, NPT_ACT_NONE);
  int pair[2] = {c, d};
  int r = npt__gb_add(&b, "res", 2, pair, NPT_ACT_RELU);
  int e = npt__gb_conv(&b, "e", r, 12, 3, 1, 1, 1, 1, NPT_ACT_NONE);
  int pair2[2] = {r, e}; /* skip first, and r is still read after: not in place */
  int r2 = npt__gb_add(&b, "res2", 2, pair2, NPT_ACT_SILU);
  int pair3[2] = {r2, r};
  int r3 = npt__gb_add(&b, "res3", 2, pair3, NPT_ACT_NONE);
  assert_true(r3 >= 0);
  npt_graph *g = npt__gb_finish(&b, r3, r3, r3, -1);
  check_every_node(g, 2, 16, 16, 2, TOL);
  float *input = random_input(2, 16, 16, 5);
  run kept, reused;
  run_graph(&kept, g, 2, 16, 16, 2, 1, input);
  run_graph(&reused, g, 2, 16, 16, 2, 0, input);
  assert_int_equal(npt__cpu_plan_fused_adds(reused.plan), 2);
  assert_memory_equal(kept.out.heatmap, reused.out.heatmap, sizeof(float) * 2 * 12 * 8 * 8);
  run_free(&kept), run_free(&reused);
  free(input);
  npt_graph_free(g);
}

/* Same bits whatever the thread count, and whether storage is reused or not, for each way of
 * running 3x3 convolutions. */
static void test_thread_count_invariance(void **state) {
  (void)state;
  npt_graph *g;
  assert_int_equal(npt__cpu_bench_graph(&g, 42), 0);
  int B = 2, h = 128, w = 160;
  float *input = random_input(B, h, w, 9);
  const npt_tensor_info *em = &g->tensors[g->heads.embed], *hm = &g->tensors[g->heads.heatmap];
  size_t n_em = (size_t)B * em->channels * (h / em->stride) * (w / em->stride);
  size_t n_hm = (size_t)B * hm->channels * (h / hm->stride) * (w / hm->stride);
  for (int wino = 4; wino >= 0; wino -= 2) {
    npt__cpu_set_winograd(wino);
    run ref;
    run_graph(&ref, g, B, h, w, 1, 0, input);
    for (int threads = 2; threads <= 4; threads++)
      for (int keep = 0; keep < 2; keep++) {
        run r;
        run_graph(&r, g, B, h, w, threads, keep, input);
        assert_memory_equal(r.out.embed, ref.out.embed, sizeof(float) * n_em);
        assert_memory_equal(r.out.heatmap, ref.out.heatmap, sizeof(float) * n_hm);
        assert_memory_equal(r.out.size, ref.out.size, sizeof(float) * n_hm);
        assert_memory_equal(r.out.offset, ref.out.offset, sizeof(float) * n_hm);
        run_free(&r);
      }
    run_free(&ref);
  }
  npt__cpu_set_winograd(4);
  free(input);
  npt_graph_free(g);
}

static void test_bench_network_vs_reference(void **state) {
  (void)state;
  npt_graph *g;
  assert_int_equal(npt__cpu_bench_graph(&g, 43), 0);
  for (int wino = 4; wino >= 0; wino -= 2) {
    npt__cpu_set_winograd(wino);
    check_every_node(g, 1, 32, 48, 2, TOL);
  }
  npt__cpu_set_winograd(4);
  npt_graph_free(g);
}

static void test_plan_errors(void **state) {
  (void)state;
  npt_graph *g;
  assert_int_equal(npt__cpu_bench_graph(&g, 44), 0);
  void *ctx, *plan = NULL;
  npt_backend_params bp = {1, 0, 0};
  assert_int_equal(npt_backend_cpu.init(&ctx, &bp), 0);
  assert_int_equal(npt_backend_cpu.plan(ctx, g, 1, 40, 48, &plan), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "multiple of 16");
  assert_null(plan);
  g->nodes[3].c_in = 7; /* weights no longer fit the input's channels */
  assert_int_equal(npt_backend_cpu.plan(ctx, g, 1, 32, 32, &plan), NPT_EFORMAT);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EFORMAT), g->nodes[3].name);
  npt_backend_cpu.free(ctx);
  npt_graph_free(g);
  assert_ptr_equal(npt_backend_find("cpu"), &npt_backend_cpu);
  assert_null(npt_backend_find("no-such-backend"));
}

/* ---- the tiny model against PyTorch ---- */

static char *data_path(const char *name) {
  const char *src = getenv("NPT_SOURCE_DIR");
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/tests/data/%s", src ? src : ".", name);
  return buf;
}

static float *read_h5(hid_t f, const char *name, hsize_t dims[4]) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0)
    return NULL;
  hid_t s = H5Dget_space(d);
  assert_int_equal(H5Sget_simple_extent_ndims(s), 4);
  H5Sget_simple_extent_dims(s, dims, NULL);
  float *x = malloc(sizeof *x * dims[0] * dims[1] * dims[2] * dims[3]);
  assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
  H5Sclose(s), H5Dclose(d);
  return x;
}

static void test_tiny_model_vs_pytorch(void **state) {
  (void)state;
  char model[4096];
  snprintf(model, sizeof model, "%s", data_path("tiny_model.h5"));
  hid_t f = H5Fopen(data_path("tiny_golden.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    skip();
  npt_graph *g;
  int rc = npt_graph_load(&g, model);
  if (rc)
    fail_msg("%s", npt_error_msg(rc));
  int n_inputs = 0;
  hid_t a = H5Aopen(f, "n_inputs", H5P_DEFAULT);
  assert_true(a >= 0);
  H5Aread(a, H5T_NATIVE_INT, &n_inputs);
  H5Aclose(a);
  assert_true(n_inputs > 0);
  for (int i = 0; i < n_inputs; i++) {
    char name[256];
    hsize_t dims[4];
    snprintf(name, sizeof name, "inputs/%d", i);
    float *x = read_h5(f, name, dims);
    assert_non_null(x);
    int B = (int)dims[0], h = (int)dims[2], w = (int)dims[3];
    for (int threads = 1; threads <= 2; threads++) {
      run r;
      run_graph(&r, g, B, h, w, threads, 1, x);
      int compared = 0;
      for (int t = 0; t < g->n_tensors; t++) {
        hsize_t td[4];
        snprintf(name, sizeof name, "outputs/%d/%s", i, g->tensors[t].name);
        float *want = H5Lexists(f, name, H5P_DEFAULT) > 0 ? read_h5(f, name, td) : NULL;
        if (!want)
          continue;
        size_t n = td[0] * td[1] * td[2] * td[3];
        assert_int_equal(n, numel(shape_of(g, t, h, w), B));
        float *got = malloc(sizeof *got * n);
        assert_int_equal(npt__cpu_plan_tensor(r.ctx, r.plan, t, got), 0);
        char what[300];
        snprintf(what, sizeof what, "input %d, tensor %s", i, g->tensors[t].name);
        expect_close(what, got, want, n, 1e-4);
        compared++;
        free(got), free(want);
      }
      assert_int_equal(compared, g->n_nodes);
      run_free(&r);
    }
    free(x);
  }
  H5Fclose(f);
  npt_graph_free(g);
}

/* ---- the engine ---- */

static void test_engine_detects_on_any_frame_size(void **state) {
  (void)state;
  char model[4096];
  snprintf(model, sizeof model, "%s", data_path("tiny_model.h5"));
  npt_engine *e;
  npt_backend_params bp = {2, 0, 0};
  assert_int_equal(npt_engine_open(&e, "no-such.h5", "cpu", &bp) < 0, 1);
  assert_int_equal(npt_engine_open(&e, model, "nope", &bp), NPT_EUNSUPPORTED);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EUNSUPPORTED), "nope");
  int rc = npt_engine_open(&e, model, "cpu", &bp);
  if (rc)
    fail_msg("%s", npt_error_msg(rc));
  const npt_graph *g = npt_engine_graph(e);
  int n = 6, h = 37, w = 50;
  uint8_t *f8 = malloc((size_t)n * h * w);
  uint16_t *f16 = malloc(sizeof *f16 * (size_t)n * h * w);
  npt_rng rng;
  npt_rng_seed(&rng, 3, 0);
  for (size_t i = 0; i < (size_t)n * h * w; i++)
    f8[i] = (uint8_t)npt_rng_int(&rng, 0, 255), f16[i] = (uint16_t)(f8[i] * 257);
  npt_decode_params p = {0.0f, 5, 3, 0.0, 0}; /* every peak passes: top-K saturates */
  npt_dets d8, d16, d1;
  npt_dets_init(&d8, g->heads.embed_dim), npt_dets_init(&d16, g->heads.embed_dim);
  npt_dets_init(&d1, g->heads.embed_dim);
  int sat = -1;
  assert_int_equal(npt_engine_detect(e, f8, 8, n, h, w, 100, &p, &d8, &sat), 0);
  assert_int_equal(sat, n);
  assert_int_equal(d8.n, 5 * n);
  assert_int_equal(d8.det[0].frame, 100);
  assert_int_equal(d8.det[d8.n - 1].frame, 100 + n - 1);
  /* Frames one at a time (other plans) give the same detections as in batches. */
  for (int i = 0; i < n; i++)
    assert_int_equal(
        npt_engine_detect(e, f8 + (size_t)i * h * w, 8, 1, h, w, 100 + i, &p, &d1, NULL), 0);
  assert_int_equal(d1.n, d8.n);
  for (int64_t i = 0; i < d8.n; i++) {
    assert_int_equal(d1.det[i].frame, d8.det[i].frame);
    NPT_ASSERT_NEAR(d1.det[i].x, d8.det[i].x, 1e-4);
    NPT_ASSERT_NEAR(d1.det[i].score, d8.det[i].score, 1e-5);
  }
  assert_int_equal(npt_engine_detect(e, f16, 16, n, h, w, 0, NULL, &d16, &sat), 0);
  assert_int_equal(npt_engine_detect(e, f8, 12, n, h, w, 0, NULL, &d16, &sat), NPT_EINVAL);
  npt_dets_free(&d8), npt_dets_free(&d16), npt_dets_free(&d1);
  free(f8), free(f16);
  npt_engine_close(e);
}

/* The fp16 emulation (NPTRACK_CPU_FP16, cpu_fp16.c): rounding to nearest even fp16, and a plan
 * that stores the tensors the cudnn backend stores in fp16 as fp16 values while the heatmap,
 * size and offset heads stay fp32, close to the fp32 plan but not equal to it. */
static void test_fp16_emulation(void **state) {
  (void)state;
  const float e11 = ldexpf(1.0f, -11), e25 = ldexpf(1.0f, -25);
  assert_true(npt__round_half(1.0f + e11) == 1.0f);               /* tie: to even */
  assert_true(npt__round_half(1.0f + 3 * e11) == 1.0f + 4 * e11); /* tie: to even */
  assert_true(npt__round_half(-(1.0f + 1.5f * e11)) == -(1.0f + 2 * e11));
  assert_true(npt__round_half(0.1f) == 0.0999755859375f);
  assert_true(npt__round_half(65519.0f) == 65504.0f);
  assert_true(isinf(npt__round_half(65520.0f)) && npt__round_half(-7e4f) < 0);
  assert_true(npt__round_half(e25) == 0.0f); /* subnormal tie */
  assert_true(npt__round_half(3 * e25) == ldexpf(1.0f, -23));
  assert_true(isnan(npt__round_half(NAN)));

  npt_graph *g;
  assert_int_equal(npt__cpu_bench_graph(&g, 44), 0);
  int B = 1, h = 64, w = 96;
  float *input = random_input(B, h, w, 11);
  const npt_tensor_info *em = &g->tensors[g->heads.embed], *hm = &g->tensors[g->heads.heatmap];
  size_t n_em = (size_t)B * em->channels * (h / em->stride) * (w / em->stride);
  size_t n_hm = (size_t)B * hm->channels * (h / hm->stride) * (w / hm->stride);
  run f32, f16;
  run_graph(&f32, g, B, h, w, 2, 0, input);
  assert_int_equal(setenv("NPTRACK_CPU_FP16", "on", 1), 0);
  run_graph(&f16, g, B, h, w, 2, 0, input);
  assert_int_equal(unsetenv("NPTRACK_CPU_FP16"), 0);
  size_t em_half = 0, hm_half = 0, differ = 0;
  double em_max = 0, em_err = 0;
  for (size_t i = 0; i < n_em; i++) {
    em_half += npt__round_half(f16.out.embed[i]) == f16.out.embed[i];
    em_max = fmax(em_max, fabs(f32.out.embed[i]));
    em_err = fmax(em_err, fabs(f32.out.embed[i] - f16.out.embed[i]));
    differ += f32.out.embed[i] != f16.out.embed[i];
  }
  for (size_t i = 0; i < n_hm; i++)
    hm_half += npt__round_half(f16.out.heatmap[i]) == f16.out.heatmap[i];
  assert_int_equal(em_half, n_em); /* a stored tensor: fp16 values */
  assert_true(hm_half < n_hm / 2); /* an fp32 head: not rounded */
  assert_true(differ > n_em / 2);
  if (!(em_err <= 1e-2 * em_max))
    fail_msg("fp16 emulation off by %g of max %g", em_err, em_max);
  run_free(&f32), run_free(&f16);
  free(input);
  npt_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_variants),
      cmocka_unit_test(test_convt_variants),
      cmocka_unit_test(test_elementwise_ops),
      cmocka_unit_test(test_fused_add),
      cmocka_unit_test(test_thread_count_invariance),
      cmocka_unit_test(test_bench_network_vs_reference),
      cmocka_unit_test(test_plan_errors),
      cmocka_unit_test(test_tiny_model_vs_pytorch),
      cmocka_unit_test(test_engine_detects_on_any_frame_size),
      cmocka_unit_test(test_fp16_emulation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
