// The EDM sampler (Karras, Aittala, Aila & Laine, "Elucidating the design space of
// diffusion-based generative models", NeurIPS 2022, Algorithms 1 and 2) on a scalar-affine SDE.
//
// It integrates dx̂/dσ̃ = (x̂ − D(x̂; σ̃))/σ̃ in the noise level σ̃ = σ_t/α_t with x̂ = x/α_t and the
// denoiser D = (x + σ_t² s(x, t))/α_t at t = t(σ̃) (noise_schedule.hpp), over the levels
//   σ̃_i = (σ̃_max^{1/ρ} + i/(N−1) (σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ,  i = 0, …, N−1,  σ̃_N = 0,
// with Heun steps (Euler where σ̃_{i+1} = 0). Defaults are the SDE's own range: σ̃_max = σ̃(T),
// σ̃_min = σ̃(eps). Algorithm 2's churn: where S_tmin ≤ σ̃_i ≤ S_tmax, the level is raised to
// σ̂ = σ̃_i (1 + γ), γ = min(S_churn/N, √2 − 1), by adding N(0, (σ̂² − σ̃_i²) S_noise² I) noise
// (NoiseStream(seed, kPredictor) at (step i, sample)); γ is further capped so that σ̂ ≤ σ̃(T), where
// the score is defined. S_churn = 0 is the deterministic Algorithm 1, a second-order ODE method.
//
// final_step_to_zero = true is the paper's schedule: the last step goes to σ̃ = 0 (t = 0) with one
// Euler step, which returns the denoiser D(x̂; σ̃_min); N levels cost 2N − 1 evaluations. With
// false the last level is σ̃_min and every step is a Heun step: the result is the ODE solution at
// t = eps (2(N − 1) evaluations), which is what the convergence tests measure.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/noise_schedule.hpp"
#include "scoresde/solvers/probability_flow.hpp"

namespace scoresde {

class EdmSampler {
 public:
  struct Options {
    int num_steps = 18;        // N ≥ 2 noise levels
    double rho = 7.0;          // > 0
    double eps = 1e-3;         // end time (σ̃_min = σ̃(eps) unless sigma_min is given)
    double sigma_min = 0.0;    // 0: σ̃(eps)
    double sigma_max = 0.0;    // 0: σ̃(T)
    double s_churn = 0.0;      // ≥ 0
    double s_tmin = 0.0;
    double s_tmax = std::numeric_limits<double>::infinity();
    double s_noise = 1.0;
    bool final_step_to_zero = true;
    uint64_t seed = 0;
    int num_threads = 1;
    int64_t chunk_size = 128;
    void Validate() const;     // throws InvalidArgument naming the option
  };

  // Throws InvalidArgument for invalid options, eps ≥ T, levels outside the SDE's range
  // [σ̃(eps)… σ̃(T)] or sigma_min ≥ sigma_max, or dimensions that differ.
  EdmSampler(const ScalarAffineSde& sde, const ScoreModel& score, Options options);
  ~EdmSampler();

  const Options& options() const { return options_; }
  // σ̃_0, …, σ̃_{N−1} (and σ̃_N = 0 with final_step_to_zero).
  const std::vector<double>& sigmas() const { return sigmas_; }

  // x_T (d × B, finite; x at t(σ̃_max)) to data (t = 0) or to t(σ̃_min). Non-finite scores throw
  // NumericalFailure with step, time, sample and coordinate.
  OdeSolution Sample(ConstBatchRef x_T, int64_t first_sample = 0) const;

 private:
  void RunChunk(BatchRef x, int64_t first_sample) const;
  // D(x̂; σ̃) for x̂ = x/α_t at t = t(σ̃).
  void Denoise(ConstBatchRef x_hat, double sigma, int64_t step, int64_t first_sample,
               RowVector* times, Batch* out) const;

  const NoiseSchedule schedule_;
  const ScoreModel& score_;
  Options options_;
  std::vector<double> sigmas_;
  double sigma_top_;  // σ̃(T)
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace scoresde
