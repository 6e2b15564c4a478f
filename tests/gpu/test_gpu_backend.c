/* The cudnn backend against the CPU backend (the numerical reference), on a GPU; exits 77
 * (skipped) without one or in a build without CUDA.
 *
 * 1. Every op: a network built in C that uses each op and each fusion the GPU plan makes (thin
 *    direct convolutions, cuDNN convolutions with strides, dilation, groups, odd channel counts,
 *    a residual add and a lateral conv fused with their adds, a bilinear upsample fused into an
 *    add, a standalone nearest upsample, concat, max and average pooling, sigmoid/ReLU/SiLU
 *    heads, an embedding head kept at half resolution) on fresh random inputs: every tensor the
 *    GPU stores and every head, against the CPU's, within 1e-2 of the reference tensor's largest
 *    magnitude (fp16 storage, fp32 accumulation).  GPU buffers are poisoned with NaN before each
 *    run, so an element no step writes fails.
 * 2. The shipped model, whole forward pass, on random inputs and on frames of a synthetic video
 *    (argv[1]): each head within 1e-2 of its magnitude.
 * 3. Decoding on the GPU equals the CPU decoder on the same heads, to the bit (boxes, scores,
 *    classes, embeddings): several batches through two slots, the last one partial, pageable and
 *    pinned frames, 8- and 16-bit; and a network whose heatmap is one flat plateau, which the GPU
 *    hands to the CPU decoder.
 * 4. Errors: a device index out of range is refused naming detect.device.
 * Head convolutions merged into one step (cudnn_plan.c): a network with two head branches on one
 * trunk and the shipped model (hm1 + box1), merged (NPT_CUDNN_MERGE_HEADS=1) and not, each
 * checked to have merged as expected.  cuDNN plans with static shapes (the default) and with
 * dynamic shapes and kernel caches (NPT_CUDNN_KERNEL_CACHE=1), and a plan made after another in
 * the same context, which may run the kernels cached for the first.  Both switches are off by
 * default until this test has run on a GPU.
 * The tail kernel (kernels/tail.cu; version 1 with NPT_CUDNN_TAIL=1, version 2 on tensor cores
 * with NPT_CUDNN_TAIL=2; off by default), each version: a network of its shape
 * and channel counts whose frames leave partial tiles, in the CUDA graph and step by step, with
 * a persistent grid small enough that each block runs several tiles, and with merged heads on
 * too; GPU decoding of its heads; and the shipped model with it, on random inputs and on the
 * video's frames, heads and decoding.
 *
 * usage: test_gpu_backend VIDEO.h5   (NPT_SOURCE_DIR: the source tree, for models/nptrack.h5) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/rng.h"
#include "io/frames.h"
#include "nn/backend.h"
#include "nn/cpu/cpu_debug.h"
#include "nn/cuda/cudnn_debug.h"
#include "nn/decode.h"
#include "nn/engine.h"
#include "nn/gpu_info.h"
#include "nn/graph.h"
#include "nn/preprocess.h"

#ifdef NPT_HAVE_CUDNN_BACKEND
#include <cuda_runtime.h>
#endif

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                  \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

#define CHECK_RC(expr)                                                                             \
  do {                                                                                             \
    int rc__ = (expr);                                                                             \
    if (rc__ < 0) {                                                                                \
      printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, npt_error_msg(rc__));              \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* got vs ref (n floats): the largest difference within rel x the largest |ref|; a non-finite
 * got where ref is finite fails. */
static void compare(const char *what, const float *got, const float *ref, size_t n, double rel) {
  double mag = 0, diff = 0;
  size_t bad = 0, worst = 0;
  for (size_t i = 0; i < n; i++) {
    if (isfinite(ref[i]) && fabs(ref[i]) > mag)
      mag = fabs(ref[i]);
    if (!isfinite(got[i]) && isfinite(ref[i])) {
      bad++;
      continue;
    }
    double d = fabs((double)got[i] - ref[i]);
    if (d > diff)
      diff = d, worst = i;
  }
  double tol = rel * (mag > 1e-3 ? mag : 1e-3);
  printf("  %-14s max|ref| %10.4g  max|gpu-cpu| %10.4g  (%.2e of magnitude)%s\n", what, mag, diff,
         diff / (mag > 1e-3 ? mag : 1e-3), bad ? "  NON-FINITE" : "");
  CHECK(bad == 0, "%s: %zu elements not finite (unwritten?)", what, bad);
  CHECK(diff <= tol, "%s: element %zu: gpu %.9g, cpu %.9g, differ by %.3g > %.3g", what, worst,
        got[worst], ref[worst], diff, tol);
}

