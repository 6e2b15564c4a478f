/* nptrack config: check a configuration and print the effective settings. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "common/error.h"
#include "config/config.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: nptrack config [-c FILE] [-s section.key=value]... [--defaults]\n\n"
          "Checks a configuration (defaults, then FILE, then -s overrides) and prints every\n"
          "effective setting as libconfig text; exits 2 with one line naming the file, line\n"
          "and setting when a value is wrong.\n\n"
          "Options:\n"
          "  -c, --config FILE   configuration file (libconfig)\n"
          "  -s, --set K=V       override one setting, e.g. -s synth.frames=500 (repeatable)\n"
          "      --defaults      print the documented default configuration (config/default.cfg)\n"
          "  -h, --help          this help\n\n"
          "Example:\n"
          "  nptrack config -c config/synth/sintering.cfg -s synth.frames=2000\n");
}

int npt_cmd_config(int argc, char **argv) {
  static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                           {"set", required_argument, NULL, 's'},
                                           {"defaults", no_argument, NULL, 'D'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  npt_cli_cfgopts co = {0};
  int defaults = 0, opt, rc = 0;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":c:s:h", longopts, NULL)) != -1) {
    int st = npt_cli_cfgopt("config", opt, argv, &co, usage);
    if (st != NPT_CLI_OWN) {
      if (st >= 0)
        return st;
      continue;
    }
    switch (opt) {
    case 'D':
      defaults = 1;
      break;
    }
  }
  if (optind < argc) {
    npt_cli_cfgopts_free(&co);
    return npt_cli_usage_error("config", "unexpected argument '%s'", argv[optind]);
  }
  if (defaults) {
    npt_cli_cfgopts_free(&co);
    if ((rc = npt_config_write_defaults(stdout)) < 0)
      return npt_cli_fail("config", rc);
    return NPT_EXIT_OK;
  }
  npt_config *cfg = NULL;
  if ((rc = npt_config_load(&cfg, co.path, co.overrides, co.n_overrides)) < 0)
    goto fail;
  char *text = npt_config_text(cfg);
  npt_config_free(cfg);
  if (!text) {
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
    goto fail;
  }
  fputs(text, stdout);
  free(text);
  npt_cli_cfgopts_free(&co);
  return NPT_EXIT_OK;
fail:
  npt_cli_cfgopts_free(&co);
  return npt_cli_fail("config", rc);
}
