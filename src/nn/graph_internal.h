/* Shared by the model-file reader (model_file.c) and the graph checks (graph.c); not public. */
#ifndef NPT_GRAPH_INTERNAL_H
#define NPT_GRAPH_INTERNAL_H

#include "nn/graph.h"

/* Bounds of the format (docs/model-format.md), checked as values are read. */
enum {
  NPT__MODEL_FORMAT_VERSION = 2, /* 2: norm_mode "frame" */
  NPT__MAX_NODES = 9999,
  NPT__MAX_CLASSES = 256,
  NPT__MAX_CHANNELS = 65536,
  NPT__MAX_KERNEL = 64, /* kernel sides, strides, dilations, upsample scales */
  NPT__MAX_MULTIPLE = 4096,
};

/* Checks that the nodes of a freshly read graph fit together, and fills in each tensor's
 * channels and stride: every node's inputs agree with its parameters (channel counts, groups,
 * strides that keep size = input size / stride), every stride divides `multiple`, and the
 * heads exist with the channels and stride the file's attributes promise.  Expects
 * g->tensors[0] to be the input and g->tensors[i + 1] the output of node i; node weights and
 * shapes as read.  Returns 0 or NPT_EFORMAT with a message naming g->path and the node. */
int npt__graph_check(npt_graph *g);

#endif
