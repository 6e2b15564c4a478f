/* IoU edge cases and the readers of MOT files and events.csv (formats, errors naming
 * file:line). */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/error.h"
#include "eval/eval.h"
#include "npt_test.h"

static double iou(double ax, double ay, double aw, double ah, double bx, double by, double bw,
                  double bh) {
  const double a[4] = {ax, ay, aw, ah}, b[4] = {bx, by, bw, bh};
  double v = npt_eval_box_iou(a, b);
  assert_true(v == npt_eval_box_iou(b, a)); /* symmetric */
  return v;
}

static void test_iou_edge_cases(void **state) {
  (void)state;
  assert_true(iou(0, 0, 10, 10, 0, 0, 10, 10) == 1.0);
  assert_true(iou(0, 0, 10, 10, 5, 0, 10, 10) == 50.0 / 150.0);
  assert_true(iou(0, 0, 10, 10, 2, 2, 5, 5) == 0.25);   /* containment */
  assert_true(iou(0, 0, 10, 10, 10, 0, 10, 10) == 0.0); /* touching edges */
  assert_true(iou(0, 0, 10, 10, 30, 30, 10, 10) == 0.0);
  /* Tiny boxes: one pixel shifted by half a pixel. */
  assert_true(iou(3, 3, 1, 1, 3.5, 3, 1, 1) == 0.5 / 1.5);
  /* Boxes past the border are not clipped: the part left of x = 0 counts. */
  assert_true(iou(-5, -5, 10, 10, -5, -5, 10, 10) == 1.0);
  assert_true(iou(-10, 0, 20, 10, 0, 0, 10, 10) == 0.5);
  /* Degenerate boxes overlap nothing, even themselves: zero or negative size, or an area at
   * most machine epsilon (TrackEval's rule). */
  assert_true(iou(0, 0, 0, 10, 0, 0, 10, 10) == 0.0);
  assert_true(iou(0, 0, -3, 10, 0, 0, 10, 10) == 0.0);
  assert_true(iou(5, 5, 1e-9, 1e-9, 5, 5, 1e-9, 1e-9) == 0.0);
  /* Areas come from the corners, (x + w) - x, as in TrackEval: this pair's IoU is 0.5 in
   * exact arithmetic and 0.49999999999999983 in TrackEval's (w * h would give 0.5000000000000001).
   */
  assert_true(iou(87.8, 0.4, 39.0, 12.6, 87.8, 0.4, 78.0, 12.6) == 0.49999999999999983);
}

static const char *data_path(const char *name, char *buf, size_t n) {
  const char *src = getenv("NPT_SOURCE_DIR");
  snprintf(buf, n, "%s/tests/data/eval/%s", src ? src : ".", name);
  return buf;
}

/* Writes `text` to a fresh temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/npt_eval_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_mot_read_fixture(void **state) {
  (void)state;
  char path[4096];
  npt_mot *m = NULL;
  assert_int_equal(npt_mot_read(data_path("small_pred.txt", path, sizeof path), &m), 0);
  assert_int_equal(npt_mot_n_rows(m), 6);
  assert_int_equal(npt_mot_n_frames(m), 5);
  assert_int_equal(npt_mot_n_ids(m), 3);
  npt_mot_free(m);
}

/* The error for `text`: code and message (the file name replaced by "F"). */
static void expect_mot_error(const char *text, int code, const char *want) {
  const char *path = temp_file(text);
  npt_mot *m = (npt_mot *)1;
  npt_error_clear();
  int rc = npt_mot_read(path, &m);
  assert_int_equal(rc, code);
  assert_null(m);
  char full[256];
  snprintf(full, sizeof full, "%s%s", path, want);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), full);
  unlink(path);
}

static void test_mot_errors(void **state) {
  (void)state;
  expect_mot_error("1,1,0,0,5,5\n1,2,0,0,5\n", NPT_EFORMAT,
                   ":2: expected 6 to 10 comma-separated fields");
  expect_mot_error("# c\n\n1,2,abc,0,5,5\n", NPT_EFORMAT, ":3: field 3 (x): 'abc' is not a");
  expect_mot_error("0,2,0,0,5,5\n", NPT_EFORMAT, ":1: frame 0: frames are numbered from 1");
  expect_mot_error("1,2.5,0,0,5,5\n", NPT_EFORMAT, ":1: field 2 (id): '2.5' is not an integer");
  expect_mot_error("1,2,0,0,5,inf\n", NPT_EFORMAT, ":1: field 6 (h)");
  expect_mot_error("1,1,0,0,5,5,1,1,1,1,1\n", NPT_EFORMAT, ":1: expected 6 to 10");
  expect_mot_error("1,4,0,0,5,5\n2,4,0,0,5,5\n2,3,0,0,5,5\n2,4,1,1,5,5\n", NPT_EFORMAT,
                   ":4: id 4 appears twice in frame 2 (also line 2)");

  npt_mot *m = NULL;
  npt_error_clear();
  int rc = npt_mot_read("/nonexistent/gt.txt", &m);
  assert_int_equal(rc, NPT_EIO);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "/nonexistent/gt.txt: cannot open");
  assert_int_equal(npt_exit_status(rc), 1);
}

static void test_mot_empty_file_is_valid(void **state) {
  (void)state;
  const char *path = temp_file("# nothing tracked\n\n");
  npt_mot *m = NULL;
  assert_int_equal(npt_mot_read(path, &m), 0);
  assert_int_equal(npt_mot_n_rows(m), 0);
  assert_int_equal(npt_mot_n_frames(m), 0);
  npt_mot_free(m);
  unlink(path);
}

static void test_events_read(void **state) {
  (void)state;
  char path[4096];
  npt_events *ev = NULL;
  assert_int_equal(npt_events_read(data_path("events.csv", path, sizeof path), &ev), 0);
  assert_int_equal(npt_events_count(ev), 2);
  npt_events_free(ev);

  const char *bad[][2] = {
      {"frame,type,parents,children\n57,join,3 8,21\n", ":2: type: 'join' is neither"},
      {"frame,type,parents,children\n57,merge,3 x,21\n", ":2: parents: '3 x' is not a list"},
      {"frame,type,parents,children\n57,merge,,21\n", ":2: parents: no ids"},
      {"frame,type,parents,children\n57,merge,3 8\n", ":2: expected 4 comma-separated fields"},
      {"frame,type,parents,children\n-1,merge,3 8,21\n", ":2: frame: '-1' is not a frame"},
      {"57,merge,3 8,21\n", ":1: expected the header 'frame,type,parents,children'"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char *p = temp_file(bad[k][0]);
    npt_error_clear();
    int rc = npt_events_read(p, &ev);
    assert_int_equal(rc, NPT_EFORMAT);
    assert_null(ev);
    char full[256];
    snprintf(full, sizeof full, "%s%s", p, bad[k][1]);
    NPT_ASSERT_CONTAINS(npt_error_msg(rc), full);
    unlink(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_iou_edge_cases), cmocka_unit_test(test_mot_read_fixture),
      cmocka_unit_test(test_mot_errors),     cmocka_unit_test(test_mot_empty_file_is_valid),
      cmocka_unit_test(test_events_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
