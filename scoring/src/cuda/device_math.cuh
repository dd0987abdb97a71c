// The arithmetic of every kernel of the CUDA backend, one element (or one example) at a time, as
// host–device functions: kernels.cu calls them from its grid-stride loops, and the host emulation
// of the tests (scoring/tests/cuda_host_test.cpp) calls the very same functions from plain loops,
// so the per-element formulas, index mappings and counter layouts are checked on any machine.
// T is the network's scalar (float on the device; double in the host emulation).
#pragma once

#include <Random123/philox.h>

#include <cmath>
#include <cstdint>

#include "device_types.hpp"

#if !defined(__CUDA_ARCH__)
#include <algorithm>
#endif

namespace scoresde::internal::cuda {

// 2π rounded once, as the CPU's `2.0 * std::numbers::pi` is folded into one constant.
constexpr double kTwoPi = 2.0 * 3.141592653589793238462643383279502884;

// ---- Elementary functions (global-namespace names exist on the host and the device) ------------

SCORESDE_HD inline float Exp(float x) { return expf(x); }
SCORESDE_HD inline double Exp(double x) { return exp(x); }
SCORESDE_HD inline float Sqrt(float x) { return sqrtf(x); }
SCORESDE_HD inline double Sqrt(double x) { return sqrt(x); }
SCORESDE_HD inline bool Finite(double x) {
#if defined(__CUDA_ARCH__)
  return isfinite(x);
#else
  return std::isfinite(x);
#endif
}

// ---- Philox (counter layout of sde/src/random_internal.hpp) ------------------------------------

struct Words {
  uint32_t w[4];
};

SCORESDE_HD inline Words Philox(NoiseKey key, uint32_t block, uint64_t sample, uint64_t step,
                                uint32_t substep) {
  r123::Philox4x32 philox;
  const r123::Philox4x32::ctr_type counter = {
      {block, static_cast<uint32_t>(sample), static_cast<uint32_t>(step),
       (key.stream << 16) | (substep & 0xffffu)}};
  const r123::Philox4x32::key_type k = {
      {static_cast<uint32_t>(key.seed), static_cast<uint32_t>(key.seed >> 32)}};
  const r123::Philox4x32::ctr_type r = philox(counter, k);
  return {{r[0], r[1], r[2], r[3]}};
}

// Two words → a uniform on (0, 1) with 53 bits (exact arithmetic: equal to the CPU's bit for bit).
SCORESDE_HD inline double OpenUniform(uint32_t hi, uint32_t lo) {
  const uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

// Box–Muller as NoiseStream::FillNormal: (radius cos θ, radius sin θ).
SCORESDE_HD inline void BoxMuller(const Words& r, double* n0, double* n1) {
  const double radius = sqrt(-2.0 * log(OpenUniform(r.w[0], r.w[1])));
  const double angle = kTwoPi * OpenUniform(r.w[2], r.w[3]);
  *n0 = radius * cos(angle);
  *n1 = radius * sin(angle);
}

// Normal number `row` of a sample (row 2k and 2k + 1 share Philox block k).
SCORESDE_HD inline double NormalAt(NoiseKey key, uint64_t step, uint32_t substep, uint64_t sample,
                                   int row) {
  const Words r = Philox(key, static_cast<uint32_t>(row / 2), sample, step, substep);
  double n0, n1;
  BoxMuller(r, &n0, &n1);
  return (row & 1) ? n1 : n0;
}

// Sign `row` of a sample: bit row % 128 of Philox block row / 128.
SCORESDE_HD inline double RademacherAt(NoiseKey key, uint64_t step, uint32_t substep,
                                       uint64_t sample, int row) {
  const Words r = Philox(key, static_cast<uint32_t>(row / 128), sample, step, substep);
  const int bit = row % 128;
  return ((r.w[bit / 32] >> (bit % 32)) & 1u) ? 1.0 : -1.0;
}

// Fills rows 2·pair and 2·pair + 1 of column j (rows × cols, column-major) with NoiseStream's
// normal (kind 0), uniform (1) or Rademacher (2) values for sample first_sample + j.
SCORESDE_HD inline void FillPair(int kind, NoiseKey key, uint64_t step, uint32_t substep,
                                 uint64_t first_sample, int rows, int64_t j, int pair,
                                 double* out) {
  const uint64_t sample = first_sample + static_cast<uint64_t>(j);
  double value[2];
  if (kind == 0) {
    BoxMuller(Philox(key, static_cast<uint32_t>(pair), sample, step, substep), &value[0],
              &value[1]);
  } else if (kind == 1) {
    const Words r = Philox(key, static_cast<uint32_t>(pair), sample, step, substep);
    value[0] = OpenUniform(r.w[0], r.w[1]);
    value[1] = OpenUniform(r.w[2], r.w[3]);
  } else {
    value[0] = RademacherAt(key, step, substep, sample, 2 * pair);
    value[1] = RademacherAt(key, step, substep, sample, 2 * pair + 1);
  }
  for (int q = 0; q < 2 && 2 * pair + q < rows; ++q) out[j * rows + 2 * pair + q] = value[q];
}

// ---- SDE coefficients (mirrors of ve_sde.cpp, vp_sde.cpp, subvp_sde.cpp, losses.cpp) -----------

SCORESDE_HD inline double Integral(const SdeParams& p, double t) {
  return p.beta_min * t + 0.5 * (p.beta_max - p.beta_min) * t * t / p.t_final;
}
SCORESDE_HD inline double Beta(const SdeParams& p, double t) {
  return p.beta_min + (t / p.t_final) * (p.beta_max - p.beta_min);
}
SCORESDE_HD inline double VeSigma(const SdeParams& p, double t) {
  return p.sigma_min * exp(p.log_ratio * t / p.t_final);
}
SCORESDE_HD inline double ScalarDiffusion(const SdeParams& p, double t) {
  switch (p.family) {
    case kFamilyVe:
      return VeSigma(p, t) * sqrt(2.0 * p.log_ratio / p.t_final);
    case kFamilyVp:
      return sqrt(Beta(p, t));
    default:
      return sqrt(Beta(p, t) * -expm1(-2.0 * Integral(p, t)));
  }
}
SCORESDE_HD inline double MeanCoefficient(const SdeParams& p, double t) {
  return p.family == kFamilyVe ? 1.0 : exp(-0.5 * Integral(p, t));
}
SCORESDE_HD inline double MarginalStd(const SdeParams& p, double t) {
  switch (p.family) {
    case kFamilyVe:
      if (!p.ve_exact) return VeSigma(p, t);
      return p.sigma_min * sqrt(expm1(2.0 * p.log_ratio * t / p.t_final));
    case kFamilyVp:
      return sqrt(-expm1(-Integral(p, t)));
    default:
      return -expm1(-Integral(p, t));
  }
}
// TimeSampler::Potential.
SCORESDE_HD inline double Potential(const SdeParams& p, double t) {
  switch (p.family) {
    case kFamilyVp: {
      const double b = Integral(p, t);
      return b + log(-expm1(-b));
    }
    case kFamilySubVp: {
      const double b = Integral(p, t);
      return b + 2.0 * log(-expm1(-b));
    }
    default: {
      const double x = 2.0 * (t / p.t_final) * log(p.sigma_max / p.sigma_min);
      return p.ve_exact ? log(expm1(x)) : x;
    }
  }
}

// ---- Training ----------------------------------------------------------------------------------

// ScoreMatchingLoss::DrawTime(u) followed by ComputeScoreCoefficients(t), u from Philox block 0 at
// (sample j, step, substep 0).
SCORESDE_HD inline PerSample DrawSample(const SdeParams& sde, const ModelParams& model,
                                        const LossParams& loss, NoiseKey key, uint64_t step,
                                        int j) {
  const Words r = Philox(key, 0, static_cast<uint64_t>(j), step, 0);
  const double u = OpenUniform(r.w[0], r.w[1]);
  const double t_final = sde.t_final;
  const int scales = loss.num_scales;
  PerSample p;
  if (loss.kind == kLossDdpm) {
    const int u_index = static_cast<int>(u * scales);
    const int i = scales - 1 < u_index ? scales - 1 : u_index;
    p.t = t_final * (i + 1) / scales;
    p.alpha = sqrt(loss.alpha_bar[i]);
    p.sigma = sqrt(1.0 - loss.alpha_bar[i]);
    p.weight = p.sigma * p.sigma;
  } else if (loss.kind == kLossNcsn) {
    const int u_index = static_cast<int>(u * scales);
    const int i = scales - 1 < u_index ? scales - 1 : u_index;
    p.t = t_final * i / (scales - 1);
    p.alpha = 1.0;
    p.sigma = MarginalStd(sde, p.t);
    p.weight = p.sigma * p.sigma;
  } else {
    double t, factor = 1.0;
    if (!loss.importance) {
      t = loss.eps + (t_final - loss.eps) * u;
      if (loss.likelihood_weighting) {
        const double g = ScalarDiffusion(sde, t);
        const double sigma = MarginalStd(sde, t);
        factor = g * g / (sigma * sigma);
      }
    } else {
      const double target = loss.phi_eps + u * (loss.phi_t - loss.phi_eps);
      double lo = loss.eps, hi = t_final;
      for (int k = 0; k < 200; ++k) {
        const double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (Potential(sde, mid) < target) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      t = 0.5 * (lo + hi);
      factor = (loss.phi_t - loss.phi_eps) / (t_final - loss.eps);
    }
    p.t = t;
    p.alpha = MeanCoefficient(sde, t);
    p.sigma = MarginalStd(sde, t);
    p.weight = p.sigma * p.sigma * factor;
  }
  const double alpha = MeanCoefficient(sde, p.t);
  const double sigma = MarginalStd(sde, p.t);
  const double sd = model.data_std;
  const double total = sqrt(sigma * sigma + alpha * alpha * sd * sd);
  p.c_in = 1.0 / total;
  p.tau = sde.family == kFamilyVe ? log(VeSigma(sde, p.t)) : p.t;
  switch (model.parameterization) {
    case kParamScore:
      p.a = 0.0;
      p.b = 1.0;
      break;
    case kParamNoise:
      p.a = 0.0;
      p.b = -1.0 / sigma;
      break;
    default:
      p.a = -1.0 / (total * total);
      p.b = alpha * sd / (sigma * total);
      break;
  }
  return p;
}

// Work item `item` of example j: items 0 … ⌈d/2⌉ − 1 are noise pairs (z, x = α x0 + σ z,
// a0 = c_in x, and for sliced losses v and a0_dot = c_in v), the next E/2 the embedding pairs of
// τ rounded to T (sin in row d + k, cos in row d + E/2 + k), computed in double and rounded.
template <typename T>
SCORESDE_HD inline void PrepareTrainingItem(NoiseKey key, uint64_t step, int d, int half, int j,
                                            int item, const PerSample& p, const T* fourier,
                                            const double* x0, double* x, double* z, T* a0,
                                            int ld0, int sliced, int rademacher, double* v,
                                            T* a0_dot) {
  const int pairs = (d + 1) / 2;
  T* col = a0 + int64_t{j} * ld0;
  if (item < pairs) {
    const int i0 = 2 * item;
    const Words r = Philox(key, static_cast<uint32_t>(item), static_cast<uint64_t>(j), step, 1);
    double zz[2];
    BoxMuller(r, &zz[0], &zz[1]);
    for (int q = 0; q < 2 && i0 + q < d; ++q) {
      const int64_t idx = int64_t{j} * d + i0 + q;
      const double xv = p.alpha * x0[idx] + p.sigma * zz[q];
      z[idx] = zz[q];
      x[idx] = xv;
      col[i0 + q] = static_cast<T>(p.c_in * xv);
      if (sliced) {
        const double vv = rademacher ? RademacherAt(key, step, 2, static_cast<uint64_t>(j), i0 + q)
                                     : NormalAt(key, step, 2, static_cast<uint64_t>(j), i0 + q);
        v[idx] = vv;
        a0_dot[int64_t{j} * ld0 + i0 + q] = static_cast<T>(p.c_in * vv);
      }
    }
  } else {
    const int e = item - pairs;
    const T tau = static_cast<T>(p.tau);
    const double phase =
        kTwoPi * static_cast<double>(fourier[e]) * static_cast<double>(tau);
    col[d + e] = static_cast<T>(sin(phase));
    col[d + half + e] = static_cast<T>(cos(phase));
  }
}

// Denoising losses: per-example loss W/σ² ‖σ s + z‖² and g = 2 (W/σ) (1/B) b (σ s + z).
template <typename T>
SCORESDE_HD inline void DenoisingLossExample(int d, int j, double inv_batch, const PerSample& p,
                                             const double* x, const double* z, const T* output,
                                             double* loss, T* g) {
  const double scale = 2.0 * p.weight / p.sigma * inv_batch * p.b;
  double squared = 0.0;
  for (int i = 0; i < d; ++i) {
    const int64_t idx = int64_t{j} * d + i;
    const double s = p.a * x[idx] + p.b * static_cast<double>(output[idx]);
    const double r = p.sigma * s + z[idx];
    squared += r * r;
    g[idx] = static_cast<T>(scale * r);
  }
  loss[j] = p.weight / (p.sigma * p.sigma) * squared;
}

// Sliced losses: W [vᵀ J v + ½(vᵀs)²] or, variance-reduced, W [vᵀ J v + ½‖s‖²], with g and g_dot.
template <typename T>
SCORESDE_HD inline void SlicedLossExample(int d, int j, int variance_reduced, double inv_batch,
                                          const PerSample& p, const double* x, const double* v,
                                          const T* output, const T* output_dot, double* loss,
                                          T* g, T* g_dot) {
  double v_jv = 0.0, vs = 0.0, ss = 0.0;
  for (int i = 0; i < d; ++i) {
    const int64_t idx = int64_t{j} * d + i;
    const double s = p.a * x[idx] + p.b * static_cast<double>(output[idx]);
    const double jv = p.a * v[idx] + p.b * static_cast<double>(output_dot[idx]);
    v_jv += v[idx] * jv;
    vs += v[idx] * s;
    ss += s * s;
  }
  const double second = variance_reduced ? 0.5 * ss : 0.5 * vs * vs;
  loss[j] = p.weight * (v_jv + second);
  const double scale = p.weight * inv_batch * p.b;
  for (int i = 0; i < d; ++i) {
    const int64_t idx = int64_t{j} * d + i;
    const double s = p.a * x[idx] + p.b * static_cast<double>(output[idx]);
    const double g_s = variance_reduced ? s : vs * v[idx];
    g[idx] = static_cast<T>(scale * g_s);
    g_dot[idx] = static_cast<T>(scale * v[idx]);
  }
}

// ---- Activations -------------------------------------------------------------------------------

template <typename T>
SCORESDE_HD inline T Sigmoid(T z) {
  return T(1) / (T(1) + Exp(-z));
}
// a' = [a +] SiLU(z).
template <typename T>
SCORESDE_HD inline T SiluForwardValue(T z, const T* a_in) {
  return a_in != nullptr ? *a_in + z * Sigmoid(z) : z * Sigmoid(z);
}
// ȧ' = [ȧ +] SiLU'(z) ż with SiLU'(z) = s (1 + z (1 − s)), written as the CPU writes it.
template <typename T>
SCORESDE_HD inline T SiluTangentValue(T z, T z_dot, const T* a_dot_in) {
  const T s = Sigmoid(z);
  const T value = s * (T(1) + z * (T(1) - s)) * z_dot;
  return a_dot_in != nullptr ? *a_dot_in + value : value;
}
template <typename T>
SCORESDE_HD inline T SiluBackwardValue(T z, T g_a) {
  const T s = Sigmoid(z);
  return g_a * s * (T(1) + z * (T(1) - s));
}
// g_ż = g_ȧ SiLU'(z); g_z = g_a SiLU'(z) + g_ȧ SiLU''(z) ż, SiLU''(z) = s(1 − s)(2 + z(1 − 2s)).
template <typename T>
SCORESDE_HD inline void SiluBackwardTangentValue(T z, T z_dot, T g_a, T g_a_dot, T* g_z,
                                                 T* g_z_dot) {
  const T s = Sigmoid(z);
  *g_z_dot = g_a_dot * s * (T(1) + z * (T(1) - s));
  *g_z = g_a * s * (T(1) + z * (T(1) - s)) +
         g_a_dot * s * (T(1) - s) * (T(2) + z * (T(1) - T(2) * s)) * z_dot;
}

// Element k of a rows × n block with leading dimension ld, visited four rows at a time when rows is
// a multiple of 4 (quads = rows / 4; ld is always a multiple of 4, so the quads stay 16-byte
// aligned). Returns the index of the first element of work item k.
SCORESDE_HD inline int64_t ElementIndex(int64_t k, int rows, int ld, bool quads) {
  if (quads) {
    const int per_column = rows / 4;
    return (k / per_column) * ld + 4 * (k % per_column);
  }
  return (k / rows) * ld + k % rows;
}
SCORESDE_HD inline int64_t ElementWork(int rows, int n) {
  return rows % 4 == 0 ? int64_t{rows / 4} * n : int64_t{rows} * n;
}

// ---- Reductions --------------------------------------------------------------------------------

// Fixed blocking of the deterministic sums: block b sums elements [b·kReduceChunk, (b+1)·chunk),
// thread t of 256 its 16 elements t, t + 256, …; then a tree over the threads.
constexpr int kReduceThreads = 256;
constexpr int kReducePerThread = 16;
constexpr int64_t kReduceChunk = int64_t{kReduceThreads} * kReducePerThread;
constexpr int kFinalThreads = 1024;

// ---- Optimizer ---------------------------------------------------------------------------------

// The update's scalars from the counters and the gradient norm (AdamOptimizer::Step's arithmetic);
// advances the counters, or records the failed update and skips it and every later one.
template <typename T>
SCORESDE_HD inline UpdateScalars<T> PrepareUpdate(const AdamParams& adam, double norm,
                                                  TrainCounters* counters) {
  UpdateScalars<T> s{};
  const int64_t k = counters->step + 1;
  if (counters->failed_step >= 0 || !Finite(norm)) {
    if (counters->failed_step < 0) counters->failed_step = k;
    s.skip = 1;
    return s;
  }
  if (adam.clip_norm > 0.0) {
    const double coef = adam.clip_norm / (norm + 1e-6);
    s.clip = coef < 1.0 ? 1 : 0;
    s.clip_coef = static_cast<T>(coef);
  }
  const double lr =
      adam.warmup_steps <= 0
          ? adam.learning_rate
          : adam.learning_rate *
                fmin(1.0, static_cast<double>(k) / static_cast<double>(adam.warmup_steps));
  const double correction1 = 1.0 - pow(adam.beta1, static_cast<double>(k));
  const double correction2 = 1.0 - pow(adam.beta2, static_cast<double>(k));
  s.step_size = static_cast<T>(lr / correction1);
  s.root_correction2 = static_cast<T>(sqrt(correction2));
  s.shrink = static_cast<T>(1.0 - lr * adam.weight_decay);
  counters->step = k;
  counters->ema_updates += 1;
  const double updates = static_cast<double>(counters->ema_updates);
  s.ema_keep_new =
      static_cast<T>(1.0 - fmin(adam.ema_decay, (1.0 + updates) / (10.0 + updates)));
  return s;
}

// Clip, Adam/AdamW and EMA of parameter i (AdamOptimizer<T>::Step's element loop).
template <typename T>
SCORESDE_HD inline void AdamEmaElement(const AdamParams& adam, const UpdateScalars<T>& s,
                                       int64_t i, T* params, T* grad, T* m, T* v, T* ema) {
  const T beta1 = static_cast<T>(adam.beta1);
  const T beta2 = static_cast<T>(adam.beta2);
  const T eps = static_cast<T>(adam.epsilon);
  const T decay = static_cast<T>(adam.weight_decay);
  const bool decoupled = adam.decoupled != 0;
  T g = grad[i];
  if (s.clip) {
    g *= s.clip_coef;
    grad[i] = g;
  }
  T p = params[i];
  if (!decoupled) g += decay * p;
  if (decoupled && adam.weight_decay > 0.0) p *= s.shrink;
  const T mi = beta1 * m[i] + (T(1) - beta1) * g;
  const T vi = beta2 * v[i] + (T(1) - beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  p -= s.step_size * mi / (Sqrt(vi) / s.root_correction2 + eps);
  params[i] = p;
  const T e = ema[i];
  ema[i] = e - s.ema_keep_new * (e - p);
}

// ---- Sampling ----------------------------------------------------------------------------------

SCORESDE_HD inline void RecordFailure(FailureSink sink, int64_t step, int64_t j, int i,
                                      double value) {
  if (Finite(value) || sink.any == nullptr) return;
  const unsigned long long key =
      (static_cast<unsigned long long>(step) << 32) | static_cast<unsigned int>(i);
#if defined(__CUDA_ARCH__)
  atomicMin(sink.per_sample + j, key);
#else
  sink.per_sample[j] = std::min(sink.per_sample[j], key);
#endif
  *sink.any = 1;
}

// Rows 2·pair, 2·pair + 1 of x(:, j) = prior_std · N(0, I) from (key, step 0, substep 0) for sample
// first + j (ScalarAffineSde::SamplePrior).
SCORESDE_HD inline void PriorPair(NoiseKey key, int d, int64_t first, int64_t j, int pair,
                                  double prior_std, double* x) {
  const Words r =
      Philox(key, static_cast<uint32_t>(pair), static_cast<uint64_t>(first + j), 0, 0);
  double zz[2];
  BoxMuller(r, &zz[0], &zz[1]);
  for (int q = 0; q < 2 && 2 * pair + q < d; ++q) x[j * d + 2 * pair + q] = zz[q] * prior_std;
}

// x(r, j) = m_r + Σ_c M(r, c) z(c, j).
SCORESDE_HD inline double AffineTransformElement(int d, int64_t k, const double* m,
                                                 const double* factor, const double* z) {
  const int64_t j = k / d;
  const int r = static_cast<int>(k % d);
  double sum = m[r];
  for (int c = 0; c < d; ++c) sum += factor[int64_t{c} * d + r] * z[j * d + c];
  return sum;
}

// a0(i, j) = T(c_in x(i, j)) for i < d, the embedding e(i − d) below.
template <typename T>
SCORESDE_HD inline T InferenceInputElement(int d, int rows, int64_t k, double c_in,
                                           const double* x, const T* embedding, int64_t* index,
                                           int ld0) {
  const int64_t j = k / rows;
  const int i = static_cast<int>(k % rows);
  *index = j * ld0 + i;
  return i < d ? static_cast<T>(c_in * x[j * d + i]) : embedding[i - d];
}

// w(c, j) = −Σ_i Q(i, c)(x(i, j) − α μ_i) / (α² λ_c + σ²).
SCORESDE_HD inline double GaussianProjectElement(int d, int64_t k, double alpha, double sigma2,
                                                 const double* q, const double* lambda,
                                                 const double* mean, const double* x) {
  const int64_t j = k / d;
  const int c = static_cast<int>(k % d);
  double sum = 0.0;
  for (int i = 0; i < d; ++i) sum += q[int64_t{c} * d + i] * (x[j * d + i] - alpha * mean[i]);
  return -sum / (alpha * alpha * lambda[c] + sigma2);
}

// s(r, j) = Σ_c Q(r, c) w(c, j).
SCORESDE_HD inline double GaussianExpandElement(int d, int64_t k, const double* q,
                                                const double* w) {
  const int64_t j = k / d;
  const int r = static_cast<int>(k % d);
  double sum = 0.0;
  for (int c = 0; c < d; ++c) sum += q[int64_t{c} * d + r] * w[j * d + c];
  return sum;
}

// The Langevin step size of an update (ε of the expectation rule, or q).
SCORESDE_HD inline double UpdateStepSize(const UpdateArgs& a, int d) {
  if (a.kind != kUpdateLangevin) return a.q;
  return 2.0 * a.langevin_alpha * a.snr * a.snr * static_cast<double>(d) / a.expected[a.level];
}

// The updated value of x(i, j) (element k = j·d + i) for sample first + j.
SCORESDE_HD inline double UpdateElement(const UpdateArgs& a, double epsilon, int d, int64_t first,
                                        int64_t k, double xv, double sv) {
  const int64_t j = k / d;
  const int i = static_cast<int>(k % d);
  const double z = NormalAt(a.key, a.noise_step, a.substep, static_cast<uint64_t>(first + j), i);
  switch (a.kind) {
    case kUpdateEuler: {
      const double b = a.f * xv - a.g2 * sv;
      const double dw = z * a.sqrt_h;
      return xv + (a.dt * b + a.g * dw);
    }
    case kUpdateAffine:
      return a.p * xv + a.q * sv + a.r * (z * a.sqrt_h);
    case kUpdateAdd:
      return xv + (a.q * sv + a.r * (z * a.sqrt_h));
    case kUpdateDdpm:
      return (xv + a.q * sv) / a.p + a.r * (z * a.sqrt_h);
    default:
      return xv + (epsilon * sv + sqrt(2.0 * epsilon) * z);
  }
}

}  // namespace scoresde::internal::cuda
