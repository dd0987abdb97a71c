#include "scoresde/solvers/likelihood.hpp"

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/linear_sde.hpp"
#include "scoresde/sde/reverse.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

std::string_view ToString(DivergenceEstimator estimator) {
  switch (estimator) {
    case DivergenceEstimator::kExact: return "exact";
    case DivergenceEstimator::kHutchinsonRademacher: return "hutchinson-rademacher";
    case DivergenceEstimator::kHutchinsonGaussian: return "hutchinson-gaussian";
  }
  return "unknown";
}

void LikelihoodOptions::Validate() const {
  ode.Validate();
  Require(std::isfinite(eps) && eps >= 0.0, "LikelihoodOptions", "eps", eps, ">= 0 and finite");
  Require(num_probes >= 1, "LikelihoodOptions", "num_probes", num_probes, ">= 1");
}

double BitsPerDim(double logp_nats, int dim) {
  return -logp_nats / (dim * std::numbers::ln2);
}

double DequantizedBitsPerDim(double logp_nats, int dim, double lo, double hi) {
  Require(std::isfinite(lo) && std::isfinite(hi) && hi > lo, "DequantizedBitsPerDim", "hi", hi,
          "finite and > lo = " + FormatValue(lo));
  return BitsPerDim(logp_nats, dim) + 8.0 - std::log2(hi - lo);
}

void Dequantize(ConstBatchRef k, double lo, double hi, const NoiseStream& noise,
                int64_t first_sample, BatchRef y) {
  constexpr const char* where = "Dequantize";
  Require(std::isfinite(lo) && std::isfinite(hi) && hi > lo, where, "hi", hi,
          "finite and > lo = " + FormatValue(lo));
  CheckShape(where, "y", y, k.rows(), k.cols());
  for (Eigen::Index j = 0; j < k.cols(); ++j) {
    for (Eigen::Index i = 0; i < k.rows(); ++i) {
      const double v = k(i, j);
      if (!(v >= 0.0 && v <= 255.0 && v == std::floor(v))) {
        Require(false, where,
                "k(" + std::to_string(i) + ", " + std::to_string(j) + ")", v,
                "an integer in [0, 255] (8-bit data)");
      }
    }
  }
  Batch u(k.rows(), k.cols());
  noise.FillUniform(0, 0, first_sample, u);
  y = (lo + (hi - lo) / 256.0 * (k.array() + u.array())).matrix();
}

namespace {

constexpr const char* kWhere = "LikelihoodEstimator";

enum class SdeKind { kScalarAffine, kLinear, kGbm, kOther };

// Calls f(first, count, time) for each run of consecutive columns sharing a time (SDE methods take
// one time per call).
template <class F>
void ForEachTimeRun(ConstRowVectorRef t, F&& f) {
  const Eigen::Index n = t.size();
  Eigen::Index first = 0;
  while (first < n) {
    Eigen::Index last = first + 1;
    while (last < n && t(last) == t(first)) ++last;
    f(first, last - first, t(first));
    first = last;
  }
}

// out = G Gᵀ(x, t) v column by column.
void DiffusionSquaredTimes(const Sde& sde, ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v,
                           BatchRef out) {
  if (sde.noise_type() == NoiseType::kScalar) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double g = sde.ScalarDiffusion(t(j));
      out.col(j) = (g * g) * v.col(j);
    }
    return;
  }
  ForEachTimeRun(t, [&](Eigen::Index first, Eigen::Index count, double time) {
    sde.DiffusionSquaredTimes(x.middleCols(first, count), time, v.middleCols(first, count),
                              out.middleCols(first, count));
  });
}

}  // namespace

// The augmented system (x, Δ_1, ..., Δ_A): x' = f̃, Δ_k' = SDE part + score part (probe k).
class LikelihoodEstimator::System final : public BatchOdeSystem {
 public:
  System(const LikelihoodEstimator& estimator, const Batch* probes, int accumulators)
      : e_(estimator), probes_(probes), accumulators_(accumulators) {}

  int state_dim() const override { return e_.sde_.dim() + accumulators_; }

