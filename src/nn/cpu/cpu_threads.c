/* Threads of the CPU backend.
 *
 * oneDNN (Debian's build) runs its primitives on OpenMP threads, so the backend's own ops use the
 * same OpenMP team rather than a second pool: two pools on the same cores would each spin while
 * the other works (libgomp keeps its threads spinning for a while after every parallel region),
 * which costs more than the ops themselves on a two-core machine.
 *
 * Determinism: work is cut into items chosen by the caller from the shapes alone (a row of one
 * channel block of one frame, say), never from the thread count, and each item is computed by a
 * single thread from start to end.  No reduction is ever split across threads, so every output
 * element sees the same operations in the same order whatever `threads` is. */
#include <omp.h>

#include "nn/cpu/cpu_internal.h"

void npt__cpu_set_threads(const npt__cpu_ctx *ctx) {
  /* Per calling thread (an OpenMP internal control variable), read by oneDNN both when it
   * creates a primitive (it may pick blockings for the thread count) and when it runs one. */
  omp_set_num_threads(ctx->threads);
}

void npt__cpu_parallel(const npt__cpu_ctx *ctx, long n, void (*fn)(void *arg, long i), void *arg) {
  if (n <= 0)
    return;
  if (ctx->threads <= 1 || n == 1) {
    for (long i = 0; i < n; i++)
      fn(arg, i);
    return;
  }
  int nt = ctx->threads < n ? ctx->threads : (int)n;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (long i = 0; i < n; i++)
    fn(arg, i);
}
