#include "scoresde/solvers/sde_integrator.hpp"

#include <chrono>
#include <cmath>
#include <string>

#include "chunked_solve_internal.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {
constexpr const char* kWhere = "SdeIntegrator";
}  // namespace

void SdeIntegrator::Options::Validate() const {
  constexpr const char* kOptions = "SdeIntegrator::Options";
  Require(num_steps >= 1, kOptions, "num_steps", num_steps, ">= 1");
  Require(num_threads >= 1, kOptions, "num_threads", num_threads, ">= 1");
  Require(chunk_size >= 0, kOptions, "chunk_size", chunk_size, ">= 0 (0 picks a default)");
}

SdeIntegrator::SdeIntegrator(StepProblem problem, const Predictor& predictor, double t_start,
                             double t_end, Options options)
    : problem_(problem),
      predictor_(&predictor),
      t_start_(t_start),
      t_end_(t_end),
      options_(options) {
  options_.Validate();
  problem_.Validate(kWhere);
  const Sde& sde = *problem_.sde;
  const double t_final = sde.t_final();
  const std::string range = "in [0, T = " + FormatValue(t_final) + "]";
  Require(std::isfinite(t_start) && t_start >= 0.0 && t_start <= t_final, kWhere, "t_start",
          t_start, range);
  Require(std::isfinite(t_end) && t_end >= 0.0 && t_end <= t_final, kWhere, "t_end", t_end,
          range);
  if (problem_.reverse()) {
    Require(t_end < t_start, kWhere, "t_end", t_end,
            "< t_start (" + FormatValue(t_start) + ") for the reverse-time SDE");
  } else {
    Require(t_end > t_start, kWhere, "t_end", t_end,
            "> t_start (" + FormatValue(t_start) + ") for the forward SDE");
  }
  if (predictor.nfe_per_step() == 0 && predictor.name() == "none") {
    throw InvalidArgument(std::string(kWhere) + ": predictor 'none' does not integrate");
  }
  std::string reason;
  if (!predictor.Supports(sde, &reason)) {
    throw InvalidArgument(std::string(kWhere) + ": predictor '" + std::string(predictor.name()) +
                          "' does not support this SDE: " + reason);
  }
  const double h = std::abs(t_end - t_start) / options_.num_steps;
  predictor.CheckStepSize(sde, std::min(t_start, t_end), std::max(t_start, t_end), h);
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
}

SdeIntegrator::~SdeIntegrator() = default;
SdeIntegrator::SdeIntegrator(SdeIntegrator&&) noexcept = default;

SolveSummary SdeIntegrator::Integrate(const NoiseSource& noise, int64_t first_sample,
                                      BatchRef x) const {
  const auto start = std::chrono::steady_clock::now();
  const Sde& sde = *problem_.sde;
  CheckShape("SdeIntegrator::Integrate", "x", x, sde.dim(), -1);
  CheckFinite("SdeIntegrator::Integrate", "x", x);
  Require(noise.dim() == sde.noise_dim(), "SdeIntegrator::Integrate", "noise.dim()", noise.dim(),
          "equal to the SDE's noise_dim (" + std::to_string(sde.noise_dim()) + ")");
  Require(first_sample >= 0, "SdeIntegrator::Integrate", "first_sample", first_sample, ">= 0");
  const int n = options_.num_steps;
  const double span = t_end_ - t_start_;
  const auto time = [&](int64_t i) {
    return i >= n ? t_end_ : t_start_ + span * (static_cast<double>(i) / n);
  };
  const int chunk = options_.chunk_size > 0 ? options_.chunk_size
                                            : internal::DefaultChunkSize(sde.dim());
  const int64_t begin = first_sample, end = first_sample + x.cols();
  const std::optional<NumericalFailure> failure = internal::RunChunks(
      *context_, begin, end, chunk,
      [&](int64_t first, int64_t count, const internal::StopCheck& stop) {
        auto xc = x.middleCols(first - begin, count);
        StepWorkspace workspace;
        for (int64_t i = 0; i < n; ++i) {
          if (stop(i)) return;
          const double t = time(i), t_next = time(i + 1);
          predictor_->Step(problem_, t, t_next - t, i, noise, first, xc, &workspace);
          CheckFiniteDuringSolve("SdeIntegrator::Integrate", "state", xc, i, t_next, first);
        }
      });
  SolveSummary summary;
  summary.steps = n;
  summary.nfe = problem_.reverse() ? static_cast<int64_t>(n) * predictor_->nfe_per_step() : 0;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failure) {
    summary.RecordFailure(*failure);
    summary.accepted_steps = failure->step();
    if (options_.throw_on_failure) throw *failure;
    return summary;
  }
  summary.status = SolveStatus::kSuccess;
  summary.message = "success";
  summary.accepted_steps = n;
  return summary;
}

}  // namespace scoresde
