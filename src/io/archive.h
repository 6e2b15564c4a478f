/* The run archive: one HDF5 file holding every video of a run (docs/archive-format.md, "The
 * archive").  Per video a group /videos/NAME with columnar tables (one 1-D dataset per column,
 * 2-D where a row holds a vector, gzip + shuffle only): detections, tracks, a per-frame summary,
 * a CSR index by frame and a per-track index.  Run provenance sits on the root; the root
 * attribute `status` says "complete" only once everything was written.
 *
 * Writing: npt_archive_open (a temporary file beside the target), npt_archive_set_run,
 * npt_archive_add_video for each video, npt_archive_finish (status = "complete", close, fsync,
 * rename into place).  Any error, or npt_archive_abort, removes the temporary file: no file that
 * claims to be complete is ever left behind by a run that failed.
 *
 * Not collective: one process writes an archive (under MPI, the root).  A video is written whole
 * (npt_archive_add_video: the derived tables computed from all its rows first) or streamed in
 * pieces of rows (npt_archive_stream_*: the same datasets, memory bounded by a piece).  A
 * streamed video's detections columns can be left to the parallel row writer
 * (npt_archive_stream_defer_rows, npt_archive_suspend; io/archive_rows.h), which the ranks that
 * hold the rows run collectively, without changing the layout. */
#ifndef NPT_ARCHIVE_H
#define NPT_ARCHIVE_H

#include <stdint.h>

#include "config/config.h"

/* Version of the layout; readers refuse newer files. */
enum { NPT_ARCHIVE_FORMAT_VERSION = 1 };

#define NPT_ARCHIVE_FORMAT "nptrack archive"

/* Which appearance embeddings the archive keeps (setting archive.embeddings). */
typedef enum {
  NPT_ARCHIVE_EMBED_NONE,  /* none */
  NPT_ARCHIVE_EMBED_TRACK, /* each track's L2-normalised mean (default) */
  NPT_ARCHIVE_EMBED_ALL,   /* the per-track means and every detection's, as float16 */
} npt_archive_embed_mode;

typedef struct npt_archive_options {
  npt_archive_embed_mode embeddings;
  int compression; /* gzip level 0-9; 0 stores the data uncompressed */
  int force;       /* overwrite whatever is at the target, a complete archive too */
} npt_archive_options;

/* The `archive` section of a configuration.  Returns 0; `force` is set to 0 (a command-line
 * choice, not a setting). */
int npt_archive_options_get(const npt_config *cfg, npt_archive_options *o);

/* One named duration of the run, written as the root attribute `timing_<name>_s`. */
typedef struct npt_archive_timing {
  const char *name; /* [a-z0-9_]+ */
  double seconds;
} npt_archive_timing;

/* The run's provenance.  Strings are written as given (NULL: empty). */
typedef struct npt_archive_run {
  const char *config_text;  /* the effective configuration */
  const char *model_path;   /* the model file used */
  const char *model_sha256; /* hex SHA-256 of the model file */
  const char *backend;      /* "cpu", "cudnn" */
  const char *class_names;  /* "1 metal, 2 oxide_shell" */
  int n_classes;            /* classes count from 1 to n_classes; >= 1 */
  const npt_archive_timing *timings;
  int n_timings;
} npt_archive_run;

/* Where a video's pixel size came from. */
#define NPT_PIXEL_SOURCE_FILE    "file attribute"
#define NPT_PIXEL_SOURCE_CONFIG  "config"
#define NPT_PIXEL_SOURCE_UNKNOWN "unknown"

typedef struct npt_archive_video {
  const char *name;        /* group name under /videos: not empty, no '/', unique */
  const char *source_path; /* the video file, as given */
  int64_t n_frames;
  int height, width;
  double frame_rate_hz;          /* NAN: unknown (time_s columns are then NAN) */
  double pixel_size_nm;          /* NAN: unknown (the *_nm columns are then NAN) */
  const char *pixel_size_source; /* NPT_PIXEL_SOURCE_* */
  /* > 0: a benchmark input, not a real video: source_path's first replay_of frames replayed
   * cyclically as n_frames frames (detect.replay_frames; the attributes replay and
   * replay_source_frames say so).  0: the video as stored. */
  int64_t replay_of;
} npt_archive_video;

/* A video's rows, columnar, in frame order (frames non-decreasing, 0-based, < n_frames).
 * track_id is >= 0, or -1 for a detection in no track (left out of the tracks table); one track
 * appears at most once per frame.  class is 1..n_classes.  embedding is n x embed_dim floats
 * (row-aligned), or NULL with embed_dim 0. */
typedef struct npt_archive_rows {
  int64_t n;
  const int64_t *frame, *track_id;
  const float *x, *y, *w, *h, *score;
  const int32_t *cls;
  int embed_dim;
  const float *embedding;
} npt_archive_rows;

