/* Particles of a synthetic frame: thickness contrast of metal and oxide bodies, anti-aliased
 * outlines, lattice fringes and the Fresnel fringe, multiplied into the frame (render.c).  This
 * file decides which pixels each particle changes; render_shade.c computes them.
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
 * estimated to first order as (R - r) / g with g = R |grad rho|, in closed form (render_shade.c).
 * The covered fraction of the pixel is clamp(1/2 + sd, 0, 1), exact for a straight edge along a
 * pixel axis; the covered part gets its mean thickness (across the depth range the pixel spans)
 * and the rest the support and the Fresnel fringe at its centroid.  So a pixel is half dark where
 * the outline crosses its centre, and the dark region's extent matches npt_synth_body_bbox to a
 * fraction of a pixel, for 5 px particles too (tests/unit/test_render.c checks both, and the
 * particle layer against the plain supersampled renderer of render_reference.c).  Void and core
 * use the same estimate, relative to the covered part.
 *
 * Fresnel fringe.  Outside the outline, at distance s = u w (w = |fresnel_width_px|), the
 * support is multiplied by 1 + A (1 - u) (1 - u/3)^2 for u < 3, and 1 beyond: a fringe of sign A
 * and width w at the edge, then one of opposite sign, 0.13 |A| deep at u = 5/3, fading smoothly
 * to nothing at 3 w.  This polynomial is a cheap stand-in for the damped oscillation
 * exp(-u) cos(pi u / 2) (within 0.1 of it).  The sign of fresnel_width_px is the sign of the
 * defocus: positive (under-focus, usual for bright-field images of particles) gives a bright
 * first fringe, negative (over-focus) a dark one; |A| = fresnel_amp.
 *
 * Footprint.  With l = d ln R / d phi bounded by l_max (from the axes and the harmonics),
 * g <= g_max = sqrt(1 + l_max^2), and a pixel at distance s outside the ellipse that holds the
 * outline is at least s / g_max from the outline in the estimate above.  So a particle changes
 * no pixel farther than max(3 w, 1/2) g_max from that ellipse -- the formulas give exactly 1
 * there, so the image does not depend on how much farther the footprint reaches -- and covers
 * none farther than g_max / 2.  Per row, those two distances give the columns the particle
 * reaches and the columns its body may cover: from the ellipse's chords, or, for round
 * particles (axes within 30 %), from the circle that holds the ellipse, which is much cheaper.
 *
 * Slots.  The pixel loops take 8 pixels at a time (a slot, render_internal.h), with the full
 * model (body slots) or the fringe only (fringe slots, about a third of the cost).  Where a row's
 * body fits one slot, the body slot starts at its first column and the fringe on both sides
 * shares one slot (a 16-pixel window with a hole); elsewhere slots run from the first column the
 * particle reaches, and those that meet the body are body slots.  For a 6 px particle with a
 * fringe reaching 4 px this makes about 8 body and 16 fringe slots, against 15 and 13 for slots
 * simply from the first column.  Particles are taken in bands of rows, so the frame rows they
 * multiply are still in the cache.
 *
 * For the dense monolayers of small particles (thousands of 5-8 px particles with a fringe
 * reaching 2-7 px beyond them) the cost is per particle: a few slots per row, so nothing per row,
 * per slot or per particle may cost more than a few instructions (no library calls: without
 * SSE4.1 even floor() is one). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "synth/render_internal.h"

#define MAX_SEMI_AXIS 2048.0

/* Slots of a particle laid out at once (more go in further rounds). */
enum { RUN_SLOTS = 256 };

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

/* An angle (rad) in turns, reduced to (-1, 1) in double precision.  No floor(): without SSE4.1
 * it is a library call. */
static float turns(double angle) {
  double t = angle * (0.5 / M_PI);
  return (float)(fabs(t) < 1e15 ? t - (double)(int64_t)t : 0.0); /* beyond: whole turns */
}

/* c[k] = cos(2 pi t[k]), k < 8: the four angles of a particle, cos and sin, in one vector. */
NPT__KERNEL static void cos8(const float *restrict t, float *restrict c) {
  for (int k = 0; k < 8; k++)
    c[k] = npt__cos_cycles(t[k]);
}

/* Single precision throughout: the results are single-precision constants of the pixel loops,
 * and the footprint has slack for rounding.  Few divisions: they are most of the cost. */
