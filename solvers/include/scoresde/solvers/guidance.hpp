// Guidance: conditional scores from an unconditional score and the gradient of a log-likelihood
// (Song et al., ICLR 2021, section 5 and appendix I, eq. 48; Dhariwal & Nichol, NeurIPS 2021,
// classifier guidance):
//
//   ∇ₓ log p_t(x | y) = ∇ₓ log p_t(x) + ∇ₓ log p_t(y | x),
//   s_γ(x, t)         = s(x, t) + γ g(x, t),     g ≈ ∇ₓ log p_t(y | x),   scale γ.
//
// GuidedScore is itself a ScoreModel, so every predictor, corrector, the probability-flow ODE and
// any sampler built on ScoreModel take a guided score unchanged. With γ = 1 and the exact g it is
// the exact conditional score; γ ≠ 1 samples the tempered law ∝ p_t(x) p_t(y | x)^γ only in the
// limit of no noise (it is not the diffusion of any fixed law: the usual "guidance scale"). With
// γ = 0 the guidance is skipped entirely: GuidedScore evaluates the base score alone and reports the
// base score's capabilities, so every sampler reproduces the unconditional one bit for bit.
//
// A Guidance receives the base score s(x, t) at the same points, already evaluated, because some
// guidance terms are built from it (reconstruction guidance uses Tweedie's x̂₀ = (x + σ_t² s)/α);
// guidance that needs more score evaluations says how many (score_evaluations), so that callers can
// report the true cost. A guidance may also provide the value log p̃_t(y | x) (up to a constant in
// x), which the sequential Monte Carlo sampler (smc_sampler.hpp) needs for its weights.
//
// Shapes: x, score and grad are d × B (one sample per column), t has one time per column.
// Thread safety: const methods may be called concurrently on disjoint batches.
#pragma once

#include <functional>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/score_model.hpp"

namespace scoresde {

class Guidance {
 public:
  virtual ~Guidance() = default;

  virtual int dim() const = 0;
  // Evaluations of the base score model (counting a Jacobian–vector product as one) that one
  // Evaluate call makes in addition to the score handed to it; 0 for analytic or classifier
  // guidance.
  virtual int score_evaluations() const { return 0; }

  // grad(:, j) = ∇ₓ log p̃_{t(j)}(y | x(:, j)), with score(:, j) = s(x(:, j), t(j)) of the base
  // model. Implementations throw InvalidArgument on shape mismatches.
  virtual void Evaluate(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                        BatchRef grad) const = 0;

  // Whether EvaluateWithLogLikelihood is available.
  virtual bool HasLogLikelihood() const { return false; }
  // grad as Evaluate, and log_likelihood(j) = log p̃_{t(j)}(y | x(:, j)) (B entries). The default
  // throws InvalidArgument.
  virtual void EvaluateWithLogLikelihood(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                                         BatchRef grad, RowVectorRef log_likelihood) const;
};

// Guidance given by functions, e.g. a trained classifier's ∇ₓ log softmax_y or an analytic
// ∇ₓ log p_t(y | x). The functions must make column j of their output depend only on column j of
// x and on t(j) (that is what keeps samples independent) and may be called concurrently.
class CallbackGuidance final : public Guidance {
 public:
  using Function = std::function<void(ConstBatchRef x, ConstRowVectorRef t, BatchRef grad)>;
  using LogLikelihoodFunction = std::function<void(ConstBatchRef x, ConstRowVectorRef t,
                                                   BatchRef grad, RowVectorRef log_likelihood)>;

  // dim ≥ 1 and gradient callable; log_likelihood is optional. Throws InvalidArgument.
  CallbackGuidance(int dim, Function gradient, LogLikelihoodFunction log_likelihood = nullptr);

  int dim() const override { return dim_; }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                BatchRef grad) const override;
  bool HasLogLikelihood() const override { return static_cast<bool>(log_likelihood_); }
  void EvaluateWithLogLikelihood(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef score,
                                 BatchRef grad, RowVectorRef log_likelihood) const override;

 private:
  int dim_;
  Function gradient_;
  LogLikelihoodFunction log_likelihood_;
};

// s_γ = s + γ g. The base score and the guidance are held by reference and must outlive this
// object.
class GuidedScore final : public ScoreModel {
 public:
  // Throws InvalidArgument unless guidance.dim() == base.dim() and scale is finite.
  GuidedScore(const ScoreModel& base, const Guidance& guidance, double scale);

  int dim() const override { return base_->dim(); }
  double scale() const { return scale_; }
  const ScoreModel& base() const { return *base_; }
  const Guidance& guidance() const { return *guidance_; }
  // Base-model evaluations per Evaluate call: 1, plus guidance.score_evaluations() when γ ≠ 0.
  int evaluations_per_call() const;

  // s = s_base + γ g (γ = 0: s_base, and the guidance is not called). x, s: d × B; t: B entries.
  // Throws InvalidArgument on shape mismatches; the guidance's and the base's exceptions pass
  // through.
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override;

  // With γ = 0 these forward to the base model; with γ ≠ 0 the guided score has no closed-form
  // divergence, Jacobian–vector product or E‖s‖² (nullopt), so the Langevin corrector's step rule
  // falls back to its pilot estimate.
  bool HasDivergence() const override;
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override;
  bool HasJvp() const override;
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override;
  std::optional<double> ExpectedSquaredNorm(double t) const override;

 private:
  const ScoreModel* base_;
  const Guidance* guidance_;
  double scale_;
};

}  // namespace scoresde
