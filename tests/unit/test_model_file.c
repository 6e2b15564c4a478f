/* Model files (docs/model-format.md): the tiny model of tests/data loads with the counts,
 * names, shapes and weights its generator (train/make_tiny_model.py) recorded, and every kind
 * of broken file is refused with a message naming the file and the node.  Broken files are
 * copies of the tiny model edited here through HDF5, so the test needs no Python. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "io/h5util.h"
#include "nn/graph.h"
#include "npt_test.h"

static char scratch[64];
static char tiny[4096], golden[4096], probe[4096];

static int setup(void **state) {
  (void)state;
  const char *src = getenv("NPT_SOURCE_DIR");
  snprintf(tiny, sizeof tiny, "%s/tests/data/tiny_model.h5", src ? src : ".");
  snprintf(golden, sizeof golden, "%s/tests/data/tiny_golden.h5", src ? src : ".");
  snprintf(probe, sizeof probe, "%s/tests/data/probe_frame_model.h5", src ? src : ".");
  snprintf(scratch, sizeof scratch, "/tmp/npt_model_XXXXXX");
  npt_h5_quiet();
  return mkdtemp(scratch) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  (void)state;
  return nftw(scratch, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Copies the first `limit` bytes of `src` (all when limit < 0) to scratch/name; returns the
 * path (static buffer). */
static const char *copy_model(const char *name, long limit) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", scratch, name);
  FILE *in = fopen(tiny, "rb"), *out = fopen(path, "wb");
  if (!in)
    fail_msg("cannot open %s (NPT_SOURCE_DIR unset?)", tiny);
  assert_non_null(out);
  char buf[4096];
  size_t n;
  long done = 0;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0 && (limit < 0 || done < limit)) {
    if (limit >= 0 && done + (long)n > limit)
      n = (size_t)(limit - done);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    done += (long)n;
  }
  fclose(in);
  fclose(out);
  return path;
}

/* ---- edits through HDF5 (each opens the copy, changes one thing, closes it) */

static hid_t open_rw(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  return f;
}

static void set_str(const char *path, const char *obj, const char *name, const char *value) {
  hid_t f = open_rw(path), o = H5Oopen(f, obj, H5P_DEFAULT);
  assert_true(o >= 0);
  if (H5Aexists(o, name) > 0)
    assert_true(H5Adelete(o, name) >= 0);
  if (value) /* variable length: the reader takes both kinds */
    assert_int_equal(npt_h5_write_str_attr(o, name, value), 0);
  H5Oclose(o);
  H5Fclose(f);
}

static void set_strs(const char *path, const char *obj, const char *name, int n,
                     const char **values) {
  hid_t f = open_rw(path), o = H5Oopen(f, obj, H5P_DEFAULT);
  assert_true(o >= 0);
  if (H5Aexists(o, name) > 0)
    assert_true(H5Adelete(o, name) >= 0);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hsize_t dims[1] = {(hsize_t)n};
  hid_t s = H5Screate_simple(1, dims, NULL);
  hid_t a = H5Acreate2(o, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0);
  assert_true(H5Awrite(a, t, values) >= 0);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
  H5Oclose(o);
  H5Fclose(f);
}

static void set_int(const char *path, const char *obj, const char *name, int value) {
  hid_t f = open_rw(path), o = H5Oopen(f, obj, H5P_DEFAULT);
  assert_true(o >= 0);
  if (H5Aexists(o, name) > 0)
    assert_true(H5Adelete(o, name) >= 0);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(o, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &value) >= 0);
  H5Aclose(a);
  H5Sclose(s);
  H5Oclose(o);
  H5Fclose(f);
}

/* Replaces (or, with rank 0, deletes) a dataset; new ones hold `fill` of type `type`. */
static void set_dataset(const char *path, const char *dset, hid_t type, int rank,
                        const hsize_t *dims, double fill) {
  hid_t f = open_rw(path);
  if (H5Lexists(f, dset, H5P_DEFAULT) > 0)
    assert_true(H5Ldelete(f, dset, H5P_DEFAULT) >= 0);
  if (rank > 0) {
    hsize_t n = 1;
    for (int k = 0; k < rank; k++)
      n *= dims[k];
    double *v = malloc(sizeof *v * n);
    for (hsize_t i = 0; i < n; i++)
      v[i] = fill;
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, dset, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    free(v);
  }
  H5Fclose(f);
}