typedef struct npt_archive npt_archive;

/* Creates the archive's temporary file ("dir/.NAME.PID.part") beside `path`.  An existing file
 * at `path` is refused (NPT_EIO, message naming it) unless opt->force, or unless it is an
 * nptrack archive whose status is not "complete" (what a writer that died in place left: it is
 * replaced).  A complete archive, or any other file, is only replaced with force.  The target
 * is replaced by the final rename only, so until npt_archive_finish succeeds it is untouched. */
int npt_archive_open(npt_archive **out, const char *path, const npt_archive_options *opt);

/* Writes the run's provenance to the root (at once, so an archive whose writer died still says
 * what made it).  Once, before adding videos: n_classes sizes the per-frame class counts. */
int npt_archive_set_run(npt_archive *a, const npt_archive_run *run);

/* Records (or replaces) the root attribute timing_<name>_s, e.g. the total time just before
 * npt_archive_finish.  name: [a-z0-9_]+. */
int npt_archive_set_timing(npt_archive *a, const char *name, double seconds);

/* Records (or replaces) a further root attribute of provenance: a fixed-length string or an
 * int64 (the MPI run's ranks, nodes, devices and per-rank timings).  name: [a-z0-9_]+, not one
 * the writer owns. */
int npt_archive_set_attr_str(npt_archive *a, const char *name, const char *value);
int npt_archive_set_attr_i64(npt_archive *a, const char *name, int64_t value);

/* Writes one video: its group, metadata and every table derived from `rows` (the rows are not
 * kept).  Returns 0, NPT_EINVAL (bad rows or metadata, message naming the video and row) or an
 * HDF5 error.  After an error the archive can only be aborted. */
int npt_archive_add_video(npt_archive *a, const npt_archive_video *v, const npt_archive_rows *rows);

/* Streaming: a video written in pieces of rows, for a writer that cannot hold a whole video's
 * rows but knows beforehand how many rows the video has and how many each track has (the MPI
 * run knows both from stitching).  The video's datasets are the same, value for value, as
 * npt_archive_add_video writes for the same rows.  Memory: the per-frame summary (frames), the
 * per-track sums (tracks x embedding size), and up to 4096 row numbers per track still being
 * written, never the rows.
 *
 * npt_archive_stream_begin creates the video's group for n_rows rows and n_tracks tracks whose
 * ids are track_ids[] (increasing, >= 0) with track_rows[] rows each (the rows with track id -1
 * are the others); embed_dim is the rows' embedding size (0: none).  `v` and its strings must
 * stay valid until the end.  npt_archive_stream_write takes the next rows (in frame order, each
 * call continuing the previous one; checked as npt_archive_add_video checks them).
 * npt_archive_stream_end checks that every promised row came and writes the remaining tables.
 * After an error the archive can only be aborted; npt_archive_stream_free releases the stream
 * in any case. */
typedef struct npt_archive_stream npt_archive_stream;
int npt_archive_stream_begin(npt_archive *a, const npt_archive_video *v, int64_t n_rows,
                             int embed_dim, int64_t n_tracks, const int64_t *track_ids,
                             const int64_t *track_rows, npt_archive_stream **out);
int npt_archive_stream_write(npt_archive_stream *s, const npt_archive_rows *rows);
int npt_archive_stream_end(npt_archive_stream *s);
void npt_archive_stream_free(npt_archive_stream *s);

/* Called right after npt_archive_stream_begin: the rows handed to npt_archive_stream_write are
 * still checked and summed into the tracks table, the per-track row index and the per-frame
 * summary, but the detections columns (created at their full size, chunked and filtered as
 * always) are left unwritten, for the parallel row writer (archive_rows.h) to fill once this
 * process has closed the file (npt_archive_suspend).  The rows must be the same, in the same
 * order, as the ones that writer gets: nothing here can check that. */
void npt_archive_stream_defer_rows(npt_archive_stream *s);

/* A video's lineage events (docs/archive-format.md, "events"): merges (sintering: several tracks
 * end, one begins) and splits (regeneration: one ends, several begin), in frame order.  Event e
 * happened at frame[e] (the children's first frame, 0-based), kind[e] is 1 (merge) or 2
 * (split); its parents are parent_ids[parent_offsets[e] .. parent_offsets[e+1]) and its children
 * child_ids[child_offsets[e] .. child_offsets[e+1]) (offsets [n + 1], from 0). */
