/* One chunk of `nptrack run` on one rank (run_internal.h): detect, track with a fresh tracker,
 * summarise the tracklets, keep the lineage events of the frames it owns and save the part file;
 * or, with --resume, check and keep the part a previous run saved. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_internal.h"
#include "common/error.h"
#include "common/sha256.h"
#include "pipeline/chunk_track.h"

int npt_run_fault(int rank, const char *stage) {
  const char *env = getenv("NPTRACK_TEST_FAIL");
  char *end = NULL;
  if (!env || !*env)
    return 0;
  long r = strtol(env, &end, 10);
  if (end == env || *end != ':' || r != rank)
    return 0;
  if (!strncmp(end + 1, "kill-", 5) && !strcmp(end + 6, stage)) {
    fflush(NULL);
    raise(SIGKILL);
  }
  if (!strncmp(end + 1, "slow-", 5) && !strcmp(end + 6, stage)) {
    sleep(5);
    return 0;
  }
  if (strcmp(end + 1, stage))
    return 0;
  return npt_error_set(NPT_EIO, "test fault at '%s' (NPTRACK_TEST_FAIL)", stage);
}

int npt_run_config_hash(const npt_config *cfg, char hex[65]) {
  /* detect.replay_frames changes the frames, not what is made of them: the input hash has it
   * (hash_start). */
  static const char *const skip[] = {"detect.model",
                                     "detect.threads",
                                     "detect.batch",
                                     "detect.backend",
                                     "detect.device",
                                     "detect.replay_frames",
                                     NULL};
  npt_sha256 h;
  npt_sha256_init(&h);
  for (int t = 0; npt_config_schema[t]; t++)
    for (const npt_setting_def *d = npt_config_schema[t]; d->name; d++) {
      if (strncmp(d->name, "detect.", 7) && strncmp(d->name, "track.", 6) &&
          strncmp(d->name, "chunking.", 9))
        continue;
      int skipped = 0;
      for (int k = 0; skip[k]; k++)
        skipped |= !strcmp(d->name, skip[k]);
      if (skipped)
        continue;
      char line[1024];
      double lo, hi;
      switch (d->type) {
      case NPT_SET_INT:
        snprintf(line, sizeof line, "%s=%lld\n", d->name, (long long)npt_config_int(cfg, d->name));
        break;
      case NPT_SET_FLOAT:
        snprintf(line, sizeof line, "%s=%.17g\n", d->name, npt_config_float(cfg, d->name));
        break;
      case NPT_SET_BOOL:
        snprintf(line, sizeof line, "%s=%d\n", d->name, npt_config_bool(cfg, d->name));
        break;
      case NPT_SET_STRING:
      case NPT_SET_ENUM:
        snprintf(line, sizeof line, "%s=%s\n", d->name, npt_config_str(cfg, d->name));
        break;
      default:
        npt_config_range(cfg, d->name, &lo, &hi);
        snprintf(line, sizeof line, "%s=%.17g,%.17g\n", d->name, lo, hi);
      }
      npt_sha256_update(&h, line, strlen(line));
    }
  npt_sha256_final(&h, hex);
  return 0;
}

void npt_run_config_hash_backend(char hex[65], const char *backend, int batch) {
  char line[512];
  /* The CPU backend's detections do not depend on the batch; cuDNN may pick another algorithm
   * for another batch size, so a GPU run's do. */
  int n = strcmp(backend, "cpu")
              ? snprintf(line, sizeof line, "%s\nbackend=%s\nbatch=%d\n", hex, backend, batch)
              : snprintf(line, sizeof line, "%s\nbackend=%s\n", hex, backend);
  /* The debug switches that change a backend's numbers (the CPU's fp16 emulation, the cudnn
   * backend without cuDNN fusion, with merged head convolutions, with dynamic-shape plans, with
   * the tail kernel) count too; unset, the hash is what it always was. */
  const char *emu = getenv("NPTRACK_CPU_FP16");
  if (!strcmp(backend, "cpu") && emu && *emu && strcmp(emu, "0") && n < (int)sizeof line)
    n += snprintf(line + n, sizeof line - (size_t)n, "cpu_fp16=%.200s\n", emu);
  /* {variable, the value away from the default, what the hash gets} */
  static const char *const gpu_switches[][3] = {
      {"NPT_CUDNN_FUSE", "0", "cudnn_fuse=0\n"},
      {"NPT_CUDNN_MERGE_HEADS", "1", "cudnn_merge_heads=1\n"},
      {"NPT_CUDNN_KERNEL_CACHE", "1", "cudnn_kernel_cache=1\n"},
      {"NPT_CUDNN_TAIL", "1", "cudnn_tail=1\n"},
      {"NPT_CUDNN_TAIL", "2", "cudnn_tail=2\n"}};
  for (size_t k = 0; k < sizeof gpu_switches / sizeof gpu_switches[0]; k++) {
    const char *v = getenv(gpu_switches[k][0]);
    if (strcmp(backend, "cpu") && v && !strcmp(v, gpu_switches[k][1]) && n < (int)sizeof line)
      n += snprintf(line + n, sizeof line - (size_t)n, "%s", gpu_switches[k][2]);
  }
  if (n >= (int)sizeof line)
    n = (int)sizeof line - 1;
  npt_sha256 h;
  npt_sha256_init(&h);
  npt_sha256_update(&h, line, (size_t)n);
  npt_sha256_final(&h, hex);
}

