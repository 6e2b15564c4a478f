/* Particle geometry shared by the synthetic scene (ground-truth boxes) and the renderer.
 *
 * Coordinates follow nptrack's convention: the centre of the top-left pixel is (0, 0), x grows
 * to the right (columns), y downwards (rows); pixel (i, j) covers x in [j-0.5, j+0.5].
 *
 * An outline is a rotated ellipse with two radial harmonics: in the body's own frame, at polar
 * angle phi, its radius is  R(phi) * (1 + h3 cos(3 phi + p3) + h4 cos(4 phi + p4)),  where R(phi)
 * is the radius of the ellipse with semi-axes a (along the body's x) and b.  |h3| + |h4| < 0.5
 * keeps it star-shaped and convex enough to look like a particle. */
#ifndef NPT_SYNTH_SHAPE_H
#define NPT_SYNTH_SHAPE_H

typedef struct npt_synth_body {
  double x, y;   /* centre, px */
  double a, b;   /* semi-axes, px (a > 0, b > 0) */
  double angle;  /* rotation of the body's x axis from the image x axis, rad */
  double h3, p3; /* 3rd radial harmonic: relative amplitude, phase (rad) */
  double h4, p4; /* 4th radial harmonic */
} npt_synth_body;

/* Radius of the outline in the direction (c, s) = (cos phi, sin phi) of the body's own frame
 * (already rotated by -angle), px. */
double npt_synth_outline_radius(const npt_synth_body *b, double c, double s);

/* Normalised distance of the image point (px, py) from the centre: 0 at the centre, 1 on the
 * outline, > 1 outside.  Cheap enough to call per pixel. */
double npt_synth_body_rho(const npt_synth_body *b, double px, double py);

/* Tight axis-aligned bounding box of the outline in continuous image coordinates: x0 <= x < x1,
 * y0 <= y < y1.  Exact to better than 1e-4 px for bodies up to 500 px across. */
void npt_synth_body_bbox(const npt_synth_body *b, double *x0, double *y0, double *x1, double *y1);

/* Projected area of the outline, px^2. */
double npt_synth_body_area(const npt_synth_body *b);

#endif
