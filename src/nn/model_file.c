/* Model files (docs/model-format.md): an HDF5 file describing the network as nodes over named
 * tensors, with float32 weights.  This file reads it into an npt_graph, checking the type,
 * shape and range of every attribute and dataset as it goes; graph.c then checks that the
 * nodes fit together.  Whatever the file holds, the reader returns a status and never reads
 * past what it allocated: it is fuzzed (tests/unit/test_model_fuzz.c). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "io/h5util.h"
#include "nn/graph.h"
#include "nn/graph_internal.h"

#define MAX_WEIGHTS ((size_t)1 << 28) /* values in one dataset: 1 GiB of float32 */
#define MAX_STRING  (1 << 20)         /* bytes in one string attribute (provenance) */

typedef struct reader {
  const char *path;
  char where[128]; /* "" at the root, "node 0003_cat3: " inside a node */
} reader;

static int rfail(const reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rfail(const reader *r, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return npt_error_set(code, "%s: %s%s", r->path, r->where, msg);
}

/* HDF5 failed to read something that exists: the file is corrupt or truncated. */
static int rfail_h5(const reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail_h5(const reader *r, const char *fmt, ...) {
  char what[256], why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  npt_h5_last_error(why, sizeof why);
  if (why[0])
    return rfail(r, NPT_EFORMAT, "%s (HDF5: %s)", what, why);
  return rfail(r, NPT_EFORMAT, "%s", what);
}

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= NPT_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Opens attribute `name` (scalar or 1-D) and counts its values.  Returns 0 with *a open, 1 when
 * the attribute does not exist, or an error. */
static int attr_open(const reader *r, hid_t obj, const char *name, hid_t *a, hssize_t *n) {
  *a = -1;
  htri_t exists = H5Aexists(obj, name);
  if (exists == 0)
    return 1;
  if (exists < 0 || (*a = H5Aopen(obj, name, H5P_DEFAULT)) < 0)
    return rfail_h5(r, "cannot open attribute '%s'", name);
  hid_t s = H5Aget_space(*a);
  int rank = s < 0 ? -1 : H5Sget_simple_extent_ndims(s);
  *n = rank < 0 ? -1 : H5Sget_simple_extent_npoints(s);
  if (s >= 0)
    H5Sclose(s);
  if (rank < 0 || rank > 1 || *n < 0) {
    H5Aclose(*a);
    *a = -1;
    return rfail(r, NPT_EFORMAT, "attribute '%s' must be a single value or a 1-D list", name);
  }
  return 0;
}

/* One number: an integer in [lo, hi] (is_int) or a finite float. */
static int read_num(const reader *r, hid_t obj, const char *name, int is_int, long long lo,
                    long long hi, double *out) {
  hid_t a;
  hssize_t n;
  int rc = attr_open(r, obj, name, &a, &n);
  if (rc)
    return rc == 1 ? rfail(r, NPT_EFORMAT, "attribute '%s' missing", name) : rc;
  hid_t t = H5Aget_type(a);
  H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
  if (t >= 0)
    H5Tclose(t);
  long long iv = 0;
  double dv = 0;
  if (n != 1 || !(cls == H5T_INTEGER || (!is_int && cls == H5T_FLOAT)))
    rc =
        rfail(r, NPT_EFORMAT, "attribute '%s' must be one %s", name, is_int ? "integer" : "number");
  else if (is_int ? H5Aread(a, H5T_NATIVE_LLONG, &iv) < 0 : H5Aread(a, H5T_NATIVE_DOUBLE, &dv) < 0)
    rc = rfail_h5(r, "cannot read attribute '%s'", name);
  else if (is_int && (iv < lo || iv > hi))
    rc = rfail(r, NPT_EFORMAT, "attribute '%s' is %lld, must be in %lld..%lld", name, iv, lo, hi);
  else if (!is_int && !isfinite(dv))
    rc = rfail(r, NPT_EFORMAT, "attribute '%s' is not a finite number", name);
  H5Aclose(a);
  *out = is_int ? (double)iv : dv;
  return rc;
}

static int read_int(const reader *r, hid_t obj, const char *name, int lo, int hi, int *out) {
  double v;
  NPT_TRY(read_num(r, obj, name, 1, lo, hi, &v));
  *out = (int)v;
  return 0;
}

static int read_f64(const reader *r, hid_t obj, const char *name, double *out) {
  return read_num(r, obj, name, 0, 0, 0, out);
}

/* A list of strings (fixed or variable length; a scalar is a list of one) of 1..max_n values;
 * *out is an array of *n malloc'd strings.  Returns 0, 1 when missing, or an error. */
static int read_strs(const reader *r, hid_t obj, const char *name, int max_n, char ***out,
                     int *n_out) {
  *out = NULL;
  *n_out = 0;
  hid_t a, t = -1, mt = -1;
  hssize_t n;
  int rc = attr_open(r, obj, name, &a, &n);
  if (rc)
    return rc;
  t = H5Aget_type(a);
  htri_t vlen = t < 0 ? -1 : H5Tis_variable_str(t);
  size_t size = t < 0 ? 0 : H5Tget_size(t);
  char **s = NULL;
  char *buf = NULL;
  if (t < 0 || H5Tget_class(t) != H5T_STRING || vlen < 0) {
    rc = rfail(r, NPT_EFORMAT, "attribute '%s' must be a string", name);
  } else if (n < 1 || n > max_n) {
    rc = rfail(r, NPT_EFORMAT, "attribute '%s' has %lld values, must have 1 to %d", name,
               (long long)n, max_n);
  } else if (!vlen && (size == 0 || size > MAX_STRING)) {
    rc = rfail(r, NPT_EFORMAT, "attribute '%s' has strings of %zu bytes", name, size);
  } else if (!(s = calloc((size_t)n, sizeof *s)) ||
             !(buf = calloc((size_t)n, vlen ? sizeof(char *) : size))) {
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  } else if (vlen) {
    /* Same character set as the file's type: HDF5 will not convert ASCII <-> UTF-8. */
    char **p = (char **)buf;
    mt = H5Tcopy(H5T_C_S1);
    if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
        H5Aread(a, mt, p) < 0) {
      rc = rfail_h5(r, "cannot read attribute '%s'", name);
    } else {
      for (hssize_t i = 0; i < n; i++) {
        if (rc == 0 && !(s[i] = strdup(p[i] ? p[i] : "")))
          rc = npt_error_set(NPT_ENOMEM, "out of memory");
        H5free_memory(p[i]);
      }
    }
  } else if (H5Aread(a, t, buf) < 0) {
    rc = rfail_h5(r, "cannot read attribute '%s'", name);
  } else {
    for (hssize_t i = 0; i < n && rc == 0; i++)
      if (!(s[i] = strndup(buf + (size_t)i * size, size)))
        rc = npt_error_set(NPT_ENOMEM, "out of memory");
  }
  free(buf);
  if (mt >= 0)
    H5Tclose(mt);
  if (t >= 0)
    H5Tclose(t);
  H5Aclose(a);
  if (rc < 0) {
    for (hssize_t i = 0; s && i < n; i++)
      free(s[i]);
    free(s);
    return rc;
  }
  *out = s;
  *n_out = (int)n;
  return 0;
}

static void free_strs(char **s, int n) {
  for (int i = 0; s && i < n; i++)
    free(s[i]);
  free(s);
}

/* One string; *out malloc'd.  Returns 0, 1 when missing and !required, or an error. */
static int read_str(const reader *r, hid_t obj, const char *name, int required, char **out) {
  char **s;
  int n;
  *out = NULL;
  int rc = read_strs(r, obj, name, 1, &s, &n);
  if (rc == 1 && required)
    return rfail(r, NPT_EFORMAT, "attribute '%s' missing", name);
  if (rc)
    return rc;
  *out = s[0];
  free(s);
  return 0;
}

/* One tensor name into buf[NPT_NAME_MAX]; "" when missing and !required. */
static int read_name(const reader *r, hid_t obj, const char *name, int required, char *buf) {
  char *s;
  buf[0] = '\0';
  int rc = read_str(r, obj, name, required, &s);
  if (rc)
    return rc < 0 ? rc : 0;
  if (s[0] && !valid_name(s))
    rc = rfail(r, NPT_EFORMAT,
               "attribute '%s': '%.80s' is not a tensor name (1 to %d of "
               "A-Z a-z 0-9 _)",
               name, s, NPT_NAME_MAX - 1);
  else if (!s[0] && required)
    rc = rfail(r, NPT_EFORMAT, "attribute '%s' is empty", name);
  else
    strcpy(buf, s);
  free(s);
  return rc;
}

/* A float32 dataset of `rank` dimensions, each in 1..max_dim[k], into a malloc'd array. */
static int read_f32(const reader *r, hid_t grp, const char *name, int rank, const int *max_dim,
                    int *dims, float **out) {
  *out = NULL;
  htri_t exists = H5Lexists(grp, name, H5P_DEFAULT);
  if (exists <= 0)
    return exists == 0 ? rfail(r, NPT_EFORMAT, "dataset '%s' missing", name)
                       : rfail_h5(r, "cannot look up dataset '%s'", name);
  hid_t d = H5Dopen2(grp, name, H5P_DEFAULT);
  if (d < 0)
    return rfail_h5(r, "cannot open dataset '%s'", name);
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  int rc = 0;
  hsize_t hd[4] = {0};
  size_t count = 1;
  if (t < 0 || s < 0) {
    rc = rfail_h5(r, "cannot read the type and shape of dataset '%s'", name);
  } else if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4) {
    rc = rfail(r, NPT_EFORMAT, "dataset '%s' must be float32 (found %s of %zu bytes)", name,
               H5Tget_class(t) == H5T_FLOAT ? "float" : "a non-float type", H5Tget_size(t));
  } else if (H5Sget_simple_extent_ndims(s) != rank) {
    rc = rfail(r, NPT_EFORMAT, "dataset '%s' must have %d dimensions, not %d", name, rank,
               H5Sget_simple_extent_ndims(s));
  } else {
    H5Sget_simple_extent_dims(s, hd, NULL);
    for (int k = 0; k < rank && rc == 0; k++) {
      if (hd[k] < 1 || hd[k] > (hsize_t)max_dim[k])
        rc = rfail(r, NPT_EFORMAT, "dataset '%s': dimension %d is %llu, must be in 1..%d", name, k,
                   (unsigned long long)hd[k], max_dim[k]);
      dims[k] = (int)hd[k];
      count *= hd[k];
    }
    if (rc == 0 && count > MAX_WEIGHTS)
      rc = rfail(r, NPT_EFORMAT, "dataset '%s' has %zu values (at most %zu)", name, count,
                 MAX_WEIGHTS);
  }
  float *v = NULL;
  if (rc == 0 && !(v = malloc(count * sizeof *v)))
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  if (rc == 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
    rc = rfail_h5(r, "cannot read dataset '%s'", name);
  for (size_t i = 0; rc == 0 && i < count; i++)
    if (!isfinite(v[i]))
      rc = rfail(r, NPT_EFORMAT, "dataset '%s': value %zu is not finite", name, i);
  if (t >= 0)
    H5Tclose(t);
  if (s >= 0)
    H5Sclose(s);
  H5Dclose(d);
  if (rc < 0) {
    free(v);
    return rc;
  }
  *out = v;
  return 0;
}

/* The index of tensor `name` among the first n, or -1. */
static int find_tensor(const npt_graph *g, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(g->tensors[i].name, name) == 0)
      return i;
  return -1;
}

