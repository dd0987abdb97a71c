#include "scoresde/solvers/predictors.hpp"

#include <cmath>
#include <string>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

void Predictor::CheckStepSize(const Sde&, double, double, double) const {}

namespace {

// Scratch slots shared by the steps below (a step owns the workspace while it runs).
enum Slot : int {
  kDrift = 0,
  kDw,
  kDz,
  kDiffusion,
  kStage,
  kDrift2,
  kG1,
  kG2,
  kG3,
  kG4,
  kScore,
};

bool Fail(std::string* reason, const std::string& why) {
  if (reason != nullptr) *reason = why;
  return false;
}

const ScalarAffineSde* AsAffine(const Sde& sde) { return dynamic_cast<const ScalarAffineSde*>(&sde); }

// x += b·dt + G(x, t) ΔW, the Euler–Maruyama update given the drift b at (x, t).
void EulerMaruyamaUpdate(const StepProblem& problem, double t, double dt, ConstBatchRef b,
                         ConstBatchRef dw, BatchRef x, StepWorkspace* workspace) {
  const Sde& sde = *problem.sde;
  if (sde.noise_type() == NoiseType::kScalar) {
    const double g = sde.ScalarDiffusion(t);
    x += dt * b + g * dw;
    return;
  }
  Batch& g_dw = workspace->Scratch(kDiffusion, x.rows(), x.cols());
  sde.DiffusionTimes(x, t, dw, g_dw);
  x += dt * b + g_dw;
}

}  // namespace

// ---- Euler–Maruyama ---------------------------------------------------------------------------

double EulerMaruyamaPredictor::strong_order(NoiseType type) const {
  return type == NoiseType::kScalar ? 1.0 : 0.5;
}

bool EulerMaruyamaPredictor::Supports(const Sde&, std::string*) const { return true; }

void EulerMaruyamaPredictor::Step(const StepProblem& problem, double t, double dt, int64_t step,
                                  const NoiseSource& noise, int64_t first_sample, BatchRef x,
                                  StepWorkspace* workspace) const {
  const Eigen::Index d = x.rows(), cols = x.cols();
  Batch& b = workspace->Scratch(kDrift, d, cols);
  Batch& dw = workspace->Scratch(kDw, problem.sde->noise_dim(), cols);
  EvaluateStepDrift(problem, x, t, b, workspace);
  noise.Increment(step, t, dt, first_sample, dw);
  EulerMaruyamaUpdate(problem, t, dt, b, dw, x, workspace);
}

// ---- Milstein ---------------------------------------------------------------------------------

double MilsteinPredictor::strong_order(NoiseType type) const {
  return type == NoiseType::kGeneral ? 0.5 : 1.0;
}

bool MilsteinPredictor::Supports(const Sde& sde, std::string* reason) const {
  if (!sde.HasDiffusionDerivative()) {
    return Fail(reason, "Milstein needs dG/dx (Sde::HasDiffusionDerivative() is false)");
  }
  return true;
}

void MilsteinPredictor::Step(const StepProblem& problem, double t, double dt, int64_t step,
                             const NoiseSource& noise, int64_t first_sample, BatchRef x,
                             StepWorkspace* workspace) const {
  const Sde& sde = *problem.sde;
  const Eigen::Index d = x.rows(), cols = x.cols();
  const int m = sde.noise_dim();
  const double h = std::abs(dt);
  Batch& b = workspace->Scratch(kDrift, d, cols);
  Batch& dw = workspace->Scratch(kDw, m, cols);
  EvaluateStepDrift(problem, x, t, b, workspace);
  noise.Increment(step, t, dt, first_sample, dw);
  switch (sde.noise_type()) {
    case NoiseType::kScalar:
      // G = g(t) I does not depend on x: the correction vanishes.
      EulerMaruyamaUpdate(problem, t, dt, b, dw, x, workspace);
      return;
    case NoiseType::kDiagonal: {
      // x_i += b_i dt + g_i ΔW_i + ½ g_i ∂g_i/∂x_i (ΔW_i² − h).
      Batch& g = workspace->Scratch(kG1, d, cols);
      Batch& dg = workspace->Scratch(kG2, d, cols);
      sde.DiagonalDiffusion(x, t, g);
      sde.DiagonalDiffusionDerivative(x, t, dg);
      x.array() += dt * b.array() + g.array() * dw.array() +
                   0.5 * g.array() * dg.array() * (dw.array().square() - h);
      return;
    }
    case NoiseType::kGeneral: {
      // x += b dt + G ΔW + Σ_l ∂G/∂x_l · (I G_{l·}ᵀ), I_{j1 j2} = ½(ΔW_j1 ΔW_j2 − h δ_{j1 j2}):
      // Σ_{j1,j2} L^{j1} G_{·j2} I_{j1 j2} with L^{j1} = Σ_l G_{l j1} ∂/∂x_l, Lévy areas omitted.
      Matrix g(d, m), iterated(m, m);
      Vector v(m), update(d);
      std::vector<Matrix> jacobian;
      for (Eigen::Index j = 0; j < cols; ++j) {
        sde.DiffusionMatrix(x.col(j), t, g);
        sde.DiffusionJacobian(x.col(j), t, &jacobian);
        iterated.noalias() = 0.5 * dw.col(j) * dw.col(j).transpose();
        iterated.diagonal().array() -= 0.5 * h;
        update.noalias() = dt * b.col(j);
        update.noalias() += g * dw.col(j);
        for (Eigen::Index l = 0; l < d; ++l) {
          v.noalias() = iterated * g.row(l).transpose();
          update.noalias() += jacobian[l] * v;
        }
        x.col(j) += update;
      }
      return;
    }
  }
}

