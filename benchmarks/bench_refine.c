/* Box refinement alone: what npt_refine_frame (nn/refine.h) costs per detection on one thread.
 *
 * Reads a video (HDF5 /frames) and a detections file written by `nptrack detect` (the
 * /detections/{frame,x,y,w,h,score,class} columns, frames 0-based; write it with
 * `-s detect.refine=none`, so that the boxes are the network's own, as the engine gives them to
 * the refinement), then refines every frame's detections RUNS times, each run from the file's
 * boxes, with the parameters the engine uses (neighbour score = the file's score_threshold,
 * min_size 3 px, class 1, centre free).  Frames and detections are read before the clock starts;
 * only npt_refine_frame is timed, per frame, in this thread's CPU time (the number that matters
 * on a shared machine) and in wall time.  One line per run: detections/s, microseconds per
 * detection, median and 90th percentile per frame, and a hash of the refined boxes (equal hashes:
 * bit-identical results, e.g. before and after a change meant to leave them alone).
 *   usage: bench_refine VIDEO DETS [RUNS]   (default 3 runs) */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "io/dets_file.h"
#include "io/frames.h"
#include "io/h5util.h"
#include "nn/refine.h"

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile of v[0..n) (sorted in place), nearest rank. */
static double quantile(double *v, int64_t n, double q) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int64_t k = (int64_t)(q * (double)(n - 1) + 0.5);
  return v[k];
}

/* FNV-1a over the bytes of the refined boxes. */
static uint64_t hash_boxes(const npt_detection *d, int64_t n, uint64_t h) {
  for (int64_t i = 0; i < n; i++) {
    float v[4] = {d[i].x, d[i].y, d[i].w, d[i].h};
    const unsigned char *b = (const unsigned char *)v;
    for (size_t k = 0; k < sizeof v; k++)
      h = (h ^ b[k]) * 1099511628211ull;
  }
  return h;
}

/* The score_threshold attribute of /detections (the engine masks neighbours scoring that). */
static int read_score_threshold(const char *path, double *out) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return npt_error_set(NPT_EIO, "%s: cannot open", path);
  hid_t g = H5Gopen2(f, "/detections", H5P_DEFAULT);
  int rc = g < 0 || npt_h5_read_f64_attr(g, "score_threshold", out) != 0
               ? npt_error_set(NPT_EFORMAT, "%s: no /detections score_threshold", path)
               : 0;
  if (g >= 0)
    H5Gclose(g);
  H5Fclose(f);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s VIDEO DETS [RUNS]\n", argv[0]);
    return 2;
  }
  int runs = argc > 3 ? atoi(argv[3]) : 3;
  npt_frames *fr = NULL;
  npt_dets_file *df = NULL;
  npt_dets dets;
  npt_dets_init(&dets, 0);
  double thr = 0;
  int rc = runs < 1 ? npt_error_set(NPT_EINVAL, "RUNS must be >= 1") : 0;
  if (rc == 0)
    rc = npt_frames_open(&fr, argv[1]);
  if (rc == 0)
    rc = npt_dets_file_open(&df, argv[2]);
  if (rc == 0)
    rc = read_score_threshold(argv[2], &thr);
  if (rc == 0)
    rc = npt_dets_file_read(df, 0, npt_dets_file_get_info(df)->n_rows, &dets);
  if (rc < 0) {
    fprintf(stderr, "bench_refine: %s\n", npt_error_msg(rc));
    return 1;
  }
  const npt_frames_info *in = npt_frames_get_info(fr);
  int64_t nf = npt_dets_file_get_info(df)->frame_end;
  nf = nf < in->n_frames ? nf : in->n_frames;
  if (nf < 1) {
    fprintf(stderr, "bench_refine: no frames\n");
    return 1;
  }
  size_t fbytes = (size_t)in->height * (size_t)in->width * (size_t)(in->bit_depth / 8);
  char *frames = malloc(fbytes * (size_t)nf);
  int64_t *row0 = malloc(sizeof *row0 * (size_t)(nf + 1));
  npt_detection *work = malloc(sizeof *work * (size_t)(dets.n > 0 ? dets.n : 1));
  double *cpu = malloc(sizeof *cpu * (size_t)nf);
  if (!frames || !row0 || !work || !cpu) {
    fprintf(stderr, "bench_refine: out of memory\n");
    return 1;
  }
  for (int64_t t = 0; t < nf && rc == 0; t++) {
    int64_t r1;
    rc = npt_frames_read(fr, t, 1, frames + fbytes * (size_t)t);
    if (rc == 0)
      rc = npt_dets_file_frame_rows(df, t, &row0[t], &r1);
    row0[t + 1] = r1;
  }
  if (rc < 0) {
    fprintf(stderr, "bench_refine: %s\n", npt_error_msg(rc));
    return 1;
  }
  const npt_refine_params rp = {(float)thr, 3.0f, 1};
  printf("# %s: %lld frames %dx%d, %lld detections (%.1f per frame), neighbour score %.3f\n",
         argv[1], (long long)nf, in->width, in->height, (long long)row0[nf],
         (double)row0[nf] / (double)nf, thr);
  for (int run = 0; run < runs && rc == 0; run++) {
    memcpy(work, dets.det, sizeof *work * (size_t)dets.n);
    npt_refine_stats st = {0};
    double cpu_total = 0, wall_total = 0;
    uint64_t h = 1469598103934665603ull;
    for (int64_t t = 0; t < nf && rc == 0; t++) {
      npt_detection *d = work + row0[t];
      int64_t n = row0[t + 1] - row0[t];
      double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
      rc = npt_refine_frame(frames + fbytes * (size_t)t, in->bit_depth, in->height, in->width, d, n,
                            &rp, &st);
      cpu[t] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
      wall_total += clock_s(CLOCK_MONOTONIC) - w0;
      cpu_total += cpu[t];
      h = hash_boxes(d, n, h);
    }
    if (rc < 0)
      break;
    double per = st.tried ? cpu_total / (double)st.tried : 0;
    printf("run %d: %lld tried %lld accepted  %.0f det/s  %.1f us/det  frame median %.2f ms "
           "p90 %.2f ms  (cpu %.3f s, wall %.3f s)  boxes %016llx\n",
           run, (long long)st.tried, (long long)st.accepted, per > 0 ? 1 / per : 0, 1e6 * per,
           1e3 * quantile(cpu, nf, 0.5), 1e3 * quantile(cpu, nf, 0.9), cpu_total, wall_total,
           (unsigned long long)h);
  }
  if (rc < 0)
    fprintf(stderr, "bench_refine: %s\n", npt_error_msg(rc));
  free(frames), free(row0), free(work), free(cpu);
  npt_dets_free(&dets);
  npt_dets_file_close(df);
  npt_frames_close(fr);
  return rc < 0 ? 1 : 0;
}