static const char *const OP_NAMES[] = {"conv2d",   "convt2d", "add",    "concat",
                                       "upsample", "maxpool", "avgpool"};
static const char *const ACT_NAMES[] = {"none", "relu", "silu", "sigmoid"};

static int lookup(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}

static int read_act(const reader *r, hid_t grp, npt_node *n) {
  char *s;
  int takes_act = n->op == NPT_OP_CONV2D || n->op == NPT_OP_CONVT2D || n->op == NPT_OP_ADD;
  int rc = read_str(r, grp, "act", takes_act, &s);
  if (rc)
    return rc < 0 ? rc : 0;
  int a = lookup(s, ACT_NAMES, 4);
  if (a < 0)
    rc = rfail(r, NPT_EFORMAT, "unknown act '%.80s' (none, relu, silu, sigmoid)", s);
  else if (!takes_act && a != NPT_ACT_NONE)
    rc = rfail(r, NPT_EFORMAT, "op %s takes no activation (act is '%s')", OP_NAMES[n->op], s);
  n->act = (npt_act)(a < 0 ? 0 : a);
  free(s);
  return rc;
}

static int read_conv(const reader *r, hid_t grp, npt_node *n) {
  const int K = NPT__MAX_KERNEL, C = NPT__MAX_CHANNELS;
  int dims[4];
  NPT_TRY(read_int(r, grp, "stride", 1, K, &n->stride));
  NPT_TRY(read_int(r, grp, "padding", 0, K, &n->pad));
  n->dilation = n->groups = 1;
  if (n->op == NPT_OP_CONV2D) {
    NPT_TRY(read_int(r, grp, "dilation", 1, K, &n->dilation));
    NPT_TRY(read_int(r, grp, "groups", 1, C, &n->groups));
  } else {
    NPT_TRY(read_int(r, grp, "output_padding", 0, K, &n->output_padding));
  }
  const int wmax[4] = {C, C, K, K};
  NPT_TRY(read_f32(r, grp, "weight", 4, wmax, dims, &n->weight));
  if (n->op == NPT_OP_CONV2D) {
    n->c_out = dims[0];
    if ((long long)dims[1] * n->groups > C)
      return rfail(r, NPT_EFORMAT, "weight takes %lld input channels (at most %d)",
                   (long long)dims[1] * n->groups, C);
    n->c_in = dims[1] * n->groups;
  } else {
    n->c_in = dims[0];
    n->c_out = dims[1];
  }
  n->kh = dims[2];
  n->kw = dims[3];
  const int bmax[1] = {C};
  NPT_TRY(read_f32(r, grp, "bias", 1, bmax, dims, &n->bias));
  if (dims[0] != n->c_out)
    return rfail(r, NPT_EFORMAT, "bias has %d values, but the weight has %d output channels",
                 dims[0], n->c_out);
  return 0;
}

