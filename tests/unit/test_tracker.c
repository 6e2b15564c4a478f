/* The online tracker (src/track/tracker.h) on synthetic sequences built here: particles moving
 * with constant velocity plus noise, crossing paths with identical embeddings, missed
 * detections around the lost-frames limit, false positives, an appearance change (embedding and
 * class) while moving smoothly, low-score detections, determinism under repetition and
 * permutation, and a dense grid of 2,000 particles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/rng.h"
#include "config/config.h"
#include "npt_test.h"
#include "track/tracker.h"

#define D    16
#define MAXP 2100

typedef struct particle {
  double x, y, vx, vy, size; /* centre, velocity, box side */
  float emb[D];
  float score;
  int cls;
  int present; /* detected in this frame */
  int64_t id;  /* output of this frame */
} particle;

static void random_unit(npt_rng *g, float *e) {
  double ss = 0;
  for (int k = 0; k < D; k++) {
    e[k] = (float)npt_rng_normal(g);
    ss += (double)e[k] * e[k];
  }
  for (int k = 0; k < D; k++)
    e[k] = (float)(e[k] / sqrt(ss));
}

/* A unit vector orthogonal to `a`: an unrelated appearance. */
static void orthogonal_unit(npt_rng *g, const float *a, float *e) {
  random_unit(g, e);
  double dot = 0, ss = 0;
  for (int k = 0; k < D; k++)
    dot += (double)a[k] * e[k];
  for (int k = 0; k < D; k++) {
    e[k] = (float)(e[k] - dot * a[k]);
    ss += (double)e[k] * e[k];
  }
  for (int k = 0; k < D; k++)
    e[k] = (float)(e[k] / sqrt(ss));
}

/* One frame: the present particles' detections (position noise pos_sd, embedding noise 0.05),
 * then `extra` given detections; runs the tracker and stores each particle's id. */
static void step(npt_tracker *t, int64_t frame, particle *p, size_t np, npt_rng *g, double pos_sd,
                 const npt_track_det *extra, size_t n_extra, int64_t *extra_ids) {
  static npt_track_det dets[MAXP + 64];
  static float emb[MAXP][D];
  static int64_t ids[MAXP + 64];
  static size_t who[MAXP];
  size_t n = 0;
  for (size_t i = 0; i < np; i++) {
    if (!p[i].present)
      continue;
    for (int k = 0; k < D; k++)
      emb[n][k] = p[i].emb[k] + 0.05f * (float)npt_rng_normal(g);
    double cx = p[i].x + pos_sd * npt_rng_normal(g), cy = p[i].y + pos_sd * npt_rng_normal(g);
    double s = p[i].size * (1 + 0.01 * npt_rng_normal(g));
    dets[n] = (npt_track_det){
        (float)(cx - s / 2), (float)(cy - s / 2), (float)s, (float)s, p[i].score, p[i].cls, emb[n]};
    who[n++] = i;
  }
  size_t nt = n;
  for (size_t e = 0; e < n_extra; e++)
    dets[n++] = extra[e];
  assert_int_equal(npt_tracker_step(t, frame, dets, n, ids), 0);
  for (size_t i = 0; i < np; i++)
    p[i].id = -2;
  for (size_t k = 0; k < nt; k++)
    p[who[k]].id = ids[k];
  for (size_t e = 0; e < n_extra; e++)
    extra_ids[e] = ids[nt + e];
}

static void move(particle *p, size_t np) {
  for (size_t i = 0; i < np; i++) {
    p[i].x += p[i].vx;
    p[i].y += p[i].vy;
  }
}

static particle *new_particles(size_t np) {
  particle *p = calloc(np, sizeof *p);
  assert_non_null(p);
  for (size_t i = 0; i < np; i++) {
    p[i].score = 0.9f;
    p[i].cls = 1;
    p[i].present = 1;
    p[i].size = 16;
  }
  return p;
}

/* Each particle's id is the same in every frame from `from` on, and ids are distinct. */
static void expect_ids_kept(const int64_t *first, const particle *p, size_t np) {
  for (size_t i = 0; i < np; i++) {
    if (p[i].id != first[i])
      fail_msg("particle %zu at (%.1f, %.1f): id %lld, was %lld", i, p[i].x, p[i].y,
               (long long)p[i].id, (long long)first[i]);
  }
}

static void expect_distinct(const int64_t *ids, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (ids[i] <= 0)
      fail_msg("particle %zu has no id (%lld)", i, (long long)ids[i]);
    for (size_t j = i + 1; j < n; j++)
      if (ids[i] == ids[j])
        fail_msg("particles %zu and %zu share id %lld", i, j, (long long)ids[i]);
  }
}

/* Constant velocity plus noise, both gates: identities from the second frame (confirmation) to
 * the end, one id per particle, none before confirmation. */
