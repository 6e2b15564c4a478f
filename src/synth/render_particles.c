/* Particles of a synthetic frame: thickness contrast of metal and oxide bodies, anti-aliased
 * outlines, lattice fringes and the Fresnel fringe, multiplied into the frame (render.c).
 *
 * Model.  A body of outline R(phi) (shape.h) is seen as a sphere-like solid of projected
 * thickness t = 2 c sqrt(1 - rho^2), rho = r / R(phi), c its mean radius.  Void and metal core
 * are the outline scaled by void_frac / core_frac (the core also shifted): metal thickness
 * t(core), oxide thickness t(outer) - t(void) - t(core), transmission
 * exp(-t_metal / metal_mfp - t_oxide / oxide_mfp).  Lattice fringes modulate the particle's
 * contrast 1 - T by 1 + lattice_amp cos(k.(x - centre) + phase), so they move with it.
 * Overlapping particles multiply, i.e. absorb like their summed thickness.
 *
 * Anti-aliasing.  Per pixel, the signed distance sd to the outline (positive inside) is
 * estimated to first order as (R - r) / g with g = R |grad rho|, in closed form: cos and sin of
 * the polar angle and of its multiples come from the pixel's offset, so there is no atan2 and no
 * per-pixel trigonometry.  The covered fraction of the pixel is clamp(1/2 + sd, 0, 1), exact for
 * a straight edge along a pixel axis; the covered part gets its mean thickness (across the depth
 * range the pixel spans, see covered_thickness) and the rest the support and the Fresnel fringe
 * at its centroid.  So a pixel is half dark where the outline crosses its centre, and the dark
 * region's extent matches npt_synth_body_bbox to a fraction of a pixel, for 5 px particles too
 * (tests/unit/test_render.c checks both, and the pixels of a 7 px particle against a 16 x 16
 * supersampled reference).  Void and core use the same estimate, relative to the covered part.
 *
 * Fresnel fringe.  Outside the outline, at distance s = u w (w = |fresnel_width_px|), the
 * support is multiplied by 1 + A (1 - u) (1 - u/3)^2 for u < 3, and 1 beyond: a fringe of sign A
 * and width w at the edge, then one of opposite sign, 0.13 |A| deep at u = 5/3, fading smoothly
 * to nothing at 3 w.  This polynomial is a cheap stand-in for the damped oscillation
 * exp(-u) cos(pi u / 2) (within 0.1 of it).  The sign of fresnel_width_px is the sign of the
 * defocus: positive (under-focus, usual for bright-field images of particles) gives a bright
 * first fringe, negative (over-focus) a dark one; |A| = fresnel_amp.
 *
 * Speed.  The pixel loops are written for GCC's vectoriser at -O2 (see render_internal.h): one
 * branch-free loop per kind of particle.  Each row of a particle is cut into the part that the
 * body may cover and, on either side, the part that only the fringe reaches, which needs just
 * the distance to the outline (most pixels of small particles); the parts, limited to the
 * chords of the row that body and fringe can reach, are packed into two long runs (up to CHUNK
 * pixels) with their coordinates in arrays.  Small particles have rows of one or two vectors,
 * and a loop that short would be bound by the latency of its long chain of arithmetic rather
 * than by throughput.  Particles are taken in bands of rows, so the frame rows they multiply are
 * still in the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/render_internal.h"

#define MAX_SEMI_AXIS 2048.0

/* Pixels per packed run (the scratch arrays' length is this or a frame row, if longer). */
enum { CHUNK = 1024 };

enum { SHADE_SOLID, SHADE_LAYERED, SHADE_SHIFTED };

