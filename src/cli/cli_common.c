#include "cli/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>

#include "common/error.h"

int npt_cli_add_override(npt_cli_cfgopts *o, const char *arg) {
  const char **grown = realloc(o->overrides, sizeof *grown * (size_t)(o->n_overrides + 1));
  if (!grown)
    return npt_error_set(NPT_ENOMEM, "out of memory");
  o->overrides = grown;
  o->overrides[o->n_overrides++] = arg;
  return 0;
}

void npt_cli_cfgopts_free(npt_cli_cfgopts *o) {
  free(o->overrides);
  o->overrides = NULL;
  o->n_overrides = 0;
}

int npt_cli_fail(const char *cmd, int code) {
  fprintf(stderr, "nptrack %s: error: %s\n", cmd, npt_error_msg(code));
  return npt_exit_status(code);
}

int npt_cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nptrack %s: error: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (try 'nptrack %s --help')\n", cmd);
  va_end(ap);
  return NPT_EXIT_USAGE;
}

int npt_cli_cfgopt(const char *cmd, int opt, char **argv, npt_cli_cfgopts *co,
                   void (*usage)(FILE *)) {
  int rc;
  switch (opt) {
  case 'c':
    co->path = optarg;
    return NPT_CLI_NEXT;
  case 's':
    if ((rc = npt_cli_add_override(co, optarg)) == 0)
      return NPT_CLI_NEXT;
    npt_cli_cfgopts_free(co);
    return npt_cli_fail(cmd, rc);
  case 'h':
    usage(stdout);
    npt_cli_cfgopts_free(co);
    return NPT_EXIT_OK;
  case ':':
    npt_cli_cfgopts_free(co);
    return npt_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
  case '?':
    npt_cli_cfgopts_free(co);
    return npt_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
  default:
    return NPT_CLI_OWN;
  }
}