static void rename_link(const char *path, const char *from, const char *to) {
  hid_t f = open_rw(path);
  assert_true(H5Lmove(f, from, f, to, H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(f);
}

/* Loading `path` fails with `code` and a message that names the file and contains `want`. */
static void expect_error(const char *path, int code, const char *want) {
  npt_graph *g = (npt_graph *)&g;
  npt_error_clear();
  int rc = npt_graph_load(&g, path);
  if (rc != code)
    fail_msg("%s: expected %d (%s), got %d: %s", path, code, want, rc, npt_error_msg(rc));
  assert_null(g);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), path);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), want);
}

/* ---- the tiny model */

static double golden_attr(const char *name) {
  hid_t f = H5Fopen(golden, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  double v = NAN;
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  assert_true(a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
  H5Aclose(a);
  H5Fclose(f);
  return v;
}

/* The dims of the golden output of `tensor` for input 1 (1 x 1 x 64 x 96). */
static void golden_dims(const char *tensor, hsize_t dims[4]) {
  char name[128];
  snprintf(name, sizeof name, "/outputs/1/%s", tensor);
  hid_t f = H5Fopen(golden, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0)
    fail_msg("%s: no dataset %s", golden, name);
  hid_t s = H5Dget_space(d);
  assert_int_equal(H5Sget_simple_extent_ndims(s), 4);
  H5Sget_simple_extent_dims(s, dims, NULL);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
}

static const npt_node *node(const npt_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0)
      return &g->nodes[i];
  fail_msg("no node %s", name);
  return NULL;
}

static void test_tiny_model(void **state) {
  (void)state;
  npt_graph *g = NULL;
  int rc = npt_graph_load(&g, tiny);
  if (rc)
    fail_msg("%s", npt_error_msg(rc));
  assert_int_equal(g->format_version, 1);
  assert_int_equal(g->n_nodes, 28);
  assert_int_equal(g->n_tensors, 29);
  assert_string_equal(g->tensors[g->input].name, "input");
  assert_int_equal(g->multiple, 16);
  assert_int_equal(g->n_classes, 2);
  assert_string_equal(g->class_names[0], "metal");
  assert_string_equal(g->class_names[1], "oxide_shell");
  assert_int_equal(g->heads.output_stride, 4);
  assert_int_equal(g->heads.embed_dim, 8);
  assert_string_equal(g->tensors[g->heads.heatmap].name, "heatmap");
  assert_string_equal(g->tensors[g->heads.size].name, "size");
  assert_string_equal(g->tensors[g->heads.offset].name, "offset");
  assert_string_equal(g->tensors[g->heads.embed].name, "embed");
  assert_int_equal(g->norm8.bit_depth, 8);
  assert_int_equal(g->norm8.mode, NPT_NORM_FIXED); /* no norm_mode attribute: fixed */
  assert_int_equal(g->norm16.mode, NPT_NORM_FIXED);
  NPT_ASSERT_NEAR(g->norm8.mean, 0.45, 1e-7);
  NPT_ASSERT_NEAR(g->norm8.std, 0.2, 1e-7);
  assert_int_equal(g->norm16.bit_depth, 16);
  NPT_ASSERT_NEAR(g->norm16.mean, 0.3, 1e-7);
  NPT_ASSERT_NEAR(g->norm16.std, 0.15, 1e-7);
  NPT_ASSERT_NEAR(g->decode.score_threshold, 0.4, 1e-7);
  assert_int_equal(g->decode.top_k, 100);
  assert_int_equal(g->decode.peak_kernel, 3);
  NPT_ASSERT_NEAR(g->decode.suppress_ratio, 0, 0); /* absent: no suppression */
  NPT_ASSERT_CONTAINS(g->provenance, "\"seed\": 20240611");
  assert_string_equal(g->path, tiny);

  /* Every tensor's channels and stride, against the shapes PyTorch produced. */
  for (int t = 0; t < g->n_tensors; t++) {
    if (t == g->input) {
      assert_int_equal(g->tensors[t].channels, 1);
      assert_int_equal(g->tensors[t].stride, 1);
      continue;
    }
    hsize_t d[4];
    golden_dims(g->tensors[t].name, d);
    int s = g->tensors[t].stride;
    if (d[1] != (hsize_t)g->tensors[t].channels || d[2] * s != 64 || d[3] * s != 96)
      fail_msg("%s: %d channels, stride %d; PyTorch made [%llu, %llu, %llu, %llu] of 64 x 96",
               g->tensors[t].name, g->tensors[t].channels, s, (unsigned long long)d[0],
               (unsigned long long)d[1], (unsigned long long)d[2], (unsigned long long)d[3]);
  }
  /* Node i produces tensor i + 1, which has its name; inputs come before. */
  for (int i = 0; i < g->n_nodes; i++) {
    assert_int_equal(g->nodes[i].output, i + 1);
    assert_string_equal(g->tensors[i + 1].name, g->nodes[i].name);
    for (int k = 0; k < g->nodes[i].n_inputs; k++)
      assert_true(g->nodes[i].inputs[k] <= i);
  }

  const npt_node *n = node(g, "stem");
  assert_int_equal(n->op, NPT_OP_CONV2D);
  assert_int_equal(n->act, NPT_ACT_SILU);
  assert_int_equal(n->c_in, 1);
  assert_int_equal(n->c_out, 8);
  assert_int_equal(n->kh, 3);
  assert_int_equal(n->stride, 2);
  assert_int_equal(n->pad, 1);
  n = node(g, "dw");
  assert_int_equal(n->groups, 8);
  assert_int_equal(n->c_in, 8);
  assert_int_equal(n->act, NPT_ACT_RELU);
  n = node(g, "dil");
  assert_int_equal(n->dilation, 2);
  assert_int_equal(n->pad, 2);
  assert_int_equal(n->groups, 2);
  n = node(g, "deep");
  assert_int_equal(n->kh, 4);
  assert_int_equal(n->kw, 3);
  n = node(g, "up16b");
  assert_int_equal(n->op, NPT_OP_CONVT2D);
  assert_int_equal(n->c_in, 8);
  assert_int_equal(n->c_out, 4);
  assert_int_equal(n->output_padding, 1);
  assert_int_equal(n->act, NPT_ACT_NONE);
  assert_int_equal(node(g, "up16")->act, NPT_ACT_RELU);
  assert_int_equal(node(g, "heatmap")->act, NPT_ACT_SIGMOID);
  n = node(g, "up8");
  assert_int_equal(n->op, NPT_OP_UPSAMPLE);
  assert_int_equal(n->scale, 2);
  assert_int_equal(n->bilinear, 1);
  n = node(g, "upn");
  assert_int_equal(n->scale, 4);
  assert_int_equal(n->bilinear, 0);
  n = node(g, "ap");
  assert_int_equal(n->op, NPT_OP_AVGPOOL);
  assert_int_equal(n->pool_k, 3);
  assert_int_equal(n->pool_stride, 2);
  assert_int_equal(n->pool_pad, 1);
  assert_int_equal(node(g, "mp2")->op, NPT_OP_MAXPOOL);
  n = node(g, "cat3");
  assert_int_equal(n->op, NPT_OP_CONCAT);
  assert_int_equal(n->n_inputs, 3);
  n = node(g, "neck");
  assert_int_equal(n->op, NPT_OP_ADD);
  assert_int_equal(n->n_inputs, 3);
  assert_int_equal(n->act, NPT_ACT_SILU);
  assert_string_equal(g->tensors[n->inputs[2]].name, "lat");

  /* Weights in stored order, as make_tiny_model.py's weight_checksum() sums them. */
  double sum = 0;
  long count = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    n = &g->nodes[i];
    if (n->op != NPT_OP_CONV2D && n->op != NPT_OP_CONVT2D)
      continue;
    long nw = (long)n->c_out * (n->c_in / n->groups) * n->kh * n->kw;
    for (long j = 0; j < nw; j++)
      sum += (i + 1) * (double)n->weight[j] * (double)(j % 7 + 1);
    for (long j = 0; j < n->c_out; j++)
      sum += (i + 1) * (double)n->bias[j] * (double)(j % 7 + 1);
    count += nw + n->c_out;
  }
  assert_int_equal(count, (long)golden_attr("n_weight_values"));
  NPT_ASSERT_NEAR(sum, golden_attr("weight_checksum"), 1e-9 * fabs(sum));
  NPT_ASSERT_NEAR(npt_graph_macs_per_pixel(g), golden_attr("macs_per_pixel"), 1e-9);
  npt_graph_free(g);
  npt_graph_free(NULL);
}

