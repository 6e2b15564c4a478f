/* The detection engine (engine.h): model file + backend + preprocessing + decoding.
 *
 * Frames are normalised with the model's contract for their bit depth (its norm_mode: fixed
 * constants, or each frame's own statistics), padded to the network's multiple, run through
 * the backend in batches, and decoded frame by frame on the host.  A backend plan is made for
 * each (batch, padded size) the engine meets and kept in a small cache: a video has one frame
 * size, and at most two batch sizes (full batches and the last, partial one), so plans are
 * made once per video, not per call.  A backend that detects on its device is planned for the
 * caller's batch (npt_backend_params.batch) when it is known, and a shorter call runs through
 * that plan, padded: one plan per frame size (a cuDNN plan can take seconds to make), and every
 * frame through the same plan whatever the length of the call it came in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/engine.h"
#include "nn/gpu_info.h"
#include "nn/preprocess.h"
#include "nn/refine.h"

enum {
  /* Frames per backend run.  Four give the backend enough work per run at any frame size,
   * and bound a run's memory (about 1 GB for 2048^2 frames with the benchmark network). */
  MAX_BATCH = 4,
  N_PLANS = 4,
};

typedef struct plan_slot {
  int batch, h, w;
  void *plan;
  unsigned long used; /* for least-recently-used eviction */
} plan_slot;

struct npt_engine {
  npt_graph *g;
  const npt_backend_i *be;
  void *ctx;
  plan_slot plans[N_PLANS];
  unsigned long tick;
  int batch_hint; /* npt_backend_params.batch */
  float *input;
  size_t input_floats;
  char note[512]; /* why `auto` fell back to the CPU, or "" */
};

void npt_engine_close(npt_engine *e) {
  if (!e)
    return;
  for (int i = 0; i < N_PLANS; i++)
    if (e->plans[i].plan)
      e->be->plan_free(e->ctx, e->plans[i].plan);
  if (e->ctx)
    e->be->free(e->ctx);
  npt_graph_free(e->g);
  free(e->input);
  free(e);
}

/* Opens backend `be` for the loaded graph and checks that it runs every node. */
static int open_backend(npt_engine *e, const npt_backend_i *be, const char *model_path,
                        const npt_backend_params *params) {
  e->be = be;
  NPT_TRY(be->init(&e->ctx, params));
  for (int i = 0; i < e->g->n_nodes; i++)
    if (!be->supports(e->ctx, e->g, &e->g->nodes[i])) {
      be->free(e->ctx);
      e->ctx = NULL;
      return npt_error_set(NPT_EUNSUPPORTED, "%s: backend %s cannot run node %s", model_path,
                           be->name, e->g->nodes[i].name);
    }
  return 0;
}

int npt_engine_open(npt_engine **out, const char *model_path, const char *backend,
                    const npt_backend_params *params) {
  *out = NULL;
  int is_auto = backend && strcmp(backend, "auto") == 0;
  const npt_backend_i *be = is_auto ? npt_backend_find("cpu") : npt_backend_find(backend);
  if (!be)
    return npt_error_set(NPT_EUNSUPPORTED,
                         "backend '%s' is not in this build (it has: cpu%s, or auto)",
                         backend ? backend : "(null)", npt_backend_find("cudnn") ? ", cudnn" : "");
  npt_engine *e = calloc(1, sizeof *e);
  NPT_ALLOC_CHECK(e);
  e->be = be;
  e->batch_hint = params->batch > 0 ? params->batch : 0;
  int rc = npt_graph_load(&e->g, model_path);
  if (rc == 0 && is_auto) {
    /* auto: the GPU when one works, else the CPU, saying why. */
    const npt_backend_i *gpu = npt_backend_find("cudnn");
    if (!gpu)
      snprintf(e->note, sizeof e->note, "this build has no GPU backend");
    else if (npt_gpu_count() == 0)
      snprintf(e->note, sizeof e->note, "no GPU visible");
    else if (open_backend(e, gpu, model_path, params) == 0)
      be = gpu;
    else
      snprintf(e->note, sizeof e->note, "the GPU backend failed: %s", npt_error_msg(-1));
    npt_error_clear();
  }
  if (rc == 0 && !e->ctx)
    rc = open_backend(e, be, model_path, params);
  if (rc < 0) {
    npt_engine_close(e);
    return rc;
  }
  *out = e;
  return 0;
}

