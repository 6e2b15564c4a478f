/* The chunk plan and the `chunking` settings (chunk_plan.h). */
#include "pipeline/chunk_plan.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define NONE NULL, 0

const npt_setting_def npt_chunking_settings_table[] = {
    {"chunking.frames", NPT_SET_INT, 3, 1e9, "512", "frames", NONE,
     "Frames per chunk, overlap included.  Each video is cut into chunks of this many frames "
     "that overlap their neighbours by chunking.overlap frames; ranks (MPI processes) take "
     "chunks one at a time, each tracked on its own, and the root joins the tracks across chunk "
     "boundaries (stitching).  The plan depends on these two settings only, never on the number "
     "of ranks, so the archive is the same for any rank count.  A video of at most this many "
     "frames is one chunk.  Longer chunks mean fewer boundaries to stitch; shorter ones spread a "
     "video over more ranks and bound each rank's memory."},
    {"chunking.overlap", NPT_SET_INT, 1, 1e9, "48", "frames", NONE,
     "Frames shared by neighbouring chunks: both chunks detect and track them, and the root "
     "matches the two chunks' tracks on the detections they share there.  The earlier chunk "
     "writes the overlap's frames to the archive, all but the last track.confirm_frames - 1 "
     "(whose ids it may not know yet), which the later chunk writes: a chunk's tracker is most "
     "reliable late in its chunk, with the most history.  Must be at least track.confirm_frames + "
     "track.lost_frames and less than half "
     "of chunking.frames."},
    {"chunking.order", NPT_SET_ENUM, 0, 0, "\"in_order\"", "", "in_order|largest_first", 0,
     "The order ranks take chunks in: in_order (video by video, frame order) or largest_first "
     "(the longest chunks first, so the short last chunks of videos fill the end of the run). "
     "The archive is the same either way."},
    {NULL, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

int npt_chunking_settings_get(const npt_config *cfg, const npt_track_settings *ts,
                              npt_chunking_settings *out) {
  out->frames = npt_config_int(cfg, "chunking.frames");
  out->overlap = npt_config_int(cfg, "chunking.overlap");
  out->tail = ts->confirm_frames - 1;
  out->largest_first = !strcmp(npt_config_str(cfg, "chunking.order"), "largest_first");
  int64_t need = (int64_t)ts->confirm_frames + ts->lost_frames;
  if (out->overlap < need)
    return npt_error_set(NPT_ECONFIG,
                         "chunking.overlap = %lld must be at least track.confirm_frames + "
                         "track.lost_frames = %d + %d = %lld",
                         (long long)out->overlap, ts->confirm_frames, ts->lost_frames,
                         (long long)need);
  if (2 * out->overlap >= out->frames)
    return npt_error_set(NPT_ECONFIG,
                         "chunking.overlap = %lld must be less than half of chunking.frames = "
                         "%lld",
                         (long long)out->overlap, (long long)out->frames);
  return 0;
}

void npt_chunk_plan_free(npt_chunk_plan *p) {
  free(p->chunk);
  free(p->order);
  free(p->video_chunk);
  memset(p, 0, sizeof *p);
}

/* Chunks of a video of n frames: 1 when n <= L, else 1 + ceil((n - L) / (L - O)). */
static int64_t n_chunks_of(const npt_chunking_settings *s, int64_t n) {
  int64_t step = s->frames - s->overlap;
  return n <= s->frames ? 1 : 1 + (n - s->frames + step - 1) / step;
}

int npt_chunk_plan_build(const npt_chunking_settings *s, int n_videos, const int64_t *first,
                         const int64_t *end, npt_chunk_plan *out) {
  memset(out, 0, sizeof *out);
  if (s->frames < 3 || s->overlap < 1 || 2 * s->overlap >= s->frames || s->tail < 0 ||
      s->tail >= s->overlap || n_videos < 1)
    return npt_error_set(NPT_EINVAL, "bad chunk plan settings (frames %lld, overlap %lld)",
                         (long long)s->frames, (long long)s->overlap);
  int64_t total = 0;
  for (int v = 0; v < n_videos; v++) {
    if (end[v] <= first[v] || first[v] < 0)
      return npt_error_set(NPT_EINVAL, "video %d: empty frame range", v);
    total += n_chunks_of(s, end[v] - first[v]);
  }
  if (total > INT32_MAX)
    return npt_error_set(NPT_EINVAL, "%lld chunks: too many (raise chunking.frames)",
                         (long long)total);
  out->chunk = malloc(sizeof *out->chunk * (size_t)total);
  out->order = malloc(sizeof *out->order * (size_t)total);
  out->video_chunk = malloc(sizeof *out->video_chunk * (size_t)(n_videos + 1));
  if (!out->chunk || !out->order || !out->video_chunk) {
    npt_chunk_plan_free(out);
    return npt_error_set(NPT_ENOMEM, "out of memory for %lld chunks", (long long)total);
  }
  out->n_videos = n_videos;
  int c = 0;
  const int64_t step = s->frames - s->overlap, keep = s->overlap - s->tail;
  for (int v = 0; v < n_videos; v++) {
    out->video_chunk[v] = c;
    int64_t k_n = n_chunks_of(s, end[v] - first[v]);
    for (int64_t k = 0; k < k_n; k++, c++) {
      npt_chunk *ch = &out->chunk[c];
      ch->video = v;
      ch->index = (int)k;
      ch->begin = first[v] + k * step;
      ch->end = ch->begin + s->frames < end[v] ? ch->begin + s->frames : end[v];
      ch->own_begin = k == 0 ? first[v] : ch->begin + keep;
      ch->own_end = k == k_n - 1 ? end[v] : ch->begin + step + keep;
    }
  }
  out->video_chunk[n_videos] = c;
  out->n_chunks = c;
  /* Longest first: a stable insertion by length (chunks are nearly all of one length, so this
   * moves only the short ones). */
  for (int i = 0; i < c; i++) {
    int j = i;
    int64_t len = out->chunk[i].end - out->chunk[i].begin;
    while (s->largest_first && j > 0 &&
           out->chunk[out->order[j - 1]].end - out->chunk[out->order[j - 1]].begin < len) {
      out->order[j] = out->order[j - 1];
      j--;
    }
    out->order[j] = i;
  }
  return 0;
}
