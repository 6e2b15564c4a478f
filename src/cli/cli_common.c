#include "cli/cli.h"

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
