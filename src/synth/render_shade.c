/* Pixel loops of the particle layer: the transmission of a particle at each pixel of a run of
 * slots (render_internal.h), multiplied into the frame.  render_particles.c decides which pixels
 * a particle reaches and packs them into the runs; the model is described there.
 *
 * Outline geometry.  For a pixel at offset (dx, dy) from the centre, at distance r and polar
 * angle phi: the ellipse's radius is re = r / sqrt(Q), with Q = u^2/a^2 + v^2/b^2 a quadratic
 * form in (dx, dy); cos and sin of 3 and 4 phi (shifted by the phases, which carry the body's
 * angle) are the real and imaginary parts of (dx + i dy)^k / r^k; the outline radius is
 * R = re m, m = 1 + h3 cos(3 phi + p3) + h4 cos(4 phi + p4).  The signed distance to the outline
 * (positive inside) is, to first order, (R - r) / g with g = R |grad rho| = sqrt(1 + l^2),
 * l = d ln R / d phi = m' / m - P / Q (P: another quadratic form).  So there is no atan2 and no
 * per-pixel trigonometry: square roots and divisions.
 *
 * Speed.  The loops are written for GCC's vectoriser at -O2 (see render_internal.h): per kind of
 * particle, one branch-free loop over the 8 pixels of a slot (one AVX2 vector) inside a loop over
 * the slots.  Two things bound them on a current x86 core:
 *  - the two multiply-add pipes: hardware square roots and divisions (vectorised thanks to
 *    -fno-math-errno) run beside them, so the loops use them where that saves multiplies;
 *  - the latency of the long chain of arithmetic per pixel: an iteration whose chain is longer
 *    than the out-of-order window can hide waits for it, however many independent iterations
 *    follow.  So the work is split into passes of shorter chains (geometry; thickness; exp and
 *    the frame), which hand over through per-pixel arrays that stay in the L1 cache.  Splitting
 *    the body's shading in two halves its cost.
 * The passes that write the frame copy the particle's constants into a local first: the frame
 * stores could otherwise alias them, and the compiler would reload them (and not vectorise).
 * Pixels past a slot's `last` are multiplied by exactly 1. */
#include <math.h>

#include "synth/render_internal.h"

#define INLINE static inline __attribute__((always_inline))

/* Outline geometry at offset (dx, dy) from the centre (see the top of the file): the outline
 * radius R in the pixel's direction, the pixel's distance D, and l = d ln R / d phi; g =
 * sqrt(1 + l^2) and the signed distance to the outline scaled by f is about (f R - D) / g. */
INLINE void outline_at(const npt__synth_prep *p, float dx, float dy, float *R, float *D, float *L) {
  dx += 1e-4f; /* gives the centre itself a direction (and a thickness) */
  float xx = dx * dx, yy = dy * dy, xy = dx * dy;
  float d2 = xx + yy, r = sqrtf(d2), id4 = 1.0f / (d2 * d2);
  float x2 = xx - yy, y2 = xy + xy;
  float x3 = x2 * dx - y2 * dy, y3 = y2 * dx + x2 * dy;
  float x4 = x2 * x2 - y2 * y2, y4 = 2.0f * x2 * y2;
  /* m = 1 + (h3 Re(e^i p3 z^3) r + h4 Re(e^i p4 z^4)) / r^4, z = dx + i dy; m' likewise (the
   * constants -3 h3, -4 h4 of m' are in d3c ... d4s). */
  float m = 1.0f + ((p->h3c * x3 - p->h3s * y3) * r + (p->h4c * x4 - p->h4s * y4)) * id4;
  float dm = ((p->d3c * y3 + p->d3s * x3) * r + (p->d4c * y4 + p->d4s * x4)) * id4;
  float q = p->qa * xx + p->qb * xy + p->qc * yy;  /* r^2 / re^2 */
  float pq = p->pa * xx + p->pb * xy + p->pc * yy; /* -Q d ln re / d phi */
  float sq = npt__rsqrt(q);                        /* re / r */
  *L = dm / m + pq / q;
  *R = r * sq * m;
  *D = r;
}

/* 1/g from l. */
INLINE float inv_g(float l) {
  return npt__rsqrt_fast(1.0f + l * l);
}

INLINE float clamp01(float v) {
  return npt__min_pos(npt__max_pos(v, 0.0f), 1.0f);
}

/* Fresnel fringe factor - 1 at u = distance / fringe width (>= 0) from the outline. */
INLINE float fringe_of(float u, float amp) {
  u = npt__min_pos(u, 3.0f);
  float q = 1.0f - (1.0f / 3.0f) * u;
  return amp * (1.0f - u) * q * q;
}

/* f[k] *= t where `on` (an int, 0 or 1), exactly unchanged elsewhere (a branch would stop the
 * vectoriser). */
