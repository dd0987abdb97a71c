// The batched score interface every solver consumes:  s(x, t) ≈ ∇ₓ log p_t(x).
//
// x is d × B with one time per column, so samples at different times (per-sample adaptive ODE
// steps, training with t ~ U(ε, T)) are evaluated together. Optional capabilities are declared as
// data; callers check them before use. Analytic references (verification/), learned networks
// (scoring/) and user callbacks all implement it, so solvers never depend on how a score is made.
//
// Thread safety: methods are const and may be called concurrently on disjoint batches.
#pragma once

#include <functional>
#include <optional>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

class ScoreModel {
 public:
  virtual ~ScoreModel() = default;

  virtual int dim() const = 0;

  // s(x, t): x and s are d × B, t has B entries.
  virtual void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const = 0;

  // The divergence ∇ₓ·s(x, t) (the trace of the score's Jacobian), one value per column.
  virtual bool HasDivergence() const { return false; }
  // Throws InvalidArgument unless HasDivergence().
  virtual void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const;

  // The score and its Jacobian–vector product (∂s/∂x) v, column by column.
  virtual bool HasJvp() const { return false; }
  // Throws InvalidArgument unless HasJvp().
  virtual void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                               BatchRef jv) const;

  // E_{x ~ p_t} ‖s(x, t)‖² where it is known in closed form (the Langevin corrector's step rule
  // in expectation); nullopt otherwise.
  virtual std::optional<double> ExpectedSquaredNorm(double t) const;
};

// A score given by a function, for users who don't want to subclass.
class CallbackScore : public ScoreModel {
 public:
  using Function = std::function<void(ConstBatchRef x, ConstRowVectorRef t, BatchRef s)>;
  using DivergenceFunction =
      std::function<void(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div)>;

  // dim ≥ 1; score must be callable. divergence is optional.
  CallbackScore(int dim, Function score, DivergenceFunction divergence = nullptr);

  int dim() const override { return dim_; }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override;
  bool HasDivergence() const override { return static_cast<bool>(divergence_); }
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override;

 private:
  int dim_;
  Function score_;
  DivergenceFunction divergence_;
};

}  // namespace scoresde
