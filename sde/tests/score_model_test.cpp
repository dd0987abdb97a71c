#include "scoresde/sde/score_model.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

TEST(CallbackScore, EvaluatesAndDeclaresCapabilities) {
  const CallbackScore score(2, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; });
  EXPECT_EQ(score.dim(), 2);
  EXPECT_FALSE(score.HasDivergence());
  EXPECT_FALSE(score.HasJvp());
  EXPECT_FALSE(score.ExpectedSquaredNorm(0.5).has_value());
  const Batch x = Batch::Random(2, 3);
  Batch s(2, 3), jv(2, 3);
  RowVector t = RowVector::Zero(3), div(3);
  score.Evaluate(x, t, s);
  EXPECT_EQ(s, -x);
  EXPECT_THROW(score.Divergence(x, t, div), InvalidArgument);
  EXPECT_THROW(score.EvaluateWithJvp(x, t, x, s, jv), InvalidArgument);
}

TEST(CallbackScore, OptionalDivergence) {
  const CallbackScore score(
      2, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; },
      [](ConstBatchRef, ConstRowVectorRef, RowVectorRef div) { div.setConstant(-2.0); });
  EXPECT_TRUE(score.HasDivergence());
  const Batch x = Batch::Random(2, 3);
  RowVector t = RowVector::Zero(3), div(3);
  score.Divergence(x, t, div);
  EXPECT_TRUE((div.array() == -2.0).all());
}

TEST(CallbackScore, RejectsBadConstruction) {
  EXPECT_THROW(CallbackScore(0, [](ConstBatchRef, ConstRowVectorRef, BatchRef) {}),
               InvalidArgument);
  EXPECT_THROW(CallbackScore(2, nullptr), InvalidArgument);
}

}  // namespace
}  // namespace scoresde