/* ---- files that are not model files */

static void test_not_a_model(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/no_such_model.h5", scratch);
  expect_error(path, NPT_EIO, "cannot read model file");
  snprintf(path, sizeof path, "%s/text.h5", scratch);
  FILE *f = fopen(path, "w");
  fputs("not HDF5\n", f);
  fclose(f);
  expect_error(path, NPT_EFORMAT, "not an HDF5 file");
  expect_error(golden, NPT_EFORMAT, "not an nptrack model file (no 'format')");
  const char *p = copy_model("format.h5", -1);
  set_str(p, "/", "format", "nptrack-archive");
  expect_error(p, NPT_EFORMAT, "format is 'nptrack-archive'");
  npt_graph *g;
  assert_int_equal(npt_graph_load(&g, NULL), NPT_EINVAL);
}

static void test_truncated(void **state) {
  (void)state;
  FILE *f = fopen(tiny, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  const long cuts[] = {0, 7, 100, 512, 2048, size / 3, size / 2, size - 4096, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    const char *p = copy_model("cut.h5", cuts[i]);
    npt_graph *g = (npt_graph *)&g;
    int rc = npt_graph_load(&g, p);
    if (rc != NPT_EFORMAT)
      fail_msg("cut at %ld of %ld bytes: got %d: %s", cuts[i], size, rc, npt_error_msg(rc));
    assert_null(g);
    NPT_ASSERT_CONTAINS(npt_error_msg(rc), p);
  }
}

static void test_version(void **state) {
  (void)state;
  const char *p = copy_model("v2.h5", -1);
  set_int(p, "/", "format_version", 3);
  expect_error(p, NPT_EUNSUPPORTED, "model format version 3 is newer than this nptrack reads (2)");
  set_int(p, "/", "format_version", 0);
  expect_error(p, NPT_EFORMAT, "attribute 'format_version' is 0, must be in 1..");
  set_str(p, "/", "format_version", "1");
  expect_error(p, NPT_EFORMAT, "attribute 'format_version' must be one integer");
}

static void test_root_attributes(void **state) {
  (void)state;
  const char *p = copy_model("root.h5", -1);
  set_str(p, "/", "multiple", NULL);
  expect_error(p, NPT_EFORMAT, "attribute 'multiple' missing");
  p = copy_model("root.h5", -1);
  set_str(p, "/", "norm8_std", NULL);
  set_int(p, "/", "norm8_std", 0);
  expect_error(p, NPT_EFORMAT, "norm8: mean 0.45, std 0");
  p = copy_model("root.h5", -1);
  set_int(p, "/", "peak_kernel", 4);
  expect_error(p, NPT_EFORMAT, "peak_kernel 4 must be odd");
  p = copy_model("root.h5", -1);
  set_int(p, "/", "suppress_ratio", 3);
  expect_error(p, NPT_EFORMAT, "suppress_ratio 3 must be in [0, 2]");
  set_str(p, "/", "suppress_ratio", "0.5");
  expect_error(p, NPT_EFORMAT, "attribute 'suppress_ratio' must be one number");
  set_int(p, "/", "suppress_ratio", 1);
  npt_graph *g;
  assert_int_equal(npt_graph_load(&g, p), 0);
  NPT_ASSERT_NEAR(g->decode.suppress_ratio, 1.0, 0);
  npt_graph_free(g);
  p = copy_model("root.h5", -1);
  const char *three[] = {"metal", "oxide", "void"};
  set_strs(p, "/", "class_names", 3, three);
  expect_error(p, NPT_EFORMAT, "head_heatmap 'heatmap' has 2 channels, 3 expected");
  p = copy_model("root.h5", -1);
  set_int(p, "/", "embed_dim", 0);
  expect_error(p, NPT_EFORMAT, "head_embed is 'embed' but embed_dim is 0");
  p = copy_model("root.h5", -1);
  set_str(p, "/", "input", "stem");
  expect_error(p, NPT_EFORMAT, "/nodes/0000_stem: tensor 'stem' is defined twice");
}

static void test_heads(void **state) {
  (void)state;
  const char *p = copy_model("heads.h5", -1);
  set_str(p, "/", "head_size", "nope");
  expect_error(p, NPT_EFORMAT, "head_size names tensor 'nope', which no node produces");
  p = copy_model("heads.h5", -1);
  set_str(p, "/", "head_offset", NULL);
  expect_error(p, NPT_EFORMAT, "attribute 'head_offset' missing");
  p = copy_model("heads.h5", -1);
  set_str(p, "/", "head_offset", "hm1");
  expect_error(p, NPT_EFORMAT, "head_offset 'hm1' has 8 channels, 2 expected");
  p = copy_model("heads.h5", -1);
  set_str(p, "/nodes/0023_heatmap", "act", "relu");
  expect_error(p, NPT_EFORMAT, "head_heatmap 'heatmap' must hold probabilities");
  p = copy_model("heads.h5", -1);
  set_int(p, "/", "output_stride", 8);
  expect_error(p, NPT_EFORMAT, "head_heatmap 'heatmap' has stride 4, but output_stride is 8");
  p = copy_model("heads.h5", -1);
  set_str(p, "/", "head_embed", NULL); /* a model without embedding says embed_dim 0 */
  expect_error(p, NPT_EFORMAT, "attribute 'head_embed' missing");
  set_int(p, "/", "embed_dim", 0);
  npt_graph *g;
  assert_int_equal(npt_graph_load(&g, p), 0);
  assert_int_equal(g->heads.embed, -1);
  npt_graph_free(g);
}

/* norm_mode (version 2): the exporter's frame-mode file loads as frame mode; "fixed" and a
 * version-2 file without the attribute are the fixed mode; an unknown mode, or "frame" in a
 * version-1 file (which an older reader would silently run with fixed constants), is refused. */
static void test_norm_mode(void **state) {
  (void)state;
  npt_graph *g = NULL;
  int rc = npt_graph_load(&g, probe);
  if (rc)
    fail_msg("%s", npt_error_msg(rc));
  assert_int_equal(g->format_version, 2);
  assert_int_equal(g->norm8.mode, NPT_NORM_FRAME);
  assert_int_equal(g->norm16.mode, NPT_NORM_FRAME);
  NPT_ASSERT_NEAR(g->norm16.std, 0.15, 1e-7); /* stored (and required), though not used */
  npt_graph_free(g);

  const char *p = copy_model("mode.h5", -1);
  set_str(p, "/", "norm_mode", "fixed");
  assert_int_equal(npt_graph_load(&g, p), 0);
  assert_int_equal(g->norm8.mode, NPT_NORM_FIXED);
  npt_graph_free(g);
  set_str(p, "/", "norm_mode", "frame");
  expect_error(p, NPT_EFORMAT,
               "inconsistent file: norm_mode 'frame' needs format_version 2, but it says 1");
  set_int(p, "/", "format_version", 2);
  assert_int_equal(npt_graph_load(&g, p), 0);
  assert_int_equal(g->norm8.mode, NPT_NORM_FRAME);
  assert_int_equal(g->norm16.mode, NPT_NORM_FRAME);
  npt_graph_free(g);
  set_str(p, "/", "norm_mode", NULL);
  assert_int_equal(npt_graph_load(&g, p), 0);
  assert_int_equal(g->norm8.mode, NPT_NORM_FIXED);
  npt_graph_free(g);
  set_str(p, "/", "norm_mode", "per_frame");
  expect_error(p, NPT_EFORMAT, "unknown norm_mode 'per_frame' (fixed, frame)");
  set_int(p, "/", "norm_mode", 1);
  expect_error(p, NPT_EFORMAT, "attribute 'norm_mode' must be a string");
}

/* ---- nodes */

static void test_weights(void **state) {
  (void)state;
  const char *p = copy_model("w.h5", -1);
  set_dataset(p, "/nodes/0005_pw/weight", 0, 0, NULL, 0);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: dataset 'weight' missing");
  hsize_t d4[4] = {8, 8, 3, 3}, d3[3] = {8, 4, 9}, d1[1] = {7}, dw[4] = {8, 24, 1, 1};
  set_dataset(p, "/nodes/0005_pw/weight", H5T_IEEE_F32LE, 3, d3, 0.1);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: dataset 'weight' must have 4 dimensions, not 3");
  set_dataset(p, "/nodes/0005_pw/weight", H5T_IEEE_F64LE, 4, dw, 0.1);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: dataset 'weight' must be float32 (found float of 8");
  set_dataset(p, "/nodes/0005_pw/weight", H5T_NATIVE_INT, 4, dw, 1);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: dataset 'weight' must be float32");
  set_dataset(p, "/nodes/0005_pw/weight", H5T_IEEE_F32LE, 4, dw, NAN);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: dataset 'weight': value 0 is not finite");
  set_dataset(p, "/nodes/0005_pw/weight", H5T_IEEE_F32LE, 4, dw, 0.1);
  npt_graph *g;
  assert_int_equal(npt_graph_load(&g, p), 0); /* right shape again */
  npt_graph_free(g);
  set_dataset(p, "/nodes/0005_pw/bias", H5T_IEEE_F32LE, 1, d1, 0.1);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: bias has 7 values, but the weight has 8 output");
  p = copy_model("w.h5", -1);
  set_dataset(p, "/nodes/0006_dil/weight", H5T_IEEE_F32LE, 4, d4, 0.1);
  expect_error(p, NPT_EFORMAT,
               "node 0006_dil: weight [8, 8, 3, 3] with groups 2 takes 16 input channels, but "
               "its input 'pw' has 8");
  p = copy_model("w.h5", -1);
  set_int(p, "/nodes/0003_dw", "groups", 3);
  expect_error(p, NPT_EFORMAT, "node 0003_dw: groups 3 does not divide 3 input and 8 output");
}

static void test_ops(void **state) {
  (void)state;
  const char *p = copy_model("ops.h5", -1);
  set_str(p, "/nodes/0004_cat3", "op", "conv3d");
  expect_error(p, NPT_EFORMAT, "node 0004_cat3: unknown op 'conv3d'");
  p = copy_model("ops.h5", -1);
  set_str(p, "/nodes/0004_cat3", "act", "relu");
  expect_error(p, NPT_EFORMAT, "node 0004_cat3: op concat takes no activation");
  p = copy_model("ops.h5", -1);
  set_str(p, "/nodes/0007_res", "act", "gelu");
  expect_error(p, NPT_EFORMAT, "node 0007_res: unknown act 'gelu'");
  p = copy_model("ops.h5", -1);
  set_str(p, "/nodes/0017_up8", "mode", "bicubic");
  expect_error(p, NPT_EFORMAT, "node 0017_up8: unknown upsample mode 'bicubic'");
  p = copy_model("ops.h5", -1);
  set_int(p, "/nodes/0017_up8", "scale", 0);
  expect_error(p, NPT_EFORMAT, "node 0017_up8: attribute 'scale' is 0, must be in 1..64");
  p = copy_model("ops.h5", -1);
  set_str(p, "/nodes/0013_up16", "output_padding", NULL);
  expect_error(p, NPT_EFORMAT, "node 0013_up16: attribute 'output_padding' missing");
  p = copy_model("ops.h5", -1);
  rename_link(p, "/nodes/0003_dw", "/nodes/0003-dw");
  expect_error(p, NPT_EFORMAT, "/nodes/0003-dw: node 3 must be named 0003_NAME");
  p = copy_model("ops.h5", -1);
  rename_link(p, "/nodes/0003_dw", "/nodes/0030_dw");
  expect_error(p, NPT_EFORMAT, "node 3 must be named 0003_NAME");
}

static void test_wiring(void **state) {
  (void)state;
  const char *p = copy_model("wire.h5", -1);
  const char *later[] = {"res"}, *nowhere[] = {"nowhere"}, *wide[] = {"cat3"};
  set_strs(p, "/nodes/0005_pw", "inputs", 1, later);
  expect_error(p, NPT_EFORMAT,
               "node 0005_pw: input 'res' is produced by node 0007_res, which does not come "
               "before this one (nodes must be in topological order)");
  set_strs(p, "/nodes/0005_pw", "inputs", 1, nowhere);
  expect_error(p, NPT_EFORMAT, "node 0005_pw: input 'nowhere' is not a tensor of this model");
  p = copy_model("wire.h5", -1);
  set_strs(p, "/nodes/0019_lat", "inputs", 1, wide);
  expect_error(p, NPT_EFORMAT,
               "node 0019_lat: weight [8, 8, 1, 1] with groups 1 takes 8 input channels, but its "
               "input 'cat3' has 24");
  p = copy_model("wire.h5", -1);
  const char *mixed[] = {"up8", "upn", "add8"}, *one[] = {"up8"}, *cat[] = {"up8", "add8"};
  set_strs(p, "/nodes/0020_neck", "inputs", 3, mixed);
  expect_error(p, NPT_EFORMAT,
               "node 0020_neck: input 'add8' has stride 8, but input 'up8' has stride 4");
  set_strs(p, "/nodes/0020_neck", "inputs", 1, one);
  expect_error(p, NPT_EFORMAT, "node 0020_neck: add needs 2 or more inputs, not 1");
  set_strs(p, "/nodes/0004_cat3", "inputs", 2, cat);
  expect_error(p, NPT_EFORMAT, "node 0004_cat3: input 'up8' is produced by node 0017_up8");
  p = copy_model("wire.h5", -1);
  const char *cat2[] = {"mp", "mp2"};
  set_strs(p, "/nodes/0015_fuse8", "inputs", 2, cat2);
  expect_error(p, NPT_EFORMAT,
               "node 0015_fuse8: input 'mp2' has stride 8, but input 'mp' has stride 4");
}

static void test_strides(void **state) {
  (void)state;
  const char *p = copy_model("stride.h5", -1);
  set_int(p, "/nodes/0008_down", "stride", 3);
  expect_error(p, NPT_EFORMAT, "node 0008_down: output stride 12 does not divide multiple 16");
  p = copy_model("stride.h5", -1);
  set_int(p, "/nodes/0005_pw", "padding", 1);
  expect_error(p, NPT_EFORMAT,
               "node 0005_pw: kernel 1x1, stride 1, padding 1, dilation 1 does not give output "
               "size = input size / 1");
  p = copy_model("stride.h5", -1);
  set_int(p, "/nodes/0006_dil", "dilation", 1);
  expect_error(p, NPT_EFORMAT, "node 0006_dil: kernel 3x3, stride 1, padding 2, dilation 1");
  p = copy_model("stride.h5", -1);
  set_int(p, "/", "multiple", 8);
  expect_error(p, NPT_EFORMAT, "node 0011_deep: output stride 16 does not divide multiple 8");
  p = copy_model("stride.h5", -1);
  set_int(p, "/nodes/0013_up16", "padding", 2);
  expect_error(p, NPT_EFORMAT, "node 0013_up16: kernel 4x4, stride 2, padding 2, output_padding 0");
  p = copy_model("stride.h5", -1);
  set_int(p, "/nodes/0018_upn", "scale", 3);
  expect_error(p, NPT_EFORMAT,
               "node 0018_upn: scale 3 does not divide the stride 16 of its "
               "input 'deep2'");
  p = copy_model("stride.h5", -1);
  set_int(p, "/nodes/0001_mp", "padding", 2);
  expect_error(p, NPT_EFORMAT, "node 0001_mp: kernel 3, stride 2, padding 2 does not give");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_model),
      cmocka_unit_test(test_not_a_model),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_root_attributes),
      cmocka_unit_test(test_norm_mode),
      cmocka_unit_test(test_heads),
      cmocka_unit_test(test_weights),
      cmocka_unit_test(test_ops),
      cmocka_unit_test(test_wiring),
      cmocka_unit_test(test_strides),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
