/* The HDF5 reading path of nptrack run alone: frames/s of npt_frames_read (io/frames.h), the call
 * a rank's reader thread makes for each batch, over a video replayed to FRAMES frames
 * (detect.replay_frames; 0: the video as stored), in batches of BATCH frames.  No engine, no
 * tracker: what reading costs a rank, to set beside the run's per-rank `read` seconds.  The first
 * pass over the stored frames is timed apart (it may come from the disk; later passes come from
 * the page cache, as a replayed run's do).
 *   usage: bench_read VIDEO [FRAMES [BATCH]]    (defaults: the stored length, 32) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/error.h"
#include "io/frames.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s VIDEO [FRAMES [BATCH]]\n", argv[0]);
    return 2;
  }
  npt_frames_opts fo = {NULL, NPT_FRAMES_THW, argc > 2 ? atoll(argv[2]) : 0};
  int batch = argc > 3 ? atoi(argv[3]) : 32;
  npt_frames *fr = NULL;
  int rc = batch < 1 ? npt_error_set(NPT_EINVAL, "BATCH must be >= 1") : 0;
  if (rc == 0)
    rc = npt_frames_open_opts(&fr, argv[1], &fo);
  if (rc < 0) {
    fprintf(stderr, "bench_read: %s\n", npt_error_msg(rc));
    return 1;
  }
  const npt_frames_info *in = npt_frames_get_info(fr);
  size_t fbytes = (size_t)in->height * (size_t)in->width * (size_t)(in->bit_depth / 8);
  void *buf = malloc(fbytes * (size_t)batch);
  if (!buf) {
    fprintf(stderr, "bench_read: out of memory\n");
    npt_frames_close(fr);
    return 1;
  }
  double t0 = now_s(), first_pass = -1;
  int64_t t = 0;
  for (; t < in->n_frames && rc == 0; t += batch) {
    int n = in->n_frames - t < batch ? (int)(in->n_frames - t) : batch;
    rc = npt_frames_read(fr, t, n, buf);
    if (first_pass < 0 && t + n >= in->stored_frames)
      first_pass = now_s() - t0;
  }
  double s = now_s() - t0;
  if (rc < 0)
    fprintf(stderr, "bench_read: %s\n", npt_error_msg(rc));
  else
    printf("bench_read: %lld frames of %dx%d px, %d-bit (%lld stored), batches of %d: %.3f s, "
           "%.0f frames/s, %.2f GB/s; first pass over the stored frames %.3f s\n",
           (long long)in->n_frames, in->width, in->height, in->bit_depth,
           (long long)in->stored_frames, batch, s, s > 0 ? (double)in->n_frames / s : 0.0,
           s > 0 ? (double)in->n_frames * (double)fbytes / s / 1e9 : 0.0, first_pass);
  free(buf);
  npt_frames_close(fr);
  return rc < 0 ? 1 : 0;
}
