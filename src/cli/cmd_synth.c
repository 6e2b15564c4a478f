/* nptrack synth: make a synthetic in-situ TEM video with exact ground truth. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "common/error.h"
#include "config/config.h"
#include "synth/synth.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: nptrack synth [-c FILE] [-s synth.key=value]... -o DIR\n\n"
          "Makes a realistic synthetic in-situ (environmental) TEM video of metal nanoparticles\n"
          "that drift, diffuse, ripen, sinter, oxidise into hollow shells and regenerate, with\n"
          "exact ground truth.  Settings come from the defaults, then FILE, then -s overrides;\n"
          "ranges [lo, hi] are drawn once per video from synth.seed (see docs/synth.md).\n\n"
          "Writes into DIR (created if needed):\n"
          "  video.h5    /frames uint8|uint16 [T,H,W], the config and drawn parameters as\n"
          "              attributes\n"
          "  gt.txt      frame,id,x,y,w,h,conf,class,visibility (class 1 metal, 2 oxide)\n"
          "  events.csv  frame,type,parents,children (merge | split)\n"
          "  config.cfg  the effective configuration\n\n"
          "Options:\n"
          "  -c, --config FILE   configuration file (libconfig), e.g. config/synth/sparse.cfg\n"
          "  -s, --set K=V       override one setting, e.g. -s synth.frames=500 (repeatable)\n"
          "  -o, --output DIR    output directory\n"
          "  -q, --quiet         print nothing on success\n"
          "  -h, --help          this help\n\n"
          "Example:\n"
          "  nptrack synth -c config/synth/sintering.cfg -s synth.seed=7 -o out/sinter7\n");
}

int npt_cmd_synth(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
      {"output", required_argument, NULL, 'o'}, {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  npt_cli_cfgopts co = {0};
  const char *outdir = NULL;
  int quiet = 0, opt, rc = 0;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":c:s:o:qh", longopts, NULL)) != -1) {
    int st = npt_cli_cfgopt("synth", opt, argv, &co, usage);
    if (st != NPT_CLI_OWN) {
      if (st >= 0)
        return st;
      continue;
    }
    switch (opt) {
    case 'o':
      outdir = optarg;
      break;
    case 'q':
      quiet = 1;
      break;
    }
  }
  if (optind < argc) {
    npt_cli_cfgopts_free(&co);
    return npt_cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
  }
  if (!outdir || !*outdir) {
    npt_cli_cfgopts_free(&co);
    return npt_cli_usage_error("synth", "no output directory (-o DIR)");
  }
  npt_config *cfg = NULL;
  rc = npt_config_load(&cfg, co.path, co.overrides, co.n_overrides);
  npt_cli_cfgopts_free(&co);
  if (rc < 0)
    return npt_cli_fail("synth", rc);
  npt_synth_stats st;
  rc = npt_synth_run(cfg, outdir, &st);
  npt_config_free(cfg);
  if (rc < 0)
    return npt_cli_fail("synth", rc);
  if (!quiet)
    printf("nptrack synth: wrote %s: %lld frames, %lld boxes, %lld events, %.1f frames/s\n", outdir,
           (long long)st.frames, (long long)st.boxes, (long long)st.events,
           st.seconds_total > 0 ? (double)st.frames / st.seconds_total : 0.0);
  return NPT_EXIT_OK;
}
