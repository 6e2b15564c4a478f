/* Outline geometry for the scene: exact boxes fast enough to recompute for thousands of
 * particles, a support-function table for hard-core contacts, and the geometry of Kirkendall
 * shells. */
#include <math.h>

#include "synth/scene_internal.h"

/* The outline of shape.h, with the harmonic phases folded into two coefficients each. */
typedef struct outline {
  double a, b, ca, sa;
  double k3c, k3s, k4c, k4s; /* h cos p, h sin p */
} outline;

static void outline_init(outline *o, const npt__unit_shape *u) {
  double q = sqrt(u->aspect);
  o->a = q;
  o->b = 1.0 / q;
  o->ca = cos(u->angle);
  o->sa = sin(u->angle);
  o->k3c = u->h3 * cos(u->p3);
  o->k3s = u->h3 * sin(u->p3);
  o->k4c = u->h4 * cos(u->p4);
  o->k4s = u->h4 * sin(u->p4);
}

/* Radius of the outline at body-frame polar angle with cosine c and sine s (as shape.c). */
static inline double outline_radius(const outline *o, double c, double s) {
  double ea = c / o->a, eb = s / o->b;
  double c2 = c * c - s * s, s2 = 2.0 * s * c;
  double c3 = c2 * c - s2 * s, s3 = s2 * c + c2 * s;
  double c4 = c2 * c2 - s2 * s2, s4 = 2.0 * s2 * c2;
  double m = 1.0 + (c3 * o->k3c - s3 * o->k3s) + (c4 * o->k4c - s4 * o->k4s);
  return m / sqrt(ea * ea + eb * eb);
}

/* Image-frame offset of the outline point with body-frame direction (c, s), as the coordinate
 * `k` asks for: 0 -x, 1 x, 2 -y, 3 y (so that every extreme is a maximum). */
static inline double extreme_coord(const outline *o, int k, double c, double s) {
  double r = outline_radius(o, c, s);
  double u = r * c, v = r * s;
  double val = k < 2 ? o->ca * u - o->sa * v : o->sa * u + o->ca * v;
  return (k & 1) ? val : -val;
}

enum { COARSE = 64 };

/* The maximum of the outline coordinate k near a sampled local maximum at phi (samples h apart,
 * so the true maximum lies in (phi - h, phi + h)): safeguarded Newton on the derivative, with
 * central differences, bisecting whenever a step leaves the bracket.  Converges to ~1e-9 rad in
 * a few iterations; the value's error is second order in that.  Returns the largest value seen. */
static double refine_max(const outline *o, int k, double phi, double f0, double h) {
  const double eps = 1e-4, ce = cos(eps), se = sin(eps);
  double lo = phi - h, hi = phi + h, best = f0;
  for (int it = 0; it < 30; it++) {
    double c = cos(phi), s = sin(phi);
    double fm = extreme_coord(o, k, c * ce + s * se, s * ce - c * se);
    double fp = extreme_coord(o, k, c * ce - s * se, s * ce + c * se);
    f0 = extreme_coord(o, k, c, s);
    if (f0 > best)
      best = f0;
    double g = (fp - fm) / (2.0 * eps), g2 = (fp - 2.0 * f0 + fm) / (eps * eps);
    if (g > 0.0)
      lo = phi;
    else
      hi = phi;
    double next = g2 < 0.0 ? phi - g / g2 : 0.5 * (lo + hi);
    if (!(next > lo && next < hi))
      next = 0.5 * (lo + hi);
    if (fabs(next - phi) < 1e-7 || hi - lo < 1e-7)
      break;
    phi = next;
  }
  return best;
}