/* Inputs that fp16 holds exactly (multiples of 1/256 in [-4, 4)), so both backends see one input.
 */
static void random_input(float *x, size_t n, uint64_t seed) {
  npt_rng r;
  npt_rng_seed(&r, seed, 1);
  for (size_t i = 0; i < n; i++)
    x[i] = (float)((int)npt_rng_range(&r, -1024, 1024)) / 256.0f;
}

static const npt_backend_i *gpu(void) {
  return npt__cudnn_backend();
}

/* Runs g on both backends; compares the heads, and with all_tensors every tensor both store.
 * expect_merged >= 0: the GPU plan must have that many merged head steps; expect_tail >= 0: that
 * many tail-kernel steps (NPT_CUDNN_TAIL=1).  replan: the GPU plan
 * compared is the context's second, made after one for a batch of batch + 1 frames (so that it
 * may run kernels from the context's kernel caches, compiled for the other shape). */
static void compare_graph_ex(const char *label, const npt_graph *g, int batch, int h, int w,
                             const float *input, int all_tensors, int expect_merged, int replan,
                             int expect_tail) {
  printf("%s: %d x %dx%d\n", label, batch, w, h);
  npt_backend_params bp = {2, 0, 0};
  void *cctx, *cplan, *gctx, *gplan;
  CHECK_RC(npt_backend_cpu.init(&cctx, &bp));
  CHECK_RC(npt__cpu_plan_debug(cctx, g, batch, h, w, all_tensors, 1, &cplan));
  CHECK_RC(gpu()->init(&gctx, &bp));
  npt__cudnn_plan_info info;
  if (replan) {
    CHECK_RC(gpu()->plan(gctx, g, batch + 1, h, w, &gplan));
    npt__cudnn_plan_info_get(gplan, &info);
    printf("  first plan (%d frames): made in %.2f s (cuDNN-fused plans %.2f s)\n", batch + 1,
           info.plan_s, info.fused_plan_s);
    gpu()->plan_free(gctx, gplan);
  }
  npt__cudnn_set_poison(1);
  CHECK_RC(gpu()->plan(gctx, g, batch, h, w, &gplan));
  npt__cudnn_set_poison(0);
  npt__cudnn_plan_info_get(gplan, &info);
  printf("  plan: %d steps (%d cuDNN convs, %d of them fused by cuDNN (%d with dynamic shapes), "
         "%d merged head steps, %d direct, %d eltwise, %d adds fused), CUDA graph %s, %.1f MiB, "
         "made in %.2f s (cuDNN-fused plans %.2f s)\n",
         info.steps, info.cudnn_convs, info.fused_convs, info.dynamic_convs, info.merged_steps,
         info.direct_convs, info.eltwise, info.fused_adds, info.graphs ? "yes" : "no",
         info.device_bytes / 1048576.0, info.plan_s, info.fused_plan_s);
  printf("  tail-kernel steps: %d\n", info.tail_steps);
  if (expect_tail >= 0)
    CHECK(info.tail_steps == expect_tail, "%s: %d tail-kernel steps, %d expected", label,
          info.tail_steps, expect_tail);
  if (expect_merged >= 0)
    CHECK(info.merged_steps == expect_merged, "%s: %d merged head steps, %d expected", label,
          info.merged_steps, expect_merged);
  npt_head_outputs co, go;
  CHECK_RC(npt_backend_cpu.run(cctx, cplan, input, &co));
  for (int rep = 0; rep < 2; rep++) /* twice: the second run reads what the first left */
    CHECK_RC(gpu()->run(gctx, gplan, input, &go));
  CHECK(go.batch == co.batch && go.h_out == co.h_out && go.w_out == co.w_out, "head shapes differ");
  const char *names[4] = {"heatmap", "size", "offset", "embed"};
  const float *gp[4] = {go.heatmap, go.size, go.offset, go.embed};
  const float *cp[4] = {co.heatmap, co.size, co.offset, co.embed};
  const int ht[4] = {g->heads.heatmap, g->heads.size, g->heads.offset, g->heads.embed};
  for (int k = 0; k < 4; k++) {
    if (ht[k] < 0)
      continue;
    size_t n = (size_t)co.batch * g->tensors[ht[k]].channels * co.h_out * co.w_out;
    char what[64];
    snprintf(what, sizeof what, "head %s", names[k]);
    compare(what, gp[k], cp[k], n, 1e-2);
  }
  for (int t = 1; all_tensors && t < g->n_tensors; t++) {
    int s = g->tensors[t].stride;
    size_t n = (size_t)batch * g->tensors[t].channels * (h / s) * (w / s);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (npt__cudnn_plan_tensor(gctx, gplan, t, a) == 0 &&
        npt__cpu_plan_tensor(cctx, cplan, t, b) == 0)
      compare(g->tensors[t].name, a, b, n, 1e-2);
    npt_error_clear();
    free(a), free(b);
  }
  gpu()->plan_free(gctx, gplan);
  gpu()->free(gctx);
  npt_backend_cpu.plan_free(cctx, cplan);
  npt_backend_cpu.free(cctx);
}