/* One particle prepared for the pixel loop. */
typedef struct prep {
  float cx, cy;              /* centre */
  float ca, sa;              /* cos, sin of the body's angle */
  float ia2, ib2, dab;       /* 1/a^2, 1/b^2, 1/b^2 - 1/a^2 */
  float h3c, h3s, h4c, h4s;  /* h3 cos p3, h3 sin p3, ... */
  float two_c;               /* thickness at the centre: 2 x mean radius */
  float vf, ivf, cf, icf;    /* void and core scales (0: none) and their inverses (0 for none) */
  float kdx, kdy;            /* core offset from the centre */
  float mu_core, mu_shell;   /* 1/mfp of the core and of the rest (solid bodies: the body) */
  float lkx, lky, lph, lamp; /* lattice: wave vector in cycles/px, phase in cycles, amplitude */
  int kind, lattice;
  /* Row spans: chords of the ellipse that holds the outline (rotated, semi-axes m a, m b with
   * m = 1 + |h3| + |h4|), x = (-(bq dy) -+ sqrt((bq dy)^2 - aq (gq dy^2 - 1))) / aq, grown by
   * the margin; ey: its half height; dy_right: the row offset of its rightmost point. */
  float aq, iaq, bq, gq, ey, dy_right, margin;
} prep;

static int bad_particle(int64_t frame, int i, const char *field, double value, const char *want) {
  return npt_error_set(NPT_EINVAL, "synth render: frame %lld: particle %d: %s = %g: must be %s",
                       (long long)frame, i, field, value, want);
}

int npt__synth_particles_check(const npt_synth_particle *particles, int n, int64_t frame) {
  for (int i = 0; i < n; i++) {
    const npt_synth_particle *q = &particles[i];
    const npt_synth_body *b = &q->outer;
    const double v[] = {b->x,
                        b->y,
                        b->angle,
                        b->p3,
                        b->p4,
                        q->core_dx,
                        q->core_dy,
                        q->lattice_angle,
                        q->lattice_phase,
                        q->lattice_period_px};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
      if (!isfinite(v[k]))
        return bad_particle(frame, i, "a position, angle or phase", v[k], "finite");
    if (!(b->a > 0.0 && b->a <= MAX_SEMI_AXIS))
      return bad_particle(frame, i, "outer.a", b->a, "in (0, 2048] px");
    if (!(b->b > 0.0 && b->b <= MAX_SEMI_AXIS))
      return bad_particle(frame, i, "outer.b", b->b, "in (0, 2048] px");
    if (!(fabs(b->h3) + fabs(b->h4) < 0.9))
      return bad_particle(frame, i, "|outer.h3| + |outer.h4|", fabs(b->h3) + fabs(b->h4), "< 0.9");
    if (!(q->void_frac >= 0.0 && q->void_frac <= 0.95))
      return bad_particle(frame, i, "void_frac", q->void_frac, "in [0, 0.95]");
    if (!(q->core_frac >= 0.0 && q->core_frac <= 1.0))
      return bad_particle(frame, i, "core_frac", q->core_frac, "in [0, 1]");
    if (!(q->lattice_amp >= 0.0 && q->lattice_amp <= 0.5))
      return bad_particle(frame, i, "lattice_amp", q->lattice_amp, "in [0, 0.5]");
  }
  return 0;
}

/* cos and sin in single precision (all the pixel loops use), of the angle reduced to one turn
 * in double precision. */
static void cos_sin(double angle, float *c, float *s) {
  float a = (float)(angle - 2.0 * M_PI * floor(angle * (0.5 / M_PI)));
  *c = cosf(a);
  *s = sinf(a);
}

