#include "scoresde/solvers/correctors.hpp"

#include <cmath>
#include <string>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {

std::string_view ToString(LangevinStepRule rule) {
  switch (rule) {
    case LangevinStepRule::kExpectation: return "expectation";
    case LangevinStepRule::kBatchAverage: return "batch-average";
  }
  return "unknown";
}

double LangevinAlpha(const Sde& sde, double t, double h) {
  double beta = -1.0;
  if (const auto* vp = dynamic_cast<const VpSde*>(&sde)) beta = vp->Beta(t);
  if (const auto* subvp = dynamic_cast<const SubVpSde*>(&sde)) beta = subvp->Beta(t);
  if (beta < 0.0) return 1.0;  // VE and SDEs without a discrete chain
  // α_i = 1 − β_i with β_i = β(t)h, the DDPM chain's (the paper's code: sde.alphas[timestep]).
  const double beta_i = beta * h;
  Require(beta_i < 1.0, "LangevinAlpha", "beta(t) * h", beta_i,
          "< 1 for the VP chain's alpha_i = 1 - beta_i (use more steps)");
  return 1.0 - beta_i;
}

namespace {

enum Slot : int { kScore = 20, kNoise = 21 };

// x += ε s + √(2ε) z.
void LangevinUpdate(double step_size, ConstBatchRef s, ConstBatchRef z, BatchRef x) {
  x += step_size * s + std::sqrt(2.0 * step_size) * z;
}

// Σ_j ‖v_j‖ / B in a fixed order (per-column sums, then columns in index order).
double MeanColumnNorm(ConstBatchRef v) {
  double total = 0.0;
  for (Eigen::Index j = 0; j < v.cols(); ++j) {
    double squared = 0.0;
    const double* column = v.col(j).data();
    for (Eigen::Index i = 0; i < v.rows(); ++i) squared += column[i] * column[i];
    total += std::sqrt(squared);
  }
  return total / static_cast<double>(v.cols());
}

}  // namespace

void LangevinCorrector::Correct(const StepProblem& problem, const CorrectorLevel& level,
                                int64_t step, uint32_t substep, const NoiseStream& noise,
                                int64_t first_sample, BatchRef x,
                                StepWorkspace* workspace) const {
  const Eigen::Index d = x.rows(), cols = x.cols();
  Batch& s = workspace->Scratch(kScore, d, cols);
  Batch& z = workspace->Scratch(kNoise, d, cols);
  problem.score->Evaluate(x, workspace->times(cols, level.t), s);
  noise.FillNormal(static_cast<uint64_t>(step), substep, first_sample, z);
  const double alpha = LangevinAlpha(*problem.sde, level.t, level.h);
  double step_size;
  if (level.rule == LangevinStepRule::kExpectation) {
    // ε_t = 2α r² E‖z‖² / E‖s_t‖², E‖z‖² = d.
    step_size = 2.0 * alpha * level.snr * level.snr * static_cast<double>(d) /
                level.expected_squared_score_norm;
  } else {
    const double ratio = level.snr * MeanColumnNorm(z) / MeanColumnNorm(s);
    step_size = 2.0 * alpha * ratio * ratio;
  }
  LangevinUpdate(step_size, s, z, x);
}

bool AnnealedLangevinCorrector::Supports(const Sde& sde, std::string* reason) const {
  if (dynamic_cast<const ScalarAffineSde*>(&sde) == nullptr) {
    if (reason != nullptr) {
      *reason = "annealed Langevin needs the kernel std sigma_t of a VE, VP or sub-VP SDE";
    }
    return false;
  }
  return true;
}

void AnnealedLangevinCorrector::Correct(const StepProblem& problem, const CorrectorLevel& level,
                                        int64_t step, uint32_t substep, const NoiseStream& noise,
                                        int64_t first_sample, BatchRef x,
                                        StepWorkspace* workspace) const {
  const auto& affine = dynamic_cast<const ScalarAffineSde&>(*problem.sde);
  const Eigen::Index d = x.rows(), cols = x.cols();
  Batch& s = workspace->Scratch(kScore, d, cols);
  Batch& z = workspace->Scratch(kNoise, d, cols);
  problem.score->Evaluate(x, workspace->times(cols, level.t), s);
  noise.FillNormal(static_cast<uint64_t>(step), substep, first_sample, z);
  // NCSN: ε = 2α (r σ_t)².
  const double sigma = affine.MarginalStd(level.t);
  const double alpha = LangevinAlpha(affine, level.t, level.h);
  const double step_size = 2.0 * alpha * (level.snr * sigma) * (level.snr * sigma);
  LangevinUpdate(step_size, s, z, x);
}

std::vector<std::string> CorrectorNames() { return {"langevin", "annealed-langevin", "none"}; }

std::unique_ptr<Corrector> MakeCorrector(std::string_view name) {
  if (name == "langevin") return std::make_unique<LangevinCorrector>();
  if (name == "annealed-langevin") return std::make_unique<AnnealedLangevinCorrector>();
  if (name == "none") return std::make_unique<NoneCorrector>();
  throw InvalidArgument("corrector = '" + std::string(name) +
                        "'; must be one of langevin, annealed-langevin, none");
}

}  // namespace scoresde
