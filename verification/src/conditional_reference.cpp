#include "scoresde/verification/conditional_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {

constexpr const char* kWhere = "ConditionalReference";

double LogSumExp(const Vector& v) {
  const double largest = v.maxCoeff();
  if (!std::isfinite(largest)) return largest;
  return largest + std::log((v.array() - largest).exp().sum());
}

// Φ(z), the standard normal distribution function.
double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// Runs of consecutive equal times: calls fn(begin, end, t) for each.
template <typename F>
void ForEachTimeRun(ConstRowVectorRef t, F&& fn) {
  Eigen::Index begin = 0;
  while (begin < t.size()) {
    Eigen::Index end = begin + 1;
    while (end < t.size() && t(end) == t(begin)) ++end;
    fn(begin, end, t(begin));
    begin = end;
  }
}

}  // namespace

ConditionalReference::ConditionalReference(GaussianMixture prior, Matrix A, Matrix noise_cov,
                                           Vector y)
    : prior_(std::move(prior)), A_(std::move(A)), noise_cov_(std::move(noise_cov)),
      y_(std::move(y)) {
  const int d = prior_.dim();
  const int64_t m = A_.rows();
  Require(m >= 1, kWhere, "A.rows()", m, ">= 1 (at least one observation)");
  CheckShape(kWhere, "A", A_, m, d);
  CheckShape(kWhere, "noise_cov", noise_cov_, m, m);
  CheckShape(kWhere, "y", y_, m, 1);
  CheckFinite(kWhere, "A", A_);
  CheckFinite(kWhere, "noise_cov", noise_cov_);
  CheckFinite(kWhere, "y", y_);
  noiseless_ = (noise_cov_.array() == 0.0).all();
  if (noiseless_) {
    const Eigen::ColPivHouseholderQR<Matrix> qr(A_);
    Require(qr.rank() == m, kWhere, "rank(A)", static_cast<int64_t>(qr.rank()),
            "equal to A.rows() (" + std::to_string(m) + ") for noiseless observations");
  } else {
    const double asymmetry = (noise_cov_ - noise_cov_.transpose()).cwiseAbs().maxCoeff();
    Require(asymmetry <= 1e-12 * noise_cov_.cwiseAbs().maxCoeff(), kWhere,
            "max |noise_cov - noise_cov^T|", asymmetry, "<= 1e-12 max |noise_cov| (symmetric)");
    const Eigen::LLT<Matrix> llt(noise_cov_);
    Require(llt.info() == Eigen::Success, kWhere, "noise_cov", std::string_view("singular"),
            "positive definite, or exactly zero for noiseless observations");
  }

  // Posterior components (Bishop 2006, section 2.3.3), Joseph form for the covariance.
  const int K = prior_.num_components();
  Vector log_w(K);
  means_.resize(K);
  covs_.resize(K);
  const Matrix I = Matrix::Identity(d, d);
  for (int k = 0; k < K; ++k) {
    const Matrix& sigma = prior_.cov(k);
    const Matrix sat = sigma * A_.transpose();  // Σ Aᵀ, d × m
    Matrix S = A_ * sat + noise_cov_;
    S = 0.5 * (S + S.transpose());
    const Eigen::LLT<Matrix> llt(S);
    Require(llt.info() == Eigen::Success, kWhere, "A Sigma_k A^T + noise_cov",
            std::string_view("singular for component " + std::to_string(k)), "positive definite");
    const Matrix gain = llt.solve(sat.transpose()).transpose();  // K_k = Σ Aᵀ S⁻¹, d × m
    const Vector innovation = y_ - A_ * prior_.mean(k);
    means_[k] = prior_.mean(k) + gain * innovation;
    const Matrix ika = I - gain * A_;
    Matrix c = ika * sigma * ika.transpose() + gain * noise_cov_ * gain.transpose();
    covs_[k] = 0.5 * (c + c.transpose());
    double log_det = 0.0;
    for (int64_t i = 0; i < m; ++i) log_det += 2.0 * std::log(llt.matrixL()(i, i));
    const Vector whitened = llt.matrixL().solve(innovation);
    const double log_normal = -0.5 * whitened.squaredNorm() - 0.5 * log_det -
                              0.5 * static_cast<double>(m) * std::log(2.0 * std::numbers::pi);
    log_w(k) = prior_.weight(k) > 0.0 ? std::log(prior_.weight(k)) + log_normal
                                      : -std::numeric_limits<double>::infinity();
  }
  log_evidence_ = LogSumExp(log_w);
  Require(std::isfinite(log_evidence_), kWhere, "log p(y)", log_evidence_,
          "finite (the observation is impossible under the prior)");
  weights_ = (log_w.array() - log_evidence_).exp();
  weights_ /= weights_.sum();

  if (!noiseless_) {
    reduced_.emplace(weights_, means_, covs_);
    return;
  }
  // x = R v + N u with R spanning range(Aᵀ), N spanning null(A).
  const Eigen::HouseholderQR<Matrix> qr(A_.transpose());
  const Matrix Q = qr.householderQ() * Matrix::Identity(d, d);
  range_basis_ = Q.leftCols(m);
  null_basis_ = Q.rightCols(d - m);
  v_star_ = (A_ * range_basis_).partialPivLu().solve(y_);
  if (d > m) {
    std::vector<Vector> means(K);
    std::vector<Matrix> covs(K);
    for (int k = 0; k < K; ++k) {
      means[k] = null_basis_.transpose() * means_[k];
      const Matrix c = null_basis_.transpose() * covs_[k] * null_basis_;
      covs[k] = 0.5 * (c + c.transpose());
    }
    reduced_.emplace(weights_, std::move(means), std::move(covs));
  }
}

