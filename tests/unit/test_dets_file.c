/* The detections file: rows and embeddings read back as written (across several write buffers),
 * the CSR frame index, the temporary name and the rename, and the reader's checks of damaged or
 * incomplete files. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "io/dets_file.h"
#include "npt_test.h"

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s/test_dets_file.%ld",
           getenv("NPT_BINARY_DIR") ? getenv("NPT_BINARY_DIR") : "/tmp", (long)getpid());
  mkdir(dir, 0777);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static npt_dets_meta meta(int64_t n_frames, int dim) {
  return (npt_dets_meta){.config_text = "detect = { batch = 2; };\n",
                         .video_path = "video.h5",
                         .video_dataset = "/frames",
                         .model_path = "tiny.h5",
                         .model_provenance = "{\"seed\": 1}",
                         .class_names = "1 metal, 2 oxide",
                         .n_frames = n_frames,
                         .frame_begin = 0,
                         .frame_end = n_frames,
                         .embed_dim = dim,
                         .score_threshold = 0.3f,
                         .top_k = 100,
                         .peak_kernel = 3,
                         .pixel_size_nm = 0.2,
                         .frame_rate_hz = NAN};
}

/* Fake detections: frame t has (t * 7) % 5 rows, frame 3 more than one write buffer. */
static int64_t rows_in_frame(int64_t t) {
  return t == 3 ? 20000 : (t * 7) % 5;
}

static void fill(npt_dets *d, int64_t t, int dim) {
  int64_t n = rows_in_frame(t);
  assert_int_equal(npt_dets_reserve(d, n), 0);
  for (int64_t k = 0; k < n; k++) {
    npt_detection *r = &d->det[d->n];
    *r = (npt_detection){t,    0.25f * (float)k,      (float)t - 0.5f, 5.0f + (float)(k % 3),
                         6.5f, 1.0f / (float)(k + 1), (int)(k % 2) + 1};
    for (int e = 0; e < dim; e++)
      d->embed[d->n * dim + e] = (float)(t * 1000 + k) + 0.001f * (float)e;
    d->n++;
  }
}

static void write_file(const char *path, int64_t n_frames, int dim) {
  npt_dets_writer *w = NULL;
  npt_dets_meta m = meta(n_frames, dim);
  assert_int_equal(npt_dets_writer_open(&w, path, &m), 0);
  npt_dets d;
  npt_dets_init(&d, dim);
  for (int64_t t = 0; t < n_frames; t++) {
    fill(&d, t, dim);
    if (t % 2 == 1 || t == n_frames - 1) { /* batches of two frames */
      assert_int_equal(npt_dets_writer_append(w, &d), 0);
      npt_dets_clear(&d);
    }
  }
  npt_dets_free(&d);
  int64_t rows = -1;
  assert_int_equal(npt_dets_writer_finish(w, &rows), 0);
  int64_t want = 0;
  for (int64_t t = 0; t < n_frames; t++)
    want += rows_in_frame(t);
  assert_int_equal(rows, want);
}

static void test_round_trip(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof path, "%s/dets.h5", dir);
  const int dim = 6;
  write_file(path, 9, dim);
  npt_dets_file *f = NULL;
  assert_int_equal(npt_dets_file_open(&f, path), 0);
  const npt_dets_file_info *in = npt_dets_file_get_info(f);
  assert_int_equal(in->n_frames, 9);
  assert_int_equal(in->embed_dim, dim);
  assert_int_equal(in->frame_begin, 0);
  assert_int_equal(in->frame_end, 9);
  npt_dets d;
  npt_dets_init(&d, dim);
  int64_t total = 0;
  for (int64_t t = 0; t < 9; t++) {
    int64_t r0, r1;
    assert_int_equal(npt_dets_file_frame_rows(f, t, &r0, &r1), 0);
    assert_int_equal(r0, total);
    assert_int_equal(r1 - r0, rows_in_frame(t));
    npt_dets_clear(&d);
    assert_int_equal(npt_dets_file_read(f, r0, r1 - r0, &d), 0);
    npt_dets want;
    npt_dets_init(&want, dim);
    fill(&want, t, dim);
    assert_int_equal(d.n, want.n);
    if (want.n) {
      assert_memory_equal(d.det, want.det, (size_t)want.n * sizeof *d.det);
      assert_memory_equal(d.embed, want.embed, (size_t)want.n * dim * sizeof(float));
    }
    npt_dets_free(&want);
    total = r1;
  }
  assert_int_equal(total, in->n_rows);
  char *cfg = NULL, *status = NULL, *none = NULL;
  assert_int_equal(npt_dets_file_root_attr(f, "config", &cfg), 0);
  assert_string_equal(cfg, "detect = { batch = 2; };\n");
  assert_int_equal(npt_dets_file_root_attr(f, "status", &status), 0);
  assert_string_equal(status, "complete");
  assert_int_equal(npt_dets_file_root_attr(f, "no_such_attr", &none), 0);
  assert_null(none);
  free(cfg);
  free(status);
  /* Bad requests. */
  assert_int_equal(npt_dets_file_read(f, in->n_rows - 1, 2, &d), NPT_EINVAL);
  int64_t r0, r1;
  assert_int_equal(npt_dets_file_frame_rows(f, 9, &r0, &r1), NPT_EINVAL);
  npt_dets_free(&d);
  npt_dets_init(&d, 4);
  assert_int_equal(npt_dets_file_read(f, 0, 1, &d), NPT_EINVAL);
  npt_dets_free(&d);
  npt_dets_file_close(f);
  /* No temporary file is left behind. */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep -v '^dets.h5$')\"", dir);
  assert_int_equal(system(cmd), 0);
}

