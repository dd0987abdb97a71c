// Device kernels of the CUDA backend (see kernels.cuh for the conventions). One translation unit
// keeps nvcc's share of the build small.
#include "kernels.cuh"

#include <Random123/philox.h>

#include <cmath>
#include <cstdint>

namespace scoresde::internal::cuda {

namespace {

constexpr int kThreads = 256;
// 2π rounded once, as the CPU's `2.0 * std::numbers::pi` is folded into one constant.
constexpr double kTwoPi = 2.0 * 3.141592653589793238462643383279502884;

int Blocks(int64_t work, int threads = kThreads) {
  const int64_t blocks = (work + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// ---- Philox (counter layout of sde/src/random_internal.hpp) ------------------------------------

struct Words {
  uint32_t w[4];
};

__device__ inline Words Philox(NoiseKey key, uint32_t block, uint64_t sample, uint64_t step,
                               uint32_t substep) {
  r123::Philox4x32 philox;
  const r123::Philox4x32::ctr_type counter = {
      {block, static_cast<uint32_t>(sample), static_cast<uint32_t>(step),
       (key.stream << 16) | (substep & 0xffffu)}};
  const r123::Philox4x32::key_type k = {
      {static_cast<uint32_t>(key.seed), static_cast<uint32_t>(key.seed >> 32)}};
  const auto r = philox(counter, k);
  return {{r[0], r[1], r[2], r[3]}};
}

// Two words → a uniform on (0, 1) with 53 bits (exact arithmetic: equal to the CPU's bit for bit).
__device__ inline double OpenUniform(uint32_t hi, uint32_t lo) {
  const uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

// Box–Muller as NoiseStream::FillNormal: (radius cos θ, radius sin θ).
__device__ inline void BoxMuller(const Words& r, double* n0, double* n1) {
  const double radius = sqrt(-2.0 * log(OpenUniform(r.w[0], r.w[1])));
  const double angle = kTwoPi * OpenUniform(r.w[2], r.w[3]);
  *n0 = radius * cos(angle);
  *n1 = radius * sin(angle);
}

// Normal number `row` of sample `sample` (both of a Box–Muller pair are computed; callers that
// need both use BoxMuller directly).
__device__ inline double NormalAt(NoiseKey key, uint64_t step, uint32_t substep, uint64_t sample,
                                  int row) {
  const Words r = Philox(key, static_cast<uint32_t>(row / 2), sample, step, substep);
  double n0, n1;
  BoxMuller(r, &n0, &n1);
  return (row & 1) ? n1 : n0;
}

__device__ inline double RademacherAt(NoiseKey key, uint64_t step, uint32_t substep,
                                      uint64_t sample, int row) {
  const Words r = Philox(key, static_cast<uint32_t>(row / 128), sample, step, substep);
  const int bit = row % 128;
  return ((r.w[bit / 32] >> (bit % 32)) & 1u) ? 1.0 : -1.0;
}

// ---- SDE coefficients (mirrors of ve_sde.cpp, vp_sde.cpp, subvp_sde.cpp, losses.cpp) -----------

__device__ inline double Integral(const SdeParams& p, double t) {
  return p.beta_min * t + 0.5 * (p.beta_max - p.beta_min) * t * t / p.t_final;
}
__device__ inline double Beta(const SdeParams& p, double t) {
  return p.beta_min + (t / p.t_final) * (p.beta_max - p.beta_min);
}
__device__ inline double VeSigma(const SdeParams& p, double t) {
  return p.sigma_min * exp(p.log_ratio * t / p.t_final);
}
__device__ inline double ScalarDiffusion(const SdeParams& p, double t) {
  switch (p.family) {
    case kFamilyVe:
      return VeSigma(p, t) * sqrt(2.0 * p.log_ratio / p.t_final);
    case kFamilyVp:
      return sqrt(Beta(p, t));
    default:
      return sqrt(Beta(p, t) * -expm1(-2.0 * Integral(p, t)));
  }
}
__device__ inline double MeanCoefficient(const SdeParams& p, double t) {
  return p.family == kFamilyVe ? 1.0 : exp(-0.5 * Integral(p, t));
}
__device__ inline double MarginalStd(const SdeParams& p, double t) {
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
__device__ inline double Potential(const SdeParams& p, double t) {
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

// ---- Network input -----------------------------------------------------------------------------

__global__ void NetworkInputKernel(int d, int half, int n, const float* u, const float* tau,
                                   const float* fourier, float* a0, int ld0) {
  const int rows = d + half;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{rows} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int j = static_cast<int>(k / rows);
    const int i = static_cast<int>(k % rows);
    float* col = a0 + int64_t{j} * ld0;
    if (i < d) {
      col[i] = u[int64_t{j} * d + i];
    } else {
      const int e = i - d;
      const double phase =
          kTwoPi * static_cast<double>(fourier[e]) * static_cast<double>(tau[j]);
      col[d + e] = static_cast<float>(sin(phase));
      col[d + half + e] = static_cast<float>(cos(phase));
    }
  }
}

__global__ void CopyRowsKernel(int rows, int n, const float* src, int ld_src, float* dst,
                               int ld_dst) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{rows} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = k / rows;
    const int i = static_cast<int>(k % rows);
    dst[j * ld_dst + i] = src[j * ld_src + i];
  }
}

// ---- Activations -------------------------------------------------------------------------------

__device__ inline float Sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// Applies op(index) to every element of a rows × n block with leading dimension ld, four at a time
// when rows is a multiple of 4 (ld always is, so float4 accesses stay aligned).
template <typename Op>
__device__ inline void ForEachElement(int rows, int n, int ld, Op op) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  if (rows % 4 == 0) {
    const int quads = rows / 4;
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{quads} * n;
         k += stride) {
      const int64_t j = k / quads;
      const int64_t base = j * ld + 4 * (k % quads);
      op.template Apply<4>(base);
    }
  } else {
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{rows} * n;
         k += stride) {
      const int64_t j = k / rows;
      op.template Apply<1>(j * ld + k % rows);
    }
  }
}

template <int kWidth>
struct Vec;
template <>
struct Vec<1> {
  float v[1];
  __device__ static Vec Load(const float* p) { return {{p[0]}}; }
  __device__ void Store(float* p) const { p[0] = v[0]; }
};
template <>
struct Vec<4> {
  float v[4];
  __device__ static Vec Load(const float* p) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    return {{q.x, q.y, q.z, q.w}};
  }
  __device__ void Store(float* p) const {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  }
};

