// CudaSampler: reverse-time sampling on the device (cuda_backend.hpp).
//
// A run is first written down as a plan, a list of device operations with every per-step scalar
// computed on the host by the CPU code itself (ComputeScoreCoefficients, Discretize, the Fourier
// embedding of each evaluation time, ...), then enqueued — once into a CUDA graph that is cached
// and replayed for every chunk of samples, or launch by launch when graphs are off. The chunk's
// first sample index and the failure records live in device memory, so one graph serves all
// chunks. A pilot (learned score + Langevin expectation rule) is a second plan on its own lane.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

#include "cuda_internal.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {

using internal::cuda::CheckCuda;
using internal::cuda::CheckLaunch;
using internal::cuda::DeviceBuffer;
using internal::cuda::DeviceContext;
using internal::cuda::DeviceNetwork;
using internal::cuda::FailureSink;
using internal::cuda::NoiseKey;
using internal::cuda::PinnedBuffer;
using internal::cuda::UpdateArgs;

namespace internal {

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Buffers of a lane that operations name.
enum Buffer : int { kX = 0, kS, kY, kK1, kK2, kK3, kK4, kNumBuffers };

struct Op {
  enum Kind { kResetFailures, kPrior, kScore, kUpdate, kAxpby, kStageSum, kMeanSquaredNorm,
              kDenoise };
  Kind kind = kScore;
  Buffer in = kX;   // score input, axpby x
  Buffer out = kS;  // score output, axpby/stage output
  // kScore
  double t = 0.0;
  ScoreCoefficients coef;
  int eval = 0;  // row of the embedding table
  double alpha = 1.0, sigma2 = 0.0;
  // kPrior
  NoiseKey key;
  double prior_std = 1.0;
  bool exact_prior = false;
  // kUpdate
  UpdateArgs update;
  // kAxpby: out = p in + q s; kStageSum: out = in + Σ c_i k_i
  double p = 1.0, q = 0.0;
  double c[4] = {0.0, 0.0, 0.0, 0.0};
  Buffer k[4] = {kK1, kK2, kK3, kK4};
  int num_k = 0;
  // kMeanSquaredNorm: expected[level]; kDenoise: σ², α
  int level = 0;
  int64_t report_step = 0;
};

struct Plan {
  std::vector<Op> ops;
  std::vector<float> table;  // embedding rows, one per score evaluation (learned score)
  int evaluations = 0;
};

}  // namespace

class CudaSamplerImpl {
 public:
  // Learned score.
  CudaSamplerImpl(const MlpNetwork<float>& network, std::shared_ptr<const ScalarAffineSde> sde,
                  const CudaOptions& cuda)
      : ctx_(cuda), sde_(std::move(sde)), learned_(true), config_(network.config()) {
    d_ = config_.dim;
    net_ = std::make_unique<DeviceNetwork>(config_);
    fourier_host_ = network.fourier_weights();
    const std::vector<float> store = net_->ToStore(network.parameters().data());
    store_.Upload(store.data(), static_cast<int64_t>(store.size()), ctx_.stream());
    ctx_.Synchronize();
  }

