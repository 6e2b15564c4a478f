/* Validated configuration on top of libconfig (see config.h). */
#include "config/config.h"

#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

typedef struct npt_value {
  const npt_setting_def *def;
  int64_t i;       /* INT, BOOL; IRANGE lo */
  int64_t i_hi;    /* IRANGE hi */
  double f, f_hi;  /* FLOAT; FRANGE lo, hi */
  char *s;         /* STRING, ENUM */
} npt_value;

struct npt_config {
  int n;
  npt_value *v;
};

/* ---------------------------------------------------------------------------------------------
 * Schema lookup */

static const npt_setting_def *find_def(const char *name) {
  for (int t = 0; npt_config_schema[t]; t++)
    for (const npt_setting_def *d = npt_config_schema[t]; d->name; d++)
      if (!strcmp(d->name, name))
        return d;
  return NULL;
}

const npt_setting_def *npt_config_def(const char *name) { return find_def(name); }

/* Is `section` the section of some setting? */
static int known_section(const char *section) {
  size_t n = strlen(section);
  for (int t = 0; npt_config_schema[t]; t++)
    for (const npt_setting_def *d = npt_config_schema[t]; d->name; d++)
      if (!strncmp(d->name, section, n) && d->name[n] == '.')
        return 1;
  return 0;
}

static npt_value *find_value(const npt_config *cfg, const char *name) {
  for (int i = 0; i < cfg->n; i++)
    if (!strcmp(cfg->v[i].def->name, name))
      return &cfg->v[i];
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Describing what a setting accepts, for messages */

static void fmt_num(char *buf, size_t n, double x, int integer) {
  if (integer)
    snprintf(buf, n, "%.0f", x);
  else
    snprintf(buf, n, "%g", x);
}

/* "an integer >= 0", "a number in [0.01, 10]", "one of reducing, oxidising, cycle" */
static void describe(const npt_setting_def *d, char *buf, size_t n) {
  int integer = d->type == NPT_SET_INT || d->type == NPT_SET_IRANGE;
  const char *what = "";
  switch (d->type) {
  case NPT_SET_INT: what = "an integer"; break;
  case NPT_SET_FLOAT: what = "a number"; break;
  case NPT_SET_IRANGE: what = "an integer or a range [lo, hi] of integers"; break;
  case NPT_SET_FRANGE: what = "a number or a range [lo, hi]"; break;
  case NPT_SET_BOOL: snprintf(buf, n, "true or false"); return;
  case NPT_SET_STRING: snprintf(buf, n, "a string"); return;
  case NPT_SET_ENUM: {
    snprintf(buf, n, "one of ");
    size_t len = strlen(buf);
    for (const char *c = d->choices; *c && len + 3 < n; c++, len++)
      buf[len] = *c == '|' ? ',' : *c, buf[len + 1] = '\0';
    /* "a,b" -> "a, b" */
    char tmp[256];
    size_t j = 0;
    for (size_t k = 0; buf[k] && j + 2 < sizeof tmp; k++) {
      tmp[j++] = buf[k];
      if (buf[k] == ',')
        tmp[j++] = ' ';
    }
    tmp[j] = '\0';
    snprintf(buf, n, "%s", tmp);
    return;
  }
  }
  char lo[32], hi[32];
  fmt_num(lo, sizeof lo, d->min, integer);
  fmt_num(hi, sizeof hi, d->max, integer);
  int has_lo = isfinite(d->min), has_hi = isfinite(d->max);
  if (has_lo && has_hi)
    snprintf(buf, n, "%s in [%s, %s]", what, lo, hi);
  else if (has_lo)
    snprintf(buf, n, "%s >= %s", what, lo);
  else if (has_hi)
    snprintf(buf, n, "%s <= %s", what, hi);
  else
    snprintf(buf, n, "%s", what);
}

/* The value as the user wrote it, for "(got ...)". */
static void got_text(const config_setting_t *s, char *buf, size_t n) {
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    snprintf(buf, n, "%lld", (long long)config_setting_get_int64(s));
    break;
  case CONFIG_TYPE_FLOAT:
    snprintf(buf, n, "%g", config_setting_get_float(s));
    break;
  case CONFIG_TYPE_BOOL:
    snprintf(buf, n, "%s", config_setting_get_bool(s) ? "true" : "false");
    break;
  case CONFIG_TYPE_STRING:
    snprintf(buf, n, "\"%s\"", config_setting_get_string(s));
    break;
  case CONFIG_TYPE_GROUP:
    snprintf(buf, n, "a group");
    break;
  default: {
    int len = config_setting_length(s);
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < len && used < n; i++) {
      char item[64];
      got_text(config_setting_get_elem(s, (unsigned)i), item, sizeof item);
      used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", item);
    }
    if (used < n)
      snprintf(buf + used, n - used, "]");
  }
  }
}