static void test_constant_velocity(void **state) {
  (void)state;
  for (int gate = 0; gate < 2; gate++) {
    npt_track_settings s = npt_track_settings_default();
    s.gate = gate ? NPT_TRACK_GATE_POSITION : NPT_TRACK_GATE_4D;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, D, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 11, (uint64_t)gate);
    const size_t np = 40;
    particle *p = new_particles(np);
    for (size_t i = 0; i < np; i++) {
      p[i].x = npt_rng_range(&g, 100, 900);
      p[i].y = npt_rng_range(&g, 100, 900);
      p[i].vx = npt_rng_range(&g, -3, 3);
      p[i].vy = npt_rng_range(&g, -3, 3);
      random_unit(&g, p[i].emb);
    }
    int64_t first[40];
    for (int64_t f = 0; f < 80; f++) {
      step(t, f, p, np, &g, 0.4, NULL, 0, NULL);
      if (f == 0)
        for (size_t i = 0; i < np; i++)
          assert_int_equal(p[i].id, -1);
      if (f == 1) {
        for (size_t i = 0; i < np; i++)
          first[i] = p[i].id;
        expect_distinct(first, np);
      }
      if (f >= 1)
        expect_ids_kept(first, p, np);
      move(p, np);
    }
    assert_int_equal(npt_tracker_num_ids(t), np);
    free(p);
    npt_tracker_free(t);
  }
}

/* Backfill: the step that confirms a track hands its earlier detections the id (confirm_frames
 * 2 and 4), each exactly once, with the frame and index they had; other steps hand out none. */
static void test_backfill(void **state) {
  (void)state;
  for (int cf = 2; cf <= 4; cf += 2) {
    npt_track_settings s = npt_track_settings_default();
    s.confirm_frames = cf;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, D, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 31, (uint64_t)cf);
    const size_t np = 30;
    particle *p = new_particles(np);
    for (size_t i = 0; i < np; i++) {
      p[i].x = 40 + 60 * (double)(i % 6) + npt_rng_range(&g, -5, 5);
      p[i].y = 40 + 60 * (double)(i / 6) + npt_rng_range(&g, -5, 5);
      p[i].vx = npt_rng_range(&g, -2, 2);
      p[i].vy = npt_rng_range(&g, -2, 2);
      random_unit(&g, p[i].emb);
    }
    /* Particle 0 appears only from frame 3: its track is confirmed at frame 3 + cf - 1. */
    p[0].present = 0;
    int got[30][8] = {{0}}; /* got[i][f]: backfilled frame f of particle i */
    for (int64_t f = 0; f < 10; f++) {
      if (f == 3)
        p[0].present = 1;
      step(t, f, p, np, &g, 0.3, NULL, 0, NULL);
      const npt_track_backfill *bf;
      size_t n = npt_tracker_backfill(t, &bf);
      int64_t want = f == cf - 1 ? (int64_t)(np - 1) * (cf - 1) : f == 3 + cf - 1 ? cf - 1 : 0;
      if ((int64_t)n != want)
        fail_msg("confirm %d, frame %lld: %zu backfilled, want %lld", cf, (long long)f, n,
                 (long long)want);
      for (size_t k = 0; k < n; k++) {
        assert_true(bf[k].frame < f && bf[k].frame >= f - (cf - 1));
        /* Detections are the present particles in order: index k is particle k (+1 before
         * particle 0 appears). */
        size_t i = (size_t)bf[k].index + (bf[k].frame < 3 ? 1 : 0);
        assert_true(i < np);
        if (bf[k].id != p[i].id)
          fail_msg("confirm %d: frame %lld index %lld got id %lld, the particle has %lld", cf,
                   (long long)bf[k].frame, (long long)bf[k].index, (long long)bf[k].id,
                   (long long)p[i].id);
        got[i][bf[k].frame]++;
      }
      move(p, np);
    }
    for (size_t i = 0; i < np; i++)
      for (int f = 0; f < cf - 1; f++)
        assert_int_equal(got[i][f + (i == 0 ? 3 : 0)], 1);
    free(p);
    npt_tracker_free(t);
  }
}

/* Merge (sintering): two particles approach and become one larger particle.  With merges on,
 * both tracks end at the merge and the merged particle gets a new id at once (not -1); with
 * track.merge_cover 0 it keeps one parent's id.  Bystanders keep theirs either way. */
