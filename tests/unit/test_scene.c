/* The synthetic scene: exact boxes, conservation of volume in merges, splits and ripening,
 * events that end and start tracks at the right frame, no overlaps, determinism, and drawing a
 * video's parameters from the config's ranges. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "config/config.h"
#include "npt_test.h"
#include "synth/scene.h"
#include "synth/scene_internal.h"
#include "synth/shape.h"
#include "synth/synth.h"

/* A moderately busy scene, quick to simulate. */
static npt_scene_params base_params(void) {
  npt_scene_params p = {0};
  p.width = 200, p.height = 160, p.dt = 0.1;
  p.diameter_px = 14, p.size_spread = 0.25, p.coverage = 0.2, p.min_gap_px = 1.0;
  p.aspect_max = 1.4, p.irregularity = 0.08, p.rotation_rad_s = 0.1;
  p.drift_px_s = 3.0, p.drift_wander_s = 10.0, p.diffusion_px2_s = 0.5, p.ref_diameter_px = 14;
  p.ripening_px2_s = 0.0, p.vanish_px = 1.5;
  p.sinter_rate_hz = 0.0, p.sinter_reach = 0.6, p.sinter_triple_prob = 0.3;
  p.sinter_approach_s = 0.5, p.sinter_relax_s = 1.0;
  p.gas = NPT_GAS_REDUCING, p.gas_period_s = 10.0;
  p.oxidation_rate_hz = 0.3, p.reduction_rate_hz = 0.5, p.oxide_expansion = 1.65;
  p.void_frac = 0.6, p.split_prob = 0.5, p.split_min = 2, p.split_max = 6;
  p.lattice_metal_px = 2.5, p.lattice_oxide_px = 2.6, p.zone_axis_frac = 0.3, p.lattice_amp = 0.1;
  return p;
}

static npt_scene *make(const npt_scene_params *p, uint64_t seed) {
  npt_scene *s = NULL;
  int rc = npt_scene_init(&s, p, seed);
  if (rc < 0)
    fail_msg("npt_scene_init: %s", npt_error_msg(rc));
  return s;
}

static void observe(npt_scene *s, int64_t f, const npt_scene_obs **obs, int *n,
                    const npt_scene_event **ev, int *ne) {
  int rc = npt_scene_observe(s, f, 0, obs, n, ev, ne);
  if (rc < 0)
    fail_msg("npt_scene_observe: %s", npt_error_msg(rc));
}

static void step(npt_scene *s) {
  int rc = npt_scene_step(s);
  if (rc < 0)
    fail_msg("npt_scene_step: %s", npt_error_msg(rc));
}

/* The fast exact box equals shape.c's (the reference) for outlines of every kind allowed. */
static void test_unit_bbox_matches_shape(void **state) {
  (void)state;
  npt_rng r;
  npt_rng_seed(&r, 11, 0);
  for (int it = 0; it < 400; it++) {
    npt__unit_shape u = {npt_rng_range(&r, 1.0, 3.0),    npt_rng_range(&r, -7.0, 7.0),
                         npt_rng_range(&r, -0.22, 0.22), npt_rng_range(&r, 0.0, 6.3),
                         npt_rng_range(&r, -0.22, 0.22), npt_rng_range(&r, 0.0, 6.3)};
    double R = npt_rng_logrange(&r, 1.0, 200.0), k = sqrt(u.aspect);
    npt_synth_body b = {3.25, -7.5, R * k, R / k, u.angle, u.h3, u.p3, u.h4, u.p4};
    double e[4], f[4];
    npt_synth_body_bbox(&b, &e[0], &e[1], &e[2], &e[3]);
    npt__unit_bbox(&u, &f[0], &f[1], &f[2], &f[3]);
    NPT_ASSERT_NEAR(3.25 + R * f[0], e[0], 1e-6 * R);
    NPT_ASSERT_NEAR(-7.5 + R * f[1], e[1], 1e-6 * R);
    NPT_ASSERT_NEAR(3.25 + R * f[2], e[2], 1e-6 * R);
    NPT_ASSERT_NEAR(-7.5 + R * f[3], e[3], 1e-6 * R);
  }
}

