/* Stitching (src/track/stitch.h): whole videos of synthetic particles cut into chunks whose
 * "trackers" give every particle a different local id (a random permutation per chunk) must come
 * out with one global id per particle, numbered by first written frame, then y, then x; a
 * particle that a chunk's tracker lost over the boundary is joined by motion and appearance, a
 * look-alike that appears next to it with another appearance is not; of two tracks that followed
 * one particle in turn, the one holding it at the hand-over is joined; a track that the earlier
 * chunk ended a few frames before the end of the overlap is joined to the later chunk's track of
 * its particle, and not also to a track that the later chunk's tracker started after it saw the
 * particle vanish; a track the later chunk started on the particle in the overlap's last frame
 * is joined; a track whose identity a merge ended in frames the earlier chunk writes is not
 * continued after the hand-over; union-find numbering does not depend on the order of the unions.
 */
#include <stdlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "npt_test.h"
#include "pipeline/chunk_plan.h"
#include "track/stitch.h"

enum { D = 4 };

typedef struct rows {
  int64_t n;
  int64_t frame[4096], id[4096];
  float x[4096], y[4096], w[4096], h[4096], emb[4096 * D];
  int32_t det[4096]; /* decoder index: the particle, ascending within a frame */
  int part[4096];    /* the particle (test only) */
} rows;

static npt_stitch_rows view(const rows *r) {
  return (npt_stitch_rows){r->n, r->frame, r->id, r->det, r->x, r->y, r->w, r->h, D, r->emb};
}

static void add(rows *r, int64_t f, int64_t id, float x, float y, int part, const float *e) {
  int64_t i = r->n++;
  assert_true(r->n <= 4096);
  r->frame[i] = f, r->id[i] = id, r->x[i] = x, r->y[i] = y, r->w[i] = 8, r->h[i] = 8;
  r->part[i] = part, r->det[i] = part;
  for (int c = 0; c < D; c++)
    r->emb[i * D + c] = e[c];
}

static npt_track_settings settings(void) {
  npt_track_settings ts = npt_track_settings_default();
  ts.lost_frames = 10;
  return ts;
}

/* Two chunks, [0, 40) owning [0, 39) and [28, 68) owning [39, 68), their tracklets and the links
 * of their boundary (overlap [28, 40)). */
typedef struct pair {
  npt_track_settings ts;
  npt_stitch_rows a, b;
  npt_tracklets ta, tb;
  npt_stitch_link *l;
  size_t nl;
} pair;

static void pair_open(pair *p, const rows ch[2]) {
  p->ts = settings();
  p->a = view(&ch[0]);
  p->b = view(&ch[1]);
  p->l = NULL;
  p->nl = 0;
  assert_int_equal(npt_tracklets_build(&p->ts, &p->a, 0, 39, &p->ta), 0);
  assert_int_equal(npt_tracklets_build(&p->ts, &p->b, 39, 68, &p->tb), 0);
}

/* Stitches the boundary again (with p->ts as it is now): p->l, p->nl. */
static void pair_stitch(pair *p) {
  free(p->l);
  assert_int_equal(npt_stitch_boundary(&p->ts, &p->ta, &p->a, &p->tb, &p->b, 28, 40, &p->l, &p->nl),
                   0);
}

static void pair_close(pair *p) {
  free(p->l);
  npt_tracklets_free(&p->ta);
  npt_tracklets_free(&p->tb);
}

/* Stitches the two chunks' rows and checks that exactly one link joins them: A's tracklet ida
 * to B's idb, on shared detections. */
static void expect_one_shared_link(const rows ch[2], int64_t ida, int64_t idb) {
  pair p;
  pair_open(&p, ch);
  pair_stitch(&p);
  assert_int_equal(p.nl, 1);
  assert_int_equal(p.l[0].kind, NPT_STITCH_SHARED);
  assert_int_equal(p.ta.t[p.l[0].a].id, ida);
  assert_int_equal(p.tb.t[p.l[0].b].id, idb);
  pair_close(&p);
}

