/* Frames to detections on the GPU (the cudnn backend's `detect`, cudnn_internal.h).
 *
 * Per batch, on two streams:
 *   copy stream:    frames (pinned) -> device                         [event raw]
 *   compute stream: wait raw; preprocess; network (CUDA graph); peak kernel; pack kernel;
 *                   counts -> pinned host                             [event small]
 *   host:           wait small of the previous batch; copy its packed peaks back (copy
 *                   stream); finish its frames with the CPU decoder's select/emit
 * Batches alternate between two slots, so batch k + 1 is queued (its frames copied, its
 * network running) while the host finishes batch k.  Frames in pageable memory are first copied
 * into the slot's pinned staging buffer by the host; frames already in pinned memory (the
 * benchmark's) are copied straight from there.
 *
 * Only compact peak lists come back: per frame its peaks (32 bytes each) and their normalised
 * embeddings.  A frame with a plateau, or with more peaks than the device lists, is decoded by
 * the CPU decoder from its heads instead (they stay in the slot until the next-but-one batch),
 * so detections are always the CPU decoder's on the same heads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "nn/cuda/cudnn_internal.h"

enum { MAX_CAP = 16384 };

static int peak_cap(const npt__gpu_plan *p) {
  const npt_graph *g = p->g;
  int s = g->heads.output_stride;
  /* Peaks without an equal neighbour are at least a window radius apart: with the usual 3 x 3
   * window at most one per 2 x 2 cells and class.  The device lists up to MAX_CAP a frame. */
  long cells = (long)(p->h / s) * (p->w / s) * g->tensors[g->heads.heatmap].channels;
  long cap = cells / 4 + 64;
  return cap < MAX_CAP ? (int)cap : MAX_CAP;
}

static int emb_dim(const npt__gpu_plan *p) {
  return p->head_t[3] >= 0 ? p->t[p->head_t[3]].c : 0;
}

size_t npt__gpu_detect_bytes(const npt__gpu_plan *p) {
  size_t cap = (size_t)peak_cap(p) * p->batch;
  size_t per_slot = (size_t)p->batch * p->h * p->w * 2 + 2 * cap * sizeof(npt_gpu_peak) +
                    cap * emb_dim(p) * sizeof(float) + (3 * (size_t)p->batch + 1) * sizeof(int);
  return NPT__SLOTS * per_slot;
}

int npt__gpu_detect_alloc(npt__gpu_ctx *ctx, npt__gpu_plan *p) {
  (void)ctx;
  p->cap = peak_cap(p);
  p->raw_bytes = (size_t)p->batch * p->h * p->w * 2;
  size_t cap = (size_t)p->cap * p->batch, small = (3 * (size_t)p->batch + 1) * sizeof(int);
  int dim = emb_dim(p);
  for (int s = 0; s < NPT__SLOTS; s++) {
    NPT_CUDA_CHECK(cudaMalloc(&p->d_raw[s], p->raw_bytes));
    NPT_CUDA_CHECK(cudaHostAlloc(&p->h_raw[s], p->raw_bytes, cudaHostAllocDefault));
    NPT_CUDA_CHECK(cudaMalloc((void **)&p->d_peaks[s], cap * sizeof(npt_gpu_peak)));
    NPT_CUDA_CHECK(cudaMalloc((void **)&p->d_packed[s], cap * sizeof(npt_gpu_peak)));
    if (dim > 0)
      NPT_CUDA_CHECK(cudaMalloc((void **)&p->d_packed_emb[s], cap * dim * sizeof(float)));
    NPT_CUDA_CHECK(cudaMalloc((void **)&p->d_small[s], small));
    NPT_CUDA_CHECK(cudaHostAlloc((void **)&p->h_small[s], small, cudaHostAllocDefault));
    NPT_CUDA_CHECK(cudaEventCreateWithFlags(&p->ev_raw[s], cudaEventDisableTiming));
    NPT_CUDA_CHECK(cudaEventCreateWithFlags(&p->ev_small[s], cudaEventDisableTiming));
    NPT_CUDA_CHECK(cudaEventCreateWithFlags(&p->ev_done[s], cudaEventDisableTiming));
  }
  p->device_bytes += npt__gpu_detect_bytes(p);
  return 0;
}

/* The view of frames [0, m) of a slot's head k. */
static npt_dview head_view(const npt__gpu_plan *p, int k, int slot, int m) {
  npt_dview v = npt__gpu_view(p, p->head_t[k], slot);
  v.n = m;
  return v;
}