/* Every reported box is npt_synth_body_bbox of the outline the renderer is given, and its
 * visibility is the fraction of it inside the frame. */
static void test_gt_box_is_shape_bbox(void **state) {
  (void)state;
  npt_scene_params p = base_params();
  p.gas = NPT_GAS_CYCLE, p.sinter_rate_hz = 0.2, p.ripening_px2_s = 0.5;
  npt_scene *s = make(&p, 3);
  int checked = 0, partial = 0;
  for (int f = 0; f < 60; f++) {
    if (f)
      step(s);
    const npt_scene_obs *obs;
    const npt_scene_event *ev;
    int n, ne;
    observe(s, f, &obs, &n, &ev, &ne);
    assert_true(n > 5);
    for (int k = 0; k < n && f % 3 == 0; k++) { /* shape.c's box is slow: every 3rd frame */
      double x0, y0, x1, y1;
      npt_synth_body_bbox(&obs[k].particle.outer, &x0, &y0, &x1, &y1);
      NPT_ASSERT_NEAR(obs[k].x0, x0, 1e-6);
      NPT_ASSERT_NEAR(obs[k].y0, y0, 1e-6);
      NPT_ASSERT_NEAR(obs[k].x1, x1, 1e-6);
      NPT_ASSERT_NEAR(obs[k].y1, y1, 1e-6);
      double cx = fmin(x1, p.width - 0.5) - fmax(x0, -0.5);
      double cy = fmin(y1, p.height - 0.5) - fmax(y0, -0.5);
      NPT_ASSERT_NEAR(obs[k].visibility, cx * cy / ((x1 - x0) * (y1 - y0)), 1e-9);
      assert_true(obs[k].visibility > 0.0 && obs[k].visibility <= 1.0);
      partial += obs[k].visibility < 1.0;
      if (k)
        assert_true(obs[k].id > obs[k - 1].id);
      checked++;
    }
  }
  assert_true(checked > 200);
  assert_true(partial > 10); /* particles at the border, entering and leaving */
  npt_scene_free(s);
}

/* Merges and splits conserve metal-equivalent volume and have the right arity. */
static void test_events_conserve_volume(void **state) {
  (void)state;
  npt_scene_params p = base_params();
  p.coverage = 0.3, p.sinter_rate_hz = 0.5, p.gas = NPT_GAS_CYCLE, p.gas_period_s = 8.0;
  p.oxidation_rate_hz = 0.6, p.split_prob = 1.0;
  npt_scene *s = make(&p, 5);
  int merges = 0, splits = 0, triples = 0;
  for (int f = 0; f < 200; f++) {
    if (f)
      step(s);
    const npt_scene_obs *obs;
    const npt_scene_event *ev;
    int n, ne;
    observe(s, f, &obs, &n, &ev, &ne);
    for (int k = 0; k < ne; k++) {
      NPT_ASSERT_NEAR(ev[k].child_volume, ev[k].parent_volume, 1e-9 * ev[k].parent_volume);
      assert_int_equal(ev[k].frame, f);
      if (ev[k].type == NPT_EVENT_MERGE) {
        assert_true(ev[k].n_parents >= 2 && ev[k].n_parents <= 3);
        assert_int_equal(ev[k].n_children, 1);
        merges++, triples += ev[k].n_parents == 3;
      } else {
        assert_int_equal(ev[k].n_parents, 1);
        assert_true(ev[k].n_children >= 2 && ev[k].n_children <= 6);
        splits++;
      }
    }
  }
  if (merges < 5 || splits < 3 || triples < 1)
    fail_msg("too few events to test: %d merges (%d triple), %d splits", merges, triples, splits);
  npt_scene_free(s);
}

/* A parent is never seen at or after its event's frame; a child never before it, and a child in
 * view at the event's frame is seen there. */
