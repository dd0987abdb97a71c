// CudaTrainer: one score-matching update per batch on the device (cuda_backend.hpp).
//
// A step is a fixed sequence of launches that reads everything that changes from step to step
// (the update counter, hence the noise step, the learning rate and the bias corrections) from
// device memory, so after one eager step it is captured into a CUDA graph and replayed:
//   draws (t, α, σ, W, a, b, c_in, τ) → inputs (z, x, [c_in x; e]) → forward [→ tangent] → loss
//   and ∂loss/∂F → loss sum → backward → ‖g‖ → update scalars → clip + Adam + EMA.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_internal.hpp"
#include "train_step.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {

using internal::cuda::CheckCuda;
using internal::cuda::CheckLaunch;
using internal::cuda::DeviceBuffer;
using internal::cuda::CudaOps;
using internal::cuda::DeviceContext;
using internal::cuda::DeviceWorkspace;
using internal::cuda::NetworkLayout;
using internal::cuda::PinnedBuffer;

namespace internal {

class CudaTrainerImpl {
 public:
  CudaTrainerImpl(const MlpNetwork<float>& initial, std::shared_ptr<const ScalarAffineSde> sde,
                  const LossOptions& loss, const AdamOptions& adam,
                  const CudaTrainerOptions& options, const CudaOptions& cuda)
      : ctx_(cuda),
        net_(initial.config()),
        config_(initial.config()),
        sde_(std::move(sde)),
        loss_(loss),
        adam_(adam),
        options_(options),
        fourier_host_(initial.fourier_weights()) {
    sliced_ = loss_.kind == LossKind::kSsm || loss_.kind == LossKind::kSsmVr;
    batch_ = static_cast<int>(options_.batch_size);
    capacity_ = options_.history;
    SetUpParameters();
    Allocate();
    Reset(initial.parameters(), Eigen::VectorXf::Zero(initial.num_parameters()),
          Eigen::VectorXf::Zero(initial.num_parameters()), initial.parameters(), 0, 0);
  }

  ~CudaTrainerImpl() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
    for (cudaEvent_t e : staged_) {
      if (e != nullptr) cudaEventDestroy(e);
    }
  }

  void Enqueue(ConstBatchRef x0) {
    constexpr const char* kWhere = "CudaTrainer::Enqueue";
    CheckShape(kWhere, "x0", x0, config_.dim, options_.batch_size);
    CheckFinite(kWhere, "x0", x0);
    if (pending_ == capacity_) Collect();
    ctx_.Activate();
    const int64_t count = int64_t{config_.dim} * batch_;
    const int slot = static_cast<int>(host_step_ % 2);
    CheckCuda(cudaEventSynchronize(staged_[slot]), "cudaEventSynchronize");
    double* staging = staging_[slot].data();
    for (Eigen::Index j = 0; j < x0.cols(); ++j) {
      std::copy(x0.col(j).data(), x0.col(j).data() + config_.dim, staging + j * config_.dim);
    }
    CheckCuda(cudaMemcpyAsync(x0_.data(), staging, static_cast<size_t>(count) * sizeof(double),
                              cudaMemcpyHostToDevice, ctx_.stream()),
              "cudaMemcpyAsync(batch)");
    CheckCuda(cudaEventRecord(staged_[slot], ctx_.stream()), "cudaEventRecord");
    if (!ctx_.options().use_graphs || eager_steps_ == 0) {
      // The first step runs eagerly (module loading, cuBLAS heuristics) before any capture.
      EnqueueStep();
      ++eager_steps_;
    } else {
      if (exec_ == nullptr) Capture();
      CheckCuda(cudaGraphLaunch(exec_, ctx_.stream()), "cudaGraphLaunch");
    }
    ++host_step_;
    ++pending_;
  }

  std::vector<CudaStepRecord> Wait() {
    Collect();
    std::vector<CudaStepRecord> records;
    records.swap(completed_);
    if (failed_step_ >= 0) {
      const int64_t failed = failed_step_;
      throw NumericalFailure("CudaTrainer: the gradient is not finite at update " +
                                 std::to_string(failed) +
                                 " (that update and later ones were skipped; Restore() to go on)",
                             failed, 0.0, -1, -1);
    }
    return records;
  }

