/* Reading MOT text files into a table sorted by frame with TrackEval's id relabelling. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "eval/eval_internal.h"

enum { MOT_MIN_FIELDS = 6, MOT_MAX_FIELDS = 10 };

static const char *const field_names[MOT_MAX_FIELDS] = {
    "frame", "id", "x", "y", "w", "h", "conf", "class", "visibility", "extra"};

/* Largest integer a double holds exactly: ids and frames beyond it are refused. */
#define MAX_EXACT_INT 9007199254740992.0

void npt_mot_free(npt_mot *m) {
  if (!m)
    return;
  free(m->name);
  free(m->id);
  free(m->raw_id);
  free(m->box);
  free(m->cls);
  free(m->id_values);
  free(m->step_frame);
  free(m->step_start);
  free(m);
}

size_t npt_mot_n_rows(const npt_mot *m) {
  return m->n;
}
int64_t npt_mot_n_frames(const npt_mot *m) {
  return m->max_frame;
}
size_t npt_mot_n_ids(const npt_mot *m) {
  return m->n_ids;
}

/* Rows as read, before sorting. */
typedef struct row_buf {
  npt_mot_row *rows;
  size_t n, cap;
} row_buf;

static int row_buf_push(row_buf *b, const npt_mot_row *r) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 1024;
    npt_mot_row *grown = realloc(b->rows, cap * sizeof *grown);
    NPT_ALLOC_CHECK(grown);
    b->rows = grown;
    b->cap = cap;
  }
  b->rows[b->n++] = *r;
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

/* Parses one field as a finite number; `integral` also requires a whole number. */
static int parse_number(const char *name, size_t line, int field, char *text, int integral,
                        double *out) {
  char *s = trim(text);
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !isfinite(v))
    return npt_error_set(NPT_EFORMAT, "%s:%zu: field %d (%s): '%s' is not a finite number", name,
                         line, field + 1, field_names[field], s);
  if (integral && (v != floor(v) || fabs(v) > MAX_EXACT_INT))
    return npt_error_set(NPT_EFORMAT, "%s:%zu: field %d (%s): '%s' is not an integer", name, line,
                         field + 1, field_names[field], s);
  *out = v;
  return 0;
}

