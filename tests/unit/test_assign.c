/* Gated assignment (src/track/assign.h): optimal against brute force over every partial
 * matching on thousands of small random problems (ties, costs at and around max_cost,
 * duplicates, empty rows and columns, rectangular), degenerate problems, independence from
 * edge order and from other components, input checks, and a large sparse problem against the
 * dense solver of src/eval on the equivalent extended matrix. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "eval/eval.h"
#include "npt_test.h"
#include "track/assign.h"

enum { MAXN = 7 };

/* Dense view of a small problem: the smallest cost of each allowed pair, +inf elsewhere. */
static void to_dense(int nr, int nc, const npt_assign_edge *e, size_t n, double *c) {
  for (int k = 0; k < nr * nc; k++)
    c[k] = INFINITY;
  for (size_t k = 0; k < n; k++) {
    double *x = &c[e[k].row * nc + e[k].col];
    if (e[k].cost < *x)
      *x = e[k].cost;
  }
}

/* The objective of assign.h, by enumerating every matching of allowed pairs: each row is either
 * left unmatched or matched to a free column it may take (whatever its cost). */
static double brute(const double *c, int nr, int nc, double max_cost, int row, unsigned used,
                    int n_matched) {
  if (row == nr)
    return max_cost / 2 * (double)(nr + nc - 2 * n_matched);
  double best = brute(c, nr, nc, max_cost, row + 1, used, n_matched);
  for (int j = 0; j < nc; j++)
    if (!(used & (1u << j)) && c[row * nc + j] < INFINITY) {
      double v =
          c[row * nc + j] + brute(c, nr, nc, max_cost, row + 1, used | (1u << j), n_matched + 1);
      if (v < best)
        best = v;
    }
  return best;
}

/* Checks that the answer is a matching of allowed pairs below max_cost, consistent both ways,
 * and returns its objective. */
static double check_answer(const double *c, int nr, int nc, double max_cost, const int64_t *r2c,
                           const int64_t *c2r) {
  double total = 0;
  int matched = 0;
  for (int i = 0; i < nr; i++) {
    if (r2c[i] < 0) {
      assert_int_equal(r2c[i], -1);
      continue;
    }
    assert_true(r2c[i] < nc);
    assert_int_equal(c2r[r2c[i]], i);
    double cost = c[i * nc + r2c[i]];
    if (!(cost < max_cost))
      fail_msg("row %d matched to column %lld at cost %g, max_cost %g", i, (long long)r2c[i], cost,
               max_cost);
    total += cost;
    matched++;
  }
  for (int j = 0; j < nc; j++) {
    assert_true(c2r[j] >= -1 && c2r[j] < nr);
    if (c2r[j] >= 0)
      assert_int_equal(r2c[c2r[j]], j);
  }
  return total + max_cost / 2 * (double)(nr + nc - 2 * matched);
}

/* A random problem: sizes 0..MAXN, density, integer or real costs, duplicates. */
static size_t random_problem(npt_rng *g, int *nr, int *nc, double *max_cost, npt_assign_edge *e) {
  *nr = (int)npt_rng_int(g, 0, MAXN);
  *nc = (int)npt_rng_int(g, 0, MAXN);
  double density = npt_rng_uniform(g);
  int integer = npt_rng_int(g, 0, 2) > 0;
  *max_cost = integer ? (double)npt_rng_int(g, 1, 8) : npt_rng_range(g, 0.2, 1.2);
  size_t n = 0;
  for (int i = 0; i < *nr; i++)
    for (int j = 0; j < *nc; j++) {
      if (npt_rng_uniform(g) >= density)
        continue;
      int copies = npt_rng_uniform(g) < 0.1 ? 2 : 1;
      for (int k = 0; k < copies; k++) {
        double cost;
        if (integer)
          cost = (double)npt_rng_int(g, 0, 8);
        else if (npt_rng_uniform(g) < 0.2) /* at or just around the limit */
          cost = *max_cost + (double)npt_rng_int(g, -1, 1) * 1e-12;
        else
          cost = npt_rng_range(g, 0, 1.2);
        e[n++] = (npt_assign_edge){i, j, cost};
      }
    }
  return n;
}