static void prepare(const npt__synth_shader *sh, const npt_synth_particle *q, prep *p) {
  const npt_synth_body *b = &q->outer;
  float c3 = 1.0f, s3 = 0.0f, c4 = 1.0f, s4 = 0.0f;
  cos_sin(b->angle, &p->ca, &p->sa);
  if (b->h3 != 0.0)
    cos_sin(b->p3, &c3, &s3);
  if (b->h4 != 0.0)
    cos_sin(b->p4, &c4, &s4);
  double ca = p->ca, sa = p->sa;
  p->cx = (float)b->x;
  p->cy = (float)b->y;
  p->ia2 = (float)(1.0 / (b->a * b->a));
  p->ib2 = (float)(1.0 / (b->b * b->b));
  p->dab = p->ib2 - p->ia2;
  p->h3c = (float)b->h3 * c3;
  p->h3s = (float)b->h3 * s3;
  p->h4c = (float)b->h4 * c4;
  p->h4s = (float)b->h4 * s4;
  p->two_c = (float)(2.0 * sqrt(b->a * b->b * (1.0 + 0.5 * (b->h3 * b->h3 + b->h4 * b->h4))));
  p->vf = (float)q->void_frac;
  p->ivf = q->void_frac > 0.0 ? (float)(1.0 / q->void_frac) : 0.0f;
  p->cf = (float)q->core_frac;
  p->icf = q->core_frac > 0.0 ? (float)(1.0 / q->core_frac) : 0.0f;
  p->kdx = (float)q->core_dx;
  p->kdy = (float)q->core_dy;
  int shifted = q->core_frac > 0.0 && (q->core_dx != 0.0 || q->core_dy != 0.0);
  if (q->void_frac == 0.0 && !shifted && (q->core_frac == 0.0 || q->core_frac == 1.0)) {
    p->kind = SHADE_SOLID;
    p->mu_core = p->mu_shell = q->core_frac == 1.0 ? sh->mu_metal : sh->mu_oxide;
  } else {
    p->kind = shifted ? SHADE_SHIFTED : SHADE_LAYERED;
    p->mu_core = sh->mu_metal;
    p->mu_shell = sh->mu_oxide;
  }
  p->lattice = q->lattice_period_px >= 2.0 && q->lattice_amp > 0.0;
  p->lkx = p->lky = p->lph = p->lamp = 0.0f;
  if (p->lattice) {
    double ph = q->lattice_phase / (2.0 * M_PI);
    float lc, ls;
    cos_sin(q->lattice_angle, &lc, &ls);
    p->lkx = lc / (float)q->lattice_period_px;
    p->lky = ls / (float)q->lattice_period_px;
    p->lph = (float)(ph - floor(ph));
    p->lamp = (float)q->lattice_amp;
  }
  double m = 1.0 + fabs(b->h3) + fabs(b->h4), ea = m * b->a, eb = m * b->b;
  double ia = 1.0 / (ea * ea), ib = 1.0 / (eb * eb);
  double aq = ca * ca * ia + sa * sa * ib;
  p->aq = (float)aq;
  p->iaq = (float)(1.0 / aq);
  p->bq = (float)(ca * sa * (ia - ib));
  p->gq = (float)(sa * sa * ia + ca * ca * ib);
  p->ey = (float)sqrt(ea * ea * sa * sa + eb * eb * ca * ca);
  p->dy_right =
      (float)(ca * sa * (ea * ea - eb * eb) / sqrt(ea * ea * ca * ca + eb * eb * sa * sa));
  p->margin = sh->margin + 0.05f; /* and room for the float rounding of the spans */
}

#define INLINE static inline __attribute__((always_inline))

/* Row spans: [XL[i], XR[i]] = the x offsets within distance m of the body on the row at offset
 * dy0 + i, i < n8; [BL[i], BR[i]] the same for distance mb.  Within distance m of the bounding
 * ellipse, that is: the left end is m left of the ellipse's leftmost point over rows dy - m ..
 * dy + m, and the ellipse's left edge is convex in the row, so that point is on the row nearest
 * to the row of the leftmost point.  Likewise on the right.  Rows that the ellipse grown by mb
 * does not reach get an empty body span (BL > BR). */
INLINE void chord_ends(const prep *p, float m, float dy, float *xl, float *xr) {
  const float ey = p->ey, yr0 = p->dy_right;
  float lo = npt__minf(npt__maxf(dy - m, -ey), ey), hi = npt__minf(npt__maxf(dy + m, -ey), ey);
  float yl = npt__minf(npt__maxf(-yr0, lo), hi), yr = npt__minf(npt__maxf(yr0, lo), hi);
  float dl = npt__max_pos(p->bq * p->bq * yl * yl - p->aq * (p->gq * yl * yl - 1.0f), 0.0f);
  float dr = npt__max_pos(p->bq * p->bq * yr * yr - p->aq * (p->gq * yr * yr - 1.0f), 0.0f);
  *xl = (-p->bq * yl - dl * npt__rsqrt(dl)) * p->iaq - m;
  *xr = (-p->bq * yr + dr * npt__rsqrt(dr)) * p->iaq + m;
}