/* Node i, whose group is open as `grp`: its op, inputs (among the tensors produced before it)
 * and parameters. */
static int read_node(const reader *r, hid_t grp, npt_graph *g, int i) {
  npt_node *n = &g->nodes[i];
  char *s, **in;
  int n_in;
  NPT_TRY(read_str(r, grp, "op", 1, &s));
  int op = lookup(s, OP_NAMES, 7);
  if (op < 0) {
    int rc = rfail(r, NPT_EFORMAT,
                   "unknown op '%.80s' (conv2d, convt2d, add, concat, upsample, "
                   "maxpool, avgpool)",
                   s);
    free(s);
    return rc;
  }
  free(s);
  n->op = (npt_op)op;
  n->output = i + 1;
  int rc = read_strs(r, grp, "inputs", NPT_MAX_INPUTS, &in, &n_in);
  if (rc)
    return rc == 1 ? rfail(r, NPT_EFORMAT, "attribute 'inputs' missing") : rc;
  for (int k = 0; k < n_in && rc == 0; k++) {
    /* Tensor 0 is the input, tensor j + 1 node j's output: those before node i are 0..i. */
    int t = find_tensor(g, i + 1, in[k]);
    int later = t < 0 ? find_tensor(g, g->n_tensors, in[k]) : -1;
    if (later >= 0)
      rc = rfail(r, NPT_EFORMAT,
                 "input '%s' is produced by node %04d_%s, which does not come "
                 "before this one (nodes must be in topological order)",
                 in[k], later - 1, in[k]);
    else if (t < 0)
      rc = rfail(r, NPT_EFORMAT, "input '%.80s' is not a tensor of this model", in[k]);
    n->inputs[k] = t;
  }
  n->n_inputs = n_in;
  free_strs(in, n_in);
  NPT_TRY(rc);
  NPT_TRY(read_act(r, grp, n));
  switch (n->op) {
  case NPT_OP_CONV2D:
  case NPT_OP_CONVT2D:
    return read_conv(r, grp, n);
  case NPT_OP_UPSAMPLE:
    NPT_TRY(read_int(r, grp, "scale", 1, NPT__MAX_KERNEL, &n->scale));
    NPT_TRY(read_str(r, grp, "mode", 1, &s));
    n->bilinear = strcmp(s, "bilinear") == 0;
    if (!n->bilinear && strcmp(s, "nearest") != 0)
      rc = rfail(r, NPT_EFORMAT, "unknown upsample mode '%.80s' (nearest, bilinear)", s);
    free(s);
    return rc;
  case NPT_OP_MAXPOOL:
  case NPT_OP_AVGPOOL:
    NPT_TRY(read_int(r, grp, "kernel", 1, NPT__MAX_KERNEL, &n->pool_k));
    NPT_TRY(read_int(r, grp, "stride", 1, NPT__MAX_KERNEL, &n->pool_stride));
    return read_int(r, grp, "padding", 0, NPT__MAX_KERNEL, &n->pool_pad);
  case NPT_OP_ADD:
  case NPT_OP_CONCAT:
    break;
  }
  return 0;
}