static void test_events_end_and_start_tracks(void **state) {
  (void)state;
  enum { FRAMES = 220, MAX_ID = 100000 };
  npt_scene_params p = base_params();
  p.coverage = 0.3, p.sinter_rate_hz = 0.5, p.gas = NPT_GAS_CYCLE, p.gas_period_s = 8.0;
  p.oxidation_rate_hz = 0.6, p.split_prob = 1.0;
  npt_scene *s = make(&p, 9);
  int *first = calloc(MAX_ID, sizeof *first), *last = calloc(MAX_ID, sizeof *last);
  npt_scene_event *events = calloc(4096, sizeof *events);
  int n_events = 0;
  for (int f = 0; f < FRAMES; f++) {
    if (f)
      step(s);
    const npt_scene_obs *obs;
    const npt_scene_event *ev;
    int n, ne;
    observe(s, f, &obs, &n, &ev, &ne);
    for (int k = 0; k < n; k++) {
      assert_true(obs[k].id > 0 && obs[k].id < MAX_ID);
      if (!first[obs[k].id])
        first[obs[k].id] = f + 1; /* 1-based here, 0 = never */
      last[obs[k].id] = f + 1;
    }
    for (int k = 0; k < ne && n_events < 4096; k++)
      events[n_events++] = ev[k];
  }
  int exact = 0;
  for (int e = 0; e < n_events; e++) {
    int f = (int)events[e].frame + 1, touches = 0;
    for (int m = 0; m < events[e].n_parents; m++) {
      int64_t id = events[e].parents[m];
      if (last[id] >= f)
        fail_msg("event at frame %d: parent %lld seen at frame %d", f, (long long)id, last[id]);
      touches += last[id] == f - 1;
    }
    for (int m = 0; m < events[e].n_children; m++) {
      int64_t id = events[e].children[m];
      if (first[id] && first[id] < f)
        fail_msg("event at frame %d: child %lld seen before, at %d", f, (long long)id, first[id]);
      touches += first[id] == f;
    }
    assert_true(touches > 0);
    exact++;
  }
  assert_true(exact >= 5);
  free(first), free(last), free(events);
  npt_scene_free(s);
}

/* Deepest point of body a inside body b, px (<= 0: none). */
static double penetration(const npt_synth_body *a, const npt_synth_body *b) {
  static double cs[96][2];
  if (cs[1][1] == 0.0)
    for (int i = 0; i < 96; i++)
      cs[i][0] = cos(2.0 * M_PI * i / 96), cs[i][1] = sin(2.0 * M_PI * i / 96);
  double worst = 0.0, ca = cos(a->angle), sa = sin(a->angle);
  for (int i = 0; i < 96; i++) {
    double c = cs[i][0], s = cs[i][1];
    double r = npt_synth_outline_radius(a, c, s);
    double x = a->x + r * (ca * c - sa * s), y = a->y + r * (sa * c + ca * s);
    double rho = npt_synth_body_rho(b, x, y);
    if (rho < 1.0) {
      double d = hypot(x - b->x, y - b->y);
      worst = fmax(worst, rho > 0.0 ? d / rho - d : 1e9);
    }
  }
  return worst;
}

/* A dense monolayer with strong Brownian motion stays free of overlaps (hard-core repulsion);
 * only sintering partners may touch. */
static void test_no_overlaps(void **state) {
  (void)state;
  npt_scene_params p = base_params();
  p.width = p.height = 120;
  p.diameter_px = 6.5, p.size_spread = 0.12, p.coverage = 0.45, p.min_gap_px = 1.0;
  p.aspect_max = 1.15, p.irregularity = 0.04, p.diffusion_px2_s = 2.0, p.ref_diameter_px = 6.5;
  p.rotation_rad_s = 0.5, p.sinter_rate_hz = 0.05, p.ripening_px2_s = 0.2;
  npt_scene *s = make(&p, 21);
  int n0 = npt_scene_count(s);
  assert_true(n0 > 200);
  double worst = 0.0;
  for (int f = 0; f < 40; f++) {
    if (f)
      step(s);
    int n = npt_scene_count(s);
    npt_scene_probe *pr = malloc(sizeof *pr * (size_t)n);
    for (int i = 0; i < n; i++)
      npt_scene_probe_get(s, i, &pr[i]);
    for (int i = 0; i < n; i++)
      for (int j = i + 1; j < n; j++) {
        if (pr[i].group && pr[i].group == pr[j].group)
          continue;
        double ri = fmax(pr[i].outer.a, pr[i].outer.b) * 1.5;
        double rj = fmax(pr[j].outer.a, pr[j].outer.b) * 1.5;
        if (hypot(pr[i].outer.x - pr[j].outer.x, pr[i].outer.y - pr[j].outer.y) > ri + rj)
          continue;
        worst = fmax(worst, penetration(&pr[i].outer, &pr[j].outer));
        worst = fmax(worst, penetration(&pr[j].outer, &pr[i].outer));
      }
    free(pr);
  }
  if (worst > 0.05)
    fail_msg("particles overlap by up to %.3f px (tolerance 0.05)", worst);
  npt_scene_free(s);
}