void npt__synth_prepare(const npt__synth_shader *sh, const npt_synth_particle *q,
                        npt__synth_prep *p) {
  const npt_synth_body *b = &q->outer;
  /* cos and sin of the angle, of the harmonics' phases in the image frame (cos(k (phi_image -
   * angle) + p_k)) and of the lattice's direction. */
  float t[8], c[8];
  t[0] = turns(b->angle);
  t[2] = turns(b->p3 - 3.0 * b->angle);
  t[4] = turns(b->p4 - 4.0 * b->angle);
  t[6] = turns(q->lattice_angle);
  for (int k = 0; k < 8; k += 2)
    t[k + 1] = t[k] - 0.25f; /* sin x = cos(x - pi/2) */
  cos8(t, c);
  const float ca = c[0], sa = c[1], A = (float)b->a, B = (float)b->b;
  const float h3 = (float)b->h3, h4 = (float)b->h4, h = fabsf(h3) + fabsf(h4);
  const float a2 = A * A, b2 = B * B, iab = 1.0f / (a2 * b2), ia2 = b2 * iab, ib2 = a2 * iab;
  const float k = ia2 - ib2;
  p->cx = (float)b->x;
  p->cy = (float)b->y;
  /* u = ca dx + sa dy, v = ca dy - sa dx. */
  p->qa = ca * ca * ia2 + sa * sa * ib2;
  p->qb = 2.0f * ca * sa * k;
  p->qc = sa * sa * ia2 + ca * ca * ib2;
  p->pa = -ca * sa * k;
  p->pb = (ca * ca - sa * sa) * k;
  p->pc = ca * sa * k;
  p->h3c = h3 * c[2];
  p->h3s = h3 * c[3];
  p->h4c = h4 * c[4];
  p->h4s = h4 * c[5];
  p->d3c = -3.0f * p->h3c;
  p->d3s = -3.0f * p->h3s;
  p->d4c = -4.0f * p->h4c;
  p->d4s = -4.0f * p->h4s;
  p->two_c = 2.0f * sqrtf(A * B * (1.0f + 0.5f * (h3 * h3 + h4 * h4)));
  p->vf = (float)q->void_frac;
  p->ivf = q->void_frac > 0.0 ? 1.0f / p->vf : 0.0f;
  p->cf = (float)q->core_frac;
  p->icf = q->core_frac == 1.0 ? 1.0f : (q->core_frac > 0.0 ? 1.0f / p->cf : 0.0f);
  p->kdx = (float)q->core_dx;
  p->kdy = (float)q->core_dy;
  int shifted = q->core_frac > 0.0 && (q->core_dx != 0.0 || q->core_dy != 0.0);
  if (q->void_frac == 0.0 && !shifted && (q->core_frac == 0.0 || q->core_frac == 1.0)) {
    p->kind = NPT__SHADE_SOLID;
    p->mu_core = p->mu_shell = q->core_frac == 1.0 ? sh->mu_metal : sh->mu_oxide;
  } else {
    p->kind = shifted ? NPT__SHADE_SHIFTED : NPT__SHADE_LAYERED;
    p->mu_core = sh->mu_metal;
    p->mu_shell = sh->mu_oxide;
  }
  p->lattice = q->lattice_period_px >= 2.0 && q->lattice_amp > 0.0;
  p->lkx = p->lky = p->lph = p->lamp = 0.0f;
  if (p->lattice) {
    double ph = q->lattice_phase / (2.0 * M_PI);
    p->lkx = c[6] / (float)q->lattice_period_px;
    p->lky = c[7] / (float)q->lattice_period_px;
    p->lph = (float)(ph - floor(ph));
    p->lamp = (float)q->lattice_amp;
  }
  /* The bounding ellipse, semi-axes ea = m A and eb = m B: its chords (see the header) and, from
   * ea^2 sa^2 + eb^2 ca^2 = ea^2 eb^2 aq and ea^2 ca^2 + eb^2 sa^2 = ea^2 eb^2 gq, its half
   * height and the row of its rightmost point. */
  const float m = 1.0f + h, ea = m * A, eb = m * B, im2 = 1.0f / (m * m);
  const float ia = ia2 * im2, ib = ib2 * im2;
  p->aq = ca * ca * ia + sa * sa * ib;
  p->ey = ea * eb * sqrtf(p->aq);
  p->ea_max = ea > eb ? ea : eb;
  p->round = A < 1.3f * B && B < 1.3f * A;
  if (!p->round) { /* the chords are needed only without the circle */
    p->iaq = 1.0f / p->aq;
    p->bq = ca * sa * (ia - ib);
    p->gq = sa * sa * ia + ca * ca * ib;
    p->dy_right = ca * sa * (ea * ea - eb * eb) / (ea * eb * sqrtf(p->gq));
  }
  /* |d ln R / d phi| <= (a/b - b/a) / 2 (the ellipse's) + |m'| / m; the 1.002 covers the
   * estimate of 1/g in the pixel loops, the 0.05 px the float rounding of the spans. */
  float l_max =
      (0.5f * fabsf(a2 - b2) * (1.0f - h) + (3.0f * fabsf(h3) + 4.0f * fabsf(h4)) * A * B) /
      (A * B * (1.0f - h));
  float g_max = 1.002f * sqrtf(1.0f + l_max * l_max), w = sh->fringe_reach;
  p->body = 0.5f * g_max + 0.05f;
  p->reach = (w > 0.5f ? w : 0.5f) * g_max + 0.05f;
}