static void test_brute_force_random(void **state) {
  (void)state;
  npt_rng g;
  npt_rng_seed(&g, 2024, 1);
  npt_assign_work *w;
  assert_int_equal(npt_assign_work_init(&w), 0);
  npt_assign_edge e[2 * MAXN * MAXN];
  double c[MAXN * MAXN];
  int64_t r2c[MAXN], c2r[MAXN];
  for (int t = 0; t < 4000; t++) {
    int nr, nc;
    double max_cost;
    size_t n = random_problem(&g, &nr, &nc, &max_cost, e);
    assert_int_equal(npt_assign_solve((size_t)nr, (size_t)nc, e, n, max_cost, r2c, c2r, w), 0);
    to_dense(nr, nc, e, n, c);
    double got = check_answer(c, nr, nc, max_cost, r2c, c2r);
    double want = brute(c, nr, nc, max_cost, 0, 0, 0);
    if (fabs(got - want) > 1e-9)
      fail_msg("case %d (%d x %d, %zu pairs, max_cost %g): objective %.12g, brute force %.12g", t,
               nr, nc, n, max_cost, got, want);
  }
  npt_assign_work_free(w);
}

/* Shuffled edge lists, a fresh workspace or none, and the problem embedded among other rows,
 * columns and components (order-preserving relabelling) all give the same matching. */
static void test_deterministic(void **state) {
  (void)state;
  npt_rng g;
  npt_rng_seed(&g, 7, 2);
  npt_assign_work *w;
  assert_int_equal(npt_assign_work_init(&w), 0);
  npt_assign_edge e[2 * MAXN * MAXN], s[2 * MAXN * MAXN], big[8 * MAXN * MAXN];
  int64_t r2c[MAXN], c2r[MAXN], r2c2[MAXN], c2r2[MAXN], br2c[3 * MAXN], bc2r[3 * MAXN];
  for (int t = 0; t < 2000; t++) {
    int nr, nc;
    double max_cost;
    size_t n = random_problem(&g, &nr, &nc, &max_cost, e);
    assert_int_equal(npt_assign_solve((size_t)nr, (size_t)nc, e, n, max_cost, r2c, c2r, w), 0);

    for (size_t k = 0; k < n; k++)
      s[k] = e[k];
    for (size_t k = n; k > 1; k--) {
      size_t m = (size_t)npt_rng_int(&g, 0, (int64_t)k - 1);
      npt_assign_edge tmp = s[k - 1];
      s[k - 1] = s[m];
      s[m] = tmp;
    }
    assert_int_equal(npt_assign_solve((size_t)nr, (size_t)nc, s, n, max_cost, r2c2, c2r2, NULL), 0);
    for (int i = 0; i < nr; i++)
      assert_int_equal(r2c[i], r2c2[i]);
    for (int j = 0; j < nc; j++)
      assert_int_equal(c2r[j], c2r2[j]);

    /* Embedding: original row i becomes 3i+1, column j becomes 3j+2; the new rows 3i and
     * columns 3j (and 3i+2, 3j+1) carry another random problem among themselves only, with the
     * same costs, so its components tie with ours in every way but index. */
    int bnr = 3 * nr, bnc = 3 * nc;
    size_t bn = 0;
    for (size_t k = 0; k < n; k++) {
      const npt_assign_edge *x = &s[k];
      big[bn++] = (npt_assign_edge){3 * x->row + 1, 3 * x->col + 2, x->cost};
      big[bn++] = (npt_assign_edge){3 * x->row, 3 * x->col, x->cost};
      if (npt_rng_uniform(&g) < 0.5)
        big[bn++] = (npt_assign_edge){3 * x->row + 2, 3 * x->col + 1, x->cost * 0.5};
    }
    assert_int_equal(npt_assign_solve((size_t)bnr, (size_t)bnc, big, bn, max_cost, br2c, bc2r, w),
                     0);
    for (int i = 0; i < nr; i++)
      assert_int_equal(br2c[3 * i + 1], r2c[i] < 0 ? -1 : 3 * r2c[i] + 2);
    for (int j = 0; j < nc; j++)
      assert_int_equal(bc2r[3 * j + 2], c2r[j] < 0 ? -1 : 3 * c2r[j] + 1);
  }
  npt_assign_work_free(w);
}

