/* What the parts of `nptrack run` share (cmd_run.c: the command and its MPI phases;
 * run_chunk.c: one chunk on one rank; run_assemble.c: stitching and the archive, on the root). */
#ifndef NPT_CLI_RUN_INTERNAL_H
#define NPT_CLI_RUN_INTERNAL_H

#include <stdint.h>

#include "cli/cli.h"
#include "cli/detect_common.h"
#include "config/config.h"
#include "io/archive.h"
#include "io/frames.h"
#include "mpi/mpi_util.h"
#include "pipeline/chunk_plan.h"
#include "pipeline/part_file.h"
#include "track/tracker.h"

/* A run's inputs and plan: the same on every rank. */
typedef struct npt_run {
  npt_detect_options o;
  npt_track_settings ts;
  npt_chunking_settings cs;
  npt_archive_options ao;
  char **videos; /* as given */
  int n_videos;
  char **names;          /* the archive's group names */
  npt_frames_info *info; /* each video's (from rank 0) */
  int64_t *first, *end;  /* searched frames of each video */
  npt_chunk_plan plan;
  char config_sha256[65]; /* of the result-relevant settings */
  char model_sha256[65];
  char *parts_dir; /* ARCHIVE.parts */
  int resume;
  /* --resume found the target complete, made from this very run (a requeued job that had
   * finished): nothing to do but remove what a kill after the archive's rename left. */
  int complete;
  /* The detector's threshold (the setting, else the model's): rows that score below it are
   * decoded only for ByteTrack's second pass (the engine decodes down to track.low_score) and
   * kept only where a track took them. */
  float keep_score;
} npt_run;

/* The command line. */
typedef struct run_args {
  char **list; /* owned copies of the videos (command line, then manifest) */
  npt_cli_cfgopts co;
  const char *out;
  int force, quiet, resume;
  char **videos;
  int n_videos;
} run_args;

/* Phase 1 (run_setup.c), collective, each ending in npt_mpi_agree: the configuration (rank 0
 * reads it, every rank parses its text; *cfg owned by the caller), then the run (videos, target,
 * plan, hashes; free with npt_run_free). */
int npt_run_setup_config(const npt_mpi_world *w, const run_args *a, npt_config **cfg);
int npt_run_setup(const npt_mpi_world *w, const run_args *a, const npt_config *cfg, npt_run *r);
void npt_run_free(npt_run *r);

/* The backend and GPU of this rank (`auto` resolved the same on every rank: cudnn when every
 * rank sees a GPU, else cpu; detect.device for a lone rank, else node-local rank % the node's
 * devices): *backend, *device and a description ("cpu", "cudnn:1") in desc.  Collective;
 * NPT_ECONFIG naming the host when a GPU backend finds no GPU. */
int npt_run_pick_device(const npt_mpi_world *w, const char **backend, int configured, int *device,
                        char *desc, size_t n);

/* What one rank did in the chunk phase, in seconds summed over its chunks: the frame loop's
 * stages (npt_cli_stage_times: reading, inference, tracking, each busy and waiting, overlapping
 * each other) and its wall time (frames_s), writing part files, resume checks, and the wait for
 * the slowest rank at the end. */
typedef struct npt_rank_stats {
  double read_s, read_wait_s, detect_s, detect_wait_frames_s, detect_wait_track_s, track_s,
      track_wait_s, frames_s;
  double part_s, resume_s, idle_s;
  int64_t chunks, frames, skipped, saturated;
} npt_rank_stats;

/* The SHA-256 of the settings that change a chunk's rows: detect.* (but the model path, which
 * the model's hash covers, threads, which change nothing, backend, device and batch, which
 * npt_run_config_hash_backend adds, and replay_frames, which the chunk's input hash covers),
 * track.* and chunking.*. */
int npt_run_config_hash(const npt_config *cfg, char hex[65]);
/* Folds the backend that runs (`auto` resolved) into `hex`, and the batch size for a GPU
 * backend, whose detections may depend on it (cuDNN picks algorithms per batch). */
void npt_run_config_hash_backend(char hex[65], const char *backend, int batch);

/* Test-only fault injection (NPTRACK_TEST_FAIL=RANK:STAGE, docs/architecture.md): returns an
 * error when this rank and stage are named; "kill-STAGE" kills the process with SIGKILL there
 * instead, "slow-STAGE" sleeps 5 s there (and returns 0).  Returns 0 otherwise. */
int npt_run_fault(int rank, const char *stage);

/* Runs one chunk on this rank: frames -> engine -> a fresh tracker -> the chunk's part file,
 * unless `resume` finds a part made from the same inputs (then *skipped = 1).  A part made from
 * other inputs is an error naming it.  `fr`/`fr_video` cache an open video between chunks.
 * Returns 0 or an error naming the chunk. */
int npt_run_chunk(const npt_run *r, npt_cli_engine *ce, int64_t chunk, int rank, npt_frames **fr,
                  int *fr_video, npt_rank_stats *st);

/* Where a chunk's owned rows go in its video's detections table, and its tracklets' global ids:
 * what the root's stitching gives the rank that writes the chunk's rows. */
typedef struct npt_run_chunk_rows {
  int64_t offset, n;       /* the table's rows offset .. offset + n - 1 */
  int64_t n_ids;           /* the chunk's tracklets: */
  int64_t *local, *global; /* local ids (increasing) and their global ids (-1: none) */
} npt_run_chunk_rows;
void npt_run_chunk_rows_free(npt_run_chunk_rows *cr, int n);

/* The archive writers' view of part rows (global ids already in p->id; embeddings only when
 * p->embed_dim > 0). */
