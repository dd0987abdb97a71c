#include "scoresde/scoring/mlp_score.hpp"

#include <cstring>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/context.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

MlpConfig SmallConfig(int d, Parameterization p, bool residual = true) {
  MlpConfig c;
  c.dim = d;
  c.width = 12;
  c.depth = 3;
  c.embed_dim = 6;
  c.residual = residual;
  c.parameterization = p;
  c.data_std = 0.7;
  return c;
}

Batch Normals(int rows, int cols, uint64_t seed) {
  Batch x(rows, cols);
  NoiseStream(seed, Stream::kUser).FillNormal(0, 0, 0, x);
  return x;
}

TEST(MlpConfig, DefaultsAreValid) { EXPECT_NO_THROW(MlpConfig{}.Validate()); }

TEST(MlpConfig, RejectsBadFields) {
  auto expect_bad = [](auto mutate, const char* name) {
    MlpConfig c;
    mutate(c);
    try {
      c.Validate();
      ADD_FAILURE() << name;
    } catch (const InvalidArgument& e) {
      EXPECT_THAT(e.what(), HasSubstr(name));
    }
  };
  expect_bad([](MlpConfig& c) { c.dim = 0; }, "dim");
  expect_bad([](MlpConfig& c) { c.width = -1; }, "width");
  expect_bad([](MlpConfig& c) { c.depth = 0; }, "depth");
  expect_bad([](MlpConfig& c) { c.embed_dim = 3; }, "embed_dim");
  expect_bad([](MlpConfig& c) { c.fourier_scale = std::nan(""); }, "fourier_scale");
  expect_bad([](MlpConfig& c) { c.data_std = 0.0; }, "data_std");
  EXPECT_THROW(ParseParameterization("eps"), InvalidArgument);
  EXPECT_EQ(ParseParameterization(ToString(Parameterization::kDenoiser)),
            Parameterization::kDenoiser);
}

TEST(MlpNetwork, LayoutFollowsPyTorchLinearConvention) {
  const MlpNetwork<float> net(SmallConfig(3, Parameterization::kNoise), 1);
  const auto& layout = net.layout();
  ASSERT_EQ(layout.size(), 8u);
  EXPECT_EQ(layout[0].name, "input.weight");
  EXPECT_EQ(layout[0].shape, (std::vector<int64_t>{12, 9}));
  EXPECT_EQ(layout[1].name, "input.bias");
  EXPECT_EQ(layout[2].name, "hidden.1.weight");
  EXPECT_EQ(layout[6].name, "output.weight");
  EXPECT_EQ(layout[6].shape, (std::vector<int64_t>{3, 12}));
  EXPECT_EQ(net.num_parameters(), 12 * 9 + 12 + 2 * (144 + 12) + 3 * 12 + 3);
  EXPECT_EQ(net.fourier_weights().size(), 3);
  // Initialization bounds: |w| ≤ 1/sqrt(fan_in).
  EXPECT_LE(net.parameters().segment(0, 108).cwiseAbs().maxCoeff(), 1.0f / 3.0f);
}

TEST(MlpNetwork, InitializationIsAFunctionOfTheSeed) {
  const MlpConfig c = SmallConfig(2, Parameterization::kNoise);
  const MlpNetwork<float> a(c, 7), b(c, 7), other(c, 8);
  const MlpNetwork<double> wide(c, 7);
  EXPECT_EQ(a.parameters(), b.parameters());
  EXPECT_NE(a.parameters(), other.parameters());
  EXPECT_EQ(a.parameters(), wide.parameters().cast<float>());
}

TEST(MlpNetwork, RejectsWrongParameterCounts) {
  const MlpConfig c = SmallConfig(2, Parameterization::kNoise);
  EXPECT_THROW(MlpNetwork<float>(c, Eigen::VectorXf::Zero(3), Eigen::VectorXf::Zero(3)),
               InvalidArgument);
  const MlpNetwork<float> ok(c, 1);
  Eigen::VectorXf bad = ok.parameters();
  bad(4) = std::nanf("");
  EXPECT_THROW(MlpNetwork<float>(c, bad, ok.fourier_weights()), InvalidArgument);
}

