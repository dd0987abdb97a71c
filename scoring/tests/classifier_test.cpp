#include "scoresde/scoring/classifier.hpp"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

ClassifierConfig SmallConfig(int dim, int classes) {
  ClassifierConfig c;
  c.dim = dim;
  c.num_classes = classes;
  c.width = 16;
  c.depth = 3;
  c.embed_dim = 8;
  return c;
}

// Two classes: y ~ Bernoulli(½), x₀ ~ N((2y − 1)·(1.5, 0), 0.5² I).
CallbackLabelledDataSource TwoBlobs() {
  return CallbackLabelledDataSource(2, [](int64_t first, BatchRef x, std::vector<int>* labels) {
    Batch u(1, x.cols()), z(2, x.cols());
    const NoiseStream noise(77, Stream::kData);
    noise.FillUniform(0, 0, first, u);
    noise.FillNormal(0, 1, first, z);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const int y = u(0, j) < 0.5 ? 0 : 1;
      (*labels)[j] = y;
      x.col(j) = 0.5 * z.col(j);
      x(0, j) += y == 0 ? -1.5 : 1.5;
    }
  });
}

TEST(ClassifierConfig, DefaultsAreValidAndBadFieldsAreNamed) {
  EXPECT_NO_THROW(ClassifierConfig{}.Validate());
  const auto check = [](auto mutate, const std::string& name) {
    ClassifierConfig c;
    mutate(c);
    EXPECT_THAT([&] { c.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr(name)));
  };
  check([](auto& c) { c.dim = 0; }, "dim");
  check([](auto& c) { c.num_classes = 1; }, "num_classes");
  check([](auto& c) { c.width = 0; }, "width");
  check([](auto& c) { c.depth = 0; }, "depth");
  check([](auto& c) { c.embed_dim = 3; }, "embed_dim");
  check([](auto& c) { c.fourier_scale = NAN; }, "fourier_scale");
  check([](auto& c) { c.data_std = 0.0; }, "data_std");
}

TEST(ClassifierTrainingOptions, DefaultsAreValidAndBadFieldsAreNamed) {
  EXPECT_NO_THROW(ClassifierTrainingOptions{}.Validate());
  const auto check = [](auto mutate, const std::string& name) {
    ClassifierTrainingOptions o;
    mutate(o);
    EXPECT_THAT([&] { o.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr(name)));
  };
  check([](auto& o) { o.num_steps = -1; }, "num_steps");
  check([](auto& o) { o.batch_size = 0; }, "batch_size");
  check([](auto& o) { o.eps = 0.0; }, "eps");
  check([](auto& o) { o.num_threads = 0; }, "num_threads");
  check([](auto& o) { o.block_size = 0; }, "block_size");
  check([](auto& o) { o.adam.learning_rate = -1.0; }, "learning_rate");
}

TEST(NoiseConditionalClassifier, RejectsBadInputs) {
  auto vp = std::make_shared<VpSde>(2);
  EXPECT_THAT([&] { NoiseConditionalClassifier(SmallConfig(3, 2), vp, 0); }, ThrowsMessage<InvalidArgument>(HasSubstr("sde.dim()")));
  EXPECT_THAT([&] { NoiseConditionalClassifier(SmallConfig(2, 2), nullptr, 0); }, ThrowsMessage<InvalidArgument>(HasSubstr("sde")));
  const NoiseConditionalClassifier c(SmallConfig(2, 3), vp, 0);
  EXPECT_THAT([&] { NoiseConditionalClassifier(SmallConfig(2, 3), vp, Vector::Zero(3), c.fourier_weights()); }, ThrowsMessage<InvalidArgument>(HasSubstr("parameters.size()")));
  Batch x = Batch::Zero(2, 4), grad(2, 4);
  RowVector t = RowVector::Constant(4, 0.5), logp(4);
  EXPECT_THAT([&] { c.LogProbAndGradient(x, t, {3}, logp, grad); }, ThrowsMessage<InvalidArgument>(HasSubstr("labels[0]")));
  EXPECT_THAT([&] { c.LogProbAndGradient(x, t, {0, 1}, logp, grad); }, ThrowsMessage<InvalidArgument>(HasSubstr("labels.size()")));
  EXPECT_THAT([&] { c.LogProbAndGradient(x, RowVector::Constant(4, 2.0), {0}, logp, grad); }, ThrowsMessage<InvalidArgument>(HasSubstr("t")));
  x(1, 2) = NAN;
  EXPECT_THAT([&] { c.LogProbAndGradient(x, t, {0}, logp, grad); }, ThrowsMessage<InvalidArgument>(HasSubstr("x")));
}