/* ---------------------------------------------------------------------------------------------
 * Setting one value from a libconfig setting */

static int is_number(const config_setting_t *s, int integer_only) {
  int t = config_setting_type(s);
  if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
    return 1;
  return !integer_only && t == CONFIG_TYPE_FLOAT;
}

static double number_of(const config_setting_t *s) {
  int t = config_setting_type(s);
  return t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) : (double)config_setting_get_int64(s);
}

static int in_bounds(const npt_setting_def *d, double x) {
  return !isnan(x) && x >= d->min && x <= d->max;
}

/* Takes the value of `s` for setting `v->def`.  `where` is "file:line" or "-s name=value". */
static int take(npt_value *v, const config_setting_t *s, const char *where) {
  const npt_setting_def *d = v->def;
  char want[256], got[256];
  int ok = 0;
  switch (d->type) {
  case NPT_SET_INT:
    if (is_number(s, 1) && in_bounds(d, number_of(s))) {
      v->i = config_setting_get_int64(s);
      ok = 1;
    }
    break;
  case NPT_SET_FLOAT:
    if (is_number(s, 0) && in_bounds(d, number_of(s))) {
      v->f = number_of(s);
      ok = 1;
    }
    break;
  case NPT_SET_BOOL:
    if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
      v->i = config_setting_get_bool(s);
      ok = 1;
    }
    break;
  case NPT_SET_STRING:
  case NPT_SET_ENUM:
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
      const char *str = config_setting_get_string(s);
      ok = 1;
      if (d->type == NPT_SET_ENUM) {
        size_t n = strlen(str);
        ok = 0;
        for (const char *c = d->choices; *c;) {
          const char *bar = strchr(c, '|');
          size_t len = bar ? (size_t)(bar - c) : strlen(c);
          if (len == n && !strncmp(c, str, n))
            ok = 1;
          c += len + (bar ? 1 : 0);
        }
      }
      if (ok) {
        char *copy = strdup(str);
        if (!copy)
          return npt_error_set(NPT_ENOMEM, "out of memory");
        free(v->s);
        v->s = copy;
      }
    }
    break;
  case NPT_SET_IRANGE:
  case NPT_SET_FRANGE: {
    int integer = d->type == NPT_SET_IRANGE;
    int t = config_setting_type(s);
    double lo, hi;
    if (is_number(s, integer)) {
      lo = hi = number_of(s);
      ok = 1;
    } else if ((t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) && config_setting_length(s) == 2 &&
               is_number(config_setting_get_elem(s, 0), integer) &&
               is_number(config_setting_get_elem(s, 1), integer)) {
      lo = number_of(config_setting_get_elem(s, 0));
      hi = number_of(config_setting_get_elem(s, 1));
      ok = lo <= hi;
    }
    if (ok && in_bounds(d, lo) && in_bounds(d, hi) && (!(d->flags & NPT_SET_LOG) || lo > 0)) {
      if (integer) {
        v->i = (int64_t)lo;
        v->i_hi = (int64_t)hi;
      } else {
        v->f = lo;
        v->f_hi = hi;
      }
    } else {
      ok = 0;
    }
    break;
  }
  }
  if (ok)
    return 0;
  describe(d, want, sizeof want);
  got_text(s, got, sizeof got);
  if ((d->type == NPT_SET_IRANGE || d->type == NPT_SET_FRANGE) &&
      (config_setting_type(s) == CONFIG_TYPE_ARRAY || config_setting_type(s) == CONFIG_TYPE_LIST))
    return npt_error_set(NPT_ECONFIG, "%s: %s must be %s, with lo <= hi (got %s)", where, d->name,
                         want, got);
  return npt_error_set(NPT_ECONFIG, "%s: %s must be %s (got %s)", where, d->name, want, got);
}

