#include "scoresde/solvers/exponential_samplers.hpp"

#include <chrono>
#include <cmath>
#include <string>

#include "fast_sampler_internal.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {

std::string_view ToString(TimeGrid grid) {
  switch (grid) {
    case TimeGrid::kLogSnr: return "logSNR";
    case TimeGrid::kTimeUniform: return "time-uniform";
    case TimeGrid::kTimeQuadratic: return "time-quadratic";
  }
  return "unknown";
}

TimeGrid ParseTimeGrid(std::string_view name, std::string_view where) {
  if (name == "logSNR" || name == "logsnr") return TimeGrid::kLogSnr;
  if (name == "time-uniform") return TimeGrid::kTimeUniform;
  if (name == "time-quadratic") return TimeGrid::kTimeQuadratic;
  Require(false, where, "grid", "'" + std::string(name) + "'",
          "one of logSNR, time-uniform, time-quadratic");
  return TimeGrid::kLogSnr;
}

std::vector<double> MakeTimeGrid(const NoiseSchedule& schedule, TimeGrid grid, double eps,
                                 int num_steps) {
  const double t_final = schedule.sde().t_final();
  Require(num_steps >= 1, "MakeTimeGrid", "num_steps", num_steps, ">= 1");
  Require(std::isfinite(eps) && eps > 0.0 && eps < t_final, "MakeTimeGrid", "eps", eps,
          "in (0, T)");
  std::vector<double> times(num_steps + 1);
  const double lambda_start = schedule.Lambda(t_final);
  const double lambda_end = schedule.Lambda(eps);
  for (int i = 0; i <= num_steps; ++i) {
    const double u = static_cast<double>(i) / num_steps;
    switch (grid) {
      case TimeGrid::kLogSnr:
        times[i] = schedule.TimeOfLambda(lambda_start + u * (lambda_end - lambda_start));
        break;
      case TimeGrid::kTimeUniform:
        times[i] = t_final + u * (eps - t_final);
        break;
      case TimeGrid::kTimeQuadratic: {
        const double root = std::sqrt(t_final) + u * (std::sqrt(eps) - std::sqrt(t_final));
        times[i] = root * root;
        break;
      }
    }
  }
  times.front() = t_final;
  times.back() = eps;
  return times;
}

// ---- DPM-Solver ------------------------------------------------------------------------------

void DpmSolver::Options::Validate() const {
  constexpr const char* where = "DpmSolver::Options";
  Require(order >= 1 && order <= 3, where, "order", order, "1, 2 or 3");
  Require(nfe >= order, where, "nfe", nfe, ">= order = " + std::to_string(order));
  Require(std::isfinite(eps) && eps > 0.0, where, "eps", eps, "> 0 and finite");
  Require(num_threads >= 1, where, "num_threads", num_threads, ">= 1");
  Require(chunk_size >= 1, where, "chunk_size", chunk_size, ">= 1");
}