// Gradients against central differences. For a smooth function with |f'''| ≲ 10 (a small
// SiLU network on O(1) inputs), step h = 1e-5 gives truncation error h²/6·|f'''| ≲ 2e-10 and
// rounding error ≈ 1e-16·|f|/h ≲ 1e-10; the tolerance 1e-7 (absolute plus relative) is above both.
TEST(NoiseConditionalClassifier, GradientsMatchFiniteDifferences) {
  for (bool ve : {false, true}) {
    std::shared_ptr<const ScalarAffineSde> sde;
    if (ve) {
      sde = std::make_shared<VeSde>(3);
    } else {
      sde = std::make_shared<VpSde>(3);
    }
    NoiseConditionalClassifier c(SmallConfig(3, 4), sde, 5);
    Batch x(3, 3);
    x << 0.3, -0.7, 1.2, 0.5, 0.1, -0.4, -1.0, 0.8, 0.2;
    const RowVector t = RowVector::LinSpaced(3, 0.1, 0.9);
    const std::vector<int> labels = {2, 0, 3};
    // Input gradient of log p(y | x, t).
    RowVector logp(3);
    Batch grad(3, 3);
    c.LogProbAndGradient(x, t, labels, logp, grad);
    const double h = 1e-5;
    for (int j = 0; j < 3; ++j) {
      for (int i = 0; i < 3; ++i) {
        Batch xp = x.col(j), xm = x.col(j);
        xp(i, 0) += h;
        xm(i, 0) -= h;
        RowVector lp(1), lm(1);
        Batch g(3, 1);
        c.LogProbAndGradient(xp, t.segment(j, 1), {labels[j]}, lp, g);
        c.LogProbAndGradient(xm, t.segment(j, 1), {labels[j]}, lm, g);
        const double fd = (lp(0) - lm(0)) / (2 * h);
        EXPECT_NEAR(grad(i, j), fd, 1e-7 * (1.0 + std::abs(fd))) << "ve " << ve;
      }
    }
    // Parameter gradient of the cross-entropy, on a sample of parameters.
    Vector pgrad = Vector::Zero(c.num_parameters());
    const double loss = c.CrossEntropy(x, t, labels, &pgrad);
    EXPECT_TRUE(std::isfinite(loss));
    for (int64_t k = 0; k < c.num_parameters(); k += 37) {
      const double saved = c.parameters()(k);
      c.mutable_parameters()(k) = saved + h;
      const double lp = c.CrossEntropy(x, t, labels, nullptr);
      c.mutable_parameters()(k) = saved - h;
      const double lm = c.CrossEntropy(x, t, labels, nullptr);
      c.mutable_parameters()(k) = saved;
      const double fd = (lp - lm) / (2 * h);
      EXPECT_NEAR(pgrad(k), fd, 1e-7 * (1.0 + std::abs(fd))) << "parameter " << k;
    }
    // log p is a log-softmax: the class probabilities sum to one.
    double total = 0.0;
    for (int y = 0; y < 4; ++y) {
      RowVector l(1);
      Batch g(3, 1);
      c.LogProbAndGradient(x.col(0), t.segment(0, 1), {y}, l, g);
      total += std::exp(l(0));
    }
    EXPECT_NEAR(total, 1.0, 1e-14);
  }
}

TEST(NoiseConditionalClassifier, ColumnsAreIndependentOfTheirBatch) {
  const NoiseConditionalClassifier c(SmallConfig(2, 2), std::make_shared<VpSde>(2), 1);
  // 100 columns: a full block of 64 and one of 36 (padded to 40); single columns pad to 16.
  const Batch x = Batch::Random(2, 100);
  const RowVector t = RowVector::LinSpaced(100, 0.01, 1.0);
  RowVector logp(100);
  Batch grad(2, 100);
  c.LogProbAndGradient(x, t, {1}, logp, grad);
  Batch logits(2, 100);
  c.Logits(x, t, logits);
  for (int j : {0, 7, 63, 64, 99}) {
    RowVector l(1);
    Batch g(2, 1), lg(2, 1);
    c.LogProbAndGradient(x.col(j), t.segment(j, 1), {1}, l, g);
    EXPECT_EQ(l(0), logp(j));
    EXPECT_EQ(g.col(0), grad.col(j));
    c.Logits(x.col(j), t.segment(j, 1), lg);
    EXPECT_EQ(lg.col(0), logits.col(j));
  }
}

