/* Lists of merge/split events and reading them from events.csv.  A file with no lines at all
 * (or only comments) is an empty list; otherwise the first line must be the header. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

static const char *const header_fields[4] = {"frame", "type", "parents", "children"};

int npt_events_init(npt_events **out) {
  *out = calloc(1, sizeof **out);
  NPT_ALLOC_CHECK(*out);
  return 0;
}

void npt_events_free(npt_events *ev) {
  if (!ev)
    return;
  free(ev->ev);
  free(ev->ids);
  free(ev);
}

size_t npt_events_count(const npt_events *ev) {
  return ev->n;
}

static int push_ids(npt_events *ev, const int64_t *ids, size_t n) {
  if (ev->n_ids + n > ev->ids_cap) {
    size_t cap = ev->ids_cap ? ev->ids_cap : 64;
    while (cap < ev->n_ids + n)
      cap *= 2;
    int64_t *grown = realloc(ev->ids, cap * sizeof *grown);
    NPT_ALLOC_CHECK(grown);
    ev->ids = grown;
    ev->ids_cap = cap;
  }
  memcpy(ev->ids + ev->n_ids, ids, n * sizeof *ids);
  ev->n_ids += n;
  return 0;
}

int npt_events_add(npt_events *ev, int64_t frame, npt_event_type type, const int64_t *parents,
                   size_t n_parents, const int64_t *children, size_t n_children) {
  if (n_parents == 0 || n_children == 0)
    return npt_error_set(NPT_EINVAL, "event at frame %lld has no %s", (long long)frame,
                         n_parents == 0 ? "parent" : "child");
  if (ev->n == ev->cap) {
    size_t cap = ev->cap ? 2 * ev->cap : 64;
    npt__event *grown = realloc(ev->ev, cap * sizeof *grown);
    NPT_ALLOC_CHECK(grown);
    ev->ev = grown;
    ev->cap = cap;
  }
  npt__event e = {frame, type, ev->n_ids, n_parents, ev->n_ids + n_parents, n_children};
  NPT_TRY(push_ids(ev, parents, n_parents));
  NPT_TRY(push_ids(ev, children, n_children));
  ev->ev[ev->n++] = e;
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

/* Splits a line at commas into exactly 4 trimmed fields; returns the number found. */
static int split4(char *s, char **f) {
  int n = 0;
  for (;;) {
    char *comma = strchr(s, ',');
    if (n < 4)
      f[n] = s;
    n++;
    if (!comma)
      break;
    *comma = '\0';
    s = comma + 1;
  }
  for (int k = 0; k < n && k < 4; k++)
    f[k] = trim(f[k]);
  return n;
}

/* Parses space-separated integer ids into *ids (grown as needed). */
static int parse_ids(const char *path, size_t line, const char *what, char *s, int64_t **ids,
                     size_t *cap, size_t *n) {
  const char *field = s;
  *n = 0;
  for (;;) {
    while (isspace((unsigned char)*s))
      s++;
    if (*s == '\0')
      break;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || (*end && !isspace((unsigned char)*end)))
      return npt_error_set(NPT_EFORMAT, "%s:%zu: %s: '%s' is not a list of integer ids", path, line,
                           what, field);
    if (*n == *cap) {
      size_t c = *cap ? 2 * *cap : 8;
      int64_t *grown = realloc(*ids, c * sizeof *grown);
      NPT_ALLOC_CHECK(grown);
      *ids = grown;
      *cap = c;
    }
    (*ids)[(*n)++] = v;
    s = end;
  }
  if (*n == 0)
    return npt_error_set(NPT_EFORMAT, "%s:%zu: %s: no ids", path, line, what);
  return 0;
}

static int parse_row(const char *path, size_t line, char *s, npt_events *ev, int64_t **pbuf,
                     size_t *pcap, int64_t **cbuf, size_t *ccap) {
  char *f[4];
  int nf = split4(s, f);
  if (nf != 4)
    return npt_error_set(NPT_EFORMAT,
                         "%s:%zu: expected 4 comma-separated fields (frame,type,parents,children), "
                         "found %d",
                         path, line, nf);
  char *end;
  errno = 0;
  long long frame = strtoll(f[0], &end, 10);
  if (end == f[0] || *end || errno || frame < 1)
    return npt_error_set(NPT_EFORMAT, "%s:%zu: frame: '%s' is not a frame number (1, 2, ...)", path,
                         line, f[0]);
  npt_event_type type;
  if (!strcmp(f[1], "merge"))
    type = NPT_EVENT_MERGE;
  else if (!strcmp(f[1], "split"))
    type = NPT_EVENT_SPLIT;
  else
    return npt_error_set(NPT_EFORMAT, "%s:%zu: type: '%s' is neither 'merge' nor 'split'", path,
                         line, f[1]);
  size_t np = 0, nc = 0;
  NPT_TRY(parse_ids(path, line, "parents", f[2], pbuf, pcap, &np));
  NPT_TRY(parse_ids(path, line, "children", f[3], cbuf, ccap, &nc));
  return npt_events_add(ev, frame, type, *pbuf, np, *cbuf, nc);
}

int npt_events_read(const char *path, npt_events **out) {
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f)
    return npt_error_set(NPT_EIO, "%s: cannot open: %s", path, strerror(errno));
  npt_events *ev = NULL;
  int rc = npt_events_init(&ev);
  char *text = NULL;
  size_t text_cap = 0, line = 0, pcap = 0, ccap = 0;
  int64_t *pbuf = NULL, *cbuf = NULL;
  int have_header = 0;
  errno = 0;
  while (rc == 0 && getline(&text, &text_cap, f) >= 0) {
    line++;
    char *s = trim(text);
    if (*s == '\0' || *s == '#')
      continue;
    if (!have_header) {
      char *h[4];
      int nf = split4(s, h);
      int ok = nf == 4;
      for (int k = 0; ok && k < 4; k++)
        ok = !strcmp(h[k], header_fields[k]);
      if (!ok)
        rc = npt_error_set(NPT_EFORMAT, "%s:%zu: expected the header 'frame,type,parents,children'",
                           path, line);
      have_header = 1;
      continue;
    }
    rc = parse_row(path, line, s, ev, &pbuf, &pcap, &cbuf, &ccap);
  }
  if (rc == 0 && ferror(f))
    rc = npt_error_set(NPT_EIO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
  fclose(f);
  free(text);
  free(pbuf);
  free(cbuf);
  if (rc < 0) {
    npt_events_free(ev);
    return rc;
  }
  *out = ev;
  return 0;
}
