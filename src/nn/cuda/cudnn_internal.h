/* The cudnn backend's insides (cudnn_backend.c, cudnn_plan.c, cudnn_detect.c), shared with its
 * tests through cudnn_debug.h.  Not part of nptrack's public interface.
 *
 * Layout and types.  Every tensor is NHWC on the device.  Tensors are fp16, except the heatmap,
 * size and offset heads, which are written in fp32 (their last op accumulates in fp32 anyway,
 * and the box sizes of large particles need more than fp16's 11 bits: a 160 px box in fp16 is
 * 0.125 px coarse).  The network input is the preprocessed frame, fp16, one channel.  What fp16
 * storage costs the boxes was measured with the CPU backend's emulation of it
 * (NPTRACK_CPU_FP16, src/nn/cpu/cpu_fp16.c; docs/performance.md): at most 0.056 px (8e-4 of the
 * box side) at a fixed peak cell; keeping the box branch in fp32 bought 0.007 px of that, so it
 * stays fp16.  The larger differences are peaks that move to a neighbouring cell of nearly equal
 * heatmap value, which no fp16 variant removes.
 *
 * Steps.  A plan turns the graph into steps, fusing where it pays:
 * - a convolution runs in cuDNN (fp16 tensor cores, fp32 accumulation) with its bias, the
 *   residual addend of the ADD it feeds when it is that ADD's only use (a residual block's second
 *   conv) and its activation fused by cuDNN itself (cudnn_fused.c: one backend operation graph
 *   per step, intermediates virtual), so that only the final output is written;
 * - where cuDNN cannot fuse (an upsampled addend, 1x1 heads after it, grouped convolutions, no
 *   engine for the graph; or NPT_CUDNN_FUSE=0), the convolution writes a scratch buffer in fp16
 *   and one elementwise pass (kernels/nn_ops.cu, npt_k_epilogue) adds the bias and the addends
 *   and applies the activation;
 * - thin convolutions (one input channel, at most 8 outputs, small 1x1s such as a neck's
 *   lateral convs) run in the direct kernel with that whole epilogue fused, an upsampled addend
 *   included;
 * - 1x1 heads (at most 8 outputs each) that are the only readers of a cuDNN convolution are
 *   computed in that convolution's epilogue (npt_k_epilogue_heads): the head trunk is never
 *   stored;
 * - two such head convolutions on the same input with the same geometry and activation (the
 *   shipped model's hm1 and box1) are merged into one convolution with the two weight sets
 *   concatenated along the outputs, and one heads epilogue computes every head from the merged
 *   trunk (each head's weights zero-padded to the merged channels), so the input is read once
 *   and there is one pre-epilogue buffer instead of two (only with NPT_CUDNN_MERGE_HEADS=1).  The
 *   merged convolution is a node of the plan's own (npt__gpu_plan.mnodes) writing a tensor of
 *   the plan's own (index g->n_tensors and up, never stored); the graph is not changed;
 * - with NPT_CUDNN_TAIL=1 (or 2), a 3x3 convolution whose output is read only by two such mergeable
 *   head convolutions (the shipped model's f2, hm1 and box1), with the channel counts the tail
 *   kernel is compiled for, runs with them and their heads as one step of one custom kernel
 *   (kernels/tail.cu): neither f2's output nor the trunk is stored;
 * - an UPSAMPLE read only by an ADD is never stored: the ADD's pass interpolates its input;
 * - an embedding head that is a nearest UPSAMPLE of a tensor is never computed: decoding reads
 *   the tensor before it at the coarser cell (the heads given back by run() are upsampled while
 *   they are copied out).
 *
 * Slots.  A plan has two slots, so that one batch's results can be read back while the next
 * runs.  Each slot has its own raw-frame buffer, head tensors, decode buffers and CUDA graph; the
 * other tensors are shared, since batches run one after the other on the compute stream. */
#ifndef NPT_CUDNN_INTERNAL_H
#define NPT_CUDNN_INTERNAL_H

#include <cuda_runtime.h>
#include <cudnn.h>

#include "nn/backend.h"
#include "nn/cuda/cuda_check.h"
#include "nn/decode_internal.h"
#include "npt_kernels.h"

enum { NPT__SLOTS = 2, NPT__MAX_STEPS = 512 };