  int64_t step() const { return host_step_; }
  int64_t ema_updates() {
    Collect();
    return ReadCounters().ema_updates;
  }
  const MlpConfig& config() const { return config_; }

  Eigen::VectorXf Download(const DeviceBuffer<float>& buffer) {
    Collect();
    std::vector<float> store(static_cast<size_t>(net_.store_size));
    buffer.Download(store.data(), net_.store_size, ctx_.stream());
    Eigen::VectorXf canonical(net_.num_parameters);
    net_.FromStore<float>(store.data(), canonical.data());
    return canonical;
  }

  void Restore(int64_t step, const Eigen::VectorXf& parameters, const Eigen::VectorXf& m,
               const Eigen::VectorXf& v, const Eigen::VectorXf& average, int64_t ema_updates) {
    constexpr const char* kWhere = "CudaTrainer::Restore";
    const int64_t p = net_.num_parameters;
    Require(step >= 0, kWhere, "step", step, ">= 0");
    Require(ema_updates >= 0, kWhere, "ema_updates", ema_updates, ">= 0");
    for (const auto& [name, vec] : {std::pair<const char*, const Eigen::VectorXf*>{"parameters",
                                                                                  &parameters},
                                    {"m", &m},
                                    {"v", &v},
                                    {"average", &average}}) {
      Require(vec->size() == p, kWhere, std::string(name) + ".size()",
              static_cast<int64_t>(vec->size()), std::to_string(p) + " (the layout)");
      Require(vec->allFinite(), kWhere, name, std::string("non-finite"), "finite");
    }
    Require((v.array() >= 0.0f).all(), kWhere, "v", std::string("negative entries"), ">= 0");
    Collect();
    completed_.clear();
    Reset(parameters, m, v, average, step, ema_updates);
  }

  MlpNetwork<float> Network(bool use_average) {
    Eigen::VectorXf p = Download(use_average ? ema_ : params_);
    return MlpNetwork<float>(config_, std::move(p), fourier_host_);
  }

  DeviceBuffer<float> params_, m_, v_, ema_;

 private:
  void SetUpParameters() {
    std::vector<double> alpha_bar;
    step_config_ = internal::cuda::MakeTrainStepConfig(*sde_, config_, loss_, adam_,
                                                       options_.seed, batch_, &alpha_bar);
    if (!alpha_bar.empty()) {
      alpha_bar_.Upload(alpha_bar.data(), static_cast<int64_t>(alpha_bar.size()), ctx_.stream());
      ctx_.Synchronize();
      step_config_.loss.alpha_bar = alpha_bar_.data();
    }
  }

  void Allocate() {
    cudaStream_t stream = ctx_.stream();
    const int d = config_.dim;
    const int64_t store = net_.store_size;
    for (auto* buffer : {&params_, &grad_, &m_, &v_, &ema_}) {
      buffer->Resize(store);
      buffer->Zero(stream);
    }
    fourier_.Upload(fourier_host_.data(), fourier_host_.size(), stream);
    counters_.Resize(1);
    scalars_.Resize(1);
    history_loss_.Resize(capacity_);
    history_norm_.Resize(capacity_);
    partial_.Resize(std::max(internal::cuda::ReductionPartials(batch_),
                             internal::cuda::ReductionPartials(store)));
    x0_.Resize(int64_t{d} * batch_);
    x_.Resize(int64_t{d} * batch_);
    z_.Resize(int64_t{d} * batch_);
    draws_.Resize(batch_);
    per_example_.Resize(batch_);
    g_.Resize(int64_t{d} * batch_);
    if (sliced_) {
      v_noise_.Resize(int64_t{d} * batch_);
      g_dot_.Resize(int64_t{d} * batch_);
    }
    ws_.Prepare(net_, batch_, sliced_, false, stream);
    buffers_.net = &net_;
    buffers_.pass = ws_.View();
    buffers_.params = params_.data();
    buffers_.grad = grad_.data();
    buffers_.m = m_.data();
    buffers_.v = v_.data();
    buffers_.ema = ema_.data();
    buffers_.fourier = fourier_.data();
    buffers_.x0 = x0_.data();
    buffers_.x = x_.data();
    buffers_.z = z_.data();
    buffers_.v_noise = sliced_ ? v_noise_.data() : nullptr;
    buffers_.draws = draws_.data();
    buffers_.per_example = per_example_.data();
    buffers_.g = g_.data();
    buffers_.g_dot = sliced_ ? g_dot_.data() : nullptr;
    buffers_.partial = partial_.data();
    buffers_.history_loss = history_loss_.data();
    buffers_.history_norm = history_norm_.data();
    buffers_.capacity = capacity_;
    buffers_.counters = counters_.data();
    buffers_.scalars = scalars_.data();
    for (int k = 0; k < 2; ++k) {
      staging_[k].Resize(int64_t{d} * batch_);
      CheckCuda(cudaEventCreateWithFlags(&staged_[k], cudaEventDisableTiming), "cudaEventCreate");
      CheckCuda(cudaEventRecord(staged_[k], stream), "cudaEventRecord");
    }
    ctx_.Synchronize();
  }

