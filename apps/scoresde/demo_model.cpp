// The learned part of `scoresde demo`: data, training, sampling, held-out likelihood and the score
// field (demo.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include "demo.hpp"
#include "scoresde/scoring/array_io.hpp"
#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/trainer.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/likelihood.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde::cli {
namespace {

// Directions of the sliced Wasserstein distances (256: the distance's projection noise is then a
// few percent of its value for these sample sizes).
constexpr int kProjections = 256;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The columns x0, x1, ... of a d × n batch as a table.
CsvTable PointsTable(const Batch& x) {
  std::vector<std::string> columns;
  for (Eigen::Index i = 0; i < x.rows(); ++i) columns.push_back("x" + std::to_string(i));
  CsvTable table(columns);
  std::vector<nlohmann::json> row(x.rows());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    for (Eigen::Index i = 0; i < x.rows(); ++i) row[i] = x(i, j);
    table.AddRow(row);
  }
  return table;
}

// The pooled standard deviation of all coordinates of the first 10000 examples (the network's
// input scale σ_d, as `scoresde train --data-std auto` estimates it).
double PooledStd(const DataSource& data) {
  Matrix x(data.dim(), 10000);
  data.Fill(0, x);
  const double mean = x.mean();
  const double var = (x.array() - mean).square().sum() / static_cast<double>(x.size() - 1);
  return var > 0.0 ? std::sqrt(var) : 1.0;
}

}  // namespace

DemoData LoadDemoData(const DemoOptions& o) {
  DemoData data;
  const int64_t n = o.num_heldout;
  if (!o.problem.empty()) {
    auto problem = std::make_shared<Problem>(LoadProblem(o.problem));
    Require(problem->mixture.has_value(), "scoresde demo", "--problem", std::string_view(o.problem),
            "a Gaussian or mixture problem (a lognormal problem has no model to train)");
    const uint64_t seed = o.seed;
    data.description = std::filesystem::path(o.problem).filename().string();
    data.train = std::make_shared<CallbackDataSource>(
        problem->dim(),
        [problem, seed](int64_t first, BatchRef out) {
          problem->mixture->Sample(NoiseStream(seed, Stream::kData), first, out);
        },
        data.description + " (seed " + std::to_string(seed) + ")");
    data.heldout.resize(problem->dim(), n);
    problem->mixture->Sample(NoiseStream(seed + 1, Stream::kData), 0, data.heldout);
    data.reference.resize(problem->dim(), n);
    data.train->Fill(0, data.reference);
    data.problem = *problem;
  } else if (!o.data.empty()) {
    const Matrix all = ReadArray(o.data);
    const int64_t total = all.cols();
    Require(total >= 20, "scoresde demo", "--data rows", total, ">= 20");
    // The last fifth of a seeded permutation is held out (at most num_heldout rows).
    const int64_t held = std::min<int64_t>(n, total / 5);
    const std::vector<int64_t> order = ArrayDataSource(all, o.seed).EpochPermutation(0);
    Matrix train(all.rows(), total - held);
    data.heldout.resize(all.rows(), held);
    for (int64_t j = 0; j < total - held; ++j) train.col(j) = all.col(order[j]);
    for (int64_t j = 0; j < held; ++j) data.heldout.col(j) = all.col(order[total - held + j]);
    data.reference = train.leftCols(std::min<int64_t>(held, train.cols()));
    data.description = std::filesystem::path(o.data).filename().string();
    data.train = std::make_shared<ArrayDataSource>(
        std::move(train), o.seed, data.description + " (" + std::to_string(total - held) + " rows)");
  } else {
    const Toy2d set = ParseToy2d(o.dataset);
    data.description = std::string(ToString(set));
    data.train = std::make_shared<Toy2dDataSource>(set, o.seed);
    data.heldout.resize(2, n);
    SampleToy2d(set, o.seed + 1, 0, data.heldout);
    data.reference.resize(2, n);
    SampleToy2d(set, o.seed, 0, data.reference);
  }
  return data;
}