// ---- SRA1 -------------------------------------------------------------------------------------

double Sra1Predictor::strong_order(NoiseType type) const {
  return type == NoiseType::kScalar ? 1.5 : 0.0;
}
double Sra1Predictor::weak_order(NoiseType type) const {
  return type == NoiseType::kScalar ? 2.0 : 0.0;
}

bool Sra1Predictor::Supports(const Sde& sde, std::string* reason) const {
  if (sde.noise_type() != NoiseType::kScalar) {
    return Fail(reason, "SRA1 needs additive noise G = g(t) I (scalar noise type); this SDE has " +
                            std::string(ToString(sde.noise_type())) + " noise");
  }
  return true;
}

void Sra1Predictor::Step(const StepProblem& problem, double t, double dt, int64_t step,
                         const NoiseSource& noise, int64_t first_sample, BatchRef x,
                         StepWorkspace* workspace) const {
  // Rößler (2010), SRA1: c⁰ = (0, 3/4), c¹ = (1, 0), A⁰₂₁ = 3/4, B⁰₂₁ = 3/2, α = (1/3, 2/3),
  // β⁽¹⁾ = (1, 0), β⁽²⁾ = (−1, 1):
  //   H₂ = x + ¾ b(x, t) dt + (3/2) g(t + dt) ΔZ/h
  //   x ← x + (⅓ b(x, t) + ⅔ b(H₂, t + ¾dt)) dt + g(t + dt)(ΔW − ΔZ/h) + g(t) ΔZ/h.
  const Sde& sde = *problem.sde;
  const Eigen::Index d = x.rows(), cols = x.cols();
  const double h = std::abs(dt);
  Batch& b1 = workspace->Scratch(kDrift, d, cols);
  Batch& b2 = workspace->Scratch(kDrift2, d, cols);
  Batch& stage = workspace->Scratch(kStage, d, cols);
  Batch& dw = workspace->Scratch(kDw, d, cols);
  Batch& dz = workspace->Scratch(kDz, d, cols);
  noise.IncrementWithArea(step, t, dt, first_sample, dw, dz);
  const double g_start = sde.ScalarDiffusion(t);
  const double g_end = sde.ScalarDiffusion(t + dt);
  EvaluateStepDrift(problem, x, t, b1, workspace);
  stage = x + (0.75 * dt) * b1 + (1.5 * g_end / h) * dz;
  EvaluateStepDrift(problem, stage, t + 0.75 * dt, b2, workspace);
  x += dt * ((1.0 / 3.0) * b1 + (2.0 / 3.0) * b2) + g_end * dw + ((g_start - g_end) / h) * dz;
}

// ---- SRIW1 ------------------------------------------------------------------------------------

double SriW1Predictor::strong_order(NoiseType type) const {
  return type == NoiseType::kGeneral ? 0.0 : 1.5;
}
double SriW1Predictor::weak_order(NoiseType type) const {
  return type == NoiseType::kGeneral ? 0.0 : 2.0;
}