  void Evaluate(ConstBatchRef y, ConstRowVectorRef t, std::span<const int64_t> samples,
                BatchRef dy) const override {
    const int d = e_.sde_.dim();
    const Eigen::Index n = y.cols();
    const Batch x = y.topRows(d);
    Batch s(d, n);
    RowVector sde_part(n);
    if (probes_ == nullptr) {
      RowVector score_part(n);
      e_.ExactScorePart(x, t, &s, &score_part);
      e_.SdePart(x, t, s, &sde_part);
      dy.row(d) = sde_part + score_part;
    } else {
      Batch probe(d, n);
      Batch jv(d, n);
      Batch weighted(d, n);
      for (int k = 0; k < accumulators_; ++k) {
        for (Eigen::Index c = 0; c < n; ++c) {
          probe.col(c) = probes_->block(static_cast<Eigen::Index>(k) * d, samples[c], d, 1);
        }
        e_.ScoreJvp(x, t, probe, &s, &jv);
        DiffusionSquaredTimes(e_.sde_, x, t, probe, weighted);
        dy.row(d + k) = -0.5 * weighted.cwiseProduct(jv).colwise().sum();
      }
      e_.SdePart(x, t, s, &sde_part);
      for (int k = 0; k < accumulators_; ++k) dy.row(d + k) += sde_part;
    }
    Batch drift(d, n);
    e_.FlowDrift(x, t, s, &drift);
    dy.topRows(d) = drift;
  }

 private:
  const LikelihoodEstimator& e_;
  const Batch* probes_;
  int accumulators_;
};

LikelihoodEstimator::LikelihoodEstimator(const Sde& sde, const ScoreModel& score,
                                         LikelihoodOptions options, LogDensityFunction prior)
    : sde_(sde), score_(score), options_(std::move(options)), prior_(std::move(prior)) {
  options_.Validate();
  Require(score.dim() == sde.dim(), kWhere, "score.dim()", score.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
  Require(options_.eps < sde.t_final(), kWhere, "eps", options_.eps,
          "< T = " + FormatValue(sde.t_final()));
  if (!prior_) {
    const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde);
    Require(affine != nullptr, kWhere, "prior", std::string_view("(none)"),
            "given for SDEs without a standard prior (only VE, VP and sub-VP have one)");
    prior_ = [affine](ConstBatchRef x, RowVectorRef logp) { affine->PriorLogDensity(x, logp); };
  }
  if (options_.divergence == DivergenceEstimator::kExact) {
    const bool by_divergence = sde.noise_type() == NoiseType::kScalar && score.HasDivergence();
    Require(by_divergence || score.HasJvp(), kWhere, "divergence", std::string_view("exact"),
            "used with a score that has Jacobian-vector products (or, for scalar noise, a "
            "divergence); use a Hutchinson estimator otherwise");
  }
  context_ = std::make_unique<ExecutionContext>(options_.ode.num_threads);
}

LikelihoodEstimator::~LikelihoodEstimator() = default;

namespace {

SdeKind KindOf(const Sde& sde) {
  if (dynamic_cast<const ScalarAffineSde*>(&sde) != nullptr) return SdeKind::kScalarAffine;
  if (dynamic_cast<const LinearSde*>(&sde) != nullptr) return SdeKind::kLinear;
  if (dynamic_cast<const GbmSde*>(&sde) != nullptr) return SdeKind::kGbm;
  return SdeKind::kOther;
}

}  // namespace

void LikelihoodEstimator::FlowDrift(const Batch& x, ConstRowVectorRef t, const Batch& s,
                                    Batch* drift) const {
  if (const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde_)) {
    // f̃ = a(t) x − ½ g(t)² s column by column (each column may have its own time).
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double g = affine->ScalarDiffusion(t(j));
      drift->col(j) = affine->DriftCoefficient(t(j)) * x.col(j) - (0.5 * g * g) * s.col(j);
    }
    return;
  }
  DriftScratch scratch;
  ForEachTimeRun(t, [&](Eigen::Index first, Eigen::Index count, double time) {
    DriftFromScore(sde_, DriftKind::kProbabilityFlow, x.middleCols(first, count), time,
                   s.middleCols(first, count), drift->middleCols(first, count), &scratch);
  });
}

