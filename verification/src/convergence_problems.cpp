// The convergence harness's test problems: SDEs whose solution is known path by path.
#include <cmath>
#include <memory>

#include <Eigen/Cholesky>
#include <string>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/convergence.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {
namespace {

// dX = θ(m − X) dt + σ dW: additive (scalar) noise.
class OrnsteinUhlenbeckSde final : public Sde {
 public:
  OrnsteinUhlenbeckSde(int dim, double theta, double mean, double sigma)
      : dim_(dim), theta_(theta), mean_(mean), sigma_(sigma) {}
  int dim() const override { return dim_; }
  NoiseType noise_type() const override { return NoiseType::kScalar; }
  double t_final() const override { return 1.0; }
  void Drift(ConstBatchRef x, double, BatchRef f) const override {
    f = theta_ * (mean_ - x.array()).matrix();
  }
  double ScalarDiffusion(double) const override { return sigma_; }
  void DivergenceOfGGt(ConstBatchRef, double, BatchRef div) const override { div.setZero(); }
  double theta() const { return theta_; }
  double mean() const { return mean_; }
  double sigma() const { return sigma_; }

 private:
  int dim_;
  double theta_, mean_, sigma_;
};

// dX_i = ½a²X_i dt + a√(1 + X_i²) dW_i. With Y = asinh X, Itô's formula gives dY = a dW (the ½a²X
// drift cancels the second-order term), so X_T = sinh(asinh X_0 + a W_T) (Kloeden & Platen 1992,
// section 4.4). g_i depends on x_i only: diagonal noise in Milstein's and SRI's sense.
class SinhSde final : public Sde {
 public:
  SinhSde(int dim, double a) : dim_(dim), a_(a) {}
  int dim() const override { return dim_; }
  NoiseType noise_type() const override { return NoiseType::kDiagonal; }
  double t_final() const override { return 1.0; }
  void Drift(ConstBatchRef x, double, BatchRef f) const override { f = (0.5 * a_ * a_) * x; }
  void DiagonalDiffusion(ConstBatchRef x, double, BatchRef g) const override {
    g = a_ * (1.0 + x.array().square()).sqrt().matrix();
  }
  // (GGᵀ)_ii = a²(1 + x_i²).
  void DivergenceOfGGt(ConstBatchRef x, double, BatchRef div) const override {
    div = (2.0 * a_ * a_) * x;
  }
  bool HasDiffusionDerivative() const override { return true; }
  void DiagonalDiffusionDerivative(ConstBatchRef x, double, BatchRef dg) const override {
    dg = (a_ * x.array() / (1.0 + x.array().square()).sqrt()).matrix();
  }
  double a() const { return a_; }

