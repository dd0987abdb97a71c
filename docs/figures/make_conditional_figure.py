#!/usr/bin/python3
"""Figure and table of docs/controllable-generation.md, made with the scoresde program.

  /usr/bin/python3 docs/figures/make_conditional_figure.py --scoresde build/release/apps/scoresde/scoresde

Runs `scoresde sample --observe ... --condition-method ... --json` on closed-form cases and
  * prints the Markdown table of each method's distance to the exact posterior p_eps(x | y) and its
    cost (NFE per sample, seconds), as pasted into the docs page;
  * draws docs/figures/conditional_imputation.png: imputed samples of a 2-d Gaussian mixture
    (x1 observed, x2 imputed) by each method against the exact conditional density.
Needs numpy and matplotlib (Debian's python3-numpy, python3-matplotlib); skips the figure with a
message when matplotlib is absent.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GMM = os.path.join(ROOT, "verification", "problems", "gmm_2d.json")

# The 4-d Gaussian of the measurement (verification/suites/conditional_suite.cpp).
GAUSSIAN4 = {
    "type": "gaussian",
    "mean": [0.5, -0.5, 1.0, 0.0],
    "cov": [[1.0, 0.6, 0.3, 0.0], [0.6, 1.0, 0.6, 0.3], [0.3, 0.6, 1.0, 0.6], [0.0, 0.3, 0.6, 1.0]],
}


def run(scoresde, args):
    command = [scoresde, "sample", "--json"] + args
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("failed: " + " ".join(command) + "\n" + done.stderr)
    return json.loads(done.stdout)


def write_observation(path, values):
    with open(path, "w") as f:
        f.write(",".join("nan" if v is None else repr(v) for v in values) + "\n")


def table(scoresde, tmp, n, steps, seed):
    g4 = os.path.join(tmp, "gaussian4.json")
    with open(g4, "w") as f:
        json.dump(GAUSSIAN4, f)
    obs4 = os.path.join(tmp, "obs4.csv")
    write_observation(obs4, [1.7, None, -0.6, None])
    obs2 = os.path.join(tmp, "obs2.csv")
    write_observation(obs2, [0.8, None])
    out = os.path.join(tmp, "x.npy")
    common = ["--score", "analytic", "--n", str(n), "--steps", str(steps), "--seed", str(seed),
              "--threads", "2", "--out", out]
    pc = ["--predictor", "reverse-diffusion", "--corrector", "langevin"]
    p_only = ["--predictor", "reverse-diffusion", "--corrector", "none"]
    em = ["--predictor", "euler-maruyama", "--corrector", "none"]
    cases = [
        ("4-d Gaussian, x0 and x2 observed", ["--problem", g4, "--observe", obs4], [
            ("exact", ["--condition-method", "exact"] + em),
            ("replacement (P)", ["--condition-method", "replacement"] + p_only),
            ("replacement (PC)", ["--condition-method", "replacement"] + pc),
            ("pigdm", ["--condition-method", "pigdm"] + em),
        ]),
        ("2-d mixture, x1 observed", ["--problem", GMM, "--observe", obs2], [
            ("exact", ["--condition-method", "exact"] + em),
            ("replacement (P)", ["--condition-method", "replacement"] + p_only),
            ("replacement (PC)", ["--condition-method", "replacement"] + pc),
            ("pigdm", ["--condition-method", "pigdm"] + em),
        ]),
        ("2-d mixture, x1 + N(0, 0.3²) observed",
         ["--problem", GMM, "--observe", obs2, "--observation-noise", "0.3"], [
            ("exact", ["--condition-method", "exact"] + em),
            ("pigdm", ["--condition-method", "pigdm"] + em),
            ("smc (64 particles)", ["--condition-method", "smc", "--particles", "64"] + em),
        ]),
    ]
    rows = ["| case | method | mean error (posterior sd) | Fréchet | sliced W2 (floor) | NFE | seconds |",
            "|---|---|---|---|---|---|---|"]
    for case, case_args, methods in cases:
        for name, method_args in methods:
            r = run(scoresde, common + case_args + method_args)
            fit = r["conditional_fit"]
            rows.append("| %s | %s | %.3f | %.3f | %.3f (%.3f) | %d | %.2f |" % (
                case, name, fit["mean_error_sd"], fit["frechet"], fit["sliced_wasserstein"],
                fit["sliced_wasserstein_floor"], r["nfe"], r["seconds"]))
    print("\n".join(rows))


def gmm_conditional_density(x1, grid):
    """p(x2 | x1) for the problem gmm_2d.json (the p_0 posterior; p_eps differs by O(eps))."""
    with open(GMM) as f:
        p = json.load(f)
    total = np.zeros_like(grid)
    weights = []
    parts = []
    for w, m, c in zip(p["weights"], p["means"], p["covs"]):
        c = np.array(c)
        m = np.array(m)
        marginal = w * math.exp(-0.5 * (x1 - m[0]) ** 2 / c[0, 0]) / math.sqrt(2 * math.pi * c[0, 0])
        mean = m[1] + c[1, 0] / c[0, 0] * (x1 - m[0])
        var = c[1, 1] - c[1, 0] ** 2 / c[0, 0]
        weights.append(marginal)
        parts.append(np.exp(-0.5 * (grid - mean) ** 2 / var) / np.sqrt(2 * np.pi * var))
    weights = np.array(weights) / sum(weights)
    for w, part in zip(weights, parts):
        total += w * part
    return total


def figure(scoresde, tmp, n, steps, seed, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the figure")
        return
    out = os.path.join(tmp, "x.npy")
    base = ["--problem", GMM, "--score", "analytic", "--steps", str(steps), "--seed", str(seed),
            "--threads", "2", "--out", out]
    run(scoresde, base + ["--n", str(n)])
    prior = np.load(out)
    observed = [-2.0, 0.5, 1.5]
    methods = [("exact", ["--predictor", "euler-maruyama", "--corrector", "none"]),
               ("replacement", ["--predictor", "reverse-diffusion", "--corrector", "none"]),
               ("pigdm", ["--predictor", "euler-maruyama", "--corrector", "none"])]
    fig, axes = plt.subplots(1, 1 + len(observed), figsize=(16, 3.8))
    axes[0].scatter(prior[:, 0], prior[:, 1], s=2, alpha=0.3, color="gray")
    axes[0].set_title("p_0 (gmm_2d.json) and observed x1")
    axes[0].set_xlabel("x1")
    axes[0].set_ylabel("x2")
    grid = np.linspace(-4.5, 3.5, 400)
    for k, x1 in enumerate(observed):
        axes[0].axvline(x1, color="C%d" % k, lw=1)
        obs = os.path.join(tmp, "obs.csv")
        write_observation(obs, [x1, None])
        ax = axes[1 + k]
        for j, (name, args) in enumerate(methods):
            run(scoresde, base + ["--n", str(n), "--observe", obs, "--condition-method", name] + args)
            x = np.load(out)
            ax.hist(x[:, 1], bins=60, range=(grid[0], grid[-1]), density=True, histtype="step",
                    lw=1.3, label=name)
        ax.plot(grid, gmm_conditional_density(x1, grid), "k--", lw=1, label="exact p(x2 | x1)")
        ax.set_title("x1 = %.1f: imputed x2" % x1)
        ax.set_xlabel("x2")
        if k == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scoresde", default=os.path.join(ROOT, "build", "release", "apps",
                                                           "scoresde", "scoresde"))
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "conditional_imputation.png"))
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-figure", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(args.scoresde):
        sys.exit("no scoresde program at %s (build it, or pass --scoresde)" % args.scoresde)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_table:
            table(args.scoresde, tmp, args.n, args.steps, args.seed)
        if not args.skip_figure:
            figure(args.scoresde, tmp, 4000, args.steps, args.seed, args.out)


if __name__ == "__main__":
    main()
