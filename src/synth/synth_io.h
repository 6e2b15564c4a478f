/* Outputs of `nptrack synth` in one directory:
 *   video.h5    /frames uint8|uint16 [T,H,W], one frame per chunk, with pixel_size_nm and
 *               frame_rate_hz; on the root: config (effective config text), nptrack_version,
 *               pixel_size_nm, frame_rate_hz and every drawn per-video parameter;
 *   gt.txt      frame,id,x,y,w,h,conf,class,visibility (frames from 1);
 *   events.csv  frame,type,parents,children (ids space-separated);
 *   config.cfg  the effective config.
 * Every file is written under a temporary name in the directory and renamed when the whole
 * video is complete; npt_synth_writer_abort removes the temporaries. */
#ifndef NPT_SYNTH_IO_H
#define NPT_SYNTH_IO_H

#include <stdint.h>

#include "synth/scene.h"
#include "synth/synth.h"

typedef struct npt_synth_writer npt_synth_writer;

/* Creates `dir` (and its parents) if needed and opens the temporaries.  Returns 0, NPT_EIO
 * ("DIR: cannot create output directory: reason"), NPT_EHDF5 or NPT_ENOMEM. */
int npt_synth_writer_open(npt_synth_writer **out, const char *dir, const npt_synth_video *v);

/* Frame number `frame` (0-based, in order): its pixels (H x W of the video's bit depth), then
 * its boxes and the events whose children exist from this frame on. */
int npt_synth_writer_frame(npt_synth_writer *w, int64_t frame, const void *pixels);
int npt_synth_writer_boxes(npt_synth_writer *w, int64_t frame, const npt_scene_obs *obs, int n);
int npt_synth_writer_events(npt_synth_writer *w, const npt_scene_event *ev, int n);

/* Writes the attributes and config.cfg, closes and renames everything into place, frees `w`.
 * On error the temporaries are removed (and `w` freed) as by npt_synth_writer_abort. */
int npt_synth_writer_finish(npt_synth_writer *w, const char *config_text);

/* Removes the temporaries and frees `w` (NULL: nothing). */
void npt_synth_writer_abort(npt_synth_writer *w);

#endif