/* Stitches the chunks' rows (plan p, one video) and returns each chunk's id map in *gid (per
 * chunk, per row: the row's global id). */
static int64_t stitch_all(const npt_track_settings *ts, const npt_chunk_plan *p, rows *ch,
                          int64_t **gid, int *order) {
  npt_tracklets *t = calloc((size_t)p->n_chunks, sizeof *t);
  int64_t *base = calloc((size_t)p->n_chunks + 1, sizeof *base);
  assert_non_null(t);
  for (int c = 0; c < p->n_chunks; c++) {
    npt_stitch_rows v = view(&ch[c]);
    assert_int_equal(npt_tracklets_build(ts, &v, p->chunk[c].own_begin, p->chunk[c].own_end, &t[c]),
                     0);
    base[c + 1] = base[c] + (int64_t)t[c].n;
  }
  npt_stitch_uf uf;
  assert_int_equal(npt_stitch_uf_init(&uf, (size_t)base[p->n_chunks]), 0);
  /* Boundaries in the order given (the result must not depend on it). */
  for (int k = 0; k < p->n_chunks - 1; k++) {
    int c = order ? order[k] : k;
    npt_stitch_rows a = view(&ch[c]), b = view(&ch[c + 1]);
    npt_stitch_link *l;
    size_t nl;
    assert_int_equal(npt_stitch_boundary(ts, &t[c], &a, &t[c + 1], &b, p->chunk[c + 1].begin,
                                         p->chunk[c].end, &l, &nl),
                     0);
    for (size_t i = 0; i < nl; i++)
      npt_stitch_uf_union(&uf, base[c] + (int64_t)l[i].a, base[c + 1] + (int64_t)l[i].b);
    free(l);
  }
  npt_stitch_key *keys = calloc((size_t)base[p->n_chunks] + 1, sizeof *keys);
  int64_t *ids = calloc((size_t)base[p->n_chunks] + 1, sizeof *ids);
  for (int c = 0; c < p->n_chunks; c++)
    for (size_t i = 0; i < t[c].n; i++)
      keys[base[c] + (int64_t)i] =
          (npt_stitch_key){t[c].t[i].own_frame, t[c].t[i].own_y, t[c].t[i].own_x};
  int64_t n_ids = npt_stitch_number(&uf, keys, ids);
  for (int c = 0; c < p->n_chunks; c++) {
    gid[c] = calloc((size_t)ch[c].n + 1, sizeof **gid);
    for (int64_t i = 0; i < ch[c].n; i++) {
      int64_t k = npt_tracklets_find(&t[c], ch[c].id[i]);
      gid[c][i] = ch[c].id[i] < 0 ? -1 : ids[base[c] + k];
    }
    npt_tracklets_free(&t[c]);
  }
  npt_stitch_uf_free(&uf);
  free(t), free(base), free(keys), free(ids);
  return n_ids;
}

/* Particles on straight lines, each alive over a random span; each chunk labels them with its
 * own random permutation of ids. */
