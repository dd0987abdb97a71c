// Scores and noise sources shared by the solvers tests: a closed-form Gaussian score (solvers may
// not depend on verification/) and a noise source that returns prescribed increments.
#pragma once

#include <cmath>
#include <optional>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/noise_source.hpp"

namespace scoresde::testing {

// Data N(mean, s0² I) pushed through a scalar-affine SDE: p_t = N(α mean, (α² s0² + σ_t²) I),
// s(x, t) = −(x − α mean)/(α² s0² + σ_t²), E‖s‖² = d/(α² s0² + σ_t²).
class IsotropicGaussianScore final : public ScoreModel {
 public:
  IsotropicGaussianScore(const ScalarAffineSde& sde, Vector mean, double s0)
      : sde_(&sde), mean_(std::move(mean)), s0_(s0) {}
  int dim() const override { return static_cast<int>(mean_.size()); }
  double Variance(double t) const {
    const double a = sde_->MeanCoefficient(t), sigma = sde_->MarginalStd(t);
    return a * a * s0_ * s0_ + sigma * sigma;
  }
  double MeanCoefficient(double t) const { return sde_->MeanCoefficient(t); }
  const Vector& mean() const { return mean_; }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      s.col(j) = -(x.col(j) - sde_->MeanCoefficient(t(j)) * mean_) / Variance(t(j));
    }
  }
  std::optional<double> ExpectedSquaredNorm(double t) const override {
    return dim() / Variance(t);
  }

 private:
  const ScalarAffineSde* sde_;
  Vector mean_;
  double s0_;
};

// The same score without the closed-form E‖s‖² (forces the pilot).
class NoNormScore final : public ScoreModel {
 public:
  explicit NoNormScore(const ScoreModel& inner) : inner_(&inner) {}
  int dim() const override { return inner_->dim(); }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    inner_->Evaluate(x, t, s);
  }

 private:
  const ScoreModel* inner_;
};

// ΔW = w √h and ΔZ = ζ h^{3/2} for prescribed w, ζ (the same for every step and sample).
class ProbeNoise final : public NoiseSource {
 public:
  ProbeNoise(Vector w, Vector zeta) : w_(std::move(w)), zeta_(std::move(zeta)) {}
  int dim() const override { return static_cast<int>(w_.size()); }
  void Increment(int64_t, double, double dt, int64_t, BatchRef dw) const override {
    dw = (std::sqrt(std::abs(dt)) * w_).replicate(1, dw.cols());
  }
  void IncrementWithArea(int64_t step, double t, double dt, int64_t first, BatchRef dw,
                         BatchRef dz) const override {
    Increment(step, t, dt, first, dw);
    dz = (std::pow(std::abs(dt), 1.5) * zeta_).replicate(1, dz.cols());
  }

 private:
  Vector w_;
  Vector zeta_;
};

}  // namespace scoresde::testing