/* Link names of a group, collected in the library's native order.  (HDF5 1.10 crashes when an
 * ordered listing of a corrupt densely stored group fails: H5Lget_name_by_idx is not used.) */
typedef struct listing {
  char (*names)[NPT_NAME_MAX + 16]; /* longer names are cut, and then fail the name check */
  int cap, n, not_hard;
} listing;

static herr_t list_link(hid_t grp, const char *name, const H5L_info_t *info, void *data) {
  (void)grp;
  listing *l = data;
  if (l->n >= l->cap)
    return 1;
  if (info->type != H5L_TYPE_HARD)
    l->not_hard = 1;
  snprintf(l->names[l->n++], sizeof l->names[0], "%s", name);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(a, b);
}

/* The groups of /nodes, named NNNN_name and numbered 0000, 0001, ... in order.  Tensor 0 is
 * the network input, named `input`; tensor i + 1 is node i's output, named as the node. */
static int read_nodes(reader *r, hid_t file, npt_graph *g, const char *input) {
  htri_t exists = H5Lexists(file, "nodes", H5P_DEFAULT);
  if (exists <= 0)
    return exists == 0 ? rfail(r, NPT_EFORMAT, "group /nodes missing")
                       : rfail_h5(r, "cannot look up /nodes");
  hid_t nodes = H5Gopen2(file, "nodes", H5P_DEFAULT);
  H5G_info_t info;
  if (nodes < 0 || H5Gget_info(nodes, &info) < 0) {
    if (nodes >= 0)
      H5Gclose(nodes);
    return rfail_h5(r, "cannot open group /nodes");
  }
  int rc = 0, n = (int)info.nlinks;
  listing l = {NULL, n, 0, 0};
  if (info.nlinks < 1 || info.nlinks > NPT__MAX_NODES)
    rc = rfail(r, NPT_EFORMAT, "/nodes holds %llu nodes, must hold 1 to %d",
               (unsigned long long)info.nlinks, NPT__MAX_NODES);
  else if (!(g->nodes = calloc((size_t)n, sizeof *g->nodes)) ||
           !(g->tensors = calloc((size_t)n + 1, sizeof *g->tensors)) ||
           !(l.names = calloc((size_t)n, sizeof *l.names)))
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  else if (H5Literate(nodes, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, list_link, &l) != 0 || l.n != n)
    rc = rfail_h5(r, "cannot list /nodes");
  else if (l.not_hard)
    rc = rfail(r, NPT_EFORMAT, "/nodes holds links to other files or soft links");
  if (rc == 0) {
    g->n_nodes = n;
    g->n_tensors = n + 1;
    strcpy(g->tensors[0].name, input);
    qsort(l.names, (size_t)n, sizeof *l.names, cmp_names);
  }
  /* All names first, so that an input produced too late can be told from one never produced. */
  for (int i = 0; i < n && rc == 0; i++) {
    const char *key = l.names[i];
    char want[16];
    snprintf(want, sizeof want, "%04d_", i);
    if (strncmp(key, want, 5) != 0 || !valid_name(key + 5))
      rc = rfail(r, NPT_EFORMAT,
                 "/nodes/%s: node %d must be named %sNAME (NAME: 1 to %d of A-Z a-z 0-9 _)", key, i,
                 want, NPT_NAME_MAX - 1);
    else if (find_tensor(g, i + 1, key + 5) >= 0)
      rc = rfail(r, NPT_EFORMAT,
                 "/nodes/%s: tensor '%s' is defined twice (the input or an earlier node has "
                 "that name)",
                 key, key + 5);
    else {
      strcpy(g->nodes[i].name, key + 5);
      strcpy(g->tensors[i + 1].name, key + 5);
    }
  }
  for (int i = 0; i < n && rc == 0; i++) {
    const char *key = l.names[i];
    snprintf(r->where, sizeof r->where, "node %s: ", key);
    hid_t grp = H5Oopen(nodes, key, H5P_DEFAULT);
    if (grp < 0)
      rc = rfail_h5(r, "cannot open");
    else if (H5Iget_type(grp) != H5I_GROUP)
      rc = rfail(r, NPT_EFORMAT, "not a group");
    else
      rc = read_node(r, grp, g, i);
    if (grp >= 0)
      H5Oclose(grp);
  }
  r->where[0] = '\0';
  free(l.names);
  H5Gclose(nodes);
  return rc;
}

