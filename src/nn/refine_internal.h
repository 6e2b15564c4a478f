/* Box refinement's model of one particle (refine_model.c), shared by refine.c and its test.
 *
 * The fit's window holds its unmasked pixels as float arrays (structure of arrays), positions
 * relative to the network's box centre and grey levels relative to the background's first
 * estimate, so that single precision keeps ~1e-5 px and ~1e-5 grey levels whatever the frame's
 * size and bit depth.  Two evaluations of the same model are offered:
 *   npt__refine_eval_simple: the straightforward one (double, every pixel, every term of J^T J
 *     per pixel), the reference;
 *   npt__refine_eval + npt__refine_jacobian: the one the fit uses (docs/decode.md, "Box
 *     refinement"): 4-wide vectors, the profile's log and power computed only for pixels inside
 *     the ellipse and kept for the Jacobian, the background plane's part of J^T J summed once per
 *     window, the particle's part over the pixels inside the ellipse only (outside, its derivatives
 *     are zero).
 * Both give the same cost, J^T J and J^T r to single precision (tests/unit/test_refine.c). */
#ifndef NPT_REFINE_INTERNAL_H
#define NPT_REFINE_INTERNAL_H

/* The parameters: centre, log semi-axes, angle, amplitude, background plane, log exponent. */
enum { P_CX, P_CY, P_LA, P_LB, P_TH, P_AMP, P_B0, P_BX, P_BY, P_LP, NP };

/* Pixels of one window, in raster order (gy non-decreasing, gx increasing along a row).  gx, gy,
 * v hold n pixels, then padding up to a multiple of 4 (written by npt__refine_window_ready).
 * Coordinates: pixel (x, y) is at (cx0 + gx, cy0 + gy) and its grey level is vref + v;
 * parameters are in frame coordinates and grey levels all the same.  row (n + 1 ints) and row_gy
 * (n floats) are the caller's storage for the rows, filled by npt__refine_window_ready: the
 * evaluation looks for the pixels inside the ellipse in the rows and columns its bounding box
 * crosses only. */
typedef struct npt__refine_window {
  float *gx, *gy, *v;
  int n;
  double cx0, cy0, vref;
  int *row;        /* row k's pixels are [row[k], row[k + 1]) */
  float *row_gy;   /* row k's gy */
  int nrow;        /* rows */
  double plane[6]; /* sums over the pixels of 1, gx, gy, gx^2, gx gy, gy^2 */
} npt__refine_window;

/* What an evaluation leaves for the Jacobian at the same parameters: the residual of every pixel
 * and, for the m pixels inside the ellipse, their index and the profile's pieces. */
typedef struct npt__refine_state {
  float *r;                          /* n + padding: model - data (0 in the padding) */
  int *idx;                          /* m: the pixels inside */
  float *u, *w, *q, *lq, *prof, *gx; /* m + padding: rotated coordinates, 1 - rho^2, log q, q^p */
  float *gy, *ri;                    /* scratch of the Jacobian (the inside pixels' gy and r) */
  int m;
} npt__refine_state;

/* Floats a window of n pixels and a state need, each array rounded up to whole vectors. */
int npt__refine_padded(int n);

/* Pads the window's arrays (allocated for npt__refine_padded(n) floats), finds its rows and sums
 * the plane's part of J^T J. */
void npt__refine_window_ready(npt__refine_window *win);

/* Points a state's arrays into buf (10 * npt__refine_padded(n) floats, 4-byte aligned). */
void npt__refine_state_init(npt__refine_state *st, float *buf, int n);

/* The reference: sum of squared residuals at p; with jtj/jtr (not NULL), also J^T J (upper
 * triangle, row-major NP x NP) and J^T r. */
double npt__refine_eval_simple(const double *p, const npt__refine_window *win, double *jtj,
                               double *jtr);

/* Sum of squared residuals at p, leaving in *st what npt__refine_jacobian needs. */
double npt__refine_eval(const double *p, const npt__refine_window *win, npt__refine_state *st);

/* J^T J (upper triangle) and J^T r at the p that filled *st. */
void npt__refine_jacobian(const double *p, const npt__refine_window *win, npt__refine_state *st,
                          double *jtj, double *jtr);

#endif