const char *npt_engine_backend(const npt_engine *e) {
  return e->be->name;
}

void npt_engine_describe(const npt_engine *e, char *buf, size_t n) {
  if (e->be->describe)
    e->be->describe(e->ctx, buf, n);
  else
    snprintf(buf, n, "%s", e->be->name);
  if (e->note[0]) {
    size_t used = strlen(buf);
    if (used < n)
      snprintf(buf + used, n - used, " (auto: %s)", e->note);
  }
}

const npt_graph *npt_engine_graph(const npt_engine *e) {
  return e->g;
}

/* The plan for (batch, h, w): from the cache, or made now (evicting the least recently used). */
static int get_plan(npt_engine *e, int batch, int h, int w, void **plan) {
  plan_slot *victim = &e->plans[0];
  for (int i = 0; i < N_PLANS; i++) {
    plan_slot *s = &e->plans[i];
    if (s->plan && s->batch == batch && s->h == h && s->w == w) {
      s->used = ++e->tick;
      *plan = s->plan;
      return 0;
    }
    if (!s->plan || (victim->plan && s->used < victim->used))
      victim = s;
  }
  if (victim->plan)
    e->be->plan_free(e->ctx, victim->plan);
  victim->plan = NULL;
  NPT_TRY(e->be->plan(e->ctx, e->g, batch, h, w, &victim->plan));
  victim->batch = batch, victim->h = h, victim->w = w, victim->used = ++e->tick;
  *plan = victim->plan;
  return 0;
}

/* One batch of frames [first, first + n) of the call. */
static int detect_batch(npt_engine *e, const void *frames, const npt_norm *norm, int n, int h,
                        int w, int hp, int wp, int64_t frame0, const npt_decode_params *dp,
                        npt_dets *dets, int *saturated_frames) {
  size_t need = (size_t)n * hp * wp;
  if (need > e->input_floats) {
    float *x = realloc(e->input, sizeof *x * need);
    NPT_ALLOC_CHECK(x);
    e->input = x, e->input_floats = need;
  }
  void *plan;
  npt_head_outputs out;
  NPT_TRY(npt_preprocess_cpu(frames, n, h, w, hp, wp, norm, e->input));
  NPT_TRY(get_plan(e, n, hp, wp, &plan));
  NPT_TRY(e->be->run(e->ctx, plan, e->input, &out));
  for (int b = 0; b < n; b++) {
    int sat = 0;
    NPT_TRY(npt_decode_frame(e->g, &out, b, h, w, frame0 + b, dp, dets, &sat));
    *saturated_frames += sat;
  }
  return 0;
}

/* Box refinement of the detections dets->det[from..] of frames [first_frame, first_frame + n),
 * the frames in parallel (OpenMP; each frame's fit depends on that frame alone). */
static int refine_boxes(const npt_graph *g, const void *frames, int bit_depth, int n, int h, int w,
                        int64_t first_frame, npt_dets *dets, int64_t from) {
  const npt_refine_params rp = {g->decode.score_threshold, 10.0f, 1};
  size_t frame_bytes = (size_t)h * w * (bit_depth / 8);
  int64_t *start = malloc(sizeof *start * (size_t)(n + 1));
  NPT_ALLOC_CHECK(start);
  int64_t i = from;
  for (int b = 0; b < n; b++) {
    start[b] = i;
    while (i < dets->n && dets->det[i].frame == first_frame + b)
      i++;
  }
  start[n] = i;
  int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
  for (int b = 0; b < n; b++)
    failed |= npt_refine_frame((const char *)frames + frame_bytes * b, bit_depth, h, w,
                               dets->det + start[b], start[b + 1] - start[b], &rp, NULL) < 0;
  free(start);
  /* the only error a valid call can meet; a worker thread's own message is not this thread's */
  return failed ? npt_error_set(NPT_ENOMEM, "box refinement: out of memory") : 0;
}

