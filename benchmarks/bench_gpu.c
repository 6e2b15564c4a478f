/* The cudnn backend on the shipped model (or any model file): frames/s versus frame size, batch
 * and bit depth, for the network alone and for the whole step (distinct frames in pinned host
 * memory to detections on the host: copy, preprocessing, network, peak decoding, copy back,
 * host finish), with FLOPs and modelled bytes per frame, and the GPU's measured ceilings (a
 * device-to-device copy, a cuBLAS fp16 GEMM) for the roofline table.  benchmarks/bench_gpu.sh
 * runs it beside PyTorch (bench_gpu_torch.py); docs/performance.md has the numbers.
 *
 * usage: bench_gpu --model M.h5 --video V.h5 [--sizes 512,1024,2048] [--batches 8,16,32,64]
 *                  [--bits 8,16] [--steps 8] [--csv out.csv] [--profile steps.csv]
 * Frames are tiles of the video's frames (shifted per frame, so every frame differs), at the
 * bit depth asked for; per-frame normalisation makes the scale of the grey levels irrelevant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "io/frames.h"
#include "nn/backend.h"
#include "nn/cuda/cudnn_debug.h"
#include "nn/decode.h"
#include "nn/gpu_info.h"
#include "nn/graph.h"

#ifdef NPT_HAVE_CUDNN_BACKEND
#include <cublas_v2.h>
#include <cuda_runtime.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int parse_list(const char *s, int *out, int max) {
  int n = 0;
  while (s && *s && n < max) {
    out[n++] = atoi(s);
    s = strchr(s, ',');
    if (s)
      s++;
  }
  return n;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One operation of the ceilings, launched on the default stream. */
typedef struct ceiling_op {
  int gemm; /* 0: device-to-device copy of `bytes` from a to b; 1: fp16 GEMM n x n x n */
  void *a, *b;
  size_t bytes;
  cublasHandle_t h;
  int n;
  uint16_t *x, *y, *z;
} ceiling_op;

