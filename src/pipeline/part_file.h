/* Part files: one finished chunk of a run (chunk_plan.h), saved beside the archive in
 * ARCHIVE.parts/chunk_NNNNNN.h5 (NNNNNN: the chunk's global index).  A part holds every row the
 * chunk detected (its overlap frames included: stitching matches on them) with chunk-local track
 * ids, the chunk's tracklet summaries (track/stitch.h), the lineage events of the frames it owns
 * and what it was made from: SHA-256 hashes
 * of the result-relevant configuration, of the model file and of the chunk's frames.  The root
 * stitches from the summaries and assembles the archive from the rows, and `nptrack run
 * --resume` skips chunks whose part is there and made from the same inputs.
 *
 * A part is written under a temporary name, fsync'ed and renamed: a part file with its final name
 * is whole.  Plain serial HDF5, uncompressed (scratch data, read back once or twice).  Nothing
 * here is collective; each rank writes the parts of its chunks. */
#ifndef NPT_PIPELINE_PART_FILE_H
#define NPT_PIPELINE_PART_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "track/stitch.h"

#define NPT_PART_FORMAT "nptrack part"
/* 2: parts carry the chunk's lineage events (an older part is redone by --resume). */
enum { NPT_PART_FORMAT_VERSION = 2 };

/* A chunk's rows, columnar, in frame order, growing. */
typedef struct npt_part_rows {
  int64_t n, cap;
  int64_t *frame, *id; /* id: chunk-local track id, or -1 */
  float *x, *y, *w, *h, *score;
  int32_t *cls;
  int32_t *det;  /* the detection's index among its frame's decoded detections: the same row in
                    two chunks that saw the frame has the same index, whatever the tracker did */
  int embed_dim; /* 0: no embeddings kept */
  float *embed;  /* n x embed_dim */
} npt_part_rows;

/* Room for `more` rows.  Returns 0 or NPT_ENOMEM. */
int npt_part_rows_reserve(npt_part_rows *r, int64_t more);
void npt_part_rows_free(npt_part_rows *r);
/* The stitcher's view of the rows. */
npt_stitch_rows npt_part_rows_view(const npt_part_rows *r);

/* A chunk's lineage events (tracker.h, npt_tracker_events) in the frames it owns, in frame
 * order (within a frame, the tracker's order), with chunk-local track ids.  Event e's parents
 * are ids[parent_off[e] .. parent_off[e] + n_parents[e]), its children follow them:
 * ids[child_off[e] .. child_off[e] + n_children[e]). */
typedef struct npt_part_events {
  int64_t n, cap, n_ids, ids_cap;
  int64_t *frame;
  int32_t *kind; /* npt_track_event_kind */
  int64_t *n_parents, *n_children, *parent_off, *child_off;
  int64_t *ids;
} npt_part_events;

/* Appends an event (copies its ids).  Returns 0 or NPT_ENOMEM. */
int npt_part_events_add(npt_part_events *e, const npt_track_event *ev);
void npt_part_events_free(npt_part_events *e);

typedef struct npt_part_meta {
  int64_t chunk;                          /* global chunk index */
  int64_t video, index;                   /* video of the run, chunk within it */
  int64_t begin, end, own_begin, own_end; /* chunk_plan.h */
  char config_sha256[65], model_sha256[65], input_sha256[65];
  int64_t rank;             /* the rank that made it (provenance only) */
  double detect_s, track_s; /* its time, s */
  int64_t saturated;        /* frames where top-K saturated */
} npt_part_meta;

/* The path of chunk `chunk`'s part in `dir`; malloc'd, NULL when out of memory. */
char *npt_part_path(const char *dir, int64_t chunk);

/* Writes a part atomically.  Returns 0, or NPT_EIO/NPT_EHDF5 naming the file (no file is left at
 * `path` then). */
int npt_part_write(const char *path, const npt_part_meta *m, const npt_part_rows *r,
                   const npt_tracklets *t, const npt_part_events *e);

/* Test-only: when set, npt_part_write calls it at two points, `point` "rows" (the rows are
 * written, the tracklets and events not yet: the temporary file is cut short) and "rename" (the
 * part is whole under its temporary name, just before the rename); the kill-and-resume tests
 * kill the process there, the fault tests make it fail (an error it returns is the write's). */
extern int (*npt__part_write_hook)(const char *path, const char *point);

/* Reads a part's metadata only.  Returns 0, NPT_EIO (missing or not HDF5) or NPT_EFORMAT. */
int npt_part_read_meta(const char *path, npt_part_meta *m);

/* Reads a whole part; r, t and e are owned by the caller (npt_part_rows_free,
 * npt_tracklets_free, npt_part_events_free).  Returns 0 or an error naming the file. */
int npt_part_read(const char *path, npt_part_meta *m, npt_part_rows *r, npt_tracklets *t,
                  npt_part_events *e);

#endif
