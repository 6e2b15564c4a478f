/* Linear sum assignment: optimal against brute force on random small matrices (square, wide
 * and tall), scipy's documented choices among ties, and its input checks.  Agreement with scipy
 * on tie-heavy matrices pair by pair is checked in tests/python/test_eval_trackeval.py. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "eval/eval.h"
#include "npt_test.h"

/* Smallest total cost over all assignments of min(nr, nc) pairs, by enumerating injections of
 * the shorter side into the longer one. */
static double brute_min(const double *c, int nr, int nc, int row, unsigned used) {
  if (nr <= nc) {
    if (row == nr)
      return 0;
    double best = INFINITY;
    for (int j = 0; j < nc; j++)
      if (!(used & (1u << j))) {
        double v = c[row * nc + j] + brute_min(c, nr, nc, row + 1, used | (1u << j));
        if (v < best)
          best = v;
      }
    return best;
  }
  /* Tall: assign each column a distinct row. */
  if (row == nc)
    return 0;
  double best = INFINITY;
  for (int i = 0; i < nr; i++)
    if (!(used & (1u << i))) {
      double v = c[i * nc + row] + brute_min(c, nr, nc, row + 1, used | (1u << i));
      if (v < best)
        best = v;
    }
  return best;
}

/* Pairs must be a valid assignment: min(nr, nc) of them, rows ascending, no column twice. */
static double check_valid(const double *c, int nr, int nc, const int64_t *r, const int64_t *cl) {
  int k = nr < nc ? nr : nc;
  unsigned cols = 0;
  double total = 0;
  for (int m = 0; m < k; m++) {
    assert_true(r[m] >= 0 && r[m] < nr);
    assert_true(cl[m] >= 0 && cl[m] < nc);
    if (m > 0)
      assert_true(r[m] > r[m - 1]);
    assert_false(cols & (1u << cl[m]));
    cols |= 1u << cl[m];
    total += c[r[m] * nc + cl[m]];
  }
  return total;
}

static void test_brute_force_random(void **state) {
  (void)state;
  srand(12345);
  double c[64];
  int64_t r[8], cl[8];
  for (int trial = 0; trial < 3000; trial++) {
    int nr = 1 + rand() % 7, nc = 1 + rand() % 7;
    int kind = trial % 3;
    for (int k = 0; k < nr * nc; k++) {
      if (kind == 0)
        c[k] = rand() % 3; /* many ties */
      else if (kind == 1)
        c[k] = (double)rand() / RAND_MAX * 100.0 - 50.0;
      else
        c[k] = -(double)(rand() % 10) * 0.1; /* like TrackEval's negated similarities */
    }
    assert_int_equal(npt_lsa_solve((size_t)nr, (size_t)nc, c, r, cl), 0);
    double got = check_valid(c, nr, nc, r, cl);
    double want = brute_min(c, nr, nc, 0, 0);
    NPT_ASSERT_NEAR(got, want, 1e-9 * (1 + fabs(want)));
  }
}

static void test_ties_follow_scipy(void **state) {
  (void)state;
  int64_t r[4], c[4];
  /* A constant matrix gives the identity (scipy scans columns from the last, gh-11602). */
  double zero[9] = {0};
  assert_int_equal(npt_lsa_solve(3, 3, zero, r, c), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i], i);
    assert_int_equal(c[i], i);
  }
  /* Wide constant: rows take columns 0, 1 (scipy: [0 1], [0 1]). */
  double wide[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  assert_int_equal(npt_lsa_solve(2, 4, wide, r, c), 0);
  assert_int_equal(c[0], 0);
  assert_int_equal(c[1], 1);
  /* Tall constant is solved transposed; rows 0 and 1 get columns 0 and 1 (scipy). */
  double tall[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  assert_int_equal(npt_lsa_solve(4, 2, tall, r, c), 0);
  assert_int_equal(r[0], 0);
  assert_int_equal(c[0], 0);
  assert_int_equal(r[1], 1);
  assert_int_equal(c[1], 1);
  /* Tall with a clear optimum: pairs listed by ascending row. */
  double t2[6] = {5, 0, 0, 5, 9, 9};
  assert_int_equal(npt_lsa_solve(3, 2, t2, r, c), 0);
  assert_int_equal(r[0], 0);
  assert_int_equal(c[0], 1);
  assert_int_equal(r[1], 1);
  assert_int_equal(c[1], 0);
}

static void test_empty_and_invalid(void **state) {
  (void)state;
  int64_t r[2], c[2];
  assert_int_equal(npt_lsa_solve(0, 3, NULL, r, c), 0);
  assert_int_equal(npt_lsa_solve(3, 0, NULL, r, c), 0);
  double bad[4] = {0, NAN, 1, 2};
  assert_int_equal(npt_lsa_solve(2, 2, bad, r, c), NPT_EINVAL);
  double neg_inf[4] = {0, -INFINITY, 1, 2};
  assert_int_equal(npt_lsa_solve(2, 2, neg_inf, r, c), NPT_EINVAL);
  /* +inf marks a forbidden pair; a matrix with no finite assignment is infeasible. */
  double inf_ok[4] = {INFINITY, 1, 2, INFINITY};
  assert_int_equal(npt_lsa_solve(2, 2, inf_ok, r, c), 0);
  assert_int_equal(c[0], 1);
  assert_int_equal(c[1], 0);
  double infeasible[4] = {INFINITY, INFINITY, 1, 2};
  assert_int_equal(npt_lsa_solve(2, 2, infeasible, r, c), NPT_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_brute_force_random),
      cmocka_unit_test(test_ties_follow_scipy),
      cmocka_unit_test(test_empty_and_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
