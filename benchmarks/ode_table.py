#!/usr/bin/python3
"""NFE against error for every probability-flow ODE method (docs/probability-flow.md).

  /usr/bin/python3 benchmarks/ode_table.py --scoresde build/release/apps/scoresde

Runs `scoresde encode --decode` and `scoresde likelihood` (with --json) on the verification
problems with exact scores and prints Markdown tables, one per problem:

  * sample error: latents z are exact draws of p_T (`--prior exact`, the same rows for every method
    because the draw depends only on --seed), decoded to x_eps (eps = 1e-3). "flow RMS" / "flow max"
    are the RMS and the largest per-sample max-norm distance of the decoded rows to the exact
    probability-flow map of the same latents (for a Gaussian the closed form, GaussianFlowMap; for
    a mixture a Fehlberg 7(8) solve at rtol = atol = 1e-12, whose own error is checked against the
    closed form on the Gaussian problems and printed). "Fréchet" is the squared Fréchet distance of
    the decoded rows' moments to p_eps, next to the same statistic for as many exact draws of p_eps
    (the Monte-Carlo floor: below it a method's error is invisible in sample statistics).
  * likelihood error: the mean absolute error of log p_eps(x) (eps = 1e-5, exact divergence, exact
    prior p_T, so the ODE is the only source of error) over rows drawn from p_0, in nats.
    The fast samplers (DPM-Solver, DPM-Solver++, EDM) only decode; they have no likelihood column.

NFE is score evaluations per sample (the mean over samples for per-sample step control, with the
maximum); accepted / rejected steps are means per sample. Seconds are the solver's own time
(one thread unless --threads), for orientation only: they are taken on whatever load the machine
has (printed with the settings).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FIXED = {"euler": [10, 30, 100, 300, 1000], "heun": [5, 10, 30, 100, 300],
         "rk4": [3, 5, 10, 30, 100]}
ADAPTIVE = ["rk45", "cash-karp", "fehlberg78"]
TOLERANCES = [1e-3, 1e-5, 1e-7]
# --steps of the fast samplers: DPM-Solver's evaluation budget, DPM-Solver++(2M)'s steps (one
# evaluation each), EDM's noise levels N (2 (N - 1) evaluations when stopping at eps).
FAST = {"dpm-solver-1": [10, 20, 50], "dpm-solver-2": [10, 20, 50], "dpm-solver-3": [10, 20, 50],
        "dpm-solver++2m": [10, 20, 50], "edm-heun": [5, 10, 25]}


def run(scoresde, args):
    command = [scoresde] + args + ["--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("failed: " + " ".join(command) + "\n" + done.stderr)
    return json.loads(done.stdout)


def flow_errors(decoded, reference):
    per_sample = np.max(np.abs(decoded - reference), axis=1)
    return float(np.sqrt(np.mean((decoded - reference) ** 2))), float(per_sample.max())


def problem_table(args, problem, tmp):
    name = os.path.basename(problem)
    common = ["--problem", problem, "--threads", str(args.threads), "--seed", str(args.seed)]
    decode = ["encode", "--decode", "--prior", "exact", "--n", str(args.n)] + common
    out = os.path.join(tmp, "x.npy")
    tight = run(args.scoresde, decode + ["--method", "fehlberg78", "--rtol", "1e-12", "--atol",
                                         "1e-12", "--out", out])
    reference = np.load(out)
    lines = [f"### {name} (d = {reference.shape[1]}, VP, {args.n} decoded rows, "
             f"{args.n_likelihood} likelihood rows)", ""]
    if "flow_map_error" in tight:
        lines.append(f"Reference flow map: Fehlberg 7(8) at rtol = atol = 1e-12 ({tight['nfe']} "
                     f"NFE per sample), within {tight['flow_map_error']['max_abs']:.1e} of the "
                     f"closed-form flow map.")
    else:
        lines.append(f"Reference flow map: Fehlberg 7(8) at rtol = atol = 1e-12 "
                     f"({tight['nfe']} NFE per sample).")
    lines.append(f"Fréchet floor (exact draws of p_eps, n = {args.n}): "
                 f"{tight['frechet_floor']:.1e}.")
    lines += ["", "| method | setting | step control | NFE (max) | accepted / rejected | flow RMS | "
              "flow max | Fréchet | log p error (nats) | NFE (likelihood) | seconds (decode) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []

    def row(method, setting, control, extra, likelihood=True):
        dec = run(args.scoresde, decode + ["--method", method, "--out", out] + extra)
        rms, worst = flow_errors(np.load(out), reference)
        entry = {"problem": name, "method": method, "setting": setting, "step_control": control,
                 "nfe": dec["nfe"], "nfe_max": dec["nfe_max"],
                 "accepted": dec.get("accepted_steps"), "rejected": dec.get("rejected_steps"),
                 "flow_rms": rms, "flow_max": worst, "frechet": dec["frechet_to_p_eps"],
                 "seconds": dec["seconds"]}
        if likelihood:
            lik = run(args.scoresde, ["likelihood", "--n", str(args.n_likelihood), "--prior",
                                      "exact", "--method", method] + common + extra)
            entry["logp_error"] = lik["error"]["mean_abs"]
            entry["likelihood_nfe"] = lik["nfe"]
        rows.append(entry)
        steps = ("%d / %d" % (entry["accepted"], entry["rejected"])
                 if control not in ("fixed", "—") else "—")
        lines.append(
            "| %s | %s | %s | %d (%d) | %s | %.2e | %.2e | %.1e | %s | %s | %.3f |" % (
                method, setting, control, entry["nfe"], entry["nfe_max"], steps, rms, worst,
                entry["frechet"],
                "%.2e" % entry["logp_error"] if likelihood else "—",
                str(entry["likelihood_nfe"]) if likelihood else "—", entry["seconds"]))

    for method, steps in FIXED.items():
        for n in steps:
            row(method, f"{n} steps", "fixed", ["--steps", str(n)])
    for method in ADAPTIVE:
        for tol in TOLERANCES:
            for control in ("per-sample", "shared"):
                row(method, f"tol {tol:g}", control,
                    ["--rtol", str(tol), "--atol", str(tol), "--step-control", control])
    for method, steps in FAST.items():
        for n in steps:
            row(method, f"--steps {n}", "—", ["--steps", str(n)], likelihood=False)
    return lines, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scoresde", default=os.path.join(ROOT, "build", "release", "apps", "scoresde"))
    parser.add_argument("--problems", nargs="+",
                        default=[os.path.join(ROOT, "verification", "problems", p)
                                 for p in ("gaussian_2d.json", "gaussian_5d.json", "gmm_2d.json")])
    parser.add_argument("--n", type=int, default=2000, help="decoded rows per problem")
    parser.add_argument("--n-likelihood", type=int, default=500, help="likelihood rows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", help="also write every row as JSON here")
    args = parser.parse_args()
    if not os.access(args.scoresde, os.X_OK):
        sys.exit(f"no scoresde program at {args.scoresde} (build it, or pass --scoresde)")
    all_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for problem in args.problems:
            lines, rows = problem_table(args, problem, tmp)
            print("\n".join(lines) + "\n")
            all_rows += rows
    print(f"settings: threads = {args.threads}, seed = {args.seed}, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(all_rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
