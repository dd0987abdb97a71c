// scoresde bench: wall-time measurements of the two workloads users ask about first, on this
// machine and with its thread count, next to the floor that bounds them.
//
//   scoresde bench pc    [--dim 64] [--n 10000] [--steps 1000] [--snr 0.16] [--threads 1] [--json]
//   scoresde bench train [--width 128] [--batch 256] [--steps 200] [--threads 1] [--json]
//
// `pc` is the sampler comparison of docs/samplers.md: predictor–corrector sampling (reverse
// diffusion + Langevin) of a d-dimensional Gaussian with its exact score under VP. Every level
// draws two normals per coordinate (predictor and corrector), so generating them is a floor no
// implementation can beat; the report gives the time of drawing exactly those normals with the
// library's generator, and the ratio. `train` times denoising score-matching steps of the MLP on
// two moons (docs/training.md). Side-by-side comparisons with PyTorch are the scripts in
// benchmarks/; this command is for measuring a machine.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "cli_common.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/trainer.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde::cli {
namespace {

constexpr const char* kWhere = "scoresde bench";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct PcFlags {
  SdeFlags sde;
  int dim = 64;
  int64_t n = 10000;
  int steps = 1000;
  double snr = 0.16;
  int threads = 1;
  bool json = false;
};

void RunPc(const PcFlags& flags) {
  Require(flags.dim >= 1, kWhere, "--dim", flags.dim, ">= 1");
  Require(flags.n >= 1, kWhere, "--n", flags.n, ">= 1");
  Require(flags.steps >= 1, kWhere, "--steps", flags.steps, ">= 1");
  const SdeChoice choice = MakeSde(flags.sde, flags.dim, /*default_eps=*/1e-3);
  const auto* affine = dynamic_cast<const ScalarAffineSde*>(choice.sde.get());
  Require(affine != nullptr, kWhere, "--sde", std::string_view(flags.sde.name), "ve, vp or subvp");
  // N(0.5·1, diag(0.5 … 1.5)): a Gaussian whose exact score is cheap, as in the reference code.
  Vector variances = Vector::LinSpaced(flags.dim, 0.5, 1.5);
  const GaussianMixtureScore score(
      GaussianMixture::Gaussian(Vector::Constant(flags.dim, 0.5), variances.asDiagonal()), *affine);
  const auto predictor = MakePredictor("reverse-diffusion");
  const auto corrector = MakeCorrector("langevin");
  PcSampler::Options options;
  options.num_steps = flags.steps;
  options.eps = choice.eps;
  options.snr = flags.snr;
  options.num_threads = flags.threads;
  options.seed = 1;
  const PcSampler sampler(*choice.sde, score, *predictor, *corrector, options);
  const auto start = std::chrono::steady_clock::now();
  const SampleResult result = sampler.Sample(flags.n);
  const double seconds = SecondsSince(start);

  // The floor: the same number of normals (two per coordinate per level) from the same generator,
  // in cache-sized blocks on the same threads.
  const int64_t normals = 2 * int64_t{flags.steps} * flags.n * flags.dim;
  const NoiseStream noise(1, Stream::kPredictor);
  ExecutionContext context(flags.threads);
  constexpr int64_t kBlock = 256;
  const auto floor_start = std::chrono::steady_clock::now();
  context.ParallelFor(0, flags.n, kBlock, [&](int64_t begin, int64_t end) {
    Batch z(flags.dim, kBlock);
    for (int64_t first = begin; first < end; first += kBlock) {
      const int64_t cols = std::min(kBlock, end - first);
      for (int step = 0; step < flags.steps; ++step) {
        for (uint32_t substep = 0; substep < 2; ++substep) {
          noise.FillNormal(step, substep, first, z.leftCols(cols));
        }
      }
    }
  });
  const double floor_seconds = SecondsSince(floor_start);

  nlohmann::json json = {{"workload", "pc"},
                         {"sde", flags.sde.name},
                         {"dim", flags.dim},
                         {"samples", flags.n},
                         {"steps", flags.steps},
                         {"snr", flags.snr},
                         {"threads", flags.threads},
                         {"precision", "float64"},
                         {"nfe", result.summary.nfe},
                         {"seconds", seconds},
                         {"samples_per_second", static_cast<double>(flags.n) / seconds},
                         {"normals", normals},
                         {"normal_floor_seconds", floor_seconds},
                         {"normals_per_second", static_cast<double>(normals) / floor_seconds},
                         {"ratio_to_floor", seconds / floor_seconds},
                         {"status", ToString(result.summary.status)}};
  if (flags.json) {
    PrintJson(json);
    return;
  }
  std::cout << "PC sampling (reverse diffusion + Langevin, snr " << flags.snr << "), d = "
            << flags.dim << ", " << flags.n << " samples, " << flags.steps << " steps, "
            << flags.threads << " thread(s): " << seconds << " s\n"
            << "normal generation floor (" << normals << " normals): " << floor_seconds
            << " s; ratio " << seconds / floor_seconds << "\n";
}

struct TrainFlags {
  SdeFlags sde;
  int width = 128;
  int depth = 3;
  int64_t batch = 256;
  int64_t steps = 200;
  int threads = 1;
  bool json = false;
};

void RunTrain(const TrainFlags& flags) {
  Require(flags.steps >= 2, kWhere, "--steps", flags.steps, ">= 2");
  const SdeChoice choice = MakeSde(flags.sde, 2, /*default_eps=*/1e-3);
  auto sde = std::dynamic_pointer_cast<const ScalarAffineSde>(choice.sde);
  Require(sde != nullptr, kWhere, "--sde", std::string_view(flags.sde.name), "ve, vp or subvp");
  MlpConfig config;
  config.dim = 2;
  config.width = flags.width;
  config.depth = flags.depth;
  config.parameterization = Parameterization::kNoise;
  TrainerOptions options;
  options.num_steps = flags.steps;
  options.batch_size = flags.batch;
  options.num_threads = flags.threads;
  options.log_every = 0;
  options.progress = ProgressStyle::kNone;
  Trainer<float> trainer(sde, config, LossOptions{}, AdamOptions{}, options);
  const Toy2dDataSource data(Toy2d::kTwoMoons, 0);
  trainer.Step(data);  // the first step allocates; it is not timed
  const auto start = std::chrono::steady_clock::now();
  const TrainSummary summary = trainer.Train(data);
  const double seconds = SecondsSince(start);
  const int64_t timed = summary.steps - summary.first_step;
  const double rate = static_cast<double>(timed) / seconds;
  nlohmann::json json = {{"workload", "train"},
                         {"width", flags.width},
                         {"depth", flags.depth},
                         {"batch", flags.batch},
                         {"steps", timed},
                         {"threads", flags.threads},
                         {"precision", "float32"},
                         {"parameters", trainer.network().num_parameters()},
                         {"seconds", seconds},
                         {"steps_per_second", rate},
                         {"final_loss", summary.final_loss}};
  if (flags.json) {
    PrintJson(json);
    return;
  }
  std::cout << "DSM training, MLP width " << flags.width << ", depth " << flags.depth << ", batch "
            << flags.batch << ", " << flags.threads << " thread(s): " << rate << " steps/s\n";
}

}  // namespace

void AddBenchCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("bench", "Time a sampling or training workload");
  command->require_subcommand(1);

  auto pc = std::make_shared<PcFlags>();
  CLI::App* pc_command = command->add_subcommand(
      "pc", "Predictor-corrector sampling of a Gaussian with its exact score, against the floor "
            "set by normal generation");
  AddSdeFlags(pc_command, &pc->sde);
  pc_command->add_option("--dim", pc->dim, "Dimension d")->capture_default_str();
  pc_command->add_option("--n", pc->n, "Samples")->capture_default_str();
  pc_command->add_option("--steps", pc->steps, "Levels N")->capture_default_str();
  pc_command->add_option("--snr", pc->snr, "Langevin signal-to-noise ratio")->capture_default_str();
  pc_command->add_option("--threads", pc->threads, "Worker threads")->capture_default_str();
  pc_command->add_flag("--json", pc->json, "Print one JSON object");
  pc_command->callback([pc] { RunPc(*pc); });

  auto train = std::make_shared<TrainFlags>();
  CLI::App* train_command = command->add_subcommand(
      "train", "Denoising score-matching steps of the MLP on two moons");
  AddSdeFlags(train_command, &train->sde);
  train_command->add_option("--width", train->width, "Hidden width")->capture_default_str();
  train_command->add_option("--depth", train->depth, "SiLU layers")->capture_default_str();
  train_command->add_option("--batch", train->batch, "Batch size")->capture_default_str();
  train_command->add_option("--steps", train->steps, "Timed steps + 1")->capture_default_str();
  train_command->add_option("--threads", train->threads, "Worker threads")->capture_default_str();
  train_command->add_flag("--json", train->json, "Print one JSON object");
  train_command->callback([train] { RunTrain(*train); });
}

}  // namespace scoresde::cli
