// scoresde train: fit an MLP score model to data by score matching and write it as a safetensors
// model file (scoring/trainer.hpp). The file's metadata names its SDE, so `scoresde sample
// --score MODEL.safetensors` and `scoresde likelihood --score ...` need no SDE flags.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "scoresde/scoring/array_io.hpp"
#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/trainer.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/verification/problem.hpp"

namespace scoresde::cli {

namespace {

struct TrainFlags {
  std::string data;
  std::string dataset;
  std::string problem;
  int64_t max_examples = -1;
  SdeFlags sde;
  int width = 128;
  int depth = 3;
  int embed_dim = 32;
  double fourier_scale = 1.0;
  bool residual = true;
  std::string param = "noise";
  std::string data_std = "auto";
  std::string loss = "dsm";
  std::string weighting = "sigma2";
  bool importance = false;
  std::string projection = "rademacher";
  int64_t steps = 2000;
  int64_t batch = 256;
  int block = 128;
  double lr = 1e-3;
  int64_t warmup = 100;
  double ema = 0.999;
  double clip = 1.0;
  double weight_decay = 0.0;
  std::string precision = "float32";
  int threads = 1;
  uint64_t seed = 0;
  std::string out;
  std::string resume;
  int64_t eval_every = 0;
  int64_t checkpoint_every = 0;
  int64_t log_every = 100;
  bool json = false;
};

// The training data named by exactly one of --data, --dataset, --problem.
std::shared_ptr<const DataSource> MakeData(const TrainFlags& f) {
  const int given = !f.data.empty() + !f.dataset.empty() + !f.problem.empty();
  if (given != 1) {
    throw InvalidArgument("train: give exactly one of --data FILE, --dataset NAME, --problem FILE");
  }
  if (!f.data.empty()) {
    Matrix x = ReadArray(f.data);
    if (f.max_examples > 0 && x.cols() > f.max_examples) x.conservativeResize(x.rows(), f.max_examples);
    return std::make_shared<ArrayDataSource>(std::move(x), f.seed,
                                             std::filesystem::path(f.data).filename().string());
  }
  if (!f.dataset.empty()) {
    if (f.dataset == "fashion-mnist") {
      const std::string path = std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz";
      if (!std::filesystem::exists(path)) throw Error(std::string("train: ") + kFashionMnistHint);
      return std::make_shared<ArrayDataSource>(ReadIdxImages(path, f.max_examples), f.seed,
                                               "fashion-mnist train images / 255");
    }
    return std::make_shared<Toy2dDataSource>(ParseToy2d(f.dataset), f.seed);
  }
  auto problem = std::make_shared<Problem>(LoadProblem(f.problem));
  if (!problem->mixture) {
    throw InvalidArgument("train: --problem " + f.problem +
                          " is a lognormal problem; training supports Gaussian and mixture data");
  }
  const uint64_t seed = f.seed;
  return std::make_shared<CallbackDataSource>(
      problem->dim(),
      [problem, seed](int64_t first, BatchRef out) {
        problem->mixture->Sample(NoiseStream(seed, Stream::kData), first, out);
      },
      std::filesystem::path(f.problem).filename().string() + " (seed " + std::to_string(seed) + ")");
}

// The overall std of the data (all coordinates pooled), from its first 10000 examples.
double EstimateDataStd(const DataSource& data) {
  Matrix x(data.dim(), 10000);
  data.Fill(0, x);
  const double mean = x.mean();
  const double var = (x.array() - mean).square().sum() / static_cast<double>(x.size() - 1);
  return var > 0.0 ? std::sqrt(var) : 1.0;
}

// The batch size recorded in a checkpoint's training metadata.
int64_t stored_batch(const ModelCheckpoint& ck) {
  LossOptions loss;
  AdamOptions adam;
  TrainerOptions options;
  TrainingFromDescription(ck.training, &loss, &adam, &options);
  return options.batch_size;
}

template <typename Scalar>
TrainSummary Run(const TrainFlags& f, CLI::App* command, const DataSource& data,
                 ModelCheckpoint* result) {
  TrainerOptions options;
  options.num_steps = f.steps;
  options.batch_size = f.batch;
  options.block_size = f.block;
  options.num_threads = f.threads;
  options.seed = f.seed;
  options.eval_every = f.eval_every;
  options.checkpoint_every = f.checkpoint_every;
  options.checkpoint_path = f.out;
  options.log_every = f.log_every;
  std::unique_ptr<Trainer<Scalar>> trainer;
  if (!f.resume.empty()) {
    const ModelCheckpoint ck = LoadCheckpoint(f.resume);
    if (ck.float32 != std::is_same_v<Scalar, float>) {
      throw InvalidArgument("train --resume: the checkpoint is " +
                            std::string(ck.float32 ? "float32" : "float64") +
                            "; pass the same --precision");
    }
    LossOptions loss;
    AdamOptions adam;
    TrainerOptions stored;
    TrainingFromDescription(ck.training.empty() ? "{}" : ck.training, &loss, &adam, &stored);
    // Settings that fix the random draws come from the checkpoint unless given explicitly (then
    // the Trainer checks that they agree).
    if (command->count("--batch") == 0) options.batch_size = stored.batch_size;
    if (command->count("--block") == 0) options.block_size = stored.block_size;
    if (command->count("--seed") == 0) options.seed = stored.seed;
    trainer = std::make_unique<Trainer<Scalar>>(ck, options);
    if (ck.config.dim != data.dim()) {
      throw InvalidArgument("train --resume: the data has dimension " + std::to_string(data.dim()) +
                            " but the model " + std::to_string(ck.config.dim));
    }
  } else {
    const SdeChoice choice = MakeSde(f.sde, data.dim(), 1e-5);
    auto sde = std::dynamic_pointer_cast<const ScalarAffineSde>(choice.sde);
    if (!sde) throw InvalidArgument("train: --sde must be ve, vp or subvp");
    MlpConfig model;
    model.dim = data.dim();
    model.width = f.width;
    model.depth = f.depth;
    model.embed_dim = f.embed_dim;
    model.fourier_scale = f.fourier_scale;
    model.residual = f.residual;
    model.parameterization = ParseParameterization(f.param);
    if (f.data_std == "auto") {
      model.data_std = EstimateDataStd(data);
    } else {
      try {
        size_t used = 0;
        model.data_std = std::stod(f.data_std, &used);
        if (used != f.data_std.size()) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        throw InvalidArgument("--data-std = '" + f.data_std + "'; must be auto or a number");
      }
    }
    LossOptions loss;
    loss.kind = ParseLossKind(f.loss);
    loss.weighting = ParseWeighting(f.weighting);
    loss.importance_sampling = f.importance;
    loss.projection = ParseProjectionKind(f.projection);
    loss.eps = choice.eps;
    loss.num_scales = choice.steps;
    AdamOptions adam;
    adam.learning_rate = f.lr;
    adam.warmup_steps = f.warmup;
    adam.ema_decay = f.ema;
    adam.clip_norm = f.clip;
    adam.weight_decay = f.weight_decay;
    trainer = std::make_unique<Trainer<Scalar>>(sde, model, loss, adam, options);
  }
  const TrainSummary summary = trainer->Train(data);
  *result = trainer->MakeCheckpoint(data.Describe());
  return summary;
}

}  // namespace

void AddTrainCommand(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* command = app.add_subcommand(
      "train",
      "Train an MLP score model by score matching and write it as MODEL.safetensors");
  command->add_option("--data", flags->data, "Training data: .npy or .csv, one example per row");
  command->add_option("--dataset", flags->dataset,
                      "Built-in data: swiss-roll, two-moons, eight-gaussians, checkerboard, "
                      "circles, pinwheel, fashion-mnist (Debian's dataset-fashion-mnist)");
  command->add_option("--problem", flags->problem, "Gaussian or mixture problem file (JSON)");
  command->add_option("--max-examples", flags->max_examples,
                      "Use at most this many examples of --data or fashion-mnist");
  AddSdeFlags(command, &flags->sde);
  command->add_option("--width", flags->width, "Hidden width H")->capture_default_str();
  command->add_option("--depth", flags->depth, "Number of SiLU layers L")->capture_default_str();
  command->add_option("--embed-dim", flags->embed_dim, "Fourier features E (even)")
      ->capture_default_str();
  command->add_option("--fourier-scale", flags->fourier_scale, "Std of the Fourier frequencies")
      ->capture_default_str();
  command->add_flag("--residual,!--no-residual", flags->residual,
                    "Residual connections around hidden layers (default on)");
  command->add_option("--param", flags->param, "Parameterization: score, noise or denoiser")
      ->check(CLI::IsMember({"score", "noise", "denoiser"}))
      ->capture_default_str();
  command->add_option("--data-std", flags->data_std,
                      "σ_d for input scaling and the denoiser (auto: estimated from the data)")
      ->capture_default_str();
  command->add_option("--loss", flags->loss, "dsm, ssm, ssm-vr, esm, ddpm or ncsn")
      ->check(CLI::IsMember({"dsm", "ssm", "ssm-vr", "esm", "ddpm", "ncsn"}))
      ->capture_default_str();
  command->add_option("--weighting", flags->weighting, "λ(t): sigma2 (σ_t²) or g2 (likelihood)")
      ->check(CLI::IsMember({"sigma2", "g2"}))
      ->capture_default_str();
  command->add_flag("--importance", flags->importance,
                    "Importance-sample t ∝ g²/σ² (with --weighting g2)");
  command->add_option("--projection", flags->projection,
                      "Sliced score matching projections: rademacher or gaussian")
      ->check(CLI::IsMember({"rademacher", "gaussian"}))
      ->capture_default_str();
  command->add_option("--steps", flags->steps, "Total training steps")->capture_default_str();
  command->add_option("--batch", flags->batch, "Batch size")->capture_default_str();
  command->add_option("--block", flags->block,
                      "Columns per gradient block (results depend on it, not on --threads)")
      ->capture_default_str();
  command->add_option("--lr", flags->lr, "Adam learning rate")->capture_default_str();
  command->add_option("--warmup", flags->warmup, "Linear learning-rate warm-up steps")
      ->capture_default_str();
  command->add_option("--ema", flags->ema, "EMA decay of the weights used for sampling")
      ->capture_default_str();
  command->add_option("--clip", flags->clip, "Global gradient-norm clipping (0: off)")
      ->capture_default_str();
  command->add_option("--weight-decay", flags->weight_decay, "AdamW weight decay")
      ->capture_default_str();
  command->add_option("--precision", flags->precision, "float32 or float64")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->capture_default_str();
  command->add_option("--threads", flags->threads, "Worker threads")->capture_default_str();
  command->add_option("--seed", flags->seed, "Seed of initialization, loss noise and data order")
      ->capture_default_str();
  command->add_option("--out", flags->out, "Model file to write (.safetensors)")->required();
  command->add_option("--resume", flags->resume,
                      "Continue a model file written by train (exactly: same data flags)");
  command->add_option("--eval-every", flags->eval_every, "Evaluate the EMA loss every N steps")
      ->capture_default_str();
  command->add_option("--checkpoint-every", flags->checkpoint_every,
                      "Write --out every N steps (always at the end)")
      ->capture_default_str();
  command->add_option("--log-every", flags->log_every, "Log interval in steps")
      ->capture_default_str();
  command->add_flag("--json", flags->json, "Print a JSON summary on stdout");
  command->callback([flags, command] {
    const TrainFlags& f = *flags;
    const auto data = MakeData(f);
    if (!f.resume.empty()) {
      const ModelCheckpoint ck = LoadCheckpoint(f.resume);
      LossOptions loss;
      AdamOptions adam;
      TrainerOptions stored;
      if (!ck.training.empty()) {
        TrainingFromDescription(ck.training, &loss, &adam, &stored);
        const std::string stored_data =
            nlohmann::json::parse(ck.training).value("data", std::string());
        if (!stored_data.empty() && stored_data != data->Describe()) {
          throw InvalidArgument("train --resume: the model was trained on '" + stored_data +
                                "' but the data now is '" + data->Describe() +
                                "'; pass the same data flags and --seed");
        }
      }
    }
    ModelCheckpoint result;
    const TrainSummary summary = f.precision == "float32"
                                     ? Run<float>(f, command, *data, &result)
                                     : Run<double>(f, command, *data, &result);
    if (f.json) {
      nlohmann::json j = {
          {"out", f.out},
          {"steps", summary.steps},
          {"first_step", summary.first_step},
          {"final_loss", summary.final_loss},
          {"seconds", summary.seconds},
          {"steps_per_second", summary.steps_per_second},
          // Network evaluations in this run: one forward pass per example and step.
          {"nfe", (summary.steps - summary.first_step) * stored_batch(result)},
          {"parameters", result.parameters.size()},
          {"data", data->Describe()},
          {"sde", nlohmann::json::parse(DescribeSde(*result.sde))},
          {"model", nlohmann::json::parse(DescribeMlp(result.config))}};
      j["final_eval_loss"] = std::isnan(summary.final_eval_loss)
                                 ? nlohmann::json(nullptr)
                                 : nlohmann::json(summary.final_eval_loss);
      nlohmann::json losses = nlohmann::json::array();
      for (const auto& [k, l] : summary.losses) losses.push_back({k, l});
      j["losses"] = losses;
      PrintJson(j);
    } else {
      std::cerr << "train: " << summary.steps << " steps, final loss " << summary.final_loss
                << ", " << summary.seconds << " s; wrote " << f.out << "\n";
    }
  });
}

}  // namespace scoresde::cli
