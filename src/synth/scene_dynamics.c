/* The physics of one time step of the synthetic scene: specimen drift, Brownian motion,
 * rotation, Ostwald ripening, oxidation and reduction (Kirkendall shells, regeneration by
 * splitting), sintering (attraction, contact, merge) and hard-core repulsion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/scene_internal.h"

/* The rendered outline follows the physical one to within this many px (scene_internal.h). */
#define DISPLAY_TOL 0.05

#define GROW(ptr, cap, need)                                                                       \
  do {                                                                                             \
    if ((need) > (cap)) {                                                                          \
      int npt__nc = (cap) ? 2 * (cap) : 64;                                                        \
      while (npt__nc < (need))                                                                     \
        npt__nc *= 2;                                                                              \
      void *npt__p = realloc((ptr), sizeof *(ptr) * (size_t)npt__nc);                              \
      NPT_ALLOC_CHECK(npt__p);                                                                     \
      (ptr) = npt__p;                                                                              \
      (cap) = npt__nc;                                                                             \
    }                                                                                              \
  } while (0)

static double volume3(const npt__particle *q) {
  return q->r0 * q->r0 * q->r0;
}

/* ---------------------------------------------------------------------------------------------
 * Derived state */

void npt__refresh_particle(npt_scene *s, npt__particle *q) {
  npt__redox_geometry(&s->p, q->r0, q->ox, &q->rout, &q->core_frac, &q->void_frac, &q->core_off);
  double aspect = q->aspect_final;
  if (q->aspect0 != q->aspect_final)
    aspect += (q->aspect0 - q->aspect_final) * exp(-(s->t - q->t_shape) / q->relax_s);
  npt__unit_shape u = {aspect, q->angle, q->h3, q->p3, q->h4, q->p4};
  const npt__unit_shape *d = &q->d.shape;
  if (d->aspect > 0.0) {
    /* How far the outline would move: a change of aspect moves the long axis' end by about
     * rout * da / 2; a rotation by dphi moves a point by dphi * |dR/dphi|. */
    double k = sqrt(aspect);
    double roughness = fabs(k - 1.0 / k) + 3.0 * q->h3 + 4.0 * q->h4;
    double moved =
        q->rout * (0.5 * fabs(aspect - d->aspect) + fabs(q->angle - d->angle) * roughness);
    if (moved < DISPLAY_TOL)
      return;
  }
  npt__display_set(&q->d, &u);
}

static int gas_oxidising(const npt_scene *s) {
  switch (s->p.gas) {
  case NPT_GAS_OXIDISING:
    return 1;
  case NPT_GAS_CYCLE:
    return fmod(s->t, s->p.gas_period_s) < 0.5 * s->p.gas_period_s;
  default:
    return 0;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Neighbour search: a uniform grid over the simulated area; a particle is listed in every cell
 * its bounding circle touches, so large and small particles mix without a coarse grid. */

static double bound_radius(const npt_scene *s, const npt__particle *q) {
  return q->rout * q->d.umax + 0.5 * s->gap;
}

int npt__grid_build(npt_scene *s) {
  if (s->n == 0) {
    s->gw = s->gh = 0;
    return 0;
  }
  double x0 = HUGE_VAL, y0 = HUGE_VAL, x1 = -HUGE_VAL, y1 = -HUGE_VAL;
  for (int i = 0; i < s->n; i++) {
    double r = bound_radius(s, &s->part[i]);
    x0 = fmin(x0, s->part[i].x - r), x1 = fmax(x1, s->part[i].x + r);
    y0 = fmin(y0, s->part[i].y - r), y1 = fmax(y1, s->part[i].y + r);
  }
  double cell = s->cell;
  while ((x1 - x0) / cell * (y1 - y0) / cell > 4e6)
    cell *= 2.0;
  s->grid_x0 = x0, s->grid_y0 = y0;
  s->gw = (int)((x1 - x0) / cell) + 1;
  s->gh = (int)((y1 - y0) / cell) + 1;
  s->cell = cell;
  int ncell = s->gw * s->gh;
  GROW(s->cell_start, s->cap_cells, ncell + 1);
  memset(s->cell_start, 0, sizeof(int) * (size_t)(ncell + 1));
  /* Two passes: count, then fill (counting sort). */
  int total;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < s->n; i++) {
      const npt__particle *q = &s->part[i];
      double r = bound_radius(s, q);
      int cx0 = (int)((q->x - r - x0) / cell), cx1 = (int)((q->x + r - x0) / cell);
      int cy0 = (int)((q->y - r - y0) / cell), cy1 = (int)((q->y + r - y0) / cell);
      for (int cy = cy0; cy <= cy1 && cy < s->gh; cy++)
        for (int cx = cx0; cx <= cx1 && cx < s->gw; cx++) {
          int c = cy * s->gw + cx;
          if (pass == 0)
            s->cell_start[c + 1]++;
          else
            s->cell_items[s->cell_start[c]++] = i;
        }
    }
    if (pass == 0) {
      for (int c = 0; c < ncell; c++)
        s->cell_start[c + 1] += s->cell_start[c];
      total = s->cell_start[ncell];
      GROW(s->cell_items, s->cap_items, total + 1);
    }
  }
  /* Filling advanced cell_start[c] to the end of cell c: shift back. */
  memmove(s->cell_start + 1, s->cell_start, sizeof(int) * (size_t)ncell);
  s->cell_start[0] = 0;
  return 0;
}

