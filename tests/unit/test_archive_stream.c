/* The streaming video writer (npt_archive_stream_*) against the whole-video writer
 * (npt_archive_add_video, whose tables archive_tables.c computes independently): random rows
 * written both ways, the streamed ones in random pieces (empty ones too), give the same
 * datasets, value for value and attribute for attribute, for every archive.embeddings mode and
 * with the pixel size known or not; a stream that gets fewer or other rows than announced
 * fails.  The same with the detections columns left to the parallel row writer
 * (npt_archive_stream_defer_rows, io/archive_rows.h, here without MPI): the rows dealt to two
 * writers in random runs, each writer's runs written as unions of runs in pieces; runs that
 * overlap or miscount are refused before anything is written. */
#include "npt_test.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/error.h"
#include "common/rng.h"
#include "io/archive.h"
#include "io/archive_rows.h"

enum { T = 60, D = 5, MAXN = 600 };

typedef struct rows {
  int64_t n, frame[MAXN], tid[MAXN];
  float x[MAXN], y[MAXN], w[MAXN], h[MAXN], s[MAXN], e[MAXN * D];
  int32_t cls[MAXN];
} rows;

/* Tracks with ids 3, 7, 8, ... (gaps), each alive over a span, at most once per frame, plus
 * rows in no track. */
static void make_rows(rows *r, npt_rng *g) {
  r->n = 0;
  for (int64_t f = 0; f < T; f++)
    for (int k = 0; k < 8; k++) {
      int alive = f >= k * 5 && f < 20 + k * 5 && npt_rng_uniform(g) < 0.8;
      int stray = k == 7 && npt_rng_uniform(g) < 0.3;
      if (!alive && !stray)
        continue;
      int64_t i = r->n++;
      r->frame[i] = f;
      r->tid[i] = alive ? 3 + 4 * k + (k % 2) : -1;
      r->x[i] = (float)(npt_rng_uniform(g) * 50), r->y[i] = (float)(npt_rng_uniform(g) * 50);
      r->w[i] = (float)(1 + npt_rng_uniform(g) * 9), r->h[i] = (float)(1 + npt_rng_uniform(g) * 9);
      r->s[i] = (float)npt_rng_uniform(g);
      r->cls[i] = 1 + (int32_t)(npt_rng_uniform(g) * 2);
      for (int c = 0; c < D; c++)
        r->e[i * D + c] = (float)(npt_rng_uniform(g) - 0.5);
    }
}

static npt_archive_rows view(const rows *r, int64_t b, int64_t e) {
  return (npt_archive_rows){e - b,    r->frame + b, r->tid + b, r->x + b, r->y + b,    r->w + b,
                            r->h + b, r->s + b,     r->cls + b, D,        r->e + b * D};
}

static npt_archive *open_archive(const char *path, npt_archive_embed_mode m) {
  npt_archive_options opt = {m, 4, 1};
  npt_archive_run run = {"", "m.h5", "00", "cpu", "1 a, 2 b", 2, NULL, 0};
  npt_archive *a = NULL;
  assert_int_equal(npt_archive_open(&a, path, &opt), 0);
  assert_int_equal(npt_archive_set_run(a, &run), 0);
  return a;
}

/* The announced tracks of r: ids increasing, rows each. */
static int64_t track_list(const rows *r, int64_t *ids, int64_t *cnt) {
  int64_t k = 0;
  for (int64_t id = 0; id < 100; id++) {
    int64_t c = 0;
    for (int64_t i = 0; i < r->n; i++)
      c += r->tid[i] == id;
    if (c)
      ids[k] = id, cnt[k++] = c;
  }
  return k;
}