// Forward pass written independently, one sample at a time, in double.
Eigen::VectorXd ReferenceForward(const MlpNetwork<double>& net, const Eigen::VectorXd& u,
                                 double tau) {
  const MlpConfig& c = net.config();
  const auto& p = net.parameters();
  Eigen::VectorXd a(c.input_dim());
  const int half = c.embed_dim / 2;
  a.head(c.dim) = u;
  for (int k = 0; k < half; ++k) {
    a(c.dim + k) = std::sin(2 * M_PI * net.fourier_weights()(k) * tau);
    a(c.dim + half + k) = std::cos(2 * M_PI * net.fourier_weights()(k) * tau);
  }
  for (size_t k = 0; k + 1 < net.layout().size(); k += 2) {
    const auto& w = net.layout()[k];
    const auto& b = net.layout()[k + 1];
    const int out = w.shape[0], in = w.shape[1];
    Eigen::VectorXd z(out);
    for (int i = 0; i < out; ++i) {
      z(i) = p(b.offset + i);
      for (int j = 0; j < in; ++j) z(i) += p(w.offset + i * in + j) * a(j);
    }
    const bool last = k + 2 == net.layout().size();
    if (last) return z;
    Eigen::VectorXd act = z.array() / (1.0 + (-z.array()).exp());
    if (c.residual && k >= 2) act += a;
    a = act;
  }
  return a;
}

TEST(MlpNetwork, ForwardMatchesReferenceLoop) {
  for (bool residual : {true, false}) {
    const MlpNetwork<double> net(SmallConfig(3, Parameterization::kScore, residual), 3);
    const Batch u = Normals(3, 5, 11);
    Eigen::RowVectorXd tau = Eigen::RowVectorXd::LinSpaced(5, 0.0, 1.0);
    MlpNetwork<double>::Workspace ws;
    net.Forward(u, tau, &ws);
    for (int j = 0; j < 5; ++j) {
      const Eigen::VectorXd ref = ReferenceForward(net, u.col(j), tau(j));
      // Same operations in a different order: ~1e-15 relative.
      EXPECT_LT((ws.output.col(j) - ref).norm(), 1e-12 * (1.0 + ref.norm()));
    }
  }
}

// A scalar objective J(θ) = Σ gᵀF + ġᵀḞ and its parameter gradient. The finite-difference check
// of every parameter lives in verification/suites/training_suite.cpp with derived tolerances;
// here a quick sanity check on a handful of entries in double with h = 1e-6: the central
// difference's error h²/6·|J'''| + ε|J|/h ≲ 1e-9 for these O(1) quantities, and 1e-6 leaves room.
TEST(MlpNetwork, BackwardWithTangentMatchesCentralDifferences) {
  const MlpConfig c = SmallConfig(2, Parameterization::kScore);
  MlpNetwork<double> net(c, 5);
  const Batch u = Normals(2, 4, 1), u_dot = Normals(2, 4, 2), g = Normals(2, 4, 3),
              g_dot = Normals(2, 4, 4);
  const Eigen::RowVectorXd tau = Eigen::RowVectorXd::LinSpaced(4, 0.1, 0.9);
  auto objective = [&](const MlpNetwork<double>& n) {
    MlpNetwork<double>::Workspace ws;
    n.Forward(u, tau, &ws);
    n.Tangent(u_dot, &ws);
    return (g.array() * ws.output.array()).sum() + (g_dot.array() * ws.output_dot.array()).sum();
  };
  MlpNetwork<double>::Workspace ws;
  net.Forward(u, tau, &ws);
  net.Tangent(u_dot, &ws);
  Eigen::VectorXd grad = Eigen::VectorXd::Zero(net.num_parameters());
  net.BackwardWithTangent(g, g_dot, &ws, grad.data());
  Eigen::VectorXd grad_primal = Eigen::VectorXd::Zero(net.num_parameters());
  MlpNetwork<double>::Workspace ws2;
  net.Forward(u, tau, &ws2);
  net.Backward(g, &ws2, grad_primal.data());
  auto primal = [&](const MlpNetwork<double>& n) {
    MlpNetwork<double>::Workspace w;
    n.Forward(u, tau, &w);
    return (g.array() * w.output.array()).sum();
  };
  for (int64_t k = 0; k < net.num_parameters(); k += 7) {
    const double h = 1e-6;
    MlpNetwork<double> plus = net, minus = net;
    plus.mutable_parameters()(k) += h;
    minus.mutable_parameters()(k) -= h;
    EXPECT_NEAR(grad(k), (objective(plus) - objective(minus)) / (2 * h), 1e-6) << k;
    EXPECT_NEAR(grad_primal(k), (primal(plus) - primal(minus)) / (2 * h), 1e-6) << k;
  }
}