/* Ripening conserves the total volume exactly: what shrinking and vanishing particles lose, the
 * growing ones gain. */
static void test_ripening_conserves_volume(void **state) {
  (void)state;
  npt_scene_params p = base_params();
  p.drift_px_s = 0.0, p.diffusion_px2_s = 0.0, p.ripening_px2_s = 3.0, p.size_spread = 0.4;
  npt_scene *s = make(&p, 4);
  int vanished = 0, grew = 0;
  for (int f = 0; f < 60; f++) {
    int n = npt_scene_count(s);
    npt_scene_probe *before = malloc(sizeof *before * (size_t)n);
    double v0 = 0.0, v1 = 0.0;
    int64_t newest = 0;
    for (int i = 0; i < n; i++) {
      npt_scene_probe_get(s, i, &before[i]);
      v0 += before[i].volume;
      newest = before[i].internal_id > newest ? before[i].internal_id : newest;
    }
    step(s);
    int m = npt_scene_count(s), gone = n;
    for (int i = 0; i < m; i++) {
      npt_scene_probe q;
      npt_scene_probe_get(s, i, &q);
      if (q.internal_id > newest)
        continue; /* specimen newly brought into the simulation */
      v1 += q.volume;
      gone--;
      for (int k = 0; k < n; k++)
        if (before[k].internal_id == q.internal_id)
          grew += q.volume > before[k].volume;
    }
    /* The vanished particles' volume went to the survivors. */
    NPT_ASSERT_NEAR(v1, v0, 1e-9 * v0);
    vanished += gone;
    free(before);
  }
  assert_true(vanished > 0);
  assert_true(grew > 0);
  npt_scene_free(s);
}

/* Oxidation turns particles into larger hollow oxide shells (class 2). */
static void test_oxidation_makes_shells(void **state) {
  (void)state;
  npt_scene_params p = base_params();
  p.gas = NPT_GAS_OXIDISING, p.oxidation_rate_hz = 1.0, p.drift_px_s = 0.0;
  npt_scene *s = make(&p, 8);
  const npt_scene_obs *obs;
  const npt_scene_event *ev;
  int n, ne;
  observe(s, 0, &obs, &n, &ev, &ne);
  int64_t id0 = obs[n / 2].id;
  double w0 = obs[n / 2].x1 - obs[n / 2].x0;
  for (int f = 1; f < 80; f++)
    step(s);
  observe(s, 79, &obs, &n, &ev, &ne);
  int shells = 0, found = 0;
  for (int k = 0; k < n; k++) {
    shells += obs[k].cls == 2 && obs[k].particle.void_frac > 0.4 && obs[k].particle.core_frac < 0.3;
    if (obs[k].id == id0) {
      found = 1;
      assert_true(obs[k].x1 - obs[k].x0 > 1.1 * w0); /* the oxide takes more room */
    }
  }
  assert_true(found);
  assert_true(shells > n / 2);
  npt_scene_free(s);
}

