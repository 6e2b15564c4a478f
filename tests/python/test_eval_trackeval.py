"""`nptrack eval` against TrackEval 1.3.0, metric by metric.

Usage: PYTHON test_eval_trackeval.py NPTRACK_BIN SCRATCH_DIR

For every case of eval_cases.py, writes the gt/pred files, runs `nptrack eval --json`, and
computes the reference by calling TrackEval's HOTA, CLEAR and Identity eval_sequence on data
dicts built from the same rows (not TrackEval's MOTChallenge loader, which drops class 2).
Every metric must agree to 1e-6.  Also compares the C assignment with scipy's on tie-heavy
matrices (exact equality of the chosen pairs) and checks event scores against a brute-force
reference that uses TrackEval's own Identity assignment.  Exits non-zero on any mismatch.
"""

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import scipy.optimize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_cases  # noqa: E402

with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints about optional datasets
    import trackeval  # noqa: E402
    from trackeval.datasets._base_dataset import _BaseDataset  # noqa: E402
    import trackeval.metrics.clear as te_clear  # noqa: E402
    import trackeval.metrics.identity as te_identity  # noqa: E402

TOL = 1e-6
HOTA_KEYS = ["HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr"]
CLEAR_KEYS = {"MOTA": "MOTA", "MOTP": "MOTP", "IDSW": "IDSW", "Frag": "Frag", "FP": "CLR_FP",
              "FN": "CLR_FN", "TP": "CLR_TP", "MT": "MT", "PT": "PT", "ML": "ML"}
ID_KEYS = ["IDF1", "IDP", "IDR", "IDTP", "IDFP", "IDFN"]


class Recorder:
    """Wraps scipy's linear_sum_assignment inside a TrackEval module to see its matches."""

    def __init__(self, module):
        self.module, self.calls = module, []

    def __enter__(self):
        def wrapped(cost):
            r, c = scipy.optimize.linear_sum_assignment(cost)
            self.calls.append((np.array(cost), r, c))
            return r, c
        self.module.linear_sum_assignment = wrapped
        return self

    def __exit__(self, *exc):
        self.module.linear_sum_assignment = scipy.optimize.linear_sum_assignment


def build_data(gt_rows, pred_rows):
    """The data dict TrackEval's metrics take, from rows in file order."""
    n_t = max([r[0] for r in gt_rows + pred_rows], default=0)
    gt_u = np.unique([r[1] for r in gt_rows]).astype(int)
    pr_u = np.unique([r[1] for r in pred_rows]).astype(int)
    data = dict(num_timesteps=n_t, num_gt_dets=len(gt_rows), num_tracker_dets=len(pred_rows),
                num_gt_ids=len(gt_u), num_tracker_ids=len(pr_u), gt_ids=[], tracker_ids=[],
                similarity_scores=[], gt_classes=[], tracker_classes=[], seq="case")
    by_frame_gt = {t: [] for t in range(1, n_t + 1)}
    by_frame_pr = {t: [] for t in range(1, n_t + 1)}
    for r in gt_rows:
        by_frame_gt[r[0]].append(r)
    for r in pred_rows:
        by_frame_pr[r[0]].append(r)
    for t in range(1, n_t + 1):
        g, p = by_frame_gt[t], by_frame_pr[t]
        gd = np.array([r[2:6] for r in g], dtype=float).reshape(-1, 4)
        pd = np.array([r[2:6] for r in p], dtype=float).reshape(-1, 4)
        data["gt_ids"].append(np.searchsorted(gt_u, [r[1] for r in g]).astype(int))
        data["tracker_ids"].append(np.searchsorted(pr_u, [r[1] for r in p]).astype(int))
        data["gt_classes"].append(np.array([r[7] for r in g], dtype=int))
        data["tracker_classes"].append(np.array([r[7] for r in p], dtype=int))
        data["similarity_scores"].append(_BaseDataset._calculate_box_ious(gd, pd, box_format="xywh"))
    return data, gt_u, pr_u