#define SLOT_APPLY(f, k, on, t)                                                                    \
  do {                                                                                             \
    float on_ = (float)(on);                                                                       \
    (f)[k] *= (t)*on_ + (1.0f - on_);                                                              \
  } while (0)

/* ---- Uncovered pixels: the fringe only ---------------------------------------------------- */

/* Distance outside the outline in fringe widths times g (U), and l (L), at the pixels of n
 * slots. */
NPT__KERNEL static void fringe_geo_pass(const npt__synth_prep *p, float fiw,
                                        const npt__synth_slot *restrict S, int n, float *restrict U,
                                        float *restrict L) {
  for (int s = 0; s < n; s++) {
    const float dx = S[s].dx, dy = S[s].dy;
    const int fold = S[s].fold, hole = S[s].hole;
    for (int k = 0; k < NPT__SLOT; k++) {
      float R, D;
      outline_at(p, dx + (float)(k + (hole & -(k >= fold))), dy, &R, &D, &L[s * NPT__SLOT + k]);
      U[s * NPT__SLOT + k] = (D - R) * fiw;
    }
  }
}

/* Pixels at least 1/2 px outside the outline: 1 + the Fresnel fringe, the same as body_x_at and
 * body_t_pass give them. */
NPT__KERNEL static void fringe_apply_pass(float fa, const npt__synth_slot *restrict S, int n,
                                          const float *restrict U, const float *restrict L) {
  for (int s = 0; s < n; s++) {
    float *f = S[s].px, t[NPT__SLOT];
    const int last = S[s].last, fold = S[s].fold, hole = S[s].hole;
    for (int k = 0; k < NPT__SLOT; k++) {
      int j = s * NPT__SLOT + k;
      t[k] = 1.0f + fringe_of(npt__max_pos(U[j] * inv_g(L[j]), 0.0f), fa);
    }
    for (int k = 0; k < NPT__SLOT; k++)
      SLOT_APPLY(f, k, (k < fold) & (k <= last), t[k]);
    /* The second end, in a loop of its own: the compiler cannot tell that the windows are apart. */
    if (fold < NPT__SLOT)
      for (int k = 0; k < NPT__SLOT; k++)
        SLOT_APPLY(f + hole, k, (k >= fold) & (k <= last), t[k]);
  }
}

/* ---- Pixels that may be covered: the full model ------------------------------------------- */

/* Outline geometry at the pixels of n slots, at offset (ox, oy) from the centre: R, D and l
 * (outline_at); body_x_pass derives the rest, to keep this loop's chain short. */
