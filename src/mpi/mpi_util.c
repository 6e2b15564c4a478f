/* MPI helpers of the run (mpi_util.h). */
#include "mpi/mpi_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

enum { MSG_LEN = 1024, TAG_NEXT = 1, TAG_CHUNK = 2 };

int npt__mpi_fail(int mpi_code, const char *file, int line, const char *stmt) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mpi_code, msg, &len) != MPI_SUCCESS)
    snprintf(msg, sizeof msg, "MPI error %d", mpi_code);
  return npt__check_fail(NPT_EMPI, file, line, stmt, msg);
}

int npt_mpi_world_init(npt_mpi_world *w, MPI_Comm comm) {
  memset(w, 0, sizeof *w);
  w->comm = comm;
  NPT_MPI_CHECK(MPI_Comm_rank(comm, &w->rank));
  NPT_MPI_CHECK(MPI_Comm_size(comm, &w->size));
  MPI_Comm local;
  NPT_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &local));
  int rc = MPI_Comm_rank(local, &w->local_rank);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_size(local, &w->local_size);
  MPI_Comm_free(&local);
  if (rc != MPI_SUCCESS)
    return npt__mpi_fail(rc, __FILE__, __LINE__, "MPI_Comm_rank/size(node)");
  int leader = w->local_rank == 0;
  NPT_MPI_CHECK(MPI_Allreduce(&leader, &w->n_nodes, 1, MPI_INT, MPI_SUM, comm));
  if (gethostname(w->host, sizeof w->host) != 0)
    snprintf(w->host, sizeof w->host, "?");
  w->host[sizeof w->host - 1] = '\0';
  return 0;
}

void npt_mpi_world_single(npt_mpi_world *w) {
  memset(w, 0, sizeof *w);
  w->comm = MPI_COMM_NULL;
  w->size = w->local_size = w->n_nodes = 1;
  if (gethostname(w->host, sizeof w->host) != 0)
    snprintf(w->host, sizeof w->host, "?");
  w->host[sizeof w->host - 1] = '\0';
}

int npt_mpi_launched(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                     "MPI_LOCALNRANKS",      NULL};
  for (int i = 0; vars[i]; i++)
    if (getenv(vars[i]))
      return 1;
  return 0;
}

int npt_mpi_wait(MPI_Request *req) {
  long ns = 200000;
  for (;;) {
    int done = 0;
    NPT_MPI_CHECK(MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (done)
      return 0;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
    if (ns < 5000000)
      ns += ns / 2;
  }
}

int npt_mpi_share_status(const npt_mpi_world *w, int root, int status) {
  if (w->size == 1)
    return status;
  struct {
    int status;
    char msg[MSG_LEN];
  } m = {status, ""};
  if (w->rank == root && status < 0)
    snprintf(m.msg, sizeof m.msg, "%s", npt_error_msg(status));
  MPI_Request req;
  NPT_MPI_CHECK(MPI_Ibcast(&m, (int)sizeof m, MPI_BYTE, root, w->comm, &req));
  NPT_TRY(npt_mpi_wait(&req));
  if (m.status < 0 && w->rank != root)
    npt_error_set(m.status, "%s", m.msg);
  return m.status;
}

int npt_mpi_agree(const npt_mpi_world *w, int status) {
  if (w->size == 1)
    return status < 0 ? status : 0;
  int mine = status < 0 ? w->rank : w->size, first = w->size;
  MPI_Request req;
  NPT_MPI_CHECK(MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, w->comm, &req));
  NPT_TRY(npt_mpi_wait(&req));
  if (first == w->size)
    return 0;
  if (w->rank == first && w->size > 1) {
    char buf[MSG_LEN];
    snprintf(buf, sizeof buf, "%s", npt_error_msg(status));
    npt_error_set(status, "rank %d: %s", first, buf);
  }
  return npt_mpi_share_status(w, first, w->rank == first ? status : 0);
}

/* ------------------------------------------------------------------------------------------- */
/* The chunk counter */