static void run_and_hash(uint64_t seed, uint64_t *hash) {
  npt_scene_params p = base_params();
  p.gas = NPT_GAS_CYCLE, p.sinter_rate_hz = 0.3, p.ripening_px2_s = 0.3;
  npt_scene *s = make(&p, seed);
  uint64_t h = 1469598103934665603ULL;
  for (int f = 0; f < 40; f++) {
    if (f)
      step(s);
    const npt_scene_obs *obs;
    const npt_scene_event *ev;
    int n, ne;
    observe(s, f, &obs, &n, &ev, &ne);
    for (int k = 0; k < n; k++) {
      /* Field by field: the struct has padding. */
      const npt_synth_particle *q = &obs[k].particle;
      double v[] = {(double)obs[k].id, obs[k].cls,
                    obs[k].x0,         obs[k].y0,
                    obs[k].x1,         obs[k].y1,
                    obs[k].visibility, q->outer.a,
                    q->outer.b,        q->outer.angle,
                    q->void_frac,      q->core_frac,
                    q->core_dx,        q->lattice_period_px,
                    q->lattice_angle};
      const unsigned char *b = (const unsigned char *)v;
      for (size_t i = 0; i < sizeof v; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    }
  }
  *hash = h;
  npt_scene_free(s);
}

static void test_deterministic(void **state) {
  (void)state;
  uint64_t a, b, c;
  run_and_hash(77, &a);
  run_and_hash(77, &b);
  run_and_hash(78, &c);
  assert_true(a == b);
  assert_true(a != c);
}

static void test_bad_params(void **state) {
  (void)state;
  npt_scene_params p = base_params();
  p.dt = 0.0;
  npt_scene *s = NULL;
  int rc = npt_scene_init(&s, &p, 1);
  assert_int_equal(rc, NPT_EINVAL);
  assert_null(s);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "frame interval");
}

/* Ranges are drawn within their bounds (log-uniformly where flagged), the same for a seed. */
static void test_draw_from_ranges(void **state) {
  (void)state;
  const char *over[] = {"synth.dose_e_px=[10.0, 1000.0]", "synth.coverage=[0.1, 0.2]",
                        "synth.seed=5"};
  double dose[2];
  for (int rep = 0; rep < 2; rep++) {
    npt_config *cfg = NULL;
    assert_int_equal(npt_config_load_text(&cfg, "", "test", over, 3), 0);
    npt_synth_video v;
    assert_int_equal(npt_synth_draw(cfg, &v), 0);
    assert_true(v.optics.dose >= 10.0 && v.optics.dose <= 1000.0);
    assert_true(v.scene.coverage >= 0.1 && v.scene.coverage <= 0.2);
    NPT_ASSERT_NEAR(v.scene.diameter_px * v.pixel_size_nm, 0.0, 1e9); /* finite */
    assert_true(v.pixel_size_nm >= 0.1 && v.pixel_size_nm <= 0.3);
    dose[rep] = v.optics.dose;
    npt_config_free(cfg);
  }
  assert_true(dose[0] == dose[1]);
  /* Different seeds spread over the range, log-uniformly: about half below the geometric
   * mean (100), not a quarter as a uniform draw would give. */
  int below = 0;
  for (int seed = 0; seed < 400; seed++) {
    char sb[64];
    snprintf(sb, sizeof sb, "synth.seed=%d", seed);
    const char *o2[] = {over[0], sb};
    npt_config *cfg = NULL;
    assert_int_equal(npt_config_load_text(&cfg, "", "test", o2, 2), 0);
    npt_synth_video v;
    assert_int_equal(npt_synth_draw(cfg, &v), 0);
    below += v.optics.dose < 100.0;
    npt_config_free(cfg);
  }
  assert_true(below > 160 && below < 240);
  npt_config *cfg = NULL;
  const char *o3[] = {"synth.bit_depth=12"};
  assert_int_equal(npt_config_load_text(&cfg, "", "test", o3, 1), 0);
  npt_synth_video v;
  int rc = npt_synth_draw(cfg, &v);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "synth.bit_depth must be 8 or 16 (got 12)");
  npt_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unit_bbox_matches_shape),
      cmocka_unit_test(test_gt_box_is_shape_bbox),
      cmocka_unit_test(test_events_conserve_volume),
      cmocka_unit_test(test_events_end_and_start_tracks),
      cmocka_unit_test(test_no_overlaps),
      cmocka_unit_test(test_ripening_conserves_volume),
      cmocka_unit_test(test_oxidation_makes_shells),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_draw_from_ranges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
