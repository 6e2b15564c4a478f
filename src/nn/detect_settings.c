/* Settings of `nptrack detect` (section `detect`, see detect_settings.h).  The decoding settings
 * default to "the model's own": a model file carries the threshold, top-K, peak window and
 * suppression ratio it was validated with, and a config only overrides them on purpose. */
#include "nn/detect_settings.h"

#include <string.h>
#include <unistd.h>

#include "common/error.h"

#define NONE NULL, 0

const npt_setting_def npt_detect_settings[] = {
    {"detect.model", NPT_SET_STRING, 0, 0, "\"\"", "", NONE,
     "Model file (HDF5: network graph, weights, input normalisation, decoding defaults; see "
     "docs/model-format.md).  A relative path is taken from the working directory.  Empty: "
     "the shipped model, i.e. the file named by the environment variable NPTRACK_MODEL, or "
     "else PREFIX/share/nptrack/models/nptrack.h5 beside an installed nptrack (the source "
     "tree's models/nptrack.h5 for the build tree's); `nptrack --version` says which."},
    {"detect.backend", NPT_SET_ENUM, 0, 0, "\"auto\"", "", "cpu|cudnn|auto", 0,
     "What runs the network: cpu (fp32, the numerical reference), cudnn (an NVIDIA GPU: fp16 "
     "tensor cores, decoding on the GPU; in builds with CUDA), or auto (cudnn when this build "
     "has it and a GPU works, on every rank of the run, else cpu; the log and the archive say "
     "which ran and why).  cudnn's detections equal cpu's up to fp16 rounding "
     "(docs/performance.md); set cpu where results must match a CPU-only run exactly."},
    {"detect.device", NPT_SET_INT, 0, 1023, "0", "", NONE,
     "GPU index for the cudnn backend (as CUDA numbers the visible GPUs)."},
    {"detect.threads", NPT_SET_INT, 0, 4096, "0", "threads", NONE,
     "Worker threads of the cpu backend; 0 uses one per online core.  Results do not depend "
     "on it."},
    {"detect.batch", NPT_SET_INT, 1, 4096, "8", "frames", NONE,
     "Frames read and run through the network together.  Memory grows with batch x frame "
     "size (the network's activations), not with the length of the video."},
    {"detect.dataset", NPT_SET_STRING, 0, 0, "\"/frames\"", "", NONE,
     "HDF5 dataset that holds the frames, unless the video path names one after a colon "
     "(video.h5:/exp/frames)."},
    {"detect.axis_order", NPT_SET_ENUM, 0, 0, "\"THW\"", "", "THW|HWT", 0,
     "How the dataset stores its axes: THW is [frames, height, width] (nptrack's own files, "
     "EMD); HWT is [height, width, frames], as some EMD files store them."},
    {"detect.first_frame", NPT_SET_INT, 1, 1e15, "1", "frame", NONE,
     "First frame to detect in, counted from 1."},
    {"detect.last_frame", NPT_SET_INT, 0, 1e15, "0", "frame", NONE,
     "Last frame to detect in, counted from 1 and included; 0 goes to the end of the video."},
    {"detect.replay_frames", NPT_SET_INT, 0, 1e15, "0", "frames", NONE,
     "Benchmark input, not for results: > 0 presents each video as this many frames by "
     "replaying its stored frames cyclically (frame i is stored frame i mod the stored length, "
     "read from the file again each time), so that a short stored video stands for a long one "
     "(docs/performance.md, multi-GPU scaling).  At least the stored length; nptrack run only, "
     "and its archive says so (/videos/NAME attribute replay).  0: the video as stored."},
    {"detect.score_threshold", NPT_SET_FLOAT, -1, 1, "-1", "", NONE,
     "Smallest detection score kept: a heatmap peak (0 to 1) counts when its value is at "
     "least this.  A value < 0 uses the model's default."},
    {"detect.top_k", NPT_SET_INT, -1, 1e6, "-1", "detections", NONE,
     "Most detections kept per frame, the best by score; frames with more peaks above the "
     "threshold are counted and reported.  A value < 0 uses the model's default; 0 is "
     "refused."},
    {"detect.peak_kernel", NPT_SET_INT, -1, 31, "-1", "cells", NONE,
     "Window of the peak test, in output cells (odd: 1, 3, 5, ...): a peak is the largest "
     "value of its peak_kernel x peak_kernel window.  A value < 0 uses the model's default "
     "(3); docs/decode.md measures what the window does to touching particles."},
    {"detect.suppress_ratio", NPT_SET_FLOAT, -1, 2, "-1", "", NONE,
     "Centre-distance suppression, after the peak test and before top_k: a peak is dropped "
     "when its box centre lies closer than suppress_ratio x the smallest side of the two "
     "boxes to that of a better-scoring detection, so that one large particle whose heatmap "
     "has several local maxima gives one detection.  0 turns it off; up to 1, particles "
     "that touch without overlapping are never suppressed (docs/decode.md).  A value < 0 "
     "uses the model's default (0 unless the model file says otherwise)."},
    {"detect.refine", NPT_SET_ENUM, 0, 0, "\"fit\"", "", "fit|none", 0,
     "Box refinement after decoding: fit (each metal-class box of 10 px or more fitted to the "
     "frame's own pixels around the detection: an elliptical particle with a free edge profile "
     "on a planar background, the neighbours' boxes left out; the fitted ellipse's bounding box "
     "replaces the network's when the fit is plausible, docs/decode.md) or none (the network's "
     "boxes).  The fit costs 0.1-0.5 ms of CPU time per detection on the host, whatever the "
     "backend: with a GPU backend it, not the GPU, limits frames/s (docs/performance.md, "
     "\"Box refinement\"); none for throughput."},
    {NULL, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

int npt_detect_options_get(const npt_config *cfg, npt_detect_options *s) {
  const char *model = npt_config_str(cfg, "detect.model");
  s->backend = npt_config_str(cfg, "detect.backend");
  s->dataset = npt_config_str(cfg, "detect.dataset");
  s->axis_order = npt_config_str(cfg, "detect.axis_order");
  s->threads = (int)npt_config_int(cfg, "detect.threads");
  s->device = (int)npt_config_int(cfg, "detect.device");
  s->batch = (int)npt_config_int(cfg, "detect.batch");
  s->first_frame = npt_config_int(cfg, "detect.first_frame");
  s->last_frame = npt_config_int(cfg, "detect.last_frame");
  s->replay_frames = npt_config_int(cfg, "detect.replay_frames");
  s->score_threshold = (float)npt_config_float(cfg, "detect.score_threshold");
  s->top_k = (int)npt_config_int(cfg, "detect.top_k");
  s->peak_kernel = (int)npt_config_int(cfg, "detect.peak_kernel");
  s->suppress_ratio = npt_config_float(cfg, "detect.suppress_ratio");
  s->refine = !strcmp(npt_config_str(cfg, "detect.refine"), "fit");
  if (s->dataset[0] != '/')
    return npt_error_set(NPT_ECONFIG,
                         "detect.dataset must be an absolute HDF5 path such as "
                         "/frames (got '%s')",
                         s->dataset);
  if (s->top_k == 0)
    return npt_error_set(NPT_ECONFIG,
                         "detect.top_k must be < 0 (the model's default) or in [1, 1000000] "
                         "(got 0)");
  if (s->peak_kernel >= 0 && s->peak_kernel % 2 == 0)
    return npt_error_set(NPT_ECONFIG,
                         "detect.peak_kernel must be odd (1, 3, 5, ...) or < 0 for the model's "
                         "default (got %d)",
                         s->peak_kernel);
  if (s->last_frame != 0 && s->last_frame < s->first_frame)
    return npt_error_set(NPT_ECONFIG,
                         "detect.last_frame (%lld) is before detect.first_frame (%lld)",
                         (long long)s->last_frame, (long long)s->first_frame);
  if (s->threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = n >= 1 ? (n > 4096 ? 4096 : (int)n) : 1;
  }
  return npt_model_locate(model, s->model, sizeof s->model, &s->model_source);
}

void npt_detect_decode_params(const npt_detect_options *s, const npt_decode_defaults *model,
                              npt_decode_params *out) {
  out->score_threshold = s->score_threshold >= 0 ? s->score_threshold : model->score_threshold;
  out->top_k = s->top_k > 0 ? s->top_k : model->top_k;
  out->peak_kernel = s->peak_kernel > 0 ? s->peak_kernel : model->peak_kernel;
  out->suppress_ratio = s->suppress_ratio >= 0 ? s->suppress_ratio : model->suppress_ratio;
  out->refine = s->refine;
}
