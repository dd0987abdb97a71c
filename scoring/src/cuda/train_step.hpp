// One training update of the CUDA backend as a fixed sequence of operations, written once over an
// Ops policy (the CUDA path: kernels + cuBLAS, captured into a CUDA graph; the host emulation of
// the tests: plain loops). Everything that changes from step to step (the update counter, hence
// the noise step, the learning rate and the bias corrections) is read from `counters`, so the
// sequence is the same at every step:
//   draws (t, α, σ, W, a, b, c_in, τ) → inputs (z, x, [c_in x; e]) → forward [→ tangent] → loss
//   and ∂loss/∂F → loss sum → backward → ‖g‖ → update scalars → clip + Adam + EMA.
// Ops provides the network operations of network_passes.hpp and
//   DrawSamples(sde, model, loss, key, counters, n, draws)
//   PrepareTraining(key, counters, d, half, n, draws, fourier, x0, x, z, a0, ld0, sliced,
//                   rademacher, v, a0_dot)
//   DenoisingLoss(d, n, inv_batch, draws, x, z, output, loss, g)
//   SlicedLoss(d, n, variance_reduced, inv_batch, draws, x, v, output, output_dot, loss, g, g_dot)
//   Sum(values, n, scale, partial, out, counters, capacity)         out[step % capacity] = scale Σ
//   Norm(values, n, partial, out, counters, capacity)              out[step % capacity] = ‖values‖
//   PrepareUpdate(adam, norms, capacity, counters, scalars)
//   AdamEma(adam, scalars, count, params, grad, m, v, ema)
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "device_types.hpp"
#include "network_passes.hpp"
#include "scoresde/scoring/losses.hpp"
#include "scoresde/scoring/optimizer.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde::internal::cuda {

struct TrainStepConfig {
  SdeParams sde;
  ModelParams model;
  LossParams loss;
  AdamParams adam;
  NoiseKey key;
  int batch = 0;
  bool sliced = false;
  bool variance_reduced = false;
};

inline SdeParams MakeSdeParams(const ScalarAffineSde& sde) {
  SdeParams p;
  p.t_final = sde.t_final();
  switch (sde.family()) {
    case SdeFamily::kVe: {
      const auto& o = static_cast<const VeSde&>(sde).options();
      p.family = kFamilyVe;
      p.ve_exact = o.kernel == VeKernel::kExact ? 1 : 0;
      p.sigma_min = o.sigma_min;
      p.sigma_max = o.sigma_max;
      p.log_ratio = std::log(o.sigma_max / o.sigma_min);
      break;
    }
    case SdeFamily::kVp: {
      const auto& o = static_cast<const VpSde&>(sde).options();
      p.family = kFamilyVp;
      p.beta_min = o.beta_min;
      p.beta_max = o.beta_max;
      break;
    }
    case SdeFamily::kSubVp: {
      const auto& o = static_cast<const SubVpSde&>(sde).options();
      p.family = kFamilySubVp;
      p.beta_min = o.beta_min;
      p.beta_max = o.beta_max;
      break;
    }
  }
  return p;
}

inline ModelParams MakeModelParams(const MlpConfig& config) {
  ModelParams p;
  p.parameterization = config.parameterization == Parameterization::kScore   ? kParamScore
                       : config.parameterization == Parameterization::kNoise ? kParamNoise
                                                                             : kParamDenoiser;
  p.data_std = config.data_std;
  return p;
}

