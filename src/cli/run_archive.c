/* The archive phases of `nptrack run` (run_internal.h, npt_run_archive), after the chunk phase:
 *
 *   1. root (the others wait, sleeping): the archive's temporary file, the run's provenance,
 *      stitching and every table but the detections columns (run_assemble.c); the file is then
 *      closed (npt_archive_suspend).  Its status is shared: a failure ends every rank with the
 *      root's message, and the root removes the file.
 *   2. every rank: the root hands each rank the placement and id maps of the chunks that rank
 *      holds (MPI_Scatterv), then all write the detections columns in parallel (run_rows.c).
 *   3. root: the file again (npt_archive_resume): per-rank lines with the write times, the
 *      timings, status = "complete", rename into place; the parts are removed.
 *
 * Every collective is preceded by an agreement (npt_mpi_agree), except inside the parallel
 * write, where an error in a collective call is one rank's and ends the job (MPI_Abort at the
 * top level; that rank removes the temporary file first). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_internal.h"
#include "common/error.h"

/* Per-rank provenance, one line per rank, on the root.  An HDF5 attribute holds at most 64 KiB:
 * past RANK_LINES_MAX bytes the remaining ranks are summarised in one line. */
enum { RANK_LINES_MAX = 60000 };

static char *rank_lines(int size, const double *st, const char *hosts, const char *devs) {
  size_t cap = RANK_LINES_MAX + 512, used = 0;
  char *s = malloc(cap);
  if (!s)
    return NULL;
  s[0] = '\0';
  for (int i = 0; i < size; i++) {
    const double *x = st + (size_t)i * NPT_RUN_N_STATS;
    char line[832];
    int n = snprintf(
        line, sizeof line,
        "rank %d: host %.64s, device %.32s, %lld chunks (%lld resumed), %lld frames, "
        "frame loop %.3f s: read %.3f s (waited %.3f s), detect %.3f s (waited %.3f s for "
        "frames, %.3f s for the tracker), track %.3f s (waited %.3f s); part files %.3f s, "
        "resume checks %.3f s, idle %.3f s, peak memory %.1f MB, write rows %.3f s\n",
        i, hosts + (size_t)i * 64, devs + (size_t)i * 32, (long long)x[NPT_RUN_S_CHUNKS],
        (long long)x[NPT_RUN_S_SKIPPED], (long long)x[NPT_RUN_S_FRAMES],
        x[NPT_RUN_S_FRAMES_WALL], x[NPT_RUN_S_READ], x[NPT_RUN_S_READ_WAIT],
        x[NPT_RUN_S_DETECT], x[NPT_RUN_S_DETECT_WAIT_FRAMES], x[NPT_RUN_S_DETECT_WAIT_TRACK],
        x[NPT_RUN_S_TRACK], x[NPT_RUN_S_TRACK_WAIT], x[NPT_RUN_S_PARTS], x[NPT_RUN_S_RESUME],
        x[NPT_RUN_S_IDLE], x[NPT_RUN_S_MAXRSS] / 1e6, x[NPT_RUN_S_WRITE_ROWS]);
    if (n < 0 || (size_t)n >= sizeof line || used + (size_t)n > RANK_LINES_MAX) {
      snprintf(s + used, cap - used, "... and %d more ranks (not listed: attribute size)\n",
               size - i);
      break;
    }
    memcpy(s + used, line, (size_t)n + 1);
    used += (size_t)n;
  }
  return s;
}

/* The nodes' host names, each once, in rank order, space-separated (at most ~60 KiB). */
static char *host_list(int size, const char *hosts) {
  size_t cap = RANK_LINES_MAX, used = 0;
  char *s = calloc(cap, 1);
  for (int i = 0; s && i < size; i++) {
    const char *h = hosts + (size_t)i * 64;
    int seen = 0;
    for (int j = 0; j < i && !seen; j++)
      seen = !strncmp(h, hosts + (size_t)j * 64, 64);
    size_t n = strnlen(h, 64);
    if (seen || used + n + 2 > cap)
      continue;
    if (used)
      s[used++] = ' ';
    memcpy(s + used, h, n);
    used += n;
  }
  return s;
}

