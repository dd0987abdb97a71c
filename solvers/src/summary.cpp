#include "scoresde/solvers/summary.hpp"

#include <sstream>

namespace scoresde {

const char* ToString(SolveStatus status) {
  switch (status) {
    case SolveStatus::kNotRun: return "not run";
    case SolveStatus::kSuccess: return "success";
    case SolveStatus::kMaxStepsReached: return "maximum steps reached";
    case SolveStatus::kStepSizeUnderflow: return "step size underflow";
    case SolveStatus::kNonFinite: return "non-finite value";
  }
  return "unknown";
}

std::string SolveSummary::BriefReport() const {
  std::ostringstream out;
  out << ToString(status) << ": nfe " << nfe << ", steps " << steps;
  if (rejected_steps > 0) out << " (" << accepted_steps << " accepted, " << rejected_steps
                              << " rejected)";
  out << ", " << seconds << " s";
  if (status != SolveStatus::kSuccess && !message.empty()) out << "; " << message;
  return out.str();
}

void SolveSummary::RecordFailure(const NumericalFailure& error) {
  status = SolveStatus::kNonFinite;
  message = error.what();
  failure = FailureLocation{error.step(), error.t(), error.sample(), error.coordinate()};
}

}  // namespace scoresde
