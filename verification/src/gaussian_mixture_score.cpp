#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Eigenvalues>

#include "mixture_kernel.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {

GaussianMixtureScore::GaussianMixtureScore(GaussianMixture p0, const ScalarAffineSde& sde)
    : p0_(std::move(p0)), scalar_sde_(&sde) {
  constexpr const char* where = "GaussianMixtureScore";
  Require(p0_.dim() == sde.dim(), where, "p0.dim()", p0_.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
  const int num = p0_.num_components();
  eigenvectors_.resize(num);
  eigenvalues_.resize(num);
  log_weights_.resize(num);
  for (int k = 0; k < num; ++k) {
    Eigen::SelfAdjointEigenSolver<Matrix> eig(p0_.cov(k));
    // The Cholesky factorization succeeded, so only a covariance with condition number near
    // 1/ε can show a non-positive computed eigenvalue; α²λ + σ_t² would then vanish at t = 0.
    Require(eig.info() == Eigen::Success && eig.eigenvalues().minCoeff() > 0.0, where,
            "smallest eigenvalue of covs[" + std::to_string(k) + "]", eig.eigenvalues().minCoeff(),
            "> 0 (positive definite to working precision)");
    eigenvectors_[k] = eig.eigenvectors();
    eigenvalues_[k] = eig.eigenvalues();
    log_weights_(k) = internal::LogWeight(p0_.weight(k));
  }
}

GaussianMixtureScore::GaussianMixtureScore(GaussianMixture p0, const LinearSde& sde)
    : p0_(std::move(p0)), linear_sde_(&sde) {
  Require(p0_.dim() == sde.dim(), "GaussianMixtureScore", "p0.dim()", p0_.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
}

void GaussianMixtureScore::CheckTime(double t) const {
  const double t_final = scalar_sde_ != nullptr ? scalar_sde_->t_final() : linear_sde_->t_final();
  RequireFinite("GaussianMixtureScore", "t", t);
  Require(t >= 0.0 && t <= t_final, "GaussianMixtureScore", "t", t,
          "in [0, T] with T = " + FormatValue(t_final));
}

void GaussianMixtureScore::CheckInputs(const char* where, ConstBatchRef x,
                                       ConstRowVectorRef t) const {
  CheckShape(where, "x", x, dim(), -1);
  CheckShape(where, "t", t, 1, x.cols());
  for (Eigen::Index j = 0; j < t.cols(); ++j) {
    const double tj = t(j);
    const double t_final = scalar_sde_ != nullptr ? scalar_sde_->t_final() : linear_sde_->t_final();
    if (!(std::isfinite(tj) && tj >= 0.0 && tj <= t_final)) {
      Require(false, where, "t[" + std::to_string(j) + "]", tj,
              "finite and in [0, T] with T = " + FormatValue(t_final));
    }
  }
}

GaussianTransition GaussianMixtureScore::Transition(double t) const {
  CheckTime(t);
  return scalar_sde_ != nullptr ? TransitionOf(*scalar_sde_, t) : TransitionOf(*linear_sde_, t);
}

GaussianMixture GaussianMixtureScore::Marginal(double t) const {
  const GaussianTransition kernel = Transition(t);
  return p0_.Transformed(kernel.A, kernel.b, kernel.Q);
}

void GaussianMixtureScore::Compute(ConstBatchRef x, ConstRowVectorRef t, const ConstBatchRef* v,
                                   RowVectorRef* logp, BatchRef* s, RowVectorRef* div,
                                   BatchRef* jv) const {
  if (scalar_sde_ == nullptr) {
    ComputeLinear(x, t, v, logp, s, div, jv);
    return;
  }
  using internal::kLanes;
  using internal::Lanes;
  const int num = p0_.num_components();
  std::vector<internal::EigenComponent> components(num);
  for (int k = 0; k < num; ++k) {
    components[k].mean0 = &p0_.mean(k);
    components[k].eigenvectors = &eigenvectors_[k];
    components[k].eigenvalues = &eigenvalues_[k];
    components[k].log_weight = log_weights_(k);
  }
  internal::MixtureEvaluator<internal::EigenComponent> evaluator(dim(), p0_.weights(),
                                                                 {v, logp, s, div, jv});
  // p_t = Σ_k w_k N(α μ_k, U_k (α²Λ_k + σ_t²) U_kᵀ), set up again only when a block's times
  // differ from the previous block's (never, when the whole batch shares one time).
  Lanes times = Lanes::Constant(std::numeric_limits<double>::quiet_NaN());
  for (Eigen::Index first = 0; first < x.cols(); first += kLanes) {
    const auto count = static_cast<int>(std::min<Eigen::Index>(kLanes, x.cols() - first));
    Lanes block_times;
    for (int c = 0; c < kLanes; ++c) block_times(c) = t(first + std::min(c, count - 1));
    if (!(block_times == times).all()) {
      times = block_times;
      Lanes alpha;
      Lanes sigma;
      for (int c = 0; c < kLanes; ++c) {
        alpha(c) = scalar_sde_->MeanCoefficient(times(c));
        sigma(c) = scalar_sde_->MarginalStd(times(c));
      }
      for (internal::EigenComponent& component : components) component.SetScales(alpha, sigma);
    }
    evaluator.Evaluate(components, x, first, count);
  }
}

void GaussianMixtureScore::ComputeLinear(ConstBatchRef x, ConstRowVectorRef t,
                                         const ConstBatchRef* v, RowVectorRef* logp, BatchRef* s,
                                         RowVectorRef* div, BatchRef* jv) const {
  const Eigen::Index total = x.cols();
  Eigen::Index first = 0;
  while (first < total) {
    // The run of consecutive columns sharing t(first): one marginal for all of them.
    Eigen::Index last = first + 1;
    while (last < total && t(last) == t(first)) ++last;
    const Eigen::Index n = last - first;
    const GaussianMixture marginal = Marginal(t(first));
    const ConstBatchRef xs = x.middleCols(first, n);
    if (logp != nullptr) {
      RowVectorRef logp_s = logp->segment(first, n);
      marginal.LogDensity(xs, logp_s);
    }
    if (div != nullptr) {
      RowVectorRef div_s = div->segment(first, n);
      marginal.ScoreDivergence(xs, div_s);
    }
    if (jv != nullptr) {
      BatchRef s_s = s->middleCols(first, n);
      BatchRef jv_s = jv->middleCols(first, n);
      marginal.ScoreAndJvp(xs, v->middleCols(first, n), s_s, jv_s);
    } else if (s != nullptr) {
      BatchRef s_s = s->middleCols(first, n);
      marginal.Score(xs, s_s);
    }
    first = last;
  }
}

void GaussianMixtureScore::LogDensity(ConstBatchRef x, ConstRowVectorRef t,
                                      RowVectorRef logp) const {
  CheckInputs("GaussianMixtureScore::LogDensity", x, t);
  CheckShape("GaussianMixtureScore::LogDensity", "logp", logp, 1, x.cols());
  Compute(x, t, nullptr, &logp, nullptr, nullptr, nullptr);
}

void GaussianMixtureScore::Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const {
  CheckInputs("GaussianMixtureScore::Evaluate", x, t);
  CheckShape("GaussianMixtureScore::Evaluate", "s", s, dim(), x.cols());
  Compute(x, t, nullptr, nullptr, &s, nullptr, nullptr);
}

void GaussianMixtureScore::Divergence(ConstBatchRef x, ConstRowVectorRef t,
                                      RowVectorRef div) const {
  CheckInputs("GaussianMixtureScore::Divergence", x, t);
  CheckShape("GaussianMixtureScore::Divergence", "div", div, 1, x.cols());
  Compute(x, t, nullptr, nullptr, nullptr, &div, nullptr);
}

void GaussianMixtureScore::EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v,
                                           BatchRef s, BatchRef jv) const {
  constexpr const char* where = "GaussianMixtureScore::EvaluateWithJvp";
  CheckInputs(where, x, t);
  CheckShape(where, "v", v, dim(), x.cols());
  CheckShape(where, "s", s, dim(), x.cols());
  CheckShape(where, "jv", jv, dim(), x.cols());
  Compute(x, t, &v, nullptr, &s, nullptr, &jv);
}

std::optional<double> GaussianMixtureScore::ExpectedSquaredNorm(double t) const {
  CheckTime(t);
  if (p0_.num_components() != 1) return std::nullopt;
  if (scalar_sde_ != nullptr) {
    const double alpha = scalar_sde_->MeanCoefficient(t);
    const double sigma = scalar_sde_->MarginalStd(t);
    return ((alpha * alpha) * eigenvalues_[0].array() + sigma * sigma).inverse().sum();
  }
  return Marginal(t).trace_precision(0);
}

void GaussianMixtureScore::SampleMarginal(double t, const NoiseStream& noise, int64_t first_sample,
                                          BatchRef x) const {
  CheckShape("GaussianMixtureScore::SampleMarginal", "x", x, dim(), -1);
  Marginal(t).Sample(noise, first_sample, x);
}

}  // namespace scoresde
