/* Decoding on constructed head outputs: the peak test (adjacent peaks, borders, plateaus and
 * ties, padding), threshold, top-K and saturation, deterministic order, box coordinates (the
 * convention of docs/formats.md, round trip) and embedding normalisation. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "nn/decode.h"
#include "npt_test.h"

enum { MAXB = 2 };

/* A fake model's heads and one batch of head outputs, all zero until a test writes them. */
typedef struct fixture {
  npt_tensor_info tensors[4];
  npt_graph g;
  npt_head_outputs out;
  float *heat, *size, *offset, *embed;
  int C, D, H, W, s;
} fixture;

static fixture *fx_new(int C, int D, int H, int W, int s) {
  fixture *f = calloc(1, sizeof *f);
  f->C = C, f->D = D, f->H = H, f->W = W, f->s = s;
  f->tensors[0] = (npt_tensor_info){"heatmap", C, s};
  f->tensors[1] = (npt_tensor_info){"size", 2, s};
  f->tensors[2] = (npt_tensor_info){"offset", 2, s};
  f->tensors[3] = (npt_tensor_info){"embed", D, s};
  f->g.n_tensors = 4;
  f->g.tensors = f->tensors;
  f->g.n_classes = C;
  f->g.path = "fake.h5";
  f->g.heads = (npt_heads){0, 1, 2, D > 0 ? 3 : -1, D, s};
  size_t plane = (size_t)H * W;
  f->heat = calloc(MAXB * C * plane, sizeof(float));
  f->size = calloc(MAXB * 2 * plane, sizeof(float));
  f->offset = calloc(MAXB * 2 * plane, sizeof(float));
  f->embed = D > 0 ? calloc(MAXB * (size_t)D * plane, sizeof(float)) : NULL;
  f->out = (npt_head_outputs){f->heat, f->size, f->offset, f->embed, MAXB, H, W};
  return f;
}

static void fx_free(fixture *f) {
  free(f->heat);
  free(f->size);
  free(f->offset);
  free(f->embed);
  free(f);
}

static float *H(fixture *f, int b, int c, int i, int j) {
  return &f->heat[(((size_t)b * f->C + c) * f->H + i) * f->W + j];
}

/* Sets the size and offset heads at a cell. */
static void set_box(fixture *f, int b, int i, int j, float ox, float oy, float w, float h) {
  size_t plane = (size_t)f->H * f->W, at = (size_t)i * f->W + j;
  f->offset[(size_t)b * 2 * plane + at] = ox;
  f->offset[((size_t)b * 2 + 1) * plane + at] = oy;
  f->size[(size_t)b * 2 * plane + at] = w;
  f->size[((size_t)b * 2 + 1) * plane + at] = h;
}

/* Decodes frame b (frame_h x frame_w px) into a fresh list; returns the status. */
static int decode(fixture *f, int b, int fh, int fw, float thr, int k, int kernel, npt_dets *d,
                  int *sat) {
  npt_dets_init(d, f->D);
  npt_decode_params p = {thr, k, kernel, 0.0, 0};
  return npt_decode_frame(&f->g, &f->out, b, fh, fw, 7, &p, d, sat);
}

static int full(fixture *f, float thr, int k, int kernel, npt_dets *d, int *sat) {
  return decode(f, 0, f->H * f->s, f->W * f->s, thr, k, kernel, d, sat);
}

/* The cell (i, j) of a detection decoded with zero offsets. */
static void cell_of(const fixture *f, const npt_detection *d, int *i, int *j) {
  double half = 0.5 * (f->s - 1);
  *j = (int)lround((d->x + d->w / 2 - half) / f->s);
  *i = (int)lround((d->y + d->h / 2 - half) / f->s);
}

static void test_single_peak_box(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 8, 8, 4);
  *H(f, 0, 0, 2, 3) = 0.9f;
  set_box(f, 0, 2, 3, 0.25f, 0.5f, 6.0f, 8.0f);
  npt_dets d;
  int sat = -1;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(sat, 0);
  assert_int_equal(d.n, 1);
  /* cx = 4 * (3 + 0.25) + 1.5 = 14.5, cy = 4 * (2 + 0.5) + 1.5 = 11.5. */
  NPT_ASSERT_NEAR(d.det[0].x, 14.5 - 3.0, 1e-5);
  NPT_ASSERT_NEAR(d.det[0].y, 11.5 - 4.0, 1e-5);
  NPT_ASSERT_NEAR(d.det[0].w, 6.0, 0);
  NPT_ASSERT_NEAR(d.det[0].h, 8.0, 0);
  NPT_ASSERT_NEAR(d.det[0].score, 0.9f, 0);
  assert_int_equal(d.det[0].cls, 1);
  assert_int_equal(d.det[0].frame, 7);
  npt_dets_free(&d);
  fx_free(f);
}