struct SiluForwardOp {
  const float* z;
  const float* a_in;
  float* a_out;
  template <int W>
  __device__ void Apply(int64_t i) const {
    const Vec<W> zv = Vec<W>::Load(z + i);
    Vec<W> out;
    if (a_in != nullptr) {
      const Vec<W> av = Vec<W>::Load(a_in + i);
#pragma unroll
      for (int k = 0; k < W; ++k) out.v[k] = av.v[k] + zv.v[k] * Sigmoid(zv.v[k]);
    } else {
#pragma unroll
      for (int k = 0; k < W; ++k) out.v[k] = zv.v[k] * Sigmoid(zv.v[k]);
    }
    out.Store(a_out + i);
  }
};

__global__ void SiluForwardKernel(int rows, int n, int ld, SiluForwardOp op) {
  ForEachElement(rows, n, ld, op);
}

// SiLU'(z) = s (1 + z (1 − s)), written as the CPU writes it.
struct SiluTangentOp {
  const float* z;
  const float* z_dot;
  const float* a_dot_in;
  float* a_dot_out;
  template <int W>
  __device__ void Apply(int64_t i) const {
    const Vec<W> zv = Vec<W>::Load(z + i);
    const Vec<W> zd = Vec<W>::Load(z_dot + i);
    Vec<W> out;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float s = Sigmoid(zv.v[k]);
      out.v[k] = s * (1.0f + zv.v[k] * (1.0f - s)) * zd.v[k];
    }
    if (a_dot_in != nullptr) {
      const Vec<W> ad = Vec<W>::Load(a_dot_in + i);
#pragma unroll
      for (int k = 0; k < W; ++k) out.v[k] = ad.v[k] + out.v[k];
    }
    out.Store(a_dot_out + i);
  }
};

__global__ void SiluTangentKernel(int rows, int n, int ld, SiluTangentOp op) {
  ForEachElement(rows, n, ld, op);
}

struct SiluBackwardOp {
  const float* z;
  const float* g_a;
  float* g_z;
  template <int W>
  __device__ void Apply(int64_t i) const {
    const Vec<W> zv = Vec<W>::Load(z + i);
    const Vec<W> ga = Vec<W>::Load(g_a + i);
    Vec<W> out;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float s = Sigmoid(zv.v[k]);
      out.v[k] = ga.v[k] * s * (1.0f + zv.v[k] * (1.0f - s));
    }
    out.Store(g_z + i);
  }
};

__global__ void SiluBackwardKernel(int rows, int n, int ld, SiluBackwardOp op) {
  ForEachElement(rows, n, ld, op);
}

// SiLU''(z) = s (1 − s)(2 + z (1 − 2s)).
struct SiluBackwardTangentOp {
  const float* z;
  const float* z_dot;
  const float* g_a;
  const float* g_a_dot;
  float* g_z;
  float* g_z_dot;
  template <int W>
  __device__ void Apply(int64_t i) const {
    const Vec<W> zv = Vec<W>::Load(z + i);
    const Vec<W> zd = Vec<W>::Load(z_dot + i);
    const Vec<W> ga = Vec<W>::Load(g_a + i);
    const Vec<W> gad = Vec<W>::Load(g_a_dot + i);
    Vec<W> gz, gzd;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float s = Sigmoid(zv.v[k]);
      const float zk = zv.v[k];
      gzd.v[k] = gad.v[k] * s * (1.0f + zk * (1.0f - s));
      gz.v[k] = ga.v[k] * s * (1.0f + zk * (1.0f - s)) +
                gad.v[k] * s * (1.0f - s) * (2.0f + zk * (1.0f - 2.0f * s)) * zd.v[k];
    }
    gz.Store(g_z + i);
    gzd.Store(g_z_dot + i);
  }
};

