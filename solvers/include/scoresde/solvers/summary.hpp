// What a solve reports: status, cost and where it failed. Every solver fills one (Ceres's Summary,
// diffrax's stats), whether it succeeds or throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scoresde/sde/error.hpp"

namespace scoresde {

enum class SolveStatus {
  kNotRun,
  kSuccess,
  kMaxStepsReached,    // an adaptive solve hit its step budget
  kStepSizeUnderflow,  // an adaptive solve could not meet its tolerance
  kNonFinite,          // a state, drift or score became NaN or infinite
};
const char* ToString(SolveStatus status);

// The first non-finite value seen, located by step, time, sample and coordinate.
struct FailureLocation {
  int64_t step = -1;
  double t = 0.0;
  int64_t sample = -1;
  int64_t coordinate = -1;
};

struct SolveSummary {
  SolveStatus status = SolveStatus::kNotRun;
  std::string message = "not run";
  int64_t nfe = 0;             // score (or drift) evaluations per sample
  int64_t steps = 0;           // steps taken (accepted + rejected for adaptive solvers)
  int64_t accepted_steps = 0;
  int64_t rejected_steps = 0;
  double seconds = 0.0;        // wall time
  std::optional<FailureLocation> failure;
  std::vector<std::string> warnings;

  bool ok() const { return status == SolveStatus::kSuccess; }
  // One line: status, NFE, steps, time and the failure if any.
  std::string BriefReport() const;
  // Records a NumericalFailure (status kNonFinite, message and location).
  void RecordFailure(const NumericalFailure& failure);
};

}  // namespace scoresde