 private:
  int dim_;
  double a_;
};

// dX₁ = dW₁, dX₂ = X₁ dW₂: G = [[1, 0], [0, x₁]]. L¹G_{·2} = (0, 1) ≠ L²G_{·1} = 0, so the noise is
// not commutative and the iterated integral I_(1,2) (with its Lévy area) enters the order-1 terms.
class NonCommutativeSde final : public Sde {
 public:
  int dim() const override { return 2; }
  int noise_dim() const override { return 2; }
  NoiseType noise_type() const override { return NoiseType::kGeneral; }
  double t_final() const override { return 1.0; }
  void Drift(ConstBatchRef, double, BatchRef f) const override { f.setZero(); }
  void DiffusionMatrix(ConstVectorRef x, double, MatrixRef g) const override {
    g << 1.0, 0.0, 0.0, x(0);
  }
  void DiffusionTimes(ConstBatchRef x, double, ConstBatchRef v, BatchRef out) const override {
    out.row(0) = v.row(0);
    out.row(1) = x.row(0).cwiseProduct(v.row(1));
  }
  // GGᵀ = diag(1, x₁²): row 2's divergence is ∂(x₁²)/∂x₂ = 0.
  void DivergenceOfGGt(ConstBatchRef, double, BatchRef div) const override { div.setZero(); }
  bool HasDiffusionDerivative() const override { return true; }
  void DiffusionJacobian(ConstVectorRef, double, std::vector<Matrix>* dg) const override {
    dg->resize(2);
    for (Matrix& m : *dg) m.setZero(2, 2);  // keeps the allocations across calls
    (*dg)[0](1, 1) = 1.0;
  }
};

std::function<void(int64_t, BatchRef)> ConstantStart(Vector x0) {
  return [x0 = std::move(x0)](int64_t, BatchRef x) { x = x0.replicate(1, x.cols()); };
}

void SquaredNorm(ConstBatchRef x, RowVectorRef phi) { phi = x.colwise().squaredNorm(); }

// W(t1) − W(t0) over the whole path.
Batch WholeIncrement(const BrownianGridNoise& path, double t0, double t1, int64_t first,
                     Eigen::Index cols) {
  Batch dw(path.dim(), cols);
  path.Increment(0, t0, t1 - t0, first, dw);
  return dw;
}

ConvergenceProblem GbmProblem(const std::string& name, Vector mu, Vector sigma, Vector x0) {
  ConvergenceProblem p;
  p.name = name;
  auto sde = std::make_shared<GbmSde>(GbmSde::Options{mu, sigma, 1.0});
  p.sde = sde;
  p.initial_state = ConstantStart(x0);
  p.exact_solution = [mu, sigma](const BrownianGridNoise& path, int64_t first, ConstBatchRef x,
                                 BatchRef out) {
    const Batch w = WholeIncrement(path, 0.0, 1.0, first, x.cols());
    // X_T = X_0 exp((μ − σ²/2)T + σ W_T).
    const Eigen::ArrayXd rate = mu.array() - 0.5 * sigma.array().square();
    out = (x.array() * ((w.array().colwise() * sigma.array()).colwise() + rate).exp()).matrix();
  };
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  p.solvers = {"euler-maruyama", "milstein", "sriw1"};
  return p;
}

ConvergenceProblem OrnsteinUhlenbeckProblem() {
  ConvergenceProblem p;
  p.name = "ornstein-uhlenbeck";
  auto sde = std::make_shared<OrnsteinUhlenbeckSde>(2, 1.0, 0.5, 0.8);
  p.sde = sde;
  Vector x0(2);
  x0 << 2.0, -1.0;
  p.initial_state = ConstantStart(x0);
  // On each cell c of the path grid, ∫ e^{−θ(b−u)} dW_u = ΔW − θ ΔZ + R with ∫_a^b (b − u) dW_u =
  // ΔZ and Var R = θ⁴c⁵/20; the recursion's strong error is about σθ²c²√(T/20) (4e-8 at
  // c = 2^-11, three levels below the finest solver grid: 2% of SRA1's smallest error there).
  p.exact_extra_levels = 3;
  p.exact_solution = [sde](const BrownianGridNoise& path, int64_t first, ConstBatchRef x,
                           BatchRef out) {
    const int cells = 1 << path.level();
    const double c = 1.0 / cells, decay = std::exp(-sde->theta() * c);
    Batch dw(x.rows(), x.cols()), dz(x.rows(), x.cols());
    out = x;
    for (int k = 0; k < cells; ++k) {
      path.IncrementWithArea(k, k * c, c, first, dw, dz);
      out = (sde->mean() + decay * (out.array() - sde->mean())).matrix() +
            sde->sigma() * (dw - sde->theta() * dz);
    }
  };
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  p.solvers = {"euler-maruyama", "milstein", "sra1", "sriw1"};
  // With a linear drift and additive noise every Itô–Taylor term of local order 2 that the
  // 1.5 schemes omit has a vanishing coefficient (L¹L¹f = g²f'' = 0, L¹g = 0), and SRA1/SRIW1
  // reproduce g ΔW and L¹f ΔZ exactly; the remaining local error is O(h^{5/2}), so their strong
  // order is 2 here (Kloeden & Platen 1992, section 10.4 on additive noise).
  p.expected_orders = {{"sra1", {2.0, 2.0}}, {"sriw1", {2.0, 2.0}}};
  p.expected_orders_note = "linear drift with additive noise: the 1.5 schemes reach strong order 2";
  return p;
}

ConvergenceProblem SinhProblem() {
  ConvergenceProblem p;
  p.name = "sinh-diagonal";
  auto sde = std::make_shared<SinhSde>(2, 0.5);
  p.sde = sde;
  Vector x0(2);
  x0 << 0.5, -0.3;
  p.initial_state = ConstantStart(x0);
  p.exact_solution = [sde](const BrownianGridNoise& path, int64_t first, ConstBatchRef x,
                           BatchRef out) {
    const Batch w = WholeIncrement(path, 0.0, 1.0, first, x.cols());
    out = (x.array().asinh() + sde->a() * w.array()).sinh().matrix();
  };
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  p.solvers = {"euler-maruyama", "milstein", "sriw1"};
  return p;
}

ConvergenceProblem NonCommutativeProblem() {
  ConvergenceProblem p;
  p.name = "non-commutative";
  p.sde = std::make_shared<NonCommutativeSde>();
  Vector x0(2);
  x0 << 0.3, 0.2;
  p.initial_state = ConstantStart(x0);
  // No closed form in the path's increments: X₂ contains ∫W₁dW₂, whose Lévy area the tree does
  // not give. The reference is Milstein on the finest grid; its error Σ A (fine Lévy areas) is
  // orthogonal to X_h − X_ref, so E‖X_h − X_ref‖² = E‖X_h − X‖² − T h_ref/4 (relative bias below
  // h_ref/h ≤ 2^-4 here).
  p.reference_predictor = std::make_shared<MilsteinPredictor>();
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  p.solvers = {"euler-maruyama", "milstein"};
  p.recommended.strong = {2, 7, 2000};
  // Milstein's weak differences carry the Lévy-area noise (variance O(h)/n): twice the paths.
  p.recommended.weak = {2, 7, 80000};
  p.recommended.reference_extra_levels = 4;
  return p;
}

// dX = −(X + X³) dt + σ dW: additive noise with a nonlinear drift, so L¹L¹f = σ² f'' ≠ 0 and the
// 1.5 schemes show exactly 1.5. No closed form: the reference is SRA1 on the finest grid.
class AdditiveNonlinearSde final : public Sde {
 public:
  AdditiveNonlinearSde(int dim, double sigma) : dim_(dim), sigma_(sigma) {}
  int dim() const override { return dim_; }
  NoiseType noise_type() const override { return NoiseType::kScalar; }
  double t_final() const override { return 1.0; }
  void Drift(ConstBatchRef x, double, BatchRef f) const override {
    f = -(x.array() + x.array().cube()).matrix();
  }
  double ScalarDiffusion(double) const override { return sigma_; }
  void DivergenceOfGGt(ConstBatchRef, double, BatchRef div) const override { div.setZero(); }

