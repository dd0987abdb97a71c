// Closed forms shared by the conditional-sampling tests of solvers/ (which may not depend on
// verification/): the exact score of Gaussian data N(μ, Σ) under a scalar-affine SDE, with its
// Jacobian–vector product, and the Gaussian posterior of a linear measurement.
#pragma once

#include <optional>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/LU>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/linear_measurement.hpp"

namespace scoresde::testing {

// p_t = N(α μ, α² Σ + σ_t² I): s = −C_t⁻¹ (x − α μ), (∂s/∂x) v = −C_t⁻¹ v, E‖s‖² = tr C_t⁻¹.
class GaussianScore final : public ScoreModel {
 public:
  GaussianScore(const ScalarAffineSde& sde, Vector mean, Matrix cov)
      : sde_(&sde), mean_(std::move(mean)), cov_(std::move(cov)) {}
  int dim() const override { return static_cast<int>(mean_.size()); }
  Matrix Covariance(double t) const {
    const double a = sde_->MeanCoefficient(t), s = sde_->MarginalStd(t);
    return a * a * cov_ + s * s * Matrix::Identity(dim(), dim());
  }
  Vector Mean(double t) const { return sde_->MeanCoefficient(t) * mean_; }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Eigen::LLT<Matrix> llt(Covariance(t(j)));
      s.col(j) = -llt.solve(x.col(j) - Mean(t(j)));
    }
  }
  bool HasJvp() const override { return true; }
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Eigen::LLT<Matrix> llt(Covariance(t(j)));
      s.col(j) = -llt.solve(x.col(j) - Mean(t(j)));
      jv.col(j) = -llt.solve(v.col(j));
    }
  }
  std::optional<double> ExpectedSquaredNorm(double t) const override {
    return Covariance(t).inverse().trace();
  }

 private:
  const ScalarAffineSde* sde_;
  Vector mean_;
  Matrix cov_;
};

// x₀ | y for x₀ ~ N(μ, Σ), y = A x₀ + N(0, Σ_y): N(μ + K(y − Aμ), Σ − K A Σ), K = ΣAᵀ(AΣAᵀ + Σ_y)⁻¹.
inline std::pair<Vector, Matrix> GaussianPosterior(const Vector& mean, const Matrix& cov,
                                                   const LinearMeasurement& m) {
  const Matrix S = m.A * cov * m.A.transpose() + m.noise_cov;
  const Matrix gain = cov * m.A.transpose() * S.inverse();
  Matrix post = cov - gain * m.A * cov;
  post = 0.5 * (post + post.transpose());
  return {mean + gain * (m.y - m.A * mean), post};
}

}  // namespace scoresde::testing