  // Gaussian score (arguments checked by CheckGaussian).
  CudaSamplerImpl(std::shared_ptr<const ScalarAffineSde> sde, const Eigen::VectorXd& mean,
                  const Eigen::MatrixXd& cov, const CudaOptions& cuda)
      : ctx_(cuda), sde_(std::move(sde)), learned_(false) {
    d_ = sde_->dim();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(0.5 * (cov + cov.transpose()));
    lambda_host_ = eigen.eigenvalues().cwiseMax(0.0);
    const Eigen::MatrixXd q = eigen.eigenvectors();
    q_.Upload(q.data(), q.size(), ctx_.stream());
    // The exact p_T = N(α_T μ, Q diag(α_T² λ + σ_T²) Qᵀ), drawn as α_T μ + Q diag(√·) z.
    const double t_final = sde_->t_final();
    const double alpha = sde_->MeanCoefficient(t_final);
    const double sigma = sde_->MarginalStd(t_final);
    const Eigen::VectorXd m = alpha * mean;
    const Eigen::MatrixXd factor =
        q * (alpha * alpha * lambda_host_.array() + sigma * sigma).sqrt().matrix().asDiagonal();
    prior_mean_.Upload(m.data(), m.size(), ctx_.stream());
    prior_factor_.Upload(factor.data(), factor.size(), ctx_.stream());
    lambda_.Upload(lambda_host_.data(), lambda_host_.size(), ctx_.stream());
    mean_.Upload(mean.data(), mean.size(), ctx_.stream());
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
    const std::string key = "pc " + Describe(options);
    Compiled& compiled = Compile(key, [&](Compiled* c) { PlanPc(options, c); });
    double setup = compiled.fresh ? compiled.setup_seconds : 0.0;
    compiled.fresh = false;
    if (compiled.pilot_plan.has_value()) RunPilot(compiled);
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
    const std::string key = "flow " + std::string(ToString(options.method)) + " " +
                            std::to_string(options.num_steps) + " " + Format(options.eps) + " " +
                            std::to_string(options.seed) + " " +
                            std::to_string(options.chunk_size) + " " +
                            std::string(ToString(options.prior));
    Compiled& compiled = Compile(key, [&](Compiled* c) { PlanFlow(options, c); });
    double setup = compiled.fresh ? compiled.setup_seconds : 0.0;
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
    Plan plan;
    plan.ops.push_back(ScoreOp(t, kX, kS, &plan));
    DeviceBuffer<float> table;
    DeviceBuffer<double> expected;
    UploadTable(plan, &table);
    lane.buffers[kX].Upload(x.data(), x.size(), ctx_.stream());
    Enqueue(plan, table, expected, &lane);
    Matrix s(d_, n);
    lane.buffers[kS].Download(s.data(), s.size(), ctx_.stream());
    return s;
  }

 private:
  // Device buffers of one column block.
  struct Lane {
    int n = 0;
    DeviceBuffer<double> buffers[kNumBuffers];
    DeviceBuffer<double> scratch;  // Gaussian score's w, reductions' partial sums
    DeviceNetwork::Workspace ws;
    DeviceBuffer<unsigned long long> failures;
    DeviceBuffer<int> any;
    DeviceBuffer<int64_t> first_sample;
  };

  struct Compiled {
    Plan plan;
    std::optional<Plan> pilot_plan;
    Lane lane, pilot_lane;
    DeviceBuffer<float> table, pilot_table;
    DeviceBuffer<double> expected;
    std::vector<double> report_times;  // t of each reported step index
    cudaGraph_t graph = nullptr, pilot_graph = nullptr;
    cudaGraphExec_t exec = nullptr, pilot_exec = nullptr;
    double setup_seconds = 0.0;
    bool fresh = true;
    bool pilot_done = false;
  };