/* A model without embeddings, a frame range, and frames without rows. */
static void test_no_embedding_and_range(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof path, "%s/range.h5", dir);
  npt_dets_meta m = meta(10, 0);
  m.frame_begin = 4, m.frame_end = 7;
  npt_dets_writer *w = NULL;
  assert_int_equal(npt_dets_writer_open(&w, path, &m), 0);
  npt_dets d;
  npt_dets_init(&d, 0);
  fill(&d, 3, 0); /* before the range */
  assert_int_equal(npt_dets_writer_append(w, &d), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "out of order");
  npt_dets_clear(&d);
  fill(&d, 6, 0);
  assert_int_equal(npt_dets_writer_append(w, &d), 0);
  npt_dets_clear(&d);
  fill(&d, 4, 0); /* going back */
  assert_int_equal(npt_dets_writer_append(w, &d), NPT_EINVAL);
  npt_dets_clear(&d);
  int64_t rows;
  assert_int_equal(npt_dets_writer_finish(w, &rows), 0);
  assert_int_equal(rows, rows_in_frame(6));
  npt_dets_file *f = NULL;
  assert_int_equal(npt_dets_file_open(&f, path), 0);
  assert_int_equal(npt_dets_file_get_info(f)->embed_dim, 0);
  assert_int_equal(npt_dets_file_get_info(f)->frame_begin, 4);
  int64_t r0, r1;
  assert_int_equal(npt_dets_file_frame_rows(f, 9, &r0, &r1), 0);
  assert_int_equal(r0, rows);
  assert_int_equal(r1, rows);
  assert_int_equal(npt_dets_file_read(f, 0, rows, &d), 0);
  assert_int_equal(d.n, rows);
  npt_dets_free(&d);
  npt_dets_file_close(f);
}

/* An aborted writer leaves nothing; an existing file of the final name stays untouched. */
static void test_abort(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof path, "%s/aborted.h5", dir);
  FILE *keep = fopen(path, "w");
  fputs("old", keep);
  fclose(keep);
  npt_dets_writer *w = NULL;
  npt_dets_meta m = meta(3, 2);
  assert_int_equal(npt_dets_writer_open(&w, path, &m), 0);
  npt_dets_writer_abort(w);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "test \"$(cat '%s')\" = old && ! ls -A '%s' | grep -q part", path, dir);
  assert_int_equal(system(cmd), 0);
  snprintf(path, sizeof path, "%s/no/such/dir/x.h5", dir);
  assert_int_equal(npt_dets_writer_open(&w, path, &m), NPT_EHDF5);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EHDF5), "no/such/dir/x.h5: cannot create");
}

/* Damage one thing in a good file and expect one clear message. */
static void damage(const char *path, const char *what) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  if (!strcmp(what, "status")) {
    assert_true(H5Adelete(f, "status") >= 0);
  } else if (!strcmp(what, "offsets")) {
    hid_t d = H5Dopen2(f, "/detections/frame_offsets", H5P_DEFAULT);
    int64_t v[10];
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    v[1] = v[2] + 1; /* still from 0 to n, but decreasing once */
    assert_true(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
  } else if (!strcmp(what, "frame")) {
    hid_t d = H5Dopen2(f, "/detections/frame", H5P_DEFAULT);
    hsize_t start = 0, count = 1;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    int64_t v = 5;
    assert_true(H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
  } else if (!strcmp(what, "column")) {
    assert_true(H5Ldelete(f, "/detections/score", H5P_DEFAULT) >= 0);
  }
  H5Fclose(f);
}

static void test_damaged_files(void **state) {
  (void)state;
  static const struct {
    const char *what, *msg;
    int code;
  } cases[] = {
      {"status", "no status \"complete\"", NPT_EFORMAT},
      {"offsets", "frame_offsets decreases", NPT_EFORMAT},
      {"column", "no dataset /detections/score", NPT_EFORMAT},
  };
  char path[300];
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    snprintf(path, sizeof path, "%s/damaged_%s.h5", dir, cases[k].what);
    write_file(path, 9, 2);
    damage(path, cases[k].what);
    npt_dets_file *f = NULL;
    assert_int_equal(npt_dets_file_open(&f, path), cases[k].code);
    NPT_ASSERT_CONTAINS(npt_error_msg(cases[k].code), cases[k].msg);
    NPT_ASSERT_CONTAINS(npt_error_msg(cases[k].code), path);
  }
  /* A row whose frame disagrees with the index is found when it is read. */
  snprintf(path, sizeof path, "%s/damaged_frame.h5", dir);
  write_file(path, 9, 2);
  damage(path, "frame");
  npt_dets_file *f = NULL;
  assert_int_equal(npt_dets_file_open(&f, path), 0);
  npt_dets d;
  npt_dets_init(&d, 0);
  assert_int_equal(npt_dets_file_read(f, 0, 3, &d), NPT_EFORMAT);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EFORMAT), "row 0 has frame 5");
  npt_dets_free(&d);
  npt_dets_file_close(f);
  /* Not HDF5, missing. */
  snprintf(path, sizeof path, "%s/text.h5", dir);
  FILE *t = fopen(path, "w");
  fputs("frame,x\n", t);
  fclose(t);
  assert_int_equal(npt_dets_file_open(&f, path), NPT_EFORMAT);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EFORMAT), "not an HDF5 file");
  snprintf(path, sizeof path, "%s/missing.h5", dir);
  assert_int_equal(npt_dets_file_open(&f, path), NPT_EIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_no_embedding_and_range),
      cmocka_unit_test(test_abort),
      cmocka_unit_test(test_damaged_files),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
