/* Box similarity (IoU) and numpy's summation order: the floating-point details that make the
 * metrics equal TrackEval's bit for bit rather than approximately, which matters wherever a
 * value feeds a comparison or an assignment with ties. */
#include "common/error.h"
#include "eval/eval_internal.h"

double npt_eval_box_iou(const double a[4], const double b[4]) {
  /* TrackEval converts (x, y, w, h) to corners first and takes areas from the corners, so
   * (x + w) - x, not w: the two differ by rounding. */
  double ax1 = a[0] + a[2], ay1 = a[1] + a[3];
  double bx1 = b[0] + b[2], by1 = b[1] + b[3];
  double iw = (ax1 < bx1 ? ax1 : bx1) - (a[0] > b[0] ? a[0] : b[0]);
  double ih = (ay1 < by1 ? ay1 : by1) - (a[1] > b[1] ? a[1] : b[1]);
  double inter = (iw > 0 ? iw : 0) * (ih > 0 ? ih : 0);
  double area_a = (ax1 - a[0]) * (ay1 - a[1]);
  double area_b = (bx1 - b[0]) * (by1 - b[1]);
  double uni = area_a + area_b - inter;
  /* Degenerate boxes (area at most eps, e.g. zero or negative width) overlap nothing. */
  if (area_a <= NPT__EPS || area_b <= NPT__EPS || uni <= NPT__EPS)
    return 0.0;
  return inter / uni;
}

void npt__similarity(const npt_mot *gt, const npt_mot *pr, const npt__step *s, double *sim) {
  size_t np = s->p1 - s->p0;
  for (size_t i = s->g0; i < s->g1; i++) {
    double *out = sim + (i - s->g0) * np;
    for (size_t j = s->p0; j < s->p1; j++)
      out[j - s->p0] = npt_eval_box_iou(&gt->box[4 * i], &pr->box[4 * j]);
  }
}

/* numpy's pairwise_sum for float64: below 8 terms a plain loop, up to 128 terms eight running
 * sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) plus the tail, above that the two
 * halves (split at a multiple of 8) summed recursively. */
double npt__np_sum(const double *a, size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (size_t i = 0; i < n; i++)
      res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; k++)
      r[k] = a[k];
    size_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; k++)
        r[k] += a[i + k];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++)
      res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return npt__np_sum(a, n2) + npt__np_sum(a + n2, n - n2);
}
