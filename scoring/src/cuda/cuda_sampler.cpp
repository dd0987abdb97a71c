// CudaSampler: reverse-time sampling on the device (cuda_backend.hpp).
//
// A run is first written down as a plan (sampler_plan.hpp: every per-step scalar computed on the
// host by the CPU code), then executed by ExecutePlan with the device operations — captured once
// into a CUDA graph that is cached and replayed for every chunk of samples, or launched op by op
// when graphs are off. The chunk's first sample index and the failure records live in device
// memory, so one graph serves all chunks. A pilot (learned score + Langevin expectation rule) is a
// second plan on its own lane, run once per configuration.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

#include "cuda_internal.hpp"
#include "sampler_plan.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {

using internal::cuda::CheckCuda;
using internal::cuda::CheckLaunch;
using internal::cuda::CudaOps;
using internal::cuda::DeviceBuffer;
using internal::cuda::DeviceContext;
using internal::cuda::DeviceWorkspace;
using internal::cuda::FailureSink;
using internal::cuda::NetworkLayout;
using internal::cuda::PinnedBuffer;
using internal::cuda::Plan;
using internal::cuda::SamplerPlanner;
using internal::cuda::SamplerPlans;

namespace internal {

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string Format(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::string Describe(const CudaSamplerOptions& o) {
  return std::string(ToString(o.predictor)) + " " + std::string(ToString(o.corrector)) + " " +
         std::to_string(o.num_steps) + " " + Format(o.eps) + " " +
         std::to_string(o.corrector_steps) + " " + Format(o.snr) + " " +
         std::to_string(o.pilot_size) + " " + (o.denoise ? "1" : "0") + " " +
         std::string(ToString(o.prior)) + " " + std::to_string(o.seed) + " " +
         std::to_string(o.chunk_size);
}

std::string Describe(const CudaFlowOptions& o) {
  return std::string(ToString(o.method)) + " " + std::to_string(o.num_steps) + " " +
         Format(o.eps) + " " + std::string(ToString(o.prior)) + " " + std::to_string(o.seed) +
         " " + std::to_string(o.chunk_size);
}

}  // namespace

class CudaSamplerImpl {
 public:
  // Learned score.
  CudaSamplerImpl(const MlpNetwork<float>& network, std::shared_ptr<const ScalarAffineSde> sde,
                  const CudaOptions& cuda)
      : ctx_(cuda), sde_(std::move(sde)), learned_(true), d_(network.config().dim) {
    net_ = std::make_unique<NetworkLayout>(network.config());
    planner_ = std::make_unique<SamplerPlanner>(*sde_, network.config(),
                                                network.fourier_weights(), true);
    const std::vector<float> store = net_->ToStore<float>(network.parameters().data());
    store_.Upload(store.data(), static_cast<int64_t>(store.size()), ctx_.stream());
    ctx_.Synchronize();
  }

  // Gaussian score (arguments checked by CheckGaussian).
  CudaSamplerImpl(std::shared_ptr<const ScalarAffineSde> sde, const Eigen::VectorXd& mean,
                  const Eigen::MatrixXd& cov, const CudaOptions& cuda)
      : ctx_(cuda), sde_(std::move(sde)), learned_(false), d_(sde_->dim()) {
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(0.5 * (cov + cov.transpose()));
    const Eigen::VectorXd lambda = eigen.eigenvalues().cwiseMax(0.0);
    const Eigen::MatrixXd q = eigen.eigenvectors();
    planner_ = std::make_unique<SamplerPlanner>(*sde_, lambda);
    q_.Upload(q.data(), q.size(), ctx_.stream());
    lambda_.Upload(lambda.data(), lambda.size(), ctx_.stream());
    mean_.Upload(mean.data(), mean.size(), ctx_.stream());
    // The exact p_T = N(α_T μ, Q diag(α_T² λ + σ_T²) Qᵀ), drawn as α_T μ + Q diag(√·) z.
    const double t_final = sde_->t_final();
    const double alpha = sde_->MeanCoefficient(t_final);
    const double sigma = sde_->MarginalStd(t_final);
    const Eigen::VectorXd m = alpha * mean;
    const Eigen::MatrixXd factor =
        q * (alpha * alpha * lambda.array() + sigma * sigma).sqrt().matrix().asDiagonal();
    prior_mean_.Upload(m.data(), m.size(), ctx_.stream());
    prior_factor_.Upload(factor.data(), factor.size(), ctx_.stream());
    ctx_.Synchronize();
  }

  ~CudaSamplerImpl() {
    for (auto& [key, compiled] : cache_) Destroy(compiled);
  }

