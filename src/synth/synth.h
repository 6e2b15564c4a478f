/* `nptrack synth`: realistic synthetic in-situ TEM videos with exact ground truth.
 *
 * One video: draw its parameters from the config's ranges (npt_synth_draw), then per frame step
 * the scene (scene.h), render it (render.h) and write the frame, its ground-truth boxes and any
 * merge/split events (synth_io.h).  Everything is drawn from synth.seed, so a seed and a config
 * give the same files, bit for bit.  docs/synth.md describes the physics and the outputs. */
#ifndef NPT_SYNTH_H
#define NPT_SYNTH_H

#include <stdint.h>

#include "config/config.h"
#include "synth/render.h"
#include "synth/scene.h"

enum { NPT_SYNTH_MAX_DRAWN = 96 };

/* A video's parameters, drawn once from the config. */
typedef struct npt_synth_video {
  uint64_t seed;
  int64_t frames;
  int gzip_level;
  double pixel_size_nm, frame_rate_hz;
  double blank_prob, drop_prob;
  npt_scene_params scene;
  npt_synth_optics optics;
  uint64_t render_seed;
  /* Every value drawn from a range setting (and the per-video coin flips), by name, so the
   * output can say what was drawn. */
  int n_drawn;
  struct {
    const char *name;
    double value;
    int integer;
  } drawn[NPT_SYNTH_MAX_DRAWN];
} npt_synth_video;

/* Draws a video's parameters from `cfg` (section synth).  Each range setting draws from its own
 * random stream (seed, setting name), so adding a setting does not change the others' draws.
 * Returns 0 or NPT_ECONFIG (e.g. synth.bit_depth not 8 or 16). */
int npt_synth_draw(const npt_config *cfg, npt_synth_video *v);

/* Where the time of a run went. */
typedef struct npt_synth_stats {
  int64_t frames, boxes, events;
  int64_t merges, splits; /* in the whole simulated area, seen or not */
  double seconds_scene, seconds_render, seconds_write, seconds_total;
} npt_synth_stats;

/* Makes one video from `cfg` into directory `outdir` (created if needed): video.h5, gt.txt,
 * events.csv and config.cfg, each written to a temporary name and renamed when complete; on
 * error the temporaries are removed and no partial output is left under the final names.
 * `stats` may be NULL.  Returns 0, NPT_ECONFIG, NPT_EIO (the directory or a file cannot be
 * written; the message names it), NPT_EHDF5 or NPT_ENOMEM. */
int npt_synth_run(const npt_config *cfg, const char *outdir, npt_synth_stats *stats);

#endif