__global__ void SiluBackwardTangentKernel(int rows, int n, int ld, SiluBackwardTangentOp op) {
  ForEachElement(rows, n, ld, op);
}

// ---- Training: draws, inputs, losses -----------------------------------------------------------

// ScoreMatchingLoss::DrawTime followed by ComputeScoreCoefficients.
__global__ void DrawSamplesKernel(SdeParams sde, ModelParams model, LossParams loss, NoiseKey key,
                                  const TrainCounters* counters, int n, PerSample* out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const uint64_t step = static_cast<uint64_t>(counters->step);
  const Words r = Philox(key, 0, static_cast<uint64_t>(j), step, 0);
  const double u = OpenUniform(r.w[0], r.w[1]);
  const double t_final = sde.t_final;
  const int scales = loss.num_scales;
  PerSample p;
  if (loss.kind == kLossDdpm) {
    const int i = min(scales - 1, static_cast<int>(u * scales));
    p.t = t_final * (i + 1) / scales;
    p.alpha = sqrt(loss.alpha_bar[i]);
    p.sigma = sqrt(1.0 - loss.alpha_bar[i]);
    p.weight = p.sigma * p.sigma;
  } else if (loss.kind == kLossNcsn) {
    const int i = min(scales - 1, static_cast<int>(u * scales));
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
  // ComputeScoreCoefficients(sde, config, t).
  const double alpha = MeanCoefficient(sde, p.t);
  const double sigma = MarginalStd(sde, p.t);
  const double sd = model.data_std;
  const double total = sqrt(sigma * sigma + alpha * alpha * sd * sd);
  p.c_in = 1.0 / total;
  const double tau = sde.family == kFamilyVe ? log(VeSigma(sde, p.t)) : p.t;
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
  p.tau = static_cast<float>(tau);
  out[j] = p;
}

// One thread per (pair of rows, example): noise pair, perturbed example, network input; the
// embedding pairs follow the noise pairs in the same index space.
__global__ void PrepareTrainingKernel(NoiseKey key, const TrainCounters* counters, int d,
                                      int half, int n, const PerSample* draws,
                                      const float* fourier, const double* x0, double* x,
                                      double* z, float* a0, int ld0, int sliced, int rademacher,
                                      double* v, float* a0_dot) {
  const int pairs = (d + 1) / 2;
  const int items = pairs + half;
  const uint64_t step = static_cast<uint64_t>(counters->step);
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{items} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int j = static_cast<int>(k / items);
    const int item = static_cast<int>(k % items);
    const PerSample& p = draws[j];
    float* col = a0 + int64_t{j} * ld0;
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
        col[i0 + q] = static_cast<float>(p.c_in * xv);
        if (sliced) {
          const double vv = rademacher ? RademacherAt(key, step, 2, j, i0 + q)
                                       : NormalAt(key, step, 2, j, i0 + q);
          v[idx] = vv;
          a0_dot[int64_t{j} * ld0 + i0 + q] = static_cast<float>(p.c_in * vv);
        }
      }
    } else {
      const int e = item - pairs;
      const double phase =
          kTwoPi * static_cast<double>(fourier[e]) * static_cast<double>(p.tau);
      col[d + e] = static_cast<float>(sin(phase));
      col[d + half + e] = static_cast<float>(cos(phase));
    }
  }
}

__global__ void DenoisingLossKernel(int d, int n, double inv_batch, const PerSample* draws,
                                    const double* x, const double* z, const float* output,
                                    double* loss, float* g) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const PerSample& p = draws[j];
  const double scale = 2.0 * p.weight / p.sigma * inv_batch * p.b;
  double squared = 0.0;
  for (int i = 0; i < d; ++i) {
    const int64_t idx = int64_t{j} * d + i;
    const double s = p.a * x[idx] + p.b * static_cast<double>(output[idx]);
    const double r = p.sigma * s + z[idx];
    squared += r * r;
    g[idx] = static_cast<float>(scale * r);
  }
  loss[j] = p.weight / (p.sigma * p.sigma) * squared;
}

__global__ void SlicedLossKernel(int d, int n, int variance_reduced, double inv_batch,
                                 const PerSample* draws, const double* x, const double* v,
                                 const float* output, const float* output_dot, double* loss,
                                 float* g, float* g_dot) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const PerSample& p = draws[j];
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
    g[idx] = static_cast<float>(scale * g_s);
    g_dot[idx] = static_cast<float>(scale * v[idx]);
  }
}

// ---- Deterministic reductions ------------------------------------------------------------------

constexpr int kReduceThreads = 256;
constexpr int kReducePerThread = 16;
constexpr int64_t kReduceChunk = int64_t{kReduceThreads} * kReducePerThread;
constexpr int kFinalThreads = 1024;

__device__ inline double BlockSum(double value, double* shared) {
  const int t = threadIdx.x;
  shared[t] = value;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width /= 2) {
    if (t < width) shared[t] += shared[t + width];
    __syncthreads();
  }
  return shared[0];
}