static int read_norm(const reader *r, hid_t file, int bits, npt_norm *norm) {
  char name[32];
  double mean, std;
  snprintf(name, sizeof name, "norm%d_mean", bits);
  NPT_TRY(read_f64(r, file, name, &mean));
  snprintf(name, sizeof name, "norm%d_std", bits);
  NPT_TRY(read_f64(r, file, name, &std));
  if (!(std > 0) || std > 1e6 || fabs(mean) > 1e6)
    return rfail(r, NPT_EFORMAT, "norm%d: mean %g, std %g (std must be > 0)", bits, mean, std);
  *norm = (npt_norm){bits, (float)mean, (float)std, NPT_NORM_FIXED};
  return 0;
}

/* norm_mode: absent or "fixed" (fixed mean and std, version 1), or "frame" (per-frame
 * statistics), which needs version 2: a version-1 reader ignores the attribute and would
 * silently feed the network inputs it was not trained on. */
static int read_norm_mode(const reader *r, hid_t file, npt_graph *g) {
  char *s;
  int rc = read_str(r, file, "norm_mode", 0, &s);
  if (rc)
    return rc < 0 ? rc : 0;
  npt_norm_mode mode = NPT_NORM_FIXED;
  if (strcmp(s, "frame") == 0)
    mode = NPT_NORM_FRAME;
  else if (strcmp(s, "fixed") != 0)
    rc = rfail(r, NPT_EFORMAT, "unknown norm_mode '%.80s' (fixed, frame)", s);
  if (rc == 0 && mode == NPT_NORM_FRAME && g->format_version < 2)
    rc = rfail(r, NPT_EFORMAT,
               "inconsistent file: norm_mode 'frame' needs format_version 2, but it says %d",
               g->format_version);
  free(s);
  g->norm8.mode = g->norm16.mode = mode;
  return rc;
}