def reference(gt_rows, pred_rows):
    data, gt_u, pr_u = build_data(gt_rows, pred_rows)
    hota = trackeval.metrics.HOTA().eval_sequence(data)
    with Recorder(te_clear) as rec_clear:
        clear = trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)
    with Recorder(te_identity) as rec_id:
        ident = trackeval.metrics.Identity({"PRINT_CONFIG": False}).eval_sequence(data)
    ref = {k: float(np.mean(hota[k])) for k in HOTA_KEYS}
    ref.update({k: float(clear[v]) for k, v in CLEAR_KEYS.items()})
    ref.update({k: float(ident[k]) for k in ID_KEYS})

    # Class accuracy: CLEAR's matches (score > eps), in the timesteps it matched.
    both = [t for t in range(data["num_timesteps"])
            if len(data["gt_ids"][t]) and len(data["tracker_ids"][t])]
    agree = matched = 0
    if rec_clear.calls:
        assert len(rec_clear.calls) == len(both)
        for t, (cost, r, c) in zip(both, rec_clear.calls):
            keep = -cost[r, c] > np.finfo("float").eps
            r, c = r[keep], c[keep]
            matched += len(r)
            agree += int(np.sum(data["gt_classes"][t][r] == data["tracker_classes"][t][c]))
    ref["class_accuracy"] = agree / max(1, matched)

    # Identity's gt id <-> tracker id correspondence (pairs with at least one IDTP).
    pairs = {}
    if rec_id.calls:
        co = np.zeros((len(gt_u), len(pr_u)))
        for t in range(data["num_timesteps"]):
            gi, ti = np.nonzero(data["similarity_scores"][t] >= 0.5)
            co[data["gt_ids"][t][gi], data["tracker_ids"][t][ti]] += 1
        _, r, c = rec_id.calls[0]
        for i, j in zip(r, c):
            if i < len(gt_u) and j < len(pr_u) and co[i, j] > 0:
                pairs[int(gt_u[i])] = int(pr_u[j])
    return ref, pairs


def events_reference(events_gt, events_pred, pairs):
    """Brute force: the matching with the most pairs, then the least total frame difference."""
    def candidate(e, f):
        return (e[1] == f[1] and abs(e[0] - f[0]) <= 3
                and any(pairs.get(p) in f[2] for p in e[2])
                and any(pairs.get(c) in f[3] for c in e[3]))
    cand = [[j for j, f in enumerate(events_pred) if candidate(e, f)] for e in events_gt]
    best = (0, 0, ())
    for choice in itertools.product(*[[None] + c for c in cand]):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)):
            continue
        df = sum(abs(events_gt[i][0] - events_pred[j][0]) for i, j in enumerate(choice)
                 if j is not None)
        key = (len(used), -df)
        if key > best[:2]:
            best = (len(used), -df, choice)
    out = {}
    for kind in ("merge", "split", None):
        n_gt = sum(1 for e in events_gt if kind in (None, e[1]))
        n_pred = sum(1 for f in events_pred if kind in (None, f[1]))
        tp = sum(1 for i, j in enumerate(best[2])
                 if j is not None and kind in (None, events_gt[i][1]))
        p, r = tp / max(1, n_pred), tp / max(1, n_gt)
        out[kind or "all"] = dict(tp=tp, n_gt=n_gt, n_pred=n_pred, precision=p, recall=r,
                                  f1=2 * p * r / (p + r) if p + r > 0 else 0.0)
    return out


