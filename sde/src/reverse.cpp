#include "scoresde/sde/reverse.hpp"

#include "scoresde/sde/check.hpp"

namespace scoresde {

void DriftFromScore(const Sde& sde, DriftKind kind, ConstBatchRef x, double t, ConstBatchRef s,
                    BatchRef out, DriftScratch* scratch, DivergenceTerm term) {
  const double lambda = kind == DriftKind::kReverseSde ? 1.0 : 0.5;
  const Eigen::Index cols = x.cols();
  if (sde.noise_type() == NoiseType::kScalar) {
    // G = g(t) I: f − λ g² s; ∇·(GGᵀ) vanishes.
    const double g = sde.ScalarDiffusion(t);
    sde.Drift(x, t, out);
    out -= (lambda * g * g) * s;
    return;
  }
  scratch->product.resize(x.rows(), cols);
  sde.Drift(x, t, out);
  sde.DiffusionSquaredTimes(x, t, s, scratch->product);
  if (term == DivergenceTerm::kInclude) {
    scratch->divergence.resize(x.rows(), cols);
    sde.DivergenceOfGGt(x, t, scratch->divergence);
    scratch->product += scratch->divergence;
  }
  out -= lambda * scratch->product;
}

void ReverseDrift(const Sde& sde, const ScoreModel& score, DriftKind kind, ConstBatchRef x,
                  double t, BatchRef out, DriftScratch* scratch, DivergenceTerm term) {
  scratch->score.resize(x.rows(), x.cols());
  scratch->times.setConstant(x.cols(), t);
  score.Evaluate(x, scratch->times, scratch->score);
  DriftFromScore(sde, kind, x, t, scratch->score, out, scratch, term);
}

}  // namespace scoresde
