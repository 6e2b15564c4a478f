/* Size-aware centre-distance suppression, the third rule of decoding (docs/decode.md): internal
 * to src/nn, used by decode.c and tested on its own (tests/unit/test_decode_suppress.c). */
#ifndef NPT_DECODE_SUPPRESS_H
#define NPT_DECODE_SUPPRESS_H

#include <stdint.h>

typedef struct npt__centre {
  double x, y; /* decoded centre, px (finite) */
  double side; /* min(w, h) of the decoded box, px (finite, >= 0) */
} npt__centre;

/* Greedy suppression of candidates 0 .. n-1, visited in their order (the decoder's: score
 * descending, ties by class, then cell).  Candidate c is dropped when a candidate k kept before
 * it satisfies
 *
 *     dx * dx + dy * dy < lim * lim,   dx = k.x - c.x,  dy = k.y - c.y,
 *                                      lim = ratio * fmin(k.side, c.side),
 *
 * every operation rounded once in double, in this order (the file is compiled without fused
 * multiply-adds, so train/decode_ref.py can repeat it bit for bit).  Candidates are taken in
 * order until `max_keep` are kept: their indices go to keep[] (room for max_keep, ascending),
 * their number to *n_keep; later candidates are not looked at.  ratio: finite, >= 0 (0 keeps
 * every candidate).  Deterministic; a bucket grid of kept centres keeps the cost near linear
 * (a brute-force O(n^2) version gives the same keep[]).  Returns 0 or NPT_ENOMEM. */
int npt__suppress_centres(const npt__centre *c, int64_t n, double ratio, int64_t max_keep,
                          int64_t *keep, int64_t *n_keep);

#endif
