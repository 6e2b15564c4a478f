/* The physics of one time step of the synthetic scene: specimen drift, Brownian motion,
 * rotation, Ostwald ripening, neighbour search and hard-core repulsion, and the order of it all
 * (npt__scene_substep).  Sintering is in scene_sinter.c, oxidation and regeneration in
 * scene_redox.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/scene_internal.h"

/* The rendered outline follows the physical one to within this many px (scene_internal.h). */
#define DISPLAY_TOL 0.1

/* ---------------------------------------------------------------------------------------------
 * Derived state */

void npt__refresh_particle(npt_scene *s, npt__particle *q) {
  npt__redox_geometry(&s->p, q->r0, q->ox, &q->rout, &q->core_frac, &q->void_frac, &q->core_off);
  /* A merged particle relaxes from elongated and necked (aspect0, neck0) to its own shape. */
  double aspect = q->aspect_final, h4 = q->h4;
  if (q->aspect0 != q->aspect_final || q->neck0 != 0.0) {
    double e = exp(-(s->t - q->t_shape) / q->relax_s);
    aspect += (q->aspect0 - q->aspect_final) * e;
    h4 += q->neck0 * e;
  }
  npt__unit_shape u = {aspect, q->angle, q->h3, q->p3, h4, q->p4};
  const npt__unit_shape *d = &q->d.shape;
  if (d->aspect > 0.0) {
    /* How far the outline would move: a change of aspect moves the long axis' end by about
     * rout * da / 2; a rotation by dphi moves a point by dphi * |dR/dphi|. */
    double k = sqrt(aspect);
    double roughness = fabs(k - 1.0 / k) + 3.0 * fabs(q->h3) + 4.0 * fabs(h4);
    double moved = q->rout * (0.5 * fabs(aspect - d->aspect) + 2.0 * fabs(h4 - d->h4) +
                              fabs(q->angle - d->angle) * roughness);
    if (moved < DISPLAY_TOL)
      return;
  }
  npt__display_set(&q->d, &u);
}

/* ---------------------------------------------------------------------------------------------
 * Neighbour search: a uniform grid over the simulated area listing each ordinary particle once,
 * in the cell of its centre (cells are at least twice the ordinary bounding radius plus the
 * pair reach wide, so a query looks at a 3 x 3 block); the few particles larger than ordinary
 * (grown by ripening or merging) are listed apart and checked against every query. */

double npt__bound_radius(const npt_scene *s, const npt__particle *q) {
  return q->rout * q->d.umax + 0.5 * s->gap;
}

int npt__grid_build(npt_scene *s) {
  s->n_big = 0;
  if (s->n == 0) {
    s->gw = s->gh = 0;
    return 0;
  }
  NPT__GROW(s->big, s->cap_big, s->n);
  double x0 = HUGE_VAL, y0 = HUGE_VAL, x1 = -HUGE_VAL, y1 = -HUGE_VAL;
  for (int i = 0; i < s->n; i++) {
    const npt__particle *q = &s->part[i];
    if (npt__bound_radius(s, q) > s->r_small) {
      s->big[s->n_big++] = i;
      continue;
    }
    x0 = fmin(x0, q->x), x1 = fmax(x1, q->x), y0 = fmin(y0, q->y), y1 = fmax(y1, q->y);
  }
  if (s->n_big > 16 && s->n_big > s->n / 32) {
    /* Particles have grown (ripening, merging): widen the cells rather than check many large
     * particles against every query. */
    s->r_small *= 1.25;
    s->cell = 2.0 * s->r_small + s->gap + 1.0;
    return npt__grid_build(s);
  }
  if (x0 > x1) /* only large particles */
    x0 = x1 = y0 = y1 = 0.0;
  double cell = s->cell;
  while ((x1 - x0) / cell * (y1 - y0) / cell > 4e6)
    cell *= 2.0;
  s->grid_x0 = x0, s->grid_y0 = y0, s->grid_cell = cell;
  s->gw = (int)((x1 - x0) / cell) + 1;
  s->gh = (int)((y1 - y0) / cell) + 1;
  int ncell = s->gw * s->gh;
  NPT__GROW(s->cell_start, s->cap_cells, ncell + 1);
  NPT__GROW(s->cell_items, s->cap_items, s->n);
  NPT__GROW(s->cell_of, s->cap_cell_of, s->n);
  memset(s->cell_start, 0, sizeof(int) * (size_t)(ncell + 1));
  /* Counting sort by cell. */
  for (int i = 0; i < s->n; i++) {
    const npt__particle *q = &s->part[i];
    s->cell_of[i] = -1;
    if (npt__bound_radius(s, q) > s->r_small)
      continue;
    int c = (int)((q->y - y0) / cell) * s->gw + (int)((q->x - x0) / cell);
    s->cell_of[i] = c;
    s->cell_start[c + 1]++;
  }
  for (int c = 0; c < ncell; c++)
    s->cell_start[c + 1] += s->cell_start[c];
  for (int i = 0; i < s->n; i++)
    if (s->cell_of[i] >= 0)
      s->cell_items[s->cell_start[s->cell_of[i]]++] = i;
  /* Filling advanced cell_start[c] to the end of cell c: shift back. */
  memmove(s->cell_start + 1, s->cell_start, sizeof(int) * (size_t)ncell);
  s->cell_start[0] = 0;
  return 0;
}