/* Removes the parts folder: its part files (this plan's, and any an earlier run with another
 * plan left) and temporary parts that killed writers left (".chunk_NNNNNN.h5.PID.part").
 * Anything else keeps the folder. */
static void remove_parts(const npt_run *r) {
  DIR *d = opendir(r->parts_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    const char *n = e->d_name;
    size_t len = strlen(n);
    int part = !strncmp(n, "chunk_", 6) && len > 3 && !strcmp(n + len - 3, ".h5");
    int temp = !strncmp(n, ".chunk_", 7) && len > 5 && !strcmp(n + len - 5, ".part");
    if (part || temp) {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", r->parts_dir, n);
      unlink(p);
    }
  }
  if (d)
    closedir(d);
  rmdir(r->parts_dir);
}

/* Removes the temporary archives that killed runs for the same target left beside it
 * (".NAME.PID.part", common/path.h; the archive writer removes its own on an error, but a
 * SIGKILL leaves it).  Called once the archive is complete: each such file is then a dead
 * writer's (a run writing the same target at the same time would clash in the parts anyway). */
static void remove_stale_temps(const char *target) {
  const char *slash = strrchr(target, '/');
  const char *base = slash ? slash + 1 : target;
  char dir[4096] = ".";
  if (slash)
    snprintf(dir, sizeof dir, "%.*s", slash == target ? 1 : (int)(slash - target), target);
  size_t nb = strlen(base);
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    const char *n = e->d_name, *p = n + 1 + nb + 1;
    size_t len = strlen(n);
    if (n[0] != '.' || len <= nb + 7 || strncmp(n + 1, base, nb) || n[1 + nb] != '.' ||
        strcmp(n + len - 5, ".part"))
      continue;
    while (*p >= '0' && *p <= '9')
      p++;
    if (p == n + 1 + nb + 1 || p != n + len - 5)
      continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, n);
    unlink(path);
  }
  if (d)
    closedir(d);
}

void npt_run_remove_leftovers(const npt_run *r, const char *target) {
  remove_parts(r);
  remove_stale_temps(target);
}

/* An error of the root's own phases, named like the other phases' errors under several ranks
 * ("rank 0: ..."). */
static int name_root(const npt_mpi_world *w, int rc) {
  if (rc < 0 && w->size > 1) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s", npt_error_msg(rc));
    npt_error_set(rc, "rank 0: %s", msg);
  }
  return rc;
}

/* What the root's phases keep between them. */
typedef struct root_state {
  npt_archive *ar;
  int64_t links_shared, links_motion;
  double stitch_s, tables_s;
} root_state;

/* Phase 1, root only: provenance, stitching, the tables; the file is left suspended. */
static int root_tables(const npt_mpi_world *w, const npt_run_archive_in *in, const npt_run *r,
                       npt_run_chunk_rows *cr, npt_run_totals *tot, root_state *rs) {
  npt_archive_options ao = r->ao;
  ao.force = in->force;
  char *text = npt_config_text(in->cfg);
  if (!text)
    return npt_error_set(NPT_ENOMEM, "out of memory");
  int rc = npt_archive_open(&rs->ar, in->out, &ao);
  if (rc == 0) {
    npt_archive_run run = {
        text, r->o.model, r->model_sha256, in->backend, in->classes, in->n_classes, NULL, 0};
    rc = npt_archive_set_run(rs->ar, &run);
  }
  free(text);
  char plan[128];
  snprintf(plan, sizeof plan, "%d chunks of %lld frames, overlap %lld", r->plan.n_chunks,
           (long long)r->cs.frames, (long long)r->cs.overlap);
  char *hosts = host_list(w->size, in->hosts);
  if (rc == 0 && !hosts)
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0)
    rc = npt_archive_set_attr_i64(rs->ar, "mpi_ranks", w->size);
  if (rc == 0)
    rc = npt_archive_set_attr_i64(rs->ar, "mpi_nodes", w->n_nodes);
  if (rc == 0)
    rc = npt_archive_set_attr_str(rs->ar, "mpi_hosts", hosts);
  if (rc == 0)
    rc = npt_archive_set_attr_str(rs->ar, "chunk_plan", plan);
  free(hosts);
  if (rc == 0)
    rc = npt_run_assemble(r, rs->ar, cr, &tot->tracks, &tot->dets, &tot->events, &rs->links_shared,
                          &rs->links_motion, &rs->stitch_s, &rs->tables_s);
  if (rc == 0)
    rc = npt_archive_suspend(rs->ar);
  if (rc < 0 && rs->ar) {
    npt_archive_abort(rs->ar);
    rs->ar = NULL;
  }
  return rc;
}

