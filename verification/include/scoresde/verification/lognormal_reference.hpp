// The exact marginals and score of geometric Brownian motion, the state-dependent reference of the
// verification suites (design.md, section 2).
//
// Per coordinate, dX = μ X dt + σ X dW with X_0 ~ LogNormal(m_0, s_0²) gives ln X_t = ln X_0 +
// (μ − σ²/2) t + σ W_t (Itô's formula), so X_t ~ LogNormal(m_t, v_t) with
//   m_t = m_0 + (μ − σ²/2) t,   v_t = s_0² + σ² t,
// coordinates independent (Øksendal, "Stochastic Differential Equations", 6th ed., chapter 5).
// For x > 0:
//   log p_t(x)      = Σ_i [−ln x_i − ½ ln(2π v_i) − (ln x_i − m_i)² / (2 v_i)]
//   s_i = ∂_i log p = −(1/x_i) (1 + (ln x_i − m_i)/v_i)
//   ∂_i s_i         = (1/x_i²) (1 + (ln x_i − m_i − 1)/v_i)
// The density is zero for x_i ≤ 0: LogDensity returns −∞ there and the score (undefined) is NaN,
// which solvers report as a non-finite value.
#pragma once

#include <cstdint>
#include <optional>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/score_model.hpp"

namespace scoresde {

class LogNormalReference final : public ScoreModel {
 public:
  // X_0 ~ LogNormal(m0, diag(s0²)). m0 and s0 have sde.dim() entries, finite, s0 > 0; throws
  // InvalidArgument ("LogNormalReference: s0[1] = -1; must be > 0") otherwise. The SDE is held
  // by reference and must outlive this object.
  LogNormalReference(Vector m0, Vector s0, const GbmSde& sde);

  int dim() const override { return static_cast<int>(m0_.size()); }
  const Vector& m0() const { return m0_; }
  const Vector& s0() const { return s0_; }

  // m_t and v_t = s_t² (d entries each). Throw InvalidArgument unless 0 ≤ t ≤ T.
  Vector LogMean(double t) const;
  Vector LogVariance(double t) const;
  // E[X_t] = exp(m_t + v_t/2) and Var[X_t] = (e^{v_t} − 1) exp(2 m_t + v_t), per coordinate.
  Vector Mean(double t) const;
  Vector Variance(double t) const;

  // logp(j) = log p_t(j)(x(:, j)), −∞ if any coordinate is ≤ 0. x is d × B, t and logp have B
  // entries. Throws InvalidArgument on shapes or a time outside [0, T].
  void LogDensity(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef logp) const;

  // s = ∇ log p_t(x) (NaN where x ≤ 0); same shapes and throws, s is d × B.
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override;

  bool HasDivergence() const override { return true; }
  // div(j) = Σ_i (1/x_i²)(1 + (ln x_i − m_i − 1)/v_i).
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override;

  bool HasJvp() const override { return true; }
  // The Hessian of log p_t is diagonal: jv_i = ∂_i s_i · v_i.
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override;

  // E‖s‖² = Σ_i e^{2(v_i − m_i)} (1 + 1/v_i). Derivation: with ln X = m + Z, Z ~ N(0, v),
  // E[e^{−2(m+Z)} (1 + Z/v)²] = e^{−2m} e^{2v} E[(1 + Z'/v)²] by exponential tilting
  // (E[e^{−2Z} h(Z)] = e^{2v} E[h(Z')], Z' ~ N(−2v, v)), and Z'/v ~ N(−2, 1/v) gives
  // E[(1 + Z'/v)²] = (1 − 2)² + 1/v. Throws InvalidArgument unless 0 ≤ t ≤ T.
  std::optional<double> ExpectedSquaredNorm(double t) const override;

  // Exact draws: x_i = exp(m_t + sqrt(v_t) z_i), z standard normal for sample first_sample + j at
  // (step 0, substep 0) of `noise`; chunking-invariant. x is d × B.
  void SampleMarginal(double t, const NoiseStream& noise, int64_t first_sample, BatchRef x) const;

 private:
  void CheckTime(const char* where, double t) const;
  void CheckInputs(const char* where, ConstBatchRef x, ConstRowVectorRef t) const;

  Vector m0_;
  Vector s0_;
  const GbmSde* sde_;
};

}  // namespace scoresde