static int compare_attrs(hid_t a, hid_t b, const char *name) {
  int na = H5Aget_num_attrs(a), nb = H5Aget_num_attrs(b);
  if (na != nb)
    fail_msg("%s: %d attributes against %d", name, na, nb);
  for (int i = 0; i < na; i++) {
    hid_t x = H5Aopen_idx(a, (unsigned)i);
    char an[128];
    H5Aget_name(x, sizeof an, an);
    hid_t y = H5Aopen(b, an, H5P_DEFAULT);
    assert_true(y >= 0);
    hid_t tx = H5Aget_type(x), ty = H5Aget_type(y);
    size_t n = H5Aget_storage_size(x);
    assert_int_equal(n, H5Aget_storage_size(y));
    char *bx = calloc(n + 1, 1), *by = calloc(n + 1, 1);
    assert_true(H5Aread(x, tx, bx) >= 0 && H5Aread(y, ty, by) >= 0);
    if (memcmp(bx, by, n))
      fail_msg("%s: attribute %s differs", name, an);
    free(bx), free(by);
    H5Tclose(tx), H5Tclose(ty), H5Aclose(x), H5Aclose(y);
  }
  return 0;
}

typedef struct visit {
  hid_t other;
  int n;
} visit;

static herr_t compare_obj(hid_t loc, const char *name, const H5O_info_t *info, void *ctx) {
  visit *v = ctx;
  hid_t a = H5Oopen(loc, name, H5P_DEFAULT), b = H5Oopen(v->other, name, H5P_DEFAULT);
  if (b < 0)
    fail_msg("%s: missing from the streamed archive", name);
  compare_attrs(a, b, name);
  if (info->type == H5O_TYPE_DATASET) {
    hid_t t = H5Dget_type(a);
    hsize_t na = H5Dget_storage_size(a);
    (void)na;
    hid_t sa = H5Dget_space(a), sb = H5Dget_space(b);
    hssize_t n = H5Sget_simple_extent_npoints(sa);
    assert_int_equal(n, H5Sget_simple_extent_npoints(sb));
    size_t es = H5Tget_size(t);
    char *ba = calloc((size_t)n * es + 1, 1), *bb = calloc((size_t)n * es + 1, 1);
    if (n > 0)
      assert_true(H5Dread(a, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ba) >= 0 &&
                  H5Dread(b, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, bb) >= 0);
    if (memcmp(ba, bb, (size_t)n * es))
      fail_msg("%s: values differ", name);
    free(ba), free(bb);
    H5Sclose(sa), H5Sclose(sb), H5Tclose(t);
    v->n++;
  }
  H5Oclose(a), H5Oclose(b);
  return 0;
}

static void compare_files(const char *pa, const char *pb, int min_datasets) {
  hid_t fa = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT),
        fb = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(fa >= 0 && fb >= 0);
  hid_t ga = H5Gopen2(fa, "videos", H5P_DEFAULT), gb = H5Gopen2(fb, "videos", H5P_DEFAULT);
  visit v = {gb, 0};
  assert_true(H5Ovisit(ga, H5_INDEX_NAME, H5_ITER_INC, compare_obj, &v) >= 0);
  /* And the other way: nothing extra in the streamed one. */
  visit w = {ga, 0};
  assert_true(H5Ovisit(gb, H5_INDEX_NAME, H5_ITER_INC, compare_obj, &w) >= 0);
  assert_true(v.n >= min_datasets);
  H5Gclose(ga), H5Gclose(gb), H5Fclose(fa), H5Fclose(fb);
}

