#include "scoresde/scoring/trainer.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {

constexpr int kMaxGroups = 8;
// Evaluation draws its noise at this step (training steps stay below it).
constexpr uint64_t kEvaluationStep = (uint64_t{1} << 32) - 1;

}  // namespace

void TrainerOptions::Validate() const {
  constexpr const char* kWhere = "TrainerOptions";
  Require(num_steps >= 0 && num_steps <= (int64_t{1} << 31), kWhere, "num_steps", num_steps,
          "in [0, 2^31]");
  Require(batch_size >= 1 && batch_size <= (int64_t{1} << 20), kWhere, "batch_size", batch_size,
          "in [1, 2^20]");
  Require(num_threads >= 1 && num_threads <= 1024, kWhere, "num_threads", num_threads,
          "in [1, 1024]");
  Require(block_size >= 1 && block_size <= 65536, kWhere, "block_size", block_size,
          "in [1, 65536]");
  Require(log_every >= 0, kWhere, "log_every", log_every, ">= 0");
  Require(eval_every >= 0, kWhere, "eval_every", eval_every, ">= 0");
  Require(eval_size >= 1 && eval_size <= (int64_t{1} << 24), kWhere, "eval_size", eval_size,
          "in [1, 2^24]");
  Require(checkpoint_every >= 0, kWhere, "checkpoint_every", checkpoint_every, ">= 0");
  Require(checkpoint_every == 0 || !checkpoint_path.empty(), kWhere, "checkpoint_path",
          checkpoint_path, "set when checkpoint_every > 0");
}

std::string DescribeTraining(const LossOptions& loss, const AdamOptions& adam,
                             const TrainerOptions& options, const std::string& data_description) {
  nlohmann::ordered_json j = {
      {"loss",
       {{"kind", ToString(loss.kind)},
        {"weighting", ToString(loss.weighting)},
        {"importance_sampling", loss.importance_sampling},
        {"projection", ToString(loss.projection)},
        {"eps", loss.eps},
        {"num_scales", loss.num_scales}}},
      {"optimizer",
       {{"learning_rate", adam.learning_rate},
        {"beta1", adam.beta1},
        {"beta2", adam.beta2},
        {"epsilon", adam.epsilon},
        {"weight_decay", adam.weight_decay},
        {"decoupled_weight_decay", adam.decoupled_weight_decay},
        {"warmup_steps", adam.warmup_steps},
        {"clip_norm", adam.clip_norm},
        {"ema_decay", adam.ema_decay}}},
      {"trainer",
       {{"batch_size", options.batch_size},
        {"block_size", options.block_size},
        {"seed", options.seed},
        {"num_steps", options.num_steps}}},
      {"data", data_description}};
  return j.dump();
}

void TrainingFromDescription(std::string_view json, LossOptions* loss, AdamOptions* adam,
                             TrainerOptions* options) {
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    const auto& l = j.at("loss");
    loss->kind = ParseLossKind(l.at("kind").get<std::string>());
    loss->weighting = ParseWeighting(l.at("weighting").get<std::string>());
    loss->importance_sampling = l.at("importance_sampling").get<bool>();
    loss->projection = ParseProjectionKind(l.at("projection").get<std::string>());
    loss->eps = l.at("eps").get<double>();
    loss->num_scales = l.at("num_scales").get<int>();
    const auto& o = j.at("optimizer");
    adam->learning_rate = o.at("learning_rate").get<double>();
    adam->beta1 = o.at("beta1").get<double>();
    adam->beta2 = o.at("beta2").get<double>();
    adam->epsilon = o.at("epsilon").get<double>();
    adam->weight_decay = o.at("weight_decay").get<double>();
    adam->decoupled_weight_decay = o.at("decoupled_weight_decay").get<bool>();
    adam->warmup_steps = o.at("warmup_steps").get<int64_t>();
    adam->clip_norm = o.at("clip_norm").get<double>();
    adam->ema_decay = o.at("ema_decay").get<double>();
    const auto& t = j.at("trainer");
    options->batch_size = t.at("batch_size").get<int64_t>();
    options->block_size = t.at("block_size").get<int>();
    options->seed = t.at("seed").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string("training description: ") + e.what());
  }
  loss->Validate();
  adam->Validate();
}

template <typename Scalar>
Trainer<Scalar>::Trainer(std::shared_ptr<const ScalarAffineSde> sde, const MlpConfig& model,
                         const LossOptions& loss, const AdamOptions& adam,
                         const TrainerOptions& options)
    : sde_(std::move(sde)),
      model_(model),
      loss_options_(loss),
      adam_options_(adam),
      options_(options) {
  options_.Validate();
  model_.Validate();
  network_ = std::make_unique<MlpNetwork<Scalar>>(model_, options_.seed);
  optimizer_ = std::make_unique<AdamOptimizer<Scalar>>(network_->parameters(), adam_options_);
  Setup();
}