NPT__KERNEL static void span_pass(const prep *p, float m, float mb, float dy0, float *restrict XL,
                                  float *restrict XR, float *restrict BL, float *restrict BR,
                                  int n8) {
  n8 = npt__row_round(n8);
  const float reach = p->ey + mb;
  for (int i = 0; i < n8; i++) {
    float dy = dy0 + (float)i, bl, br;
    chord_ends(p, m, dy, &XL[i], &XR[i]);
    chord_ends(p, mb, dy, &bl, &br);
    /* Past the body's rows: an empty span, BL = +big, BR = -big. */
    float out = npt__max_pos(fabsf(dy) - reach, 0.0f) * 1e30f;
    BL[i] = bl + out;
    BR[i] = br - out;
  }
}

INLINE float clamp01(float v) {
  return npt__min_pos(npt__max_pos(v, 0.0f), 1.0f);
}

/* Geometry pass: for the outline at offsets (X[k] - ox, Y[k] - oy) from its centre, the outline
 * radius R in the pixel's direction, the pixel's distance D, the factor g = R |grad rho| as 1/g
 * (IG) and g / R (GIR): the signed distance to the outline scaled by f is about (f R - D) / g.
 * cos and sin of 3 and 4 times the polar angle come from powers of z = u + i v divided by |z|^3
 * and |z|^4, which the compiler can compute alongside 1/|z|. */
NPT__KERNEL static void outline_pass(const prep *p, const float *restrict X,
                                     const float *restrict Y, float ox, float oy, float *restrict R,
                                     float *restrict D, float *restrict IG, float *restrict GIR,
                                     int n8) {
  n8 = npt__row_round(n8); /* a no-op that tells the vectoriser n8 is a multiple of 8 */
  const float ca = p->ca, sa = p->sa, ia2 = p->ia2, ib2 = p->ib2, dab = p->dab;
  const float h3c = p->h3c, h3s = p->h3s, h4c = p->h4c, h4s = p->h4s;
  for (int k = 0; k < n8; k++) {
    float dx = X[k] - ox, dy = Y[k] - oy;
    /* The 1e-4 px nudge gives the centre itself a direction (and a thickness). */
    float u = ca * dx + sa * dy + 1e-4f, v = ca * dy - sa * dx;
    float uu = u * u, vv = v * v, uv = u * v;
    float d2 = uu + vv;
    float id = npt__rsqrt(d2), id2 = id * id, id3 = id2 * id, id4 = id2 * id2;
    float x2 = uu - vv, y2 = 2.0f * uv;
    float x3 = x2 * u - y2 * v, y3 = y2 * u + x2 * v;
    float x4 = x2 * x2 - y2 * y2, y4 = 2.0f * x2 * y2;
    float m = 1.0f + (h3c * x3 - h3s * y3) * id3 + (h4c * x4 - h4s * y4) * id4;
    float dm = -3.0f * (h3c * y3 + h3s * x3) * id3 - 4.0f * (h4c * y4 + h4s * x4) * id4;
    float qe = (uu * ia2 + vv * ib2) * id2;
    float re = npt__rsqrt(qe), im = 1.0f / m; /* ellipse radius, 1 / harmonic factor */
    /* d ln R / d phi: of the ellipse -cos sin (1/b^2 - 1/a^2) re^2, of the harmonics m' / m. */
    float l = dm * im - uv * id2 * dab * re * re, l2 = 1.0f + l * l;
    float ig = npt__rsqrt_fast(l2);
    R[k] = re * m;
    D[k] = d2 * id;
    IG[k] = ig;
    GIR[k] = l2 * ig * qe * re * im;
  }
}

/* Mean thickness over the covered part of a pixel at signed distance sd from an outline (local
 * g / R = g_ir) of a body of central thickness two_c.  In depth units e = 1 - rho the pixel
 * spans [e0 - h, e0 + h], e0 = sd g_ir, h = g_ir / 2, and its covered part [a, b] is that range
 * clipped to [0, 1]; the thickness 2c sqrt(e (2 - e)) = 2c sqrt(2 e) sqrt(1 - e/2) is averaged
 * over it with the edge factor sqrt(2 e) integrated exactly,
 * mean sqrt(e) = (2/3) (b^3/2 - a^3/2) / (b - a) = (2/3) (b + sqrt(ab) + a) / (sqrt b + sqrt a),
 * and the slow factor taken at the middle.  Sampling the thickness at the pixel's centre instead
 * overrates the pixels along the edge, where the profile is steepest (a 7 px particle's
 * integrated contrast by 3 %, against 2 % from this average). */