/* Calls fn(s, i, j, ctx) for every particle j != i whose bounding circle comes within `reach`
 * of particle i's.  Each j is visited once per call. */
static void for_neighbours(npt_scene *s, int i, double reach,
                           void (*fn)(npt_scene *, int, int, void *), void *ctx) {
  if (s->gw == 0)
    return;
  const npt__particle *q = &s->part[i];
  double r = bound_radius(s, q) + reach;
  int cx0 = (int)floor((q->x - r - s->grid_x0) / s->cell);
  int cx1 = (int)floor((q->x + r - s->grid_x0) / s->cell);
  int cy0 = (int)floor((q->y - r - s->grid_y0) / s->cell);
  int cy1 = (int)floor((q->y + r - s->grid_y0) / s->cell);
  cx0 = cx0 < 0 ? 0 : cx0, cy0 = cy0 < 0 ? 0 : cy0;
  cx1 = cx1 >= s->gw ? s->gw - 1 : cx1, cy1 = cy1 >= s->gh ? s->gh - 1 : cy1;
  /* A fresh tag per call marks the particles already visited. */
  if (++s->tag == 0) {
    memset(s->stamp, 0, sizeof *s->stamp * (size_t)s->cap_stamp);
    s->tag = 1;
  }
  unsigned tag = s->tag;
  for (int cy = cy0; cy <= cy1; cy++)
    for (int cx = cx0; cx <= cx1; cx++) {
      int c = cy * s->gw + cx;
      for (int k = s->cell_start[c]; k < s->cell_start[c + 1]; k++) {
        int j = s->cell_items[k];
        if (j == i || s->stamp[j] == tag)
          continue;
        s->stamp[j] = tag;
        const npt__particle *o = &s->part[j];
        double dx = o->x - q->x, dy = o->y - q->y, lim = r + bound_radius(s, o);
        if (dx * dx + dy * dy < lim * lim)
          fn(s, i, j, ctx);
      }
    }
}

/* Gap between the outlines of i and j along the line of centres (an upper bound of the
 * penetration when negative: the support function is padded to be conservative), and the unit
 * vector from i to j. */
static double outline_gap(const npt_scene *s, int i, int j, double *nx, double *ny, double *dist) {
  const npt__particle *a = &s->part[i], *b = &s->part[j];
  double dx = b->x - a->x, dy = b->y - a->y, d = sqrt(dx * dx + dy * dy);
  if (d < 1e-9) /* coincident centres: any direction will do */
    *nx = 1.0, *ny = 0.0, d = 0.0;
  else
    *nx = dx / d, *ny = dy / d;
  *dist = d;
  return d - a->rout * npt__support(&a->d, *nx, *ny) - b->rout * npt__support(&b->d, -*nx, -*ny);
}

/* ---------------------------------------------------------------------------------------------
 * Hard-core repulsion: position-based projection of overlapping pairs (lighter particles move
 * more), a few Gauss-Seidel sweeps per sub-step over the candidate pairs. */

static void add_pair(npt_scene *s, int i, int j, void *ctx) {
  (void)ctx;
  if (j < i)
    return; /* each pair once */
  if (s->n_pairs + 1 > s->cap_pairs) {
    int nc = s->cap_pairs ? 2 * s->cap_pairs : 1024;
    int *p = realloc(s->pairs, sizeof(int) * 2 * (size_t)nc);
    if (!p)
      return; /* fewer pairs this step; the next step retries */
    s->pairs = p, s->cap_pairs = nc;
  }
  s->pairs[2 * s->n_pairs] = i;
  s->pairs[2 * s->n_pairs + 1] = j;
  s->n_pairs++;
}

