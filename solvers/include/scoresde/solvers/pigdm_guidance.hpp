// Pseudoinverse-guided measurement guidance for linear inverse problems with any score model
// (ΠGDM: Song, Vahdat, Mardani & Kautz, "Pseudoinverse-Guided Diffusion Models for Inverse
// Problems", ICLR 2023, eqs. 5–8, for y = A x₀ + e, e ~ N(0, Σ_y); Σ_y = σ_y² I there).
//
// Under the kernel x_t | x₀ ~ N(α x₀, σ_t² I) of a VE/VP/sub-VP SDE, the posterior of x₀ given x_t
// has mean x̂₀ = (x_t + σ_t² s(x_t, t))/α (Tweedie; Efron 2011) and is approximated by
// N(x̂₀, r_t² I) with the variance it has for data N(μ, σ_d² I),
//   r_t² = σ_d² σ_t² / (α² σ_d² + σ_t²),                       σ_d = Options::data_std.
// Then p_t(y | x_t) ≈ p̃_t(y | x_t) = N(y; A x̂₀, M_t),  M_t = Σ_y + r_t² A Aᵀ, and
//   ∇ₓ log p̃_t(y | x) = (∂x̂₀/∂x)ᵀ Aᵀ M_t⁻¹ (y − A x̂₀),   ∂x̂₀/∂x = (I + σ_t² ∇ₓ s)/α.
// ∇ₓ s is the Hessian of log p_t for an exact score, hence symmetric, so (∂x̂₀/∂x)ᵀ v is computed
// with the score's Jacobian–vector product (one ScoreModel::EvaluateWithJvp per call): for a
// learned score whose Jacobian is not symmetric this replaces ΠGDM's vector–Jacobian product by
// the JVP, an error equal to the antisymmetric part of ∇ₓ s applied to v.
//
// Exactness: for data N(μ, σ_d² I) (any μ) with the exact score, p(x₀ | x_t) is exactly
// N(x̂₀, r_t² I), so p̃_t = p_t(y | x_t) and s + ∇ log p̃_t is the exact conditional score — the
// tests check this. For other data the approximation is biased (measured in
// docs/conditional.md); the SMC sampler (smc_sampler.hpp) uses p̃_t as its twisting
// function and removes that bias as particles grow. At σ_t = 0, x̂₀ = x/α needs no score.
// Diffusion posterior sampling (DPS; Chung et al., ICLR 2023) is the r_t = 0 member of this
// family with a heuristic step size.
#pragma once

#include <utility>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/guidance.hpp"
#include "scoresde/solvers/linear_measurement.hpp"

namespace scoresde {

class PigdmGuidance final : public Guidance {
 public:
  struct Options {
    double data_std = 1.0;  // σ_d > 0 of the r_t² rule
    // Throws InvalidArgument ("PigdmGuidance::Options: data_std = 0; must be > 0").
    void Validate() const;
  };

  // The SDE and the score are held by reference and must outlive this object. Throws
  // InvalidArgument unless the options and the measurement are valid (LinearMeasurement::Validate),
  // dimensions agree and score.HasJvp().
  PigdmGuidance(const ScalarAffineSde& sde, const ScoreModel& score, LinearMeasurement measurement,
                Options options);
  PigdmGuidance(const ScalarAffineSde& sde, const ScoreModel& score, LinearMeasurement measurement)
      : PigdmGuidance(sde, score, std::move(measurement), Options{}) {}

  int dim() const override { return measurement_.dim(); }
  int score_evaluations() const override { return 1; }  // one Jacobian–vector product
  const LinearMeasurement& measurement() const { return measurement_; }
  // r_t² above. Throws InvalidArgument unless 0 ≤ t ≤ T.
  double PosteriorVariance(double t) const;

  // score(:, j) must be s(x(:, j), t(j)) of the score passed at construction. Throws
  // InvalidArgument on shapes, times outside [0, T], or a singular M_t (a noiseless measurement
  // at σ_t = 0, e.g. sampling to ε = 0).
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                BatchRef grad) const override;
  bool HasLogLikelihood() const override { return true; }
  // log_likelihood(j) = log N(y; A x̂₀, M_t), including −½ log det(2π M_t).
  void EvaluateWithLogLikelihood(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                                 BatchRef grad, RowVectorRef log_likelihood) const override;

 private:
  void Compute(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score, BatchRef grad,
               RowVectorRef* log_likelihood) const;

  const ScalarAffineSde* sde_;
  const ScoreModel* score_;
  LinearMeasurement measurement_;
  Options options_;
  Matrix a_at_;  // A Aᵀ
};

}  // namespace scoresde
