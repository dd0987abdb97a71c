// A noise-conditional classifier p_φ(y | x_t, t) for classifier guidance (Song et al., ICLR 2021,
// appendix I.1: class-conditional sampling with ∇ₓ log p_t(y | x) from a time-dependent
// classifier; Dhariwal & Nichol, NeurIPS 2021).
//
// Training minimizes the cross-entropy on noisy labelled data:
//   L(φ) = E_{t ~ U(ε, T)} E_{(x₀, y)} E_z [ −log softmax(f_φ(α x₀ + σ_t z, t))_y ],
// whose population minimizer is the Bayes posterior p_t(y | x) of the noisy data (the
// cross-entropy is the KL divergence to it plus its conditional entropy), so that
// ∇ₓ log softmax(f_φ)_y estimates the guidance term ∇ₓ log p_t(y | x).
//
// Network (the MLP of mlp_score.hpp with C outputs; same time embedding conventions):
//   u   = c_in x,  c_in = 1/sqrt(σ_t² + α² σ_d²)              (ComputeScoreCoefficients)
//   τ   = t (VP, sub-VP) or log σ(t) (VE)
//   e   = [sin(2π w τ); cos(2π w τ)]                           w: "fourier.weight" (E/2), fixed
//   a_1 = SiLU(W_0 [u; e] + b_0)                               "input.weight" (H, d+E), ".bias"
//   a_{l+1} = a_l + SiLU(W_l a_l + b_l), l = 1..L−1            "hidden.<l>.weight" (H, H), ".bias"
//   f   = W_L a_L + b_L                                        "output.weight" (C, H), ".bias" (C)
// Parameters are one flat vector of the tensors in this order, each weight before its bias, each
// weight row-major (out, in) as PyTorch's nn.Linear stores it; initialization from
// NoiseStream(seed, Stream::kInit): tensor k by FillUniform(step k + 1) mapped to
// ±1/sqrt(fan_in), fourier.weight = fourier_scale · FillNormal(step 0). All in double precision.
//
// Training (TrainClassifier): step k uses examples p = k·B + j of the data; t and z come from
// NoiseStream(seed, Stream::kTraining) at (step k, sample j, substeps 0 and 1); the batch is split
// into fixed column blocks whose gradients are summed in block order, so the same seed gives the
// same weights for any thread count. Adam/AdamW with warm-up, clipping and EMA from optimizer.hpp;
// the classifier keeps the EMA weights when ema_decay > 0.
//
// Files: safetensors (checkpoint.hpp) with the tensors above and __metadata__ "format" =
// "scoresde.classifier.v1", "classifier" (the config as JSON) and "sde" (DescribeSde).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "scoresde/scoring/optimizer.hpp"
#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

struct ClassifierConfig {
  int dim = 2;             // d
  int num_classes = 2;     // C ≥ 2
  int width = 128;         // H
  int depth = 3;           // L ≥ 1
  int embed_dim = 32;      // E, even
  double fourier_scale = 1.0;
  double data_std = 1.0;   // σ_d of c_in
  // Throws InvalidArgument naming the first bad field: dim, width in [1, 65536], num_classes in
  // [2, 65536], depth in [1, 64], embed_dim even in [2, 65536], fourier_scale and data_std finite
  // and > 0.
  void Validate() const;
};

class NoiseConditionalClassifier {
 public:
  // A fresh classifier initialized from seed. sde must describe the noising of the training data
  // (the score model's SDE). Throws InvalidArgument for an invalid config, a null SDE or mismatched
  // dimensions.
  NoiseConditionalClassifier(const ClassifierConfig& config,
                             std::shared_ptr<const ScalarAffineSde> sde, uint64_t seed);
  // Given parameters (num_parameters() entries) and fourier weights (embed_dim/2), all finite.
  NoiseConditionalClassifier(const ClassifierConfig& config,
                             std::shared_ptr<const ScalarAffineSde> sde, Vector parameters,
                             Vector fourier_weights);