static void build_pairs(npt_scene *s) {
  s->n_pairs = 0;
  for (int i = 0; i < s->n; i++)
    for_neighbours(s, i, s->gap + 1.0, add_pair, NULL);
}

void npt__relax_overlaps(npt_scene *s, int iterations) {
  for (int it = 0; it < iterations; it++) {
    if (it % 4 == 0) {
      if (npt__grid_build(s) < 0)
        return;
      build_pairs(s);
    }
    int moved = 0;
    for (int k = 0; k < s->n_pairs; k++) {
      int i = s->pairs[2 * k], j = s->pairs[2 * k + 1];
      npt__particle *a = &s->part[i], *b = &s->part[j];
      if (a->group && a->group == b->group)
        continue;
      double nx, ny, dist, g = outline_gap(s, i, j, &nx, &ny, &dist) - s->gap;
      if (g >= 0.0)
        continue;
      double wa = 1.0 / volume3(a), wb = 1.0 / volume3(b), push = -g / (wa + wb);
      a->x -= nx * push * wa, a->y -= ny * push * wa;
      b->x += nx * push * wb, b->y += ny * push * wb;
      moved = 1;
    }
    if (!moved && it % 4 == 3)
      break;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Sintering */

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
  double nx, ny, dist, g = outline_gap(s, i, j, &nx, &ny, &dist);
  if (g > s->p.sinter_reach * (s->part[i].rout + s->part[j].rout))
    return;
  if (ps->best < 0 || g < ps->best_gap)
    ps->best = j, ps->best_gap = g;
}

static double largest_bound(const npt_scene *s) {
  double m = 0.0;
  for (int i = 0; i < s->n; i++)
    m = fmax(m, bound_radius(s, &s->part[i]));
  return m;
}

static int start_sintering(npt_scene *s, double dt) {
  const npt_scene_params *p = &s->p;
  if (p->sinter_rate_hz <= 0.0 || s->n < 2)
    return 0;
  double prob = 1.0 - exp(-p->sinter_rate_hz * dt), big = -1.0;
  for (int i = 0; i < s->n; i++) {
    if (npt_rng_uniform(&s->rng_event) >= prob || !can_sinter(&s->part[i]))
      continue;
    if (big < 0.0)
      big = largest_bound(s);
    double reach = p->sinter_reach * (s->part[i].rout + big) + big;
    partner_search ps = {-1, 0.0, -1};
    for_neighbours(s, i, reach, consider_partner, &ps);
    if (ps.best < 0)
      continue;
    int members[3] = {i, ps.best, -1}, n = 2;
    double gap0 = ps.best_gap;
    if (npt_rng_uniform(&s->rng_event) < p->sinter_triple_prob) {
      partner_search p3 = {-1, 0.0, i};
      for_neighbours(s, ps.best, reach, consider_partner, &p3);
      if (p3.best >= 0 && p3.best != i) {
        members[n++] = p3.best;
        gap0 = fmax(gap0, p3.best_gap);
      }
    }
    GROW(s->groups, s->cap_groups, s->n_groups + 1);
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
static void approach(npt_scene *s, double dt) {
  for (int g = 0; g < s->n_groups; g++) {
    npt__group *grp = &s->groups[g];
    double vt = 0.0, cx = 0.0, cy = 0.0;
    for (int m = 0; m < grp->n; m++) {
      const npt__particle *q = &s->part[grp->member[m]];
      vt += volume3(q), cx += volume3(q) * q->x, cy += volume3(q) * q->y;
    }
    cx /= vt, cy /= vt;
    for (int m = 0; m < grp->n; m++) {
      npt__particle *q = &s->part[grp->member[m]];
      double dx = cx - q->x, dy = cy - q->y, d = sqrt(dx * dx + dy * dy);
      double step = fmin(d, grp->speed * dt * (1.0 - volume3(q) / vt));
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
          if (outline_gap(s, grp->member[a], grp->member[b], &nx, &ny, &dist) <= 0.05)
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
    double v = volume3(q);
    vt += v, cx += v * q->x, cy += v * q->y, ox += v * q->ox;
  }
  cx /= vt, cy /= vt, ox /= vt;
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (int m = 0; m < grp.n; m++) {
    const npt__particle *q = &s->part[grp.member[m]];
    double v = volume3(q), dx = q->x - cx, dy = q->y - cy;
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
  child->h3 *= 0.5, child->h4 *= 0.5;
  double rout, cf, vf, off;
  npt__redox_geometry(&s->p, child->r0, ox, &rout, &cf, &vf, &off);
  double a = 0.45 * (hi - lo); /* the neck makes the merged particle a little shorter */
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

static int finish_sintering(npt_scene *s) {
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

/* ---------------------------------------------------------------------------------------------
 * Regeneration: a reduced shell breaks into 2-6 metal particles inside its footprint. */

static int split_particle(npt_scene *s, int i) {
  const npt_scene_params *p = &s->p;
  npt_rng *r = &s->rng_event;
  npt__particle parent = s->part[i];
  int n = (int)npt_rng_int(r, p->split_min, p->split_max);
  double w[NPT_SCENE_MAX_CHILDREN], total = 0.0;
  for (int k = 0; k < n; k++) {
    w[k] = -log(1.0 - npt_rng_uniform(r)) - log(1.0 - npt_rng_uniform(r)); /* Gamma(2) */
    total += w[k];
  }
  /* Sorted largest first, so the big ones are placed while there is room. */
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++)
      if (w[b] > w[a]) {
        double t = w[a];
        w[a] = w[b], w[b] = t;
      }
  double dmin = fmax(2.0 * p->vanish_px, 3.0);
  /* Children too small to see are not made: the others share the whole volume. */
  while (n >= 2 && 2.0 * parent.r0 * cbrt(w[n - 1] / total) < dmin)
    total -= w[--n];
  if (n < 2) {
    s->part[i].split_state = 1; /* too small to break up: it reduces back instead */
    return 0;
  }
  double r3[NPT_SCENE_MAX_CHILDREN], px[NPT_SCENE_MAX_CHILDREN], py[NPT_SCENE_MAX_CHILDREN];
  double bound[NPT_SCENE_MAX_CHILDREN];
  double room = parent.rout * parent.d.umin, bx = parent.x, by = parent.y;
  double slack = sqrt(p->aspect_max) * (1.0 + 2.0 * p->irregularity);
  for (int k = 0; k < n; k++) {
    r3[k] = volume3(&parent) * w[k] / total;
    bound[k] = cbrt(r3[k]) * slack;
    double best = -HUGE_VAL;
    for (int t = 0; t < 60; t++) {
      double rad = fmax(0.0, room - bound[k]) * sqrt(npt_rng_uniform(r));
      double ang = npt_rng_range(r, 0.0, 2.0 * M_PI);
      double x = bx + rad * cos(ang), y = by + rad * sin(ang), clear = HUGE_VAL;
      for (int m = 0; m < k; m++) {
        double dx = x - px[m], dy = y - py[m];
        clear = fmin(clear, sqrt(dx * dx + dy * dy) - bound[k] - bound[m] - s->gap);
      }
      if (clear > best)
        best = clear, px[k] = x, py[k] = y;
      if (clear >= 0.0)
        break;
    }
  }
  int children[NPT_SCENE_MAX_CHILDREN];
  for (int k = 0; k < n; k++) {
    npt__particle *c;
    NPT_TRY(npt__particle_new(s, &c));
    npt__random_outline(s, r, c);
    c->r0 = cbrt(r3[k]);
    c->x = px[k], c->y = py[k];
    npt__refresh_particle(s, c);
    children[k] = s->n - 1;
  }
  NPT_TRY(npt__event_push(s, NPT_EVENT_SPLIT, &i, 1, children, n));
  npt__particle_remove(s, i);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Oxidation and reduction */

static int redox(npt_scene *s, double dt) {
  const npt_scene_params *p = &s->p;
  int oxidising = gas_oxidising(s);
  for (int i = 0; i < s->n; i++) {
    npt__particle *q = &s->part[i];
    double scale = p->ref_diameter_px / (2.0 * q->r0) * q->ox_mult;
    if (oxidising) {
      q->split_state = 0;
      if (q->ox < 1.0 && !q->group)
        q->ox = fmin(1.0, q->ox + p->oxidation_rate_hz * scale * dt);
      continue;
    }
    if (q->ox <= 0.0)
      continue;
    if (q->split_state == 0) {
      q->split_state = q->ox >= 0.5 && npt_rng_uniform(&s->rng_event) < p->split_prob ? 2 : 1;
      q->split_at = q->ox * npt_rng_range(&s->rng_event, 0.3, 0.85);
    }
    q->ox -= p->reduction_rate_hz * scale * dt;
    if (q->split_state == 2 && q->ox <= q->split_at) {
      NPT_TRY(split_particle(s, i)); /* the parent's slot now holds another particle */
      i--;
      continue;
    }
    if (q->ox <= 0.0)
      q->ox = 0.0, q->split_state = 0;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Ostwald ripening (interface-limited): dr/dt = K (1/r* - 1/r), with r* = sum r^2 / sum r so
 * that the total volume is conserved.  A particle that would shrink below vanish_px vanishes and
 * its whole volume goes to the growing ones (their gains are scaled to what the shrinking ones
 * actually give), so the total is conserved exactly whatever the step. */

static void ripen(npt_scene *s, double dt) {
  double K = s->p.ripening_px2_s;
  if (K <= 0.0 || s->n == 0)
    return;
  double s1 = 0.0, s2 = 0.0;
  for (int i = 0; i < s->n; i++)
    s1 += s->part[i].r0, s2 += s->part[i].r0 * s->part[i].r0;
  double rstar = s2 / s1, rmin = 0.5 * s->p.vanish_px, vmin = rmin * rmin * rmin;
  double gain = 0.0, loss = 0.0;
  for (int i = 0; i < s->n; i++) {
    npt__particle *q = &s->part[i];
    q->dv = 3.0 * q->r0 * q->r0 * K * (1.0 / rstar - 1.0 / q->r0) * dt;
    if (volume3(q) + q->dv <= vmin)
      q->dv = -volume3(q);
    if (q->dv > 0.0)
      gain += q->dv;
    else
      loss -= q->dv;
  }
  double scale = gain > 0.0 ? loss / gain : 0.0;
  for (int i = 0; i < s->n;) {
    npt__particle *q = &s->part[i];
    if (q->dv <= -volume3(q)) {
      npt__particle_remove(s, i);
      continue;
    }
    q->r0 = cbrt(volume3(q) + (q->dv > 0.0 ? q->dv * scale : q->dv));
    i++;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Drift and Brownian motion */

static void drift(npt_scene *s, double dt) {
  const npt_scene_params *p = &s->p;
  if (p->drift_px_s <= 0.0)
    return;
  npt_rng *r = &s->rng_drift;
  double tau = p->drift_wander_s;
  s->drift_heading += sqrt(dt / tau) * npt_rng_normal(r);
  s->drift_speed_factor +=
      -(s->drift_speed_factor - 1.0) * dt / tau + 0.3 * sqrt(2.0 * dt / tau) * npt_rng_normal(r);
  s->drift_speed_factor = fmin(fmax(s->drift_speed_factor, 0.0), 3.0);
  double v = p->drift_px_s * s->drift_speed_factor;
  s->drift_x += v * cos(s->drift_heading) * dt;
  s->drift_y += v * sin(s->drift_heading) * dt;
}

static void brownian(npt_scene *s, double dt) {
  const npt_scene_params *p = &s->p;
  if (p->diffusion_px2_s <= 0.0)
    return;
  for (int i = 0; i < s->n; i++) {
    npt__particle *q = &s->part[i];
    if (q->group)
      continue;
    double sigma = sqrt(2.0 * p->diffusion_px2_s * p->ref_diameter_px / (2.0 * q->r0) * dt);
    q->x += sigma * npt_rng_normal(&s->rng_motion);
    q->y += sigma * npt_rng_normal(&s->rng_motion);
  }
}

int npt__scene_substep(npt_scene *s) {
  double dt = s->dt_sub;
  s->t += dt;
  drift(s, dt);
  ripen(s, dt);
  NPT_TRY(redox(s, dt));
  NPT_TRY(npt__populate(s)); /* after ripening: new specimen joins at the next step */
  for (int i = 0; i < s->n; i++) {
    npt__particle *q = &s->part[i];
    q->angle += q->omega * dt;
    npt__refresh_particle(s, q);
  }
  NPT_TRY(npt__grid_build(s));
  NPT_TRY(start_sintering(s, dt));
  brownian(s, dt);
  approach(s, dt);
  NPT_TRY(finish_sintering(s));
  npt__relax_overlaps(s, 3);
  return 0;
}