static void test_merge(void **state) {
  (void)state;
  for (int on = 0; on < 2; on++) {
    npt_track_settings s = npt_track_settings_default();
    if (!on)
      s.merge_cover = 0;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, D, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 5, (uint64_t)on);
    particle *p = new_particles(4);
    /* 0 and 1 approach each other at 1 px/frame; 2 and 3 stand apart. */
    p[0].x = 100, p[0].y = 100, p[0].vx = 1;
    p[1].x = 130, p[1].y = 100, p[1].vx = -1;
    p[2].x = 300, p[2].y = 300;
    p[3].x = 100, p[3].y = 300;
    for (int i = 0; i < 4; i++)
      random_unit(&g, p[i].emb);
    int64_t before[4] = {0}, merged_id = 0;
    for (int64_t f = 0; f < 30; f++) {
      if (f == 12) { /* 0 and 1 (centres 112 and 118) become one particle of 1.26 x the side */
        p[0].x = 115, p[0].vx = 0, p[0].size = 16 * 1.26;
        random_unit(&g, p[0].emb);
        p[1].present = 0;
      }
      step(t, f, p, 4, &g, 0.2, NULL, 0, NULL);
      if (f == 11)
        for (int i = 0; i < 4; i++)
          before[i] = p[i].id;
      const npt_track_event *ev;
      size_t nev = npt_tracker_events(t, &ev);
      if (f == 12) {
        merged_id = p[0].id;
        assert_true(merged_id > 0);
        if (on) {
          assert_true(merged_id != before[0] && merged_id != before[1] &&
                      merged_id == npt_tracker_num_ids(t));
          /* One lineage event: both parents (the one the detection matched first), one child. */
          assert_int_equal(nev, 1);
          assert_int_equal(ev[0].kind, NPT_TRACK_MERGE);
          assert_int_equal(ev[0].frame, 12);
          assert_int_equal(ev[0].n_parents, 2);
          assert_int_equal(ev[0].n_children, 1);
          assert_int_equal(ev[0].children[0], merged_id);
          assert_true((ev[0].parents[0] == before[0] && ev[0].parents[1] == before[1]) ||
                      (ev[0].parents[0] == before[1] && ev[0].parents[1] == before[0]));
        } else {
          assert_true(merged_id == before[0] || merged_id == before[1]);
          assert_int_equal(nev, 0);
        }
      } else {
        assert_int_equal(nev, 0);
      }
      if (f > 12)
        assert_int_equal(p[0].id, merged_id);
      if (f >= 11) {
        assert_int_equal(p[2].id, before[2]);
        assert_int_equal(p[3].id, before[3]);
      }
      move(p, 4);
    }
    expect_distinct(before, 4);
    free(p);
    npt_tracker_free(t);
  }
}

/* Not a merge: two still particles of side 16 whose boxes overlap by 2 px (an eighth of each
 * box); one is missed for a frame.  The other keeps its id, the missed one takes its own back
 * (the neighbour's box covers less than track.merge_cover of it), and no event is reported. */
static void test_no_merge_when_missed(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g;
  npt_rng_seed(&g, 9, 0);
  particle *p = new_particles(2);
  p[0].x = 100, p[0].y = 100;
  p[1].x = 114, p[1].y = 100;
  random_unit(&g, p[0].emb);
  random_unit(&g, p[1].emb);
  int64_t before[2] = {0};
  for (int64_t f = 0; f < 20; f++) {
    p[1].present = f != 10;
    step(t, f, p, 2, &g, 0.1, NULL, 0, NULL);
    const npt_track_event *ev;
    assert_int_equal(npt_tracker_events(t, &ev), 0);
    if (f == 1)
      before[0] = p[0].id, before[1] = p[1].id;
    if (f >= 1) {
      assert_int_equal(p[0].id, before[0]);
      if (f != 10)
        assert_int_equal(p[1].id, before[1]);
    }
  }
  free(p);
  npt_tracker_free(t);
}

/* Split (regeneration).  Particle 0 (side 30) shrinks to 18 (0.36 of its area) and one
 * fragment of side 14 appears beside it: with splits on, its track ends and both pieces get new
 * ids at once, reported as one split event; with track.split_shrink 0 the big piece keeps the
 * parent's id and the fragment waits for confirmation.  Particle 3 (side 30) keeps its size
 * while two small particles of side 14 appear beside it (new particles, or false detections on
 * the support): it keeps its id either way, as does a bystander with one small new particle
 * next to it. */
static void sort_ids(int64_t *k, size_t n) {
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++)
      if (k[b] < k[a]) {
        int64_t x = k[a];
        k[a] = k[b], k[b] = x;
      }
}

static void expect_split(const npt_track_event *ev, int64_t parent, int64_t *kids, size_t nk) {
  assert_int_equal(ev->kind, NPT_TRACK_SPLIT);
  assert_int_equal(ev->frame, 12);
  assert_int_equal(ev->n_parents, 1);
  assert_int_equal(ev->parents[0], parent);
  assert_int_equal(ev->n_children, nk);
  sort_ids(kids, nk);
  for (size_t k = 0; k < nk; k++)
    assert_int_equal(ev->children[k], kids[k]);
}