/* Stride 1, zero offset: a particle covering columns c0..c1-1 has x = c0 - 0.5 and w = c1 - c0
 * (docs/formats.md).  Stride 4: the cell covering pixels 4..7 has its centre at 5.5. */
static void test_pixel_centre_convention(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 16, 16, 1);
  /* Columns 3..7 and rows 2..4: centre (5, 3), size 5 x 3. */
  *H(f, 0, 0, 3, 5) = 1.0f;
  set_box(f, 0, 3, 5, 0, 0, 5, 3);
  npt_dets d;
  int sat;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  NPT_ASSERT_NEAR(d.det[0].x, 3 - 0.5, 1e-6);
  NPT_ASSERT_NEAR(d.det[0].y, 2 - 0.5, 1e-6);
  npt_dets_free(&d);
  fx_free(f);

  f = fx_new(1, 0, 4, 4, 4);
  *H(f, 0, 0, 1, 1) = 1.0f;
  set_box(f, 0, 1, 1, 0, 0, 4, 4); /* exactly pixels 4..7 in both directions */
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  NPT_ASSERT_NEAR(d.det[0].x, 4 - 0.5, 1e-6);
  NPT_ASSERT_NEAR(d.det[0].y, 4 - 0.5, 1e-6);
  npt_dets_free(&d);
  fx_free(f);
}

/* Boxes encoded the way a trainer would (centre cell, sub-cell offset) come back exactly. */
static void test_coordinates_round_trip(void **state) {
  (void)state;
  const int strides[] = {1, 2, 4, 8};
  for (int si = 0; si < 4; si++) {
    int s = strides[si];
    fixture *f = fx_new(2, 0, 32, 32, s);
    srand(11 + s);
    double truth[6][4];
    for (int k = 0; k < 6; k++) {
      /* Centres on a coarse grid of cells (5 apart) so that peaks never interact. */
      int i = 2 + 5 * (k / 3), j = 2 + 5 * (k % 3);
      double ox = rand() / (RAND_MAX + 1.0), oy = rand() / (RAND_MAX + 1.0);
      double cx = s * (j + ox) + 0.5 * (s - 1), cy = s * (i + oy) + 0.5 * (s - 1);
      double w = 3 + 10.0 * rand() / RAND_MAX, h = 3 + 10.0 * rand() / RAND_MAX;
      truth[k][0] = cx - w / 2, truth[k][1] = cy - h / 2, truth[k][2] = w, truth[k][3] = h;
      *H(f, 0, k % 2, i, j) = 0.5f + 0.05f * (float)k;
      set_box(f, 0, i, j, (float)ox, (float)oy, (float)w, (float)h);
    }
    npt_dets d;
    int sat;
    assert_int_equal(full(f, 0.1f, 100, 3, &d, &sat), 0);
    assert_int_equal(d.n, 6);
    for (int n = 0; n < 6; n++) {
      int k = 5 - n; /* descending score */
      assert_int_equal(d.det[n].cls, k % 2 + 1);
      NPT_ASSERT_NEAR(d.det[n].x, truth[k][0], 1e-4 * s);
      NPT_ASSERT_NEAR(d.det[n].y, truth[k][1], 1e-4 * s);
      NPT_ASSERT_NEAR(d.det[n].w, truth[k][2], 1e-5);
      NPT_ASSERT_NEAR(d.det[n].h, truth[k][3], 1e-5);
    }
    npt_dets_free(&d);
    fx_free(f);
  }
}

/* Adjacent cells: the window keeps the higher one only; one cell between them keeps both with a
 * 3x3 window and one with 5x5; a 1x1 window keeps every cell above the threshold. */