struct npt_chunk_counter {
  const npt_mpi_world *w;
  MPI_Comm comm; /* a duplicate: the server's messages never meet the collectives */
  int64_t n_chunks, next, frames_done;
  pthread_mutex_t lock;
  pthread_t thread;
  int have_thread;
  int server_rc;
  npt_chunk_progress_fn progress;
  void *ctx;
};

/* Takes the next index and adds frames to the progress (rank 0, either thread). */
static int64_t take(npt_chunk_counter *c, int64_t frames) {
  pthread_mutex_lock(&c->lock);
  int64_t k = c->next < c->n_chunks ? c->next++ : -1;
  c->frames_done += frames;
  if (frames > 0 && c->progress)
    c->progress(c->ctx, c->frames_done);
  pthread_mutex_unlock(&c->lock);
  return k;
}

static int serve(npt_chunk_counter *c) {
  int finished = 0; /* ranks told -1 */
  while (finished < c->w->size - 1) {
    int64_t frames = 0;
    MPI_Request req;
    MPI_Status st;
    NPT_MPI_CHECK(MPI_Irecv(&frames, 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_NEXT, c->comm, &req));
    long ns = 100000;
    for (;;) {
      int done = 0;
      NPT_MPI_CHECK(MPI_Test(&req, &done, &st));
      if (done)
        break;
      struct timespec ts = {0, ns};
      nanosleep(&ts, NULL);
      if (ns < 2000000)
        ns += ns / 2;
    }
    int64_t k = take(c, frames);
    NPT_MPI_CHECK(MPI_Send(&k, 1, MPI_INT64_T, st.MPI_SOURCE, TAG_CHUNK, c->comm));
    finished += k < 0;
  }
  return 0;
}

static void *server_main(void *arg) {
  npt_chunk_counter *c = arg;
  c->server_rc = serve(c);
  return NULL;
}

int npt_chunk_counter_start(npt_chunk_counter **out, const npt_mpi_world *w, int64_t n_chunks,
                            npt_chunk_progress_fn progress, void *ctx) {
  *out = NULL;
  npt_chunk_counter *c = calloc(1, sizeof *c);
  NPT_ALLOC_CHECK(c);
  c->w = w;
  c->n_chunks = n_chunks;
  c->progress = progress;
  c->ctx = ctx;
  pthread_mutex_init(&c->lock, NULL);
  c->comm = MPI_COMM_NULL;
  if (w->size == 1) {
    *out = c;
    return 0;
  }
  int rc = MPI_Comm_dup(w->comm, &c->comm);
  if (rc != MPI_SUCCESS) {
    pthread_mutex_destroy(&c->lock);
    free(c);
    return npt__mpi_fail(rc, __FILE__, __LINE__, "MPI_Comm_dup");
  }
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  if (w->rank == 0 && w->size > 1) {
    if (pthread_create(&c->thread, NULL, server_main, c) != 0) {
      MPI_Comm_free(&c->comm);
      pthread_mutex_destroy(&c->lock);
      free(c);
      return npt_error_set(NPT_EINTERNAL, "rank 0: cannot start the chunk counter's thread");
    }
    c->have_thread = 1;
  }
  *out = c;
  return 0;
}

int npt_chunk_counter_next(npt_chunk_counter *c, int64_t frames_done, int64_t *chunk) {
  if (c->w->rank == 0) {
    *chunk = take(c, frames_done);
    return 0;
  }
  NPT_MPI_CHECK(MPI_Send(&frames_done, 1, MPI_INT64_T, 0, TAG_NEXT, c->comm));
  MPI_Request req;
  NPT_MPI_CHECK(MPI_Irecv(chunk, 1, MPI_INT64_T, 0, TAG_CHUNK, c->comm, &req));
  return npt_mpi_wait(&req);
}

int npt_chunk_counter_stop(npt_chunk_counter *c) {
  int rc = 0;
  if (c->have_thread) {
    pthread_join(c->thread, NULL);
    rc = c->server_rc;
  }
  if (c->comm != MPI_COMM_NULL)
    MPI_Comm_free(&c->comm);
  pthread_mutex_destroy(&c->lock);
  free(c);
  return rc;
}
