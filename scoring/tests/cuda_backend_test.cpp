// Unit tests of the CUDA backend (cuda_backend.hpp). The option, name and argument checks run
// everywhere; tests that need a GPU skip at run time with the reason. The numerical agreement
// with the CPU (bounds derived in docs/gpu.md) is in verification/suites/cuda_*_suite.cpp.
#include "scoresde/scoring/cuda_backend.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/scoring/datasets.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

#define SKIP_WITHOUT_DEVICE()                                                         \
  do {                                                                                \
    const CudaDeviceInfo info = QueryCudaDevice();                                    \
    if (!info.available) GTEST_SKIP() << "needs a CUDA device: " << info.reason;       \
  } while (false)

MlpConfig Small(int dim = 2) {
  MlpConfig c;
  c.dim = dim;
  c.width = 16;
  c.depth = 3;
  c.embed_dim = 8;
  return c;
}

// ---- Everywhere ----------------------------------------------------------------------------------

TEST(CudaOptions, DefaultsAreValid) {
  EXPECT_NO_THROW(CudaOptions{}.Validate());
  EXPECT_NO_THROW(CudaTrainerOptions{}.Validate());
  EXPECT_NO_THROW(CudaSamplerOptions{}.Validate());
  EXPECT_NO_THROW(CudaFlowOptions{}.Validate());
}

TEST(CudaOptions, RejectBadFieldsByName) {
  CudaOptions cuda;
  cuda.device = -1;
  EXPECT_THAT([&] { cuda.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("device")));
  CudaTrainerOptions trainer;
  trainer.batch_size = 0;
  EXPECT_THAT([&] { trainer.Validate(); },
              ThrowsMessage<InvalidArgument>(HasSubstr("batch_size")));
  trainer = {};
  trainer.history = 0;
  EXPECT_THAT([&] { trainer.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("history")));
  CudaSamplerOptions sampler;
  sampler.num_steps = 0;
  EXPECT_THAT([&] { sampler.Validate(); },
              ThrowsMessage<InvalidArgument>(HasSubstr("num_steps")));
  sampler = {};
  sampler.snr = -0.1;
  EXPECT_THAT([&] { sampler.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("snr")));
  sampler = {};
  sampler.eps = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT([&] { sampler.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("eps")));
  sampler = {};
  sampler.pilot_size = 1;
  EXPECT_THAT([&] { sampler.Validate(); },
              ThrowsMessage<InvalidArgument>(HasSubstr("pilot_size")));
  sampler = {};
  sampler.chunk_size = 0;
  EXPECT_THAT([&] { sampler.Validate(); },
              ThrowsMessage<InvalidArgument>(HasSubstr("chunk_size")));
  CudaFlowOptions flow;
  flow.num_steps = 0;
  EXPECT_THAT([&] { flow.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("num_steps")));
}

TEST(CudaNames, RoundTripAndRejectUnknownNames) {
  for (CudaMath m : {CudaMath::kPedanticFp32, CudaMath::kFp32, CudaMath::kTf32}) {
    EXPECT_EQ(ParseCudaMath(ToString(m)), m);
  }
  for (CudaPredictor p : {CudaPredictor::kEulerMaruyama, CudaPredictor::kReverseDiffusion,
                          CudaPredictor::kAncestral, CudaPredictor::kNone}) {
    EXPECT_EQ(ParseCudaPredictor(ToString(p)), p);
  }
  for (CudaCorrector c :
       {CudaCorrector::kNone, CudaCorrector::kLangevin, CudaCorrector::kAnnealedLangevin}) {
    EXPECT_EQ(ParseCudaCorrector(ToString(c)), c);
  }
  for (CudaFlowMethod m : {CudaFlowMethod::kEuler, CudaFlowMethod::kHeun, CudaFlowMethod::kRk4}) {
    EXPECT_EQ(ParseCudaFlowMethod(ToString(m)), m);
  }
  EXPECT_THAT([] { ParseCudaMath("bf16"); }, ThrowsMessage<InvalidArgument>(HasSubstr("bf16")));
  EXPECT_THAT([] { ParseCudaPredictor("milstein"); },
              ThrowsMessage<InvalidArgument>(HasSubstr("milstein")));
  EXPECT_THAT([] { ParseCudaCorrector("mala"); },
              ThrowsMessage<InvalidArgument>(HasSubstr("mala")));
  EXPECT_THAT([] { ParseCudaFlowMethod("dopri5"); },
              ThrowsMessage<InvalidArgument>(HasSubstr("dopri5")));
}