DpmSolver::DpmSolver(const ScalarAffineSde& sde, const ScoreModel& score, Options options)
    : schedule_(sde), score_(score), options_(options) {
  options_.Validate();
  Require(score.dim() == sde.dim(), "DpmSolver", "score.dim()", score.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
  Require(options_.eps < sde.t_final(), "DpmSolver", "eps", options_.eps,
          "< T = " + FormatValue(sde.t_final()));
  const int n = options_.nfe;
  const int k = options_.order;
  if (options_.schedule == Schedule::kFixed) {
    orders_.assign(n / k, k);
  } else if (k == 3) {
    const int steps = n / 3 + 1;
    if (n % 3 == 0) {
      orders_.assign(steps - 2, 3);
      orders_.push_back(2);
      orders_.push_back(1);
    } else {
      orders_.assign(steps - 1, 3);
      orders_.push_back(n % 3 == 1 ? 1 : 2);
    }
  } else if (k == 2) {
    orders_.assign(n / 2, 2);
    if (n % 2 == 1) orders_.push_back(1);
  } else {
    orders_.assign(n, 1);
  }
  const int outer = static_cast<int>(orders_.size());
  if (options_.grid == TimeGrid::kLogSnr) {
    times_ = MakeTimeGrid(schedule_, options_.grid, options_.eps, outer);
  } else {
    // The outer times are the N-step grid at the cumulative orders (as in the paper's code).
    int budget = 0;
    for (int order : orders_) budget += order;
    const std::vector<double> fine = MakeTimeGrid(schedule_, options_.grid, options_.eps, budget);
    times_.assign(1, fine.front());
    int index = 0;
    for (int order : orders_) {
      index += order;
      times_.push_back(fine[index]);
    }
  }
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
}

DpmSolver::~DpmSolver() = default;

void DpmSolver::RunChunk(BatchRef x, int64_t first_sample) const {
  constexpr const char* where = "DpmSolver::Sample";
  RowVector times;
  Batch eps_s, eps_1, eps_2, u;
  for (size_t i = 0; i < orders_.size(); ++i) {
    const double s = times_[i];
    const double t = times_[i + 1];
    const double lambda_s = schedule_.Lambda(s);
    const double h = schedule_.Lambda(t) - lambda_s;
    const double alpha_s = schedule_.Alpha(s);
    const double alpha_t = schedule_.Alpha(t);
    const double sigma_t = schedule_.Sigma(t);
    const double phi = std::expm1(h);
    const int64_t step = static_cast<int64_t>(i);
    internal::NoisePrediction(where, score_, schedule_, x, s, step, first_sample, &times, &eps_s);
    switch (orders_[i]) {
      case 1:
        x = (alpha_t / alpha_s) * x - (sigma_t * phi) * eps_s;
        break;
      case 2: {
        constexpr double r1 = 0.5;
        const double s1 = schedule_.TimeOfLambda(lambda_s + r1 * h);
        u = (schedule_.Alpha(s1) / alpha_s) * x - (schedule_.Sigma(s1) * std::expm1(r1 * h)) * eps_s;
        internal::NoisePrediction(where, score_, schedule_, u, s1, step, first_sample, &times, &eps_1);
        x = (alpha_t / alpha_s) * x - (sigma_t * phi) * eps_s -
            (sigma_t / (2.0 * r1) * phi) * (eps_1 - eps_s);
        break;
      }
      case 3: {
        constexpr double r1 = 1.0 / 3.0;
        constexpr double r2 = 2.0 / 3.0;
        const double s1 = schedule_.TimeOfLambda(lambda_s + r1 * h);
        const double s2 = schedule_.TimeOfLambda(lambda_s + r2 * h);
        const double phi_1 = std::expm1(r1 * h);
        const double phi_2 = std::expm1(r2 * h);
        u = (schedule_.Alpha(s1) / alpha_s) * x - (schedule_.Sigma(s1) * phi_1) * eps_s;
        internal::NoisePrediction(where, score_, schedule_, u, s1, step, first_sample, &times, &eps_1);
        eps_1 -= eps_s;  // D₁
        const double sigma_2 = schedule_.Sigma(s2);
        u = (schedule_.Alpha(s2) / alpha_s) * x - (sigma_2 * phi_2) * eps_s -
            (sigma_2 * r2 / r1 * (phi_2 / (r2 * h) - 1.0)) * eps_1;
        internal::NoisePrediction(where, score_, schedule_, u, s2, step, first_sample, &times, &eps_2);
        eps_2 -= eps_s;  // D₂
        x = (alpha_t / alpha_s) * x - (sigma_t * phi) * eps_s -
            (sigma_t / r2 * (phi / h - 1.0)) * eps_2;
        break;
      }
    }
    CheckFiniteDuringSolve(where, "state", x, step, t, first_sample);
  }
  if (options_.denoise_to_zero) {
    internal::DataPrediction(where, score_, schedule_, x, options_.eps,
                   static_cast<int64_t>(orders_.size()), first_sample, &times, &u);
    x = u;
  }
}

OdeSolution DpmSolver::Sample(ConstBatchRef x_T, int64_t first_sample) const {
  int64_t nfe = options_.denoise_to_zero ? 1 : 0;
  for (int order : orders_) nfe += order;
  return internal::RunSampler("DpmSolver::Sample", score_.dim(), x_T, first_sample, nfe,
                    static_cast<int64_t>(orders_.size()), options_.chunk_size, *context_,
                    [&](BatchRef x, int64_t first) { RunChunk(x, first); });
}

// ---- DPM-Solver++(2M) ------------------------------------------------------------------------

void DpmSolverPlusPlus2M::Options::Validate() const {
  constexpr const char* where = "DpmSolverPlusPlus2M::Options";
  Require(num_steps >= 1, where, "num_steps", num_steps, ">= 1");
  Require(std::isfinite(eps) && eps > 0.0, where, "eps", eps, "> 0 and finite");
  Require(num_threads >= 1, where, "num_threads", num_threads, ">= 1");
  Require(chunk_size >= 1, where, "chunk_size", chunk_size, ">= 1");
}

DpmSolverPlusPlus2M::DpmSolverPlusPlus2M(const ScalarAffineSde& sde, const ScoreModel& score,
                                         Options options)
    : schedule_(sde), score_(score), options_(options) {
  options_.Validate();
  Require(score.dim() == sde.dim(), "DpmSolverPlusPlus2M", "score.dim()", score.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
  Require(options_.eps < sde.t_final(), "DpmSolverPlusPlus2M", "eps", options_.eps,
          "< T = " + FormatValue(sde.t_final()));
  times_ = MakeTimeGrid(schedule_, options_.grid, options_.eps, options_.num_steps);
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
}

DpmSolverPlusPlus2M::~DpmSolverPlusPlus2M() = default;

void DpmSolverPlusPlus2M::RunChunk(BatchRef x, int64_t first_sample) const {
  constexpr const char* where = "DpmSolverPlusPlus2M::Sample";
  const int steps = options_.num_steps;
  RowVector times;
  Batch previous, current, d;
  internal::DataPrediction(where, score_, schedule_, x, times_[0], 0, first_sample, &times, &current);
  double h_previous = 0.0;
  for (int i = 1; i <= steps; ++i) {
    const double t_prev = times_[i - 1];
    const double t = times_[i];
    const double h = schedule_.Lambda(t) - schedule_.Lambda(t_prev);
    const bool first_order = i == 1 || (options_.lower_order_final && steps < 10 && i == steps);
    if (first_order) {
      d = current;
    } else {
      const double r = h_previous / h;
      d = (1.0 + 0.5 / r) * current - (0.5 / r) * previous;
    }
    x = (schedule_.Sigma(t) / schedule_.Sigma(t_prev)) * x -
        (schedule_.Alpha(t) * std::expm1(-h)) * d;
    CheckFiniteDuringSolve(where, "state", x, i - 1, t, first_sample);
    if (i < steps || options_.denoise_to_zero) {
      previous.swap(current);
      internal::DataPrediction(where, score_, schedule_, x, t, i, first_sample, &times, &current);
    }
    h_previous = h;
  }
  if (options_.denoise_to_zero) x = current;
}

OdeSolution DpmSolverPlusPlus2M::Sample(ConstBatchRef x_T, int64_t first_sample) const {
  const int64_t nfe = options_.num_steps + (options_.denoise_to_zero ? 1 : 0);
  return internal::RunSampler("DpmSolverPlusPlus2M::Sample", score_.dim(), x_T, first_sample, nfe,
                    options_.num_steps, options_.chunk_size, *context_,
                    [&](BatchRef x, int64_t first) { RunChunk(x, first); });
}

}  // namespace scoresde
