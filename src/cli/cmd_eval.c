/* nptrack eval: score predicted tracks (and optionally merge/split events) against ground truth
 * with TrackEval's HOTA, CLEAR-MOT and Identity metrics. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/error.h"
#include "eval/eval.h"

static const char *const CMD = "eval";

static void print_help(FILE *f) {
  fprintf(
      f,
      "Usage: nptrack eval --gt GT.txt --pred PRED.txt [--events-gt E.csv --events-pred E2.csv]\n"
      "                    [--json]\n\n"
      "Scores predicted tracks against ground truth with HOTA (DetA, AssA, LocA), CLEAR-MOT\n"
      "(MOTA, MOTP, IDSW, Frag, FP, FN) and IDF1, computed as TrackEval 1.3.0 does, with IoU\n"
      "similarity.  The class column is ignored for tracking; the class accuracy of matched\n"
      "boxes is reported separately.\n\n"
      "Options:\n"
      "  --gt FILE           ground truth, MOT text: frame,id,x,y,w,h,conf,class,visibility\n"
      "  --pred FILE         predicted tracks, MOT text with 6 to 10 columns (class defaults to "
      "1)\n"
      "  --events-gt FILE    true merge/split events, CSV: frame,type,parents,children\n"
      "  --events-pred FILE  predicted events (needs --events-gt)\n"
      "  --json              print one JSON object instead of a table\n"
      "  -h, --help          show this help\n\n"
      "Example:\n"
      "  nptrack eval --gt run1/gt.txt --pred run1/tracks.txt \\\n"
      "               --events-gt run1/events.csv --events-pred run1/tracks_events.csv --json\n\n"
      "Definitions, file formats and TrackEval's conventions: docs/eval.md.\n"
      "Exit status: 0 success, 1 unreadable or malformed input, 2 usage error.\n");
}

/* Debugging aid for the tests (not in --help): reads "NR NC" and NR*NC costs, prints the
 * assignment as "row col" lines. */
static int lsa_selftest(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    npt_error_set(NPT_EIO, "%s: cannot open", path);
    return npt_cli_fail(CMD, NPT_EIO);
  }
  size_t nr = 0, nc = 0;
  int rc = 0;
  double *cost = NULL;
  int64_t *rows = NULL, *cols = NULL;
  if (fscanf(f, "%zu %zu", &nr, &nc) != 2) {
    rc = npt_error_set(NPT_EFORMAT, "%s: expected 'NR NC' first", path);
    goto done;
  }
  cost = malloc((nr * nc > 0 ? nr * nc : 1) * sizeof *cost);
  rows = malloc((nr + nc + 1) * sizeof *rows);
  cols = malloc((nr + nc + 1) * sizeof *cols);
  if (!cost || !rows || !cols) {
    rc = npt_error_set(NPT_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < nr * nc; k++)
    if (fscanf(f, "%lf", &cost[k]) != 1) {
      rc = npt_error_set(NPT_EFORMAT, "%s: expected %zu costs", path, nr * nc);
      goto done;
    }
  rc = npt_lsa_solve(nr, nc, cost, rows, cols);
  if (rc == 0) {
    size_t k = nr < nc ? nr : nc;
    for (size_t i = 0; i < k; i++)
      printf("%lld %lld\n", (long long)rows[i], (long long)cols[i]);
  }
done:
  fclose(f);
  free(cost);
  free(rows);
  free(cols);
  return rc < 0 ? npt_cli_fail(CMD, rc) : NPT_EXIT_OK;
}

int npt_cmd_eval(int argc, char **argv) {
  enum { OPT_GT = 256, OPT_PRED, OPT_EGT, OPT_EPRED, OPT_JSON, OPT_LSA };
  static const struct option longopts[] = {
      {"gt", required_argument, NULL, OPT_GT},
      {"pred", required_argument, NULL, OPT_PRED},
      {"events-gt", required_argument, NULL, OPT_EGT},
      {"events-pred", required_argument, NULL, OPT_EPRED},
      {"json", no_argument, NULL, OPT_JSON},
      {"lsa-selftest", required_argument, NULL, OPT_LSA},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *gt_path = NULL, *pred_path = NULL, *egt_path = NULL, *epred_path = NULL;
  const char *lsa_path = NULL;
  int json = 0;
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_GT:
      gt_path = optarg;
      break;
    case OPT_PRED:
      pred_path = optarg;
      break;
    case OPT_EGT:
      egt_path = optarg;
      break;
    case OPT_EPRED:
      epred_path = optarg;
      break;
    case OPT_JSON:
      json = 1;
      break;
    case OPT_LSA:
      lsa_path = optarg;
      break;
    case 'h':
      print_help(stdout);
      return NPT_EXIT_OK;
    case ':':
      return npt_cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
    default:
      if (optopt > 0 && optopt < 256)
        return npt_cli_usage_error(CMD, "unknown option '-%c'", optopt);
      return npt_cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return npt_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
  if (lsa_path)
    return lsa_selftest(lsa_path);
  if (!gt_path)
    return npt_cli_usage_error(CMD, "missing --gt FILE");
  if (!pred_path)
    return npt_cli_usage_error(CMD, "missing --pred FILE");
  if (!egt_path != !epred_path)
    return npt_cli_usage_error(CMD, "--events-gt and --events-pred go together");

  npt_mot *gt = NULL, *pred = NULL;
  npt_events *egt = NULL, *epred = NULL;
  npt_id_pair *pairs = NULL;
  size_t n_pairs = 0;
  npt_eval_result res;
  npt_event_scores ev;
  int rc;
  if ((rc = npt_mot_read(gt_path, &gt)) < 0 || (rc = npt_mot_read(pred_path, &pred)) < 0)
    goto done;
  if (egt_path && ((rc = npt_events_read(egt_path, &egt)) < 0 ||
                   (rc = npt_events_read(epred_path, &epred)) < 0))
    goto done;
  if ((rc = npt_eval_run(gt, pred, &res, &pairs, &n_pairs)) < 0)
    goto done;
  if (egt && (rc = npt_events_score(egt, epred, pairs, n_pairs, &ev, NULL)) < 0)
    goto done;
  if (json)
    npt_eval_write_json(stdout, &res, egt ? &ev : NULL);
  else
    npt_eval_write_table(stdout, &res, egt ? &ev : NULL);

done:
  npt_mot_free(gt);
  npt_mot_free(pred);
  npt_events_free(egt);
  npt_events_free(epred);
  free(pairs);
  return rc < 0 ? npt_cli_fail(CMD, rc) : NPT_EXIT_OK;
}