#define NPT_CUDNN_CHECK(stmt)                                                                      \
  do {                                                                                             \
    cudnnStatus_t npt__s = (stmt);                                                                 \
    if (npt__s != CUDNN_STATUS_SUCCESS)                                                            \
      return npt__check_fail(NPT_ECUDA, __FILE__, __LINE__, #stmt, cudnnGetErrorString(npt__s));   \
  } while (0)

/* cuDNN kernel caches (cudnn_fused.c), one per fused-graph topology: the key says everything
 * about a fused step's graph but the batch and the frame size. */
typedef struct npt__kcache {
  char key[128];
  cudnnBackendDescriptor_t cache;
  void *keep; /* the descriptors of the graph it was made from (cudnn_fused.c's desc_list) */
  int plans;  /* fused plans finalized with it */
} npt__kcache;
enum { NPT__MAX_KCACHES = 64 };

typedef struct npt__gpu_ctx {
  int device;
  struct cudaDeviceProp prop;
  cudnnHandle_t cudnn;
  cudaStream_t compute, copy;
  /* Kernel caches shared by every plan of this context (not thread-safe, like the rest). */
  int n_kcaches;
  npt__kcache kcaches[NPT__MAX_KCACHES];
  int dyn_ok, dyn_failed; /* steps planned with dynamic shapes; refused (then static) */
} npt__gpu_ctx;

typedef struct npt__gpu_tensor {
  int c, h, w;
  npt_dtype dt;
  int stored;          /* 0: never written (fused away) */
  int per_slot;        /* a head (or an elided head's source): one buffer per slot */
  void *d[NPT__SLOTS]; /* device buffers (d[0] for all slots unless per_slot) */
  size_t bytes;        /* one buffer's size */
} npt__gpu_tensor;

typedef enum {
  NPT__STEP_CUDNN, /* cuDNN convolution into scratch, then the epilogue pass */
  NPT__STEP_DIRECT,
  NPT__STEP_ELTWISE, /* ADD / UPSAMPLE / CONCAT without a convolution: epilogue passes */
  NPT__STEP_POOL,
  NPT__STEP_TAIL, /* a conv, the merged head convs on its output and their heads: one kernel */
} npt__step_kind;

typedef struct npt__gpu_step {
  npt__step_kind kind;
  const npt_node *node; /* the conv (CUDNN, DIRECT), else the node itself */
  int out;              /* tensor written */
  int act;              /* applied last */
  /* Addends of the epilogue: tensors, with the scale and mode of a fused UPSAMPLE (1: none). */
  int n_add, add_t[NPT_MAX_INPUTS], add_scale[NPT_MAX_INPUTS], add_bilinear[NPT_MAX_INPUTS];
  /* 1x1 heads computed in this convolution's epilogue (npt_k_epilogue_heads); the conv's own
   * output is then never stored. */
  int n_tail;
  const npt_node *tail[NPT_K_MAX_HEADS];
  int tail_c0[NPT_K_MAX_HEADS]; /* first trunk channel a head reads (a merged step's second conv) */
  float *d_tail_w[NPT_K_MAX_HEADS], *d_tail_b[NPT_K_MAX_HEADS];
  int merged; /* 1: node is two head convolutions merged (mnodes) */
  /* A tail step (NPT_CUDNN_TAIL=1 or 2; kernels/tail.cu): node is the first conv (the shipped
   * model's f2), trunk the merged head convs it feeds (hm1+box1), tail the heads; d_w holds the
   * packed parameters (npt_tail_pack); tail_blocks is the kernel's persistent grid. */
  const npt_node *trunk;
  int tail_blocks;
  int tail_version; /* 1: CUDA cores (NPT_CUDNN_TAIL=1), 2: tensor cores (NPT_CUDNN_TAIL=2) */
  /* Convolutions. */
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  cudnnConvolutionFwdAlgo_t algo;
  size_t ws;
  /* The same convolution with bias, addend and activation fused by cuDNN (cudnn_fused.c), when
   * an engine supports it (NULL: the convolution and the epilogue pass above). */
  cudnnBackendDescriptor_t fplan;
  void *fkeep; /* the descriptors fplan was made from */
  size_t fws;
  long long fengine; /* cuDNN's global index of the engine chosen */
  int frtc;          /* 1: that engine compiled its kernel at plan time */
  int fdynamic;      /* 1: planned as a dynamic-shape graph with a shared kernel cache */
  double fplan_ms;   /* time to build the fused plan (heuristics, finalization, compilation) */
  void *d_w;         /* fp16 [c_out][kh][kw][c_in/groups] (cuDNN) or fp32 [kh][kw][c_in][c_out] */
  float *d_bias;     /* c_out floats */
} npt__gpu_step;

typedef struct npt__gpu_plan {
  const npt_graph *g;
  int batch, h, w;
  int n_tensors; /* g->n_tensors, then one per merged step */
  npt__gpu_tensor *t;
  /* Merged head convolutions (cudnn_plan.c): nodes owned by the plan, with their concatenated
   * weights and biases. */
  int n_mnodes;
  npt_node *mnodes;
  int n_steps;
  npt__gpu_step *steps;
  void *scratch; /* a cuDNN convolution's output before its epilogue */
  size_t scratch_bytes;
  void *workspace; /* cuDNN's, the largest any chosen algorithm asks for, allocated once */
  size_t ws_bytes;
  /* Heads: tensor read for heatmap, size, offset, embed (-1: none) and the nearest-upsampling
   * factor still to apply (2 for an elided embedding upsample, else 1). */
  int head_t[4], head_scale[4];
  /* The network run of each slot as a CUDA graph (NULL: run step by step). */
  cudaGraphExec_t graph[NPT__SLOTS];
  int use_graphs;
  /* Host-interface buffers (run()): the input as floats, heads as plain fp32. */
  float *d_in_f32;
  float *d_heads_f32[4];
  float *h_heads[4];
  size_t head_floats[4];
  npt_head_outputs out;
  /* Frames to detections (cudnn_detect.c): per slot. */
  size_t raw_bytes; /* room for batch frames of h x w at 16 bits */
  void *d_raw[NPT__SLOTS];
  void *h_raw[NPT__SLOTS]; /* pinned staging */
  int cap;                 /* peaks per frame the device lists */
  npt_gpu_peak *d_peaks[NPT__SLOTS], *d_packed[NPT__SLOTS];
  float *d_packed_emb[NPT__SLOTS];
  int *d_small[NPT__SLOTS]; /* counts[batch], flags[batch], offsets[batch + 1] */
  int *h_small[NPT__SLOTS]; /* pinned copy of d_small */
  npt_gpu_peak *h_packed[NPT__SLOTS];
  float *h_packed_emb[NPT__SLOTS];
  size_t h_packed_cap[NPT__SLOTS]; /* peaks the pinned buffers hold */
  cudaEvent_t ev_raw[NPT__SLOTS], ev_small[NPT__SLOTS], ev_done[NPT__SLOTS];
  npt__dpeak *host_peaks;
  size_t host_peaks_cap;
  int fused_convs;  /* steps run as cuDNN fused graphs */
  int merged_steps; /* steps that run two merged head convolutions */
  int tail_steps;   /* steps that run the tail kernel (NPT_CUDNN_TAIL=1 or 2) */
  /* The device's shared memory per block (opt-in), which bounds the tail kernel; set by the
   * caller of npt__gpu_plan_layout (0: unknown, not checked; host-only tests). */
  size_t smem_optin;
  double plan_ms, fused_plan_ms; /* time to make the plan; of it, building fused plans */
  /* Test hooks. */
  int poison;
  size_t device_bytes; /* what the plan allocated on the device */
} npt__gpu_plan;

/* cudnn_plan.c */
int npt__gpu_plan_make(npt__gpu_ctx *ctx, const npt_graph *g, int batch, int h, int w,
                       npt__gpu_plan **out);
void npt__gpu_plan_destroy(npt__gpu_plan *p);
/* The host part of making a plan: the steps with their fusions and merges, and the tensors'
 * shapes, types and sizes, for p->g, p->batch, p->h, p->w (set by the caller on a zeroed
 * plan); no device call.  Unit tests check it without a GPU. */
int npt__gpu_plan_layout(npt__gpu_plan *p);
/* Enqueues the network (every step) for `slot` on the compute stream, or launches its graph. */
int npt__gpu_forward(npt__gpu_ctx *ctx, npt__gpu_plan *p, int slot);
/* The view of tensor t in `slot`. */
npt_dview npt__gpu_view(const npt__gpu_plan *p, int t, int slot);
/* Enqueues step i of `slot` on the compute stream. */
int npt__gpu_run_step(npt__gpu_ctx *ctx, npt__gpu_plan *p, int i, int slot);
/* Modelled device-memory bytes of one run of step s (*raw: of them, cuDNN's pre-epilogue
 * output written and read back). */
double npt__gpu_step_bytes(const npt__gpu_plan *p, const npt__gpu_step *s, double *raw);
/* Fills every stored tensor with NaN (test hook). */
int npt__gpu_poison(npt__gpu_ctx *ctx, npt__gpu_plan *p);

/* cudnn_fused.c: whether step s may be fused by cuDNN; building its fused execution plan
 * (0 with s->fplan set, or NPT_EUNSUPPORTED when cuDNN cannot, the step unchanged: the caller
 * keeps the separate epilogue); running it on `slot`; releasing it. */
int npt__gpu_fused_eligible(const npt__gpu_plan *p, const npt__gpu_step *s);
int npt__gpu_fused_prepare(npt__gpu_ctx *ctx, npt__gpu_plan *p, npt__gpu_step *s);
int npt__gpu_fused_run(npt__gpu_ctx *ctx, npt__gpu_plan *p, const npt__gpu_step *s, int slot);
void npt__gpu_fused_release(npt__gpu_step *s);
/* Destroys the context's kernel caches (when the context is freed, after its plans). */
void npt__gpu_kcaches_free(npt__gpu_ctx *ctx);
/* 1 when the verbose switch (NPT_CUDNN_FUSE_VERBOSE=1) is on: plans say on stderr what they
 * fused, merged and cached, and how long they took. */
int npt__gpu_verbose(void);

/* cudnn_detect.c */
int npt__gpu_detect(void *vctx, void *vplan, const void *frames, const npt_norm *norm, int n, int h,
                    int w, int64_t first_frame, const struct npt_decode_params *dp,
                    struct npt_dets *dets, int *saturated);
int npt__gpu_detect_alloc(npt__gpu_ctx *ctx, npt__gpu_plan *p);

#endif