/* Parses one data line (already known not to be blank or a comment). */
static int parse_line(const char *name, size_t line, char *text, npt_mot_row *r) {
  char *fields[MOT_MAX_FIELDS + 1];
  int nf = 0;
  char *p = text;
  for (;;) {
    char *comma = strchr(p, ',');
    if (nf <= MOT_MAX_FIELDS)
      fields[nf] = p;
    nf++;
    if (!comma)
      break;
    *comma = '\0';
    p = comma + 1;
  }
  if (nf < MOT_MIN_FIELDS || nf > MOT_MAX_FIELDS)
    return npt_error_set(NPT_EFORMAT,
                         "%s:%zu: expected 6 to 10 comma-separated fields "
                         "(frame,id,x,y,w,h[,conf,class,visibility]), found %d",
                         name, line, nf);
  double v[MOT_MAX_FIELDS];
  for (int k = 0; k < nf; k++) {
    int optional = k >= MOT_MIN_FIELDS;
    if (optional && *trim(fields[k]) == '\0') {
      v[k] = k == 7 ? 1.0 : 0.0;
      continue;
    }
    int integral = k == 0 || k == 1 || k == 7;
    NPT_TRY(parse_number(name, line, k, fields[k], integral, &v[k]));
  }
  if (v[0] < 1)
    return npt_error_set(NPT_EFORMAT, "%s:%zu: frame %.0f: frames are numbered from 1", name, line,
                         v[0]);
  r->frame = (int64_t)v[0];
  r->id = (int64_t)v[1];
  for (int k = 0; k < 4; k++)
    r->box[k] = v[2 + k];
  r->cls = nf > 7 ? (int64_t)v[7] : 1;
  return 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Sorts by frame keeping file order within a frame: files are nearly always sorted already, so
 * a check comes first and the sort (on (frame, index) keys) is the rare path. */
typedef struct order_key {
  int64_t frame;
  size_t index;
} order_key;

static int cmp_order(const void *a, const void *b) {
  const order_key *x = a, *y = b;
  if (x->frame != y->frame)
    return (x->frame > y->frame) - (x->frame < y->frame);
  return (x->index > y->index) - (x->index < y->index);
}

/* `lines[i]` is the source line of rows[i] (for messages). */
static int build(const char *name, const npt_mot_row *rows, const size_t *lines, size_t n,
                 npt_mot **out) {
  *out = NULL;
  npt_mot *m = calloc(1, sizeof *m);
  NPT_ALLOC_CHECK(m);
  size_t *order = malloc((n ? n : 1) * sizeof *order);
  m->name = strdup(name);
  m->n = n;
  m->id = malloc((n ? n : 1) * sizeof *m->id);
  m->raw_id = malloc((n ? n : 1) * sizeof *m->raw_id);
  m->box = malloc((n ? n : 1) * 4 * sizeof *m->box);
  m->cls = malloc((n ? n : 1) * sizeof *m->cls);
  m->id_values = malloc((n ? n : 1) * sizeof *m->id_values);
  m->step_frame = malloc((n ? n : 1) * sizeof *m->step_frame);
  m->step_start = malloc((n + 1) * sizeof *m->step_start);
  int32_t *last_step = NULL;
  size_t *last_line = NULL;
  int rc = 0;
  if (!order || !m->name || !m->id || !m->raw_id || !m->box || !m->cls || !m->id_values ||
      !m->step_frame || !m->step_start) {
    rc = npt_error_set(NPT_ENOMEM, "%s: out of memory for %zu rows", name, n);
    goto done;
  }

  int sorted = 1;
  for (size_t i = 0; i < n; i++) {
    order[i] = i;
    if (i > 0 && rows[i].frame < rows[i - 1].frame)
      sorted = 0;
  }
  if (!sorted) {
    order_key *keys = malloc(n * sizeof *keys);
    if (!keys) {
      rc = npt_error_set(NPT_ENOMEM, "%s: out of memory for %zu rows", name, n);
      goto done;
    }
    for (size_t i = 0; i < n; i++)
      keys[i] = (order_key){rows[i].frame, i};
    qsort(keys, n, sizeof *keys, cmp_order);
    for (size_t i = 0; i < n; i++)
      order[i] = keys[i].index;
    free(keys);
  }

  m->n_steps = 0;
  for (size_t k = 0; k < n; k++) {
    const npt_mot_row *r = &rows[order[k]];
    m->raw_id[k] = r->id;
    memcpy(&m->box[4 * k], r->box, sizeof r->box);
    m->cls[k] = r->cls;
    if (k == 0 || r->frame != m->step_frame[m->n_steps - 1]) {
      m->step_frame[m->n_steps] = r->frame;
      m->step_start[m->n_steps] = k;
      m->n_steps++;
    }
  }
  m->step_start[m->n_steps] = n;
  m->max_frame = m->n_steps ? m->step_frame[m->n_steps - 1] : 0;

  /* Relabel ids to 0..n_ids-1 in sorted order, as TrackEval does with np.unique. */
  memcpy(m->id_values, m->raw_id, n * sizeof *m->id_values);
  qsort(m->id_values, n, sizeof *m->id_values, cmp_i64);
  m->n_ids = 0;
  for (size_t k = 0; k < n; k++)
    if (k == 0 || m->id_values[k] != m->id_values[m->n_ids - 1])
      m->id_values[m->n_ids++] = m->id_values[k];
  if (m->n_ids > INT32_MAX) {
    rc = npt_error_set(NPT_EFORMAT, "%s: too many distinct ids (%zu)", name, m->n_ids);
    goto done;
  }
  for (size_t k = 0; k < n; k++) {
    const int64_t *hit =
        bsearch(&m->raw_id[k], m->id_values, m->n_ids, sizeof *m->id_values, cmp_i64);
    m->id[k] = (int32_t)(hit - m->id_values);
  }

  /* An id twice in one frame is an error in TrackEval too. */
  last_step = malloc((m->n_ids ? m->n_ids : 1) * sizeof *last_step);
  last_line = malloc((m->n_ids ? m->n_ids : 1) * sizeof *last_line);
  if (!last_step || !last_line) {
    rc = npt_error_set(NPT_ENOMEM, "%s: out of memory", name);
    goto done;
  }
  for (size_t k = 0; k < m->n_ids; k++)
    last_step[k] = -1;
  for (size_t s = 0; s < m->n_steps; s++)
    for (size_t k = m->step_start[s]; k < m->step_start[s + 1]; k++) {
      int32_t id = m->id[k];
      size_t line = lines ? lines[order[k]] : order[k] + 1;
      if (last_step[id] == (int32_t)s) {
        rc = npt_error_set(
            NPT_EFORMAT, "%s:%zu: id %lld appears twice in frame %lld (also line %zu)", name, line,
            (long long)m->raw_id[k], (long long)m->step_frame[s], last_line[id]);
        goto done;
      }
      last_step[id] = (int32_t)s;
      last_line[id] = line;
    }

done:
  free(order);
  free(last_step);
  free(last_line);
  if (rc < 0) {
    npt_mot_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

int npt_mot_from_rows(const char *name, const npt_mot_row *rows, size_t n, npt_mot **out) {
  *out = NULL;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].frame < 1)
      return npt_error_set(NPT_EFORMAT, "%s:%zu: frame %lld: frames are numbered from 1", name,
                           i + 1, (long long)rows[i].frame);
    for (int k = 0; k < 4; k++)
      if (!isfinite(rows[i].box[k]))
        return npt_error_set(NPT_EFORMAT, "%s:%zu: box coordinate is not finite", name, i + 1);
  }
  return build(name, rows, NULL, n, out);
}

int npt_mot_read(const char *path, npt_mot **out) {
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f)
    return npt_error_set(NPT_EIO, "%s: cannot open: %s", path, strerror(errno));
  row_buf b = {0};
  size_t *lines = NULL, lines_cap = 0;
  char *text = NULL;
  size_t text_cap = 0, line = 0;
  int rc = 0;
  ssize_t len;
  errno = 0;
  while ((len = getline(&text, &text_cap, f)) >= 0) {
    line++;
    char *s = trim(text);
    if (*s == '\0' || *s == '#')
      continue;
    npt_mot_row r;
    rc = parse_line(path, line, s, &r);
    if (rc < 0)
      break;
    rc = row_buf_push(&b, &r);
    if (rc < 0)
      break;
    if (b.n > lines_cap) {
      size_t cap = b.cap;
      size_t *grown = realloc(lines, cap * sizeof *grown);
      if (!grown) {
        rc = npt_error_set(NPT_ENOMEM, "%s: out of memory", path);
        break;
      }
      lines = grown;
      lines_cap = cap;
    }
    lines[b.n - 1] = line;
  }
  if (rc == 0 && ferror(f))
    rc = npt_error_set(NPT_EIO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
  fclose(f);
  free(text);
  if (rc == 0)
    rc = build(path, b.rows, lines, b.n, out);
  free(b.rows);
  free(lines);
  return rc;
}
