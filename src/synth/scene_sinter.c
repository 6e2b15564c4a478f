/* Sintering of the synthetic scene (particle migration and coalescence): near neighbours
 * attract, touch and become one particle with a new id, volume conserved, born elongated and
 * necked along their axis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/scene_internal.h"

void npt__group_dissolve(npt_scene *s, int g) {
  npt__group *grp = &s->groups[g];
  for (int m = 0; m < grp->n; m++)
    s->part[grp->member[m]].group = 0;
  int last = s->n_groups - 1;
  if (g != last) {
    s->groups[g] = s->groups[last];
    for (int m = 0; m < s->groups[g].n; m++)
      s->part[s->groups[g].member[m]].group = g + 1;
  }
  s->n_groups--;
}

static int can_sinter(const npt__particle *q) {
  return !q->group && q->ox < 0.5 && q->split_state != 2;
}

typedef struct partner_search {
  int best;
  double best_gap;
  int exclude;
} partner_search;

static void consider_partner(npt_scene *s, int i, int j, void *ctx) {
  partner_search *ps = ctx;
  if (j == ps->exclude || !can_sinter(&s->part[j]))
    return;
  double nx, ny, dist, g = npt__outline_gap(s, i, j, &nx, &ny, &dist);
  if (g > s->p.sinter_reach * (s->part[i].rout + s->part[j].rout))
    return;
  if (ps->best < 0 || g < ps->best_gap)
    ps->best = j, ps->best_gap = g;
}

static double largest_bound(const npt_scene *s) {
  double m = 0.0;
  for (int i = 0; i < s->n; i++)
    m = fmax(m, npt__bound_radius(s, &s->part[i]));
  return m;
}

int npt__sinter_start(npt_scene *s, double dt) {
  const npt_scene_params *p = &s->p;
  if (p->sinter_rate_hz <= 0.0 || s->n < 2)
    return 0;
  double prob = 1.0 - exp(-p->sinter_rate_hz * dt), big = -1.0;
  for (int i = 0; i < s->n; i++) {
    if (npt_rng_uniform(&s->rng_event) >= prob || !can_sinter(&s->part[i]))
      continue;
    if (big < 0.0) { /* the first start in this step: neighbour search needs the grid */
      big = largest_bound(s);
      NPT_TRY(npt__grid_build(s));
    }
    double reach = p->sinter_reach * (s->part[i].rout + big) + big;
    partner_search ps = {-1, 0.0, -1};
    npt__for_neighbours(s, i, reach, consider_partner, &ps);
    if (ps.best < 0)
      continue;
    int members[3] = {i, ps.best, -1}, n = 2;
    double gap0 = ps.best_gap;
    if (npt_rng_uniform(&s->rng_event) < p->sinter_triple_prob) {
      partner_search p3 = {-1, 0.0, i};
      npt__for_neighbours(s, ps.best, reach, consider_partner, &p3);
      if (p3.best >= 0 && p3.best != i) {
        members[n++] = p3.best;
        gap0 = fmax(gap0, p3.best_gap);
      }
    }
    NPT__GROW(s->groups, s->cap_groups, s->n_groups + 1);
    npt__group *g = &s->groups[s->n_groups++];
    g->n = n;
    for (int m = 0; m < n; m++) {
      g->member[m] = members[m];
      s->part[members[m]].group = s->n_groups;
    }
    g->speed = fmax(gap0, 0.3) / p->sinter_approach_s;
    g->t_start = s->t;
  }
  return 0;
}

/* Members of a group drift towards their volume-weighted centre, lighter ones faster. */
void npt__sinter_approach(npt_scene *s, double dt) {
  for (int g = 0; g < s->n_groups; g++) {
    npt__group *grp = &s->groups[g];
    double vt = 0.0, cx = 0.0, cy = 0.0;
    for (int m = 0; m < grp->n; m++) {
      const npt__particle *q = &s->part[grp->member[m]];
      vt += npt__volume3(q), cx += npt__volume3(q) * q->x, cy += npt__volume3(q) * q->y;
    }
    cx /= vt, cy /= vt;
    for (int m = 0; m < grp->n; m++) {
      npt__particle *q = &s->part[grp->member[m]];
      double dx = cx - q->x, dy = cy - q->y, d = sqrt(dx * dx + dy * dy);
      double step = fmin(d, grp->speed * dt * (1.0 - npt__volume3(q) / vt));
      if (d > 1e-9)
        q->x += dx / d * step, q->y += dy / d * step;
    }
  }
}

