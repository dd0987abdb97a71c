#include "scoresde/scoring/trainer.hpp"

#include <cstdio>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

MlpConfig Small() {
  MlpConfig c;
  c.dim = 2;
  c.width = 16;
  c.depth = 2;
  c.embed_dim = 8;
  return c;
}

TrainerOptions Options(int threads, int64_t steps) {
  TrainerOptions o;
  o.num_steps = steps;
  o.batch_size = 100;  // blocks of 32: 4 blocks, the last one partial
  o.block_size = 32;
  o.num_threads = threads;
  o.seed = 3;
  o.progress = ProgressStyle::kNone;
  return o;
}

AdamOptions Adam() {
  AdamOptions a;
  a.learning_rate = 1e-2;
  a.warmup_steps = 5;
  a.ema_decay = 0.9;
  return a;
}

TEST(TrainerOptions, DefaultsAreValid) { EXPECT_NO_THROW(TrainerOptions{}.Validate()); }

TEST(TrainerOptions, RejectsBadFields) {
  TrainerOptions o;
  o.batch_size = 0;
  EXPECT_THROW(o.Validate(), InvalidArgument);
  o = TrainerOptions{};
  o.num_threads = 0;
  EXPECT_THROW(o.Validate(), InvalidArgument);
  o = TrainerOptions{};
  o.checkpoint_every = 10;
  try {
    o.Validate();
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("checkpoint_path"));
  }
}

// The same seed gives bit-identical weights, EMA and moments for 1, 2 and 7 threads, for every
// loss (the reduction order is fixed by the blocks, not the threads).
TEST(Trainer, BitIdenticalAcrossThreadCounts) {
  auto sde = std::make_shared<VpSde>(2);
  const Toy2dDataSource data(Toy2d::kTwoMoons, 1);
  for (LossKind kind : {LossKind::kDsm, LossKind::kSsmVr, LossKind::kEsm, LossKind::kDdpm}) {
    LossOptions loss;
    loss.kind = kind;
    Trainer<float> one(sde, Small(), loss, Adam(), Options(1, 6));
    Trainer<float> two(sde, Small(), loss, Adam(), Options(2, 6));
    Trainer<float> seven(sde, Small(), loss, Adam(), Options(7, 6));
    one.Train(data);
    two.Train(data);
    seven.Train(data);
    EXPECT_EQ(one.network().parameters(), two.network().parameters()) << ToString(kind);
    EXPECT_EQ(one.network().parameters(), seven.network().parameters()) << ToString(kind);
    EXPECT_EQ(one.optimizer().average(), seven.optimizer().average()) << ToString(kind);
    EXPECT_EQ(one.optimizer().second_moment(), seven.optimizer().second_moment());
  }
}

// Resume from a checkpoint file equals an uninterrupted run, bit for bit.
TEST(Trainer, ResumeFromCheckpointIsBitIdentical) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "scoresde_trainer_resume.safetensors").string();
  VeSde::Options ve;
  ve.sigma_max = 5.0;
  auto sde = std::make_shared<VeSde>(2, ve);
  const Toy2dDataSource data(Toy2d::kEightGaussians, 4);
  LossOptions loss;
  loss.weighting = Weighting::kLikelihood;
  loss.importance_sampling = true;
  MlpConfig model = Small();
  model.parameterization = Parameterization::kDenoiser;
  Trainer<float> straight(sde, model, loss, Adam(), Options(2, 12));
  straight.Train(data);

  TrainerOptions first = Options(1, 5);
  first.checkpoint_path = path;
  Trainer<float> part(sde, model, loss, Adam(), first);
  part.Train(data);
  const ModelCheckpoint ck = LoadCheckpoint(path);
  EXPECT_EQ(ck.step, 5);
  Trainer<float> resumed(ck, Options(7, 12));
  const TrainSummary summary = resumed.Train(data);
  EXPECT_EQ(summary.first_step, 5);
  EXPECT_EQ(summary.steps, 12);
  EXPECT_EQ(resumed.network().parameters(), straight.network().parameters());
  EXPECT_EQ(resumed.optimizer().average(), straight.optimizer().average());
  EXPECT_EQ(resumed.optimizer().first_moment(), straight.optimizer().first_moment());
  EXPECT_EQ(resumed.optimizer().second_moment(), straight.optimizer().second_moment());
  std::filesystem::remove(path);

  TrainerOptions other = Options(1, 12);
  other.batch_size = 64;
  EXPECT_THROW(Trainer<float>(ck, other), InvalidArgument);
  EXPECT_THROW(Trainer<double>(ck, Options(1, 12)), InvalidArgument);
}

TEST(Trainer, LossDecreasesOnAGaussian) {
  auto sde = std::make_shared<VpSde>(2);
  const CallbackDataSource data(
      2,
      [](int64_t first, BatchRef out) {
        NoiseStream(9, Stream::kData).FillNormal(0, 0, first, out);
        out.row(0) = 0.5 * out.row(0).array() + 1.0;
      },
      "gaussian");
  LossOptions loss;
  AdamOptions adam = Adam();
  adam.ema_decay = 0.0;
  TrainerOptions o = Options(2, 150);
  o.eval_every = 150;
  Trainer<float> trainer(sde, Small(), loss, adam, o);
  const double before = trainer.EvaluateLoss(data, 2048);
  const TrainSummary s = trainer.Train(data);
  // The DSM loss of the exact score is E[σ²‖s + z/σ‖²] > 0; a fresh network is far above it.
  EXPECT_LT(s.final_eval_loss, 0.8 * before);
  EXPECT_EQ(s.eval_losses.size(), 1u);
}

TEST(Trainer, RejectsMismatchedData) {
  auto sde = std::make_shared<VpSde>(2);
  Trainer<float> trainer(sde, Small(), LossOptions{}, Adam(), Options(1, 1));
  const ArrayDataSource data(Matrix::Ones(3, 10), 0);
  EXPECT_THROW(trainer.Train(data), InvalidArgument);
}

}  // namespace
}  // namespace scoresde
