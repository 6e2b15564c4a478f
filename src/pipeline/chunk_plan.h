/* The chunk plan: every video of a run cut into overlapping chunks of frames, which ranks take
 * one at a time (docs/architecture.md, "MPI pipeline").
 *
 * A video's searched frames [first, end) are cut into chunks of chunking.frames (L) frames that
 * overlap their neighbours by chunking.overlap (O) frames: chunk k reads and tracks frames
 * [first + k (L - O), min(first + k (L - O) + L, end)).  The last chunk may be shorter; a video
 * of at most L frames is one chunk.  The plan depends on the settings and the videos' frame
 * ranges only, never on the number of ranks: that is what makes the archive identical for any
 * rank count.
 *
 * Ownership: each overlap frame is written to the archive by exactly one chunk.  The overlap of
 * chunks k and k+1 is [s, s + O) with s the start of chunk k+1; chunk k owns all of it but its
 * last `tail` frames (tail = track.confirm_frames - 1), chunk k+1 the rest.  Why the earlier
 * chunk: an online tracker's decision at a frame depends only on earlier frames, so a chunk's
 * tracker is at its best at the end of its range (most history) and at its worst at its start
 * (fresh, no history); the later chunk's tracker gets O - tail frames to settle before its frames
 * count.  Why not the last `tail` frames: the ids of a track's first detections are only known
 * when the track is confirmed, up to confirm_frames - 1 frames later, which the earlier chunk
 * may not see.  So chunk k owns [own_begin, own_end), and the owned ranges of a video's chunks
 * tile [first, end).
 *
 * Global order: chunks are numbered video by video (in the order the videos are given), in frame
 * order within a video.  Nothing here is collective. */
#ifndef NPT_PIPELINE_CHUNK_PLAN_H
#define NPT_PIPELINE_CHUNK_PLAN_H

#include <stdint.h>

#include "config/config.h"
#include "track/tracker.h"

typedef struct npt_chunking_settings {
  int64_t frames;  /* L: frames per chunk, overlap included */
  int64_t overlap; /* O: frames shared by neighbouring chunks */
  int64_t tail;    /* frames at the end of an overlap that the later chunk owns, < O */
  int largest_first; /* hand chunks out longest first (chunking.order), else in global order */
} npt_chunking_settings;

/* Reads the `chunking` section and checks it against the tracker's settings: overlap >=
 * track.confirm_frames + track.lost_frames (a particle that the earlier chunk re-acquires after
 * its lost buffer is seen by both chunks long enough to be matched on shared detections) and
 * 2 x overlap < frames (every chunk tracks frames that no other chunk sees).  Sets tail =
 * track.confirm_frames - 1.  Returns 0 or NPT_ECONFIG naming
 * the settings. */
int npt_chunking_settings_get(const npt_config *cfg, const npt_track_settings *ts,
                              npt_chunking_settings *out);

typedef struct npt_chunk {
  int video;                  /* index of the video in the run */
  int index;                  /* chunk index within the video, from 0 */
  int64_t begin, end;         /* frames read and tracked, [begin, end), 0-based */
  int64_t own_begin, own_end; /* frames whose rows this chunk writes */
} npt_chunk;

typedef struct npt_chunk_plan {
  int n_chunks;
  npt_chunk *chunk; /* in global order */
  int *order;       /* [n_chunks]: the order ranks take them in (global, or longest first; ties
                       in global order) */
  int n_videos;
  int *video_chunk; /* [n_videos + 1]: video v's chunks are video_chunk[v] .. video_chunk[v+1]-1 */
} npt_chunk_plan;

/* Plans n_videos videos whose searched frames are [first[v], end[v]) (end > first).  Returns 0,
 * NPT_EINVAL (bad settings or range) or NPT_ENOMEM; free with npt_chunk_plan_free. */
int npt_chunk_plan_build(const npt_chunking_settings *s, int n_videos, const int64_t *first,
                         const int64_t *end, npt_chunk_plan *out);
void npt_chunk_plan_free(npt_chunk_plan *p);

#endif
