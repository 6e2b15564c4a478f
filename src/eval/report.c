/* Writing evaluation results: one JSON object (for scripts; %.17g keeps doubles exact) or a
 * short table (for people). */
#include <stdint.h>
#include <stdio.h>

#include "eval/eval.h"

static void json_prf(FILE *f, const char *name, const npt_event_prf *s, int last) {
  fprintf(f,
          "    \"%s\": {\"precision\": %.17g, \"recall\": %.17g, \"f1\": %.17g, \"tp\": %lld, "
          "\"n_gt\": %lld, \"n_pred\": %lld}%s\n",
          name, s->precision, s->recall, s->f1, (long long)s->tp, (long long)s->n_gt,
          (long long)s->n_pred, last ? "" : ",");
}

void npt_eval_write_json(FILE *f, const npt_eval_result *r, const npt_event_scores *events) {
  /* In the order of the list; integers without a decimal point. */
  const struct {
    const char *key;
    double real;
    int64_t count;
    int is_count;
  } fields[] = {
      {"HOTA", r->hota, 0, 0},
      {"DetA", r->deta, 0, 0},
      {"AssA", r->assa, 0, 0},
      {"LocA", r->loca, 0, 0},
      {"DetRe", r->detre, 0, 0},
      {"DetPr", r->detpr, 0, 0},
      {"AssRe", r->assre, 0, 0},
      {"AssPr", r->asspr, 0, 0},
      {"MOTA", r->mota, 0, 0},
      {"MOTP", r->motp, 0, 0},
      {"IDSW", 0, r->idsw, 1},
      {"Frag", 0, r->frag, 1},
      {"FP", 0, r->fp, 1},
      {"FN", 0, r->fn, 1},
      {"TP", 0, r->tp, 1},
      {"MT", 0, r->mt, 1},
      {"PT", 0, r->pt, 1},
      {"ML", 0, r->ml, 1},
      {"IDF1", r->idf1, 0, 0},
      {"IDP", r->idp, 0, 0},
      {"IDR", r->idr, 0, 0},
      {"IDTP", 0, r->idtp, 1},
      {"IDFP", 0, r->idfp, 1},
      {"IDFN", 0, r->idfn, 1},
      {"class_accuracy", r->class_accuracy, 0, 0},
      {"class_matches", 0, r->class_matches, 1},
      {"frames", 0, r->n_frames, 1},
      {"gt_dets", 0, r->n_gt_dets, 1},
      {"pred_dets", 0, r->n_pred_dets, 1},
      {"gt_ids", 0, r->n_gt_ids, 1},
      {"pred_ids", 0, r->n_pred_ids, 1},
  };
  size_t n = sizeof fields / sizeof fields[0];
  fprintf(f, "{\n");
  for (size_t k = 0; k < n; k++) {
    const char *sep = (k + 1 < n || events) ? "," : "";
    if (fields[k].is_count)
      fprintf(f, "  \"%s\": %lld%s\n", fields[k].key, (long long)fields[k].count, sep);
    else
      fprintf(f, "  \"%s\": %.17g%s\n", fields[k].key, fields[k].real, sep);
  }
  if (events) {
    fprintf(f, "  \"events\": {\n    \"frame_tolerance\": %d,\n", NPT_EVENT_FRAME_TOLERANCE);
    json_prf(f, "merge", &events->merge, 0);
    json_prf(f, "split", &events->split, 0);
    json_prf(f, "all", &events->all, 1);
    fprintf(f, "  }\n");
  }
  fprintf(f, "}\n");
}

void npt_eval_write_table(FILE *f, const npt_eval_result *r, const npt_event_scores *events) {
  fprintf(f,
          "%lld frames; ground truth %lld boxes / %lld ids; prediction %lld boxes / %lld ids\n\n",
          (long long)r->n_frames, (long long)r->n_gt_dets, (long long)r->n_gt_ids,
          (long long)r->n_pred_dets, (long long)r->n_pred_ids);
  fprintf(f, "HOTA  %7.3f   DetA  %7.3f   AssA  %7.3f   LocA  %7.3f\n", 100 * r->hota,
          100 * r->deta, 100 * r->assa, 100 * r->loca);
  fprintf(f, "                DetRe %7.3f   DetPr %7.3f   AssRe %7.3f   AssPr %7.3f\n",
          100 * r->detre, 100 * r->detpr, 100 * r->assre, 100 * r->asspr);
  fprintf(f,
          "MOTA  %7.3f   MOTP  %7.3f   IDSW %lld  Frag %lld  TP %lld  FP %lld  FN %lld  "
          "MT %lld  PT %lld  ML %lld\n",
          100 * r->mota, 100 * r->motp, (long long)r->idsw, (long long)r->frag, (long long)r->tp,
          (long long)r->fp, (long long)r->fn, (long long)r->mt, (long long)r->pt, (long long)r->ml);
  fprintf(f, "IDF1  %7.3f   IDP   %7.3f   IDR   %7.3f   IDTP %lld  IDFP %lld  IDFN %lld\n",
          100 * r->idf1, 100 * r->idp, 100 * r->idr, (long long)r->idtp, (long long)r->idfp,
          (long long)r->idfn);
  fprintf(f, "class accuracy of matched boxes %.3f (%lld of %lld matches)\n",
          100 * r->class_accuracy, (long long)r->class_matches, (long long)r->tp);
  if (events) {
    fprintf(f, "\nevents (+-%d frames)  precision   recall       F1   tp / gt / pred\n",
            NPT_EVENT_FRAME_TOLERANCE);
    const npt_event_prf *s[3] = {&events->merge, &events->split, &events->all};
    const char *names[3] = {"merge", "split", "all"};
    for (int k = 0; k < 3; k++)
      fprintf(f, "  %-19s %9.3f %8.3f %8.3f   %lld / %lld / %lld\n", names[k],
              100 * s[k]->precision, 100 * s[k]->recall, 100 * s[k]->f1, (long long)s[k]->tp,
              (long long)s[k]->n_gt, (long long)s[k]->n_pred);
  }
  fprintf(f, "\n(percentages; HOTA family averaged over alpha = 0.05..0.95)\n");
}
