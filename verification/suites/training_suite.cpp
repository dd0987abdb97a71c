// Verification suite for score-model training (issue 5, design.md section 5 "Training"):
//   1. Every parameter gradient of every loss (and the network's Jacobian–vector products and
//      divergences) matches finite differences.
//   2. The DSM loss implementation matches its definition, and its excess over the exact score's
//      loss equals the weighted squared score error (Vincent 2011), within Monte-Carlo error.
//   3. A model trained on Gaussian data approaches the analytic score (relative L2 error over t).
//   4. Models trained on 2-D sets give PC and probability-flow samples whose sliced Wasserstein
//      distance to fresh data is bounded (fixed seeds; figures recorded in docs/training.md).
//   5. safetensors files written here load in Python's `safetensors` when it is installed.
//
// Finite differences: Ridders' extrapolation (Ridders 1982; Numerical Recipes §5.7): central
// differences at h, h/1.4, h/1.4², … extrapolated by Richardson's rule, which also returns an error
// estimate `err` (the difference between successive extrapolations; the method stops where the
// estimate starts to grow, i.e. where rounding takes over). The check is
//   |analytic − ridders| ≤ 4·err + ε_f (A + Φ/h),   ε_f = 64 k ε,
// with k = (L + 1)(H + d + E) the length of the longest chain of floating-point operations in a
// forward pass (Higham, "Accuracy and Stability", §3.1: a dot product of length n has relative
// error ≤ γ_n ≈ nε; L + 1 layers compose; 64 is a safety factor for the backward pass's extra
// operations). A bounds the analytic side's rounding: the sum over examples of the magnitudes of
// their gradient contributions (rounding is relative to the terms summed, not to their possibly
// cancelling total); Φ/h bounds the rounding of the differences: Φ the sum of |per-example
// value| and h the smallest step Ridders used. The factor 4 on err covers the estimate being an
// estimate of the error of the previous tableau entry.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/losses.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/scoring/trainer.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

constexpr double kEps = 2.220446049250313e-16;

struct Derivative {
  double value;
  double error;
  double smallest_step;
};

// Ridders' method for f'(0) with initial step h (Numerical Recipes dfridr, con = 1.4, 10 rows).
Derivative Ridders(const std::function<double(double)>& f, double h) {
  constexpr int kRows = 10;
  constexpr double kCon = 1.4, kCon2 = kCon * kCon, kSafe = 2.0;
  double a[kRows][kRows];
  a[0][0] = (f(h) - f(-h)) / (2.0 * h);
  Derivative best{a[0][0], 1e300, h};
  for (int i = 1; i < kRows; ++i) {
    h /= kCon;
    best.smallest_step = h;
    a[0][i] = (f(h) - f(-h)) / (2.0 * h);
    double fac = kCon2;
    for (int j = 1; j <= i; ++j) {
      a[j][i] = (a[j - 1][i] * fac - a[j - 1][i - 1]) / (fac - 1.0);
      fac *= kCon2;
      const double err = std::max(std::abs(a[j][i] - a[j - 1][i]), std::abs(a[j][i] - a[j - 1][i - 1]));
      if (err <= best.error) best = {a[j][i], err, h};
    }
    if (std::abs(a[i][i] - a[i - 1][i - 1]) >= kSafe * best.error) break;
  }
  return best;
}

MlpConfig TinyConfig(Parameterization p) {
  MlpConfig c;
  c.dim = 2;
  c.width = 6;
  c.depth = 3;
  c.embed_dim = 4;
  c.parameterization = p;
  c.data_std = 0.8;
  return c;
}

double ChainLength(const MlpConfig& c) {
  return (c.depth + 1.0) * (c.width + c.dim + c.embed_dim);
}

struct LossCase {
  const char* name;
  LossOptions options;
  std::shared_ptr<const ScalarAffineSde> sde;
};

