/* The detections file: what `nptrack detect` writes, and the detections table of the future
 * archive (docs/archive-format.md).  HDF5; group /detections holds one 1-D dataset per column
 * (frame, x, y, w, h, score, class, track_id), /detections/embedding [N, D] and a CSR index
 * /detections/frame_offsets [T + 1]; gzip + shuffle only, so MATLAB's h5read and h5py read it
 * without plugins.  Written under a temporary name and renamed when complete.
 *
 * Not collective: one process writes a file; any number may read one. */
#ifndef NPT_DETS_FILE_H
#define NPT_DETS_FILE_H

#include <stdint.h>

#include "nn/detections.h"

/* Version of the layout below; readers refuse newer files. */
enum { NPT_DETS_FORMAT_VERSION = 1 };

/* What a file records besides its rows.  Strings are copied; NULL strings are written empty. */
typedef struct npt_dets_meta {
  const char *config_text;        /* the effective configuration */
  const char *video_path;         /* the video, as given */
  const char *video_dataset;      /* the frames dataset in it */
  const char *model_path;         /* the model file, as given */
  const char *model_provenance;   /* the model file's provenance (JSON), or NULL */
  const char *class_names;        /* "1 metal, 2 oxide", for the class column's description */
  int64_t n_frames;               /* frames in the video: frame_offsets has n_frames + 1 entries */
  int64_t frame_begin, frame_end; /* frames detected in: [begin, end), 0-based */
  int embed_dim;                  /* 0: no embedding dataset */
  float score_threshold;          /* the decoding actually used */
  int top_k, peak_kernel;
  double suppress_ratio;               /* 0: none */
  double pixel_size_nm, frame_rate_hz; /* of the video; NAN when unknown (not written) */
} npt_dets_meta;

typedef struct npt_dets_writer npt_dets_writer;

/* Creates the temporary file beside `path` (same directory, so the final rename is atomic).
 * Returns 0 or an error naming `path`. */
int npt_dets_writer_open(npt_dets_writer **out, const char *path, const npt_dets_meta *meta);

/* Appends all rows of `d` (embeddings too; d->embed_dim must equal meta.embed_dim).  Rows come
 * in frame order: frames inside [frame_begin, frame_end) and never before an earlier row's.
 * Memory stays bounded: rows are buffered and written a chunk at a time. */
int npt_dets_writer_append(npt_dets_writer *w, const npt_dets *d);

/* Writes the remaining rows, the frame index and the attributes (status = "complete" last),
 * closes and renames the file into place.  Frees `w` whatever happens; on error the temporary
 * file is removed and the final path is untouched. */
int npt_dets_writer_finish(npt_dets_writer *w, int64_t *n_rows);

/* Gives up: closes and removes the temporary file, frees `w`. */
void npt_dets_writer_abort(npt_dets_writer *w);

typedef struct npt_dets_file npt_dets_file;

typedef struct npt_dets_file_info {
  int64_t n_rows;
  int64_t n_frames;               /* frame_offsets has n_frames + 1 entries */
  int64_t frame_begin, frame_end; /* frames detected in, [begin, end) */
  int embed_dim;                  /* 0: the file has no embeddings */
} npt_dets_file_info;

/* Opens a detections file and checks its layout: status "complete", a known format version,
 * every column present, 1-D and of one length, frame_offsets a valid CSR index over the rows.
 * Returns 0, NPT_EIO (missing/unreadable) or NPT_EFORMAT, with a message naming the file. */
int npt_dets_file_open(npt_dets_file **out, const char *path);

const npt_dets_file_info *npt_dets_file_get_info(const npt_dets_file *f);

/* Appends rows [row0, row0 + n) to `d`, with their embeddings when d->embed_dim equals the
 * file's (d->embed_dim 0: none read).  Each row's frame is checked against frame_offsets.
 * track ids are not part of npt_detection and are not read. */
int npt_dets_file_read(npt_dets_file *f, int64_t row0, int64_t n, npt_dets *d);

/* The rows of frame `frame` (0-based): [*row0, *row1). */
int npt_dets_file_frame_rows(const npt_dets_file *f, int64_t frame, int64_t *row0, int64_t *row1);

/* A string attribute of the file's root ("config", "model", ...); *out malloc'd, NULL when the
 * file has none. */
int npt_dets_file_root_attr(npt_dets_file *f, const char *name, char **out);

void npt_dets_file_close(npt_dets_file *f);

#endif
