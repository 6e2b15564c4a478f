/* Host launchers of nptrack's CUDA kernels, callable from C.  Each checks its shape
 * preconditions and the launch, and returns 0 or a negative NPT_E* code with a message.  All
 * are asynchronous on `stream` (a cudaStream_t; NULL: the default stream) and may be captured
 * into a CUDA graph. */
#ifndef NPT_KERNELS_H
#define NPT_KERNELS_H

#include <stdint.h>

#include "nn/preprocess.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GPU counterpart of npt_preprocess_cpu, writing fp16 (IEEE half, as uint16_t bits) planes:
 * d_in and d_out are device pointers; `stream` is a cudaStream_t (NULL: the default stream).
 * Asynchronous: results are ready when the stream is. */
int npt_preprocess_cuda(const void *d_in, int n, int h, int w, int hp, int wp, const npt_norm *norm,
                        uint16_t *d_out, void *stream);

/* Element types of device tensors. */
typedef enum { NPT_DT_F16 = 0, NPT_DT_F32 = 1 } npt_dtype;

/* A device tensor seen as NHWC: n x h x w pixels of `c` channels, starting at channel c0 of
 * pixels that are `cs` elements apart (cs = c, c0 = 0 for a whole tensor; a concat writes a
 * channel slice of a wider tensor). */
typedef struct npt_dview {
  void *p;
  npt_dtype dt;
  int n, h, w, c;
  int cs, c0;
} npt_dview;

/* One term of a sum: tensor t (t.c = the output's channels) brought to the output's size by an
 * integer `scale` (1: same size), nearest or bilinear (align_corners = false, PyTorch's). */
typedef struct npt_addend {
  npt_dview t;
  int scale, bilinear;
} npt_addend;

enum { NPT_K_MAX_ADDENDS = 8 };

/* Activations, as npt_act in nn/graph.h. */
enum { NPT_K_ACT_NONE = 0, NPT_K_ACT_RELU = 1, NPT_K_ACT_SILU = 2, NPT_K_ACT_SIGMOID = 3 };

/* out = act(raw + bias + sum of addends), every term optional (raw: a convolution's output
 * before its bias, of out's shape; bias: c floats on the device).  In fp32, rounded once into
 * out's type.  The one elementwise kernel: conv epilogues, add, upsample (one addend, scale > 1)
 * and concat (one addend per input, each into a channel slice of out). */
int npt_k_epilogue(const npt_dview *raw, const float *bias, int n_add, const npt_addend *adds,
                   int act, const npt_dview *out, void *stream);

/* Direct convolution for thin layers (one input channel, a few output channels, small 1x1s),
 * with the whole epilogue fused: out = act(conv + bias + sum of addends), addends as in
 * npt_k_epilogue (an upsampled one too).  groups 1, c_out <= 64, weights [kh][kw][c_in][c_out]
 * fp32 on the device (c_out padded to 8, 16, 32 or 64 times kh kw c_in: at most 12288), bias
 * c_out floats, fp32 accumulation. */
int npt_k_conv_direct(const npt_dview *x, const float *w, const float *bias, int kh, int kw,
                      int stride, int pad, int dilation, int n_add, const npt_addend *adds, int act,
                      const npt_dview *out, void *stream);

/* 1x1 heads fused into the convolution before them: raw (a convolution's output before its
 * bias, fp16, c <= 64 channels) through bias and `act`, then into each head out = act_h(w_h v +
 * b_h) (w_h: [c_out][c] fp32, c_out <= 8); the trunk itself is never stored. */
enum { NPT_K_MAX_HEADS = 4 };
typedef struct npt_k_head {
  const float *w, *bias;
  int act;
  npt_dview out;
} npt_k_head;
int npt_k_epilogue_heads(const npt_dview *raw, const float *bias, int act, int n_heads,
                         const npt_k_head *heads, void *stream);

