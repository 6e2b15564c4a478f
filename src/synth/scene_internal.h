/* Internals of the synthetic scene shared by scene.c (life cycle, population, observation),
 * scene_dynamics.c (a step: motion, ripening, neighbour search, repulsion), scene_sinter.c,
 * scene_redox.c (oxidation, reduction, regeneration) and scene_geom.c (outline geometry).
 * Nothing here is part of the public interface (scene.h). */
#ifndef NPT_SYNTH_SCENE_INTERNAL_H
#define NPT_SYNTH_SCENE_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "synth/scene.h"

/* Support-function table: samples of the unit outline's support in NPT__SUP directions, evenly
 * spaced in pseudo-angle (so that a lookup needs no atan2). */
enum { NPT__SUP = 32 };

/* The outline of a particle up to scale: r_eq = sqrt(a b) = 1. */
typedef struct npt__unit_shape {
  double aspect;         /* a / b */
  double angle;          /* rad */
  double h3, p3, h4, p4; /* radial harmonics (shape.h) */
} npt__unit_shape;

/* What a particle looks like in the rendered frames: updated from the physical state only when
 * the outline would move by more than a small tolerance, so that the costly exact box and the
 * support table are recomputed rarely.  The box and the rendered outline always come from this
 * same state, so the ground truth is exact whatever the tolerance. */
typedef struct npt__display {
  npt__unit_shape shape;
  double ca, sa;             /* cos, sin of shape.angle */
  double ux0, uy0, ux1, uy1; /* box offsets of the unit outline (scale by rout) */
  double umax, umin;         /* largest / smallest radius of the unit outline */
  float sup[NPT__SUP + 1];   /* support of the unit outline, body frame, padded to be an upper
                                bound; entry NPT__SUP repeats entry 0 */
} npt__display;

typedef struct npt__particle {
  int64_t iid;        /* internal id: creation order */
  int64_t pub;        /* public id, 0 until first seen */
  int64_t seen_frame; /* last frame it was in view (-1: never) */
  double x, y;        /* specimen coordinates, px (image coordinates = these + drift) */
  double r0;          /* metal-equivalent radius: volume 4/3 pi r0^3, px */
  double aspect0, aspect_final, t_shape; /* aspect relaxes from aspect0 (at t_shape) ... */
  double relax_s;                        /* ... to aspect_final with this time constant */
  double neck0;                          /* extra 4th harmonic at t_shape, relaxing likewise */
  double angle, omega;                   /* rad, rad/s */
  double h3, p3, h4, p4;
  double ox;       /* oxidation progress: fraction of the metal consumed (0..1) */
  double ox_mult;  /* per-particle factor on redox rates */
  double core_dir; /* direction of the core's offset in the shell, relative to angle */
  int split_state; /* 0 undecided, 1 reduces back, 2 splits when ox falls to split_at */
  double split_at;
  double dv; /* scratch: volume change of this ripening step */
  int group; /* sintering group index + 1, or 0 */
  int zone;  /* on a zone axis: shows lattice fringes */
  double lat_off, lat_phase;
  /* derived each step */
  double rout; /* outer equivalent radius (metal, or oxide shell) */
  double core_frac, void_frac, core_off;
  double x_ref, y_ref, rb_ref; /* position and bounding radius when the pairs were found */
  npt__display d;
} npt__particle;

typedef struct npt__group {
  int n;
  int member[NPT_SCENE_MAX_PARENTS]; /* indices into the particle array (kept up to date) */
  double speed;                      /* px/s of closing */
  double t_start;
} npt__group;

typedef struct npt__pending {
  npt_scene_event ev;                         /* public ids filled in when reported */
  int64_t parent_iid[NPT_SCENE_MAX_PARENTS];  /* internal ids */
  int64_t parent_pub[NPT_SCENE_MAX_PARENTS];  /* public ids at the event (0: never seen) */
  int64_t parent_seen[NPT_SCENE_MAX_PARENTS]; /* their last frame in view (-1: never) */
  int64_t child_iid[NPT_SCENE_MAX_CHILDREN];
} npt__pending;

typedef struct npt__tile {
  int64_t tx, ty;
} npt__tile;

struct npt_scene {
  npt_scene_params p;
  double t, dt_sub;
  int n_sub;
  double gap; /* kept between moving particles (half the placement gap) */
  double drift_x, drift_y, drift_heading, drift_speed_factor;
  npt_rng rng_drift, rng_motion, rng_event, rng_pop;
  int64_t next_iid, next_pub;

  npt__particle *part;
  int n, cap;
  npt__group *groups;
  int n_groups, cap_groups;