ConditionalReference ConditionalReference::FromMasked(GaussianMixture prior,
                                                      const Vector& observed, double noise_std) {
  constexpr const char* kMasked = "ConditionalReference::FromMasked";
  Require(std::isfinite(noise_std) && noise_std >= 0.0, kMasked, "noise_std", noise_std,
          "finite and >= 0");
  CheckShape(kMasked, "observed", observed, prior.dim(), 1);
  std::vector<int> known;
  for (Eigen::Index i = 0; i < observed.size(); ++i) {
    Require(!std::isinf(observed(i)), kMasked, "observed[" + std::to_string(i) + "]",
            observed(i), "finite, or NaN for an unknown coordinate");
    if (!std::isnan(observed(i))) known.push_back(static_cast<int>(i));
  }
  Require(!known.empty(), kMasked, "observed coordinates", 0, ">= 1 (every value is NaN)");
  const int m = static_cast<int>(known.size());
  Matrix A = Matrix::Zero(m, prior.dim());
  Vector y(m);
  for (int r = 0; r < m; ++r) {
    A(r, known[r]) = 1.0;
    y(r) = observed(known[r]);
  }
  return ConditionalReference(std::move(prior), std::move(A),
                              (noise_std * noise_std) * Matrix::Identity(m, m), std::move(y));
}

Vector ConditionalReference::Mean() const {
  Vector mean = Vector::Zero(dim());
  for (int k = 0; k < num_components(); ++k) mean += weights_(k) * means_[k];
  return mean;
}

Matrix ConditionalReference::Covariance() const {
  const Vector mean = Mean();
  Matrix cov = Matrix::Zero(dim(), dim());
  for (int k = 0; k < num_components(); ++k) {
    const Vector centred = means_[k] - mean;
    cov += weights_(k) * (covs_[k] + centred * centred.transpose());
  }
  return 0.5 * (cov + cov.transpose());
}

void ConditionalReference::CheckTime(const char* where, const ScalarAffineSde& sde,
                                     double t) const {
  Require(sde.dim() == dim(), where, "sde.dim()", sde.dim(),
          "equal to the data dimension (" + std::to_string(dim()) + ")");
  Require(t >= 0.0 && t <= sde.t_final(), where, "t", t,
          "in [0, T] (T = " + FormatValue(sde.t_final()) + ")");
}