static void compare_graph(const char *label, const npt_graph *g, int batch, int h, int w,
                          const float *input, int all_tensors) {
  compare_graph_ex(label, g, batch, h, w, input, all_tensors, -1, 0, -1);
}

/* The builder's graph with its heads, sizes of a few to tens of pixels (so that boxes are like
 * the shipped model's), frame normalisation and decoding threshold `thr`; NULL when a node
 * failed. */
static npt_graph *finish_net(npt__gb *b, int hm, int sz, int of, int emb, float thr) {
  if (hm < 0 || sz < 0 || of < 0 || emb < 0) {
    npt_graph_free(b->g);
    return NULL;
  }
  npt_graph *g = npt__gb_finish(b, hm, sz, of, emb);
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, "size") == 0)
      g->nodes[i].bias[0] += 8.0f, g->nodes[i].bias[1] += 8.0f;
  g->norm8.mode = g->norm16.mode = NPT_NORM_FRAME;
  g->decode.score_threshold = thr;
  return g;
}

/* Two head branches on one trunk: a stride-2 stem of `stem_c` channels, f (3x3 -> 24, SiLU) read
 * by two 3x3 branches of ha_c and hb_c channels (ReLU, so that a wrong bias or activation
 * shows), a 3-class heatmap on the first and size and offset on the second; the embedding reads
 * f, or the stem (embed_from_stem). */
static npt_graph *branches_graph(uint64_t seed, int stem_c, int ha_c, int hb_c,
                                 int embed_from_stem) {
  npt__gb b;
  if (npt__gb_init(&b, seed) < 0)
    return NULL;
  const npt_act N = NPT_ACT_NONE, R = NPT_ACT_RELU, S = NPT_ACT_SILU, G = NPT_ACT_SIGMOID;
  int stem = npt__gb_conv(&b, "stem", 0, stem_c, 3, 2, 1, 1, 1, S);
  int f = npt__gb_conv(&b, "f", stem, 24, 3, 1, 1, 1, 1, S);
  int ha = npt__gb_conv(&b, "ha", f, ha_c, 3, 1, 1, 1, 1, R);
  int hm = npt__gb_conv(&b, "heatmap", ha, 3, 1, 1, 0, 1, 1, G);
  int hb = npt__gb_conv(&b, "hb", f, hb_c, 3, 1, 1, 1, 1, R);
  int sz = npt__gb_conv(&b, "size", hb, 2, 1, 1, 0, 1, 1, N);
  int of = npt__gb_conv(&b, "offset", hb, 2, 1, 1, 0, 1, 1, N);
  int emb = npt__gb_conv(&b, "embed", embed_from_stem ? stem : f, 8, 1, 1, 0, 1, 1, N);
  /* 0.7: 155 detections in the 5 frames of the heads test, on the CPU */
  return finish_net(&b, hm, sz, of, emb, 0.7f);
}

/* As the shipped model's hm1 and box1 (3x3 convs on the same input, each read only by its 1x1
 * heads), with odd widths (12 and 20: a merged trunk of 32) and a 3-class heatmap, so that the
 * merged step's heads epilogue reads each head's channels at an offset. */
static npt_graph *heads_graph(uint64_t seed) {
  return branches_graph(seed, 16, 12, 20, 0);
}