static int detect_call(npt_engine *e, const void *frames, int bit_depth, int n, int h, int w,
                       int64_t first_frame, const npt_decode_params *p, npt_dets *dets,
                       int *saturated_frames);

int npt_engine_detect(npt_engine *e, const void *frames, int bit_depth, int n, int h, int w,
                      int64_t first_frame, const npt_decode_params *p, npt_dets *dets,
                      int *saturated_frames) {
  int64_t from = dets ? dets->n : 0;
  int rc = detect_call(e, frames, bit_depth, n, h, w, first_frame, p, dets, saturated_frames);
  if (rc == 0 && p && p->refine && n > 0) {
    rc = refine_boxes(e->g, frames, bit_depth, n, h, w, first_frame, dets, from);
    if (rc < 0) {
      char why[512];
      snprintf(why, sizeof why, "%s", npt_error_msg(rc));
      return npt_error_set(rc, "frames %lld-%lld: %s", (long long)(first_frame + 1),
                           (long long)(first_frame + n), why);
    }
  }
  return rc;
}

static int detect_call(npt_engine *e, const void *frames, int bit_depth, int n, int h, int w,
                       int64_t first_frame, const npt_decode_params *p, npt_dets *dets,
                       int *saturated_frames) {
  int sat_total = 0;
  if (saturated_frames)
    *saturated_frames = 0;
  if (bit_depth != 8 && bit_depth != 16)
    return npt_error_set(NPT_EINVAL, "detect: bit depth must be 8 or 16 (got %d)", bit_depth);
  if (n < 0 || h <= 0 || w <= 0 || (n > 0 && !frames) || !dets)
    return npt_error_set(NPT_EINVAL, "detect: bad arguments (%d frames of %dx%d)", n, h, w);
  const npt_graph *g = e->g;
  npt_norm norm = bit_depth == 8 ? g->norm8 : g->norm16; /* with the model's mode */
  norm.bit_depth = bit_depth;
  npt_decode_params dp = {g->decode.score_threshold, g->decode.top_k, g->decode.peak_kernel,
                          g->decode.suppress_ratio, 0};
  if (p)
    dp = *p;
  int m = g->multiple > 0 ? g->multiple : 1;
  int hp = (h + m - 1) / m * m, wp = (w + m - 1) / m * m;
  if (e->be->detect && n > 0) {
    /* The backend decodes on its device, a batch of up to max_batch frames at a time; for the
     * caller's batch when known, a shorter call padded (its frames alone decoded). */
    int want = n > e->batch_hint ? n : e->batch_hint;
    int batch = want < e->be->max_batch ? want : e->be->max_batch;
    void *plan;
    int rc = get_plan(e, batch, hp, wp, &plan);
    if (rc == 0)
      rc = e->be->detect(e->ctx, plan, frames, &norm, n, h, w, first_frame, &dp, dets, &sat_total);
    if (rc < 0) {
      char why[512];
      snprintf(why, sizeof why, "%s", npt_error_msg(rc));
      return npt_error_set(rc, "%s: frames %lld-%lld (%dx%d): %s", g->path ? g->path : "model",
                           (long long)(first_frame + 1), (long long)(first_frame + n), h, w, why);
    }
    if (saturated_frames)
      *saturated_frames = sat_total;
    return 0;
  }
  size_t frame_bytes = (size_t)h * w * (bit_depth / 8);
  for (int i = 0; i < n; i += MAX_BATCH) {
    int nb = n - i < MAX_BATCH ? n - i : MAX_BATCH;
    int rc = detect_batch(e, (const char *)frames + frame_bytes * i, &norm, nb, h, w, hp, wp,
                          first_frame + i, &dp, dets, &sat_total);
    if (rc < 0) {
      char why[512];
      snprintf(why, sizeof why, "%s", npt_error_msg(rc));
      /* Frames are counted from 1 in every message, as in the text files. */
      return npt_error_set(rc, "%s: frames %lld-%lld (%dx%d): %s", g->path ? g->path : "model",
                           (long long)(first_frame + i + 1), (long long)(first_frame + i + nb), h,
                           w, why);
    }
  }
  if (saturated_frames)
    *saturated_frames = sat_total;
  return 0;
}
