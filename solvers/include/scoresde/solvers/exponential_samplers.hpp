// Exponential-integrator ODE samplers for scalar-affine SDEs (VP first of all; VE and sub-VP
// work the same way), from the exact solution formula in noise_schedule.hpp.
//
// DPM-Solver (Lu, Zhou, Bao, Chen, Li & Zhu, "DPM-Solver: A fast ODE solver for diffusion
// probabilistic model sampling in around 10 steps", NeurIPS 2022), singlestep, in noise
// prediction ε = −σ_t s. A step from s to t, h = λ_t − λ_s > 0, φ(h) = e^h − 1:
//   order 1 (= DDIM):  x_t = (α_t/α_s) x_s − σ_t φ(h) ε_s
//   order 2 (Alg. 1, r₁ = ½):  s₁ = t_λ(λ_s + r₁h),  u = (α_{s₁}/α_s) x_s − σ_{s₁} φ(r₁h) ε_s,
//       x_t = (α_t/α_s) x_s − σ_t φ(h) ε_s − (σ_t/(2r₁)) φ(h) (ε(u, s₁) − ε_s)
//   order 3 (Alg. 2, r₁ = ⅓, r₂ = ⅔):  u₁ as u with r₁,  D₁ = ε(u₁, s₁) − ε_s,
//       u₂ = (α_{s₂}/α_s) x_s − σ_{s₂} φ(r₂h) ε_s − (σ_{s₂} r₂/r₁)(φ(r₂h)/(r₂h) − 1) D₁,
//       D₂ = ε(u₂, s₂) − ε_s,  x_t = (α_t/α_s) x_s − σ_t φ(h) ε_s − (σ_t/r₂)(φ(h)/h − 1) D₂
// A k-th order step costs k evaluations and the method has global order k (Lu et al., thm 3.2).
// Schedules (the paper's section 3.4 and its code): kFast spends an evaluation budget N with
// third-order steps, K = ⌊N/3⌋ + 1 outer steps with orders [3,…,3,2,1] (N ≡ 0 mod 3),
// [3,…,3,1] (≡ 1) or [3,…,3,2] (≡ 2), and likewise for order 2 ([2,…,2] or [2,…,2,1]);
// kFixed takes ⌊N/k⌋ steps of order k. Outer time grids: uniform in λ (kLogSnr, K steps), or a
// subset (at the cumulative orders) of the N-step grid uniform in t (kTimeUniform) or in √t
// (kTimeQuadratic).
//
// DPM-Solver++(2M) (Lu et al., "DPM-Solver++: Fast solver for guided sampling of diffusion
// probabilistic models", 2022, Algorithm 2), multistep in data prediction x̂₀ = (x + σ_t² s)/α_t:
//   x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) D_i,  h_i = λ_i − λ_{i−1},
//   D_i = (1 + 1/(2r_i)) x̂₀(i−1) − (1/(2r_i)) x̂₀(i−2),  r_i = h_{i−1}/h_i,
// first-order (D₁ = x̂₀(0)) on the first step and, with lower_order_final and fewer than 10
// steps, on the last; one evaluation per step, global order 2.
//
// Both integrate from t = T (x_T given) down to ε; denoise_to_zero adds the data prediction at ε
// as a last evaluation (the papers' option, Tweedie's formula). Every sample's result depends
// only on its own column, so any thread count or batch split gives the same bits.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/noise_schedule.hpp"
#include "scoresde/solvers/probability_flow.hpp"

namespace scoresde {

enum class TimeGrid { kLogSnr, kTimeUniform, kTimeQuadratic };
std::string_view ToString(TimeGrid grid);
// "logSNR", "time-uniform", "time-quadratic"; throws InvalidArgument naming `where`.
TimeGrid ParseTimeGrid(std::string_view name, std::string_view where = "ParseTimeGrid");

// N + 1 times from T down to eps (N ≥ 1): uniform in λ, in t, or in √t.
std::vector<double> MakeTimeGrid(const NoiseSchedule& schedule, TimeGrid grid, double eps,
                                 int num_steps);

class DpmSolver {
 public:
  enum class Schedule { kFast, kFixed };
  struct Options {
    int order = 3;             // 1, 2 or 3
    int nfe = 20;              // N, the evaluation budget (≥ order)
    Schedule schedule = Schedule::kFast;
    TimeGrid grid = TimeGrid::kLogSnr;
    double eps = 1e-3;         // end time, 0 < eps < T
    bool denoise_to_zero = false;
    int num_threads = 1;
    int64_t chunk_size = 128;
    void Validate() const;     // throws InvalidArgument naming the option
  };

  // Throws InvalidArgument for invalid options, eps ≥ T, or dimensions that differ.
  DpmSolver(const ScalarAffineSde& sde, const ScoreModel& score, Options options);
  ~DpmSolver();

  const Options& options() const { return options_; }
  // The orders of the outer steps and the K + 1 outer times (T, …, eps).
  const std::vector<int>& orders() const { return orders_; }
  const std::vector<double>& times() const { return times_; }

  // x_T (d × B, finite) to x_eps. solution.y is d × B; nfe per sample is the budget actually
  // spent (Σ orders, + 1 with denoise_to_zero). Non-finite scores throw NumericalFailure with
  // the step, time, sample (first_sample + column) and coordinate.
  OdeSolution Sample(ConstBatchRef x_T, int64_t first_sample = 0) const;

 private:
  void RunChunk(BatchRef x, int64_t first_sample) const;
  const NoiseSchedule schedule_;
  const ScoreModel& score_;
  Options options_;
  std::vector<int> orders_;
  std::vector<double> times_;
  std::unique_ptr<ExecutionContext> context_;
};

class DpmSolverPlusPlus2M {
 public:
  struct Options {
    int num_steps = 20;        // M ≥ 1, one evaluation each
    TimeGrid grid = TimeGrid::kLogSnr;
    double eps = 1e-3;
    bool lower_order_final = true;
    bool denoise_to_zero = false;
    int num_threads = 1;
    int64_t chunk_size = 128;
    void Validate() const;
  };

  DpmSolverPlusPlus2M(const ScalarAffineSde& sde, const ScoreModel& score, Options options);
  ~DpmSolverPlusPlus2M();

  const Options& options() const { return options_; }
  const std::vector<double>& times() const { return times_; }
  OdeSolution Sample(ConstBatchRef x_T, int64_t first_sample = 0) const;

 private:
  void RunChunk(BatchRef x, int64_t first_sample) const;
  const NoiseSchedule schedule_;
  const ScoreModel& score_;
  Options options_;
  std::vector<double> times_;
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace scoresde