/* The tail kernel's shape (kernels/tail.cu, NPT_CUDNN_TAIL=1) at its compiled channel counts:
 * a 32-channel stem, f 32 -> 24, two 24 -> 24 branches; the embedding reads the stem, not f. */
static npt_graph *tail_graph(uint64_t seed) {
  return branches_graph(seed, 32, 24, 24, 1);
}

/* The op-coverage network (see the file's comment). */
static npt_graph *ops_graph(uint64_t seed, int flat_heatmap) {
  npt__gb b;
  if (npt__gb_init(&b, seed) < 0)
    return NULL;
  const npt_act N = NPT_ACT_NONE, R = NPT_ACT_RELU, S = NPT_ACT_SILU, G = NPT_ACT_SIGMOID;
  int stem = npt__gb_conv(&b, "stem", 0, 16, 3, 2, 1, 1, 1, S);
  int c1 = npt__gb_conv(&b, "c1", stem, 16, 3, 1, 1, 1, 1, R);
  int c2 = npt__gb_conv(&b, "c2", c1, 16, 3, 1, 1, 1, 1, N);
  int res_in[2] = {stem, c2};
  int res = npt__gb_add(&b, "res", 2, res_in, S);
  int d = npt__gb_conv(&b, "down", res, 32, 3, 2, 1, 1, 1, S);
  int dil = npt__gb_conv(&b, "dil", d, 32, 3, 1, 2, 2, 1, R);
  int grp = npt__gb_conv(&b, "grp", dil, 32, 3, 1, 1, 1, 2, N);
  int dw = npt__gb_conv(&b, "dw", grp, 32, 3, 1, 1, 1, 32, G);
  int odd = npt__gb_conv(&b, "odd", dw, 12, 5, 1, 2, 1, 1, S);
  int mp = npt__gb_pool(&b, "mp", NPT_OP_MAXPOOL, odd, 3, 1, 1);
  int ap = npt__gb_pool(&b, "ap", NPT_OP_AVGPOOL, mp, 3, 2, 1);
  int upb = npt__gb_upsample(&b, "upb", ap, 2, 1);
  int lat = npt__gb_conv(&b, "lat", odd, 12, 1, 1, 0, 1, 1, N);
  int a2_in[2] = {upb, lat};
  int a2 = npt__gb_add(&b, "a2", 2, a2_in, S);
  int cat_in[2] = {a2, odd};
  int cat = npt__gb_concat(&b, "cat", 2, cat_in);
  int upn = npt__gb_upsample(&b, "upn", cat, 2, 0);
  int f = npt__gb_conv(&b, "f", upn, 16, 3, 1, 1, 1, 1, S);
  int hm = npt__gb_conv(&b, "heatmap", f, 2, 1, 1, 0, 1, 1, G);
  int sz = npt__gb_conv(&b, "size", f, 2, 1, 1, 0, 1, 1, N);
  int of = npt__gb_conv(&b, "offset", f, 2, 3, 1, 1, 1, 1, N);
  int e1 = npt__gb_conv(&b, "e1", cat, 16, 1, 1, 0, 1, 1, N);
  int emb = npt__gb_upsample(&b, "embed", e1, 2, 0);
  npt_graph *g = finish_net(&b, hm, sz, of, emb, 0.6f);
  for (int i = 0; g && flat_heatmap && i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, "heatmap") == 0) {
      memset(g->nodes[i].weight, 0, sizeof(float) * (size_t)g->nodes[i].c_in * 2);
      g->nodes[i].bias[0] = 3.0f, g->nodes[i].bias[1] = -3.0f;
    }
  return g;
}

static int same_dets(const npt_dets *a, const npt_dets *b, const char *label) {
  if (a->n != b->n) {
    CHECK(0, "%s: %lld detections on the GPU, %lld from the CPU decoder", label, (long long)a->n,
          (long long)b->n);
    return 0;
  }
  for (int64_t i = 0; i < a->n; i++) {
    const npt_detection *x = &a->det[i], *y = &b->det[i];
    if (x->frame != y->frame || x->x != y->x || x->y != y->y || x->w != y->w || x->h != y->h ||
        x->score != y->score || x->cls != y->cls) {
      CHECK(0,
            "%s: detection %lld differs: frame %lld (%.9g %.9g %.9g %.9g) %.9g c%d vs frame "
            "%lld (%.9g %.9g %.9g %.9g) %.9g c%d",
            label, (long long)i, (long long)x->frame, x->x, x->y, x->w, x->h, x->score, x->cls,
            (long long)y->frame, y->x, y->y, y->w, y->h, y->score, y->cls);
      return 0;
    }
  }
  if (a->embed_dim > 0 &&
      memcmp(a->embed, b->embed, sizeof(float) * (size_t)a->n * a->embed_dim) != 0) {
    CHECK(0, "%s: embeddings differ", label);
    return 0;
  }
  return 1;
}

