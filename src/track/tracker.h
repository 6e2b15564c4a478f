/* The online tracker: detections of one frame at a time → track identities, in the
 * JDE/FairMOT/ByteTrack family.
 *
 * Each track carries a constant-velocity Kalman filter on its box (kalman.h) and a smoothed
 * appearance embedding.  A frame's detections are split by score into high (>= high_score),
 * low (>= low_score) and ignored, and associated in a cascade, each stage an exact gated linear
 * assignment (assign.h) whose candidate pairs come from a uniform spatial grid, never all pairs:
 *
 *   1. confirmed tracks (tracked or lost) x high detections, fused cost
 *        embed_weight * (1 - cos(track embedding, detection embedding))
 *          + (1 - embed_weight) * d2 / chi2
 *      where d2 is the squared Mahalanobis distance of the detection from the track's predicted
 *      measurement and chi2 the 0.95 gate (pairs outside the gate are never candidates);
 *      without embeddings (embed_dim 0) the cost is d2 / chi2.  Matched below match_cost, as a
 *      cascade (DeepSORT's): the tracks matched in the previous frame first, then the lost ones
 *      by increasing frames since their last match, each level an assignment of the detections
 *      the levels before it left.  One assignment over all of them let a lost track, whose
 *      covariance grows with every frame of prediction (so its d2 shrinks), take a tracked
 *      particle's detection off the track that follows it whenever the prediction of a track
 *      lost long ago drifted onto it, and the tracked particle changed identity.
 *   2. confirmed tracks that were tracked in the previous frame and are still unmatched x the
 *      high detections left, cost 1 - IoU with the predicted box, below iou_match.  This stage
 *      is what carries a particle through a change of appearance (metal -> oxide shell ->
 *      metal): its embedding and class change, its box moves on smoothly.
 *   3. ByteTrack's second pass: the tracked tracks still unmatched whose score (their
 *      detections' scores smoothed, score_momentum) is >= low_track_score x the low detections,
 *      1 - IoU below low_match.  Low detections never start tracks and never change embeddings.
 *   4. unconfirmed tracks x the high detections left, 1 - IoU below unconfirmed_match.
 *
 * Then merges (sintering): a confirmed track B, tracked in the previous frame and unmatched now,
 * whose predicted box is covered by >= merge_cover (intersection over its area) by a high
 * detection matched to another confirmed track A, which that detection covers as much while
 * being >= merge_growth times A's predicted area: A and B end and the detection starts a new
 * track, confirmed at birth (a merge makes a new particle; nptrack synth's ground truth gives
 * it a new id).  A B whose predicted box has IoU above duplicate_iou with the detection is the
 * same particle as A, a duplicate (below), not a merge.  merge_cover 0 turns this off.
 *
 * Then splits (regeneration), the mirror of merges: a confirmed track A, tracked in the previous
 * frame, next to which new fragments appear -- high detections left free by the cascade,
 * scoring >= new_track_score, of at most split_shrink times A's predicted area, centred within
 * split_reach times its half-width and half-height of its predicted centre -- ends when its own
 * match shrank to a fragment's size and at least one fragment appeared, or, unmatched, when at
 * least two did; its match and the fragments start new tracks, confirmed at birth.  A track
 * whose match kept its size never splits.  split_shrink 0 turns this off.
 * Each step's merges and splits are reported as lineage events (npt_tracker_events).
 *
 * Then duplicates (ByteTrack's): a confirmed track left unmatched whose predicted box overlaps a
 * detection that another track took (or that a merge or split made) with IoU above
 * duplicate_iou ends at once: it is the same particle under a second identity.
 *
 * Then: confirmed tracks unmatched become (or stay) lost and are removed once more than
 * lost_frames frames have passed since their last match; unconfirmed tracks unmatched are
 * removed; high detections left with score >= new_track_score start unconfirmed tracks, which
 * are confirmed at their confirm_frames-th consecutive match (1: at birth).  A matched high
 * detection's embedding is folded into the track's: e = normalise(m e + (1 - m) e_det), m =
 * embed_momentum.  Classes are not used for association.
 *
 * Identities: a track gets its id when it is confirmed; ids are 1, 2, 3, ... in order of
 * confirmation, among tracks confirmed in the same frame in order of birth, and tracks born in
 * the same frame are born in order of decreasing score, then increasing y, then x, then input
 * index.  A detection's output is the id of the confirmed track it was matched to (or that it
 * started, with confirm_frames 1), else -1: the detections of a track before its confirmation
 * are reported -1 by that frame's step, and handed their id by the step that confirms the track
 * (npt_tracker_backfill), so that a particle's track starts at its first detection.
 *
 * Determinism: the output depends only on the settings and the sequence of frames, not on
 * memory or timing.  Permuting a frame's detections permutes its output the same way, except
 * where two assignments have exactly equal total cost or two births have equal score and
 * centre; such ties are broken by the lower detection index (assign.h's rule).
 *
 * Nothing here is collective; a tracker is used by one thread at a time.  Once its buffers have
 * grown to the largest frame, a step allocates nothing. */
#ifndef NPT_TRACK_TRACKER_H
#define NPT_TRACK_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef enum { NPT_TRACK_GATE_4D = 0, NPT_TRACK_GATE_POSITION = 1 } npt_track_gate_kind;