  int dim() const { return d_; }
  const ScalarAffineSde& sde() const { return *sde_; }

  CudaSampleResult Sample(int64_t num_samples, const CudaSamplerOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    options.Validate();
    Require(num_samples >= 1 && num_samples <= (int64_t{1} << 32), "CudaSampler::Sample",
            "num_samples", num_samples, "in [1, 2^32]");
    Compiled& compiled =
        Compile("pc " + Describe(options), [&] { return planner_->PlanPc(options); });
    const double setup = compiled.fresh ? compiled.setup_seconds : 0.0;
    compiled.fresh = false;
    if (compiled.plans.pilot) RunPilot(compiled);
    CudaSampleResult result;
    result.x.resize(d_, num_samples);
    RunChunks(compiled, num_samples, &result.x, "CudaSampler::Sample");
    const bool correcting =
        options.corrector != CudaCorrector::kNone && options.corrector_steps > 0;
    result.steps = options.num_steps;
    result.nfe = int64_t{options.num_steps} *
                     ((options.predictor != CudaPredictor::kNone ? 1 : 0) +
                      (correcting ? options.corrector_steps : 0)) +
                 (options.denoise ? 1 : 0);
    if (correcting && options.corrector == CudaCorrector::kLangevin) {
      result.expected_squared_norms.resize(options.num_steps);
      compiled.expected.Download(result.expected_squared_norms.data(), options.num_steps,
                                 ctx_.stream());
    }
    result.setup_seconds = setup;
    result.seconds = Seconds(start);
    return result;
  }

  CudaSampleResult SampleProbabilityFlow(int64_t num_samples, const CudaFlowOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    options.Validate();
    Require(num_samples >= 1 && num_samples <= (int64_t{1} << 32),
            "CudaSampler::SampleProbabilityFlow", "num_samples", num_samples, "in [1, 2^32]");
    Compiled& compiled =
        Compile("flow " + Describe(options), [&] { return planner_->PlanFlow(options); });
    const double setup = compiled.fresh ? compiled.setup_seconds : 0.0;
    compiled.fresh = false;
    CudaSampleResult result;
    result.x.resize(d_, num_samples);
    RunChunks(compiled, num_samples, &result.x, "CudaSampler::SampleProbabilityFlow");
    const int stages = options.method == CudaFlowMethod::kEuler
                           ? 1
                           : (options.method == CudaFlowMethod::kHeun ? 2 : 4);
    result.steps = options.num_steps;
    result.nfe = int64_t{options.num_steps} * stages;
    result.setup_seconds = setup;
    result.seconds = Seconds(start);
    return result;
  }

  Matrix EvaluateScore(const Matrix& x, double t) {
    constexpr const char* kWhere = "CudaSampler::EvaluateScore";
    CheckShape(kWhere, "x", x, d_, -1);
    Require(x.cols() >= 1 && x.cols() <= (1 << 30), kWhere, "x.cols()",
            static_cast<int64_t>(x.cols()), "in [1, 2^30]");
    CheckFinite(kWhere, "x", x);
    Require(std::isfinite(t) && t >= 0.0 && t <= sde_->t_final(), kWhere, "t", t, "in [0, T]");
    const int n = static_cast<int>(x.cols());
    Lane lane;
    PrepareLane(n, 0, &lane);
    const Plan plan = planner_->PlanScore(t);
    DeviceBuffer<float> table;
    UploadTable(plan, &table);
    lane.buffers[internal::cuda::kX].Upload(x.data(), x.size(), ctx_.stream());
    Execute(plan, table, lane, nullptr);
    Matrix s(d_, n);
    lane.buffers[internal::cuda::kS].Download(s.data(), s.size(), ctx_.stream());
    return s;
  }

 private:
  // Device buffers of one column block.
  struct Lane {
    int n = 0;
    DeviceBuffer<double> buffers[internal::cuda::kNumBuffers];
    DeviceBuffer<double> scratch;  // Gaussian score's w, exact prior's z, reductions' partials
    DeviceWorkspace ws;
    DeviceBuffer<unsigned long long> failures;
    DeviceBuffer<int> any;
    DeviceBuffer<int64_t> first_sample;
  };

  struct Compiled {
    SamplerPlans plans;
    Lane lane, pilot_lane;
    DeviceBuffer<float> table, pilot_table;
    DeviceBuffer<double> expected;
    cudaGraph_t graph = nullptr, pilot_graph = nullptr;
    cudaGraphExec_t exec = nullptr, pilot_exec = nullptr;
    double setup_seconds = 0.0;
    bool fresh = true;
    bool pilot_done = false;
  };

