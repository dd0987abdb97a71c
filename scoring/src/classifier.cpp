#include "scoresde/scoring/classifier.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

namespace {

constexpr const char* kWhere = "NoiseConditionalClassifier";
constexpr const char* kFormat = "scoresde.classifier.v1";

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstWeight = Eigen::Map<const RowMajor>;
using Weight = Eigen::Map<RowMajor>;

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// c_in and τ exactly as the MLP score model computes them (the score parameterization has no
// σ_t in a denominator, so any t in [0, T] works).
ScoreCoefficients Embedding(const ScalarAffineSde& sde, const ClassifierConfig& config,
                            double t) {
  MlpConfig mlp;
  mlp.dim = config.dim;
  mlp.parameterization = Parameterization::kScore;
  mlp.data_std = config.data_std;
  return ComputeScoreCoefficients(sde, mlp, t);
}

std::string DescribeClassifier(const ClassifierConfig& c) {
  nlohmann::ordered_json j = {{"dim", c.dim},           {"num_classes", c.num_classes},
                              {"width", c.width},       {"depth", c.depth},
                              {"embed_dim", c.embed_dim}, {"fourier_scale", c.fourier_scale},
                              {"data_std", c.data_std}};
  return j.dump();
}

ClassifierConfig ClassifierFromDescription(const std::string& text, const std::string& source) {
  ClassifierConfig c;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    c.dim = j.at("dim").get<int>();
    c.num_classes = j.at("num_classes").get<int>();
    c.width = j.at("width").get<int>();
    c.depth = j.at("depth").get<int>();
    c.embed_dim = j.at("embed_dim").get<int>();
    c.fourier_scale = j.at("fourier_scale").get<double>();
    c.data_std = j.at("data_std").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(source + ": classifier description is malformed: " + e.what());
  }
  c.Validate();
  return c;
}

}  // namespace

void ClassifierConfig::Validate() const {
  constexpr const char* kConfig = "ClassifierConfig";
  Require(dim >= 1 && dim <= 65536, kConfig, "dim", dim, "in [1, 65536]");
  Require(num_classes >= 2 && num_classes <= 65536, kConfig, "num_classes", num_classes,
          "in [2, 65536]");
  Require(width >= 1 && width <= 65536, kConfig, "width", width, "in [1, 65536]");
  Require(depth >= 1 && depth <= 64, kConfig, "depth", depth, "in [1, 64]");
  Require(embed_dim >= 2 && embed_dim <= 65536 && embed_dim % 2 == 0, kConfig, "embed_dim",
          embed_dim, "even and in [2, 65536]");
  Require(std::isfinite(fourier_scale) && fourier_scale > 0.0, kConfig, "fourier_scale",
          fourier_scale, "finite and > 0");
  Require(std::isfinite(data_std) && data_std > 0.0, kConfig, "data_std", data_std,
          "finite and > 0");
}

// Activations of one forward pass: a[l] is the input of layer l (a[0] = [u; e]), z[l] the
// pre-activations, sig[l] = sigmoid(z[l]), logits the output; c_in per column.
struct NoiseConditionalClassifier::Cache {
  std::vector<Matrix> a;
  std::vector<Matrix> z;
  std::vector<Matrix> sig;
  Matrix logits;
  RowVector c_in;
};

void NoiseConditionalClassifier::BuildLayout() {
  const int in = config_.dim + config_.embed_dim, h = config_.width;
  int64_t offset = 0;
  const auto add = [&](std::string name, int64_t out, int64_t fan_in) {
    layout_.push_back({name + ".weight", {out, fan_in}, offset, out * fan_in});
    offset += out * fan_in;
    layout_.push_back({name + ".bias", {out}, offset, out});
    offset += out;
  };
  add("input", h, in);
  for (int l = 1; l < config_.depth; ++l) add("hidden." + std::to_string(l), h, h);
  add("output", config_.num_classes, h);
}