nlohmann::json TrainSection(const DemoOptions& o, const DemoData& data, const ReportFolder& folder,
                            const DemoLog& log, TrainedModel* model) {
  const int d = data.train->dim();
  const SdeChoice choice = MakeSde(o.sde, d, /*default_eps=*/1e-3);
  auto sde = std::dynamic_pointer_cast<const ScalarAffineSde>(choice.sde);
  Require(sde != nullptr, "scoresde demo", "--sde", std::string_view(o.sde.name), "ve, vp or subvp");

  MlpConfig config;
  config.dim = d;
  config.width = o.width;
  config.depth = o.depth;
  config.parameterization = Parameterization::kNoise;
  config.data_std = PooledStd(*data.train);
  LossOptions loss;  // denoising score matching, λ = σ_t², t ~ U(1e-5, T)
  AdamOptions adam;  // the CLI's defaults for small problems (docs/training.md)
  adam.learning_rate = 2e-3;
  adam.warmup_steps = 100;
  adam.ema_decay = 0.999;
  adam.clip_norm = 1.0;
  TrainerOptions options;
  options.num_steps = o.train_steps;
  options.batch_size = o.batch;
  options.num_threads = o.threads;
  options.seed = o.seed;
  options.log_every = std::max<int64_t>(1, o.train_steps / 100);
  options.eval_every = std::max<int64_t>(1, o.train_steps / 20);
  options.eval_size = 1024;
  options.progress = ProgressStyle::kAuto;

  log("training an MLP score model (" + std::to_string(o.width) + " wide, " +
      std::to_string(o.depth) + " SiLU layers) for " + std::to_string(o.train_steps) + " steps");
  Trainer<float> trainer(sde, config, loss, adam, options);
  const TrainSummary summary = trainer.Train(*data.train);
  const ModelCheckpoint checkpoint = trainer.MakeCheckpoint(data.train->Describe());
  SaveCheckpoint(folder.File("model.safetensors"), checkpoint);

  CsvTable table({"step", "kind", "loss"});
  for (const auto& [step, value] : summary.losses) table.AddRow({step, "batch", value});
  for (const auto& [step, value] : summary.eval_losses) table.AddRow({step, "eval", value});
  folder.WriteCsv("training_loss.csv", table);

  model->sde = sde;
  model->score = trainer.MakeScore(/*use_ema=*/true);
  model->sampling_eps = choice.eps;
  return {{"data", data.train->Describe()},
          {"dim", d},
          {"sde", nlohmann::json::parse(DescribeSde(*sde))},
          {"model", nlohmann::json::parse(DescribeMlp(config))},
          {"parameters", trainer.network().num_parameters()},
          {"loss", "denoising score matching, weight sigma_t^2, t ~ U(1e-5, T)"},
          {"optimizer", {{"lr", adam.learning_rate}, {"warmup", adam.warmup_steps},
                         {"ema", adam.ema_decay}, {"clip", adam.clip_norm}}},
          {"steps", summary.steps},
          {"batch", o.batch},
          {"final_loss", summary.final_loss},
          {"final_eval_loss", summary.final_eval_loss},
          {"seconds", summary.seconds},
          {"steps_per_second", summary.steps_per_second},
          {"model_file", "model.safetensors"},
          {"loss_file", "training_loss.csv"}};
}

