/* The root's part of `nptrack run` (run_internal.h): stitching the chunks' tracklets into
 * tracks of whole videos, then the archive's tables from the part files with global ids.
 *
 * Two passes over the parts, each in global chunk order, each holding one or two chunks at a
 * time: pass 1 reads each part's tracklets and rows, matches them with the previous chunk's
 * (track/stitch.h) and numbers the joined tracks; pass 2 reads each part again and keeps the rows
 * of the frames the chunk owns (chunk_plan.h), with global ids.  The rows therefore come in frame
 * order whichever rank made which part, and the tables are the same for any rank count.
 *
 * The derived tables (tracks, the per-track row index, the per-frame summary) need sums over all
 * of a video's rows, added in one fixed order for the values not to depend on the ranks, so the
 * root computes and writes them, through the archive's streaming writer (npt_archive_stream_*):
 * pass 1 counts each global track's rows, pass 2 hands the rows over chunk by chunk, so the root
 * holds one chunk's rows at a time, plus per-frame and per-track sums.  The detections columns
 * themselves, the bulk of the archive, are left to the ranks that hold the chunks (run_rows.c):
 * pass 2 records where each chunk's rows go (an exclusive prefix of the owned row counts over the
 * video's chunks, in chunk order) and keeps each chunk's id map for the rank that writes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_internal.h"
#include "common/error.h"
#include "common/search.h"
#include "track/stitch.h"

/* One chunk's stitching result: its tracklets' local ids and global ids (and, once pass 2 ran,
 * where its rows go). */
typedef npt_run_chunk_rows id_map;

void npt_run_chunk_rows_free(npt_run_chunk_rows *cr, int n) {
  for (int i = 0; cr && i < n; i++) {
    free(cr[i].local), free(cr[i].global);
    cr[i].local = cr[i].global = NULL;
  }
}

int64_t npt_run_map_id(const npt_run_chunk_rows *m, int64_t local) {
  int64_t i = local < 0 ? -1 : npt_find_i64(m->local, m->n_ids, local);
  return i < 0 ? -1 : m->global[i];
}

static int64_t map_id(const id_map *m, int64_t local) {
  return npt_run_map_id(m, local);
}

typedef struct link_list {
  int64_t n, cap;
  int64_t *a, *b;
} link_list;

static int link_add(link_list *l, int64_t a, int64_t b) {
  if (l->n == l->cap) {
    int64_t c = l->cap ? 2 * l->cap : 256;
    int64_t *na = realloc(l->a, sizeof *na * (size_t)c);
    if (na)
      l->a = na;
    int64_t *nb = na ? realloc(l->b, sizeof *nb * (size_t)c) : NULL;
    if (!na || !nb)
      return npt_error_set(NPT_ENOMEM, "stitching: out of memory");
    l->b = nb;
    l->cap = c;
  }
  l->a[l->n] = a, l->b[l->n] = b, l->n++;
  return 0;
}

int npt_run_read_part(const npt_run *r, int64_t c, npt_part_rows *rows, npt_tracklets *t,
                      npt_part_events *e) {
  char *path = npt_part_path(r->parts_dir, c);
  NPT_ALLOC_CHECK(path);
  npt_part_meta m;
  int rc = npt_part_read(path, &m, rows, t, e);
  const npt_chunk *ch = &r->plan.chunk[c];
  if (rc == 0 &&
      (m.chunk != c || m.begin != ch->begin || m.end != ch->end ||
       strcmp(m.config_sha256, r->config_sha256) || strcmp(m.model_sha256, r->model_sha256))) {
    npt_part_rows_free(rows);
    npt_tracklets_free(t);
    npt_part_events_free(e);
    rc =
        npt_error_set(NPT_EFORMAT, "%s: not the part of this run's chunk %lld", path, (long long)c);
  }
  free(path);
  return rc;
}