Vector ConditionalReference::MarginalMean(const ScalarAffineSde& sde, double t) const {
  CheckTime("ConditionalReference::MarginalMean", sde, t);
  return sde.MeanCoefficient(t) * Mean();
}

Matrix ConditionalReference::MarginalCovariance(const ScalarAffineSde& sde, double t) const {
  CheckTime("ConditionalReference::MarginalCovariance", sde, t);
  const double alpha = sde.MeanCoefficient(t), sigma = sde.MarginalStd(t);
  return alpha * alpha * Covariance() + sigma * sigma * Matrix::Identity(dim(), dim());
}

double ConditionalReference::MarginalProbabilityBelow(const ScalarAffineSde& sde, double t,
                                                      const Vector& u, double c) const {
  constexpr const char* kProb = "ConditionalReference::MarginalProbabilityBelow";
  CheckTime(kProb, sde, t);
  CheckShape(kProb, "u", u, dim(), 1);
  CheckFinite(kProb, "u", u);
  RequireFinite(kProb, "c", c);
  Require(u.squaredNorm() > 0.0, kProb, "|u|", 0.0, "> 0");
  const double alpha = sde.MeanCoefficient(t), sigma = sde.MarginalStd(t);
  double probability = 0.0;
  for (int k = 0; k < num_components(); ++k) {
    const double mean = alpha * u.dot(means_[k]);
    const double variance = alpha * alpha * u.dot(covs_[k] * u) + sigma * sigma * u.squaredNorm();
    Require(variance > 0.0, kProb, "variance of u^T x_t", variance,
            "> 0 (u^T x_t is not determined by y)");
    probability += weights_(k) * NormalCdf((c - mean) / std::sqrt(variance));
  }
  return probability;
}

std::optional<GaussianMixture> ConditionalReference::ReducedMarginal(double alpha,
                                                                     double sigma) const {
  if (!reduced_) return std::nullopt;
  const int r = reduced_->dim();
  return reduced_->Transformed(alpha * Matrix::Identity(r, r), Vector::Zero(r),
                               sigma * sigma * Matrix::Identity(r, r));
}

void ConditionalReference::SampleMarginal(const ScalarAffineSde& sde, double t,
                                          const NoiseStream& noise, int64_t first_sample,
                                          BatchRef x) const {
  constexpr const char* kSampleWhere = "ConditionalReference::SampleMarginal";
  CheckTime(kSampleWhere, sde, t);
  CheckShape(kSampleWhere, "x", x, dim(), -1);
  const double alpha = sde.MeanCoefficient(t), sigma = sde.MarginalStd(t);
  const std::optional<GaussianMixture> marginal = ReducedMarginal(alpha, sigma);
  if (!noiseless_) {
    marginal->Sample(noise, first_sample, x);
    return;
  }
  const int64_t m = A_.rows();
  Batch z(m, x.cols());
  noise.FillNormal(0, 2, first_sample, z);
  Batch u;
  if (marginal) {
    u.resize(marginal->dim(), x.cols());
    marginal->Sample(noise, first_sample, u);
  }
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const Vector v = alpha * v_star_ + sigma * z.col(j);
    x.col(j) = range_basis_ * v;
    if (marginal) x.col(j) += null_basis_ * u.col(j);
  }
}

ConditionalScore::ConditionalScore(const ConditionalReference& reference,
                                   const ScalarAffineSde& sde)
    : reference_(&reference), sde_(&sde) {
  Require(sde.dim() == reference.dim(), "ConditionalScore", "sde.dim()", sde.dim(),
          "equal to the reference's dimension (" + std::to_string(reference.dim()) + ")");
}

