/* nptrack: follow every nanoparticle through in-situ TEM videos.  Dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "cli/cli.h"
#include "common/error.h"

static const struct {
  const char *name;
  npt_cmd_fn fn;
  const char *summary;
} commands[] = {
    {"synth", npt_cmd_synth, "make a synthetic in-situ TEM video with exact ground truth"},
    {"detect", npt_cmd_detect, "detect particles in every frame of a video (no tracking)"},
    {"run", npt_cmd_run, "detect and track particles in videos and write one archive"},
    {"export", npt_cmd_export, "write the detections or an archive's tracks as text"},
    {"eval", npt_cmd_eval, "score tracks against ground truth (HOTA, CLEAR-MOT, IDF1, events)"},
    {"info", npt_cmd_info,
     "summarise a video file or an archive (frames, tracks, status, provenance)"},
    {"config", npt_cmd_config, "check a configuration and print the effective settings"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void print_help(FILE *f) {
  fprintf(f, "Usage: nptrack COMMAND [OPTIONS]\n"
             "       nptrack --version | --help\n\n"
             "Follows every nanoparticle through in-situ (environmental) TEM videos.\n\n"
             "Commands:\n");
  for (int i = 0; i < N_COMMANDS; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nRun 'nptrack COMMAND --help' for a command's options and an example.\n"
             "Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.\n");
}

int main(int argc, char **argv) {
  /* HDF5's exit handler closes the files still open; after a failed write (a full disk) it
   * crashes on the half-closed file.  Every file is closed explicitly on success, and a failed
   * run removes its temporary file itself, so the handler is not needed. */
  H5dont_atexit();
  if (argc < 2) {
    print_help(stderr);
    return NPT_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    print_help(stdout);
    return NPT_EXIT_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
    npt_cli_print_version(stdout);
    return NPT_EXIT_OK;
  }
  for (int i = 0; i < N_COMMANDS; i++)
    if (!strcmp(cmd, commands[i].name))
      return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "nptrack: error: unknown command '%s' (try 'nptrack --help')\n", cmd);
  return NPT_EXIT_USAGE;
}
