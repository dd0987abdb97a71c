// The CUDA sampler's runs as plans: a list of device operations with every per-step scalar
// computed on the host by the CPU code itself (ComputeScoreCoefficients, Discretize, the Fourier
// embedding of each evaluation time, the Langevin α, ...), and one executor written over an Ops
// policy, so that the CUDA path (kernels + cuBLAS, captured into a CUDA graph) and the host
// emulation of the tests run the same operations.
//
// Ops provides the network operations of network_passes.hpp and
//   ResetFailures(n, sink)
//   Prior(key, d, n, first_sample, prior_std, x)              x = prior_std · N(0, I)
//   AffineTransform(d, n, m, factor, z, x)                    x = m + M z
//   InferenceInput(d, embed, n, c_in, x, embedding, a0, ld0)  a0 = [T(c_in x); e]
//   ScoreFromOutput(d, n, a, b, x, output, s)                 s = a x + b F
//   GaussianScore(d, n, alpha, sigma2, q, lambda, mean, x, w, s)
//   Update(args, d, n, first_sample, s, x, sink)
//   Axpby(d, n, p, x, q, s, out)                              out = p x + q s
//   StageSum(d, n, x, c1, k1, c2, k2, c3, k3, c4, k4, out, step, sink)
//   MeanSquaredNorm(d, n, s, partial, out)                    *out = Σ_j ‖s_j‖² / n
//   Denoise(d, n, sigma2, alpha, s, x, step, sink)            x = (x + σ² s)/α
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "device_types.hpp"
#include "network_passes.hpp"
#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde::internal::cuda {

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
  std::vector<double> table;  // embedding rows, one per score evaluation (learned score)
  int evaluations = 0;
};

// A sampling run: the main plan (run per chunk), the pilot (once), the closed-form E‖s‖² when the
// Gaussian score needs none, and the time of each reported step.
struct SamplerPlans {
  Plan main;
  std::optional<Plan> pilot;
  int pilot_size = 0;
  int64_t chunk_size = 1;
  int levels = 0;                      // entries of the expected array
  std::vector<double> expected;        // closed form (Gaussian score), else empty
  std::vector<double> report_times;    // t of each reported step index
};

class SamplerPlanner {
 public:
  // Learned score: network config and float Fourier weights; round_embedding makes the table hold
  // the float-rounded embedding the device network sees (the host emulation in double keeps it
  // unrounded, as MlpNetwork<double> computes it).
  SamplerPlanner(const ScalarAffineSde& sde, const MlpConfig& config,
                 const Eigen::VectorXf& fourier, bool round_embedding)
      : sde_(sde), learned_(true), config_(config), fourier_(fourier.cast<double>()),
        round_embedding_(round_embedding) {}
  // Gaussian score with covariance eigenvalues lambda (for the closed-form E‖s_t‖²).
  SamplerPlanner(const ScalarAffineSde& sde, const Eigen::VectorXd& lambda)
      : sde_(sde), learned_(false), lambda_(lambda) {}

