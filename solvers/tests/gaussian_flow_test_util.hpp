// Test helper: data N(μ, diag(v)) under a scalar-affine SDE has p_t = N(α_t μ, diag(c_t)),
// c_t = α_t² v + σ_t², and the probability-flow map is exact and linear per coordinate:
//   x_t = α_t μ + sqrt(c_t / c_s) (x_s − α_s μ).
#pragma once

#include <cmath>

#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"

namespace scoresde::testing {

class DiagonalGaussianScore : public ScoreModel {
 public:
  DiagonalGaussianScore(const ScalarAffineSde& sde, Vector mean, Vector variance)
      : sde_(sde), mean_(std::move(mean)), variance_(std::move(variance)) {}
  int dim() const override { return static_cast<int>(mean_.size()); }
  Eigen::ArrayXd C(double t) const {
    const double a = sde_.MeanCoefficient(t);
    const double sigma = sde_.MarginalStd(t);
    return a * a * variance_.array() + sigma * sigma;
  }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      s.col(j) = (-(x.col(j) - sde_.MeanCoefficient(t(j)) * mean_).array() / C(t(j))).matrix();
    }
  }
  // The exact flow from time s to time t.
  Batch Flow(const Batch& x, double s, double t) const {
    const Eigen::ArrayXd ratio = (C(t) / C(s)).sqrt();
    Batch out(x.rows(), x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      out.col(j) = sde_.MeanCoefficient(t) * mean_ +
                   (ratio * (x.col(j) - sde_.MeanCoefficient(s) * mean_).array()).matrix();
    }
    return out;
  }

 private:
  const ScalarAffineSde& sde_;
  Vector mean_;
  Vector variance_;
};

}  // namespace scoresde::testing
