/* Stitching: joining the tracks of neighbouring chunks into tracks of the whole video
 * (pipeline/chunk_plan.h cuts videos into overlapping chunks; each chunk is tracked on its own by
 * the online tracker, tracker.h).
 *
 * Each chunk's tracks are summarised as tracklets (npt_tracklets_build): first and last frame,
 * first box, a Kalman state fitted to the last detections, and embeddings averaged over the
 * first and the last few detections (not over the whole tracklet, which would blur a change of
 * appearance such as metal -> oxide shell).  At the boundary of chunks A (earlier) and B:
 *
 *   1. Shared detections.  Both chunks detected the overlap frames [ov_begin, ov_end) with the
 *      same engine, so their rows there are the same detections in the same order.  Each pair
 *      (tracklet of A, tracklet of B) sums the detections it shares, each weighted
 *      2^-(d / NPT_STITCH_HALF_LIFE) for a detection d frames before the overlap's last frame:
 *      the archive takes its rows from A up to the end of the overlap (chunk_plan.h), so what
 *      joins the right tracks is who holds a particle there (when A followed a particle with two
 *      tracks in turn, the one that holds it at the end, not the one that held it longest).  A
 *      pair is a candidate when it shares at least NPT_STITCH_MIN_SHARED detections (or, when B's
 *      tracklet has fewer overlap detections that A's tracker put in a track, all of them: a track
 *      that B's tracker started in the overlap's last frame on the detection A's track held there
 *      cannot share more, and A's tracker owns that frame) and more than
 *      NPT_STITCH_MOST of the weight of B's tracklet's overlap detections that A's tracker put in
 *      a track too (B's tracklet, whose rows the archive takes after the hand-over, follows A's
 *      tracklet's particle at the end of the overlap; a rule on counts refused a track that
 *      switched particles late in the overlap, and one on the lighter of the two let a tracklet
 *      of A that ended early in the overlap take the B tracklet that had its particle then; a
 *      detection in no track of A says nothing about which of A's particles B follows, and
 *      counting it refused the pair when A's tracker left the particle's last few detections of
 *      the overlap out of its track).  Candidates are matched
 *      one-to-one by the optimal assignment (assign.h) of the most weight.  Not a Jaccard index:
 *      a track that the later chunk confirmed late, or lost and re-found, shares few of the
 *      earlier track's detections but all of its own.
 *      Then fragments: B's tracker starts fresh at ov_begin and sometimes follows one particle
 *      with two tracks that take its detections in turn, where A's tracker, with more history,
 *      has one.  A tracklet of B left unmatched that writes rows, is a candidate with a matched
 *      tracklet of A, and never has a row in the same frame as the B tracklets already joined to
 *      it (from the later of their first shared detections on) is joined to it too; of the B
 *      tracklets joined to one of A, at most one reaches B's next overlap (frames from B's last
 *      frame with rows + 1 - (ov_end - ov_begin)), so that a joined track never has two rows in
 *      one frame.
 *   Neither step joins a tracklet of A that ended as a parent of a merge or split in a frame A
 *   writes (A's lineage events) to a tracklet of B that writes rows: the archive's events say
 *   that identity ended there (a merge gives the particle a new one), so it must not go on after
 *   the hand-over.  B's tracker, with another history, may have kept the particle under the
 *   parent's track instead of merging (a lost track that took the detection in A had in B
 *   another size or position, and no merge followed); the one-chunk tracker ended it as A's did.
 *   2. Motion and appearance, for what is left: a tracklet of A whose last detection is within
 *      track.lost_frames + 1 frames before the first detection of a tracklet of B that begins
 *      after the overlap (A's chunk never saw it; a track B that began inside the overlap was
 *      seen by A's chunk, whose tracker already decided).  A tracklet of A matched in step 1 only
 *      to tracklets of B that end before the hand-over (they write no row) takes part too: B's
 *      tracker lost the particle at the end of the overlap, so nothing carries A's identity on;
 *      but not one whose last detection lies in the overlap in a tracklet of B that shares at
 *      least NPT_STITCH_MIN_SHARED detections with it: B's tracker followed the particle from
 *      there and decided what came after (to end that track, to start another), and the one-chunk
 *      tracker, which saw the same, mostly decided alike.
 *      A's Kalman state is extrapolated to B's first frame; pairs inside the chi-square gate
 *      (track.gate) cost, as the tracker's first stage does, embed_weight (1 - cos(A's tail
 *      embedding, B's head embedding)) + (1 - embed_weight) d2 / chi2, and are matched below
 *      track.match_cost.
 *
 * Links join tracklets in a union-find; global ids are then given by npt_stitch_number, in
 * order of each joined track's first written detection (frame, then y, then x), never by
 * union-find roots or ranks, so they are the same for any number of ranks.
 *
 * Nothing here is collective: the root runs it on the summaries of the chunks, in global chunk
 * order. */
#ifndef NPT_TRACK_STITCH_H
#define NPT_TRACK_STITCH_H

#include <stddef.h>
#include <stdint.h>

#include "track/kalman.h"
#include "track/tracker.h"

