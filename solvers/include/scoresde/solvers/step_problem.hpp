// What a single step advances, and the scratch space it reuses.
//
// One set of steppers serves both directions (Song et al., ICLR 2021, eqs. 5 and 6):
//   forward SDE       dx = f(x, t) dt + G(x, t) dw,                          t increasing;
//   reverse-time SDE  dx = [f − ∇·(GGᵀ) − GGᵀ s](x, t) dt + G(x, t) dw̄,      t decreasing,
// where s ≈ ∇ₓ log p_t is the score. With the step drift b (f forward, the bracket in reverse) a
// step from t to t + dt (dt < 0 in reverse) is written in the solve's own time τ, which always
// increases: the reverse SDE is an Itô SDE in τ = T − t with drift −b and diffusion G (Anderson
// 1982; Haussmann & Pardoux 1986). Steppers therefore take b·dt for the drift, h = |dt| for the
// noise, and evaluate stage times at t + c·dt, so every Itô scheme applies unchanged in reverse.
#pragma once

#include <deque>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/reverse.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

struct StepProblem {
  const Sde* sde = nullptr;
  // Null for the forward SDE; the score of p_t for the reverse-time SDE.
  const ScoreModel* score = nullptr;
  // Dropping ∇·(GGᵀ) is wrong whenever G depends on x (kOmit exists to demonstrate that).
  DivergenceTerm divergence_term = DivergenceTerm::kInclude;

  static StepProblem Forward(const Sde& sde) { return {&sde, nullptr, DivergenceTerm::kInclude}; }
  static StepProblem Reverse(const Sde& sde, const ScoreModel& score,
                             DivergenceTerm term = DivergenceTerm::kInclude) {
    return {&sde, &score, term};
  }
  bool reverse() const { return score != nullptr; }

  // Throws InvalidArgument ("<where>: ...") unless sde is set and, for a reverse problem, the
  // score's dimension equals the SDE's.
  void Validate(const char* where) const;
};

// Scratch batches reused across steps: a stepper asks for slot k with a shape and gets a buffer
// that is reallocated only when its size changes (once per chunk, not per step). Contents are
// unspecified on return; references stay valid while the workspace lives. One workspace per
// thread of work; not thread-safe.
class StepWorkspace {
 public:
  Batch& Scratch(int slot, Eigen::Index rows, Eigen::Index cols);
  DriftScratch& drift() { return drift_; }
  RowVector& times(Eigen::Index cols, double t);  // t repeated cols times

 private:
  std::deque<Batch> buffers_;  // a deque keeps references valid as slots are added
  DriftScratch drift_;
  RowVector times_;
};

// The step drift b(x, t): f forward; f − ∇·(GGᵀ) − GGᵀ s in reverse (one score evaluation).
// x and out are d × B and may not alias.
void EvaluateStepDrift(const StepProblem& problem, ConstBatchRef x, double t, BatchRef out,
                       StepWorkspace* workspace);

}  // namespace scoresde
