#include "scoresde/solvers/step_problem.hpp"

#include "scoresde/sde/check.hpp"

namespace scoresde {

void StepProblem::Validate(const char* where) const {
  if (sde == nullptr) throw InvalidArgument(std::string(where) + ": the problem has no SDE");
  if (score != nullptr) {
    Require(score->dim() == sde->dim(), where, "score dim", score->dim(),
            "equal to the SDE's dim (" + std::to_string(sde->dim()) + ")");
  }
}

Batch& StepWorkspace::Scratch(int slot, Eigen::Index rows, Eigen::Index cols) {
  SCORESDE_DCHECK(slot >= 0);
  if (static_cast<size_t>(slot) >= buffers_.size()) buffers_.resize(slot + 1);
  Batch& buffer = buffers_[slot];
  // Eigen keeps the allocation when rows·cols is unchanged.
  if (buffer.rows() != rows || buffer.cols() != cols) buffer.resize(rows, cols);
  return buffer;
}

RowVector& StepWorkspace::times(Eigen::Index cols, double t) {
  times_.setConstant(cols, t);
  return times_;
}

void EvaluateStepDrift(const StepProblem& problem, ConstBatchRef x, double t, BatchRef out,
                       StepWorkspace* workspace) {
  if (!problem.reverse()) {
    problem.sde->Drift(x, t, out);
    return;
  }
  ReverseDrift(*problem.sde, *problem.score, DriftKind::kReverseSde, x, t, out,
               &workspace->drift(), problem.divergence_term);
}

}  // namespace scoresde