static void test_degenerate(void **state) {
  (void)state;
  enum { N = 6 };
  npt_assign_edge e[N * N];
  int64_t r2c[N], c2r[N];
  size_t n = 0;

  /* All equal and worth matching: a perfect matching. */
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      e[n++] = (npt_assign_edge){i, j, 1.0};
  assert_int_equal(npt_assign_solve(N, N, e, n, 3.0, r2c, c2r, NULL), 0);
  unsigned seen = 0;
  for (int i = 0; i < N; i++) {
    assert_true(r2c[i] >= 0);
    seen |= 1u << r2c[i];
  }
  assert_int_equal(seen, (1u << N) - 1);

  /* All equal to max_cost, or above it: nothing is worth matching. */
  assert_int_equal(npt_assign_solve(N, N, e, n, 1.0, r2c, c2r, NULL), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(r2c[i], -1);

  /* All forbidden. */
  assert_int_equal(npt_assign_solve(N, N, NULL, 0, 1.0, r2c, c2r, NULL), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r2c[i], -1);
    assert_int_equal(c2r[i], -1);
  }
  /* Empty problems. */
  assert_int_equal(npt_assign_solve(0, 0, NULL, 0, 1.0, NULL, NULL, NULL), 0);
  assert_int_equal(npt_assign_solve(0, N, NULL, 0, 1.0, r2c, c2r, NULL), 0);
  assert_int_equal(c2r[N - 1], -1);

  /* One row: the cheapest column, the lowest one among equals. */
  npt_assign_edge row[] = {{0, 4, 0.5}, {0, 2, 0.3}, {0, 5, 0.3}, {0, 1, 0.9}};
  assert_int_equal(npt_assign_solve(1, N, row, 4, 1.0, r2c, c2r, NULL), 0);
  assert_int_equal(r2c[0], 2);
  assert_int_equal(c2r[2], 0);
  assert_int_equal(c2r[5], -1);

  /* One column: the cheapest row. */
  npt_assign_edge col[] = {{3, 0, 0.5}, {1, 0, 0.2}, {4, 0, 0.7}, {0, 0, 0.25}};
  assert_int_equal(npt_assign_solve(N, 1, col, 4, 1.0, r2c, c2r, NULL), 0);
  assert_int_equal(c2r[0], 1);
  assert_int_equal(r2c[1], 0);
  assert_int_equal(r2c[3], -1);

  /* One column wanted equally by several rows: one of them gets it, the same every time. */
  npt_assign_edge tie[] = {{0, 0, 0.4}, {2, 0, 0.4}, {4, 0, 0.4}, {3, 0, 0.6}};
  assert_int_equal(npt_assign_solve(N, 1, tie, 4, 1.0, r2c, c2r, NULL), 0);
  int64_t first = c2r[0];
  assert_true(first == 0 || first == 2 || first == 4);
  for (int t = 0; t < 3; t++) {
    assert_int_equal(npt_assign_solve(N, 1, tie, 4, 1.0, r2c, c2r, NULL), 0);
    assert_int_equal(c2r[0], first);
  }

  /* A cheap pair that blocks two others is kept only while 0.1 + max_cost < 0.9 + 0.9, i.e.
   * while leaving row 1 and column 0 unmatched costs less than matching them. */
  npt_assign_edge cross[] = {{0, 0, 0.9}, {0, 1, 0.1}, {1, 1, 0.9}};
  assert_int_equal(npt_assign_solve(2, 2, cross, 3, 1.0, r2c, c2r, NULL), 0);
  assert_int_equal(r2c[0], 1);
  assert_int_equal(r2c[1], -1);
  assert_int_equal(npt_assign_solve(2, 2, cross, 3, 2.0, r2c, c2r, NULL), 0);
  assert_int_equal(r2c[0], 0);
  assert_int_equal(r2c[1], 1);
}