static void test_relabelled_chunks(void **state) {
  (void)state;
  enum { P = 12, T = 150 };
  static rows ch[8];
  npt_chunking_settings cs = {40, 12, 1, 0};
  int64_t first = 0, end = T;
  npt_chunk_plan p;
  assert_int_equal(npt_chunk_plan_build(&cs, 1, &first, &end, &p), 0);
  assert_true(p.n_chunks >= 5 && p.n_chunks <= 8);
  npt_rng rng;
  npt_rng_seed(&rng, 42, 7);
  float x0[P], y0[P], vx[P], vy[P], e[P][D];
  int born[P], died[P];
  for (int q = 0; q < P; q++) {
    x0[q] = (float)(10 + 40 * (q % 4)), y0[q] = (float)(10 + 40 * (q / 4));
    vx[q] = (float)(npt_rng_uniform(&rng) - 0.5) * 0.2f,
    vy[q] = (float)(npt_rng_uniform(&rng) - 0.5) * 0.2f;
    born[q] = (int)(npt_rng_uniform(&rng) * 60), died[q] = T - (int)(npt_rng_uniform(&rng) * 60);
    for (int c = 0; c < D; c++)
      e[q][c] = c == q % D ? 1.0f : 0.0f;
  }
  for (int c = 0; c < p.n_chunks; c++) {
    int perm[P];
    for (int q = 0; q < P; q++)
      perm[q] = q;
    for (int q = P - 1; q > 0; q--) {
      int j = (int)(npt_rng_uniform(&rng) * (q + 1)), tmp = perm[q];
      perm[q] = perm[j], perm[j] = tmp;
    }
    ch[c].n = 0;
    for (int64_t f = p.chunk[c].begin; f < p.chunk[c].end; f++)
      for (int q = 0; q < P; q++)
        if (f >= born[q] && f < died[q])
          add(&ch[c], f, 1 + perm[q], x0[q] + vx[q] * (float)f, y0[q] + vy[q] * (float)f, q, e[q]);
  }
  npt_track_settings ts = settings();
  int64_t *gid[8];
  int64_t n_ids = stitch_all(&ts, &p, ch, gid, NULL);
  assert_int_equal(n_ids, P);
  /* One id per particle over the owned rows; ids in order of (first frame, y, x). */
  int64_t of[P + 1];
  int64_t first_frame[P];
  for (int q = 0; q <= P; q++)
    of[q] = -2;
  for (int c = 0; c < p.n_chunks; c++)
    for (int64_t i = 0; i < ch[c].n; i++) {
      if (ch[c].frame[i] < p.chunk[c].own_begin || ch[c].frame[i] >= p.chunk[c].own_end)
        continue;
      int q = ch[c].part[i];
      assert_true(gid[c][i] >= 1 && gid[c][i] <= P);
      if (of[q] == -2)
        of[q] = gid[c][i], first_frame[q] = ch[c].frame[i];
      if (of[q] != gid[c][i])
        fail_msg("particle %d: id %lld in chunk %d frame %lld, earlier %lld", q,
                 (long long)gid[c][i], c, (long long)ch[c].frame[i], (long long)of[q]);
    }
  for (int q = 0; q < P; q++)
    for (int r = 0; r < P; r++)
      if (q != r) {
        assert_true(of[q] != of[r]);
        int before = first_frame[q] < first_frame[r] ||
                     (first_frame[q] == first_frame[r] &&
                      (y0[q] + vy[q] * first_frame[q] < y0[r] + vy[r] * first_frame[r] ||
                       (y0[q] + vy[q] * first_frame[q] == y0[r] + vy[r] * first_frame[r] &&
                        x0[q] + vx[q] * first_frame[q] < x0[r] + vx[r] * first_frame[r])));
        assert_int_equal(before, of[q] < of[r]);
      }
  /* The boundaries in reverse order: the same ids. */
  int order[8];
  for (int k = 0; k < p.n_chunks - 1; k++)
    order[k] = p.n_chunks - 2 - k;
  int64_t *gid2[8];
  assert_int_equal(stitch_all(&ts, &p, ch, gid2, order), P);
  for (int c = 0; c < p.n_chunks; c++) {
    for (int64_t i = 0; i < ch[c].n; i++)
      assert_int_equal(gid[c][i], gid2[c][i]);
    free(gid[c]), free(gid2[c]);
  }
  npt_chunk_plan_free(&p);
}

/* Chunks [0, 40) and [28, 68), owned [0, 39) and [39, 68).  Particle A moves right at 0.5 px per
 * frame and is missed in frames 28-36 and 38-41: chunk 0 tracks it to frame 27 and takes it up
 * again at 37; chunk 1 sees it at 37 alone (unconfirmed: -1) and at 42 starts a new track (after
 * chunk 0's end: only motion can join them).  B,
 * still, is seen by both (shared detections).  C appears at 42 next to A's path with another
 * appearance: not joined to A. */