void LikelihoodEstimator::SdePart(const Batch& x, ConstRowVectorRef t, const Batch& s,
                                  RowVector* part) const {
  const int d = sde_.dim();
  switch (KindOf(sde_)) {
    case SdeKind::kScalarAffine: {
      // f = a(t) x, G = g(t) I: ∇·f = a(t) d and ∇·(GGᵀ) = 0.
      const auto& affine = static_cast<const ScalarAffineSde&>(sde_);
      for (Eigen::Index j = 0; j < x.cols(); ++j) (*part)(j) = affine.DriftCoefficient(t(j)) * d;
      return;
    }
    case SdeKind::kLinear: {
      // f = F x + c, G = G(t): ∇·f = tr F, ∇·(GGᵀ) = 0.
      const auto& linear = static_cast<const LinearSde&>(sde_);
      part->setConstant(linear.options().drift_matrix.trace());
      return;
    }
    case SdeKind::kGbm: {
      // h = μx − ½·2σ²x, ∇·h = Σ(μ_i − σ_i²); −½(∇·GGᵀ)ᵀs = −Σ σ_i² x_i s_i.
      const auto& gbm = static_cast<const GbmSde&>(sde_);
      const Vector& mu = gbm.options().mu;
      const Eigen::ArrayXd sigma2 = gbm.options().sigma.array().square();
      const double trace = (mu.array() - sigma2).sum();
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        (*part)(j) = trace - (sigma2 * x.col(j).array() * s.col(j).array()).sum();
      }
      return;
    }
    case SdeKind::kOther:
      break;
  }
  // Central differences of h = f − ½∇·(GGᵀ) along each coordinate, step δ = cbrt(ε_mach)
  // max(1, |x_i|) (truncation O(δ²), rounding O(ε_mach/δ): both ~1e-11 relative).
  const double root = std::cbrt(std::numeric_limits<double>::epsilon());
  Batch plus(d, x.cols()), minus(d, x.cols()), f(d, x.cols()), div(d, x.cols());
  part->setZero();
  ForEachTimeRun(t, [&](Eigen::Index first, Eigen::Index count, double time) {
    const auto xs = x.middleCols(first, count);
    Batch hp(d, count), hm(d, count), scratch(d, count);
    for (int i = 0; i < d; ++i) {
      const RowVector delta = root * xs.row(i).cwiseAbs().cwiseMax(1.0);
      Batch xp = xs, xm = xs;
      xp.row(i) += delta;
      xm.row(i) -= delta;
      sde_.Drift(xp, time, hp);
      sde_.DivergenceOfGGt(xp, time, scratch);
      hp -= 0.5 * scratch;
      sde_.Drift(xm, time, hm);
      sde_.DivergenceOfGGt(xm, time, scratch);
      hm -= 0.5 * scratch;
      part->segment(first, count) +=
          ((hp.row(i) - hm.row(i)).array() / (2.0 * delta.array())).matrix();
    }
    sde_.DivergenceOfGGt(xs, time, scratch);
    part->segment(first, count) -=
        0.5 * scratch.cwiseProduct(s.middleCols(first, count)).colwise().sum();
  });
}

void LikelihoodEstimator::ExactScorePart(const Batch& x, ConstRowVectorRef t, Batch* s,
                                         RowVector* part) const {
  const int d = sde_.dim();
  const Eigen::Index n = x.cols();
  if (sde_.noise_type() == NoiseType::kScalar && score_.HasDivergence()) {
    // −½ g² ∇·s.
    score_.Evaluate(x, t, *s);
    score_.Divergence(x, t, *part);
    for (Eigen::Index j = 0; j < n; ++j) {
      const double g = sde_.ScalarDiffusion(t(j));
      (*part)(j) *= -0.5 * g * g;
    }
    return;
  }
  // −½ Σ_i [GGᵀ (∂s/∂x) e_i]_i from d Jacobian–vector products.
  Batch unit = Batch::Zero(d, n);
  Batch jv(d, n);
  Batch weighted(d, n);
  part->setZero();
  for (int i = 0; i < d; ++i) {
    unit.row(i).setOnes();
    score_.EvaluateWithJvp(x, t, unit, *s, jv);
    unit.row(i).setZero();
    DiffusionSquaredTimes(sde_, x, t, jv, weighted);
    *part -= 0.5 * weighted.row(i);
  }
}

void LikelihoodEstimator::ScoreJvp(const Batch& x, ConstRowVectorRef t, const Batch& v, Batch* s,
                                   Batch* jv) const {
  if (score_.HasJvp()) {
    score_.EvaluateWithJvp(x, t, v, *s, *jv);
    return;
  }
  // Central differences along v, step δ_j = cbrt(ε_mach) max(1, ‖x_j‖∞) / ‖v_j‖∞.
  const double root = std::cbrt(std::numeric_limits<double>::epsilon());
  const Eigen::Index n = x.cols();
  RowVector delta(n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double vmax = v.col(j).cwiseAbs().maxCoeff();
    delta(j) = root * std::max(1.0, x.col(j).cwiseAbs().maxCoeff()) / (vmax > 0.0 ? vmax : 1.0);
  }
  Batch plus = x + v * delta.asDiagonal();
  Batch minus = x - v * delta.asDiagonal();
  Batch sp(x.rows(), n), sm(x.rows(), n);
  score_.Evaluate(x, t, *s);
  score_.Evaluate(plus, t, sp);
  score_.Evaluate(minus, t, sm);
  *jv = (sp - sm) * (0.5 * delta.cwiseInverse()).asDiagonal();
}