template <typename T, bool kSquare>
__global__ void PartialSumKernel(const T* values, int64_t n, double* partial) {
  __shared__ double shared[kReduceThreads];
  const int64_t begin = blockIdx.x * kReduceChunk;
  double sum = 0.0;
  for (int k = 0; k < kReducePerThread; ++k) {
    const int64_t i = begin + threadIdx.x + int64_t{k} * kReduceThreads;
    if (i < n) {
      const double x = static_cast<double>(values[i]);
      sum += kSquare ? x * x : x;
    }
  }
  const double total = BlockSum(sum, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

__global__ void FinalSumKernel(const double* partial, int count, double scale, int take_sqrt,
                               double* out, const TrainCounters* counters, int capacity) {
  __shared__ double shared[kFinalThreads];
  double sum = 0.0;
  for (int i = threadIdx.x; i < count; i += kFinalThreads) sum += partial[i];
  const double total = BlockSum(sum, shared);
  if (threadIdx.x == 0) {
    const int64_t slot = counters != nullptr ? counters->step % capacity : 0;
    out[slot] = take_sqrt ? sqrt(scale * total) : scale * total;
  }
}

template <typename T, bool kSquare>
void LaunchReduction(const T* values, int64_t n, double scale, double* partial, double* out,
                     const TrainCounters* counters, int capacity, cudaStream_t stream) {
  const int blocks = ReductionPartials(n);
  PartialSumKernel<T, kSquare><<<blocks, kReduceThreads, 0, stream>>>(values, n, partial);
  FinalSumKernel<<<1, kFinalThreads, 0, stream>>>(partial, blocks, scale, kSquare ? 1 : 0, out,
                                                  counters, capacity);
}

// ---- Optimizer ---------------------------------------------------------------------------------

__global__ void PrepareUpdateKernel(AdamParams adam, const double* norms, int capacity,
                                    TrainCounters* counters, UpdateScalars* out) {
  UpdateScalars s{};
  const int64_t k = counters->step + 1;
  const double norm = norms[counters->step % capacity];
  if (counters->failed_step >= 0 || !isfinite(norm)) {
    if (counters->failed_step < 0) counters->failed_step = k;
    s.skip = 1;
    *out = s;
    return;
  }
  if (adam.clip_norm > 0.0) {
    const double coef = adam.clip_norm / (norm + 1e-6);
    s.clip = coef < 1.0 ? 1 : 0;
    s.clip_coef = static_cast<float>(coef);
  }
  const double lr =
      adam.warmup_steps <= 0
          ? adam.learning_rate
          : adam.learning_rate *
                fmin(1.0, static_cast<double>(k) / static_cast<double>(adam.warmup_steps));
  const double correction1 = 1.0 - pow(adam.beta1, static_cast<double>(k));
  const double correction2 = 1.0 - pow(adam.beta2, static_cast<double>(k));
  s.step_size = static_cast<float>(lr / correction1);
  s.root_correction2 = static_cast<float>(sqrt(correction2));
  s.shrink = static_cast<float>(1.0 - lr * adam.weight_decay);
  counters->step = k;
  counters->ema_updates += 1;
  const double updates = static_cast<double>(counters->ema_updates);
  s.ema_keep_new =
      static_cast<float>(1.0 - fmin(adam.ema_decay, (1.0 + updates) / (10.0 + updates)));
  *out = s;
}

__global__ void AdamEmaKernel(AdamParams adam, const UpdateScalars* scalars, int64_t count,
                              float* params, float* grad, float* m, float* v, float* ema) {
  const UpdateScalars s = *scalars;
  if (s.skip) return;
  const float beta1 = static_cast<float>(adam.beta1);
  const float beta2 = static_cast<float>(adam.beta2);
  const float eps = static_cast<float>(adam.epsilon);
  const float decay = static_cast<float>(adam.weight_decay);
  const bool decoupled = adam.decoupled != 0;
  const bool shrink = decoupled && adam.weight_decay > 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    float g = grad[i];
    if (s.clip) {
      g *= s.clip_coef;
      grad[i] = g;
    }
    float p = params[i];
    if (!decoupled) g += decay * p;
    if (shrink) p *= s.shrink;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p -= s.step_size * mi / (sqrtf(vi) / s.root_correction2 + eps);
    params[i] = p;
    const float e = ema[i];
    ema[i] = e - s.ema_keep_new * (e - p);
  }
}

// ---- Sampling ----------------------------------------------------------------------------------

__device__ inline void RecordFailure(FailureSink sink, int64_t step, int j, int i, double value) {
  if (isfinite(value) || sink.any == nullptr) return;
  const unsigned long long key =
      (static_cast<unsigned long long>(step) << 32) | static_cast<unsigned int>(i);
  atomicMin(sink.per_sample + j, key);
  *sink.any = 1;
}

__global__ void PriorKernel(NoiseKey key, int d, int n, const int64_t* first_sample,
                            double prior_std, double* x) {
  const int pairs = (d + 1) / 2;
  const int64_t first = *first_sample;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{pairs} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int j = static_cast<int>(k / pairs);
    const int pair = static_cast<int>(k % pairs);
    const Words r = Philox(key, static_cast<uint32_t>(pair), static_cast<uint64_t>(first + j), 0, 0);
    double zz[2];
    BoxMuller(r, &zz[0], &zz[1]);
    for (int q = 0; q < 2 && 2 * pair + q < d; ++q) {
      x[int64_t{j} * d + 2 * pair + q] = zz[q] * prior_std;
    }
  }
}