#define INLINE static inline __attribute__((always_inline))

/* Ends of the chord of the bounding ellipse grown by m on the row at offset dy: within distance m
 * of the ellipse, that is: the left end is m left of the ellipse's leftmost point over rows dy - m
 * .. dy + m, and the ellipse's left edge is convex in the row, so that point is on the row
 * nearest to the row of the leftmost point.  Likewise on the right. */
INLINE void chord_ends(const npt__synth_prep *p, float m, float dy, float *xl, float *xr) {
  const float ey = p->ey, yr0 = p->dy_right;
  float lo = npt__minf(npt__maxf(dy - m, -ey), ey), hi = npt__minf(npt__maxf(dy + m, -ey), ey);
  float yl = npt__minf(npt__maxf(-yr0, lo), hi), yr = npt__minf(npt__maxf(yr0, lo), hi);
  float dl = npt__max_pos(p->bq * p->bq * yl * yl - p->aq * (p->gq * yl * yl - 1.0f), 0.0f);
  float dr = npt__max_pos(p->bq * p->bq * yr * yr - p->aq * (p->gq * yr * yr - 1.0f), 0.0f);
  *xl = (-p->bq * yl - sqrtf(dl)) * p->iaq - m;
  *xr = (-p->bq * yr + sqrtf(dr)) * p->iaq + m;
}

/* Frame columns [*j0, *j1] of the x offsets [xl, xr] from cx, clipped to [0, w1]: *j0 > *j1 when
 * none.  (Clipped to [-1, w1 + 1] first, so that the conversions cannot overflow.) */
INLINE void columns(float cx, float xl, float xr, float w1, int *j0, int *j1) {
  float a = npt__min_pos(npt__max_pos(cx + xl, 0.0f), w1 + 1.0f);
  float b = -npt__min_pos(-npt__min_pos(cx + xr, w1), 1.0f);
  int ia = (int)a, ib = (int)b; /* truncation: floor for a >= 0 */
  *j0 = ia + (a > (float)ia);
  *j1 = ib - (b < (float)ib);
}

/* Per row i < n8 at offset dy0 + i from the centre: the columns [X0, X1] within distance m of
 * the bounding ellipse, and [B0, B1] within distance mb (empty past the rows that reaches). */
NPT__KERNEL static void span_pass(const npt__synth_prep *p, float m, float mb, float dy0, float w1,
                                  int *restrict X0, int *restrict X1, int *restrict B0,
                                  int *restrict B1, int n8) {
  n8 = npt__row_round(n8);
  const float reach = p->ey + mb, cx = p->cx;
  for (int i = 0; i < n8; i++) {
    float dy = dy0 + (float)i, xl, xr, bl, br;
    chord_ends(p, m, dy, &xl, &xr);
    chord_ends(p, mb, dy, &bl, &br);
    float out = npt__max_pos(fabsf(dy) - reach, 0.0f) * 1e30f; /* past the body's rows */
    columns(cx, xl, xr, w1, &X0[i], &X1[i]);
    columns(cx, bl + out, br - out, w1, &B0[i], &B1[i]);
  }
}

