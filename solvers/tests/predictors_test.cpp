#include "scoresde/solvers/predictors.hpp"

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/callback_sde.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "test_problems.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::IsotropicGaussianScore;
using testing::ProbeNoise;

// dX1 = dW1, dX2 = X1 dW2: G = [[1, 0], [0, x1]], whose columns do not commute
// (L¹G_{·2} = (0, 1) ≠ L²G_{·1} = 0).
class NonCommutativeSde final : public Sde {
 public:
  int dim() const override { return 2; }
  int noise_dim() const override { return 2; }
  NoiseType noise_type() const override { return NoiseType::kGeneral; }
  double t_final() const override { return 1.0; }
  void Drift(ConstBatchRef x, double, BatchRef f) const override { f = -0.5 * x; }
  void DiffusionMatrix(ConstVectorRef x, double, MatrixRef g) const override {
    g << 1.0, 0.0, 0.0, x(0);
  }
  void DivergenceOfGGt(ConstBatchRef x, double, BatchRef div) const override {
    div.setZero();  // (GGᵀ)_22 = x1² depends on x1 only, not on x2.
    (void)x;
  }
  bool HasDiffusionDerivative() const override { return true; }
  void DiffusionJacobian(ConstVectorRef, double, std::vector<Matrix>* dg) const override {
    dg->assign(2, Matrix::Zero(2, 2));
    (*dg)[0](1, 1) = 1.0;  // ∂G/∂x1
  }
};

std::shared_ptr<Sde> OrnsteinUhlenbeck(double theta, double sigma) {
  // dX = −θX dt + σ(1 + t) dW (scalar, additive, time-dependent).
  CallbackSde::Functions functions;
  functions.drift = [theta](ConstBatchRef x, double, BatchRef f) { f = -theta * x; };
  functions.scalar_diffusion = [sigma](double t) { return sigma * (1.0 + t); };
  return std::make_shared<CallbackSde>(1, 1, NoiseType::kScalar, 1.0, functions);
}

TEST(Predictors, RegistryMakesEveryNameAndRejectsUnknownOnes) {
  for (const std::string& name : PredictorNames()) {
    EXPECT_EQ(MakePredictor(name)->name(), name);
  }
  try {
    MakePredictor("heun");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("heun"));
    EXPECT_THAT(e.what(), HasSubstr("reverse-diffusion"));
  }
}

TEST(Predictors, SupportsMatchesTheirClasses) {
  const VeSde ve(2);
  const VpSde vp(2);
  const SubVpSde subvp(2);
  const GbmSde gbm(2, 0.1, 0.3);
  const NonCommutativeSde general;
  CallbackSde::Functions functions;
  functions.drift = [](ConstBatchRef x, double, BatchRef f) { f = -x; };
  functions.diagonal_diffusion = [](ConstBatchRef x, double, BatchRef g) { g = 1.0 + x.array().square(); };
  const CallbackSde no_derivative(2, 2, NoiseType::kDiagonal, 1.0, functions);
  struct Case {
    std::string name;
    bool ve, vp, subvp, gbm, general, no_derivative;
  };
  const Case cases[] = {
      {"euler-maruyama", true, true, true, true, true, true},
      {"milstein", true, true, true, true, true, false},
      {"sra1", true, true, true, false, false, false},
      {"sriw1", true, true, true, true, false, true},
      {"srk", true, true, true, true, false, true},
      {"reverse-diffusion", true, true, true, true, true, true},
      {"ancestral", true, true, false, false, false, false},
      {"none", true, true, true, true, true, true},
  };
  for (const Case& c : cases) {
    const auto p = MakePredictor(c.name);
    std::string reason;
    EXPECT_EQ(p->Supports(ve), c.ve) << c.name;
    EXPECT_EQ(p->Supports(vp), c.vp) << c.name;
    EXPECT_EQ(p->Supports(subvp), c.subvp) << c.name;
    EXPECT_EQ(p->Supports(gbm), c.gbm) << c.name;
    EXPECT_EQ(p->Supports(general), c.general) << c.name;
    EXPECT_EQ(p->Supports(no_derivative, &reason), c.no_derivative) << c.name;
    if (!c.no_derivative) {
      EXPECT_FALSE(reason.empty()) << c.name;
    }
  }
}