__global__ void AffineTransformKernel(int d, int n, const double* m, const double* factor,
                                      const double* z, double* x) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{d} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = k / d;
    const int r = static_cast<int>(k % d);
    double sum = m[r];
    for (int c = 0; c < d; ++c) sum += factor[int64_t{c} * d + r] * z[j * d + c];
    x[k] = sum;
  }
}

__global__ void InferenceInputKernel(int d, int embed, int n, double c_in, const double* x,
                                     const float* embedding, float* a0, int ld0) {
  const int rows = d + embed;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{rows} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = k / rows;
    const int i = static_cast<int>(k % rows);
    a0[j * ld0 + i] =
        i < d ? static_cast<float>(c_in * x[j * d + i]) : embedding[i - d];
  }
}

__global__ void ScoreFromOutputKernel(int64_t count, double a, double b, const double* x,
                                      const float* output, double* s) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count;
       k += int64_t{gridDim.x} * blockDim.x) {
    s[k] = a * x[k] + b * static_cast<double>(output[k]);
  }
}

// w(k, j) = −Σ_i Q(i, k)(x(i, j) − α μ_i) / (α² λ_k + σ²).
__global__ void GaussianProjectKernel(int d, int n, double alpha, double sigma2, const double* q,
                                      const double* lambda, const double* mean, const double* x,
                                      double* w) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{d} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = k / d;
    const int c = static_cast<int>(k % d);
    double sum = 0.0;
    for (int i = 0; i < d; ++i) sum += q[int64_t{c} * d + i] * (x[j * d + i] - alpha * mean[i]);
    w[k] = -sum / (alpha * alpha * lambda[c] + sigma2);
  }
}

// s(r, j) = Σ_c Q(r, c) w(c, j).
__global__ void GaussianExpandKernel(int d, int n, const double* q, const double* w, double* s) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{d} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = k / d;
    const int r = static_cast<int>(k % d);
    double sum = 0.0;
    for (int c = 0; c < d; ++c) sum += q[int64_t{c} * d + r] * w[j * d + c];
    s[k] = sum;
  }
}

__global__ void UpdateKernel(UpdateArgs a, int d, int n, const int64_t* first_sample,
                             const double* s, double* x, FailureSink failure) {
  const int64_t first = *first_sample;
  double epsilon = a.q;
  if (a.kind == kUpdateLangevin) {
    epsilon = 2.0 * a.langevin_alpha * a.snr * a.snr * static_cast<double>(d) /
              a.expected[a.level];
  }
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{d} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int j = static_cast<int>(k / d);
    const int i = static_cast<int>(k % d);
    const double z =
        a.has_noise ? NormalAt(a.key, a.noise_step, a.substep, static_cast<uint64_t>(first + j), i)
                    : 0.0;
    const double xv = x[k];
    const double sv = s[k];
    double out;
    switch (a.kind) {
      case kUpdateEuler: {
        const double b = a.f * xv - a.g2 * sv;
        const double dw = z * a.sqrt_h;
        out = xv + (a.dt * b + a.g * dw);
        break;
      }
      case kUpdateAffine:
        out = a.p * xv + a.q * sv + a.r * (z * a.sqrt_h);
        break;
      case kUpdateAdd:
        out = xv + (a.q * sv + a.r * (z * a.sqrt_h));
        break;
      case kUpdateDdpm:
        out = (xv + a.q * sv) / a.p + a.r * (z * a.sqrt_h);
        break;
      default:
        out = xv + (epsilon * sv + sqrt(2.0 * epsilon) * z);
        break;
    }
    x[k] = out;
    RecordFailure(failure, a.report_step, j, i, out);
  }
}

__global__ void AxpbyKernel(int64_t count, double p, const double* x, double q, const double* s,
                            double* out) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count;
       k += int64_t{gridDim.x} * blockDim.x) {
    out[k] = p * x[k] + q * s[k];
  }
}

__global__ void StageSumKernel(int d, int n, const double* x, double c1, const double* k1,
                               double c2, const double* k2, double c3, const double* k3,
                               double c4, const double* k4, double* out, int64_t step,
                               FailureSink failure) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{d} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    double value = x[k] + c1 * k1[k];
    if (k2 != nullptr) value += c2 * k2[k];
    if (k3 != nullptr) value += c3 * k3[k];
    if (k4 != nullptr) value += c4 * k4[k];
    out[k] = value;
    RecordFailure(failure, step, static_cast<int>(k / d), static_cast<int>(k % d), value);
  }
}

__global__ void ColumnSquaredNormKernel(int d, int n, const double* s, double* out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  double sum = 0.0;
  for (int i = 0; i < d; ++i) sum += s[int64_t{j} * d + i] * s[int64_t{j} * d + i];
  out[j] = sum;
}

__global__ void DenoiseKernel(int d, int n, double sigma2, double alpha, const double* s,
                              double* x, int64_t step, FailureSink failure) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{d} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    const double value = (x[k] + sigma2 * s[k]) / alpha;
    x[k] = value;
    RecordFailure(failure, step, static_cast<int>(k / d), static_cast<int>(k % d), value);
  }
}

