// Plain parameter blocks of the CUDA backend's kernels, shared by the device code (kernels.cu), the
// host orchestration and the host emulation used by the tests; standard C++ only.
//
// Conventions shared with the CPU code (mlp_score.hpp, losses.hpp, optimizer.hpp, random.hpp):
// - Column-major d × n batches; float activations on the device; double for per-sample
//   coefficients, noise and sampler states (the CPU keeps those in double too).
// - Layer l of the network is stored as S_l, a column-major (in_pad × out) matrix whose column o
//   is [W(o, 0..in−1), b(o), 0 …]: nn.Linear's row-major W is Wᵀ column-major, and the bias rides
//   in row `in`, so z = S_lᵀ [a; 1] is one GEMM and the bias gradient is row `in` of the
//   weight-gradient GEMM (activation buffers carry a row of ones there).
// - Philox4x32-10 counters as sde/src/random_internal.hpp: key = (seed lo, seed hi), counter =
//   (block, sample, step, stream << 16 | substep); normals by Box–Muller on two 53-bit uniforms.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SCORESDE_HD __host__ __device__
#else
#define SCORESDE_HD
#endif

namespace scoresde::internal::cuda {

enum SdeFamilyCode : int { kFamilyVe = 0, kFamilyVp = 1, kFamilySubVp = 2 };

struct SdeParams {
  int family = kFamilyVp;
  int ve_exact = 1;  // VE kernel: 1 exact (σ(t)² − σmin²), 0 reference (σ(t))
  double t_final = 1.0;
  double sigma_min = 0.01, sigma_max = 50.0, log_ratio = 0.0;  // VE
  double beta_min = 0.1, beta_max = 20.0;                       // VP, sub-VP
};

enum ParameterizationCode : int { kParamScore = 0, kParamNoise = 1, kParamDenoiser = 2 };

struct ModelParams {
  int parameterization = kParamNoise;
  double data_std = 1.0;
};

enum LossCode : int { kLossDsm = 0, kLossSsm = 1, kLossSsmVr = 2, kLossDdpm = 4, kLossNcsn = 5 };

struct LossParams {
  int kind = kLossDsm;
  int likelihood_weighting = 0;
  int importance = 0;
  int rademacher = 1;
  double eps = 1e-5;
  int num_scales = 1000;
  double phi_eps = 0.0, phi_t = 0.0;  // TimeSampler::Potential at ε and T (host-computed)
  const double* alpha_bar = nullptr;  // DDPM's ᾱ_i, num_scales entries
};

// Per-example draw of a training step: time, kernel, weight and score coefficients.
struct PerSample {
  double t, alpha, sigma, weight, a, b, c_in, tau;
};

struct NoiseKey {
  uint64_t seed = 0;
  uint32_t stream = 0;
};

struct AdamParams {
  double learning_rate, beta1, beta2, epsilon, weight_decay;
  int decoupled;
  int64_t warmup_steps;
  double clip_norm, ema_decay;
};

// Scalars of one optimizer update, computed from the step counter and the gradient norm exactly as
// AdamOptimizer::Step computes them on the host (in the parameters' precision T).
template <typename T>
struct UpdateScalars {
  int skip;  // 1: a previous or this update's gradient was not finite
  int clip;  // 1: multiply the gradient by clip_coef
  T clip_coef;
  T step_size;  // η_k / (1 − β₁^k)
  T root_correction2;
  T shrink;        // 1 − η_k λ (decoupled decay)
  T ema_keep_new;  // 1 − min(decay, (1 + n)/(10 + n))
};

// Counters of a trainer (device memory on the GPU): updates done, EMA updates, first failed update
// (−1: none).
struct TrainCounters {
  int64_t step;
  int64_t ema_updates;
  int64_t failed_step;
};

// Where the first non-finite value of a sampling run was seen: per sample the smallest
// (step, coordinate) packed as step << 32 | coordinate, plus a flag.
struct FailureSink {
  unsigned long long* per_sample;  // n entries, initialized to ~0
  int* any;
};

// One noisy sampler update, written in the operation order of the CPU steppers (predictors.cpp,
// correctors.cpp):
//   kEuler          x ← x + (dt (f x − g2 s) + g dw)       Euler–Maruyama, reverse SDE
//   kAffine         x ← (p x + q s) + r dw                 reverse diffusion (p = 1 − drift)
//   kAdd            x ← x + (q s + r dw)                   NCSN ancestral step
//   kDdpm           x ← (x + q s)/p + r dw                 DDPM ancestral step
//   kLangevin       x ← x + (ε s + √(2ε) z),  ε = 2α r² d / expected[level]
//   kFixedLangevin  the same with ε = q                    annealed Langevin
// with dw = √h z and z from (key, noise_step, substep) for sample first_sample + j.
enum UpdateKind : int { kUpdateEuler = 0, kUpdateAffine = 1, kUpdateAdd = 2, kUpdateDdpm = 3,
                        kUpdateLangevin = 4, kUpdateFixedLangevin = 5 };

struct UpdateArgs {
  int kind = kUpdateEuler;
  double p = 1.0, q = 0.0, r = 0.0;
  double dt = 0.0, f = 0.0, g2 = 0.0, g = 0.0, sqrt_h = 1.0;
  double langevin_alpha = 1.0, snr = 0.16;
  const double* expected = nullptr;
  int level = 0;
  NoiseKey key;
  uint64_t noise_step = 0;   // the Philox step of z
  uint32_t substep = 0;
  int64_t report_step = 0;   // the sampler step reported on failure
};

}  // namespace scoresde::internal::cuda