TEST(Predictors, DeclaredOrders) {
  EXPECT_EQ(EulerMaruyamaPredictor().strong_order(NoiseType::kScalar), 1.0);
  EXPECT_EQ(EulerMaruyamaPredictor().strong_order(NoiseType::kDiagonal), 0.5);
  EXPECT_EQ(MilsteinPredictor().strong_order(NoiseType::kDiagonal), 1.0);
  EXPECT_EQ(MilsteinPredictor().strong_order(NoiseType::kGeneral), 0.5);
  EXPECT_EQ(Sra1Predictor().strong_order(NoiseType::kScalar), 1.5);
  EXPECT_EQ(Sra1Predictor().weak_order(NoiseType::kScalar), 2.0);
  EXPECT_EQ(SriW1Predictor().strong_order(NoiseType::kDiagonal), 1.5);
  EXPECT_EQ(SriW1Predictor().weak_order(NoiseType::kDiagonal), 2.0);
  for (const std::string& name : PredictorNames()) {
    const auto p = MakePredictor(name);
    if (name == "none") continue;
    EXPECT_GE(p->weak_order(NoiseType::kScalar), 1.0) << name;
    EXPECT_EQ(p->needs_area(), name == "srk" || name == "sra1" || name == "sriw1") << name;
  }
}

// One step of each scheme against closed forms with prescribed increments ΔW = w√h, ΔZ = ζh^{3/2}.
TEST(EulerMaruyama, OneStepIsTheFormula) {
  const GbmSde gbm(1, 0.3, 0.5);
  const ProbeNoise noise(Vector::Constant(1, 0.7), Vector::Constant(1, 0.2));
  Batch x = Batch::Constant(1, 2, 2.0);
  StepWorkspace ws;
  const double h = 0.01;
  EulerMaruyamaPredictor().Step(StepProblem::Forward(gbm), 0.0, h, 0, noise, 0, x, &ws);
  const double expected = 2.0 + 0.3 * 2.0 * h + 0.5 * 2.0 * 0.7 * std::sqrt(h);
  EXPECT_DOUBLE_EQ(x(0, 0), expected);
  EXPECT_DOUBLE_EQ(x(0, 1), expected);
}

TEST(Milstein, GeneralNoiseStepAddsTheSymmetricIteratedIntegrals) {
  const NonCommutativeSde sde;
  Vector w(2), zeta(2);
  w << 0.7, -1.1;
  zeta << 0.0, 0.0;
  const ProbeNoise noise(w, zeta);
  Batch x(2, 1);
  x << 0.4, -0.2;
  StepWorkspace ws;
  const double h = 0.04, sh = 0.2;
  MilsteinPredictor().Step(StepProblem::Forward(sde), 0.0, h, 0, noise, 0, x, &ws);
  // x1 += −½x1 h + ΔW1; x2 += −½x2 h + x1 ΔW2 + L¹G_{·2} I_(1,2) with I_(1,2) ≈ ½ΔW1ΔW2.
  EXPECT_DOUBLE_EQ(x(0, 0), 0.4 - 0.5 * 0.4 * h + 0.7 * sh);
  EXPECT_NEAR(x(1, 0), -0.2 + 0.5 * 0.2 * h + 0.4 * (-1.1 * sh) + 0.5 * (0.7 * sh) * (-1.1 * sh),
              1e-15);
}

// Local errors with prescribed normalized increments: for GBM the exact one-step solution is
// x exp((μ − σ²/2)h + σΔW), a function of ΔW alone, and a scheme of strong order p reproduces its
// Itô–Taylor expansion through the terms of order p, leaving a remainder of order p + 1/2 for
// fixed (w, ζ) (Kloeden & Platen 1992, section 10.6). Halving h then divides the error by
// 2^{p+1/2}. The measured exponent log2(e(h)/e(h/2)) differs from p + 1/2 by the next term's
// relative size, O(√h) ≈ 0.06 at h = 2^-8, i.e. 0.09 in the exponent; 0.15 is allowed.
double LocalOrder(const Predictor& predictor, const StepProblem& problem, double zeta,
                  const std::function<double(double h)>& exact, double h) {
  const ProbeNoise noise(Vector::Constant(1, 0.8), Vector::Constant(1, zeta));
  const auto error = [&](double step) {
    Batch x = Batch::Constant(1, 1, 1.5);
    StepWorkspace ws;
    predictor.Step(problem, 0.0, step, 0, noise, 0, x, &ws);
    return std::abs(x(0, 0) - exact(step));
  };
  return std::log2(error(h) / error(h / 2));
}