/* Pass 1 for video v: links between neighbouring chunks, then global ids. */
/* What pass 2 needs to announce a video to the streaming writer. */
typedef struct video_counts {
  int64_t n_ids;       /* global tracks, ids 1..n_ids */
  int64_t *track_rows; /* [n_ids]: rows of each */
  int64_t n_rows;      /* rows written (owned), in a track or not */
  int embed_dim;       /* of the parts' rows */
} video_counts;

static int stitch_video(const npt_run *r, int v, id_map *maps, video_counts *vc,
                        int64_t *links_shared, int64_t *links_motion) {
  int c0 = r->plan.video_chunk[v], c1 = r->plan.video_chunk[v + 1];
  npt_part_rows prev_rows = {0}, rows = {0};
  npt_tracklets prev_t = {0}, t = {0};
  link_list links = {0};
  npt_stitch_key *keys = NULL;
  int64_t *own = NULL; /* per node: its rows that its chunk writes */
  int64_t n_nodes = 0, prev_base = 0;
  int rc = 0;
  for (int c = c0; c < c1 && rc == 0; c++) {
    npt_part_events ev;
    rc = npt_run_read_part(r, c, &rows, &t, &ev);
    if (rc < 0)
      break;
    /* The parents of its events (of the frames it writes) end their identities there. */
    for (int64_t i = 0; i < ev.n; i++)
      npt_tracklets_mark_ended(&t, ev.ids + ev.parent_off[i], (size_t)ev.n_parents[i]);
    npt_part_events_free(&ev);
    id_map *m = &maps[c - c0];
    m->n_ids = (int64_t)t.n;
    m->local = malloc(sizeof *m->local * (t.n + 1));
    m->global = malloc(sizeof *m->global * (t.n + 1));
    npt_stitch_key *k2 = realloc(keys, sizeof *keys * (size_t)(n_nodes + (int64_t)t.n + 1));
    if (k2)
      keys = k2;
    int64_t *o2 = realloc(own, sizeof *own * (size_t)(n_nodes + (int64_t)t.n + 1));
    if (o2)
      own = o2;
    if (!m->local || !m->global || !k2 || !o2)
      rc = npt_error_set(NPT_ENOMEM, "stitching: out of memory");
    for (size_t i = 0; i < t.n && rc == 0; i++) {
      m->local[i] = t.t[i].id;
      keys[n_nodes + (int64_t)i] = (npt_stitch_key){t.t[i].own_frame, t.t[i].own_y, t.t[i].own_x};
      own[n_nodes + (int64_t)i] = 0;
    }
    const npt_chunk *ch = &r->plan.chunk[c];
    for (int64_t i = 0; i < rows.n && rc == 0; i++) {
      if (rows.frame[i] < ch->own_begin || rows.frame[i] >= ch->own_end)
        continue;
      vc->n_rows++;
      int64_t k = rows.id[i] < 0 ? -1 : npt_tracklets_find(&t, rows.id[i]);
      if (k >= 0)
        own[n_nodes + k]++;
      else if (rows.id[i] >= 0)
        rc = npt_error_set(NPT_EFORMAT, "chunk %d: track %lld has no summary", c,
                           (long long)rows.id[i]);
    }
    if (c == c0)
      vc->embed_dim = rows.embed_dim;
    if (rc == 0 && c > c0) {
      npt_stitch_link *l = NULL;
      size_t nl = 0;
      npt_stitch_rows ra = npt_part_rows_view(&prev_rows), rb = npt_part_rows_view(&rows);
      rc = npt_stitch_boundary(&r->ts, &prev_t, &ra, &t, &rb, r->plan.chunk[c].begin,
                               r->plan.chunk[c - 1].end, &l, &nl);
      for (size_t i = 0; i < nl && rc == 0; i++) {
        rc = link_add(&links, prev_base + (int64_t)l[i].a, n_nodes + (int64_t)l[i].b);
        *links_shared += l[i].kind == NPT_STITCH_SHARED;
        *links_motion += l[i].kind == NPT_STITCH_MOTION;
      }
      free(l);
    }
    prev_base = n_nodes;
    n_nodes += (int64_t)t.n;
    npt_part_rows_free(&prev_rows);
    npt_tracklets_free(&prev_t);
    prev_rows = rows, prev_t = t;
    memset(&rows, 0, sizeof rows);
    memset(&t, 0, sizeof t);
  }
  npt_part_rows_free(&prev_rows);
  npt_tracklets_free(&prev_t);
  npt_stitch_uf uf = {0};
  int64_t *ids = NULL;
  if (rc == 0)
    rc = npt_stitch_uf_init(&uf, (size_t)n_nodes);
  if (rc == 0 && !(ids = malloc(sizeof *ids * (size_t)(n_nodes + 1))))
    rc = npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  for (int64_t i = 0; i < links.n && rc == 0; i++)
    npt_stitch_uf_union(&uf, links.a[i], links.b[i]);
  if (rc == 0) {
    int64_t n = npt_stitch_number(&uf, keys, ids);
    if (n < 0)
      rc = (int)n;
    else
      vc->n_ids = n;
  }
  if (rc == 0 && !(vc->track_rows = calloc((size_t)vc->n_ids + 1, sizeof *vc->track_rows)))
    rc = npt_error_set(NPT_ENOMEM, "stitching: out of memory");
  for (int64_t i = 0; i < n_nodes && rc == 0; i++)
    if (ids[i] > 0)
      vc->track_rows[ids[i] - 1] += own[i];
  for (int c = c0, base = 0; c < c1 && rc == 0; c++) {
    id_map *m = &maps[c - c0];
    for (int64_t i = 0; i < m->n_ids; i++)
      m->global[i] = ids[base + i];
    base += (int)m->n_ids;
  }
  npt_stitch_uf_free(&uf);
  free(ids);
  free(keys);
  free(own);
  free(links.a), free(links.b);
  return rc;
}