INLINE float covered_thickness(float sd, float g_ir, float two_c) {
  float e0 = sd * g_ir, h = 0.5f * g_ir;
  float a = npt__min_pos(npt__max_pos(e0 - h, 0.0f), 1.0f);
  float b = npt__min_pos(npt__max_pos(e0 + h, 0.0f), 1.0f);
  float x = b * npt__rsqrt(b), y = a * npt__rsqrt(a); /* sqrt b, sqrt a (0 at 0) */
  float mean = (x * x + x * y + y * y) / (x + y + 1e-20f);
  float slow = 1.0f - 0.25f * (a + b);
  return two_c * (0.94280904f * mean) * (slow * npt__rsqrt(slow)); /* 2 sqrt(2) / 3 */
}

/* Shading pass: T[k] = the particle's transmission from the outer outline's geometry (the
 * arrays g[0..3] = R, D, IG, GIR of outline_pass) and, for a shifted core, the core outline's
 * (g[4..7]).  `kind` and `lattice` are constants at each call site, so each combination compiles
 * to its own branch-free, vectorisable loop. */
INLINE void shade_run(const npt__synth_shader *sh, const prep *p, const float *restrict X,
                      const float *restrict Y, const float *restrict R, const float *restrict D,
                      const float *restrict IG, const float *restrict GIR, const float *restrict Rk,
                      const float *restrict Dk, const float *restrict IGk,
                      const float *restrict GIRk, float *restrict T, int n8, const int kind,
                      const int lattice) {
  const float fa = sh->fringe_amp, fiw = sh->fringe_inv_w;
  for (int k = 0; k < n8; k++) {
    float sd = (R[k] - D[k]) * IG[k], g_ir = GIR[k];
    float cov = clamp01(0.5f + sd);
    float t_out = covered_thickness(sd, g_ir, p->two_c);
    float x;
    if (kind == SHADE_SOLID) {
      x = p->mu_shell * t_out;
    } else {
      float icov = 1.0f / npt__max_pos(cov, 1e-6f);
      float sdv = (p->vf * R[k] - D[k]) * IG[k];
      float t_void = npt__min_pos(clamp01(0.5f + sdv) * icov, 1.0f) *
                     covered_thickness(sdv, g_ir * p->ivf, p->two_c * p->vf);
      float sdk, gk_irk;
      if (kind == SHADE_LAYERED) {
        sdk = (p->cf * R[k] - D[k]) * IG[k];
        gk_irk = g_ir * p->icf;
      } else {
        sdk = (p->cf * Rk[k] - Dk[k]) * IGk[k];
        gk_irk = GIRk[k] * p->icf;
      }
      float t_core = npt__min_pos(clamp01(0.5f + sdk) * icov, 1.0f) *
                     covered_thickness(sdk, gk_irk, p->two_c * p->cf);
      float t_ox = npt__max_pos(t_out - t_void - t_core, 0.0f);
      x = p->mu_core * t_core + p->mu_shell * t_ox;
    }
    float contrast = 1.0f - npt__exp2_neg(-1.44269504f * x);
    if (lattice)
      contrast = npt__min_pos(
          contrast * (1.0f + p->lamp * npt__cos_cycles(p->lkx * X[k] + p->lky * Y[k] + p->lph)),
          1.0f);
    /* Fresnel fringe at the centroid of the uncovered part, in units of its width. */
    float u = npt__maxf(-sd, 0.25f - 0.5f * sd) * fiw;
    u = npt__min_pos(npt__max_pos(u, 0.0f), 3.0f);
    float q = 1.0f - (1.0f / 3.0f) * u;
    float fringe = fa * (1.0f - u) * q * q;
    T[k] = cov * (1.0f - contrast) + (1.0f - cov) * (1.0f + fringe);
  }
}

/* Transmission of the packed run into sh->t (the geometry arrays already filled).  Not inlined,
 * so that the restrict parameters hold in the loops. */