TEST(MlpScore, EvaluateIsIndependentOfBatchCompositionBitForBit) {
  auto sde = std::make_shared<VpSde>(3);
  for (Parameterization p :
       {Parameterization::kScore, Parameterization::kNoise, Parameterization::kDenoiser}) {
    MlpConfig c = SmallConfig(3, p);
    c.width = 40;
    const MlpScore score(std::make_shared<MlpNetwork<float>>(c, 9), sde);
    const Batch x = Normals(3, 150, 21);
    const Eigen::RowVectorXd t = Eigen::RowVectorXd::LinSpaced(150, 0.01, 1.0);
    Batch s(3, 150);
    score.Evaluate(x, t, s);
    for (int j : {0, 1, 63, 64, 100, 149}) {
      Batch one(3, 1);
      score.Evaluate(x.col(j), t.segment(j, 1), one);
      EXPECT_EQ(std::memcmp(one.data(), s.col(j).data(), 3 * sizeof(double)), 0) << j;
    }
    Batch part(3, 37);
    score.Evaluate(x.middleCols(50, 37), t.segment(50, 37), part);
    EXPECT_EQ(part, s.middleCols(50, 37));
  }
}

// Concurrent calls on disjoint column ranges (as the samplers make them) give the serial result.
TEST(MlpScore, ConcurrentEvaluationMatchesSerial) {
  auto sde = std::make_shared<VpSde>(2);
  const MlpScore score(
      std::make_shared<MlpNetwork<float>>(SmallConfig(2, Parameterization::kNoise), 3), sde);
  const Batch x = Normals(2, 500, 5);
  const Eigen::RowVectorXd t = Eigen::RowVectorXd::LinSpaced(500, 0.01, 1.0);
  Batch serial(2, 500), parallel(2, 500);
  score.Evaluate(x, t, serial);
  const ExecutionContext context(7);
  context.ParallelFor(0, 500, 23, [&](int64_t begin, int64_t end) {
    Batch part(2, end - begin);
    score.Evaluate(x.middleCols(begin, end - begin), t.segment(begin, end - begin), part);
    parallel.middleCols(begin, end - begin) = part;
  });
  EXPECT_EQ(serial, parallel);
}

TEST(MlpScore, FloatAndDoubleAgreeToFloatRounding) {
  auto sde = std::make_shared<VeSde>(2);
  const MlpConfig c = SmallConfig(2, Parameterization::kNoise);
  const MlpScore f(std::make_shared<MlpNetwork<float>>(c, 4), sde);
  const MlpScore d(std::make_shared<MlpNetwork<double>>(c, 4), sde);
  const Batch x = Normals(2, 20, 3) * 5.0;
  const Eigen::RowVectorXd t = Eigen::RowVectorXd::LinSpaced(20, 0.05, 1.0);
  Batch sf(2, 20), sd(2, 20);
  f.Evaluate(x, t, sf);
  d.Evaluate(x, t, sd);
  // float rounding (6e-8) amplified by ~(depth + 1)·width operations, times |b| ≤ 1/σ_t.
  for (int j = 0; j < 20; ++j) {
    EXPECT_LT((sf.col(j) - sd.col(j)).norm(), 1e-4 * (1.0 + sd.col(j).norm())) << j;
  }
}

