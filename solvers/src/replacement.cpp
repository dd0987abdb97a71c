#include "scoresde/solvers/replacement.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

namespace {
constexpr const char* kWhere = "ReplacementConditioner";
// Substep of Stream::kGuidance that replacement draws ŷ_t's noise from.
constexpr uint32_t kReplacementSubstep = 0;
}  // namespace

Matrix HelmertMatrix(int channels) {
  Require(channels >= 1, "HelmertMatrix", "channels", channels, ">= 1");
  Matrix q = Matrix::Zero(channels, channels);
  q.row(0).setConstant(1.0 / std::sqrt(static_cast<double>(channels)));
  for (int k = 1; k < channels; ++k) {
    const double norm = 1.0 / std::sqrt(static_cast<double>(k) * (k + 1));
    q.row(k).head(k).setConstant(norm);
    q(k, k) = -k * norm;
  }
  return q;
}

void ReplacementConditioner::Options::Validate() const {
  constexpr const char* kOptions = "ReplacementConditioner::Options";
  if (channel_mix.size() == 0) return;
  Require(channel_mix.rows() == channel_mix.cols(), kOptions, "channel_mix.cols()",
          static_cast<int64_t>(channel_mix.cols()),
          "equal to channel_mix.rows() (" + std::to_string(channel_mix.rows()) + ")");
  CheckFinite(kOptions, "channel_mix", channel_mix);
  const Matrix gram = channel_mix * channel_mix.transpose();
  const double deviation =
      (gram - Matrix::Identity(channel_mix.rows(), channel_mix.rows())).cwiseAbs().maxCoeff();
  Require(deviation <= 1e-10, kOptions, "max |channel_mix channel_mix^T - I|", deviation,
          "<= 1e-10 (orthogonal: replacement needs z_t | z_0 ~ N(alpha z_0, sigma^2 I))");
}

ReplacementConditioner::ReplacementConditioner(const ScalarAffineSde& sde, Matrix observed,
                                               Options options)
    : sde_(&sde), observed_(std::move(observed)), options_(std::move(options)) {
  options_.Validate();
  const int d = sde.dim();
  CheckShape(kWhere, "observed", observed_, d, -1);
  Require(observed_.cols() >= 1, kWhere, "observed.cols()", static_cast<int64_t>(observed_.cols()),
          ">= 1");
  for (Eigen::Index j = 0; j < observed_.cols(); ++j) {
    bool any = false;
    for (Eigen::Index i = 0; i < d; ++i) {
      const double value = observed_(i, j);
      Require(!std::isinf(value), kWhere,
              "observed(" + std::to_string(i) + ", " + std::to_string(j) + ")", value,
              "finite, or NaN for an unknown coordinate");
      any = any || !std::isnan(value);
    }
    Require(any, kWhere, "observed coordinates of observation " + std::to_string(j), 0,
            ">= 1 (every value is NaN)");
  }
  if (options_.channel_mix.size() > 0) {
    channels_ = static_cast<int>(options_.channel_mix.rows());
    Require(d % channels_ == 0, kWhere, "channels", channels_,
            "a divisor of the dimension (" + std::to_string(d) + ")");
  }
  pixels_ = d / channels_;
}

void ReplacementConditioner::ToTransformed(ConstBatchRef x, BatchRef z) const {
  CheckShape("ReplacementConditioner::ToTransformed", "x", x, dim(), -1);
  CheckShape("ReplacementConditioner::ToTransformed", "z", z, dim(), x.cols());
  if (options_.channel_mix.size() == 0) {
    z = x;
    return;
  }
  // Column j viewed as a P × C matrix X (element (p, c) is coordinate c·P + p): Z = X Qᵀ.
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const Eigen::Map<const Matrix> xj(x.col(j).data(), pixels_, channels_);
    Eigen::Map<Matrix> zj(z.col(j).data(), pixels_, channels_);
    zj.noalias() = xj * options_.channel_mix.transpose();
  }
}

void ReplacementConditioner::FromTransformed(ConstBatchRef z, BatchRef x) const {
  CheckShape("ReplacementConditioner::FromTransformed", "z", z, dim(), -1);
  CheckShape("ReplacementConditioner::FromTransformed", "x", x, dim(), z.cols());
  if (options_.channel_mix.size() == 0) {
    x = z;
    return;
  }
  for (Eigen::Index j = 0; j < z.cols(); ++j) {
    const Eigen::Map<const Matrix> zj(z.col(j).data(), pixels_, channels_);
    Eigen::Map<Matrix> xj(x.col(j).data(), pixels_, channels_);
    xj.noalias() = zj * options_.channel_mix;
  }
}

void ReplacementConditioner::Replace(int64_t step, double alpha, double sigma, bool with_noise,
                                     int64_t first_sample, BatchRef x) const {
  CheckShape(kWhere, "x", x, dim(), -1);
  const Eigen::Index n = x.cols();
  const int64_t num_observations = observed_.cols();
  if (num_observations > 1) {
    Require(first_sample >= 0 && first_sample + n <= num_observations, kWhere,
            "last sample index", first_sample + n - 1,
            "< the number of observations (" + std::to_string(num_observations) + ")");
  }
  Batch noise;
  if (with_noise) {
    noise.resize(dim(), n);
    NoiseStream(options_.seed, Stream::kGuidance)
        .FillNormal(static_cast<uint64_t>(step), kReplacementSubstep, first_sample, noise);
  }
  const bool mixing = options_.channel_mix.size() > 0;
  Batch z;
  if (mixing) {
    z.resize(dim(), n);
    ToTransformed(x, z);
  }
  BatchRef target = mixing ? BatchRef(z) : x;
  for (Eigen::Index j = 0; j < n; ++j) {
    const Eigen::Index column = num_observations == 1 ? 0 : first_sample + j;
    for (Eigen::Index i = 0; i < target.rows(); ++i) {
      const double y = observed_(i, column);
      if (std::isnan(y)) continue;
      target(i, j) = with_noise ? alpha * y + sigma * noise(i, j) : y;
    }
  }
  if (mixing) FromTransformed(z, x);
}

void ReplacementConditioner::Apply(int64_t step, double t, int64_t first_sample,
                                   BatchRef x) const {
  Require(step >= 0, kWhere, "step", step, ">= 0");
  Require(t >= 0.0 && t <= sde_->t_final(), kWhere, "t", t,
          "in [0, T] (T = " + FormatValue(sde_->t_final()) + ")");
  Replace(step, sde_->MeanCoefficient(t), sde_->MarginalStd(t), true, first_sample, x);
}

PcSampler::StateHook ReplacementConditioner::Hook() const {
  return [this](int64_t step, double t, int64_t first_sample, BatchRef x) {
    Apply(step, t, first_sample, x);
  };
}

void ReplacementConditioner::Finalize(int64_t first_sample, BatchRef x) const {
  Replace(0, 1.0, 0.0, false, first_sample, x);
}

}  // namespace scoresde