/* Queues batch `k` (m frames at `src`) in `slot`. */
static int enqueue(npt__gpu_ctx *ctx, npt__gpu_plan *p, int slot, const void *src, int pinned,
                   const npt_norm *norm, int m, int h, int w, const npt_decode_params *dp) {
  size_t bytes = (size_t)m * h * w * (norm->bit_depth / 8);
  if (!pinned) {
    memcpy(p->h_raw[slot], src, bytes);
    src = p->h_raw[slot];
  }
  NPT_CUDA_CHECK(cudaMemcpyAsync(p->d_raw[slot], src, bytes, cudaMemcpyHostToDevice, ctx->copy));
  NPT_CUDA_CHECK(cudaEventRecord(p->ev_raw[slot], ctx->copy));
  NPT_CUDA_CHECK(cudaStreamWaitEvent(ctx->compute, p->ev_raw[slot], 0));
  npt_dview in = npt__gpu_view(p, p->g->input, slot);
  NPT_TRY(npt_preprocess_cuda(p->d_raw[slot], m, h, w, p->h, p->w, norm, (uint16_t *)in.p,
                              ctx->compute));
  NPT_TRY(npt__gpu_forward(ctx, p, slot));
  int s = p->g->heads.output_stride;
  int *counts = p->d_small[slot], *flags = counts + p->batch, *offsets = flags + p->batch;
  NPT_CUDA_CHECK(cudaMemsetAsync(counts, 0, 2 * (size_t)p->batch * sizeof(int), ctx->compute));
  npt_dview heat = head_view(p, 0, slot, m), size = head_view(p, 1, slot, m),
            off = head_view(p, 2, slot, m);
  NPT_TRY(npt_k_decode_peaks(&heat, &size, &off, (h + s - 1) / s, (w + s - 1) / s,
                             (dp->peak_kernel - 1) / 2, dp->score_threshold, p->cap,
                             p->d_peaks[slot], counts, flags, ctx->compute));
  npt_dview emb = p->head_t[3] >= 0 ? head_view(p, 3, slot, m) : (npt_dview){0};
  NPT_TRY(npt_k_decode_pack(p->d_peaks[slot], counts, m, p->cap, heat.w,
                            p->head_t[3] >= 0 ? &emb : NULL, p->head_scale[3], p->d_packed[slot],
                            p->d_packed_emb[slot], offsets, ctx->compute));
  NPT_CUDA_CHECK(cudaMemcpyAsync(p->h_small[slot], p->d_small[slot],
                                 (3 * (size_t)p->batch + 1) * sizeof(int), cudaMemcpyDeviceToHost,
                                 ctx->compute));
  NPT_CUDA_CHECK(cudaEventRecord(p->ev_small[slot], ctx->compute));
  return 0;
}

/* The CPU decoder on frame f of a slot's heads, copied back as the backend interface gives them. */
static int decode_on_host(npt__gpu_ctx *ctx, npt__gpu_plan *p, int slot, int f, int h, int w,
                          int64_t frame, const npt_decode_params *dp, npt_dets *dets, int *sat) {
  npt_head_outputs o = p->out;
  const float **dst[4] = {&o.heatmap, &o.size, &o.offset, &o.embed};
  for (int k = 0; k < 4; k++) {
    *dst[k] = NULL;
    if (p->head_t[k] < 0)
      continue;
    npt_dview v = npt__gpu_view(p, p->head_t[k], slot);
    size_t per = (size_t)v.h * v.w * v.c, floats = per * p->head_scale[k] * p->head_scale[k];
    v.p = (char *)v.p + per * f * (v.dt == NPT_DT_F16 ? 2 : 4);
    v.n = 1;
    NPT_TRY(npt_k_to_nchw(&v, p->head_scale[k], p->d_heads_f32[k], ctx->copy));
    NPT_CUDA_CHECK(cudaMemcpyAsync(p->h_heads[k], p->d_heads_f32[k], floats * sizeof(float),
                                   cudaMemcpyDeviceToHost, ctx->copy));
    *dst[k] = p->h_heads[k];
  }
  NPT_CUDA_CHECK(cudaStreamSynchronize(ctx->copy));
  o.batch = 1;
  return npt_decode_frame(p->g, &o, 0, h, w, frame, dp, dets, sat);
}

static int grow_host(npt__gpu_plan *p, int slot, size_t total, int dim) {
  if (total <= p->h_packed_cap[slot])
    return 0;
  size_t cap = total * 2;
  cudaFreeHost(p->h_packed[slot]);
  cudaFreeHost(p->h_packed_emb[slot]);
  p->h_packed[slot] = NULL, p->h_packed_emb[slot] = NULL, p->h_packed_cap[slot] = 0;
  NPT_CUDA_CHECK(
      cudaHostAlloc((void **)&p->h_packed[slot], cap * sizeof(npt_gpu_peak), cudaHostAllocDefault));
  if (dim > 0)
    NPT_CUDA_CHECK(cudaHostAlloc((void **)&p->h_packed_emb[slot], cap * dim * sizeof(float),
                                 cudaHostAllocDefault));
  p->h_packed_cap[slot] = cap;
  return 0;
}