static void test_same_as_whole(void **state) {
  (void)state;
  static rows r;
  npt_rng g;
  npt_rng_seed(&g, 5, 1);
  const char *pa = "stream_whole.h5", *pb = "stream_parts.h5";
  for (int m = 0; m < 3; m++)
    for (int known = 0; known < 2; known++) {
      make_rows(&r, &g);
      npt_archive_video v = {"vid",
                             "v.h5",
                             T,
                             64,
                             64,
                             known ? 10.0 : NAN,
                             known ? 0.5 : NAN,
                             known ? NPT_PIXEL_SOURCE_FILE : NPT_PIXEL_SOURCE_UNKNOWN,
                             0};
      npt_archive *a = open_archive(pa, (npt_archive_embed_mode)m);
      npt_archive_rows all = view(&r, 0, r.n);
      assert_int_equal(npt_archive_add_video(a, &v, &all), 0);
      assert_int_equal(npt_archive_finish(a), 0);
      int64_t ids[100], cnt[100], k = track_list(&r, ids, cnt);
      assert_true(k >= 6);
      npt_archive *b = open_archive(pb, (npt_archive_embed_mode)m);
      npt_archive_stream *s = NULL;
      assert_int_equal(npt_archive_stream_begin(b, &v, r.n, D, k, ids, cnt, &s), 0);
      for (int64_t i = 0; i < r.n;) {
        int64_t n = (int64_t)(npt_rng_uniform(&g) * 40); /* 0 .. 39 rows */
        if (i + n > r.n)
          n = r.n - i;
        npt_archive_rows piece = view(&r, i, i + n);
        assert_int_equal(npt_archive_stream_write(s, &piece), 0);
        i += n;
      }
      assert_int_equal(npt_archive_stream_end(s), 0);
      npt_archive_stream_free(s);
      assert_int_equal(npt_archive_finish(b), 0);
      compare_files(pa, pb, m == 2 ? 30 : 28);
    }
  unlink(pa), unlink(pb);
}

/* Rows r[b[0]..b[1]), r[b[2]..b[3]), ... (nb runs) gathered in table order into `out`. */
static void gather(const rows *r, const int64_t *b, int nb, rows *out, int64_t *off, int64_t *cnt) {
  out->n = 0;
  for (int j = 0; j < nb; j++) {
    off[j] = b[2 * j], cnt[j] = b[2 * j + 1] - b[2 * j];
    for (int64_t i = b[2 * j]; i < b[2 * j + 1]; i++) {
      int64_t k = out->n++;
      out->frame[k] = r->frame[i], out->tid[k] = r->tid[i], out->x[k] = r->x[i];
      out->y[k] = r->y[i], out->w[k] = r->w[i], out->h[k] = r->h[i], out->s[k] = r->s[i];
      out->cls[k] = r->cls[i];
      memcpy(out->e + k * D, r->e + i * D, sizeof(float) * D);
    }
  }
}

