/* Fuzzing the model-file reader, in two ways, for about two seconds with fixed seeds: copies of
 * the tiny model with flipped bytes, overwritten ranges and truncations (the HDF5 layer), and
 * copies with random values written through HDF5 into node and root attributes, input lists and
 * weight shapes (the model's own checks).  npt_graph_load must return 0 or a negative code with
 * a message, never crash, hang or leak (CI runs this under AddressSanitizer).  A load that
 * succeeds must give a graph the engine can trust. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/rng.h"
#include "nn/graph.h"
#include "npt_test.h"

enum { MAX_ITERATIONS = 20000 };

/* HDF5 1.10 leaks a little memory when an object header fails its checksum (H5O_protect's error
 * path); that is not ours to fix, and LeakSanitizer would fail the test for it.  Leaks in
 * nptrack's own allocations are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:libhdf5\n";
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static unsigned char *read_all(const char *path, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s (NPT_SOURCE_DIR unset?)", path);
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)*size);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)*size, f), (size_t)*size);
  fclose(f);
  return buf;
}

/* What a successful load promises: indices in range, inputs before their node. */
static void check_graph(const npt_graph *g) {
  assert_true(g->n_nodes >= 1 && g->n_tensors == g->n_nodes + 1);
  for (int i = 0; i < g->n_nodes; i++) {
    const npt_node *n = &g->nodes[i];
    assert_true(n->n_inputs >= 1 && n->n_inputs <= NPT_MAX_INPUTS);
    for (int k = 0; k < n->n_inputs; k++)
      assert_true(n->inputs[k] >= 0 && n->inputs[k] <= i);
    assert_int_equal(n->output, i + 1);
  }
  assert_true(g->heads.heatmap > 0 && g->heads.heatmap < g->n_tensors);
  assert_true(g->multiple % g->heads.output_stride == 0);
}

/* Loads `path` and counts the outcome; `iteration` is for messages. */
static void try_load(const char *path, int iteration, int *loaded, int *refused) {
  npt_graph *g = NULL;
  int rc = npt_graph_load(&g, path);
  if (rc == 0) {
    check_graph(g);
    assert_true(npt_graph_macs_per_pixel(g) > 0);
    npt_graph_free(g);
    (*loaded)++;
  } else {
    if (rc >= 0)
      fail_msg("iteration %d: npt_graph_load returned %d", iteration, rc);
    assert_null(g);
    NPT_ASSERT_CONTAINS(npt_error_msg(rc), path);
    (*refused)++;
  }
  /* Nothing of the file may stay open: HDF5 would reuse it for the next file of that name. */
  ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open_ids != 0)
    fail_msg("iteration %d (rc %d: %s): %zd HDF5 objects left open", iteration, rc,
             npt_error_msg(rc), open_ids);
}

static void write_all(const char *path, const unsigned char *buf, long len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
}

typedef struct fuzz {
  char model[4096], path[64];
  unsigned char *orig;
  long size;
  double seconds;
  npt_rng rng;
  int loaded, refused, iterations;
  double t0;
} fuzz;

/* NPT_FUZZ_SECONDS and NPT_FUZZ_SEED explore further by hand. */
static void fuzz_init(fuzz *z, double seconds, uint64_t seed) {
  memset(z, 0, sizeof *z);
  const char *src = getenv("NPT_SOURCE_DIR");
  const char *env_s = getenv("NPT_FUZZ_SECONDS"), *env_seed = getenv("NPT_FUZZ_SEED");
  snprintf(z->model, sizeof z->model, "%s/tests/data/tiny_model.h5", src ? src : ".");
  z->orig = read_all(z->model, &z->size);
  snprintf(z->path, sizeof z->path, "/tmp/npt_fuzz_XXXXXX");
  int fd = mkstemp(z->path);
  assert_true(fd >= 0);
  close(fd);
  z->seconds = env_s ? atof(env_s) : seconds;
  npt_rng_seed(&z->rng, env_seed ? strtoull(env_seed, NULL, 10) : seed, 0);
  z->t0 = now();
}

static int fuzz_more(fuzz *z) {
  return (z->iterations < MAX_ITERATIONS || getenv("NPT_FUZZ_SECONDS")) &&
         now() - z->t0 < z->seconds;
}

static void fuzz_done(fuzz *z, const char *what) {
  printf("model fuzz (%s): %d files in %.1f s: %d loaded, %d refused\n", what, z->iterations,
         now() - z->t0, z->loaded, z->refused);
  assert_true(z->loaded > 0 && z->refused > 0);
  remove(z->path);
  free(z->orig);
}