bool SriW1Predictor::Supports(const Sde& sde, std::string* reason) const {
  if (sde.noise_type() == NoiseType::kGeneral) {
    return Fail(reason, "SRIW1 needs scalar or diagonal noise; this SDE has general noise");
  }
  return true;
}

void SriW1Predictor::Step(const StepProblem& problem, double t, double dt, int64_t step,
                          const NoiseSource& noise, int64_t first_sample, BatchRef x,
                          StepWorkspace* workspace) const {
  // Rößler (2010), SRI scheme with the SRIW1 coefficients, componentwise for diagonal noise:
  //   H⁰ᵢ = x + Σ_j A⁰ᵢⱼ b(H⁰ⱼ) dt + Σ_j B⁰ᵢⱼ g(H¹ⱼ) I_(1,0)/h
  //   H¹ᵢ = x + Σ_j A¹ᵢⱼ b(H⁰ⱼ) dt + Σ_j B¹ᵢⱼ g(H¹ⱼ) √h
  //   x ← x + Σ αᵢ b(H⁰ᵢ) dt + Σ (β⁽¹⁾ᵢ I_(1) + β⁽²⁾ᵢ I_(1,1)/√h + β⁽³⁾ᵢ I_(1,0)/h
  //                                + β⁽⁴⁾ᵢ I_(1,1,1)/h) g(H¹ᵢ)
  // with c⁰ = (0, 3/4, 0, 0), c¹ = (0, 1/4, 1, 1/4), A⁰₂₁ = 3/4, B⁰₂₁ = 3/2, A¹₂₁ = 1/4, A¹₃₁ = 1,
  // A¹₄₃ = 1/4, B¹₂₁ = 1/2, B¹₃₁ = −1, B¹₄₁ = −5, B¹₄₂ = 3, B¹₄₃ = 1/2, α = (1/3, 2/3, 0, 0),
  // β⁽¹⁾ = (−1, 4/3, 2/3, 0), β⁽²⁾ = (−1, 4/3, −1/3, 0), β⁽³⁾ = (2, −4/3, −2/3, 0),
  // β⁽⁴⁾ = (−2, 5/3, −2/3, 1). H⁰₃ = H⁰₄ = x (rows 3, 4 of A⁰, B⁰ vanish), so b is evaluated at
  // H⁰₁ = x and H⁰₂ only.
  const Sde& sde = *problem.sde;
  const Eigen::Index d = x.rows(), cols = x.cols();
  const double h = std::abs(dt);
  const double sqrt_h = std::sqrt(h);
  Batch& b1 = workspace->Scratch(kDrift, d, cols);
  Batch& b2 = workspace->Scratch(kDrift2, d, cols);
  Batch& stage = workspace->Scratch(kStage, d, cols);
  Batch& dw = workspace->Scratch(kDw, d, cols);
  Batch& dz = workspace->Scratch(kDz, d, cols);
  Batch& g1 = workspace->Scratch(kG1, d, cols);
  Batch& g2 = workspace->Scratch(kG2, d, cols);
  Batch& g3 = workspace->Scratch(kG3, d, cols);
  Batch& g4 = workspace->Scratch(kG4, d, cols);
  noise.IncrementWithArea(step, t, dt, first_sample, dw, dz);

  EvaluateStepDrift(problem, x, t, b1, workspace);
  sde.DiagonalDiffusion(x, t, g1);
  // H⁰₂ and b(H⁰₂).
  stage.array() = x.array() + (0.75 * dt) * b1.array() + (1.5 / h) * g1.array() * dz.array();
  EvaluateStepDrift(problem, stage, t + 0.75 * dt, b2, workspace);
  // H¹₂, H¹₃, H¹₄ and their diffusions.
  stage = x + (0.25 * dt) * b1 + (0.5 * sqrt_h) * g1;
  sde.DiagonalDiffusion(stage, t + 0.25 * dt, g2);
  stage = x + dt * b1 - sqrt_h * g1;
  sde.DiagonalDiffusion(stage, t + dt, g3);
  stage = x + (0.25 * dt) * b1 + sqrt_h * (-5.0 * g1 + 3.0 * g2 + 0.5 * g3);
  sde.DiagonalDiffusion(stage, t + 0.25 * dt, g4);

  // Iterated integrals scaled as in the weights: I1 = ΔW, I11/√h, I10/h, I111/h.
  const auto w = dw.array();
  const auto i11 = (w.square() - h) * (0.5 / sqrt_h);
  const auto i10 = dz.array() * (1.0 / h);
  const auto i111 = (w.cube() - 3.0 * h * w) * (1.0 / (6.0 * h));
  x.array() += dt * ((1.0 / 3.0) * b1.array() + (2.0 / 3.0) * b2.array()) +
               (-w - i11 + 2.0 * i10 - 2.0 * i111) * g1.array() +
               ((4.0 / 3.0) * (w + i11 - i10) + (5.0 / 3.0) * i111) * g2.array() +
               ((2.0 / 3.0) * w - (1.0 / 3.0) * i11 - (2.0 / 3.0) * (i10 + i111)) * g3.array() +
               i111 * g4.array();
}