  SamplerPlans PlanPc(const CudaSamplerOptions& o) const {
    constexpr const char* kWhere = "CudaSampler::Sample";
    const double t_final = sde_.t_final();
    Require(o.eps < t_final, kWhere, "eps", o.eps, "< T (" + FormatValue(t_final) + ")");
    if (o.predictor == CudaPredictor::kAncestral) {
      Require(sde_.family() == SdeFamily::kVe || sde_.family() == SdeFamily::kVp, kWhere,
              "predictor", std::string("ancestral"),
              "used with the VE (NCSN) or VP (DDPM) SDE");
    }
    const int steps = o.num_steps;
    const double h = (t_final - o.eps) / steps;
    const auto time = [&](int64_t i) { return i >= steps ? o.eps : t_final - i * h; };
    const bool correcting = o.corrector != CudaCorrector::kNone && o.corrector_steps > 0;
    if (sde_.family() == SdeFamily::kVp && (o.predictor == CudaPredictor::kReverseDiffusion ||
                                            o.predictor == CudaPredictor::kAncestral)) {
      try {
        sde_.Discretize(t_final, h);
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

    SamplerPlans plans;
    plans.chunk_size = o.chunk_size;
    plans.levels = steps;
    plans.report_times.resize(steps + 1);
    for (int i = 0; i < steps; ++i) plans.report_times[i] = time(i + 1);
    plans.report_times[steps] = o.eps;

    if (needs_expected && learned_) {
      // The pilot (PcSampler's): the same chain on pilot_size samples of Stream::kPilot; after
      // each predictor step the mean of ‖s(x, t_{i+1})‖² over them is E‖s‖² at that level.
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
      plans.pilot = std::move(p);
      plans.pilot_size = o.pilot_size;
    } else if (needs_expected) {
      // Closed form for the Gaussian: E‖s_t‖² = tr((α² Σ + σ² I)⁻¹) = Σ_k 1/(α² λ_k + σ²).
      plans.expected.resize(steps);
      for (int i = 0; i < steps; ++i) {
        const double t = time(i + 1);
        const double alpha = sde_.MeanCoefficient(t);
        const double sigma = sde_.MarginalStd(t);
        double sum = 0.0;
        for (Eigen::Index k = 0; k < lambda_.size(); ++k) {
          sum += 1.0 / (alpha * alpha * lambda_[k] + sigma * sigma);
        }
        Require(std::isfinite(sum) && sum > 0.0, kWhere, "E||s_t||^2", sum,
                "finite and > 0 at t = " + FormatValue(t));
        plans.expected[i] = sum;
      }
    }

    Plan& plan = plans.main;
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
      const double sigma = sde_.MarginalStd(o.eps);
      op.sigma2 = sigma * sigma;
      op.alpha = sde_.MeanCoefficient(o.eps);
      op.report_step = steps;
      plan.ops.push_back(op);
    }
    return plans;
  }

  SamplerPlans PlanFlow(const CudaFlowOptions& o) const {
    constexpr const char* kWhere = "CudaSampler::SampleProbabilityFlow";
    const double t_final = sde_.t_final();
    Require(o.eps < t_final, kWhere, "eps", o.eps, "< T (" + FormatValue(t_final) + ")");
    const int steps = o.num_steps;
    const double dt = (o.eps - t_final) / steps;
    const auto time = [&](int64_t i) { return i >= steps ? o.eps : t_final + i * dt; };
    SamplerPlans plans;
    plans.chunk_size = o.chunk_size;
    plans.report_times.resize(steps + 1);
    for (int i = 0; i < steps; ++i) plans.report_times[i] = time(i + 1);
    plans.report_times[steps] = o.eps;
    Plan& plan = plans.main;
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
    return plans;
  }

  // One score evaluation at time t (x in kX, s into kS).
  Plan PlanScore(double t) const {
    Plan plan;
    plan.ops.push_back(ScoreOp(t, kX, kS, &plan));
    return plan;
  }

 private:
  // A score evaluation at time t from buffer `in` into `out`; records the evaluation's embedding.
  Op ScoreOp(double t, Buffer in, Buffer out, Plan* plan) const {
    Op op;
    op.kind = Op::kScore;
    op.in = in;
    op.out = out;
    op.t = t;
    if (learned_) {
      op.coef = ComputeScoreCoefficients(sde_, config_, t);
      // The embedding of τ as MlpNetwork::Forward computes it (τ and w in the network's type).
      const int half = config_.embed_dim / 2;
      const double tau = round_embedding_ ? static_cast<double>(static_cast<float>(op.coef.tau))
                                          : op.coef.tau;
      const size_t base = plan->table.size();
      plan->table.resize(base + config_.embed_dim);
      for (int k = 0; k < half; ++k) {
        const double phase = 2.0 * std::numbers::pi * fourier_[k] * tau;
        double sin_value = std::sin(phase), cos_value = std::cos(phase);
        if (round_embedding_) {
          sin_value = static_cast<float>(sin_value);
          cos_value = static_cast<float>(cos_value);
        }
        plan->table[base + k] = sin_value;
        plan->table[base + half + k] = cos_value;
      }
    } else {
      Require(std::isfinite(t) && t >= 0.0 && t <= sde_.t_final(), "CudaSampler", "t", t,
              "in [0, T]");
      op.alpha = sde_.MeanCoefficient(t);
      const double sigma = sde_.MarginalStd(t);
      op.sigma2 = sigma * sigma;
    }
    op.eval = plan->evaluations++;
    return op;
  }

  // LangevinAlpha of correctors.cpp: 1 − β(t)h for VP and sub-VP, 1 for VE.
  double LangevinAlpha(double t, double h) const {
    double beta = -1.0;
    if (sde_.family() == SdeFamily::kVp) beta = static_cast<const VpSde&>(sde_).Beta(t);
    if (sde_.family() == SdeFamily::kSubVp) beta = static_cast<const SubVpSde&>(sde_).Beta(t);
    if (beta < 0.0) return 1.0;
    const double beta_i = beta * h;
    Require(beta_i < 1.0, "LangevinAlpha", "beta(t) * h", beta_i,
            "< 1 for the VP chain's alpha_i = 1 - beta_i (use more steps)");
    return 1.0 - beta_i;
  }

  // One predictor step from t to t + dt (dt < 0) on x, noise (stream, step, substep), as
  // predictors.cpp computes it.
  void PlanPredictor(CudaPredictor predictor, double t, double dt, int64_t step, NoiseKey key,
                     uint32_t substep, Plan* plan) const {
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
        const double g = sde_.ScalarDiffusion(t);
        u.kind = kUpdateEuler;
        u.f = sde_.DriftCoefficient(t);
        u.g2 = 1.0 * g * g;
        u.g = g;
        u.dt = dt;
        break;
      }
      case CudaPredictor::kReverseDiffusion: {
        const DiscreteCoefficients c = sde_.Discretize(t, h);
        u.kind = kUpdateAffine;
        u.p = 1.0 - c.drift;
        u.q = c.diffusion * c.diffusion;
        u.r = c.diffusion / std::sqrt(h);
        break;
      }
      case CudaPredictor::kAncestral: {
        const double inv_sqrt_h = 1.0 / std::sqrt(h);
        if (sde_.family() == SdeFamily::kVe) {
          const double sigma = sde_.MarginalStd(t);
          const double sigma_prev = sde_.MarginalStd(t + dt);
          const double jump = sigma * sigma - sigma_prev * sigma_prev;
          const double std_dev = std::sqrt(sigma_prev * sigma_prev * jump) / sigma;
          u.kind = kUpdateAdd;
          u.q = jump;
          u.r = std_dev * inv_sqrt_h;
        } else {
          const DiscreteCoefficients c = sde_.Discretize(t, h);
          const double beta = c.diffusion * c.diffusion;
          u.kind = kUpdateDdpm;
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

  // M corrector steps at level t (correctors.cpp), noise substeps first_substep + j.
  void PlanCorrector(const CudaSamplerOptions& o, double t, double h, int64_t step, NoiseKey key,
                     uint32_t first_substep, Plan* plan) const {
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
        u.kind = kUpdateLangevin;
        u.langevin_alpha = alpha;
        u.snr = o.snr;
        u.level = static_cast<int>(step);
      } else {
        const double sigma = sde_.MarginalStd(t);
        u.kind = kUpdateFixedLangevin;
        u.q = 2.0 * alpha * (o.snr * sigma) * (o.snr * sigma);
      }
      plan->ops.push_back(op);
    }
  }

  // dx/dt = f x − ½ g² s at time t from buffer `in` into `out` (DriftFromScore with λ = ½).
  void PlanDerivative(double t, Buffer in, Buffer out, Plan* plan) const {
    plan->ops.push_back(ScoreOp(t, in, kS, plan));
    Op op;
    op.kind = Op::kAxpby;
    op.in = in;
    op.out = out;
    const double g = sde_.ScalarDiffusion(t);
    op.p = sde_.DriftCoefficient(t);
    op.q = -(0.5 * g * g);
    plan->ops.push_back(op);
  }

  static Op StageOp(Buffer out, std::initializer_list<std::pair<double, Buffer>> terms,
                    int64_t step) {
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

  static Op ResetFailuresOp() {
    Op op;
    op.kind = Op::kResetFailures;
    return op;
  }

  Op PriorOp(NoiseKey key, CudaPrior prior) const {
    Op op;
    op.kind = Op::kPrior;
    op.key = key;
    op.prior_std = sde_.PriorStd();
    op.exact_prior = prior == CudaPrior::kExact;
    Require(!op.exact_prior || !learned_, "CudaSampler", "prior", std::string("exact"),
            "standard (the exact p_T is known for the Gaussian score only)");
    return op;
  }

  const ScalarAffineSde& sde_;
  bool learned_;
  MlpConfig config_;
  Eigen::VectorXd fourier_;
  bool round_embedding_ = true;
  Eigen::VectorXd lambda_;
};

// What the executor works on: the score's data and one lane (a column block and its buffers).
template <typename T>
struct ScoreView {
  bool learned = false;
  const NetworkLayout* net = nullptr;
  const T* store = nullptr;
  // Gaussian score: cov = Q diag(λ) Qᵀ (Q d × d column-major), mean μ, exact prior m + M z.
  const double* q = nullptr;
  const double* lambda = nullptr;
  const double* mean = nullptr;
  const double* prior_mean = nullptr;
  const double* prior_factor = nullptr;
};

template <typename T>
struct LaneView {
  int n = 0;
  int d = 0;
  double* buffers[kNumBuffers] = {};
  double* scratch = nullptr;  // d·n and n + reduction partials doubles
  FailureSink sink{nullptr, nullptr};
  const int64_t* first_sample = nullptr;
  PassBuffers<T> pass;        // inference workspace (learned score)
  const T* table = nullptr;   // embedding rows
  double* expected = nullptr; // E‖s‖² per level
};

template <typename T, typename Ops>
void ExecutePlan(const Ops& ops, const Plan& plan, const ScoreView<T>& score,
                 const LaneView<T>& lane) {
  const int n = lane.n;
  const int d = lane.d;
  const auto buf = [&](Buffer b) { return lane.buffers[b]; };
  for (const Op& op : plan.ops) {
    switch (op.kind) {
      case Op::kResetFailures:
        ops.ResetFailures(n, lane.sink);
        break;
      case Op::kPrior:
        if (op.exact_prior) {
          ops.Prior(op.key, d, n, lane.first_sample, 1.0, lane.scratch);
          ops.AffineTransform(d, n, score.prior_mean, score.prior_factor, lane.scratch, buf(kX));
        } else {
          ops.Prior(op.key, d, n, lane.first_sample, op.prior_std, buf(kX));
        }
        break;
      case Op::kScore:
        if (score.learned) {
          const int embed = score.net->config.embed_dim;
          ops.InferenceInput(d, embed, n, op.coef.c_in, buf(op.in),
                             lane.table + int64_t{op.eval} * embed, lane.pass.a[0],
                             score.net->ld_input());
          InferPass(ops, *score.net, score.store, lane.pass);
          ops.ScoreFromOutput(d, n, op.coef.a, op.coef.b, buf(op.in), lane.pass.output,
                              buf(op.out));
        } else {
          ops.GaussianScore(d, n, op.alpha, op.sigma2, score.q, score.lambda, score.mean,
                            buf(op.in), lane.scratch, buf(op.out));
        }
        break;
      case Op::kUpdate: {
        UpdateArgs u = op.update;
        u.expected = lane.expected;
        ops.Update(u, d, n, lane.first_sample, buf(kS), buf(kX), lane.sink);
        break;
      }
      case Op::kAxpby:
        ops.Axpby(d, n, op.p, buf(op.in), op.q, buf(kS), buf(op.out));
        break;
      case Op::kStageSum: {
        const double* k[4] = {nullptr, nullptr, nullptr, nullptr};
        for (int i = 0; i < op.num_k; ++i) k[i] = buf(op.k[i]);
        ops.StageSum(d, n, buf(op.in), op.c[0], k[0], op.c[1], k[1], op.c[2], k[2], op.c[3], k[3],
                     buf(op.out), op.report_step, lane.sink);
        break;
      }
      case Op::kMeanSquaredNorm:
        ops.MeanSquaredNorm(d, n, buf(kS), lane.scratch, lane.expected + op.level);
        break;
      case Op::kDenoise:
        ops.Denoise(d, n, op.sigma2, op.alpha, buf(kS), buf(kX), op.report_step, lane.sink);
        break;
    }
  }
}

}  // namespace scoresde::internal::cuda