NPT__KERNEL static void shade_pass(const npt__synth_shader *sh, const prep *p,
                                   const float *restrict X, const float *restrict Y,
                                   const float *restrict R, const float *restrict D,
                                   const float *restrict IG, const float *restrict GIR,
                                   const float *restrict Rk, const float *restrict Dk,
                                   const float *restrict IGk, const float *restrict GIRk,
                                   float *restrict T, int n8) {
  n8 = npt__row_round(n8);
#define SHADE_RUN(kind, lattice)                                                                   \
  shade_run(sh, p, X, Y, R, D, IG, GIR, Rk, Dk, IGk, GIRk, T, n8, kind, lattice)
  switch (p->kind * 2 + p->lattice) {
  case SHADE_SOLID * 2:
    SHADE_RUN(SHADE_SOLID, 0);
    break;
  case SHADE_SOLID * 2 + 1:
    SHADE_RUN(SHADE_SOLID, 1);
    break;
  case SHADE_LAYERED * 2:
    SHADE_RUN(SHADE_LAYERED, 0);
    break;
  case SHADE_LAYERED * 2 + 1:
    SHADE_RUN(SHADE_LAYERED, 1);
    break;
  case SHADE_SHIFTED * 2:
    SHADE_RUN(SHADE_SHIFTED, 0);
    break;
  default:
    SHADE_RUN(SHADE_SHIFTED, 1);
    break;
  }
#undef SHADE_RUN
}

/* Fringe pass, for pixels at least 1/2 px outside the outline (uncovered): T[k] = 1 + the
 * Fresnel fringe, from the outline geometry R, D, IG. */
NPT__KERNEL static void fringe_pass(const npt__synth_shader *sh, const float *restrict R,
                                    const float *restrict D, const float *restrict IG,
                                    float *restrict T, int n8) {
  n8 = npt__row_round(n8);
  const float fa = sh->fringe_amp, fiw = sh->fringe_inv_w;
  for (int k = 0; k < n8; k++) {
    float sd = (R[k] - D[k]) * IG[k];
    float u = npt__min_pos(npt__max_pos(-sd * fiw, 0.0f), 3.0f);
    float q = 1.0f - (1.0f / 3.0f) * u;
    T[k] = 1.0f + fa * (1.0f - u) * q * q;
  }
}

/* row[k] *= T[k] for k < n8. */
static __attribute__((noinline)) void span_apply(float *restrict row, const float *restrict T,
                                                 int n8) {
  n8 = npt__row_round(n8);
  for (int k = 0; k < n8; k++)
    row[k] *= T[k];
}

/* X, Y of pixels j0 - cx .. (row i - cy) for n pixels, rounded up to whole vectors. */
static __attribute__((noinline)) void span_coords(float *restrict X, float *restrict Y, float dx0,
                                                  float dy, int n8) {
  n8 = npt__row_round(n8);
  for (int k = 0; k < n8; k++) {
    X[k] = dx0 + (float)k;
    Y[k] = dy;
  }
}

/* Shades a packed run (the body's or the fringe's), multiplies it into its rows and empties it.
 * The run's length is rounded up to whole vectors: span_coords wrote coordinates that far. */
static void flush(npt__synth_shader *sh, const prep *p, npt__synth_run *run, float *img,
                  int stride) {
  if (run->used == 0)
    return;
  int n8 = npt__row_round(run->used);
  float *const *g = sh->geo;
  outline_pass(p, run->x, run->y, 0.0f, 0.0f, g[0], g[1], g[2], g[3], n8);
  if (run == &sh->fringe) {
    fringe_pass(sh, g[0], g[1], g[2], run->t, n8);
  } else {
    if (p->kind == SHADE_SHIFTED)
      outline_pass(p, run->x, run->y, p->kdx, p->kdy, g[4], g[5], g[6], g[7], n8);
    shade_pass(sh, p, run->x, run->y, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], run->t, n8);
  }
  const float *t = run->t;
  for (int s = 0; s < run->nspans; s++) {
    const npt__synth_span *sp = &run->spans[s];
    float *row = img + (size_t)sp->row * stride + sp->col;
    int k = 0;
    if (sp->n >= NPT__ROW_ALIGN) {
      k = sp->n & ~(NPT__ROW_ALIGN - 1);
      span_apply(row, t, k);
    }
    for (; k < sp->n; k++)
      row[k] *= t[k];
    t += sp->n;
  }
  run->used = 0;
  run->nspans = 0;
}

