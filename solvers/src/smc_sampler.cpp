#include "scoresde/solvers/smc_sampler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/solvers/noise_source.hpp"
#include "scoresde/solvers/step_problem.hpp"

namespace scoresde {

namespace {

constexpr const char* kWhere = "SmcSampler";
constexpr const char* kSample = "SmcSampler::Sample";
// Substeps of Stream::kGuidance: 0 is replacement's (replacement.cpp), 1 the per-level
// resampling, 2 the final resampling.
constexpr uint32_t kResampleSubstep = 1;
constexpr uint32_t kFinalResampleSubstep = 2;
// Particles per block of per-particle work: fixed, so results do not depend on the thread count
// even for a score model whose bits depend on its batch.
constexpr int64_t kBlock = 128;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ΔW = value · 1 for every step and sample: probes the predictor's noise coefficient.
class ConstantNoise final : public NoiseSource {
 public:
  ConstantNoise(int dim, Vector value) : dim_(dim), value_(std::move(value)) {}
  int dim() const override { return dim_; }
  void Increment(int64_t, double, double, int64_t, BatchRef dw) const override {
    dw = value_.replicate(1, dw.cols());
  }
  void IncrementWithArea(int64_t step, double t, double dt, int64_t first, BatchRef dw,
                         BatchRef dz) const override {
    Increment(step, t, dt, first, dw);
    dz.setZero();
  }

 private:
  int dim_;
  Vector value_;
};

// x' of one predictor step on a single column with a prescribed score function and ΔW.
Vector ProbeStep(const ScalarAffineSde& sde, const Predictor& predictor, double t, double dt,
                 int64_t step, const Vector& x0, const CallbackScore::Function& score,
                 const Vector& dw) {
  const int d = sde.dim();
  const CallbackScore probe_score(d, score);
  const StepProblem problem = StepProblem::Reverse(sde, probe_score);
  const ConstantNoise noise(d, dw);
  StepWorkspace workspace;
  Batch x = x0;
  predictor.Step(problem, t, dt, step, noise, 0, x, &workspace);
  return x.col(0);
}

// log Σ_k exp(v_k) over a range, in index order.
double LogSumExp(const double* v, int64_t n) {
  double largest = -std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < n; ++k) largest = std::max(largest, v[k]);
  if (!std::isfinite(largest)) return largest;
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) sum += std::exp(v[k] - largest);
  return largest + std::log(sum);
}

// (Σ w)² / Σ w² for w_k = exp(v_k − max).
double EffectiveSampleSize(const double* v, int64_t n) {
  double largest = -std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < n; ++k) largest = std::max(largest, v[k]);
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const double w = std::exp(v[k] - largest);
    sum += w;
    sum_sq += w * w;
  }
  return sum * sum / sum_sq;
}

// Systematic resampling (Kitagawa 1996): ancestors a_k = min{j : W_0 + … + W_j > (u + k)/K} for
// normalized weights W = exp(v − log Σ exp v).
std::vector<int64_t> SystematicAncestors(const double* v, int64_t n, double u) {
  const double log_total = LogSumExp(v, n);
  std::vector<int64_t> ancestors(n);
  double cumulative = std::exp(v[0] - log_total);
  int64_t j = 0;
  for (int64_t k = 0; k < n; ++k) {
    const double position = (u + static_cast<double>(k)) / static_cast<double>(n);
    while (cumulative <= position && j + 1 < n) {
      ++j;
      cumulative += std::exp(v[j] - log_total);
    }
    ancestors[k] = j;
  }
  return ancestors;
}

}  // namespace

void SmcSampler::Options::Validate() const {
  constexpr const char* kOptions = "SmcSampler::Options";
  Require(num_steps >= 1, kOptions, "num_steps", num_steps, ">= 1");
  Require(std::isfinite(eps) && eps >= 0.0, kOptions, "eps", eps, "finite and >= 0");
  Require(num_particles >= 1, kOptions, "num_particles", num_particles, ">= 1");
  Require(ess_threshold >= 0.0 && ess_threshold <= 1.0, kOptions, "ess_threshold",
          ess_threshold, "in [0, 1]");
  RequireFinite(kOptions, "proposal_scale", proposal_scale);
  Require(num_threads >= 1, kOptions, "num_threads", num_threads, ">= 1");
}

