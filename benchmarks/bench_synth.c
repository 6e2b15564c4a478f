/* Throughput of `nptrack synth`: the whole path (scene, renderer, writing video.h5 and the text
 * files into a temporary directory) for the sparse and dense presets at 512 x 512, one core.
 *
 *   bench_synth [-n FRAMES] [-r REPEATS] [PRESET...]     (default: sparse dense, 300 frames, 3)
 *
 * Reports frames/s of the whole path (median of the repeats) and where the time goes: the
 * scene's physics, the renderer's own cost and the writing.  Presets are read from config/synth/
 * of the source tree (found from this file's path, or $NPT_SOURCE_DIR). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "config/config.h"
#include "synth/synth.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void source_dir(char *buf, size_t n) {
  const char *env = getenv("NPT_SOURCE_DIR");
  if (env) {
    snprintf(buf, n, "%s", env);
    return;
  }
  snprintf(buf, n, "%s", __FILE__); /* .../benchmarks/bench_synth.c */
  for (int k = 0; k < 2; k++) {
    char *slash = strrchr(buf, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(buf, n, ".");
  }
}

int main(int argc, char **argv) {
  int frames = 300, repeats = 3, opt;
  while ((opt = getopt(argc, argv, "n:r:h")) != -1) {
    if (opt == 'n')
      frames = atoi(optarg);
    else if (opt == 'r')
      repeats = atoi(optarg);
    else {
      fprintf(stderr, "usage: bench_synth [-n FRAMES] [-r REPEATS] [PRESET...]\n");
      return opt == 'h' ? 0 : 2;
    }
  }
  const char *defaults[] = {"sparse", "dense"};
  const char **presets = optind < argc ? (const char **)argv + optind : defaults;
  int n_presets = optind < argc ? argc - optind : 2;
  if (repeats < 1 || repeats > 100 || frames < 1)
    return 2;
  char src[4096];
  source_dir(src, sizeof src);

  printf("bench_synth: %d frames of 512 x 512, median of %d runs, one core\n", frames, repeats);
  printf("%-10s %10s %9s %12s %12s %12s %12s %9s\n", "preset", "frames/s", "boxes/fr",
         "scene ms/fr", "render ms/fr", "write ms/fr", "render fr/s", "events");
  for (int p = 0; p < n_presets; p++) {
    char path[4200], fr[64], dir[] = "/tmp/bench_synth_XXXXXX";
    snprintf(path, sizeof path, "%s/config/synth/%s.cfg", src, presets[p]);
    snprintf(fr, sizeof fr, "synth.frames=%d", frames);
    const char *over[] = {fr, "synth.width=512", "synth.height=512", "synth.seed=1"};
    npt_config *cfg = NULL;
    int rc = npt_config_load(&cfg, path, over, 4);
    if (rc < 0) {
      fprintf(stderr, "bench_synth: %s\n", npt_error_msg(rc));
      return 1;
    }
    if (!mkdtemp(dir)) {
      perror("bench_synth: mkdtemp");
      return 1;
    }
    double total[100], scene[100], render[100], write[100];
    npt_synth_stats st = {0};
    for (int r = 0; r < repeats; r++) {
      if ((rc = npt_synth_run(cfg, dir, &st)) < 0) {
        fprintf(stderr, "bench_synth: %s\n", npt_error_msg(rc));
        return 1;
      }
      total[r] = st.seconds_total, scene[r] = st.seconds_scene;
      render[r] = st.seconds_render, write[r] = st.seconds_write;
    }
    qsort(total, (size_t)repeats, sizeof(double), cmp_double);
    qsort(scene, (size_t)repeats, sizeof(double), cmp_double);
    qsort(render, (size_t)repeats, sizeof(double), cmp_double);
    qsort(write, (size_t)repeats, sizeof(double), cmp_double);
    int m = repeats / 2;
    printf("%-10s %10.1f %9.0f %12.3f %12.3f %12.3f %12.1f %9lld\n", presets[p], frames / total[m],
           (double)st.boxes / (double)frames, 1e3 * scene[m] / frames, 1e3 * render[m] / frames,
           1e3 * write[m] / frames, frames / render[m], (long long)st.events);
    const char *names[] = {"video.h5", "gt.txt", "events.csv", "config.cfg"};
    for (int k = 0; k < 4; k++) {
      char f[4300];
      snprintf(f, sizeof f, "%s/%s", dir, names[k]);
      unlink(f);
    }
    rmdir(dir);
    npt_config_free(cfg);
  }
  return 0;
}
