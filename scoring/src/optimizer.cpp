#include "scoresde/scoring/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "scoresde/sde/check.hpp"

namespace scoresde {

void AdamOptions::Validate() const {
  constexpr const char* kWhere = "AdamOptions";
  Require(std::isfinite(learning_rate) && learning_rate > 0.0, kWhere, "learning_rate",
          learning_rate, "finite and > 0");
  Require(beta1 >= 0.0 && beta1 < 1.0, kWhere, "beta1", beta1, "in [0, 1)");
  Require(beta2 >= 0.0 && beta2 < 1.0, kWhere, "beta2", beta2, "in [0, 1)");
  Require(std::isfinite(epsilon) && epsilon > 0.0, kWhere, "epsilon", epsilon, "finite and > 0");
  Require(std::isfinite(weight_decay) && weight_decay >= 0.0, kWhere, "weight_decay",
          weight_decay, "finite and >= 0");
  Require(warmup_steps >= 0, kWhere, "warmup_steps", warmup_steps, ">= 0");
  Require(std::isfinite(clip_norm) && clip_norm >= 0.0, kWhere, "clip_norm", clip_norm,
          "finite and >= 0 (0 disables clipping)");
  Require(ema_decay >= 0.0 && ema_decay < 1.0, kWhere, "ema_decay", ema_decay, "in [0, 1)");
}

double LearningRateAt(const AdamOptions& options, int64_t step) {
  if (options.warmup_steps <= 0) return options.learning_rate;
  return options.learning_rate *
         std::min(1.0, static_cast<double>(step) / static_cast<double>(options.warmup_steps));
}

template <typename Scalar>
AdamOptimizer<Scalar>::AdamOptimizer(const VectorS& initial, const AdamOptions& options)
    : options_(options) {
  options_.Validate();
  Require(initial.size() >= 1, "AdamOptimizer", "num_parameters",
          static_cast<int64_t>(initial.size()), ">= 1");
  m_ = VectorS::Zero(initial.size());
  v_ = VectorS::Zero(initial.size());
  ema_ = initial;
}

template <typename Scalar>
double AdamOptimizer<Scalar>::Step(Eigen::Ref<VectorS> params, Eigen::Ref<VectorS> grad) {
  constexpr const char* kWhere = "AdamOptimizer::Step";
  Require(params.size() == m_.size(), kWhere, "params.size()", static_cast<int64_t>(params.size()),
          std::to_string(m_.size()));
  Require(grad.size() == m_.size(), kWhere, "grad.size()", static_cast<int64_t>(grad.size()),
          std::to_string(m_.size()));
  const int64_t k = step_ + 1;
  CheckFiniteDuringSolve(kWhere, "gradient", grad.template cast<double>(), k, 0.0);
  double sum = 0.0;
  for (Eigen::Index i = 0; i < grad.size(); ++i) {
    sum += static_cast<double>(grad[i]) * static_cast<double>(grad[i]);
  }
  const double norm = std::sqrt(sum);
  if (options_.clip_norm > 0.0) {
    const double coef = options_.clip_norm / (norm + 1e-6);
    if (coef < 1.0) grad *= static_cast<Scalar>(coef);
  }
  const double lr = LearningRateAt(options_, k);
  const Scalar beta1 = static_cast<Scalar>(options_.beta1);
  const Scalar beta2 = static_cast<Scalar>(options_.beta2);
  const double correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(k));
  const double correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(k));
  const Scalar step_size = static_cast<Scalar>(lr / correction1);
  const Scalar root_correction2 = static_cast<Scalar>(std::sqrt(correction2));
  const Scalar eps = static_cast<Scalar>(options_.epsilon);
  const Scalar decay = static_cast<Scalar>(options_.weight_decay);
  const Scalar shrink = static_cast<Scalar>(1.0 - lr * options_.weight_decay);
  const bool decoupled = options_.decoupled_weight_decay;
  for (Eigen::Index i = 0; i < params.size(); ++i) {
    Scalar g = grad[i];
    if (!decoupled) g += decay * params[i];
    if (decoupled && options_.weight_decay > 0.0) params[i] *= shrink;
    m_[i] = beta1 * m_[i] + (Scalar(1) - beta1) * g;
    v_[i] = beta2 * v_[i] + (Scalar(1) - beta2) * g * g;
    params[i] -= step_size * m_[i] / (std::sqrt(v_[i]) / root_correction2 + eps);
  }
  step_ = k;
  ++ema_updates_;
  const double n = static_cast<double>(ema_updates_);
  const Scalar keep_new =
      static_cast<Scalar>(1.0 - std::min(options_.ema_decay, (1.0 + n) / (10.0 + n)));
  ema_ -= keep_new * (ema_ - params);
  return norm;
}

template <typename Scalar>
void AdamOptimizer<Scalar>::Restore(int64_t step, VectorS m, VectorS v, VectorS ema,
                                    int64_t ema_updates) {
  constexpr const char* kWhere = "AdamOptimizer::Restore";
  Require(step >= 0, kWhere, "step", step, ">= 0");
  Require(ema_updates >= 0, kWhere, "ema_updates", ema_updates, ">= 0");
  Require(m.size() == m_.size(), kWhere, "m.size()", static_cast<int64_t>(m.size()),
          std::to_string(m_.size()));
  Require(v.size() == m_.size(), kWhere, "v.size()", static_cast<int64_t>(v.size()),
          std::to_string(m_.size()));
  Require(ema.size() == m_.size(), kWhere, "ema.size()", static_cast<int64_t>(ema.size()),
          std::to_string(m_.size()));
  step_ = step;
  ema_updates_ = ema_updates;
  m_ = std::move(m);
  v_ = std::move(v);
  ema_ = std::move(ema);
}

template class AdamOptimizer<float>;
template class AdamOptimizer<double>;

}  // namespace scoresde