static void test_split(void **state) {
  (void)state;
  for (int on = 0; on < 2; on++) {
    npt_track_settings s = npt_track_settings_default();
    if (!on)
      s.split_shrink = 0;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, D, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 6, (uint64_t)on);
    particle *p = new_particles(8);
    p[0].x = 200, p[0].y = 200, p[0].size = 30;
    p[1].x = 400, p[1].y = 100;
    p[2].x = 219, p[2].y = 201, p[2].size = 14, p[2].present = 0; /* 0's fragment */
    p[3].x = 100, p[3].y = 400, p[3].size = 30;
    p[4].x = 411, p[4].y = 100, p[4].size = 8, p[4].present = 0;  /* beside the bystander */
    p[5].x = 122, p[5].y = 400, p[5].size = 14, p[5].present = 0; /* beside 3 */
    p[6].x = 100, p[6].y = 378, p[6].size = 14, p[6].present = 0;
    p[7].x = 300, p[7].y = 300, p[7].size = 14; /* a small particle alone */
    for (int i = 0; i < 8; i++)
      random_unit(&g, p[i].emb);
    int64_t before[8] = {0}, after[8] = {0};
    for (int64_t f = 0; f < 20; f++) {
      if (f == 12) {
        p[0].x = 197, p[0].size = 18;
        p[2].present = p[4].present = p[5].present = p[6].present = 1;
      }
      step(t, f, p, 8, &g, 0.2, NULL, 0, NULL);
      const npt_track_event *ev;
      size_t nev = npt_tracker_events(t, &ev);
      if (f == 1) /* confirmed */
        for (int i = 0; i < 8; i++)
          before[i] = p[i].id;
      if (f >= 1 && f < 12)
        for (int i = 0; i < 8; i++)
          if (before[i] > 0)
            assert_int_equal(p[i].id, before[i]);
      if (f >= 1) {
        assert_int_equal(p[1].id, before[1]);
        assert_int_equal(p[3].id, before[3]);
        assert_int_equal(p[7].id, before[7]);
      }
      if (f == 12 && on) {
        for (int i = 0; i < 8; i++)
          after[i] = p[i].id;
        int64_t pieces[2] = {p[0].id, p[2].id};
        expect_distinct(pieces, 2);
        int64_t max_before = 0;
        for (int i = 0; i < 8; i++)
          max_before = before[i] > max_before ? before[i] : max_before;
        for (int i = 0; i < 2; i++)
          assert_true(pieces[i] > max_before); /* new ids */
        /* New particles, not fragments: unconfirmed. */
        assert_int_equal(p[4].id, -1);
        assert_int_equal(p[5].id, -1);
        assert_int_equal(p[6].id, -1);
        assert_int_equal(nev, 1);
        expect_split(&ev[0], before[0], pieces, 2);
      } else if (f == 12) {
        assert_int_equal(p[0].id, before[0]);
        assert_int_equal(p[2].id, -1);
        assert_int_equal(p[5].id, -1);
        assert_int_equal(p[6].id, -1);
        assert_int_equal(nev, 0);
      } else {
        assert_int_equal(nev, 0);
      }
      if (f > 12 && on)
        for (int i = 0; i < 3; i++)
          assert_int_equal(p[i].id, after[i]);
      move(p, 8);
    }
    free(p);
    npt_tracker_free(t);
  }
}

/* Duplicates: one particle detected twice (two boxes 0.5 px apart, IoU about 0.94) for six
 * frames holds two confirmed tracks.  When one detection is left, the track that lost it is
 * removed at once with track.duplicate_iou 0.85, and the particle keeps one id from then on;
 * with 1 (off) it is kept as lost. */
static void test_duplicate(void **state) {
  (void)state;
  for (int on = 0; on < 2; on++) {
    npt_track_settings s = npt_track_settings_default();
    if (!on) /* merges off too: they would take the duplicate's end for a merge */
      s.duplicate_iou = 1, s.merge_cover = 0;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, D, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 7, (uint64_t)on);
    particle *p = new_particles(2);
    p[0].x = 100, p[0].y = 100, p[0].vx = 0.5;
    p[1] = p[0];
    p[1].x += 0.5;
    p[1].score = 0.8f;
    random_unit(&g, p[0].emb);
    memcpy(p[1].emb, p[0].emb, sizeof p[0].emb);
    int64_t id0 = 0, id1 = 0, kept = 0;
    for (int64_t f = 0; f < 12; f++) {
      p[1].present = f < 6;
      step(t, f, p, 2, &g, 0.05, NULL, 0, NULL);
      if (f == 5) {
        id0 = p[0].id, id1 = p[1].id;
        assert_true(id0 > 0 && id1 > 0 && id1 != id0);
        assert_int_equal(npt_tracker_num_tracks(t), 2);
      }
      if (f == 6) { /* either track may take the one detection left */
        kept = p[0].id;
        assert_true(kept == id0 || kept == id1);
      }
      if (f >= 6 && on) /* off, the lost duplicate may take the detection back later */
        assert_int_equal(p[0].id, kept);
      if (f >= 6)
        assert_int_equal(npt_tracker_num_tracks(t), on ? 1 : 2);
      move(p, 2);
    }
    free(p);
    npt_tracker_free(t);
  }
}

/* The first stage's cascade: particle Y, moving at 2 px/frame, is detected in frames 0-9 and then
 * no more, so its lost track's prediction runs on towards particle X, which sits still and is
 * detected every frame.  In frame 20 the prediction reaches X, whose detection is 1 px off its
 * track's prediction: inside X's tight gate, but nearer (in Mahalanobis distance) to the lost
 * track, whose covariance grew over ten frames of prediction.  X's track, matched in the frame
 * before, takes it first: the lost track does not take a tracked particle's detection (one
 * assignment over all of them gave it to Y's track, and X changed identity). */
static void test_lost_track_waits(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, 0, &t), 0);
  int64_t idx = 0, idy = 0, out[2];
  for (int64_t f = 0; f <= 21; f++) {
    npt_track_det d[2];
    size_t n = 0;
    float xc = f == 20 ? 51 : 50;
    d[n++] = (npt_track_det){xc - 4, 46, 8, 8, 0.9f, 1, NULL};
    if (f < 10)
      d[n++] = (npt_track_det){10 + 2 * (float)f - 4, 46, 8, 8, 0.9f, 1, NULL};
    assert_int_equal(npt_tracker_step(t, f, d, n, out), 0);
    if (f == 5) {
      idx = out[0], idy = out[1];
      assert_true(idx > 0 && idy > 0 && idx != idy);
    }
    if (f > 5)
      assert_int_equal(out[0], idx); /* cmocka prints both values */
  }
  npt_tracker_free(t);
}