/* Waits for batch (slot, m frames from `frame0`) and appends its detections. */
static int finish(npt__gpu_ctx *ctx, npt__gpu_plan *p, int slot, int m, int h, int w,
                  int64_t frame0, const npt_decode_params *dp, npt_dets *dets, int *saturated) {
  NPT_CUDA_CHECK(cudaEventSynchronize(p->ev_small[slot]));
  const int *counts = p->h_small[slot], *flags = counts + p->batch, *offsets = flags + p->batch;
  size_t total = (size_t)offsets[m];
  int dim = emb_dim(p);
  NPT_TRY(grow_host(p, slot, total > 0 ? total : 1, dim));
  if (total > 0) {
    NPT_CUDA_CHECK(cudaMemcpyAsync(p->h_packed[slot], p->d_packed[slot],
                                   total * sizeof(npt_gpu_peak), cudaMemcpyDeviceToHost,
                                   ctx->copy));
    if (dim > 0)
      NPT_CUDA_CHECK(cudaMemcpyAsync(p->h_packed_emb[slot], p->d_packed_emb[slot],
                                     total * dim * sizeof(float), cudaMemcpyDeviceToHost,
                                     ctx->copy));
    NPT_CUDA_CHECK(cudaStreamSynchronize(ctx->copy));
  }
  const int s = p->g->heads.output_stride, w_out = p->w / s;
  for (int f = 0; f < m; f++) {
    int sat = 0;
    if (flags[f] || counts[f] > p->cap) {
      NPT_TRY(decode_on_host(ctx, p, slot, f, h, w, frame0 + f, dp, dets, &sat));
      *saturated += sat;
      continue;
    }
    int64_t n = counts[f];
    if ((size_t)n > p->host_peaks_cap) {
      npt__dpeak *q = realloc(p->host_peaks, (size_t)n * 2 * sizeof *q);
      NPT_ALLOC_CHECK(q);
      p->host_peaks = q, p->host_peaks_cap = (size_t)n * 2;
    }
    const npt_gpu_peak *src = p->h_packed[slot] + offsets[f];
    for (int64_t k = 0; k < n; k++)
      p->host_peaks[k] = (npt__dpeak){.score = src[k].score,
                                      .cls = src[k].cls,
                                      .idx = src[k].idx,
                                      .ox = src[k].ox,
                                      .oy = src[k].oy,
                                      .sw = src[k].sw,
                                      .sh = src[k].sh,
                                      .row = offsets[f] + k};
    NPT_TRY(npt__decode_select(p->host_peaks, &n, s, w_out, h, w, dp, &sat));
    NPT_TRY(npt__decode_emit(p->host_peaks, n, s, w_out, frame0 + f, dets));
    if (dets->embed_dim > 0)
      for (int64_t k = 0; k < n; k++)
        memcpy(dets->embed + (dets->n + k) * dim,
               p->h_packed_emb[slot] + (size_t)p->host_peaks[k].row * dim, sizeof(float) * dim);
    dets->n += n;
    *saturated += sat;
  }
  return 0;
}

int npt__gpu_detect(void *vctx, void *vplan, const void *frames, const npt_norm *norm, int n, int h,
                    int w, int64_t first_frame, const struct npt_decode_params *dp,
                    struct npt_dets *dets, int *saturated) {
  npt__gpu_ctx *ctx = vctx;
  npt__gpu_plan *p = vplan;
  *saturated = 0;
  NPT_TRY(npt__decode_check_params(dp));
  if (!norm || (norm->bit_depth != 8 && norm->bit_depth != 16) || n < 1 || h < 1 || w < 1 ||
      h > p->h || w > p->w || !frames)
    return npt_error_set(NPT_EINVAL,
                         "cudnn backend: %d frames of %dx%d do not fit a plan for "
                         "%dx%d",
                         n, w, h, p->w, p->h);
  const npt_heads *hd = &p->g->heads;
  if (dets->embed_dim > 0 && (hd->embed < 0 || dets->embed_dim != emb_dim(p)))
    return npt_error_set(NPT_EINVAL,
                         "decode: detections list wants %d-dimensional embeddings, the model "
                         "gives %d",
                         dets->embed_dim, emb_dim(p));
  NPT_CUDA_CHECK(cudaSetDevice(ctx->device));
  struct cudaPointerAttributes attr;
  int pinned =
      cudaPointerGetAttributes(&attr, frames) == cudaSuccess && attr.type == cudaMemoryTypeHost;
  cudaGetLastError();
  size_t fbytes = (size_t)h * w * (norm->bit_depth / 8);
  int batches = (n + p->batch - 1) / p->batch, prev_m = 0;
  for (int k = 0; k <= batches; k++) {
    if (k < batches) {
      int m = n - k * p->batch < p->batch ? n - k * p->batch : p->batch;
      NPT_TRY(enqueue(ctx, p, k % NPT__SLOTS, (const char *)frames + fbytes * k * p->batch, pinned,
                      norm, m, h, w, dp));
      if (k == 0) {
        prev_m = m;
        continue;
      }
      NPT_TRY(finish(ctx, p, (k - 1) % NPT__SLOTS, prev_m, h, w,
                     first_frame + (int64_t)(k - 1) * p->batch, dp, dets, saturated));
      prev_m = m;
    } else {
      NPT_TRY(finish(ctx, p, (k - 1) % NPT__SLOTS, prev_m, h, w,
                     first_frame + (int64_t)(k - 1) * p->batch, dp, dets, saturated));
    }
  }
  return 0;
}