 private:
  int dim_;
  double sigma_;
};

ConvergenceProblem AdditiveNonlinearProblem() {
  ConvergenceProblem p;
  p.name = "additive-nonlinear";
  p.sde = std::make_shared<AdditiveNonlinearSde>(2, 1.0);
  Vector x0(2);
  x0 << 0.8, -0.4;
  p.initial_state = ConstantStart(x0);
  p.reference_predictor = std::make_shared<Sra1Predictor>();
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  p.solvers = {"euler-maruyama", "sra1", "sriw1"};
  // SRA1's reference error at 2^4 times finer steps is (1/16)^{3/2} ≈ 1.6% of the finest error.
  p.recommended.reference_extra_levels = 4;
  // SRA1's weak differences are still pre-asymptotic at h = 1/4 (ratios 4.2–4.4): start at 1/8.
  p.recommended.weak = {3, 8, 40000};
  return p;
}

// The exact score of N(μ, Σ₀) data under a scalar-affine SDE, −(α²Σ₀ + σ_t² I)⁻¹(x − αμ): the
// one-component case of GaussianMixtureScore (which the verification tests check), computed with
// one small factorization per call so that the harness's many short calls stay cheap.
class GaussianScore final : public ScoreModel {
 public:
  GaussianScore(const ScalarAffineSde& sde, Vector mean, Matrix cov)
      : sde_(&sde), mean_(std::move(mean)), cov_(std::move(cov)) {}
  int dim() const override { return static_cast<int>(mean_.size()); }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    Eigen::Index j = 0;
    while (j < x.cols()) {
      Eigen::Index end = j + 1;
      while (end < x.cols() && t(end) == t(j)) ++end;  // columns sharing a time
      const double alpha = sde_->MeanCoefficient(t(j)), sigma = sde_->MarginalStd(t(j));
      Matrix c = alpha * alpha * cov_;
      c.diagonal().array() += sigma * sigma;
      const Eigen::LLT<Matrix> llt(c);
      s.middleCols(j, end - j) =
          -llt.solve((x.middleCols(j, end - j).colwise() - alpha * mean_).eval());
      j = end;
    }
  }

 private:
  const ScalarAffineSde* sde_;
  Vector mean_;
  Matrix cov_;
};

// Reverse-time SDE of a 2-D Gaussian with its exact score, from exact draws of p_T to ε = 10⁻³:
// linear drift, additive noise (the SRK schemes reach order 2 here, as for Ornstein–Uhlenbeck).
ConvergenceProblem ReverseGaussianProblem(const std::string& name,
                                          std::shared_ptr<const ScalarAffineSde> sde) {
  ConvergenceProblem p;
  p.name = name;
  const auto exact = std::make_shared<GaussianMixtureScore>(ReverseProblemData("gaussian"), *sde);
  p.sde = sde;
  p.score = std::make_shared<GaussianScore>(*sde, exact->initial().mean(0),
                                            exact->initial().cov(0));
  p.t_start = sde->t_final();
  p.t_end = 1e-3;
  p.initial_state = [exact, t = sde->t_final()](int64_t first, BatchRef x) {
    exact->SampleMarginal(t, NoiseStream(2024, Stream::kData), first, x);
  };
  p.reference_predictor = std::make_shared<Sra1Predictor>();
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  // Euler–Maruyama on the VE reverse SDE is stable only for g²h/σ² ≲ 2 (N ≥ 32 here), and there
  // its weak differences (~10⁻³) sit below what 10⁴ paths resolve; its strong order is checked on
  // the VP problem and the forward additive problems.
  p.solvers = sde->family() == SdeFamily::kVe
                  ? std::vector<std::string>{"reverse-diffusion", "ancestral"}
                  : std::vector<std::string>{"euler-maruyama", "reverse-diffusion", "ancestral"};
  p.recommended.strong = {5, 10, 1000};
  p.recommended.weak = {5, 10, 10000};
  p.recommended.reference_extra_levels = 3;
  return p;
}

