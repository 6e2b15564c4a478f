/* Validated configuration: libconfig files checked against a schema of documented settings.
 *
 * Every setting nptrack knows is declared once, in a module's table of npt_setting_def (name,
 * type, bounds, default, unit, documentation).  A configuration is the schema's defaults, then a
 * file, then command-line overrides (`-s section.key=value`), each value checked for type and
 * range; unknown sections or keys are errors.  Messages name the file and line, or the override,
 * and the setting:  `run.cfg:12: synth.frames must be an integer >= 1 (got -3)`.
 *
 * Not collective: under MPI, rank 0 reads the file text and broadcasts it; every rank then calls
 * npt_config_load_text() with the same text and overrides. */
#ifndef NPT_CONFIG_H
#define NPT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
  NPT_SET_INT,    /* integer */
  NPT_SET_FLOAT,  /* real number (integers accepted) */
  NPT_SET_BOOL,   /* true / false */
  NPT_SET_STRING, /* free text */
  NPT_SET_ENUM,   /* one word out of `choices` ("a|b|c") */
  NPT_SET_IRANGE, /* integer, or [lo, hi]: drawn uniformly per item (e.g. per synthetic video) */
  NPT_SET_FRANGE, /* real, or [lo, hi]: drawn per item, uniformly or log-uniformly (NPT_SET_LOG) */
} npt_setting_type;

enum { NPT_SET_LOG = 1 }; /* flags: a range drawn log-uniformly */

typedef struct npt_setting_def {
  const char *name;       /* "section.key" */
  npt_setting_type type;
  double min, max;        /* inclusive bounds of numbers (each end of a range); ±HUGE_VAL: none */
  const char *def;        /* default, in libconfig syntax: "200", "[0.5, 2.0]", "\"text\"" */
  const char *unit;       /* "px", "nm", "1/s", "" */
  const char *choices;    /* NPT_SET_ENUM: "reducing|oxidising|cycle"; else NULL */
  unsigned flags;         /* NPT_SET_LOG */
  const char *doc;        /* what it does, in whole sentences */
} npt_setting_def;

/* The schema: every module's table, each ending with an entry whose name is NULL. */
extern const npt_setting_def *const npt_config_schema[];

typedef struct npt_config npt_config;

/* Builds a configuration from the schema defaults, then the file at `path` (NULL: none), then
 * the `n_overrides` strings "section.key=value".  Returns 0, or NPT_ECONFIG with a message that
 * names the file and line (or override) and the setting, or NPT_EIO when the file cannot be
 * read.  On success *out is owned by the caller (npt_config_free). */
int npt_config_load(npt_config **out, const char *path, const char *const *overrides,
                    int n_overrides);

/* As npt_config_load, from configuration text; `origin` names it in messages. */
int npt_config_load_text(npt_config **out, const char *text, const char *origin,
                         const char *const *overrides, int n_overrides);

void npt_config_free(npt_config *cfg);

/* The effective configuration, every setting, as libconfig text that npt_config_load_text reads
 * back to the same values.  Returns a malloc'd string, or NULL when out of memory. */
char *npt_config_text(const npt_config *cfg);

/* Writes the documented default configuration (config/default.cfg) to `f`. */
int npt_config_write_defaults(FILE *f);

/* Getters.  The name must be a setting of the schema of the right type; a wrong name is a
 * programming error and aborts. */
int64_t npt_config_int(const npt_config *cfg, const char *name);
double npt_config_float(const npt_config *cfg, const char *name);
int npt_config_bool(const npt_config *cfg, const char *name);
const char *npt_config_str(const npt_config *cfg, const char *name); /* STRING and ENUM */
/* IRANGE and FRANGE (a single value gives lo == hi). */
void npt_config_range(const npt_config *cfg, const char *name, double *lo, double *hi);
/* The definition of a setting, or NULL. */
const npt_setting_def *npt_config_def(const char *name);

#endif