void npt__unit_bbox(const npt__unit_shape *u, double *x0, double *y0, double *x1, double *y1) {
  outline o;
  outline_init(&o, u);
  double f[4][COARSE], rmax = 0.0;
  const double dphi = 2.0 * M_PI / COARSE, cd = cos(dphi), sd = sin(dphi);
  double c = 1.0, s = 0.0;
  for (int i = 0; i < COARSE; i++) {
    double r = outline_radius(&o, c, s);
    double uu = r * c, vv = r * s;
    double X = o.ca * uu - o.sa * vv, Y = o.sa * uu + o.ca * vv;
    f[0][i] = -X, f[1][i] = X, f[2][i] = -Y, f[3][i] = Y;
    if (r > rmax)
      rmax = r;
    double cn = c * cd - s * sd;
    s = s * cd + c * sd, c = cn;
  }
  double ext[4];
  for (int k = 0; k < 4; k++) {
    double best = -HUGE_VAL;
    for (int i = 0; i < COARSE; i++)
      if (f[k][i] > best)
        best = f[k][i];
    /* Refine every sampled local maximum that could hide the true maximum: the sampling error
     * of a maximum is below rmax * (curvature) * dphi^2 / 8, well within 5 % of rmax for the
     * outlines shape.h allows. */
    double result = best;
    for (int i = 0; i < COARSE; i++) {
      double fm = f[k][(i + COARSE - 1) % COARSE], fp = f[k][(i + 1) % COARSE];
      if (f[k][i] < fm || f[k][i] < fp || f[k][i] < best - 0.05 * rmax)
        continue;
      double v = refine_max(&o, k, i * dphi, f[k][i], dphi);
      if (v > result)
        result = v;
    }
    ext[k] = result;
  }
  *x0 = -ext[0];
  *x1 = ext[1];
  *y0 = -ext[2];
  *y1 = ext[3];
}

/* Pseudo-angle of a direction, in [0, 4), monotonic in the angle: a table lookup without
 * atan2. */
static inline double pseudo_angle(double c, double s) {
  double p = s / (fabs(c) + fabs(s));
  if (c < 0.0)
    return 2.0 - p;
  if (s < 0.0)
    return 4.0 + p;
  return p;
}

static void pseudo_dir(double p, double *c, double *s) {
  double x, y;
  if (p < 1.0)
    x = 1.0 - p, y = p;
  else if (p < 2.0)
    x = -(p - 1.0), y = 2.0 - p;
  else if (p < 3.0)
    x = -(3.0 - p), y = -(p - 2.0);
  else
    x = p - 3.0, y = -(4.0 - p);
  double n = sqrt(x * x + y * y);
  *c = x / n;
  *s = y / n;
}

enum { OUTLINE_SAMPLES = 128 };

void npt__display_set(npt__display *d, const npt__unit_shape *u) {
  /* The support table is in the body's frame: a rotation alone leaves it as it is. */
  int same_body = d->shape.aspect == u->aspect && d->shape.h3 == u->h3 && d->shape.p3 == u->p3 &&
                  d->shape.h4 == u->h4 && d->shape.p4 == u->p4;
  d->shape = *u;
  d->ca = cos(u->angle);
  d->sa = sin(u->angle);
  npt__unit_bbox(u, &d->ux0, &d->uy0, &d->ux1, &d->uy1);
  if (same_body)
    return;

  /* Outline samples in the body frame (unrotated). */
  npt__unit_shape body = *u;
  body.angle = 0.0;
  outline o;
  outline_init(&o, &body);
  double pu[OUTLINE_SAMPLES], pv[OUTLINE_SAMPLES];
  d->umax = 0.0;
  d->umin = HUGE_VAL;
  const double dphi = 2.0 * M_PI / OUTLINE_SAMPLES, cd = cos(dphi), sd = sin(dphi);
  double c = 1.0, s = 0.0;
  for (int i = 0; i < OUTLINE_SAMPLES; i++) {
    double r = outline_radius(&o, c, s);
    pu[i] = r * c;
    pv[i] = r * s;
    if (r > d->umax)
      d->umax = r;
    if (r < d->umin)
      d->umin = r;
    double cn = c * cd - s * sd; /* rotate to the next sample */
    s = s * cd + c * sd, c = cn;
  }
  /* Support at the table's directions and half-way between them; the error of interpolating
   * the table half-way bounds the error anywhere, and the table is padded by twice it plus the
   * sampling error of the outline (sagitta of a sample step). */
  double exact[2 * NPT__SUP];
  for (int k = 0; k < 2 * NPT__SUP; k++) {
    double dc, ds;
    pseudo_dir(4.0 * k / (2 * NPT__SUP), &dc, &ds);
    double m = -HUGE_VAL;
    for (int i = 0; i < OUTLINE_SAMPLES; i++) {
      double h = pu[i] * dc + pv[i] * ds;
      if (h > m)
        m = h;
    }
    exact[k] = m;
  }
  double err = 0.0;
  for (int k = 0; k < NPT__SUP; k++) {
    double mid = 0.5 * (exact[2 * k] + exact[(2 * k + 2) % (2 * NPT__SUP)]);
    if (exact[2 * k + 1] - mid > err)
      err = exact[2 * k + 1] - mid;
  }
  double pad = 2.0 * err + 4.0 * d->umax * (1.0 - cos(M_PI / OUTLINE_SAMPLES));
  for (int k = 0; k < NPT__SUP; k++)
    d->sup[k] = (float)(exact[2 * k] + pad);
  d->sup[NPT__SUP] = d->sup[0];
}

