/* nptrack run's setup phase (cmd_run.c's phase 1): the configuration read by rank 0 and
 * broadcast as text, the videos and the target checked by rank 0, the chunk plan built by every
 * rank, the GPU of each rank.  Every step ends in npt_mpi_agree, so a failure on any rank ends
 * every rank cleanly with that rank's message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/run_internal.h"
#include "common/error.h"
#include "common/sha256.h"
#include "nn/gpu_info.h"

/* The archive's name for `path`: its base name without extension (and without a dataset after
 * a colon), "_2", "_3", ... appended when an earlier video has the name. */
static void video_name(char **names, int i, const char *path, char *out, size_t n) {
  char base[256];
  const char *colon = strstr(path, ":/");
  size_t len = colon ? (size_t)(colon - path) : strlen(path);
  const char *s = path;
  for (size_t k = 0; k < len; k++)
    if (path[k] == '/')
      s = path + k + 1;
  len -= (size_t)(s - path);
  snprintf(base, sizeof base, "%.*s", (int)len, s);
  char *dot = strrchr(base, '.');
  if (dot && dot != base)
    *dot = '\0';
  if (!base[0])
    snprintf(base, sizeof base, "video");
  snprintf(out, n, "%s", base);
  for (int k = 2;; k++) {
    int taken = 0;
    for (int j = 0; j < i && !taken; j++)
      taken = !strcmp(names[j], out);
    if (!taken)
      return;
    snprintf(out, n, "%.240s_%d", base, k);
  }
}

/* Rank 0 loads the configuration; every rank parses its text.  Collective. */
int npt_run_setup_config(const npt_mpi_world *w, const run_args *a, npt_config **cfg) {
  char *text = NULL;
  int rc = 0;
  if (w->rank == 0) {
    rc = npt_config_load(cfg, a->co.path, a->co.overrides, a->co.n_overrides);
    if (rc == 0 && !(text = npt_config_text(*cfg)))
      rc = npt_error_set(NPT_ENOMEM, "out of memory");
  }
  rc = npt_mpi_share_status(w, 0, rc);
  if (rc < 0) {
    free(text);
    return rc;
  }
  if (w->size == 1) {
    free(text);
    return 0;
  }
  int64_t len = text ? (int64_t)strlen(text) + 1 : 0;
  NPT_MPI_CHECK(MPI_Bcast(&len, 1, MPI_INT64_T, 0, w->comm));
  if (w->rank != 0 && !(text = malloc((size_t)len)))
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  NPT_TRY(npt_mpi_agree(w, rc));
  NPT_MPI_CHECK(MPI_Bcast(text, (int)len, MPI_CHAR, 0, w->comm));
  if (w->rank != 0)
    rc = npt_config_load_text(cfg, text, "rank 0's configuration", NULL, 0);
  free(text);
  return npt_mpi_agree(w, rc);
}

/* 1 when the archive's configuration text `theirs` gives this run's effective configuration,
 * but for detect.threads, which changes no result (jobs/run.sbatch sets it from the job's cores
 * per task, which a resubmitted job may change).  Text that no longer parses differs. */
static int same_config(const npt_config *cfg, const char *theirs) {
  char threads[64], *a = NULL, *b = NULL;
  snprintf(threads, sizeof threads, "detect.threads=%lld",
           (long long)npt_config_int(cfg, "detect.threads"));
  const char *set[] = {threads};
  npt_config *c = NULL;
  int same = theirs &&
             npt_config_load_text(&c, theirs, "the archive's configuration", set, 1) == 0 &&
             (a = npt_config_text(c)) && (b = npt_config_text(cfg)) && !strcmp(a, b);
  free(a), free(b);
  npt_config_free(c);
  return same;
}

/* With --resume, the target may be the archive this very run already finished (a job requeued
 * or resubmitted after it ended): *done = 1 when `path` is a complete archive made from the same
 * effective configuration (the root `config`; same_config), model (`model_sha256`) and videos
 * (each one's name, `source` as given, frame count and frame size: the archive keeps no hash of
 * the frames; the frames searched are settings, in the configuration).  The backend is compared
 * when detect.backend names one; `auto` is resolved only once the engines open, so the setting
 * `auto` is all there is to compare then.  A complete archive from another run is an error
 * naming what differs.  Anything else (no file, not an archive, not complete) gives *done = 0
 * and is left to the overwrite policy.  Rank 0 only. */