SmcSampler::SmcSampler(const ScalarAffineSde& sde, const ScoreModel& score, const Guidance& twist,
                       const Predictor& predictor, Options options)
    : sde_(&sde),
      score_(&score),
      twist_(&twist),
      predictor_(&predictor),
      options_(std::move(options)) {
  options_.Validate();
  const int d = sde.dim();
  Require(score.dim() == d, kWhere, "score dim", score.dim(),
          "equal to the SDE's dim (" + std::to_string(d) + ")");
  Require(twist.dim() == d, kWhere, "twist dim", twist.dim(),
          "equal to the SDE's dim (" + std::to_string(d) + ")");
  if (!twist.HasLogLikelihood()) {
    throw InvalidArgument(std::string(kWhere) +
                          ": twist has no log-likelihood (HasLogLikelihood() is false); the "
                          "weights need log p~_t(y | x)");
  }
  const double t_final = sde.t_final();
  Require(options_.eps < t_final, kWhere, "eps", options_.eps,
          "< T (" + FormatValue(t_final) + ")");
  std::string reason;
  if (!predictor.Supports(sde, &reason)) {
    throw InvalidArgument(std::string(kWhere) + ": predictor '" + std::string(predictor.name()) +
                          "' does not support this SDE: " + reason);
  }
  if (predictor.nfe_per_step() != 1) {
    throw InvalidArgument(std::string(kWhere) + ": predictor '" + std::string(predictor.name()) +
                          "' takes " + std::to_string(predictor.nfe_per_step()) +
                          " score evaluations per step; the particle weights need a Gaussian "
                          "step x' = c1 x + c2 s(x) + c3 dW with one (euler-maruyama, "
                          "reverse-diffusion, ancestral)");
  }
  h_ = (t_final - options_.eps) / options_.num_steps;
  predictor.CheckStepSize(sde, options_.eps, t_final, h_);
  const int64_t n = options_.num_steps;
  for (int64_t i : {int64_t{0}, n / 2, n - 1}) CheckAffine(i);
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
}

SmcSampler::~SmcSampler() = default;
SmcSampler::SmcSampler(SmcSampler&&) noexcept = default;

double SmcSampler::Time(int64_t i) const {
  if (i >= options_.num_steps) return options_.eps;
  return sde_->t_final() - static_cast<double>(i) * h_;
}

SmcSampler::StepCoefficients SmcSampler::Probe(int64_t i) const {
  const int d = sde_->dim();
  const double t = Time(i), dt = Time(i + 1) - t;
  const Vector zero = Vector::Zero(d), one = Vector::Ones(d);
  const auto constant = [](double value) {
    return [value](ConstBatchRef, ConstRowVectorRef, BatchRef s) { s.setConstant(value); };
  };
  StepCoefficients c;
  c.c1 = ProbeStep(*sde_, *predictor_, t, dt, i, one, constant(0.0), zero)(0);
  c.c2 = ProbeStep(*sde_, *predictor_, t, dt, i, zero, constant(1.0), zero)(0);
  c.c3 = ProbeStep(*sde_, *predictor_, t, dt, i, zero, constant(0.0), one)(0);
  return c;
}

SmcSampler::StepCoefficients SmcSampler::Coefficients(int64_t i) const {
  Require(i >= 0 && i < options_.num_steps, "SmcSampler::Coefficients", "i", i,
          "in [0, num_steps)");
  return Probe(i);
}

void SmcSampler::CheckAffine(int64_t i) const {
  const int d = sde_->dim();
  const double t = Time(i), dt = Time(i + 1) - t;
  const StepCoefficients c = Probe(i);
  Vector x(d), dw(d);
  for (int k = 0; k < d; ++k) {
    x(k) = 1.5 * std::sin(1.0 + k);
    dw(k) = 0.7 * std::cos(2.0 + k);
  }
  // A non-linear probe score: a step that evaluates it anywhere but at x is caught.
  const auto nonlinear = [](ConstBatchRef xs, ConstRowVectorRef, BatchRef s) {
    s = xs.array().tanh() + 0.3 * xs.array().square();
  };
  const Vector s = x.array().tanh() + 0.3 * x.array().square();
  const Vector stepped = ProbeStep(*sde_, *predictor_, t, dt, i, x, nonlinear, dw);
  const Vector affine = c.c1 * x + c.c2 * s + c.c3 * dw;
  const double scale = (c.c1 * x).cwiseAbs().maxCoeff() + (c.c2 * s).cwiseAbs().maxCoeff() +
                       (c.c3 * dw).cwiseAbs().maxCoeff();
  const double mismatch = (stepped - affine).cwiseAbs().maxCoeff();
  if (!(mismatch <= 1e-10 * scale) || !std::isfinite(c.c3) || c.c3 == 0.0) {
    throw InvalidArgument(std::string(kWhere) + ": predictor '" + std::string(predictor_->name()) +
                          "' is not a Gaussian step x' = c1 x + c2 s(x) + c3 dW at t = " +
                          FormatValue(t) + " (mismatch " + FormatValue(mismatch) +
                          "); use euler-maruyama, reverse-diffusion or ancestral");
  }
}

