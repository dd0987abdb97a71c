#include "scoresde/scoring/optimizer.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

TEST(AdamOptions, DefaultsAreValid) { EXPECT_NO_THROW(AdamOptions{}.Validate()); }

TEST(AdamOptions, RejectsBadFields) {
  auto bad = [](auto mutate, const char* name) {
    AdamOptions o;
    mutate(o);
    try {
      o.Validate();
      ADD_FAILURE() << name;
    } catch (const InvalidArgument& e) {
      EXPECT_THAT(e.what(), HasSubstr(name));
    }
  };
  bad([](AdamOptions& o) { o.learning_rate = 0; }, "learning_rate");
  bad([](AdamOptions& o) { o.beta1 = 1.0; }, "beta1");
  bad([](AdamOptions& o) { o.beta2 = -0.1; }, "beta2");
  bad([](AdamOptions& o) { o.epsilon = 0; }, "epsilon");
  bad([](AdamOptions& o) { o.weight_decay = -1; }, "weight_decay");
  bad([](AdamOptions& o) { o.warmup_steps = -1; }, "warmup_steps");
  bad([](AdamOptions& o) { o.clip_norm = std::nan(""); }, "clip_norm");
  bad([](AdamOptions& o) { o.ema_decay = 1.0; }, "ema_decay");
}

TEST(LearningRate, WarmsUpLinearly) {
  AdamOptions o;
  o.learning_rate = 1.0;
  o.warmup_steps = 4;
  EXPECT_EQ(LearningRateAt(o, 1), 0.25);
  EXPECT_EQ(LearningRateAt(o, 4), 1.0);
  EXPECT_EQ(LearningRateAt(o, 100), 1.0);
  o.warmup_steps = 0;
  EXPECT_EQ(LearningRateAt(o, 1), 1.0);
}

// Two steps against the formulas written out by hand, in double.
TEST(AdamOptimizer, MatchesTheBiasCorrectedUpdate) {
  for (bool decoupled : {true, false}) {
    AdamOptions o;
    o.learning_rate = 0.1;
    o.warmup_steps = 2;
    o.clip_norm = 0.0;
    o.weight_decay = 0.01;
    o.decoupled_weight_decay = decoupled;
    o.ema_decay = 0.5;
    Eigen::VectorXd theta(2), ref(2), m = Eigen::VectorXd::Zero(2), v = m;
    theta << 1.0, -2.0;
    ref = theta;
    Eigen::VectorXd ema = theta;
    AdamOptimizer<double> adam(theta, o);
    for (int k = 1; k <= 2; ++k) {
      Eigen::VectorXd g(2);
      g << 0.3 * k, -0.7;
      Eigen::VectorXd grad = g;
      adam.Step(theta, grad);
      const double lr = 0.1 * std::min(1.0, k / 2.0);
      if (!decoupled) g += 0.01 * ref;
      if (decoupled) ref *= 1.0 - lr * 0.01;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g.cwiseProduct(g);
      const double c1 = 1 - std::pow(0.9, k), c2 = 1 - std::pow(0.999, k);
      ref -= (lr / c1) *
             m.cwiseQuotient((v.cwiseSqrt() / std::sqrt(c2)).array().matrix() +
                             Eigen::VectorXd::Constant(2, 1e-8));
      const double decay = std::min(0.5, (1.0 + k) / (10.0 + k));
      ema -= (1 - decay) * (ema - ref);
      EXPECT_LT((theta - ref).norm(), 1e-14);
      EXPECT_LT((adam.average() - ema).norm(), 1e-14);
    }
    EXPECT_EQ(adam.step(), 2);
  }
}

TEST(AdamOptimizer, ClipsTheGlobalNorm) {
  AdamOptions o;
  o.clip_norm = 1.0;
  Eigen::VectorXf theta = Eigen::VectorXf::Zero(2);
  AdamOptimizer<float> adam(theta, o);
  Eigen::VectorXf g(2);
  g << 3.0f, 4.0f;
  EXPECT_NEAR(adam.Step(theta, g), 5.0, 1e-6);
  EXPECT_NEAR(g.norm(), 1.0 / (1.0 + 0.2e-6), 1e-6);
}

TEST(AdamOptimizer, StopsOnNonFiniteGradients) {
  Eigen::VectorXf theta = Eigen::VectorXf::Zero(3);
  AdamOptimizer<float> adam(theta, AdamOptions{});
  Eigen::VectorXf g = Eigen::VectorXf::Zero(3);
  g(1) = INFINITY;
  EXPECT_THROW(adam.Step(theta, g), NumericalFailure);
  Eigen::VectorXf short_grad = Eigen::VectorXf::Zero(2);
  EXPECT_THROW(adam.Step(theta, short_grad), InvalidArgument);
}

}  // namespace
}  // namespace scoresde
