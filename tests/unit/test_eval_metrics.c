/* HOTA, CLEAR and Identity on small hand-made sequences whose scores are worked out by hand
 * (the comparison with TrackEval itself on many cases is tests/python/test_eval_trackeval.py). */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "eval/eval.h"
#include "npt_test.h"

#define R(f, id, x, y, cls)                                                                        \
  { (f), (id), {(x), (y), 10, 10}, (cls) }

static npt_eval_result run(const npt_mot_row *gt, size_t ng, const npt_mot_row *pr, size_t np,
                           npt_id_pair **pairs, size_t *n_pairs) {
  npt_mot *g = NULL, *p = NULL;
  assert_int_equal(npt_mot_from_rows("gt", gt, ng, &g), 0);
  assert_int_equal(npt_mot_from_rows("pred", pr, np, &p), 0);
  npt_eval_result res;
  assert_int_equal(npt_eval_run(g, p, &res, pairs, n_pairs), 0);
  npt_mot_free(g);
  npt_mot_free(p);
  return res;
}

static void test_perfect_tracking(void **state) {
  (void)state;
  const npt_mot_row gt[] = {R(1, 1, 0, 0, 1),  R(1, 2, 50, 0, 1), R(2, 1, 1, 0, 1),
                            R(2, 2, 51, 0, 1), R(3, 1, 2, 0, 1),  R(3, 2, 52, 0, 1)};
  const npt_mot_row pr[] = {R(1, 8, 0, 0, 1),  R(1, 9, 50, 0, 1), R(2, 8, 1, 0, 1),
                            R(2, 9, 51, 0, 1), R(3, 8, 2, 0, 1),  R(3, 9, 52, 0, 1)};
  npt_id_pair *pairs = NULL;
  size_t n = 0;
  npt_eval_result r = run(gt, 6, pr, 6, &pairs, &n);
  assert_true(r.hota == 1.0 && r.deta == 1.0 && r.assa == 1.0 && r.loca == 1.0);
  assert_true(r.mota == 1.0 && r.motp == 1.0 && r.idf1 == 1.0);
  assert_int_equal(r.tp, 6);
  assert_int_equal(r.idsw, 0);
  assert_int_equal(r.mt, 2);
  assert_int_equal(r.ml, 0);
  assert_true(r.class_accuracy == 1.0);
  assert_int_equal(n, 2);
  assert_int_equal(pairs[0].gt_id, 1);
  assert_int_equal(pairs[0].pred_id, 8);
  assert_int_equal(pairs[1].gt_id, 2);
  assert_int_equal(pairs[1].pred_id, 9);
  free(pairs);
}

static void test_id_switch(void **state) {
  (void)state;
  /* One particle for 4 frames; the tracker calls it 1, then 2. */
  const npt_mot_row gt[] = {R(1, 5, 0, 0, 1), R(2, 5, 0, 0, 1), R(3, 5, 0, 0, 1), R(4, 5, 0, 0, 1)};
  const npt_mot_row pr[] = {R(1, 1, 0, 0, 1), R(2, 1, 0, 0, 1), R(3, 2, 0, 0, 1), R(4, 2, 0, 0, 1)};
  npt_eval_result r = run(gt, 4, pr, 4, NULL, NULL);
  assert_int_equal(r.idsw, 1);
  assert_true(r.mota == 0.75); /* (4 - 0 - 1) / 4 */
  assert_int_equal(r.frag, 0); /* tracked in every frame */
  assert_int_equal(r.idtp, 2); /* gt 5 takes one of the two ids for 2 frames */
  assert_int_equal(r.idfn, 2);
  assert_int_equal(r.idfp, 2);
  assert_true(r.idf1 == 0.5);
  /* Each of the two (gt, tracker) pairs: 2 matches, Jaccard 2 / (4 + 2 - 2); AssA 0.5. */
  NPT_ASSERT_NEAR(r.assa, 0.5, 1e-15);
  assert_true(r.deta == 1.0);
  NPT_ASSERT_NEAR(r.hota, sqrt(0.5), 1e-15);
}

static void test_class_is_ignored_for_tracking(void **state) {
  (void)state;
  /* The particle turns from metal (1) to oxide (2) in frame 3; the tracker says 1 throughout. */
  const npt_mot_row gt[] = {R(1, 5, 0, 0, 1), R(2, 5, 0, 0, 1), R(3, 5, 0, 0, 2), R(4, 5, 0, 0, 2)};
  const npt_mot_row pr[] = {R(1, 1, 0, 0, 1), R(2, 1, 0, 0, 1), R(3, 1, 0, 0, 1), R(4, 1, 0, 0, 1)};
  npt_eval_result r = run(gt, 4, pr, 4, NULL, NULL);
  assert_true(r.hota == 1.0 && r.mota == 1.0 && r.idf1 == 1.0);
  assert_int_equal(r.idsw, 0);
  assert_int_equal(r.class_matches, 2);
  assert_true(r.class_accuracy == 0.5);
}

