/* The particle layer the plain way: the reference that render_particles.c and render_shade.c are
 * tested against (tests/unit/test_render.c) and timed beside (benchmarks/bench_render.c).
 *
 * Straight from the model (render_particles.c) and shape.h, with no estimate of its own: each
 * pixel is the mean of n x n point samples; at each sample, inside the outline
 * (npt_synth_body_rho < 1), the exact thicknesses t = 2 c sqrt(1 - rho^2) of body, void and core
 * give the transmission exp(-t_metal / metal_mfp - t_oxide / oxide_mfp), its contrast modulated
 * by the lattice fringes there; outside, 1 + the Fresnel fringe at the sample's true distance to
 * the outline.  The distance is found along the outline itself: the nearest of 1024 points on it,
 * then a golden-section search between that point's neighbours.  Each particle multiplies each
 * pixel by its own mean transmission over the pixel, as the fast renderer does.
 *
 * What the fast renderer estimates instead, per pixel: the covered fraction from a first-order
 * signed distance (exact for an edge along a pixel axis), the covered part's mean thickness from
 * the depth range it spans, the fringe at the centroid of the uncovered part from the same
 * first-order distance, the lattice at the pixel's centre.  test_render.c bounds the
 * differences. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "synth/render_internal.h"
#include "synth/shape.h"

enum { OUTLINE_POINTS = 1024 };

typedef struct ref_particle {
  const npt_synth_particle *q;
  npt_synth_body core;                           /* the outer body shifted by the core offset */
  double c;                                      /* mean radius: thickness at the centre is 2c */
  double ox[OUTLINE_POINTS], oy[OUTLINE_POINTS]; /* outline points, image coordinates */
} ref_particle;

/* The outline point at body-frame polar angle phi, image coordinates. */
static void outline_point(const npt_synth_body *b, double phi, double *x, double *y) {
  double c = cos(phi), s = sin(phi), r = npt_synth_outline_radius(b, c, s);
  double ca = cos(b->angle), sa = sin(b->angle);
  *x = b->x + r * (ca * c - sa * s);
  *y = b->y + r * (sa * c + ca * s);
}

static double dist2_to(const npt_synth_body *b, double phi, double x, double y) {
  double px, py;
  outline_point(b, phi, &px, &py);
  return (px - x) * (px - x) + (py - y) * (py - y);
}

/* Distance from (x, y) to the outline. */
static double outline_distance(const ref_particle *rp, double x, double y) {
  int best = 0;
  double d2 = HUGE_VAL;
  for (int k = 0; k < OUTLINE_POINTS; k++) {
    double e = (rp->ox[k] - x) * (rp->ox[k] - x) + (rp->oy[k] - y) * (rp->oy[k] - y);
    if (e < d2)
      d2 = e, best = k;
  }
  const double step = 2.0 * M_PI / OUTLINE_POINTS, g = 0.5 * (sqrt(5.0) - 1.0);
  double lo = (best - 1) * step, hi = (best + 1) * step;
  for (int it = 0; it < 30; it++) {
    double m1 = hi - g * (hi - lo), m2 = lo + g * (hi - lo);
    if (dist2_to(&rp->q->outer, m1, x, y) < dist2_to(&rp->q->outer, m2, x, y))
      hi = m2;
    else
      lo = m1;
  }
  double e = dist2_to(&rp->q->outer, 0.5 * (lo + hi), x, y);
  return sqrt(e < d2 ? e : d2);
}

/* Thickness of a body of mean radius c at normalised distance rho from its centre. */
static double thickness(double rho, double c) {
  return rho < 1.0 ? 2.0 * c * sqrt(1.0 - rho * rho) : 0.0;
}