/* npt_tracker_box: a still particle of side 20 whose detected size jitters by 10 % (independent
 * per frame).  With size_momentum 0.8 its track's box keeps the detection's centre and its size
 * error (rms, against the true 20) is well below the detections' (a smoothed mean of about 9
 * detections: 1/3 of it); with 0 the box is the detection's.  A detection in no track gets 0. */
static void test_box(void **state) {
  (void)state;
  for (int on = 0; on < 2; on++) {
    npt_track_settings s = npt_track_settings_default();
    s.size_momentum = on ? 0.8 : 0;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, 0, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 8, (uint64_t)on);
    double se_det = 0, se_box = 0;
    int nse = 0;
    for (int64_t f = 0; f < 200; f++) {
      double w = 20 * (1 + 0.1 * npt_rng_normal(&g)), h = 20 * (1 + 0.1 * npt_rng_normal(&g));
      npt_track_det det[2] = {
          {(float)(100 - w / 2), (float)(100 - h / 2), (float)w, (float)h, 0.9f, 1, NULL},
          {300, 300, 10, 10, 0.2f, 1, NULL}}; /* low: never in a track */
      int64_t ids[2];
      assert_int_equal(npt_tracker_step(t, f, det, 2, ids), 0);
      float box[4] = {-1, -1, -1, -1};
      assert_int_equal(npt_tracker_box(t, 1, box), 0);
      assert_true(box[0] == -1 && box[3] == -1);
      assert_int_equal(npt_tracker_box(t, 0, box), 1);
      assert_float_equal(box[0] + box[2] / 2, det[0].x + det[0].w / 2, 1e-3);
      assert_float_equal(box[1] + box[3] / 2, det[0].y + det[0].h / 2, 1e-3);
      if (!on) {
        assert_float_equal(box[2], det[0].w, 1e-5);
        assert_float_equal(box[3], det[0].h, 1e-5);
      }
      if (f >= 20) {
        se_det += (w - 20) * (w - 20) + (h - 20) * (h - 20);
        se_box += (box[2] - 20) * (box[2] - 20) + (box[3] - 20) * (box[3] - 20);
        nse += 2;
      }
    }
    double rms_det = sqrt(se_det / nse), rms_box = sqrt(se_box / nse);
    if (on && !(rms_box < 0.5 * rms_det))
      fail_msg("smoothed size rms error %.3f px, detections' %.3f px", rms_box, rms_det);
    npt_tracker_free(t);
  }
}

/* Two particles with the same embedding cross, passing 3 px apart (boxes of 16 px overlapping
 * most of their area): only motion tells them apart. */
static void test_crossing_same_look(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g;
  npt_rng_seed(&g, 12, 0);
  particle *p = new_particles(4);
  p[0].x = 100, p[0].y = 100, p[0].vx = 2;
  p[1].x = 160, p[1].y = 103, p[1].vx = -2;
  /* A second pair crossing at right angles through the same point (frame 15). */
  p[2].x = 300, p[2].y = 300, p[2].vx = 1.5, p[2].vy = 1.5;
  p[3].x = 345, p[3].y = 300, p[3].vx = -1.5, p[3].vy = 1.5;
  random_unit(&g, p[0].emb);
  for (int i = 1; i < 4; i++)
    memcpy(p[i].emb, p[0].emb, sizeof p[0].emb);
  int64_t first[4];
  for (int64_t f = 0; f < 40; f++) {
    step(t, f, p, 4, &g, 0.2, NULL, 0, NULL);
    if (f == 1) {
      for (int i = 0; i < 4; i++)
        first[i] = p[i].id;
      expect_distinct(first, 4);
    }
    if (f == 15) {
      /* The second pair meets exactly: which detection is which is undecidable in this frame
       * alone, so only the pair of ids is checked; velocity must sort them out afterwards. */
      assert_true((p[2].id == first[2] && p[3].id == first[3]) ||
                  (p[2].id == first[3] && p[3].id == first[2]));
      p[2].id = first[2];
      p[3].id = first[3];
    }
    if (f >= 1)
      expect_ids_kept(first, p, 4);
    move(p, 4);
  }
  free(p);
  npt_tracker_free(t);
}

/* Missed detections: gone for exactly lost_frames frames, a particle keeps its id; gone for one
 * more, it gets a new one (after confirmation). */