/* ---------------------------------------------------------------------------------------------
 * Loading */

static int parse_into(npt_value *v, const char *text, const char *where) {
  config_t c;
  config_init(&c);
  int rc;
  if (!config_read_string(&c, text)) {
    rc = npt_error_set(NPT_EINTERNAL, "%s: cannot parse %s", where, text);
  } else {
    rc = take(v, config_lookup(&c, "v"), where);
  }
  config_destroy(&c);
  return rc;
}

static int set_defaults(npt_config *cfg) {
  int n = 0;
  for (int t = 0; npt_config_schema[t]; t++)
    for (const npt_setting_def *d = npt_config_schema[t]; d->name; d++)
      n++;
  cfg->v = calloc((size_t)n, sizeof *cfg->v);
  NPT_ALLOC_CHECK(cfg->v);
  for (int t = 0; npt_config_schema[t]; t++)
    for (const npt_setting_def *d = npt_config_schema[t]; d->name; d++) {
      npt_value *v = &cfg->v[cfg->n++];
      v->def = d;
      char text[512], where[300];
      snprintf(text, sizeof text, "v = %s;", d->def);
      snprintf(where, sizeof where, "default of %s", d->name);
      NPT_TRY(parse_into(v, text, where));
    }
  return 0;
}

/* Walks a parsed file: every group must be a known section, every member a known setting. */
static int apply_file(npt_config *cfg, config_t *c, const char *origin) {
  config_setting_t *root = config_root_setting(c);
  int n = config_setting_length(root);
  for (int i = 0; i < n; i++) {
    config_setting_t *sec = config_setting_get_elem(root, (unsigned)i);
    const char *sname = config_setting_name(sec);
    int line = config_setting_source_line(sec);
    if (config_setting_type(sec) != CONFIG_TYPE_GROUP || !known_section(sname)) {
      if (config_setting_type(sec) == CONFIG_TYPE_GROUP || !sname)
        return npt_error_set(NPT_ECONFIG, "%s:%d: unknown section '%s'", origin, line,
                             sname ? sname : "?");
      return npt_error_set(NPT_ECONFIG,
                           "%s:%d: unknown setting '%s' (settings live in sections, e.g. "
                           "synth = { frames = 100; };)",
                           origin, line, sname);
    }
    int m = config_setting_length(sec);
    for (int j = 0; j < m; j++) {
      config_setting_t *s = config_setting_get_elem(sec, (unsigned)j);
      char name[256], where[512];
      snprintf(name, sizeof name, "%s.%s", sname, config_setting_name(s));
      snprintf(where, sizeof where, "%s:%d", origin, config_setting_source_line(s));
      npt_value *v = find_value(cfg, name);
      if (!v)
        return npt_error_set(NPT_ECONFIG, "%s: unknown setting '%s'", where, name);
      NPT_TRY(take(v, s, where));
    }
  }
  return 0;
}

static int apply_override(npt_config *cfg, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return npt_error_set(NPT_ECONFIG, "-s %s: expected section.key=value", arg);
  char name[256];
  size_t len = (size_t)(eq - arg);
  if (len >= sizeof name)
    return npt_error_set(NPT_ECONFIG, "-s %s: setting name too long", arg);
  memcpy(name, arg, len);
  name[len] = '\0';
  npt_value *v = find_value(cfg, name);
  char where[512];
  snprintf(where, sizeof where, "-s %s", arg);
  if (!v)
    return npt_error_set(NPT_ECONFIG, "%s: unknown setting '%s'", where, name);
  const char *val = eq + 1;
  size_t tlen = strlen(val) + 8;
  char *text = malloc(tlen);
  NPT_ALLOC_CHECK(text);
  snprintf(text, tlen, "v = %s;", val);
  config_t c;
  config_init(&c);
  int rc;
  if (config_read_string(&c, text)) {
    rc = take(v, config_lookup(&c, "v"), where);
  } else if (v->def->type == NPT_SET_STRING || v->def->type == NPT_SET_ENUM) {
    /* A bare word: take it as the string the user meant. */
    config_destroy(&c);
    config_init(&c);
    config_setting_t *s = config_setting_add(config_root_setting(&c), "v", CONFIG_TYPE_STRING);
    config_setting_set_string(s, val);
    rc = take(v, s, where);
  } else {
    char want[256];
    describe(v->def, want, sizeof want);
    rc = npt_error_set(NPT_ECONFIG, "%s: %s must be %s (got '%s')", where, name, want, val);
  }
  config_destroy(&c);
  free(text);
  return rc;
}