/* ------------------------------------------------------------------------------------------- */

typedef struct chunk_run {
  npt_chunk_track ct;
  int rank;
  int batches;
} chunk_run;

static int fault_rank = -1;

/* Stages "partrows" (the part's temporary file half written) and "partwrite" (whole, not yet
 * renamed). */
static int part_write_fault(const char *path, const char *point) {
  (void)path;
  return npt_run_fault(fault_rank, strcmp(point, "rows") ? "partwrite" : "partrows");
}

static double now_s(void) {
  return npt_cli_now_s();
}

/* A batch's detections, frame by frame, through the chunk's tracker into its rows. */
static int track_batch(void *ctx, int64_t first, int n, const npt_dets *d) {
  chunk_run *v = ctx;
  if (v->batches++ == 1)
    NPT_TRY(npt_run_fault(v->rank, "chunk"));
  return npt_chunk_track_frames(&v->ct, first, n, d);
}

/* The hash of a chunk's frames: their geometry (and, for a replayed video, the stored and
 * replayed lengths, so that a part of another replay is not taken for this one's even where
 * their frames agree), then the pixels as read. */
static void hash_start(npt_sha256 *h, const npt_frames_info *in, const npt_chunk *ch,
                       int64_t replay) {
  char head[192];
  int n = snprintf(head, sizeof head, "%dx%dx%d bits, frames %lld-%lld\n", in->width, in->height,
                   in->bit_depth, (long long)ch->begin, (long long)ch->end);
  if (replay > 0)
    snprintf(head + n, sizeof head - (size_t)n, "replay of %lld stored frames as %lld\n",
             (long long)in->stored_frames, (long long)replay);
  npt_sha256_init(h);
  npt_sha256_update(h, head, strlen(head));
}

/* Reads the chunk's frames only, for the input hash of a part found on --resume. */
static int hash_frames(npt_frames *fr, const npt_chunk *ch, int64_t replay, char hex[65]) {
  const npt_frames_info *in = npt_frames_get_info(fr);
  size_t fbytes = (size_t)in->height * (size_t)in->width * (size_t)(in->bit_depth / 8);
  enum { BATCH = 16 };
  void *buf = malloc(fbytes * BATCH);
  NPT_ALLOC_CHECK(buf);
  npt_sha256 h;
  hash_start(&h, in, ch, replay);
  int rc = 0;
  for (int64_t t = ch->begin; t < ch->end && rc == 0; t += BATCH) {
    int n = ch->end - t < BATCH ? (int)(ch->end - t) : BATCH;
    rc = npt_frames_read(fr, t, n, buf);
    if (rc == 0)
      npt_sha256_update(&h, buf, fbytes * (size_t)n);
  }
  free(buf);
  if (rc == 0)
    npt_sha256_final(&h, hex);
  return rc;
}

/* --resume: 1 when chunk's part is there and made from the same inputs, 0 when there is none (or
 * an unreadable one, e.g. cut short by a crash before its rename, which cannot happen to a part
 * with its final name but may to a foreign file), or an error when it was made from others. */
static int resume_check(const npt_run *r, const char *path, const npt_chunk *ch, int64_t chunk,
                        npt_frames *fr) {
  if (access(path, F_OK) != 0)
    return 0;
  npt_part_meta m;
  if (npt_part_read_meta(path, &m) < 0)
    return 0;
  const char *what = NULL;
  if (strcmp(m.config_sha256, r->config_sha256))
    what = "a different configuration (detect, track or chunking settings)";
  else if (strcmp(m.model_sha256, r->model_sha256))
    what = "a different model file";
  else if (m.chunk != chunk || m.begin != ch->begin || m.end != ch->end ||
           m.own_begin != ch->own_begin || m.own_end != ch->own_end)
    what = "a different chunk plan (other videos or frame range)";
  if (!what) {
    char hex[65];
    NPT_TRY(hash_frames(fr, ch, r->o.replay_frames, hex));
    if (strcmp(hex, m.input_sha256))
      what = "different input frames (another video, or another detect.replay_frames)";
  }
  if (what)
    return npt_error_set(NPT_ECONFIG,
                         "--resume: %s was made from %s; remove %s or run without --resume", path,
                         what, r->parts_dir);
  return 1;
}

