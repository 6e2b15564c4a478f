/* CPU backend benchmark: frames/s of the benchmark network (src/nn/cpu/cpu_testnet.c, random
 * weights; benchmarks/bench_cpu_torch.py runs the same network in PyTorch) against frame size,
 * threads and batch.  Each setting: a plan, warm-up runs, then the median of timed runs of the
 * backend's run() (input already normalised; the same work the engine hands the backend).
 *
 *   bench_cpu [--sizes 256,512,1024,2048] [--threads 1,2] [--batches 1,4] [--runs 7]
 *             [--warmup 2] [--csv results.csv] [--direct | --winograd2] [--model FILE.h5]
 *
 * --model: time this model file (e.g. the shipped models/nptrack.h5) instead of the benchmark
 * network.
 *
 * --direct: every convolution through oneDNN's direct kernels (no Winograd), for comparison;
 * --winograd2: Winograd F(2x2, 3x3) instead of F(4x4, 3x3) for the 3x3 stride-1 convolutions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/rng.h"
#include "nn/cpu/cpu_debug.h"
#include "nn/graph.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int parse_list(const char *s, int *v, int max) {
  int n = 0;
  while (*s && n < max) {
    v[n++] = atoi(s);
    s = strchr(s, ',');
    if (!s)
      break;
    s++;
  }
  return n;
}

int main(int argc, char **argv) {
  int sizes[16], threads[16], batches[16];
  int ns = parse_list("256,512,1024,2048", sizes, 16), nt = parse_list("1,2", threads, 16);
  int nb = parse_list("1,4", batches, 16), runs = 7, warmup = 2;
  const char *csv = NULL, *model = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(argv[i], "--sizes"))
      ns = parse_list(v, sizes, 16), i++;
    else if (!strcmp(argv[i], "--threads"))
      nt = parse_list(v, threads, 16), i++;
    else if (!strcmp(argv[i], "--batches"))
      nb = parse_list(v, batches, 16), i++;
    else if (!strcmp(argv[i], "--runs"))
      runs = atoi(v), i++;
    else if (!strcmp(argv[i], "--warmup"))
      warmup = atoi(v), i++;
    else if (!strcmp(argv[i], "--csv"))
      csv = v, i++;
    else if (!strcmp(argv[i], "--model"))
      model = v, i++;
    else if (!strcmp(argv[i], "--direct")) /* oneDNN's direct convolutions only */
      npt__cpu_set_winograd(0);
    else if (!strcmp(argv[i], "--winograd2")) /* F(2x2, 3x3) instead of F(4x4, 3x3) */
      npt__cpu_set_winograd(2);
    else {
      fprintf(stderr,
              "usage: %s [--sizes L] [--threads L] [--batches L] [--runs N] "
              "[--warmup N] [--csv FILE] [--direct | --winograd2] [--model FILE]\n",
              argv[0]);
      return 2;
    }
  }
  if (runs < 1 || runs > 1000)
    runs = 7;
  npt_graph *g;
  int rc = model ? npt_graph_load(&g, model) : npt__cpu_bench_graph(&g, 1);
  if (rc) {
    fprintf(stderr, "bench_cpu: %s\n", npt_error_msg(rc));
    return 1;
  }
  double macs = npt_graph_macs_per_pixel(g);
  printf("%s: %d nodes, %.0f MACs/pixel, %.2f GFLOP per 1024^2 frame\n",
         model ? model : "benchmark network", g->n_nodes,
         macs, 2 * macs * 1024 * 1024 / 1e9);
  FILE *out = csv ? fopen(csv, "w") : NULL;
  if (csv && !out) {
    fprintf(stderr, "bench_cpu: cannot write %s\n", csv);
    return 1;
  }
  if (out)
    fprintf(out, "size,threads,batch,ms_per_batch,fps,gflops\n");
  printf("%5s %3s %5s %12s %10s %8s\n", "size", "thr", "batch", "ms/batch", "frames/s", "GFLOP/s");
  for (int ti = 0; ti < nt; ti++) {
    void *ctx;
    npt_backend_params bp = {threads[ti], 0, 0};
    if ((rc = npt_backend_cpu.init(&ctx, &bp)) < 0)
      break;
    for (int si = 0; si < ns && rc == 0; si++)
      for (int bi = 0; bi < nb && rc == 0; bi++) {
        int s = sizes[si], b = batches[bi];
        /* Fewer repetitions where one pass takes seconds; the median is still taken. */
        int r = (double)s * s * b > 1024.0 * 1024 ? (runs / 2 > 3 ? runs / 2 : 3) : runs;
        void *plan;
        if ((rc = npt_backend_cpu.plan(ctx, g, b, s, s, &plan)) < 0)
          break;
        float *x = malloc(sizeof *x * (size_t)b * s * s);
        npt_rng rng;
        npt_rng_seed(&rng, 2, 0);
        for (size_t i = 0; x && i < (size_t)b * s * s; i++)
          x[i] = (float)npt_rng_normal(&rng);
        double t[1000];
        npt_head_outputs ho;
        for (int k = 0; x && k < warmup + r && rc == 0; k++) {
          double t0 = now();
          rc = npt_backend_cpu.run(ctx, plan, x, &ho);
          if (k >= warmup)
            t[k - warmup] = now() - t0;
        }
        npt_backend_cpu.plan_free(ctx, plan);
        free(x);
        if (rc < 0)
          break;
        qsort(t, (size_t)r, sizeof *t, cmp_double);
        double med = r % 2 ? t[r / 2] : 0.5 * (t[r / 2 - 1] + t[r / 2]);
        double fps = b / med, gflops = 2 * macs * s * s * b / med / 1e9;
        printf("%5d %3d %5d %12.2f %10.2f %8.1f\n", s, threads[ti], b, med * 1e3, fps, gflops);
        fflush(stdout);
        if (out)
          fprintf(out, "%d,%d,%d,%.3f,%.4f,%.2f\n", s, threads[ti], b, med * 1e3, fps, gflops);
      }
    npt_backend_cpu.free(ctx);
  }
  if (out)
    fclose(out);
  npt_graph_free(g);
  if (rc < 0) {
    fprintf(stderr, "bench_cpu: %s\n", npt_error_msg(rc));
    return 1;
  }
  return 0;
}