static void test_missed_detections(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  s.lost_frames = 5;
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g;
  npt_rng_seed(&g, 13, 0);
  particle *p = new_particles(2);
  p[0].x = 100, p[0].y = 100, p[0].vx = 1.5, p[0].vy = 0.5;
  p[1].x = 400, p[1].y = 100, p[1].vx = -1.0, p[1].vy = 1.0;
  random_unit(&g, p[0].emb);
  random_unit(&g, p[1].emb);
  int64_t id0 = 0, id1 = 0;
  for (int64_t f = 0; f < 40; f++) {
    p[0].present = !(f >= 10 && f < 15); /* 5 frames missed */
    p[1].present = !(f >= 10 && f < 16); /* 6 frames missed */
    step(t, f, p, 2, &g, 0.3, NULL, 0, NULL);
    if (f == 9) {
      id0 = p[0].id;
      id1 = p[1].id;
      assert_true(id0 > 0 && id1 > 0 && id0 != id1);
    }
    if (f >= 15)
      assert_int_equal(p[0].id, id0);
    if (f == 16)
      assert_int_equal(p[1].id, -1); /* a new, unconfirmed track */
    if (f >= 17) {
      assert_true(p[1].id > 0);
      assert_true(p[1].id != id1 && p[1].id != id0);
    }
    move(p, 2);
  }
  assert_int_equal(npt_tracker_num_ids(t), 3);
  free(p);
  npt_tracker_free(t);
}

/* False positives scattered at random (high score, random look) are never confirmed, and the
 * true particles keep their ids. */
static void test_false_positives(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g;
  npt_rng_seed(&g, 14, 0);
  const size_t np = 15;
  particle *p = new_particles(np);
  for (size_t i = 0; i < np; i++) {
    p[i].x = npt_rng_range(&g, 100, 1900);
    p[i].y = npt_rng_range(&g, 100, 1900);
    p[i].vx = npt_rng_range(&g, -2, 2);
    p[i].vy = npt_rng_range(&g, -2, 2);
    random_unit(&g, p[i].emb);
  }
  float fe[8][D];
  npt_track_det fp[8];
  int64_t fp_ids[8], first[15];
  for (int64_t f = 0; f < 60; f++) {
    for (int k = 0; k < 8; k++) {
      random_unit(&g, fe[k]);
      fp[k] = (npt_track_det){(float)npt_rng_range(&g, 0, 2000),
                              (float)npt_rng_range(&g, 0, 2000),
                              14,
                              14,
                              0.95f,
                              1,
                              fe[k]};
    }
    step(t, f, p, np, &g, 0.3, fp, 8, fp_ids);
    for (int k = 0; k < 8; k++)
      if (fp_ids[k] != -1)
        fail_msg("frame %lld: false positive %d got id %lld", (long long)f, k,
                 (long long)fp_ids[k]);
    if (f == 1) {
      for (size_t i = 0; i < np; i++)
        first[i] = p[i].id;
      expect_distinct(first, np);
    }
    if (f >= 1)
      expect_ids_kept(first, p, np);
    move(p, np);
  }
  assert_int_equal(npt_tracker_num_ids(t), np);
  free(p);
  npt_tracker_free(t);
}

/* Metal -> oxide shell -> metal: the embedding is replaced by an unrelated one and the class
 * flips, twice, while the particle moves on smoothly; a neighbour that looks like the new
 * appearance passes nearby.  Both keep their ids. */
static void test_appearance_change(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g;
  npt_rng_seed(&g, 15, 0);
  particle *p = new_particles(2);
  float metal[D], oxide[D];
  random_unit(&g, metal);
  orthogonal_unit(&g, metal, oxide);
  p[0].x = 100, p[0].y = 100, p[0].vx = 2, p[0].vy = 1;
  p[1].x = 100, p[1].y = 150, p[1].vx = 2, p[1].vy = 0.5; /* converges to ~25 px apart */
  memcpy(p[0].emb, metal, sizeof metal);
  memcpy(p[1].emb, oxide, sizeof oxide);
  p[1].cls = 2;
  int64_t first[2];
  for (int64_t f = 0; f < 70; f++) {
    int oxidised = f >= 20 && f < 45;
    memcpy(p[0].emb, oxidised ? oxide : metal, sizeof metal);
    p[0].cls = oxidised ? 2 : 1;
    p[0].size = oxidised ? 18 : 16; /* the shell makes it a little larger */
    step(t, f, p, 2, &g, 0.3, NULL, 0, NULL);
    if (f == 1) {
      first[0] = p[0].id;
      first[1] = p[1].id;
      expect_distinct(first, 2);
    }
    if (f >= 1)
      expect_ids_kept(first, p, 2);
    move(p, 2);
  }
  assert_int_equal(npt_tracker_num_ids(t), 2);
  free(p);
  npt_tracker_free(t);
}

/* A particle whose score drops to 0.3 for ten frames is continued by the second pass (its
 * detections keep the id); without the second pass (low_score above 0.3) those detections get
 * no id.  A particle always at 0.3 never starts a track. */