int npt_config_load_text(npt_config **out, const char *text, const char *origin,
                         const char *const *overrides, int n_overrides) {
  *out = NULL;
  npt_config *cfg = calloc(1, sizeof *cfg);
  NPT_ALLOC_CHECK(cfg);
  int rc = set_defaults(cfg);
  if (rc == 0 && text) {
    config_t c;
    config_init(&c);
    if (!config_read_string(&c, text))
      rc = npt_error_set(NPT_ECONFIG, "%s:%d: %s", origin, config_error_line(&c),
                         config_error_text(&c));
    else
      rc = apply_file(cfg, &c, origin);
    config_destroy(&c);
  }
  for (int i = 0; rc == 0 && i < n_overrides; i++)
    rc = apply_override(cfg, overrides[i]);
  if (rc < 0) {
    npt_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

int npt_config_load(npt_config **out, const char *path, const char *const *overrides,
                    int n_overrides) {
  *out = NULL;
  if (!path)
    return npt_config_load_text(out, NULL, NULL, overrides, n_overrides);
  FILE *f = fopen(path, "rb");
  if (!f)
    return npt_error_set(NPT_ECONFIG, "%s: cannot read config file: %s", path, strerror(errno));
  char *text = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? 2 * cap : 8192;
      char *grown = realloc(text, cap);
      if (!grown) {
        free(text);
        fclose(f);
        return npt_error_set(NPT_ENOMEM, "out of memory reading %s", path);
      }
      text = grown;
    }
    size_t got = fread(text + len, 1, 4096, f);
    len += got;
    if (got < 4096)
      break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(text);
    return npt_error_set(NPT_ECONFIG, "%s: cannot read config file", path);
  }
  text[len] = '\0';
  if (strlen(text) != len) {
    free(text);
    return npt_error_set(NPT_ECONFIG, "%s: not a text file (contains a NUL byte)", path);
  }
  int rc = npt_config_load_text(out, text, path, overrides, n_overrides);
  free(text);
  return rc;
}

void npt_config_free(npt_config *cfg) {
  if (!cfg)
    return;
  for (int i = 0; i < cfg->n; i++)
    free(cfg->v[i].s);
  free(cfg->v);
  free(cfg);
}

/* ---------------------------------------------------------------------------------------------
 * Writing */

/* A real number that libconfig reads back as a float, to the same double. */
static void fmt_float(char *buf, size_t n, double x) {
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if (strtod(buf, NULL) == x)
      break;
  }
  if (!strpbrk(buf, ".eEn"))
    strncat(buf, ".0", n - strlen(buf) - 1);
}

static void fmt_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

static void write_value(FILE *f, const npt_value *v) {
  char a[64], b[64];
  switch (v->def->type) {
  case NPT_SET_INT:
    fprintf(f, "%lld", (long long)v->i);
    break;
  case NPT_SET_BOOL:
    fputs(v->i ? "true" : "false", f);
    break;
  case NPT_SET_FLOAT:
    fmt_float(a, sizeof a, v->f);
    fputs(a, f);
    break;
  case NPT_SET_STRING:
  case NPT_SET_ENUM:
    fmt_string(f, v->s ? v->s : "");
    break;
  case NPT_SET_IRANGE:
    if (v->i == v->i_hi)
      fprintf(f, "%lld", (long long)v->i);
    else
      fprintf(f, "[%lld, %lld]", (long long)v->i, (long long)v->i_hi);
    break;
  case NPT_SET_FRANGE:
    fmt_float(a, sizeof a, v->f);
    fmt_float(b, sizeof b, v->f_hi);
    if (v->f == v->f_hi)
      fputs(a, f);
    else
      fprintf(f, "[%s, %s]", a, b);
    break;
  }
}

