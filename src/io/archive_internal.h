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

/* ------------------------------------------------------------------------------------------- */
/* Writing a video's datasets (archive_video.c), shared by the whole-video writer and the
 * streaming one (archive_stream.c), so the two write the same datasets. */

/* A dataset of rank 1 or 2 ([n0] or [n0, n1]) of file type ftype holding `data` (memory type
 * mtype; NULL: written later, by hyperslabs), chunked, shuffled and gzip'ed at the archive's
 * level, with `units` and `description` attributes, and `frame_base` = 0 when it holds frame
 * numbers.  A NULL name skips the column. */
typedef struct npt__col_spec {
  const char *name;
  hid_t ftype, mtype;
  int rank;
  hsize_t n0, n1;
  const void *data;
  const char *units, *description;
  int is_frame;
} npt__col_spec;

/* Creates column c in group g (errors name `where`); *keep (when not NULL) receives the open
 * dataset, else it is closed. */
int npt__arch_write_col(npt_archive *a, hid_t g, const char *where, const npt__col_spec *c,
                        hid_t *keep);

/* The detections table's columns, in order; frame_offsets and embedding have fixed places. */
enum { NPT__DET_COLS = 13, NPT__DET_OFFSETS = 11, NPT__DET_EMBED = 12 };
typedef struct npt__det_data {
  const void *frame, *time_s, *track_id, *x, *y, *w, *h, *w_nm, *h_nm, *score, *cls;
  const void *frame_offsets, *emb16;
  int with_emb16; /* the embedding column exists (archive.embeddings = all) */
} npt__det_data;
void npt__arch_det_specs(npt__col_spec c[NPT__DET_COLS], hsize_t n, hsize_t nt1, hsize_t embed_dim,
                         hid_t f16, const npt__det_data *d);
int npt__arch_det_group_attrs(npt_archive *a, hid_t g, const char *where, int64_t n_rows);

/* The tracks table's columns from t (track_rows may be NULL: row_index is written later). */
enum { NPT__TRACK_COLS = 12, NPT__TRACK_ROW_INDEX = 11 };
void npt__arch_track_specs(npt__col_spec c[NPT__TRACK_COLS], const npt__arch_tables *t,
                           const float *track_size_nm, int with_embedding);

/* The per-frame summary group, written whole. */
int npt__arch_write_frames(npt_archive *a, hid_t vg, const char *vpath, const npt__arch_tables *t,
                           const int64_t *frame_no, const double *frame_time_s,
                           const float *frame_size_nm);

/* The video group's attributes. */
int npt__arch_video_attrs(npt_archive *a, hid_t g, const char *where, const npt_archive_video *v,
                          int64_t n_rows, int64_t n_tracks, int embed_dim);
/* 0, or NPT_EINVAL for a bad or taken video name. */
int npt__arch_check_name(const npt_archive *a, const char *name);
hid_t npt__arch_group(hid_t loc, const char *name);
/* IEEE binary16 from binary32, nearest even; the file's float16 type. */
uint16_t npt__arch_f16(float f);
hid_t npt__arch_f16_type(void);

/* The test hook's check at `stage`: 0, an error (recorded), or the end of the process. */
int npt__archive_hook(const npt_archive *a, const char *stage);

/* Test hook: make the writer fail at a stage ("open", "video", "tables", "attrs", "rename"),
 * recording an error and cleaning up as for any failure, or (crash != 0) end the process there
 * at once with _exit(3), as a killed job would, leaving the temporary file behind.  NULL clears
 * it.  Only the test helper calls this; nothing reads the environment. */
void npt__archive_test_fail_at(const char *stage, int crash);

#endif