/* The stride-2 tail in one pass (kernels/tail.cu; the arithmetic in npt_tail.h): from x (fp16,
 * NPT_TAIL_CI channels, 16-byte aligned pixels) through a 3x3 conv to NPT_TAIL_CF channels
 * (act_f), two 3x3 convs concatenated to NPT_TAIL_CT channels (act_t), and the 1x1 heads on
 * those (as npt_k_epilogue_heads: w [c_out][NPT_TAIL_CT], c_out <= 8, outputs of x's n, h, w).
 * version 1: CUDA-core fp32 FMAs, params NPT_TAIL_PARAMS floats on the device (npt_tail_pack);
 * version 2: tensor cores, params NPT_TAIL2_WORDS words (npt_tail2_pack).  max_blocks: the
 * persistent grid (npt_k_tail_prepare's).  npt_k_tail_prepare sets that version's shared-memory
 * limit on `device` and says its size and occupancy (call it once, outside a graph capture);
 * NPT_EUNSUPPORTED when the device has too little shared memory. */
typedef struct npt_k_tail_info {
  int smem_bytes, blocks_per_sm, max_blocks, tile_h, tile_w, threads;
} npt_k_tail_info;
int npt_k_tail_prepare(int device, int version, npt_k_tail_info *info);
int npt_k_tail(int version, const npt_dview *x, const void *params, int act_f, int act_t,
               int n_heads, const npt_k_head *heads, int max_blocks, void *stream);

/* Max or average pooling (count_include_pad), k x k window, as the CPU backend. */
int npt_k_pool(const npt_dview *x, int k, int stride, int pad, int is_max, const npt_dview *out,
               void *stream);

/* x (NHWC, any type) to plain [n][c][h*scale][w*scale] fp32, nearest-upsampled by `scale`. */
int npt_k_to_nchw(const npt_dview *x, int scale, float *out, void *stream);
/* Plain [n][c][h][w] fp32 into out (NHWC, out's type). */
int npt_k_from_nchw(const float *in, const npt_dview *out, void *stream);

/* Peak decoding on the device (docs/decode.md, rules 1 and 2; the host applies the rest).
 * One candidate per (frame, class channel, cell) whose value is >= thr and no cell of its
 * (2r+1)^2 window (clipped to the hv x wv cells that map onto the frame) is greater.  A
 * candidate with an equal neighbour belongs to a plateau: it is not listed, its frame is
 * flagged (flags[f] |= 1) and the host decodes that frame from the heads instead.  Listed
 * candidates go to peaks[f * cap + k] with the offset and size heads' values at their cell;
 * counts[f] counts them all (those past cap are lost: the host sees count > cap).
 * counts and flags must be zero before the launch. */
typedef struct npt_gpu_peak {
  float score;
  int cls, idx; /* class channel (0-based), cell i * w_out + j */
  float ox, oy, sw, sh;
  int pad_;
} npt_gpu_peak;
int npt_k_decode_peaks(const npt_dview *heat, const npt_dview *size, const npt_dview *offset,
                       int hv, int wv, int r, float thr, int cap, npt_gpu_peak *peaks, int *counts,
                       int *flags, void *stream);

/* Packs the listed peaks of n frames into one array (frame order; within a frame, in the
 * order listed) and gathers each one's embedding L2-normalised, as the CPU decoder does (in
 * double, in channel order, to the same float).  emb: NHWC, dim channels, at the heads' cells
 * divided by emb_scale (1, or 2 for an embedding kept at half the heads' resolution whose
 * nearest upsampling was skipped); NULL for none.  offsets[f] (n + 1 of them) says where frame
 * f starts in packed; packed_emb holds dim floats per packed peak. */
int npt_k_decode_pack(const npt_gpu_peak *peaks, const int *counts, int n, int cap, int w_out,
                      const npt_dview *emb, int emb_scale, npt_gpu_peak *packed, float *packed_emb,
                      int *offsets, void *stream);

#ifdef __cplusplus
}
#endif

#endif