/* Adds pixels j0 .. j1 of row i to a run (flushing it first if full).  Spans are packed back to
 * back; span_coords writes whole vectors and the next span overwrites the excess. */
static inline void add_span(npt__synth_shader *sh, const prep *p, npt__synth_run *run, int i,
                            int j0, int j1, float *img, int stride) {
  int n = j1 - j0 + 1;
  if (n <= 0)
    return;
  if (run->used + n > sh->cap)
    flush(sh, p, run, img, stride);
  span_coords(run->x + run->used, run->y + run->used, (float)(j0 - (double)p->cx),
              (float)(i - (double)p->cy), n);
  run->spans[run->nspans++] = (npt__synth_span){i, j0, n};
  run->used += n;
}

/* Each row's reach splits into the body part (within BODY_MARGIN of the bounding ellipse, where
 * pixels may be covered) and, on either side, the fringe part, which needs only the distance to
 * the outline: a much cheaper pass, and most of the pixels of small particles. */
#define BODY_MARGIN 0.6f

/* Pixel columns [*j0, *j1] of the x offsets [xl, xr] from cx, clipped to the frame. */
static inline void columns(float cx, float xl, float xr, int width, int *j0, int *j1) {
  float a = cx + xl, b = cx + xr;
  a = a > 0.0f ? a : 0.0f;
  b = b < width - 1.0f ? b : width - 1.0f;
  if (!(a <= b)) {
    *j0 = 1;
    *j1 = 0;
    return;
  }
  int ia = (int)a, ib = (int)b; /* a, b >= 0 here: truncation is floor */
  *j0 = ia + (a > (float)ia);
  *j1 = ib;
}

static void shade(npt__synth_shader *sh, const prep *p, float *img, int width, int height,
                  int stride) {
  double y0 = ceil(p->cy - p->ey - p->margin), y1 = floor(p->cy + p->ey + p->margin);
  y0 = y0 > 0.0 ? y0 : 0.0;
  y1 = y1 < height - 1.0 ? y1 : height - 1.0;
  if (y0 > y1)
    return;
  int i0 = (int)y0, rows = (int)y1 - i0 + 1, fringe = sh->fringe_amp != 0.0f;
  span_pass(p, p->margin, BODY_MARGIN, (float)(i0 - (double)p->cy), sh->xl, sh->xr, sh->bl, sh->br,
            rows);
  for (int r = 0; r < rows; r++) {
    int i = i0 + r, x0, x1, b0, b1;
    columns(p->cx, sh->xl[r], sh->xr[r], width, &x0, &x1);
    if (x0 > x1)
      continue;
    columns(p->cx, sh->bl[r], sh->br[r], width, &b0, &b1);
    b0 = b0 > x0 ? b0 : x0;
    b1 = b1 < x1 ? b1 : x1;
    if (b0 > b1) { /* no body on this row */
      if (fringe)
        add_span(sh, p, &sh->fringe, i, x0, x1, img, stride);
      continue;
    }
    if (fringe) {
      add_span(sh, p, &sh->fringe, i, x0, b0 - 1, img, stride);
      add_span(sh, p, &sh->fringe, i, b1 + 1, x1, img, stride);
    }
    add_span(sh, p, &sh->body, i, b0, b1, img, stride);
  }
  flush(sh, p, &sh->body, img, stride);
  flush(sh, p, &sh->fringe, img, stride);
}

/* Particles in bands of 16 rows, in the order given within a band (a stable counting sort), so
 * that consecutive particles touch rows that are still in the cache. */
enum { BAND_SHIFT = 4 };

static int band_of(const npt_synth_particle *q, int bands) {
  double y = q->outer.y / (1 << BAND_SHIFT);
  return y < 0.0 ? 0 : (y >= bands - 1 ? bands - 1 : (int)y);
}