/* GPU decoding (the backend's detect, batches of `batch` frames) against the CPU decoder on the
 * heads of the same plan (run() on the CPU-preprocessed frames, batch by batch). */
static void compare_decode(const char *label, const npt_graph *g, const void *frames, int bits,
                           int n, int h, int w, int batch, int pinned) {
  int m = g->multiple, hp = (h + m - 1) / m * m, wp = (w + m - 1) / m * m;
  npt_backend_params bp = {1, 0, 0};
  void *gctx, *gplan;
  CHECK_RC(gpu()->init(&gctx, &bp));
  CHECK_RC(gpu()->plan(gctx, g, batch, hp, wp, &gplan));
  npt_norm norm = bits == 8 ? g->norm8 : g->norm16;
  norm.bit_depth = bits;
  npt_decode_params dp = {g->decode.score_threshold, g->decode.top_k, g->decode.peak_kernel,
                          g->decode.suppress_ratio, 0};
  int dim = g->heads.embed >= 0 ? g->heads.embed_dim : 0;
  npt_dets a, b;
  npt_dets_init(&a, dim);
  npt_dets_init(&b, dim);
  size_t fb = (size_t)h * w * (bits / 8);
  const void *src = frames;
#ifdef NPT_HAVE_CUDNN_BACKEND
  void *pin = NULL;
  if (pinned) {
    if (cudaHostAlloc(&pin, fb * n, cudaHostAllocDefault) != cudaSuccess)
      CHECK(0, "cudaHostAlloc");
    memcpy(pin, frames, fb * n);
    src = pin;
  }
#endif
  int sat_gpu = 0, sat_cpu = 0;
  CHECK_RC(gpu()->detect(gctx, gplan, src, &norm, n, h, w, 100, &dp, &a, &sat_gpu));
  float *x = calloc((size_t)batch * hp * wp, sizeof *x);
  for (int k = 0; k < n; k += batch) {
    int nb = n - k < batch ? n - k : batch;
    CHECK_RC(npt_preprocess_cpu((const char *)frames + fb * k, nb, h, w, hp, wp, &norm, x));
    npt_head_outputs o;
    CHECK_RC(gpu()->run(gctx, gplan, x, &o));
    for (int f = 0; f < nb; f++) {
      int s = 0;
      CHECK_RC(npt_decode_frame(g, &o, f, h, w, 100 + k + f, &dp, &b, &s));
      sat_cpu += s;
    }
  }
  printf("%s: %d frames of %dx%d, %d-bit, batches of %d%s: %lld detections on the GPU, %lld "
         "from the CPU decoder\n",
         label, n, w, h, bits, batch, pinned ? ", pinned" : "", (long long)a.n, (long long)b.n);
  CHECK(b.n > 0, "%s: no detections: the comparison learns nothing", label);
  if (same_dets(&a, &b, label))
    printf("  identical\n");
  CHECK(sat_gpu == sat_cpu, "%s: saturated frames %d vs %d", label, sat_gpu, sat_cpu);
  free(x);
  npt_dets_free(&a);
  npt_dets_free(&b);
#ifdef NPT_HAVE_CUDNN_BACKEND
  if (pin)
    cudaFreeHost(pin);
#endif
  gpu()->plan_free(gctx, gplan);
  gpu()->free(gctx);
}

