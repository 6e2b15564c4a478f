/* Constant-velocity Kalman filter on a box's centre and size, as the JDE/FairMOT/ByteTrack
 * family of trackers uses it (the (cx, cy, w, h) variant of BoT-SORT rather than DeepSORT's
 * aspect ratio: particles are round more often than not, and their w and h change alike).
 *
 * State x = (cx, cy, w, h, vcx, vcy, vw, vh), one frame per time step; measurement z = (cx, cy,
 * w, h).  Noise standard deviations are proportional to the box's size, with the weights of
 * npt_kalman_settings:
 *   initial  std = (2 wp w, 2 wp h, 2 wp w, 2 wp h, 10 wv w, 10 wv h, 10 wv w, 10 wv h)
 *   process  std = (wp w, wp h, wp w, wp h, wv w, wv h, wv w, wv h), w and h of the mean before
 *            the step
 *   measurement std = (wp w, wp h, wp w, wp h), w and h of the predicted mean
 * with wp = std_weight_position and wv = std_weight_velocity.  Double precision, fixed-size
 * arrays, nothing allocated, nothing collective. */
#ifndef NPT_TRACK_KALMAN_H
#define NPT_TRACK_KALMAN_H

#include <stddef.h>

/* 0.95 quantiles of the chi-square distribution with 4 and 2 degrees of freedom: gates for the
 * squared Mahalanobis distances of npt_kalman_gate_distance on the full measurement and on the
 * position only. */
#define NPT_KALMAN_CHI2_4DOF 9.4877
#define NPT_KALMAN_CHI2_2DOF 5.9915

/* Defaults of the weights (ByteTrack's, BoT-SORT's). */
#define NPT_KALMAN_STD_WEIGHT_POSITION (1.0 / 20)
#define NPT_KALMAN_STD_WEIGHT_VELOCITY (1.0 / 160)

typedef struct npt_kalman_settings {
  double std_weight_position; /* wp above, > 0 */
  double std_weight_velocity; /* wv above, > 0 */
} npt_kalman_settings;

/* The defaults above. */
npt_kalman_settings npt_kalman_settings_default(void);

/* One track's estimate: mean and covariance (row-major, symmetric). */
typedef struct npt_kalman_state {
  double mean[8];
  double cov[8][8];
} npt_kalman_state;

/* A new track from its first measurement (cx, cy, w, h): velocities 0, the initial covariance
 * above.  Returns 0, or NPT_EINVAL when a value is not finite or w or h is not positive. */
int npt_kalman_init(const npt_kalman_settings *s, const double meas[4], npt_kalman_state *out);

/* One time step ahead: mean += velocity, cov = F cov F^T + Q. */
void npt_kalman_predict(const npt_kalman_settings *s, npt_kalman_state *st);

/* npt_kalman_predict on each of n states. */
void npt_kalman_predict_batch(const npt_kalman_settings *s, npt_kalman_state *st, size_t n);

/* The predicted measurement: mean H x and innovation covariance H cov H^T + R. */
void npt_kalman_project(const npt_kalman_settings *s, const npt_kalman_state *st, double mean[4],
                        double cov[4][4]);

/* What the gating distance needs of one track, computed once and used for each candidate. */
typedef struct npt_kalman_gate {
  double mean[4];     /* projected measurement */
  double chol[4][4];  /* lower Cholesky factor of the innovation covariance */
  double inv_diag[4]; /* 1 / chol[i][i] */
  int dims;           /* 4: centre and size; 2: centre only */
} npt_kalman_gate;

/* Corrects the state with a measurement (cx, cy, w, h).  `gate` is NULL, or a gate that
 * npt_kalman_gate_init made of this state as it is now (after its last predict; either
 * only_position), whose projection and factor are then reused instead of computed again.
 * Returns 0, or NPT_EINVAL (state left unchanged) when the innovation covariance is not
 * positive definite or the measurement is not finite. */
int npt_kalman_update(const npt_kalman_settings *s, npt_kalman_state *st, const double meas[4],
                      const npt_kalman_gate *gate);

/* Prepares the gate of a track, on the whole measurement or (only_position != 0) the centre
 * only.  Returns 0, or NPT_EINVAL when the innovation covariance is not positive definite. */
int npt_kalman_gate_init(const npt_kalman_settings *s, const npt_kalman_state *st,
                         int only_position, npt_kalman_gate *g);

/* Squared Mahalanobis distance of a measurement (cx, cy, w, h; only cx, cy are read with
 * dims 2) from the projected one; compare with NPT_KALMAN_CHI2_4DOF or _2DOF. */
double npt_kalman_gate_distance(const npt_kalman_gate *g, const double meas[4]);

#endif