SmcResult SmcSampler::Sample(int64_t num_groups) const {
  Require(num_groups >= 1, kSample, "num_groups", num_groups, ">= 1");
  const auto start = std::chrono::steady_clock::now();
  const int d = sde_->dim();
  const int64_t K = options_.num_particles;
  const int64_t total = num_groups * K;
  const int64_t num_blocks = (total + kBlock - 1) / kBlock;
  const int64_t N = options_.num_steps;
  const double gamma = options_.proposal_scale;
  const NoiseStream prior(options_.seed, Stream::kPrior);
  const NoiseStream resampling(options_.seed, Stream::kGuidance);
  const IidNoise proposal_noise(d, NoiseStream(options_.seed, Stream::kPredictor));

  SmcResult result;
  Batch& X = result.particles;
  X.resize(d, total);
  Batch S(d, total), G(d, total);
  RowVector log_twist(total), increment = RowVector::Zero(total);
  RowVector& log_w = result.log_weights;
  log_w.setZero(total);
  result.log_evidence.setZero(num_groups);
  result.final_ess.setZero(num_groups);
  result.resamplings.setZero(num_groups);
  result.summary.steps = N;
  result.summary.nfe = (N + 1) * (1 + twist_->score_evaluations());

  const auto for_blocks = [&](const std::function<void(int64_t first, int64_t count)>& fn) {
    context_->ParallelFor(0, num_blocks, 1, [&](int64_t b_begin, int64_t b_end) {
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t first = b * kBlock;
        fn(first, std::min(kBlock, total - first));
      }
    });
  };
  const auto for_groups = [&](const std::function<void(int64_t g)>& fn) {
    context_->ParallelFor(0, num_groups, 1, [&](int64_t g_begin, int64_t g_end) {
      for (int64_t g = g_begin; g < g_end; ++g) fn(g);
    });
  };
  // Replaces group g's particles (and their score, twist and twist gradient) by their ancestors.
  const auto resample_group = [&](int64_t g, const std::vector<int64_t>& ancestors) {
    const int64_t first = g * K;
    const Batch x_old = X.middleCols(first, K), s_old = S.middleCols(first, K),
                g_old = G.middleCols(first, K);
    const RowVector lt_old = log_twist.segment(first, K);
    for (int64_t k = 0; k < K; ++k) {
      X.col(first + k) = x_old.col(ancestors[k]);
      S.col(first + k) = s_old.col(ancestors[k]);
      G.col(first + k) = g_old.col(ancestors[k]);
      log_twist(first + k) = lt_old(ancestors[k]);
    }
  };
  const auto check_group_weights = [&](int64_t g, int64_t step, double t) {
    const int64_t first = g * K;
    for (int64_t k = 0; k < K; ++k) {
      if (std::isnan(log_w(first + k)) || log_w(first + k) == std::numeric_limits<double>::infinity()) {
        throw NumericalFailure(std::string(kSample) + ": log-weight is " +
                                   FormatValue(log_w(first + k)) + " at step " +
                                   std::to_string(step) + " (t = " + FormatValue(t) +
                                   "), particle " + std::to_string(first + k),
                               step, t, first + k, -1);
      }
    }
    if (LogSumExp(log_w.data() + first, K) == -std::numeric_limits<double>::infinity()) {
      throw NumericalFailure(std::string(kSample) + ": every weight of group " +
                                 std::to_string(g) + " is zero at step " + std::to_string(step) +
                                 " (t = " + FormatValue(t) + ")",
                             step, t, first, -1);
    }
  };

  try {
    for_blocks([&](int64_t first, int64_t count) {
      auto xb = X.middleCols(first, count);
      if (options_.initial_sampler) {
        options_.initial_sampler(prior, first, xb);
      } else {
        sde_->SamplePrior(prior, first, xb);
      }
      CheckFiniteDuringSolve(kSample, "initial state", xb, 0, Time(0), first);
    });
    for (int64_t i = 0; i <= N; ++i) {
      const double t = Time(i);
      const bool score_needed = sde_->MarginalStd(t) > 0.0;
      // Score, twist and weights at level i.
      for_blocks([&](int64_t first, int64_t count) {
        auto xb = X.middleCols(first, count);
        auto sb = S.middleCols(first, count);
        auto gb = G.middleCols(first, count);
        const RowVector times = RowVector::Constant(count, t);
        if (score_needed) {
          score_->Evaluate(xb, times, sb);
          CheckFiniteDuringSolve(kSample, "score", sb, i, t, first);
        } else {
          sb.setZero();  // σ_t = 0: Tweedie's estimate is x/α and needs no score
        }
        RowVector lt(count);
        twist_->EvaluateWithLogLikelihood(xb, times, sb, gb, lt);
        CheckFiniteDuringSolve(kSample, "twist gradient", gb, i, t, first);
        CheckFiniteDuringSolve(kSample, "twist log-likelihood", lt, i, t, first);
        for (int64_t k = 0; k < count; ++k) {
          const int64_t p = first + k;
          log_w(p) += i == 0 ? lt(k) : increment(p) + lt(k) - log_twist(p);
          log_twist(p) = lt(k);
        }
      });
      if (i == N) break;
      // Adaptive resampling per group.
      for_groups([&](int64_t g) {
        check_group_weights(g, i, t);
        const int64_t first = g * K;
        if (EffectiveSampleSize(log_w.data() + first, K) >= options_.ess_threshold * K) return;
        Batch u(1, 1);
        resampling.FillUniform(static_cast<uint64_t>(i), kResampleSubstep, g, u);
        result.log_evidence(g) += LogSumExp(log_w.data() + first, K) - std::log(K);
        resample_group(g, SystematicAncestors(log_w.data() + first, K, u(0, 0)));
        log_w.segment(first, K).setZero();
        result.resamplings(g) += 1.0;
      });
      // Proposal move to level i + 1.
      const double t_next = Time(i + 1), dt = t_next - t;
      const StepCoefficients c = Probe(i);
      const double variance = c.c3 * c.c3 * std::abs(dt);
      for_blocks([&](int64_t first, int64_t count) {
        auto xb = X.middleCols(first, count);
        Batch dw(d, count);
        proposal_noise.Increment(i, t, dt, first, dw);
        for (int64_t k = 0; k < count; ++k) {
          const int64_t p = first + k;
          const Vector shift = (c.c2 * gamma) * G.col(p);
          const Vector noise = c.c3 * dw.col(k);
          xb.col(k) = c.c1 * xb.col(k) + c.c2 * S.col(p) + shift + noise;
          increment(p) = gamma == 0.0
                             ? 0.0
                             : -(2.0 * noise.dot(shift) + shift.squaredNorm()) / (2.0 * variance);
        }
        CheckFiniteDuringSolve(kSample, "state after the proposal", xb, i, t_next, first);
      });
    }
    // Final weights: evidence, normalization, ESS and one more resampling for equal weights.
    result.x.resize(d, total);
    const double eps = Time(N);
    for_groups([&](int64_t g) {
      check_group_weights(g, N, eps);
      const int64_t first = g * K;
      const double* v = log_w.data() + first;
      result.final_ess(g) = EffectiveSampleSize(v, K) / static_cast<double>(K);
      const double log_total = LogSumExp(v, K);
      result.log_evidence(g) += log_total - std::log(K);
      Batch u(1, 1);
      resampling.FillUniform(static_cast<uint64_t>(N), kFinalResampleSubstep, g, u);
      const std::vector<int64_t> ancestors = SystematicAncestors(v, K, u(0, 0));
      for (int64_t k = 0; k < K; ++k) result.x.col(first + k) = X.col(first + ancestors[k]);
      log_w.segment(first, K).array() -= log_total;
    });
    result.summary.status = SolveStatus::kSuccess;
    result.summary.message = "success";
    result.summary.accepted_steps = N;
  } catch (const NumericalFailure& failure) {
    result.summary.RecordFailure(failure);
    result.summary.accepted_steps = failure.step();
    result.summary.seconds = Seconds(start);
    if (options_.throw_on_failure) throw;
    return result;
  }
  result.summary.seconds = Seconds(start);
  return result;
}

}  // namespace scoresde