/* The particle's transmission at the point (x, y). */
static double transmission_at(const npt_synth_optics *o, const ref_particle *rp, double x,
                              double y) {
  const npt_synth_particle *q = rp->q;
  double rho = npt_synth_body_rho(&q->outer, x, y);
  if (rho >= 1.0) {
    double w = fabs(o->fresnel_width_px);
    if (o->fresnel_amp <= 0.0 || w < 0.05)
      return 1.0;
    double u = outline_distance(rp, x, y) / w;
    if (u >= 3.0)
      return 1.0;
    double amp = o->fresnel_width_px > 0.0 ? o->fresnel_amp : -o->fresnel_amp;
    return 1.0 + amp * (1.0 - u) * (1.0 - u / 3.0) * (1.0 - u / 3.0);
  }
  double t_out = thickness(rho, rp->c);
  double t_void = q->void_frac > 0.0 ? thickness(rho / q->void_frac, rp->c * q->void_frac) : 0.0;
  double t_core = 0.0;
  if (q->core_frac > 0.0)
    t_core = thickness(npt_synth_body_rho(&rp->core, x, y) / q->core_frac, rp->c * q->core_frac);
  double t_ox = fmax(t_out - t_void - t_core, 0.0);
  double contrast = 1.0 - exp(-t_core / o->metal_mfp_px - t_ox / o->oxide_mfp_px);
  if (q->lattice_period_px >= 2.0 && q->lattice_amp > 0.0) {
    double kx = cos(q->lattice_angle) / q->lattice_period_px;
    double ky = sin(q->lattice_angle) / q->lattice_period_px;
    double arg = 2.0 * M_PI * (kx * (x - q->outer.x) + ky * (y - q->outer.y)) + q->lattice_phase;
    contrast = fmin(contrast * (1.0 + q->lattice_amp * cos(arg)), 1.0);
  }
  return 1.0 - contrast;
}

int npt__synth_render_particles_reference(const npt_synth_optics *o,
                                          const npt_synth_particle *particles, int n, float *img,
                                          int width, int height, int stride, int samples) {
  ref_particle *rp = malloc(sizeof *rp);
  if (!rp)
    return npt_error_set(NPT_ENOMEM, "synth reference renderer: out of memory");
  double reach = o->fresnel_amp > 0.0 ? 3.0 * fabs(o->fresnel_width_px) : 0.0;
  for (int i = 0; i < n; i++) {
    const npt_synth_particle *q = &particles[i];
    rp->q = q;
    rp->core = q->outer;
    rp->core.x += q->core_dx;
    rp->core.y += q->core_dy;
    rp->c = sqrt(q->outer.a * q->outer.b *
                 (1.0 + 0.5 * (q->outer.h3 * q->outer.h3 + q->outer.h4 * q->outer.h4)));
    for (int k = 0; k < OUTLINE_POINTS; k++)
      outline_point(&q->outer, 2.0 * M_PI * k / OUTLINE_POINTS, &rp->ox[k], &rp->oy[k]);
    /* Pixels that the bounding box grown by the fringe's reach (and a pixel) touches. */
    double x0, y0, x1, y1;
    npt_synth_body_bbox(&q->outer, &x0, &y0, &x1, &y1);
    int j0 = (int)fmax(floor(x0 - reach - 1.0), 0.0),
        j1 = (int)fmin(ceil(x1 + reach + 1.0), width - 1);
    int i0 = (int)fmax(floor(y0 - reach - 1.0), 0.0),
        i1 = (int)fmin(ceil(y1 + reach + 1.0), height - 1);
    for (int pi = i0; pi <= i1; pi++)
      for (int pj = j0; pj <= j1; pj++) {
        double sum = 0.0;
        for (int si = 0; si < samples; si++)
          for (int sj = 0; sj < samples; sj++)
            sum += transmission_at(o, rp, pj - 0.5 + (sj + 0.5) / samples,
                                   pi - 0.5 + (si + 0.5) / samples);
        img[(size_t)pi * stride + pj] *= (float)(sum / (samples * samples));
      }
  }
  free(rp);
  return 0;
}