// ---- SRK (dispatch) ---------------------------------------------------------------------------

double SrkPredictor::strong_order(NoiseType type) const {
  return type == NoiseType::kGeneral ? 0.0 : 1.5;
}
double SrkPredictor::weak_order(NoiseType type) const {
  return type == NoiseType::kGeneral ? 0.0 : 2.0;
}
bool SrkPredictor::Supports(const Sde& sde, std::string* reason) const {
  return diagonal_.Supports(sde, reason);
}
void SrkPredictor::Step(const StepProblem& problem, double t, double dt, int64_t step,
                        const NoiseSource& noise, int64_t first_sample, BatchRef x,
                        StepWorkspace* workspace) const {
  if (problem.sde->noise_type() == NoiseType::kScalar) {
    additive_.Step(problem, t, dt, step, noise, first_sample, x, workspace);
  } else {
    diagonal_.Step(problem, t, dt, step, noise, first_sample, x, workspace);
  }
}

// ---- Reverse diffusion ------------------------------------------------------------------------

namespace {

// The family's discrete forward chain x + drift·x + diffusion·z from t − h to t, used forward by
// reverse-diffusion and ancestral.
void DiscreteChainForward(const ScalarAffineSde& sde, double t, double dt, int64_t step,
                          const NoiseSource& noise, int64_t first_sample, BatchRef x,
                          StepWorkspace* workspace) {
  Batch& dw = workspace->Scratch(kDw, x.rows(), x.cols());
  noise.Increment(step, t, dt, first_sample, dw);
  const DiscreteCoefficients c = sde.Discretize(t + dt, dt);
  x += c.drift * x + (c.diffusion / std::sqrt(dt)) * dw;
}

void CheckDdpmStep(const Sde& sde, double t_high, double h, const char* where) {
  const ScalarAffineSde* affine = AsAffine(sde);
  if (affine == nullptr || affine->family() != SdeFamily::kVp) return;
  try {
    affine->Discretize(t_high, h);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string(where) + ": " + e.what());
  }
}

}  // namespace

double ReverseDiffusionPredictor::strong_order(NoiseType type) const {
  return type == NoiseType::kScalar ? 1.0 : 0.5;
}

bool ReverseDiffusionPredictor::Supports(const Sde&, std::string*) const { return true; }

void ReverseDiffusionPredictor::CheckStepSize(const Sde& sde, double, double t_high,
                                              double h) const {
  CheckDdpmStep(sde, t_high, h, "reverse-diffusion predictor");
}

void ReverseDiffusionPredictor::Step(const StepProblem& problem, double t, double dt,
                                     int64_t step, const NoiseSource& noise,
                                     int64_t first_sample, BatchRef x,
                                     StepWorkspace* workspace) const {
  const ScalarAffineSde* affine = AsAffine(*problem.sde);
  if (affine == nullptr) {
    // No family chain: Euler–Maruyama on the reverse SDE, ∇·(GGᵀ) included.
    EulerMaruyamaPredictor().Step(problem, t, dt, step, noise, first_sample, x, workspace);
    return;
  }
  if (!problem.reverse()) {
    DiscreteChainForward(*affine, t, dt, step, noise, first_sample, x, workspace);
    return;
  }
  // Song et al. eq. (46) with f_i(x) = drift·x, G_i = diffusion from the chain step t − h → t:
  //   x ← x − drift·x + diffusion² s(x, t) + diffusion·z,  z = ΔW/√h.
  const Eigen::Index d = x.rows(), cols = x.cols();
  const double h = -dt;
  const DiscreteCoefficients c = affine->Discretize(t, h);
  Batch& s = workspace->Scratch(kScore, d, cols);
  Batch& dw = workspace->Scratch(kDw, d, cols);
  problem.score->Evaluate(x, workspace->times(cols, t), s);
  noise.Increment(step, t, dt, first_sample, dw);
  x = (1.0 - c.drift) * x + (c.diffusion * c.diffusion) * s + (c.diffusion / std::sqrt(h)) * dw;
}

