// Score-matching objectives for the MLP score model, evaluated on column blocks with parameter
// gradients (Song et al., ICLR 2021, eq. 7; Song et al., NeurIPS 2021 "Maximum likelihood training
// of score-based diffusion models"; Song et al., UAI 2019 "Sliced score matching"; Hyvärinen,
// JMLR 2005; Ho et al., NeurIPS 2020; Song & Ermon, NeurIPS 2019).
//
// With x = α x_0 + σ z (z ~ N(0, I), the SDE's kernel at t) and per-example weight W:
//   kDsm    continuous denoising score matching   W ‖s_θ(x, t) + z/σ‖²,  t ~ U(ε, T)
//   kSsm    sliced score matching                 W [vᵀ(∂s_θ/∂x)v + ½(vᵀ s_θ)²]
//   kSsmVr  variance-reduced sliced SM            W [vᵀ(∂s_θ/∂x)v + ½‖s_θ‖²]
//           (v Rademacher or Gaussian, E[vvᵀ] = I; the Jacobian–vector product by forward mode)
//   kEsm    exact score matching (small d)        W [tr(∂s_θ/∂x) + ½‖s_θ‖²]  (d forward passes)
//   kDdpm   DDPM's ε-loss (VP only): i ~ U{1..N}, x = sqrt(ᾱ_i) x_0 + sqrt(1 − ᾱ_i) z,
//           β_j = β_min/N + (j − 1)(β_max − β_min)/(N(N − 1)), ᾱ_i = Π_{j≤i}(1 − β_j), t_i = iT/N;
//           loss ‖sqrt(1 − ᾱ_i) s_θ + z‖² (= ‖ε_θ − z‖² in the noise form)
//   kNcsn   NCSN's loss (VE, reference kernel): i ~ U{0..N−1}, σ_i = σmin (σmax/σmin)^{i/(N−1)},
//           t_i = iT/(N−1) (so σ(t_i) = σ_i), x = x_0 + σ_i z; loss ‖σ_i s_θ + z‖²
// Weights for the continuous losses: kSigmaSquared W = σ_t² (the usual λ); kLikelihood W = g(t)²
// (λ = g², for which the objective bounds the negative log-likelihood). Importance sampling (with
// kLikelihood only) draws t ∝ g(t)²/σ_t² on [ε, T] by inverting Φ(t) = ∫ g²/σ² dt in closed form
// and reweights: E_U[g² ‖s + z/σ‖²] = E_p[(Φ(T) − Φ(ε))/(T − ε) · σ² ‖s + z/σ‖²], so W =
// σ_t² (Φ(T) − Φ(ε))/(T − ε). Φ per family (B(t) = ∫_0^t β):
//   VP      Φ = log(e^B − 1)               sub-VP  Φ = 2 log(e^B − 1) − B
//   VE      Φ = log(r^{2t/T} − 1) (exact kernel), 2 (t/T) log r (reference kernel; uniform),
//           r = σmax/σmin.
// The batch loss is the mean over examples of the per-example loss (summed over coordinates).
//
// Randomness: NoiseStream(seed, Stream::kTraining), sample index = the example's position in the
// batch, step = the training step; substeps 0 (t or the discrete index), 1 (z), 2 (v). A block's
// result depends only on its examples, its positions and the step, so any split into blocks and
// any thread count give the same per-example values, and a resumed run draws the same numbers.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

enum class LossKind { kDsm, kSsm, kSsmVr, kEsm, kDdpm, kNcsn };
enum class Weighting { kSigmaSquared, kLikelihood };
enum class ProjectionKind { kRademacher, kGaussian };

// Names as on the command line: dsm ssm ssm-vr esm ddpm ncsn; sigma2 g2; rademacher gaussian.
std::string_view ToString(LossKind kind);
std::string_view ToString(Weighting weighting);
std::string_view ToString(ProjectionKind projection);
// Throw InvalidArgument naming the bad value.
LossKind ParseLossKind(std::string_view name);
Weighting ParseWeighting(std::string_view name);
ProjectionKind ParseProjectionKind(std::string_view name);

struct LossOptions {
  LossKind kind = LossKind::kDsm;
  Weighting weighting = Weighting::kSigmaSquared;
  bool importance_sampling = false;  // only with Weighting::kLikelihood and continuous losses
  ProjectionKind projection = ProjectionKind::kRademacher;
  double eps = 1e-5;     // t ~ U(ε, T) (the paper's training ε)
  int num_scales = 1000; // N of the discrete losses
  // Throws InvalidArgument: eps finite in (0, 1), num_scales in [2, 1e7], importance sampling
  // only with the likelihood weighting and a continuous loss.
  void Validate() const;
};

// t ~ U(ε, T) or t ∝ g²/σ² (see above): Sample(u) for u ∈ (0, 1) gives (t, W/σ_t²), the factor
// that multiplies σ_t² in the weight (1 for uniform σ² weighting, g²/σ² for uniform likelihood
// weighting, (Φ(T) − Φ(ε))/(T − ε) with importance sampling).
class TimeSampler {
 public:
  // Throws InvalidArgument unless 0 < eps < T.
  TimeSampler(const ScalarAffineSde& sde, double eps, Weighting weighting, bool importance);
  std::pair<double, double> Sample(double u) const;
  // Φ(t) = ∫ g(t)²/σ_t² dt up to a constant (closed form per family).
  double Potential(double t) const;

 private:
  const ScalarAffineSde& sde_;
  double eps_;
  Weighting weighting_;
  bool importance_;
  double phi_eps_ = 0.0;
  double phi_t_ = 0.0;
};

class ScoreMatchingLoss {
 public:
  // The loss for models of `config` under sde. Throws InvalidArgument if options are invalid,
  // the dims differ, kDdpm is used without a VP SDE, or kNcsn without a VE SDE with the reference
  // kernel (whose σ(t_i) is the NCSN scale σ_i).
  ScoreMatchingLoss(std::shared_ptr<const ScalarAffineSde> sde, const MlpConfig& config,
                    LossOptions options);

  const LossOptions& options() const { return options_; }
  const ScalarAffineSde& sde() const { return *sde_; }

  // One block of a batch of batch_size examples: x0 (d × n) are the examples at positions
  // [first, first + n). Returns the sum of their per-example losses; if grad is not null, adds
  // (1/batch_size) times the gradient of that sum to grad[0..P). noise supplies the draws at
  // `step` (see above).
  template <typename Scalar>
  double Block(const MlpNetwork<Scalar>& network, const Matrix& x0, int64_t first,
               int64_t batch_size, uint64_t step, const NoiseStream& noise,
               typename MlpNetwork<Scalar>::Workspace* workspace, Scalar* grad) const;

 private:
  // The perturbation of one example: time, kernel (α, σ) and weight W.
  struct Draw {
    double t, alpha, sigma, weight;
  };
  Draw DrawTime(double u) const;

  std::shared_ptr<const ScalarAffineSde> sde_;
  MlpConfig config_;
  LossOptions options_;
  std::unique_ptr<TimeSampler> sampler_;
  std::vector<double> alpha_bar_;  // DDPM's ᾱ_i, i = 1..N (index i − 1)
};

}  // namespace scoresde
