// Internal: the loop shared by the fixed-grid ODE samplers (DPM-Solver, DPM-Solver++, EDM) and
// their score conversions.
#pragma once

#include <chrono>
#include <cstdint>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/noise_schedule.hpp"
#include "scoresde/solvers/probability_flow.hpp"

namespace scoresde::internal {

// Runs fn(first_sample, columns) over chunks of x on the context's threads, timing the whole and
// turning a NumericalFailure into the summary (then rethrowing it).
template <class Fn>
inline OdeSolution RunSampler(const char* where, int dim, ConstBatchRef x_T, int64_t first_sample,
                       int64_t nfe, int64_t steps, int64_t chunk_size,
                       const ExecutionContext& context, Fn&& fn) {
  CheckShape(where, "x_T", x_T, dim, -1);
  CheckFinite(where, "x_T", x_T);
  Require(first_sample >= 0, where, "first_sample", first_sample, ">= 0");
  const auto start = std::chrono::steady_clock::now();
  OdeSolution solution;
  solution.y = x_T;
  const Eigen::Index n = x_T.cols();
  solution.nfe = IndexRowVector::Constant(n, nfe);
  solution.accepted = IndexRowVector::Constant(n, steps);
  solution.rejected = IndexRowVector::Zero(n);
  SolveSummary& summary = solution.summary;
  summary.nfe = nfe;
  summary.steps = summary.accepted_steps = steps;
  try {
    context.ParallelFor(0, n, chunk_size, [&](int64_t begin, int64_t end) {
      fn(solution.y.middleCols(begin, end - begin), first_sample + begin);
    });
    summary.status = SolveStatus::kSuccess;
    summary.message = "success";
  } catch (const NumericalFailure& failure) {
    summary.RecordFailure(failure);
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    throw;
  }
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return solution;
}

// ε = −σ_t s(x, t) for every column at time t.
inline void NoisePrediction(const char* where, const ScoreModel& score, const NoiseSchedule& schedule,
                     ConstBatchRef x, double t, int64_t step, int64_t first_sample,
                     RowVector* times, Batch* out) {
  times->setConstant(x.cols(), t);
  out->resize(x.rows(), x.cols());
  score.Evaluate(x, *times, *out);
  CheckFiniteDuringSolve(where, "score", *out, step, t, first_sample);
  *out *= -schedule.Sigma(t);
}

// x̂₀ = (x + σ_t² s)/α_t.
inline void DataPrediction(const char* where, const ScoreModel& score, const NoiseSchedule& schedule,
                    ConstBatchRef x, double t, int64_t step, int64_t first_sample,
                    RowVector* times, Batch* out) {
  times->setConstant(x.cols(), t);
  out->resize(x.rows(), x.cols());
  score.Evaluate(x, *times, *out);
  CheckFiniteDuringSolve(where, "score", *out, step, t, first_sample);
  const double sigma = schedule.Sigma(t);
  *out = (x + (sigma * sigma) * *out) / schedule.Alpha(t);
}



}  // namespace scoresde::internal
