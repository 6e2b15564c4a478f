#include "synth/shape.h"

#include <math.h>

enum { BBOX_SAMPLES = 4096 };

double npt_synth_outline_radius(const npt_synth_body *b, double c, double s) {
  /* Ellipse radius in direction (c, s): 1 / sqrt((c/a)^2 + (s/b)^2). */
  double ea = c / b->a, eb = s / b->b;
  double r = 1.0 / sqrt(ea * ea + eb * eb);
  double c2 = c * c - s * s, s2 = 2.0 * s * c;
  double c3 = c2 * c - s2 * s, s3 = s2 * c + c2 * s;
  double c4 = c2 * c2 - s2 * s2, s4 = 2.0 * s2 * c2;
  /* cos(k phi + p) = cos(k phi) cos p - sin(k phi) sin p */
  double m = 1.0 + b->h3 * (c3 * cos(b->p3) - s3 * sin(b->p3)) +
             b->h4 * (c4 * cos(b->p4) - s4 * sin(b->p4));
  return r * m;
}

double npt_synth_body_rho(const npt_synth_body *b, double px, double py) {
  double dx = px - b->x, dy = py - b->y;
  double ca = cos(b->angle), sa = sin(b->angle);
  double u = ca * dx + sa * dy, v = -sa * dx + ca * dy;
  double d = sqrt(u * u + v * v);
  if (d == 0.0)
    return 0.0;
  return d / npt_synth_outline_radius(b, u / d, v / d);
}

void npt_synth_body_bbox(const npt_synth_body *b, double *x0, double *y0, double *x1, double *y1) {
  double ca = cos(b->angle), sa = sin(b->angle);
  double minx = HUGE_VAL, maxx = -HUGE_VAL, miny = HUGE_VAL, maxy = -HUGE_VAL;
  /* Dense sampling, then a local refinement around each extreme by golden-section search. */
  double best_phi[4] = {0, 0, 0, 0};
  for (int i = 0; i < BBOX_SAMPLES; i++) {
    double phi = 2.0 * M_PI * i / BBOX_SAMPLES, c = cos(phi), s = sin(phi);
    double r = npt_synth_outline_radius(b, c, s);
    double u = r * c, v = r * s;
    double x = ca * u - sa * v, y = sa * u + ca * v;
    if (x < minx)
      minx = x, best_phi[0] = phi;
    if (x > maxx)
      maxx = x, best_phi[1] = phi;
    if (y < miny)
      miny = y, best_phi[2] = phi;
    if (y > maxy)
      maxy = y, best_phi[3] = phi;
  }
  double ext[4] = {minx, maxx, miny, maxy};
  for (int k = 0; k < 4; k++) {
    double sign = (k == 0 || k == 2) ? -1.0 : 1.0; /* maximise sign * coordinate */
    double lo = best_phi[k] - 2.0 * M_PI / BBOX_SAMPLES,
           hi = best_phi[k] + 2.0 * M_PI / BBOX_SAMPLES;
    const double g = 0.5 * (sqrt(5.0) - 1.0);
    for (int it = 0; it < 40; it++) {
      double m1 = hi - g * (hi - lo), m2 = lo + g * (hi - lo);
      double f[2];
      double ms[2] = {m1, m2};
      for (int j = 0; j < 2; j++) {
        double c = cos(ms[j]), s = sin(ms[j]), r = npt_synth_outline_radius(b, c, s);
        double u = r * c, v = r * s;
        f[j] = sign * (k < 2 ? ca * u - sa * v : sa * u + ca * v);
      }
      if (f[0] > f[1])
        hi = m2;
      else
        lo = m1;
    }
    double phi = 0.5 * (lo + hi), c = cos(phi), s = sin(phi), r = npt_synth_outline_radius(b, c, s);
    double u = r * c, v = r * s, val = k < 2 ? ca * u - sa * v : sa * u + ca * v;
    if (sign * val > sign * ext[k])
      ext[k] = val;
  }
  *x0 = b->x + ext[0];
  *x1 = b->x + ext[1];
  *y0 = b->y + ext[2];
  *y1 = b->y + ext[3];
}

double npt_synth_body_area(const npt_synth_body *b) {
  /* 0.5 * integral of R(phi)^2 dphi, by the trapezoid rule (periodic: spectrally accurate). */
  enum { N = 1024 };
  double sum = 0.0;
  for (int i = 0; i < N; i++) {
    double phi = 2.0 * M_PI * i / N, r = npt_synth_outline_radius(b, cos(phi), sin(phi));
    sum += r * r;
  }
  return 0.5 * sum * (2.0 * M_PI / N);
}