static void test_deferred_rows(void **state) {
  (void)state;
  static rows r, piece;
  npt_rng g;
  npt_rng_seed(&g, 7, 1);
  const char *pa = "defer_whole.h5", *pb = "defer_parts.h5";
  for (int m = 0; m < 3; m++) {
    make_rows(&r, &g);
    npt_archive_video v = {"vid",
                           "v.h5",
                           T,
                           64,
                           64,
                           10.0,
                           m == 1 ? NAN : 0.5,
                           m == 1 ? NPT_PIXEL_SOURCE_UNKNOWN : NPT_PIXEL_SOURCE_FILE,
                           0};
    npt_archive *a = open_archive(pa, (npt_archive_embed_mode)m);
    npt_archive_rows all = view(&r, 0, r.n);
    assert_int_equal(npt_archive_add_video(a, &v, &all), 0);
    assert_int_equal(npt_archive_finish(a), 0);
    int64_t ids[100], cnt[100], k = track_list(&r, ids, cnt);
    npt_archive *b = open_archive(pb, (npt_archive_embed_mode)m);
    npt_archive_stream *s = NULL;
    assert_int_equal(npt_archive_stream_begin(b, &v, r.n, D, k, ids, cnt, &s), 0);
    npt_archive_stream_defer_rows(s);
    assert_int_equal(npt_archive_stream_write(s, &all), 0);
    assert_int_equal(npt_archive_stream_end(s), 0);
    npt_archive_stream_free(s);
    assert_int_equal(npt_archive_suspend(b), 0);
    /* Runs of 1 to 20 rows dealt to writers 0 and 1 in turn; each writer's runs in pieces of
     * up to 3 runs (unions of runs that are not next to each other). */
    int64_t runs[2][2 * MAXN], poff[3], pcnt[3];
    int nr[2] = {0, 0};
    for (int64_t i = 0, w = 0; i < r.n; w ^= 1) {
      int64_t n = 1 + (int64_t)(npt_rng_uniform(&g) * 20);
      n = i + n > r.n ? r.n - i : n;
      runs[w][2 * nr[w]] = i, runs[w][2 * nr[w] + 1] = i + n, nr[w]++;
      i += n;
    }
    assert_true(nr[0] >= 3 && nr[1] >= 3);
    npt_archive_rows_file *f = NULL;
    assert_int_equal(npt_archive_rows_open(&f, npt_archive_temp_path(b), pb, MPI_COMM_NULL), 0);
    assert_int_equal(npt_archive_rows_video(f, "vid"), 0);
    /* Refused before writing: runs out of order, a count that is not the rows'. */
    gather(&r, runs[0], 2, &piece, poff, pcnt);
    int64_t swapped_off[2] = {poff[1], poff[0]};
    npt_archive_rows pv = view(&piece, 0, piece.n);
    assert_int_equal(npt_archive_rows_prepare(f, &pv, 2, swapped_off, pcnt), NPT_EINVAL);
    pv.n--;
    assert_int_equal(npt_archive_rows_prepare(f, &pv, 2, poff, pcnt), NPT_EINVAL);
    for (int w = 0; w < 2; w++)
      for (int j = 0; j < nr[w]; j += 3) {
        int nb = nr[w] - j < 3 ? nr[w] - j : 3;
        gather(&r, runs[w] + 2 * j, nb, &piece, poff, pcnt);
        pv = view(&piece, 0, piece.n);
        assert_int_equal(npt_archive_rows_prepare(f, &pv, nb, poff, pcnt), 0);
        assert_int_equal(npt_archive_rows_write(f), 0);
      }
    /* A writer with nothing (under MPI: a rank that holds no chunk of the video). */
    pv = view(&piece, 0, 0);
    assert_int_equal(npt_archive_rows_prepare(f, &pv, 0, poff, pcnt), 0);
    assert_int_equal(npt_archive_rows_write(f), 0);
    assert_int_equal(npt_archive_rows_close(f), 0);
    assert_int_equal(npt_archive_resume(b), 0);
    assert_int_equal(npt_archive_finish(b), 0);
    compare_files(pa, pb, m == 2 ? 30 : 28);
  }
  unlink(pa), unlink(pb);
}

static void test_wrong_rows(void **state) {
  (void)state;
  static rows r;
  npt_rng g;
  npt_rng_seed(&g, 6, 1);
  make_rows(&r, &g);
  npt_archive_video v = {"vid", "v.h5", T, 64, 64, NAN, NAN, NPT_PIXEL_SOURCE_UNKNOWN, 0};
  int64_t ids[100], cnt[100], k = track_list(&r, ids, cnt);
  /* Fewer rows than announced. */
  npt_archive *b = open_archive("stream_bad.h5", NPT_ARCHIVE_EMBED_TRACK);
  npt_archive_stream *s = NULL;
  assert_int_equal(npt_archive_stream_begin(b, &v, r.n, D, k, ids, cnt, &s), 0);
  npt_archive_rows part = view(&r, 0, r.n - 1);
  assert_int_equal(npt_archive_stream_write(s, &part), 0);
  assert_int_equal(npt_archive_stream_end(s), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "rows written of the");
  npt_archive_stream_free(s);
  npt_archive_abort(b);
  /* A track that was not announced. */
  b = open_archive("stream_bad.h5", NPT_ARCHIVE_EMBED_TRACK);
  assert_int_equal(npt_archive_stream_begin(b, &v, r.n, D, k - 1, ids + 1, cnt + 1, &s), 0);
  npt_archive_rows all = view(&r, 0, r.n);
  assert_int_equal(npt_archive_stream_write(s, &all), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "track_id not announced");
  npt_archive_stream_free(s);
  npt_archive_abort(b);
  assert_int_equal(access("stream_bad.h5", F_OK), -1);
}

/* The events table: written, read back the same; ids not in the tracks table, events out of
 * frame order, an unknown kind or an event without a child are refused. */