static void test_motion_link(void **state) {
  (void)state;
  static rows ch[2];
  const float ea[D] = {1, 0, 0, 0}, eb[D] = {0, 1, 0, 0}, ec[D] = {0, 0, 1, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++) {
    if (f <= 27 || f == 37)
      add(&ch[0], f, 1, 10 + 0.5f * (float)f, 20, 0, ea);
    add(&ch[0], f, 2, 80, 80, 1, eb);
  }
  for (int64_t f = 28; f < 68; f++) {
    if (f == 37)
      add(&ch[1], f, -1, 10 + 0.5f * (float)f, 20, 0, ea);
    if (f >= 42)
      add(&ch[1], f, 7, 10 + 0.5f * (float)f, 20, 0, ea);
    add(&ch[1], f, 5, 80, 80, 1, eb);
    if (f >= 42) /* after particle 1: a frame's rows ascend by decoder index */
      add(&ch[1], f, 8, 10 + 0.5f * (float)f + 3, 23, 2, ec);
  }
  /* Frame order within chunk 1 (rows were added particle-major per frame already). */
  npt_chunking_settings cs = {40, 12, 1, 0};
  int64_t first = 0, end = 68;
  npt_chunk_plan plan;
  assert_int_equal(npt_chunk_plan_build(&cs, 1, &first, &end, &plan), 0);
  assert_int_equal(plan.n_chunks, 2); /* chunks [0, 40) and [28, 68): pair_open's */
  pair p;
  pair_open(&p, ch);
  pair_stitch(&p);
  assert_int_equal(p.nl, 2);
  int seen_shared = 0, seen_motion = 0;
  for (size_t i = 0; i < p.nl; i++) {
    int64_t ida = p.ta.t[p.l[i].a].id, idb = p.tb.t[p.l[i].b].id;
    if (p.l[i].kind == NPT_STITCH_SHARED) {
      assert_int_equal(ida, 2);
      assert_int_equal(idb, 5);
      seen_shared = 1;
    } else {
      assert_int_equal(p.l[i].kind, NPT_STITCH_MOTION);
      assert_int_equal(ida, 1);
      assert_int_equal(idb, 7);
      seen_motion = 1;
    }
  }
  assert_true(seen_shared && seen_motion);
  /* With lost_frames 3 the gap of 5 frames is too long: no motion link. */
  p.ts.lost_frames = 3;
  pair_stitch(&p);
  assert_int_equal(p.nl, 1);
  assert_int_equal(p.l[0].kind, NPT_STITCH_SHARED);
  pair_close(&p);
  npt_chunk_plan_free(&plan);
}

/* A particle that chunk A followed with two tracks in turn (track 1 in frames 28-35 of the
 * overlap, track 2 in 36-39, where the archive passes to chunk B) and chunk B with one: B's track
 * is joined to the one that holds the particle at the hand-over, though track 1 shares more
 * detections. */
static void test_handover_wins(void **state) {
  (void)state;
  static rows ch[2];
  const float e[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++)
    add(&ch[0], f, f < 36 ? 1 : 2, 20, 20, 0, e);
  for (int64_t f = 28; f < 68; f++)
    add(&ch[1], f, 5, 20, 20, 0, e);
  expect_one_shared_link(ch, 2, 5);
}

/* The ids of the written rows of particle `part` (chunks [0, 40) owned [0, 39) and [28, 68)
 * owned [39, 68)), stitched: 0 when they are not all one id, else that id. */
static int64_t one_id(const npt_track_settings *ts, rows *ch, int part) {
  npt_chunking_settings cs = {40, 12, 1, 0};
  int64_t first = 0, end = 68;
  npt_chunk_plan p;
  assert_int_equal(npt_chunk_plan_build(&cs, 1, &first, &end, &p), 0);
  assert_int_equal(p.n_chunks, 2);
  int64_t *gid[2];
  stitch_all(ts, &p, ch, gid, NULL);
  int64_t id = -2;
  for (int c = 0; c < 2; c++) {
    for (int64_t i = 0; i < ch[c].n; i++)
      if (ch[c].part[i] == part && ch[c].frame[i] >= p.chunk[c].own_begin &&
          ch[c].frame[i] < p.chunk[c].own_end) {
        if (id == -2)
          id = gid[c][i];
        else if (id != gid[c][i])
          id = 0;
      }
    free(gid[c]);
  }
  npt_chunk_plan_free(&p);
  return id;
}

