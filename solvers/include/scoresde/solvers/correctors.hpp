// The correctors of the Score-SDE paper (Song et al., ICLR 2021, Algorithms 4 and 5; Song & Ermon,
// NeurIPS 2019, Algorithm 1):
//
//   langevin            x ← x + ε s + √(2ε) z with ε from the signal-to-noise rule (corrector.hpp):
//                       kExpectation ε_t = 2α r² d / E‖s_t‖² (default), or the paper's batch rule
//                       ε = 2α (r mean_j‖z_j‖ / mean_j‖s_j‖)² over the columns passed in. Any SDE.
//   annealed-langevin   the NCSN schedule ε_t = 2α (r σ_t)², σ_t the kernel std (MarginalStd), as in
//                       the paper's code; scalar-affine SDEs (VE, VP, sub-VP).
//   none                leaves x unchanged.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "scoresde/solvers/corrector.hpp"

namespace scoresde {

class LangevinCorrector final : public Corrector {
 public:
  std::string_view name() const override { return "langevin"; }
  bool Supports(const Sde&, std::string* = nullptr) const override { return true; }
  int nfe_per_step() const override { return 1; }
  bool NeedsExpectedSquaredNorm(LangevinStepRule rule) const override {
    return rule == LangevinStepRule::kExpectation;
  }
  void Correct(const StepProblem& problem, const CorrectorLevel& level, int64_t step,
               uint32_t substep, const NoiseStream& noise, int64_t first_sample, BatchRef x,
               StepWorkspace* workspace) const override;
};

class AnnealedLangevinCorrector final : public Corrector {
 public:
  std::string_view name() const override { return "annealed-langevin"; }
  // ScalarAffineSde only (needs the kernel std σ_t).
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  int nfe_per_step() const override { return 1; }
  void Correct(const StepProblem& problem, const CorrectorLevel& level, int64_t step,
               uint32_t substep, const NoiseStream& noise, int64_t first_sample, BatchRef x,
               StepWorkspace* workspace) const override;
};

class NoneCorrector final : public Corrector {
 public:
  std::string_view name() const override { return "none"; }
  bool Supports(const Sde&, std::string* = nullptr) const override { return true; }
  int nfe_per_step() const override { return 0; }
  void Correct(const StepProblem&, const CorrectorLevel&, int64_t, uint32_t, const NoiseStream&,
               int64_t, BatchRef, StepWorkspace*) const override {}
};

// The corrector with this command-line name; throws InvalidArgument listing the valid names.
std::unique_ptr<Corrector> MakeCorrector(std::string_view name);
std::vector<std::string> CorrectorNames();

}  // namespace scoresde