/* A video's events with global ids, growing (the archive's layout, npt_archive_events). */
typedef struct event_list {
  int64_t n, cap, np, pcap, nc, ccap;
  int64_t *frame;
  int32_t *kind;
  int64_t *poff, *coff, *pid, *cid; /* poff, coff: [cap + 1] */
  int64_t dropped_ids, dropped_events;
} event_list;

static void event_list_free(event_list *l) {
  free(l->frame), free(l->kind), free(l->poff), free(l->coff), free(l->pid), free(l->cid);
}

/* Room for `need` values in *p (need + 1 for offsets).  Returns 0 or NPT_ENOMEM. */
static int grow(void *p, size_t size, int64_t *cap, int64_t need) {
  if (need <= *cap)
    return 0;
  int64_t c = *cap ? *cap : 64;
  while (c < need)
    c *= 2;
  void *q = realloc(*(void **)p, size * (size_t)(c + 1));
  if (!q)
    return npt_error_set(NPT_ENOMEM, "events: out of memory");
  *(void **)p = q, *cap = c;
  return 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Appends chunk events e with their ids mapped through m.  An id whose tracklet has no global id
 * (its joined track writes no row: it lived only in the chunk's leading overlap and stitching
 * joined it to nothing) is left out and counted; an event left without a parent or a child is
 * left out and counted.  Children are sorted by global id; parents keep the tracker's order (a
 * merge's matched track first). */
static int events_add(event_list *l, const npt_part_events *e, const id_map *m) {
  for (int64_t i = 0; i < e->n; i++) {
    int64_t c0 = l->cap, c1 = l->cap, c2 = l->cap, c3 = l->cap;
    NPT_TRY(grow(&l->frame, sizeof *l->frame, &c0, l->n + 1));
    NPT_TRY(grow(&l->kind, sizeof *l->kind, &c1, l->n + 1));
    NPT_TRY(grow(&l->poff, sizeof *l->poff, &c2, l->n + 1));
    NPT_TRY(grow(&l->coff, sizeof *l->coff, &c3, l->n + 1));
    l->cap = c0;
    NPT_TRY(grow(&l->pid, sizeof *l->pid, &l->pcap, l->np + e->n_parents[i]));
    NPT_TRY(grow(&l->cid, sizeof *l->cid, &l->ccap, l->nc + e->n_children[i]));
    int64_t np = 0, nc = 0;
    for (int64_t k = 0; k < e->n_parents[i]; k++) {
      int64_t g = map_id(m, e->ids[e->parent_off[i] + k]);
      if (g > 0)
        l->pid[l->np + np++] = g;
      else
        l->dropped_ids++;
    }
    for (int64_t k = 0; k < e->n_children[i]; k++) {
      int64_t g = map_id(m, e->ids[e->child_off[i] + k]);
      if (g > 0)
        l->cid[l->nc + nc++] = g;
      else
        l->dropped_ids++;
    }
    if (np == 0 || nc == 0) {
      l->dropped_events++;
      continue;
    }
    qsort(l->cid + l->nc, (size_t)nc, sizeof *l->cid, cmp_i64);
    l->poff[l->n] = l->np, l->coff[l->n] = l->nc;
    l->frame[l->n] = e->frame[i], l->kind[l->n] = e->kind[i];
    l->np += np, l->nc += nc, l->n++;
    l->poff[l->n] = l->np, l->coff[l->n] = l->nc;
  }
  return 0;
}

int npt_run_owned_rows(const npt_run *r, int64_t c, const npt_part_rows *rows,
                       const npt_run_chunk_rows *m, npt_part_rows *out) {
  const npt_chunk *ch = &r->plan.chunk[c];
  if (out->embed_dim && out->embed_dim != rows->embed_dim)
    return npt_error_set(NPT_EFORMAT, "chunk %lld: embeddings of %d values, not %d", (long long)c,
                         rows->embed_dim, out->embed_dim);
  NPT_TRY(npt_part_rows_reserve(out, rows->n));
  const int d = out->embed_dim;
  for (int64_t i = 0; i < rows->n; i++) {
    if (rows->frame[i] < ch->own_begin || rows->frame[i] >= ch->own_end)
      continue;
    int64_t j = out->n++;
    out->frame[j] = rows->frame[i];
    out->id[j] = npt_run_map_id(m, rows->id[i]);
    out->x[j] = rows->x[i], out->y[j] = rows->y[i], out->w[j] = rows->w[i];
    out->h[j] = rows->h[i], out->score[j] = rows->score[i], out->cls[j] = rows->cls[i];
    if (d)
      memcpy(out->embed + j * d, rows->embed + i * d, sizeof(float) * (size_t)d);
  }
  return 0;
}

/* Pass 2 for video v: the owned rows of each chunk, with global ids, streamed into the archive's
 * derived tables (the columns are left to the ranks), then the video's lineage events, with
 * global ids. */
static int write_video(const npt_run *r, int v, id_map *maps, const video_counts *vc,
                       npt_archive *a, int64_t *dets, int64_t *n_events) {
  int c0 = r->plan.video_chunk[v], c1 = r->plan.video_chunk[v + 1];
  const npt_frames_info *in = &r->info[v];
  npt_archive_video av = {r->names[v],
                          r->videos[v],
                          in->n_frames,
                          in->height,
                          in->width,
                          in->frame_rate_hz,
                          in->pixel_size_nm,
                          in->pixel_size_nm > 0 ? NPT_PIXEL_SOURCE_FILE : NPT_PIXEL_SOURCE_UNKNOWN,
                          r->o.replay_frames > 0 ? in->stored_frames : 0};
  int64_t *ids = malloc(sizeof *ids * (size_t)(vc->n_ids + 1));
  NPT_ALLOC_CHECK(ids);
  for (int64_t k = 0; k < vc->n_ids; k++)
    ids[k] = k + 1;
  npt_archive_stream *st = NULL;
  int rc = npt_archive_stream_begin(a, &av, vc->n_rows, vc->embed_dim, vc->n_ids, ids,
                                    vc->track_rows, &st);
  if (rc == 0)
    npt_archive_stream_defer_rows(st); /* the ranks write the columns (run_rows.c) */
  const int64_t dets0 = *dets;
  npt_part_rows out = {.embed_dim = vc->embed_dim}, rows = {0};
  npt_tracklets t = {0};
  npt_part_events ev = {0};
  event_list el = {0};
  for (int c = c0; c < c1 && rc == 0; c++) {
    rc = npt_run_read_part(r, c, &rows, &t, &ev);
    if (rc == 0)
      rc = events_add(&el, &ev, &maps[c - c0]);
    if (rc == 0 && rows.embed_dim != vc->embed_dim)
      rc = npt_error_set(NPT_EFORMAT, "chunk %d: embeddings of %d values, not %d", c,
                         rows.embed_dim, vc->embed_dim);
    out.n = 0;
    if (rc == 0)
      rc = npt_run_owned_rows(r, c, &rows, &maps[c - c0], &out);
    maps[c - c0].offset = *dets - dets0;
    maps[c - c0].n = out.n;
    npt_archive_rows ar = npt_run_archive_rows(&out);
    if (rc == 0)
      rc = npt_archive_stream_write(st, &ar);
    *dets += rc == 0 ? out.n : 0;
    npt_part_rows_free(&rows);
    npt_tracklets_free(&t);
    npt_part_events_free(&ev);
  }
  if (rc == 0)
    rc = npt_archive_stream_end(st);
  npt_archive_stream_free(st);
  static const int64_t zero = 0;
  npt_archive_events ae = {el.n,
                           el.frame,
                           el.kind,
                           el.n ? el.poff : &zero,
                           el.pid,
                           el.n ? el.coff : &zero,
                           el.cid,
                           el.dropped_ids,
                           el.dropped_events};
  if (rc == 0)
    rc = npt_archive_write_events(a, r->names[v], &ae);
  *n_events += rc == 0 ? el.n : 0;
  event_list_free(&el);
  npt_part_rows_free(&out);
  free(ids);
  return rc;
}

int npt_run_assemble(const npt_run *r, npt_archive *a, npt_run_chunk_rows *cr, int64_t *tracks,
                     int64_t *dets, int64_t *events, int64_t *links_shared, int64_t *links_motion,
                     double *stitch_s, double *write_s) {
  *tracks = *dets = *events = *links_shared = *links_motion = 0;
  *stitch_s = *write_s = 0;
  int rc = 0;
  for (int v = 0; v < r->n_videos && rc == 0; v++) {
    id_map *maps = cr + r->plan.video_chunk[v];
    double t0 = npt_cli_now_s();
    video_counts vc = {0};
    rc = stitch_video(r, v, maps, &vc, links_shared, links_motion);
    if (rc == 0)
      rc = npt_run_fault(0, "stitch");
    double t1 = npt_cli_now_s();
    if (rc == 0)
      rc = write_video(r, v, maps, &vc, a, dets, events);
    if (rc == 0)
      rc = npt_run_fault(0, "write");
    *stitch_s += t1 - t0;
    *write_s += npt_cli_now_s() - t1;
    *tracks += vc.n_ids;
    free(vc.track_rows);
  }
  return rc;
}

npt_archive_rows npt_run_archive_rows(const npt_part_rows *p) {
  return (npt_archive_rows){p->n,
                            p->frame,
                            p->id,
                            p->x,
                            p->y,
                            p->w,
                            p->h,
                            p->score,
                            p->cls,
                            p->embed_dim,
                            p->embed_dim ? p->embed : NULL};
}
