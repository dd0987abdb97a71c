#include "scoresde/sde/score_model.hpp"

#include <utility>

#include "scoresde/sde/check.hpp"

namespace scoresde {

void ScoreModel::Divergence(ConstBatchRef, ConstRowVectorRef, RowVectorRef) const {
  throw InvalidArgument("ScoreModel::Divergence: this score model has no divergence; use a "
                        "Hutchinson estimate or a model with HasDivergence()");
}

void ScoreModel::EvaluateWithJvp(ConstBatchRef, ConstRowVectorRef, ConstBatchRef, BatchRef,
                                 BatchRef) const {
  throw InvalidArgument("ScoreModel::EvaluateWithJvp: this score model has no Jacobian-vector "
                        "product (HasJvp() is false)");
}

std::optional<double> ScoreModel::ExpectedSquaredNorm(double) const { return std::nullopt; }

CallbackScore::CallbackScore(int dim, Function score, DivergenceFunction divergence)
    : dim_(dim), score_(std::move(score)), divergence_(std::move(divergence)) {
  Require(dim >= 1, "CallbackScore", "dim", dim, ">= 1");
  Require(static_cast<bool>(score_), "CallbackScore", "score", std::string_view("empty"),
          "a callable function");
}

void CallbackScore::Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const {
  score_(x, t, s);
}

void CallbackScore::Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const {
  if (!divergence_) ScoreModel::Divergence(x, t, div);
  divergence_(x, t, div);
}

}  // namespace scoresde
