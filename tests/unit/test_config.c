/* Configuration: defaults, validation messages, overrides, effective text, config/default.cfg. */
#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "config/config.h"
#include "npt_test.h"

/* The first setting of a given type in the schema (the schema grows; tests adapt). */
static const npt_setting_def *first_of(npt_setting_type t) {
  for (int i = 0; npt_config_schema[i]; i++)
    for (const npt_setting_def *d = npt_config_schema[i]; d->name; d++)
      if (d->type == t)
        return d;
  return NULL;
}

static void test_defaults_load(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  assert_int_equal(npt_config_load(&cfg, NULL, NULL, 0), 0);
  assert_non_null(cfg);
  assert_true(npt_config_int(cfg, "synth.frames") >= 1);
  npt_config_free(cfg);
}

static void test_bad_value_names_file_line_setting(void **state) {
  (void)state;
  const char *text = "# a comment\n"
                     "synth = {\n"
                     "  frames = -3;\n"
                     "};\n";
  npt_config *cfg = NULL;
  npt_error_clear();
  int rc = npt_config_load_text(&cfg, text, "config/run.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  assert_null(cfg);
  const char *msg = npt_error_msg(rc);
  NPT_ASSERT_CONTAINS(msg, "config/run.cfg:3: synth.frames must be an integer");
  NPT_ASSERT_CONTAINS(msg, "(got -3)");
  assert_int_equal(npt_exit_status(rc), 2);
}

static void test_wrong_type(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  int rc = npt_config_load_text(&cfg, "synth = { frames = 2.5; };", "a.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "a.cfg:1: synth.frames must be an integer");
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "(got 2.5)");
  rc = npt_config_load_text(&cfg, "synth = { frames = \"many\"; };", "a.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "(got \"many\")");
}

static void test_unknown_setting_and_section(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  int rc = npt_config_load_text(&cfg, "synth = {\n frames = 3;\n framez = 4;\n};", "b.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "b.cfg:3: unknown setting 'synth.framez'");
  rc = npt_config_load_text(&cfg, "\n\nsynthh = { frames = 3; };", "b.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "b.cfg:3: unknown section 'synthh'");
  rc = npt_config_load_text(&cfg, "frames = 3;", "b.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "b.cfg:1: unknown setting 'frames'");
}

static void test_syntax_error_names_line(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  int rc = npt_config_load_text(&cfg, "synth = {\n frames = 3\n width = 4;\n};", "c.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "c.cfg:3:");
}

static void test_missing_file(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  int rc = npt_config_load(&cfg, "/nonexistent/run.cfg", NULL, 0);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "/nonexistent/run.cfg: cannot read config file");
  assert_int_equal(npt_exit_status(rc), 2);
}

static void test_overrides(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  const char *ok[] = {"synth.frames=17"};
  assert_int_equal(npt_config_load_text(&cfg, "synth = { frames = 3; };", "d.cfg", ok, 1), 0);
  assert_int_equal(npt_config_int(cfg, "synth.frames"), 17); /* command line beats the file */
  npt_config_free(cfg);

  const char *bad[] = {"synth.frames=-3"};
  int rc = npt_config_load_text(&cfg, NULL, NULL, bad, 1);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "-s synth.frames=-3: synth.frames must be an integer");
  const char *unknown[] = {"synth.nope=1"};
  rc = npt_config_load_text(&cfg, NULL, NULL, unknown, 1);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "unknown setting 'synth.nope'");
  const char *noeq[] = {"synth.frames"};
  rc = npt_config_load_text(&cfg, NULL, NULL, noeq, 1);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "expected section.key=value");
  const char *garbage[] = {"synth.frames=12abc"};
  rc = npt_config_load_text(&cfg, NULL, NULL, garbage, 1);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "(got '12abc')");
}

static void test_ranges(void **state) {
  (void)state;
  const npt_setting_def *d = first_of(NPT_SET_FRANGE);
  if (!d)
    skip();
  double lo = isfinite(d->min) ? d->min : 0.0, hi = isfinite(d->max) ? d->max : lo + 10.0;
  if (d->flags & NPT_SET_LOG && lo <= 0)
    lo = hi / 100;
  double a = lo + 0.25 * (hi - lo), b = lo + 0.75 * (hi - lo);
  char arg[256];
  snprintf(arg, sizeof arg, "%s=[%.17g, %.17g]", d->name, a, b);
  const char *ov[] = {arg};
  npt_config *cfg = NULL;
  assert_int_equal(npt_config_load_text(&cfg, NULL, NULL, ov, 1), 0);
  double got_lo, got_hi;
  npt_config_range(cfg, d->name, &got_lo, &got_hi);
  assert_true(got_lo == a && got_hi == b);
  npt_config_free(cfg);
  /* Reversed range. */
  snprintf(arg, sizeof arg, "%s=[%.17g, %.17g]", d->name, b, a);
  int rc = npt_config_load_text(&cfg, NULL, NULL, ov, 1);
  assert_int_equal(rc, NPT_ECONFIG);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), "lo <= hi");
  /* One value is a range of one point. */
  snprintf(arg, sizeof arg, "%s=%.17g", d->name, a);
  assert_int_equal(npt_config_load_text(&cfg, NULL, NULL, ov, 1), 0);
  npt_config_range(cfg, d->name, &got_lo, &got_hi);
  assert_true(got_lo == a && got_hi == a);
  npt_config_free(cfg);
}