/* The same for a round particle, from the circle of radius ea_max about the centre, which holds
 * the bounding ellipse: much cheaper, and hardly wider for axes within 30 % of each other. */
NPT__KERNEL static void span_pass_round(const npt__synth_prep *p, float m, float mb, float dy0,
                                        float w1, int *restrict X0, int *restrict X1,
                                        int *restrict B0, int *restrict B1, int n8) {
  n8 = npt__row_round(n8);
  const float cx = p->cx, rm = p->ea_max + m, rb = p->ea_max + mb;
  for (int i = 0; i < n8; i++) {
    float dy = dy0 + (float)i, yy = dy * dy, hb = rb * rb - yy;
    float hm = sqrtf(npt__max_pos(rm * rm - yy, 0.0f));
    float out = npt__max_pos(-hb, 0.0f) * 1e30f; /* past the body's rows */
    hb = sqrtf(npt__max_pos(hb, 0.0f));
    columns(cx, -hm, hm, w1, &X0[i], &X1[i]);
    columns(cx, out - hb, hb - out, w1, &B0[i], &B1[i]);
  }
}

/* The slots of one particle being laid out: body slots from the front of sh->slot, fringe slots
 * from the back. */
typedef struct layout {
  npt__synth_slot *S;
  int cap, nb, nf, fringe;
  float cx, dy;
  float *row;
} layout;

static inline void body_slot(layout *L, int c, int last) {
  L->S[L->nb++] = (npt__synth_slot){L->row + c, (float)c - L->cx, L->dy, last, 8, 0};
}

/* Fringe slots for columns lo..hi (none without a fringe). */
static inline void fringe_slots(layout *L, int lo, int hi) {
  for (int c = lo; c <= hi && L->fringe; c += NPT__SLOT)
    L->S[L->cap - 1 - L->nf++] =
        (npt__synth_slot){L->row + c, (float)c - L->cx, L->dy, hi - c, 8, 0};
}

/* One row's slots, columns x0..x1, those of the body b0..b1 (inside, or b0 > b1: none).  Where
 * the body fits one slot, that slot starts at b0 and the fringe on either side, if it fits one
 * slot too, goes in one slot with a hole: one body slot instead of two (most rows of small
 * particles).  Elsewhere slots run from x0, and each that meets the body is a body slot. */
static inline void row_slots(layout *L, int x0, int x1, int b0, int b1, int width) {
  if (b0 > b1) {
    fringe_slots(L, x0, x1);
    return;
  }
  int nl = b0 - x0, nr = x1 - b0 - NPT__SLOT + 1;
  nr = nr > 0 ? nr : 0;
  if (b1 - b0 < NPT__SLOT && nl + nr <= NPT__SLOT && x0 <= width - 2 * NPT__SLOT) {
    body_slot(L, b0, x1 - b0);
    if (nl + nr > 0 && L->fringe)
      L->S[L->cap - 1 - L->nf++] =
          (npt__synth_slot){L->row + x0, (float)x0 - L->cx, L->dy, nl + nr - 1, nl, NPT__SLOT};
    return;
  }
  for (int c = x0; c <= x1; c += NPT__SLOT) {
    if ((c <= b1) & (c + NPT__SLOT - 1 >= b0))
      body_slot(L, c, x1 - c);
    else
      fringe_slots(L, c, c + NPT__SLOT - 1 < x1 ? c + NPT__SLOT - 1 : x1);
  }
}