enum { NPT_ARCHIVE_EVENT_MERGE = 1, NPT_ARCHIVE_EVENT_SPLIT = 2 };
typedef struct npt_archive_events {
  int64_t n;
  const int64_t *frame;
  const int32_t *kind;
  const int64_t *parent_offsets, *parent_ids;
  const int64_t *child_offsets, *child_ids;
  /* Written as the table's attributes dropped_ids and dropped_events: ids the writer could not
   * give a track (left out of their event), and events left with no parent or no child. */
  int64_t dropped_ids, dropped_events;
} npt_archive_events;

/* Writes the events table of video `name`, which must have been written (npt_archive_add_video
 * or npt_archive_stream_end) and have no events table yet; sets the video's `n_events`.  Checks
 * that events are in frame order, frames in the video, kinds known, every event has a parent and
 * a child and every id is in the video's tracks table.  Returns 0, NPT_EINVAL naming the video
 * and the event, or an HDF5 error.  After an error the archive can only be aborted. */
int npt_archive_write_events(npt_archive *a, const char *name, const npt_archive_events *e);

/* Closes the temporary file (everything written so far is on it), keeping the writer and its
 * state, so that other processes can open the file: the parallel row writer (archive_rows.h)
 * fills the detections columns of the videos streamed with npt_archive_stream_defer_rows.
 * npt_archive_resume opens it again, for more attributes and npt_archive_finish.  Between the
 * two, only npt_archive_abort and npt_archive_temp_path may be called. */
int npt_archive_suspend(npt_archive *a);
int npt_archive_resume(npt_archive *a);

/* Writes the root attributes, status = "complete" last, closes, fsyncs and renames the file into
 * place.  Frees `a` whatever happens; on error the temporary file is removed. */
int npt_archive_finish(npt_archive *a);

/* Gives up: closes and removes the temporary file, frees `a`. */
void npt_archive_abort(npt_archive *a);

/* The temporary file's path (tests). */
const char *npt_archive_temp_path(const npt_archive *a);

/* ------------------------------------------------------------------------------------------- */
/* Reading (nptrack info, nptrack export). */

typedef struct npt_archive_file npt_archive_file;

typedef struct npt_archive_video_info {
  const char *name;
  int64_t n_frames, n_detections, n_tracks;
  int64_t n_events; /* -1: the video has no events table (written without lineage) */
  int64_t height, width, embed_dim;
  double frame_rate_hz, pixel_size_nm; /* NAN when unknown */
  char *source_path, *pixel_size_source;
  int64_t replay_source_frames; /* > 0: a replayed benchmark input of that many stored frames */
} npt_archive_video_info;

/* Opens an archive of any status (check npt_archive_file_status before trusting its tables).
 * Returns 0, NPT_EIO (not HDF5) or NPT_EFORMAT (not an archive, or a newer format version). */
int npt_archive_file_open(npt_archive_file **out, const char *path);
void npt_archive_file_close(npt_archive_file *f);

/* The root `status` ("complete", "writing", or "" when absent). */
const char *npt_archive_file_status(const npt_archive_file *f);
int npt_archive_file_is_complete(const npt_archive_file *f);
int npt_archive_file_n_videos(const npt_archive_file *f);
const char *npt_archive_file_video_name(const npt_archive_file *f, int i);

/* A root string attribute; *out malloc'd, NULL when absent. */
int npt_archive_file_root_attr(npt_archive_file *f, const char *name, char **out);

/* The run's timings as text, "total 12.5 s, detect 10.2 s" (root attributes timing_*_s), or ""
 * for none; *out malloc'd. */
int npt_archive_file_timings(npt_archive_file *f, char **out);

/* Finds a video by name (NULL: the only one).  Returns its index, or NPT_EINVAL with a message
 * naming the file and listing the videos. */
int npt_archive_file_find_video(const npt_archive_file *f, const char *name);

/* The metadata of video `i`; strings owned by `f` until it is closed. */
const npt_archive_video_info *npt_archive_file_video_info(const npt_archive_file *f, int i);

/* A video's detections, owned columns (free with npt_archive_cols_free). */
typedef struct npt_archive_cols {
  int64_t n;
  int64_t *frame, *track_id;
  float *x, *y, *w, *h, *score;
  int32_t *cls;
} npt_archive_cols;

int npt_archive_file_read_detections(npt_archive_file *f, int video, npt_archive_cols *out);
void npt_archive_cols_free(npt_archive_cols *c);

/* A video's events table, owned columns (free with npt_archive_events_cols_free); a video without
 * one reads as no events. */
typedef struct npt_archive_events_cols {
  int64_t n;
  int64_t *frame;
  int32_t *kind;
  int64_t *parent_offsets, *parent_ids, *child_offsets, *child_ids;
} npt_archive_events_cols;
int npt_archive_file_read_events(npt_archive_file *f, int video, npt_archive_events_cols *out);
void npt_archive_events_cols_free(npt_archive_events_cols *c);

#endif