static void test_low_score_second_pass(void **state) {
  (void)state;
  /* mode 0: the default second pass; 1: none (low_score = high_score); 2: a marginal track
   * (scores 0.45) below track.low_track_score 0.5 is not continued by low detections; 3: the
   * same track with low_track_score 0 is. */
  for (int mode = 0; mode < 4; mode++) {
    const int second_pass = mode == 0 || mode == 3;
    npt_track_settings s = npt_track_settings_default();
    if (mode == 1)
      s.low_score = 0.4;
    if (mode >= 2)
      s.low_track_score = mode == 2 ? 0.5 : 0;
    npt_tracker *t;
    assert_int_equal(npt_tracker_create(&s, D, &t), 0);
    npt_rng g;
    npt_rng_seed(&g, 16, 0);
    particle *p = new_particles(2);
    p[0].x = 100, p[0].y = 100, p[0].vx = 1.5, p[0].vy = 1;
    p[1].x = 400, p[1].y = 100, p[1].vx = -1, p[1].vy = 1;
    p[1].score = 0.3f;
    random_unit(&g, p[0].emb);
    random_unit(&g, p[1].emb);
    int64_t id0 = 0;
    for (int64_t f = 0; f < 40; f++) {
      p[0].score = f >= 10 && f < 20 ? 0.3f : mode >= 2 ? 0.45f : 0.9f;
      step(t, f, p, 2, &g, 0.3, NULL, 0, NULL);
      assert_int_equal(p[1].id, -1);
      if (f == 9)
        id0 = p[0].id;
      if (f >= 10 && f < 20)
        assert_int_equal(p[0].id, second_pass ? id0 : -1);
      if (f >= 20) /* without the second pass, re-found as a lost track */
        assert_int_equal(p[0].id, id0);
      move(p, 2);
    }
    assert_int_equal(npt_tracker_num_ids(t), 1);
    free(p);
    npt_tracker_free(t);
  }
}

/* A busy random scene: 150 particles, some entering late and leaving, false positives, low
 * scores.  Returns every detection's id, frame after frame, with each frame's detections in
 * the order given by `perm_seed` (0: as generated), mapped back to generation order. */
static int64_t *busy_scene(uint64_t perm_seed, size_t *n_out) {
  enum { NP = 150, NF = 40, NFP = 5 };
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g, gp;
  npt_rng_seed(&g, 17, 0);
  npt_rng_seed(&gp, 18, perm_seed);
  static particle p[NP];
  for (size_t i = 0; i < NP; i++) {
    p[i].x = npt_rng_range(&g, 0, 600);
    p[i].y = npt_rng_range(&g, 0, 600);
    p[i].vx = npt_rng_range(&g, -2, 2);
    p[i].vy = npt_rng_range(&g, -2, 2);
    p[i].size = npt_rng_range(&g, 8, 20);
    random_unit(&g, p[i].emb);
  }
  int64_t *all = malloc(NF * (NP + NFP) * sizeof *all);
  assert_non_null(all);
  size_t total = 0;
  static npt_track_det dets[NP + NFP], shuffled[NP + NFP];
  static float emb[NP + NFP][D];
  int64_t ids[NP + NFP];
  size_t perm[NP + NFP];
  for (int64_t f = 0; f < NF; f++) {
    size_t n = 0;
    for (size_t i = 0; i < NP; i++) {
      double u = npt_rng_uniform(&g);
      if ((i % 7 == 0 && f < 10) || u < 0.03)
        continue; /* late entries, random misses */
      for (int k = 0; k < D; k++)
        emb[n][k] = p[i].emb[k] + 0.05f * (float)npt_rng_normal(&g);
      double cx = p[i].x + 0.3 * npt_rng_normal(&g), cy = p[i].y + 0.3 * npt_rng_normal(&g);
      float sc = u < 0.1 ? 0.3f : (float)npt_rng_range(&g, 0.6, 1.0);
      dets[n] = (npt_track_det){(float)(cx - p[i].size / 2),
                                (float)(cy - p[i].size / 2),
                                (float)p[i].size,
                                (float)p[i].size,
                                sc,
                                1,
                                emb[n]};
      n++;
    }
    for (int k = 0; k < NFP; k++, n++) {
      random_unit(&g, emb[n]);
      dets[n] = (npt_track_det){(float)npt_rng_range(&g, 0, 600),
                                (float)npt_rng_range(&g, 0, 600),
                                12,
                                12,
                                (float)npt_rng_range(&g, 0.2, 1.0),
                                2,
                                emb[n]};
    }
    for (size_t k = 0; k < n; k++)
      perm[k] = k;
    if (perm_seed)
      for (size_t k = n - 1; k > 0; k--) {
        size_t r = (size_t)npt_rng_int(&gp, 0, (int64_t)k), x = perm[k];
        perm[k] = perm[r];
        perm[r] = x;
      }
    for (size_t k = 0; k < n; k++)
      shuffled[k] = dets[perm[k]];
    assert_int_equal(npt_tracker_step(t, f, shuffled, n, ids), 0);
    for (size_t k = 0; k < n; k++)
      all[total + perm[k]] = ids[k];
    total += n;
    move(p, NP);
  }
  npt_tracker_free(t);
  *n_out = total;
  return all;
}

static void test_determinism(void **state) {
  (void)state;
  size_t n1, n2, n3;
  int64_t *a = busy_scene(0, &n1), *b = busy_scene(0, &n2), *c = busy_scene(99, &n3);
  assert_int_equal(n1, n2);
  assert_int_equal(n1, n3);
  size_t with_id = 0;
  for (size_t k = 0; k < n1; k++) {
    if (a[k] != b[k])
      fail_msg("repeat: detection %zu: id %lld vs %lld", k, (long long)a[k], (long long)b[k]);
    if (a[k] != c[k])
      fail_msg("permuted: detection %zu: id %lld vs %lld", k, (long long)a[k], (long long)c[k]);
    with_id += a[k] > 0;
  }
  assert_true(with_id > n1 / 2); /* the scene was tracked at all */
  free(a);
  free(b);
  free(c);
}