int npt__synth_particles_shade(npt__synth_shader *sh, const npt_synth_particle *particles, int n,
                               float *img, int width, int height, int stride) {
  if (n > sh->order_cap) {
    int *o = realloc(sh->order, sizeof(int) * (size_t)n);
    if (!o)
      return npt_error_set(NPT_ENOMEM, "synth render: out of memory ordering %d particles", n);
    sh->order = o;
    sh->order_cap = n;
  }
  int bands = sh->bands;
  memset(sh->band_start, 0, sizeof(int) * (bands + 1));
  for (int i = 0; i < n; i++)
    sh->band_start[band_of(&particles[i], bands) + 1]++;
  for (int b = 0; b < bands; b++)
    sh->band_start[b + 1] += sh->band_start[b];
  for (int i = 0; i < n; i++)
    sh->order[sh->band_start[band_of(&particles[i], bands)]++] = i;
  for (int i = 0; i < n; i++) {
    prep p;
    prepare(sh, &particles[sh->order[i]], &p);
    shade(sh, &p, img, width, height, stride);
  }
  return 0;
}

int npt__synth_shader_init(npt__synth_shader *sh, const npt_synth_optics *o) {
  memset(sh, 0, sizeof *sh);
  double w = fabs(o->fresnel_width_px);
  sh->mu_metal = (float)(1.0 / o->metal_mfp_px);
  sh->mu_oxide = (float)(1.0 / o->oxide_mfp_px);
  sh->fringe_inv_w = 1.0f;
  sh->margin = 1.0f; /* the anti-aliased edge */
  if (o->fresnel_amp > 0.0 && w >= 0.05) {
    sh->fringe_amp = (float)(o->fresnel_width_px > 0.0 ? o->fresnel_amp : -o->fresnel_amp);
    sh->fringe_inv_w = (float)(1.0 / w);
    sh->margin += (float)(3.0 * w);
  }
  int row = npt__row_round(o->width);
  sh->cap = row > CHUNK ? row : CHUNK;
  /* Room for a run of cap pixels rounded up to whole vectors, plus a span's excess. */
  size_t len = (size_t)sh->cap + 2 * NPT__ROW_ALIGN,
         rows = npt__row_round(o->height) + NPT__ROW_ALIGN;
  int ok = 1;
  npt__synth_run *runs[2] = {&sh->body, &sh->fringe};
  for (int k = 0; k < 2; k++) {
    ok = ok && (runs[k]->x = malloc(sizeof(float) * len)) != NULL;
    ok = ok && (runs[k]->y = malloc(sizeof(float) * len)) != NULL;
    ok = ok && (runs[k]->t = malloc(sizeof(float) * len)) != NULL;
    ok = ok && (runs[k]->spans = malloc(sizeof(npt__synth_span) * sh->cap)) != NULL;
  }
  for (int k = 0; k < 8; k++)
    ok = ok && (sh->geo[k] = malloc(sizeof(float) * len)) != NULL;
  ok = ok && (sh->xl = malloc(sizeof(float) * rows)) != NULL;
  ok = ok && (sh->xr = malloc(sizeof(float) * rows)) != NULL;
  ok = ok && (sh->bl = malloc(sizeof(float) * rows)) != NULL;
  ok = ok && (sh->br = malloc(sizeof(float) * rows)) != NULL;
  sh->bands = (o->height >> BAND_SHIFT) + 1;
  ok = ok && (sh->band_start = malloc(sizeof(int) * (sh->bands + 1))) != NULL;
  if (!ok) {
    npt__synth_shader_free(sh);
    return npt_error_set(NPT_ENOMEM, "synth renderer: out of memory for particle scratch");
  }
  return 0;
}

void npt__synth_shader_free(npt__synth_shader *sh) {
  npt__synth_run *runs[2] = {&sh->body, &sh->fringe};
  for (int k = 0; k < 2; k++) {
    free(runs[k]->x);
    free(runs[k]->y);
    free(runs[k]->t);
    free(runs[k]->spans);
  }
  for (int k = 0; k < 8; k++)
    free(sh->geo[k]);
  free(sh->xl);
  free(sh->xr);
  free(sh->bl);
  free(sh->br);
  free(sh->band_start);
  free(sh->order);
  memset(sh, 0, sizeof *sh);
}