NoiseConditionalClassifier::NoiseConditionalClassifier(const ClassifierConfig& config,
                                                       std::shared_ptr<const ScalarAffineSde> sde,
                                                       uint64_t seed)
    : config_(config), sde_(std::move(sde)) {
  config_.Validate();
  Require(sde_ != nullptr, kWhere, "sde", std::string_view("null"), "an SDE");
  Require(sde_->dim() == config_.dim, kWhere, "sde.dim()", sde_->dim(),
          "equal to config.dim (" + std::to_string(config_.dim) + ")");
  BuildLayout();
  parameters_.resize(layout_.back().offset + layout_.back().size);
  const NoiseStream init(seed, Stream::kInit);
  for (size_t k = 0; k < layout_.size(); ++k) {
    const Tensor& tensor = layout_[k];
    const int64_t fan_in = layout_[k - k % 2].shape[1];
    Batch u(1, tensor.size);
    init.FillUniform(k + 1, 0, 0, u);
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    parameters_.segment(tensor.offset, tensor.size) =
        ((2.0 * u.array() - 1.0) * bound).matrix().transpose();
  }
  Batch w(1, config_.embed_dim / 2);
  init.FillNormal(0, 0, 0, w);
  fourier_ = config_.fourier_scale * w.transpose();
}

NoiseConditionalClassifier::NoiseConditionalClassifier(const ClassifierConfig& config,
                                                       std::shared_ptr<const ScalarAffineSde> sde,
                                                       Vector parameters, Vector fourier_weights)
    : config_(config), sde_(std::move(sde)), parameters_(std::move(parameters)),
      fourier_(std::move(fourier_weights)) {
  config_.Validate();
  Require(sde_ != nullptr, kWhere, "sde", std::string_view("null"), "an SDE");
  Require(sde_->dim() == config_.dim, kWhere, "sde.dim()", sde_->dim(),
          "equal to config.dim (" + std::to_string(config_.dim) + ")");
  BuildLayout();
  const int64_t expected = layout_.back().offset + layout_.back().size;
  Require(parameters_.size() == expected, kWhere, "parameters.size()",
          static_cast<int64_t>(parameters_.size()), "equal to " + std::to_string(expected));
  Require(fourier_.size() == config_.embed_dim / 2, kWhere, "fourier_weights.size()",
          static_cast<int64_t>(fourier_.size()),
          "equal to embed_dim/2 (" + std::to_string(config_.embed_dim / 2) + ")");
  CheckFinite(kWhere, "parameters", parameters_);
  CheckFinite(kWhere, "fourier_weights", fourier_);
}

void NoiseConditionalClassifier::CheckInputs(const char* where, ConstBatchRef x,
                                             ConstRowVectorRef t,
                                             const std::vector<int>& labels) const {
  CheckShape(where, "x", x, dim(), -1);
  CheckShape(where, "t", t, 1, x.cols());
  CheckFinite(where, "x", x);
  Require(labels.size() == 1 || static_cast<Eigen::Index>(labels.size()) == x.cols(), where,
          "labels.size()", static_cast<int64_t>(labels.size()),
          "1 or the number of columns (" + std::to_string(x.cols()) + ")");
  for (size_t j = 0; j < labels.size(); ++j) {
    Require(labels[j] >= 0 && labels[j] < num_classes(), where,
            "labels[" + std::to_string(j) + "]", labels[j],
            "in [0, " + std::to_string(num_classes()) + ")");
  }
}

void NoiseConditionalClassifier::Forward(ConstBatchRef x, ConstRowVectorRef t,
                                         Cache* cache) const {
  const int d = dim(), E = config_.embed_dim, L = config_.depth;
  const Eigen::Index n = x.cols();
  cache->a.resize(L + 1);
  cache->z.resize(L);
  cache->sig.resize(L);
  cache->c_in.resize(n);
  Matrix& a0 = cache->a[0];
  a0.resize(d + E, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const ScoreCoefficients c = Embedding(*sde_, config_, t(j));
    cache->c_in(j) = c.c_in;
    a0.col(j).head(d) = c.c_in * x.col(j);
    for (int f = 0; f < E / 2; ++f) {
      const double angle = 2.0 * std::numbers::pi * fourier_(f) * c.tau;
      a0(d + f, j) = std::sin(angle);
      a0(d + E / 2 + f, j) = std::cos(angle);
    }
  }
  for (int l = 0; l < L; ++l) {
    const Tensor& w = layout_[2 * l];
    const Tensor& b = layout_[2 * l + 1];
    const ConstWeight W(parameters_.data() + w.offset, w.shape[0], w.shape[1]);
    const Eigen::Map<const Vector> bias(parameters_.data() + b.offset, b.size);
    cache->z[l].noalias() = W * cache->a[l];
    cache->z[l].colwise() += bias;
    cache->sig[l] = cache->z[l].unaryExpr([](double v) { return Sigmoid(v); });
    cache->a[l + 1] = cache->z[l].cwiseProduct(cache->sig[l]);
    if (l > 0) cache->a[l + 1] += cache->a[l];
  }
  const Tensor& w = layout_[2 * L];
  const Tensor& b = layout_[2 * L + 1];
  const ConstWeight W(parameters_.data() + w.offset, w.shape[0], w.shape[1]);
  const Eigen::Map<const Vector> bias(parameters_.data() + b.offset, b.size);
  cache->logits.noalias() = W * cache->a[L];
  cache->logits.colwise() += bias;
}

