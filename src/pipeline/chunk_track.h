/* One chunk's tracking: its detections, frame by frame, through a fresh tracker into the part
 * rows (pipeline/part_file.h) and the lineage events of the frames the chunk owns.  `nptrack run`
 * feeds it batch by batch from the engine (cli/run_chunk.c); benchmarks/bench_chunk_retrack.c
 * feeds it from a detections file, so the two track alike. */
#ifndef NPT_PIPELINE_CHUNK_TRACK_H
#define NPT_PIPELINE_CHUNK_TRACK_H

#include <stdint.h>

#include "nn/detections.h"
#include "pipeline/part_file.h"
#include "track/tracker.h"

typedef struct npt_chunk_track {
  npt_tracker *tracker;
  npt_part_rows rows;     /* every row the chunk decoded, overlaps included */
  npt_part_events events; /* of the frames [own_begin, own_end) */
  int64_t own_begin, own_end;
  npt_track_det *tdets; /* scratch for one frame */
  int64_t *ids;
  int32_t *keep; /* decoder indices of the detections given to the tracker */
  int64_t cap;
} npt_chunk_track;

/* A fresh tracker for a chunk that owns frames [own_begin, own_end).  Returns 0 or an error
 * (npt_chunk_track_close frees what was made either way). */
int npt_chunk_track_open(npt_chunk_track *c, const npt_track_settings *s, int embed_dim,
                         int64_t own_begin, int64_t own_end);

/* Frames first .. first + n - 1, whose detections `d` holds in frame order (frame numbers in
 * det[].frame).  A box without area or with a non-finite coordinate (a peak at the frame's edge
 * whose size head gave 0) is neither tracked nor written; a tracked detection is written with
 * its track's box (smoothed size); ids the tracker gives earlier frames' detections when it
 * confirms a track are written back into their rows. */
int npt_chunk_track_frames(npt_chunk_track *c, int64_t first, int n, const npt_dets *d);

/* Drops the rows that scored below `keep` (the detector's threshold) and are in no track: the
 * low-score detections decoded only for the tracker's second pass that no track took. */
void npt_chunk_track_drop_untracked_low(npt_chunk_track *c, float keep);

void npt_chunk_track_close(npt_chunk_track *c);

#endif