/* Shared-detection matches need at least this many shared detections. */
#define NPT_STITCH_MIN_SHARED 2
/* The weight of a shared detection halves every this many frames back from the overlap's end. */
#define NPT_STITCH_HALF_LIFE 4.0
/* A pair shares more than this fraction of the weight of the lighter one's overlap detections. */
#define NPT_STITCH_MOST 0.5

/* Detections used for the head and tail embeddings, and for fitting the tail's motion. */
enum { NPT_STITCH_EMBED_DETS = 5, NPT_STITCH_MOTION_DETS = 16 };

/* A chunk's rows (in frame order), as the stitcher reads them: id is the chunk-local track id
 * (>= 1) or -1; embed is n x embed_dim floats or NULL. */
typedef struct npt_stitch_rows {
  int64_t n;
  const int64_t *frame, *id;
  const int32_t *det; /* index of the detection in its frame's decoder output (rows of a frame
                         ascending): what identifies one detection seen by two chunks */
  const float *x, *y, *w, *h;
  int embed_dim;
  const float *embed;
} npt_stitch_rows;

/* One chunk-local track. */
typedef struct npt_tracklet {
  int64_t id; /* the chunk-local id */
  int64_t n;  /* detections */
  int64_t first_frame, last_frame;
  int64_t own_frame;              /* frame of its first row that the chunk writes, -1: none */
  float own_x, own_y;             /* that row's box corner */
  float head[4];                  /* first detection: x, y, w, h */
  npt_kalman_state tail;          /* fitted to its last NPT_STITCH_MOTION_DETS detections */
  float *head_embed, *tail_embed; /* embed_dim values each (unit or zero length), or NULL */
  int ended; /* a parent of a merge or split in a frame its chunk writes (the chunk's lineage
                events): its identity ended there; 0 from npt_tracklets_build, set by
                npt_tracklets_mark_ended */
} npt_tracklet;

typedef struct npt_tracklets {
  size_t n;
  npt_tracklet *t; /* by increasing id */
  int embed_dim;
  float *embed; /* storage behind head_embed/tail_embed */
} npt_tracklets;

/* Summarises the tracks of a chunk's rows; own_begin/own_end are the frames the chunk writes
 * (chunk_plan.h).  Returns 0, NPT_EINVAL (rows out of frame order) or NPT_ENOMEM. */
int npt_tracklets_build(const npt_track_settings *ts, const npt_stitch_rows *rows,
                        int64_t own_begin, int64_t own_end, npt_tracklets *out);

/* Makes room for n tracklets with embed_dim values per embedding (zeroed; used by readers that
 * fill them in).  Returns 0 or NPT_ENOMEM. */
int npt_tracklets_alloc(npt_tracklets *t, size_t n, int embed_dim);
void npt_tracklets_free(npt_tracklets *t);

/* Marks the tracklets with local ids ids[0..n) as ended: the parents of the chunk's lineage
 * events in the frames it writes.  Ids without a tracklet are ignored. */
void npt_tracklets_mark_ended(npt_tracklets *t, const int64_t *ids, size_t n);

/* The index of the tracklet with local id `id`, or -1. */
int64_t npt_tracklets_find(const npt_tracklets *t, int64_t id);

typedef enum { NPT_STITCH_SHARED = 1, NPT_STITCH_MOTION = 2 } npt_stitch_kind;

typedef struct npt_stitch_link {
  size_t a, b; /* tracklet indices in the earlier and the later chunk */
  npt_stitch_kind kind;
} npt_stitch_link;

/* Matches the tracklets of neighbouring chunks A (earlier) and B whose overlap is frames
 * [ov_begin, ov_end) (rows of either chunk outside it are ignored for step 1 but for the
 * fragments' check of frames and of B's next overlap).  *out receives *n_out links (malloc'd;
 * free it), each tracklet of B in at most one, each of A in one, or in several with fragments.
 * Returns 0, NPT_EINVAL (a row's id without a tracklet) or NPT_ENOMEM. */
int npt_stitch_boundary(const npt_track_settings *ts, const npt_tracklets *ta,
                        const npt_stitch_rows *ra, const npt_tracklets *tb,
                        const npt_stitch_rows *rb, int64_t ov_begin, int64_t ov_end,
                        npt_stitch_link **out, size_t *n_out);

/* Union-find over the tracklets of a video (all chunks', numbered by the caller). */
typedef struct npt_stitch_uf {
  size_t n;
  int64_t *parent;
} npt_stitch_uf;

int npt_stitch_uf_init(npt_stitch_uf *u, size_t n);
void npt_stitch_uf_free(npt_stitch_uf *u);
int64_t npt_stitch_uf_find(npt_stitch_uf *u, int64_t i);
void npt_stitch_uf_union(npt_stitch_uf *u, int64_t i, int64_t j);

/* Where a tracklet's first written row is: frame (-1: it writes none), then y, then x. */
typedef struct npt_stitch_key {
  int64_t frame;
  float y, x;
} npt_stitch_key;

/* Global ids: the joined tracks (union-find sets) that write at least one row are numbered 1,
 * 2, ... in order of their earliest key (frame, y, x, then lowest node); id[i] receives node i's
 * id, or -1 when its set writes no row.  Returns the number of ids, or NPT_ENOMEM. */
int64_t npt_stitch_number(npt_stitch_uf *u, const npt_stitch_key *keys, int64_t *id);

#endif