/* Phase 3, root only: the final attributes and the rename.  stats: every rank's, the write
 * times in. */
static int root_finish(const npt_mpi_world *w, const npt_run_archive_in *in, const npt_run *r,
                       root_state *rs, double rows_s) {
  int rc = npt_archive_resume(rs->ar);
  char *lines = rank_lines(w->size, in->stats, in->hosts, in->devs);
  if (rc == 0 && !lines)
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0)
    rc = npt_archive_set_attr_str(rs->ar, "ranks", lines);
  free(lines);
  if (rc == 0)
    rc = npt_archive_set_attr_i64(rs->ar, "stitch_links_shared", rs->links_shared);
  if (rc == 0)
    rc = npt_archive_set_attr_i64(rs->ar, "stitch_links_motion", rs->links_motion);
  double sum[NPT_RUN_N_STATS] = {0};
  for (int i = 0; i < w->size; i++)
    for (int k = 0; k < NPT_RUN_N_STATS; k++)
      sum[k] += in->stats[(size_t)i * NPT_RUN_N_STATS + k];
  const struct {
    const char *name;
    double s;
  } t[] = {{"read", sum[NPT_RUN_S_READ]},
           {"detect", sum[NPT_RUN_S_DETECT]},
           {"track", sum[NPT_RUN_S_TRACK]},
           {"parts", sum[NPT_RUN_S_PARTS]},
           {"chunks", in->chunk_wall_s},
           {"stitch", rs->stitch_s},
           {"write_tables", rs->tables_s},
           {"write_rows", rows_s},
           {"write", rs->tables_s + rows_s},
           {"total", npt_cli_now_s() - in->t_start}};
  for (size_t i = 0; i < sizeof t / sizeof t[0] && rc == 0; i++)
    rc = npt_archive_set_timing(rs->ar, t[i].name, t[i].s);
  if (rc == 0)
    rc = npt_archive_finish(rs->ar);
  else
    npt_archive_abort(rs->ar);
  rs->ar = NULL;
  if (rc == 0) /* tests: a kill here leaves a whole archive and the parts (kill_resume.sh) */
    rc = npt_run_fault(0, "renamed");
  if (rc == 0)
    npt_run_remove_leftovers(r, in->out);
  return rc;
}

/* Packs, for rank q, the entries of the chunks it holds: chunk, offset, n, n_ids, local ids,
 * global ids (int64 each). */
static int64_t pack_size(const npt_run_chunk_rows *cr, const int64_t *list, int n) {
  int64_t s = 0;
  for (int i = 0; i < n; i++)
    s += 4 + 2 * cr[list[i]].n_ids;
  return s;
}

static void pack(const npt_run_chunk_rows *cr, const int64_t *list, int n, int64_t *p) {
  for (int i = 0; i < n; i++) {
    const npt_run_chunk_rows *m = &cr[list[i]];
    *p++ = list[i], *p++ = m->offset, *p++ = m->n, *p++ = m->n_ids;
    memcpy(p, m->local, sizeof *p * (size_t)m->n_ids), p += m->n_ids;
    memcpy(p, m->global, sizeof *p * (size_t)m->n_ids), p += m->n_ids;
  }
}

