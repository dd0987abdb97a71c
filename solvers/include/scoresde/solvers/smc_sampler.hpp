// Asymptotically exact conditional sampling by sequential Monte Carlo with twisting functions
// (Twisted Diffusion Sampler, TDS: Wu, Trippe, Naesseth, Blei & Cunningham, "Practical and
// Asymptotically Exact Conditional Sampling in Diffusion Models", NeurIPS 2023, Algorithm 1;
// SMC background: Doucet & Johansen 2011, "A tutorial on particle filtering and smoothing").
//
// The reverse-time chain of a predictor on the grid t_0 = T > t_1 > … > t_N = ε (the PcSampler
// grid, t_i = T − i(T − ε)/N) has Gaussian transitions for a scalar-affine SDE,
//   p(x_{i+1} | x_i) = N(c₁ x_i + c₂ s(x_i, t_i), v I),   v = c₃² h,
// with coefficients (c₁, c₂, c₃) of the step x' = c₁ x + c₂ s + c₃ ΔW, ΔW ~ N(0, h I). They are
// read off the predictor itself by probing it (once per level, with a constant probe score and
// probe noise), and at construction the step is checked to be of this form, so any predictor of
// that form works (euler-maruyama, reverse-diffusion, ancestral) and others are rejected.
//
// Given a twisting function p̃_t(y | x) ≈ p_t(y | x) with its gradient (a Guidance with
// HasLogLikelihood, e.g. PigdmGuidance), K particles per group evolve as follows:
//   level 0:  x_0^k ~ p_T (the prior or Options::initial_sampler), log w^k = log p̃_{t_0}(y | x_0^k);
//   level i:  if ESS = (Σ w)²/Σ w² < ess_threshold · K, resample the group (systematic
//             resampling) and set w = 1; propose
//               x_{i+1} ~ q = N(c₁ x_i + c₂ [s(x_i, t_i) + γ ∇ log p̃_{t_i}(y | x_i)], v I)
//             (γ = proposal_scale; γ = 1 is TDS, γ = 0 the bootstrap filter), and weight
//               w ← w · p(x_{i+1} | x_i) p̃_{t_{i+1}}(y | x_{i+1}) / [q(x_{i+1} | x_i) p̃_{t_i}(y | x_i)].
// With δ = c₂ γ ∇ log p̃ and e = x_{i+1} − mean_q the drawn noise, log p − log q =
// −(2 eᵀδ + ‖δ‖²)/(2v). The intermediate twists cancel telescopically, so the weighted particles
// at level N target
//   π(x_ε) ∝ p_chain(x_ε) p̃_ε(y | x_ε),
// for every choice of twists and proposal: the estimates are consistent as K → ∞ (standard SMC
// theory; the error of a weighted mean is O_P(K^{−1/2}) with an O(1/K) bias, Chopin, Ann. Statist.
// 32, 2004). The target equals the exact conditional p_ε(x | y) up to the discretization error of
// the chain (O(h)) and the final twist's error: with ε = 0 and PigdmGuidance, p̃_0(y | x) = N(y;
// A x, Σ_y) is the exact likelihood. Good twists only reduce the variance of the weights.
// The product of the mean weights at every resampling and at the end, Ẑ, is an unbiased estimate
// of the chain's p(y) (log_evidence).
//
// Independence and reproducibility. Particles are coupled within their group by resampling;
// groups are independent. Particle k of group g has global index p = g·K + k: its prior draw uses
// Stream::kPrior at sample p, its proposal noise Stream::kPredictor (as PcSampler) at (step i,
// sample p); group g's systematic-resampling uniform uses Stream::kGuidance at (step i, substep 1,
// sample g), the final resampling (step N, substep 2, sample g). Per-particle work runs on fixed
// column blocks and per-group reductions in index order, so the same seed gives the same bits
// for any thread count, and group g's result does not depend on the other groups.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/solvers/guidance.hpp"
#include "scoresde/solvers/predictor.hpp"
#include "scoresde/solvers/summary.hpp"

namespace scoresde {

struct SmcResult {
  // Weighted particles at t = ε: d × (G·K), group g in columns [g·K, (g + 1)·K).
  Batch particles;
  // Log-weights normalized within each group (Σ_k exp = 1 per group), 1 × (G·K).
  RowVector log_weights;
  // Equally weighted draws: each group resampled once more at the end (systematic), d × (G·K).
  Batch x;
  RowVector log_evidence;   // log Ẑ per group (G entries)
  RowVector final_ess;      // ESS/K of each group's final weights (G entries)
  RowVector resamplings;    // resampling events per group (G entries)
  SolveSummary summary;     // nfe: score evaluations per particle (a JVP counts as one)
};

class SmcSampler {
 public:
  // Fills x_T (d × B) for particles first, …; noise is NoiseStream(seed, Stream::kPrior).
  using InitialSampler =
      std::function<void(const NoiseStream& noise, int64_t first_particle, BatchRef x_T)>;

  struct Options {
    int num_steps = 1000;           // N ≥ 1
    double eps = 1e-3;              // end time ε, 0 ≤ ε < T
    int64_t num_particles = 64;     // K ≥ 1 per group
    double ess_threshold = 0.5;     // in [0, 1]: 0 never resamples, 1 resamples at every level
    double proposal_scale = 1.0;    // γ, finite
    uint64_t seed = 0;
    int num_threads = 1;            // ≥ 1
    bool throw_on_failure = true;
    InitialSampler initial_sampler; // empty: the SDE's prior
    // Throws InvalidArgument ("SmcSampler::Options: ess_threshold = 2; must be in [0, 1]").
    void Validate() const;
  };

  // Checks the options, dimensions, twist.HasLogLikelihood(), predictor.Supports(sde), its step
  // sizes, that eps < T, and that the predictor's step is x' = c₁ x + c₂ s + c₃ ΔW (probed at the
  // first, a middle and the last level with a non-linear probe score); throws InvalidArgument
  // naming what is wrong. Everything is held by reference and must outlive the sampler.
  SmcSampler(const ScalarAffineSde& sde, const ScoreModel& score, const Guidance& twist,
             const Predictor& predictor, Options options);
  ~SmcSampler();
  SmcSampler(SmcSampler&&) noexcept;
  SmcSampler& operator=(SmcSampler&&) = delete;

  const Options& options() const { return options_; }
  // t_i = T − i(T − ε)/N.
  double Time(int64_t i) const;

  // The coefficients of the predictor's step from t_i to t_{i+1} (probed): x' = c₁ x + c₂ s + c₃ ΔW.
  struct StepCoefficients {
    double c1 = 0.0;
    double c2 = 0.0;
    double c3 = 0.0;
  };
  StepCoefficients Coefficients(int64_t i) const;

  // Runs num_groups ≥ 1 independent groups of K particles. On a non-finite state, score, twist or
  // weight the run stops and the summary names it (step, t, particle); with throw_on_failure it is
  // thrown as NumericalFailure.
  SmcResult Sample(int64_t num_groups) const;

 private:
  StepCoefficients Probe(int64_t i) const;
  void CheckAffine(int64_t i) const;

  const ScalarAffineSde* sde_;
  const ScoreModel* score_;
  const Guidance* twist_;
  const Predictor* predictor_;
  Options options_;
  double h_ = 0.0;
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace scoresde
