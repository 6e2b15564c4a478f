/* MPI helpers of the run: the world as the pipeline sees it (ranks, nodes, node-local rank),
 * error agreement before collectives, a waiting primitive that does not spin a core, and the
 * dynamic chunk counter.
 *
 * Errors: MPI calls are checked with NPT_MPI_CHECK (the communicator's error handler must be
 * MPI_ERRORS_RETURN), which records "file:line: the call: MPI's message" and returns NPT_EMPI.
 * Open MPI 4.1 has no fault-tolerant MPI: a rank that leaves a collective early leaves the
 * others blocked in it.  So every phase that can fail on some ranks ends with npt_mpi_agree
 * before the next collective, and an error that cannot be agreed on (one rank's, in the middle
 * of the chunk loop) is turned into MPI_Abort by the program's top level only. */
#ifndef NPT_MPI_UTIL_H
#define NPT_MPI_UTIL_H

#include <mpi.h>
#include <stdint.h>

int npt__mpi_fail(int mpi_code, const char *file, int line, const char *stmt);

#define NPT_MPI_CHECK(call)                                                                        \
  do {                                                                                             \
    int npt__e = (call);                                                                           \
    if (npt__e != MPI_SUCCESS)                                                                     \
      return npt__mpi_fail(npt__e, __FILE__, __LINE__, #call);                                     \
  } while (0)

typedef struct npt_mpi_world {
  MPI_Comm comm;
  int rank, size;
  int local_rank, local_size; /* among the ranks of this node (MPI_COMM_TYPE_SHARED) */
  int n_nodes;
  char host[64];
} npt_mpi_world;

/* Fills `w` for `comm`.  Collective. */
int npt_mpi_world_init(npt_mpi_world *w, MPI_Comm comm);

/* A world of one process without MPI (comm MPI_COMM_NULL): every helper here then works without
 * calling MPI, so a run that no launcher started needs no MPI_Init (Open MPI's singleton start
 * needs PMIx's shared-memory files, and fails where a small file-size limit is set). */
void npt_mpi_world_single(npt_mpi_world *w);

/* 1 when a launcher (mpirun/mpiexec, srun) started this process: its environment says so. */
int npt_mpi_launched(void);

/* Waits for `req` by testing it with short sleeps (0.2 ms growing to 5 ms), so that a rank
 * waiting on the root (which may be stitching or writing for a while) leaves its core to the
 * ranks that work: Open MPI's blocking calls busy-poll.  Not collective. */
int npt_mpi_wait(MPI_Request *req);

/* Agrees on the outcome of a phase: every rank passes its status; returns 0 on every rank when
 * all passed 0, else the status of the lowest failing rank, whose error message is recorded on
 * every rank (prefixed "rank R: " where the world has several ranks).  Collective. */
int npt_mpi_agree(const npt_mpi_world *w, int status);

/* Broadcasts root's status and message to every rank (the others pass anything), waiting with
 * npt_mpi_wait.  Collective. */
int npt_mpi_share_status(const npt_mpi_world *w, int root, int status);

/* The dynamic chunk counter.  Ranks take chunk indices 0, 1, 2, ... one at a time, whichever
 * asks first, until n_chunks are handed out.  Rank 0 serves the other ranks' requests from a
 * thread of its own (point-to-point on a duplicate of the communicator, polled with sleeps), so
 * requests are answered while rank 0 itself is inside a chunk: MPI one-sided counters in Open
 * MPI 4.1 need the target to enter MPI to progress over TCP, which a rank busy in inference does
 * not.  Needs MPI_THREAD_MULTIPLE with several ranks. */
typedef struct npt_chunk_counter npt_chunk_counter;

/* Progress callback, called on rank 0 (from either of its threads, never concurrently) each time
 * a rank reports frames done. */
typedef void (*npt_chunk_progress_fn)(void *ctx, int64_t frames_done_total);

/* Starts the counter.  Collective. */
int npt_chunk_counter_start(npt_chunk_counter **out, const npt_mpi_world *w, int64_t n_chunks,
                            npt_chunk_progress_fn progress, void *ctx);

/* The next chunk for this rank (*chunk = -1: none left).  frames_done: frames this rank finished
 * since its previous call (for the progress display).  Not collective. */
int npt_chunk_counter_next(npt_chunk_counter *c, int64_t frames_done, int64_t *chunk);

/* Ends the counter once this rank has been told -1 (rank 0 waits for every rank to have been
 * told).  Collective.  Frees `c`. */
int npt_chunk_counter_stop(npt_chunk_counter *c);

#endif