/* Writes every setting grouped by section; with `doc`, each preceded by its documentation. */
static void write_config(FILE *f, const npt_config *cfg, int doc) {
  char section[128] = "";
  for (int i = 0; i < cfg->n; i++) {
    const npt_value *v = &cfg->v[i];
    const char *dot = strchr(v->def->name, '.');
    size_t slen = (size_t)(dot - v->def->name);
    if (strlen(section) != slen || strncmp(section, v->def->name, slen)) {
      if (section[0])
        fputs("};\n\n", f);
      snprintf(section, sizeof section, "%.*s", (int)slen, v->def->name);
      fprintf(f, "%s = {\n", section);
    }
    if (doc) {
      /* Wrap the documentation at ~96 columns. */
      const char *p = v->def->doc;
      while (*p) {
        int width = 92, len = (int)strlen(p);
        if (len > width) {
          len = width;
          while (len > 0 && p[len] != ' ')
            len--;
          if (len == 0)
            len = width;
        }
        fprintf(f, "  # %.*s\n", len, p);
        p += len;
        while (*p == ' ')
          p++;
      }
      char want[256];
      describe(v->def, want, sizeof want);
      fprintf(f, "  # Unit: %s.  Accepts %s.%s\n", v->def->unit[0] ? v->def->unit : "none", want,
              (v->def->flags & NPT_SET_LOG) ? "  A range is drawn log-uniformly." : "");
    }
    fprintf(f, "  %s = ", dot + 1);
    write_value(f, v);
    fputs(";\n", f);
    if (doc && i + 1 < cfg->n && !strncmp(cfg->v[i + 1].def->name, section, slen))
      fputc('\n', f);
  }
  if (section[0])
    fputs("};\n", f);
}

char *npt_config_text(const npt_config *cfg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    return NULL;
  write_config(f, cfg, 0);
  if (fclose(f) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

int npt_config_write_defaults(FILE *f) {
  npt_config *cfg;
  NPT_TRY(npt_config_load_text(&cfg, NULL, NULL, NULL, 0));
  fputs("# nptrack default configuration: every setting, its default, unit and accepted values.\n"
        "#\n"
        "# Generated by `nptrack config --defaults`; a test checks that this file matches the\n"
        "# program.  A config file given with -c sets any subset of these (the rest keep these\n"
        "# defaults); `-s section.key=value` on the command line overrides both.  Unknown settings\n"
        "# are errors.  Settings that accept a range [lo, hi] draw one value per item (e.g. per\n"
        "# synthetic video) from it: domain randomisation for training.\n\n",
        f);
  write_config(f, cfg, 1);
  npt_config_free(cfg);
  return ferror(f) ? npt_error_set(NPT_EIO, "cannot write the default configuration") : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Getters: a wrong name or type is a programming error. */

static const npt_value *get(const npt_config *cfg, const char *name, npt_setting_type t1,
                            npt_setting_type t2) {
  const npt_value *v = find_value(cfg, name);
  if (!v || (v->def->type != t1 && v->def->type != t2)) {
    fprintf(stderr, "nptrack: internal error: no setting %s of the requested type\n", name);
    abort();
  }
  return v;
}

int64_t npt_config_int(const npt_config *cfg, const char *name) {
  return get(cfg, name, NPT_SET_INT, NPT_SET_INT)->i;
}

double npt_config_float(const npt_config *cfg, const char *name) {
  return get(cfg, name, NPT_SET_FLOAT, NPT_SET_FLOAT)->f;
}

int npt_config_bool(const npt_config *cfg, const char *name) {
  return (int)get(cfg, name, NPT_SET_BOOL, NPT_SET_BOOL)->i;
}

const char *npt_config_str(const npt_config *cfg, const char *name) {
  return get(cfg, name, NPT_SET_STRING, NPT_SET_ENUM)->s;
}

void npt_config_range(const npt_config *cfg, const char *name, double *lo, double *hi) {
  const npt_value *v = get(cfg, name, NPT_SET_IRANGE, NPT_SET_FRANGE);
  if (v->def->type == NPT_SET_IRANGE) {
    *lo = (double)v->i;
    *hi = (double)v->i_hi;
  } else {
    *lo = v->f;
    *hi = v->f_hi;
  }
}