std::vector<LossCase> AllLossCases() {
  VeSde::Options reference;
  reference.kernel = VeKernel::kReference;
  reference.sigma_max = 5.0;
  VeSde::Options exact;
  exact.sigma_max = 5.0;
  auto vp = std::make_shared<VpSde>(2);
  std::vector<LossCase> cases;
  LossOptions o;
  o.eps = 1e-2;
  cases.push_back({"dsm-sigma2-vp", o, vp});
  o.weighting = Weighting::kLikelihood;
  o.importance_sampling = true;
  cases.push_back({"dsm-g2-is-subvp", o, std::make_shared<SubVpSde>(2)});
  cases.push_back({"dsm-g2-is-ve", o, std::make_shared<VeSde>(2, exact)});
  o = LossOptions{};
  o.eps = 1e-2;
  o.kind = LossKind::kSsm;
  cases.push_back({"ssm-rademacher", o, vp});
  o.kind = LossKind::kSsmVr;
  o.projection = ProjectionKind::kGaussian;
  cases.push_back({"ssm-vr-gaussian", o, vp});
  o.kind = LossKind::kEsm;
  cases.push_back({"esm", o, std::make_shared<VeSde>(2, exact)});
  o = LossOptions{};
  o.kind = LossKind::kDdpm;
  o.num_scales = 100;
  cases.push_back({"ddpm", o, vp});
  o.kind = LossKind::kNcsn;
  cases.push_back({"ncsn", o, std::make_shared<VeSde>(2, reference)});
  return cases;
}

// ---- 1. Gradients, JVPs and divergences against finite differences -----------------------------

TEST(TrainingSuite, EveryLossGradientMatchesFiniteDifferences) {
  double worst_ratio = 0.0;
  for (const LossCase& lc : AllLossCases()) {
    for (Parameterization p :
         {Parameterization::kScore, Parameterization::kNoise, Parameterization::kDenoiser}) {
      const MlpConfig config = TinyConfig(p);
      const ScoreMatchingLoss loss(lc.sde, config, lc.options);
      const MlpNetwork<double> net(config, 17);
      const int batch = 5;
      Matrix x0(2, batch);
      NoiseStream(1, Stream::kData).FillNormal(0, 0, 0, x0);
      const NoiseStream noise(23, Stream::kTraining);
      MlpNetwork<double>::Workspace ws;
      Eigen::VectorXd grad = Eigen::VectorXd::Zero(net.num_parameters());
      loss.Block(net, x0, 0, batch, 4, noise, &ws, grad.data());
      // Per-example magnitudes (same draws: example j is position j of the batch).
      Eigen::VectorXd magnitude = Eigen::VectorXd::Zero(net.num_parameters());
      double phi = 0.0;
      for (int j = 0; j < batch; ++j) {
        Eigen::VectorXd gj = Eigen::VectorXd::Zero(net.num_parameters());
        phi += std::abs(loss.Block(net, Matrix(x0.col(j)), j, batch, 4, noise, &ws, gj.data())) / batch;
        magnitude += gj.cwiseAbs();
      }
      const double eps_f = 64.0 * ChainLength(config) * kEps;
      for (int64_t k = 0; k < net.num_parameters(); ++k) {
        auto objective = [&](double delta) {
          MlpNetwork<double> moved = net;
          moved.mutable_parameters()(k) += delta;
          MlpNetwork<double>::Workspace w;
          return loss.Block<double>(moved, x0, 0, batch, 4, noise, &w, nullptr) / batch;
        };
        const Derivative fd = Ridders(objective, 0.1 * std::max(1.0, std::abs(net.parameters()(k))));
        const double tol = 4.0 * fd.error + eps_f * (magnitude(k) + phi / fd.smallest_step);
        const double diff = std::abs(grad(k) - fd.value);
        worst_ratio = std::max(worst_ratio, diff / tol);
        ASSERT_LE(diff, tol) << lc.name << " " << ToString(p) << " parameter " << k
                             << ": analytic " << grad(k) << " fd " << fd.value;
      }
    }
  }
  std::printf("[training suite] loss gradients: worst |error| / tolerance = %.3g\n", worst_ratio);
}