void LikelihoodEstimator::DriftDivergence(ConstBatchRef x, ConstRowVectorRef t,
                                          RowVectorRef div) const {
  constexpr const char* where = "LikelihoodEstimator::DriftDivergence";
  CheckShape(where, "x", x, sde_.dim(), -1);
  CheckShape(where, "t", t, 1, x.cols());
  CheckShape(where, "div", div, 1, x.cols());
  const bool exact_ok = (sde_.noise_type() == NoiseType::kScalar && score_.HasDivergence()) ||
                        score_.HasJvp();
  Require(exact_ok, where, "score", std::string_view("without divergence or JVP"),
          "able to give the exact divergence");
  const Batch xs = x;
  Batch s(sde_.dim(), x.cols());
  RowVector score_part(x.cols()), sde_part(x.cols());
  ExactScorePart(xs, t, &s, &score_part);
  SdePart(xs, t, s, &sde_part);
  div = score_part + sde_part;
}

LikelihoodResult LikelihoodEstimator::Compute(ConstBatchRef x, int64_t first_sample) const {
  const int d = sde_.dim();
  CheckShape(kWhere, "x", x, d, -1);
  CheckFinite(kWhere, "x", x);
  Require(first_sample >= 0, kWhere, "first_sample", first_sample, ">= 0");
  const Eigen::Index n = x.cols();
  const bool exact = options_.divergence == DivergenceEstimator::kExact;
  const int accumulators = exact ? 1 : options_.num_probes;

  Batch probes;
  if (!exact) {
    probes.resize(static_cast<Eigen::Index>(d) * accumulators, n);
    const NoiseStream noise(options_.seed, Stream::kHutchinson);
    for (int k = 0; k < accumulators; ++k) {
      auto block = probes.middleRows(static_cast<Eigen::Index>(k) * d, d);
      if (options_.divergence == DivergenceEstimator::kHutchinsonRademacher) {
        noise.FillRademacher(0, static_cast<uint32_t>(k), first_sample, block);
      } else {
        noise.FillNormal(0, static_cast<uint32_t>(k), first_sample, block);
      }
    }
  }
  const System system(*this, exact ? nullptr : &probes, accumulators);
  Batch y0 = Batch::Zero(d + accumulators, n);
  y0.topRows(d) = x;

  LikelihoodResult result;
  OdeSolution solution =
      IntegrateBatch(system, y0, options_.eps, sde_.t_final(), options_.ode, *context_,
                     first_sample);
  result.summary = std::move(solution.summary);
  result.nfe = std::move(solution.nfe);
  if (KindOf(sde_) == SdeKind::kOther) {
    result.summary.warnings.push_back(
        "the divergence of f - div(GG^T)/2 was taken by central differences (this SDE has no "
        "closed form for it)");
  }
  if (!exact && !score_.HasJvp()) {
    result.summary.warnings.push_back(
        "Jacobian-vector products of the score were taken by central differences");
  }
  result.latent = solution.y.topRows(d);
  const Batch deltas = solution.y.bottomRows(accumulators);
  result.delta_logp = deltas.colwise().mean();
  result.prior_logp.resize(n);
  if (result.summary.ok()) {
    prior_(result.latent, result.prior_logp);
    result.logp = result.prior_logp + result.delta_logp;
  } else {
    result.prior_logp.setConstant(std::numeric_limits<double>::quiet_NaN());
    result.logp.setConstant(n, std::numeric_limits<double>::quiet_NaN());
  }
  if (exact) {
    result.standard_error.setZero(n);
  } else if (accumulators == 1) {
    result.standard_error.setConstant(n, std::numeric_limits<double>::quiet_NaN());
  } else {
    const Batch centered = deltas.rowwise() - result.delta_logp;
    result.standard_error =
        (centered.colwise().squaredNorm() / (accumulators - 1.0) / accumulators).cwiseSqrt();
  }
  result.bits_per_dim = -result.logp / (d * std::numbers::ln2);
  result.mean_bits_per_dim = n > 0 ? result.bits_per_dim.mean() : 0.0;
  return result;
}

}  // namespace scoresde
