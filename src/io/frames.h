/* Frame sources: one interface over the formats videos come in.  Today: HDF5 frame stacks
 * (`[T, H, W]` uint8/uint16 datasets, EMD-style, as `nptrack synth` writes them; `[H, W, T]`
 * stacks, as some EMD files store them, on request).  TIFF stacks and video containers follow
 * behind the same interface.
 *
 * Not collective: each rank opens its own handle and reads the frames of its chunks. */
#ifndef NPT_FRAMES_H
#define NPT_FRAMES_H

#include <stdint.h>

typedef struct npt_frames npt_frames;

typedef struct npt_frames_info {
  int64_t n_frames;
  int height, width;     /* px */
  int bit_depth;         /* 8 or 16 (unsigned integer grey levels) */
  double pixel_size_nm;  /* NAN when the file does not say */
  double frame_rate_hz;  /* NAN when the file does not say */
  int64_t stored_frames; /* frames in the file: n_frames, unless replayed (npt_frames_opts) */
} npt_frames_info;

/* Opens `path`, which may name a dataset after a colon ("run.h5:/exp/frames"; default
 * "/frames").  Returns 0, or NPT_EIO (missing/unreadable file) or NPT_EFORMAT (not HDF5, no such
 * dataset, wrong rank or type), with a message naming the file and the problem. */
int npt_frames_open(npt_frames **out, const char *path);

/* How the axes of a frame stack are stored. */
typedef enum {
  NPT_FRAMES_THW = 0, /* [T, H, W]: one frame after another (nptrack's own files) */
  NPT_FRAMES_HWT = 1, /* [H, W, T]: the frame index varies fastest (some EMD files) */
} npt_frames_axes;

typedef struct npt_frames_opts {
  const char *dataset;  /* used when `path` names none after a colon; NULL: "/frames" */
  npt_frames_axes axes; /* the stored order; frames are always returned as [count][H][W] */
  /* A benchmark input, not a video: > 0 presents the stored frames replayed cyclically as a
   * video of this many frames (frame i is stored frame i mod stored_frames), each read from the
   * file again whenever it is asked for; 0 (the default): the video as stored. */
  int64_t replay_frames;
} npt_frames_opts;

/* As npt_frames_open, with options (NULL: the defaults).  A dataset named in `path` wins over
 * opts->dataset. */
int npt_frames_open_opts(npt_frames **out, const char *path, const npt_frames_opts *opts);

/* Parses an axis order name ("THW" or "HWT"). Returns 0, or NPT_EINVAL for another name. */
int npt_frames_axes_parse(const char *name, npt_frames_axes *out);

const npt_frames_info *npt_frames_get_info(const npt_frames *fr);

/* Reads `count` frames starting at frame `first` (0-based) into `buf` (count*H*W elements of
 * 1 or 2 bytes, frame after frame, whatever the stored axis order; an [H, W, T] stack is read
 * through a scratch buffer of the same size and transposed).  A replayed video is read from the
 * file in one HDF5 read per run of consecutive stored frames (a batch that wraps around the end
 * of the stored frames takes two).  Errors name the file and the first stored frame that could
 * not be read. */
int npt_frames_read(npt_frames *fr, int64_t first, int count, void *buf);

/* Reads a string attribute of the file root (e.g. "config"); *out is malloc'd, or NULL when the
 * attribute does not exist.  Returns 0 or an error. */
int npt_frames_root_attr(npt_frames *fr, const char *name, char **out);

void npt_frames_close(npt_frames *fr);

#endif