TEST(CudaDevice, QueryNeverThrowsAndExplainsAbsence) {
  const CudaDeviceInfo info = QueryCudaDevice();
  if (info.available) {
    EXPECT_TRUE(info.built_with_cuda);
    EXPECT_GT(info.multiprocessors, 0);
    EXPECT_GT(info.global_memory_bytes, 0);
    EXPECT_FALSE(info.name.empty());
  } else {
    EXPECT_FALSE(info.reason.empty());
  }
  const CudaDeviceInfo missing = QueryCudaDevice(63);
  EXPECT_FALSE(missing.available);
  EXPECT_FALSE(missing.reason.empty());
  EXPECT_EQ(CudaAvailable(), info.available);
}

TEST(CudaDevice, ConstructorsThrowWithTheReasonWhenNoDevice) {
  const CudaDeviceInfo info = QueryCudaDevice();
  if (info.available) GTEST_SKIP() << "a device is present (" << info.name << ")";
  const MlpNetwork<float> network(Small(), 0);
  EXPECT_THAT([&] { CudaMlp mlp(network); }, ThrowsMessage<Error>(HasSubstr(info.reason)));
  const auto sde = std::make_shared<VpSde>(2);
  EXPECT_THAT([&] { CudaSampler sampler(network, sde); },
              ThrowsMessage<Error>(HasSubstr(info.reason)));
  EXPECT_THAT([&] { CudaFillNormal(NoiseStream(1, Stream::kPrior), 0, 0, 0, 2, 4); },
              ThrowsMessage<Error>(HasSubstr(info.reason)));
}

TEST(CudaTrainer, ChecksItsArgumentsBeforeAskingForADevice) {
  if (!QueryCudaDevice().built_with_cuda) GTEST_SKIP() << "scoresde was built without CUDA";
  const MlpNetwork<float> network(Small(), 0);
  const auto vp = std::make_shared<VpSde>(2);
  LossOptions esm;
  esm.kind = LossKind::kEsm;
  EXPECT_THAT([&] { CudaTrainer t(network, vp, esm, AdamOptions{}, CudaTrainerOptions{}); },
              ThrowsMessage<InvalidArgument>(HasSubstr("esm")));
  LossOptions ncsn;
  ncsn.kind = LossKind::kNcsn;
  EXPECT_THAT([&] { CudaTrainer t(network, vp, ncsn, AdamOptions{}, CudaTrainerOptions{}); },
              ThrowsMessage<InvalidArgument>(HasSubstr("ncsn")));
  CudaTrainerOptions bad_batch;
  bad_batch.batch_size = 0;
  EXPECT_THAT([&] { CudaTrainer t(network, vp, LossOptions{}, AdamOptions{}, bad_batch); },
              ThrowsMessage<InvalidArgument>(HasSubstr("batch_size")));
  AdamOptions bad_adam;
  bad_adam.beta1 = 1.0;
  EXPECT_THAT([&] { CudaTrainer t(network, vp, LossOptions{}, bad_adam, CudaTrainerOptions{}); },
              ThrowsMessage<InvalidArgument>(HasSubstr("beta1")));
  const auto vp3 = std::make_shared<VpSde>(3);
  EXPECT_THAT(
      [&] { CudaTrainer t(network, vp3, LossOptions{}, AdamOptions{}, CudaTrainerOptions{}); },
      ThrowsMessage<InvalidArgument>(HasSubstr("dim")));
}

