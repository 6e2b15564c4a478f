/* The simulated specimen behind a synthetic in-situ TEM video: particles on a support that
 * drifts under the field of view, with Brownian motion, hard-core repulsion, slow rotation,
 * Ostwald ripening, sintering (merges), oxidation into hollow Kirkendall shells and, on
 * reduction, regeneration (splits).
 *
 * Units: px and s (the caller converts from nm with the pixel size).  Positions are image
 * coordinates: the centre of the top-left pixel is (0, 0).  The field of view is a window onto a
 * larger specimen area: particles are simulated in a margin around it (one largest diameter plus
 * a tile), created tile by tile as drift uncovers specimen and forgotten far outside, so the
 * work per step is bounded by the field of view whatever the video's length.
 *
 * Ids: every particle the caller is told about gets a public id (1, 2, ...) in the order it is
 * first seen (in a frame, or in an event that is reported); particles that are never seen never
 * use up an id.  A merge or split gives its children new ids; the parents' tracks end.
 *
 * Deterministic: the same parameters and seed give the same scene, step by step.  Not
 * thread-safe on one scene. */
#ifndef NPT_SYNTH_SCENE_H
#define NPT_SYNTH_SCENE_H

#include <stdint.h>

#include "synth/render.h"
#include "synth/shape.h"

typedef enum { NPT_GAS_REDUCING, NPT_GAS_OXIDISING, NPT_GAS_CYCLE } npt_gas_mode;

/* Everything the scene needs, in px and s. */
typedef struct npt_scene_params {
  int width, height; /* field of view, px */
  double dt;         /* time between frames, s */

  /* Population at the start (and in specimen area uncovered later). */
  double diameter_px;    /* median diameter */
  double size_spread;    /* std of log(diameter) */
  double coverage;       /* projected area fraction */
  double min_gap_px;     /* gap between outlines at placement; motion keeps half of it */
  double aspect_max;     /* per particle uniform in [1, aspect_max] */
  double irregularity;   /* per particle harmonic amplitudes uniform in [0, irregularity] */
  double rotation_rad_s; /* std of per-particle rotation rates */

  /* Motion. */
  double drift_px_s;      /* mean specimen drift speed */
  double drift_wander_s;  /* correlation time of its direction and speed */
  double diffusion_px2_s; /* Brownian diffusion at ref_diameter_px, scales 1/d */
  double ref_diameter_px; /* reference diameter of diffusion and redox rates */

  /* Ostwald ripening and vanishing. */
  double ripening_px2_s; /* K of dr/dt = K (1/r* - 1/r) */
  double vanish_px;      /* diameter below which a particle vanishes */

  /* Sintering. */
  double sinter_rate_hz;     /* per particle */
  double sinter_reach;       /* largest gap, in units of the radius sum */
  double sinter_triple_prob; /* a third particle joins */
  double sinter_approach_s;  /* time to close the gap */
  double sinter_relax_s;     /* time constant of the merged particle's rounding */

  /* Gas, oxidation and regeneration. */
  npt_gas_mode gas;
  double gas_period_s;
  double oxidation_rate_hz; /* at ref_diameter_px */
  double reduction_rate_hz; /* at ref_diameter_px */
  double oxide_expansion;   /* oxide volume per metal volume consumed */
  double void_frac;         /* void radius / outer radius of a fully oxidised shell */
  double split_prob;
  int split_min, split_max; /* children per split */

  /* Lattice fringes (period in px; < 2 px: unresolved, the renderer skips them). */
  double lattice_metal_px, lattice_oxide_px;
  double zone_axis_frac;
  double lattice_amp;
} npt_scene_params;

/* One particle as a frame shows it. */
typedef struct npt_scene_obs {
  int64_t id;                  /* public id */
  int cls;                     /* 1 metal, 2 oxide (more than half the metal consumed) */
  double x0, y0, x1, y1;       /* tight box of the outline, not clipped (npt_synth_body_bbox) */
  double visibility;           /* fraction of the box area inside the frame, > 0 */
  npt_synth_particle particle; /* what the renderer draws */
} npt_scene_obs;

enum { NPT_SCENE_MAX_PARENTS = 3, NPT_SCENE_MAX_CHILDREN = 12 };

typedef enum { NPT_EVENT_MERGE, NPT_EVENT_SPLIT } npt_event_type;

/* A merge or split that the observed frames can see (a parent was seen before, or a child is
 * in view at `frame`).  `frame` is the 0-based index of the first observed frame in which the
 * children exist. */
typedef struct npt_scene_event {
  int64_t frame;
  npt_event_type type;
  int n_parents, n_children;
  int64_t parents[NPT_SCENE_MAX_PARENTS];   /* public ids, ascending */
  int64_t children[NPT_SCENE_MAX_CHILDREN]; /* public ids, ascending */
  double parent_volume, child_volume;       /* metal-equivalent volumes, px^3 (equal) */
} npt_scene_event;

typedef struct npt_scene npt_scene;

/* Creates the scene at time 0 and populates the specimen around the field of view.  `p` is
 * copied.  Returns 0, NPT_EINVAL (message names the bad parameter) or NPT_ENOMEM. */
int npt_scene_init(npt_scene **out, const npt_scene_params *p, uint64_t seed);
void npt_scene_free(npt_scene *s);

/* Advances the specimen by one frame interval (several internal sub-steps when dt is long). */
int npt_scene_step(npt_scene *s);

/* What frame number `frame` (0-based, non-decreasing between calls) shows: the particles whose
 * box overlaps the field of view, by ascending public id, and the events since the previous
 * call whose children exist from this frame on.  `blank`: the frame is blank (beam blanked), so
 * it shows no particle and gives none an id; events are still reported.  The arrays belong to
 * the scene and stay valid until the next call. */
int npt_scene_observe(npt_scene *s, int64_t frame, int blank, const npt_scene_obs **obs, int *n_obs,
                      const npt_scene_event **events, int *n_events);

/* Specimen drift so far: the support (and every particle with it) has moved by (dx, dy) px in
 * the image since time 0. */
void npt_scene_drift(const npt_scene *s, double *dx, double *dy);

/* For tests and benchmarks: every simulated particle, in view or not. */
typedef struct npt_scene_probe {
  int64_t internal_id;   /* unique per particle over the scene's life */
  int group;             /* > 0: member of a sintering group (may overlap its partners) */
  double volume;         /* metal-equivalent volume, px^3 */
  npt_synth_body outer;  /* outline, image coordinates */
  double x0, y0, x1, y1; /* the box the scene reports for it */
} npt_scene_probe;

int npt_scene_count(const npt_scene *s);
void npt_scene_probe_get(const npt_scene *s, int i, npt_scene_probe *out);
/* Counts of merges and splits so far (seen or not). */
void npt_scene_event_counts(const npt_scene *s, int64_t *merges, int64_t *splits);

#endif