/* Is the group connected by contacts? */
static int group_touching(const npt_scene *s, const npt__group *grp) {
  int linked[3] = {1, 0, 0}, changed = 1;
  while (changed) {
    changed = 0;
    for (int a = 0; a < grp->n; a++)
      for (int b = 0; b < grp->n; b++)
        if (linked[a] && !linked[b]) {
          double nx, ny, dist;
          if (npt__outline_gap(s, grp->member[a], grp->member[b], &nx, &ny, &dist) <= 0.05)
            linked[b] = changed = 1;
        }
  }
  for (int m = 0; m < grp->n; m++)
    if (!linked[m])
      return 0;
  return 1;
}

/* Removes the particles at the given indices (any order). */
static void remove_many(npt_scene *s, int *idx, int n) {
  for (int a = 0; a < n; a++) /* descending, so that swap-removal keeps the others valid */
    for (int b = a + 1; b < n; b++)
      if (idx[b] > idx[a]) {
        int t = idx[a];
        idx[a] = idx[b], idx[b] = t;
      }
  for (int a = 0; a < n; a++)
    npt__particle_remove(s, idx[a]);
}

/* One particle from a group in contact: volume and oxidation conserved, born elongated along
 * the parents' axis (the neck), relaxing to round. */
static int merge_group(npt_scene *s, int g) {
  npt__group grp = s->groups[g];
  double vt = 0.0, cx = 0.0, cy = 0.0, ox = 0.0;
  for (int m = 0; m < grp.n; m++) {
    const npt__particle *q = &s->part[grp.member[m]];
    double v = npt__volume3(q);
    vt += v, cx += v * q->x, cy += v * q->y, ox += v * q->ox;
  }
  cx /= vt, cy /= vt, ox /= vt;
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (int m = 0; m < grp.n; m++) {
    const npt__particle *q = &s->part[grp.member[m]];
    double v = npt__volume3(q), dx = q->x - cx, dy = q->y - cy;
    sxx += v * dx * dx, sxy += v * dx * dy, syy += v * dy * dy;
  }
  double axis = 0.5 * atan2(2.0 * sxy, sxx - syy), nx = cos(axis), ny = sin(axis);
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (int m = 0; m < grp.n; m++) {
    const npt__particle *q = &s->part[grp.member[m]];
    double c = q->x * nx + q->y * ny;
    lo = fmin(lo, c - q->rout * npt__support(&q->d, -nx, -ny));
    hi = fmax(hi, c + q->rout * npt__support(&q->d, nx, ny));
  }
  npt__particle *child;
  NPT_TRY(npt__particle_new(s, &child));
  npt__random_outline(s, &s->rng_event, child);
  child->r0 = cbrt(vt);
  child->ox = ox;
  child->x = cx, child->y = cy;
  child->angle = axis;
  child->omega *= 0.5;
  /* Born spanning most of its parents' extent along their axis, with a neck (a 4th harmonic in
   * phase with the axis narrows the waist); its projected area is smaller than theirs, as the
   * same volume in one particle is thicker. */
  child->h3 *= 0.5;
  child->h4 = 0.0, child->p4 = 0.0;
  child->neck0 = -0.08;
  double rout, cf, vf, off;
  npt__redox_geometry(&s->p, child->r0, ox, &rout, &cf, &vf, &off);
  double a = 0.45 * (hi - lo) / (1.0 + child->neck0);
  double aspect0 = (a / rout) * (a / rout);
  child->aspect0 = fmin(fmax(aspect0, child->aspect_final), 3.0);
  child->t_shape = s->t;
  int ci = s->n - 1;
  npt__refresh_particle(s, child);
  NPT_TRY(npt__event_push(s, NPT_EVENT_MERGE, grp.member, grp.n, &ci, 1));
  int parents[3];
  memcpy(parents, grp.member, sizeof(int) * (size_t)grp.n);
  remove_many(s, parents, grp.n);
  return 0;
}

int npt__sinter_finish(npt_scene *s) {
  for (int g = 0; g < s->n_groups;) {
    npt__group *grp = &s->groups[g];
    if (group_touching(s, grp)) {
      NPT_TRY(merge_group(s, g)); /* removes the group with its parents */
    } else if (s->t - grp->t_start > 3.0 * s->p.sinter_approach_s) {
      npt__group_dissolve(s, g); /* blocked: give up */
    } else {
      g++;
    }
  }
  return 0;
}
