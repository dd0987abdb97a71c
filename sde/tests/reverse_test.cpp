#include "scoresde/sde/reverse.hpp"

#include <gtest/gtest.h>

#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

// s(x, t) = −x (1 + t), a stand-in score; the drift formulas do not care what it is.
CallbackScore LinearScore(int d) {
  return CallbackScore(d, [](ConstBatchRef x, ConstRowVectorRef t, BatchRef s) {
    s = -(x.array().rowwise() * (1.0 + t.array())).matrix();
  });
}

TEST(ReverseDrift, ScalarNoiseReducesToFMinusLambdaGSquaredS) {
  const VpSde sde(3);
  const auto score = LinearScore(3);
  const Batch x = Batch::Random(3, 5);
  Batch out(3, 5);
  DriftScratch scratch;
  const double t = 0.4;
  const double g2 = sde.Beta(t);
  const Batch s = -x * (1.0 + t);
  const Batch f = sde.DriftCoefficient(t) * x;
  ReverseDrift(sde, score, DriftKind::kReverseSde, x, t, out, &scratch);
  EXPECT_TRUE(out.isApprox(f - g2 * s));
  ReverseDrift(sde, score, DriftKind::kProbabilityFlow, x, t, out, &scratch);
  EXPECT_TRUE(out.isApprox(f - 0.5 * g2 * s));
}

TEST(ReverseDrift, StateDependentNoiseIncludesTheDivergenceTerm) {
  const GbmSde sde(2, 0.1, 0.3);
  const auto score = LinearScore(2);
  const Batch x = Batch::Random(2, 4).array() + 2.0;
  const double t = 0.2;
  const Batch s = -x * (1.0 + t);
  const Batch ggt_s = (0.09 * x.array().square() * s.array()).matrix();
  const Batch div = 2.0 * 0.09 * x;
  const Batch f = 0.1 * x;
  Batch out(2, 4);
  DriftScratch scratch;
  ReverseDrift(sde, score, DriftKind::kReverseSde, x, t, out, &scratch);
  EXPECT_TRUE(out.isApprox(f - div - ggt_s));
  ReverseDrift(sde, score, DriftKind::kProbabilityFlow, x, t, out, &scratch);
  EXPECT_TRUE(out.isApprox(f - 0.5 * (div + ggt_s)));
  ReverseDrift(sde, score, DriftKind::kReverseSde, x, t, out, &scratch, DivergenceTerm::kOmit);
  EXPECT_TRUE(out.isApprox(f - ggt_s));
}

}  // namespace
}  // namespace scoresde