  void Reset(const Eigen::VectorXf& parameters, const Eigen::VectorXf& m,
             const Eigen::VectorXf& v, const Eigen::VectorXf& average, int64_t step,
             int64_t ema_updates) {
    cudaStream_t stream = ctx_.stream();
    const auto upload = [&](DeviceBuffer<float>& buffer, const Eigen::VectorXf& values) {
      const std::vector<float> store = net_.ToStore<float>(values.data());
      buffer.Upload(store.data(), static_cast<int64_t>(store.size()), stream);
    };
    upload(params_, parameters);
    upload(m_, m);
    upload(v_, v);
    upload(ema_, average);
    const internal::cuda::TrainCounters counters{step, ema_updates, -1};
    CheckCuda(cudaMemcpyAsync(counters_.data(), &counters, sizeof(counters),
                              cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync(counters)");
    ctx_.Synchronize();
    host_step_ = step;
    device_base_ = step;
    pending_ = 0;
    failed_step_ = -1;
  }

  // The launches of one step (also what the graph holds): train_step.hpp on the device.
  void EnqueueStep() {
    internal::cuda::TrainStep(CudaOps(ctx_), step_config_, buffers_);
    CheckLaunch("CudaTrainer step");
  }

  void Capture() {
    cudaStream_t stream = ctx_.stream();
    CheckCuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture");
    try {
      EnqueueStep();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken != nullptr) cudaGraphDestroy(broken);
      throw;
    }
    CheckCuda(cudaStreamEndCapture(stream, &graph_), "cudaStreamEndCapture");
    CheckCuda(cudaGraphInstantiate(&exec_, graph_, 0), "cudaGraphInstantiate");
  }

  internal::cuda::TrainCounters ReadCounters() {
    internal::cuda::TrainCounters counters{};
    CheckCuda(cudaMemcpyAsync(&counters, counters_.data(), sizeof(counters),
                              cudaMemcpyDeviceToHost, ctx_.stream()),
              "cudaMemcpyAsync(counters)");
    ctx_.Synchronize();
    return counters;
  }

  // Waits for the pending steps and moves their records to completed_.
  void Collect() {
    ctx_.Activate();
    ctx_.Synchronize();
    if (pending_ == 0) return;
    const internal::cuda::TrainCounters counters = ReadCounters();
    std::vector<double> losses(capacity_), norms(capacity_);
    history_loss_.Download(losses.data(), capacity_, ctx_.stream());
    history_norm_.Download(norms.data(), capacity_, ctx_.stream());
    for (int i = 0; i < pending_; ++i) {
      const int64_t done_before = device_base_ + i;
      if (counters.failed_step >= 0 && done_before + 1 >= counters.failed_step) break;
      const int slot = static_cast<int>(done_before % capacity_);
      completed_.push_back({done_before + 1, losses[slot], norms[slot]});
    }
    if (counters.failed_step >= 0) {
      failed_step_ = counters.failed_step;
      host_step_ = counters.step;
    }
    device_base_ = counters.step;
    pending_ = 0;
  }

  DeviceContext ctx_;
  NetworkLayout net_;
  MlpConfig config_;
  std::shared_ptr<const ScalarAffineSde> sde_;
  LossOptions loss_;
  AdamOptions adam_;
  CudaTrainerOptions options_;
  Eigen::VectorXf fourier_host_;
  bool sliced_ = false;
  int batch_ = 0;
  int capacity_ = 0;

  internal::cuda::TrainStepConfig step_config_;
  internal::cuda::TrainStepBuffers<float> buffers_;

  DeviceBuffer<float> grad_, fourier_, g_, g_dot_;
  DeviceBuffer<double> alpha_bar_, history_loss_, history_norm_, partial_, x0_, x_, z_, v_noise_,
      per_example_;
  DeviceBuffer<internal::cuda::TrainCounters> counters_;
  DeviceBuffer<internal::cuda::UpdateScalars<float>> scalars_;
  DeviceBuffer<internal::cuda::PerSample> draws_;
  DeviceWorkspace ws_;
  PinnedBuffer<double> staging_[2];
  cudaEvent_t staged_[2] = {nullptr, nullptr};

  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  int64_t eager_steps_ = 0;

  int64_t host_step_ = 0;    // updates enqueued (plus the restored step)
  int64_t device_base_ = 0;  // the device's update count when the pending steps began
  int pending_ = 0;
  int64_t failed_step_ = -1;
  std::vector<CudaStepRecord> completed_;
};

}  // namespace internal