void NoiseConditionalClassifier::Backward(const Matrix& g_logits, Cache* cache, Vector* grad,
                                          Batch* input_grad) const {
  const int d = dim(), L = config_.depth;
  const auto weight = [&](int layer) {
    const Tensor& w = layout_[2 * layer];
    return ConstWeight(parameters_.data() + w.offset, w.shape[0], w.shape[1]);
  };
  const auto accumulate = [&](int layer, const Matrix& g_out, const Matrix& input) {
    if (grad == nullptr) return;
    const Tensor& w = layout_[2 * layer];
    const Tensor& b = layout_[2 * layer + 1];
    Weight gW(grad->data() + w.offset, w.shape[0], w.shape[1]);
    gW.noalias() += g_out * input.transpose();
    grad->segment(b.offset, b.size) += g_out.rowwise().sum();
  };
  accumulate(L, g_logits, cache->a[L]);
  Matrix g_a = weight(L).transpose() * g_logits;  // gradient with respect to a[L]
  for (int l = L - 1; l >= 0; --l) {
    // a[l+1] = [a[l] +] SiLU(z[l]); SiLU'(z) = σ(z)(1 + z(1 − σ(z))).
    const Matrix& z = cache->z[l];
    const Matrix& s = cache->sig[l];
    const Matrix g_z =
        g_a.cwiseProduct((s.array() * (1.0 + z.array() * (1.0 - s.array()))).matrix());
    accumulate(l, g_z, cache->a[l]);
    if (l == 0 && input_grad == nullptr) break;
    Matrix g_prev = weight(l).transpose() * g_z;
    if (l > 0) g_prev += g_a;
    g_a = std::move(g_prev);
  }
  if (input_grad != nullptr) {
    // g_a is now the gradient with respect to a[0] = [c_in x; e].
    input_grad->resize(d, g_a.cols());
    for (Eigen::Index j = 0; j < g_a.cols(); ++j) {
      input_grad->col(j) = cache->c_in(j) * g_a.col(j).head(d);
    }
  }
}

namespace {

constexpr int kEvaluateBlock = 64;

// Columns a block of n samples is padded to, as MlpScore pads them (mlp_score.cpp): a multiple of 8
// and at least 16, so that every GEMM takes Eigen's blocked path and a column's result does not
// depend on its neighbours.
int PaddedColumns(int n) { return std::max(16, (n + 7) / 8 * 8); }

}  // namespace

