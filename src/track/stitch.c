/* Tracklet summaries, boundary matching, union-find and global numbering (stitch.h). */
#include "track/stitch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "track/assign.h"

/* ------------------------------------------------------------------------------------------- */
/* Summaries */

void npt_tracklets_free(npt_tracklets *t) {
  free(t->t);
  free(t->embed);
  memset(t, 0, sizeof *t);
}

int npt_tracklets_alloc(npt_tracklets *t, size_t n, int embed_dim) {
  memset(t, 0, sizeof *t);
  t->t = calloc(n ? n : 1, sizeof *t->t);
  if (embed_dim > 0)
    t->embed = calloc((n ? n : 1) * 2 * (size_t)embed_dim, sizeof *t->embed);
  if (!t->t || (embed_dim > 0 && !t->embed)) {
    npt_tracklets_free(t);
    return npt_error_set(NPT_ENOMEM, "out of memory for %zu tracklets", n);
  }
  t->n = n;
  t->embed_dim = embed_dim;
  for (size_t i = 0; i < n && embed_dim > 0; i++) {
    t->t[i].head_embed = t->embed + 2 * i * (size_t)embed_dim;
    t->t[i].tail_embed = t->t[i].head_embed + embed_dim;
  }
  return 0;
}

void npt_tracklets_mark_ended(npt_tracklets *t, const int64_t *ids, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int64_t k = npt_tracklets_find(t, ids[i]);
    if (k >= 0)
      t->t[k].ended = 1;
  }
}

int64_t npt_tracklets_find(const npt_tracklets *t, int64_t id) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->t[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < t->n && t->t[lo].id == id ? (int64_t)lo : -1;
}

typedef struct {
  int64_t id, row;
} id_row;

static int cmp_id_row(const void *a, const void *b) {
  const id_row *p = a, *q = b;
  if (p->id != q->id)
    return p->id < q->id ? -1 : 1;
  return (p->row > q->row) - (p->row < q->row);
}

/* The mean of embeddings of rows rr[0..n), scaled to unit length (zero stays zero). */
static void mean_embed(const npt_stitch_rows *r, const id_row *rr, int64_t n, float *out) {
  const int d = r->embed_dim;
  double acc[1024] = {0}, norm = 0;
  int dd = d < 1024 ? d : 1024;
  for (int64_t j = 0; j < n; j++)
    for (int c = 0; c < dd; c++)
      acc[c] += r->embed[rr[j].row * d + c];
  for (int c = 0; c < dd; c++)
    norm += acc[c] * acc[c];
  norm = sqrt(norm);
  for (int c = 0; c < d; c++)
    out[c] = c < dd && norm > 0 ? (float)(acc[c] / norm) : 0.0f;
}

static void box_meas(const npt_stitch_rows *r, int64_t i, double m[4]) {
  m[0] = (double)r->x[i] + 0.5 * r->w[i];
  m[1] = (double)r->y[i] + 0.5 * r->h[i];
  m[2] = r->w[i];
  m[3] = r->h[i];
}

/* The Kalman state after the rows rr[0..n) (one track, in frame order), predicted over gaps as
 * the tracker does. */
static void fit_tail(const npt_track_settings *ts, const npt_stitch_rows *r, const id_row *rr,
                     int64_t n, npt_kalman_state *st) {
  npt_kalman_settings ks = {ts->std_weight_position, ts->std_weight_velocity};
  double m[4];
  box_meas(r, rr[0].row, m);
  if (npt_kalman_init(&ks, m, st) < 0)
    memset(st, 0, sizeof *st);
  for (int64_t j = 1; j < n; j++) {
    for (int64_t f = r->frame[rr[j - 1].row]; f < r->frame[rr[j].row]; f++)
      npt_kalman_predict(&ks, st);
    box_meas(r, rr[j].row, m);
    npt_kalman_update(&ks, st, m, NULL); /* a degenerate update keeps the prediction */
  }
}