static int unpack(npt_run_chunk_rows *cr, int n_chunks, const int64_t *p, int64_t len) {
  const int64_t *e = p + len;
  while (p < e) {
    if (e - p < 4 || p[0] < 0 || p[0] >= n_chunks || p[3] < 0 || e - p - 4 < 2 * p[3])
      return npt_error_set(NPT_EINTERNAL, "the chunks' placement came garbled");
    npt_run_chunk_rows *m = &cr[p[0]];
    m->offset = p[1], m->n = p[2], m->n_ids = p[3];
    p += 4;
    m->local = malloc(sizeof *m->local * (size_t)(m->n_ids + 1));
    m->global = malloc(sizeof *m->global * (size_t)(m->n_ids + 1));
    if (!m->local || !m->global)
      return npt_error_set(NPT_ENOMEM, "out of memory");
    memcpy(m->local, p, sizeof *p * (size_t)m->n_ids), p += m->n_ids;
    memcpy(m->global, p, sizeof *p * (size_t)m->n_ids), p += m->n_ids;
  }
  return 0;
}

static int wait_or_fail(int e, MPI_Request *req, const char *what) {
  return e == MPI_SUCCESS ? npt_mpi_wait(req) : npt__mpi_fail(e, __FILE__, __LINE__, what);
}

/* Phase 2's first step: every rank gets the placement of its chunks, and the temporary file's
 * name.  holders[c] (root): the rank holding chunk c.  Collective. */
static int distribute(const npt_mpi_world *w, const npt_run *r, const int *holders,
                      npt_run_chunk_rows *cr, char *tmp, size_t tmp_n) {
  if (w->size == 1)
    return 0;
  int n = r->plan.n_chunks, lrc = 0;
  int *counts = NULL, *displs = NULL, *cn = NULL;
  int64_t **lists = NULL, *send = NULL, *recv = NULL;
  if (w->rank == 0) {
    counts = calloc((size_t)w->size, sizeof *counts);
    displs = calloc((size_t)w->size, sizeof *displs);
    cn = calloc((size_t)w->size, sizeof *cn);
    lists = calloc((size_t)w->size, sizeof *lists);
    for (int q = 0; lists && q < w->size; q++)
      lists[q] = malloc(sizeof **lists * (size_t)(n + 1));
    int64_t total = 0;
    for (int q = 0; lists && q < w->size; q++)
      if (!lists[q])
        lrc = -1;
    if (!counts || !displs || !cn || !lists || lrc)
      lrc = npt_error_set(NPT_ENOMEM, "out of memory");
    for (int c = 0; c < n && lrc == 0; c++)
      lists[holders[c]][cn[holders[c]]++] = c;
    for (int q = 0; q < w->size && lrc == 0; q++) {
      int64_t s = q == 0 ? 0 : pack_size(cr, lists[q], cn[q]); /* the root has its own */
      if (s > 0x7fffffff || total + s > 0x7fffffff)
        lrc = npt_error_set(NPT_EINTERNAL, "the chunks' id maps exceed one MPI message");
      counts[q] = (int)s, displs[q] = (int)total, total += s;
    }
    if (lrc == 0 && !(send = malloc(sizeof *send * (size_t)(total + 1))))
      lrc = npt_error_set(NPT_ENOMEM, "out of memory");
    for (int q = 1; q < w->size && lrc == 0; q++)
      pack(cr, lists[q], cn[q], send + displs[q]);
  }
  int rc = npt_mpi_agree(w, lrc), mine = 0;
  MPI_Request req;
  if (rc == 0)
    rc = wait_or_fail(MPI_Iscatter(counts, 1, MPI_INT, &mine, 1, MPI_INT, 0, w->comm, &req), &req,
                      "MPI_Iscatter");
  if (rc == 0)
    rc = wait_or_fail(MPI_Ibcast(tmp, (int)tmp_n, MPI_CHAR, 0, w->comm, &req), &req, "MPI_Ibcast");
  if (rc == 0) {
    lrc = (recv = malloc(sizeof *recv * (size_t)(mine + 1)))
              ? 0
              : npt_error_set(NPT_ENOMEM, "out of memory");
    rc = npt_mpi_agree(w, lrc);
  }
  if (rc == 0)
    rc = wait_or_fail(
        MPI_Iscatterv(send, counts, displs, MPI_INT64_T, recv, mine, MPI_INT64_T, 0, w->comm, &req),
        &req, "MPI_Iscatterv");
  if (rc == 0)
    rc = npt_mpi_agree(w, w->rank == 0 ? 0 : unpack(cr, n, recv, mine));
  for (int q = 0; lists && q < w->size; q++)
    free(lists[q]);
  free(lists), free(counts), free(displs), free(cn), free(send), free(recv);
  return rc;
}