/* 2,000 particles of 10 px on a 20 px grid, jittering by 0.5 px around their places, all with
 * the same look: every identity kept. */
static void test_density(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t;
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  npt_rng g;
  npt_rng_seed(&g, 19, 0);
  const size_t np = 2000;
  particle *p = new_particles(np);
  static int64_t first[2000];
  for (size_t i = 0; i < np; i++) {
    p[i].x = 20.0 * (double)(i % 50);
    p[i].y = 20.0 * (double)(i / 50);
    p[i].size = 10;
    memcpy(p[i].emb, p[0].emb, sizeof p[0].emb);
  }
  random_unit(&g, p[0].emb);
  for (size_t i = 1; i < np; i++)
    memcpy(p[i].emb, p[0].emb, sizeof p[0].emb);
  for (int64_t f = 0; f < 30; f++) {
    step(t, f, p, np, &g, 0.5, NULL, 0, NULL);
    if (f == 1) {
      for (size_t i = 0; i < np; i++)
        first[i] = p[i].id;
      for (size_t i = 0; i < np; i++) /* distinct: ids are 1..np */
        assert_true(first[i] >= 1 && first[i] <= (int64_t)np);
    }
    if (f >= 1)
      expect_ids_kept(first, p, np);
  }
  assert_int_equal(npt_tracker_num_ids(t), np);
  free(p);
  npt_tracker_free(t);
}

static void test_errors_and_config(void **state) {
  (void)state;
  npt_track_settings s = npt_track_settings_default();
  npt_tracker *t = NULL;
  s.embed_weight = 1.5;
  assert_int_equal(npt_tracker_create(&s, D, &t), NPT_EINVAL);
  NPT_ASSERT_CONTAINS(npt_error_msg(NPT_EINVAL), "track.embed_weight");
  s = npt_track_settings_default();
  s.low_score = 0.7;
  assert_int_equal(npt_tracker_create(&s, D, &t), NPT_EINVAL);
  s = npt_track_settings_default();
  assert_int_equal(npt_tracker_create(&s, D, &t), 0);
  int64_t id;
  npt_track_det d = {10, 10, 8, 8, 0.9f, 1, NULL};
  assert_int_equal(npt_tracker_step(t, 5, &d, 1, &id), 0);
  assert_int_equal(npt_tracker_step(t, 5, &d, 1, &id), NPT_EINVAL);
  d.w = 0;
  assert_int_equal(npt_tracker_step(t, 6, &d, 1, &id), NPT_EINVAL);
  d.w = 8;
  assert_int_equal(npt_tracker_step(t, 6, &d, 1, &id), 0);
  assert_true(id > 0); /* without embeddings, motion alone */
  assert_int_equal(npt_tracker_step(t, 7, NULL, 0, NULL), 0);
  assert_int_equal(npt_tracker_num_tracks(t), 1);
  npt_tracker_free(t);

  /* The config section, its defaults equal to npt_track_settings_default. */
  npt_config *cfg;
  assert_int_equal(npt_config_load_text(&cfg, "", "test", NULL, 0), 0);
  npt_track_settings a, b = npt_track_settings_default();
  assert_int_equal(npt_track_settings_get(cfg, &a), 0);
#define SAME(f) assert_true(a.f == b.f)
  SAME(high_score), SAME(low_score), SAME(new_track_score), SAME(match_cost);
  SAME(embed_weight), SAME(iou_match), SAME(low_match), SAME(unconfirmed_match);
  SAME(confirm_frames), SAME(lost_frames), SAME(embed_momentum), SAME(gate);
  SAME(std_weight_position), SAME(std_weight_velocity), SAME(merge_cover), SAME(merge_growth);
  SAME(split_shrink), SAME(split_reach), SAME(low_track_score), SAME(score_momentum);
  SAME(duplicate_iou), SAME(size_momentum);
#undef SAME
  npt_config_free(cfg);
  assert_int_equal(npt_config_load_text(&cfg, "track = { lost_frames = 7; gate = \"position\"; };",
                                        "test", NULL, 0),
                   0);
  assert_int_equal(npt_track_settings_get(cfg, &a), 0);
  assert_int_equal(a.lost_frames, 7);
  assert_int_equal(a.gate, NPT_TRACK_GATE_POSITION);
  npt_config_free(cfg);
  assert_int_equal(npt_config_load_text(&cfg, "track = { low_score = 0.8; };", "test", NULL, 0), 0);
  assert_int_equal(npt_track_settings_get(cfg, &a), NPT_ECONFIG);
  npt_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constant_velocity),
      cmocka_unit_test(test_backfill),
      cmocka_unit_test(test_merge),
      cmocka_unit_test(test_no_merge_when_missed),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_duplicate),
      cmocka_unit_test(test_lost_track_waits),
      cmocka_unit_test(test_box),
      cmocka_unit_test(test_crossing_same_look),
      cmocka_unit_test(test_missed_detections),
      cmocka_unit_test(test_false_positives),
      cmocka_unit_test(test_appearance_change),
      cmocka_unit_test(test_low_score_second_pass),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_density),
      cmocka_unit_test(test_errors_and_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