TEST(TrainingSuite, JvpsAndDivergencesMatchFiniteDifferences) {
  double worst_ratio = 0.0;
  for (Parameterization p :
       {Parameterization::kScore, Parameterization::kNoise, Parameterization::kDenoiser}) {
    for (bool residual : {true, false}) {
      MlpConfig config = TinyConfig(p);
      config.dim = 3;
      config.residual = residual;
      auto sde = std::make_shared<VpSde>(3);
      const MlpScore score(std::make_shared<MlpNetwork<double>>(config, 5), sde);
      Batch x(3, 4), v(3, 4);
      NoiseStream(2, Stream::kData).FillNormal(0, 0, 0, x);
      NoiseStream(2, Stream::kData).FillNormal(0, 1, 0, v);
      const RowVector t = RowVector::LinSpaced(4, 0.05, 0.9);
      Batch s(3, 4), jv(3, 4);
      score.EvaluateWithJvp(x, t, v, s, jv);
      RowVector div(4);
      score.Divergence(x, t, div);
      const double floor_scale = 64.0 * ChainLength(config) * kEps;
      for (int j = 0; j < 4; ++j) {
        auto score_at = [&](const Vector& y, int i) {
          Batch out(3, 1);
          score.Evaluate(y, t.segment(j, 1), out);
          return out(i, 0);
        };
        double trace = 0.0, trace_error = 0.0;
        for (int i = 0; i < 3; ++i) {
          const Derivative along = Ridders(
              [&](double h) { return score_at(x.col(j) + h * v.col(j), i); }, 0.1);
          const double tol = 4.0 * along.error +
                             floor_scale * (std::abs(jv(i, j)) + s.col(j).norm() / along.smallest_step);
          worst_ratio = std::max(worst_ratio, std::abs(jv(i, j) - along.value) / tol);
          EXPECT_LE(std::abs(jv(i, j) - along.value), tol) << ToString(p) << " jvp " << i;
          const Derivative diag = Ridders(
              [&](double h) {
                Vector y = x.col(j);
                y(i) += h;
                return score_at(y, i);
              },
              0.1);
          trace += diag.value;
          trace_error += 4.0 * diag.error + floor_scale * s.col(j).norm() / diag.smallest_step;
        }
        const double tol = trace_error + floor_scale * std::abs(div(j));
        worst_ratio = std::max(worst_ratio, std::abs(div(j) - trace) / tol);
        EXPECT_LE(std::abs(div(j) - trace), tol) << ToString(p) << " divergence";
      }
    }
  }
  std::printf("[training suite] JVPs and divergences: worst |error| / tolerance = %.3g\n",
              worst_ratio);
}

// ---- 2. The DSM loss against its definition and the exact score ----------------------------------

// With x = α x_0 + σ z, E[−z/σ | x] = ∇ log p_t(x), so for any model
//   E[σ²‖s_θ + z/σ‖²] − E[σ²‖s* + z/σ‖²] = E[σ²‖s_θ − s*‖²]
// (the cross term 2σ²(s_θ − s*)ᵀ(s* + z/σ) has conditional mean 0 given x). Per example the
// difference of the two sides has mean 0; it is checked within 5 standard errors (fixed seed).
// The Block's value is also recomputed from the documented draws (u at substep 0, z at 1).
TEST(TrainingSuite, DsmExcessLossIsTheWeightedScoreError) {
  auto sde = std::make_shared<VpSde>(2);
  Vector mu(2);
  mu << 1.0, -0.5;
  Matrix cov(2, 2);
  cov << 0.5, 0.1, 0.1, 0.3;
  const GaussianMixtureScore exact(GaussianMixture::Gaussian(mu, cov), *sde);
  MlpConfig config = TinyConfig(Parameterization::kNoise);
  config.width = 16;
  const auto net = std::make_shared<MlpNetwork<double>>(config, 3);
  const MlpScore model(net, sde);
  LossOptions options;
  options.eps = 1e-3;
  const ScoreMatchingLoss loss(sde, config, options);
  const int n = 20000;
  Matrix x0(2, n), u(1, n), z(2, n);
  const Matrix l = cov.llt().matrixL();
  NoiseStream(4, Stream::kData).FillNormal(0, 0, 0, x0);
  x0 = (l * x0).colwise() + mu;
  const NoiseStream noise(8, Stream::kTraining);
  noise.FillUniform(0, 0, 0, u);
  noise.FillNormal(0, 1, 0, z);
  Batch x(2, n), s_model(2, n), s_exact(2, n);
  RowVector t(n), sigma(n);
  for (int j = 0; j < n; ++j) {
    t(j) = options.eps + (1.0 - options.eps) * u(0, j);
    sigma(j) = sde->MarginalStd(t(j));
    x.col(j) = sde->MeanCoefficient(t(j)) * x0.col(j) + sigma(j) * z.col(j);
  }
  model.Evaluate(x, t, s_model);
  exact.Evaluate(x, t, s_exact);
  double manual = 0.0, sum = 0.0, sum2 = 0.0;
  for (int j = 0; j < n; ++j) {
    const double lm = (sigma(j) * s_model.col(j) + z.col(j)).squaredNorm();
    const double le = (sigma(j) * s_exact.col(j) + z.col(j)).squaredNorm();
    const double err = sigma(j) * sigma(j) * (s_model.col(j) - s_exact.col(j)).squaredNorm();
    manual += lm;
    sum += lm - le - err;
    sum2 += (lm - le - err) * (lm - le - err);
  }
  MlpNetwork<double>::Workspace ws;
  const double block = loss.Block<double>(*net, x0, 0, n, 0, noise, &ws, nullptr);
  // Same operations on the same draws: rounding only (n terms of O(1), relative 1e-12).
  EXPECT_NEAR(block, manual, 1e-12 * n * std::max(1.0, manual / n));
  const double mean = sum / n;
  const double se = std::sqrt((sum2 / n - mean * mean) / (n - 1));
  std::printf("[training suite] DSM identity: mean difference %.3g, standard error %.3g\n", mean,
              se);
  EXPECT_LT(std::abs(mean), 5.0 * se);
}