/* The `track` section (track_settings.c documents each value and its default). */
typedef struct npt_track_settings {
  double high_score;          /* first-pass detections: score >= this */
  double low_score;           /* second-pass detections: low_score <= score < high_score */
  double new_track_score;     /* unmatched high detections start tracks at score >= this */
  double match_cost;          /* stage 1: fused cost below this */
  double embed_weight;        /* stage 1: weight of appearance, 1 - of motion, in [0, 1] */
  double iou_match;           /* stage 2: 1 - IoU below this */
  double low_match;           /* stage 3: 1 - IoU below this */
  double unconfirmed_match;   /* stage 4: 1 - IoU below this */
  int confirm_frames;         /* consecutive matches that confirm a track, >= 1 */
  int lost_frames;            /* frames a lost track is kept for, >= 0 */
  double merge_cover;         /* merges: cover of both parents' boxes by the child, 0: off */
  double merge_growth;        /* merges: the child's area over the matched parent's, >= 1 */
  double embed_momentum;      /* EMA weight of the old embedding, in [0, 1] */
  npt_track_gate_kind gate;   /* Mahalanobis gate on centre and size, or on the centre only */
  double std_weight_position; /* Kalman noise weights (kalman.h) */
  double std_weight_velocity;
  double split_shrink;    /* splits: a fragment's area over the parent's, at most; 0: off */
  double split_reach;     /* splits: fragment centres within this many parent half-sizes */
  double low_track_score; /* stage 3 takes only tracks whose smoothed score is >= this */
  double score_momentum;  /* EMA weight of a track's old score, in [0, 1] */
  double duplicate_iou;   /* an unmatched track this far over a taken detection ends; 1: off */
  double size_momentum;   /* EMA weight of a track's old size (npt_tracker_box); 0: off */
} npt_track_settings;

/* One detection handed to the tracker.  Box as everywhere in nptrack: top-left corner and size,
 * px (docs/formats.md); w, h > 0. */
typedef struct npt_track_det {
  float x, y, w, h;
  float score;
  int cls;            /* not used for association (particles change class) */
  const float *embed; /* embed_dim values (any nonzero length; L2-normalised by the engine), or
                         NULL: then stage 1 uses motion alone for this detection */
} npt_track_det;

/* The documented defaults (those of config/default.cfg). */
npt_track_settings npt_track_settings_default(void);

/* Reads the `track` section and checks what the schema's bounds cannot (low_score <=
 * high_score).  Returns 0 or NPT_ECONFIG with a message naming the setting. */
int npt_track_settings_get(const npt_config *cfg, npt_track_settings *out);

typedef struct npt_tracker npt_tracker;

/* A tracker with a copy of `s`, for embeddings of embed_dim values (0: none).  Returns 0,
 * NPT_EINVAL (a setting out of range, with a message naming it) or NPT_ENOMEM; *out is owned by
 * the caller (npt_tracker_free). */
int npt_tracker_create(const npt_track_settings *s, int embed_dim, npt_tracker **out);
void npt_tracker_free(npt_tracker *t);

/* Tracks one frame: `frame` must be greater than the previous call's (gaps are predicted over);
 * dets[0..n) its detections; track_id_out[n] receives each detection's track id or -1 (see
 * above).  Returns 0; NPT_EINVAL when the frame does not advance or a detection's box is not
 * finite and positive (the tracker is then unchanged); NPT_ENOMEM (the tracker may have lost
 * this frame's updates but stays usable and freeable). */
int npt_tracker_step(npt_tracker *t, int64_t frame, const npt_track_det *dets, size_t n,
                     int64_t *track_id_out);

/* A detection of an earlier frame that the last step's confirmation gave an id: detection
 * `index` of the step for `frame`. */
typedef struct npt_track_backfill {
  int64_t frame, index, id;
} npt_track_backfill;

/* The detections of earlier frames (at most confirm_frames - 1 per track, in frame order per
 * track, tracks in order of confirmation) that the last npt_tracker_step's confirmations gave
 * ids; *out stays valid until the next step.  Returns their number (0 with confirm_frames 1). */
size_t npt_tracker_backfill(const npt_tracker *t, const npt_track_backfill **out);

/* The box of detection `index` of the last npt_tracker_step as its track estimates it: the
 * detection's centre, and the size of the track's detections smoothed, w = m w_old + (1 - m)
 * w_det with m = size_momentum (likewise h), from its first detection on, so that the box does
 * not jitter with the detector's size noise from frame to frame.  Returns 1 and fills box (x,
 * y, w, h) when the detection went to a track (confirmed or not), else 0 (box untouched). */
int npt_tracker_box(const npt_tracker *t, size_t index, float box[4]);

/* A lineage event of the last step: a merge (parents: the tracks that ended in it, the
 * matched one first; one child) or a split (one parent; children by increasing id).  Ids are
 * those of the tracks; the children's tracks start at this frame. */
typedef enum { NPT_TRACK_MERGE = 1, NPT_TRACK_SPLIT = 2 } npt_track_event_kind;
typedef struct npt_track_event {
  npt_track_event_kind kind;
  int64_t frame;
  size_t n_parents, n_children;
  const int64_t *parents, *children;
} npt_track_event;

/* The last npt_tracker_step's events, in the order they were found; *out (and the id arrays it
 * points to) stays valid until the next step.  Returns their number. */
size_t npt_tracker_events(const npt_tracker *t, const npt_track_event **out);

/* Tracks alive now (confirmed, tracked or lost, and unconfirmed), and ids given so far. */
size_t npt_tracker_num_tracks(const npt_tracker *t);
int64_t npt_tracker_num_ids(const npt_tracker *t);

#endif