  void Destroy(Compiled& c) {
    if (c.exec != nullptr) cudaGraphExecDestroy(c.exec);
    if (c.graph != nullptr) cudaGraphDestroy(c.graph);
    if (c.pilot_exec != nullptr) cudaGraphExecDestroy(c.pilot_exec);
    if (c.pilot_graph != nullptr) cudaGraphDestroy(c.pilot_graph);
    c.exec = c.pilot_exec = nullptr;
    c.graph = c.pilot_graph = nullptr;
  }

  template <typename Planner>
  Compiled& Compile(const std::string& key, Planner planner) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const auto start = std::chrono::steady_clock::now();
    ctx_.Activate();
    SamplerPlans plans = planner();  // throws InvalidArgument before anything is cached
    auto [inserted, ok] = cache_.emplace(key, Compiled{});
    Compiled& c = inserted->second;
    try {
      c.plans = std::move(plans);
      PrepareLane(static_cast<int>(c.plans.chunk_size), 0, &c.lane);
      UploadTable(c.plans.main, &c.table);
      c.expected.Resize(std::max(1, c.plans.levels));
      if (!c.plans.expected.empty()) {
        c.expected.Upload(c.plans.expected.data(),
                          static_cast<int64_t>(c.plans.expected.size()), ctx_.stream());
      }
      if (c.plans.pilot) {
        PrepareLane(c.plans.pilot_size, 0, &c.pilot_lane);
        UploadTable(*c.plans.pilot, &c.pilot_table);
      }
      if (ctx_.options().use_graphs) {
        c.exec = CaptureGraph(c.plans.main, c.table, &c.lane, c.expected.data(), &c.graph);
        if (c.plans.pilot) {
          c.pilot_exec = CaptureGraph(*c.plans.pilot, c.pilot_table, &c.pilot_lane,
                                      c.expected.data(), &c.pilot_graph);
        }
      }
      ctx_.Synchronize();
    } catch (...) {
      Destroy(c);
      cache_.erase(inserted);
      throw;
    }
    c.setup_seconds = Seconds(start);
    return c;
  }