// ---- Random-number fills -----------------------------------------------------------------------

__global__ void PhiloxWordsKernel(NoiseKey key, uint64_t step, uint32_t substep,
                                  uint64_t first_sample, int64_t count, int blocks,
                                  uint32_t* out) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count * blocks;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t sample = k / blocks;
    const int block = static_cast<int>(k % blocks);
    const Words r = Philox(key, static_cast<uint32_t>(block), first_sample + sample, step, substep);
    for (int w = 0; w < 4; ++w) out[4 * k + w] = r.w[w];
  }
}

// kind 0 normal, 1 uniform, 2 Rademacher.
__global__ void FillKernel(int kind, NoiseKey key, uint64_t step, uint32_t substep,
                           uint64_t first_sample, int rows, int64_t cols, double* out) {
  const int pairs = (rows + 1) / 2;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{pairs} * cols;
       k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = k / pairs;
    const int pair = static_cast<int>(k % pairs);
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
}

// ---- Utilities ---------------------------------------------------------------------------------

__global__ void FillFloatKernel(float* data, int64_t count, float value) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count;
       k += int64_t{gridDim.x} * blockDim.x) {
    data[k] = value;
  }
}

__global__ void SetRowsKernel(float* data, int ld, int n, int rows_begin, int rows_end,
                              float value) {
  const int rows = rows_end - rows_begin;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < int64_t{rows} * n;
       k += int64_t{gridDim.x} * blockDim.x) {
    data[(k / rows) * ld + rows_begin + k % rows] = value;
  }
}

__global__ void FillU64Kernel(unsigned long long* data, int64_t count, unsigned long long value) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count;
       k += int64_t{gridDim.x} * blockDim.x) {
    data[k] = value;
  }
}

__global__ void UniformFloatsKernel(NoiseKey key, float* out, int64_t count) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < (count + 3) / 4;
       k += int64_t{gridDim.x} * blockDim.x) {
    const Words r = Philox(key, 0, static_cast<uint64_t>(k), 0, 0);
    for (int w = 0; w < 4 && 4 * k + w < count; ++w) {
      out[4 * k + w] = static_cast<float>(2.0 * OpenUniform(r.w[w], r.w[(w + 1) % 4]) - 1.0);
    }
  }
}

// Threads for an element-wise pass over rows × n with the float4 path when it applies.
int64_t ElementWork(int rows, int n) {
  return rows % 4 == 0 ? int64_t{rows / 4} * n : int64_t{rows} * n;
}

}  // namespace

// ---- Launchers ---------------------------------------------------------------------------------

void LaunchPhiloxWords(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                       int64_t count, int blocks, uint32_t* out, cudaStream_t stream) {
  PhiloxWordsKernel<<<Blocks(count * blocks), kThreads, 0, stream>>>(key, step, substep,
                                                                      first_sample, count, blocks,
                                                                      out);
}

void LaunchFillNormal(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                      int rows, int64_t cols, double* out, cudaStream_t stream) {
  FillKernel<<<Blocks(int64_t{(rows + 1) / 2} * cols), kThreads, 0, stream>>>(
      0, key, step, substep, first_sample, rows, cols, out);
}

void LaunchFillUniform(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                       int rows, int64_t cols, double* out, cudaStream_t stream) {
  FillKernel<<<Blocks(int64_t{(rows + 1) / 2} * cols), kThreads, 0, stream>>>(
      1, key, step, substep, first_sample, rows, cols, out);
}

void LaunchFillRademacher(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                          int rows, int64_t cols, double* out, cudaStream_t stream) {
  FillKernel<<<Blocks(int64_t{(rows + 1) / 2} * cols), kThreads, 0, stream>>>(
      2, key, step, substep, first_sample, rows, cols, out);
}

void LaunchNetworkInput(int d, int half, int n, const float* u, const float* tau,
                        const float* fourier, float* a0, int ld0, cudaStream_t stream) {
  NetworkInputKernel<<<Blocks(int64_t{d + half} * n), kThreads, 0, stream>>>(d, half, n, u, tau,
                                                                            fourier, a0, ld0);
}

void LaunchCopyRows(int rows, int n, const float* src, int ld_src, float* dst, int ld_dst,
                    cudaStream_t stream) {
  CopyRowsKernel<<<Blocks(int64_t{rows} * n), kThreads, 0, stream>>>(rows, n, src, ld_src, dst,
                                                                    ld_dst);
}

void LaunchSiluForward(int rows, int n, int ld, const float* z, const float* a_in, float* a_out,
                       cudaStream_t stream) {
  SiluForwardKernel<<<Blocks(ElementWork(rows, n)), kThreads, 0, stream>>>(
      rows, n, ld, SiluForwardOp{z, a_in, a_out});
}

void LaunchSiluTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                       const float* a_dot_in, float* a_dot_out, cudaStream_t stream) {
  SiluTangentKernel<<<Blocks(ElementWork(rows, n)), kThreads, 0, stream>>>(
      rows, n, ld, SiluTangentOp{z, z_dot, a_dot_in, a_dot_out});
}

