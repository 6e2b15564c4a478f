/* Every rank's part of the archive (run_internal.h, npt_run_write_rows): the detections columns
 * of the chunks it holds, written in parallel into the archive the root has made
 * (io/archive_rows.h).
 *
 * A rank's chunks of a video are written in pieces: a piece is a run of its chunks that are next
 * to each other in the table (consecutive chunk indices), as many as fit in a memory budget
 * (WRITE_BYTES; at least one chunk), written with one collective write per column.  Every rank
 * joins as many collective writes per video as the rank with the most pieces (the others with
 * empty selections).  Memory is bounded by the budget or one chunk, never by the video.
 *
 * Why not one piece of all a rank's chunks (a union of hyperslabs, one collective write per
 * column per video)?  HDF5 1.10.8 maps an irregular selection to the dataset's chunks element by
 * element: measured on this machine (docs/performance.md, "Archive writing"), a union of 2 to 49
 * runs per rank made the collective write of 1M rows x 64 float16 values 5x slower than one
 * write per run, while each further collective write costs about 10 ms.  One rank, or ranks
 * holding neighbouring chunks, still write a video's rows in one piece.
 *
 * Errors: reading a part, checking its rows and preparing the selection can fail on one rank;
 * every rank agrees on that (npt_mpi_agree) before each collective write, so all stop together
 * and close the file together.  A collective write or close that fails on one rank is that
 * rank's alone (*agreed = 0): the top level aborts the job. */
#include <stdlib.h>
#include <string.h>

#include "cli/run_internal.h"
#include "common/error.h"
#include "io/archive_rows.h"

/* Memory of a rank's piece of rows (the rows as read, and the columns made from them). */
enum { WRITE_BYTES = 64 << 20 };

/* Rows per piece: the budget, or (tests only) NPTRACK_TEST_WRITE_ROWS, so that small test videos
 * also take several pieces. */
static int64_t piece_rows(int embed_dim) {
  const char *env = getenv("NPTRACK_TEST_WRITE_ROWS");
  char *end = NULL;
  long long n = env && *env ? strtoll(env, &end, 10) : 0;
  if (n > 0 && end && !*end)
    return (int64_t)n;
  return WRITE_BYTES / (64 + 6 * (int64_t)embed_dim);
}

/* This rank's chunks of video v: mine[*first .. *end). */
static void video_range(const npt_run *r, int v, const int64_t *mine, int n_mine, int *first,
                        int *end) {
  int i = 0;
  while (i < n_mine && mine[i] < r->plan.video_chunk[v])
    i++;
  *first = i;
  while (i < n_mine && mine[i] < r->plan.video_chunk[v + 1])
    i++;
  *end = i;
}

/* Pieces of chunks mine[first..end): piece p starts at mine[start[p]].  Returns the count. */
static int make_pieces(const int64_t *mine, int first, int end, const npt_run_chunk_rows *cr,
                       int64_t budget, int *start) {
  int n = 0;
  int64_t rows = 0;
  for (int i = first; i < end; i++) {
    int64_t k = cr[mine[i]].n;
    if (i == first || rows + k > budget || mine[i] != mine[i - 1] + 1) {
      start[n++] = i;
      rows = 0;
    }
    rows += k;
  }
  start[n] = end;
  return n;
}

/* Reads piece [a, b) of this rank's chunks into `out` with its runs.  Not collective. */
static int read_piece(const npt_run *r, const int64_t *mine, int a, int b,
                      const npt_run_chunk_rows *cr, npt_part_rows *out, int64_t *off, int64_t *cnt,
                      int *n_runs) {
  out->n = 0;
  *n_runs = 0;
  for (int i = a; i < b; i++) {
    int64_t c = mine[i];
    npt_part_rows rows = {0};
    npt_tracklets t = {0};
    npt_part_events ev = {0};
    int64_t before = out->n;
    int rc = npt_run_read_part(r, c, &rows, &t, &ev);
    if (rc == 0)
      rc = npt_run_owned_rows(r, c, &rows, &cr[c], out);
    npt_part_rows_free(&rows);
    npt_tracklets_free(&t);
    npt_part_events_free(&ev);
    NPT_TRY(rc);
    if (out->n - before != cr[c].n)
      return npt_error_set(NPT_EFORMAT, "chunk %lld: %lld rows to write, the root counted %lld",
                           (long long)c, (long long)(out->n - before), (long long)cr[c].n);
    if (cr[c].n > 0 && *n_runs > 0 && off[*n_runs - 1] + cnt[*n_runs - 1] == cr[c].offset) {
      cnt[*n_runs - 1] += cr[c].n; /* the next chunk's rows follow: one run, a regular selection */
    } else if (cr[c].n > 0) {
      off[*n_runs] = cr[c].offset;
      cnt[*n_runs] = cr[c].n;
      (*n_runs)++;
    }
  }
  return 0;
}