// ---- 3. Trained on Gaussian data -------------------------------------------------------------

struct RelativeErrors {
  std::vector<double> times;
  std::vector<double> errors;  // sqrt(E‖s_θ − s*‖² / E‖s*‖²) over x ~ p_t
};

RelativeErrors MeasureRelativeErrors(const ScoreModel& model, const GaussianMixtureScore& exact,
                                     const std::vector<double>& times, int n) {
  RelativeErrors r;
  for (double time : times) {
    Batch x(model.dim(), n), s(model.dim(), n), s_star(model.dim(), n);
    exact.SampleMarginal(time, NoiseStream(77, Stream::kData), 0, x);
    const RowVector t = RowVector::Constant(n, time);
    model.Evaluate(x, t, s);
    exact.Evaluate(x, t, s_star);
    r.times.push_back(time);
    r.errors.push_back(std::sqrt((s - s_star).squaredNorm() / s_star.squaredNorm()));
  }
  return r;
}

// Acceptance level, not a derived bound (training error has no closed form): the mean relative
// L2 error over t ∈ {0.01, …, 1} must be below 8% (measured: 4.2%) and fall at least fourfold from
// the initial network's. The model: denoiser form, likelihood weighting with importance sampling
// (which puts the effort at small t, where σ_t²-weighted DSM leaves the score ~100% wrong at
// t = 0.01: docs/training.md has both). The per-t figures are printed and recorded there.
TEST(TrainingSuite, ModelTrainedOnGaussianApproachesTheAnalyticScore) {
  auto sde = std::make_shared<VpSde>(2);
  Vector mu(2);
  mu << 1.0, -0.5;
  Matrix cov(2, 2);
  cov << 0.5, 0.2, 0.2, 0.3;
  const GaussianMixture law = GaussianMixture::Gaussian(mu, cov);
  const GaussianMixtureScore exact(law, *sde);
  const CallbackDataSource data(
      2, [&](int64_t first, BatchRef out) { law.Sample(NoiseStream(5, Stream::kData), first, out); },
      "gaussian");
  MlpConfig config;
  config.width = 64;
  config.depth = 3;
  config.parameterization = Parameterization::kDenoiser;
  LossOptions loss;
  loss.weighting = Weighting::kLikelihood;
  loss.importance_sampling = true;
  AdamOptions adam;
  adam.learning_rate = 2e-3;
  adam.warmup_steps = 100;
  adam.ema_decay = 0.999;
  TrainerOptions options;
  options.num_steps = 3000;
  options.batch_size = 256;
  options.num_threads = 2;
  options.seed = 1;
  options.progress = ProgressStyle::kNone;
  Trainer<float> trainer(sde, config, loss, adam, options);
  const std::vector<double> times = {0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0};
  const RelativeErrors before = MeasureRelativeErrors(*trainer.MakeScore(false), exact, times, 4000);
  const TrainSummary summary = trainer.Train(data);
  const RelativeErrors after = MeasureRelativeErrors(*trainer.MakeScore(), exact, times, 4000);
  double mean_before = 0.0, mean_after = 0.0;
  std::printf("[training suite] Gaussian, VP, denoiser, g2 + IS, width 64, 3000 steps (%.2f s):\n",
              summary.seconds);
  for (size_t i = 0; i < times.size(); ++i) {
    std::printf("  t = %.2f  relative L2 error %.4f (initial %.3f)\n", times[i], after.errors[i],
                before.errors[i]);
    mean_before += before.errors[i] / times.size();
    mean_after += after.errors[i] / times.size();
  }
  std::printf("  mean %.4f (initial %.3f)\n", mean_after, mean_before);
  EXPECT_LT(mean_after, 0.08);
  EXPECT_LT(mean_after, 0.25 * mean_before);
}

// ---- 4. 2-D sets: PC and probability-flow samples ------------------------------------------------

struct SampleDistances {
  double pc, ode, floor;
};