static int read_root(const reader *r, hid_t file, npt_graph *g) {
  char *s;
  int rc = read_str(r, file, "format", 0, &s);
  if (rc)
    return rc < 0 ? rc : rfail(r, NPT_EFORMAT, "not an nptrack model file (no 'format')");
  if (strcmp(s, "nptrack-model") != 0)
    rc = rfail(r, NPT_EFORMAT, "not an nptrack model file (format is '%.80s')", s);
  free(s);
  NPT_TRY(rc);
  NPT_TRY(read_int(r, file, "format_version", 1, 1 << 30, &g->format_version));
  if (g->format_version > NPT__MODEL_FORMAT_VERSION)
    return rfail(r, NPT_EUNSUPPORTED,
                 "model format version %d is newer than this nptrack reads (%d): update nptrack",
                 g->format_version, NPT__MODEL_FORMAT_VERSION);
  NPT_TRY(read_int(r, file, "multiple", 1, NPT__MAX_MULTIPLE, &g->multiple));
  NPT_TRY(read_int(r, file, "output_stride", 1, NPT__MAX_MULTIPLE, &g->heads.output_stride));
  NPT_TRY(read_int(r, file, "embed_dim", 0, NPT__MAX_CHANNELS, &g->heads.embed_dim));
  NPT_TRY(read_norm(r, file, 8, &g->norm8));
  NPT_TRY(read_norm(r, file, 16, &g->norm16));
  NPT_TRY(read_norm_mode(r, file, g));
  double thr;
  NPT_TRY(read_f64(r, file, "score_threshold", &thr));
  if (!(thr > 0 && thr <= 1))
    return rfail(r, NPT_EFORMAT, "score_threshold %g must be in (0, 1]", thr);
  g->decode.score_threshold = (float)thr;
  NPT_TRY(read_int(r, file, "top_k", 1, 1 << 20, &g->decode.top_k));
  NPT_TRY(read_int(r, file, "peak_kernel", 1, 63, &g->decode.peak_kernel));
  if (g->decode.peak_kernel % 2 == 0)
    return rfail(r, NPT_EFORMAT, "peak_kernel %d must be odd", g->decode.peak_kernel);
  /* Optional (absent: 0, no suppression), so files written before it keep their meaning. */
  rc = H5Aexists(file, "suppress_ratio");
  if (rc < 0)
    return rfail_h5(r, "cannot look up attribute 'suppress_ratio'");
  if (rc > 0)
    NPT_TRY(read_f64(r, file, "suppress_ratio", &g->decode.suppress_ratio));
  if (!(g->decode.suppress_ratio >= 0 && g->decode.suppress_ratio <= 2))
    return rfail(r, NPT_EFORMAT, "suppress_ratio %g must be in [0, 2]", g->decode.suppress_ratio);

  char **names;
  rc = read_strs(r, file, "class_names", NPT__MAX_CLASSES, &names, &g->n_classes);
  if (rc)
    return rc == 1 ? rfail(r, NPT_EFORMAT, "attribute 'class_names' missing") : rc;
  g->class_names = calloc((size_t)g->n_classes, sizeof *g->class_names);
  if (!g->class_names)
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
  for (int i = 0; i < g->n_classes && rc == 0; i++) {
    size_t len = strlen(names[i]);
    int printable = len > 0 && len < NPT_NAME_MAX;
    for (size_t k = 0; k < len; k++)
      printable &= (unsigned char)names[i][k] >= 32 && names[i][k] != 127;
    if (!printable)
      rc = rfail(r, NPT_EFORMAT, "class name %d must be 1 to %d printable bytes", i,
                 NPT_NAME_MAX - 1);
    else
      strcpy(g->class_names[i], names[i]);
  }
  free_strs(names, g->n_classes);
  NPT_TRY(rc);

  rc = read_str(r, file, "provenance", 0, &g->provenance);
  if (rc == 1 && !(g->provenance = strdup("{}")))
    return npt_error_set(NPT_ENOMEM, "out of memory");
  return rc < 0 ? rc : 0;
}