/* Chunk B's fresh tracker followed particle P with two tracks in turn (5 and 6, taking its one
 * detection per frame alternately, through the hand-over and after), where chunk A had one
 * (1); B's track 6 began on particle Q (A's track 2), which vanished early in the overlap.  Both
 * of B's tracks are P: P keeps one id over the boundary (the one-to-one match alone joined one
 * of them and left the other a new id, a switch at the hand-over), Q keeps its own.  When both
 * live on into B's next overlap (from frame 56) they are not both joined: each could be joined
 * there to a tracklet of the chunk after B, and the two of those could hold rows in one frame. */
static void test_fragments_joined(void **state) {
  (void)state;
  static rows ch[2];
  const float ep[D] = {1, 0, 0, 0}, eq[D] = {0, 1, 0, 0};
  for (int pass = 0; pass < 2; pass++) {
    int64_t six_until = pass == 0 ? 50 : 60; /* B's next overlap would start at 56 */
    ch[0].n = ch[1].n = 0;
    for (int64_t f = 0; f < 40; f++) {
      add(&ch[0], f, 1, 20, 20, 0, ep);
      if (f <= 31)
        add(&ch[0], f, 2, 40, 20, 1, eq);
    }
    for (int64_t f = 28; f < 68; f++) {
      int six = f >= 33 && f <= six_until && f % 3 != 2; /* P goes to 6 two frames in three */
      add(&ch[1], f, six ? 6 : 5, 20, 20, 0, ep);
      if (f <= 31)
        add(&ch[1], f, 6, 40, 20, 1, eq);
    }
    npt_track_settings ts = settings();
    int64_t idp = one_id(&ts, ch, 0), idq = one_id(&ts, ch, 1);
    assert_true(idq > 0);
    if (pass == 0) {
      assert_true(idp > 0);
      assert_true(idp != idq);
    } else {
      assert_int_equal(idp, 0); /* not joined: one of 5, 6 keeps an id of its own */
    }
  }
}

/* Chunk A's tracker jumped from particle P to Q late in the overlap (track 1: P in frames 0-33,
 * Q in 34-39; track 2, Q's, ends at 33; track 3 takes P up at 34); chunk B followed each with one
 * track (5: P, 6: Q).  At the hand-over (frame 39) Q is track 1's, so 1 joins 6 and 3 joins 5,
 * though 1 shares only half of its overlap detections with 6 (a rule on counts of shared
 * detections refused that pair and joined 6 to 2, a switch of Q at the hand-over). */
static void test_switch_in_overlap(void **state) {
  (void)state;
  static rows ch[2];
  const float e[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++) {
    add(&ch[0], f, f <= 33 ? 1 : 3, 20, 20, 0, e);
    add(&ch[0], f, f <= 33 ? 2 : 1, 40, 20, 1, e);
  }
  for (int64_t f = 28; f < 68; f++) {
    add(&ch[1], f, 5, 20, 20, 0, e);
    add(&ch[1], f, 6, 40, 20, 1, e);
  }
  pair p;
  pair_open(&p, ch);
  pair_stitch(&p);
  assert_int_equal(p.nl, 2);
  for (size_t i = 0; i < p.nl; i++) {
    int64_t ida = p.ta.t[p.l[i].a].id, idb = p.tb.t[p.l[i].b].id;
    assert_int_equal(p.l[i].kind, NPT_STITCH_SHARED);
    assert_int_equal(idb, ida == 1 ? 6 : 5);
    assert_true(ida == 1 || ida == 3);
  }
  pair_close(&p);
}

