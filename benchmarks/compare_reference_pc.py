#!/usr/bin/env python3
"""Side-by-side PC sampling time: scoresde against the Score-SDE paper's reference PyTorch sampler.

The job (identical on both sides): predictor-corrector sampling of the reverse VP SDE
(beta 0.1..20, T = 1, eps = 1e-3, N = 1000 levels), reverse-diffusion predictor + Langevin
corrector (one step per level, snr 0.16, no final denoising), 10,000 samples in d = 64, with the
analytic score of p_0 = N(m, diag(s^2)), m_i = 0.5 (i mod 4) - 0.75, s_i = 0.5 + 0.25 (i mod 3):
    score(x, t) = -(x - a_t m) / (a_t^2 s^2 + 1 - a_t^2),  a_t = exp(-t^2 (b1 - b0)/4 - t b0/2).

Ours: benchmarks/sampler_bench (BM_PcSample/<threads>/<rule>), float64, with the default
expectation step rule (rule 0) and the paper's batch-average rule (rule 1); its floor_s counter is
the time NoiseStream::FillNormal alone takes to draw this job's normals at the same thread count.
Reference: sampling.get_pc_sampler from the reference repository (yang-song/score_sde_pytorch),
imported from --reference DIR, with models.utils.get_score_fn replaced by the analytic score above
(the only model-related import it needs), run in a fresh Python process per configuration under
jemalloc with torch.set_num_threads equal to ours, in float32 (the reference's precision) and
float64. The two sides run interleaved (ours, reference float32, reference float64 per thread
count) and the ratios come from that one run. Load (uptime) is printed before and after.

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 benchmarks/compare_reference_pc.py \\
        --reference /tmp/score_sde --bench build/release/benchmarks/sampler_bench

Skips the reference side with a message when --reference is absent or not the reference code.
Nothing from the reference repository is copied here; it is imported from the user's path.
"""

import argparse
import json
import os
import subprocess
import sys
import time

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