/* Calls fn(s, i, j, ctx) once for every particle j != i whose bounding circle comes within
 * `reach` of particle i's.  Needs a grid built since the particles last changed in number. */
void npt__for_neighbours(npt_scene *s, int i, double reach,
                         void (*fn)(npt_scene *, int, int, void *), void *ctx) {
  const npt__particle *q = &s->part[i];
  double rb = npt__bound_radius(s, q) + reach;
  if (s->gw > 0) {
    double r = rb + s->r_small, cell = s->grid_cell;
    int cx0 = (int)floor((q->x - r - s->grid_x0) / cell);
    int cx1 = (int)floor((q->x + r - s->grid_x0) / cell);
    int cy0 = (int)floor((q->y - r - s->grid_y0) / cell);
    int cy1 = (int)floor((q->y + r - s->grid_y0) / cell);
    cx0 = cx0 < 0 ? 0 : cx0, cy0 = cy0 < 0 ? 0 : cy0;
    cx1 = cx1 >= s->gw ? s->gw - 1 : cx1, cy1 = cy1 >= s->gh ? s->gh - 1 : cy1;
    for (int cy = cy0; cy <= cy1; cy++)
      for (int k = s->cell_start[cy * s->gw + cx0]; k < s->cell_start[cy * s->gw + cx1 + 1]; k++) {
        int j = s->cell_items[k];
        const npt__particle *o = &s->part[j];
        double dx = o->x - q->x, dy = o->y - q->y, lim = rb + npt__bound_radius(s, o);
        if (j != i && dx * dx + dy * dy < lim * lim)
          fn(s, i, j, ctx);
      }
  }
  for (int k = 0; k < s->n_big; k++) {
    int j = s->big[k];
    const npt__particle *o = &s->part[j];
    double dx = o->x - q->x, dy = o->y - q->y, lim = rb + npt__bound_radius(s, o);
    if (j != i && dx * dx + dy * dy < lim * lim)
      fn(s, i, j, ctx);
  }
}

/* Gap between the outlines of i and j along the line of centres (an upper bound of the
 * penetration when negative: the support function is padded to be conservative), and the unit
 * vector from i to j. */