  static std::string Format(double value) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.17g", value);
    return text;
  }

  static std::string Describe(const CudaSamplerOptions& o) {
    return std::string(ToString(o.predictor)) + " " + std::string(ToString(o.corrector)) + " " +
           std::to_string(o.num_steps) + " " + Format(o.eps) + " " +
           std::to_string(o.corrector_steps) + " " + Format(o.snr) + " " +
           std::to_string(o.pilot_size) + " " + (o.denoise ? "1" : "0") + " " +
           std::string(ToString(o.prior)) + " " +
           std::to_string(o.seed) + " " + std::to_string(o.chunk_size);
  }

  void Destroy(Compiled& c) {
    if (c.exec != nullptr) cudaGraphExecDestroy(c.exec);
    if (c.graph != nullptr) cudaGraphDestroy(c.graph);
    if (c.pilot_exec != nullptr) cudaGraphExecDestroy(c.pilot_exec);
    if (c.pilot_graph != nullptr) cudaGraphDestroy(c.pilot_graph);
  }

  template <typename Planner>
  Compiled& Compile(const std::string& key, Planner planner) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const auto start = std::chrono::steady_clock::now();
    ctx_.Activate();
    Compiled compiled;
    planner(&compiled);  // throws InvalidArgument before anything is cached
    auto [inserted, ok] = cache_.emplace(key, std::move(compiled));
    Compiled& c = inserted->second;
    UploadTable(c.plan, &c.table);
    if (c.pilot_plan) UploadTable(*c.pilot_plan, &c.pilot_table);
    if (ctx_.options().use_graphs) {
      try {
        c.exec = CaptureGraph(c.plan, c.table, c.expected, &c.lane, &c.graph);
        if (c.pilot_plan) {
          c.pilot_exec =
              CaptureGraph(*c.pilot_plan, c.pilot_table, c.expected, &c.pilot_lane, &c.pilot_graph);
        }
      } catch (...) {
        Destroy(c);
        cache_.erase(inserted);
        throw;
      }
    }
    ctx_.Synchronize();
    c.setup_seconds = Seconds(start);
    return c;
  }

  cudaGraphExec_t CaptureGraph(const Plan& plan, const DeviceBuffer<float>& table,
                               DeviceBuffer<double>& expected, Lane* lane, cudaGraph_t* graph) {
    cudaStream_t stream = ctx_.stream();
    // One eager score evaluation on this lane first, so that cuBLAS has chosen (and loaded) its
    // kernels for these shapes outside the capture.
    {
      Plan warm;
      warm.ops.push_back(ScoreOp(sde_->t_final(), kX, kS, &warm));
      DeviceBuffer<float> warm_table;
      UploadTable(warm, &warm_table);
      Enqueue(warm, warm_table, expected, lane);
      ctx_.Synchronize();
    }
    CheckCuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture");
    try {
      Enqueue(plan, table, expected, lane);
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

  void PrepareLane(int n, int64_t first_sample, Lane* lane) {
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
    CheckCuda(cudaMemcpyAsync(lane->first_sample.data(), &first_sample, sizeof(int64_t),
                              cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync(first sample)");
    if (learned_) net_->Prepare(n, false, true, &lane->ws, stream);
    ctx_.Synchronize();
  }

  void UploadTable(const Plan& plan, DeviceBuffer<float>* table) {
    if (plan.table.empty()) {
      table->Resize(1);
      return;
    }
    table->Upload(plan.table.data(), static_cast<int64_t>(plan.table.size()), ctx_.stream());
    ctx_.Synchronize();
  }

  // A score evaluation at time t from buffer `in` into `out`; records the evaluation's embedding.
  Op ScoreOp(double t, Buffer in, Buffer out, Plan* plan) {
    Op op;
    op.kind = Op::kScore;
    op.in = in;
    op.out = out;
    op.t = t;
    if (learned_) {
      op.coef = ComputeScoreCoefficients(*sde_, config_, t);
      // The embedding of τ exactly as MlpNetwork::Forward computes it.
      const int half = config_.embed_dim / 2;
      const float tau = static_cast<float>(op.coef.tau);
      const size_t base = plan->table.size();
      plan->table.resize(base + config_.embed_dim);
      for (int k = 0; k < half; ++k) {
        const double phase = 2.0 * std::numbers::pi * static_cast<double>(fourier_host_[k]) *
                             static_cast<double>(tau);
        plan->table[base + k] = static_cast<float>(std::sin(phase));
        plan->table[base + half + k] = static_cast<float>(std::cos(phase));
      }
    } else {
      Require(std::isfinite(t) && t >= 0.0 && t <= sde_->t_final(), "CudaSampler", "t", t,
              "in [0, T]");
      op.alpha = sde_->MeanCoefficient(t);
      const double sigma = sde_->MarginalStd(t);
      op.sigma2 = sigma * sigma;
    }
    op.eval = plan->evaluations++;
    return op;
  }

  // LangevinAlpha of correctors.cpp: 1 − β(t)h for VP and sub-VP, 1 for VE.
  double LangevinAlpha(double t, double h) const {
    double beta = -1.0;
    if (sde_->family() == SdeFamily::kVp) beta = static_cast<const VpSde&>(*sde_).Beta(t);
    if (sde_->family() == SdeFamily::kSubVp) beta = static_cast<const SubVpSde&>(*sde_).Beta(t);
    if (beta < 0.0) return 1.0;
    const double beta_i = beta * h;
    Require(beta_i < 1.0, "LangevinAlpha", "beta(t) * h", beta_i,
            "< 1 for the VP chain's alpha_i = 1 - beta_i (use more steps)");
    return 1.0 - beta_i;
  }

  // Appends one predictor step from t to t + dt (dt < 0) on x; noise (stream, step, substep).
  void PlanPredictor(CudaPredictor predictor, double t, double dt, int64_t step, NoiseKey key,
                     uint32_t substep, Plan* plan) {
    if (predictor == CudaPredictor::kNone) return;
    plan->ops.push_back(ScoreOp(t, kX, kS, plan));
    Op op;
    op.kind = Op::kUpdate;
    UpdateArgs& u = op.update;
    u.key = key;
    u.noise_step = static_cast<uint64_t>(step);
    u.substep = substep;
    u.report_step = step;
    const double h = -dt;
    u.sqrt_h = std::sqrt(std::abs(dt));
    switch (predictor) {
      case CudaPredictor::kEulerMaruyama: {
        const double g = sde_->ScalarDiffusion(t);
        u.kind = internal::cuda::kUpdateEuler;
        u.f = sde_->DriftCoefficient(t);
        u.g2 = 1.0 * g * g;
        u.g = g;
        u.dt = dt;
        break;
      }
      case CudaPredictor::kReverseDiffusion: {
        const DiscreteCoefficients c = sde_->Discretize(t, h);
        u.kind = internal::cuda::kUpdateAffine;
        u.p = 1.0 - c.drift;
        u.q = c.diffusion * c.diffusion;
        u.r = c.diffusion / std::sqrt(h);
        break;
      }
      case CudaPredictor::kAncestral: {
        const double inv_sqrt_h = 1.0 / std::sqrt(h);
        if (sde_->family() == SdeFamily::kVe) {
          const double sigma = sde_->MarginalStd(t);
          const double sigma_prev = sde_->MarginalStd(t + dt);
          const double jump = sigma * sigma - sigma_prev * sigma_prev;
          const double std_dev = std::sqrt(sigma_prev * sigma_prev * jump) / sigma;
          u.kind = internal::cuda::kUpdateAdd;
          u.q = jump;
          u.r = std_dev * inv_sqrt_h;
        } else {
          const DiscreteCoefficients c = sde_->Discretize(t, h);
          const double beta = c.diffusion * c.diffusion;
          u.kind = internal::cuda::kUpdateDdpm;
          u.p = std::sqrt(1.0 - beta);
          u.q = beta;
          u.r = c.diffusion * inv_sqrt_h;
        }
        break;
      }
      case CudaPredictor::kNone:
        break;
    }
    plan->ops.push_back(op);
  }

  void PlanCorrector(const CudaSamplerOptions& o, double t, double h, int64_t step, NoiseKey key,
                     uint32_t first_substep, Plan* plan) {
    for (int j = 0; j < o.corrector_steps; ++j) {
      plan->ops.push_back(ScoreOp(t, kX, kS, plan));
      Op op;
      op.kind = Op::kUpdate;
      UpdateArgs& u = op.update;
      u.key = key;
      u.noise_step = static_cast<uint64_t>(step);
      u.substep = first_substep + static_cast<uint32_t>(j);
      u.report_step = step;
      const double alpha = LangevinAlpha(t, h);
      if (o.corrector == CudaCorrector::kLangevin) {
        u.kind = internal::cuda::kUpdateLangevin;
        u.langevin_alpha = alpha;
        u.snr = o.snr;
        u.level = static_cast<int>(step);
      } else {
        const double sigma = sde_->MarginalStd(t);
        u.kind = internal::cuda::kUpdateFixedLangevin;
        u.q = 2.0 * alpha * (o.snr * sigma) * (o.snr * sigma);
      }
      plan->ops.push_back(op);
    }
  }

  void PlanPc(const CudaSamplerOptions& o, Compiled* c) {
    constexpr const char* kWhere = "CudaSampler::Sample";
    const ScalarAffineSde& sde = *sde_;
    const double t_final = sde.t_final();
    Require(o.eps < t_final, kWhere, "eps", o.eps, "< T (" + FormatValue(t_final) + ")");
    if (o.predictor == CudaPredictor::kAncestral) {
      Require(sde.family() == SdeFamily::kVe || sde.family() == SdeFamily::kVp, kWhere,
              "predictor", std::string("ancestral"),
              "used with the VE (NCSN) or VP (DDPM) SDE");
    }
    const int steps = o.num_steps;
    const double h = (t_final - o.eps) / steps;
    const auto time = [&](int64_t i) { return i >= steps ? o.eps : t_final - i * h; };
    const bool correcting = o.corrector != CudaCorrector::kNone && o.corrector_steps > 0;
    if (sde.family() == SdeFamily::kVp && (o.predictor == CudaPredictor::kReverseDiffusion ||
                                           o.predictor == CudaPredictor::kAncestral)) {
      try {
        sde.Discretize(t_final, h);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(std::string(kWhere) + ": " + e.what());
      }
    }
    if (correcting) LangevinAlpha(t_final, h);
    const uint64_t seed = o.seed;
    const NoiseKey prior{seed, static_cast<uint32_t>(Stream::kPrior)};
    const NoiseKey predictor{seed, static_cast<uint32_t>(Stream::kPredictor)};
    const NoiseKey corrector{seed, static_cast<uint32_t>(Stream::kCorrector)};
    const NoiseKey pilot{seed, static_cast<uint32_t>(Stream::kPilot)};
    const bool needs_expected = correcting && o.corrector == CudaCorrector::kLangevin;

    c->expected.Resize(std::max(1, steps));
    c->report_times.resize(steps + 1);
    for (int i = 0; i < steps; ++i) c->report_times[i] = time(i + 1);
    c->report_times[steps] = o.eps;

    if (needs_expected && learned_) {
      // The pilot: the same chain on pilot_size samples of Stream::kPilot; after each predictor
      // step the mean of ‖s(x, t_{i+1})‖² over them is E‖s‖² at that level.
      Plan p;
      p.ops.push_back(ResetFailuresOp());
      p.ops.push_back(PriorOp(pilot, o.prior));
      for (int i = 0; i < steps; ++i) {
        const double t = time(i), t_next = time(i + 1);
        PlanPredictor(o.predictor, t, t_next - t, i, pilot, 2, &p);
        p.ops.push_back(ScoreOp(t_next, kX, kS, &p));
        Op mean;
        mean.kind = Op::kMeanSquaredNorm;
        mean.level = i;
        p.ops.push_back(mean);
        PlanCorrector(o, t_next, h, i, pilot, 4, &p);
      }
      c->pilot_plan = std::move(p);
      PrepareLane(o.pilot_size, 0, &c->pilot_lane);
    } else if (needs_expected) {
      // Closed form for the Gaussian: E‖s_t‖² = tr((α² Σ + σ² I)⁻¹) = Σ_k 1/(α² λ_k + σ²).
      std::vector<double> expected(steps);
      for (int i = 0; i < steps; ++i) {
        const double t = time(i + 1);
        const double alpha = sde.MeanCoefficient(t);
        const double sigma = sde.MarginalStd(t);
        double sum = 0.0;
        for (Eigen::Index k = 0; k < lambda_host_.size(); ++k) {
          sum += 1.0 / (alpha * alpha * lambda_host_[k] + sigma * sigma);
        }
        Require(std::isfinite(sum) && sum > 0.0, kWhere, "E||s_t||^2", sum,
                "finite and > 0 at t = " + FormatValue(t));
        expected[i] = sum;
      }
      c->expected.Upload(expected.data(), steps, ctx_.stream());
    }

    Plan& plan = c->plan;
    plan.ops.push_back(ResetFailuresOp());
    plan.ops.push_back(PriorOp(prior, o.prior));
    for (int i = 0; i < steps; ++i) {
      const double t = time(i), t_next = time(i + 1);
      PlanPredictor(o.predictor, t, t_next - t, i, predictor, 0, &plan);
      if (correcting) PlanCorrector(o, t_next, h, i, corrector, 0, &plan);
    }
    if (o.denoise) {
      plan.ops.push_back(ScoreOp(o.eps, kX, kS, &plan));
      Op op;
      op.kind = Op::kDenoise;
      const double sigma = sde.MarginalStd(o.eps);
      op.sigma2 = sigma * sigma;
      op.alpha = sde.MeanCoefficient(o.eps);
      op.report_step = steps;
      plan.ops.push_back(op);
    }
    PrepareLane(static_cast<int>(o.chunk_size), 0, &c->lane);
  }

  // dx/dt = f x − ½ g² s at time t from buffer `in` into `out`.
  void PlanDerivative(double t, Buffer in, Buffer out, Plan* plan) {
    plan->ops.push_back(ScoreOp(t, in, kS, plan));
    Op op;
    op.kind = Op::kAxpby;
    op.in = in;
    op.out = out;
    const double g = sde_->ScalarDiffusion(t);
    op.p = sde_->DriftCoefficient(t);
    op.q = -(0.5 * g * g);
    plan->ops.push_back(op);
  }

  Op StageOp(Buffer out, std::initializer_list<std::pair<double, Buffer>> terms, int64_t step) {
    Op op;
    op.kind = Op::kStageSum;
    op.in = kX;
    op.out = out;
    op.report_step = step;
    for (const auto& [coef, buffer] : terms) {
      op.c[op.num_k] = coef;
      op.k[op.num_k] = buffer;
      ++op.num_k;
    }
    return op;
  }

  void PlanFlow(const CudaFlowOptions& o, Compiled* c) {
    constexpr const char* kWhere = "CudaSampler::SampleProbabilityFlow";
    const double t_final = sde_->t_final();
    Require(o.eps < t_final, kWhere, "eps", o.eps, "< T (" + FormatValue(t_final) + ")");
    const int steps = o.num_steps;
    const double dt = (o.eps - t_final) / steps;
    const auto time = [&](int64_t i) { return i >= steps ? o.eps : t_final + i * dt; };
    c->report_times.resize(steps + 1);
    for (int i = 0; i < steps; ++i) c->report_times[i] = time(i + 1);
    c->report_times[steps] = o.eps;
    c->expected.Resize(1);
    Plan& plan = c->plan;
    plan.ops.push_back(ResetFailuresOp());
    plan.ops.push_back(PriorOp({o.seed, static_cast<uint32_t>(Stream::kPrior)}, o.prior));
    for (int i = 0; i < steps; ++i) {
      const double t = time(i), t_next = time(i + 1);
      const double step = t_next - t;
      switch (o.method) {
        case CudaFlowMethod::kEuler:
          PlanDerivative(t, kX, kK1, &plan);
          plan.ops.push_back(StageOp(kX, {{step, kK1}}, i));
          break;
        case CudaFlowMethod::kHeun:
          PlanDerivative(t, kX, kK1, &plan);
          plan.ops.push_back(StageOp(kY, {{step, kK1}}, i));
          PlanDerivative(t_next, kY, kK2, &plan);
          plan.ops.push_back(StageOp(kX, {{0.5 * step, kK1}, {0.5 * step, kK2}}, i));
          break;
        case CudaFlowMethod::kRk4:
          PlanDerivative(t, kX, kK1, &plan);
          plan.ops.push_back(StageOp(kY, {{0.5 * step, kK1}}, i));
          PlanDerivative(t + 0.5 * step, kY, kK2, &plan);
          plan.ops.push_back(StageOp(kY, {{0.5 * step, kK2}}, i));
          PlanDerivative(t + 0.5 * step, kY, kK3, &plan);
          plan.ops.push_back(StageOp(kY, {{step, kK3}}, i));
          PlanDerivative(t_next, kY, kK4, &plan);
          plan.ops.push_back(StageOp(
              kX, {{step / 6.0, kK1}, {step / 3.0, kK2}, {step / 3.0, kK3}, {step / 6.0, kK4}},
              i));
          break;
      }
    }
    PrepareLane(static_cast<int>(o.chunk_size), 0, &c->lane);
  }

  static Op ResetFailuresOp() {
    Op op;
    op.kind = Op::kResetFailures;
    return op;
  }

  Op PriorOp(NoiseKey key, CudaPrior prior) const {
    Op op;
    op.kind = Op::kPrior;
    op.key = key;
    op.prior_std = sde_->PriorStd();
    op.exact_prior = prior == CudaPrior::kExact;
    Require(!op.exact_prior || !learned_, "CudaSampler", "prior", std::string("exact"),
            "standard (the exact p_T is known for the Gaussian score only)");
    return op;
  }

  void Enqueue(const Plan& plan, const DeviceBuffer<float>& table, DeviceBuffer<double>& expected,
               Lane* lane) {
    cudaStream_t stream = ctx_.stream();
    const int n = lane->n;
    const FailureSink sink{lane->failures.data(), lane->any.data()};
    const auto buf = [&](Buffer b) { return lane->buffers[b].data(); };
    for (const Op& op : plan.ops) {
      switch (op.kind) {
        case Op::kResetFailures:
          internal::cuda::LaunchFillU64(lane->failures.data(), n, ~0ull, stream);
          CheckCuda(cudaMemsetAsync(lane->any.data(), 0, sizeof(int), stream), "cudaMemsetAsync");
          break;
        case Op::kPrior:
          if (op.exact_prior) {
            internal::cuda::LaunchPrior(op.key, d_, n, lane->first_sample.data(), 1.0,
                                        lane->scratch.data(), stream);
            internal::cuda::LaunchAffineTransform(d_, n, prior_mean_.data(), prior_factor_.data(),
                                                  lane->scratch.data(), buf(kX), stream);
          } else {
            internal::cuda::LaunchPrior(op.key, d_, n, lane->first_sample.data(), op.prior_std,
                                        buf(kX), stream);
          }
          break;
        case Op::kScore:
          if (learned_) {
            internal::cuda::LaunchInferenceInput(
                d_, config_.embed_dim, n, op.coef.c_in, buf(op.in),
                table.data() + int64_t{op.eval} * config_.embed_dim, lane->ws.a[0].data(),
                net_->ld_input(), stream);
            net_->Infer(ctx_, store_.data(), &lane->ws);
            internal::cuda::LaunchScoreFromOutput(d_, n, op.coef.a, op.coef.b, buf(op.in),
                                                  lane->ws.output.data(), buf(op.out), stream);
          } else {
            internal::cuda::LaunchGaussianScore(d_, n, op.alpha, op.sigma2, q_.data(),
                                                lambda_.data(), mean_.data(), buf(op.in),
                                                lane->scratch.data(), buf(op.out), stream);
          }
          break;
        case Op::kUpdate: {
          UpdateArgs u = op.update;
          u.expected = expected.data();
          internal::cuda::LaunchUpdate(u, d_, n, lane->first_sample.data(), buf(kS), buf(kX),
                                       sink, stream);
          break;
        }
        case Op::kAxpby:
          internal::cuda::LaunchAxpby(d_, n, op.p, buf(op.in), op.q, buf(kS), buf(op.out),
                                      stream);
          break;
        case Op::kStageSum: {
          const double* k[4] = {nullptr, nullptr, nullptr, nullptr};
          for (int i = 0; i < op.num_k; ++i) k[i] = buf(op.k[i]);
          internal::cuda::LaunchStageSum(d_, n, buf(op.in), op.c[0], k[0], op.c[1], k[1],
                                         op.c[2], k[2], op.c[3], k[3], buf(op.out),
                                         op.report_step, sink, stream);
          break;
        }
        case Op::kMeanSquaredNorm:
          internal::cuda::LaunchMeanSquaredNorm(d_, n, buf(kS), lane->scratch.data(),
                                                expected.data() + op.level, stream);
          break;
        case Op::kDenoise:
          internal::cuda::LaunchDenoise(d_, n, op.sigma2, op.alpha, buf(kS), buf(kX),
                                        op.report_step, sink, stream);
          break;
      }
    }
    CheckLaunch("CudaSampler");
  }

  void Launch(const Plan& plan, cudaGraphExec_t exec, const DeviceBuffer<float>& table,
              DeviceBuffer<double>& expected, Lane* lane) {
    if (exec != nullptr) {
      CheckCuda(cudaGraphLaunch(exec, ctx_.stream()), "cudaGraphLaunch");
    } else {
      Enqueue(plan, table, expected, lane);
    }
  }

  // Throws NumericalFailure if the lane recorded a non-finite value among its first `valid`
  // columns.
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
      // Smallest step, then smallest sample (the CPU samplers' order).
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
    Launch(*c.pilot_plan, c.pilot_exec, c.pilot_table, c.expected, &c.pilot_lane);
    CheckFailures(&c.pilot_lane, 0, c.pilot_lane.n, c.report_times, "CudaSampler pilot");
    std::vector<double> expected(c.report_times.size() - 1);
    c.expected.Download(expected.data(), static_cast<int64_t>(expected.size()), ctx_.stream());
    for (size_t i = 0; i < expected.size(); ++i) {
      if (!(std::isfinite(expected[i]) && expected[i] > 0.0)) {
        throw NumericalFailure("CudaSampler pilot: mean squared score norm is " +
                                   FormatValue(expected[i]) + " at step " + std::to_string(i) +
                                   " (t = " + FormatValue(c.report_times[i]) + ")",
                               static_cast<int64_t>(i), c.report_times[i], -1, -1);
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
      Launch(c.plan, c.exec, c.table, c.expected, &c.lane);
      CheckCuda(cudaMemcpyAsync(staging_.data(), c.lane.buffers[kX].data(),
                                static_cast<size_t>(d_ * count) * sizeof(double),
                                cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync(samples)");
      CheckFailures(&c.lane, first, count, c.report_times, where);
      std::copy(staging_.data(), staging_.data() + d_ * count, x->data() + first * d_);
    }
  }

  DeviceContext ctx_;
  std::shared_ptr<const ScalarAffineSde> sde_;
  bool learned_ = false;
  int d_ = 0;
  // Learned score.
  MlpConfig config_;
  std::unique_ptr<DeviceNetwork> net_;
  Eigen::VectorXf fourier_host_;
  DeviceBuffer<float> store_;
  // Gaussian score: cov = Q diag(λ) Qᵀ.
  Eigen::VectorXd lambda_host_;
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