static void ceiling_launch(const ceiling_op *op) {
  static const float one = 1.0f, zero = 0.0f;
  if (!op->gemm)
    cudaMemcpyAsync(op->b, op->a, op->bytes, cudaMemcpyDeviceToDevice, 0);
  else
    cublasGemmEx(op->h, CUBLAS_OP_N, CUBLAS_OP_N, op->n, op->n, op->n, &one, op->x, CUDA_R_16F,
                 op->n, op->y, CUDA_R_16F, op->n, &zero, op->z, CUDA_R_16F, op->n,
                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

/* The median of 10 timed launches of op (ms), after 2 warm-up launches. */
static double ceiling_median_ms(const ceiling_op *op, cudaEvent_t e0, cudaEvent_t e1) {
  double t[10];
  for (int i = 0; i < 12; i++) {
    float ms;
    cudaEventRecord(e0, 0);
    ceiling_launch(op);
    cudaEventRecord(e1, 0);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 2)
      t[i - 2] = ms;
  }
  qsort(t, 10, sizeof *t, cmp_d);
  return t[5];
}

/* The two ceilings, measured: copy bandwidth (bytes read + written) and fp16 GEMM rate. */
static void ceilings(double *gbs, double *tflops) {
  size_t bytes = (size_t)1 << 30;
  void *a, *b;
  cudaMalloc(&a, bytes);
  cudaMalloc(&b, bytes);
  cudaMemset(a, 1, bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  ceiling_op copy = {.gemm = 0, .a = a, .b = b, .bytes = bytes};
  *gbs = 2.0 * bytes / (ceiling_median_ms(&copy, e0, e1) * 1e-3) / 1e9;
  cudaFree(b);
  cudaFree(a);
  int n = 8192;
  uint16_t *x, *y, *z; /* fp16 bits */
  cudaMalloc((void **)&x, sizeof(uint16_t) * n * n);
  cudaMalloc((void **)&y, sizeof(uint16_t) * n * n);
  cudaMalloc((void **)&z, sizeof(uint16_t) * n * n);
  cudaMemset(x, 0x3c, sizeof(uint16_t) * n * n); /* 1.0-ish, not zeros */
  cudaMemset(y, 0x3a, sizeof(uint16_t) * n * n);
  cublasHandle_t h;
  cublasCreate(&h);
  ceiling_op gemm = {.gemm = 1, .h = h, .n = n, .x = x, .y = y, .z = z};
  *tflops = 2.0 * n * n * (double)n / (ceiling_median_ms(&gemm, e0, e1) * 1e-3) / 1e12;
  cublasDestroy(h);
  cudaFree(x), cudaFree(y), cudaFree(z);
  cudaEventDestroy(e0), cudaEventDestroy(e1);
}

/* n frames of s x s at `bits`, tiled from the video's frames (vf frames of vh x vw). */
static void *make_frames(const uint16_t *video, int vf, int vh, int vw, int n, int s, int bits) {
  size_t px = (size_t)s * s;
  void *buf = NULL;
  if (cudaHostAlloc(&buf, px * n * (bits / 8), cudaHostAllocDefault) != cudaSuccess)
    return NULL;
  for (int f = 0; f < n; f++) {
    const uint16_t *src = video + (size_t)(f % vf) * vh * vw;
    int dx = (f * 37) % vw, dy = (f * 53) % vh;
    for (int y = 0; y < s; y++)
      for (int x = 0; x < s; x++) {
        uint16_t v = src[(size_t)((y + dy) % vh) * vw + (x + dx) % vw];
        size_t i = (size_t)f * px + (size_t)y * s + x;
        if (bits == 8)
          ((uint8_t *)buf)[i] = (uint8_t)(v >> 8);
        else
          ((uint16_t *)buf)[i] = v;
      }
  }
  return buf;
}

int main(int argc, char **argv) {
  const char *model = NULL, *video = NULL, *csv = NULL, *profile = NULL;
  int sizes[8] = {512, 1024, 2048}, n_sizes = 3, batches[16] = {8, 16, 32, 64}, n_batches = 4;
  int bitsl[2] = {8, 16}, n_bits = 2, steps = 8;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--model"))
      model = v, i++;
    else if (!strcmp(a, "--video"))
      video = v, i++;
    else if (!strcmp(a, "--csv"))
      csv = v, i++;
    else if (!strcmp(a, "--profile")) /* per-step times at 1024^2, batch 32 */
      profile = v, i++;
    else if (!strcmp(a, "--sizes"))
      n_sizes = parse_list(v, sizes, 8), i++;
    else if (!strcmp(a, "--batches"))
      n_batches = parse_list(v, batches, 16), i++;
    else if (!strcmp(a, "--bits"))
      n_bits = parse_list(v, bitsl, 2), i++;
    else if (!strcmp(a, "--steps"))
      steps = atoi(v), i++;
    else {
      fprintf(stderr, "bench_gpu: unknown argument %s\n", a);
      return 2;
    }
  }
  if (!model || !video) {
    fprintf(stderr, "usage: bench_gpu --model M.h5 --video V.h5 [--sizes ..] [--batches ..] "
                    "[--bits 8,16] [--steps N] [--csv F]\n");
    return 2;
  }
  char d[512];
  npt_gpu_describe(d, sizeof d);
  printf("# %s\n", d);
  if (npt_gpu_count() == 0) {
    fprintf(stderr, "bench_gpu: no GPU\n");
    return 1;
  }
  npt_graph *g;
  int rc = npt_graph_load(&g, model);
  npt_frames *fr = NULL;
  if (rc == 0)
    rc = npt_frames_open(&fr, video);
  if (rc < 0) {
    fprintf(stderr, "bench_gpu: %s\n", npt_error_msg(rc));
    return 1;
  }
  const npt_frames_info *in = npt_frames_get_info(fr);
  int vf = in->n_frames < 16 ? (int)in->n_frames : 16, vh = in->height, vw = in->width;
  void *raw = malloc((size_t)vf * vh * vw * (in->bit_depth / 8));
  uint16_t *v16 = malloc(sizeof *v16 * vf * vh * vw);
  if (npt_frames_read(fr, 0, vf, raw) < 0) {
    fprintf(stderr, "bench_gpu: %s\n", npt_error_msg(-1));
    return 1;
  }
  for (size_t i = 0; i < (size_t)vf * vh * vw; i++)
    v16[i] = in->bit_depth == 8 ? (uint16_t)(((uint8_t *)raw)[i] * 257u) : ((uint16_t *)raw)[i];
  npt_frames_close(fr);
  free(raw);

  double gbs, tflops;
  ceilings(&gbs, &tflops);
  printf("# ceilings measured: copy %.0f GB/s (read + write), cuBLAS fp16 GEMM %.0f TFLOP/s\n", gbs,
         tflops);
  double macs = npt_graph_macs_per_pixel(g);
  FILE *out = csv ? fopen(csv, "w") : NULL;
  const char *hdr =
      "size,batch,bits,net_ms,net_fps,step_fps,dets_per_frame,gflop_per_frame,"
      "net_tflops,mb_per_frame,raw_mb_per_frame,net_gbs,graphs,device_mib,fused_convs,"
      "cudnn_convs,plan_s,merged_steps,dynamic_convs,tail_steps";
  printf("%s\n", hdr);
  if (out)
    fprintf(out, "# %s\n# ceilings: copy_gbs=%.1f gemm_tflops=%.1f\n%s\n", d, gbs, tflops, hdr);
  const npt_backend_i *be = npt__cudnn_backend();
  npt_backend_params bp = {1, 0, 0};
  void *ctx;
  if (be->init(&ctx, &bp) < 0) {
    fprintf(stderr, "bench_gpu: %s\n", npt_error_msg(-1));
    return 1;
  }
  npt_decode_params dp = {g->decode.score_threshold, g->decode.top_k, g->decode.peak_kernel,
                          g->decode.suppress_ratio, 0};
  int dim = g->heads.embed >= 0 ? g->heads.embed_dim : 0;
  for (int si = 0; si < n_sizes; si++)
    for (int bi = 0; bi < n_batches; bi++) {
      int s = sizes[si], batch = batches[bi];
      void *plan;
      double plan_t0 = now_s();
      if (be->plan(ctx, g, batch, s, s, &plan) < 0) {
        printf("# %d x %d^2: %s\n", batch, s, npt_error_msg(-1));
        npt_error_clear();
        continue;
      }
      double plan_s = now_s() - plan_t0;
      npt__cudnn_plan_info info;
      npt__cudnn_plan_info_get(plan, &info);
      if (profile && s == 1024 && batch == 32) {
        FILE *pf = fopen(profile, "w");
        if (pf) {
          fprintf(pf, "# per-step times, %d frames of %d^2, eager (no CUDA graph)\n", batch, s);
          if (npt__cudnn_profile(ctx, plan, 20, pf) < 0)
            fprintf(stderr, "bench_gpu: profile: %s\n", npt_error_msg(-1));
          fclose(pf);
        }
      }
      double net_ms = 0;
      if (npt__cudnn_time_forward(ctx, plan, 10, 40, &net_ms) < 0) {
        fprintf(stderr, "bench_gpu: %s\n", npt_error_msg(-1));
        return 1;
      }
      for (int k = 0; k < n_bits; k++) {
        int bits = bitsl[k], n = batch * steps;
        void *frames = make_frames(v16, vf, vh, vw, n, s, bits);
        if (!frames) {
          printf("# %d frames of %d^2: no pinned memory\n", n, s);
          continue;
        }
        npt_norm norm = bits == 8 ? g->norm8 : g->norm16;
        norm.bit_depth = bits;
        npt_dets dets;
        npt_dets_init(&dets, dim);
        double t[5];
        int sat = 0;
        for (int r = 0; r < 6; r++) {
          npt_dets_clear(&dets);
          double t0 = now_s();
          if (be->detect(ctx, plan, frames, &norm, n, s, s, 0, &dp, &dets, &sat) < 0) {
            fprintf(stderr, "bench_gpu: %s\n", npt_error_msg(-1));
            return 1;
          }
          if (r > 0)
            t[r - 1] = now_s() - t0;
        }
        qsort(t, 5, sizeof *t, cmp_d);
        double px = (double)s * s, gflop = 2.0 * macs * px / 1e9;
        double net_fps = batch / (net_ms * 1e-3), step_fps = n / t[2];
        char line[512];
        snprintf(
            line, sizeof line,
            "%d,%d,%d,%.3f,%.0f,%.0f,%.1f,%.2f,%.1f,%.1f,%.1f,%.0f,%d,%.0f,%d,%d,%.2f,%d,%d,%d", s,
            batch, bits, net_ms, net_fps, step_fps, (double)dets.n / n, gflop,
            gflop * net_fps / 1e3, info.bytes / batch / 1e6, info.raw_bytes / batch / 1e6,
            info.bytes / batch * net_fps / 1e9, info.graphs, info.device_bytes / 1048576.0,
            info.fused_convs, info.cudnn_convs, plan_s, info.merged_steps, info.dynamic_convs,
            info.tail_steps);
        printf("%s\n", line);
        fflush(stdout);
        if (out)
          fprintf(out, "%s\n", line), fflush(out);
        npt_dets_free(&dets);
        cudaFreeHost(frames);
      }
      be->plan_free(ctx, plan);
    }
  be->free(ctx);
  if (out)
    fclose(out);
  npt_graph_free(g);
  free(v16);
  return 0;
}

#else
int main(void) {
  fprintf(stderr, "bench_gpu: this build has no CUDA (configure with NPTRACK_CUDA=ON)\n");
  return 1;
}
#endif