void NoiseConditionalClassifier::Evaluate(ConstBatchRef x, ConstRowVectorRef t,
                                          const std::vector<int>* labels, BatchRef* logits,
                                          RowVectorRef* log_prob, BatchRef* grad) const {
  Cache cache;
  Batch g_x;
  const int C = num_classes();
  for (Eigen::Index first = 0; first < x.cols(); first += kEvaluateBlock) {
    const int n = static_cast<int>(std::min<Eigen::Index>(kEvaluateBlock, x.cols() - first));
    const int cols = PaddedColumns(n);
    // Padding columns repeat the block's first column; their results are dropped.
    Batch xb(dim(), cols);
    RowVector tb(cols);
    for (int j = 0; j < cols; ++j) {
      const Eigen::Index source = first + (j < n ? j : 0);
      xb.col(j) = x.col(source);
      tb(j) = t(source);
    }
    Forward(xb, tb, &cache);
    if (logits != nullptr) logits->middleCols(first, n) = cache.logits.leftCols(n);
    if (labels == nullptr) continue;
    // ∂ log softmax_y / ∂ logits = e_y − softmax.
    Matrix g = Matrix::Zero(C, cols);
    for (int j = 0; j < n; ++j) {
      const int y = labels->size() == 1 ? (*labels)[0] : (*labels)[first + j];
      const auto column = cache.logits.col(j);
      const double largest = column.maxCoeff();
      const double log_z = largest + std::log((column.array() - largest).exp().sum());
      (*log_prob)(first + j) = column(y) - log_z;
      g.col(j) = -(column.array() - log_z).exp().matrix();
      g(y, j) += 1.0;
    }
    Backward(g, &cache, nullptr, &g_x);
    grad->middleCols(first, n) = g_x.leftCols(n);
  }
}

void NoiseConditionalClassifier::Logits(ConstBatchRef x, ConstRowVectorRef t,
                                        BatchRef logits) const {
  CheckInputs("NoiseConditionalClassifier::Logits", x, t, {0});
  CheckShape("NoiseConditionalClassifier::Logits", "logits", logits, num_classes(), x.cols());
  Evaluate(x, t, nullptr, &logits, nullptr, nullptr);
}

void NoiseConditionalClassifier::LogProbAndGradient(ConstBatchRef x, ConstRowVectorRef t,
                                                    const std::vector<int>& labels,
                                                    RowVectorRef log_prob, BatchRef grad) const {
  constexpr const char* kEval = "NoiseConditionalClassifier::LogProbAndGradient";
  CheckInputs(kEval, x, t, labels);
  CheckShape(kEval, "log_prob", log_prob, 1, x.cols());
  CheckShape(kEval, "grad", grad, dim(), x.cols());
  Evaluate(x, t, &labels, nullptr, &log_prob, &grad);
}

double NoiseConditionalClassifier::CrossEntropy(ConstBatchRef x, ConstRowVectorRef t,
                                                const std::vector<int>& labels,
                                                Vector* grad) const {
  constexpr const char* kEval = "NoiseConditionalClassifier::CrossEntropy";
  CheckInputs(kEval, x, t, labels);
  Require(x.cols() >= 1, kEval, "x.cols()", static_cast<int64_t>(x.cols()), ">= 1");
  if (grad != nullptr) {
    CheckShape(kEval, "grad", *grad, num_parameters(), 1);
  }
  Cache cache;
  Forward(x, t, &cache);
  const Eigen::Index n = x.cols();
  Matrix g(num_classes(), n);
  double loss = 0.0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const int y = labels.size() == 1 ? labels[0] : labels[j];
    const auto logits = cache.logits.col(j);
    const double largest = logits.maxCoeff();
    const double log_z = largest + std::log((logits.array() - largest).exp().sum());
    loss += log_z - logits(y);
    g.col(j) = (logits.array() - log_z).exp().matrix() / static_cast<double>(n);
    g(y, j) -= 1.0 / static_cast<double>(n);
  }
  if (grad != nullptr) Backward(g, &cache, grad, nullptr);
  return loss / static_cast<double>(n);
}

// ---- Data ---------------------------------------------------------------------------------------

struct ArrayLabelledDataSource::Impl {
  Impl(Matrix data, uint64_t seed) : x(std::move(data), seed, "labelled array") {}
  ArrayDataSource x;
  std::vector<int> labels;
};

ArrayLabelledDataSource::ArrayLabelledDataSource(Matrix data, std::vector<int> labels,
                                                 uint64_t seed) {
  constexpr const char* kData = "ArrayLabelledDataSource";
  Require(static_cast<Eigen::Index>(labels.size()) == data.cols(), kData, "labels.size()",
          static_cast<int64_t>(labels.size()),
          "equal to the number of examples (" + std::to_string(data.cols()) + ")");
  for (size_t j = 0; j < labels.size(); ++j) {
    Require(labels[j] >= 0, kData, "labels[" + std::to_string(j) + "]", labels[j], ">= 0");
  }
  impl_ = std::make_unique<Impl>(std::move(data), seed);
  impl_->labels = std::move(labels);
}