/* n frames of smooth blobs on noise, h x w, 8- or 16-bit. */
static void *blob_frames(int n, int h, int w, int bits, uint64_t seed) {
  npt_rng r;
  npt_rng_seed(&r, seed, 2);
  size_t px = (size_t)n * h * w;
  void *buf = malloc(px * (bits / 8));
  for (int f = 0; f < n; f++) {
    double cx[24], cy[24], rad[24];
    for (int k = 0; k < 24; k++)
      cx[k] = npt_rng_range(&r, 0, w), cy[k] = npt_rng_range(&r, 0, h),
      rad[k] = npt_rng_range(&r, 2, 12);
    for (int y = 0; y < h; y++)
      for (int xx = 0; xx < w; xx++) {
        double v = 0.3 + 0.1 * npt_rng_range(&r, 0, 1);
        for (int k = 0; k < 24; k++) {
          double d2 = ((xx - cx[k]) * (xx - cx[k]) + (y - cy[k]) * (y - cy[k])) / (rad[k] * rad[k]);
          if (d2 < 4)
            v += 0.5 * exp(-d2);
        }
        v = v > 1 ? 1 : v;
        size_t i = ((size_t)f * h + y) * w + xx;
        if (bits == 8)
          ((uint8_t *)buf)[i] = (uint8_t)(v * 255);
        else
          ((uint16_t *)buf)[i] = (uint16_t)(v * 40000);
      }
  }
  return buf;
}