template <typename Scalar>
Trainer<Scalar>::Trainer(const ModelCheckpoint& ck, const TrainerOptions& options)
    : sde_(ck.sde), model_(ck.config), options_(options) {
  constexpr const char* kWhere = "Trainer (resume)";
  options_.Validate();
  Require(ck.float32 == std::is_same_v<Scalar, float>, kWhere, "checkpoint precision",
          std::string(ck.float32 ? "float32" : "float64"), "the trainer's precision");
  Require(!ck.training.empty() && ck.ema.size() > 0 && ck.adam_m.size() > 0, kWhere,
          "checkpoint", std::string("without optimizer state"),
          "a training checkpoint (with EMA, Adam moments and training metadata)");
  TrainerOptions stored = options_;
  TrainingFromDescription(ck.training, &loss_options_, &adam_options_, &stored);
  Require(stored.batch_size == options_.batch_size, kWhere, "batch_size", options_.batch_size,
          "the checkpoint's " + std::to_string(stored.batch_size) + " for an exact resume");
  Require(stored.block_size == options_.block_size, kWhere, "block_size", options_.block_size,
          "the checkpoint's " + std::to_string(stored.block_size) + " for an exact resume");
  Require(stored.seed == options_.seed, kWhere, "seed", static_cast<int64_t>(options_.seed),
          "the checkpoint's " + std::to_string(stored.seed) + " for an exact resume");
  using VectorS = typename MlpNetwork<Scalar>::VectorS;
  network_ = std::make_unique<MlpNetwork<Scalar>>(model_, ck.parameters.cast<Scalar>(),
                                                  ck.fourier.cast<Scalar>());
  optimizer_ = std::make_unique<AdamOptimizer<Scalar>>(network_->parameters(), adam_options_);
  optimizer_->Restore(ck.step, VectorS(ck.adam_m.cast<Scalar>()),
                      VectorS(ck.adam_v.cast<Scalar>()), VectorS(ck.ema.cast<Scalar>()),
                      ck.ema_updates);
  Setup();
}

template <typename Scalar>
Trainer<Scalar>::~Trainer() = default;

template <typename Scalar>
void Trainer<Scalar>::Setup() {
  loss_ = std::make_unique<ScoreMatchingLoss>(sde_, model_, loss_options_);
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
  const int64_t blocks = (options_.batch_size + options_.block_size - 1) / options_.block_size;
  const int groups = static_cast<int>(std::min<int64_t>(blocks, kMaxGroups));
  workspaces_.resize(groups);
  group_grads_.assign(groups, MlpNetwork<Scalar>::VectorS::Zero(network_->num_parameters()));
  grad_ = MlpNetwork<Scalar>::VectorS::Zero(network_->num_parameters());
}

template <typename Scalar>
double Trainer<Scalar>::Step(const DataSource& data) {
  Require(data.dim() == model_.dim, "Trainer::Step", "data.dim()", data.dim(),
          "the model's dim " + std::to_string(model_.dim));
  const int64_t batch = options_.batch_size;
  const int64_t block = options_.block_size;
  const int64_t blocks = (batch + block - 1) / block;
  const int groups = static_cast<int>(group_grads_.size());
  const uint64_t k = static_cast<uint64_t>(step());
  const NoiseStream noise(options_.seed, Stream::kTraining);
  std::vector<double> block_loss(blocks, 0.0);
  context_->ParallelFor(0, groups, 1, [&](int64_t g0, int64_t g1) {
    Matrix x0;
    for (int64_t g = g0; g < g1; ++g) {
      group_grads_[g].setZero();
      for (int64_t b = g; b < blocks; b += groups) {
        const int64_t first = b * block;
        const int64_t n = std::min(block, batch - first);
        x0.resize(model_.dim, n);
        data.Fill(static_cast<int64_t>(k) * batch + first, x0);
        block_loss[b] = loss_->Block(*network_, x0, first, batch, k, noise, &workspaces_[g],
                                     group_grads_[g].data());
      }
    }
  });
  const int64_t p = network_->num_parameters();
  context_->ParallelFor(0, p, 1 << 14, [&](int64_t lo, int64_t hi) {
    grad_.segment(lo, hi - lo) = group_grads_[0].segment(lo, hi - lo);
    for (int g = 1; g < groups; ++g) grad_.segment(lo, hi - lo) += group_grads_[g].segment(lo, hi - lo);
  });
  double total = 0.0;
  for (double l : block_loss) total += l;
  const double mean = total / static_cast<double>(batch);
  if (!std::isfinite(mean)) {
    throw NumericalFailure("Trainer::Step: loss is " + FormatValue(mean) + " at step " +
                               std::to_string(k),
                           static_cast<int64_t>(k), 0.0, -1, -1);
  }
  optimizer_->Step(network_->mutable_parameters(), grad_);
  return mean;
}