static void test_invalid(void **state) {
  (void)state;
  int64_t r2c[2], c2r[2];
  npt_assign_edge bad_row[] = {{2, 0, 0.1}};
  npt_assign_edge bad_col[] = {{0, -1, 0.1}};
  npt_assign_edge nan_cost[] = {{0, 0, NAN}};
  npt_assign_edge neg_inf[] = {{0, 0, -INFINITY}};
  npt_assign_edge ok[] = {{0, 0, INFINITY}};
  assert_int_equal(npt_assign_solve(2, 2, bad_row, 1, 1.0, r2c, c2r, NULL), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "outside");
  assert_int_equal(npt_assign_solve(2, 2, bad_col, 1, 1.0, r2c, c2r, NULL), NPT_EINVAL);
  assert_int_equal(npt_assign_solve(2, 2, nan_cost, 1, 1.0, r2c, c2r, NULL), NPT_EINVAL);
  assert_int_equal(npt_assign_solve(2, 2, neg_inf, 1, 1.0, r2c, c2r, NULL), NPT_EINVAL);
  assert_int_equal(npt_assign_solve(2, 2, ok, 1, INFINITY, r2c, c2r, NULL), NPT_EINVAL);
  assert_int_equal(npt_assign_solve(2, 2, ok, 1, 1.0, r2c, c2r, NULL), 0); /* +inf: forbidden */
  assert_int_equal(r2c[0], -1);
}

/* 2000 x 2000, ~10 pairs per row drawn near the diagonal (one giant component and many small
 * ones), against npt_lsa_solve on the extended square matrix that lap.lapjv(extend_cost=True)
 * builds: [C, max/2; max/2, 0], forbidden pairs at a cost no optimum uses. */
static void test_large_vs_dense(void **state) {
  (void)state;
  enum { N = 2000, K = 10, M2 = 2 * N };
  const double max_cost = 0.8, big = 1e6;
  npt_rng g;
  npt_rng_seed(&g, 99, 3);
  npt_assign_edge *e = malloc(N * K * sizeof *e);
  double *dense = malloc((size_t)M2 * M2 * sizeof *dense);
  int64_t *r2c = malloc(N * sizeof *r2c), *c2r = malloc(N * sizeof *c2r);
  int64_t *rows = malloc(M2 * sizeof *rows), *cols = malloc(M2 * sizeof *cols);
  assert_non_null(e);
  assert_non_null(dense);
  size_t n = 0;
  for (int i = 0; i < N; i++)
    for (int k = 0; k < K; k++) {
      /* Half the rows reach far (a giant component), half only their neighbourhood. */
      int span = i % 2 ? N : 8;
      int j = (int)((i + npt_rng_int(&g, -span, span) + 4 * N) % N);
      e[n++] = (npt_assign_edge){i, j, npt_rng_uniform(&g)};
    }
  for (size_t k = 0; k < (size_t)M2 * M2; k++)
    dense[k] = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      dense[(size_t)i * M2 + j] = big;
      dense[(size_t)i * M2 + N + j] = max_cost / 2;
      dense[(size_t)(N + i) * M2 + j] = max_cost / 2;
    }
  for (size_t k = 0; k < n; k++) {
    double *x = &dense[(size_t)e[k].row * M2 + e[k].col];
    if (e[k].cost < *x)
      *x = e[k].cost;
  }
  assert_int_equal(npt_lsa_solve(M2, M2, dense, rows, cols), 0);
  double want = 0;
  for (int k = 0; k < M2; k++)
    want += dense[(size_t)rows[k] * M2 + cols[k]];

  npt_assign_work *w;
  assert_int_equal(npt_assign_work_init(&w), 0);
  assert_int_equal(npt_assign_solve(N, N, e, n, max_cost, r2c, c2r, w), 0);
  double got = 0;
  int matched = 0;
  for (int i = 0; i < N; i++)
    if (r2c[i] >= 0) {
      got += dense[(size_t)i * M2 + r2c[i]];
      matched++;
    }
  got += max_cost / 2 * (double)(2 * N - 2 * matched);
  NPT_ASSERT_NEAR(got, want, 1e-9 * want);
  /* Continuous random costs: the optimum is unique, so the pairs agree too. */
  for (int k = 0; k < N; k++) {
    int64_t j = cols[k] < N ? cols[k] : -1;
    assert_int_equal(r2c[rows[k]], j);
  }
  npt_assign_work_free(w);
  free(e);
  free(dense);
  free(r2c);
  free(c2r);
  free(rows);
  free(cols);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_brute_force_random), cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_degenerate),         cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_large_vs_dense),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
