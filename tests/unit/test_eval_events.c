/* Merge/split event matching on hand-made cases with known answers: type, frame window,
 * parent and child correspondence, one-to-one with the most pairs, then the least frame
 * difference. */
#include <stdlib.h>

#include "common/error.h"
#include "eval/eval.h"
#include "npt_test.h"

/* gt ids 1..5 correspond to tracker ids 11..15 (sorted by gt id, as npt_eval_run gives them). */
static const npt_id_pair pairs[] = {{1, 11}, {2, 12}, {3, 13}, {4, 14}, {5, 15}};
enum { N_PAIRS = 5 };

static void add(npt_events *ev, int64_t frame, npt_event_type type, int64_t p0, int64_t p1,
                int64_t c0, int64_t c1) {
  int64_t p[2] = {p0, p1}, c[2] = {c0, c1};
  assert_int_equal(npt_events_add(ev, frame, type, p, p1 ? 2 : 1, c, c1 ? 2 : 1), 0);
}

/* Scores one gt event against a list of predicted ones; returns the matched index or -1. */
static int64_t match_one(npt_event_type type, int64_t frame, int64_t p0, int64_t p1, int64_t c0,
                         const npt_events *pred, npt_event_scores *s) {
  npt_events *gt = NULL;
  assert_int_equal(npt_events_init(&gt), 0);
  add(gt, frame, type, p0, p1, c0, 0);
  int64_t m = -2;
  assert_int_equal(npt_events_score(gt, pred, pairs, N_PAIRS, s, &m), 0);
  npt_events_free(gt);
  return m;
}

static void test_candidate_rules(void **state) {
  (void)state;
  npt_events *pr = NULL;
  npt_event_scores s;
  assert_int_equal(npt_events_init(&pr), 0);
  add(pr, 10, NPT_EVENT_MERGE, 11, 12, 13, 0); /* 0: exact */
  assert_int_equal(match_one(NPT_EVENT_MERGE, 10, 1, 2, 3, pr, &s), 0);
  assert_int_equal(s.merge.tp, 1);
  assert_true(s.merge.precision == 1.0 && s.merge.recall == 1.0 && s.merge.f1 == 1.0);
  assert_true(s.all.f1 == 1.0);
  assert_int_equal(s.split.n_gt, 0);
  assert_true(s.split.f1 == 0.0);

  /* Wrong type; frames 4 apart; no parent in common; no child in common: never a match. */
  npt_events_free(pr);
  assert_int_equal(npt_events_init(&pr), 0);
  add(pr, 10, NPT_EVENT_SPLIT, 11, 12, 13, 0);
  add(pr, 14, NPT_EVENT_MERGE, 11, 12, 13, 0);
  add(pr, 6, NPT_EVENT_MERGE, 11, 12, 13, 0);
  add(pr, 10, NPT_EVENT_MERGE, 99, 14, 13, 0);
  add(pr, 10, NPT_EVENT_MERGE, 11, 12, 98, 0);
  assert_int_equal(match_one(NPT_EVENT_MERGE, 10, 1, 2, 3, pr, &s), -1);
  assert_int_equal(s.all.tp, 0);
  assert_int_equal(s.merge.n_pred, 4);
  assert_int_equal(s.split.n_pred, 1);
  /* Frames 3 apart, and one parent out of two corresponding, is enough. */
  add(pr, 13, NPT_EVENT_MERGE, 11, 99, 13, 0);
  assert_int_equal(match_one(NPT_EVENT_MERGE, 10, 1, 2, 3, pr, &s), 5);
  NPT_ASSERT_NEAR(s.merge.precision, 1.0 / 5.0, 1e-15);
  assert_true(s.merge.recall == 1.0);
  /* Gt ids without a corresponding tracker id (6, 7) cannot match anything. */
  assert_int_equal(match_one(NPT_EVENT_MERGE, 10, 6, 0, 7, pr, &s), -1);
  npt_events_free(pr);
}

static void test_most_pairs_then_closest(void **state) {
  (void)state;
  npt_events *gt = NULL, *pr = NULL;
  assert_int_equal(npt_events_init(&gt), 0);
  assert_int_equal(npt_events_init(&pr), 0);
  /* gt A (frame 10) and B (frame 13); prediction X (frame 10) fits both, Y (frame 8) only A.
   * Taking the closest pair first (A-X) would leave B unmatched; the answer is A-Y, B-X. */
  add(gt, 10, NPT_EVENT_SPLIT, 1, 0, 2, 0);
  add(gt, 13, NPT_EVENT_SPLIT, 1, 0, 2, 0);
  add(pr, 10, NPT_EVENT_SPLIT, 11, 0, 12, 0);
  add(pr, 8, NPT_EVENT_SPLIT, 11, 0, 12, 0);
  int64_t m[2];
  npt_event_scores s;
  assert_int_equal(npt_events_score(gt, pr, pairs, N_PAIRS, &s, m), 0);
  assert_int_equal(m[0], 1);
  assert_int_equal(m[1], 0);
  assert_int_equal(s.split.tp, 2);

  /* Among matchings with the most pairs, the smallest total frame difference: gt C (frame 30)
   * takes Z (frame 31) rather than W (frame 32). */
  add(gt, 30, NPT_EVENT_MERGE, 3, 4, 5, 0);
  add(pr, 32, NPT_EVENT_MERGE, 13, 14, 15, 0);
  add(pr, 31, NPT_EVENT_MERGE, 14, 0, 15, 0);
  int64_t m3[3];
  assert_int_equal(npt_events_score(gt, pr, pairs, N_PAIRS, &s, m3), 0);
  assert_int_equal(m3[2], 3);
  assert_int_equal(s.all.tp, 3);
  assert_int_equal(s.all.n_gt, 3);
  assert_int_equal(s.all.n_pred, 4);
  NPT_ASSERT_NEAR(s.all.precision, 0.75, 1e-15);
  assert_true(s.all.recall == 1.0);
  NPT_ASSERT_NEAR(s.all.f1, 2 * 0.75 / 1.75, 1e-15);
  npt_events_free(gt);
  npt_events_free(pr);
}

static void test_no_events(void **state) {
  (void)state;
  npt_events *gt = NULL, *pr = NULL;
  assert_int_equal(npt_events_init(&gt), 0);
  assert_int_equal(npt_events_init(&pr), 0);
  npt_event_scores s;
  assert_int_equal(npt_events_score(gt, pr, NULL, 0, &s, NULL), 0);
  assert_int_equal(s.all.n_gt, 0);
  assert_true(s.all.precision == 0.0 && s.all.recall == 0.0 && s.all.f1 == 0.0);
  /* An event needs a parent and a child. */
  int64_t id = 1;
  assert_int_equal(npt_events_add(gt, 5, NPT_EVENT_MERGE, &id, 1, NULL, 0), NPT_EINVAL);
  npt_events_free(gt);
  npt_events_free(pr);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_candidate_rules),
      cmocka_unit_test(test_most_pairs_then_closest),
      cmocka_unit_test(test_no_events),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