TEST(MlpScore, JvpAndDivergenceAgreeWithEachOther) {
  auto sde = std::make_shared<SubVpSde>(3);
  const MlpConfig c = SmallConfig(3, Parameterization::kDenoiser);
  const MlpScore score(std::make_shared<MlpNetwork<double>>(c, 2), sde);
  const Batch x = Normals(3, 6, 8);
  const Eigen::RowVectorXd t = Eigen::RowVectorXd::LinSpaced(6, 0.1, 1.0);
  Eigen::RowVectorXd div(6), trace = Eigen::RowVectorXd::Zero(6);
  score.Divergence(x, t, div);
  Batch s(3, 6), jv(3, 6), s0(3, 6);
  score.Evaluate(x, t, s0);
  for (int i = 0; i < 3; ++i) {
    Batch e = Batch::Zero(3, 6);
    e.row(i).setOnes();
    score.EvaluateWithJvp(x, t, e, s, jv);
    trace += jv.row(i);
    EXPECT_EQ(s, s0);
  }
  EXPECT_LT((div - trace).cwiseAbs().maxCoeff(), 1e-12 * (1.0 + div.cwiseAbs().maxCoeff()));
}

TEST(MlpScore, DenoiserWithZeroNetworkIsTheGaussianScore) {
  auto sde = std::make_shared<VpSde>(2);
  MlpConfig c = SmallConfig(2, Parameterization::kDenoiser);
  MlpNetwork<double> zero(c, 1);
  zero.mutable_parameters().setZero();
  const MlpScore score(std::make_shared<MlpNetwork<double>>(zero), sde);
  const Batch x = Normals(2, 5, 1);
  const Eigen::RowVectorXd t = Eigen::RowVectorXd::Constant(5, 0.4);
  Batch s(2, 5);
  score.Evaluate(x, t, s);
  const double alpha = sde->MeanCoefficient(0.4), sigma = sde->MarginalStd(0.4);
  const double var = alpha * alpha * c.data_std * c.data_std + sigma * sigma;
  EXPECT_LT((s + x / var).norm(), 1e-14);
}

TEST(MlpScore, RejectsBadInput) {
  auto sde = std::make_shared<VeSde>(2);
  const MlpScore score(
      std::make_shared<MlpNetwork<float>>(SmallConfig(2, Parameterization::kNoise), 1), sde);
  Batch s(2, 3);
  EXPECT_THROW(score.Evaluate(Batch::Zero(3, 3), Eigen::RowVectorXd::Constant(3, 0.5), s),
               InvalidArgument);
  EXPECT_THROW(score.Evaluate(Batch::Zero(2, 3), Eigen::RowVectorXd::Constant(2, 0.5), s),
               InvalidArgument);
  try {
    score.Evaluate(Batch::Zero(2, 3), Eigen::RowVectorXd::Constant(3, 1.5), s);
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("t = 1.5"));
  }
  // The exact VE kernel has σ_0 = 0: the noise form divides by it.
  EXPECT_THROW(score.Evaluate(Batch::Zero(2, 3), Eigen::RowVectorXd::Zero(3), s),
               InvalidArgument);
  Batch bad = Batch::Zero(2, 3);
  bad(1, 1) = std::nan("");
  EXPECT_THROW(score.Evaluate(bad, Eigen::RowVectorXd::Constant(3, 0.5), s), InvalidArgument);
  EXPECT_THROW(MlpScore(std::make_shared<MlpNetwork<float>>(
                            SmallConfig(3, Parameterization::kNoise), 1),
                        sde),
               InvalidArgument);
}

}  // namespace
}  // namespace scoresde