void LaunchSiluBackward(int rows, int n, int ld, const float* z, const float* g_a, float* g_z,
                        cudaStream_t stream) {
  SiluBackwardKernel<<<Blocks(ElementWork(rows, n)), kThreads, 0, stream>>>(
      rows, n, ld, SiluBackwardOp{z, g_a, g_z});
}

void LaunchSiluBackwardTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                               const float* g_a, const float* g_a_dot, float* g_z,
                               float* g_z_dot, cudaStream_t stream) {
  SiluBackwardTangentKernel<<<Blocks(ElementWork(rows, n)), kThreads, 0, stream>>>(
      rows, n, ld, SiluBackwardTangentOp{z, z_dot, g_a, g_a_dot, g_z, g_z_dot});
}

void LaunchDrawSamples(SdeParams sde, ModelParams model, LossParams loss, NoiseKey key,
                       const TrainCounters* counters, int n, PerSample* out,
                       cudaStream_t stream) {
  DrawSamplesKernel<<<Blocks(n, 128), 128, 0, stream>>>(sde, model, loss, key, counters, n, out);
}

void LaunchPrepareTraining(NoiseKey key, const TrainCounters* counters, int d, int half, int n,
                           const PerSample* draws, const float* fourier, const double* x0,
                           double* x, double* z, float* a0, int ld0, int sliced, int rademacher,
                           double* v, float* a0_dot, cudaStream_t stream) {
  const int64_t work = int64_t{(d + 1) / 2 + half} * n;
  PrepareTrainingKernel<<<Blocks(work), kThreads, 0, stream>>>(key, counters, d, half, n, draws,
                                                               fourier, x0, x, z, a0, ld0, sliced,
                                                               rademacher, v, a0_dot);
}

void LaunchDenoisingLoss(int d, int n, double inv_batch, const PerSample* draws, const double* x,
                         const double* z, const float* output, double* loss, float* g,
                         cudaStream_t stream) {
  DenoisingLossKernel<<<Blocks(n, 128), 128, 0, stream>>>(d, n, inv_batch, draws, x, z, output,
                                                          loss, g);
}

void LaunchSlicedLoss(int d, int n, int variance_reduced, double inv_batch,
                      const PerSample* draws, const double* x, const double* v,
                      const float* output, const float* output_dot, double* loss, float* g,
                      float* g_dot, cudaStream_t stream) {
  SlicedLossKernel<<<Blocks(n, 128), 128, 0, stream>>>(d, n, variance_reduced, inv_batch, draws,
                                                       x, v, output, output_dot, loss, g, g_dot);
}

int ReductionPartials(int64_t n) {
  return static_cast<int>((n + kReduceChunk - 1) / kReduceChunk);
}

void LaunchSum(const double* values, int64_t n, double scale, double* partial, double* out,
               const TrainCounters* counters, int capacity, cudaStream_t stream) {
  LaunchReduction<double, false>(values, n, scale, partial, out, counters, capacity, stream);
}

void LaunchSumSquaresFloat(const float* values, int64_t n, double* partial, double* out,
                           const TrainCounters* counters, int capacity, cudaStream_t stream) {
  LaunchReduction<float, true>(values, n, 1.0, partial, out, counters, capacity, stream);
}

void LaunchPrepareUpdate(AdamParams adam, const double* norms, int capacity,
                         TrainCounters* counters, UpdateScalars* scalars, cudaStream_t stream) {
  PrepareUpdateKernel<<<1, 1, 0, stream>>>(adam, norms, capacity, counters, scalars);
}

void LaunchAdamEma(AdamParams adam, const UpdateScalars* scalars, int64_t count, float* params,
                   float* grad, float* m, float* v, float* ema, cudaStream_t stream) {
  AdamEmaKernel<<<Blocks(count), kThreads, 0, stream>>>(adam, scalars, count, params, grad, m, v,
                                                        ema);
}

void LaunchPrior(NoiseKey key, int d, int n, const int64_t* first_sample, double prior_std,
                 double* x, cudaStream_t stream) {
  PriorKernel<<<Blocks(int64_t{(d + 1) / 2} * n), kThreads, 0, stream>>>(key, d, n, first_sample,
                                                                       prior_std, x);
}

void LaunchAffineTransform(int d, int n, const double* m, const double* factor, const double* z,
                           double* x, cudaStream_t stream) {
  AffineTransformKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, m, factor, z, x);
}

void LaunchInferenceInput(int d, int embed, int n, double c_in, const double* x,
                          const float* embedding, float* a0, int ld0, cudaStream_t stream) {
  InferenceInputKernel<<<Blocks(int64_t{d + embed} * n), kThreads, 0, stream>>>(
      d, embed, n, c_in, x, embedding, a0, ld0);
}

void LaunchScoreFromOutput(int d, int n, double a, double b, const double* x, const float* output,
                           double* s, cudaStream_t stream) {
  ScoreFromOutputKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(int64_t{d} * n, a, b, x,
                                                                       output, s);
}

void LaunchGaussianScore(int d, int n, double alpha, double sigma2, const double* q,
                         const double* lambda, const double* mean, const double* x, double* w,
                         double* s, cudaStream_t stream) {
  GaussianProjectKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, alpha, sigma2, q,
                                                                       lambda, mean, x, w);
  GaussianExpandKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, q, w, s);
}

