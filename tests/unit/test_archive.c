/* The archive's derived tables (CSR frame index, tracks, per-track index, per-frame summary),
 * its row checks, and the writer's overwrite and clean-up rules.  The HDF5 layout itself is
 * read back by tests/python/test_archive.py. */
#include "npt_test.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "io/archive.h"
#include "io/archive_internal.h"

/* Six rows over 5 frames: track 4 in frames 0, 2, 3 (a gap at 1), track 9 in frames 0 and 3,
 * one row in no track in frame 2; frames 1 and 4 empty. */
static const int64_t FRAME[] = {0, 0, 2, 2, 3, 3};
static const int64_t TRACK[] = {9, 4, 4, -1, 4, 9};
static const float X[] = {0, 1, 2, 3, 4, 5}, Y[] = {0, 0, 0, 0, 0, 0};
static const float W[] = {4, 2, 2, 8, 2, 4}, H[] = {1, 8, 2, 8, 8, 9};
static const float S[] = {.9f, .8f, .7f, .6f, .5f, .4f};
static const int32_t CLS[] = {1, 2, 1, 1, 2, 1};
static const float EMB[] = {1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1}; /* D = 2 */

static npt_archive_rows rows_of(int64_t n) {
  npt_archive_rows r = {n, FRAME, TRACK, X, Y, W, H, S, CLS, 2, EMB};
  return r;
}

static const npt_archive_video VIDEO = {"v", "v.h5", 5, 16, 16, 1.0, 2.0, "config", 0};

static void test_tables(void **state) {
  (void)state;
  npt__arch_tables t;
  npt_archive_rows r = rows_of(6);
  assert_int_equal(npt__arch_tables_build(&t, &VIDEO, &r, 2), 0);
  const int64_t off[] = {0, 2, 2, 4, 6, 6};
  for (int i = 0; i < 6; i++)
    assert_int_equal(t.frame_offsets[i], off[i]);
  assert_int_equal(t.n_tracks, 2);
  assert_int_equal(t.track_id[0], 4);
  assert_int_equal(t.track_id[1], 9);
  assert_int_equal(t.first_frame[0], 0);
  assert_int_equal(t.last_frame[0], 3);
  assert_int_equal(t.length[0], 4);
  assert_int_equal(t.n_det[0], 3);
  assert_int_equal(t.n_tracked, 5);
  const int64_t trows[] = {1, 2, 4, 0, 5}, toff[] = {0, 3, 5};
  for (int i = 0; i < 5; i++)
    assert_int_equal(t.track_rows[i], trows[i]);
  for (int i = 0; i < 3; i++)
    assert_int_equal(t.track_offsets[i], toff[i]);
  NPT_ASSERT_NEAR(t.mean_w[0], 2.0, 1e-6);
  NPT_ASSERT_NEAR(t.mean_size[0], (4.0 + 2.0 + 4.0) / 3, 1e-6);
  /* Track 4's embeddings (0,1), (1,0), (0,1): mean (1/3, 2/3), scaled to unit length. */
  NPT_ASSERT_NEAR(t.mean_embedding[0], 1 / sqrt(5.0), 1e-6);
  NPT_ASSERT_NEAR(t.mean_embedding[1], 2 / sqrt(5.0), 1e-6);
  assert_int_equal(t.count[2], 2);
  assert_int_equal(t.count_by_class[0 * 2 + 1], 1); /* frame 0, class 2 */
  assert_int_equal(t.count_by_class[3 * 2 + 0], 1); /* frame 3, class 1 */
  assert_true(isnan(t.frame_mean_size[1]));
  NPT_ASSERT_NEAR(t.frame_mean_size[2], (2.0 + 8.0) / 2, 1e-6);
  npt__arch_tables_free(&t);
}

static void expect_bad(npt_archive_rows r, int n_classes, const char *msg) {
  npt__arch_tables t;
  int rc = npt__arch_tables_build(&t, &VIDEO, &r, n_classes);
  assert_int_equal(rc, NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), msg);
}