static void test_events(void **state) {
  (void)state;
  static rows r;
  npt_rng g;
  npt_rng_seed(&g, 8, 1);
  make_rows(&r, &g);
  npt_archive_video v = {"vid", "v.h5", T, 64, 64, NAN, NAN, NPT_PIXEL_SOURCE_UNKNOWN, 0};
  npt_archive_rows all = view(&r, 0, r.n);
  /* Tracks 3, 8, 11, 16, ...: a merge 3 + 8 -> 11 at frame 10, a split 11 -> 16, 19 at 20. */
  int64_t frame[2] = {10, 20}, po[3] = {0, 2, 3}, pi[3] = {3, 8, 11}, co[3] = {0, 1, 3},
          ci[3] = {11, 16, 19};
  int32_t kind[2] = {NPT_ARCHIVE_EVENT_MERGE, NPT_ARCHIVE_EVENT_SPLIT};
  npt_archive_events e = {2, frame, kind, po, pi, co, ci, 1, 0};
  npt_archive *a = open_archive("events.h5", NPT_ARCHIVE_EMBED_NONE);
  assert_int_equal(npt_archive_add_video(a, &v, &all), 0);
  assert_int_equal(npt_archive_write_events(a, "vid", &e), 0);
  assert_int_equal(npt_archive_write_events(a, "vid", &e), NPT_EINVAL);
  npt_archive_abort(a);
  a = open_archive("events.h5", NPT_ARCHIVE_EMBED_NONE);
  assert_int_equal(npt_archive_add_video(a, &v, &all), 0);
  assert_int_equal(npt_archive_write_events(a, "vid", &e), 0);
  assert_int_equal(npt_archive_finish(a), 0);
  npt_archive_file *f = NULL;
  assert_int_equal(npt_archive_file_open(&f, "events.h5"), 0);
  int vi = npt_archive_file_find_video(f, "vid");
  assert_int_equal(npt_archive_file_video_info(f, vi)->n_events, 2);
  npt_archive_events_cols c;
  assert_int_equal(npt_archive_file_read_events(f, vi, &c), 0);
  assert_int_equal(c.n, 2);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(c.parent_offsets[i], po[i]);
    assert_int_equal(c.child_offsets[i], co[i]);
    assert_int_equal(c.parent_ids[i], pi[i]);
    assert_int_equal(c.child_ids[i], ci[i]);
  }
  assert_int_equal(c.frame[1], 20);
  assert_int_equal(c.kind[1], NPT_ARCHIVE_EVENT_SPLIT);
  npt_archive_events_cols_free(&c);
  npt_archive_file_close(f);
  unlink("events.h5");
  /* Refused: each case on a fresh archive (an error stops the archive). */
  struct {
    int64_t *slot, bad;
    const char *msg;
  } cases[] = {{&pi[1], 9, "parent id that is not in the tracks table"},
               {&ci[2], 100, "child id that is not in the tracks table"},
               {&frame[1], 5, "not in frame order"},
               {&frame[1], T, "frame outside the video"},
               {&co[1], 0, "no child"}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t keep = *cases[k].slot;
    *cases[k].slot = cases[k].bad;
    a = open_archive("events_bad.h5", NPT_ARCHIVE_EMBED_NONE);
    assert_int_equal(npt_archive_add_video(a, &v, &all), 0);
    assert_int_equal(npt_archive_write_events(a, "vid", &e), NPT_EINVAL);
    NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), cases[k].msg);
    assert_int_equal(npt_archive_finish(a), NPT_EINVAL);
    *cases[k].slot = keep;
  }
  kind[0] = 3;
  a = open_archive("events_bad.h5", NPT_ARCHIVE_EMBED_NONE);
  assert_int_equal(npt_archive_add_video(a, &v, &all), 0);
  assert_int_equal(npt_archive_write_events(a, "vid", &e), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "kind neither");
  npt_archive_abort(a);
  assert_int_equal(access("events_bad.h5", F_OK), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_as_whole),
      cmocka_unit_test(test_deferred_rows),
      cmocka_unit_test(test_wrong_rows),
      cmocka_unit_test(test_events),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