ArrayLabelledDataSource::~ArrayLabelledDataSource() = default;

int ArrayLabelledDataSource::dim() const { return impl_->x.dim(); }

void ArrayLabelledDataSource::Fill(int64_t first, BatchRef x, std::vector<int>* labels) const {
  impl_->x.Fill(first, x);
  const int64_t n = impl_->x.data().cols();
  labels->resize(x.cols());
  int64_t epoch = -1;
  std::vector<int64_t> permutation;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const int64_t p = first + j;
    if (p / n != epoch) {
      epoch = p / n;
      permutation = impl_->x.EpochPermutation(epoch);
    }
    (*labels)[j] = impl_->labels[permutation[p % n]];
  }
}

CallbackLabelledDataSource::CallbackLabelledDataSource(int dim, Function fill)
    : dim_(dim), fill_(std::move(fill)) {
  Require(dim >= 1, "CallbackLabelledDataSource", "dim", dim, ">= 1");
  Require(static_cast<bool>(fill_), "CallbackLabelledDataSource", "fill",
          std::string_view("empty"), "callable");
}

void CallbackLabelledDataSource::Fill(int64_t first, BatchRef x, std::vector<int>* labels) const {
  CheckShape("CallbackLabelledDataSource::Fill", "x", x, dim_, -1);
  labels->resize(x.cols());
  fill_(first, x, labels);
}

// ---- Training -----------------------------------------------------------------------------------

void ClassifierTrainingOptions::Validate() const {
  constexpr const char* kOptions = "ClassifierTrainingOptions";
  Require(num_steps >= 0, kOptions, "num_steps", num_steps, ">= 0");
  Require(batch_size >= 1 && batch_size <= (int64_t{1} << 20), kOptions, "batch_size",
          batch_size, "in [1, 2^20]");
  Require(std::isfinite(eps) && eps > 0.0 && eps < 1.0, kOptions, "eps", eps, "in (0, 1)");
  Require(num_threads >= 1, kOptions, "num_threads", num_threads, ">= 1");
  Require(block_size >= 1, kOptions, "block_size", block_size, ">= 1");
  adam.Validate();
}

ClassifierTrainingSummary TrainClassifier(NoiseConditionalClassifier* classifier,
                                          const LabelledDataSource& data,
                                          const ClassifierTrainingOptions& options) {
  constexpr const char* kTrain = "TrainClassifier";
  options.Validate();
  Require(classifier != nullptr, kTrain, "classifier", std::string_view("null"), "a classifier");
  Require(data.dim() == classifier->dim(), kTrain, "data.dim()", data.dim(),
          "equal to the classifier's dim (" + std::to_string(classifier->dim()) + ")");
  const auto start = std::chrono::steady_clock::now();
  const ScalarAffineSde& sde = classifier->sde();
  const int d = classifier->dim();
  const int64_t B = options.batch_size;
  const int64_t block = std::min<int64_t>(options.block_size, B);
  const int64_t num_blocks = (B + block - 1) / block;
  const double t_final = sde.t_final();
  const NoiseStream noise(options.seed, Stream::kTraining);
  const ExecutionContext context(options.num_threads);
  AdamOptimizer<double> optimizer(classifier->parameters(), options.adam);
  std::vector<Vector> block_grads(num_blocks, Vector::Zero(classifier->num_parameters()));
  std::vector<double> block_losses(num_blocks);
  Vector grad(classifier->num_parameters());
  ClassifierTrainingSummary summary;
  const int64_t record_every = std::max<int64_t>(1, options.num_steps / 50);
  const int64_t tail_start = options.num_steps - std::max<int64_t>(1, options.num_steps / 10);
  double tail_sum = 0.0;
  int64_t tail_count = 0;
  for (int64_t step = 0; step < options.num_steps; ++step) {
    context.ParallelFor(0, num_blocks, 1, [&](int64_t b_begin, int64_t b_end) {
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t first = b * block, count = std::min(block, B - first);
        Batch x0(d, count), z(d, count), u(1, count);
        std::vector<int> labels;
        data.Fill(step * B + first, x0, &labels);
        for (int y : labels) {
          Require(y >= 0 && y < classifier->num_classes(), kTrain, "label", y,
                  "in [0, " + std::to_string(classifier->num_classes()) + ")");
        }
        noise.FillUniform(static_cast<uint64_t>(step), 0, first, u);
        noise.FillNormal(static_cast<uint64_t>(step), 1, first, z);
        RowVector t(count);
        Batch xt(d, count);
        for (int64_t j = 0; j < count; ++j) {
          t(j) = options.eps + (t_final - options.eps) * u(0, j);
          xt.col(j) = sde.MeanCoefficient(t(j)) * x0.col(j) + sde.MarginalStd(t(j)) * z.col(j);
        }
        block_grads[b].setZero();
        // Each block's mean is weighted by its share of the batch.
        const double loss = classifier->CrossEntropy(xt, t, labels, &block_grads[b]);
        const double share = static_cast<double>(count) / static_cast<double>(B);
        block_grads[b] *= share;
        block_losses[b] = loss * share;
      }
    });
    grad.setZero();
    double loss = 0.0;
    for (int64_t b = 0; b < num_blocks; ++b) {
      grad += block_grads[b];
      loss += block_losses[b];
    }
    if (!std::isfinite(loss)) {
      throw NumericalFailure(std::string(kTrain) + ": loss is " + FormatValue(loss) +
                                 " at step " + std::to_string(step),
                             step, 0.0, -1, -1);
    }
    optimizer.Step(classifier->mutable_parameters(), grad);
    if (step % record_every == 0 || step + 1 == options.num_steps) {
      summary.losses.emplace_back(step, loss);
    }
    if (step >= tail_start) {
      tail_sum += loss;
      ++tail_count;
    }
  }
  if (options.adam.ema_decay > 0.0 && options.num_steps > 0) {
    classifier->mutable_parameters() = optimizer.average();
  }
  summary.steps = options.num_steps;
  summary.final_loss = tail_count > 0 ? tail_sum / static_cast<double>(tail_count) : 0.0;
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