npt_archive_rows npt_run_archive_rows(const npt_part_rows *p);

/* Root: stitches the parts and writes every video into the open archive `a`, all but the
 * detections columns (npt_archive_stream_defer_rows), which npt_run_write_rows fills.
 * cr[plan.n_chunks] (zeroed by the caller; npt_run_chunk_rows_free) receives every chunk's
 * placement and id map.  *tracks receives the number of global tracks, *dets the rows,
 * *events the lineage events written, *stitch_s and *write_s the times. */
int npt_run_assemble(const npt_run *r, npt_archive *a, npt_run_chunk_rows *cr, int64_t *tracks,
                     int64_t *dets, int64_t *events, int64_t *links_shared, int64_t *links_motion,
                     double *stitch_s, double *write_s);

/* Maps a chunk-local track id to its global id through the chunk's map (-1: none). */
int64_t npt_run_map_id(const npt_run_chunk_rows *m, int64_t local);

/* Reads chunk c's part and checks it is the planned chunk.  Not collective. */
int npt_run_read_part(const npt_run *r, int64_t c, npt_part_rows *rows, npt_tracklets *t,
                      npt_part_events *e);

/* Copies the rows of chunk c that the chunk owns (chunk_plan.h) from `rows` to the end of `out`,
 * with global ids through m, and their embeddings unless out->embed_dim is 0.  Returns 0,
 * NPT_EFORMAT (embeddings of another size) or NPT_ENOMEM. */
int npt_run_owned_rows(const npt_run *r, int64_t c, const npt_part_rows *rows,
                       const npt_run_chunk_rows *m, npt_part_rows *out);

/* Every rank: writes the detections columns of the suspended archive `tmp` (its final path
 * `path`, for messages) in parallel (io/archive_rows.h): each rank the owned rows of the chunks
 * it holds, mine[0..n_mine) (increasing), whose placement and maps are in cr; embed_dim is the
 * parts' embedding size.  Collective.  An
 * error found before a collective write is agreed on (every rank returns it, *agreed = 1); one
 * inside a collective write is this rank's alone (*agreed = 0: the top level must abort the
 * job).  *write_s receives this rank's time. */
int npt_run_write_rows(const npt_mpi_world *w, const npt_run *r, const char *tmp, const char *path,
                       int embed_dim, const int64_t *mine, int n_mine, const npt_run_chunk_rows *cr,
                       double *write_s, int *agreed);

/* What one rank did, as the root gathers it, in this order: seconds spent reading frames and
 * waiting for them, detecting (and waiting for frames, for the tracker), tracking (and waiting
 * for detections), in the frame loop, on part files, on resume checks and idle; chunks, frames,
 * chunks resumed, saturated frames, peak memory (bytes, after the chunks), and (after the
 * archive's rows) write seconds. */
enum {
  NPT_RUN_S_READ,
  NPT_RUN_S_READ_WAIT,
  NPT_RUN_S_DETECT,
  NPT_RUN_S_DETECT_WAIT_FRAMES,
  NPT_RUN_S_DETECT_WAIT_TRACK,
  NPT_RUN_S_TRACK,
  NPT_RUN_S_TRACK_WAIT,
  NPT_RUN_S_FRAMES_WALL,
  NPT_RUN_S_PARTS,
  NPT_RUN_S_RESUME,
  NPT_RUN_S_IDLE,
  NPT_RUN_S_CHUNKS,
  NPT_RUN_S_FRAMES,
  NPT_RUN_S_SKIPPED,
  NPT_RUN_S_SATURATED,
  NPT_RUN_S_MAXRSS,
  NPT_RUN_S_WRITE_ROWS,
  NPT_RUN_N_STATS
};

/* The run's counts for the closing line (root), the frame loops' times summed over ranks, and
 * the temporary archive a rank must remove when it aborts the job during the parallel write
 * (empty otherwise). */
typedef struct npt_run_totals {
  int complete; /* nothing was done: the archive was complete (npt_run.complete) */
  int64_t frames, dets, tracks, events, saturated;
  double chunk_wall_s;
  int ranks;
  double loop_s, read_s, detect_s, wait_frames_s, wait_track_s, track_s; /* summed over ranks */
  char temp[4096];
} npt_run_totals;

/* What the archive phases need from the command (stats, hosts and devs on the root only:
 * [size x NPT_RUN_N_STATS], [size x 64], [size x 32]). */
typedef struct npt_run_archive_in {
  const npt_config *cfg;
  const char *out; /* the archive */
  int force;
  const char *backend, *classes;
  int n_classes, embed_dim;
  double *stats;
  const char *hosts, *devs;
  double t_start, chunk_wall_s;
} npt_run_archive_in;

/* The archive phases (run_archive.c), every rank: the root's tables, the ranks' rows in
 * parallel, the root's last attributes and rename.  mine[0..n_mine): the chunks this rank holds
 * (increasing); holders[c] (root): the rank that holds chunk c.  Collective.  *agreed = 0 when
 * the error is this rank's alone (the top level must abort the job; tot->temp names the
 * temporary archive to remove first). */
int npt_run_archive(const npt_mpi_world *w, const npt_run_archive_in *in, const npt_run *r,
                    const int64_t *mine, int n_mine, const int *holders, npt_run_totals *tot,
                    int *agreed);

/* Root, once the archive at `target` is complete: removes the parts folder (its part files and
 * temporary parts) and the temporary archives killed runs left beside the target.  Not
 * collective; errors are ignored (what is left is harmless). */
void npt_run_remove_leftovers(const npt_run *r, const char *target);

#endif
