#!/usr/bin/python3
"""Training steps per second: scoresde's CPU trainer against PyTorch, side by side in one run.

The same work on both sides (issue 5, item 10): an MLP score model with Gaussian Fourier-feature
time embedding (d = 2, E = 32), SiLU, depth 3 (input layer + 2 residual hidden layers), width H,
noise parameterization under the VP SDE; one step = draw t ~ U(eps, 1), z ~ N(0, I) and a batch of
two-moons data, the continuous DSM loss with lambda = sigma_t^2, backward, global-norm clipping
(1.0), Adam (bias-corrected), EMA update of the weights. float32, num_threads = 1 and 2.
PyTorch runs under jemalloc when started with LD_PRELOAD (see docs/training.md); the
scoresde side is benchmarks/training_bench (Google Benchmark), run as a child process without
LD_PRELOAD. Also measured: GEMM throughput of OpenBLAS via torch.mm and of Eigen (the
BM_EigenSgemm rows of training_bench) at the sizes training uses, and the fraction of it that
training reaches.

Usage:
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/bin/python3 \
      benchmarks/compare_torch_training.py --bench build-train/benchmarks/training_bench \
      [--widths 128 256 512] [--batches 256 1024 4096] [--threads 1 2] [--min-time 1.0] \
      [--json results.json]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch


class Mlp(torch.nn.Module):
    """The layout of scoring/include/scoresde/scoring/mlp_score.hpp (parameter names match)."""

    def __init__(self, dim, width, depth, embed_dim):
        super().__init__()
        self.register_buffer("fourier", torch.randn(embed_dim // 2))
        self.input = torch.nn.Linear(dim + embed_dim, width)
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(depth - 1))
        self.output = torch.nn.Linear(width, dim)

    def forward(self, u, tau):
        proj = 2.0 * math.pi * tau[:, None] * self.fourier[None, :]
        h = torch.nn.functional.silu(self.input(torch.cat([u, torch.sin(proj), torch.cos(proj)], 1)))
        for layer in self.hidden:
            h = h + torch.nn.functional.silu(layer(h))
        return self.output(h)


def two_moons(n):
    upper = torch.rand(n) < 0.5
    a = math.pi * torch.rand(n)
    x = torch.where(upper, torch.cos(a), 1.0 - torch.cos(a))
    y = torch.where(upper, torch.sin(a), 0.5 - torch.sin(a))
    pts = torch.stack([x, y], 1) + 0.1 * torch.randn(n, 2)
    return 2.0 * pts - torch.tensor([1.0, 0.2])


def torch_steps_per_second(width, batch, threads, min_time):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Mlp(2, width, 3, 32)
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-4)
    beta_min, beta_max, eps = 0.1, 20.0, 1e-5
    state = {"updates": 0}

    def step():
        x0 = two_moons(batch)
        t = eps + (1.0 - eps) * torch.rand(batch)
        z = torch.randn(batch, 2)
        integral = beta_min * t + 0.5 * (beta_max - beta_min) * t * t
        alpha = torch.exp(-0.5 * integral)
        sigma = torch.sqrt(-torch.expm1(-integral))
        x = alpha[:, None] * x0 + sigma[:, None] * z
        c_in = 1.0 / torch.sqrt(sigma * sigma + alpha * alpha)
        score = -model(c_in[:, None] * x, t) / sigma[:, None]
        loss = ((sigma[:, None] * score + z) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state["updates"] += 1
        n = state["updates"]
        decay = min(0.9999, (1.0 + n) / (10.0 + n))
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.sub_((1.0 - decay) * (e - p))
        return loss

    for _ in range(5):
        step()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        loss = step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and steps >= 3:
            break
    cpu = time.process_time() - cpu_start
    if not math.isfinite(loss.item()):
        raise RuntimeError("non-finite torch loss")
    return steps / elapsed, cpu / steps


def torch_gemm_gflops(m, k, n, threads, min_time):
    torch.set_num_threads(threads)
    a, b = torch.randn(m, k), torch.randn(k, n)
    c = torch.mm(a, b)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time or reps < 3:
        c = torch.mm(a, b)
        reps += 1
    elapsed = time.perf_counter() - start
    assert torch.isfinite(c).all()
    return 2.0 * m * k * n * reps / elapsed * 1e-9


def run_bench(bench, pattern, min_time):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    out = subprocess.run(
        [bench, "--benchmark_filter=" + pattern, "--benchmark_format=json",
         "--benchmark_min_time=%g" % min_time],
        check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)["benchmarks"]


def gemm_flops_per_step(width, batch):
    in0 = 2 + 32
    per_column = 2 * (2.0 * in0 * width) + 2 * 3 * (2.0 * width * width) + 3 * (2.0 * width * 2)
    return per_column * batch


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True, help="path of build-*/benchmarks/training_bench")
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if not os.path.exists(args.bench):
        sys.exit("compare_torch_training.py: %s not found (build the training_bench target)" % args.bench)
    torch.set_num_interop_threads(1)
    print("torch %s, LD_PRELOAD=%s, load average %s" % (
        torch.__version__, os.environ.get("LD_PRELOAD", ""), os.getloadavg()))

    eigen = {}
    for row in run_bench(args.bench, "BM_EigenSgemm", args.min_time):
        eigen[row["name"]] = row["gflops"]
    rows = []
    for threads in args.threads:
        for width in args.widths:
            for batch in args.batches:
                ours_rows = run_bench(args.bench, "BM_TrainStep/%d/%d/%d/" % (width, batch, threads),
                                      args.min_time)
                ours = ours_rows[0]["steps_per_s"]
                # CPU seconds per step (process time; all threads): less sensitive to other load.
                ours_cpu = ours_rows[0]["cpu_time"] * {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[
                    ours_rows[0]["time_unit"]]
                theirs, theirs_cpu = torch_steps_per_second(width, batch, threads, args.min_time)
                flops = gemm_flops_per_step(width, batch)
                eigen_rate = eigen.get("BM_EigenSgemm/%d/%d/128" % (width, width))
                torch_gemm = torch_gemm_gflops(width, width, batch, threads, 0.3)
                row = {
                    "width": width, "batch": batch, "threads": threads,
                    "scoresde_steps_per_s": ours, "torch_steps_per_s": theirs,
                    "ratio": ours / theirs,
                    "scoresde_cpu_s_per_step": ours_cpu, "torch_cpu_s_per_step": theirs_cpu,
                    "cpu_ratio": theirs_cpu / ours_cpu,
                    "scoresde_gflops": ours * flops * 1e-9,
                    "torch_gflops": theirs * flops * 1e-9,
                    "eigen_sgemm_gflops_per_thread": eigen_rate,
                    "openblas_mm_gflops": torch_gemm,
                }
                if eigen_rate:
                    row["fraction_of_eigen_gemm"] = row["scoresde_gflops"] / (threads * eigen_rate)
                row["fraction_of_openblas_gemm"] = row["scoresde_gflops"] / torch_gemm
                rows.append(row)
                print("H=%4d B=%5d T=%d  scoresde %8.1f steps/s  torch %8.1f steps/s  ratio %5.2f  "
                      "(CPU-time ratio %5.2f; %.1f GFLOP/s; %.0f%% of Eigen sgemm, %.0f%% of torch.mm)" % (
                          width, batch, threads, ours, theirs, ours / theirs, row["cpu_ratio"],
                          row["scoresde_gflops"],
                          100 * row.get("fraction_of_eigen_gemm", float("nan")),
                          100 * row["fraction_of_openblas_gemm"]), flush=True)
    print("\nGEMM throughput, one thread (Eigen, C = A·B, float):")
    for name, rate in eigen.items():
        print("  %-32s %6.1f GFLOP/s" % (name, rate))
    for threads in args.threads:
        for n in (128, 4096):
            print("  torch.mm 512x512x%-5d T=%d        %6.1f GFLOP/s" % (
                n, threads, torch_gemm_gflops(512, 512, n, threads, 0.5)))
    print("\n| width | batch | threads | scoresde steps/s | PyTorch steps/s | ratio | CPU-time ratio | "
          "scoresde GFLOP/s | of Eigen sgemm | of torch.mm |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %d | %d | %.1f | %.1f | %.2f | %.2f | %.1f | %.0f%% | %.0f%% |" % (
            r["width"], r["batch"], r["threads"], r["scoresde_steps_per_s"], r["torch_steps_per_s"],
            r["ratio"], r["cpu_ratio"], r["scoresde_gflops"],
            100 * r.get("fraction_of_eigen_gemm", float("nan")),
            100 * r["fraction_of_openblas_gemm"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