  const ClassifierConfig& config() const { return config_; }
  const ScalarAffineSde& sde() const { return *sde_; }
  std::shared_ptr<const ScalarAffineSde> shared_sde() const { return sde_; }
  int dim() const { return config_.dim; }
  int num_classes() const { return config_.num_classes; }
  int64_t num_parameters() const { return parameters_.size(); }
  const Vector& parameters() const { return parameters_; }
  Vector& mutable_parameters() { return parameters_; }
  const Vector& fourier_weights() const { return fourier_; }
  // (name, PyTorch shape, offset, size) of each tensor of the flat vector.
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;
    int64_t size = 0;
  };
  const std::vector<Tensor>& layout() const { return layout_; }

  // logits (C × B) at x (d × B) and times t (B entries in [0, T]). Evaluated on padded column
  // blocks (as MlpScore), so a column's bits do not depend on its batch. Throws InvalidArgument on
  // shapes, non-finite x or bad t.
  void Logits(ConstBatchRef x, ConstRowVectorRef t, BatchRef logits) const;
  // log p_φ(y_j | x_j, t_j) and its gradient ∇ₓ (d × B). labels has one entry (used for every
  // column) or B entries, each in [0, C). Throws InvalidArgument on shapes or labels.
  void LogProbAndGradient(ConstBatchRef x, ConstRowVectorRef t, const std::vector<int>& labels,
                          RowVectorRef log_prob, BatchRef grad) const;
  // Mean cross-entropy over the columns, and (when grad is non-null, num_parameters() entries)
  // its gradient with respect to the parameters added to *grad.
  double CrossEntropy(ConstBatchRef x, ConstRowVectorRef t, const std::vector<int>& labels,
                      Vector* grad) const;

 private:
  struct Cache;
  void BuildLayout();
  void Forward(ConstBatchRef x, ConstRowVectorRef t, Cache* cache) const;
  // Back-propagates g_logits (C × n); adds parameter gradients to grad (may be null) and returns
  // ∇ₓ (d × n) when input_grad is non-null.
  void Backward(const Matrix& g_logits, Cache* cache, Vector* grad, Batch* input_grad) const;
  void CheckInputs(const char* where, ConstBatchRef x, ConstRowVectorRef t,
                   const std::vector<int>& labels) const;
  // Logits and/or log p(y | x) with its input gradient, on padded column blocks of 64 so that a
  // column's bits do not depend on its batch (as MlpScore).
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, const std::vector<int>* labels,
                BatchRef* logits, RowVectorRef* log_prob, BatchRef* grad) const;

  ClassifierConfig config_;
  std::shared_ptr<const ScalarAffineSde> sde_;
  std::vector<Tensor> layout_;
  Vector parameters_;
  Vector fourier_;
};

// Labelled training data: example p (x column, label) is a pure function of p.
class LabelledDataSource {
 public:
  virtual ~LabelledDataSource() = default;
  virtual int dim() const = 0;
  // Column j of x (dim() × n) and labels[j] receive example first + j. labels has n entries.
  virtual void Fill(int64_t first, BatchRef x, std::vector<int>* labels) const = 0;
};

// A finite labelled array (d × N, N labels), visited in epochs of uniform random permutations as
// ArrayDataSource does (datasets.hpp): example p is column perm_{p / N}(p mod N).
class ArrayLabelledDataSource final : public LabelledDataSource {
 public:
  // Throws InvalidArgument unless data is finite with N ≥ 1 columns and labels has N entries ≥ 0.
  ArrayLabelledDataSource(Matrix data, std::vector<int> labels, uint64_t seed);
  ~ArrayLabelledDataSource() override;
  int dim() const override;
  void Fill(int64_t first, BatchRef x, std::vector<int>* labels) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Labelled examples drawn by a function (e.g. mixture components as classes).
class CallbackLabelledDataSource final : public LabelledDataSource {
 public:
  using Function = std::function<void(int64_t first, BatchRef x, std::vector<int>* labels)>;
  // dim ≥ 1, fill callable.
  CallbackLabelledDataSource(int dim, Function fill);
  int dim() const override { return dim_; }
  void Fill(int64_t first, BatchRef x, std::vector<int>* labels) const override;

 private:
  int dim_;
  Function fill_;
};

struct ClassifierTrainingOptions {
  int64_t num_steps = 2000;
  int64_t batch_size = 256;
  double eps = 1e-3;        // t ~ U(ε, T)
  uint64_t seed = 0;        // noise of t and z
  int num_threads = 1;
  int block_size = 64;      // columns per gradient block (results depend on it, not on threads)
  AdamOptions adam = {1e-3, 0.9, 0.999, 1e-8, 0.0, true, 100, 1.0, 0.999};
  // Throws InvalidArgument naming the bad field: num_steps ≥ 0, batch_size in [1, 2^20], eps in
  // (0, 1), num_threads ≥ 1, block_size ≥ 1, and adam.Validate().
  void Validate() const;
};

struct ClassifierTrainingSummary {
  int64_t steps = 0;
  double final_loss = 0.0;  // mean batch cross-entropy over the last 10% of the steps
  double seconds = 0.0;
  std::vector<std::pair<int64_t, double>> losses;  // (step, batch loss) every max(1, steps/50)
};

// Trains the classifier in place (its parameters become the EMA weights when ema_decay > 0).
// Throws InvalidArgument for invalid options, a data dimension that differs from the classifier's,
// or labels outside [0, C); NumericalFailure if the loss becomes non-finite.
ClassifierTrainingSummary TrainClassifier(NoiseConditionalClassifier* classifier,
                                          const LabelledDataSource& data,
                                          const ClassifierTrainingOptions& options);

// Files (see above). Save throws Error on I/O failure; Load throws InvalidArgument on malformed
// files, another format, or missing or mis-sized tensors.
void SaveClassifier(const std::string& path, const NoiseConditionalClassifier& classifier);
NoiseConditionalClassifier LoadClassifier(const std::string& path);

}  // namespace scoresde