void LaunchUpdate(UpdateArgs args, int d, int n, const int64_t* first_sample, const double* s,
                  double* x, FailureSink failure, cudaStream_t stream) {
  UpdateKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(args, d, n, first_sample, s, x,
                                                              failure);
}

void LaunchAxpby(int d, int n, double p, const double* x, double q, const double* s, double* out,
                 cudaStream_t stream) {
  AxpbyKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(int64_t{d} * n, p, x, q, s, out);
}

void LaunchStageSum(int d, int n, const double* x, double c1, const double* k1, double c2,
                    const double* k2, double c3, const double* k3, double c4, const double* k4,
                    double* out, int64_t step, FailureSink failure, cudaStream_t stream) {
  StageSumKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, x, c1, k1, c2, k2, c3, k3,
                                                                c4, k4, out, step, failure);
}

void LaunchMeanSquaredNorm(int d, int n, const double* s, double* partial, double* out,
                           cudaStream_t stream) {
  // Column norms into partial[0..n), then their sum in a fixed order.
  double* norms = partial;
  double* block_partial = partial + n;
  ColumnSquaredNormKernel<<<Blocks(n, 128), 128, 0, stream>>>(d, n, s, norms);
  LaunchReduction<double, false>(norms, n, 1.0 / static_cast<double>(n), block_partial, out,
                                 nullptr, 1, stream);
}

void LaunchDenoise(int d, int n, double sigma2, double alpha, const double* s, double* x,
                   int64_t step, FailureSink failure, cudaStream_t stream) {
  DenoiseKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, sigma2, alpha, s, x, step,
                                                               failure);
}

void LaunchFillFloat(float* data, int64_t count, float value, cudaStream_t stream) {
  FillFloatKernel<<<Blocks(count), kThreads, 0, stream>>>(data, count, value);
}

void LaunchSetRows(float* data, int ld, int n, int rows_begin, int rows_end, float value,
                   cudaStream_t stream) {
  if (rows_end <= rows_begin) return;
  SetRowsKernel<<<Blocks(int64_t{rows_end - rows_begin} * n), kThreads, 0, stream>>>(
      data, ld, n, rows_begin, rows_end, value);
}

void LaunchUniformFloats(NoiseKey key, float* out, int64_t count, cudaStream_t stream) {
  UniformFloatsKernel<<<Blocks((count + 3) / 4), kThreads, 0, stream>>>(key, out, count);
}

void PreloadKernels() {
  const void* kernels[] = {
      reinterpret_cast<const void*>(&NetworkInputKernel),
      reinterpret_cast<const void*>(&CopyRowsKernel),
      reinterpret_cast<const void*>(&SiluForwardKernel),
      reinterpret_cast<const void*>(&SiluTangentKernel),
      reinterpret_cast<const void*>(&SiluBackwardKernel),
      reinterpret_cast<const void*>(&SiluBackwardTangentKernel),
      reinterpret_cast<const void*>(&DrawSamplesKernel),
      reinterpret_cast<const void*>(&PrepareTrainingKernel),
      reinterpret_cast<const void*>(&DenoisingLossKernel),
      reinterpret_cast<const void*>(&SlicedLossKernel),
      reinterpret_cast<const void*>(&PartialSumKernel<double, false>),
      reinterpret_cast<const void*>(&PartialSumKernel<float, true>),
      reinterpret_cast<const void*>(&FinalSumKernel),
      reinterpret_cast<const void*>(&PrepareUpdateKernel),
      reinterpret_cast<const void*>(&AdamEmaKernel),
      reinterpret_cast<const void*>(&PriorKernel),
      reinterpret_cast<const void*>(&InferenceInputKernel),
      reinterpret_cast<const void*>(&AffineTransformKernel),
      reinterpret_cast<const void*>(&ScoreFromOutputKernel),
      reinterpret_cast<const void*>(&GaussianProjectKernel),
      reinterpret_cast<const void*>(&GaussianExpandKernel),
      reinterpret_cast<const void*>(&UpdateKernel),
      reinterpret_cast<const void*>(&AxpbyKernel),
      reinterpret_cast<const void*>(&StageSumKernel),
      reinterpret_cast<const void*>(&ColumnSquaredNormKernel),
      reinterpret_cast<const void*>(&DenoiseKernel),
      reinterpret_cast<const void*>(&PhiloxWordsKernel),
      reinterpret_cast<const void*>(&FillKernel),
      reinterpret_cast<const void*>(&FillFloatKernel),
      reinterpret_cast<const void*>(&SetRowsKernel),
      reinterpret_cast<const void*>(&FillU64Kernel),
      reinterpret_cast<const void*>(&UniformFloatsKernel),
  };
  for (const void* kernel : kernels) {
    cudaFuncAttributes attributes;
    cudaFuncGetAttributes(&attributes, kernel);
  }
}

void LaunchFillU64(unsigned long long* data, int64_t count, unsigned long long value,
                   cudaStream_t stream) {
  FillU64Kernel<<<Blocks(count), kThreads, 0, stream>>>(data, count, value);
}

}  // namespace scoresde::internal::cuda
