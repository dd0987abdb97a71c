#include "scoresde/solvers/edm_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "fast_sampler_internal.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

void EdmSampler::Options::Validate() const {
  constexpr const char* where = "EdmSampler::Options";
  Require(num_steps >= 2, where, "num_steps", num_steps, ">= 2");
  Require(std::isfinite(rho) && rho > 0.0, where, "rho", rho, "> 0 and finite");
  Require(std::isfinite(eps) && eps > 0.0, where, "eps", eps, "> 0 and finite");
  Require(std::isfinite(sigma_min) && sigma_min >= 0.0, where, "sigma_min", sigma_min,
          ">= 0 and finite (0 means sigma(eps))");
  Require(std::isfinite(sigma_max) && sigma_max >= 0.0, where, "sigma_max", sigma_max,
          ">= 0 and finite (0 means sigma(T))");
  Require(std::isfinite(s_churn) && s_churn >= 0.0, where, "s_churn", s_churn, ">= 0");
  Require(!std::isnan(s_tmin) && s_tmin >= 0.0, where, "s_tmin", s_tmin, ">= 0");
  Require(!std::isnan(s_tmax) && s_tmax >= s_tmin, where, "s_tmax", s_tmax, ">= s_tmin");
  Require(std::isfinite(s_noise) && s_noise >= 0.0, where, "s_noise", s_noise, ">= 0");
  Require(num_threads >= 1, where, "num_threads", num_threads, ">= 1");
  Require(chunk_size >= 1, where, "chunk_size", chunk_size, ">= 1");
}

EdmSampler::EdmSampler(const ScalarAffineSde& sde, const ScoreModel& score, Options options)
    : schedule_(sde), score_(score), options_(options) {
  constexpr const char* where = "EdmSampler";
  options_.Validate();
  Require(score.dim() == sde.dim(), where, "score.dim()", score.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
  Require(options_.eps < sde.t_final(), where, "eps", options_.eps,
          "< T = " + FormatValue(sde.t_final()));
  sigma_top_ = schedule_.EdmSigma(sde.t_final());
  const double sigma_bottom = schedule_.EdmSigma(options_.eps);
  const double sigma_max = options_.sigma_max > 0.0 ? options_.sigma_max : sigma_top_;
  const double sigma_min = options_.sigma_min > 0.0 ? options_.sigma_min : sigma_bottom;
  const std::string range =
      "in the SDE's range [" + FormatValue(sigma_bottom) + ", " + FormatValue(sigma_top_) + "]";
  Require(sigma_max <= sigma_top_ && sigma_max > sigma_bottom * (1 - 1e-12), where, "sigma_max",
          sigma_max, range);
  Require(sigma_min >= sigma_bottom * (1 - 1e-12) && sigma_min < sigma_max, where, "sigma_min",
          sigma_min, range + " and < sigma_max");
  const int n = options_.num_steps;
  const double a = std::pow(sigma_max, 1.0 / options_.rho);
  const double b = std::pow(sigma_min, 1.0 / options_.rho);
  sigmas_.resize(n);
  for (int i = 0; i < n; ++i) {
    sigmas_[i] = std::pow(a + static_cast<double>(i) / (n - 1) * (b - a), options_.rho);
  }
  sigmas_.front() = sigma_max;
  sigmas_.back() = sigma_min;
  if (options_.final_step_to_zero) sigmas_.push_back(0.0);
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
}

EdmSampler::~EdmSampler() = default;

void EdmSampler::Denoise(ConstBatchRef x_hat, double sigma, int64_t step, int64_t first_sample,
                         RowVector* times, Batch* out) const {
  const double t = std::min(schedule_.TimeOfEdmSigma(sigma), schedule_.sde().t_final());
  const double alpha = schedule_.Alpha(t);
  // D(x̂; σ̃) = x̂₀ at x = α_t x̂.
  internal::DataPrediction("EdmSampler::Sample", score_, schedule_, alpha * x_hat, t, step,
                           first_sample, times, out);
}

void EdmSampler::RunChunk(BatchRef x, int64_t first_sample) const {
  const int levels = static_cast<int>(sigmas_.size());
  const NoiseStream noise(options_.seed, Stream::kPredictor);
  RowVector times;
  Batch x_hat = x / schedule_.Alpha(schedule_.TimeOfEdmSigma(sigmas_[0]));
  Batch denoised, d, d_next, next, z;
  const double gamma_max = std::min(options_.s_churn / options_.num_steps, std::sqrt(2.0) - 1.0);
  for (int i = 0; i + 1 < levels; ++i) {
    const double sigma = sigmas_[i];
    const double sigma_next = sigmas_[i + 1];
    double sigma_hat = sigma;
    if (gamma_max > 0.0 && sigma >= options_.s_tmin && sigma <= options_.s_tmax) {
      // Raise the level, but not past σ̃(T), where the score is defined.
      sigma_hat = std::min(sigma * (1.0 + gamma_max), sigma_top_);
      if (sigma_hat > sigma) {
        z.resize(x_hat.rows(), x_hat.cols());
        noise.FillNormal(static_cast<uint64_t>(i), 0, first_sample, z);
        x_hat += (std::sqrt(sigma_hat * sigma_hat - sigma * sigma) * options_.s_noise) * z;
      }
    }
    Denoise(x_hat, sigma_hat, i, first_sample, &times, &denoised);
    d = (x_hat - denoised) / sigma_hat;
    next = x_hat + (sigma_next - sigma_hat) * d;
    if (sigma_next > 0.0) {
      Denoise(next, sigma_next, i, first_sample, &times, &denoised);
      d_next = (next - denoised) / sigma_next;
      next = x_hat + (0.5 * (sigma_next - sigma_hat)) * (d + d_next);
    }
    CheckFiniteDuringSolve("EdmSampler::Sample", "state", next, i,
                           sigma_next > 0.0 ? schedule_.TimeOfEdmSigma(sigma_next) : 0.0,
                           first_sample);
    x_hat.swap(next);
  }
  const double sigma_end = sigmas_.back();
  x = sigma_end > 0.0 ? (schedule_.Alpha(schedule_.TimeOfEdmSigma(sigma_end)) * x_hat).eval()
                      : x_hat;
}

OdeSolution EdmSampler::Sample(ConstBatchRef x_T, int64_t first_sample) const {
  const int64_t steps = static_cast<int64_t>(sigmas_.size()) - 1;
  const int64_t nfe = options_.final_step_to_zero ? 2 * steps - 1 : 2 * steps;
  return internal::RunSampler("EdmSampler::Sample", score_.dim(), x_T, first_sample, nfe, steps,
                              options_.chunk_size, *context_,
                              [&](BatchRef x, int64_t first) { RunChunk(x, first); });
}

}  // namespace scoresde