// The step's configuration for a loss and optimizer that ScoreMatchingLoss and AdamOptions have
// validated (kEsm excluded). For kDdpm, *alpha_bar receives ᾱ_i exactly as ScoreMatchingLoss
// computes them and loss.alpha_bar points at it (the device copies it and repoints).
inline TrainStepConfig MakeTrainStepConfig(const ScalarAffineSde& sde, const MlpConfig& config,
                                           const LossOptions& loss, const AdamOptions& adam,
                                           uint64_t seed, int batch,
                                           std::vector<double>* alpha_bar) {
  TrainStepConfig c;
  c.sde = MakeSdeParams(sde);
  c.model = MakeModelParams(config);
  switch (loss.kind) {
    case LossKind::kSsm:
      c.loss.kind = kLossSsm;
      break;
    case LossKind::kSsmVr:
      c.loss.kind = kLossSsmVr;
      break;
    case LossKind::kDdpm:
      c.loss.kind = kLossDdpm;
      break;
    case LossKind::kNcsn:
      c.loss.kind = kLossNcsn;
      break;
    default:
      c.loss.kind = kLossDsm;
      break;
  }
  c.loss.likelihood_weighting = loss.weighting == Weighting::kLikelihood ? 1 : 0;
  c.loss.importance = loss.importance_sampling ? 1 : 0;
  c.loss.rademacher = loss.projection == ProjectionKind::kRademacher ? 1 : 0;
  c.loss.eps = loss.eps;
  c.loss.num_scales = loss.num_scales;
  alpha_bar->clear();
  if (loss.kind == LossKind::kDdpm) {
    const auto& beta = static_cast<const VpSde&>(sde).options();
    const int n = loss.num_scales;
    double product = 1.0;
    for (int i = 0; i < n; ++i) {
      const double b =
          beta.beta_min / n + i * (beta.beta_max - beta.beta_min) / (double(n) * (n - 1));
      product *= 1.0 - b;
      alpha_bar->push_back(product);
    }
    c.loss.alpha_bar = alpha_bar->data();
  } else if (loss.kind != LossKind::kNcsn) {
    const TimeSampler sampler(sde, loss.eps, loss.weighting, loss.importance_sampling);
    c.loss.phi_eps = sampler.Potential(loss.eps);
    c.loss.phi_t = sampler.Potential(sde.t_final());
  }
  c.adam = {adam.learning_rate, adam.beta1,  adam.beta2,
            adam.epsilon,       adam.weight_decay, adam.decoupled_weight_decay ? 1 : 0,
            adam.warmup_steps,  adam.clip_norm, adam.ema_decay};
  c.key = {seed, static_cast<uint32_t>(Stream::kTraining)};
  c.batch = batch;
  c.sliced = loss.kind == LossKind::kSsm || loss.kind == LossKind::kSsmVr;
  c.variance_reduced = loss.kind == LossKind::kSsmVr;
  return c;
}

template <typename T>
struct TrainStepBuffers {
  const NetworkLayout* net = nullptr;
  PassBuffers<T> pass;  // a[0] (and a_dot[0]) are filled by the step
  T* params = nullptr;
  T* grad = nullptr;
  T* m = nullptr;
  T* v = nullptr;
  T* ema = nullptr;
  const T* fourier = nullptr;
  const double* x0 = nullptr;  // d × batch
  double* x = nullptr;
  double* z = nullptr;
  double* v_noise = nullptr;   // sliced losses
  PerSample* draws = nullptr;
  double* per_example = nullptr;
  T* g = nullptr;
  T* g_dot = nullptr;
  double* partial = nullptr;
  double* history_loss = nullptr;  // capacity entries
  double* history_norm = nullptr;
  int capacity = 1;
  TrainCounters* counters = nullptr;
  UpdateScalars<T>* scalars = nullptr;
};

template <typename T, typename Ops>
void TrainStep(const Ops& ops, const TrainStepConfig& c, const TrainStepBuffers<T>& b) {
  const NetworkLayout& net = *b.net;
  const int d = net.config.dim;
  const int half = net.config.embed_dim / 2;
  const int n = c.batch;
  const double inv_batch = 1.0 / static_cast<double>(n);
  ops.DrawSamples(c.sde, c.model, c.loss, c.key, b.counters, n, b.draws);
  ops.PrepareTraining(c.key, b.counters, d, half, n, b.draws, b.fourier, b.x0, b.x, b.z,
                      b.pass.a[0], net.ld_input(), c.sliced ? 1 : 0, c.loss.rademacher,
                      c.sliced ? b.v_noise : nullptr, c.sliced ? b.pass.a_dot[0] : nullptr);
  ForwardPass(ops, net, b.params, b.pass);
  if (c.sliced) {
    TangentPass(ops, net, b.params, b.pass);
    ops.SlicedLoss(d, n, c.variance_reduced ? 1 : 0, inv_batch, b.draws, b.x, b.v_noise,
                   b.pass.output, b.pass.output_dot, b.per_example, b.g, b.g_dot);
  } else {
    ops.DenoisingLoss(d, n, inv_batch, b.draws, b.x, b.z, b.pass.output, b.per_example, b.g);
  }
  ops.Sum(b.per_example, n, inv_batch, b.partial, b.history_loss, b.counters, b.capacity);
  if (c.sliced) {
    BackwardWithTangentPass(ops, net, b.params, b.g, b.g_dot, b.pass, b.grad);
  } else {
    BackwardPass(ops, net, b.params, b.g, b.pass, b.grad);
  }
  ops.Norm(b.grad, net.store_size, b.partial, b.history_norm, b.counters, b.capacity);
  ops.PrepareUpdate(c.adam, b.history_norm, b.capacity, b.counters, b.scalars);
  ops.AdamEma(c.adam, b.scalars, net.store_size, b.params, b.grad, b.m, b.v, b.ema);
}

}  // namespace scoresde::internal::cuda