void ConditionalScore::Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const {
  constexpr const char* kEval = "ConditionalScore::Evaluate";
  const int d = dim();
  CheckShape(kEval, "x", x, d, -1);
  CheckShape(kEval, "t", t, 1, x.cols());
  CheckShape(kEval, "s", s, d, x.cols());
  const ConditionalReference& ref = *reference_;
  ForEachTimeRun(t, [&](Eigen::Index begin, Eigen::Index end, double time) {
    ref.CheckTime(kEval, *sde_, time);
    const double alpha = sde_->MeanCoefficient(time), sigma = sde_->MarginalStd(time);
    const Eigen::Index count = end - begin;
    const std::optional<GaussianMixture> marginal = ref.ReducedMarginal(alpha, sigma);
    if (!ref.noiseless_) {
      marginal->Score(x.middleCols(begin, count), s.middleCols(begin, count));
      return;
    }
    Require(sigma > 0.0, kEval, "sigma_t", sigma,
            "> 0 at t = " + FormatValue(time) +
                " (noiseless observations: p_t(x | y) is degenerate when sigma_t = 0)");
    Batch u, su;
    if (marginal) {
      u.resize(marginal->dim(), count);
      su.resize(marginal->dim(), count);
      for (Eigen::Index j = 0; j < count; ++j) {
        u.col(j) = ref.null_basis_.transpose() * x.col(begin + j);
      }
      marginal->Score(u, su);
    }
    for (Eigen::Index j = 0; j < count; ++j) {
      const Vector v = ref.range_basis_.transpose() * x.col(begin + j);
      s.col(begin + j) = ref.range_basis_ * (-(v - alpha * ref.v_star_) / (sigma * sigma));
      if (marginal) s.col(begin + j) += ref.null_basis_ * su.col(j);
    }
  });
}

std::optional<double> ConditionalScore::ExpectedSquaredNorm(double t) const {
  const ConditionalReference& ref = *reference_;
  ref.CheckTime("ConditionalScore::ExpectedSquaredNorm", *sde_, t);
  if (ref.num_components() != 1) return std::nullopt;
  const double alpha = sde_->MeanCoefficient(t), sigma = sde_->MarginalStd(t);
  double value = 0.0;
  if (ref.noiseless_) {
    if (!(sigma > 0.0)) return std::nullopt;
    value += static_cast<double>(ref.num_observations()) / (sigma * sigma);
  }
  const std::optional<GaussianMixture> marginal = ref.ReducedMarginal(alpha, sigma);
  if (marginal) value += marginal->trace_precision(0);
  return value;
}

MixtureLabelLikelihood::MixtureLabelLikelihood(GaussianMixture p0, const ScalarAffineSde& sde,
                                               std::vector<int> labels)
    : p0_(std::move(p0)), sde_(&sde), labels_(std::move(labels)) {
  constexpr const char* kLabels = "MixtureLabelLikelihood";
  Require(sde.dim() == p0_.dim(), kLabels, "sde.dim()", sde.dim(),
          "equal to the mixture's dimension (" + std::to_string(p0_.dim()) + ")");
  Require(static_cast<int64_t>(labels_.size()) == p0_.num_components(), kLabels, "labels.size()",
          static_cast<int64_t>(labels_.size()),
          "equal to the number of components (" + std::to_string(p0_.num_components()) + ")");
  for (size_t k = 0; k < labels_.size(); ++k) {
    Require(labels_[k] >= 0, kLabels, "labels[" + std::to_string(k) + "]", labels_[k], ">= 0");
    num_classes_ = std::max(num_classes_, labels_[k] + 1);
  }
  for (int c = 0; c < num_classes_; ++c) {
    Require(std::count(labels_.begin(), labels_.end(), c) > 0, kLabels, "components of class",
            c, "at least one for every class up to the largest label");
  }
}

void MixtureLabelLikelihood::CheckLabel(const char* where, int label) const {
  Require(label >= 0 && label < num_classes_, where, "label", label,
          "in [0, " + std::to_string(num_classes_) + ")");
}

double MixtureLabelLikelihood::ClassProbability(int label) const {
  CheckLabel("MixtureLabelLikelihood::ClassProbability", label);
  double total = 0.0;
  for (size_t k = 0; k < labels_.size(); ++k) {
    if (labels_[k] == label) total += p0_.weight(static_cast<int>(k));
  }
  return total;
}