static int finished_run(const npt_run *r, const npt_config *cfg, const char *path, int *done) {
  *done = 0;
  npt_archive_file *f = NULL;
  if (npt_archive_file_open(&f, path) < 0)
    return 0;
  if (!npt_archive_file_is_complete(f)) {
    npt_archive_file_close(f);
    return 0;
  }
  char *config = NULL, *model = NULL, *backend = NULL;
  int rc = npt_archive_file_root_attr(f, "config", &config);
  if (rc == 0)
    rc = npt_archive_file_root_attr(f, "model_sha256", &model);
  if (rc == 0)
    rc = npt_archive_file_root_attr(f, "backend", &backend);
  int videos = rc == 0 && npt_archive_file_n_videos(f) == r->n_videos;
  for (int i = 0; videos && i < r->n_videos; i++) {
    int k = npt_archive_file_find_video(f, r->names[i]);
    const npt_archive_video_info *v = k >= 0 ? npt_archive_file_video_info(f, k) : NULL;
    videos = v && v->source_path && !strcmp(v->source_path, r->videos[i]) &&
             v->n_frames == r->info[i].n_frames && v->height == r->info[i].height &&
             v->width == r->info[i].width;
  }
  const char *differ[4];
  int n = 0;
  if (!same_config(cfg, config))
    differ[n++] = "configuration";
  if (strcmp(r->o.backend, "auto") && (!backend || strcmp(backend, r->o.backend)))
    differ[n++] = "backend";
  if (!model || strcmp(model, r->model_sha256))
    differ[n++] = "model";
  if (!videos)
    differ[n++] = "videos";
  char list[128] = "";
  for (int i = 0; i < n; i++) {
    const char *sep = i == 0 ? "" : i == n - 1 ? " and " : ", ";
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", sep, differ[i]);
  }
  if (rc == 0 && n > 0)
    rc = npt_error_set(NPT_EIO,
                       "%s: a complete archive of a different run exists (it differs in %s); not "
                       "overwritten (--force replaces it)",
                       path, list);
  *done = rc == 0;
  free(config), free(model), free(backend);
  npt_archive_file_close(f);
  return rc;
}

/* Rank 0: the videos' sizes and frame ranges, the model's hash, the parts folder, and the
 * target's overwrite policy (checked now, not after hours of work); with --resume (not --force),
 * whether the target is this run's finished archive (r->complete). */
static int setup_root(npt_run *r, const run_args *a, const npt_config *cfg) {
  npt_frames_opts fo = {r->o.dataset, NPT_FRAMES_THW, r->o.replay_frames};
  NPT_TRY(npt_frames_axes_parse(r->o.axis_order, &fo.axes));
  for (int i = 0; i < r->n_videos; i++) {
    npt_frames *fr = NULL;
    NPT_TRY(npt_frames_open_opts(&fr, r->videos[i], &fo));
    r->info[i] = *npt_frames_get_info(fr);
    npt_frames_close(fr);
    NPT_TRY(npt_cli_frame_range(&r->o, r->videos[i], &r->info[i], &r->first[i], &r->end[i]));
  }
  NPT_TRY(npt_sha256_file(r->o.model, r->model_sha256));
  if (a->resume && !a->force) {
    NPT_TRY(finished_run(r, cfg, a->out, &r->complete));
    if (r->complete)
      return 0;
  }
  npt_archive_options ao = r->ao;
  ao.force = a->force;
  npt_archive *probe = NULL;
  NPT_TRY(npt_archive_open(&probe, a->out, &ao));
  npt_archive_abort(probe);
  if (mkdir(r->parts_dir, 0777) != 0 && errno != EEXIST)
    return npt_error_set(NPT_EIO, "%s: cannot create the parts folder: %s", r->parts_dir,
                         strerror(errno));
  return 0;
}

