#!/usr/bin/env python3
"""scoresde against the reference code of Song et al. (ICLR 2021), side by side.

The reference (github.com/yang-song/score_sde_pytorch: likelihood.py's get_likelihood_fn and
sampling.py's get_ode_sampler) integrates the probability-flow ODE with scipy's solve_ivp RK45 on
the flattened batch, calling a PyTorch score model; its divergence is a one-probe
Skilling-Hutchinson estimate through autograd. This driver imports that code from
--reference-dir (it is never copied into this repository; the driver skips when the directory is
absent) and runs it and `scoresde` on the same problem, the same rows, the same tolerances, the
same thread count and the same precision:

  * likelihood: the same data rows (drawn here from the problem file), VP SDE with the paper's
    beta_min = 0.1, beta_max = 20, eps = 1e-5, rtol = atol (default 1e-5), standard prior N(0, I),
    Rademacher probes (one per row for both; scoresde also with the exact divergence);
  * ODE sampler: the same latents z ~ N(0, I) decoded from T = 1 to eps = 1e-3.

The reference's score model is the problem's exact score written in PyTorch (a Gaussian mixture
pushed through the VP kernel), given the reference's model interface (noise prediction at time
labels 999 t). Accuracy is measured against closed forms computed here in NumPy (the exact
log p_eps of every row) and against a tight scoresde solve (rtol = atol = 1e-12, Fehlberg 7(8))
for the decoded samples. NFE is the number of ODE right-hand-side evaluations per row (scipy's
nfev for the reference; scoresde's mean and maximum over rows). "Equal accuracy" is the loosest
tolerance (a half power of two times the reference's, tightening when needed) at which scoresde's
largest error over the rows is at most the reference's; the grid's half powers of two resolve NFE
to about 7 %.

Time, measured in one run with the two sides interleaved (--repeats rounds; each round calls the
reference, then every scoresde configuration; best of the rounds):
  * wall: the reference's likelihood_fn / ode_sampler call (time.perf_counter) against scoresde's
    own solve time ("seconds" in its JSON);
  * process CPU ("proc cpu x"), a lower bound: the reference call's CPU time (time.process_time)
    against the whole scoresde process's (getrusage of the child: start-up, problem file and I/O
    included, which dominate small batches).
Run it on a quiet machine (the settings line prints the load average): wall times include any
wait for a core.

Precision: the reference casts states to float32 before calling the model. With --precision
float64 (the default, scoresde's precision) this driver rebinds the name torch.float32 inside the
reference modules' namespaces to torch.float64 and sets PyTorch's default dtype to float64, so the
whole reference computation runs in double; --precision float32 runs it as published.

Run it with Debian's python3 (torch, scipy) under jemalloc, e.g.

  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 OMP_NUM_THREADS=1 /usr/bin/python3 \\
      benchmarks/compare_reference_likelihood.py --reference-dir /tmp/score_sde_pytorch \\
      --scoresde build/release/apps/scoresde --problem verification/problems/gmm_2d.json \\
      --n 1024 --repeats 5
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import types

import numpy as np


def load_problem(path):
    with open(path) as f:
        spec = json.load(f)
    kind = spec["type"]
    if kind == "gaussian":
        mean = np.asarray(spec["mean"], float)
        cov = np.asarray(spec["cov"], float) if "cov" in spec else np.diag(np.square(spec["std"]))
        return np.ones(1), mean[None, :], cov[None, :, :]
    if kind == "gmm":
        weights = np.asarray(spec["weights"], float)
        means = np.asarray(spec["means"], float)
        if "covs" in spec:
            covs = np.asarray(spec["covs"], float)
        else:
            covs = np.stack([np.diag(np.square(s)) for s in spec["stds"]])
        return weights / weights.sum(), means, covs
    raise SystemExit(f"{path}: only gaussian and gmm problems (VP SDE) are compared")


class Vp:
    """The VP SDE of the paper: beta(t) = beta_min + t (beta_max - beta_min), T = 1."""

    def __init__(self, beta_min=0.1, beta_max=20.0):
        self.beta_min, self.beta_max = beta_min, beta_max

    def alpha(self, t):
        return np.exp(-0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min)


def exact_log_density(weights, means, covs, vp, t, x):
    """log p_t(x) of the mixture pushed through the VP kernel, per row of x (B, d)."""
    a = vp.alpha(t)
    d = x.shape[1]
    logs = []
    for w, m, c in zip(weights, means, covs):
        cov = a * a * c + (1.0 - a * a) * np.eye(d)
        chol = np.linalg.cholesky(cov)
        r = np.linalg.solve(chol, (x - a * m).T)
        logs.append(math.log(w) - 0.5 * np.sum(r * r, axis=0) - np.sum(np.log(np.diag(chol)))
                    - 0.5 * d * math.log(2 * math.pi))
    logs = np.stack(logs)
    peak = logs.max(axis=0)
    return peak + np.log(np.exp(logs - peak).sum(axis=0))


def make_torch_model(torch, weights, means, covs, vp, dtype):
    """The exact noise prediction -sigma_t * score of the mixture under VP, in the reference's
    model interface: forward(x of shape (B, d, 1, 1), labels = 999 t)."""
    eig = [np.linalg.eigh(c) for c in covs]

    class MixtureNoiseModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.log_w = torch.tensor(np.log(weights), dtype=dtype)
            self.mu = torch.tensor(means, dtype=dtype)
            self.lam = torch.tensor(np.stack([e[0] for e in eig]), dtype=dtype)
            self.u = torch.tensor(np.stack([e[1] for e in eig]), dtype=dtype)

        def forward(self, x, labels):
            shape = x.shape
            xf = x.reshape(shape[0], -1)
            t = labels / 999.0
            log_alpha = -0.25 * t * t * (vp.beta_max - vp.beta_min) - 0.5 * t * vp.beta_min
            alpha = torch.exp(log_alpha)[:, None]
            sigma2 = 1.0 - alpha * alpha
            logits, scores = [], []
            for k in range(self.mu.shape[0]):
                y = (xf - alpha * self.mu[k]) @ self.u[k]
                var = alpha * alpha * self.lam[k] + sigma2
                logits.append(self.log_w[k] - 0.5 * (y * y / var).sum(1) - 0.5 * torch.log(var).sum(1))
                scores.append(-(y / var) @ self.u[k].T)
            r = torch.softmax(torch.stack(logits), dim=0)
            score = (r[:, :, None] * torch.stack(scores)).sum(0)
            return (-torch.sqrt(sigma2) * score).reshape(shape)

    return MixtureNoiseModel()


def import_reference(reference_dir, torch, precision):
    sys.path.insert(0, reference_dir)
    import likelihood  # noqa: E402  (the reference's modules)
    import sampling
    import sde_lib
    if precision == "float64":
        # The reference casts to torch.float32 by name; rebind that name in its modules.
        proxy = types.ModuleType("torch_float64")
        proxy.__dict__.update(torch.__dict__)
        proxy.float32 = torch.float64
        likelihood.torch = proxy
        sampling.torch = proxy
    return likelihood, sampling, sde_lib


def timed(fn):
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run_scoresde(binary, arguments):
    """One scoresde run: its JSON, plus the whole process's wall and CPU seconds (start-up, problem
    file and I/O included) in "process_seconds" and "process_cpu_seconds"."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([binary] + arguments + ["--json"], check=True, capture_output=True,
                         text=True).stdout
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    parsed = json.loads(out)
    parsed["process_seconds"] = elapsed
    parsed["process_cpu_seconds"] = (after.ru_utime - before.ru_utime +
                                     after.ru_stime - before.ru_stime)
    return parsed


