/* Shared by the archive's parts: the derived tables (archive_tables.c), the writer
 * (archive_write.c) and the reader (archive_read.c). */
#ifndef NPT_ARCHIVE_INTERNAL_H
#define NPT_ARCHIVE_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

#include "io/archive.h"

/* Everything the archive stores about one video that is computed from its rows.  Plain arrays,
 * no HDF5: a parallel writer can compute them on the root and write them in any order. */
typedef struct npt__arch_tables {
  int64_t n_rows, n_frames;
  int n_classes, embed_dim;
  int64_t *frame_offsets; /* [n_frames + 1], CSR index of rows by frame */
  /* tracks, by increasing track_id */
  int64_t n_tracks;
  int64_t *track_id, *first_frame, *last_frame, *length, *n_det; /* [n_tracks] */
  float *mean_w, *mean_h, *mean_size;                            /* [n_tracks], px */
  float *mean_embedding;                                         /* [n_tracks x embed_dim] */
  int64_t n_tracked;                                             /* rows with a track */
  int64_t *track_rows;    /* [n_tracked]: rows grouped by track, each in frame order */
  int64_t *track_offsets; /* [n_tracks + 1]: track k is track_rows[off[k]:off[k+1]] */
  /* per-frame summary */
  int64_t *count;          /* [n_frames] */
  int64_t *count_by_class; /* [n_frames x n_classes] */
  float *frame_mean_size;  /* [n_frames], px; NAN for an empty frame */
} npt__arch_tables;

/* Checks `rows` against the video and computes the tables.  Returns 0, NPT_EINVAL naming
 * `video` and the offending row, or NPT_ENOMEM.  On error *t holds nothing. */
int npt__arch_tables_build(npt__arch_tables *t, const npt_archive_video *v,
                           const npt_archive_rows *rows, int n_classes);
void npt__arch_tables_free(npt__arch_tables *t);

/* A particle's size from its box: sqrt(w h), px (the side of the square of the same area). */
float npt__arch_size(float w, float h);

/* The writer's state (archive_write.c; videos are written by archive_video.c). */
struct npt_archive {
  char *path, *tmp;
  hid_t file, videos;
  npt_archive_options opt;
  npt_archive_run run; /* strings and timings owned */
  int have_run, failed;
  int64_t n_videos;
};

/* The test hook's check at `stage`: 0, an error (recorded), or the end of the process. */
int npt__archive_hook(const npt_archive *a, const char *stage);

/* Test hook: make the writer fail at a stage ("open", "video", "tables", "attrs", "rename"),
 * recording an error and cleaning up as for any failure, or (crash != 0) end the process there
 * at once with _exit(3), as a killed job would, leaving the temporary file behind.  NULL clears
 * it.  Only the test helper calls this; nothing reads the environment. */
void npt__archive_test_fail_at(const char *stage, int crash);

#endif