TEST(CudaSampler, GaussianChecksItsArgumentsBeforeAskingForADevice) {
  if (!QueryCudaDevice().built_with_cuda) GTEST_SKIP() << "scoresde was built without CUDA";
  const auto vp = std::make_shared<VpSde>(2);
  EXPECT_THAT(
      [&] {
        CudaSampler::Gaussian(vp, Eigen::VectorXd::Zero(3), Eigen::MatrixXd::Identity(2, 2));
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("mean.size()")));
  Eigen::MatrixXd asymmetric(2, 2);
  asymmetric << 1.0, 0.5, 0.0, 1.0;
  EXPECT_THAT([&] { CudaSampler::Gaussian(vp, Eigen::VectorXd::Zero(2), asymmetric); },
              ThrowsMessage<InvalidArgument>(HasSubstr("symmetric")));
  Eigen::MatrixXd indefinite(2, 2);
  indefinite << 1.0, 2.0, 2.0, 1.0;
  EXPECT_THAT([&] { CudaSampler::Gaussian(vp, Eigen::VectorXd::Zero(2), indefinite); },
              ThrowsMessage<InvalidArgument>(HasSubstr("eigenvalue")));
  Eigen::VectorXd nan_mean = Eigen::VectorXd::Zero(2);
  nan_mean[1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT([&] { CudaSampler::Gaussian(vp, nan_mean, Eigen::MatrixXd::Identity(2, 2)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("mean")));
}

// ---- On a device ---------------------------------------------------------------------------------

TEST(CudaRandom, WordsUniformsAndSignsEqualTheCpuBitForBit) {
  SKIP_WITHOUT_DEVICE();
  for (const uint64_t seed : {uint64_t{0}, uint64_t{12345}, ~uint64_t{0} - 7}) {
    const NoiseStream noise(seed, Stream::kTraining);
    const int64_t first = seed == 0 ? 0 : 4294967000;  // near the 32-bit end
    const auto words = CudaPhiloxWords(noise, 77, 3, first, 200, 3);
    for (int64_t k = 0; k < 200; ++k) {
      for (int b = 0; b < 3; ++b) {
        ASSERT_EQ(words[k * 3 + b], noise.Raw(b, first + k, 77, 3)) << "sample " << k;
      }
    }
    Matrix cpu(5, 200);
    noise.FillUniform(9, 1, first, cpu);
    EXPECT_EQ(CudaFillUniform(noise, 9, 1, first, 5, 200), cpu);
    Matrix signs(130, 40);
    noise.FillRademacher(4, 2, first, signs);
    EXPECT_EQ(CudaFillRademacher(noise, 4, 2, first, 130, 40), signs);
  }
}

TEST(CudaRandom, NormalsAgreeWithinEightUlp) {
  SKIP_WITHOUT_DEVICE();
  const NoiseStream noise(2024, Stream::kPredictor);
  Matrix cpu(7, 5000);
  noise.FillNormal(3, 0, 100, cpu);
  const Matrix gpu = CudaFillNormal(noise, 3, 0, 100, 7, 5000);
  for (Eigen::Index k = 0; k < cpu.size(); ++k) {
    // |Δz| ≤ 8 ulp(z) (docs/gpu.md); ulp(z) = 2^(e − 52) for |z| in [2^e, 2^(e+1)).
    const double ulp = std::ldexp(1.0, std::ilogb(cpu(k)) - 52);
    ASSERT_LE(std::abs(gpu(k) - cpu(k)), 8.0 * ulp) << "entry " << k << ": " << cpu(k);
  }
}

TEST(CudaMlp, RejectsBadShapesAndRoundTripsParameters) {
  SKIP_WITHOUT_DEVICE();
  const MlpNetwork<float> network(Small(), 3);
  CudaMlp mlp(network);
  EXPECT_EQ(mlp.Parameters(), network.parameters());
  EXPECT_THAT([&] { mlp.Forward(Eigen::MatrixXf::Zero(3, 4), Eigen::RowVectorXf::Zero(4)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("u.rows()")));
  EXPECT_THAT([&] { mlp.Forward(Eigen::MatrixXf::Zero(2, 4), Eigen::RowVectorXf::Zero(3)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("tau")));
  Eigen::MatrixXf nan = Eigen::MatrixXf::Zero(2, 4);
  nan(1, 2) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT([&] { mlp.Forward(nan, Eigen::RowVectorXf::Zero(4)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("u")));
  EXPECT_THAT([&] { mlp.SetParameters(Eigen::VectorXf::Zero(5)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("parameters.size()")));
}

TEST(CudaMlp, ColumnsDoNotDependOnTheirNeighbours) {
  SKIP_WITHOUT_DEVICE();
  const MlpNetwork<float> network(Small(), 3);
  CudaMlp mlp(network);
  Eigen::MatrixXf u = Eigen::MatrixXf::Random(2, 64);
  Eigen::RowVectorXf tau = Eigen::RowVectorXf::Random(64);
  const Eigen::MatrixXf all = mlp.Forward(u, tau);
  u.rightCols(32).setRandom();
  const Eigen::MatrixXf half = mlp.Forward(u, tau);
  // Same GEMM shapes, so the same kernels and summation orders: the untouched columns agree.
  EXPECT_EQ(all.leftCols(32), half.leftCols(32));
}

struct TrainerSetup {
  MlpNetwork<float> network{Small(), 5};
  std::shared_ptr<const ScalarAffineSde> sde = std::make_shared<VpSde>(2);
  LossOptions loss;
  AdamOptions adam;
  CudaTrainerOptions options;
  TrainerSetup() {
    adam.learning_rate = 1e-3;
    adam.warmup_steps = 3;
    adam.ema_decay = 0.9;
    options.batch_size = 96;
    options.seed = 11;
  }
  Matrix Batch(int64_t step) const {
    Matrix x(2, options.batch_size);
    SampleToy2d(Toy2d::kTwoMoons, 1, step * options.batch_size, x);
    return x;
  }
};

TEST(CudaTrainer, GraphReplaysEqualEagerLaunchesBitForBit) {
  SKIP_WITHOUT_DEVICE();
  for (LossKind kind : {LossKind::kDsm, LossKind::kSsm}) {
    TrainerSetup s;
    s.loss.kind = kind;
    CudaOptions eager;
    eager.use_graphs = false;
    CudaTrainer a(s.network, s.sde, s.loss, s.adam, s.options);
    CudaTrainer b(s.network, s.sde, s.loss, s.adam, s.options, eager);
    for (int64_t k = 0; k < 5; ++k) {
      a.Enqueue(s.Batch(k));
      b.Enqueue(s.Batch(k));
    }
    const auto ra = a.Wait();
    const auto rb = b.Wait();
    ASSERT_EQ(ra.size(), 5u);
    ASSERT_EQ(rb.size(), 5u);
    for (size_t i = 0; i < ra.size(); ++i) {
      EXPECT_EQ(ra[i].step, static_cast<int64_t>(i) + 1);
      EXPECT_EQ(ra[i].loss, rb[i].loss);
      EXPECT_EQ(ra[i].grad_norm, rb[i].grad_norm);
      EXPECT_TRUE(std::isfinite(ra[i].loss));
    }
    EXPECT_EQ(a.Parameters(), b.Parameters());
    EXPECT_EQ(a.Average(), b.Average());
    EXPECT_NE(a.Parameters(), s.network.parameters());
    EXPECT_EQ(a.step(), 5);
    EXPECT_EQ(a.ema_updates(), 5);
  }
}

TEST(CudaTrainer, RestoreContinuesBitForBit) {
  SKIP_WITHOUT_DEVICE();
  TrainerSetup s;
  CudaTrainer straight(s.network, s.sde, s.loss, s.adam, s.options);
  CudaTrainer first(s.network, s.sde, s.loss, s.adam, s.options);
  for (int64_t k = 0; k < 6; ++k) straight.Enqueue(s.Batch(k));
  straight.Wait();
  for (int64_t k = 0; k < 3; ++k) first.Enqueue(s.Batch(k));
  first.Wait();
  CudaTrainer resumed(s.network, s.sde, s.loss, s.adam, s.options);
  resumed.Restore(first.step(), first.Parameters(), first.FirstMoment(), first.SecondMoment(),
                  first.Average(), first.ema_updates());
  for (int64_t k = 3; k < 6; ++k) resumed.Enqueue(s.Batch(k));
  const auto records = resumed.Wait();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records.front().step, 4);
  EXPECT_EQ(resumed.Parameters(), straight.Parameters());
  EXPECT_EQ(resumed.Average(), straight.Average());
  EXPECT_EQ(resumed.Network(true).parameters(), straight.Average());
}

TEST(CudaTrainer, RejectsBadBatchesAndLocatesANonFiniteGradient) {
  SKIP_WITHOUT_DEVICE();
  TrainerSetup s;
  CudaTrainer trainer(s.network, s.sde, s.loss, s.adam, s.options);
  EXPECT_THAT([&] { trainer.Enqueue(Matrix::Zero(2, 5)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("x0")));
  Matrix nan = s.Batch(0);
  nan(1, 7) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT([&] { trainer.Enqueue(nan); }, ThrowsMessage<InvalidArgument>(HasSubstr("x0")));
  trainer.Step(s.Batch(0));
  const Eigen::VectorXf good = trainer.Parameters();
  // Finite in double, infinite once the network rounds its input to float.
  Matrix huge = s.Batch(1);
  huge(0, 3) = 1e300;
  trainer.Enqueue(huge);
  trainer.Enqueue(s.Batch(2));
  try {
    trainer.Wait();
    ADD_FAILURE() << "expected NumericalFailure";
  } catch (const NumericalFailure& failure) {
    EXPECT_EQ(failure.step(), 2);
    EXPECT_THAT(failure.what(), HasSubstr("not finite"));
  }
  EXPECT_EQ(trainer.Parameters(), good);
  EXPECT_EQ(trainer.step(), 1);
}

TEST(CudaSampler, SamplesDoNotDependOnHowManyAreDrawnNorOnGraphs) {
  SKIP_WITHOUT_DEVICE();
  const MlpNetwork<float> network(Small(), 8);
  const auto sde = std::make_shared<VpSde>(2);
  CudaSamplerOptions options;
  options.num_steps = 20;
  options.corrector = CudaCorrector::kLangevin;
  options.pilot_size = 64;
  options.chunk_size = 256;
  options.seed = 4;
  CudaSampler sampler(network, sde);
  const CudaSampleResult many = sampler.Sample(700, options);
  const CudaSampleResult few = sampler.Sample(300, options);
  EXPECT_EQ(few.x, many.x.leftCols(300));
  EXPECT_TRUE(many.x.allFinite());
  EXPECT_EQ(many.nfe, 40);
  ASSERT_EQ(many.expected_squared_norms.size(), 20u);
  for (double e : many.expected_squared_norms) EXPECT_GT(e, 0.0);
  CudaOptions eager;
  eager.use_graphs = false;
  CudaSampler launches(network, sde, eager);
  EXPECT_EQ(launches.Sample(300, options).x, few.x);
  CudaFlowOptions flow;
  flow.num_steps = 10;
  flow.chunk_size = 256;
  EXPECT_EQ(launches.SampleProbabilityFlow(300, flow).x,
            sampler.SampleProbabilityFlow(300, flow).x);
}

TEST(CudaSampler, LocatesTheFirstNonFiniteState) {
  SKIP_WITHOUT_DEVICE();
  const MlpNetwork<float> base(Small(), 8);
  // Weights of 1e30 overflow float in the second layer: every sample fails at step 0.
  const MlpNetwork<float> huge(Small(), Eigen::VectorXf::Constant(base.num_parameters(), 1e30f),
                               base.fourier_weights());
  CudaSampler sampler(huge, std::make_shared<VpSde>(2));
  CudaSamplerOptions options;
  options.num_steps = 5;
  options.chunk_size = 128;
  try {
    sampler.Sample(200, options);
    ADD_FAILURE() << "expected NumericalFailure";
  } catch (const NumericalFailure& failure) {
    EXPECT_EQ(failure.step(), 0);
    EXPECT_EQ(failure.sample(), 0);
    EXPECT_EQ(failure.coordinate(), 0);
  }
  CudaSampler gaussian = CudaSampler::Gaussian(
      std::make_shared<VpSde>(2), Eigen::VectorXd::Zero(2), Eigen::MatrixXd::Identity(2, 2));
  CudaSamplerOptions coarse;
  coarse.num_steps = 2;  // β(T) h = 20 · 0.4995 ≥ 1: the DDPM chain is undefined
  coarse.predictor = CudaPredictor::kAncestral;
  EXPECT_THAT([&] { gaussian.Sample(10, coarse); },
              ThrowsMessage<InvalidArgument>(HasSubstr("beta")));
  CudaSampler subvp = CudaSampler::Gaussian(std::make_shared<SubVpSde>(2),
                                            Eigen::VectorXd::Zero(2),
                                            Eigen::MatrixXd::Identity(2, 2));
  CudaSamplerOptions ancestral;
  ancestral.predictor = CudaPredictor::kAncestral;
  EXPECT_THAT([&] { subvp.Sample(10, ancestral); },
              ThrowsMessage<InvalidArgument>(HasSubstr("ancestral")));
}

}  // namespace
}  // namespace scoresde