int npt_run_archive(const npt_mpi_world *w, const npt_run_archive_in *in, const npt_run *r,
                    const int64_t *mine, int n_mine, const int *holders, npt_run_totals *tot,
                    int *agreed) {
  *agreed = 1;
  root_state rs = {0};
  npt_run_chunk_rows *cr = calloc((size_t)r->plan.n_chunks + 1, sizeof *cr);
  int lrc = cr ? 0 : npt_error_set(NPT_ENOMEM, "out of memory");
  int rc = npt_mpi_agree(w, lrc);
  if (rc < 0) {
    free(cr);
    return rc;
  }
  char tmp[4096] = "";
  if (w->rank == 0) {
    lrc = name_root(w, root_tables(w, in, r, cr, tot, &rs));
    if (lrc == 0)
      snprintf(tmp, sizeof tmp, "%s", npt_archive_temp_path(rs.ar));
  }
  rc = npt_mpi_share_status(w, 0, lrc);
  double t_rows = npt_cli_now_s(), write_s = 0;
  if (rc == 0)
    rc = distribute(w, r, holders, cr, tmp, sizeof tmp);
  if (rc == 0) {
    snprintf(tot->temp, sizeof tot->temp, "%s", tmp);
    rc = npt_run_write_rows(w, r, tmp, in->out, in->embed_dim, mine, n_mine, cr, &write_s, agreed);
    if (!*agreed && w->size == 1)
      *agreed = 1;  /* alone, an error is known everywhere: the temporary file goes below */
    if (!*agreed) { /* the top level aborts the job */
      npt_run_chunk_rows_free(cr, r->plan.n_chunks);
      free(cr);
      return rc;
    }
    tot->temp[0] = '\0';
  }
  /* Every rank's write time to the root (a collective, so agreed first). */
  double *stats = (double *)in->stats;
  if (rc == 0 && w->size > 1) {
    MPI_Request req;
    double *all = w->rank == 0 ? malloc(sizeof *all * (size_t)w->size) : NULL;
    rc = npt_mpi_agree(w, w->rank == 0 && !all ? npt_error_set(NPT_ENOMEM, "out of memory") : 0);
    if (rc == 0)
      rc = wait_or_fail(MPI_Igather(&write_s, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, w->comm, &req),
                        &req, "MPI_Igather");
    for (int q = 0; rc == 0 && w->rank == 0 && q < w->size; q++)
      stats[(size_t)q * NPT_RUN_N_STATS + NPT_RUN_S_WRITE_ROWS] = all[q];
    free(all);
  } else if (rc == 0) {
    stats[NPT_RUN_S_WRITE_ROWS] = write_s;
  }
  lrc = 0;
  if (w->rank == 0 && rs.ar) {
    if (rc == 0)
      lrc = name_root(w, root_finish(w, in, r, &rs, npt_cli_now_s() - t_rows));
    else
      npt_archive_abort(rs.ar); /* an agreed error: the temporary file goes */
  }
  if (rc == 0)
    rc = npt_mpi_share_status(w, 0, lrc);
  npt_run_chunk_rows_free(cr, r->plan.n_chunks);
  free(cr);
  return rc;
}