# Runs in a child process: argv = reference dir, threads, dtype, samples, steps, dim.
REFERENCE_CHILD = r"""
import resource, sys, time
ref, threads, dtype, n, steps, dim = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
sys.path.insert(0, ref)
import torch
torch.set_num_threads(threads)
torch.set_default_dtype(torch.float64 if dtype == "float64" else torch.float32)
import sde_lib, sampling
from models import utils as mutils
side = int(round(dim ** 0.5))
assert side * side == dim
shape = (n, 1, side, side)
i = torch.arange(dim)
m = (0.5 * (i % 4) - 0.75).reshape(1, 1, side, side).to(torch.get_default_dtype())
s2 = ((0.5 + 0.25 * (i % 3)) ** 2).reshape(1, 1, side, side).to(torch.get_default_dtype())
sde = sde_lib.VPSDE(beta_min=0.1, beta_max=20.0, N=steps)
b0, b1 = sde.beta_0, sde.beta_1
def score_fn(x, t):
    a = torch.exp(-0.25 * t ** 2 * (b1 - b0) - 0.5 * t * b0)[:, None, None, None]
    return -(x - a * m) / (a * a * s2 + (1.0 - a * a))
mutils.get_score_fn = lambda sde, model, train=False, continuous=False: score_fn
sampler = sampling.get_pc_sampler(sde, shape, sampling.ReverseDiffusionPredictor,
                                  sampling.LangevinCorrector, lambda x: x, snr=0.16, n_steps=1,
                                  probability_flow=False, continuous=True, denoise=False,
                                  eps=1e-3, device="cpu")
torch.manual_seed(0)
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
x, nfe = sampler(None)
seconds = time.perf_counter() - t0
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
# Sanity: the per-coordinate variance against the exact p_eps (close to s^2 at eps = 1e-3).
x = x.reshape(n, dim).double()
a = torch.exp(torch.tensor(-0.25 * 1e-6 * (b1 - b0) - 0.5e-3 * b0, dtype=torch.float64))
var_exact = (a * a * s2.reshape(dim).double() + 1 - a * a)
rel_var = float(((x.var(dim=0) - var_exact).abs() / var_exact).mean())
print("RESULT", seconds, cpu, nfe, rel_var, x.dtype)
"""


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def run_ours(bench, threads, rule):
    name = f"BM_PcSample/{threads}/{rule}/iterations:1/real_time"
    cmd = [bench, f"--benchmark_filter=^{name}$", "--benchmark_format=json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    b = json.loads(out)["benchmarks"][0]
    return {"seconds": b["real_time"], "floor_s": b["floor_s"],
            "fill_normals_per_s": b["fill_normals_per_s"], "normals": b["normals"]}


def run_reference(reference, threads, dtype, samples, steps, dim):
    env = dict(os.environ)
    if os.path.exists(JEMALLOC):
        env["LD_PRELOAD"] = JEMALLOC
    cmd = ["/usr/bin/python3", "-c", REFERENCE_CHILD, reference, str(threads), dtype,
           str(samples), str(steps), str(dim)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            _, seconds, cpu, nfe, rel_var, _ = line.split(maxsplit=5)
            return {"seconds": float(seconds), "cpu_s": float(cpu), "nfe": int(nfe),
                    "rel_var_error": float(rel_var)}
    raise RuntimeError("reference run failed:\n" + proc.stdout + proc.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", default="", help="score_sde_pytorch checkout (skipped if absent)")
    ap.add_argument("--bench", default="build/release/benchmarks/sampler_bench")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--out", default="", help="also write the results as JSON here")
    args = ap.parse_args()
    samples, steps, dim = 10000, 1000, 64

    have_reference = bool(args.reference) and os.path.exists(
        os.path.join(args.reference, "sampling.py"))
    if not have_reference:
        print(f"[compare] no reference code at {args.reference!r} (need sampling.py there): "
              "measuring our side only", flush=True)
    if not os.path.exists(args.bench):
        print(f"[compare] no benchmark program at {args.bench!r}: build target sampler_bench",
              flush=True)
        return 0

    print(f"[compare] load before: {uptime()}", flush=True)
    rows = []
    for threads in args.threads:
        row = {"threads": threads}
        row["ours_expectation"] = run_ours(args.bench, threads, 0)
        print(f"[compare] ours, {threads} thread(s), expectation rule: "
              f"{row['ours_expectation']['seconds']:.2f} s (FillNormal floor "
              f"{row['ours_expectation']['floor_s']:.2f} s, load {uptime()})", flush=True)
        row["ours_batch"] = run_ours(args.bench, threads, 1)
        print(f"[compare] ours, {threads} thread(s), batch rule: "
              f"{row['ours_batch']['seconds']:.2f} s", flush=True)
        if have_reference:
            for dtype in args.dtypes:
                row["ref_" + dtype] = run_reference(args.reference, threads, dtype, samples, steps,
                                                    dim)
                print(f"[compare] reference {dtype}, {threads} thread(s): "
                      f"{row['ref_' + dtype]['seconds']:.2f} s (cpu "
                      f"{row['ref_' + dtype]['cpu_s']:.2f} s, load {uptime()})", flush=True)
        rows.append(row)
    load_after = uptime()
    print(f"[compare] load after: {load_after}", flush=True)

    header = ["threads", "ours f64 expectation (s)", "ours f64 batch rule (s)",
              "FillNormal floor (s)", "ours / floor"]
    for d in (args.dtypes if have_reference else []):
        header += [f"reference {d} (s)", f"reference {d} / ours"]
    print("\n| " + " | ".join(header) + " |")
    print("|---" * (5 + 2 * (len(args.dtypes) if have_reference else 0)) + "|")
    for row in rows:
        ours = row["ours_expectation"]["seconds"]
        cells = [str(row["threads"]), f"{ours:.2f}", f"{row['ours_batch']['seconds']:.2f}",
                 f"{row['ours_expectation']['floor_s']:.2f}",
                 f"{ours / row['ours_expectation']['floor_s']:.2f}"]
        if have_reference:
            for dtype in args.dtypes:
                ref = row["ref_" + dtype]["seconds"]
                cells += [f"{ref:.2f}", f"{ref / ours:.2f}"]
        print("| " + " | ".join(cells) + " |")
    normals = rows[0]["ours_expectation"]["normals"]
    print(f"\nnormals per run: {normals:.3g}; FillNormal rate (1 thread): "
          f"{rows[0]['ours_expectation']['fill_normals_per_s'] / 1e6:.0f} M/s; "
          "reference variance check (mean relative error of per-coordinate variances vs p_eps): " +
          ", ".join(f"{d} {rows[0]['ref_' + d]['rel_var_error']:.3f}"
                    for d in (args.dtypes if have_reference else [])))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "load_after": load_after}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
