#!/usr/bin/env python3
"""Side-by-side throughput of scoresde's CUDA backend and the same model in PyTorch (eager mode).

Runs the Google Benchmark program cuda_bench (training steps and Euler-Maruyama sampling of the MLP
score model, and the card's SGEMM / copy ceilings) and then the same work in PyTorch on the same
GPU, with the same model (d = 2, depth 3, Fourier embedding 32, SiLU, residual), batch, precision
and cuBLAS math mode (torch.backends.cuda.matmul.allow_tf32 set to match), and prints one table
(also written as comparison.md / comparison.json under --out).

PyTorch side, per training step: t ~ U(eps, 1), x = alpha x0 + sigma z, F = model(c_in x, t),
s = -F / sigma, loss = mean ||sigma s + z||^2 (the sigma^2-weighted DSM loss), backward,
clip_grad_norm_(1), Adam (default foreach implementation) with linear warm-up, EMA by
torch._foreach_lerp_; batches come from pinned host memory with non_blocking copies. Sampling:
100 Euler-Maruyama steps of the reverse VP SDE under torch.no_grad(), result copied to the host.
Timing: torch.cuda.synchronize() around whole blocks (20 training steps; one sampling run), median
of --repeats blocks after warm-up. Nothing here is timed on zeros.

Usage (on the GPU machine):
  PYTHONUNBUFFERED=1 python3 benchmarks/compare_torch_gpu.py \
      --bench ".device/run.sh .device/bin/cuda_bench" --out $OUT
Dry run of the PyTorch path on a CPU (tiny sizes, our binary reports no device):
  /usr/bin/python3 benchmarks/compare_torch_gpu.py --device cpu --widths 32 --batches 64 \\
      --math fp32 --sample-steps 3 --repeats 2 --bench build-cuda/benchmarks/cuda_bench
"""

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time

MATH_CODES = {"pedantic-fp32": 0, "fp32": 1, "tf32": 2}
D, DEPTH, EMBED = 2, 3, 32
BETA_MIN, BETA_MAX, T_FINAL = 0.1, 20.0, 1.0
TRAIN_STEPS_PER_BLOCK = 20


def run_ours(bench, widths, batches, maths, sample_steps, out_dir):
    """Runs cuda_bench for the grid and returns {(kind, width, batch, math): counters}."""
    command = shlex.split(bench) if bench else []
    if not command or not os.path.exists(command[0]):
        print(f"[compare] no benchmark program at {bench!r}: skipping our side", flush=True)
        return {}, {}
    names = "|".join(f"{w}/{b}/{MATH_CODES[m]}" for w in widths for b in batches for m in maths)
    pattern = f"BM_CudaPeaks|BM_Cuda(TrainStep|Sample)/({names})/"
    out = os.path.join(out_dir, "cuda_bench.json")
    cmd = command + [f"--benchmark_filter={pattern}", "--benchmark_format=console",
           f"--benchmark_out={out}", "--benchmark_out_format=json"]
    print("[compare] " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=False)
    if not os.path.exists(out):
        return {}, {}
    with open(out) as f:
        data = json.load(f)
    results, peaks = {}, {}
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            print(f"[compare] {b['name']}: {b.get('error_message')}", flush=True)
            continue
        parts = b["name"].split("/")
        if parts[0] == "BM_CudaPeaks":
            peaks = {k: b[k] for k in ("sgemm_fp32_tflops", "sgemm_tf32_tflops",
                                       "copy_gbytes_per_second") if k in b}
            peaks["label"] = b.get("label", "")
            continue
        kind = "train" if parts[0] == "BM_CudaTrainStep" else "sample"
        width, batch, code = int(parts[1]), int(parts[2]), int(parts[3])
        math_name = [k for k, v in MATH_CODES.items() if v == code][0]
        results[(kind, width, batch, math_name)] = b
    return results, peaks


