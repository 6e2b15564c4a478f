/* Gated linear assignment: matching tracks (rows) to detections (columns) when only a few
 * pairs per track are allowed at all.
 *
 * The problem is the one ByteTrack solves with lap.lapjv(cost, extend_cost=True,
 * cost_limit=max_cost): every row and every column may stay unmatched at a price of max_cost/2
 * each, so a pair is worth matching only when its cost is below max_cost, and among the
 * matchings of allowed pairs the one of least total cost
 *
 *     sum over matched pairs of cost  +  max_cost/2 * (unmatched rows + unmatched columns)
 *
 * is returned.  Pairs not listed, and listed pairs whose cost is not below max_cost, are never
 * matched.  (A pair of cost exactly max_cost would tie with leaving both ends unmatched; it is
 * left unmatched, so that such pairs never join two components.)
 *
 * The allowed pairs form a sparse bipartite graph.  Its connected components are independent
 * problems, each solved exactly by the shortest augmenting path method (Jonker-Volgenant's
 * augmentation, Dijkstra searches with dual variables) on its rows, its columns and one
 * "unmatched" column per row; a search explores only the pairs it reaches, and components of
 * one row take a direct scan.  Frames of thousands of particles, whose gating leaves
 * components of a few pairs, cost time about linear in the number of pairs.
 *
 * Determinism and ties: the result of a component depends only on its costs, taken in ascending
 * row and column order, never on the order of the edge list, on duplicates (the smallest cost
 * of a duplicated pair counts) or on other components.  Among equal-cost solutions the choice
 * is the solver's, fixed but not a simple lexicographic one: rows are added in ascending
 * order, each by a shortest augmenting path (which may move earlier rows), and of columns at
 * equal distance a search settles a free one first, then the lowest index.  A component of one
 * row takes its cheapest column of lowest index.  Nothing here is collective. */
#ifndef NPT_TRACK_ASSIGN_H
#define NPT_TRACK_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

/* One allowed pair: row (track) index, column (detection) index, cost. */
typedef struct npt_assign_edge {
  int64_t row;
  int64_t col;
  double cost;
} npt_assign_edge;

/* Buffers kept from one call to the next, so that a tracker allocates nothing per frame once
 * its workspace has grown to the largest frame.  Not thread-safe: one per thread. */
typedef struct npt_assign_work npt_assign_work;

/* *out receives an empty workspace; free it with npt_assign_work_free.  Returns 0 or
 * NPT_ENOMEM. */
int npt_assign_work_init(npt_assign_work **out);
void npt_assign_work_free(npt_assign_work *w);

/* Solves the problem above for nr rows, nc columns and the n_edges allowed pairs in `edges`.
 * row_to_col[nr] receives each row's column or -1, col_to_row[nc] each column's row or -1
 * (either may be NULL).  `work` may be NULL (buffers are then allocated and freed here).
 * Returns 0; NPT_EINVAL when an edge's row or column is out of range, a cost is NaN or -inf, or
 * max_cost is not finite (the outputs are then unspecified); NPT_ENOMEM. */
int npt_assign_solve(size_t nr, size_t nc, const npt_assign_edge *edges, size_t n_edges,
                     double max_cost, int64_t *row_to_col, int64_t *col_to_row,
                     npt_assign_work *work);

#endif