// ---- Files --------------------------------------------------------------------------------------

void SaveClassifier(const std::string& path, const NoiseConditionalClassifier& classifier) {
  SafetensorsFile file;
  file.metadata["format"] = kFormat;
  file.metadata["classifier"] = DescribeClassifier(classifier.config());
  file.metadata["sde"] = DescribeSde(classifier.sde());
  for (const auto& tensor : classifier.layout()) {
    file.tensors.push_back(MakeTensor(tensor.name,
                                      classifier.parameters().segment(tensor.offset, tensor.size),
                                      tensor.shape, false));
  }
  file.tensors.push_back(MakeTensor(
      "fourier.weight", classifier.fourier_weights(),
      {static_cast<int64_t>(classifier.fourier_weights().size())}, false));
  WriteSafetensors(path, file);
}

NoiseConditionalClassifier LoadClassifier(const std::string& path) {
  const SafetensorsFile file = ReadSafetensors(path);
  const auto meta = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) {
      throw InvalidArgument(path + ": metadata key '" + key + "' is missing");
    }
    return it->second;
  };
  if (meta("format") != kFormat) {
    throw InvalidArgument(path + ": format = '" + meta("format") + "'; must be '" + kFormat +
                          "' (a classifier file)");
  }
  const ClassifierConfig config = ClassifierFromDescription(meta("classifier"), path);
  std::shared_ptr<const ScalarAffineSde> sde = SdeFromDescription(meta("sde"), config.dim);
  // The layout of a fresh classifier of this config names and sizes the tensors.
  const NoiseConditionalClassifier shape(config, sde, 0);
  Vector parameters(shape.num_parameters());
  for (const auto& tensor : shape.layout()) {
    const SafeTensor* stored = file.Find(tensor.name);
    if (stored == nullptr) throw InvalidArgument(path + ": tensor '" + tensor.name + "' is missing");
    parameters.segment(tensor.offset, tensor.size) = TensorValues(*stored, tensor.size);
  }
  const SafeTensor* fourier = file.Find("fourier.weight");
  if (fourier == nullptr) throw InvalidArgument(path + ": tensor 'fourier.weight' is missing");
  return NoiseConditionalClassifier(config, std::move(sde), std::move(parameters),
                                    TensorValues(*fourier, config.embed_dim / 2));
}

}  // namespace scoresde
