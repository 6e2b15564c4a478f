/* What `nptrack run` does after detection, chunked, on a detections file: the video's frames cut
 * by the chunk plan (pipeline/chunk_plan.h), each chunk tracked by a fresh tracker through
 * pipeline/chunk_track.h, as src/cli/run_chunk.c tracks it (detections with a box of positive area,
 * a tracked detection written with its track's box; the lineage events of the frames it owns kept,
 * whose parents stitching does not continue), the chunks' tracklets stitched at each boundary and
 * numbered as src/cli/run_assemble.c does, and the rows each chunk owns written with their global
 * ids, as `nptrack export --tracks` writes them (frame from 1, id, box, score, class, -1; tracked
 * rows only), for `nptrack eval`.  So a tracker or stitching change can be measured on the
 * stitching benchmark's videos (benchmarks/bench_stitching.py) in seconds, without running the
 * network again; `nptrack run` itself remains the reference (its detections are decoded by the
 * same engine, so the results agree where the detections file was made with
 * detect.score_threshold = track.low_score).
 *
 * OUT.rows.txt lists, for every row of every chunk (overlaps included): chunk, frame (from 1),
 * decoder index, chunk-local id, global id, owned (1 when the chunk writes the row), box and
 * score, for looking at what each chunk's tracker did around a boundary.
 *
 * usage: bench_chunk_retrack DETS.h5 KEEP FRAMES OUT.txt [key=value ...]
 *        (DETS.h5 from `nptrack detect -s detect.score_threshold=0.1`, as nptrack run decodes
 *        down to track.low_score; KEEP: the detector's own threshold (the model's), below which
 *        a row no track took is dropped before stitching, as nptrack run drops it; FRAMES:
 *        chunking.frames, 0 for one chunk; key=value: track.* and chunking.* settings) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "config/config.h"
#include "io/dets_file.h"
#include "pipeline/chunk_plan.h"
#include "pipeline/chunk_track.h"
#include "pipeline/part_file.h"
#include "track/stitch.h"
#include "track/tracker.h"

static int fail(const char *what) {
  fprintf(stderr, "bench_chunk_retrack: %s: %s\n", what, npt_error_msg(NPT_EINTERNAL));
  return 1;
}

/* Tracks frames [begin, end) of `d` (frame f's rows: fstart[f] .. fstart[f + 1] - 1) with a fresh
 * tracker as nptrack run does (pipeline/chunk_track.h), dropping the low-score rows no track
 * took; the rows and the events of frames [own_begin, own_end) stay in `c`. */