/* Head attributes name tensors; the nodes must have been read. */
static int read_heads(const reader *r, hid_t file, npt_graph *g) {
  static const char *const attr[4] = {"head_heatmap", "head_size", "head_offset", "head_embed"};
  int *index[4] = {&g->heads.heatmap, &g->heads.size, &g->heads.offset, &g->heads.embed};
  for (int h = 0; h < 4; h++) {
    char name[NPT_NAME_MAX];
    int embed = h == 3;
    NPT_TRY(read_name(r, file, attr[h], !embed || g->heads.embed_dim > 0, name));
    *index[h] = -1;
    if (embed && !name[0])
      continue;
    if (embed && g->heads.embed_dim == 0)
      return rfail(r, NPT_EFORMAT, "head_embed is '%s' but embed_dim is 0", name);
    *index[h] = find_tensor(g, g->n_tensors, name);
    if (*index[h] < 0)
      return rfail(r, NPT_EFORMAT, "%s names tensor '%s', which no node produces", attr[h], name);
  }
  return 0;
}

int npt_graph_load(npt_graph **out, const char *path) {
  if (!out || !path)
    return npt_error_set(NPT_EINVAL, "npt_graph_load: NULL argument");
  *out = NULL;
  npt_h5_quiet();
  if (access(path, R_OK) != 0)
    return npt_error_set(NPT_EIO, "%s: cannot read model file: %s", path, strerror(errno));
  if (H5Fis_hdf5(path) <= 0)
    return npt_error_set(NPT_EFORMAT, "%s: not an HDF5 file (or truncated/corrupt)", path);
  npt_graph *g = calloc(1, sizeof *g);
  NPT_ALLOC_CHECK(g);
  reader r = {path, ""};
  int rc = (g->path = strdup(path)) ? 0 : npt_error_set(NPT_ENOMEM, "out of memory");
  /* Strong close: closing the file closes whatever an error path left open in it. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = -1;
  if (rc == 0 && (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0))
    rc = rfail_h5(&r, "cannot set up file access");
  if (rc == 0 && (file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0)
    rc = rfail_h5(&r, "cannot open (truncated or corrupt?)");
  if (fapl >= 0)
    H5Pclose(fapl);
  if (rc == 0)
    rc = read_root(&r, file, g);
  char input[NPT_NAME_MAX];
  if (rc == 0)
    rc = read_name(&r, file, "input", 1, input);
  if (rc == 0)
    rc = read_nodes(&r, file, g, input);
  g->input = 0;
  if (rc == 0)
    rc = read_heads(&r, file, g);
  if (file >= 0 && H5Fclose(file) < 0 && rc == 0)
    rc = rfail_h5(&r, "cannot close");
  if (rc == 0)
    rc = npt__graph_check(g);
  if (rc < 0) {
    npt_graph_free(g);
    return rc;
  }
  *out = g;
  return 0;
}
