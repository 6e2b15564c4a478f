/* The synthetic scene's life cycle: parameters, particles, populating the specimen tile by tile
 * around the drifting field of view, and what each frame shows (boxes, events, public ids).
 * The physics of a time step is in scene_dynamics.c, scene_sinter.c and scene_redox.c. */
#include "synth/scene.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/scene_internal.h"

/* Independent random streams, so that e.g. the drift does not change when sintering is turned
 * on. */
enum { STREAM_DRIFT = 101, STREAM_MOTION, STREAM_EVENT, STREAM_POP };

static int check_params(const npt_scene_params *p) {
#define REQUIRE(cond, what)                                                                        \
  if (!(cond))                                                                                     \
  return npt_error_set(NPT_EINVAL, "synthetic scene: %s", what)
  REQUIRE(p->width >= 1 && p->height >= 1, "frame size must be positive");
  REQUIRE(p->dt > 0 && isfinite(p->dt), "frame interval must be positive");
  REQUIRE(p->diameter_px > 0 && isfinite(p->diameter_px), "diameter must be positive");
  REQUIRE(p->size_spread >= 0, "size spread must be >= 0");
  REQUIRE(p->coverage >= 0 && p->coverage <= 0.8, "coverage must be in [0, 0.8]");
  REQUIRE(p->min_gap_px >= 0, "min gap must be >= 0");
  REQUIRE(p->aspect_max >= 1 && p->aspect_max <= 4, "aspect_max must be in [1, 4]");
  REQUIRE(p->irregularity >= 0 && p->irregularity <= 0.24, "irregularity must be in [0, 0.24]");
  REQUIRE(p->drift_px_s >= 0 && p->drift_wander_s > 0, "drift must be >= 0, wander time > 0");
  REQUIRE(p->diffusion_px2_s >= 0 && p->ref_diameter_px > 0, "diffusion must be >= 0");
  REQUIRE(p->ripening_px2_s >= 0 && p->vanish_px > 0, "ripening must be >= 0");
  REQUIRE(p->sinter_rate_hz >= 0 && p->sinter_reach >= 0 && p->sinter_approach_s > 0 &&
              p->sinter_relax_s > 0,
          "sintering rates and times must be positive");
  REQUIRE(p->gas_period_s > 0 && p->oxidation_rate_hz >= 0 && p->reduction_rate_hz >= 0,
          "gas period and redox rates must be positive");
  REQUIRE(p->oxide_expansion >= 1 && p->void_frac >= 0 && p->void_frac < 0.95,
          "oxide expansion must be >= 1 and void fraction in [0, 0.95)");
  REQUIRE(p->split_min >= 2 && p->split_max >= p->split_min &&
              p->split_max <= NPT_SCENE_MAX_CHILDREN,
          "split children must be in [2, 12]");
#undef REQUIRE
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Particles */

int npt__particle_new(npt_scene *s, npt__particle **out) {
  NPT__GROW(s->part, s->cap, s->n + 1);
  npt__particle *q = &s->part[s->n++];
  memset(q, 0, sizeof *q);
  s->version++;
  q->iid = s->next_iid++;
  q->seen_frame = -1;
  *out = q;
  return 0;
}

void npt__particle_remove(npt_scene *s, int i) {
  s->version++;
  if (s->part[i].group)
    npt__group_dissolve(s, s->part[i].group - 1);
  int last = s->n - 1;
  if (i != last) {
    s->part[i] = s->part[last];
    /* The moved particle may belong to a group, which refers to it by index. */
    int g = s->part[i].group;
    if (g)
      for (int m = 0; m < s->groups[g - 1].n; m++)
        if (s->groups[g - 1].member[m] == last)
          s->groups[g - 1].member[m] = i;
  }
  s->n--;
}

void npt__random_outline(npt_scene *s, npt_rng *r, npt__particle *q) {
  const npt_scene_params *p = &s->p;
  q->aspect_final = npt_rng_range(r, 1.0, p->aspect_max);
  q->aspect0 = q->aspect_final;
  q->t_shape = s->t;
  q->relax_s = p->sinter_relax_s * npt_rng_range(r, 0.7, 1.3);
  q->angle = npt_rng_range(r, 0.0, 2.0 * M_PI);
  q->omega = p->rotation_rad_s * npt_rng_normal(r);
  q->h3 = npt_rng_range(r, 0.0, p->irregularity);
  q->p3 = npt_rng_range(r, 0.0, 2.0 * M_PI);
  q->h4 = npt_rng_range(r, 0.0, p->irregularity);
  q->p4 = npt_rng_range(r, 0.0, 2.0 * M_PI);
  q->ox_mult = exp(0.3 * npt_rng_normal(r));
  q->core_dir = npt_rng_range(r, 0.0, 2.0 * M_PI);
  q->zone = npt_rng_uniform(r) < p->zone_axis_frac;
  q->lat_off = npt_rng_range(r, 0.0, M_PI);
  q->lat_phase = npt_rng_range(r, 0.0, 2.0 * M_PI);
  q->d.shape.aspect = 0.0; /* forces the first display update */
}

/* ---------------------------------------------------------------------------------------------
 * Population: a hexagonal lattice of candidate sites in specimen coordinates, randomly
 * oriented, each site holding a particle with some probability, jittered inside its cell.  Dense
 * coverage fills nearly every site (an ordered-looking monolayer, as self-assembled particles
 * are); sparse coverage leaves most empty and jitters widely (random-looking).  Tiles of the
 * specimen are filled when they come near the field of view. */

static double draw_diameter(npt_scene *s, npt_rng *r) {
  const npt_scene_params *p = &s->p;
  double lo = p->diameter_px * exp(-2.5 * p->size_spread), hi = s->max_draw;
  double lim = 1.5 * p->vanish_px;
  if (lo < lim)
    lo = lim;
  for (int tries = 0; tries < 100; tries++) {
    double d = p->diameter_px * exp(p->size_spread * npt_rng_normal(r));
    if (d >= lo && d <= hi)
      return d;
  }
  return p->diameter_px < hi ? p->diameter_px : hi;
}

static int fill_tile(npt_scene *s, int64_t tx, int64_t ty, double fill) {
  npt_rng *r = &s->rng_pop;
  double T = s->tile, x0 = (double)tx * T, y0 = (double)ty * T;
  /* Site (i, j) is at o + i e1 + j e2; the lattice indices of the tile's corners bound it. */
  double det = s->site_e1x * s->site_e2y - s->site_e1y * s->site_e2x;
  double imin = HUGE_VAL, imax = -HUGE_VAL, jmin = HUGE_VAL, jmax = -HUGE_VAL;
  for (int c = 0; c < 4; c++) {
    double px = x0 + (c & 1) * T - s->site_ox, py = y0 + (c >> 1) * T - s->site_oy;
    double i = (px * s->site_e2y - py * s->site_e2x) / det;
    double j = (s->site_e1x * py - s->site_e1y * px) / det;
    imin = fmin(imin, i), imax = fmax(imax, i), jmin = fmin(jmin, j), jmax = fmax(jmax, j);
  }
  for (int64_t j = (int64_t)floor(jmin); j <= (int64_t)ceil(jmax); j++)
    for (int64_t i = (int64_t)floor(imin); i <= (int64_t)ceil(imax); i++) {
      double sx = s->site_ox + (double)i * s->site_e1x + (double)j * s->site_e2x;
      double sy = s->site_oy + (double)i * s->site_e1y + (double)j * s->site_e2y;
      if (sx < x0 || sx >= x0 + T || sy < y0 || sy >= y0 + T)
        continue;
      if (npt_rng_uniform(r) >= fill)
        continue;
      /* Later tiles look like the specimen has evolved: a random existing particle lends its
       * size and oxidation state (otherwise fresh metal particles would drift into a field of
       * ripened shells). */
      double r0, ox = 0.0;
      int donor = s->t > 0.0 && s->n > 0 ? (int)npt_rng_int(r, 0, s->n - 1) : -1;
      if (donor >= 0) {
        r0 = s->part[donor].r0 * exp(0.05 * npt_rng_normal(r));
        ox = s->part[donor].ox;
      } else {
        r0 = 0.5 * draw_diameter(s, r);
      }
      npt__particle *q;
      NPT_TRY(npt__particle_new(s, &q));
      q->r0 = r0;
      q->ox = ox;
      npt__random_outline(s, r, q);
      npt__refresh_particle(s, q);
      double room = 0.5 * s->site_spacing - q->rout * q->d.umax - 0.5 * s->p.min_gap_px;
      double jr = room > 0.0 ? room * sqrt(npt_rng_uniform(r)) : 0.0;
      double ja = npt_rng_range(r, 0.0, 2.0 * M_PI);
      q->x = sx + jr * cos(ja);
      q->y = sy + jr * sin(ja);
    }
  return 0;
}

int npt__populate(npt_scene *s) {
  if (s->site_spacing <= 0.0)
    return 0;
  /* The field of view in specimen coordinates, and margins that keep births and deaths out of
   * sight: a particle is born at least one largest diameter outside the view. */
  double wx0 = -0.5 - s->drift_x, wy0 = -0.5 - s->drift_y;
  double wx1 = wx0 + s->p.width, wy1 = wy0 + s->p.height;
  double biggest = s->max_diameter;
  for (int i = 0; i < s->n; i++)
    biggest = fmax(biggest, 2.0 * s->part[i].rout * s->part[i].d.umax);
  double mpop = biggest + 4.0, mkeep = mpop + s->tile, T = s->tile;
  int64_t key[4] = {(int64_t)floor((wx0 - mpop) / T), (int64_t)floor((wy0 - mpop) / T),
                    (int64_t)floor((wx1 + mpop) / T), (int64_t)floor((wy1 + mpop) / T)};
  if (memcmp(key, s->pop_key, sizeof key)) {
    memcpy(s->pop_key, key, sizeof key);
    /* Forget tiles far outside, then fill the new ones. */
    for (int k = 0; k < s->n_tiles;) {
      double tx0 = (double)s->tiles[k].tx * T, ty0 = (double)s->tiles[k].ty * T;
      if (tx0 + T < wx0 - mkeep || tx0 > wx1 + mkeep || ty0 + T < wy0 - mkeep || ty0 > wy1 + mkeep)
        s->tiles[k] = s->tiles[--s->n_tiles];
      else
        k++;
    }
    double fill = s->site_fill0;
    if (s->t > 0.0 && s->n_tiles > 0) {
      double density = s->n / (s->n_tiles * T * T);
      fill *= fmin(2.0, density / s->density0);
      fill = fmin(fill, 1.0);
    }
    for (int64_t ty = key[1]; ty <= key[3]; ty++)
      for (int64_t tx = key[0]; tx <= key[2]; tx++) {
        int known = 0;
        for (int k = 0; k < s->n_tiles && !known; k++)
          known = s->tiles[k].tx == tx && s->tiles[k].ty == ty;
        if (known)
          continue;
        NPT__GROW(s->tiles, s->cap_tiles, s->n_tiles + 1);
        s->tiles[s->n_tiles++] = (npt__tile){tx, ty};
        NPT_TRY(fill_tile(s, tx, ty, fill));
      }
  }
  /* Particles far outside the view leave the simulation. */
  for (int i = 0; i < s->n;) {
    const npt__particle *q = &s->part[i];
    if (q->x < wx0 - mkeep || q->x > wx1 + mkeep || q->y < wy0 - mkeep || q->y > wy1 + mkeep)
      npt__particle_remove(s, i);
    else
      i++;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Life cycle */

int npt_scene_init(npt_scene **out, const npt_scene_params *p, uint64_t seed) {
  *out = NULL;
  NPT_TRY(check_params(p));
  npt_scene *s = calloc(1, sizeof *s);
  NPT_ALLOC_CHECK(s);
  s->p = *p;
  s->next_iid = 1;
  s->next_pub = 1;
  s->last_frame = -1;
  npt_rng_seed(&s->rng_drift, seed, STREAM_DRIFT);
  npt_rng_seed(&s->rng_motion, seed, STREAM_MOTION);
  npt_rng_seed(&s->rng_event, seed, STREAM_EVENT);
  npt_rng_seed(&s->rng_pop, seed, STREAM_POP);
  s->gap = 0.5 * p->min_gap_px;

  /* Sub-steps: short enough that a Brownian step of a small particle stays below ~0.3 px and
   * sintering and relaxation are resolved; at ordinary frame rates one per frame. */
  double dmin = fmax(0.5 * p->diameter_px, 2.0 * p->vanish_px);
  double dmax = p->diffusion_px2_s * p->ref_diameter_px / dmin;
  double h = fmin(0.1, 0.25 * fmin(p->sinter_approach_s, p->sinter_relax_s));
  if (dmax > 0)
    h = fmin(h, 0.09 / (2.0 * dmax));
  s->n_sub = (int)ceil(p->dt / h - 1e-9);
  if (s->n_sub < 1)
    s->n_sub = 1;
  if (s->n_sub > 50)
    s->n_sub = 50;
  s->dt_sub = p->dt / s->n_sub;

  s->drift_heading = npt_rng_range(&s->rng_drift, 0.0, 2.0 * M_PI);
  s->drift_speed_factor = 1.0;

  /* Size distribution and the site lattice it needs for the coverage. */
  double side = p->width < p->height ? p->width : p->height;
  s->max_draw = fmin(p->diameter_px * exp(2.5 * p->size_spread), side / 3.0);
  s->max_draw = fmax(s->max_draw, fmin(p->diameter_px, side / 3.0));
  double mean_d2 = p->diameter_px * p->diameter_px * exp(2.0 * p->size_spread * p->size_spread);
  s->density0 = p->coverage / (0.25 * M_PI * mean_d2);
  s->site_fill0 = 0.3 + 0.7 * fmin(1.0, p->coverage / 0.35);
  double extent = s->max_draw * sqrt(p->aspect_max) * (1.0 + 2.0 * p->irregularity);
  s->tile = 32.0;
  if (s->density0 > 0.0) {
    double site_density = s->density0 / s->site_fill0;
    s->site_spacing = sqrt(2.0 / (sqrt(3.0) * site_density));
    double th = npt_rng_range(&s->rng_pop, 0.0, M_PI / 3.0);
    s->site_e1x = s->site_spacing * cos(th), s->site_e1y = s->site_spacing * sin(th);
    s->site_e2x = s->site_spacing * cos(th + M_PI / 3.0);
    s->site_e2y = s->site_spacing * sin(th + M_PI / 3.0);
    double u = npt_rng_uniform(&s->rng_pop), v = npt_rng_uniform(&s->rng_pop);
    s->site_ox = u * s->site_e1x + v * s->site_e2x;
    s->site_oy = u * s->site_e1y + v * s->site_e2y;
    s->tile = fmax(s->tile, fmax(2.0 * extent, 2.0 * s->site_spacing));
  }
  s->max_diameter = extent;
  /* Grid cells fit two of the largest initial particles and the pair reach. */
  s->r_small = 0.5 * s->max_diameter + 0.5 * s->gap;
  s->cell = 2.0 * s->r_small + s->gap + 1.0;

  s->pairs_version = -1;
  int rc = npt__populate(s);
  if (rc == 0)
    rc = npt__relax_overlaps(s, 40);
  if (rc < 0) {
    npt_scene_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void npt_scene_free(npt_scene *s) {
  if (!s)
    return;
  free(s->part);
  free(s->groups);
  free(s->tiles);
  free(s->cell_start);
  free(s->cell_items);
  free(s->cell_of);
  free(s->big);
  free(s->pairs);
  free(s->pending);
  free(s->obs);
  free(s->obs_part);
  free(s->fresh);
  free(s->order);
  free(s->obs_tmp);
  free(s->events);
  free(s);
}

int npt_scene_step(npt_scene *s) {
  for (int k = 0; k < s->n_sub; k++)
    NPT_TRY(npt__scene_substep(s));
  return 0;
}

void npt_scene_drift(const npt_scene *s, double *dx, double *dy) {
  *dx = s->drift_x;
  *dy = s->drift_y;
}

/* ---------------------------------------------------------------------------------------------
 * Events */

int npt__event_push(npt_scene *s, npt_event_type type, const int *parents, int n_parents,
                    const int *children, int n_children) {
  NPT__GROW(s->pending, s->cap_pending, s->n_pending + 1);
  npt__pending *e = &s->pending[s->n_pending++];
  memset(e, 0, sizeof *e);
  e->ev.type = type;
  e->ev.n_parents = n_parents;
  e->ev.n_children = n_children;
  for (int k = 0; k < n_parents; k++) {
    const npt__particle *q = &s->part[parents[k]];
    e->parent_iid[k] = q->iid;
    e->parent_pub[k] = q->pub;
    e->parent_seen[k] = q->seen_frame;
    e->ev.parent_volume += 4.0 / 3.0 * M_PI * q->r0 * q->r0 * q->r0;
  }
  for (int k = 0; k < n_children; k++) {
    const npt__particle *q = &s->part[children[k]];
    e->child_iid[k] = q->iid;
    e->ev.child_volume += 4.0 / 3.0 * M_PI * q->r0 * q->r0 * q->r0;
  }
  if (type == NPT_EVENT_MERGE)
    s->n_merges++;
  else
    s->n_splits++;
  return 0;
}

void npt_scene_event_counts(const npt_scene *s, int64_t *merges, int64_t *splits) {
  *merges = s->n_merges;
  *splits = s->n_splits;
}

/* ---------------------------------------------------------------------------------------------
 * Observation */

static void box_of(const npt_scene *s, const npt__particle *q, double *x0, double *y0, double *x1,
                   double *y1) {
  double bx = q->x + s->drift_x, by = q->y + s->drift_y;
  *x0 = bx + q->rout * q->d.ux0;
  *x1 = bx + q->rout * q->d.ux1;
  *y0 = by + q->rout * q->d.uy0;
  *y1 = by + q->rout * q->d.uy1;
}

/* Fraction of the box inside the frame [-0.5, W-0.5] x [-0.5, H-0.5]. */
static double visibility(const npt_scene *s, double x0, double y0, double x1, double y1) {
  double cx0 = fmax(x0, -0.5), cy0 = fmax(y0, -0.5);
  double cx1 = fmin(x1, s->p.width - 0.5), cy1 = fmin(y1, s->p.height - 0.5);
  if (cx1 <= cx0 || cy1 <= cy0)
    return 0.0;
  return (cx1 - cx0) * (cy1 - cy0) / ((x1 - x0) * (y1 - y0));
}

static int find_iid(const npt_scene *s, int64_t iid) {
  for (int i = 0; i < s->n; i++)
    if (s->part[i].iid == iid)
      return i;
  return -1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Reports the pending events an observer can see -- a parent was in view in the previous frame,
 * or a child is in view in this one -- giving public ids to their particles.  A child that no
 * longer exists (it merged again before this frame) keeps its id in `gone`, so that a later
 * event in the same batch names it consistently. */
static int report_events(npt_scene *s, int64_t prev, int64_t frame, int blank, int *n_events) {
  int n = 0;
  NPT__GROW(s->events, s->cap_events, s->n_pending);
  int64_t gone_iid[64], gone_pub[64];
  int n_gone = 0;
  for (int k = 0; k < s->n_pending; k++) {
    npt__pending *e = &s->pending[k];
    int seen = 0;
    for (int m = 0; m < e->ev.n_parents; m++) {
      for (int g = 0; g < n_gone && !e->parent_pub[m]; g++)
        if (gone_iid[g] == e->parent_iid[m])
          e->parent_pub[m] = gone_pub[g];
      seen |= prev >= 0 && e->parent_seen[m] == prev;
    }
    int child_idx[NPT_SCENE_MAX_CHILDREN];
    for (int m = 0; m < e->ev.n_children; m++) {
      child_idx[m] = find_iid(s, e->child_iid[m]);
      if (child_idx[m] >= 0 && !blank) {
        double x0, y0, x1, y1;
        box_of(s, &s->part[child_idx[m]], &x0, &y0, &x1, &y1);
        seen |= visibility(s, x0, y0, x1, y1) > 0.0;
      }
    }
    if (!seen)
      continue;
    npt_scene_event *ev = &s->events[n++];
    *ev = e->ev;
    ev->frame = frame;
    for (int m = 0; m < e->ev.n_parents; m++)
      ev->parents[m] = e->parent_pub[m] ? e->parent_pub[m] : s->next_pub++;
    for (int m = 0; m < e->ev.n_children; m++) {
      if (child_idx[m] >= 0) {
        npt__particle *q = &s->part[child_idx[m]];
        if (!q->pub)
          q->pub = s->next_pub++;
        ev->children[m] = q->pub;
      } else {
        ev->children[m] = s->next_pub++;
        if (n_gone < 64)
          gone_iid[n_gone] = e->child_iid[m], gone_pub[n_gone++] = ev->children[m];
      }
    }
    qsort(ev->parents, (size_t)ev->n_parents, sizeof ev->parents[0], cmp_i64);
    qsort(ev->children, (size_t)ev->n_children, sizeof ev->children[0], cmp_i64);
  }
  s->n_pending = 0;
  *n_events = n;
  return 0;
}

/* Sorts by key.  The particle array is nearly in id order (only removals, which move the last
 * particle into the gap, disturb it), so insertion sort usually wins; it hands over to qsort
 * when the input turns out to be far from sorted. */
static void sort_keys(struct npt__key *k, int n) {
  long moves = 0;
  for (int i = 1; i < n; i++) {
    struct npt__key t = k[i];
    int j = i;
    for (; j > 0 && k[j - 1].iid > t.iid; j--) {
      k[j] = k[j - 1];
      if (++moves > 8L * n) {
        k[j - 1] = t; /* keep the array a permutation, then sort it all */
        qsort(k, (size_t)n, sizeof *k, cmp_i64);
        return;
      }
    }
    k[j] = t;
  }
}

static void fill_obs(const npt_scene *s, const npt__particle *q, npt_scene_obs *o) {
  o->id = q->pub;
  o->cls = q->ox > 0.5 ? 2 : 1;
  npt_synth_particle *r = &o->particle;
  npt__body(s, q, &r->outer);
  r->void_frac = q->void_frac;
  r->core_frac = q->core_frac;
  r->core_dx = r->core_dy = 0.0;
  if (q->core_off > 0.0) {
    double a = q->angle + q->core_dir;
    r->core_dx = q->core_off * cos(a);
    r->core_dy = q->core_off * sin(a);
  }
  r->lattice_period_px =
      q->zone ? (o->cls == 1 ? s->p.lattice_metal_px : s->p.lattice_oxide_px) : 0.0;
  r->lattice_angle = q->angle + q->lat_off;
  r->lattice_phase = q->lat_phase;
  r->lattice_amp = q->zone ? s->p.lattice_amp : 0.0;
}

int npt_scene_observe(npt_scene *s, int64_t frame, int blank, const npt_scene_obs **obs, int *n_obs,
                      const npt_scene_event **events, int *n_events) {
  if (frame < s->last_frame)
    return npt_error_set(NPT_EINVAL, "synthetic scene: frame %lld observed after frame %lld",
                         (long long)frame, (long long)s->last_frame);
  int64_t prev = s->last_frame;
  s->last_frame = frame;
  NPT_TRY(report_events(s, prev, frame, blank, n_events));
  *events = s->events;
  *obs = s->obs;
  *n_obs = 0;
  if (blank)
    return 0;
  NPT__GROW(s->obs, s->cap_obs, s->n);
  NPT__GROW(s->obs_part, s->cap_obs_part, s->n);
  *obs = s->obs;
  int n = 0, n_new = 0;
  for (int i = 0; i < s->n; i++) {
    npt__particle *q = &s->part[i];
    npt_scene_obs *o = &s->obs[n];
    box_of(s, q, &o->x0, &o->y0, &o->x1, &o->y1);
    o->visibility = visibility(s, o->x0, o->y0, o->x1, o->y1);
    if (o->visibility <= 0.0)
      continue;
    fill_obs(s, q, o);
    q->seen_frame = frame;
    s->obs_part[n] = i;
    if (!q->pub) {
      /* Seen for the first time: remember (internal id, particle) to number them below. */
      NPT__GROW(s->fresh, s->cap_fresh, n_new + 1);
      s->fresh[n_new].iid = q->iid;
      s->fresh[n_new++].index = i;
    }
    n++;
  }
  /* New particles get ids in creation order (the particle array is not in that order). */
  qsort(s->fresh, (size_t)n_new, sizeof s->fresh[0], cmp_i64);
  for (int k = 0; k < n_new; k++)
    s->part[s->fresh[k].index].pub = s->next_pub++;
  for (int k = 0; k < n; k++)
    if (!s->obs[k].id)
      s->obs[k].id = s->part[s->obs_part[k]].pub;
  /* By id: sort (id, position) pairs, then gather (cheaper than moving whole records). */
  NPT__GROW(s->order, s->cap_order, n);
  NPT__GROW(s->obs_tmp, s->cap_obs_tmp, n);
  for (int k = 0; k < n; k++)
    s->order[k].iid = s->obs[k].id, s->order[k].index = k;
  sort_keys(s->order, n);
  for (int k = 0; k < n; k++)
    s->obs_tmp[k] = s->obs[s->order[k].index];
  npt_scene_obs *t = s->obs;
  int tc = s->cap_obs;
  s->obs = s->obs_tmp, s->cap_obs = s->cap_obs_tmp;
  s->obs_tmp = t, s->cap_obs_tmp = tc;
  *obs = s->obs;
  *n_obs = n;
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Probes */

int npt_scene_count(const npt_scene *s) {
  return s->n;
}

void npt_scene_probe_get(const npt_scene *s, int i, npt_scene_probe *out) {
  const npt__particle *q = &s->part[i];
  out->internal_id = q->iid;
  out->group = q->group;
  out->volume = 4.0 / 3.0 * M_PI * q->r0 * q->r0 * q->r0;
  npt__body(s, q, &out->outer);
  box_of(s, q, &out->x0, &out->y0, &out->x1, &out->y1);
}
