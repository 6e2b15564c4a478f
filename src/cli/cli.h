/* The nptrack command-line program: one entry per subcommand, and helpers they share. */
#ifndef NPT_CLI_H
#define NPT_CLI_H

#include <stdio.h>

/* A subcommand: argv[0] is the subcommand's name; returns the exit status (0 ok, 1 runtime
 * failure, 2 usage or configuration error). */
typedef int (*npt_cmd_fn)(int argc, char **argv);

int npt_cmd_synth(int argc, char **argv);
int npt_cmd_eval(int argc, char **argv);
int npt_cmd_config(int argc, char **argv);
int npt_cmd_info(int argc, char **argv);
int npt_cmd_detect(int argc, char **argv);
int npt_cmd_export(int argc, char **argv);
int npt_cmd_run(int argc, char **argv);

/* Options every configurable command takes: -c FILE and repeated -s section.key=value. */
typedef struct npt_cli_cfgopts {
  const char *path;
  const char **overrides;
  int n_overrides;
} npt_cli_cfgopts;

/* What npt_cli_cfgopt returns besides an exit status (>= 0). */
enum { NPT_CLI_NEXT = -1, NPT_CLI_OWN = -2 };

/* Handles, inside a getopt_long loop with optstring ":c:s:...h", the options every configurable
 * command shares: -c FILE, -s K=V, -h (prints `usage`), and getopt's errors (missing value,
 * unknown option).  Returns NPT_CLI_NEXT when `opt` was one of them and parsing goes on,
 * NPT_CLI_OWN when `opt` is the command's own, or an exit status that the command returns at
 * once (the overrides are freed then). */
int npt_cli_cfgopt(const char *cmd, int opt, char **argv, npt_cli_cfgopts *co,
                   void (*usage)(FILE *));

/* Records one -s argument (the pointer is kept, not copied).  Returns 0 or NPT_ENOMEM. */
int npt_cli_add_override(npt_cli_cfgopts *o, const char *arg);
void npt_cli_cfgopts_free(npt_cli_cfgopts *o);

/* Prints "nptrack CMD: error: <last recorded message>" on stderr and returns the exit status
 * for `code`. */
int npt_cli_fail(const char *cmd, int code);

/* Prints "nptrack CMD: error: <text>" and "Try 'nptrack CMD --help'." and returns 2. */
int npt_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints the build's version and features (nptrack --version). */
void npt_cli_print_version(FILE *f);

#endif