# Tolerance factors tried (times the reference's rtol and atol) when matching its accuracy.
# Half powers of two: a fifth-order method's NFE scale as tol^(-1/5), so one step of this grid
# moves NFE by 2^(1/10), about 7 %, the comparison's resolution.
FACTORS = [2.0 ** (k / 2) for k in range(-16, 13)]


def equal_accuracy(run, target, key):
    """The loosest tolerance factor whose error is at or below the reference's (target): scoresde's
    cost at equal accuracy. Factors above 1 loosen, below 1 tighten; the search walks from 1 in the
    needed direction. Returns (factor, row)."""
    row = run(1.0)
    if row[key] <= target:
        best = (1.0, row)
        for factor in [f for f in FACTORS if f > 1.0]:
            row = run(factor)
            if row[key] > target:
                break
            best = (factor, row)
        return best
    for factor in sorted([f for f in FACTORS if f < 1.0], reverse=True):
        row = run(factor)
        if row[key] <= target:
            return factor, row
    return FACTORS[0], row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-dir", default=os.environ.get("SCORE_SDE_REFERENCE"),
                        help="checkout of yang-song/score_sde_pytorch (skipped when absent)")
    parser.add_argument("--scoresde", default="build/release/apps/scoresde")
    parser.add_argument("--problem", default="verification/problems/gmm_2d.json")
    parser.add_argument("--n", type=int, default=1024, help="rows (batch size)")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved timing rounds (best of)")
    parser.add_argument("--precision", choices=["float64", "float32"], default="float64")
    parser.add_argument("--json-out", help="also write the results here")
    args = parser.parse_args()

    if not args.reference_dir or not os.path.isfile(os.path.join(args.reference_dir, "likelihood.py")):
        print("skipped: no reference checkout (--reference-dir or SCORE_SDE_REFERENCE)")
        return 0
    if not os.access(args.scoresde, os.X_OK):
        raise SystemExit(f"{args.scoresde}: not an executable scoresde binary")

    import torch
    torch.set_num_threads(args.threads)
    # The reference draws its Hutchinson probe from PyTorch's generator: seeded, its NFE and
    # error are the same from run to run.
    torch.manual_seed(args.seed)
    dtype = torch.float64 if args.precision == "float64" else torch.float32
    if args.precision == "float64":
        torch.set_default_dtype(torch.float64)
    likelihood, sampling, sde_lib = import_reference(args.reference_dir, torch, args.precision)

    weights, means, covs = load_problem(args.problem)
    d = means.shape[1]
    vp = Vp()
    rng = np.random.default_rng(args.seed)
    components = rng.choice(len(weights), size=args.n, p=weights)
    x = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in components])
    z = rng.standard_normal((args.n, d))
    exact = exact_log_density(weights, means, covs, vp, 1e-5, x)

    model = make_torch_model(torch, weights, means, covs, vp, dtype)
    sde = sde_lib.VPSDE(beta_min=vp.beta_min, beta_max=vp.beta_max, N=1000)
    settings = {
        "problem": args.problem, "n": args.n, "dim": d, "rtol": args.rtol, "atol": args.atol,
        "threads": args.threads, "precision": args.precision, "torch": torch.__version__,
        "jemalloc": "jemalloc" in os.environ.get("LD_PRELOAD", ""), "repeats": args.repeats,
        "load_average_start": os.getloadavg()[0],
    }
    results = {"settings": settings, "likelihood": {}, "sampler": {}}

    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "x.npy")
        latent_path = os.path.join(tmp, "z.npy")
        np.save(data_path, x)
        np.save(latent_path, z)
        common = ["--problem", args.problem, "--sde", "vp", "--threads", str(args.threads),
                  "--seed", str(args.seed)]
        data = torch.tensor(x, dtype=dtype).reshape(args.n, d, 1, 1)
        latent = torch.tensor(z, dtype=dtype).reshape(args.n, d, 1, 1)

        # ---- Accuracy (one run each) ------------------------------------------------------------
        # Likelihood: the latent x_T of a tight solve is the reference for the ODE error; the
        # log-density error also carries the Hutchinson noise (in d = 2 a Rademacher probe's error
        # is ±2 ∫ A_12, the same magnitude for any probe) and the standard prior's mismatch.
        tight_latent_path = os.path.join(tmp, "tight_latent.npy")
        run_scoresde(args.scoresde, ["encode"] + common +
                     ["--data", data_path, "--method", "fehlberg78", "--rtol", "1e-12", "--atol",
                      "1e-12", "--sde-param", "eps=1e-5", "--out", tight_latent_path])
        tight_latent = np.load(tight_latent_path)
        ref_fn = likelihood.get_likelihood_fn(sde, lambda v: v, hutchinson_type="Rademacher",
                                              rtol=args.rtol, atol=args.atol, eps=1e-5)
        _, _, (bpd, ref_z, ref_nfe) = timed(lambda: ref_fn(model, data))
        # bpd = -(log p)/(d ln 2) + 7 - inverse_scaler(-1) = ... + 8 with the identity scaler.
        ref_logp = -(bpd.detach().cpu().numpy().astype(float) - 8.0) * d * math.log(2.0)
        ref_latent = ref_z.detach().cpu().numpy().reshape(args.n, d).astype(float)
        lik = {"reference RK45, Hutchinson (1 probe)": {
            "nfe": int(ref_nfe), "nfe_max": int(ref_nfe), "tolerance_factor": 1.0,
            "latent_max_error": float(np.max(np.abs(ref_latent - tight_latent))),
            "mean_abs_error": float(np.mean(np.abs(ref_logp - exact)))}}
        lik_args = {}

        def likelihood_args(extra, factor):
            tol = ["--rtol", str(args.rtol * factor), "--atol", str(args.atol * factor)]
            return (["likelihood"] + common + tol + ["--data", data_path, "--method", "rk45",
                                                     "--out", os.path.join(tmp, "latent.npy")] +
                    extra)

        def likelihood_row(extra, factor):
            out = run_scoresde(args.scoresde, likelihood_args(extra, factor))
            assert np.max(np.abs(np.asarray(out["exact_logp"]) - exact)) < 1e-9, \
                "closed forms disagree"
            return {"nfe": out["nfe"], "nfe_max": out["nfe_max"], "tolerance_factor": factor,
                    "accepted": out["accepted_steps"], "rejected": out["rejected_steps"],
                    "latent_max_error": float(np.max(np.abs(np.load(os.path.join(tmp, "latent.npy"))
                                                            - tight_latent))),
                    "mean_abs_error": float(np.mean(np.abs(np.asarray(out["logp"]) - exact)))}

        target = lik["reference RK45, Hutchinson (1 probe)"]["latent_max_error"]
        for mode in ("per-sample", "shared"):
            extra = ["--divergence", "hutchinson", "--probes", "1", "--step-control", mode]
            label = f"scoresde rk45 {mode}, Hutchinson, same tol"
            lik[label] = likelihood_row(extra, 1.0)
            lik_args[label] = likelihood_args(extra, 1.0)
            factor, row = equal_accuracy(lambda f, e=extra: likelihood_row(e, f), target,
                                         "latent_max_error")
            label = f"scoresde rk45 {mode}, Hutchinson, equal accuracy"
            lik[label] = row
            lik_args[label] = likelihood_args(extra, factor)
        extra = ["--divergence", "exact", "--step-control", "per-sample"]
        label = "scoresde rk45 per-sample, exact divergence, same tol"
        lik[label] = likelihood_row(extra, 1.0)
        lik_args[label] = likelihood_args(extra, 1.0)

        # ODE sampler: latents z ~ N(0, I) decoded from T = 1 to eps = 1e-3; the reference for the
        # error is a Fehlberg 7(8) solve at 1e-12.
        tight_path = os.path.join(tmp, "tight.npy")
        run_scoresde(args.scoresde, ["encode", "--decode"] + common +
                     ["--data", latent_path, "--method", "fehlberg78", "--rtol", "1e-12",
                      "--atol", "1e-12", "--out", tight_path])
        reference_solution = np.load(tight_path)
        sampler = sampling.get_ode_sampler(sde, (args.n, d, 1, 1), lambda v: v, denoise=False,
                                           rtol=args.rtol, atol=args.atol, method="RK45",
                                           eps=1e-3, device="cpu")
        _, _, (samples, ref_nfe) = timed(lambda: sampler(model, z=latent))
        ref_x = samples.detach().cpu().numpy().reshape(args.n, d).astype(float)
        smp = {"reference RK45": {
            "nfe": int(ref_nfe), "nfe_max": int(ref_nfe), "tolerance_factor": 1.0,
            "max_abs_error": float(np.max(np.abs(ref_x - reference_solution))),
            "rms_error": float(np.sqrt(np.mean((ref_x - reference_solution) ** 2)))}}
        smp_args = {}

        def decode_args(mode, factor):
            tol = ["--rtol", str(args.rtol * factor), "--atol", str(args.atol * factor)]
            return (["encode", "--decode"] + common + tol +
                    ["--data", latent_path, "--method", "rk45",
                     "--out", os.path.join(tmp, "decoded.npy"), "--step-control", mode])

        def decode_row(mode, factor):
            out = run_scoresde(args.scoresde, decode_args(mode, factor))
            decoded = np.load(os.path.join(tmp, "decoded.npy"))
            return {"nfe": out["nfe"], "nfe_max": out["nfe_max"], "tolerance_factor": factor,
                    "accepted": out["accepted_steps"], "rejected": out["rejected_steps"],
                    "max_abs_error": float(np.max(np.abs(decoded - reference_solution))),
                    "rms_error": float(np.sqrt(np.mean((decoded - reference_solution) ** 2)))}

        target = smp["reference RK45"]["max_abs_error"]
        for mode in ("per-sample", "shared"):
            label = f"scoresde rk45 {mode}, same tol"
            smp[label] = decode_row(mode, 1.0)
            smp_args[label] = decode_args(mode, 1.0)
            factor, row = equal_accuracy(lambda f, m=mode: decode_row(m, f), target,
                                         "max_abs_error")
            label = f"scoresde rk45 {mode}, equal accuracy"
            smp[label] = row
            smp_args[label] = decode_args(mode, factor)

        # ---- Wall and CPU time: interleaved rounds, best of --repeats ---------------------------
        # Each round calls the reference likelihood, every scoresde likelihood row, the reference
        # sampler and every scoresde sampler row, so a change of machine load hits all of them.
        def keep_best(row, wall, cpu, process=None, process_cpu=None):
            row["seconds"] = min(row.get("seconds", math.inf), wall)
            row["cpu_seconds"] = min(row.get("cpu_seconds", math.inf), cpu)
            if process is not None:
                row["process_seconds"] = min(row.get("process_seconds", math.inf), process)
                row["process_cpu_seconds"] = min(row.get("process_cpu_seconds", math.inf),
                                                 process_cpu)

        for _ in range(args.repeats):
            for section, rows, ref_call, arg_map in (
                    ("likelihood", lik, lambda: ref_fn(model, data), lik_args),
                    ("sampler", smp, lambda: sampler(model, z=latent), smp_args)):
                wall, cpu, _ = timed(ref_call)
                keep_best(next(iter(rows.values())), wall, cpu)
                for label, arguments in arg_map.items():
                    out = run_scoresde(args.scoresde, arguments)
                    # scoresde's solve: its own wall clock; CPU ≈ wall on one thread (the process
                    # CPU time below includes start-up and I/O).
                    keep_best(rows[label], out["seconds"], out["seconds"] * args.threads,
                              out["process_seconds"], out["process_cpu_seconds"])
        settings["load_average_end"] = os.getloadavg()[0]
        results["likelihood"], results["sampler"] = lik, smp

    for section in ("likelihood", "sampler"):
        rows = results[section]
        reference = next(iter(rows.values()))
        print(f"\n{section}: {args.problem}, n = {args.n}, d = {d}, rtol = atol = {args.rtol}, "
              f"{args.threads} thread(s), {args.precision}")
        keys = (["latent_max_error", "mean_abs_error"] if section == "likelihood"
                else ["max_abs_error"])
        print(f"{'':50} {'tol x':>7} {'nfe':>5} {'max':>5} {'nfe/ref':>7} " +
              " ".join(f"{k:>16}" for k in keys) +
              f" {'seconds':>9} {'wall x':>7} {'proc cpu x':>10}")
        for label, row in rows.items():
            row["nfe_ratio"] = row["nfe"] / reference["nfe"]
            row["speedup"] = reference["seconds"] / row["seconds"]
            process = row.get("process_seconds", reference["seconds"])
            row["speedup_process"] = reference["seconds"] / process
            row["speedup_process_cpu"] = (reference["cpu_seconds"] /
                                          row.get("process_cpu_seconds", reference["cpu_seconds"]))
            print(f"{label:50} {row['tolerance_factor']:7.4g} {row['nfe']:5} {row['nfe_max']:5} "
                  f"{row['nfe_ratio']:7.2f} " + " ".join(f"{row[k]:16.3g}" for k in keys) +
                  f" {row['seconds']:9.4g} {row['speedup']:6.1f}x {row['speedup_process_cpu']:9.1f}x")
    print(f"\nsettings: {json.dumps(settings)}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