nlohmann::json SamplingSection(const DemoOptions& o, const DemoData& data,
                               const TrainedModel& model, const ReportFolder& folder,
                               const DemoLog& log) {
  const Sde& sde = *model.sde;
  const ScoreModel& score = *model.score;
  const int n_steps = o.steps;
  struct Spec {
    std::string name, label, predictor, corrector;
    int steps;
  };
  // Predictor-only with 2N steps, PC with N levels and corrector-only with 2N steps all cost 2N
  // score evaluations per sample: the paper's Table 1 comparison at equal cost.
  const std::vector<Spec> specs = {
      {"em", "Euler-Maruyama, P" + std::to_string(n_steps), "euler-maruyama", "none", n_steps},
      {"rd", "reverse diffusion, P" + std::to_string(2 * n_steps), "reverse-diffusion", "none",
       2 * n_steps},
      {"pc", "reverse diffusion + Langevin, PC" + std::to_string(n_steps), "reverse-diffusion",
       "langevin", n_steps},
      {"c", "Langevin only, C" + std::to_string(2 * n_steps), "none", "langevin", 2 * n_steps},
  };

  folder.WriteCsv("data_heldout.csv", PointsTable(data.heldout));
  const double floor = SlicedWasserstein(data.reference, data.heldout, kProjections, o.seed);
  nlohmann::json samplers = nlohmann::json::array();
  int64_t total_nfe = 0;
  for (const Spec& spec : specs) {
    log("sampling " + std::to_string(o.num_samples) + " points: " + spec.label);
    const auto predictor = MakePredictor(spec.predictor);
    const auto corrector = MakeCorrector(spec.corrector);
    PcSampler::Options options;
    options.num_steps = spec.steps;
    options.eps = model.sampling_eps;
    options.corrector_steps = 1;
    options.snr = 0.16;
    options.seed = o.seed;
    options.num_threads = o.threads;
    const auto start = std::chrono::steady_clock::now();
    const PcSampler sampler(sde, score, *predictor, *corrector, options);
    const SampleResult result = sampler.Sample(o.num_samples);
    const double seconds = Seconds(start);
    const std::string file = "samples_" + spec.name + ".csv";
    folder.WriteCsv(file, PointsTable(result.x));
    const int64_t nfe = result.summary.nfe;
    total_nfe += nfe;
    samplers.push_back({{"name", spec.name},
                        {"label", spec.label},
                        {"predictor", spec.predictor},
                        {"corrector", spec.corrector},
                        {"steps", spec.steps},
                        {"nfe", nfe},
                        // The Langevin step rule's E||s||^2 pilot: a fixed batch run once.
                        {"pilot_samples", sampler.pilot_summary().ok() ? options.pilot_size : 0},
                        {"seconds", seconds},
                        {"sliced_w2", SlicedWasserstein(result.x, data.heldout, kProjections,
                                                        o.seed)},
                        {"file", file}});
  }

  log("sampling " + std::to_string(o.num_samples) + " points: probability flow (RK45)");
  OdeOptions ode;
  ode.method = OdeMethod::kDopri5;
  ode.rtol = ode.atol = 1e-5;
  ode.num_threads = o.threads;
  const auto start = std::chrono::steady_clock::now();
  const ProbabilityFlow flow(sde, score, ode);
  Batch latent(sde.dim(), o.num_samples);
  model.sde->SamplePrior(NoiseStream(o.seed, Stream::kPrior), 0, latent);
  const OdeSolution solution = flow.Decode(latent, model.sampling_eps);
  const double seconds = Seconds(start);
  folder.WriteCsv("samples_ode.csv", PointsTable(solution.y));
  total_nfe += solution.summary.nfe;
  samplers.push_back(
      {{"name", "ode"},
       {"label", "probability flow, RK45 (rtol = atol = 1e-5)"},
       {"predictor", "dopri5"},
       {"corrector", "none"},
       {"steps", solution.summary.accepted_steps},
       {"nfe", solution.summary.nfe},
       {"seconds", seconds},
       {"sliced_w2", SlicedWasserstein(solution.y, data.heldout, kProjections, o.seed)},
       {"file", "samples_ode.csv"}});

  folder.WriteJson("samples.json", {{"samplers", samplers}, {"floor", floor}});
  return {{"samplers", samplers},
          {"num_samples", o.num_samples},
          {"num_heldout", data.heldout.cols()},
          {"eps", model.sampling_eps},
          {"snr", 0.16},
          {"projections", kProjections},
          {"floor", floor},
          {"nfe", total_nfe},
          {"heldout_file", "data_heldout.csv"}};
}

