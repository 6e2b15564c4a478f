/* `nptrack synth`: drawing a video's parameters from the config's ranges, and the frame loop. */
#include "synth/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/rng.h"
#include "synth/synth_io.h"

extern const npt_setting_def npt_synth_settings[];

/* FNV-1a: a stream id per setting name. */
static uint64_t name_stream(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

static void record(npt_synth_video *v, const char *name, double value, int integer) {
  if (v->n_drawn < NPT_SYNTH_MAX_DRAWN) {
    v->drawn[v->n_drawn].name = name;
    v->drawn[v->n_drawn].value = value;
    v->drawn[v->n_drawn++].integer = integer;
  }
}

/* The drawn value of a range setting. */
static double drawn(const npt_synth_video *v, const char *name) {
  for (int i = 0; i < v->n_drawn; i++)
    if (!strcmp(v->drawn[i].name, name))
      return v->drawn[i].value;
  return NAN; /* not reached: every range setting is drawn */
}

/* A coin or angle of the video, from its own stream. */
static double video_uniform(uint64_t seed, const char *what) {
  npt_rng r;
  npt_rng_seed(&r, seed, name_stream(what));
  return npt_rng_uniform(&r);
}

int npt_synth_draw(const npt_config *cfg, npt_synth_video *v) {
  memset(v, 0, sizeof *v);
  v->seed = (uint64_t)npt_config_int(cfg, "synth.seed");
  int bits = (int)npt_config_int(cfg, "synth.bit_depth");
  if (bits != 8 && bits != 16)
    return npt_error_set(NPT_ECONFIG, "synth.bit_depth must be 8 or 16 (got %d)", bits);

  for (const npt_setting_def *d = npt_synth_settings; d->name; d++) {
    if (d->type != NPT_SET_FRANGE && d->type != NPT_SET_IRANGE)
      continue;
    if (!strcmp(d->name, "synth.split_children"))
      continue; /* drawn per split, by the scene */
    double lo, hi, x;
    npt_config_range(cfg, d->name, &lo, &hi);
    npt_rng r;
    npt_rng_seed(&r, v->seed, name_stream(d->name));
    if (lo == hi)
      x = lo;
    else if (d->type == NPT_SET_IRANGE)
      x = (double)npt_rng_int(&r, (int64_t)lo, (int64_t)hi);
    else if (d->flags & NPT_SET_LOG)
      x = npt_rng_logrange(&r, lo, hi);
    else
      x = npt_rng_range(&r, lo, hi);
    record(v, d->name, x, d->type == NPT_SET_IRANGE);
  }

  v->frames = npt_config_int(cfg, "synth.frames");
  v->gzip_level = (int)npt_config_int(cfg, "synth.gzip_level");
  double px = v->pixel_size_nm = drawn(v, "synth.pixel_size_nm");
  v->frame_rate_hz = drawn(v, "synth.frame_rate_hz");
  v->blank_prob = drawn(v, "synth.blank_prob");
  v->drop_prob = drawn(v, "synth.drop_prob");

  npt_scene_params *s = &v->scene;
  s->width = (int)npt_config_int(cfg, "synth.width");
  s->height = (int)npt_config_int(cfg, "synth.height");
  s->dt = 1.0 / v->frame_rate_hz;
  s->diameter_px = drawn(v, "synth.diameter_nm") / px;
  s->size_spread = drawn(v, "synth.size_spread");
  s->coverage = drawn(v, "synth.coverage");
  s->min_gap_px = drawn(v, "synth.min_gap_nm") / px;
  s->aspect_max = drawn(v, "synth.aspect_max");
  s->irregularity = drawn(v, "synth.irregularity");
  s->rotation_rad_s = drawn(v, "synth.rotation_deg_s") * M_PI / 180.0;
  s->drift_px_s = drawn(v, "synth.drift_nm_s") / px;
  s->drift_wander_s = drawn(v, "synth.drift_wander_s");
  s->diffusion_px2_s = drawn(v, "synth.diffusion_nm2_s") / (px * px);
  s->ref_diameter_px = npt_config_float(cfg, "synth.ref_diameter_nm") / px;
  s->ripening_px2_s = drawn(v, "synth.ripening_nm2_s") / (px * px);
  s->vanish_px = npt_config_float(cfg, "synth.vanish_px");
  s->sinter_rate_hz = drawn(v, "synth.sinter_rate_hz");
  s->sinter_reach = drawn(v, "synth.sinter_reach");
  s->sinter_triple_prob = drawn(v, "synth.sinter_triple_prob");
  s->sinter_approach_s = drawn(v, "synth.sinter_approach_s");
  s->sinter_relax_s = drawn(v, "synth.sinter_relax_s");
  const char *gas = npt_config_str(cfg, "synth.gas");
  s->gas = !strcmp(gas, "oxidising") ? NPT_GAS_OXIDISING
           : !strcmp(gas, "cycle")   ? NPT_GAS_CYCLE
                                     : NPT_GAS_REDUCING;
  s->gas_period_s = drawn(v, "synth.gas_period_s");
  s->oxidation_rate_hz = drawn(v, "synth.oxidation_rate_hz");
  s->reduction_rate_hz = drawn(v, "synth.reduction_rate_hz");
  s->oxide_expansion = drawn(v, "synth.oxide_expansion");
  s->void_frac = drawn(v, "synth.void_frac");
  s->split_prob = drawn(v, "synth.split_prob");
  double lo, hi;
  npt_config_range(cfg, "synth.split_children", &lo, &hi);
  s->split_min = (int)lo;
  s->split_max = (int)hi;
  s->lattice_metal_px = npt_config_float(cfg, "synth.lattice_metal_nm") / px;
  s->lattice_oxide_px = npt_config_float(cfg, "synth.lattice_oxide_nm") / px;
  s->zone_axis_frac = drawn(v, "synth.zone_axis_frac");
  s->lattice_amp = drawn(v, "synth.lattice_amp");

  npt_synth_optics *o = &v->optics;
  o->width = s->width;
  o->height = s->height;
  o->bit_depth = bits;
  o->dose = drawn(v, "synth.dose_e_px");
  o->background_level = drawn(v, "synth.background");
  o->invert = video_uniform(v->seed, "invert") < npt_config_float(cfg, "synth.invert_prob");
  o->metal_mfp_px = drawn(v, "synth.metal_mfp_nm") / px;
  o->oxide_mfp_px = drawn(v, "synth.oxide_mfp_nm") / px;
  o->support_contrast = drawn(v, "synth.support_contrast");
  o->support_grain_px = drawn(v, "synth.support_grain_nm") / px;
  o->fresnel_amp = drawn(v, "synth.fresnel_amp");
  int underfocus =
      video_uniform(v->seed, "underfocus") < npt_config_float(cfg, "synth.underfocus_prob");
  o->fresnel_width_px = (underfocus ? 1.0 : -1.0) * drawn(v, "synth.fresnel_width_nm") / px;
  o->blur_sigma_px = drawn(v, "synth.blur_px");
  o->gradient_amp = drawn(v, "synth.gradient");
  o->gradient_angle = 2.0 * M_PI * video_uniform(v->seed, "gradient_angle");
  record(v, "invert", o->invert, 1);
  record(v, "underfocus", underfocus, 1);
  record(v, "gradient_angle_rad", o->gradient_angle, 0);

  npt_rng r;
  npt_rng_seed(&r, v->seed, name_stream("render"));
  v->render_seed = npt_rng_u64(&r);
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int npt_synth_run(const npt_config *cfg, const char *outdir, npt_synth_stats *stats) {
  npt_synth_stats st = {0};
  double t_start = now();
  npt_synth_video v;
  NPT_TRY(npt_synth_draw(cfg, &v));

  int rc = 0;
  npt_scene *scene = NULL;
  npt_synth_renderer *ren = NULL;
  npt_synth_writer *w = NULL;
  npt_synth_particle *parts = NULL;
  int cap_parts = 0;
  char *text = npt_config_text(cfg);
  size_t pixel_bytes = v.optics.bit_depth == 8 ? 1 : 2;
  void *frame = malloc(pixel_bytes * (size_t)v.optics.width * (size_t)v.optics.height);
  if (!text || !frame) {
    rc = npt_error_set(NPT_ENOMEM, "out of memory for a %dx%d frame", v.optics.width,
                       v.optics.height);
    goto done;
  }
  /* Everything that can be refused is checked before the output directory is touched. */
  if ((rc = npt_scene_init(&scene, &v.scene, v.seed)) < 0 ||
      (rc = npt_synth_renderer_init(&ren, &v.optics, v.render_seed)) < 0 ||
      (rc = npt_synth_writer_open(&w, outdir, &v)) < 0)
    goto done;

  npt_rng coin;
  npt_rng_seed(&coin, v.seed, name_stream("frames"));
  for (int64_t f = 0; f < v.frames; f++) {
    double t0 = now();
    if (f > 0) {
      /* A dropped frame: the specimen moves on for two intervals before the next frame. */
      int steps = npt_rng_uniform(&coin) < v.drop_prob ? 2 : 1;
      for (int k = 0; k < steps && rc == 0; k++)
        rc = npt_scene_step(scene);
    }
    int blank = npt_rng_uniform(&coin) < v.blank_prob;
    const npt_scene_obs *obs;
    const npt_scene_event *events;
    int n_obs = 0, n_events = 0;
    if (rc == 0)
      rc = npt_scene_observe(scene, f, blank, &obs, &n_obs, &events, &n_events);
    if (rc == 0 && n_obs > cap_parts) {
      int nc = n_obs * 2;
      npt_synth_particle *np = realloc(parts, sizeof *np * (size_t)nc);
      if (!np)
        rc = npt_error_set(NPT_ENOMEM, "out of memory for %d particles", n_obs);
      else
        parts = np, cap_parts = nc;
    }
    if (rc < 0)
      goto done;
    for (int k = 0; k < n_obs; k++)
      parts[k] = obs[k].particle;
    double dx, dy;
    npt_scene_drift(scene, &dx, &dy);
    double t1 = now();
    if ((rc = npt_synth_render(ren, parts, n_obs, dx, dy, blank, f, frame)) < 0)
      goto done;
    double t2 = now();
    if ((rc = npt_synth_writer_frame(w, f, frame)) < 0 ||
        (rc = npt_synth_writer_boxes(w, f, obs, n_obs)) < 0 ||
        (rc = npt_synth_writer_events(w, events, n_events)) < 0)
      goto done;
    double t3 = now();
    st.seconds_scene += t1 - t0;
    st.seconds_render += t2 - t1;
    st.seconds_write += t3 - t2;
    st.frames++;
    st.boxes += n_obs;
    st.events += n_events;
  }
  double t4 = now();
  rc = npt_synth_writer_finish(w, text);
  w = NULL;
  st.seconds_write += now() - t4;
  npt_scene_event_counts(scene, &st.merges, &st.splits);

done:
  if (rc < 0)
    npt_synth_writer_abort(w);
  npt_scene_free(scene);
  npt_synth_renderer_free(ren);
  free(parts);
  free(frame);
  free(text);
  st.seconds_total = now() - t_start;
  if (stats)
    *stats = st;
  return rc;
}
