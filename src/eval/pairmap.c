/* A hash map from (gt id, tracker id) to a dense index.  TrackEval keeps dense
 * n_gt_ids x n_tracker_ids matrices; only pairs that ever overlap have non-zero entries, so a
 * campaign with thousands of ids needs a map, not a matrix. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

static uint64_t pair_key(uint32_t g, uint32_t t) {
  return ((uint64_t)g << 32) | t;
}

static size_t hash(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return (size_t)k;
}

void npt__pairmap_init(npt__pairmap *m) {
  memset(m, 0, sizeof *m);
}

void npt__pairmap_free(npt__pairmap *m) {
  free(m->slots);
  free(m->slot_index);
  free(m->g);
  free(m->t);
  memset(m, 0, sizeof *m);
}

static int grow_table(npt__pairmap *m) {
  size_t cap = m->cap ? 2 * m->cap : 1024;
  uint64_t *slots = calloc(cap, sizeof *slots);
  size_t *slot_index = malloc(cap * sizeof *slot_index);
  if (!slots || !slot_index) {
    free(slots);
    free(slot_index);
    return npt_error_set(NPT_ENOMEM, "evaluation: out of memory for %zu id pairs", m->count);
  }
  for (size_t s = 0; s < m->cap; s++) {
    if (!m->slots[s])
      continue;
    size_t h = hash(m->slots[s] - 1) & (cap - 1);
    while (slots[h])
      h = (h + 1) & (cap - 1);
    slots[h] = m->slots[s];
    slot_index[h] = m->slot_index[s];
  }
  free(m->slots);
  free(m->slot_index);
  m->slots = slots;
  m->slot_index = slot_index;
  m->cap = cap;
  return 0;
}

size_t npt__pairmap_find(const npt__pairmap *m, uint32_t g, uint32_t t) {
  if (!m->cap)
    return SIZE_MAX;
  uint64_t key = pair_key(g, t) + 1;
  size_t h = hash(key - 1) & (m->cap - 1);
  while (m->slots[h]) {
    if (m->slots[h] == key)
      return m->slot_index[h];
    h = (h + 1) & (m->cap - 1);
  }
  return SIZE_MAX;
}

int npt__pairmap_get(npt__pairmap *m, uint32_t g, uint32_t t, size_t *idx, int *added) {
  *added = 0;
  if (2 * (m->count + 1) > m->cap)
    NPT_TRY(grow_table(m));
  uint64_t key = pair_key(g, t) + 1;
  size_t h = hash(key - 1) & (m->cap - 1);
  while (m->slots[h]) {
    if (m->slots[h] == key) {
      *idx = m->slot_index[h];
      return 0;
    }
    h = (h + 1) & (m->cap - 1);
  }
  if (m->count == m->g_cap) {
    size_t cap = m->g_cap ? 2 * m->g_cap : 1024;
    uint32_t *gg = realloc(m->g, cap * sizeof *gg);
    if (gg)
      m->g = gg;
    uint32_t *tt = realloc(m->t, cap * sizeof *tt);
    if (tt)
      m->t = tt;
    if (!gg || !tt)
      return npt_error_set(NPT_ENOMEM, "evaluation: out of memory for %zu id pairs", m->count);
    m->g_cap = cap;
  }
  m->slots[h] = key;
  m->slot_index[h] = m->count;
  m->g[m->count] = g;
  m->t[m->count] = t;
  *idx = m->count++;
  *added = 1;
  return 0;
}
