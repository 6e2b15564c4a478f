/* The network as nptrack runs it: a small graph of ops over named tensors, with float32 weights,
 * loaded from a model file (docs/model-format.md) and executed by a backend (backend.h).
 *
 * Tensors are 4-D, batch x channels x height x width; each tensor's spatial size is the input's
 * divided by its `stride` (the graph is checked at load time so that every op's shapes agree for
 * any input whose size is a multiple of `multiple`).  Nodes are stored in an order in which each
 * node's inputs are produced before it (topological). */
#ifndef NPT_GRAPH_H
#define NPT_GRAPH_H

#include <stdint.h>

#include "nn/preprocess.h"

typedef enum {
  NPT_OP_CONV2D,   /* conv (any kernel, stride, padding, dilation, groups), bias, activation */
  NPT_OP_CONVT2D,  /* transposed conv (groups 1), bias, activation */
  NPT_OP_ADD,      /* elementwise sum of 2+ inputs of equal shape, then activation */
  NPT_OP_CONCAT,   /* along channels, inputs of equal spatial size */
  NPT_OP_UPSAMPLE, /* by an integer factor: nearest, or bilinear (align_corners = false) */
  NPT_OP_MAXPOOL,  /* k x k window, stride, padding (padding counts as -inf) */
  NPT_OP_AVGPOOL,  /* k x k window, stride, padding (count_include_pad = true) */
} npt_op;

typedef enum { NPT_ACT_NONE, NPT_ACT_RELU, NPT_ACT_SILU, NPT_ACT_SIGMOID } npt_act;

enum { NPT_MAX_INPUTS = 8, NPT_NAME_MAX = 64 };

typedef struct npt_tensor_info {
  char name[NPT_NAME_MAX];
  int channels;
  int stride; /* spatial downsampling relative to the network input (1, 2, 4, ...) */
} npt_tensor_info;

typedef struct npt_node {
  npt_op op;
  char name[NPT_NAME_MAX];
  int n_inputs;
  int inputs[NPT_MAX_INPUTS]; /* tensor indices */
  int output;                 /* tensor index */
  npt_act act;                /* CONV2D, CONVT2D, ADD */
  /* CONV2D / CONVT2D */
  int c_in, c_out, kh, kw, stride, pad, dilation, groups, output_padding;
  float *weight; /* CONV2D [c_out][c_in/groups][kh][kw]; CONVT2D [c_in][c_out][kh][kw] */
  float *bias;   /* [c_out] (zeros when the layer had none; batch-norm is folded in) */
  /* UPSAMPLE */
  int scale;
  int bilinear;
  /* MAXPOOL / AVGPOOL */
  int pool_k, pool_stride, pool_pad;
} npt_node;

/* What the heads mean and how detections are decoded by default. */
typedef struct npt_heads {
  int heatmap; /* tensor: one channel per class, probabilities (the model applies sigmoid) */
  int size;    /* tensor: 2 channels, box (w, h) in input pixels */
  int offset;  /* tensor: 2 channels, sub-pixel centre offset in output cells */
  int embed;   /* tensor: embed_dim channels, not yet normalised; -1 when the model has none */
  int embed_dim;
  int output_stride; /* stride of all four head tensors */
} npt_heads;

typedef struct npt_decode_defaults {
  float score_threshold; /* keep peaks with heatmap >= this */
  int top_k;             /* at most this many detections per frame */
  int peak_kernel;       /* odd window of the max-pool peak test (3) */
  double suppress_ratio; /* centre-distance suppression, 0..2; 0 (the default): none */
} npt_decode_defaults;

typedef struct npt_graph {
  int format_version;
  int n_tensors;
  npt_tensor_info *tensors;
  int n_nodes;
  npt_node *nodes;
  int input;       /* tensor index of the network input (1 channel, stride 1) */
  int multiple;    /* input height and width must be multiples of this (padded by the engine) */
  npt_norm norm8;  /* input normalisation for 8-bit frames (mode: the file's norm_mode) */
  npt_norm norm16; /* ... and for 16-bit frames (same mode) */
  npt_heads heads;
  int n_classes;
  char (*class_names)[NPT_NAME_MAX];
  npt_decode_defaults decode;
  char *provenance; /* JSON text: data config, seed, code commit, validation scores */
  char *path;       /* the file it came from, for messages */
} npt_graph;

/* Reads a model file.  Returns 0, or NPT_EIO (missing/unreadable) / NPT_EFORMAT (malformed,
 * truncated, inconsistent shapes, unknown op or norm_mode) / NPT_EUNSUPPORTED (newer format
 * version) with a message that names the file and, where it applies, the node.  Never crashes
 * on bad input. */
int npt_graph_load(npt_graph **out, const char *path);
void npt_graph_free(npt_graph *g);

/* Multiply-accumulates of one forward pass per input pixel (FLOPs = 2 x this x pixels). */
double npt_graph_macs_per_pixel(const npt_graph *g);

#endif