/* Chunk B's track 5 followed particle P through most of the overlap and lost it two frames
 * before the hand-over (frame 39; B's tracker left P's detections in frames 38-39 in no track),
 * and B's track 7 takes P up after the overlap.  Chunk A's track 1 followed P throughout.  5
 * writes no row, so joining 1 and 5 hands 1's identity over to nothing: 1 is still matched by
 * motion to 7 (it was left out of the motion step as soon as it had a shared-detection match, and
 * P changed id at the hand-over). */
static void test_lost_at_handover(void **state) {
  (void)state;
  static rows ch[2];
  const float e[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++)
    add(&ch[0], f, 1, 10 + 0.5f * (float)f, 20, 0, e);
  for (int64_t f = 28; f < 68; f++)
    add(&ch[1], f, f <= 37 ? 5 : f <= 39 ? -1 : 7, 10 + 0.5f * (float)f, 20, 0, e);
  pair p;
  pair_open(&p, ch);
  pair_stitch(&p);
  assert_int_equal(p.nl, 2);
  for (size_t i = 0; i < p.nl; i++) {
    assert_int_equal(p.ta.t[p.l[i].a].id, 1);
    assert_int_equal(p.tb.t[p.l[i].b].id, p.l[i].kind == NPT_STITCH_SHARED ? 5 : 7);
  }
  pair_close(&p);
}

/* Chunk A's tracker left particle P's last detections of the overlap in no track (track 1
 * follows P in frames 0-35; a weak detection in frame 36 was not taken, and P's detections in
 * 36-39 stay without an id), while chunk B's track 5 follows P all through the overlap and after.
 * 5 shares all of its overlap detections that A tracked with 1, so the two are joined: 5's
 * detections in 36-39, the heaviest of the overlap, are no other tracklet of A's, and counted
 * against the pair (the earlier rule) they outweighed the shared ones, and P changed id at the
 * hand-over (5 began inside the overlap, so the motion step did not take it either). */
static void test_untracked_end_of_overlap(void **state) {
  (void)state;
  static rows ch[2];
  const float e[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++)
    add(&ch[0], f, f <= 35 ? 1 : -1, 10 + 0.5f * (float)f, 20, 0, e);
  for (int64_t f = 28; f < 68; f++)
    add(&ch[1], f, 5, 10 + 0.5f * (float)f, 20, 0, e);
  expect_one_shared_link(ch, 1, 5);
}

/* Chunk A's track 1 follows particle P in frames 0-33 and no further (A's tracker left P's
 * detections in 34-37 in no track); chunk B's track 5 follows P in frames 28-37, so B's tracker
 * held P at 1's last detection and saw P vanish after 37; when a particle appears there in frame
 * 41, B's tracker starts track 7 on it.  1 and 5 are joined (shared detections), and 1 is not
 * also joined to 7 by motion: that would decide again what B's tracker decided with P in view
 * (the earlier rule let every tracklet of A whose partners write no row into the motion step,
 * and the one-chunk tracker's new track there became a continuation in chunked runs). */
static void test_handed_over(void **state) {
  (void)state;
  static rows ch[2];
  const float e[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++)
    if (f <= 37)
      add(&ch[0], f, f <= 33 ? 1 : -1, 20, 20, 0, e);
  for (int64_t f = 28; f < 68; f++)
    if (f <= 37 || f >= 41)
      add(&ch[1], f, f <= 37 ? 5 : 7, 20, 20, 0, e);
  expect_one_shared_link(ch, 1, 5);
}

/* Chunk A's track 1 follows particle P through the overlap (frames 28-39, the hand-over at 39);
 * chunk B's tracker followed P with track 5 until frame 37, lost it, and started track 6 on it
 * in frame 39, the overlap's last.  6 shares one detection with 1, all it can: it is joined to 1
 * (with 5), and P keeps its id after the hand-over.  (At least two shared detections were
 * required, and 6 got a new id.) */