static void test_effective_text_round_trips(void **state) {
  (void)state;
  npt_config *cfg = NULL;
  const char *ov[] = {"synth.frames=23"};
  assert_int_equal(npt_config_load_text(&cfg, NULL, NULL, ov, 1), 0);
  char *text = npt_config_text(cfg);
  assert_non_null(text);
  NPT_ASSERT_CONTAINS(text, "frames = 23;");
  npt_config *again = NULL;
  assert_int_equal(npt_config_load_text(&again, text, "effective", NULL, 0), 0);
  char *text2 = npt_config_text(again);
  assert_string_equal(text, text2);
  free(text);
  free(text2);
  npt_config_free(cfg);
  npt_config_free(again);
}

/* config/default.cfg is what the program says its defaults are, and it loads. */
static void test_default_cfg_is_current(void **state) {
  (void)state;
  const char *src = getenv("NPT_SOURCE_DIR");
  if (!src)
    skip();
  char path[4096];
  snprintf(path, sizeof path, "%s/config/default.cfg", src);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  char *file = calloc(1, 1 << 20);
  size_t n = fread(file, 1, (1 << 20) - 1, f);
  fclose(f);
  file[n] = '\0';
  char *gen = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&gen, &len);
  assert_int_equal(npt_config_write_defaults(m), 0);
  fclose(m);
  if (strcmp(file, gen) != 0)
    fail_msg("config/default.cfg is out of date: regenerate it with "
             "`nptrack config --defaults > config/default.cfg`");
  npt_config *cfg = NULL;
  assert_int_equal(npt_config_load(&cfg, path, NULL, 0), 0);
  npt_config_free(cfg);
  free(file);
  free(gen);
}

/* Every setting documents itself and its default passes its own validation. */
static void test_schema_is_documented(void **state) {
  (void)state;
  for (int i = 0; npt_config_schema[i]; i++)
    for (const npt_setting_def *d = npt_config_schema[i]; d->name; d++) {
      if (!d->doc || strlen(d->doc) < 10)
        fail_msg("%s has no documentation", d->name);
      if (!d->unit)
        fail_msg("%s has no unit (use \"\" for none)", d->name);
      if (!strchr(d->name, '.'))
        fail_msg("%s is not section.key", d->name);
      if (d->type == NPT_SET_ENUM && !d->choices)
        fail_msg("%s has no choices", d->name);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_load),
      cmocka_unit_test(test_bad_value_names_file_line_setting),
      cmocka_unit_test(test_wrong_type),
      cmocka_unit_test(test_unknown_setting_and_section),
      cmocka_unit_test(test_syntax_error_names_line),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_overrides),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_effective_text_round_trips),
      cmocka_unit_test(test_default_cfg_is_current),
      cmocka_unit_test(test_schema_is_documented),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
