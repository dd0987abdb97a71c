// Training loop for the MLP score model on CPU threads (design.md, section 2, "Training").
//
// Step k (k = 0, 1, …) takes examples p = k·B … k·B + B − 1 of the data source, splits the batch
// into fixed column blocks of block_size (independent of the thread count), evaluates the loss and
// its gradient block by block (ScoreMatchingLoss::Block) and reduces deterministically: block b
// accumulates into the gradient buffer of group b mod G, G = min(#blocks, 8) (blocks of a group in
// index order), and the G buffers are summed in group order. Threads take whole groups, so the
// same seed gives bit-identical weights for any thread count. Then clipping, Adam/AdamW with
// warm-up and the EMA (optimizer.hpp).
//
// Everything random is a pure function of (seed, step, position): the initialization (kInit), the
// loss noise (kTraining), the data (its own seed). A checkpoint stores the weights, the EMA, Adam's
// moments and the step, so Resume + Train equals an uninterrupted run bit for bit.
//
// Progress: a progress bar on stderr when it is a terminal, plain log lines otherwise.
// Evaluation (every eval_every steps): the loss of the EMA weights on a fixed batch (examples
// 0 … eval_size − 1, fixed noise), so that its changes reflect the model and not the draw.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/losses.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/scoring/optimizer.hpp"
#include "scoresde/sde/context.hpp"

namespace scoresde {

enum class ProgressStyle { kAuto, kBar, kLines, kNone };

struct TrainerOptions {
  int64_t num_steps = 1000;      // total steps (a resumed run continues up to this count)
  int64_t batch_size = 256;
  int num_threads = 1;
  uint64_t seed = 0;             // initialization and loss noise
  int block_size = 128;          // columns per gradient block; results depend on it, not on threads
  int64_t log_every = 100;       // log line / loss history interval (0: only at the end)
  int64_t eval_every = 0;        // 0: no periodic evaluation
  int64_t eval_size = 1024;
  int64_t checkpoint_every = 0;  // 0: only at the end (when checkpoint_path is set)
  std::string checkpoint_path;   // "" writes no checkpoint
  ProgressStyle progress = ProgressStyle::kAuto;
  // Throws InvalidArgument naming the bad field: num_steps in [0, 2^31], batch_size in [1, 2^20],
  // num_threads in [1, 1024], block_size in [1, 65536], log_every, eval_every, checkpoint_every
  // ≥ 0, eval_size ≥ 1; checkpoint_every > 0 needs a checkpoint_path.
  void Validate() const;
};

struct TrainSummary {
  int64_t first_step = 0;        // steps done before this call (a resumed run's start)
  int64_t steps = 0;             // steps done in total after this call
  double final_loss = 0.0;       // mean batch loss over the last log interval
  double final_eval_loss = 0.0;  // NaN without evaluation
  double seconds = 0.0;
  double steps_per_second = 0.0;
  std::vector<std::pair<int64_t, double>> losses;       // (step, mean batch loss of the interval)
  std::vector<std::pair<int64_t, double>> eval_losses;  // (step, evaluation loss)
};

template <typename Scalar>
class Trainer {
 public:
  // A fresh model initialized from options.seed. Throws InvalidArgument on invalid options or
  // mismatched dimensions.
  Trainer(std::shared_ptr<const ScalarAffineSde> sde, const MlpConfig& model,
          const LossOptions& loss, const AdamOptions& adam, const TrainerOptions& options);
  // Continues a checkpoint written by a Trainer of the same precision: model, SDE, loss and
  // optimizer settings, weights, EMA, moments and step come from it; batch_size, block_size and
  // seed must equal the stored ones (else the continuation would not be exact: InvalidArgument).
  Trainer(const ModelCheckpoint& checkpoint, const TrainerOptions& options);
  ~Trainer();

  // Trains until options.num_steps steps are done in total. data.dim() must be the model's dim.
  TrainSummary Train(const DataSource& data);
  // One step; returns the batch loss (mean over the batch).
  double Step(const DataSource& data);
  // The loss of the EMA weights (or the raw ones) on examples [0, n) with fixed noise.
  double EvaluateLoss(const DataSource& data, int64_t n, bool use_ema = true) const;

  int64_t step() const { return optimizer_->step(); }
  const MlpNetwork<Scalar>& network() const { return *network_; }
  const AdamOptimizer<Scalar>& optimizer() const { return *optimizer_; }
  const ScoreMatchingLoss& loss() const { return *loss_; }
  const TrainerOptions& options() const { return options_; }
  // The network with the EMA weights, as a ScoreModel.
  std::unique_ptr<MlpScore> MakeScore(bool use_ema = true) const;
  // Everything needed to resume; data_description goes into the training metadata.
  ModelCheckpoint MakeCheckpoint(const std::string& data_description = "") const;

 private:
  void Setup();

  std::shared_ptr<const ScalarAffineSde> sde_;
  MlpConfig model_;
  LossOptions loss_options_;
  AdamOptions adam_options_;
  TrainerOptions options_;
  std::unique_ptr<ExecutionContext> context_;
  std::unique_ptr<MlpNetwork<Scalar>> network_;
  std::unique_ptr<ScoreMatchingLoss> loss_;
  std::unique_ptr<AdamOptimizer<Scalar>> optimizer_;
  // Per-group scratch.
  std::vector<typename MlpNetwork<Scalar>::Workspace> workspaces_;
  std::vector<typename MlpNetwork<Scalar>::VectorS> group_grads_;
  typename MlpNetwork<Scalar>::VectorS grad_;
};

extern template class Trainer<float>;
extern template class Trainer<double>;

// The training settings stored in checkpoints' "training" metadata, as JSON text, and back.
std::string DescribeTraining(const LossOptions& loss, const AdamOptions& adam,
                             const TrainerOptions& options, const std::string& data_description);
void TrainingFromDescription(std::string_view json, LossOptions* loss, AdamOptions* adam,
                             TrainerOptions* options);

}  // namespace scoresde