TEST(Predictors, LocalErrorOrdersOnGbm) {
  const double mu = 0.3, sigma = 0.5;
  const GbmSde gbm(1, mu, sigma);
  // ζ = w/2 + small: any value is a valid outcome; the expansion holds pointwise.
  const double zeta = 0.45;
  const auto exact = [&](double h) {
    return 1.5 * std::exp((mu - 0.5 * sigma * sigma) * h + sigma * 0.8 * std::sqrt(h));
  };
  const StepProblem problem = StepProblem::Forward(gbm);
  const double h = std::ldexp(1.0, -8);
  EXPECT_NEAR(LocalOrder(EulerMaruyamaPredictor(), problem, zeta, exact, h), 1.0, 0.15);
  EXPECT_NEAR(LocalOrder(MilsteinPredictor(), problem, zeta, exact, h), 1.5, 0.15);
  EXPECT_NEAR(LocalOrder(SriW1Predictor(), problem, zeta, exact, h), 2.0, 0.15);
  EXPECT_NEAR(LocalOrder(SrkPredictor(), problem, zeta, exact, h), 2.0, 0.15);
}

// Additive noise with time-dependent g: X_h = e^{−θh}x + ∫_0^h e^{−θ(h−u)} g(u) dW_u, and
// expanding the integrand about u = h, ∫ = g(h)ΔW − (θg(h) + g'(h)) ΔZ + O(h^{5/2}) (∫(h − u)dW =
// ΔZ). Euler–Maruyama (strong order 1 here) misses g'hΔW − (θg + g')ΔZ, an O(h^{3/2}) local
// error. SRA1 reproduces these two terms exactly for linear g (its g(t + h)ΔW + (g(t) − g(t + h))ΔZ/h
// and the B⁰ stage's −θ g(h) ΔZ), leaving only its two-stage drift's O(h³) error, so its exponent
// against the expansion is 3; SRIW1 agrees through O(h^{3/2}) terms (local exponent ≥ 2.5).
TEST(Predictors, LocalErrorOrdersOnAdditiveNoise) {
  const double theta = 0.8, sigma = 0.6;
  const auto sde = OrnsteinUhlenbeck(theta, sigma);
  const double zeta = 0.1;
  const auto exact = [&](double h) {
    const double g = sigma * (1.0 + h), dg = sigma;
    return std::exp(-theta * h) * 1.5 + g * 0.8 * std::sqrt(h) -
           (theta * g + dg) * zeta * std::pow(h, 1.5);
  };
  const StepProblem problem = StepProblem::Forward(*sde);
  const double h = std::ldexp(1.0, -8);
  EXPECT_NEAR(LocalOrder(EulerMaruyamaPredictor(), problem, zeta, exact, h), 1.5, 0.15);
  EXPECT_NEAR(LocalOrder(Sra1Predictor(), problem, zeta, exact, h), 3.0, 0.15);
  EXPECT_GT(LocalOrder(SriW1Predictor(), problem, zeta, exact, h), 2.5 - 0.15);
}

// Song et al. eq. (46) and the ancestral updates, one reverse step with the Gaussian score.
TEST(ReverseDiffusion, VpStepIsTheDdpmReverseChain) {
  const VpSde vp(1);
  const IsotropicGaussianScore score(vp, Vector::Constant(1, 0.5), 0.8);
  const ProbeNoise noise(Vector::Constant(1, -0.3), Vector::Zero(1));
  Batch x = Batch::Constant(1, 1, 0.9);
  StepWorkspace ws;
  const double t = 0.6, h = 0.01;
  ReverseDiffusionPredictor().Step(StepProblem::Reverse(vp, score), t, -h, 0, noise, 0, x, &ws);
  const double beta = vp.Beta(t) * h;
  Batch s(1, 1);
  score.Evaluate(Batch::Constant(1, 1, 0.9), RowVector::Constant(1, t), s);
  const double expected = 0.9 - (std::sqrt(1 - beta) - 1) * 0.9 + beta * s(0, 0) +
                          std::sqrt(beta) * -0.3;
  EXPECT_NEAR(x(0, 0), expected, 1e-15);
}

