/* nptrack run: the pipeline, alone or under mpirun/srun (docs/architecture.md, "MPI pipeline").
 *
 * Phases, every rank in step:
 *   1. setup (run_setup.c): rank 0 reads the configuration and broadcasts its text; every rank
 * parses it; rank 0 checks the videos and the target and broadcasts what the plan needs; every rank
 * builds the same chunk plan (pipeline/chunk_plan.h) and opens its engine (GPU: node-local rank %
 *      device count).  Each step ends with npt_mpi_agree, so a failure anywhere ends every rank
 *      cleanly with that rank's message.
 *   2. chunks: ranks take chunks from the dynamic counter (mpi/mpi_util.h) and save each as a
 *      part file (run_chunk.c).  An error here is one rank's: the top level prints it and calls
 *      MPI_Abort, which ends every rank at once.
 *   3. the archive (run_archive.c): the root stitches and writes the tables (run_assemble.c)
 *      while the other ranks wait without spinning; then every rank writes the detections of
 *      the chunks it holds in parallel (run_rows.c) and the root finishes the file.  Errors are
 *      agreed on, except one inside a collective write, which aborts the job.
 * Without mpirun this is the same plan on one rank. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_internal.h"
#include "common/error.h"
#include "config/config.h"
#include "mpi/mpi_util.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: nptrack run [-c FILE] [-s K=V]... [--force] [--resume] -o ARCHIVE.h5\n"
          "                   [-m LIST] VIDEO...\n"
          "       mpirun -n N nptrack run ... (the same, over N ranks)\n\n"
          "Detects the particles in every frame of each VIDEO (as `nptrack detect` does),\n"
          "tracks them (section track) and writes one archive with a group per video\n"
          "(/videos/NAME, NAME = the file's name without extension) and the run's provenance\n"
          "(docs/archive-format.md).  Videos are cut into overlapping chunks (section chunking);\n"
          "ranks take chunks one at a time and save each in ARCHIVE.parts/; the root rank\n"
          "joins the tracks across chunk boundaries and writes the archive, identical for any\n"
          "number of ranks.  VIDEO is an HDF5 file with the frames in detect.dataset, or\n"
          "FILE.h5:/path/to/dataset.  An existing complete archive is replaced only with\n"
          "--force; with --resume, one made from the same configuration, model and videos\n"
          "means the run is done (a requeued job): nothing to resume, exit status 0.\n"
          "Progress (frames, frames/s, ETA) goes to stderr: one updating line on a terminal,\n"
          "else a line every NPTRACK_PROGRESS_S seconds (default 30).\n\n"
          "Options:\n"
          "  -c, --config FILE   configuration file (libconfig)\n"
          "  -s, --set K=V       override one setting, e.g. -s chunking.frames=256 (repeatable)\n"
          "  -o, --output FILE   the archive to write\n"
          "  -f, --force         replace an existing complete archive\n"
          "  -m, --manifest LIST videos listed in a file, one per line, after any given as\n"
          "                      arguments ('#' comments; paths relative to LIST's folder)\n"
          "  -r, --resume        keep the chunks a killed run saved in ARCHIVE.parts/ (refused\n"
          "                      when made from another configuration, model or input); a\n"
          "                      complete ARCHIVE from the same configuration (but\n"
          "                      detect.threads), model and videos: nothing to do, exit 0\n"
          "  -q, --quiet         print nothing on success (no progress either)\n"
          "  -h, --help          this help\n\n"
          "Example:\n"
          "  nptrack run -o out/run.h5 out/a/video.h5 out/b/video.h5\n"
          "  mpirun -n 4 nptrack run -s chunking.frames=256 -o out/run.h5 long.h5\n"
          "  nptrack info out/run.h5\n");
}

/* ------------------------------------------------------------------------------------------- */
/* Progress of the whole run on rank 0's stderr: on a terminal one line rewritten at most every
 * 0.5 s; else (a Slurm log, a pipe) a plain line every NPTRACK_PROGRESS_S seconds (default 30;
 * 0: at every report).  Off with --quiet.  Frames count every chunk's frames (overlaps twice). */
typedef struct progress {
  int on, tty;
  double interval, t0, last;
  int64_t total, done;
} progress;