SampleDistances TrainAndSample(Toy2d set, int64_t steps) {
  auto sde = std::make_shared<VpSde>(2);
  const Toy2dDataSource data(set, 0);
  MlpConfig config;
  config.width = 64;
  config.depth = 3;
  config.parameterization = Parameterization::kNoise;
  Batch probe(2, 10000);
  data.Fill(0, probe);
  config.data_std = std::sqrt((probe.array() - probe.mean()).square().mean());
  AdamOptions adam;
  adam.learning_rate = 2e-3;
  adam.warmup_steps = 100;
  adam.ema_decay = 0.999;
  TrainerOptions options;
  options.num_steps = steps;
  options.batch_size = 256;
  options.num_threads = 2;
  options.seed = 0;
  options.progress = ProgressStyle::kNone;
  Trainer<float> trainer(sde, config, LossOptions{}, adam, options);
  trainer.Train(data);
  const auto score = trainer.MakeScore();
  const int n = 2000;
  // Fresh data (a different seed), and a second fresh set for the noise floor of the distance.
  Batch fresh(2, n), fresh2(2, n);
  SampleToy2d(set, 1001, 0, fresh);
  SampleToy2d(set, 1002, 0, fresh2);
  const auto predictor = MakePredictor("reverse-diffusion");
  const auto corrector = MakeCorrector("langevin");
  PcSampler::Options pc;
  pc.num_steps = 200;
  pc.eps = 1e-3;
  pc.snr = 0.16;
  pc.seed = 3;
  pc.num_threads = 2;
  pc.pilot_size = 500;
  const PcSampler sampler(*sde, *score, *predictor, *corrector, pc);
  const SampleResult pc_samples = sampler.Sample(n);
  OdeOptions ode;
  ode.rtol = ode.atol = 1e-5;
  ode.num_threads = 2;
  const ProbabilityFlow flow(*sde, *score, ode);
  Batch prior(2, n);
  sde->SamplePrior(NoiseStream(4, Stream::kPrior), 0, prior);
  const OdeSolution decoded = flow.Integrate(prior, 1.0, 1e-3);
  SampleDistances d;
  d.pc = SlicedWasserstein(pc_samples.x, fresh, 256, 9);
  d.ode = SlicedWasserstein(decoded.y, fresh, 256, 9);
  d.floor = SlicedWasserstein(fresh2, fresh, 256, 9);
  std::printf("[training suite] %s (VP, noise form, width 64, %lld steps, PC N = 200): sliced W2 to fresh data: PC %.4f, "
              "ODE %.4f; data vs data %.4f (n = %d)\n",
              std::string(ToString(set)).c_str(), static_cast<long long>(steps), d.pc, d.ode,
              d.floor, n);
  return d;
}

// Acceptance level (not derived; see above): both samplers within 0.15 in sliced W2 of fresh
// data (measured 0.10–0.13), on sets whose scale is ~2–3; the two-sample floor (two independent
// data sets of n = 2000) is 0.06–0.07. Fixed seeds: the run is deterministic.
TEST(TrainingSuite, TwoDimensionalSetsSampleCloseToTheData) {
  for (Toy2d set : {Toy2d::kTwoMoons, Toy2d::kEightGaussians}) {
    const SampleDistances d = TrainAndSample(set, 6000);
    EXPECT_LT(d.pc, 0.15) << ToString(set);
    EXPECT_LT(d.ode, 0.15) << ToString(set);
  }
}

// ---- 5. Interoperability with Python's safetensors ------------------------------------------------

TEST(TrainingSuite, ModelFilesLoadInPythonSafetensors) {
  const char* python = "/usr/bin/python3";
  if (std::system((std::string(python) +
                   " -c 'import safetensors, numpy' > /dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "Python's safetensors is not installed";
  }
  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / "scoresde_interop.safetensors").string();
  ModelCheckpoint ck;
  ck.config = TinyConfig(Parameterization::kNoise);
  ck.sde = std::make_shared<VpSde>(2);
  const MlpNetwork<float> net(ck.config, 1);
  ck.parameters = net.parameters().cast<double>();
  ck.fourier = net.fourier_weights().cast<double>();
  SaveCheckpoint(path, ck);
  const std::string script =
      "from safetensors.numpy import load_file; from safetensors import safe_open; "
      "t = load_file('" + path + "'); "
      "assert t['input.weight'].shape == (6, 6), t['input.weight'].shape; "
      "assert abs(float(t['input.weight'][1, 2]) - " + std::to_string(net.parameters()(8)) +
      ") < 1e-6; "
      "f = safe_open('" + path + "', 'np'); assert f.metadata()['format'] == 'scoresde.mlp.v1'";
  EXPECT_EQ(std::system((std::string(python) + " -c \"" + script + "\"").c_str()), 0);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace scoresde