double npt__outline_gap(const npt_scene *s, int i, int j, double *nx, double *ny, double *dist) {
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

static void add_pair(npt_scene *s, int i, int j) {
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

static void check_pair(npt_scene *s, int i, int j, double reach) {
  const npt__particle *a = &s->part[i], *b = &s->part[j];
  double dx = b->x - a->x, dy = b->y - a->y;
  double lim = npt__bound_radius(s, a) + npt__bound_radius(s, b) + reach;
  if (dx * dx + dy * dy < lim * lim)
    add_pair(s, i, j);
}

/* Pairs of a large particle: with every grid particle, and with large ones listed after it. */
static void add_big_pair(npt_scene *s, int i, int j, void *ctx) {
  const int *rank = ctx; /* position of each large particle in the big list, or -1 */
  if (rank[j] < 0 || rank[j] > rank[i])
    add_pair(s, i, j);
}

/* Candidate pairs for the hard-core constraint: bounding circles closer than `reach`.  Grid
 * particles look at their own cell and four forward neighbours (each pair once). */
static void build_pairs(npt_scene *s, double reach) {
  static const int fwd[4][2] = {{1, 0}, {-1, 1}, {0, 1}, {1, 1}};
  s->n_pairs = 0;
  for (int cy = 0; cy < s->gh; cy++)
    for (int cx = 0; cx < s->gw; cx++) {
      int c = cy * s->gw + cx;
      for (int k = s->cell_start[c]; k < s->cell_start[c + 1]; k++) {
        int i = s->cell_items[k];
        for (int k2 = k + 1; k2 < s->cell_start[c + 1]; k2++)
          check_pair(s, i, s->cell_items[k2], reach);
        for (int f = 0; f < 4; f++) {
          int nx = cx + fwd[f][0], ny = cy + fwd[f][1];
          if (nx < 0 || nx >= s->gw || ny >= s->gh)
            continue;
          int d = ny * s->gw + nx;
          for (int k2 = s->cell_start[d]; k2 < s->cell_start[d + 1]; k2++)
            check_pair(s, i, s->cell_items[k2], reach);
        }
      }
    }
  if (s->n_big > 0) {
    /* cell_of is free scratch here: -1 for grid particles, the big list position otherwise. */
    for (int i = 0; i < s->n; i++)
      s->cell_of[i] = -1;
    for (int k = 0; k < s->n_big; k++)
      s->cell_of[s->big[k]] = k;
    for (int k = 0; k < s->n_big; k++)
      npt__for_neighbours(s, s->big[k], reach, add_big_pair, s->cell_of);
  }
}

/* The candidate pairs stay valid (a Verlet list) until a particle is added or removed, or one
 * has moved (or grown) by more than half the skin since they were found. */
#define SKIN 1.5

static int pairs_stale(const npt_scene *s) {
  if (s->version != s->pairs_version)
    return 1;
  for (int i = 0; i < s->n; i++) {
    const npt__particle *q = &s->part[i];
    double dx = q->x - q->x_ref, dy = q->y - q->y_ref;
    double grown = fmax(npt__bound_radius(s, q) - q->rb_ref, 0.0);
    if (dx * dx + dy * dy > (0.5 * SKIN - grown) * (0.5 * SKIN - grown) || grown > 0.5 * SKIN)
      return 1;
  }
  return 0;
}

int npt__relax_overlaps(npt_scene *s, int iterations) {
  int moved = 1;
  for (int it = 0; it < iterations && moved; it++) {
    if (it % 4 == 0 && pairs_stale(s)) {
      NPT_TRY(npt__grid_build(s));
      build_pairs(s, s->gap + SKIN);
      for (int i = 0; i < s->n; i++) {
        npt__particle *q = &s->part[i];
        q->x_ref = q->x, q->y_ref = q->y, q->rb_ref = npt__bound_radius(s, q);
      }
      s->pairs_version = s->version;
    }
    moved = 0;
    for (int k = 0; k < s->n_pairs; k++) {
      int i = s->pairs[2 * k], j = s->pairs[2 * k + 1];
      npt__particle *a = &s->part[i], *b = &s->part[j];
      if (a->group && a->group == b->group)
        continue;
      /* Bounding circles apart (with room for the support table's padding): no contact. */
      double dx = b->x - a->x, dy = b->y - a->y;
      double lim = 1.02 * (npt__bound_radius(s, a) + npt__bound_radius(s, b));
      if (dx * dx + dy * dy >= lim * lim)
        continue;
      double nx, ny, dist, g = npt__outline_gap(s, i, j, &nx, &ny, &dist) - s->gap;
      if (g >= 0.0)
        continue;
      double wa = 1.0 / npt__volume3(a), wb = 1.0 / npt__volume3(b), push = -g / (wa + wb);
      a->x -= nx * push * wa, a->y -= ny * push * wa;
      b->x += nx * push * wb, b->y += ny * push * wb;
      moved = 1;
    }
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
    if (npt__volume3(q) + q->dv <= vmin)
      q->dv = -npt__volume3(q);
    if (q->dv > 0.0)
      gain += q->dv;
    else
      loss -= q->dv;
  }
  double scale = gain > 0.0 ? loss / gain : 0.0;
  for (int i = 0; i < s->n;) {
    npt__particle *q = &s->part[i];
    if (q->dv <= -npt__volume3(q)) {
      npt__particle_remove(s, i);
      continue;
    }
    q->r0 = cbrt(npt__volume3(q) + (q->dv > 0.0 ? q->dv * scale : q->dv));
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
  NPT_TRY(npt__redox_step(s, dt));
  NPT_TRY(npt__populate(s)); /* after ripening: new specimen joins at the next step */
  for (int i = 0; i < s->n; i++) {
    npt__particle *q = &s->part[i];
    q->angle += q->omega * dt;
    npt__refresh_particle(s, q);
  }
  NPT_TRY(npt__sinter_start(s, dt));
  brownian(s, dt);
  npt__sinter_approach(s, dt);
  NPT_TRY(npt__sinter_finish(s));
  return npt__relax_overlaps(s, 3);
}
