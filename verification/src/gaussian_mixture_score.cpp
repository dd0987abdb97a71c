#include <cmath>
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
  for (int k = 0; k < num; ++k) {
    Eigen::SelfAdjointEigenSolver<Matrix> eig(p0_.cov(k));
    // The Cholesky factorization succeeded, so only a covariance with condition number near
    // 1/ε can show a non-positive computed eigenvalue; α²λ + σ_t² would then vanish at t = 0.
    Require(eig.info() == Eigen::Success && eig.eigenvalues().minCoeff() > 0.0, where,
            "smallest eigenvalue of covs[" + std::to_string(k) + "]", eig.eigenvalues().minCoeff(),
            "> 0 (positive definite to working precision)");
    eigenvectors_[k] = eig.eigenvectors();
    eigenvalues_[k] = eig.eigenvalues();
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
  const Eigen::Index total = x.cols();
  const int num = p0_.num_components();
  const int d = dim();
  std::vector<internal::EigenComponent> components(scalar_sde_ != nullptr ? num : 0);
  Eigen::Index first = 0;
  while (first < total) {
    // The run of consecutive columns sharing t(first): one marginal for all of them.
    Eigen::Index last = first + 1;
    while (last < total && t(last) == t(first)) ++last;
    const Eigen::Index n = last - first;
    const double time = t(first);
    const ConstBatchRef xs = x.middleCols(first, n);
    std::optional<ConstBatchRef> vs;
    if (v != nullptr) vs.emplace(v->middleCols(first, n));
    std::optional<RowVectorRef> logp_s;
    std::optional<BatchRef> s_s;
    std::optional<RowVectorRef> div_s;
    std::optional<BatchRef> jv_s;
    if (logp != nullptr) logp_s.emplace(logp->segment(first, n));
    if (s != nullptr) s_s.emplace(s->middleCols(first, n));
    if (div != nullptr) div_s.emplace(div->segment(first, n));
    if (jv != nullptr) jv_s.emplace(jv->middleCols(first, n));

    if (scalar_sde_ != nullptr) {
      // p_t = Σ_k w_k N(α μ_k, U_k (α²Λ_k + σ_t²) U_kᵀ).
      const double alpha = scalar_sde_->MeanCoefficient(time);
      const double sigma = scalar_sde_->MarginalStd(time);
      for (int k = 0; k < num; ++k) {
        const Vector var = (alpha * alpha) * eigenvalues_[k].array() + sigma * sigma;
        internal::EigenComponent& c = components[k];
        c.mean = alpha * p0_.mean(k);
        c.eigenvectors = &eigenvectors_[k];
        c.inv_var = var.cwiseInverse();
        c.log_normalizer = internal::LogNormalizer(p0_.weight(k), var.array().log().sum(), d);
        c.trace_precision = c.inv_var.sum();
      }
      internal::EvaluateMixture(components, p0_.weights(), xs, vs ? &*vs : nullptr,
                                logp_s ? &*logp_s : nullptr, s_s ? &*s_s : nullptr,
                                div_s ? &*div_s : nullptr, jv_s ? &*jv_s : nullptr);
    } else {
      const GaussianMixture marginal = Marginal(time);
      if (logp_s) marginal.LogDensity(xs, *logp_s);
      if (div_s) marginal.ScoreDivergence(xs, *div_s);
      if (jv_s) {
        marginal.ScoreAndJvp(xs, *vs, *s_s, *jv_s);
      } else if (s_s) {
        marginal.Score(xs, *s_s);
      }
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