int npt_run_write_rows(const npt_mpi_world *w, const npt_run *r, const char *tmp, const char *path,
                       int embed_dim, const int64_t *mine, int n_mine, const npt_run_chunk_rows *cr,
                       double *write_s, int *agreed) {
  double t0 = npt_cli_now_s();
  *agreed = 1;
  int embed_all = r->ao.embeddings == NPT_ARCHIVE_EMBED_ALL;
  int *start = malloc(sizeof *start * (size_t)(n_mine + 1));
  int *rounds = calloc((size_t)r->n_videos, sizeof *rounds);
  int64_t *off = malloc(sizeof *off * (size_t)(n_mine + 1));
  int64_t *cnt = malloc(sizeof *cnt * (size_t)(n_mine + 1));
  int lrc = start && rounds && off && cnt ? 0 : npt_error_set(NPT_ENOMEM, "out of memory");
  const int d = embed_all ? embed_dim : 0; /* the embeddings the piece keeps */
  int64_t budget = piece_rows(d);
  for (int v = 0; v < r->n_videos && lrc == 0; v++) {
    int first, end;
    video_range(r, v, mine, n_mine, &first, &end);
    rounds[v] = make_pieces(mine, first, end, cr, budget, start);
  }
  int rc = npt_mpi_agree(w, lrc);
  /* Every rank joins as many writes per video as the rank with the most pieces. */
  if (rc == 0 && w->size > 1) {
    MPI_Request req;
    int e = MPI_Iallreduce(MPI_IN_PLACE, rounds, r->n_videos, MPI_INT, MPI_MAX, w->comm, &req);
    rc = e == MPI_SUCCESS ? npt_mpi_wait(&req)
                          : npt__mpi_fail(e, __FILE__, __LINE__, "MPI_Iallreduce");
  }
  npt_archive_rows_file *f = NULL;
  if (rc == 0) {
    *agreed = 0;
    rc = npt_archive_rows_open(&f, tmp, path, w->comm);
    if (rc < 0) /* the open is collective: a failure anywhere is this rank's */
      goto out;
    *agreed = 1;
  }
  npt_part_rows piece = {.embed_dim = d};
  for (int v = 0; v < r->n_videos && rc == 0; v++) {
    *agreed = 0;
    rc = npt_archive_rows_video(f, r->names[v]);
    if (rc < 0)
      break;
    *agreed = 1;
    int first, end;
    video_range(r, v, mine, n_mine, &first, &end);
    int mine_n = make_pieces(mine, first, end, cr, budget, start);
    for (int p = 0; p < rounds[v] && rc == 0; p++) {
      int n_runs = 0;
      lrc = 0;
      piece.n = 0;
      if (p < mine_n)
        lrc = read_piece(r, mine, start[p], start[p + 1], cr, &piece, off, cnt, &n_runs);
      if (lrc == 0 && p == 0 && v == r->n_videos - 1)
        lrc = npt_run_fault(w->rank, "rows");
      npt_archive_rows ar = npt_run_archive_rows(&piece);
      if (lrc == 0)
        lrc = npt_archive_rows_prepare(f, &ar, n_runs, off, cnt);
      rc = npt_mpi_agree(w, lrc);
      if (rc < 0)
        break;
      /* Test-only: this rank fails inside the collective write, leaving the others in it. */
      *agreed = 0;
      rc = npt_run_fault(w->rank, "rowswrite");
      if (rc == 0)
        rc = npt_archive_rows_write(f);
      if (rc == 0)
        *agreed = 1;
    }
  }
  npt_part_rows_free(&piece);
  if (f && *agreed) {
    /* Closing is collective: after an agreed error every rank closes too. */
    int crc = npt_archive_rows_close(f);
    if (crc < 0) {
      *agreed = 0;
      rc = crc;
    }
  }
out:
  free(start), free(rounds), free(off), free(cnt);
  *write_s = npt_cli_now_s() - t0;
  return rc;
}
