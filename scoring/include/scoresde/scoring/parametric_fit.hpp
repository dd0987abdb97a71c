// Parametric score families fitted by denoising score matching posed as non-linear least squares
// (Ceres Solver, Levenberg–Marquardt). Over a fixed seeded set of triples (x_0^i, t_i, z_i),
// t_i ~ U(ε, T) and z_i ~ N(0, I) from NoiseStream(seed, Stream::kTraining) (sample i, step 0),
// x_i = α(t_i) x_0^i + σ_i z_i, the fit minimises
//
//   Σ_i ‖r_i‖²,   r_i = sqrt(λ(t_i)) (s_θ(x_i, t_i) + z_i/σ_i),   λ = σ_t² or g(t)²,
//
// whose population minimiser is the true score when the family contains it (Vincent, 2011):
// E[−z/σ | x_t] = ∇ log p_t(x_t).
// Families (α, σ from the SDE's kernel):
//   Gaussian   p_0 = N(μ, L Lᵀ), L lower triangular:  s = −(α² L Lᵀ + σ² I)⁻¹ (x − α μ);
//              θ = (μ, the d(d+1)/2 entries of L row by row). Reported with positive diagonal.
//   Mixture    known weights w_k and covariances C_k, learnable means μ_k:
//              s = Σ_k ρ_k(x) · (−(α² C_k + σ² I)⁻¹ (x − α μ_k)), ρ_k the posterior weights.
// At the optimum E[r_i | x_i, t_i] = 0, so the Gauss–Newton matrix JᵀJ is the Hessian's
// expectation and the estimator's covariance is the sandwich (JᵀJ)⁻¹ (Σ_i J_iᵀ r_i r_iᵀ J_i) (JᵀJ)⁻¹
// (M-estimation; Huber 1967). It is reported so that "the fit reaches the analytic optimum" is a
// test within Monte-Carlo error: |θ̂ − θ*| ≤ 5 standard errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scoresde/scoring/losses.hpp"
#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

struct DsmFitOptions {
  uint64_t seed = 0;
  double eps = 1e-3;  // t ~ U(ε, T)
  Weighting weighting = Weighting::kSigmaSquared;
  int max_iterations = 200;
  int num_threads = 1;
  // Throws InvalidArgument: eps in (0, 1), max_iterations ≥ 1, num_threads ≥ 1.
  void Validate() const;
};

struct DsmFitResult {
  Vector parameters;            // θ̂ (layout per family above)
  Matrix parameter_covariance;  // the sandwich estimate of Cov(θ̂)
  Vector standard_errors;       // sqrt of its diagonal
  double initial_cost = 0.0;    // ½ Σ‖r_i‖² at the start and the end (Ceres's convention)
  double final_cost = 0.0;
  int iterations = 0;
  bool converged = false;
  std::string report;           // Ceres's brief report
};

struct GaussianFit {
  Vector mean;         // μ̂
  Matrix cholesky;     // L̂, lower triangular with positive diagonal
  Matrix covariance;   // L̂ L̂ᵀ
  DsmFitResult fit;    // θ̂ = (μ̂, L̂ row by row)
};

// Fits N(μ, LLᵀ) to x0 (d × n, n > d(d+3)/2) starting from μ = 0, L = I. Throws InvalidArgument on
// bad options, empty or non-finite data.
GaussianFit FitGaussianByDsm(const ScalarAffineSde& sde, ConstBatchRef x0,
                             const DsmFitOptions& options);

struct MixtureMeansFit {
  std::vector<Vector> means;
  DsmFitResult fit;    // θ̂ = (μ_1, …, μ_K)
};

// Fits the means of a mixture with known weights (K entries, positive, summing to 1) and
// covariances (K symmetric positive definite d × d), from initial_means. Throws InvalidArgument.
MixtureMeansFit FitMixtureMeansByDsm(const ScalarAffineSde& sde, ConstBatchRef x0,
                                     const Vector& weights, const std::vector<Matrix>& covs,
                                     const std::vector<Vector>& initial_means,
                                     const DsmFitOptions& options);

}  // namespace scoresde