static void shade(npt__synth_shader *sh, const npt__synth_prep *p, float *img, int width,
                  int height, int stride) {
  /* Rows ceil(cy - ey - reach) .. floor(cy + ey + reach), clipped (no ceil() or floor(): without
   * SSE4.1 they are library calls). */
  float lo = p->cy - p->ey - p->reach, hi = p->cy + p->ey + p->reach;
  if (!(lo <= height - 1.0f && hi >= 0.0f))
    return;
  lo = lo > 0.0f ? lo : 0.0f;
  hi = hi < height - 1.0f ? hi : height - 1.0f;
  int i0 = (int)lo + ((float)(int)lo < lo), rows = (int)hi - i0 + 1; /* lo, hi >= 0 */
  if (rows <= 0)
    return;
  float dy0 = (float)i0 - p->cy;
  (p->round ? span_pass_round : span_pass)(p, p->reach, p->body, dy0, (float)(width - 1), sh->x0,
                                           sh->x1, sh->b0, sh->b1, rows);
  layout L = {sh->slot, sh->cap, 0, 0, sh->fringe_amp != 0.0f, p->cx, 0.0f, NULL};
  for (int r = 0; r < rows; r++) {
    int x0 = sh->x0[r], x1 = sh->x1[r];
    if (x0 > x1)
      continue;
    if (L.nb + L.nf + ((x1 - x0) >> 3) + 2 > L.cap) { /* no room for the row's slots */
      npt__synth_slots_shade(sh, p, L.S, L.nb, 1);
      npt__synth_slots_shade(sh, p, L.S + L.cap - L.nf, L.nf, 0);
      L.nb = L.nf = 0;
    }
    L.row = img + (size_t)(i0 + r) * stride;
    L.dy = dy0 + (float)r;
    row_slots(&L, x0, x1, sh->b0[r], sh->b1[r], width);
  }
  npt__synth_slots_shade(sh, p, L.S, L.nb, 1);
  npt__synth_slots_shade(sh, p, L.S + L.cap - L.nf, L.nf, 0);
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
    int *o = realloc(sh->order, sizeof(int) * (size_t)n),
        *b = o ? realloc(sh->band, sizeof(int) * (size_t)n) : NULL;
    if (o)
      sh->order = o;
    if (b)
      sh->band = b;
    if (!o || !b)
      return npt_error_set(NPT_ENOMEM, "synth render: out of memory ordering %d particles", n);
    sh->order_cap = n;
  }
  int bands = sh->bands, *band = sh->band;
  memset(sh->band_start, 0, sizeof(int) * (bands + 1));
  for (int i = 0; i < n; i++)
    sh->band_start[(band[i] = band_of(&particles[i], bands)) + 1]++;
  for (int b = 0; b < bands; b++)
    sh->band_start[b + 1] += sh->band_start[b];
  for (int i = 0; i < n; i++)
    sh->order[sh->band_start[band[i]]++] = i;
  for (int i = 0; i < n; i++) {
    npt__synth_prep p;
    npt__synth_prepare(sh, &particles[sh->order[i]], &p);
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
  if (o->fresnel_amp > 0.0 && w >= 0.05) {
    sh->fringe_amp = (float)(o->fresnel_width_px > 0.0 ? o->fresnel_amp : -o->fresnel_amp);
    sh->fringe_inv_w = (float)(1.0 / w);
    sh->fringe_reach = (float)(3.0 * w);
  }
  sh->cap = RUN_SLOTS;
  size_t rows = npt__row_round(o->height) + NPT__ROW_ALIGN;
  int ok = 1;
  ok = ok && (sh->slot = malloc(sizeof(npt__synth_slot) * sh->cap)) != NULL;
  for (int k = 0; k < NPT__GEO_ARRAYS; k++)
    ok = ok && (sh->geo[k] = malloc(sizeof(float) * NPT__SLOT * NPT__GEO_SLOTS)) != NULL;
  ok = ok && (sh->x0 = malloc(sizeof(int) * rows)) != NULL;
  ok = ok && (sh->x1 = malloc(sizeof(int) * rows)) != NULL;
  ok = ok && (sh->b0 = malloc(sizeof(int) * rows)) != NULL;
  ok = ok && (sh->b1 = malloc(sizeof(int) * rows)) != NULL;
  sh->bands = (o->height >> BAND_SHIFT) + 1;
  ok = ok && (sh->band_start = malloc(sizeof(int) * (sh->bands + 1))) != NULL;
  if (!ok) {
    npt__synth_shader_free(sh);
    return npt_error_set(NPT_ENOMEM, "synth renderer: out of memory for particle scratch");
  }
  return 0;
}

void npt__synth_shader_free(npt__synth_shader *sh) {
  free(sh->slot);
  for (int k = 0; k < NPT__GEO_ARRAYS; k++)
    free(sh->geo[k]);
  free(sh->x0);
  free(sh->x1);
  free(sh->b0);
  free(sh->b1);
  free(sh->band);
  free(sh->band_start);
  free(sh->order);
  memset(sh, 0, sizeof *sh);
}
