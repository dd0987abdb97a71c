// Drifts built from any SDE and any score (Song et al., ICLR 2021, eqs. 6 and 13, general G):
//   reverse-time SDE:      f − ∇·(GGᵀ) − GGᵀ s        (integrated from T down to ε)
//   probability-flow ODE:  f − ½∇·(GGᵀ) − ½GGᵀ s
// i.e. f − λ[∇·(GGᵀ) + GGᵀ s] with λ = 1 or ½. For G = g(t) I they reduce to f − λ g² s.
#pragma once

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

// Dropping ∇·(GGᵀ) is wrong whenever G depends on x; kOmit exists to demonstrate that.
enum class DivergenceTerm { kInclude, kOmit };

enum class DriftKind {
  kReverseSde,        // λ = 1
  kProbabilityFlow,   // λ = ½
};

// Scratch space reused across calls (resized on demand; no allocation once warm).
struct DriftScratch {
  Batch score;
  Batch product;
  Batch divergence;
  RowVector times;
};

// out = f(x, t) − λ[∇·(GGᵀ)(x, t) + GGᵀ(x, t) s] for a score s already evaluated at (x, t).
// x, s and out are d × B; out may not alias x or s.
void DriftFromScore(const Sde& sde, DriftKind kind, ConstBatchRef x, double t, ConstBatchRef s,
                    BatchRef out, DriftScratch* scratch,
                    DivergenceTerm term = DivergenceTerm::kInclude);

// Evaluates the score at (x, t) into scratch->score, then DriftFromScore.
void ReverseDrift(const Sde& sde, const ScoreModel& score, DriftKind kind, ConstBatchRef x,
                  double t, BatchRef out, DriftScratch* scratch,
                  DivergenceTerm term = DivergenceTerm::kInclude);

}  // namespace scoresde