nlohmann::json LikelihoodSection(const DemoOptions& o, const DemoData& data,
                                 const TrainedModel& model, const ReportFolder& folder,
                                 const DemoLog& log) {
  const int d = model.sde->dim();
  const int64_t n = std::min<int64_t>(o.likelihood_points, data.heldout.cols());
  const Batch x = data.heldout.leftCols(n);
  LikelihoodOptions options;
  options.ode.method = OdeMethod::kDopri5;
  options.ode.rtol = options.ode.atol = 1e-5;  // the paper's likelihood settings
  options.ode.num_threads = o.threads;
  options.eps = 1e-5;
  options.seed = o.seed;

  log("held-out log-likelihood of " + std::to_string(n) +
      " points through the probability flow (exact divergence)");
  auto start = std::chrono::steady_clock::now();
  const LikelihoodResult exact = LikelihoodEstimator(*model.sde, *model.score, options).Compute(x);
  const double exact_seconds = Seconds(start);

  log("held-out log-likelihood: Hutchinson estimator (one Rademacher probe per point)");
  options.divergence = DivergenceEstimator::kHutchinsonRademacher;
  options.num_probes = 1;
  start = std::chrono::steady_clock::now();
  const LikelihoodResult hutchinson =
      LikelihoodEstimator(*model.sde, *model.score, options).Compute(x);
  const double hutchinson_seconds = Seconds(start);

  // The Hutchinson estimate is unbiased for every point, so the per-point differences have mean
  // zero up to the two solves' tolerance-level errors (1e-5 relative, far below the estimator's
  // spread): |mean| ≤ 5 standard errors of the mean holds with probability 1 − 6e-7.
  const RowVector diff = hutchinson.logp - exact.logp;
  const double diff_mean = diff.mean();
  const double diff_se =
      std::sqrt((diff.array() - diff_mean).square().sum() / std::max<double>(1.0, n - 1.0) /
                static_cast<double>(n));
  const double z = diff_se > 0.0 ? std::abs(diff_mean) / diff_se : 0.0;

  const double nats_to_bits = 1.0 / (d * std::numbers::ln2);
  std::vector<std::string> columns = {"index", "logp_exact", "logp_hutchinson", "bpd_exact"};
  RowVector truth;
  if (data.problem) {
    truth.resize(n);
    data.problem->mixture->LogDensity(x, truth);
    columns.push_back("logp_true");
  }
  CsvTable table(columns);
  for (int64_t j = 0; j < n; ++j) {
    std::vector<nlohmann::json> row = {j, exact.logp(j), hutchinson.logp(j),
                                       -exact.logp(j) * nats_to_bits};
    if (data.problem) row.push_back(truth(j));
    table.AddRow(row);
  }
  folder.WriteCsv("likelihood_heldout.csv", table);

  const auto mean_nfe = [](const IndexRowVector& nfe) {
    return nfe.size() ? static_cast<double>(nfe.sum()) / static_cast<double>(nfe.size()) : 0.0;
  };
  nlohmann::json result = {
      {"points", n},
      {"dim", d},
      {"eps", options.eps},
      {"rtol", 1e-5},
      {"atol", 1e-5},
      {"exact", {{"bpd", exact.mean_bits_per_dim},
                 {"nll_nats", -exact.logp.mean()},
                 {"nfe", mean_nfe(exact.nfe)},
                 {"seconds", exact_seconds}}},
      {"hutchinson", {{"bpd", hutchinson.mean_bits_per_dim},
                      {"nll_nats", -hutchinson.logp.mean()},
                      {"nfe", mean_nfe(hutchinson.nfe)},
                      {"seconds", hutchinson_seconds},
                      {"probes", 1}}},
      {"hutchinson_minus_exact", {{"mean", diff_mean}, {"standard_error", diff_se}}},
      {"checks", nlohmann::json::array(
                     {{{"check", "Hutchinson unbiased: |mean(logp_H - logp_exact)| / SE"},
                       {"value", z},
                       {"tolerance", 5.0},
                       {"passed", z <= 5.0}}})},
      {"file", "likelihood_heldout.csv"}};
  if (data.problem) {
    // Cross-entropy ≥ entropy: no model can beat the data law's own log-density on average.
    result["true_law"] = {{"bpd", -truth.mean() * nats_to_bits}, {"nll_nats", -truth.mean()}};
  }
  return result;
}

nlohmann::json ScoreFieldSection(const DemoOptions& o, const DemoData& data,
                                 const TrainedModel& model, const ReportFolder& folder) {
  (void)o;
  if (model.sde->dim() != 2) return {{"skipped", "the score field is drawn for 2-D data only"}};
  // A square grid over the held-out data's range with a 10% margin.
  const Vector lo = data.heldout.rowwise().minCoeff();
  const Vector hi = data.heldout.rowwise().maxCoeff();
  const Vector center = 0.5 * (lo + hi);
  const double half = 0.55 * (hi - lo).maxCoeff();
  constexpr int kGrid = 25;
  const double t_final = model.sde->t_final();
  const std::vector<double> times = {0.01 * t_final, 0.05 * t_final, 0.2 * t_final,
                                     0.6 * t_final};
  Batch x(2, kGrid * kGrid);
  for (int i = 0; i < kGrid; ++i) {
    for (int j = 0; j < kGrid; ++j) {
      x(0, i * kGrid + j) = center(0) - half + 2.0 * half * j / (kGrid - 1);
      x(1, i * kGrid + j) = center(1) - half + 2.0 * half * i / (kGrid - 1);
    }
  }
  CsvTable table({"t", "x0", "x1", "s0", "s1", "sigma_t"});
  Batch s(2, x.cols());
  for (double t : times) {
    model.score->Evaluate(x, RowVector::Constant(x.cols(), t), s);
    const double sigma = model.sde->MarginalStd(t);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      table.AddRow({t, x(0, j), x(1, j), s(0, j), s(1, j), sigma});
    }
  }
  folder.WriteCsv("score_field.csv", table);
  return {{"times", times}, {"grid", kGrid}, {"file", "score_field.csv"}};
}

}  // namespace scoresde::cli