static void test_adjacent_peaks(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 10, 10, 4);
  *H(f, 0, 0, 4, 4) = 0.8f;
  *H(f, 0, 0, 5, 5) = 0.9f; /* diagonal neighbour */
  npt_dets d;
  int sat, i, j;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  cell_of(f, &d.det[0], &i, &j);
  assert_int_equal(i, 5);
  assert_int_equal(j, 5);
  npt_dets_free(&d);
  assert_int_equal(full(f, 0.5f, 10, 1, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  npt_dets_free(&d);

  *H(f, 0, 0, 4, 4) = 0;
  *H(f, 0, 0, 5, 3) = 0.8f; /* two columns away */
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  npt_dets_free(&d);
  assert_int_equal(full(f, 0.5f, 10, 5, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  npt_dets_free(&d);
  fx_free(f);
}

/* Peaks in corners and on edges: the window is clipped, not wrapped or read out of bounds. */
static void test_border_peaks(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 6, 7, 2);
  *H(f, 0, 0, 0, 0) = 0.6f;
  *H(f, 0, 0, 0, 6) = 0.7f;
  *H(f, 0, 0, 5, 0) = 0.8f;
  *H(f, 0, 0, 5, 6) = 0.9f;
  *H(f, 0, 0, 3, 6) = 0.65f;
  npt_dets d;
  int sat;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 5);
  npt_dets_free(&d);
  assert_int_equal(full(f, 0.5f, 10, 5, &d, &sat), 0); /* (3,6) and (5,6) share a 5x5 window */
  assert_int_equal(d.n, 4);
  npt_dets_free(&d);
  fx_free(f);
}

/* Equal values: a plateau gives exactly one peak, its lowest-index cell, whatever its shape or
 * size; separate plateaus of the same value give one each. */
static void test_plateaus_and_ties(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 12, 30, 4);
  npt_dets d;
  int sat, i, j;
  /* A 2x2 block. */
  for (int y = 3; y < 5; y++)
    for (int x = 6; x < 8; x++)
      *H(f, 0, 0, y, x) = 0.7f;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  cell_of(f, &d.det[0], &i, &j);
  assert_int_equal(i * 100 + j, 306);
  npt_dets_free(&d);
  memset(f->heat, 0, sizeof(float) * 12 * 30);

  /* A row of three, then a row of 25 starting further left: the cell (2, 1) has no lower-index
   * plateau cell in its own 3x3 window, yet it is part of the same plateau. */
  for (int x = 10; x < 13; x++)
    *H(f, 0, 0, 1, x) = 1.0f;
  for (int x = 1; x < 26; x++)
    *H(f, 0, 0, 2, x) = 1.0f;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  cell_of(f, &d.det[0], &i, &j);
  assert_int_equal(i * 100 + j, 110);
  npt_dets_free(&d);

  /* The same value far away is another plateau; a diagonal touch joins plateaus. */
  *H(f, 0, 0, 9, 28) = 1.0f;
  *H(f, 0, 0, 10, 29) = 1.0f;
  *H(f, 0, 0, 6, 15) = 1.0f;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 3);
  npt_dets_free(&d);

  /* A plateau on a shoulder of a higher cell: still one peak, at its lowest-index candidate
   * (cells next to the higher one are not candidates). */
  memset(f->heat, 0, sizeof(float) * 12 * 30);
  for (int x = 2; x < 9; x++)
    *H(f, 0, 0, 5, x) = 0.6f;
  *H(f, 0, 0, 4, 2) = 0.9f;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  cell_of(f, &d.det[1], &i, &j);
  assert_int_equal(i * 100 + j, 504);
  npt_dets_free(&d);
  fx_free(f);
}