NPT__KERNEL static void body_geo_pass(const npt__synth_prep *p, const npt__synth_slot *restrict S,
                                      int n, float ox, float oy, float *restrict R,
                                      float *restrict D, float *restrict L) {
  for (int s = 0; s < n; s++) {
    const float dx = S[s].dx - ox, dy = S[s].dy - oy;
    for (int k = 0; k < NPT__SLOT; k++) {
      int j = s * NPT__SLOT + k;
      outline_at(p, dx + (float)k, dy, &R[j], &D[j], &L[j]);
    }
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
  float x = sqrtf(b), y = sqrtf(a);
  float mean = (x * x + x * y + y * y) / (x + y + 1e-20f);
  float slow = 1.0f - 0.25f * (a + b);
  return two_c * (0.94280904f * mean) * sqrtf(slow); /* 2 sqrt(2) / 3 */
}

/* First half of a covered pixel's transmission, from the outline geometry there (and the
 * shifted core's): the absorption exponent of its covered part (X), the covered fraction (COV)
 * and the uncovered part's share of the transmission (FR).  The covered fraction of the pixel is
 * clamp(1/2 + sd, 0, 1); the covered part gets its mean thickness, the rest the support and the
 * Fresnel fringe at its centroid.  `kind` is a constant at each call site. */
INLINE void body_x_at(const npt__synth_prep *p, float fa, float fiw, float R, float D, float L,
                      float Rk, float Dk, float Lk, const int kind, float *X, float *COV,
                      float *FR) {
  float IG = inv_g(L), g_ir = (1.0f + L * L) * IG / R; /* 1/g, g / R */
  float sd = (R - D) * IG;
  float cov = clamp01(0.5f + sd);
  float t_out = covered_thickness(sd, g_ir, p->two_c);
  float x;
  if (kind == NPT__SHADE_SOLID) {
    x = p->mu_shell * t_out;
  } else {
    float icov = 1.0f / npt__max_pos(cov, 1e-6f);
    float sdv = (p->vf * R - D) * IG;
    float t_void = npt__min_pos(clamp01(0.5f + sdv) * icov, 1.0f) *
                   covered_thickness(sdv, g_ir * p->ivf, p->two_c * p->vf);
    float sdk, gk_irk;
    if (kind == NPT__SHADE_LAYERED) {
      sdk = (p->cf * R - D) * IG;
      gk_irk = g_ir * p->icf;
    } else {
      float IGk = inv_g(Lk);
      sdk = (p->cf * Rk - Dk) * IGk;
      gk_irk = (1.0f + Lk * Lk) * IGk / Rk * p->icf;
    }
    float t_core = npt__min_pos(clamp01(0.5f + sdk) * icov, 1.0f) *
                   covered_thickness(sdk, gk_irk, p->two_c * p->cf);
    float t_ox = npt__max_pos(t_out - t_void - t_core, 0.0f);
    x = p->mu_core * t_core + p->mu_shell * t_ox;
  }
  /* Fresnel fringe at the centroid of the uncovered part, in units of its width. */
  float u = npt__max_pos(npt__maxf(-sd, 0.25f - 0.5f * sd) * fiw, 0.0f);
  *X = x;
  *COV = cov;
  *FR = (1.0f - cov) * (1.0f + fringe_of(u, fa));
}

/* The geometry arrays are passed one by one: GCC honours restrict only on parameters. */
NPT__KERNEL static void body_x_pass(const npt__synth_shader *sh, const npt__synth_prep *p, int n8,
                                    const float *restrict R, const float *restrict D,
                                    const float *restrict L, const float *restrict Rk,
                                    const float *restrict Dk, const float *restrict Lk,
                                    float *restrict X, float *restrict COV, float *restrict FR) {
  n8 = npt__row_round(n8); /* a no-op that tells the vectoriser n8 is a multiple of 8 */
  const float fa = sh->fringe_amp, fiw = sh->fringe_inv_w;
#define BODY_X(kind)                                                                               \
  for (int j = 0; j < n8; j++)                                                                     \
  body_x_at(p, fa, fiw, R[j], D[j], L[j], Rk[j], Dk[j], Lk[j], kind, &X[j], &COV[j], &FR[j])
  if (p->kind == NPT__SHADE_SOLID)
    BODY_X(NPT__SHADE_SOLID);
  else if (p->kind == NPT__SHADE_LAYERED)
    BODY_X(NPT__SHADE_LAYERED);
  else
    BODY_X(NPT__SHADE_SHIFTED);
#undef BODY_X
}

/* Second half: the covered part's transmission (and lattice fringes), the pixel's, into the
 * frame.  `lattice` is a constant at each call site. */
INLINE void body_t_slots(const npt__synth_prep *p, const npt__synth_slot *restrict S, int n,
                         const float *restrict X, const float *restrict COV,
                         const float *restrict FR, const int lattice) {
  for (int s = 0; s < n; s++) {
    float *f = S[s].px;
    const float dx = S[s].dx, dy = S[s].dy;
    const int last = S[s].last;
    for (int k = 0; k < NPT__SLOT; k++) {
      int j = s * NPT__SLOT + k;
      float contrast = 1.0f - npt__exp2_neg(-1.44269504f * X[j]);
      if (lattice)
        contrast = npt__min_pos(
            contrast *
                (1.0f + p->lamp * npt__cos_cycles(p->lkx * (dx + (float)k) + p->lky * dy + p->lph)),
            1.0f);
      SLOT_APPLY(f, k, k <= last, COV[j] * (1.0f - contrast) + FR[j]);
    }
  }
}

NPT__KERNEL static void body_t_pass(const npt__synth_prep *pp, const npt__synth_slot *restrict S,
                                    int n, const float *restrict X, const float *restrict COV,
                                    const float *restrict FR) {
  const npt__synth_prep p = *pp; /* not aliased by the frame */
  if (p.lattice)
    body_t_slots(&p, S, n, X, COV, FR, 1);
  else
    body_t_slots(&p, S, n, X, COV, FR, 0);
}

void npt__synth_slots_shade(const npt__synth_shader *sh, const npt__synth_prep *p,
                            const npt__synth_slot *S, int n, int body) {
  float *const *g = sh->geo;
  for (int done = 0, m; done < n; done += m, S += m) {
    m = n - done < NPT__GEO_SLOTS ? n - done : NPT__GEO_SLOTS;
    if (body) {
      body_geo_pass(p, S, m, 0.0f, 0.0f, g[0], g[1], g[2]);
      if (p->kind == NPT__SHADE_SHIFTED)
        body_geo_pass(p, S, m, p->kdx, p->kdy, g[3], g[4], g[5]);
      body_x_pass(sh, p, m * NPT__SLOT, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8]);
      body_t_pass(p, S, m, g[6], g[7], g[8]);
    } else {
      fringe_geo_pass(p, sh->fringe_inv_w, S, m, g[0], g[1]);
      fringe_apply_pass(sh->fringe_amp, S, m, g[0], g[1]);
    }
  }
}