TEST(Ancestral, VeAndVpSteps) {
  const VeSde ve(1);
  const IsotropicGaussianScore ve_score(ve, Vector::Constant(1, 0.5), 0.8);
  const ProbeNoise noise(Vector::Constant(1, -0.3), Vector::Zero(1));
  StepWorkspace ws;
  const double t = 0.6, h = 0.01;
  Batch x = Batch::Constant(1, 1, 3.0), s(1, 1);
  ve_score.Evaluate(x, RowVector::Constant(1, t), s);
  const double s_ve = s(0, 0);
  AncestralPredictor().Step(StepProblem::Reverse(ve, ve_score), t, -h, 0, noise, 0, x, &ws);
  const double si = ve.MarginalStd(t), sp = ve.MarginalStd(t - h);
  const double jump = si * si - sp * sp;
  EXPECT_NEAR(x(0, 0), 3.0 + jump * s_ve + std::sqrt(sp * sp * jump / (si * si)) * -0.3, 1e-13);

  const VpSde vp(1);
  const IsotropicGaussianScore vp_score(vp, Vector::Constant(1, 0.5), 0.8);
  x.setConstant(0.9);
  vp_score.Evaluate(x, RowVector::Constant(1, t), s);
  const double s_vp = s(0, 0);
  AncestralPredictor().Step(StepProblem::Reverse(vp, vp_score), t, -h, 0, noise, 0, x, &ws);
  const double beta = vp.Beta(t) * h;
  EXPECT_NEAR(x(0, 0), (0.9 + beta * s_vp) / std::sqrt(1 - beta) + std::sqrt(beta) * -0.3, 1e-15);
}

TEST(Ancestral, DdpmChainNeedsBetaHBelowOne) {
  const VpSde vp(1);
  EXPECT_THROW(AncestralPredictor().CheckStepSize(vp, 0.0, 1.0, 0.1), InvalidArgument);
  EXPECT_NO_THROW(AncestralPredictor().CheckStepSize(vp, 0.0, 1.0, 0.01));
  EXPECT_THROW(ReverseDiffusionPredictor().CheckStepSize(vp, 0.0, 1.0, 0.1), InvalidArgument);
  EXPECT_NO_THROW(EulerMaruyamaPredictor().CheckStepSize(vp, 0.0, 1.0, 0.1));
}

// Forward, reverse-diffusion and ancestral run the family's discrete chain; reverse-diffusion on a
// non-affine SDE is Euler–Maruyama.
TEST(ReverseDiffusion, ForwardIsTheChainAndGbmFallsBackToEulerMaruyama) {
  const VeSde ve(1);
  const ProbeNoise noise(Vector::Constant(1, 0.4), Vector::Zero(1));
  StepWorkspace ws;
  Batch x = Batch::Constant(1, 1, 1.0);
  ReverseDiffusionPredictor().Step(StepProblem::Forward(ve), 0.2, 0.05, 0, noise, 0, x, &ws);
  const double jump = ve.Sigma(0.25) * ve.Sigma(0.25) - ve.Sigma(0.2) * ve.Sigma(0.2);
  EXPECT_NEAR(x(0, 0), 1.0 + std::sqrt(jump) * 0.4, 1e-14);

  const GbmSde gbm(1, 0.2, 0.4);
  Batch a = Batch::Constant(1, 1, 1.3), b = a;
  ReverseDiffusionPredictor().Step(StepProblem::Forward(gbm), 0.2, 0.05, 0, noise, 0, a, &ws);
  EulerMaruyamaPredictor().Step(StepProblem::Forward(gbm), 0.2, 0.05, 0, noise, 0, b, &ws);
  EXPECT_EQ(a, b);
}

// A step on a column range depends only on those columns and their sample indices.
TEST(Predictors, ColumnRangesGiveTheSameBitsAsTheWholeBatch) {
  const VeSde ve(3);
  const IsotropicGaussianScore score(ve, Vector::Constant(3, 0.5), 0.8);
  const IidNoise noise(3, NoiseStream(4, Stream::kPredictor));
  for (const std::string& name : PredictorNames()) {
    const auto p = MakePredictor(name);
    Batch whole(3, 9);
    NoiseStream(1, Stream::kPrior).FillNormal(0, 0, 0, whole);
    whole *= 10.0;
    Batch parts = whole;
    StepWorkspace ws;
    const StepProblem problem = StepProblem::Reverse(ve, score);
    p->Step(problem, 0.5, -0.01, 3, noise, 100, whole, &ws);
    p->Step(problem, 0.5, -0.01, 3, noise, 100, parts.leftCols(4), &ws);
    p->Step(problem, 0.5, -0.01, 3, noise, 104, parts.rightCols(5), &ws);
    EXPECT_EQ(whole, parts) << name;
  }
}

}  // namespace
}  // namespace scoresde
