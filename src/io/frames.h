/* Frame sources: one interface over the formats videos come in.  Today: HDF5 frame stacks
 * (`[T, H, W]` uint8/uint16 datasets, EMD-style, as `nptrack synth` writes them).  TIFF stacks and
 * video containers follow behind the same interface.
 *
 * Not collective: each rank opens its own handle and reads the frames of its chunks. */
#ifndef NPT_FRAMES_H
#define NPT_FRAMES_H

#include <stdint.h>

typedef struct npt_frames npt_frames;

typedef struct npt_frames_info {
  int64_t n_frames;
  int height, width;   /* px */
  int bit_depth;       /* 8 or 16 (unsigned integer grey levels) */
  double pixel_size_nm; /* NAN when the file does not say */
  double frame_rate_hz; /* NAN when the file does not say */
} npt_frames_info;

/* Opens `path`, which may name a dataset after a colon ("run.h5:/exp/frames"; default
 * "/frames").  Returns 0, or NPT_EIO (missing/unreadable file) or NPT_EFORMAT (not HDF5, no such
 * dataset, wrong rank or type), with a message naming the file and the problem. */
int npt_frames_open(npt_frames **out, const char *path);

const npt_frames_info *npt_frames_get_info(const npt_frames *fr);

/* Reads `count` frames starting at frame `first` (0-based) into `buf` (count*H*W elements of
 * 1 or 2 bytes).  Errors name the file and the first frame that could not be read. */
int npt_frames_read(npt_frames *fr, int64_t first, int count, void *buf);

/* Reads a string attribute of the file root (e.g. "config"); *out is malloc'd, or NULL when the
 * attribute does not exist.  Returns 0 or an error. */
int npt_frames_root_attr(npt_frames *fr, const char *name, char **out);

void npt_frames_close(npt_frames *fr);

#endif