static void test_one_side_empty(void **state) {
  (void)state;
  const npt_mot_row gt[] = {R(1, 5, 0, 0, 1), R(2, 5, 0, 0, 1), R(2, 6, 30, 0, 1)};
  npt_eval_result r = run(gt, 3, NULL, 0, NULL, NULL);
  assert_true(r.hota == 0.0 && r.deta == 0.0 && r.loca == 1.0);
  assert_int_equal(r.fn, 3);
  assert_int_equal(r.ml, 2);
  assert_true(r.mota == 0.0);
  assert_int_equal(r.idfn, 3);
  assert_true(r.idf1 == 0.0);

  /* No ground truth: TrackEval returns before computing MOTA, which stays 0 (not -FP). */
  r = run(NULL, 0, gt, 3, NULL, NULL);
  assert_int_equal(r.fp, 3);
  assert_true(r.mota == 0.0);
  assert_int_equal(r.idfp, 3);
  assert_true(r.loca == 1.0);
  assert_int_equal(r.n_frames, 2);
}

static void test_clear_keeps_state_over_one_sided_frames(void **state) {
  (void)state;
  /* The tracker outputs nothing in frame 2: TrackEval skips the frame without forgetting the
   * frame-1 match, so frame 3 does not start a new fragment. */
  const npt_mot_row gt[] = {R(1, 5, 0, 0, 1), R(2, 5, 0, 0, 1), R(3, 5, 0, 0, 1)};
  const npt_mot_row pr[] = {R(1, 1, 0, 0, 1), R(3, 1, 0, 0, 1)};
  npt_eval_result r = run(gt, 3, pr, 2, NULL, NULL);
  assert_int_equal(r.tp, 2);
  assert_int_equal(r.fn, 1);
  assert_int_equal(r.frag, 0);
  /* With a false positive elsewhere in frame 2 the frame is matched, the track is lost for a
   * frame, and frame 3 is a second tracked run: one fragmentation. */
  const npt_mot_row pr2[] = {R(1, 1, 0, 0, 1), R(2, 3, 200, 200, 1), R(3, 1, 0, 0, 1)};
  r = run(gt, 3, pr2, 3, NULL, NULL);
  assert_int_equal(r.frag, 1);
  assert_int_equal(r.fp, 1);
}

static void test_continuation_beats_better_iou(void **state) {
  (void)state;
  /* Frame 2: tracker id 1 continues at IoU 0.6, id 2 would fit at IoU 1.  CLEAR keeps the
   * continuing id (bonus 1000), HOTA's per-frame match ignores continuation. */
  const npt_mot_row gt[] = {R(1, 5, 0, 0, 1), R(2, 5, 0, 0, 1)};
  const npt_mot_row pr[] = {R(1, 1, 0, 0, 1), {2, 1, {2.5, 0, 10, 10}, 1}, R(2, 2, 0, 0, 1)};
  npt_eval_result r = run(gt, 2, pr, 3, NULL, NULL);
  assert_int_equal(r.idsw, 0);
  assert_int_equal(r.tp, 2);
  assert_int_equal(r.fp, 1);
  NPT_ASSERT_NEAR(r.motp, (1.0 + 75.0 / 125.0) / 2, 1e-15);
}

static void test_duplicate_id_in_frame_is_an_error(void **state) {
  (void)state;
  const npt_mot_row rows[] = {R(1, 5, 0, 0, 1), R(1, 5, 9, 0, 1)};
  npt_mot *m = NULL;
  npt_error_clear();
  int rc = npt_mot_from_rows("t.txt", rows, 2, &m);
  assert_int_equal(rc, NPT_EFORMAT);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "t.txt:2: id 5 appears twice in frame 1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_perfect_tracking),
      cmocka_unit_test(test_id_switch),
      cmocka_unit_test(test_class_is_ignored_for_tracking),
      cmocka_unit_test(test_one_side_empty),
      cmocka_unit_test(test_clear_keeps_state_over_one_sided_frames),
      cmocka_unit_test(test_continuation_beats_better_iou),
      cmocka_unit_test(test_duplicate_id_in_frame_is_an_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