/* Top-K over classes: the K best by score, ties by (class, index); more than K sets saturated. */
static void test_top_k_and_saturation(void **state) {
  (void)state;
  fixture *f = fx_new(2, 0, 10, 10, 4);
  *H(f, 0, 1, 1, 1) = 0.9f;
  *H(f, 0, 0, 1, 1) = 0.9f; /* same cell, same score, class 1 before class 2 */
  *H(f, 0, 0, 5, 5) = 0.6f;
  *H(f, 0, 0, 8, 1) = 0.6f; /* same score, higher index */
  *H(f, 0, 1, 8, 8) = 0.7f;
  npt_dets d;
  int sat, i, j;
  assert_int_equal(full(f, 0.5f, 5, 3, &d, &sat), 0);
  assert_int_equal(sat, 0);
  assert_int_equal(d.n, 5);
  npt_dets_free(&d);
  assert_int_equal(full(f, 0.5f, 4, 3, &d, &sat), 0);
  assert_int_equal(sat, 1);
  assert_int_equal(d.n, 4);
  const int want_cls[4] = {1, 2, 2, 1}, want_cell[4] = {101, 101, 808, 505};
  for (int k = 0; k < 4; k++) {
    assert_int_equal(d.det[k].cls, want_cls[k]);
    cell_of(f, &d.det[k], &i, &j);
    assert_int_equal(i * 100 + j, want_cell[k]);
  }
  npt_dets_free(&d);
  assert_int_equal(full(f, 0.5f, 1, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.det[0].cls, 1);
  npt_dets_free(&d);
  fx_free(f);
}

/* value >= threshold is kept; the next float below is not. */
static void test_threshold_edge(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 8, 8, 4);
  const float thr = 0.3f;
  *H(f, 0, 0, 1, 1) = thr;
  *H(f, 0, 0, 5, 5) = nextafterf(thr, 0.0f);
  *H(f, 0, 0, 1, 5) = NAN; /* a NaN is never a peak and never suppresses one */
  *H(f, 0, 0, 1, 6) = 0.5f;
  npt_dets d;
  int sat;
  assert_int_equal(full(f, thr, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  NPT_ASSERT_NEAR(d.det[1].score, thr, 0);
  npt_dets_free(&d);
  fx_free(f);
}

/* A 13 x 10 px frame at stride 4 maps onto 4 x 3 cells of a 5 x 4 output: peaks in the padding
 * are dropped, and a high padding value does not suppress the frame's own border peak. */
static void test_padding(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 5, 4, 4);
  *H(f, 0, 0, 4, 1) = 0.9f; /* row 4: pixels 16..19, outside 13 rows */
  *H(f, 0, 0, 1, 3) = 0.9f; /* column 3: pixels 12..15, outside 10 columns */
  *H(f, 0, 0, 3, 2) = 0.6f; /* last valid cell, next to the padding */
  *H(f, 0, 0, 3, 3) = 0.95f;
  /* Its decoded centre (13.5) lies in the padding: it stays for a box with >= 2 px in view. */
  set_box(f, 0, 3, 2, 0.0f, 0.0f, 6.0f, 6.0f);
  npt_dets d;
  int sat, i, j;
  assert_int_equal(decode(f, 0, 13, 10, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  cell_of(f, &d.det[0], &i, &j);
  assert_int_equal(i * 100 + j, 302);
  npt_dets_free(&d);
  /* 16 x 16 px: everything is inside; (3,2) is now next to the higher (3,3). */
  assert_int_equal(decode(f, 0, 16, 16, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  npt_dets_free(&d);
  fx_free(f);
}

/* Rule 3a: a decoded centre outside the frame is kept only when its box covers >= 2 px of the
 * frame along both axes; a centre inside is always kept, even with a zero box.  A 20 x 20 px
 * frame at stride 2 (10 x 10 cells, frame spans -0.5 .. 19.5). */
static void test_centre_outside_frame(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 10, 10, 2);
  /* (0, 0): centre (0.5 - 2, 0.5) = (-1.5, 0.5); box 7 wide reaches x = 2.0: 2.5 px in view. */
  *H(f, 0, 0, 0, 0) = 0.9f;
  set_box(f, 0, 0, 0, -1.0f, 0.0f, 7.0f, 7.0f);
  /* (0, 5): centre y = -1.5; box 5 tall reaches y = 1.0: 1.5 px in view: dropped. */
  *H(f, 0, 0, 0, 5) = 0.8f;
  set_box(f, 0, 0, 5, 0.0f, -1.0f, 5.0f, 5.0f);
  /* (9, 9): centre (19.5, 19.5), exactly on the frame's edge: inside, kept with a zero box. */
  *H(f, 0, 0, 9, 9) = 0.7f;
  set_box(f, 0, 9, 9, 0.5f, 0.5f, 0.0f, 0.0f);
  /* (5, 9): centre x = 19.5 + 2 = 21.5 with a 3 px box: nothing in view: dropped. */
  *H(f, 0, 0, 5, 9) = 0.6f;
  set_box(f, 0, 5, 9, 1.5f, 0.0f, 3.0f, 3.0f);
  /* (9, 0): centre y = 2 (9 + 3.5) + 0.5 = 25.5, box 16 tall reaches y = 17.5: exactly 2 px in
   * view: kept. */
  *H(f, 0, 0, 9, 0) = 0.5f;
  set_box(f, 0, 9, 0, 0.0f, 3.5f, 4.0f, 16.0f);
  npt_dets d;
  int sat;
  assert_int_equal(decode(f, 0, 20, 20, 0.3f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 3); /* rows by score: (0, 0), (9, 9), (9, 0) */
  const float want[3] = {0.9f, 0.7f, 0.5f};
  for (int k = 0; k < 3; k++)
    NPT_ASSERT_NEAR(d.det[k].score, want[k], 0);
  NPT_ASSERT_NEAR(d.det[0].x, -1.5 - 3.5, 1e-6);
  NPT_ASSERT_NEAR(d.det[2].y, 17.5, 1e-6);
  npt_dets_free(&d);
  fx_free(f);
}

/* Random heatmaps: two runs agree bit for bit, the order is (score desc, class, index), every
 * detection is a window maximum, and frame b reads its own planes. */
static void test_deterministic_order(void **state) {
  (void)state;
  fixture *f = fx_new(3, 4, 24, 20, 2);
  srand(5);
  size_t plane = 24 * 20;
  for (size_t k = 0; k < MAXB * 3 * plane; k++)
    f->heat[k] = (float)(rand() % 50) / 50.0f; /* coarse values: many ties */
  for (size_t k = 0; k < MAXB * 4 * plane; k++)
    f->embed[k] = (float)rand() / RAND_MAX - 0.5f;
  npt_dets a, b, c;
  int sat;
  assert_int_equal(decode(f, 1, 48, 40, 0.2f, 1000, 3, &a, &sat), 0);
  assert_int_equal(decode(f, 1, 48, 40, 0.2f, 1000, 3, &b, &sat), 0);
  assert_true(a.n > 20);
  assert_int_equal(a.n, b.n);
  assert_memory_equal(a.det, b.det, (size_t)a.n * sizeof *a.det);
  assert_memory_equal(a.embed, b.embed, (size_t)a.n * 4 * sizeof(float));
  for (int64_t k = 1; k < a.n; k++) {
    const npt_detection *p = &a.det[k - 1], *q = &a.det[k];
    int pi, pj, qi, qj;
    cell_of(f, p, &pi, &pj);
    cell_of(f, q, &qi, &qj);
    int later = p->score > q->score ||
                (p->score == q->score &&
                 (p->cls < q->cls || (p->cls == q->cls && pi * 20 + pj < qi * 20 + qj)));
    if (!later)
      fail_msg("detections %lld and %lld are out of order", (long long)k - 1, (long long)k);
  }
  for (int64_t k = 0; k < a.n; k++) {
    int i, j;
    cell_of(f, &a.det[k], &i, &j);
    for (int y = i - 1; y <= i + 1; y++)
      for (int x = j - 1; x <= j + 1; x++)
        if (y >= 0 && y < 24 && x >= 0 && x < 20)
          assert_true(*H(f, 1, a.det[k].cls - 1, y, x) <= a.det[k].score);
    NPT_ASSERT_NEAR(a.det[k].score, *H(f, 1, a.det[k].cls - 1, i, j), 0);
  }
  /* Frame 0 has other values, so other detections. */
  assert_int_equal(decode(f, 0, 48, 40, 0.2f, 1000, 3, &c, &sat), 0);
  assert_true(c.n != a.n || memcmp(c.det, a.det, (size_t)a.n * sizeof *a.det) != 0);
  npt_dets_free(&a);
  npt_dets_free(&b);
  npt_dets_free(&c);
  fx_free(f);
}

/* Embeddings are gathered at the peak's cell of the right frame and L2-normalised; a zero
 * vector stays zero (no division by zero); lists without embeddings get none. */
static void test_embedding_normalisation(void **state) {
  (void)state;
  fixture *f = fx_new(1, 3, 6, 6, 4);
  size_t plane = 36, at1 = 1 * 6 + 2;
  *H(f, 1, 0, 1, 2) = 0.9f;
  *H(f, 1, 0, 4, 4) = 0.8f;
  float *e1 = f->embed + 3 * plane; /* frame 1 */
  e1[0 * plane + at1] = 3, e1[1 * plane + at1] = 0, e1[2 * plane + at1] = -4;
  e1[0 * plane + at1 + 1] = 100; /* the neighbour cell must not leak in */
  npt_dets d;
  int sat;
  assert_int_equal(decode(f, 1, 24, 24, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  NPT_ASSERT_NEAR(d.embed[0], 0.6, 1e-7);
  NPT_ASSERT_NEAR(d.embed[1], 0.0, 0);
  NPT_ASSERT_NEAR(d.embed[2], -0.8, 1e-7);
  for (int k = 0; k < 3; k++)
    assert_true(d.embed[3 + k] == 0.0f && !signbit(d.embed[3 + k]));
  npt_dets_free(&d);

  /* Tiny values still normalise to unit length (no underflow in the sum of squares). */
  e1[0 * plane + at1] = 3e-30f, e1[2 * plane + at1] = -4e-30f;
  assert_int_equal(decode(f, 1, 24, 24, 0.5f, 10, 3, &d, &sat), 0);
  NPT_ASSERT_NEAR(d.embed[0], 0.6, 1e-6);
  npt_dets_free(&d);

  npt_dets_init(&d, 0);
  npt_decode_params p = {0.5f, 10, 3, 0.0, 0};
  assert_int_equal(npt_decode_frame(&f->g, &f->out, 1, 24, 24, 0, &p, &d, &sat), 0);
  assert_int_equal(d.n, 2);
  assert_null(d.embed);
  npt_dets_free(&d);
  npt_dets_init(&d, 5); /* the model gives 3 */
  assert_int_equal(npt_decode_frame(&f->g, &f->out, 1, 24, 24, 0, &p, &d, &sat), NPT_EINVAL);
  npt_dets_free(&d);
  fx_free(f);
}

/* Broken head values never make broken boxes: negative or NaN sizes become 0, NaN offsets 0. */
static void test_bad_head_values(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 6, 6, 4);
  *H(f, 0, 0, 2, 2) = 0.9f;
  set_box(f, 0, 2, 2, NAN, INFINITY, -3.0f, NAN);
  npt_dets d;
  int sat;
  assert_int_equal(full(f, 0.5f, 10, 3, &d, &sat), 0);
  assert_int_equal(d.n, 1);
  NPT_ASSERT_NEAR(d.det[0].x, 9.5, 0);
  NPT_ASSERT_NEAR(d.det[0].y, 9.5, 0);
  NPT_ASSERT_NEAR(d.det[0].w, 0, 0);
  NPT_ASSERT_NEAR(d.det[0].h, 0, 0);
  npt_dets_free(&d);
  fx_free(f);
}

static void test_invalid_arguments(void **state) {
  (void)state;
  fixture *f = fx_new(1, 0, 6, 6, 4);
  npt_dets d;
  int sat;
  assert_int_equal(full(f, 0.5f, 10, 2, &d, &sat), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "peak_kernel odd");
  assert_int_equal(full(f, 0.5f, 0, 3, &d, &sat), NPT_EINVAL);
  assert_int_equal(full(f, NAN, 10, 3, &d, &sat), NPT_EINVAL);
  assert_int_equal(decode(f, 0, 25, 24, 0.5f, 10, 3, &d, &sat), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "does not fit");
  assert_int_equal(decode(f, 2, 24, 24, 0.5f, 10, 3, &d, &sat), NPT_EINVAL);
  npt_dets_free(&d);
  fx_free(f);
}

/* The list itself: reserve grows, clear keeps the memory, free resets. */
static void test_dets_list(void **state) {
  (void)state;
  npt_dets d;
  npt_dets_init(&d, 2);
  assert_int_equal(npt_dets_reserve(&d, 1000), 0);
  assert_true(d.cap >= 1000);
  d.n = 1000;
  d.embed[2 * 999 + 1] = 1.0f;
  assert_int_equal(npt_dets_reserve(&d, 1), 0);
  assert_true(d.cap >= 1001);
  NPT_ASSERT_NEAR(d.embed[2 * 999 + 1], 1.0, 0);
  npt_dets_clear(&d);
  assert_int_equal(d.n, 0);
  assert_true(d.cap >= 1001);
  assert_int_equal(npt_dets_reserve(&d, -1), NPT_EINVAL);
  npt_dets_free(&d);
  assert_int_equal(d.n, 0);
  assert_null(d.det);
  assert_int_equal(d.embed_dim, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_peak_box),
      cmocka_unit_test(test_pixel_centre_convention),
      cmocka_unit_test(test_coordinates_round_trip),
      cmocka_unit_test(test_adjacent_peaks),
      cmocka_unit_test(test_border_peaks),
      cmocka_unit_test(test_plateaus_and_ties),
      cmocka_unit_test(test_top_k_and_saturation),
      cmocka_unit_test(test_threshold_edge),
      cmocka_unit_test(test_padding),
      cmocka_unit_test(test_centre_outside_frame),
      cmocka_unit_test(test_deterministic_order),
      cmocka_unit_test(test_embedding_normalisation),
      cmocka_unit_test(test_bad_head_values),
      cmocka_unit_test(test_invalid_arguments),
      cmocka_unit_test(test_dets_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