int main(int argc, char **argv) {
  if (!gpu()) {
    printf("SKIP: this build has no cudnn backend\n");
    return 77;
  }
  if (npt_gpu_count() == 0) {
    char d[512];
    npt_gpu_describe(d, sizeof d);
    printf("SKIP: no GPU (%s)\n", d);
    return 77;
  }
  char d[512];
  npt_gpu_describe(d, sizeof d);
  printf("%s\n", d);

  /* 1. Every op. */
  npt_graph *g = ops_graph(11, 0);
  CHECK(g != NULL, "ops graph");
  for (int rep = 0; rep < 2; rep++) {
    int batch = rep ? 3 : 2, h = rep ? 96 : 64, w = rep ? 64 : 128;
    float *x = malloc(sizeof *x * batch * h * w);
    random_input(x, (size_t)batch * h * w, 100 + rep);
    compare_graph("ops network, random input", g, batch, h, w, x, 1);
    setenv("NPT_CUDNN_FUSE", "0", 1); /* the separate-epilogue path, which stays the fallback */
    compare_graph("ops network, random input, no cuDNN fusion", g, batch, h, w, x, 1);
    unsetenv("NPT_CUDNN_FUSE");
    free(x);
  }

  /* 1b. Merged head convolutions (and, for comparison, the same network unmerged). */
  /* Its own variable: the ops network in g is decoded in section 3. */
  npt_graph *hg = heads_graph(13);
  CHECK(hg != NULL, "heads graph");
  {
    int batch = 3, h = 96, w = 160;
    float *x = malloc(sizeof *x * batch * h * w);
    random_input(x, (size_t)batch * h * w, 300);
    setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
    compare_graph_ex("heads network, random input", hg, batch, h, w, x, 1, 1, 0, -1);
    unsetenv("NPT_CUDNN_MERGE_HEADS");
    compare_graph_ex("heads network, random input, heads not merged", hg, batch, h, w, x, 1, 0, 0,
                     -1);
    setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
    setenv("NPT_CUDNN_FUSE", "0", 1);
    compare_graph_ex("heads network, random input, no cuDNN fusion", hg, batch, h, w, x, 1, 1, 0,
                     -1);
    unsetenv("NPT_CUDNN_FUSE");
    free(x);
  }
  {
    void *fr = blob_frames(5, 120, 200, 8, 7);
    compare_decode("decode, heads network (merged heads)", hg, fr, 8, 5, 120, 200, 2, 0);
    unsetenv("NPT_CUDNN_MERGE_HEADS");
    free(fr);
  }
  npt_graph_free(hg);

  /* 1c. The tail kernel (NPT_CUDNN_TAIL=1 and 2): frames whose stride-2 size leaves partial tiles
   * (35 x 51 cells: tiles of 16 x 16), step by step and in the CUDA graph, with the persistent
   * grid cut to 7 blocks (NPT_CUDNN_TAIL_BLOCKS) so that each block runs several tiles. */
  npt_graph *tg = tail_graph(17);
  CHECK(tg != NULL, "tail graph");
  {
    int batch = 3, h = 70, w = 102;
    float *x = malloc(sizeof *x * batch * h * w);
    random_input(x, (size_t)batch * h * w, 400);
    compare_graph_ex("tail network, random input, no tail kernel (default)", tg, batch, h, w, x, 1,
                     0, 0, 0);
    /* Version 1 (CUDA cores) and version 2 (tensor cores). */
    for (int v = 1; v <= 2; v++) {
      char label[160];
      setenv("NPT_CUDNN_TAIL", v == 1 ? "1" : "2", 1);
      snprintf(label, sizeof label, "tail network, random input, tail kernel %d", v);
      compare_graph_ex(label, tg, batch, h, w, x, 1, 0, 0, 1);
      setenv("NPT_CUDNN_TAIL_BLOCKS", "7", 1);
      snprintf(label, sizeof label, "tail network, random input, tail kernel %d, 7 blocks", v);
      compare_graph_ex(label, tg, batch, h, w, x, 1, 0, 0, 1);
      setenv("NPT_CUDNN_GRAPHS", "0", 1);
      snprintf(label, sizeof label,
               "tail network, random input, tail kernel %d, 7 blocks, no CUDA graph", v);
      compare_graph_ex(label, tg, batch, h, w, x, 1, 0, 0, 1);
      unsetenv("NPT_CUDNN_GRAPHS");
      unsetenv("NPT_CUDNN_TAIL_BLOCKS");
      setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
      snprintf(label, sizeof label, "tail network, random input, tail kernel %d, merged heads", v);
      compare_graph_ex(label, tg, batch, h, w, x, 1, 0, 0, 1);
      unsetenv("NPT_CUDNN_MERGE_HEADS");
      void *fr = blob_frames(5, 120, 200, 8, 9);
      snprintf(label, sizeof label, "decode, tail network (tail kernel %d)", v);
      compare_decode(label, tg, fr, 8, 5, 120, 200, 2, 0);
      free(fr);
    }
    unsetenv("NPT_CUDNN_TAIL");
    free(x);
  }
  npt_graph_free(tg);

  /* 3 (on the ops network). GPU decoding, several batches through both slots. */
  void *fr8 = blob_frames(7, 120, 200, 8, 5), *fr16 = blob_frames(7, 120, 200, 16, 6);
  compare_decode("decode, ops network", g, fr8, 8, 7, 120, 200, 3, 0);
  compare_decode("decode, ops network", g, fr16, 16, 7, 120, 200, 2, 1);
  npt_graph_free(g);
  g = ops_graph(11, 1);
  compare_decode("decode, flat heatmap (plateau: CPU decoder)", g, fr8, 8, 4, 120, 200, 4, 0);
  npt_graph_free(g);
  free(fr8), free(fr16);

  /* 2. The shipped model. */
  const char *src = getenv("NPT_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/models/nptrack.h5", src ? src : ".");
  CHECK_RC(npt_graph_load(&g, path));
  {
    int batch = 2, h = 256, w = 192;
    float *x = malloc(sizeof *x * batch * h * w);
    random_input(x, (size_t)batch * h * w, 7);
    /* The default: hm1 and box1 apart, static shapes.  Then the opt-in merged heads
     * (NPT_CUDNN_MERGE_HEADS=1) and dynamic-shape plans with kernel caches
     * (NPT_CUDNN_KERNEL_CACHE=1), off by default until they have run on a GPU. */
    compare_graph_ex("shipped model, random input", g, batch, h, w, x, 1, 0, 0, 0);
    setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
    compare_graph_ex("shipped model, random input, heads merged", g, batch, h, w, x, 1, 1, 0, -1);
    setenv("NPT_CUDNN_FUSE", "0", 1);
    compare_graph_ex("shipped model, random input, heads merged, no cuDNN fusion", g, batch, h, w,
                     x, 1, 1, 0, -1);
    unsetenv("NPT_CUDNN_FUSE");
    setenv("NPT_CUDNN_KERNEL_CACHE", "1", 1);
    compare_graph_ex("shipped model, random input, heads merged, dynamic shapes (kernel cache)", g,
                     batch, h, w, x, 1, 1, 0, -1);
    /* A second plan of one context, for another batch size: it may run kernels that cuDNN's
     * kernel caches kept from the first. */
    compare_graph_ex("shipped model, random input, second plan of a context", g, batch, h, w, x, 1,
                     1, 1, -1);
    unsetenv("NPT_CUDNN_KERNEL_CACHE");
    unsetenv("NPT_CUDNN_MERGE_HEADS");
    /* The tail kernel (f2, hm1 + box1 and the heads in one step), each version with cuDNN
     * fusion (as it would run), then at another batch and frame size without it (its plans
     * compile no kernels: ~7 s less each; the tail step is the same). */
    setenv("NPT_CUDNN_TAIL", "1", 1);
    compare_graph_ex("shipped model, random input, tail kernel 1", g, batch, h, w, x, 1, 0, 0, 1);
    setenv("NPT_CUDNN_TAIL", "2", 1);
    compare_graph_ex("shipped model, random input, tail kernel 2", g, batch, h, w, x, 1, 0, 0, 1);
    free(x);
    int b3 = 3, h3 = 160, w3 = 224;
    x = malloc(sizeof *x * b3 * h3 * w3);
    random_input(x, (size_t)b3 * h3 * w3, 8);
    setenv("NPT_CUDNN_FUSE", "0", 1);
    setenv("NPT_CUDNN_TAIL", "1", 1);
    compare_graph_ex("shipped model, random input, tail kernel 1, no cuDNN fusion", g, b3, h3, w3,
                     x, 1, 0, 0, 1);
    setenv("NPT_CUDNN_TAIL", "2", 1);
    compare_graph_ex("shipped model, random input, tail kernel 2, no cuDNN fusion", g, b3, h3, w3,
                     x, 1, 0, 0, 1);
    unsetenv("NPT_CUDNN_FUSE");
    unsetenv("NPT_CUDNN_TAIL");
    free(x);
  }
  if (argc > 1) {
    npt_frames *fr;
    CHECK_RC(npt_frames_open(&fr, argv[1]));
    const npt_frames_info *in = npt_frames_get_info(fr);
    int n = in->n_frames < 6 ? (int)in->n_frames : 6, h = in->height, w = in->width;
    int bits = in->bit_depth, m = g->multiple, hp = (h + m - 1) / m * m, wp = (w + m - 1) / m * m;
    void *raw = malloc((size_t)n * h * w * (bits / 8));
    CHECK_RC(npt_frames_read(fr, 0, n, raw));
    npt_frames_close(fr);
    npt_norm norm = bits == 8 ? g->norm8 : g->norm16;
    norm.bit_depth = bits;
    float *x = malloc(sizeof *x * n * hp * wp);
    CHECK_RC(npt_preprocess_cpu(raw, n, h, w, hp, wp, &norm, x));
    compare_graph("shipped model, video frames", g, n, hp, wp, x, 0);
    compare_decode("decode, shipped model, video frames", g, raw, bits, n, h, w, 4, 1);
    /* The tail kernel on real frames: version 2 with cuDNN fusion, version 1 without; decoding
     * (the GPU's against the CPU decoder on the same heads) without (fusion does not matter
     * there, and those plans compile no kernels). */
    setenv("NPT_CUDNN_TAIL", "2", 1);
    compare_graph_ex("shipped model, video frames, tail kernel 2", g, n, hp, wp, x, 0, -1, 0, 1);
    setenv("NPT_CUDNN_FUSE", "0", 1);
    compare_decode("decode, shipped model, video frames, tail kernel 2, no cuDNN fusion", g, raw,
                   bits, n, h, w, 4, 1);
    setenv("NPT_CUDNN_TAIL", "1", 1);
    compare_graph_ex("shipped model, video frames, tail kernel 1, no cuDNN fusion", g, n, hp, wp, x,
                     0, -1, 0, 1);
    compare_decode("decode, shipped model, video frames, tail kernel 1, no cuDNN fusion", g, raw,
                   bits, n, h, w, 4, 1);
    unsetenv("NPT_CUDNN_FUSE");
    unsetenv("NPT_CUDNN_TAIL");
    free(x);
    free(raw);
  }
  npt_graph_free(g);

  /* 4. Errors. */
  {
    int count = npt_gpu_count();
    npt_backend_params bp = {1, count, 0};
    void *ctx = NULL;
    int rc = gpu()->init(&ctx, &bp);
    CHECK(rc == NPT_ECONFIG && strstr(npt_error_msg(rc), "detect.device"),
          "device %d of %d: rc %d, %s", count, count, rc, npt_error_msg(rc));
    printf("device out of range: %s\n", npt_error_msg(rc));
  }

  printf(failures ? "%d FAILURES\n" : "all passed\n", failures);
  return failures ? 1 : 0;
}