  /* population: hexagonal lattice of candidate sites, filled tile by tile */
  double site_e1x, site_e1y, site_e2x, site_e2y, site_ox, site_oy, site_spacing;
  double site_fill0;   /* probability that a site holds a particle at the start */
  double density0;     /* particles per px^2 at the start */
  double tile;         /* tile side, px */
  double max_draw;     /* largest diameter drawn (the lognormal's tail, clamped), px */
  double max_diameter; /* largest initial extent (long axis with bumps), px */
  npt__tile *tiles;
  int n_tiles, cap_tiles;
  int64_t pop_key[4]; /* tile range last populated (skip when unchanged) */

  /* uniform grid for neighbour search, rebuilt each sub-step (scene_dynamics.c) */
  double cell, grid_cell, grid_x0, grid_y0;
  double r_small; /* bounding radius up to which a particle is listed in the grid */
  int gw, gh;
  int *cell_start, *cell_items, *cell_of, *big;
  int n_big, cap_cells, cap_items, cap_cell_of, cap_big;
  int *pairs; /* candidate pairs for the hard-core constraint (i, j) */
  int n_pairs, cap_pairs;
  int64_t version, pairs_version; /* particles added or removed; pairs found at version */

  /* events waiting for the next observation */
  npt__pending *pending;
  int n_pending, cap_pending;
  int64_t n_merges, n_splits;

  /* observation buffers */
  npt_scene_obs *obs;
  int cap_obs;
  int *obs_part; /* particle index of each observation */
  int cap_obs_part;
  struct npt__key {
    int64_t iid; /* first member: sorted as an int64_t */
    int index;
  } * fresh, *order; /* particles seen for the first time in this frame; obs by id */
  int cap_fresh, cap_order;
  npt_scene_obs *obs_tmp;
  int cap_obs_tmp;
  npt_scene_event *events;
  int cap_events;
  int64_t last_frame;
};

#define NPT__GROW(ptr, cap, need)                                                                  \
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

/* Volume in units of 4/3 pi (metal-equivalent). */
static inline double npt__volume3(const npt__particle *q) {
  return q->r0 * q->r0 * q->r0;
}

/* scene_geom.c */
/* Exact tight box offsets of a unit outline: the box npt_synth_body_bbox gives (to ~1e-11 of the
 * size), about 100 times faster. */
void npt__unit_bbox(const npt__unit_shape *u, double *x0, double *y0, double *x1, double *y1);
/* Fills d from u: box, extreme radii and the padded support table. */
void npt__display_set(npt__display *d, const npt__unit_shape *u);
/* Upper bound of the unit outline's extent along the image direction (nx, ny) (unit vector). */
double npt__support(const npt__display *d, double nx, double ny);
/* Geometry of a (partly) oxidised particle of metal-equivalent radius r0 at progress ox. */
void npt__redox_geometry(const npt_scene_params *p, double r0, double ox, double *rout,
                         double *core_frac, double *void_frac, double *core_off);
/* The body a particle is drawn with, in image coordinates. */
void npt__body(const npt_scene *s, const npt__particle *q, npt_synth_body *b);

/* scene_dynamics.c */
int npt__scene_substep(npt_scene *s);
/* Recomputes the derived state (shell geometry, displayed outline) after a change. */
void npt__refresh_particle(npt_scene *s, npt__particle *q);
/* Neighbour search: the grid must be rebuilt whenever particles were added or removed. */
int npt__grid_build(npt_scene *s);
double npt__bound_radius(const npt_scene *s, const npt__particle *q);
/* Calls fn(s, i, j, ctx) once for every particle j != i whose bounding circle comes within
 * `reach` px of particle i's. */
void npt__for_neighbours(npt_scene *s, int i, double reach,
                         void (*fn)(npt_scene *, int, int, void *), void *ctx);
/* Gap between the outlines of i and j along the line of their centres (a lower bound: the
 * support table is padded), with the unit vector from i to j and the distance of the centres. */
double npt__outline_gap(const npt_scene *s, int i, int j, double *nx, double *ny, double *dist);
/* A few sweeps of the hard-core constraint over the candidate pairs (found again when stale). */
int npt__relax_overlaps(npt_scene *s, int iterations);

/* scene_sinter.c */
int npt__sinter_start(npt_scene *s, double dt);
void npt__sinter_approach(npt_scene *s, double dt);
int npt__sinter_finish(npt_scene *s);
void npt__group_dissolve(npt_scene *s, int g);

/* scene_redox.c */
int npt__redox_step(npt_scene *s, double dt);

/* scene.c */
int npt__populate(npt_scene *s);
int npt__particle_new(npt_scene *s, npt__particle **out);
void npt__particle_remove(npt_scene *s, int i);
int npt__event_push(npt_scene *s, npt_event_type type, const int *parents, int n_parents,
                    const int *children, int n_children);
void npt__random_outline(npt_scene *s, npt_rng *r, npt__particle *q);

#endif
