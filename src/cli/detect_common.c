#include "cli/detect_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/error.h"

int npt_cli_engine_open(npt_cli_engine *ce, const npt_detect_options *o, int device) {
  *ce = (npt_cli_engine){.fo = {o->dataset, NPT_FRAMES_THW, o->replay_frames}};
  NPT_TRY(npt_frames_axes_parse(o->axis_order, &ce->fo.axes));
  npt_backend_params bp = {o->threads, device, o->batch};
  NPT_TRY(npt_engine_open(&ce->e, o->model, o->backend, &bp));
  ce->g = npt_engine_graph(ce->e);
  npt_detect_decode_params(o, &ce->g->decode, &ce->dp);
  ce->embed_dim = ce->g->heads.embed >= 0 ? ce->g->heads.embed_dim : 0;
  npt_engine_describe(ce->e, ce->backend, sizeof ce->backend);
  return 0;
}

void npt_cli_engine_close(npt_cli_engine *ce) {
  npt_engine_close(ce->e);
  ce->e = NULL;
  ce->g = NULL;
}

int npt_cli_frame_range(const npt_detect_options *o, const char *video, const npt_frames_info *in,
                        int64_t *first, int64_t *end) {
  *first = o->first_frame - 1;
  *end = o->last_frame ? o->last_frame : in->n_frames;
  if (in->n_frames == 0 || in->stored_frames == 0)
    return npt_error_set(NPT_EFORMAT, "%s: the video has no frames", video);
  if (o->replay_frames > 0 && o->replay_frames < in->stored_frames)
    return npt_error_set(NPT_ECONFIG,
                         "detect.replay_frames = %lld: %s stores %lld frames; a replay is at "
                         "least as long as the stored video (detect.last_frame cuts a video "
                         "short)",
                         (long long)o->replay_frames, video, (long long)in->stored_frames);
  if (*first >= in->n_frames || *end > in->n_frames)
    return npt_error_set(NPT_ECONFIG,
                         "detect.first_frame = %lld, detect.last_frame = %lld: %s has frames 1 "
                         "to %lld",
                         (long long)o->first_frame, (long long)o->last_frame, video,
                         (long long)in->n_frames);
  return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The frame loop with a reader thread (ce->prefetch): batch k + 1 is read while batch k runs
 * through the engine.  Two frame buffers, each EMPTY (the reader may fill it) or FULL (the loop
 * may use it); the reader fills batches in order.  A frame buffer is given back as soon as the
 * engine is done with it: the sink sees detections only. */

typedef struct prefetch {
  npt_frames *fr;
  int64_t first, end;
  int batch;
  size_t fbytes;
  void *buf[2];
  int full[2], rc[2], stop;
  char msg[2][1024];
  double busy, wait; /* the reader's */
  pthread_mutex_t lock;
  pthread_cond_t cond;
} prefetch;

static void *reader_main(void *arg) {
  prefetch *p = arg;
  int k = 0;
  for (int64_t t = p->first; t < p->end; t += p->batch, k ^= 1) {
    double t0 = npt_cli_now_s();
    pthread_mutex_lock(&p->lock);
    while (p->full[k] && !p->stop)
      pthread_cond_wait(&p->cond, &p->lock);
    int stop = p->stop;
    pthread_mutex_unlock(&p->lock);
    double t1 = npt_cli_now_s();
    p->wait += t1 - t0;
    if (stop)
      break;
    int n = p->end - t < p->batch ? (int)(p->end - t) : p->batch;
    int rc = npt_frames_read(p->fr, t, n, p->buf[k]);
    p->busy += npt_cli_now_s() - t1;
    pthread_mutex_lock(&p->lock);
    p->rc[k] = rc;
    if (rc < 0)
      snprintf(p->msg[k], sizeof p->msg[k], "%s", npt_error_msg(rc));
    p->full[k] = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (rc < 0)
      break;
  }
  return NULL;
}

/* The sink's thread (ce->async_sink): a queue of two detection slots.  The loop fills slot
 * k = batch % 2 once the sink has emptied it, the sink takes the slots in the same alternation,
 * so it sees the batches in order, at most two behind the engine.  The sink's first error stops
 * it; the loop sees it when it next asks for a slot, and at the end. */
typedef struct sink_queue {
  npt_cli_dets_sink sink;
  void *ctx;
  npt_dets d[2];
  int64_t first[2];
  int n[2], full[2];
  int done;    /* the loop has queued its last batch */
  int abandon; /* ... and, after an error, wants the queued batches dropped */
  int rc;      /* the sink's first error */
  char msg[1024];
  double busy, wait;
  pthread_mutex_t lock;
  pthread_cond_t cond;
} sink_queue;

static void *sink_main(void *arg) {
  sink_queue *q = arg;
  for (int k = 0;; k ^= 1) {
    double t0 = npt_cli_now_s();
    pthread_mutex_lock(&q->lock);
    while (!q->full[k] && !q->done)
      pthread_cond_wait(&q->cond, &q->lock);
    int go = q->full[k] && !q->abandon;
    pthread_mutex_unlock(&q->lock);
    double t1 = npt_cli_now_s();
    q->wait += t1 - t0;
    if (!go)
      break;
    int rc = q->sink(q->ctx, q->first[k], q->n[k], &q->d[k]);
    q->busy += npt_cli_now_s() - t1;
    pthread_mutex_lock(&q->lock);
    q->full[k] = 0;
    if (rc < 0) {
      q->rc = rc;
      snprintf(q->msg, sizeof q->msg, "%s", npt_error_msg(rc));
    }
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    if (rc < 0)
      break;
  }
  return NULL;
}

/* Waits until slot k is free; returns 0, or the sink's error (whose message sink_end sets). */
static int sink_slot(sink_queue *q, int k) {
  pthread_mutex_lock(&q->lock);
  while (q->full[k] && q->rc == 0)
    pthread_cond_wait(&q->cond, &q->lock);
  int rc = q->rc;
  pthread_mutex_unlock(&q->lock);
  return rc;
}

static void sink_push(sink_queue *q, int k, int64_t first, int n) {
  pthread_mutex_lock(&q->lock);
  q->first[k] = first, q->n[k] = n, q->full[k] = 1;
  pthread_cond_broadcast(&q->cond);
  pthread_mutex_unlock(&q->lock);
}

/* Ends the sink's thread: after the batches queued when `rc` is 0, at once otherwise.  Returns
 * the sink's error (with its message, on this thread) if it had one, else rc. */
static int sink_end(sink_queue *q, pthread_t th, int rc) {
  pthread_mutex_lock(&q->lock);
  q->done = 1;
  q->abandon = rc < 0;
  pthread_cond_broadcast(&q->cond);
  pthread_mutex_unlock(&q->lock);
  pthread_join(th, NULL);
  /* The sink's error comes from an earlier batch than any error of the loop's. */
  return q->rc < 0 ? npt_error_set(q->rc, "%s", q->msg) : rc;
}

static int detect_prefetched(npt_cli_engine *ce, npt_frames *fr, int64_t first, int64_t end,
                             int batch, size_t fbytes, npt_cli_dets_sink sink, void *ctx,
                             int *saturated, npt_dets *d, npt_cli_stage_times *tm) {
  const npt_frames_info *in = npt_frames_get_info(fr);
  prefetch p = {.fr = fr, .first = first, .end = end, .batch = batch, .fbytes = fbytes};
  p.buf[0] = malloc(fbytes * (size_t)batch);
  p.buf[1] = malloc(fbytes * (size_t)batch);
  if (!p.buf[0] || !p.buf[1]) {
    free(p.buf[0]), free(p.buf[1]);
    return npt_error_set(NPT_ENOMEM, "out of memory for two batches of %d frames of %dx%d px",
                         batch, in->width, in->height);
  }
  sink_queue q = {.sink = sink, .ctx = ctx};
  npt_dets_init(&q.d[0], ce->embed_dim);
  npt_dets_init(&q.d[1], ce->embed_dim);
  pthread_mutex_init(&p.lock, NULL);
  pthread_cond_init(&p.cond, NULL);
  pthread_mutex_init(&q.lock, NULL);
  pthread_cond_init(&q.cond, NULL);
  pthread_t th, sth;
  int rc = pthread_create(&th, NULL, reader_main, &p) == 0
               ? 0
               : npt_error_set(NPT_EINTERNAL, "cannot start the frame reader thread");
  int started = rc == 0, sink_started = 0, k = 0;
  if (rc == 0 && ce->async_sink) {
    rc = pthread_create(&sth, NULL, sink_main, &q) == 0
             ? 0
             : npt_error_set(NPT_EINTERNAL, "cannot start the tracking thread");
    sink_started = rc == 0;
  }
  for (int64_t t = first; t < end && rc == 0; t += batch, k ^= 1) {
    int n = end - t < batch ? (int)(end - t) : batch;
    double t0 = npt_cli_now_s();
    pthread_mutex_lock(&p.lock);
    while (!p.full[k])
      pthread_cond_wait(&p.cond, &p.lock);
    rc = p.rc[k];
    pthread_mutex_unlock(&p.lock);
    double t1 = npt_cli_now_s();
    tm->infer_wait_frames_s += t1 - t0;
    if (rc < 0) {
      npt_error_set(rc, "%s", p.msg[k]);
      break;
    }
    npt_dets *dk = d;
    if (sink_started) {
      if ((rc = sink_slot(&q, k)) < 0)
        break;
      dk = &q.d[k];
    }
    double t2 = npt_cli_now_s();
    tm->infer_wait_sink_s += t2 - t1;
    int sat = 0;
    npt_dets_clear(dk);
    if (ce->frame_hash)
      npt_sha256_update(ce->frame_hash, p.buf[k], fbytes * (size_t)n);
    rc = npt_engine_detect(ce->e, p.buf[k], in->bit_depth, n, in->height, in->width, t, &ce->dp, dk,
                           &sat);
    *saturated += sat;
    double t3 = npt_cli_now_s();
    tm->infer_s += t3 - t2;
    pthread_mutex_lock(&p.lock);
    p.full[k] = 0;
    pthread_cond_broadcast(&p.cond);
    pthread_mutex_unlock(&p.lock);
    if (rc == 0 && sink_started) {
      sink_push(&q, k, t, n);
    } else if (rc == 0) {
      rc = sink(ctx, t, n, dk);
      tm->sink_s += npt_cli_now_s() - t3;
    }
  }
  if (sink_started) {
    rc = sink_end(&q, sth, rc);
    tm->sink_s += q.busy;
    tm->sink_wait_s += q.wait;
  }
  if (started) {
    pthread_mutex_lock(&p.lock);
    p.stop = 1;
    pthread_cond_broadcast(&p.cond);
    pthread_mutex_unlock(&p.lock);
    pthread_join(th, NULL);
    tm->read_s += p.busy;
    tm->read_wait_s += p.wait;
  }
  pthread_cond_destroy(&q.cond);
  pthread_mutex_destroy(&q.lock);
  pthread_cond_destroy(&p.cond);
  pthread_mutex_destroy(&p.lock);
  npt_dets_free(&q.d[0]), npt_dets_free(&q.d[1]);
  free(p.buf[0]), free(p.buf[1]);
  return rc;
}

int npt_cli_detect_frames(npt_cli_engine *ce, npt_frames *fr, int64_t first, int64_t end, int batch,
                          npt_cli_dets_sink sink, void *ctx, int *saturated) {
  const npt_frames_info *in = npt_frames_get_info(fr);
  size_t fbytes = (size_t)in->height * (size_t)in->width * (size_t)(in->bit_depth / 8);
  npt_cli_stage_times local = {0}, *tm = ce->times ? ce->times : &local;
  npt_dets d;
  npt_dets_init(&d, ce->embed_dim);
  if (ce->prefetch && end - first > batch) {
    int rc = detect_prefetched(ce, fr, first, end, batch, fbytes, sink, ctx, saturated, &d, tm);
    npt_dets_free(&d);
    return rc;
  }
  void *frames = malloc(fbytes * (size_t)batch);
  if (!frames) {
    npt_dets_free(&d);
    return npt_error_set(NPT_ENOMEM, "out of memory for a batch of %d frames of %dx%d px", batch,
                         in->width, in->height);
  }
  int rc = 0;
  for (int64_t t = first; t < end && rc == 0; t += batch) {
    int n = end - t < batch ? (int)(end - t) : batch;
    int sat = 0;
    npt_dets_clear(&d);
    double t0 = npt_cli_now_s();
    rc = npt_frames_read(fr, t, n, frames);
    double t1 = npt_cli_now_s();
    if (rc == 0 && ce->frame_hash)
      npt_sha256_update(ce->frame_hash, frames, fbytes * (size_t)n);
    if (rc == 0)
      rc = npt_engine_detect(ce->e, frames, in->bit_depth, n, in->height, in->width, t, &ce->dp, &d,
                             &sat);
    double t2 = npt_cli_now_s();
    if (rc == 0)
      rc = sink(ctx, t, n, &d);
    *saturated += sat;
    tm->read_s += t1 - t0, tm->infer_s += t2 - t1, tm->sink_s += npt_cli_now_s() - t2;
  }
  npt_dets_free(&d);
  free(frames);
  return rc;
}

void npt_cli_class_names(const npt_graph *g, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int c = 0; c < g->n_classes && used < n; c++)
    used += (size_t)snprintf(buf + used, n - used, "%s%d %s", c ? ", " : "", c + 1,
                             g->class_names ? g->class_names[c] : "");
}

double npt_cli_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
