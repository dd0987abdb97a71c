// The predictors of the Score-SDE paper and the classical SDE schemes (Song et al., ICLR 2021,
// section 4.2 and appendices E–G; Kloeden & Platen, "Numerical Solution of Stochastic Differential
// Equations", 1992; Rößler, SIAM J. Numer. Anal. 48(3), 2010). Each advances a batch from t to
// t + dt with drift b·dt and noise over h = |dt| (step_problem.hpp); ΔW and ΔZ come from the
// NoiseSource, I_(1,1) = (ΔW² − h)/2, I_(1,1,1) = (ΔW³ − 3hΔW)/6.
//
//   euler-maruyama     x + b dt + G ΔW.                                    strong 0.5 (1 additive),
//                                                                           weak 1; any noise.
//   milstein           Euler–Maruyama + Σ L^{j1}G_{·j2} I_(j1,j2), with I_(j1,j2) ≈ ½(ΔW_j1 ΔW_j2 − hδ)
//                      (no Lévy areas). Diagonal: + ½ g g' (ΔW² − h), assuming g_i depends on
//                      x_i only. Strong 1 for scalar/diagonal (and commutative general) noise, 0.5
//                      for non-commutative general noise; weak 1. Needs ∂G/∂x.
//   sra1               Rößler's SRA1 for additive noise (Rößler 2010, the SRA1 tableau: α = (1/3,
//                      2/3), A⁰₂₁ = 3/4, B⁰₂₁ = 3/2, c⁰ = (0, 3/4), c¹ = (1, 0), β⁽¹⁾ = (1, 0),
//                      β⁽²⁾ = (−1, 1)); 2 drift evaluations. Strong 1.5, weak 2; scalar noise.
//   sriw1              Rößler's SRIW1 for diagonal noise (Rößler 2010, the SRI tableau of strong
//                      order 1.5 and weak order 2 that StochasticDiffEq.jl names SRIW1; 4 stages, 2
//                      drift evaluations; coefficients in predictors.cpp, order conditions checked
//                      by the unit tests). Strong 1.5, weak 2; scalar or diagonal noise with g_i
//                      depending on x_i only.
//   srk                sra1 for scalar (additive) noise, sriw1 for diagonal noise.
//   reverse-diffusion  Song et al. eq. (46): x − f_i(x) + G_i G_iᵀ s + G_i z with (f_i, G_i) the
//                      family's discrete chain (ScalarAffineSde::Discretize: DDPM for VP, NCSN for
//                      VE, Euler–Maruyama for sub-VP). For other SDEs it is Euler–Maruyama (their
//                      only discretization, with the ∇·(GGᵀ) term). Forward, the discrete chain.
//   ancestral          DDPM (VP): (x + β_i s)/√(1 − β_i) + √β_i z, β_i = β(t)h;
//                      NCSN (VE): x + (σ_i² − σ_{i−1}²) s + √(σ_{i−1}²(σ_i² − σ_{i−1}²)/σ_i²) z,
//                      σ_i the kernel std (MarginalStd) at t, σ_{i−1} at t − h (Song et al.,
//                      appendix F; Ho et al. 2020). VE and VP only. Forward, the discrete chain.
//   none               leaves x unchanged (corrector-only sampling).
//
// As discretizations of the reverse SDE with exact coefficients, reverse-diffusion and ancestral
// differ from Euler–Maruyama by O(h²) per step in the coefficients: strong 1 (additive noise),
// weak 1.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "scoresde/solvers/predictor.hpp"

namespace scoresde {

class EulerMaruyamaPredictor final : public Predictor {
 public:
  std::string_view name() const override { return "euler-maruyama"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType) const override { return 1.0; }
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  int nfe_per_step() const override { return 1; }
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;
};

class MilsteinPredictor final : public Predictor {
 public:
  std::string_view name() const override { return "milstein"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType) const override { return 1.0; }
  // Needs sde.HasDiffusionDerivative().
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  int nfe_per_step() const override { return 1; }
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;
};

class Sra1Predictor final : public Predictor {
 public:
  std::string_view name() const override { return "sra1"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType type) const override;
  // Scalar (additive) noise only.
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  bool needs_area() const override { return true; }
  int nfe_per_step() const override { return 2; }
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;
};

class SriW1Predictor final : public Predictor {
 public:
  std::string_view name() const override { return "sriw1"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType type) const override;
  // Scalar or diagonal noise.
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  bool needs_area() const override { return true; }
  int nfe_per_step() const override { return 2; }
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;
};

// SRA1 for scalar (additive) noise, SRIW1 for diagonal noise.
class SrkPredictor final : public Predictor {
 public:
  std::string_view name() const override { return "srk"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType type) const override;
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  bool needs_area() const override { return true; }
  int nfe_per_step() const override { return 2; }
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;

 private:
  Sra1Predictor additive_;
  SriW1Predictor diagonal_;
};

class ReverseDiffusionPredictor final : public Predictor {
 public:
  std::string_view name() const override { return "reverse-diffusion"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType) const override { return 1.0; }
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  int nfe_per_step() const override { return 1; }
  // VP: the DDPM chain needs β(t_high)·h < 1.
  void CheckStepSize(const Sde& sde, double t_low, double t_high, double h) const override;
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;
};

class AncestralPredictor final : public Predictor {
 public:
  std::string_view name() const override { return "ancestral"; }
  double strong_order(NoiseType type) const override;
  double weak_order(NoiseType type) const override;
  // VE and VP SDEs only.
  bool Supports(const Sde& sde, std::string* reason = nullptr) const override;
  int nfe_per_step() const override { return 1; }
  // VP: the DDPM chain needs β(t_high)·h < 1.
  void CheckStepSize(const Sde& sde, double t_low, double t_high, double h) const override;
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override;
};

class NonePredictor final : public Predictor {
 public:
  std::string_view name() const override { return "none"; }
  double strong_order(NoiseType) const override { return 0.0; }
  double weak_order(NoiseType) const override { return 0.0; }
  bool Supports(const Sde&, std::string* = nullptr) const override { return true; }
  int nfe_per_step() const override { return 0; }
  void Step(const StepProblem&, double, double, int64_t, const NoiseSource&, int64_t, BatchRef,
            StepWorkspace*) const override {}
};

// The predictor with this command-line name; throws InvalidArgument listing the valid names.
std::unique_ptr<Predictor> MakePredictor(std::string_view name);
// Every name MakePredictor accepts.
std::vector<std::string> PredictorNames();

}  // namespace scoresde
