/* Memory planning: one arena per plan, tensors placed so that storage is reused once a tensor is
 * dead.  At 1024^2 the benchmark network's tensors add up to several times what is alive at any
 * moment, and reused memory is also memory still in cache.
 *
 * The method is greedy by size (as in TensorFlow Lite's arena planner): tensors are placed
 * largest first, each at the lowest offset where it overlaps no already placed tensor whose
 * lifetime [def, last] intersects its own.  Optimal placement is NP-hard; this one is within a
 * few percent of the peak live size on networks like ours, and O(n^2) in the number of tensors,
 * which is small. */
#include <stdlib.h>

#include "common/error.h"
#include "nn/cpu/cpu_internal.h"

enum { ALIGN = 16 }; /* floats: 64 bytes, a cache line and an AVX-512 vector */

typedef struct {
  int idx;
  size_t size;
  int def, last;
} item;

static int by_size_desc(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->size != y->size)
    return x->size < y->size ? 1 : -1;
  return x->idx - y->idx; /* deterministic order among equals */
}

static int by_offset(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

int npt__cpu_memplan(npt__cpu_plan *p) {
  int n = p->n_tensors;
  item *it = malloc(sizeof *it * (size_t)n);
  size_t *busy = malloc(sizeof *busy * 2 * (size_t)n); /* (offset, end) pairs of conflicts */
  if (!it || !busy) {
    free(it), free(busy);
    return npt_error_set(NPT_ENOMEM, "cpu backend: out of memory planning buffers");
  }
  /* Storage owners: an aliasing tensor (in-place add) lends its lifetime to the tensor whose
   * storage it shares. */
  int m = 0;
  for (int i = 0; i < n; i++) {
    npt__cpu_tensor *t = &p->t[i];
    if (t->elided || t->alias >= 0 || t->floats == 0 || t->def < -1)
      continue; /* no storage of its own, or never written */
    /* A tensor nobody reads still needs its storage while its producer writes it. */
    item x = {i, (t->floats + ALIGN - 1) / ALIGN * ALIGN, t->def,
              t->last > t->def ? t->last : t->def};
    for (int j = 0; j < n; j++)
      if (p->t[j].alias == i && !p->t[j].elided) {
        x.def = x.def < p->t[j].def ? x.def : p->t[j].def;
        x.last = x.last > p->t[j].last ? x.last : p->t[j].last;
      }
    if (p->keep_all) /* everything alive all the time: nothing shares */
      x.def = -1, x.last = p->n_steps;
    it[m++] = x;
  }
  qsort(it, (size_t)m, sizeof *it, by_size_desc);
  size_t total = 0;
  for (int k = 0; k < m; k++) {
    int nb = 0;
    for (int j = 0; j < k; j++)
      if (it[j].def <= it[k].last && it[k].def <= it[j].last) {
        busy[2 * nb] = p->t[it[j].idx].offset;
        busy[2 * nb + 1] = p->t[it[j].idx].offset + it[j].size;
        nb++;
      }
    /* Sorted by start, (offset, end) pairs stay together since qsort moves whole pairs. */
    qsort(busy, (size_t)nb, 2 * sizeof *busy, by_offset);
    size_t off = 0;
    for (int j = 0; j < nb; j++) {
      if (off + it[k].size <= busy[2 * j])
        break; /* fits in the gap before this conflict */
      if (busy[2 * j + 1] > off)
        off = busy[2 * j + 1];
    }
    p->t[it[k].idx].offset = off;
    if (off + it[k].size > total)
      total = off + it[k].size;
  }
  for (int i = 0; i < n; i++)
    if (p->t[i].alias >= 0)
      p->t[i].offset = p->t[p->t[i].alias].offset;
  p->arena_floats = total;
  free(it), free(busy);
  return 0;
}

void *npt__cpu_alloc(size_t bytes) {
  /* aligned_alloc wants a size that is a multiple of the alignment. */
  return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}
