/* The chunk plan (src/pipeline/chunk_plan.h): against its definition, checked by brute force
 * over many lengths, chunk sizes and overlaps (coverage, overlaps of exactly O frames, owned
 * frames tiling each video once, the fewest chunks), the global order over several videos, and
 * the settings' checks. */
#include "common/error.h"
#include "config/config.h"
#include "npt_test.h"
#include "pipeline/chunk_plan.h"

static void check_video(const npt_chunk_plan *p, int v, int64_t first, int64_t end,
                        const npt_chunking_settings *s) {
  int c0 = p->video_chunk[v], c1 = p->video_chunk[v + 1];
  assert_true(c1 > c0);
  int64_t step = s->frames - s->overlap;
  /* The fewest chunks: one fewer would not reach the end. */
  int64_t k = c1 - c0;
  assert_true(first + (k - 1) * step + s->frames >= end);
  if (k > 1)
    assert_true(first + (k - 2) * step + s->frames < end);
  int64_t owned_to = first;
  for (int c = c0; c < c1; c++) {
    const npt_chunk *ch = &p->chunk[c];
    assert_int_equal(ch->video, v);
    assert_int_equal(ch->index, c - c0);
    assert_int_equal(ch->begin, first + (c - c0) * step);
    assert_true(ch->end > ch->begin && ch->end - ch->begin <= s->frames && ch->end <= end);
    if (c + 1 < c1) {
      assert_int_equal(ch->end - ch->begin, s->frames);
      assert_int_equal(ch->end - p->chunk[c + 1].begin, s->overlap); /* exactly O shared */
      assert_int_equal(ch->own_end, p->chunk[c + 1].begin + s->overlap - s->tail);
    } else {
      assert_int_equal(ch->end, end);
    }
    /* Owned frames: inside the chunk, at least one, tiling [first, end) in order. */
    assert_int_equal(ch->own_begin, owned_to);
    assert_true(ch->own_begin >= ch->begin && ch->own_end <= ch->end &&
                ch->own_end > ch->own_begin);
    owned_to = ch->own_end;
  }
  assert_int_equal(owned_to, end);
}

static void test_brute_force(void **state) {
  (void)state;
  for (int64_t L = 3; L <= 24; L++)
    for (int64_t O = 1; 2 * O < L; O++)
      for (int64_t n = 1; n <= 80; n++) {
        npt_chunking_settings s = {L, O, (L + n) % O, (int)(n % 2)}; /* tail: any value below O */
        int64_t first = n % 3, end = first + n;
        npt_chunk_plan p;
        assert_int_equal(npt_chunk_plan_build(&s, 1, &first, &end, &p), 0);
        check_video(&p, 0, first, end, &s);
        /* The hand-out order: a permutation; longest first (ties in global order), or global. */
        char seen[64] = {0};
        for (int c = 0; c < p.n_chunks; c++) {
          int k = p.order[c];
          assert_true(k >= 0 && k < p.n_chunks && !seen[k]);
          seen[k] = 1;
          if (!s.largest_first)
            assert_int_equal(k, c);
          else if (c > 0) {
            int64_t lp = p.chunk[p.order[c - 1]].end - p.chunk[p.order[c - 1]].begin;
            int64_t lk = p.chunk[k].end - p.chunk[k].begin;
            assert_true(lp > lk || (lp == lk && p.order[c - 1] < k));
          }
        }
        npt_chunk_plan_free(&p);
      }
}

static void test_videos_in_order(void **state) {
  (void)state;
  npt_chunking_settings s = {100, 20, 1, 0};
  int64_t first[3] = {0, 10, 0}, end[3] = {500, 60, 181};
  npt_chunk_plan p;
  assert_int_equal(npt_chunk_plan_build(&s, 3, first, end, &p), 0);
  for (int c = 0; c < 10; c++)
    assert_int_equal(p.order[c], c);
  npt_chunk_plan_free(&p);
  /* Longest first: lengths 100 x 6, 50, 100, 100, 21; ties in global order. */
  s.largest_first = 1;
  assert_int_equal(npt_chunk_plan_build(&s, 3, first, end, &p), 0);
  const int want[10] = {0, 1, 2, 3, 4, 5, 7, 8, 6, 9};
  for (int c = 0; c < 10; c++)
    assert_int_equal(p.order[c], want[c]);
  /* 500 frames: 1 + ceil(400 / 80) = 6 chunks; 50: 1; 181: 1 + ceil(81 / 80) = 3. */
  assert_int_equal(p.n_chunks, 10);
  assert_int_equal(p.video_chunk[0], 0);
  assert_int_equal(p.video_chunk[1], 6);
  assert_int_equal(p.video_chunk[2], 7);
  assert_int_equal(p.video_chunk[3], 10);
  for (int v = 0; v < 3; v++)
    check_video(&p, v, first[v], end[v], &s);
  npt_chunk_plan_free(&p);
  int64_t bad_end = 0, zero = 0;
  assert_int_equal(npt_chunk_plan_build(&s, 1, &zero, &bad_end, &p), NPT_EINVAL);
}

static void test_settings(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  npt_track_settings ts;
  npt_chunking_settings cs;
  const char *ok[] = {"chunking.frames=100", "chunking.overlap=40"};
  assert_int_equal(npt_config_load(&cfg, NULL, ok, 2), 0);
  assert_int_equal(npt_track_settings_get(cfg, &ts), 0);
  assert_int_equal(npt_chunking_settings_get(cfg, &ts, &cs), 0);
  assert_int_equal(cs.frames, 100);
  assert_int_equal(cs.overlap, 40);
  assert_int_equal(cs.tail, 1); /* confirm_frames 2 */
  npt_config_free(cfg);
  /* Overlap below confirm + lost (2 + 30 by default). */
  const char *short_ov[] = {"chunking.overlap=31"};
  assert_int_equal(npt_config_load(&cfg, NULL, short_ov, 1), 0);
  assert_int_equal(npt_track_settings_get(cfg, &ts), 0);
  assert_int_equal(npt_chunking_settings_get(cfg, &ts, &cs), NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_ECONFIG), "chunking.overlap = 31 must be at least "
                                                  "track.confirm_frames + track.lost_frames");
  npt_config_free(cfg);
  /* Overlap of half the chunk or more. */
  const char *half[] = {"chunking.frames=80", "chunking.overlap=40"};
  assert_int_equal(npt_config_load(&cfg, NULL, half, 2), 0);
  assert_int_equal(npt_track_settings_get(cfg, &ts), 0);
  assert_int_equal(npt_chunking_settings_get(cfg, &ts, &cs), NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_ECONFIG), "less than half of chunking.frames = 80");
  npt_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_brute_force),
      cmocka_unit_test(test_videos_in_order),
      cmocka_unit_test(test_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