static void progress_start(progress *p, int on, int64_t total) {
  const char *env = getenv("NPTRACK_PROGRESS_S");
  char *end = NULL;
  double iv = env && *env ? strtod(env, &end) : 30.0;
  if (env && *env && (*end || !(iv >= 0)))
    iv = 30.0;
  *p = (progress){on, isatty(STDERR_FILENO), 0.0, npt_cli_now_s(), 0.0, total, 0};
  p->interval = p->tty ? 0.5 : iv;
  p->last = p->t0;
}

/* "1h02m", "12m05s" or "42s". */
static void fmt_duration(double s, char *out, size_t n) {
  long t = s < 0 ? 0 : (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(out, n, "%lds", t);
}

static void progress_show(progress *p, int final) {
  double now = npt_cli_now_s();
  if (!p->on || (!final && now - p->last < p->interval))
    return;
  p->last = now;
  double rate = now > p->t0 ? (double)p->done / (now - p->t0) : 0.0;
  char eta[32] = "?";
  if (rate > 0)
    fmt_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
  if (final)
    fmt_duration(now - p->t0, eta, sizeof eta);
  fprintf(stderr, "%snptrack run: %lld/%lld frames (%.0f%%), %.1f frames/s, %s %s%s%s",
          p->tty ? "\r" : "", (long long)p->done, (long long)p->total,
          p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0, rate,
          final ? "took" : "ETA", eta, p->tty ? "\033[K" : "", p->tty && !final ? "" : "\n");
  fflush(stderr);
}

static void progress_cb(void *ctx, int64_t done) {
  progress *p = ctx;
  p->done = done;
  progress_show(p, 0);
}

/* ------------------------------------------------------------------------------------------- */
/* The chunk phase, then the archive's (run_archive.c) */

/* This process's peak resident set size so far (getrusage), in bytes. */
static double peak_rss_bytes(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? 1024.0 * (double)ru.ru_maxrss : 0.0;
}

static int cmp_i64(const void *x, const void *y) {
  int64_t p = *(const int64_t *)x, q = *(const int64_t *)y;
  return (p > q) - (p < q);
}

/* Gathers every rank's chunk list on the root: holders[c] (root) receives the rank that holds
 * chunk c (took it from the counter, computed or resumed).  Collective. */
static int gather_holders(const npt_mpi_world *w, const int64_t *mine, int n_mine, int n_chunks,
                          int *holders) {
  if (w->size == 1) {
    for (int i = 0; i < n_mine; i++)
      holders[mine[i]] = 0;
    return 0;
  }
  int *counts = w->rank == 0 ? calloc((size_t)w->size, sizeof *counts) : NULL;
  int *displs = w->rank == 0 ? calloc((size_t)w->size, sizeof *displs) : NULL;
  int64_t *all = w->rank == 0 ? malloc(sizeof *all * (size_t)(n_chunks + 1)) : NULL;
  int lrc =
      w->rank == 0 && (!counts || !displs || !all) ? npt_error_set(NPT_ENOMEM, "out of memory") : 0;
  int rc = npt_mpi_agree(w, lrc);
  if (rc == 0 && MPI_Gather(&n_mine, 1, MPI_INT, counts, 1, MPI_INT, 0, w->comm) != MPI_SUCCESS)
    rc = npt_error_set(NPT_EMPI, "gathering the ranks' chunks failed");
  int total = 0;
  for (int q = 0; rc == 0 && w->rank == 0 && q < w->size; q++)
    displs[q] = total, total += counts[q];
  if (rc == 0 && w->rank == 0 && total != n_chunks)
    lrc = npt_error_set(NPT_EINTERNAL, "the ranks hold %d chunks of %d", total, n_chunks);
  if (rc == 0)
    rc = npt_mpi_agree(w, lrc);
  if (rc == 0 && MPI_Gatherv(mine, n_mine, MPI_INT64_T, all, counts, displs, MPI_INT64_T, 0,
                             w->comm) != MPI_SUCCESS)
    rc = npt_error_set(NPT_EMPI, "gathering the ranks' chunks failed");
  for (int q = 0; rc == 0 && w->rank == 0 && q < w->size; q++)
    for (int i = 0; i < counts[q]; i++)
      holders[all[displs[q] + i]] = q;
  free(counts), free(displs), free(all);
  return rc;
}

/* The whole run.  *agreed says whether an error is known to every rank (else the top level
 * must abort the job). */
static int run(const npt_mpi_world *w, const run_args *a, npt_run_totals *tot, int *agreed) {
  *agreed = 1;
  double t_start = npt_cli_now_s();
  npt_config *cfg = NULL;
  NPT_TRY(npt_run_setup_config(w, a, &cfg));
  npt_run r = {0};
  int rc = npt_run_setup(w, a, cfg, &r);
  if (rc == 0 && r.complete) {
    /* A finished run resumed (a requeued job): its archive stands.  A kill between the archive's
     * rename and the clean-up left the parts and temporaries, which go now.  No engine, no
     * chunk counter: every rank ends here. */
    if (w->rank == 0)
      npt_run_remove_leftovers(&r, a->out);
    tot->complete = 1;
    npt_run_free(&r);
    npt_config_free(cfg);
    return 0;
  }
  npt_cli_engine ce = {0};
  char dev[32] = "";
  int device = 0;
  if (rc == 0) {
    int lrc = npt_run_pick_device(w, &r.o.backend, r.o.device, &device, dev, sizeof dev);
    if (lrc == 0)
      lrc = npt_cli_engine_open(&ce, &r.o, device);
    if (lrc == 0) {
      /* ByteTrack's second pass continues tracks with detections scoring from track.low_score
       * up to the detector's threshold: the network decodes down to track.low_score, and the
       * rows below its threshold are kept only where a track took them (run_chunk.c). */
      r.keep_score = ce.dp.score_threshold;
      /* Part files record the backend that ran (auto resolved), so --resume never mixes fp32
       * and fp16 detections. */
      npt_run_config_hash_backend(r.config_sha256, npt_engine_backend(ce.e), r.o.batch);
      if (r.ts.low_score > 0 && r.ts.low_score < r.keep_score)
        ce.dp.score_threshold = (float)r.ts.low_score;
    }
    if (lrc == 0)
      lrc = npt_run_fault(w->rank, "start");
    rc = npt_mpi_agree(w, lrc);
    if (rc < 0 && lrc == 0)
      npt_cli_engine_close(&ce);
  }
  if (rc == 0 && w->rank == 0 && !a->quiet) {
    printf("nptrack run: model %s (%s), %d ranks on %d nodes, %s\nnptrack run: backend %s\n",
           r.o.model, npt_model_source_name(r.o.model_source), w->size, w->n_nodes, dev,
           ce.backend);
    fflush(stdout);
  }
  if (rc < 0) {
    npt_run_free(&r);
    npt_config_free(cfg);
    return rc;
  }
  /* Chunks. */
  int64_t total_frames = 0;
  for (int c = 0; c < r.plan.n_chunks; c++)
    total_frames += r.plan.chunk[c].end - r.plan.chunk[c].begin;
  progress prog;
  progress_start(&prog, w->rank == 0 && !a->quiet, total_frames);
  npt_rank_stats st = {0};
  npt_chunk_counter *counter = NULL;
  double t_chunks = npt_cli_now_s();
  rc = npt_chunk_counter_start(&counter, w, r.plan.n_chunks, progress_cb, &prog);
  npt_frames *fr = NULL;
  int fr_video = -1;
  int64_t chunk = 0, done = 0;
  /* The chunks this rank holds: it writes their rows into the archive. */
  int64_t *mine = malloc(sizeof *mine * (size_t)(r.plan.n_chunks + 1));
  int n_mine = 0;
  *agreed = 0;
  if (!mine)
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  while (rc == 0) {
    rc = npt_chunk_counter_next(counter, done, &chunk);
    if (rc < 0 || chunk < 0)
      break;
    chunk = r.plan.order[chunk];
    mine[n_mine++] = chunk;
    rc = npt_run_chunk(&r, &ce, chunk, w->rank, &fr, &fr_video, &st);
    done = rc == 0 ? r.plan.chunk[chunk].end - r.plan.chunk[chunk].begin : 0;
  }
  npt_frames_close(fr);
  double t_idle = npt_cli_now_s();
  if (rc == 0)
    rc = npt_chunk_counter_stop(counter);
  else if (counter && w->size == 1)
    npt_chunk_counter_stop(counter); /* with several ranks the top level aborts the job */
  if (rc < 0) {                      /* one rank's error: the top level aborts the job */
    free(mine);
    npt_cli_engine_close(&ce);
    npt_run_free(&r);
    npt_config_free(cfg);
    return rc;
  }
  *agreed = 1;
  qsort(mine, (size_t)n_mine, sizeof *mine, cmp_i64);
  double stats[NPT_RUN_N_STATS] = {[NPT_RUN_S_READ] = st.read_s,
                                   [NPT_RUN_S_READ_WAIT] = st.read_wait_s,
                                   [NPT_RUN_S_DETECT] = st.detect_s,
                                   [NPT_RUN_S_DETECT_WAIT_FRAMES] = st.detect_wait_frames_s,
                                   [NPT_RUN_S_DETECT_WAIT_TRACK] = st.detect_wait_track_s,
                                   [NPT_RUN_S_TRACK] = st.track_s,
                                   [NPT_RUN_S_TRACK_WAIT] = st.track_wait_s,
                                   [NPT_RUN_S_FRAMES_WALL] = st.frames_s,
                                   [NPT_RUN_S_PARTS] = st.part_s,
                                   [NPT_RUN_S_RESUME] = st.resume_s,
                                   [NPT_RUN_S_CHUNKS] = (double)st.chunks + (double)st.skipped,
                                   [NPT_RUN_S_FRAMES] = (double)st.frames,
                                   [NPT_RUN_S_SKIPPED] = (double)st.skipped,
                                   [NPT_RUN_S_SATURATED] = (double)st.saturated};
  /* Every rank reaches this barrier once its last chunk is done: the idle time is the wait for
   * the slowest rank. */
  if (w->size > 1) {
    MPI_Request req;
    rc = MPI_Ibarrier(w->comm, &req);
    rc = rc == MPI_SUCCESS ? npt_mpi_wait(&req)
                           : npt__mpi_fail(rc, __FILE__, __LINE__, "MPI_Ibarrier");
  }
  stats[NPT_RUN_S_IDLE] = npt_cli_now_s() - t_idle;
  stats[NPT_RUN_S_MAXRSS] = peak_rss_bytes(); /* so far: the root's assembly comes later */
  tot->chunk_wall_s = npt_cli_now_s() - t_chunks;
  double *all = w->rank == 0 ? malloc(sizeof *all * NPT_RUN_N_STATS * (size_t)w->size) : NULL;
  char *hosts = w->rank == 0 ? malloc((size_t)w->size * 64) : NULL;
  char *devs = w->rank == 0 ? malloc((size_t)w->size * 32) : NULL;
  int *holders = w->rank == 0 ? calloc((size_t)r.plan.n_chunks + 1, sizeof *holders) : NULL;
  int lrc = w->rank == 0 && (!all || !hosts || !devs || !holders)
                ? npt_error_set(NPT_ENOMEM, "out of memory")
                : rc;
  rc = npt_mpi_agree(w, lrc);
  if (rc == 0 && w->size == 1) {
    memcpy(all, stats, sizeof stats);
    memcpy(hosts, w->host, 64);
    memcpy(devs, dev, 32);
  } else if (rc == 0 && (MPI_Gather(stats, NPT_RUN_N_STATS, MPI_DOUBLE, all, NPT_RUN_N_STATS,
                                    MPI_DOUBLE, 0, w->comm) ||
                         MPI_Gather(w->host, 64, MPI_CHAR, hosts, 64, MPI_CHAR, 0, w->comm) ||
                         MPI_Gather(dev, 32, MPI_CHAR, devs, 32, MPI_CHAR, 0, w->comm)))
    rc = npt_error_set(NPT_EMPI, "gathering the ranks' statistics failed");
  if (rc == 0)
    rc = gather_holders(w, mine, n_mine, r.plan.n_chunks, holders);
  if (rc == 0) {
    char classes[512] = "";
    if (w->rank == 0) {
      progress_show(&prog, 1);
      double sum[NPT_RUN_N_STATS] = {0};
      for (int i = 0; i < w->size; i++)
        for (int k = 0; k < NPT_RUN_N_STATS; k++)
          sum[k] += all[(size_t)i * NPT_RUN_N_STATS + k];
      tot->saturated = (int64_t)sum[NPT_RUN_S_SATURATED];
      tot->ranks = w->size;
      tot->loop_s = sum[NPT_RUN_S_FRAMES_WALL], tot->read_s = sum[NPT_RUN_S_READ];
      tot->detect_s = sum[NPT_RUN_S_DETECT], tot->track_s = sum[NPT_RUN_S_TRACK];
      tot->wait_frames_s = sum[NPT_RUN_S_DETECT_WAIT_FRAMES];
      tot->wait_track_s = sum[NPT_RUN_S_DETECT_WAIT_TRACK];
      for (int v = 0; v < r.n_videos; v++)
        tot->frames += r.end[v] - r.first[v];
      npt_cli_class_names(ce.g, classes, sizeof classes);
    }
    npt_run_archive_in in = {cfg,          a->out,
                             a->force,     npt_engine_backend(ce.e),
                             classes,      ce.g->n_classes,
                             ce.embed_dim, all,
                             hosts,        devs,
                             t_start,      tot->chunk_wall_s};
    rc = npt_run_archive(w, &in, &r, mine, n_mine, holders, tot, agreed);
  }
  free(all), free(hosts), free(devs), free(holders), free(mine);
  npt_cli_engine_close(&ce);
  npt_run_free(&r);
  npt_config_free(cfg);
  return rc;
}

/* ------------------------------------------------------------------------------------------- */

/* 1 when `a` and `b` name the same existing file. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void run_args_free(run_args *a) {
  for (int i = 0; a->list && i < a->n_videos; i++)
    free(a->list[i]);
  free(a->list);
  a->list = NULL;
  npt_cli_cfgopts_free(&a->co);
}

static int add_video(run_args *a, const char *dir, const char *path, size_t len) {
  char **l = realloc(a->list, sizeof *l * (size_t)(a->n_videos + 1));
  if (!l)
    return -1;
  a->list = l;
  int rel = dir && path[0] != '/';
  size_t n = (rel ? strlen(dir) + 1 : 0) + len + 1;
  if (!(l[a->n_videos] = malloc(n)))
    return -1;
  snprintf(l[a->n_videos], n, "%s%s%.*s", rel ? dir : "", rel ? "/" : "", (int)len, path);
  a->n_videos++;
  return 0;
}

/* A manifest: one video per line (FILE.h5 or FILE.h5:/dataset); blank lines and lines starting
 * with '#' are skipped; relative paths are relative to the manifest's folder. */
static int read_manifest(run_args *a, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return npt_cli_usage_error("run", "cannot read the manifest %s: %s", path, strerror(errno));
  char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
  if (slash)
    *slash = '\0';
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  int bad = !dir;
  while (!bad && (got = getline(&line, &cap, f)) >= 0) {
    char *b = line, *e = line + got;
    while (b < e && (*b == ' ' || *b == '\t'))
      b++;
    while (e > b && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
      e--;
    if (e > b && *b != '#')
      bad = add_video(a, slash ? dir : NULL, b, (size_t)(e - b)) < 0;
  }
  free(line);
  free(dir);
  fclose(f);
  return bad ? npt_cli_usage_error("run", "out of memory reading %s", path) : -1;
}

static int parse_args(int argc, char **argv, run_args *a) {
  static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                           {"set", required_argument, NULL, 's'},
                                           {"output", required_argument, NULL, 'o'},
                                           {"force", no_argument, NULL, 'f'},
                                           {"resume", no_argument, NULL, 'r'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"manifest", required_argument, NULL, 'm'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int opt;
  const char *manifest = NULL;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":c:s:o:frqm:h", longopts, NULL)) != -1) {
    int st = npt_cli_cfgopt("run", opt, argv, &a->co, usage);
    if (st != NPT_CLI_OWN) {
      if (st >= 0)
        return st;
      continue;
    }
    if (opt == 'o')
      a->out = optarg;
    else if (opt == 'f')
      a->force = 1;
    else if (opt == 'r')
      a->resume = 1;
    else if (opt == 'q')
      a->quiet = 1;
    else if (opt == 'm')
      manifest = optarg;
  }
  for (int i = optind; i < argc; i++)
    if (add_video(a, NULL, argv[i], strlen(argv[i])) < 0)
      return npt_cli_usage_error("run", "out of memory");
  if (manifest) {
    int st = read_manifest(a, manifest);
    if (st >= 0)
      return st;
  }
  a->videos = a->list;
  if (a->n_videos < 1)
    return npt_cli_usage_error("run", "no video (nptrack run -o ARCHIVE.h5 VIDEO... or -m LIST)");
  if (!a->out || !*a->out)
    return npt_cli_usage_error("run", "no output file (-o ARCHIVE.h5)");
  for (int i = 0; i < a->n_videos; i++)
    if (same_file(a->out, a->videos[i]))
      return npt_cli_usage_error("run", "the output %s is the video %s", a->out, a->videos[i]);
  return -1;
}

