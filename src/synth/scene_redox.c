/* Oxidation and reduction in the synthetic scene: the gas schedule, oxidation progress (the
 * Kirkendall geometry itself is in scene_geom.c), and regeneration, where a reduced shell breaks
 * up into several new metal particles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/scene_internal.h"

/* Is the gas oxidising at the scene's time? */
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
  /* The metal of a shell is about half its outer volume: the children fill its footprint and
   * may bulge out of it.  Pack them greedily as a compact cluster around the shell's centre:
   * the first anywhere near the centre, each next one touching a placed one, at the free spot
   * nearest the centre (a little randomised). */
  double bx = parent.x, by = parent.y, near = 0.3 * parent.rout;
  double slack = sqrt(p->aspect_max) * (1.0 + 2.0 * p->irregularity);
  for (int k = 0; k < n; k++) {
    r3[k] = npt__volume3(&parent) * w[k] / total;
    bound[k] = cbrt(r3[k]) * slack;
    if (k == 0) {
      double rad = near * sqrt(npt_rng_uniform(r)), ang = npt_rng_range(r, 0.0, 2.0 * M_PI);
      px[0] = bx + rad * cos(ang), py[0] = by + rad * sin(ang);
      continue;
    }
    double best = HUGE_VAL, phase = npt_rng_range(r, 0.0, 2.0 * M_PI);
    for (int m = 0; m < k; m++)
      for (int a = 0; a < 16; a++) {
        double ang = phase + a * (2.0 * M_PI / 16), d = bound[k] + bound[m] + s->gap + 0.01;
        double x = px[m] + d * cos(ang), y = py[m] + d * sin(ang);
        int ok = 1;
        for (int o = 0; o < k && ok; o++) {
          double dx = x - px[o], dy = y - py[o], lim = bound[k] + bound[o] + s->gap;
          ok = dx * dx + dy * dy >= lim * lim;
        }
        double score = hypot(x - bx, y - by) + near * npt_rng_uniform(r);
        if (ok && score < best)
          best = score, px[k] = x, py[k] = y;
      }
    if (best == HUGE_VAL) /* cannot happen (the outermost ring is always free); be safe */
      px[k] = bx, py[k] = by;
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

int npt__redox_step(npt_scene *s, double dt) {
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
