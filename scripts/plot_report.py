#!/usr/bin/env python3
"""Draws the figures of a `scoresde demo` report folder from the CSV/JSON files in it.

    python3 scripts/plot_report.py REPORT_DIR      (e.g. reports/demo)

Writes REPORT_DIR/figures/{training_loss,samples,score_field,convergence,nfe_error}.png (the last
two only when the report has its verification section). Needs numpy and matplotlib (Debian's
python3-matplotlib: `sudo bash scripts/setup.sh demo`). `scoresde demo` copies this script into
the report folder and runs it; it can be rerun there at any time.
"""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 130


def read_csv(path):
    """Rows of a CSV file as dicts; numeric cells become floats."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value)
            except ValueError:
                pass
    return rows


def read_points(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data


def save(fig, folder, name):
    fig.savefig(os.path.join(folder, "figures", name + ".png"), dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def plot_training(folder, report):
    rows = read_csv(os.path.join(folder, "training_loss.csv"))
    batch = [(r["step"], r["loss"]) for r in rows if r["kind"] == "batch"]
    evals = [(r["step"], r["loss"]) for r in rows if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if batch:
        s, l = zip(*batch)
        ax.plot(s, l, lw=1.0, color="tab:blue", label="batch loss (mean per log interval)")
    if evals:
        s, l = zip(*evals)
        ax.plot(s, l, "o-", ms=3.5, lw=1.2, color="tab:orange",
                label="EMA model, fixed evaluation batch")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("denoising score-matching loss")
    t = report["training"]
    ax.set_title("Training: %s, %d parameters, %.1f s" % (t["data"], t["parameters"],
                                                          t["seconds"]), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, folder, "training_loss")


def plot_samples(folder, report):
    heldout = read_points(os.path.join(folder, "data_heldout.csv"))
    samplers = report["sampling"]["samplers"]
    panels = [("held-out data (%d points)" % len(heldout), heldout, "tab:gray")]
    for s in samplers:
        pts = read_points(os.path.join(folder, s["file"]))
        panels.append(("%s\nNFE %d, sliced W2 %.3f" % (s["label"], s["nfe"], s["sliced_w2"]),
                       pts, "tab:blue"))
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    lo = np.percentile(heldout[:, :2], 0.5, axis=0)
    hi = np.percentile(heldout[:, :2], 99.5, axis=0)
    center, half = (lo + hi) / 2, 0.6 * np.max(hi - lo)
    for ax, (title, pts, color) in zip(axes.flat, panels):
        ax.scatter(pts[:, 0], pts[:, 1] if pts.shape[1] > 1 else np.zeros(len(pts)), s=1.5,
                   alpha=0.5, color=color, rasterized=True)
        ax.set_xlim(center[0] - half, center[0] + half)
        if pts.shape[1] > 1:
            ax.set_ylim(center[1] - half, center[1] + half)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=8.5)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Data and samples (floor: two independent data samples, sliced W2 %.3f)"
                 % report["sampling"]["floor"], fontsize=10)
    fig.tight_layout()
    save(fig, folder, "samples")


def plot_score_field(folder, report):
    field = report.get("score_field", {})
    if "skipped" in field or not os.path.exists(os.path.join(folder, "score_field.csv")):
        return
    data = np.loadtxt(os.path.join(folder, "score_field.csv"), delimiter=",", skiprows=1)
    heldout = read_points(os.path.join(folder, "data_heldout.csv"))
    times = sorted(set(data[:, 0]))
    fig, axes = plt.subplots(1, len(times), figsize=(3.5 * len(times), 3.7), squeeze=False)
    norm_all = np.log10(np.hypot(data[:, 3], data[:, 4]) + 1e-12)
    vmin, vmax = np.percentile(norm_all, 1), np.percentile(norm_all, 99)
    for ax, t in zip(axes.flat, times):
        d = data[data[:, 0] == t]
        x, y, sx, sy, sigma = d[:, 1], d[:, 2], d[:, 3], d[:, 4], d[:, 5]
        mag = np.hypot(sx, sy)
        ax.scatter(heldout[:, 0], heldout[:, 1], s=1, color="0.75", rasterized=True)
        q = ax.quiver(x, y, sx / (mag + 1e-12), sy / (mag + 1e-12), np.log10(mag + 1e-12),
                      cmap="viridis", clim=(vmin, vmax), scale=30, width=0.004)
        ax.set_title("t = %.3g  (σ_t = %.3g)" % (t, sigma[0]), fontsize=9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    cbar = fig.colorbar(q, ax=list(axes.flat), shrink=0.8, pad=0.01)
    cbar.set_label("log10 |s(x, t)|", fontsize=8)
    fig.suptitle("The learned score field (arrows: direction of s; grey: held-out data)",
                 fontsize=10)
    save(fig, folder, "score_field")


SOLVER_COLORS = {"euler-maruyama": "tab:blue", "milstein": "tab:orange", "sriw1": "tab:green",
                 "sra1": "tab:green", "srk": "tab:green", "reverse-diffusion": "tab:red",
                 "ancestral": "tab:purple"}


def plot_convergence(folder, report):
    path = os.path.join(folder, "convergence.csv")
    if not os.path.exists(path):
        return
    rows = read_csv(path)
    results = {(r["sde"], r["solver"]): r
               for r in report["verification"]["convergence"]["results"]}
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    fig, axes = plt.subplots(2, len(problems), figsize=(4.0 * len(problems), 7.0), squeeze=False)
    for col, problem in enumerate(problems):
        for row, kind in enumerate(["strong", "weak"]):
            ax = axes[row][col]
            solvers = list(dict.fromkeys(r["solver"] for r in rows if r["problem"] == problem))
            for solver in solvers:
                pts = [r for r in rows if r["problem"] == problem and r["solver"] == solver
                       and r["kind"] == kind]
                if not pts:
                    continue
                h = np.array([p["h"] for p in pts])
                v = np.abs(np.array([p["value"] for p in pts]))
                se = np.array([p["stderr"] for p in pts])
                res = results[(problem, solver)]
                order, ci = res[kind + "_order"], res[kind + "_ci"]
                expected = res["expected_" + kind]
                color = SOLVER_COLORS.get(solver, None)
                ax.errorbar(h, v, yerr=np.minimum(se, 0.95 * v), fmt="o-", ms=3.5, lw=1.2,
                            capsize=2, color=color,
                            label="%s: %.2f [%.2f, %.2f] (theory %g)" % (
                                solver, order, ci[0], ci[1], expected))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_xlabel("step size h", fontsize=8)
            ax.set_ylabel("strong error (E|X_h - X|^2)^(1/2)" if kind == "strong"
                          else "weak difference |E phi(X_h) - E phi(X_h/2)|", fontsize=8)
            ax.set_title("%s: %s order" % (problem, kind), fontsize=9)
            ax.legend(fontsize=6.5, loc="lower right")
            ax.tick_params(labelsize=7)
    fig.suptitle("Convergence orders (fitted order [99% CI] against theory)", fontsize=10)
    fig.tight_layout()
    save(fig, folder, "convergence")


METHOD_STYLE = {
    "euler-maruyama": ("tab:blue", "s--"), "reverse-diffusion": ("tab:red", "s--"),
    "pc": ("tab:purple", "s--"), "euler": ("tab:olive", "o-"), "heun": ("tab:cyan", "o-"),
    "rk4": ("tab:green", "o-"), "rk45": ("black", "D-"),
}


def plot_nfe_error(folder, report):
    path = os.path.join(folder, "nfe_error.csv")
    if not os.path.exists(path):
        return
    rows = read_csv(path)
    v = report["verification"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method in methods:
        pts = sorted([r for r in rows if r["method"] == method], key=lambda r: r["nfe"])
        color, style = METHOD_STYLE.get(method, (None, "o-"))
        family = pts[0]["family"]
        label = ("%s (SDE)" % method) if family == "sde" else ("%s (probability flow)" % method)
        nfe = [p["nfe"] for p in pts]
        axes[0].plot(nfe, [p["frechet"] for p in pts], style, color=color, ms=4, lw=1.2,
                     label=label)
        if family == "ode":
            axes[1].plot(nfe, [p["path_error"] for p in pts], style, color=color, ms=4, lw=1.2,
                         label=label)
    axes[0].axhline(v["nfe_error"]["floor"], color="0.4", ls=":", lw=1.2,
                    label="exact draws (Monte-Carlo floor)")
    axes[0].set_ylabel("Fréchet distance of the samples to p_ε")
    axes[0].set_title("Sampled law against p_ε (%d samples)" % v["nfe_error"]["samples"],
                      fontsize=9)
    axes[1].set_ylabel("RMS per-path error against the exact flow map")
    axes[1].set_title("Probability flow: per-path error", fontsize=9)
    like = [r for r in read_csv(os.path.join(folder, "likelihood_gaussian.csv"))
            if r["prior"] == "exact"]
    like.sort(key=lambda r: r["nfe"])
    axes[2].plot([r["nfe"] for r in like], [r["mean_abs_error"] for r in like], "D-",
                 color="black", ms=4, label="RK45, exact prior")
    for r in like:
        axes[2].annotate("tol %.0e" % r["tolerance"], (r["nfe"], r["mean_abs_error"]),
                         fontsize=7, xytext=(4, 4), textcoords="offset points")
    axes[2].set_ylabel("mean |log p error| (nats)")
    axes[2].set_title("Likelihood error (exact divergence)", fontsize=9)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("NFE (score evaluations per sample)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle("NFE against error on a 2-D Gaussian with its exact score (%s SDE)"
                 % v["likelihood"]["sde"], fontsize=10)
    fig.tight_layout()
    save(fig, folder, "nfe_error")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    folder = argv[1]
    with open(os.path.join(folder, "report.json")) as f:
        report = json.load(f)
    os.makedirs(os.path.join(folder, "figures"), exist_ok=True)
    plot_training(folder, report)
    plot_samples(folder, report)
    plot_score_field(folder, report)
    if "verification" in report:
        plot_convergence(folder, report)
        plot_nfe_error(folder, report)
    print("plot_report.py: figures written to %s" % os.path.join(folder, "figures"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