int npt_tracklets_build(const npt_track_settings *ts, const npt_stitch_rows *r, int64_t own_begin,
                        int64_t own_end, npt_tracklets *out) {
  memset(out, 0, sizeof *out);
  int64_t m = 0;
  for (int64_t i = 0; i < r->n; i++) {
    if (i > 0 && r->frame[i] < r->frame[i - 1])
      return npt_error_set(NPT_EINVAL, "stitching: rows not in frame order (row %lld)",
                           (long long)i);
    m += r->id[i] >= 0;
  }
  id_row *p = malloc(sizeof *p * (size_t)(m ? m : 1));
  NPT_ALLOC_CHECK(p);
  m = 0;
  for (int64_t i = 0; i < r->n; i++)
    if (r->id[i] >= 0)
      p[m++] = (id_row){r->id[i], i};
  qsort(p, (size_t)m, sizeof *p, cmp_id_row);
  size_t k = 0;
  for (int64_t j = 0; j < m; j++)
    k += j == 0 || p[j].id != p[j - 1].id;
  int d = r->embed ? r->embed_dim : 0;
  int rc = npt_tracklets_alloc(out, k, d);
  if (rc < 0) {
    free(p);
    return rc;
  }
  k = 0;
  for (int64_t j0 = 0; j0 < m; k++) {
    int64_t j1 = j0;
    while (j1 < m && p[j1].id == p[j0].id)
      j1++;
    npt_tracklet *t = &out->t[k];
    int64_t first = p[j0].row, last = p[j1 - 1].row, n = j1 - j0;
    t->id = p[j0].id;
    t->n = n;
    t->first_frame = r->frame[first];
    t->last_frame = r->frame[last];
    t->head[0] = r->x[first], t->head[1] = r->y[first];
    t->head[2] = r->w[first], t->head[3] = r->h[first];
    t->own_frame = -1;
    for (int64_t j = j0; j < j1; j++) {
      int64_t i = p[j].row;
      if (r->frame[i] >= own_begin && r->frame[i] < own_end) {
        t->own_frame = r->frame[i], t->own_x = r->x[i], t->own_y = r->y[i];
        break;
      }
    }
    int64_t nm = n < NPT_STITCH_MOTION_DETS ? n : NPT_STITCH_MOTION_DETS;
    fit_tail(ts, r, p + j1 - nm, nm, &t->tail);
    if (d > 0) {
      int64_t ne = n < NPT_STITCH_EMBED_DETS ? n : NPT_STITCH_EMBED_DETS;
      mean_embed(r, p + j0, ne, t->head_embed);
      mean_embed(r, p + j1 - ne, ne, t->tail_embed);
    }
    j0 = j1;
  }
  free(p);
  return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Boundary matching */

/* The rows of `r` in frames [b, e): *lo .. *hi - 1. */
static void frame_span(const npt_stitch_rows *r, int64_t b, int64_t e, int64_t *lo, int64_t *hi) {
  int64_t i = 0;
  while (i < r->n && r->frame[i] < b)
    i++;
  *lo = i;
  while (i < r->n && r->frame[i] < e)
    i++;
  *hi = i;
}

typedef struct {
  int64_t a, b, votes;
  double weight;       /* shared detections, each weighted by its nearness to the overlap's end */
  int64_t first, last; /* the frames of the first and the last of them */
} vote;

/* By pair, then frame: a pair's votes are summed in frame order, from its first to its last. */
static int cmp_vote(const void *x, const void *y) {
  const vote *p = x, *q = y;
  if (p->a != q->a)
    return p->a < q->a ? -1 : 1;
  if (p->b != q->b)
    return p->b < q->b ? -1 : 1;
  return (p->first > q->first) - (p->first < q->first);
}

/* The weight of a detection in frame f of an overlap that ends at frame e (exclusive). */
static double near_end(int64_t f, int64_t e) {
  return exp2((double)(f - (e - 1)) / NPT_STITCH_HALF_LIFE);
}

/* wsum[k] += the weights of rows lo..hi-1 of tracklet k in an overlap ending at e. */
static int weigh_rows(const npt_tracklets *t, const npt_stitch_rows *r, int64_t lo, int64_t hi,
                      int64_t e, double *wsum) {
  for (int64_t i = lo; i < hi; i++) {
    if (r->id[i] < 0)
      continue;
    int64_t k = npt_tracklets_find(t, r->id[i]);
    if (k < 0)
      return npt_error_set(NPT_EINVAL, "stitching: track %lld has no summary", (long long)r->id[i]);
    wsum[k] += near_end(r->frame[i], e);
  }
  return 0;
}

/* Whether a pair shares enough detections to be a candidate: NPT_STITCH_MIN_SHARED, or all of
 * B's tracklet's overlap detections that A tracked when it has fewer (nb[b]): a track that B's
 * tracker started in the last frames of the overlap on the detections A's track held there
 * cannot share more, and A's tracker, which owns those frames, says they are its particle. */
static int enough(const vote *v, const int64_t *nb) {
  return v->votes >= NPT_STITCH_MIN_SHARED || v->votes == nb[v->b];
}

/* Whether local tracks p and q of rows r both have a row in one frame at or after frame f. */
static int coexist(const npt_stitch_rows *r, int64_t p, int64_t q, int64_t f) {
  int64_t i = 0;
  while (i < r->n && r->frame[i] < f)
    i++;
  while (i < r->n) {
    int64_t i1 = i;
    int hp = 0, hq = 0;
    for (; i1 < r->n && r->frame[i1] == r->frame[i]; i1++)
      hp |= r->id[i1] == p, hq |= r->id[i1] == q;
    if (hp && hq)
      return 1;
    i = i1;
  }
  return 0;
}

/* Step 1: matches on shared detections; marks used[].  One-to-one first; then fragments: a
 * tracklet of B left over that, at the end of the overlap, follows a particle that A followed
 * with one track -- most of its weighted overlap detections are that track's -- while B's match
 * of that track never has a row in the same frame, is the same particle under a second identity
 * that B's fresh tracker gave it (two tracks taking its detections in turn); it is joined to A's
 * track too.  Of the tracklets of B joined to one of A, at most one reaches B's next overlap, so
 * that at most one of them can be joined to a tracklet of the chunk after B and a joined track
 * never has two rows in one frame. */
static int match_shared(const npt_tracklets *ta, const npt_stitch_rows *ra, const npt_tracklets *tb,
                        const npt_stitch_rows *rb, int64_t b, int64_t e, npt_stitch_link *links,
                        size_t *n_links, char *used_a, char *used_b, char *handed) {
  int64_t alo, ahi, blo, bhi;
  frame_span(ra, b, e, &alo, &ahi);
  frame_span(rb, b, e, &blo, &bhi);
  double *wa = calloc(ta->n + 1, sizeof *wa), *wb = calloc(tb->n + 1, sizeof *wb);
  int64_t *nb = calloc(tb->n + 1, sizeof *nb);
  int64_t cap = (ahi - alo < bhi - blo ? ahi - alo : bhi - blo) + 1;
  vote *v = malloc(sizeof *v * (size_t)cap);
  if (!wa || !wb || !nb || !v) {
    free(wa), free(wb), free(nb), free(v);
    return npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  }
  int rc = 0;
  int64_t nv = 0, i = alo, j = blo;
  rc = weigh_rows(ta, ra, alo, ahi, e, wa);
  if (rc == 0)
    rc = weigh_rows(tb, rb, blo, bhi, e, wb);
  /* Walk the frames together; within a frame, a row of A and a row of B are the same detection
   * when their decoder indices agree (both chunks ran the same engine on the same frame; their
   * rows differ in the low-score detections each tracker kept and in the tracks' smoothed box
   * sizes, so boxes are not compared). */
  while (rc == 0 && i < ahi && j < bhi) {
    int64_t f = ra->frame[i] < rb->frame[j] ? ra->frame[i] : rb->frame[j];
    int64_t i1 = i, j1 = j;
    while (i1 < ahi && ra->frame[i1] == f)
      i1++;
    while (j1 < bhi && rb->frame[j1] == f)
      j1++;
    for (int64_t x = i, y = j; x < i1 && y < j1;) {
      if (ra->det[x] < rb->det[y]) {
        x++;
      } else if (rb->det[y] < ra->det[x]) {
        y++;
      } else {
        if (ra->id[x] >= 0 && rb->id[y] >= 0)
          v[nv++] = (vote){.a = npt_tracklets_find(ta, ra->id[x]),
                           .b = npt_tracklets_find(tb, rb->id[y]),
                           .votes = 1,
                           .weight = near_end(f, e),
                           .first = f,
                           .last = f};
        x++, y++;
      }
    }
    i = i1, j = j1;
  }
  qsort(v, (size_t)nv, sizeof *v, cmp_vote);
  int64_t ne = 0;
  for (int64_t k = 0; k < nv; k++)
    if (ne > 0 && v[ne - 1].a == v[k].a && v[ne - 1].b == v[k].b)
      v[ne - 1].votes++, v[ne - 1].weight += v[k].weight, v[ne - 1].last = v[k].last;
    else
      v[ne++] = v[k];
  npt_assign_edge *edges = malloc(sizeof *edges * (size_t)(ne ? ne : 1));
  int64_t *a2b = malloc(sizeof *a2b * (ta->n ? ta->n : 1));
  if (rc == 0 && (!edges || !a2b))
    rc = npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  /* wb[q]: the weight of B's tracklet q's overlap detections that A's tracker put in a track too
   * (weigh_rows above only checked the ids).  A detection that no tracklet of A holds says
   * nothing about which of A's particles q follows: when A's track of a particle ends a few
   * frames before the end of the overlap (A's tracker did not take a weak detection that B's
   * did), q's last, heaviest detections are A's nobody's, and counting them let q's many
   * shared detections with that track fall under half of q's weight. */
  for (size_t q = 0; q < tb->n; q++)
    wb[q] = 0, nb[q] = 0;
  for (int64_t k = 0; k < ne; k++)
    wb[v[k].b] += v[k].weight, nb[v[k].b] += v[k].votes;
  /* A candidate holds most of B's tracklet's overlap detections (those A tracked), weighted as
   * the assignment weighs them: B's tracklet, which the archive follows after the hand-over,
   * follows A's tracklet's particle at the end of the overlap.  Weighted, not counted: a track
   * that switched particles inside the overlap holds at the end the particle it switched to,
   * however few of its detections that was; and only B's side: any tracklet of A that ended
   * early in the overlap shares most of its few detections with the B tracklet that had its
   * particle then, which may follow another particle at the hand-over. */
  int64_t n_edges = 0;
  for (int64_t k = 0; k < ne && rc == 0; k++)
    if (enough(&v[k], nb) && v[k].weight > NPT_STITCH_MOST * wb[v[k].b] &&
        !(ta->t[v[k].a].ended && tb->t[v[k].b].own_frame >= 0))
      edges[n_edges++] = (npt_assign_edge){v[k].a, v[k].b, -v[k].weight};
  /* A tracklet of A whose last detection is in the overlap and held by a tracklet of B (one that
   * shares at least NPT_STITCH_MIN_SHARED detections with it) has handed its particle over to
   * B's tracker, which followed the particle from there on: what B's tracker decided after that
   * detection (to end the track, to start another) the motion step does not decide again.  It
   * joined such a tracklet to a track of B that began after the overlap, where B's tracker, and
   * the one-chunk tracker, had started a new track. */
  for (int64_t k = 0; k < ne; k++)
    if (v[k].votes >= NPT_STITCH_MIN_SHARED && v[k].last == ta->t[v[k].a].last_frame)
      handed[v[k].a] = 1;
  /* Cost -weighted shared detections: any candidate beats none. */
  if (rc == 0)
    rc = npt_assign_solve(ta->n, tb->n, edges, (size_t)n_edges, 0.0, a2b, NULL, NULL);
  for (size_t k = 0; k < ta->n && rc == 0; k++)
    if (a2b[k] >= 0) {
      links[(*n_links)++] = (npt_stitch_link){k, (size_t)a2b[k], NPT_STITCH_SHARED};
      used_a[k] = used_b[a2b[k]] = 1;
    }
  /* Fragments.  B's next overlap starts O frames before B's last frame with rows (or earlier). */
  int64_t next_ov = rb->n > 0 ? rb->frame[rb->n - 1] + 1 - (e - b) : 0;
  int64_t *best_of = a2b; /* reused: per tracklet of B, its vote of most weight (first on ties) */
  if (rc == 0 && tb->n > ta->n) {
    int64_t *p = realloc(a2b, sizeof *a2b * tb->n);
    if (!p)
      rc = npt_error_set(NPT_ENOMEM, "stitching: out of memory");
    else
      a2b = best_of = p;
  }
  for (size_t q = 0; q < tb->n && rc == 0; q++)
    best_of[q] = -1;
  for (int64_t k = 0; k < ne && rc == 0; k++)
    if (best_of[v[k].b] < 0 || v[k].weight > v[best_of[v[k].b]].weight)
      best_of[v[k].b] = k;
  for (size_t q = 0; q < tb->n && rc == 0; q++) {
    const npt_tracklet *t = &tb->t[q];
    if (used_b[q] || t->own_frame < 0)
      continue;
    const vote *best = best_of[q] < 0 ? NULL : &v[best_of[q]];
    if (!best || !used_a[best->a] || !enough(best, nb) ||
        !(best->weight > NPT_STITCH_MOST * wb[q]) || ta->t[best->a].ended)
      continue;
    int clash = 0;
    for (size_t l = 0; l < *n_links && !clash; l++)
      if (links[l].a == (size_t)best->a) {
        /* From the later of the two's first detections of A's particle on, and in every frame
         * where both write rows. */
        const npt_tracklet *o = &tb->t[links[l].b];
        int64_t from = best->first;
        for (int64_t k = 0; k < ne; k++)
          if (v[k].a == best->a && v[k].b == (int64_t)links[l].b && v[k].first > from)
            from = v[k].first;
        int64_t written = o->own_frame > t->own_frame ? o->own_frame : t->own_frame;
        if (written < from)
          from = written;
        clash = (o->last_frame >= next_ov && t->last_frame >= next_ov) ||
                coexist(rb, o->id, t->id, from);
      }
    if (!clash) {
      links[(*n_links)++] = (npt_stitch_link){(size_t)best->a, q, NPT_STITCH_SHARED};
      used_b[q] = 1;
    }
  }
  free(wa), free(wb), free(nb), free(v), free(edges), free(a2b);
  return rc;
}

static double cosine(const float *p, const float *q, int d, int *ok) {
  double s = 0, np = 0, nq = 0;
  for (int c = 0; c < d; c++)
    s += (double)p[c] * q[c], np += (double)p[c] * p[c], nq += (double)q[c] * q[c];
  *ok = np > 0 && nq > 0;
  return *ok ? s / sqrt(np * nq) : 0.0;
}

/* Step 2: motion (+ appearance) for tracklets of A ending shortly before tracklets of B that
 * begin after the overlap. */
static int match_motion(const npt_track_settings *ts, const npt_tracklets *ta,
                        const npt_tracklets *tb, int64_t ov_end, npt_stitch_link *links,
                        size_t *n_links, const char *used_a, const char *used_b) {
  npt_kalman_settings ks = {ts->std_weight_position, ts->std_weight_velocity};
  int pos = ts->gate == NPT_TRACK_GATE_POSITION;
  double chi2 = pos ? NPT_KALMAN_CHI2_2DOF : NPT_KALMAN_CHI2_4DOF;
  size_t cap = 64, ne = 0;
  npt_assign_edge *edges = malloc(sizeof *edges * cap);
  int64_t *a2b = malloc(sizeof *a2b * (ta->n ? ta->n : 1));
  if (!edges || !a2b) {
    free(edges), free(a2b);
    return npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  }
  for (size_t i = 0; i < ta->n; i++) {
    const npt_tracklet *a = &ta->t[i];
    if (used_a[i] || a->last_frame < ov_end - ts->lost_frames - 1)
      continue;
    for (size_t j = 0; j < tb->n; j++) {
      const npt_tracklet *b = &tb->t[j];
      int64_t gap = b->first_frame - a->last_frame;
      if (used_b[j] || b->first_frame < ov_end || gap < 1 || gap > (int64_t)ts->lost_frames + 1)
        continue;
      npt_kalman_state st = a->tail;
      for (int64_t f = 0; f < gap; f++)
        npt_kalman_predict(&ks, &st);
      npt_kalman_gate g;
      if (npt_kalman_gate_init(&ks, &st, pos, &g) < 0)
        continue;
      double m[4] = {b->head[0] + 0.5 * b->head[2], b->head[1] + 0.5 * b->head[3], b->head[2],
                     b->head[3]};
      double d2 = npt_kalman_gate_distance(&g, m);
      if (!(d2 <= chi2))
        continue;
      int ok = 0;
      double cs =
          ta->embed_dim > 0 ? cosine(a->tail_embed, b->head_embed, ta->embed_dim, &ok) : 0.0;
      double cost =
          ok ? ts->embed_weight * (1.0 - cs) + (1.0 - ts->embed_weight) * d2 / chi2 : d2 / chi2;
      if (ne == cap) {
        npt_assign_edge *e2 = realloc(edges, sizeof *edges * cap * 2);
        if (!e2) {
          free(edges), free(a2b);
          return npt_error_set(NPT_ENOMEM, "stitching: out of memory");
        }
        edges = e2, cap *= 2;
      }
      edges[ne++] = (npt_assign_edge){(int64_t)i, (int64_t)j, cost};
    }
  }
  int rc = npt_assign_solve(ta->n, tb->n, edges, ne, ts->match_cost, a2b, NULL, NULL);
  for (size_t k = 0; k < ta->n && rc == 0; k++)
    if (a2b[k] >= 0)
      links[(*n_links)++] = (npt_stitch_link){k, (size_t)a2b[k], NPT_STITCH_MOTION};
  free(edges), free(a2b);
  return rc;
}

int npt_stitch_boundary(const npt_track_settings *ts, const npt_tracklets *ta,
                        const npt_stitch_rows *ra, const npt_tracklets *tb,
                        const npt_stitch_rows *rb, int64_t ov_begin, int64_t ov_end,
                        npt_stitch_link **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  size_t cap = tb->n + 1; /* each tracklet of B is in at most one link */
  npt_stitch_link *links = malloc(sizeof *links * cap);
  char *used_a = calloc(ta->n + 1, 1), *used_b = calloc(tb->n + 1, 1);
  char *handed = calloc(ta->n + 1, 1);
  int rc = links && used_a && used_b && handed
               ? 0
               : npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  size_t n = 0;
  if (rc == 0)
    rc = match_shared(ta, ra, tb, rb, ov_begin, ov_end, links, &n, used_a, used_b, handed);
  /* A tracklet of A whose shared-detection partners all end before the hand-over (none writes a
   * row) does not hand its identity over: B's tracker lost the particle at the end of the
   * overlap, and a tracklet of B that takes it up after the overlap is matched by motion --
   * unless B's tracker held the particle at the tracklet's last detection (handed). */
  if (rc == 0) {
    memcpy(used_a, handed, ta->n + 1);
    for (size_t k = 0; k < n; k++)
      if (tb->t[links[k].b].own_frame >= 0)
        used_a[links[k].a] = 1;
    /* An identity that A's lineage events ended goes on in no tracklet of B (stitch.h). */
    for (size_t k = 0; k < ta->n; k++)
      used_a[k] |= (char)ta->t[k].ended;
    rc = match_motion(ts, ta, tb, ov_end, links, &n, used_a, used_b);
  }
  free(used_a), free(used_b), free(handed);
  if (rc < 0) {
    free(links);
    return rc;
  }
  *out = links;
  *n_out = n;
  return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Union-find and numbering */

int npt_stitch_uf_init(npt_stitch_uf *u, size_t n) {
  u->n = n;
  u->parent = malloc(sizeof *u->parent * (n ? n : 1));
  NPT_ALLOC_CHECK(u->parent);
  for (size_t i = 0; i < n; i++)
    u->parent[i] = (int64_t)i;
  return 0;
}

void npt_stitch_uf_free(npt_stitch_uf *u) {
  free(u->parent);
  u->parent = NULL;
  u->n = 0;
}

int64_t npt_stitch_uf_find(npt_stitch_uf *u, int64_t i) {
  while (u->parent[i] != i) {
    u->parent[i] = u->parent[u->parent[i]]; /* path halving */
    i = u->parent[i];
  }
  return i;
}

void npt_stitch_uf_union(npt_stitch_uf *u, int64_t i, int64_t j) {
  i = npt_stitch_uf_find(u, i);
  j = npt_stitch_uf_find(u, j);
  if (i < j)
    u->parent[j] = i;
  else if (j < i)
    u->parent[i] = j;
}

typedef struct {
  npt_stitch_key k;
  int64_t node;
} keyed;

static int key_less(const npt_stitch_key *a, int64_t na, const npt_stitch_key *b, int64_t nb) {
  if (a->frame != b->frame)
    return a->frame < b->frame;
  if (a->y != b->y)
    return a->y < b->y;
  if (a->x != b->x)
    return a->x < b->x;
  return na < nb;
}

static int cmp_keyed(const void *x, const void *y) {
  const keyed *p = x, *q = y;
  return key_less(&p->k, p->node, &q->k, q->node) ? -1 : key_less(&q->k, q->node, &p->k, p->node);
}

int64_t npt_stitch_number(npt_stitch_uf *u, const npt_stitch_key *keys, int64_t *id) {
  size_t n = u->n;
  int64_t *best = malloc(sizeof *best * (n ? n : 1)); /* per root: its set's earliest node */
  keyed *list = malloc(sizeof *list * (n ? n : 1));
  if (!best || !list) {
    free(best), free(list);
    return npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  }
  for (size_t i = 0; i < n; i++)
    best[i] = -1;
  for (size_t i = 0; i < n; i++) {
    if (keys[i].frame < 0)
      continue;
    int64_t r = npt_stitch_uf_find(u, (int64_t)i), b = best[r];
    if (b < 0 || key_less(&keys[i], (int64_t)i, &keys[b], b))
      best[r] = (int64_t)i;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (best[i] >= 0)
      list[m++] = (keyed){keys[best[i]], (int64_t)i}; /* node: the root */
  qsort(list, m, sizeof *list, cmp_keyed);
  for (size_t i = 0; i < n; i++)
    best[i] = -1;
  for (size_t k = 0; k < m; k++)
    best[list[k].node] = (int64_t)k + 1;
  for (size_t i = 0; i < n; i++)
    id[i] = best[npt_stitch_uf_find(u, (int64_t)i)];
  free(best), free(list);
  return (int64_t)m;
}