/* Everything but the engine.  Collective. */
int npt_run_setup(const npt_mpi_world *w, const run_args *a, const npt_config *cfg, npt_run *r) {
  int rc = npt_detect_options_get(cfg, &r->o);
  if (rc == 0)
    rc = npt_track_settings_get(cfg, &r->ts);
  if (rc == 0)
    rc = npt_chunking_settings_get(cfg, &r->ts, &r->cs);
  if (rc == 0)
    rc = npt_archive_options_get(cfg, &r->ao);
  if (rc == 0)
    rc = npt_run_config_hash(cfg, r->config_sha256);
  r->videos = a->videos;
  r->n_videos = a->n_videos;
  r->resume = a->resume;
  size_t nv = (size_t)a->n_videos;
  r->names = calloc(nv, sizeof *r->names);
  r->info = calloc(nv, sizeof *r->info);
  r->first = calloc(nv, sizeof *r->first);
  r->end = calloc(nv, sizeof *r->end);
  size_t plen = strlen(a->out) + 8;
  r->parts_dir = malloc(plen);
  if (rc == 0 && (!r->names || !r->info || !r->first || !r->end || !r->parts_dir))
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0)
    snprintf(r->parts_dir, plen, "%s.parts", a->out);
  for (int i = 0; i < a->n_videos && rc == 0; i++) {
    char name[256];
    video_name(r->names, i, a->videos[i], name, sizeof name);
    if (!(r->names[i] = strdup(name)))
      rc = npt_error_set(NPT_ENOMEM, "out of memory");
  }
  NPT_TRY(npt_mpi_agree(w, rc));
  if (w->rank == 0)
    rc = setup_root(r, a, cfg);
  NPT_TRY(npt_mpi_share_status(w, 0, rc));
  if (w->size > 1) {
    NPT_MPI_CHECK(MPI_Bcast(r->info, (int)(nv * sizeof *r->info), MPI_BYTE, 0, w->comm));
    NPT_MPI_CHECK(MPI_Bcast(r->first, (int)nv, MPI_INT64_T, 0, w->comm));
    NPT_MPI_CHECK(MPI_Bcast(r->end, (int)nv, MPI_INT64_T, 0, w->comm));
    NPT_MPI_CHECK(MPI_Bcast(r->model_sha256, 65, MPI_CHAR, 0, w->comm));
    NPT_MPI_CHECK(MPI_Bcast(&r->complete, 1, MPI_INT, 0, w->comm));
  }
  rc = npt_chunk_plan_build(&r->cs, r->n_videos, r->first, r->end, &r->plan);
  return npt_mpi_agree(w, rc);
}

void npt_run_free(npt_run *r) {
  for (int i = 0; r->names && i < r->n_videos; i++)
    free(r->names[i]);
  free(r->names), free(r->info), free(r->first), free(r->end), free(r->parts_dir);
  npt_chunk_plan_free(&r->plan);
}

/* The backend and GPU of this rank.  `auto` is resolved here, the same on every rank: cudnn when
 * every rank sees a GPU, else cpu for all (a run never mixes fp16 and fp32 detections).  A rank
 * takes detect.device when it is alone, else its node-local rank modulo the node's device count
 * (several ranks may share one GPU).  Collective. */
int npt_run_pick_device(const npt_mpi_world *w, const char **backend, int configured, int *device,
                        char *desc, size_t n) {
  *device = 0;
  int count = strcmp(*backend, "cpu") ? npt_gpu_count() : 0;
  if (!strcmp(*backend, "auto")) {
    int all = count > 0;
    if (w->size > 1)
      NPT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, w->comm));
    *backend = all ? "cudnn" : "cpu";
  }
  if (!strcmp(*backend, "cpu")) {
    snprintf(desc, n, "cpu");
    return 0;
  }
  if (count < 1)
    return npt_error_set(NPT_ECONFIG,
                         "detect.backend = %s but %s has no usable GPU (detect.backend = cpu "
                         "runs without one; a run never mixes backends)",
                         *backend, w->host);
  *device = w->size > 1 ? w->local_rank % count : configured;
  snprintf(desc, n, "%s:%d", *backend, *device);
  return 0;
}