def run_eval(binary, gt_path, pred_path, extra=()):
    cmd = [binary, "eval", "--gt", gt_path, "--pred", pred_path, "--json", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return json.loads(p.stdout)


def check_lsa(binary, scratch):
    bad = 0
    mats = eval_cases.lsa_matrices()
    for k, m in enumerate(mats):
        path = os.path.join(scratch, "lsa.txt")
        with open(path, "w") as f:
            f.write("%d %d\n" % m.shape)
            for r in m:
                f.write(" ".join(repr(float(v)) for v in r) + "\n")
        p = subprocess.run([binary, "eval", "--lsa-selftest", path], capture_output=True,
                           text=True)
        got = [tuple(map(int, line.split())) for line in p.stdout.split("\n") if line.strip()]
        r, c = scipy.optimize.linear_sum_assignment(m)
        want = list(zip(r.tolist(), c.tolist()))
        if p.returncode != 0 or got != want:
            bad += 1
            print("LSA MISMATCH matrix %d shape %s:\n%s\n  nptrack %s\n  scipy   %s"
                  % (k, m.shape, m, got, want))
    print("lsa: %d tie-heavy matrices, %d differ from scipy" % (len(mats), bad))
    return bad


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    failures = check_lsa(binary, scratch)
    max_diff = 0.0
    keys = HOTA_KEYS + list(CLEAR_KEYS) + ID_KEYS + ["class_accuracy"]
    print("%-18s %6s %6s %8s %8s %8s %10s" % ("case", "gt", "pred", "HOTA", "MOTA", "IDF1",
                                              "max|diff|"))
    for case in eval_cases.cases():
        name = case["name"]
        gt_path = os.path.join(scratch, name + "_gt.txt")
        pred_path = os.path.join(scratch, name + "_pred.txt")
        eval_cases.write_mot(gt_path, case["gt"])
        # Predictions with 6, 8 and 9 columns and blank lines, as trackers write them.
        columns = 6 if name.startswith("random_1") else (8 if name == "crowded" else 9)
        pred_rows = case["pred"]
        if columns == 6:
            pred_rows = [r[:7] + (1,) + r[8:] for r in pred_rows]
        eval_cases.write_mot(pred_path, case["pred"], columns=columns, blank_lines=True)
        extra = []
        if "events_gt" in case:
            egt = os.path.join(scratch, name + "_events_gt.csv")
            epr = os.path.join(scratch, name + "_events_pred.csv")
            eval_cases.write_events(egt, case["events_gt"])
            eval_cases.write_events(epr, case["events_pred"])
            extra = ["--events-gt", egt, "--events-pred", epr]
        try:
            got = run_eval(binary, gt_path, pred_path, extra)
        except RuntimeError as e:
            print("FAIL %s: %s" % (name, e))
            failures += 1
            continue
        ref, pairs = reference(case["gt"], pred_rows)
        diffs = {k: abs(float(got[k]) - ref[k]) for k in keys}
        worst = max(diffs.values())
        max_diff = max(max_diff, worst)
        bad = [k for k in keys if not diffs[k] <= TOL]
        print("%-18s %6d %6d %8.4f %8.4f %8.4f %10.2e%s"
              % (name, len(case["gt"]), len(pred_rows), got["HOTA"], got["MOTA"], got["IDF1"],
                 worst, "" if not bad else "  MISMATCH"))
        for k in bad:
            print("    %-15s nptrack %.17g  TrackEval %.17g" % (k, float(got[k]), ref[k]))
        failures += bool(bad)

        if "events_gt" in case:
            want = events_reference(case["events_gt"], case["events_pred"], pairs)
            for kind, w in want.items():
                g = got["events"][kind]
                for k, v in w.items():
                    if abs(g[k] - v) > TOL:
                        print("    events.%s.%s nptrack %r reference %r" % (kind, k, g[k], v))
                        failures += 1
            print("%-18s merge tp %d/%d/%d, split tp %d/%d/%d (tp/gt/pred) agree: %s"
                  % ("  events", want["merge"]["tp"], want["merge"]["n_gt"],
                     want["merge"]["n_pred"], want["split"]["tp"], want["split"]["n_gt"],
                     want["split"]["n_pred"], got["events"]["all"]["tp"] == want["all"]["tp"]))

        if case.get("class_free_twin"):
            # The same tracks with every class set to 1: tracking scores must not move.
            gt2 = os.path.join(scratch, name + "_gt_cls1.txt")
            pr2 = os.path.join(scratch, name + "_pred_cls1.txt")
            eval_cases.write_mot(gt2, [r[:7] + (1,) + r[8:] for r in case["gt"]])
            eval_cases.write_mot(pr2, [r[:7] + (1,) + r[8:] for r in case["pred"]])
            twin = run_eval(binary, gt2, pr2)
            moved = [k for k in keys if k != "class_accuracy" and twin[k] != got[k]]
            if moved or twin["class_accuracy"] != 1.0 or got["class_accuracy"] >= 1.0:
                print("    classes changed tracking scores: %s" % moved)
                failures += 1

    print("max |nptrack - TrackEval| over all cases and metrics: %.3g" % max_diff)
    print("FAILED (%d)" % failures if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
