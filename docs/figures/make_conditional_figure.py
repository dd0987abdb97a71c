#!/usr/bin/python3
"""Figure and table of docs/conditional.md, made with the scoresde program.

  /usr/bin/python3 docs/figures/make_conditional_figure.py --scoresde build/release/apps/scoresde

Runs `scoresde sample --observe ... --condition-method ... --json` on closed-form cases and
  * prints the Markdown table of each method's distance to the exact posterior p_eps(x | y) and its
    cost (NFE per sample, seconds), as pasted into the docs page, and checks that guidance at
    gamma = 0 gives the unconditional sampler's output file byte for byte;
  * draws docs/figures/conditional_imputation.png: imputed samples of a 2-d Gaussian mixture
    (x1 observed, x2 imputed) by each method against the exact conditional density;
  * with --fmnist-model MODEL, draws docs/figures/conditional_inpainting.png: the lower half of
    eight Fashion-MNIST test images inpainted by replacement with a trained score model.
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


# A 3-d Gaussian read as one pixel with three colour channels: colorization observes its gray
# value (x0 + x1 + x2)/sqrt(3) (the first row of the Helmert channel mix).
GAUSSIAN3 = {
    "type": "gaussian",
    "mean": [0.2, -0.1, 0.4],
    "cov": [[1.0, 0.5, 0.3], [0.5, 1.0, 0.5], [0.3, 0.5, 1.0]],
}


def table(scoresde, tmp, n, steps, seed):
    g4 = os.path.join(tmp, "gaussian4.json")
    with open(g4, "w") as f:
        json.dump(GAUSSIAN4, f)
    g3 = os.path.join(tmp, "gaussian3.json")
    with open(g3, "w") as f:
        json.dump(GAUSSIAN3, f)
    obs4 = os.path.join(tmp, "obs4.csv")
    write_observation(obs4, [1.7, None, -0.6, None])
    obs2 = os.path.join(tmp, "obs2.csv")
    write_observation(obs2, [0.8, None])
    gray = os.path.join(tmp, "gray.csv")
    write_observation(gray, [0.9])
    out = os.path.join(tmp, "x.npy")
    common = ["--score", "analytic", "--n", str(n), "--steps", str(steps), "--seed", str(seed),
              "--threads", "2", "--out", out]
    pc = ["--predictor", "reverse-diffusion", "--corrector", "langevin"]
    p_only = ["--predictor", "reverse-diffusion", "--corrector", "none"]
    em = ["--predictor", "euler-maruyama", "--corrector", "none"]
    noisy = ["--problem", GMM, "--observe", obs2, "--observation-noise", "0.3"]
    cases = [
        ("4-d Gaussian, x0 and x2 observed", ["--problem", g4, "--observe", obs4], [
            ("exact", ["--condition-method", "exact"] + em),
            ("replacement (P)", ["--condition-method", "replacement"] + p_only),
            ("replacement (PC)", ["--condition-method", "replacement"] + pc),
            ("pigdm", ["--condition-method", "pigdm"] + em),
        ]),
        ("3-d Gaussian as 1 pixel x 3 channels, gray observed", ["--problem", g3, "--observe", gray], [
            ("colorization (P)", ["--condition-method", "colorization", "--channels", "3"] + p_only),
            ("colorization (PC)", ["--condition-method", "colorization", "--channels", "3"] + pc),
        ]),
        ("2-d mixture, x1 observed", ["--problem", GMM, "--observe", obs2], [
            ("exact", ["--condition-method", "exact"] + em),
            ("replacement (P)", ["--condition-method", "replacement"] + p_only),
            ("replacement (PC)", ["--condition-method", "replacement"] + pc),
            ("pigdm", ["--condition-method", "pigdm"] + em),
        ]),
        ("2-d mixture, x1 + N(0, 0.3^2) observed", noisy, [
            ("exact", ["--condition-method", "exact"] + em),
            ("pigdm", ["--condition-method", "pigdm"] + em),
            ("smc, 4 particles", ["--condition-method", "smc", "--particles", "4"] + em),
            ("smc, 16 particles", ["--condition-method", "smc", "--particles", "16"] + em),
            ("smc, 64 particles", ["--condition-method", "smc", "--particles", "64"] + em),
            ("smc, 256 particles", ["--condition-method", "smc", "--particles", "256"] + em),
        ]),
        ("2-d mixture, class = component 1", ["--problem", GMM], [
            ("guidance (exact p_t(y given x)), scale 1",
             ["--condition-method", "guidance", "--classifier", "analytic", "--class", "1",
              "--guidance-scale", "1"] + em),
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

    # gamma = 0: a guided sampler is the unconditional one, bit for bit.
    print()
    plain = os.path.join(tmp, "plain.npy")
    for method in (["--condition-method", "pigdm", "--observe", obs2],
                   ["--condition-method", "guidance", "--classifier", "analytic", "--class", "1"]):
        for sampler in (em, pc):
            base = ["--problem", GMM, "--score", "analytic", "--n", "500", "--steps", "200",
                    "--seed", str(seed), "--threads", "2"] + sampler
            run(scoresde, base + ["--out", plain])
            run(scoresde, base + method + ["--guidance-scale", "0", "--out", out])
            with open(plain, "rb") as a, open(out, "rb") as b:
                same = a.read() == b.read()
            print("gamma = 0, %s, %s: %s" % (method[1], " ".join(sampler[1::2]),
                                             "bit-identical to the unconditional sampler"
                                             if same else "DIFFERS from the unconditional sampler"))


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


def inpainting(scoresde, model, tmp, steps, seed, path):
    """Fashion-MNIST inpainting with a trained model: the lower half of the first eight test images
    is unknown (NaN) and imputed by replacement with the predictor-corrector sampler."""
    import gzip
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
    images = np.frombuffer(raw[16:], np.uint8).reshape(-1, 784)[:8] / 255.0
    masked = images.copy()
    masked[:, 392:] = np.nan
    observe = os.path.join(tmp, "masked.npy")
    np.save(observe, masked)
    out = os.path.join(tmp, "inpainted.npy")
    r = run(scoresde, ["--score", model, "--observe", observe, "--condition-method", "replacement",
                       "--predictor", "reverse-diffusion", "--corrector", "langevin", "--n", "8",
                       "--steps", str(steps), "--seed", str(seed), "--threads", "2", "--out", out])
    inpainted = np.load(out)
    fig, axes = plt.subplots(3, 8, figsize=(8, 3.3))
    for j in range(8):
        for i, (row, title) in enumerate(((images[j], "original"),
                                          (np.nan_to_num(masked[j], nan=0.5), "observed"),
                                          (inpainted[j], "inpainted"))):
            axes[i, j].imshow(np.clip(row, 0, 1).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path, "(%d score evaluations per sample, %.1f s)" % (r["nfe"], r["seconds"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scoresde", default=os.path.join(ROOT, "build", "release", "apps", "scoresde"))
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "conditional_imputation.png"))
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-figure", action="store_true")
    parser.add_argument("--fmnist-model", help="a trained Fashion-MNIST score model: also draw "
                        "the inpainting figure (docs/figures/conditional_inpainting.png)")
    parser.add_argument("--fmnist-out", default=os.path.join(HERE, "conditional_inpainting.png"))
    args = parser.parse_args()
    if not os.path.exists(args.scoresde):
        sys.exit("no scoresde program at %s (build it, or pass --scoresde)" % args.scoresde)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_table:
            table(args.scoresde, tmp, args.n, args.steps, args.seed)
        if not args.skip_figure:
            figure(args.scoresde, tmp, 4000, args.steps, args.seed, args.out)
        if args.fmnist_model:
            inpainting(args.scoresde, args.fmnist_model, tmp, args.steps, args.seed, args.fmnist_out)


if __name__ == "__main__":
    main()