static void test_bad_rows(void **state) {
  (void)state;
  int64_t frame[6], track[6];
  memcpy(frame, FRAME, sizeof frame);
  memcpy(track, TRACK, sizeof track);
  npt_archive_rows r = rows_of(6);
  expect_bad(r, 1, "row 1 (frame 0): class outside 1..n_classes");
  r.frame = frame;
  frame[3] = 1; /* after frame 2 */
  expect_bad(r, 2, "row 3 (frame 1): rows not in frame order");
  frame[3] = 2;
  frame[5] = 5;
  expect_bad(r, 2, "frame outside the video");
  frame[5] = 3;
  r.track_id = track;
  track[1] = 9; /* track 9 twice in frame 0 */
  expect_bad(r, 2, "video v: track 9 appears twice in frame 0");
}

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* A writer that is aborted, or fails, leaves nothing; a complete archive is kept unless force. */
static void test_writer_rules(void **state) {
  (void)state;
  char dir[] = "/tmp/npt_archive_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/run.h5", dir);
  npt_archive_options opt = {NPT_ARCHIVE_EMBED_TRACK, 4, 0};
  npt_archive_run run = {"", "m.h5", "00", "cpu", "1 a, 2 b", 2, NULL, 0};
  npt_archive_rows r = rows_of(6);

  npt_archive *a = NULL;
  assert_int_equal(npt_archive_open(&a, path, &opt), 0);
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s", npt_archive_temp_path(a));
  assert_true(exists(tmp));
  npt_archive_abort(a);
  assert_false(exists(tmp));
  assert_false(exists(path));

  /* Bad rows: the error names the video, and finishing the archive then fails cleanly. */
  assert_int_equal(npt_archive_open(&a, path, &opt), 0);
  assert_int_equal(npt_archive_set_run(a, &run), 0);
  npt_archive_rows bad = r;
  bad.n = 6;
  run.n_classes = 2;
  int64_t frame[6] = {0, 0, 2, 2, 3, 9};
  bad.frame = frame;
  assert_int_equal(npt_archive_add_video(a, &VIDEO, &bad), NPT_EINVAL);
  assert_int_equal(npt_archive_finish(a), NPT_EINVAL);
  assert_false(exists(path));
  assert_false(exists(tmp));

  assert_int_equal(npt_archive_open(&a, path, &opt), 0);
  assert_int_equal(npt_archive_set_run(a, &run), 0);
  assert_int_equal(npt_archive_add_video(a, &VIDEO, &r), 0);
  assert_int_equal(npt_archive_add_video(a, &VIDEO, &r), NPT_EINVAL); /* the same name twice */
  npt_archive_abort(a);
  assert_int_equal(npt_archive_open(&a, path, &opt), 0);
  assert_int_equal(npt_archive_set_run(a, &run), 0);
  assert_int_equal(npt_archive_add_video(a, &VIDEO, &r), 0);
  assert_int_equal(npt_archive_finish(a), 0);
  assert_true(exists(path));

  int rc = npt_archive_open(&a, path, &opt);
  assert_int_equal(rc, NPT_EIO);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "a complete archive exists");
  opt.force = 1;
  assert_int_equal(npt_archive_open(&a, path, &opt), 0);
  npt_archive_abort(a);
  assert_true(exists(path)); /* aborting a forced rewrite keeps the old archive */

  npt_archive_file *f = NULL;
  assert_int_equal(npt_archive_file_open(&f, path), 0);
  assert_true(npt_archive_file_is_complete(f));
  assert_int_equal(npt_archive_file_find_video(f, NULL), 0);
  assert_int_equal(npt_archive_file_find_video(f, "w"), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "no video 'w' (videos: v)");
  npt_archive_cols c;
  assert_int_equal(npt_archive_file_read_detections(f, 0, &c), 0);
  assert_int_equal(c.n, 6);
  assert_int_equal(c.track_id[3], -1);
  npt_archive_cols_free(&c);
  npt_archive_file_close(f);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tables),
      cmocka_unit_test(test_bad_rows),
      cmocka_unit_test(test_writer_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
