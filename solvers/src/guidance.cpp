#include "scoresde/solvers/guidance.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "scoresde/sde/check.hpp"

namespace scoresde {

void Guidance::EvaluateWithLogLikelihood(ConstBatchRef, ConstRowVectorRef, ConstBatchRef,
                                         BatchRef, RowVectorRef) const {
  throw InvalidArgument(
      "Guidance::EvaluateWithLogLikelihood: this guidance has no log-likelihood "
      "(HasLogLikelihood() is false)");
}

CallbackGuidance::CallbackGuidance(int dim, Function gradient,
                                   LogLikelihoodFunction log_likelihood)
    : dim_(dim), gradient_(std::move(gradient)), log_likelihood_(std::move(log_likelihood)) {
  Require(dim >= 1, "CallbackGuidance", "dim", dim, ">= 1");
  Require(static_cast<bool>(gradient_), "CallbackGuidance", "gradient",
          std::string_view("empty"), "a callable function");
}

void CallbackGuidance::Evaluate(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef,
                                BatchRef grad) const {
  CheckShape("CallbackGuidance::Evaluate", "grad", grad, dim_, x.cols());
  gradient_(x, t, grad);
}

void CallbackGuidance::EvaluateWithLogLikelihood(ConstBatchRef x, ConstRowVectorRef t,
                                                 ConstBatchRef score, BatchRef grad,
                                                 RowVectorRef log_likelihood) const {
  if (!log_likelihood_) Guidance::EvaluateWithLogLikelihood(x, t, score, grad, log_likelihood);
  CheckShape("CallbackGuidance::EvaluateWithLogLikelihood", "grad", grad, dim_, x.cols());
  CheckShape("CallbackGuidance::EvaluateWithLogLikelihood", "log_likelihood", log_likelihood, 1,
             x.cols());
  log_likelihood_(x, t, grad, log_likelihood);
}

GuidedScore::GuidedScore(const ScoreModel& base, const Guidance& guidance, double scale)
    : base_(&base), guidance_(&guidance), scale_(scale) {
  Require(guidance.dim() == base.dim(), "GuidedScore", "guidance dim", guidance.dim(),
          "equal to the score's dim (" + std::to_string(base.dim()) + ")");
  RequireFinite("GuidedScore", "scale", scale);
}

int GuidedScore::evaluations_per_call() const {
  return 1 + (scale_ != 0.0 ? guidance_->score_evaluations() : 0);
}

void GuidedScore::Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const {
  constexpr const char* kWhere = "GuidedScore::Evaluate";
  CheckShape(kWhere, "x", x, dim(), -1);
  CheckShape(kWhere, "t", t, 1, x.cols());
  CheckShape(kWhere, "s", s, dim(), x.cols());
  base_->Evaluate(x, t, s);
  // γ = 0: nothing else is computed, so samplers reduce to the unconditional ones bit for bit.
  if (scale_ == 0.0) return;
  Batch grad(x.rows(), x.cols());
  guidance_->Evaluate(x, t, s, grad);
  s += scale_ * grad;
}

bool GuidedScore::HasDivergence() const { return scale_ == 0.0 && base_->HasDivergence(); }

void GuidedScore::Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const {
  if (scale_ != 0.0) {
    throw InvalidArgument("GuidedScore::Divergence: a guided score (scale = " +
                          FormatValue(scale_) + ") has no divergence");
  }
  base_->Divergence(x, t, div);
}

bool GuidedScore::HasJvp() const { return scale_ == 0.0 && base_->HasJvp(); }

void GuidedScore::EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v,
                                  BatchRef s, BatchRef jv) const {
  if (scale_ != 0.0) {
    throw InvalidArgument("GuidedScore::EvaluateWithJvp: a guided score (scale = " +
                          FormatValue(scale_) + ") has no Jacobian-vector product");
  }
  base_->EvaluateWithJvp(x, t, v, s, jv);
}

std::optional<double> GuidedScore::ExpectedSquaredNorm(double t) const {
  if (scale_ != 0.0) return std::nullopt;
  return base_->ExpectedSquaredNorm(t);
}

}  // namespace scoresde