int npt_run_chunk(const npt_run *r, npt_cli_engine *ce, int64_t chunk, int rank, npt_frames **fr,
                  int *fr_video, npt_rank_stats *st) {
  const npt_chunk *ch = &r->plan.chunk[chunk];
  if (*fr_video != ch->video) {
    npt_frames_close(*fr);
    *fr = NULL;
    *fr_video = -1;
    NPT_TRY(npt_frames_open_opts(fr, r->videos[ch->video], &ce->fo));
    *fr_video = ch->video;
  }
  char *path = npt_part_path(r->parts_dir, chunk);
  NPT_ALLOC_CHECK(path);
  double t0 = now_s();
  int rc = r->resume ? resume_check(r, path, ch, chunk, *fr) : 0;
  if (rc != 0) {
    st->resume_s += now_s() - t0;
    st->skipped += rc > 0;
    free(path);
    return rc < 0 ? rc : 0;
  }
  chunk_run v = {.rank = rank};
  npt_sha256 h;
  hash_start(&h, npt_frames_get_info(*fr), ch, r->o.replay_frames);
  /* Reading, inference and tracking overlap: the reader fills the next batch and the tracker
   * takes the last batch's detections while the engine runs this one.  The tracker works in
   * memory (no HDF5 call while the reader runs) on state of its own, in frame order.
   * NPTRACK_SERIAL_TRACKING=1 (tests and measurements only) tracks each batch in the loop's
   * thread after its inference instead, as before: the results are the same. */
  npt_cli_stage_times tm = {0};
  ce->frame_hash = &h;
  ce->prefetch = 1;
  const char *serial = getenv("NPTRACK_SERIAL_TRACKING");
  ce->async_sink = !(serial && !strcmp(serial, "1"));
  ce->times = &tm;
  fault_rank = rank;
  npt__part_write_hook = getenv("NPTRACK_TEST_FAIL") ? part_write_fault : NULL;
  int sat = 0;
  rc = npt_chunk_track_open(&v.ct, &r->ts, ce->embed_dim, ch->own_begin, ch->own_end);
  if (rc == 0)
    rc = npt_cli_detect_frames(ce, *fr, ch->begin, ch->end, r->o.batch, track_batch, &v, &sat);
  ce->frame_hash = NULL;
  ce->prefetch = 0;
  ce->async_sink = 0;
  ce->times = NULL;
  double t1 = now_s();
  npt_tracklets tl = {0};
  if (rc == 0) {
    npt_chunk_track_drop_untracked_low(&v.ct, r->keep_score);
    npt_stitch_rows view = npt_part_rows_view(&v.ct.rows);
    rc = npt_tracklets_build(&r->ts, &view, ch->own_begin, ch->own_end, &tl);
  }
  if (rc == 0) {
    npt_part_meta m = {.chunk = chunk,
                       .video = ch->video,
                       .index = ch->index,
                       .begin = ch->begin,
                       .end = ch->end,
                       .own_begin = ch->own_begin,
                       .own_end = ch->own_end};
    memcpy(m.config_sha256, r->config_sha256, 65);
    memcpy(m.model_sha256, r->model_sha256, 65);
    npt_sha256_final(&h, m.input_sha256);
    m.rank = rank;
    m.detect_s = tm.infer_s;
    m.track_s = tm.sink_s;
    m.saturated = sat;
    rc = npt_part_write(path, &m, &v.ct.rows, &tl, &v.ct.events);
  }
  if (rc < 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", npt_error_msg(rc));
    npt_error_set(rc, "chunk %lld (%s, frames %lld-%lld): %s", (long long)chunk,
                  r->names[ch->video], (long long)ch->begin + 1, (long long)ch->end, msg);
  }
  double t2 = now_s();
  st->read_s += tm.read_s;
  st->read_wait_s += tm.read_wait_s;
  st->detect_s += tm.infer_s;
  st->detect_wait_frames_s += tm.infer_wait_frames_s;
  st->detect_wait_track_s += tm.infer_wait_sink_s;
  st->track_s += tm.sink_s;
  st->track_wait_s += tm.sink_wait_s;
  st->frames_s += t1 - t0;
  st->part_s += t2 - t1;
  st->chunks += rc == 0;
  st->frames += rc == 0 ? ch->end - ch->begin : 0;
  st->saturated += sat;
  npt_tracklets_free(&tl);
  npt_chunk_track_close(&v.ct);
  free(path);
  if (rc == 0)
    rc = npt_run_fault(rank, "part");
  return rc;
}