static void test_started_at_handover(void **state) {
  (void)state;
  static rows ch[2];
  const float e[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++)
    add(&ch[0], f, 1, 10 + 0.5f * (float)f, 20, 0, e);
  for (int64_t f = 28; f < 68; f++)
    add(&ch[1], f, f <= 37 ? 5 : f == 38 ? -1 : 6, 10 + 0.5f * (float)f, 20, 0, e);
  pair p;
  pair_open(&p, ch);
  pair_stitch(&p);
  int six = 0;
  for (size_t i = 0; i < p.nl; i++) {
    assert_int_equal(p.ta.t[p.l[i].a].id, 1);
    six += p.tb.t[p.l[i].b].id == 6;
  }
  assert_int_equal(six, 1);
  pair_close(&p);
}

/* A merge ends a track's identity: chunk 0's tracker merged particle P's track 1 with a lost
 * track (3) in frame 38, which chunk 0 writes, and gave P a new track 2; chunk 1's tracker, with
 * another history, did not merge: its track 6 took P's detections in 38-41 and its track 5, which
 * held P before, took them again from 42.  Track 5 shares most of track 1's overlap detections,
 * but the archive's events say that identity ended at 38: 5 is joined to nothing (a new id), 6 to
 * 2.  (Joined to 1, as before chunk 0's events were read, 1's identity came back after the
 * merge that ended it.) */
static void test_merge_parent_not_continued(void **state) {
  (void)state;
  static rows ch[2];
  const float ea[D] = {1, 0, 0, 0};
  ch[0].n = ch[1].n = 0;
  for (int64_t f = 0; f < 40; f++)
    add(&ch[0], f, f < 38 ? 1 : 2, 10 + 0.1f * (float)f, 20, 0, ea);
  for (int64_t f = 28; f < 68; f++)
    add(&ch[1], f, f >= 38 && f <= 41 ? 6 : 5, 10 + 0.1f * (float)f, 20, 0, ea);
  pair p;
  pair_open(&p, ch);
  /* Without the event: 1-5 and 2-6. */
  pair_stitch(&p);
  assert_int_equal(p.nl, 2);
  const int64_t parents[2] = {1, 3}; /* 3 has no tracklet here: ignored */
  npt_tracklets_mark_ended(&p.ta, parents, 2);
  pair_stitch(&p);
  assert_int_equal(p.nl, 1);
  assert_int_equal(p.l[0].kind, NPT_STITCH_SHARED);
  assert_int_equal(p.ta.t[p.l[0].a].id, 2);
  assert_int_equal(p.tb.t[p.l[0].b].id, 6);
  pair_close(&p);
}

/* Numbering: by the earliest key of each set, never by roots; sets without a written row get -1. */
static void test_number(void **state) {
  (void)state;
  npt_stitch_uf u;
  assert_int_equal(npt_stitch_uf_init(&u, 6), 0);
  npt_stitch_uf_union(&u, 5, 0); /* {0, 5} */
  npt_stitch_uf_union(&u, 3, 1); /* {1, 3} */
  npt_stitch_key k[6] = {{9, 0, 0}, {4, 2, 1}, {-1, 0, 0}, {2, 9, 9}, {4, 1, 5}, {7, 0, 0}};
  int64_t id[6];
  assert_int_equal(npt_stitch_number(&u, k, id), 3);
  /* Set {1,3} starts at frame 2; {4} at (4, y 1); {0,5} at 7; {2} writes nothing. */
  int64_t want[6] = {3, 1, -1, 1, 2, 3};
  for (int i = 0; i < 6; i++)
    assert_int_equal(id[i], want[i]);
  npt_stitch_uf_free(&u);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_relabelled_chunks),
      cmocka_unit_test(test_motion_link),
      cmocka_unit_test(test_handover_wins),
      cmocka_unit_test(test_fragments_joined),
      cmocka_unit_test(test_switch_in_overlap),
      cmocka_unit_test(test_lost_at_handover),
      cmocka_unit_test(test_untracked_end_of_overlap),
      cmocka_unit_test(test_handed_over),
      cmocka_unit_test(test_started_at_handover),
      cmocka_unit_test(test_merge_parent_not_continued),
      cmocka_unit_test(test_number),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
