/* Writing a video's lineage events (npt_archive_write_events): the `events` table beside its
 * tracks, one row per event with CSR lists of parent and child track ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/search.h"
#include "io/archive_internal.h"
#include "io/h5util.h"

#define I64 H5T_STD_I64LE, H5T_NATIVE_INT64
#define I32 H5T_STD_I32LE, H5T_NATIVE_INT32

/* The video's track ids (increasing, as the tracks table stores them); *ids malloc'd. */
static int read_track_ids(npt_archive *a, hid_t vg, const char *vpath, int64_t **ids, int64_t *n) {
  hid_t d =
      H5Lexists(vg, "tracks", H5P_DEFAULT) > 0 ? H5Dopen2(vg, "tracks/track_id", H5P_DEFAULT) : -1;
  hid_t s = d >= 0 ? H5Dget_space(d) : -1;
  hssize_t np = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  *ids = np >= 0 ? malloc(sizeof **ids * (size_t)(np ? np : 1)) : NULL;
  int ok =
      *ids && (np == 0 || H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, *ids) >= 0);
  if (s >= 0)
    H5Sclose(s);
  if (d >= 0)
    H5Dclose(d);
  if (!ok) {
    free(*ids);
    *ids = NULL;
    char what[512];
    snprintf(what, sizeof what, "cannot read %s/tracks/track_id", vpath);
    return npt_h5_fail(a->path, what);
  }
  *n = (int64_t)np;
  return 0;
}

static int has_id(const int64_t *ids, int64_t n, int64_t id) {
  return npt_find_i64(ids, n, id) >= 0;
}

/* The first thing wrong with the events, or NULL; *bad_event receives its index. */
static const char *check_events(const npt_archive_events *e, int64_t n_frames, const int64_t *ids,
                                int64_t n_ids, int64_t *bad_event) {
  if (e->n > 0 && (e->parent_offsets[0] != 0 || e->child_offsets[0] != 0)) {
    *bad_event = 0;
    return "offsets do not start at 0";
  }
  for (int64_t i = 0; i < e->n; i++) {
    *bad_event = i;
    if (e->frame[i] < 0 || e->frame[i] >= n_frames)
      return "frame outside the video";
    if (i > 0 && e->frame[i] < e->frame[i - 1])
      return "events not in frame order";
    if (e->kind[i] != NPT_ARCHIVE_EVENT_MERGE && e->kind[i] != NPT_ARCHIVE_EVENT_SPLIT)
      return "kind neither 1 (merge) nor 2 (split)";
    if (e->parent_offsets[i + 1] <= e->parent_offsets[i])
      return "no parent";
    if (e->child_offsets[i + 1] <= e->child_offsets[i])
      return "no child";
    for (int64_t k = e->parent_offsets[i]; k < e->parent_offsets[i + 1]; k++)
      if (!has_id(ids, n_ids, e->parent_ids[k]))
        return "a parent id that is not in the tracks table";
    for (int64_t k = e->child_offsets[i]; k < e->child_offsets[i + 1]; k++)
      if (!has_id(ids, n_ids, e->child_ids[k]))
        return "a child id that is not in the tracks table";
  }
  return NULL;
}

int npt_archive_write_events(npt_archive *a, const char *name, const npt_archive_events *e) {
  if (a->failed)
    return npt_error_set(NPT_EINVAL, "%s: an earlier error stopped this archive", a->path);
  char vpath[256], where[300];
  snprintf(vpath, sizeof vpath, "/videos/%s", name);
  snprintf(where, sizeof where, "%s/events", vpath);
  hid_t vg = name && *name && H5Lexists(a->videos, name, H5P_DEFAULT) > 0
                 ? H5Gopen2(a->videos, name, H5P_DEFAULT)
                 : -1;
  if (vg < 0)
    return npt_error_set(NPT_EINVAL, "%s: events for video '%s', which was not written", a->path,
                         name ? name : "");
  if (H5Lexists(vg, "events", H5P_DEFAULT) > 0) {
    H5Gclose(vg);
    return npt_error_set(NPT_EINVAL, "%s: events of video %s written twice", a->path, name);
  }
  a->failed = 1; /* until the table is whole */
  int64_t n_frames = 0, *ids = NULL, n_ids = 0, bad = 0;
  int rc = npt_h5_read_i64_attr(vg, "n_frames", &n_frames) < 0
               ? npt_h5_fail(a->path, vpath)
               : read_track_ids(a, vg, vpath, &ids, &n_ids);
  const char *why = rc == 0 ? check_events(e, n_frames, ids, n_ids, &bad) : NULL;
  if (why)
    rc = npt_error_set(NPT_EINVAL, "%s: video %s: event %lld (frame %lld): %s", a->path, name,
                       (long long)bad, (long long)e->frame[bad], why);
  free(ids);
  hid_t g = rc == 0 ? npt__arch_group(vg, "events") : -1;
  if (rc == 0 && g < 0)
    rc = npt_h5_fail(a->path, where);
  hsize_t n = (hsize_t)e->n;
  hsize_t np = (hsize_t)(e->n ? e->parent_offsets[e->n] : 0);
  hsize_t nc = (hsize_t)(e->n ? e->child_offsets[e->n] : 0);
  static const int64_t zero = 0;
  npt__col_spec c[] = {
      {"frame", I64, 1, n, 0, e->frame, "frame",
       "frame of the event, from 0: the children's first frame (the parents' last is before it)",
       1},
      {"kind", I32, 1, n, 0, e->kind, "1", "1 merge (sintering), 2 split (regeneration)", 0},
      {"parent_offsets", I64, 1, n + 1, 0, e->n ? e->parent_offsets : &zero, "row",
       "CSR index: event e's parents are parent_ids[parent_offsets[e]:parent_offsets[e+1]]", 0},
      {"parent_ids", I64, 1, np, 0, e->parent_ids, "1",
       "track ids (tracks/track_id) of the tracks that end in each event", 0},
      {"child_offsets", I64, 1, n + 1, 0, e->n ? e->child_offsets : &zero, "row",
       "CSR index: event e's children are child_ids[child_offsets[e]:child_offsets[e+1]]", 0},
      {"child_ids", I64, 1, nc, 0, e->child_ids, "1",
       "track ids (tracks/track_id) of the tracks that begin in each event, increasing", 0},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0] && rc == 0; i++)
    rc = npt__arch_write_col(a, g, where, &c[i], NULL);
  if (rc == 0 && (npt_h5_write_i64_attr(g, "n_events", e->n) < 0 ||
                  npt_h5_write_fixed_str_attr(g, "kind_names", "1 merge, 2 split") < 0 ||
                  npt_h5_write_i64_attr(g, "dropped_ids", e->dropped_ids) < 0 ||
                  npt_h5_write_i64_attr(g, "dropped_events", e->dropped_events) < 0 ||
                  npt_h5_write_i64_attr(vg, "n_events", e->n) < 0))
    rc = npt_h5_fail(a->path, where);
  if (g >= 0)
    H5Gclose(g);
  H5Gclose(vg);
  if (rc == 0 && H5Fflush(a->file, H5F_SCOPE_LOCAL) < 0)
    rc = npt_h5_fail(a->path, "cannot flush");
  if (rc == 0)
    a->failed = 0;
  return rc;
}