template <typename Scalar>
double Trainer<Scalar>::EvaluateLoss(const DataSource& data, int64_t n, bool use_ema) const {
  Require(n >= 1, "Trainer::EvaluateLoss", "n", n, ">= 1");
  Require(data.dim() == model_.dim, "Trainer::EvaluateLoss", "data.dim()", data.dim(),
          "the model's dim " + std::to_string(model_.dim));
  const MlpNetwork<Scalar> net(model_,
                               use_ema ? optimizer_->average() : network_->parameters(),
                               network_->fourier_weights());
  const NoiseStream noise(options_.seed, Stream::kTraining);
  const int64_t block = options_.block_size;
  const int64_t blocks = (n + block - 1) / block;
  std::vector<double> block_loss(blocks);
  context_->ParallelFor(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    typename MlpNetwork<Scalar>::Workspace ws;
    Matrix x0;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t first = b * block;
      const int64_t m = std::min(block, n - first);
      x0.resize(model_.dim, m);
      data.Fill(first, x0);
      block_loss[b] = loss_->Block<Scalar>(net, x0, first, n, kEvaluationStep, noise, &ws, nullptr);
    }
  });
  double total = 0.0;
  for (double l : block_loss) total += l;
  return total / static_cast<double>(n);
}

template <typename Scalar>
TrainSummary Trainer<Scalar>::Train(const DataSource& data) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  TrainSummary summary;
  summary.first_step = step();
  summary.final_eval_loss = std::numeric_limits<double>::quiet_NaN();
  const bool terminal = ::isatty(::fileno(stderr)) != 0;
  ProgressStyle style = options_.progress;
  if (style == ProgressStyle::kAuto) style = terminal ? ProgressStyle::kBar : ProgressStyle::kLines;
  const int64_t total_steps = options_.num_steps;
  double window = 0.0;
  int64_t window_count = 0;
  auto seconds_since_start = [&] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  while (step() < total_steps) {
    const double loss = Step(data);
    window += loss;
    ++window_count;
    const int64_t k = step();
    const bool last = k == total_steps;
    if ((options_.log_every > 0 && k % options_.log_every == 0) || last) {
      summary.losses.emplace_back(k, window / window_count);
      summary.final_loss = window / window_count;
      const double elapsed = seconds_since_start();
      const double rate = (k - summary.first_step) / std::max(elapsed, 1e-9);
      if (style == ProgressStyle::kLines) {
        std::fprintf(stderr, "step %lld/%lld  loss %.6g  %.1f steps/s\n",
                     static_cast<long long>(k), static_cast<long long>(total_steps),
                     summary.final_loss, rate);
      }
      window = 0.0;
      window_count = 0;
    }
    if (style == ProgressStyle::kBar && (k % 10 == 0 || last)) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * k / std::max<int64_t>(total_steps, 1));
      const double elapsed = seconds_since_start();
      std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld loss %.4g %.1f steps/s", filled,
                   "##############################", kWidth - filled, "",
                   static_cast<long long>(k), static_cast<long long>(total_steps), loss,
                   (k - summary.first_step) / std::max(elapsed, 1e-9));
      if (last) std::fprintf(stderr, "\n");
    }
    if (options_.eval_every > 0 && (k % options_.eval_every == 0 || last)) {
      const double eval = EvaluateLoss(data, options_.eval_size);
      summary.eval_losses.emplace_back(k, eval);
      summary.final_eval_loss = eval;
      if (style == ProgressStyle::kLines) {
        std::fprintf(stderr, "step %lld  eval loss (EMA) %.6g\n", static_cast<long long>(k), eval);
      }
    }
    if (!options_.checkpoint_path.empty() && options_.checkpoint_every > 0 &&
        k % options_.checkpoint_every == 0 && !last) {
      SaveCheckpoint(options_.checkpoint_path, MakeCheckpoint(data.Describe()));
    }
  }
  if (!options_.checkpoint_path.empty()) {
    SaveCheckpoint(options_.checkpoint_path, MakeCheckpoint(data.Describe()));
  }
  summary.steps = step();
  summary.seconds = seconds_since_start();
  summary.steps_per_second = (summary.steps - summary.first_step) / std::max(summary.seconds, 1e-9);
  return summary;
}

template <typename Scalar>
std::unique_ptr<MlpScore> Trainer<Scalar>::MakeScore(bool use_ema) const {
  auto net = std::make_shared<MlpNetwork<Scalar>>(
      model_, use_ema ? optimizer_->average() : network_->parameters(), network_->fourier_weights());
  return std::make_unique<MlpScore>(std::move(net), sde_);
}

template <typename Scalar>
ModelCheckpoint Trainer<Scalar>::MakeCheckpoint(const std::string& data_description) const {
  ModelCheckpoint ck;
  ck.config = model_;
  ck.sde = sde_;
  ck.float32 = std::is_same_v<Scalar, float>;
  ck.parameters = network_->parameters().template cast<double>();
  ck.fourier = network_->fourier_weights().template cast<double>();
  ck.ema = optimizer_->average().template cast<double>();
  ck.adam_m = optimizer_->first_moment().template cast<double>();
  ck.adam_v = optimizer_->second_moment().template cast<double>();
  ck.step = optimizer_->step();
  ck.ema_updates = optimizer_->ema_updates();
  ck.training = DescribeTraining(loss_options_, adam_options_, options_, data_description);
  return ck;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace scoresde