static int track_chunk(const npt_track_settings *s, const npt_dets *d, const int64_t *fstart,
                       const npt_chunk *ch, float keep, npt_chunk_track *c) {
  NPT_TRY(npt_chunk_track_open(c, s, d->embed_dim, ch->own_begin, ch->own_end));
  const int64_t k0 = fstart[ch->begin];
  const npt_dets view = {.n = fstart[ch->end] - k0,
                         .det = d->det + k0,
                         .embed = d->embed ? d->embed + k0 * d->embed_dim : NULL,
                         .embed_dim = d->embed_dim};
  NPT_TRY(npt_chunk_track_frames(c, ch->begin, (int)(ch->end - ch->begin), &view));
  npt_chunk_track_drop_untracked_low(c, keep);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_chunk_retrack DETS.h5 KEEP FRAMES OUT.txt [key=value ...]\n");
    return 2;
  }
  const float keep = strtof(argv[2], NULL);
  const long long frames = strtoll(argv[3], NULL, 10);
  npt_config *cfg;
  if (npt_config_load(&cfg, NULL, (const char *const *)argv + 5, argc - 5) < 0)
    return fail("config");
  npt_track_settings s;
  npt_chunking_settings cs;
  if (npt_track_settings_get(cfg, &s) < 0 || npt_chunking_settings_get(cfg, &s, &cs) < 0)
    return fail("config");
  npt_config_free(cfg);
  npt_dets_file *f;
  if (npt_dets_file_open(&f, argv[1]) < 0)
    return fail(argv[1]);
  const npt_dets_file_info info = *npt_dets_file_get_info(f);
  npt_dets d;
  npt_dets_init(&d, info.embed_dim);
  if (npt_dets_file_read(f, 0, info.n_rows, &d) < 0)
    return fail(argv[1]);
  npt_dets_file_close(f);
  int64_t *fstart = calloc((size_t)info.n_frames + 2, sizeof *fstart);
  if (!fstart)
    return 1;
  for (int64_t i = 0; i < d.n; i++)
    fstart[d.det[i].frame + 1]++;
  for (int64_t t = 0; t <= info.n_frames; t++)
    fstart[t + 1] += fstart[t];
  const int64_t first = info.frame_begin, end = info.frame_end;
  cs.frames = frames > 0 ? frames : end - first + 1;
  if (2 * cs.overlap >= cs.frames)
    cs.overlap = (cs.frames - 1) / 2;
  npt_chunk_plan plan;
  if (npt_chunk_plan_build(&cs, 1, &first, &end, &plan) < 0)
    return fail("chunk plan");
  const int nc = plan.n_chunks;
  npt_chunk_track *ct = calloc((size_t)nc, sizeof *ct);
  npt_tracklets *tl = calloc((size_t)nc, sizeof *tl);
  int64_t *base = calloc((size_t)nc + 1, sizeof *base);
  if (!ct || !tl || !base)
    return 1;
  for (int c = 0; c < nc; c++) {
    const npt_chunk *ch = &plan.chunk[c];
    if (track_chunk(&s, &d, fstart, ch, keep, &ct[c]) < 0)
      return fail("tracker");
    npt_stitch_rows v = npt_part_rows_view(&ct[c].rows);
    if (npt_tracklets_build(&s, &v, ch->own_begin, ch->own_end, &tl[c]) < 0)
      return fail("tracklets");
    const npt_part_events *ev = &ct[c].events;
    for (int64_t i = 0; i < ev->n; i++) /* as run_assemble.c's stitch_video */
      npt_tracklets_mark_ended(&tl[c], ev->ids + ev->parent_off[i], (size_t)ev->n_parents[i]);
    base[c + 1] = base[c] + (int64_t)tl[c].n;
  }
  /* Stitching and numbering, as run_assemble.c's stitch_video. */
  npt_stitch_key *keys = malloc(sizeof *keys * (size_t)(base[nc] + 1));
  int64_t *gid = malloc(sizeof *gid * (size_t)(base[nc] + 1));
  npt_stitch_uf uf;
  if (!keys || !gid || npt_stitch_uf_init(&uf, (size_t)base[nc]) < 0)
    return 1;
  for (int c = 0; c < nc; c++)
    for (size_t i = 0; i < tl[c].n; i++)
      keys[base[c] + (int64_t)i] =
          (npt_stitch_key){tl[c].t[i].own_frame, tl[c].t[i].own_y, tl[c].t[i].own_x};
  for (int c = 1; c < nc; c++) {
    npt_stitch_link *l = NULL;
    size_t nl = 0;
    npt_stitch_rows ra = npt_part_rows_view(&ct[c - 1].rows), rb = npt_part_rows_view(&ct[c].rows);
    if (npt_stitch_boundary(&s, &tl[c - 1], &ra, &tl[c], &rb, plan.chunk[c].begin,
                            plan.chunk[c - 1].end, &l, &nl) < 0)
      return fail("stitching");
    for (size_t i = 0; i < nl; i++)
      npt_stitch_uf_union(&uf, base[c - 1] + (int64_t)l[i].a, base[c] + (int64_t)l[i].b);
    free(l);
  }
  int64_t n_ids = npt_stitch_number(&uf, keys, gid);
  if (n_ids < 0)
    return fail("numbering");
  char path[4096];
  snprintf(path, sizeof path, "%s.rows.txt", argv[4]);
  FILE *out = fopen(argv[4], "w"), *dbg = fopen(path, "w");
  if (!out || !dbg)
    return 1;
  fprintf(dbg, "chunk,frame,det,local,global,owned,x,y,w,h,score\n");
  for (int c = 0; c < nc; c++) {
    const npt_chunk *ch = &plan.chunk[c];
    const npt_part_rows *r = &ct[c].rows;
    for (int64_t i = 0; i < r->n; i++) {
      int64_t k = r->id[i] < 0 ? -1 : npt_tracklets_find(&tl[c], r->id[i]);
      int64_t g = k < 0 ? -1 : gid[base[c] + k];
      int owned = r->frame[i] >= ch->own_begin && r->frame[i] < ch->own_end;
      fprintf(dbg, "%d,%lld,%d,%lld,%lld,%d,%.2f,%.2f,%.2f,%.2f,%.3f\n", c,
              (long long)r->frame[i] + 1, r->det[i], (long long)r->id[i], (long long)g, owned,
              r->x[i], r->y[i], r->w[i], r->h[i], r->score[i]);
      if (owned && g > 0)
        fprintf(out, "%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.6f,%d,-1\n", (long long)r->frame[i] + 1,
                (long long)g, r->x[i], r->y[i], r->w[i], r->h[i], r->score[i], r->cls[i]);
    }
  }
  fclose(out);
  fclose(dbg);
  fprintf(stderr, "bench_chunk_retrack: %d chunks, %lld ids\n", nc, (long long)n_ids);
  for (int c = 0; c < nc; c++) {
    npt_chunk_track_close(&ct[c]);
    npt_tracklets_free(&tl[c]);
  }
  npt_stitch_uf_free(&uf);
  npt_chunk_plan_free(&plan);
  npt_dets_free(&d);
  free(ct), free(tl), free(base), free(keys), free(gid), free(fstart);
  return 0;
}
