#include "scoresde/solvers/pigdm_guidance.hpp"

#include <cmath>
#include <numbers>
#include <string>
#include <utility>

#include <Eigen/Cholesky>

#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {
constexpr const char* kWhere = "PigdmGuidance";
}  // namespace

void PigdmGuidance::Options::Validate() const {
  Require(std::isfinite(data_std) && data_std > 0.0, "PigdmGuidance::Options", "data_std",
          data_std, "finite and > 0");
}

PigdmGuidance::PigdmGuidance(const ScalarAffineSde& sde, const ScoreModel& score,
                             LinearMeasurement measurement, Options options)
    : sde_(&sde), score_(&score), measurement_(std::move(measurement)), options_(options) {
  options_.Validate();
  measurement_.Validate(kWhere, sde.dim());
  Require(score.dim() == sde.dim(), kWhere, "score dim", score.dim(),
          "equal to the SDE's dim (" + std::to_string(sde.dim()) + ")");
  if (!score.HasJvp()) {
    throw InvalidArgument(std::string(kWhere) +
                          ": score has no Jacobian-vector product (HasJvp() is false); the "
                          "gradient through Tweedie's estimate needs one");
  }
  a_at_ = measurement_.A * measurement_.A.transpose();
}

double PigdmGuidance::PosteriorVariance(double t) const {
  Require(t >= 0.0 && t <= sde_->t_final(), kWhere, "t", t,
          "in [0, T] (T = " + FormatValue(sde_->t_final()) + ")");
  const double alpha = sde_->MeanCoefficient(t);
  const double sigma = sde_->MarginalStd(t);
  const double sd2 = options_.data_std * options_.data_std;
  return sd2 * sigma * sigma / (alpha * alpha * sd2 + sigma * sigma);
}

void PigdmGuidance::Evaluate(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                             BatchRef grad) const {
  Compute(x, t, score, grad, nullptr);
}

void PigdmGuidance::EvaluateWithLogLikelihood(ConstBatchRef x, ConstRowVectorRef t,
                                              ConstBatchRef score, BatchRef grad,
                                              RowVectorRef log_likelihood) const {
  CheckShape("PigdmGuidance::EvaluateWithLogLikelihood", "log_likelihood", log_likelihood, 1,
             x.cols());
  Compute(x, t, score, grad, &log_likelihood);
}

void PigdmGuidance::Compute(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                            BatchRef grad, RowVectorRef* log_likelihood) const {
  constexpr const char* kEval = "PigdmGuidance::Evaluate";
  const int d = dim();
  const Eigen::Index n = x.cols();
  CheckShape(kEval, "x", x, d, -1);
  CheckShape(kEval, "t", t, 1, n);
  CheckShape(kEval, "score", score, d, n);
  CheckShape(kEval, "grad", grad, d, n);
  const Matrix& A = measurement_.A;
  const int m = measurement_.num_observations();
  const double log_2pi = std::log(2.0 * std::numbers::pi);
  Vector x_hat(d), residual(m), u(m);
  Batch v(d, n);
  // Runs of consecutive columns sharing a time share M_t and its factorization; every product
  // is a matrix–vector product per column, so a column's bits do not depend on its batch.
  Eigen::Index begin = 0;
  while (begin < n) {
    Eigen::Index end = begin + 1;
    while (end < n && t(end) == t(begin)) ++end;
    const double time = t(begin);
    const double r2 = PosteriorVariance(time);
    const double alpha = sde_->MeanCoefficient(time);
    const double sigma = sde_->MarginalStd(time);
    const double sigma2 = sigma * sigma;
    const Matrix M = measurement_.noise_cov + r2 * a_at_;
    const Eigen::LLT<Matrix> llt(M);
    if (llt.info() != Eigen::Success) {
      throw InvalidArgument(std::string(kEval) + ": Sigma_y + r_t^2 A A^T is singular at t = " +
                            FormatValue(time) +
                            " (a noiseless measurement at sigma_t = 0: stop at eps > 0 or "
                            "give the measurement noise)");
    }
    double log_det = 0.0;
    for (int i = 0; i < m; ++i) log_det += 2.0 * std::log(llt.matrixL()(i, i));
    for (Eigen::Index j = begin; j < end; ++j) {
      x_hat = (x.col(j) + sigma2 * score.col(j)) / alpha;
      residual = measurement_.y - A * x_hat;
      u = llt.solve(residual);
      v.col(j) = A.transpose() * u;
      if (log_likelihood != nullptr) {
        (*log_likelihood)(j) = -0.5 * residual.dot(u) - 0.5 * log_det - 0.5 * m * log_2pi;
      }
    }
    if (sigma2 == 0.0) {
      // x̂₀ = x/α does not involve the score.
      grad.middleCols(begin, end - begin) = v.middleCols(begin, end - begin) / alpha;
    } else {
      const Eigen::Index count = end - begin;
      Batch s(d, count), jv(d, count);
      score_->EvaluateWithJvp(x.middleCols(begin, count), t.segment(begin, count),
                              v.middleCols(begin, count), s, jv);
      grad.middleCols(begin, count) = (v.middleCols(begin, count) + sigma2 * jv) / alpha;
    }
    begin = end;
  }
}

}  // namespace scoresde