int npt_cmd_run(int argc, char **argv) {
  run_args a = {0};
  int st = parse_args(argc, argv, &a);
  if (st >= 0) {
    run_args_free(&a);
    return st;
  }
  /* Started by a launcher: MPI.  Alone: the same plan on one rank, without MPI. */
  int use_mpi = npt_mpi_launched(), provided = 0, rc = 0;
  if (use_mpi && MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "nptrack run: error: MPI_Init_thread failed\n");
    run_args_free(&a);
    return NPT_EXIT_FAILURE;
  }
  npt_mpi_world w;
  if (use_mpi) {
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    rc = npt_mpi_world_init(&w, MPI_COMM_WORLD);
    if (rc == 0 && w.size > 1 && provided < MPI_THREAD_MULTIPLE)
      rc = npt_error_set(NPT_EMPI, "this MPI provides thread level %d, not MPI_THREAD_MULTIPLE",
                         provided);
  } else {
    npt_mpi_world_single(&w);
  }
  int agreed = 1;
  npt_run_totals tot = {0};
  if (rc == 0)
    rc = run(&w, &a, &tot, &agreed);
  run_args_free(&a);
  if (rc < 0 && !agreed && w.size > 1) {
    /* One rank's error: its message, then the end of every rank (Open MPI 4.1 cannot free the
     * others from a collective any other way). */
    char msg[1200];
    snprintf(msg, sizeof msg, "rank %d: %s", w.rank, npt_error_msg(rc));
    npt_error_set(rc, "%s", msg);
    npt_cli_fail("run", rc);
    fflush(stderr);
    /* Failing inside the parallel write: the temporary archive goes (any rank may remove it). */
    if (tot.temp[0])
      unlink(tot.temp);
    MPI_Abort(MPI_COMM_WORLD, npt_exit_status(rc));
  }
  if (rc < 0) {
    int code = w.rank == 0 ? npt_cli_fail("run", rc) : npt_exit_status(rc);
    if (use_mpi)
      MPI_Finalize();
    return code;
  }
  if (use_mpi)
    MPI_Finalize();
  if (w.rank != 0)
    return NPT_EXIT_OK;
  if (tot.complete) {
    if (!a.quiet)
      printf("nptrack run: %s is complete (same configuration, model and videos); nothing to "
             "resume\n",
             a.out);
    return NPT_EXIT_OK;
  }
  if (tot.saturated > 0)
    fprintf(stderr,
            "nptrack run: warning: in %lld frames more than detect.top_k peaks passed the score "
            "threshold; the best were kept (raise detect.top_k or detect.score_threshold)\n",
            (long long)tot.saturated);
  /* Where the ranks' frame loops spent their time (per rank: the archive's `ranks`). */
  if (!a.quiet)
    printf("nptrack run: frame loops %.2f s over %d ranks: read %.2f s, detect %.2f s (waited "
           "%.2f s for frames, %.2f s for the tracker), track %.2f s (overlapping)\n",
           tot.loop_s, tot.ranks, tot.read_s, tot.detect_s, tot.wait_frames_s, tot.wait_track_s,
           tot.track_s);
  if (!a.quiet)
    printf("nptrack run: wrote %s: %d videos, %lld frames, %lld detections, %lld tracks, %lld "
           "lineage events, %.1f frames/s\n",
           a.out, a.n_videos, (long long)tot.frames, (long long)tot.dets, (long long)tot.tracks,
           (long long)tot.events,
           tot.chunk_wall_s > 0 ? (double)tot.frames / tot.chunk_wall_s : 0.0);
  return NPT_EXIT_OK;
}