GaussianMixture MixtureLabelLikelihood::ClassConditional(int label) const {
  CheckLabel("MixtureLabelLikelihood::ClassConditional", label);
  const double total = ClassProbability(label);
  std::vector<double> weights;
  std::vector<Vector> means;
  std::vector<Matrix> covs;
  for (size_t k = 0; k < labels_.size(); ++k) {
    if (labels_[k] != label) continue;
    weights.push_back(p0_.weight(static_cast<int>(k)) / total);
    means.push_back(p0_.mean(static_cast<int>(k)));
    covs.push_back(p0_.cov(static_cast<int>(k)));
  }
  return GaussianMixture(Eigen::Map<const Vector>(weights.data(), weights.size()),
                         std::move(means), std::move(covs));
}

void MixtureLabelLikelihood::Evaluate(int label, ConstBatchRef x, ConstRowVectorRef t,
                                      RowVectorRef log_prob, BatchRef grad) const {
  constexpr const char* kEval = "MixtureLabelLikelihood::Evaluate";
  CheckLabel(kEval, label);
  const int d = p0_.dim();
  const int K = p0_.num_components();
  CheckShape(kEval, "x", x, d, -1);
  CheckShape(kEval, "t", t, 1, x.cols());
  CheckShape(kEval, "log_prob", log_prob, 1, x.cols());
  CheckShape(kEval, "grad", grad, d, x.cols());
  ForEachTimeRun(t, [&](Eigen::Index begin, Eigen::Index end, double time) {
    Require(time >= 0.0 && time <= sde_->t_final(), kEval, "t", time,
            "in [0, T] (T = " + FormatValue(sde_->t_final()) + ")");
    const double alpha = sde_->MeanCoefficient(time), sigma = sde_->MarginalStd(time);
    // Component k of p_t: N(α μ_k, C_k), C_k = α² Σ_k + σ_t² I, through its precision P_k and
    // log w_k − ½ log det(2π C_k); then per column (allocation-free) the log terms
    // log w_k N_k(x) and the component scores s_k = −P_k (x − α μ_k).
    const Matrix identity = Matrix::Identity(d, d);
    std::vector<Matrix> precision(K);
    std::vector<Vector> mean(K);
    Vector log_norm(K);
    for (int k = 0; k < K; ++k) {
      const Eigen::LLT<Matrix> llt(alpha * alpha * p0_.cov(k) + sigma * sigma * identity);
      Require(llt.info() == Eigen::Success, kEval, "marginal covariance of component", k,
              "positive definite at t = " + FormatValue(time));
      precision[k] = llt.solve(identity);
      mean[k] = alpha * p0_.mean(k);
      double log_det = 0.0;
      for (int i = 0; i < d; ++i) log_det += 2.0 * std::log(llt.matrixL()(i, i));
      log_norm(k) = (p0_.weight(k) > 0.0 ? std::log(p0_.weight(k))
                                         : -std::numeric_limits<double>::infinity()) -
                    0.5 * log_det - 0.5 * d * std::log(2.0 * std::numbers::pi);
    }
    Vector residual(d), log_terms(K), in_class(K), g(d);
    Matrix scores(d, K);
    for (Eigen::Index j = begin; j < end; ++j) {
      for (int k = 0; k < K; ++k) {
        residual = x.col(j) - mean[k];
        scores.col(k).noalias() = -precision[k] * residual;
        log_terms(k) = log_norm(k) + 0.5 * residual.dot(scores.col(k));
      }
      const double log_all = LogSumExp(log_terms);
      for (int k = 0; k < K; ++k) {
        in_class(k) = labels_[k] == label ? log_terms(k) : -std::numeric_limits<double>::infinity();
      }
      const double log_class = LogSumExp(in_class);
      log_prob(j) = log_class - log_all;
      g.setZero();
      for (int k = 0; k < K; ++k) {
        const double r_all = std::exp(log_terms(k) - log_all);
        const double r_class = labels_[k] == label ? std::exp(log_terms(k) - log_class) : 0.0;
        g += (r_class - r_all) * scores.col(k);
      }
      grad.col(j) = g;
    }
  });
}

}  // namespace scoresde