double npt__support(const npt__display *d, double nx, double ny) {
  double cn = d->ca * nx + d->sa * ny, sn = -d->sa * nx + d->ca * ny;
  double t = pseudo_angle(cn, sn) * (NPT__SUP / 4.0);
  int k = (int)t;
  if (k >= NPT__SUP)
    k = NPT__SUP - 1;
  double f = t - k;
  return d->sup[k] + f * (d->sup[k + 1] - d->sup[k]);
}

void npt__redox_geometry(const npt_scene_params *p, double r0, double ox, double *rout,
                         double *core_frac, double *void_frac, double *core_off) {
  if (ox <= 0.0) {
    *rout = r0, *core_frac = 1.0, *void_frac = 0.0, *core_off = 0.0;
    return;
  }
  if (ox > 1.0)
    ox = 1.0;
  /* Volumes in units of 4/3 pi: metal left, Kirkendall void (empty, grows as ox^1.5: it opens
   * once a shell has formed), oxide.  The hollow inside the shell holds the core and the void;
   * the core settles against one side of it as the void opens. */
  double r03 = r0 * r0 * r0, e = p->oxide_expansion, vf3 = pow(p->void_frac, 3.0);
  double core3 = r03 * (1.0 - ox);
  double empty3 = vf3 * e / (1.0 - vf3) * r03 * pow(ox, 1.5);
  double hollow3 = core3 + empty3;
  double out3 = hollow3 + e * ox * r03;
  double ro = cbrt(out3), rc = cbrt(core3), rh = cbrt(hollow3);
  *rout = ro;
  *core_frac = rc / ro;
  /* The renderer takes void and core as separate regions (oxide = outer - void - core), so the
   * void it is given is the empty volume alone, centred: exact in volume, and the hollow shell
   * with no core left once oxidation is complete. */
  *void_frac = cbrt(empty3) / ro;
  double w = (ox - 0.05) / 0.45;
  w = w < 0.0 ? 0.0 : w > 1.0 ? 1.0 : w * w * (3.0 - 2.0 * w);
  *core_off = 0.95 * (rh - rc) * w;
}

void npt__body(const npt_scene *s, const npt__particle *q, npt_synth_body *b) {
  double k = sqrt(q->d.shape.aspect);
  b->x = q->x + s->drift_x;
  b->y = q->y + s->drift_y;
  b->a = q->rout * k;
  b->b = q->rout / k;
  b->angle = q->d.shape.angle;
  b->h3 = q->d.shape.h3;
  b->p3 = q->d.shape.p3;
  b->h4 = q->d.shape.h4;
  b->p4 = q->d.shape.p4;
}
