// First-order optimization of a flat parameter vector: Adam and AdamW with bias correction
// (Kingma & Ba, ICLR 2015; Loshchilov & Hutter, ICLR 2019), linear learning-rate warm-up,
// global-norm gradient clipping, and an exponential moving average (EMA) of the weights, which is
// what sampling uses (Song et al., ICLR 2021, appendix H; their models/ema.py).
//
// One update at step k = 1, 2, … (PyTorch's torch.optim.Adam/AdamW arithmetic):
//   clip:    n = ‖g‖₂ (over all parameters); if c/(n + 1e-6) < 1, g ← g · c/(n + 1e-6)
//   Adam:    g ← g + λ θ                      (weight_decay λ, coupled form only)
//            m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
//   AdamW:   θ ← θ (1 − η_k λ)                (decoupled form)
//            θ ← θ − (η_k/(1 − β₁^k)) · m / (sqrt(v)/sqrt(1 − β₂^k) + ε)
// with η_k = η · min(1, k/warmup) (no warm-up when warmup = 0).
// EMA after each update, with the paper's warm-up of the decay: n ← n + 1,
//   δ = min(decay, (1 + n)/(10 + n)),   θ̄ ← θ̄ − (1 − δ)(θ̄ − θ).
// Element-wise work only, so results do not depend on the thread count; the norm is a sum in
// parameter order (in double).
#pragma once

#include <cstdint>

#include <Eigen/Core>

namespace scoresde {

struct AdamOptions {
  double learning_rate = 2e-4;  // the paper's
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = true;  // AdamW; false gives Adam with L2 regularization
  int64_t warmup_steps = 5000;         // the paper's; 0 disables warm-up
  double clip_norm = 1.0;              // the paper's; 0 disables clipping
  double ema_decay = 0.9999;           // the paper's (continuous models); 0 keeps θ̄ = θ
  // Throws InvalidArgument naming the bad field: learning_rate > 0; beta1, beta2 in [0, 1);
  // epsilon > 0; weight_decay ≥ 0; warmup_steps ≥ 0; clip_norm ≥ 0; ema_decay in [0, 1); all
  // finite.
  void Validate() const;
};

// η_k for update k ≥ 1.
double LearningRateAt(const AdamOptions& options, int64_t step);

template <typename Scalar>
class AdamOptimizer {
 public:
  using VectorS = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

  // Zero moments for num_parameters ≥ 1 parameters; the EMA starts at `initial`. Throws
  // InvalidArgument for invalid options or sizes.
  AdamOptimizer(const VectorS& initial, const AdamOptions& options);

  // One update of params with grad (both of num_parameters entries; grad is clipped in place).
  // Returns the gradient norm before clipping. Throws InvalidArgument on a size mismatch and
  // NumericalFailure if the gradient is not finite (step = the update's index).
  double Step(Eigen::Ref<VectorS> params, Eigen::Ref<VectorS> grad);

  int64_t step() const { return step_; }
  const VectorS& first_moment() const { return m_; }
  const VectorS& second_moment() const { return v_; }
  const VectorS& average() const { return ema_; }
  int64_t ema_updates() const { return ema_updates_; }
  const AdamOptions& options() const { return options_; }

  // Restores a saved state (checkpoint resume). Throws InvalidArgument on size mismatches.
  void Restore(int64_t step, VectorS m, VectorS v, VectorS ema, int64_t ema_updates);

 private:
  AdamOptions options_;
  int64_t step_ = 0;
  int64_t ema_updates_ = 0;
  VectorS m_, v_, ema_;
};

extern template class AdamOptimizer<float>;
extern template class AdamOptimizer<double>;

}  // namespace scoresde