// ---- Ancestral --------------------------------------------------------------------------------

double AncestralPredictor::strong_order(NoiseType type) const {
  return type == NoiseType::kScalar ? 1.0 : 0.0;
}
double AncestralPredictor::weak_order(NoiseType type) const {
  return type == NoiseType::kScalar ? 1.0 : 0.0;
}

bool AncestralPredictor::Supports(const Sde& sde, std::string* reason) const {
  const ScalarAffineSde* affine = AsAffine(sde);
  if (affine == nullptr ||
      (affine->family() != SdeFamily::kVe && affine->family() != SdeFamily::kVp)) {
    return Fail(reason, "ancestral sampling is defined for the VE (NCSN) and VP (DDPM) SDEs only");
  }
  return true;
}

void AncestralPredictor::CheckStepSize(const Sde& sde, double, double t_high, double h) const {
  CheckDdpmStep(sde, t_high, h, "ancestral predictor");
}

void AncestralPredictor::Step(const StepProblem& problem, double t, double dt, int64_t step,
                              const NoiseSource& noise, int64_t first_sample, BatchRef x,
                              StepWorkspace* workspace) const {
  const ScalarAffineSde& affine = *AsAffine(*problem.sde);
  if (!problem.reverse()) {
    DiscreteChainForward(affine, t, dt, step, noise, first_sample, x, workspace);
    return;
  }
  const Eigen::Index d = x.rows(), cols = x.cols();
  const double h = -dt;
  Batch& s = workspace->Scratch(kScore, d, cols);
  Batch& dw = workspace->Scratch(kDw, d, cols);
  problem.score->Evaluate(x, workspace->times(cols, t), s);
  noise.Increment(step, t, dt, first_sample, dw);
  const double inv_sqrt_h = 1.0 / std::sqrt(h);
  if (affine.family() == SdeFamily::kVe) {
    // NCSN: x + (σ_i² − σ_{i−1}²) s + √(σ_{i−1}² (σ_i² − σ_{i−1}²)/σ_i²) z.
    const double sigma = affine.MarginalStd(t);
    const double sigma_prev = affine.MarginalStd(t + dt);
    const double jump = sigma * sigma - sigma_prev * sigma_prev;
    const double std_dev = std::sqrt(sigma_prev * sigma_prev * jump) / sigma;
    x += jump * s + (std_dev * inv_sqrt_h) * dw;
  } else {
    // DDPM: (x + β_i s)/√(1 − β_i) + √β_i z with β_i = β(t)h from the DDPM chain.
    const DiscreteCoefficients c = affine.Discretize(t, h);
    const double beta = c.diffusion * c.diffusion;
    x = (x + beta * s) / std::sqrt(1.0 - beta) + (c.diffusion * inv_sqrt_h) * dw;
  }
}

// ---- Registry ---------------------------------------------------------------------------------

std::vector<std::string> PredictorNames() {
  return {"euler-maruyama", "milstein", "srk", "sra1", "sriw1",
          "reverse-diffusion", "ancestral", "none"};
}

std::unique_ptr<Predictor> MakePredictor(std::string_view name) {
  if (name == "euler-maruyama") return std::make_unique<EulerMaruyamaPredictor>();
  if (name == "milstein") return std::make_unique<MilsteinPredictor>();
  if (name == "srk") return std::make_unique<SrkPredictor>();
  if (name == "sra1") return std::make_unique<Sra1Predictor>();
  if (name == "sriw1") return std::make_unique<SriW1Predictor>();
  if (name == "reverse-diffusion") return std::make_unique<ReverseDiffusionPredictor>();
  if (name == "ancestral") return std::make_unique<AncestralPredictor>();
  if (name == "none") return std::make_unique<NonePredictor>();
  std::string names;
  for (const std::string& n : PredictorNames()) names += (names.empty() ? "" : ", ") + n;
  throw InvalidArgument("predictor = '" + std::string(name) + "'; must be one of " + names);
}

}  // namespace scoresde