// Training lowers the cross-entropy of two separated blobs, and is bit-identical for 1, 2 and 7
// threads (fixed blocks, reduction in block order).
TEST(TrainClassifier, LearnsAndIsThreadInvariant) {
  auto vp = std::make_shared<VpSde>(2);
  const CallbackLabelledDataSource data = TwoBlobs();
  ClassifierTrainingOptions options;
  options.num_steps = 150;
  options.batch_size = 128;
  options.block_size = 32;
  options.adam.warmup_steps = 10;
  options.adam.ema_decay = 0.0;
  NoiseConditionalClassifier reference(SmallConfig(2, 2), vp, 3);
  const double before = [&] {
    Batch x0(2, 512), z(2, 512);
    std::vector<int> labels;
    data.Fill(10'000'000, x0, &labels);
    return reference.CrossEntropy(x0, RowVector::Constant(512, 0.05), labels, nullptr);
  }();
  const ClassifierTrainingSummary summary = TrainClassifier(&reference, data, options);
  EXPECT_EQ(summary.steps, 150);
  ASSERT_FALSE(summary.losses.empty());
  // At t = 0.05 the blobs barely overlap (Bayes error ≈ Φ(−1.5/0.5) ≈ 0.1%), so the trained
  // classifier's cross-entropy on fresh data must be far below the untrained one's (≈ log 2).
  Batch x0(2, 512);
  std::vector<int> labels;
  data.Fill(10'000'000, x0, &labels);
  const double after = reference.CrossEntropy(x0, RowVector::Constant(512, 0.05), labels, nullptr);
  EXPECT_LT(after, 0.25 * before);
  for (int threads : {2, 7}) {
    options.num_threads = threads;
    NoiseConditionalClassifier other(SmallConfig(2, 2), vp, 3);
    TrainClassifier(&other, data, options);
    EXPECT_EQ(other.parameters(), reference.parameters()) << threads;
  }
  NoiseConditionalClassifier wrong(SmallConfig(3, 2), std::make_shared<VpSde>(3), 3);
  EXPECT_THAT([&] { TrainClassifier(&wrong, data, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("data.dim()")));
}

TEST(ArrayLabelledDataSource, VisitsEveryExampleOncePerEpochWithItsLabel) {
  Matrix data(1, 5);
  data << 0.0, 1.0, 2.0, 3.0, 4.0;
  const ArrayLabelledDataSource source(data, {0, 1, 2, 3, 4}, 9);
  Batch x(1, 10);
  std::vector<int> labels;
  source.Fill(0, x, &labels);
  for (int j = 0; j < 10; ++j) EXPECT_EQ(labels[j], static_cast<int>(x(0, j)));
  std::vector<int> first(labels.begin(), labels.begin() + 5);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_THAT([&] { ArrayLabelledDataSource(data, {0, 1}, 0); }, ThrowsMessage<InvalidArgument>(HasSubstr("labels.size()")));
  EXPECT_THAT([&] { ArrayLabelledDataSource(data, {0, 1, -2, 0, 0}, 0); }, ThrowsMessage<InvalidArgument>(HasSubstr("labels[2]")));
}

TEST(Classifier, SavesAndLoadsExactly) {
  auto ve = std::make_shared<VeSde>(2);
  const NoiseConditionalClassifier c(SmallConfig(2, 3), ve, 4);
  const std::string path =
      (std::filesystem::temp_directory_path() / "scoresde_classifier_test.safetensors").string();
  SaveClassifier(path, c);
  const NoiseConditionalClassifier loaded = LoadClassifier(path);
  EXPECT_EQ(loaded.parameters(), c.parameters());
  EXPECT_EQ(loaded.fourier_weights(), c.fourier_weights());
  EXPECT_EQ(loaded.num_classes(), 3);
  EXPECT_EQ(loaded.sde().family(), SdeFamily::kVe);
  std::remove(path.c_str());
  EXPECT_THAT([&] { LoadClassifier(path); }, ThrowsMessage<InvalidArgument>(HasSubstr(path)));
}

}  // namespace
}  // namespace scoresde