def torch_side(device, widths, batches, maths, sample_steps, repeats):
    import torch
    import torch.nn.functional as F

    class Mlp(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.register_buffer("w", torch.randn(EMBED // 2))
            self.inp = torch.nn.Linear(D + EMBED, width)
            self.hidden = torch.nn.ModuleList(
                [torch.nn.Linear(width, width) for _ in range(DEPTH - 1)])
            self.out = torch.nn.Linear(width, D)

        def forward(self, u, tau):
            phase = 2.0 * math.pi * tau[:, None] * self.w[None, :]
            a = F.silu(self.inp(torch.cat([u, torch.sin(phase), torch.cos(phase)], dim=1)))
            for layer in self.hidden:
                a = a + F.silu(layer(a))
            return self.out(a)

    def integral(t):
        return BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t / T_FINAL

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    results = {}
    for math_name in maths:
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = math_name == "tf32"
            torch.backends.cudnn.allow_tf32 = math_name == "tf32"
        for width in widths:
            for batch in batches:
                torch.manual_seed(0)
                model = Mlp(width).to(device)
                params = [p for p in model.parameters()]
                ema = [p.detach().clone() for p in params]
                lr, warmup, eps = 2e-4, 5000, 1e-5
                opt = torch.optim.Adam(params, lr=lr)
                host = [torch.randn(batch, D).pin_memory() if device == "cuda"
                        else torch.randn(batch, D) for _ in range(4)]
                counter = [0]

                def train_step(x_host):
                    k = counter[0] = counter[0] + 1
                    x0 = x_host.to(device, non_blocking=True)
                    t = eps + (T_FINAL - eps) * torch.rand(batch, device=device)
                    b = integral(t)
                    alpha = torch.exp(-0.5 * b)
                    sigma = torch.sqrt(-torch.expm1(-b))
                    z = torch.randn_like(x0)
                    x = alpha[:, None] * x0 + sigma[:, None] * z
                    c_in = torch.rsqrt(sigma * sigma + alpha * alpha)
                    out = model(c_in[:, None] * x, t)
                    s = -out / sigma[:, None]
                    loss = ((sigma[:, None] * s + z) ** 2).sum(dim=1).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    for group in opt.param_groups:
                        group["lr"] = lr * min(1.0, k / warmup)
                    opt.step()
                    with torch.no_grad():
                        decay = min(0.9999, (1.0 + k) / (10.0 + k))
                        if hasattr(torch, "_foreach_lerp_"):
                            torch._foreach_lerp_(ema, params, 1.0 - decay)
                        else:  # PyTorch < 2.0 (the CPU dry run)
                            for e, p in zip(ema, params):
                                e.lerp_(p, 1.0 - decay)

                for k in range(5):
                    train_step(host[k % 4])
                sync()
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    for k in range(TRAIN_STEPS_PER_BLOCK):
                        train_step(host[k % 4])
                    sync()
                    times.append((time.perf_counter() - start) / TRAIN_STEPS_PER_BLOCK)
                results[("train", width, batch, math_name)] = 1.0 / statistics.median(times)

                @torch.no_grad()
                def sample():
                    x = torch.randn(batch, D, device=device)
                    h = (T_FINAL - 1e-3) / sample_steps
                    for i in range(sample_steps):
                        t = T_FINAL - i * h
                        t_next = T_FINAL - (i + 1) * h if i + 1 < sample_steps else 1e-3
                        dt = t_next - t
                        b = integral(t)
                        alpha = math.exp(-0.5 * b)
                        sigma = math.sqrt(-math.expm1(-b))
                        c_in = 1.0 / math.sqrt(sigma * sigma + alpha * alpha)
                        beta = BETA_MIN + t / T_FINAL * (BETA_MAX - BETA_MIN)
                        tau = torch.full((batch,), t, device=device)
                        s = -model(c_in * x, tau) / sigma
                        x = x + dt * (-0.5 * beta * x - beta * s) + \
                            math.sqrt(beta) * math.sqrt(-dt) * torch.randn_like(x)
                    return x.cpu()

                sample()
                sync()
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    sample()
                    sync()
                    times.append(time.perf_counter() - start)
                results[("sample", width, batch, math_name)] = batch / statistics.median(times)
                print(f"[compare] torch {math_name} width {width} batch {batch}: "
                      f"{results[('train', width, batch, math_name)]:.1f} steps/s, "
                      f"{results[('sample', width, batch, math_name)]:.3g} samples/s", flush=True)
                del model, opt, params, ema, host
                if device == "cuda":
                    torch.cuda.empty_cache()
    return results


def weight_count(width):
    return (D + EMBED) * width + (DEPTH - 1) * width * width + width * D


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # The benchmark program, or a command that runs it (e.g. ".device/run.sh .device/bin/cuda_bench",
    # which sets LD_LIBRARY_PATH for that program only).
    parser.add_argument("--bench", default=".device/run.sh .device/bin/cuda_bench")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--widths", default="256,512,1024")
    parser.add_argument("--batches", default="1024,8192,65536")
    parser.add_argument("--math", default="fp32,tf32")
    parser.add_argument("--sample-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    maths = args.math.split(",")
    os.makedirs(args.out, exist_ok=True)

    ours, peaks = run_ours(args.bench, widths, batches, maths, args.sample_steps, args.out)
    import torch
    print(f"[compare] torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""), flush=True)
    theirs = torch_side(args.device, widths, batches, maths, args.sample_steps, args.repeats)

    rows = []
    for math_name in maths:
        peak = peaks.get("sgemm_tf32_tflops" if math_name == "tf32" else "sgemm_fp32_tflops")
        for width in widths:
            for batch in batches:
                row = {"math": math_name, "width": width, "batch": batch}
                wc = weight_count(width)
                for kind, counter in (("train", "steps_per_second"),
                                      ("sample", "samples_per_second")):
                    mine = ours.get((kind, width, batch, math_name), {}).get(counter)
                    other = theirs.get((kind, width, batch, math_name))
                    row[f"{kind}_ours"] = mine
                    row[f"{kind}_torch"] = other
                    row[f"{kind}_ratio"] = mine / other if mine and other else None
                    if mine:
                        flops = (6.0 * batch * wc if kind == "train"
                                 else 2.0 * wc * args.sample_steps) * mine
                        row[f"{kind}_tflops"] = flops / 1e12
                        row[f"{kind}_peak_fraction"] = flops / 1e12 / peak if peak else None
                rows.append(row)

    def fmt(v, spec):
        return format(v, spec) if isinstance(v, (int, float)) else "—"

    lines = ["| math | width | batch | train steps/s ours | torch | ratio | TFLOP/s (of peak) "
             "| samples/s ours | torch | ratio | TFLOP/s (of peak) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['math']} | {r['width']} | {r['batch']} | {fmt(r['train_ours'], '.1f')} | "
            f"{fmt(r['train_torch'], '.1f')} | {fmt(r['train_ratio'], '.2f')} | "
            f"{fmt(r.get('train_tflops'), '.1f')} ({fmt(r.get('train_peak_fraction'), '.0%')}) | "
            f"{fmt(r['sample_ours'], '.3g')} | {fmt(r['sample_torch'], '.3g')} | "
            f"{fmt(r['sample_ratio'], '.2f')} | {fmt(r.get('sample_tflops'), '.1f')} "
            f"({fmt(r.get('sample_peak_fraction'), '.0%')}) |")
    header = (f"Device: {peaks.get('label', args.device)}; measured ceilings: SGEMM 8192^3 "
              f"FP32 {fmt(peaks.get('sgemm_fp32_tflops'), '.1f')} TFLOP/s, TF32 "
              f"{fmt(peaks.get('sgemm_tf32_tflops'), '.1f')} TFLOP/s; device copy "
              f"{fmt(peaks.get('copy_gbytes_per_second'), '.0f')} GB/s (read + write). "
              f"Sampling: {args.sample_steps} Euler-Maruyama steps.")
    table = header + "\n\n" + "\n".join(lines) + "\n"
    print(table, flush=True)
    with open(os.path.join(args.out, "comparison.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "comparison.json"), "w") as f:
        json.dump({"peaks": peaks, "rows": rows, "torch": torch.__version__}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
