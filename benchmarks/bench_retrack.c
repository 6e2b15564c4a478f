/* The online tracker on a detections file: what `nptrack run` does after detection, without
 * running the network again, so that tracker settings can be compared quickly on the same
 * detections (benchmarks/tune_tracker.sh).  Detections scoring below KEEP are dropped first, as
 * a detector decoding at threshold KEEP would; the tracks are written as `nptrack export
 * --tracks` writes them (frame from 1, id, box, score, class, -1; tracked rows only, ids
 * backfilled), for `nptrack eval`, and the tracker's lineage events to OUT.events.csv in the
 * format of nptrack synth's events.csv (`nptrack eval --events-gt --events-pred`).  The time of
 * npt_tracker_step alone goes to stderr.
 *
 * usage: bench_retrack DETS.h5 KEEP OUT.txt [track.key=value ...]
 *        (DETS.h5 from `nptrack detect -s detect.score_threshold=...`; KEEP >= its threshold) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "config/config.h"
#include "io/dets_file.h"
#include "track/tracker.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *what) {
  fprintf(stderr, "bench_retrack: %s: %s\n", what, npt_error_msg(NPT_EINTERNAL));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_retrack DETS.h5 KEEP OUT.txt [track.key=value ...]\n");
    return 2;
  }
  const float keep = strtof(argv[2], NULL);
  npt_config *cfg;
  if (npt_config_load(&cfg, NULL, (const char *const *)argv + 4, argc - 4) < 0)
    return fail("config");
  npt_track_settings s;
  if (npt_track_settings_get(cfg, &s) < 0)
    return fail("config");
  npt_config_free(cfg);
  npt_dets_file *f;
  if (npt_dets_file_open(&f, argv[1]) < 0)
    return fail(argv[1]);
  const npt_dets_file_info info = *npt_dets_file_get_info(f), *in = &info;
  npt_dets d;
  npt_dets_init(&d, in->embed_dim);
  if (npt_dets_file_read(f, 0, in->n_rows, &d) < 0)
    return fail(argv[1]);
  npt_dets_file_close(f);

  /* The kept rows, with their ids, in frame order. */
  int64_t *row = malloc(sizeof *row * (size_t)(d.n + 1)),
          *id = malloc(sizeof *id * (size_t)(d.n + 1));
  int64_t *fstart = calloc((size_t)in->n_frames + 1, sizeof *fstart);
  npt_track_det *td = malloc(sizeof *td * (size_t)(d.n + 1));
  float *box = malloc(sizeof *box * 4 * (size_t)(d.n + 1));
  if (!row || !id || !fstart || !td || !box)
    return 1;
  int64_t m = 0;
  for (int64_t i = 0; i < d.n; i++)
    if (d.det[i].score >= keep)
      row[m++] = i;
  npt_tracker *t;
  if (npt_tracker_create(&s, in->embed_dim, &t) < 0)
    return fail("tracker");
  double busy = 0;
  int64_t k = 0;
  char evpath[4096];
  snprintf(evpath, sizeof evpath, "%s.events.csv", argv[3]);
  FILE *evf = fopen(evpath, "w");
  if (!evf)
    return 1;
  fprintf(evf, "frame,type,parents,children\n");
  for (int64_t fr = in->frame_begin; fr < in->frame_end; fr++) {
    int64_t b = k;
    fstart[fr] = b;
    for (; k < m && d.det[row[k]].frame == fr; k++) {
      const npt_detection *p = &d.det[row[k]];
      const float *e = d.embed ? d.embed + row[k] * d.embed_dim : NULL;
      td[k - b] = (npt_track_det){p->x, p->y, p->w, p->h, p->score, p->cls, e};
      float *x = box + 4 * k;
      x[0] = p->x, x[1] = p->y, x[2] = p->w, x[3] = p->h;
    }
    double t0 = now();
    if (npt_tracker_step(t, fr, td, (size_t)(k - b), id + b) < 0)
      return fail("tracker");
    busy += now() - t0;
    /* As nptrack run writes them: a tracked detection with its track's box. */
    for (int64_t q = b; q < k; q++)
      if (id[q] >= 0)
        (void)npt_tracker_box(t, (size_t)(q - b), box + 4 * q);
    const npt_track_backfill *bf;
    size_t nbf = npt_tracker_backfill(t, &bf);
    for (size_t q = 0; q < nbf; q++)
      id[fstart[bf[q].frame] + bf[q].index] = bf[q].id;
    const npt_track_event *ev;
    size_t nev = npt_tracker_events(t, &ev);
    for (size_t e = 0; e < nev; e++) {
      fprintf(evf, "%lld,%s,", (long long)fr + 1,
              ev[e].kind == NPT_TRACK_MERGE ? "merge" : "split");
      for (size_t q = 0; q < ev[e].n_parents; q++)
        fprintf(evf, "%s%lld", q ? " " : "", (long long)ev[e].parents[q]);
      fputc(',', evf);
      for (size_t q = 0; q < ev[e].n_children; q++)
        fprintf(evf, "%s%lld", q ? " " : "", (long long)ev[e].children[q]);
      fputc('\n', evf);
    }
  }
  fclose(evf);
  FILE *out = fopen(argv[3], "w");
  if (!out)
    return 1;
  for (int64_t q = 0; q < m; q++) {
    if (id[q] < 0)
      continue;
    const npt_detection *p = &d.det[row[q]];
    const float *x = box + 4 * q;
    fprintf(out, "%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.6f,%d,-1\n", (long long)p->frame + 1,
            (long long)id[q], x[0], x[1], x[2], x[3], p->score, p->cls);
  }
  fclose(out);
  fprintf(stderr, "bench_retrack: %lld detections, %lld ids, tracker %.3f s (%.0f frames/s)\n",
          (long long)m, (long long)npt_tracker_num_ids(t), busy,
          (double)(in->frame_end - in->frame_begin) / busy);
  npt_tracker_free(t);
  npt_dets_free(&d);
  free(row), free(id), free(fstart), free(td), free(box);
  return 0;
}