static void test_fuzz_bytes(void **state) {
  (void)state;
  fuzz z;
  fuzz_init(&z, 1.2, 12345);
  unsigned char *buf = malloc((size_t)z.size);
  assert_non_null(buf);
  for (; fuzz_more(&z); z.iterations++) {
    npt_rng *rng = &z.rng;
    memcpy(buf, z.orig, (size_t)z.size);
    long len = z.size;
    int kind = (int)npt_rng_int(rng, 0, 3);
    if (kind == 0 || kind == 3) { /* a few flipped bytes; half of them in the first 4 KiB */
      int flips = (int)npt_rng_int(rng, 1, 8);
      for (int k = 0; k < flips; k++) {
        long at = npt_rng_uniform(rng) < 0.5 ? npt_rng_int(rng, 0, 4095)
                                             : npt_rng_int(rng, 0, z.size - 1);
        buf[at] ^= (unsigned char)npt_rng_int(rng, 1, 255);
      }
    }
    if (kind == 1) { /* a range overwritten with random bytes or zeros */
      long at = npt_rng_int(rng, 0, z.size - 1), n = npt_rng_int(rng, 1, 64);
      int zero = npt_rng_uniform(rng) < 0.5;
      for (long k = at; k < at + n && k < z.size; k++)
        buf[k] = zero ? 0 : (unsigned char)npt_rng_u64(rng);
    }
    if (kind == 2 || kind == 3) /* truncated */
      len = npt_rng_int(rng, 0, z.size - 1);
    write_all(z.path, buf, len);
    try_load(z.path, z.iterations, &z.loaded, &z.refused);
  }
  free(buf);
  fuzz_done(&z, "bytes");
}

/* ---- random values through HDF5 */

static void put_int(hid_t obj, const char *name, int v) {
  if (H5Aexists(obj, name) > 0)
    H5Adelete(obj, name);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
  H5Aclose(a);
  H5Sclose(s);
}

static void put_strs(hid_t obj, const char *name, int n, const char **v) {
  if (H5Aexists(obj, name) > 0)
    H5Adelete(obj, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hsize_t dims[1] = {(hsize_t)n};
  hid_t s = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0 && H5Awrite(a, t, v) >= 0);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

static int pick(npt_rng *rng, int n) {
  return (int)npt_rng_int(rng, 0, n - 1);
}

/* One random edit of the open model file `f`, whose nodes are named as in `g`. */
static void edit_once(npt_rng *rng, hid_t f, const npt_graph *g) {
  static const int values[] = {-1, 0, 1, 2, 3, 4, 5, 7, 8, 16, 32, 63, 64, 65, 4096, 1 << 30};
  static const char *node_ints[] = {"stride",         "padding", "dilation", "groups",
                                    "output_padding", "scale",   "kernel"};
  static const char *root_ints[] = {"multiple", "output_stride", "embed_dim",
                                    "top_k",    "peak_kernel",   "format_version"};
  static const char *words[] = {"conv2d",  "convt2d", "add",      "concat", "upsample",
                                "maxpool", "avgpool", "none",     "relu",   "silu",
                                "sigmoid", "nearest", "bilinear", "",       "x"};
  static const char *node_strs[] = {"op", "act", "mode"};
  char key[NPT_NAME_MAX + 16];
  int i = pick(rng, g->n_nodes);
  snprintf(key, sizeof key, "/nodes/%04d_%s", i, g->nodes[i].name);
  hid_t o = H5Oopen(f, key, H5P_DEFAULT);
  assert_true(o >= 0);
  int value = values[pick(rng, (int)(sizeof values / sizeof *values))];
  switch (pick(rng, 6)) {
  case 0:
    put_int(o, node_ints[pick(rng, 7)], value);
    break;
  case 1: {
    const char *in[4];
    int n = (int)npt_rng_int(rng, 1, 4);
    for (int k = 0; k < n; k++) {
      int t = pick(rng, g->n_tensors + 1);
      in[k] = t == g->n_tensors ? "bogus" : g->tensors[t].name;
    }
    put_strs(o, "inputs", n, in);
    break;
  }
  case 2: {
    const char *w = words[pick(rng, (int)(sizeof words / sizeof *words))];
    put_strs(o, node_strs[pick(rng, 3)], 1, &w);
    break;
  }
  case 3:
    put_int(f, root_ints[pick(rng, 6)], value);
    break;
  case 4: { /* a weight or bias of random shape */
    const char *d = npt_rng_uniform(rng) < 0.7 ? "weight" : "bias";
    if (H5Lexists(o, d, H5P_DEFAULT) > 0)
      H5Ldelete(o, d, H5P_DEFAULT);
    int rank = (int)npt_rng_int(rng, 1, 4);
    hsize_t dims[4];
    for (int k = 0; k < rank; k++)
      dims[k] = (hsize_t)npt_rng_int(rng, 1, 9);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(o, d, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0); /* left unwritten: reads as zeros */
    H5Dclose(ds);
    H5Sclose(s);
    break;
  }
  default: { /* an attribute removed */
    static const char *any[] = {"op", "inputs", "act", "stride", "padding", "groups", "kernel"};
    const char *name = any[pick(rng, 7)];
    if (H5Aexists(o, name) > 0)
      H5Adelete(o, name);
  }
  }
  H5Oclose(o);
}

static void test_fuzz_values(void **state) {
  (void)state;
  fuzz z;
  fuzz_init(&z, 0.8, 54321);
  npt_graph *g;
  assert_int_equal(npt_graph_load(&g, z.model), 0);
  for (; fuzz_more(&z); z.iterations++) {
    write_all(z.path, z.orig, z.size);
    hid_t f = H5Fopen(z.path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    int edits = (int)npt_rng_int(&z.rng, 1, 3);
    for (int k = 0; k < edits; k++)
      edit_once(&z.rng, f, g);
    H5Fclose(f);
    try_load(z.path, z.iterations, &z.loaded, &z.refused);
  }
  npt_graph_free(g);
  fuzz_done(&z, "values");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fuzz_bytes),
                                     cmocka_unit_test(test_fuzz_values)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