  cudaGraphExec_t CaptureGraph(const Plan& plan, const DeviceBuffer<float>& table, Lane* lane,
                               double* expected, cudaGraph_t* graph) {
    cudaStream_t stream = ctx_.stream();
    // One eager score evaluation on this lane first, so that cuBLAS has chosen (and loaded) its
    // kernels for these shapes outside the capture.
    {
      const Plan warm = planner_->PlanScore(sde_->t_final());
      DeviceBuffer<float> warm_table;
      UploadTable(warm, &warm_table);
      Execute(warm, warm_table, *lane, nullptr);
      ctx_.Synchronize();
    }
    CheckCuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture");
    try {
      Execute(plan, table, *lane, expected);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken != nullptr) cudaGraphDestroy(broken);
      throw;
    }
    CheckCuda(cudaStreamEndCapture(stream, graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    CheckCuda(cudaGraphInstantiate(&exec, *graph, 0), "cudaGraphInstantiate");
    return exec;
  }

  // Allocates a lane of n columns; `first` is the first sample index until a chunk sets it.
  void PrepareLane(int n, int64_t first, Lane* lane) {
    cudaStream_t stream = ctx_.stream();
    lane->n = n;
    for (auto& b : lane->buffers) {
      b.Resize(int64_t{d_} * n);
      b.Zero(stream);
    }
    lane->scratch.Resize(std::max<int64_t>(int64_t{d_} * n,
                                           n + internal::cuda::ReductionPartials(n)));
    lane->failures.Resize(n);
    lane->any.Resize(1);
    lane->first_sample.Resize(1);
    CheckCuda(cudaMemcpyAsync(lane->first_sample.data(), &first, sizeof(int64_t),
                              cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync(first sample)");
    if (learned_) lane->ws.Prepare(*net_, n, false, true, stream);
    ctx_.Synchronize();
  }

  void UploadTable(const Plan& plan, DeviceBuffer<float>* table) {
    if (plan.table.empty()) {
      table->Resize(1);
      return;
    }
    const std::vector<float> values(plan.table.begin(), plan.table.end());
    table->Upload(values.data(), static_cast<int64_t>(values.size()), ctx_.stream());
    ctx_.Synchronize();
  }

  void Execute(const Plan& plan, const DeviceBuffer<float>& table, Lane& lane, double* expected) {
    internal::cuda::ScoreView<float> score;
    score.learned = learned_;
    score.net = net_.get();
    score.store = store_.data();
    score.q = q_.data();
    score.lambda = lambda_.data();
    score.mean = mean_.data();
    score.prior_mean = prior_mean_.data();
    score.prior_factor = prior_factor_.data();
    internal::cuda::LaneView<float> view;
    view.n = lane.n;
    view.d = d_;
    for (int b = 0; b < internal::cuda::kNumBuffers; ++b) view.buffers[b] = lane.buffers[b].data();
    view.scratch = lane.scratch.data();
    view.sink = FailureSink{lane.failures.data(), lane.any.data()};
    view.first_sample = lane.first_sample.data();
    if (learned_) view.pass = lane.ws.View();
    view.table = table.data();
    view.expected = expected;
    internal::cuda::ExecutePlan(CudaOps(ctx_), plan, score, view);
    CheckLaunch("CudaSampler");
  }

  void Launch(const Plan& plan, cudaGraphExec_t exec, const DeviceBuffer<float>& table,
              Lane& lane, double* expected) {
    if (exec != nullptr) {
      CheckCuda(cudaGraphLaunch(exec, ctx_.stream()), "cudaGraphLaunch");
    } else {
      Execute(plan, table, lane, expected);
    }
  }

  // Throws NumericalFailure if the lane recorded a non-finite value among its first `valid`
  // columns (smallest step, then smallest sample, as the CPU samplers report).
  void CheckFailures(Lane* lane, int64_t first_sample, int64_t valid,
                     const std::vector<double>& times, const std::string& where) {
    int any = 0;
    CheckCuda(cudaMemcpyAsync(&any, lane->any.data(), sizeof(int), cudaMemcpyDeviceToHost,
                              ctx_.stream()),
              "cudaMemcpyAsync(failure flag)");
    ctx_.Synchronize();
    if (any == 0) return;
    std::vector<unsigned long long> keys(lane->n);
    lane->failures.Download(keys.data(), lane->n, ctx_.stream());
    unsigned long long best = ~0ull;
    int64_t sample = -1;
    for (int64_t j = 0; j < valid; ++j) {
      if ((keys[j] >> 32) < (best >> 32)) {
        best = keys[j];
        sample = j;
      }
    }
    if (sample < 0) return;  // only padding columns failed
    const int64_t step = static_cast<int64_t>(best >> 32);
    const int64_t coordinate = static_cast<int64_t>(best & 0xffffffffull);
    const double t = step < static_cast<int64_t>(times.size()) ? times[step] : 0.0;
    throw NumericalFailure(where + ": state is not finite at step " + std::to_string(step) +
                               " (t = " + FormatValue(t) + "), sample " +
                               std::to_string(first_sample + sample) + ", coordinate " +
                               std::to_string(coordinate),
                           step, t, first_sample + sample, coordinate);
  }

  void RunPilot(Compiled& c) {
    if (c.pilot_done) return;
    Launch(*c.plans.pilot, c.pilot_exec, c.pilot_table, c.pilot_lane, c.expected.data());
    CheckFailures(&c.pilot_lane, 0, c.pilot_lane.n, c.plans.report_times, "CudaSampler pilot");
    std::vector<double> expected(c.plans.levels);
    c.expected.Download(expected.data(), c.plans.levels, ctx_.stream());
    for (int i = 0; i < c.plans.levels; ++i) {
      if (!(std::isfinite(expected[i]) && expected[i] > 0.0)) {
        throw NumericalFailure("CudaSampler pilot: mean squared score norm is " +
                                   FormatValue(expected[i]) + " at step " + std::to_string(i) +
                                   " (t = " + FormatValue(c.plans.report_times[i]) + ")",
                               i, c.plans.report_times[i], -1, -1);
      }
    }
    c.pilot_done = true;
  }

  void RunChunks(Compiled& c, int64_t num_samples, Matrix* x, const std::string& where) {
    cudaStream_t stream = ctx_.stream();
    const int64_t chunk = c.lane.n;
    first_host_.Resize(1);
    staging_.Resize(int64_t{d_} * chunk);
    for (int64_t first = 0; first < num_samples; first += chunk) {
      const int64_t count = std::min(chunk, num_samples - first);
      first_host_.data()[0] = first;
      CheckCuda(cudaMemcpyAsync(c.lane.first_sample.data(), first_host_.data(), sizeof(int64_t),
                                cudaMemcpyHostToDevice, stream),
                "cudaMemcpyAsync(first sample)");
      Launch(c.plans.main, c.exec, c.table, c.lane, c.expected.data());
      CheckCuda(cudaMemcpyAsync(staging_.data(), c.lane.buffers[internal::cuda::kX].data(),
                                static_cast<size_t>(d_ * count) * sizeof(double),
                                cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync(samples)");
      CheckFailures(&c.lane, first, count, c.plans.report_times, where);
      std::copy(staging_.data(), staging_.data() + d_ * count, x->data() + first * d_);
    }
  }

  DeviceContext ctx_;
  std::shared_ptr<const ScalarAffineSde> sde_;
  bool learned_ = false;
  int d_ = 0;
  std::unique_ptr<SamplerPlanner> planner_;
  // Learned score.
  std::unique_ptr<NetworkLayout> net_;
  DeviceBuffer<float> store_;
  // Gaussian score: cov = Q diag(λ) Qᵀ, and the exact prior's m, M.
  DeviceBuffer<double> q_, lambda_, mean_, prior_mean_, prior_factor_;

  std::map<std::string, Compiled> cache_;
  PinnedBuffer<int64_t> first_host_;
  PinnedBuffer<double> staging_;
};

}  // namespace internal

CudaSampler::CudaSampler(const MlpNetwork<float>& network,
                         std::shared_ptr<const ScalarAffineSde> sde, const CudaOptions& cuda) {
  Require(sde != nullptr, "CudaSampler", "sde", std::string("null"), "non-null");
  Require(sde->dim() == network.config().dim, "CudaSampler", "sde.dim()", sde->dim(),
          "the network's dim " + std::to_string(network.config().dim));
  cuda.Validate();
  impl_ = std::make_unique<internal::CudaSamplerImpl>(network, std::move(sde), cuda);
}

CudaSampler::CudaSampler(std::unique_ptr<internal::CudaSamplerImpl> impl)
    : impl_(std::move(impl)) {}

namespace {

void CheckGaussian(const ScalarAffineSde* sde, const Eigen::VectorXd& mean,
                   const Eigen::MatrixXd& cov) {
  constexpr const char* kWhere = "CudaSampler::Gaussian";
  Require(sde != nullptr, kWhere, "sde", std::string("null"), "non-null");
  const int d = sde->dim();
  Require(mean.size() == d, kWhere, "mean.size()", static_cast<int64_t>(mean.size()),
          "the SDE's dim " + std::to_string(d));
  Require(mean.allFinite(), kWhere, "mean", std::string("non-finite"), "finite");
  Require(cov.rows() == d && cov.cols() == d, kWhere, "cov.rows()",
          static_cast<int64_t>(cov.rows()), "d × d with d = " + std::to_string(d));
  Require(cov.allFinite(), kWhere, "cov", std::string("non-finite"), "finite");
  const double scale = std::max(1.0, cov.cwiseAbs().maxCoeff());
  const double asymmetry = (cov - cov.transpose()).cwiseAbs().maxCoeff();
  Require(asymmetry <= 1e-12 * scale, kWhere, "max |cov - cov^T|", asymmetry, "0 (symmetric)");
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(cov, Eigen::EigenvaluesOnly);
  Require(eigen.eigenvalues().minCoeff() >= -1e-12 * scale, kWhere, "smallest eigenvalue of cov",
          eigen.eigenvalues().minCoeff(), ">= 0 (positive semi-definite)");
}

}  // namespace

CudaSampler CudaSampler::Gaussian(std::shared_ptr<const ScalarAffineSde> sde,
                                  const Eigen::VectorXd& mean, const Eigen::MatrixXd& cov,
                                  const CudaOptions& cuda) {
  CheckGaussian(sde.get(), mean, cov);
  cuda.Validate();
  return CudaSampler(
      std::make_unique<internal::CudaSamplerImpl>(std::move(sde), mean, cov, cuda));
}

CudaSampler::~CudaSampler() = default;
CudaSampler::CudaSampler(CudaSampler&&) noexcept = default;
CudaSampler& CudaSampler::operator=(CudaSampler&&) noexcept = default;

int CudaSampler::dim() const { return impl_->dim(); }
const ScalarAffineSde& CudaSampler::sde() const { return impl_->sde(); }

CudaSampleResult CudaSampler::Sample(int64_t num_samples, const CudaSamplerOptions& options) {
  return impl_->Sample(num_samples, options);
}

CudaSampleResult CudaSampler::SampleProbabilityFlow(int64_t num_samples,
                                                    const CudaFlowOptions& options) {
  return impl_->SampleProbabilityFlow(num_samples, options);
}

Matrix CudaSampler::EvaluateScore(const Matrix& x, double t) {
  return impl_->EvaluateScore(x, t);
}

}  // namespace scoresde
