/* Settings of the online tracker (section `track`, see tracker.h).  The defaults are those of
 * ByteTrack and FairMOT where they have one (low threshold 0.1, IoU matches 0.5 and 0.7, a
 * 30-frame lost buffer, momentum 0.9, the Kalman weights 1/20 and 1/160), with appearance and
 * motion weighted equally in the first stage because particles look alike.  The high and
 * new-track thresholds (ByteTrack's 0.5 and 0.6) are set for nptrack's detector, whose heatmap
 * peaks on real particles often score 0.4-0.6: 0.4 and 0.4, chosen on the tracking benchmark's
 * tuning videos (docs/performance.md), never its test videos. */
#include <string.h>

#include "common/error.h"
#include "track/tracker.h"

#define NONE NULL, 0

const npt_setting_def npt_track_settings_table[] = {
    {"track.high_score", NPT_SET_FLOAT, 0, 1, "0.4", "", NONE,
     "Detections scoring at least this take part in the first association stages and may "
     "start tracks."},
    {"track.low_score", NPT_SET_FLOAT, 0, 1, "0.1", "", NONE,
     "Detections scoring at least this but below track.high_score are used only by the second "
     "pass (ByteTrack's), to continue tracks that are already tracked; lower ones are ignored. "
     "nptrack run has the network decode down to this score when it is below the detector's "
     "threshold (detect.score_threshold or the model's), and keeps the detections below that "
     "threshold only where a track took them; 0 leaves the detector's threshold (every local "
     "maximum would be a detection).  Must not exceed track.high_score."},
    {"track.new_track_score", NPT_SET_FLOAT, 0, 1, "0.4", "", NONE,
     "A high detection left unmatched starts a new (unconfirmed) track when it scores at least "
     "this."},
    {"track.match_cost", NPT_SET_FLOAT, 0, 3, "0.5", "", NONE,
     "First stage: a confirmed track and a high detection inside its Mahalanobis gate are "
     "matched only when their fused cost, embed_weight x (1 - cosine similarity of the "
     "embeddings) + (1 - embed_weight) x (squared Mahalanobis distance / gate), is below this. "
     "With the defaults a detection whose embedding is unrelated to the track's (cosine 0) is "
     "never matched here, and is left to the IoU stage."},
    {"track.embed_weight", NPT_SET_FLOAT, 0, 1, "0.5", "", NONE,
     "Weight of appearance against motion in the first stage's fused cost (FairMOT's lambda): "
     "1 uses the embeddings alone inside the gate, 0 the motion alone.  Particles look alike, "
     "so the default weighs both equally."},
    {"track.iou_match", NPT_SET_FLOAT, 0, 1, "0.8", "", NONE,
     "Second stage: tracks tracked in the previous frame and still unmatched take the high "
     "detections left whose box overlaps their predicted box with 1 - IoU below this.  This is "
     "the stage that keeps a particle's identity through a change of appearance (embedding "
     "and class)."},
    {"track.low_match", NPT_SET_FLOAT, 0, 1, "0.5", "", NONE,
     "Third stage (ByteTrack's second pass): tracks still unmatched take low detections with "
     "1 - IoU below this."},
    {"track.unconfirmed_match", NPT_SET_FLOAT, 0, 1, "0.7", "", NONE,
     "Fourth stage: unconfirmed tracks take the high detections left with 1 - IoU below this; "
     "an unconfirmed track left unmatched is removed."},
    {"track.confirm_frames", NPT_SET_INT, 1, 1000, "2", "frames", NONE,
     "Consecutive frames with a match after which a new track is confirmed and gets its id; "
     "1 confirms tracks at birth.  The detections of a track before its confirmation get the "
     "id when it is confirmed (the archive's rows are written after that), so a particle's "
     "track starts at its first detection; an unconfirmed track that dies leaves its "
     "detections without an id (-1)."},
    {"track.lost_frames", NPT_SET_INT, 0, 1000000, "30", "frames", NONE,
     "A confirmed track without a match is kept (lost, its motion predicted) for this many "
     "frames after its last match and can take up its identity again; then it is removed and "
     "the particle, if seen again, gets a new id."},
    {"track.merge_cover", NPT_SET_FLOAT, 0, 1, "0.3", "", NONE,
     "Merges (sintering): a confirmed track tracked in the previous frame and unmatched now "
     "ends in a merge when a detection matched to another confirmed track covers at least this "
     "fraction of its predicted box, covers that other track's predicted box as much, and is "
     "at least track.merge_growth times its area; both tracks end and the detection starts a "
     "new, confirmed track (a merge gives a new identity, as nptrack synth's ground truth "
     "does).  0 turns merges off: the grown particle keeps one parent's id."},
    {"track.merge_growth", NPT_SET_FLOAT, 1, 100, "1.2", "", NONE,
     "Merges: the merged particle's box must be at least this many times the area of the "
     "parent track it was matched to.  Coalescence never shrinks the larger parent, but a "
     "small neighbour adds little to its area: below about 1.2 a false detection that "
     "vanishes beside a large particle ends it whenever the large one's box jitters."},
    {"track.split_shrink", NPT_SET_FLOAT, 0, 1, "0.8", "", NONE,
     "Splits (regeneration, the mirror of merges): new fragments are high detections that no "
     "track took, scoring at least track.new_track_score, whose area is at most this fraction "
     "of a confirmed track's predicted area and whose centre lies near it (track.split_reach). "
     "The track splits when its own match shrinks to at most this fraction too and at least "
     "one fragment appears beside it (or, unmatched, when two do; small detections beside a "
     "particle that keeps its size are not its fragments): it ends, and its match and every "
     "fragment start new, confirmed tracks (a split gives each piece a new identity, as "
     "nptrack synth's ground truth does), reported as a lineage event.  0 turns splits off."},
    {"track.split_reach", NPT_SET_FLOAT, 0, 10, "2", "", NONE,
     "Splits: a fragment's centre must lie within this many half-widths (and half-heights) of "
     "the splitting track's predicted centre; 1 keeps fragments centred inside the track's "
     "box, 2 lets them lie up to half its size beyond it."},
    {"track.low_track_score", NPT_SET_FLOAT, 0, 1, "0.4", "", NONE,
     "Second pass: only tracks whose score (the scores of their detections, smoothed with "
     "track.score_momentum) is at least this take low detections, so that a track that was "
     "never better than marginal -- a blob of support texture, say -- is not kept alive by "
     "detections weaker still.  0 lets every tracked track take them, as ByteTrack does."},
    {"track.score_momentum", NPT_SET_FLOAT, 0, 1, "0.9", "", NONE,
     "Smoothing of a track's score: at each match it becomes m x old + (1 - m) x the "
     "detection's score; a new track starts at its first detection's score."},
    {"track.duplicate_iou", NPT_SET_FLOAT, 0, 1, "0.85", "", NONE,
     "Duplicates (ByteTrack's): a confirmed track without a match in this frame whose predicted "
     "box overlaps a detection that another track took (or that a merge or split made) with "
     "IoU above this is the same particle under a second identity; it is removed at once "
     "instead of being kept as lost.  1 turns this off."},
    {"track.size_momentum", NPT_SET_FLOAT, 0, 1, "0.8", "", NONE,
     "Box sizes of tracked particles: a track's size is that of its detections smoothed, "
     "m x old + (1 - m) x the detection's (width and height), and nptrack run writes the "
     "detections of a confirmed track with this size around the detection's centre, so that "
     "sizes do not jitter with the detector's noise from frame to frame (a detection before "
     "its track's confirmation, and one in no track, keeps the detector's box).  Merges and "
     "splits start new tracks, so their size jumps are not smoothed away; a steady growth or "
     "shrinkage lags by about m / (1 - m) frames.  0 writes the detector's boxes."},
    {"track.embed_momentum", NPT_SET_FLOAT, 0, 1, "0.9", "", NONE,
     "Smoothing of a track's embedding: at each match with a high detection it becomes "
     "normalise(m x old + (1 - m) x detection's); 0 keeps only the latest."},
    {"track.gate", NPT_SET_ENUM, 0, 0, "\"4d\"", "", "4d|position", 0,
     "Mahalanobis gate of the first stage (chi-square 0.95 quantile): 4d on centre and size, "
     "or position on the centre only (for particles whose size jumps, e.g. when an oxide "
     "shell forms)."},
    {"track.std_weight_position", NPT_SET_FLOAT, 1e-6, 10, "0.05", "", NONE,
     "Kalman filter: standard deviation of position and size noise (process and measurement) "
     "as a fraction of the box size, per frame."},
    {"track.std_weight_velocity", NPT_SET_FLOAT, 1e-6, 10, "0.00625", "", NONE,
     "Kalman filter: standard deviation of the velocity noise as a fraction of the box size, "
     "per frame."},
    {NULL, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

int npt_track_settings_get(const npt_config *cfg, npt_track_settings *s) {
  s->high_score = npt_config_float(cfg, "track.high_score");
  s->low_score = npt_config_float(cfg, "track.low_score");
  s->new_track_score = npt_config_float(cfg, "track.new_track_score");
  s->match_cost = npt_config_float(cfg, "track.match_cost");
  s->embed_weight = npt_config_float(cfg, "track.embed_weight");
  s->iou_match = npt_config_float(cfg, "track.iou_match");
  s->low_match = npt_config_float(cfg, "track.low_match");
  s->unconfirmed_match = npt_config_float(cfg, "track.unconfirmed_match");
  s->confirm_frames = (int)npt_config_int(cfg, "track.confirm_frames");
  s->lost_frames = (int)npt_config_int(cfg, "track.lost_frames");
  s->embed_momentum = npt_config_float(cfg, "track.embed_momentum");
  s->merge_cover = npt_config_float(cfg, "track.merge_cover");
  s->merge_growth = npt_config_float(cfg, "track.merge_growth");
  s->split_shrink = npt_config_float(cfg, "track.split_shrink");
  s->split_reach = npt_config_float(cfg, "track.split_reach");
  s->low_track_score = npt_config_float(cfg, "track.low_track_score");
  s->score_momentum = npt_config_float(cfg, "track.score_momentum");
  s->duplicate_iou = npt_config_float(cfg, "track.duplicate_iou");
  s->size_momentum = npt_config_float(cfg, "track.size_momentum");
  s->gate = strcmp(npt_config_str(cfg, "track.gate"), "position") ? NPT_TRACK_GATE_4D
                                                                  : NPT_TRACK_GATE_POSITION;
  s->std_weight_position = npt_config_float(cfg, "track.std_weight_position");
  s->std_weight_velocity = npt_config_float(cfg, "track.std_weight_velocity");
  if (s->low_score > s->high_score)
    return npt_error_set(NPT_ECONFIG, "track.low_score (%g) must not exceed track.high_score (%g)",
                         s->low_score, s->high_score);
  return 0;
}