CudaTrainer::CudaTrainer(const MlpNetwork<float>& initial,
                         std::shared_ptr<const ScalarAffineSde> sde, const LossOptions& loss,
                         const AdamOptions& adam, const CudaTrainerOptions& options,
                         const CudaOptions& cuda) {
  // Everything is checked before a device is asked for.
  constexpr const char* kWhere = "CudaTrainer";
  Require(sde != nullptr, kWhere, "sde", std::string("null"), "non-null");
  options.Validate();
  adam.Validate();
  cuda.Validate();
  // The CPU loss validates the options, the dims and the SDE requirements of ddpm and ncsn.
  const ScoreMatchingLoss cpu_loss(sde, initial.config(), loss);
  Require(loss.kind != LossKind::kEsm, kWhere, "loss kind", std::string("esm"),
          "dsm, ssm, ssm-vr, ddpm or ncsn (exact score matching needs d tangent passes and runs "
          "on the cpu backend)");
  impl_ = std::make_unique<internal::CudaTrainerImpl>(initial, std::move(sde), loss, adam,
                                                      options, cuda);
}
CudaTrainer::~CudaTrainer() = default;
CudaTrainer::CudaTrainer(CudaTrainer&&) noexcept = default;
CudaTrainer& CudaTrainer::operator=(CudaTrainer&&) noexcept = default;

void CudaTrainer::Enqueue(ConstBatchRef x0) { impl_->Enqueue(x0); }
std::vector<CudaStepRecord> CudaTrainer::Wait() { return impl_->Wait(); }
CudaStepRecord CudaTrainer::Step(ConstBatchRef x0) {
  impl_->Enqueue(x0);
  return impl_->Wait().back();
}
int64_t CudaTrainer::step() const { return impl_->step(); }
int64_t CudaTrainer::ema_updates() const { return impl_->ema_updates(); }
const MlpConfig& CudaTrainer::config() const { return impl_->config(); }
Eigen::VectorXf CudaTrainer::Parameters() const { return impl_->Download(impl_->params_); }
Eigen::VectorXf CudaTrainer::Average() const { return impl_->Download(impl_->ema_); }
Eigen::VectorXf CudaTrainer::FirstMoment() const { return impl_->Download(impl_->m_); }
Eigen::VectorXf CudaTrainer::SecondMoment() const { return impl_->Download(impl_->v_); }
MlpNetwork<float> CudaTrainer::Network(bool use_average) const {
  return impl_->Network(use_average);
}
void CudaTrainer::Restore(int64_t step, const Eigen::VectorXf& parameters,
                          const Eigen::VectorXf& m, const Eigen::VectorXf& v,
                          const Eigen::VectorXf& average, int64_t ema_updates) {
  impl_->Restore(step, parameters, m, v, average, ema_updates);
}

}  // namespace scoresde