// Reverse-time SDE of a two-component Gaussian mixture in 2-D with its exact score: the drift is
// nonlinear in x (responsibilities), the noise additive, so the 1.5 schemes show order 1.5.
ConvergenceProblem ReverseMixtureProblem(const std::string& name,
                                         std::shared_ptr<const ScalarAffineSde> sde) {
  ConvergenceProblem p;
  p.name = name;
  auto score = std::make_shared<GaussianMixtureScore>(ReverseProblemData("mixture"), *sde);
  p.sde = sde;
  p.score = score;
  p.t_start = sde->t_final();
  p.t_end = 1e-3;
  // Exact draws of p_T, so that only the discretization of the reverse SDE is measured.
  p.initial_state = [score, t = sde->t_final()](int64_t first, BatchRef x) {
    score->SampleMarginal(t, NoiseStream(2024, Stream::kData), first, x);
  };
  p.reference_predictor = std::make_shared<Sra1Predictor>();
  p.test_function = SquaredNorm;
  p.test_function_name = "squared norm";
  p.solvers = {"euler-maruyama", "reverse-diffusion", "ancestral"};
  p.recommended.strong = {5, 10, 1000};
  p.recommended.weak = {5, 10, 10000};
  p.recommended.reference_extra_levels = 3;
  return p;
}

}  // namespace

GaussianMixture ReverseProblemData(const std::string& name) {
  if (name == "gaussian") {
    Vector mean(2);
    mean << 0.5, -1.0;
    Matrix cov(2, 2);
    cov << 1.0, 0.4, 0.4, 0.5;
    return GaussianMixture::Gaussian(mean, cov);
  }
  Require(name == "mixture", "ReverseProblemData", "name", name, "gaussian or mixture");
  Vector weights(2);
  weights << 0.3, 0.7;
  Vector m1(2), m2(2);
  m1 << -1.0, 0.5;
  m2 << 1.0, -0.5;
  Matrix c1(2, 2), c2(2, 2);
  c1 << 0.3, 0.1, 0.1, 0.2;
  c2 << 0.2, -0.05, -0.05, 0.4;
  return GaussianMixture(weights, {m1, m2}, {c1, c2});
}

std::vector<ConvergenceProblem> StandardConvergenceProblems() {
  std::vector<ConvergenceProblem> problems;
  problems.push_back(GbmProblem("gbm-scalar", Vector::Constant(1, 0.5), Vector::Constant(1, 0.5),
                                Vector::Constant(1, 1.0)));
  Vector mu(3), sigma(3), x0(3);
  mu << 0.5, -0.3, 0.2;
  sigma << 0.5, 0.8, 0.3;
  x0 << 1.0, 0.5, 2.0;
  problems.push_back(GbmProblem("gbm-diagonal", mu, sigma, x0));
  problems.push_back(OrnsteinUhlenbeckProblem());
  problems.push_back(AdditiveNonlinearProblem());
  problems.push_back(SinhProblem());
  problems.push_back(NonCommutativeProblem());
  problems.push_back(ReverseGaussianProblem("ve-gaussian-reverse", std::make_shared<VeSde>(2)));
  problems.push_back(ReverseGaussianProblem("vp-gaussian-reverse", std::make_shared<VpSde>(2)));
  problems.push_back(ReverseMixtureProblem("ve-mixture-reverse", std::make_shared<VeSde>(2)));
  problems.push_back(ReverseMixtureProblem("vp-mixture-reverse", std::make_shared<VpSde>(2)));
  return problems;
}

ConvergenceProblem StandardConvergenceProblem(const std::string& name) {
  std::string names;
  for (ConvergenceProblem& p : StandardConvergenceProblems()) {
    if (p.name == name) return std::move(p);
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw InvalidArgument("convergence problem = '" + name + "'; must be one of " + names);
}

}  // namespace scoresde
