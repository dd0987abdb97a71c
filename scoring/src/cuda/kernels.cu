// Device kernels of the CUDA backend: grid-stride loops around the host–device arithmetic of
// device_math.cuh (which the tests also run on the host). One translation unit keeps nvcc's share
// of the build small.
#include "kernels.cuh"

#include <cstdint>

#include "device_math.cuh"

namespace scoresde::internal::cuda {

namespace {

constexpr int kThreads = 256;

int Blocks(int64_t work, int threads = kThreads) {
  const int64_t blocks = (work + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

#define GRID_LOOP(k, count)                                                          \
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < (count); \
       k += int64_t{gridDim.x} * blockDim.x)

// ---- Random numbers ----------------------------------------------------------------------------

__global__ void PhiloxWordsKernel(NoiseKey key, uint64_t step, uint32_t substep,
                                  uint64_t first_sample, int64_t count, int blocks,
                                  uint32_t* out) {
  GRID_LOOP(k, count * blocks) {
    const Words r = Philox(key, static_cast<uint32_t>(k % blocks), first_sample + k / blocks,
                           step, substep);
    for (int w = 0; w < 4; ++w) out[4 * k + w] = r.w[w];
  }
}

__global__ void FillKernel(int kind, NoiseKey key, uint64_t step, uint32_t substep,
                           uint64_t first_sample, int rows, int64_t cols, double* out) {
  const int pairs = (rows + 1) / 2;
  GRID_LOOP(k, int64_t{pairs} * cols) {
    FillPair(kind, key, step, substep, first_sample, rows, k / pairs, static_cast<int>(k % pairs),
             out);
  }
}

__global__ void UniformFloatsKernel(NoiseKey key, float* out, int64_t count) {
  GRID_LOOP(k, (count + 3) / 4) {
    const Words r = Philox(key, 0, static_cast<uint64_t>(k), 0, 0);
    for (int w = 0; w < 4 && 4 * k + w < count; ++w) {
      out[4 * k + w] = static_cast<float>(2.0 * OpenUniform(r.w[w], r.w[(w + 1) % 4]) - 1.0);
    }
  }
}

// ---- Network -----------------------------------------------------------------------------------

__global__ void NetworkInputKernel(int d, int half, int n, const float* u, const float* tau,
                                   const float* fourier, float* a0, int ld0) {
  const int rows = d + half;
  GRID_LOOP(k, int64_t{rows} * n) {
    const int64_t j = k / rows;
    const int i = static_cast<int>(k % rows);
    float* col = a0 + j * ld0;
    if (i < d) {
      col[i] = u[j * d + i];
    } else {
      const int e = i - d;
      const double phase = kTwoPi * static_cast<double>(fourier[e]) * static_cast<double>(tau[j]);
      col[d + e] = static_cast<float>(sin(phase));
      col[d + half + e] = static_cast<float>(cos(phase));
    }
  }
}

__global__ void CopyRowsKernel(int rows, int n, const float* src, int ld_src, float* dst,
                               int ld_dst) {
  GRID_LOOP(k, int64_t{rows} * n) {
    const int64_t j = k / rows;
    const int i = static_cast<int>(k % rows);
    dst[j * ld_dst + i] = src[j * ld_src + i];
  }
}

// Four consecutive rows at a time (16-byte accesses) when rows is a multiple of 4.
template <int W>
struct Vec {
  float v[W];
  __device__ static Vec Load(const float* p) {
    Vec out;
    if constexpr (W == 4) {
      const float4 q = *reinterpret_cast<const float4*>(p);
      out.v[0] = q.x;
      out.v[1] = q.y;
      out.v[2] = q.z;
      out.v[3] = q.w;
    } else {
      out.v[0] = p[0];
    }
    return out;
  }
  __device__ void Store(float* p) const {
    if constexpr (W == 4) {
      *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      p[0] = v[0];
    }
  }
};

template <int W>
__global__ void SiluForwardKernel(int rows, int n, int ld, const float* z, const float* a_in,
                                  float* a_out) {
  GRID_LOOP(k, ElementWork(rows, n)) {
    const int64_t i = ElementIndex(k, rows, ld, W == 4);
    const Vec<W> zv = Vec<W>::Load(z + i);
    Vec<W> out;
    if (a_in != nullptr) {
      const Vec<W> av = Vec<W>::Load(a_in + i);
#pragma unroll
      for (int q = 0; q < W; ++q) out.v[q] = SiluForwardValue(zv.v[q], &av.v[q]);
    } else {
#pragma unroll
      for (int q = 0; q < W; ++q) out.v[q] = SiluForwardValue<float>(zv.v[q], nullptr);
    }
    out.Store(a_out + i);
  }
}

template <int W>
__global__ void SiluTangentKernel(int rows, int n, int ld, const float* z, const float* z_dot,
                                  const float* a_dot_in, float* a_dot_out) {
  GRID_LOOP(k, ElementWork(rows, n)) {
    const int64_t i = ElementIndex(k, rows, ld, W == 4);
    const Vec<W> zv = Vec<W>::Load(z + i);
    const Vec<W> zd = Vec<W>::Load(z_dot + i);
    Vec<W> out;
    if (a_dot_in != nullptr) {
      const Vec<W> ad = Vec<W>::Load(a_dot_in + i);
#pragma unroll
      for (int q = 0; q < W; ++q) out.v[q] = SiluTangentValue(zv.v[q], zd.v[q], &ad.v[q]);
    } else {
#pragma unroll
      for (int q = 0; q < W; ++q) out.v[q] = SiluTangentValue<float>(zv.v[q], zd.v[q], nullptr);
    }
    out.Store(a_dot_out + i);
  }
}

template <int W>
__global__ void SiluBackwardKernel(int rows, int n, int ld, const float* z, const float* g_a,
                                   float* g_z) {
  GRID_LOOP(k, ElementWork(rows, n)) {
    const int64_t i = ElementIndex(k, rows, ld, W == 4);
    const Vec<W> zv = Vec<W>::Load(z + i);
    const Vec<W> ga = Vec<W>::Load(g_a + i);
    Vec<W> out;
#pragma unroll
    for (int q = 0; q < W; ++q) out.v[q] = SiluBackwardValue(zv.v[q], ga.v[q]);
    out.Store(g_z + i);
  }
}

template <int W>
__global__ void SiluBackwardTangentKernel(int rows, int n, int ld, const float* z,
                                          const float* z_dot, const float* g_a,
                                          const float* g_a_dot, float* g_z, float* g_z_dot) {
  GRID_LOOP(k, ElementWork(rows, n)) {
    const int64_t i = ElementIndex(k, rows, ld, W == 4);
    const Vec<W> zv = Vec<W>::Load(z + i);
    const Vec<W> zd = Vec<W>::Load(z_dot + i);
    const Vec<W> ga = Vec<W>::Load(g_a + i);
    const Vec<W> gad = Vec<W>::Load(g_a_dot + i);
    Vec<W> gz, gzd;
#pragma unroll
    for (int q = 0; q < W; ++q) {
      SiluBackwardTangentValue(zv.v[q], zd.v[q], ga.v[q], gad.v[q], &gz.v[q], &gzd.v[q]);
    }
    gz.Store(g_z + i);
    gzd.Store(g_z_dot + i);
  }
}

// ---- Training ----------------------------------------------------------------------------------

__global__ void DrawSamplesKernel(SdeParams sde, ModelParams model, LossParams loss, NoiseKey key,
                                  const TrainCounters* counters, int n, PerSample* out) {
  const uint64_t step = static_cast<uint64_t>(counters->step);
  GRID_LOOP(j, n) { out[j] = DrawSample(sde, model, loss, key, step, static_cast<int>(j)); }
}

__global__ void PrepareTrainingKernel(NoiseKey key, const TrainCounters* counters, int d,
                                      int half, int n, const PerSample* draws,
                                      const float* fourier, const double* x0, double* x,
                                      double* z, float* a0, int ld0, int sliced, int rademacher,
                                      double* v, float* a0_dot) {
  const int items = (d + 1) / 2 + half;
  const uint64_t step = static_cast<uint64_t>(counters->step);
  GRID_LOOP(k, int64_t{items} * n) {
    const int j = static_cast<int>(k / items);
    PrepareTrainingItem(key, step, d, half, j, static_cast<int>(k % items), draws[j], fourier, x0,
                        x, z, a0, ld0, sliced, rademacher, v, a0_dot);
  }
}

__global__ void DenoisingLossKernel(int d, int n, double inv_batch, const PerSample* draws,
                                    const double* x, const double* z, const float* output,
                                    double* loss, float* g) {
  GRID_LOOP(j, n) {
    DenoisingLossExample(d, static_cast<int>(j), inv_batch, draws[j], x, z, output, loss, g);
  }
}

__global__ void SlicedLossKernel(int d, int n, int variance_reduced, double inv_batch,
                                 const PerSample* draws, const double* x, const double* v,
                                 const float* output, const float* output_dot, double* loss,
                                 float* g, float* g_dot) {
  GRID_LOOP(j, n) {
    SlicedLossExample(d, static_cast<int>(j), variance_reduced, inv_batch, draws[j], x, v, output,
                      output_dot, loss, g, g_dot);
  }
}

// ---- Deterministic reductions (blocking of device_math.cuh) ------------------------------------

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
                                    TrainCounters* counters, UpdateScalars<float>* out) {
  *out = PrepareUpdate<float>(adam, norms[counters->step % capacity], counters);
}

__global__ void AdamEmaKernel(AdamParams adam, const UpdateScalars<float>* scalars, int64_t count,
                              float* params, float* grad, float* m, float* v, float* ema) {
  const UpdateScalars<float> s = *scalars;
  if (s.skip) return;
  GRID_LOOP(i, count) { AdamEmaElement(adam, s, i, params, grad, m, v, ema); }
}

// ---- Sampling ----------------------------------------------------------------------------------

__global__ void ResetFailuresKernel(int n, FailureSink sink) {
  GRID_LOOP(j, n) {
    sink.per_sample[j] = ~0ull;
    if (j == 0) *sink.any = 0;
  }
}

__global__ void PriorKernel(NoiseKey key, int d, int n, const int64_t* first_sample,
                            double prior_std, double* x) {
  const int pairs = (d + 1) / 2;
  const int64_t first = *first_sample;
  GRID_LOOP(k, int64_t{pairs} * n) {
    PriorPair(key, d, first, k / pairs, static_cast<int>(k % pairs), prior_std, x);
  }
}

__global__ void AffineTransformKernel(int d, int n, const double* m, const double* factor,
                                      const double* z, double* x) {
  GRID_LOOP(k, int64_t{d} * n) { x[k] = AffineTransformElement(d, k, m, factor, z); }
}

__global__ void InferenceInputKernel(int d, int embed, int n, double c_in, const double* x,
                                     const float* embedding, float* a0, int ld0) {
  GRID_LOOP(k, int64_t{d + embed} * n) {
    int64_t index;
    const float value = InferenceInputElement(d, d + embed, k, c_in, x, embedding, &index, ld0);
    a0[index] = value;
  }
}

__global__ void ScoreFromOutputKernel(int64_t count, double a, double b, const double* x,
                                      const float* output, double* s) {
  GRID_LOOP(k, count) { s[k] = a * x[k] + b * static_cast<double>(output[k]); }
}

__global__ void GaussianProjectKernel(int d, int n, double alpha, double sigma2, const double* q,
                                      const double* lambda, const double* mean, const double* x,
                                      double* w) {
  GRID_LOOP(k, int64_t{d} * n) {
    w[k] = GaussianProjectElement(d, k, alpha, sigma2, q, lambda, mean, x);
  }
}

__global__ void GaussianExpandKernel(int d, int n, const double* q, const double* w, double* s) {
  GRID_LOOP(k, int64_t{d} * n) { s[k] = GaussianExpandElement(d, k, q, w); }
}

__global__ void UpdateKernel(UpdateArgs a, int d, int n, const int64_t* first_sample,
                             const double* s, double* x, FailureSink sink) {
  const int64_t first = *first_sample;
  const double epsilon = UpdateStepSize(a, d);
  GRID_LOOP(k, int64_t{d} * n) {
    const double out = UpdateElement(a, epsilon, d, first, k, x[k], s[k]);
    x[k] = out;
    RecordFailure(sink, a.report_step, k / d, static_cast<int>(k % d), out);
  }
}

__global__ void AxpbyKernel(int64_t count, double p, const double* x, double q, const double* s,
                            double* out) {
  GRID_LOOP(k, count) { out[k] = p * x[k] + q * s[k]; }
}

__global__ void StageSumKernel(int d, int n, const double* x, double c1, const double* k1,
                               double c2, const double* k2, double c3, const double* k3,
                               double c4, const double* k4, double* out, int64_t step,
                               FailureSink sink) {
  GRID_LOOP(k, int64_t{d} * n) {
    double value = x[k] + c1 * k1[k];
    if (k2 != nullptr) value += c2 * k2[k];
    if (k3 != nullptr) value += c3 * k3[k];
    if (k4 != nullptr) value += c4 * k4[k];
    out[k] = value;
    RecordFailure(sink, step, k / d, static_cast<int>(k % d), value);
  }
}

__global__ void ColumnSquaredNormKernel(int d, int n, const double* s, double* out) {
  GRID_LOOP(j, n) {
    double sum = 0.0;
    for (int i = 0; i < d; ++i) sum += s[j * d + i] * s[j * d + i];
    out[j] = sum;
  }
}

__global__ void DenoiseKernel(int d, int n, double sigma2, double alpha, const double* s,
                              double* x, int64_t step, FailureSink sink) {
  GRID_LOOP(k, int64_t{d} * n) {
    const double value = (x[k] + sigma2 * s[k]) / alpha;
    x[k] = value;
    RecordFailure(sink, step, k / d, static_cast<int>(k % d), value);
  }
}

// ---- Utilities ---------------------------------------------------------------------------------

__global__ void SetRowsKernel(float* data, int ld, int n, int rows_begin, int rows_end,
                              float value) {
  const int rows = rows_end - rows_begin;
  GRID_LOOP(k, int64_t{rows} * n) { data[(k / rows) * ld + rows_begin + k % rows] = value; }
}

}  // namespace

// ---- Launchers ---------------------------------------------------------------------------------

void LaunchPhiloxWords(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                       int64_t count, int blocks, uint32_t* out, cudaStream_t stream) {
  PhiloxWordsKernel<<<Blocks(count * blocks), kThreads, 0, stream>>>(key, step, substep,
                                                                      first_sample, count, blocks,
                                                                      out);
}

void LaunchFill(int kind, NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                int rows, int64_t cols, double* out, cudaStream_t stream) {
  FillKernel<<<Blocks(int64_t{(rows + 1) / 2} * cols), kThreads, 0, stream>>>(
      kind, key, step, substep, first_sample, rows, cols, out);
}

void LaunchUniformFloats(NoiseKey key, float* out, int64_t count, cudaStream_t stream) {
  UniformFloatsKernel<<<Blocks((count + 3) / 4), kThreads, 0, stream>>>(key, out, count);
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
  const int blocks = Blocks(ElementWork(rows, n));
  if (rows % 4 == 0) {
    SiluForwardKernel<4><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, a_in, a_out);
  } else {
    SiluForwardKernel<1><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, a_in, a_out);
  }
}

void LaunchSiluTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                       const float* a_dot_in, float* a_dot_out, cudaStream_t stream) {
  const int blocks = Blocks(ElementWork(rows, n));
  if (rows % 4 == 0) {
    SiluTangentKernel<4><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, z_dot, a_dot_in,
                                                          a_dot_out);
  } else {
    SiluTangentKernel<1><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, z_dot, a_dot_in,
                                                          a_dot_out);
  }
}

void LaunchSiluBackward(int rows, int n, int ld, const float* z, const float* g_a, float* g_z,
                        cudaStream_t stream) {
  const int blocks = Blocks(ElementWork(rows, n));
  if (rows % 4 == 0) {
    SiluBackwardKernel<4><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, g_a, g_z);
  } else {
    SiluBackwardKernel<1><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, g_a, g_z);
  }
}

void LaunchSiluBackwardTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                               const float* g_a, const float* g_a_dot, float* g_z,
                               float* g_z_dot, cudaStream_t stream) {
  const int blocks = Blocks(ElementWork(rows, n));
  if (rows % 4 == 0) {
    SiluBackwardTangentKernel<4><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, z_dot, g_a,
                                                                  g_a_dot, g_z, g_z_dot);
  } else {
    SiluBackwardTangentKernel<1><<<blocks, kThreads, 0, stream>>>(rows, n, ld, z, z_dot, g_a,
                                                                  g_a_dot, g_z, g_z_dot);
  }
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

void LaunchNorm(const float* values, int64_t n, double* partial, double* out,
                const TrainCounters* counters, int capacity, cudaStream_t stream) {
  LaunchReduction<float, true>(values, n, 1.0, partial, out, counters, capacity, stream);
}

void LaunchPrepareUpdate(AdamParams adam, const double* norms, int capacity,
                         TrainCounters* counters, UpdateScalars<float>* scalars,
                         cudaStream_t stream) {
  PrepareUpdateKernel<<<1, 1, 0, stream>>>(adam, norms, capacity, counters, scalars);
}

void LaunchAdamEma(AdamParams adam, const UpdateScalars<float>* scalars, int64_t count,
                   float* params, float* grad, float* m, float* v, float* ema,
                   cudaStream_t stream) {
  AdamEmaKernel<<<Blocks(count), kThreads, 0, stream>>>(adam, scalars, count, params, grad, m, v,
                                                        ema);
}

void LaunchResetFailures(int n, FailureSink sink, cudaStream_t stream) {
  ResetFailuresKernel<<<Blocks(n), kThreads, 0, stream>>>(n, sink);
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
                  double* x, FailureSink sink, cudaStream_t stream) {
  UpdateKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(args, d, n, first_sample, s, x,
                                                              sink);
}

void LaunchAxpby(int d, int n, double p, const double* x, double q, const double* s, double* out,
                 cudaStream_t stream) {
  AxpbyKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(int64_t{d} * n, p, x, q, s, out);
}

void LaunchStageSum(int d, int n, const double* x, double c1, const double* k1, double c2,
                    const double* k2, double c3, const double* k3, double c4, const double* k4,
                    double* out, int64_t step, FailureSink sink, cudaStream_t stream) {
  StageSumKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, x, c1, k1, c2, k2, c3, k3,
                                                                c4, k4, out, step, sink);
}

void LaunchMeanSquaredNorm(int d, int n, const double* s, double* partial, double* out,
                           cudaStream_t stream) {
  // Column norms into partial[0..n), then their sum in a fixed order.
  ColumnSquaredNormKernel<<<Blocks(n, 128), 128, 0, stream>>>(d, n, s, partial);
  LaunchReduction<double, false>(partial, n, 1.0 / static_cast<double>(n), partial + n, out,
                                 nullptr, 1, stream);
}

void LaunchDenoise(int d, int n, double sigma2, double alpha, const double* s, double* x,
                   int64_t step, FailureSink sink, cudaStream_t stream) {
  DenoiseKernel<<<Blocks(int64_t{d} * n), kThreads, 0, stream>>>(d, n, sigma2, alpha, s, x, step,
                                                               sink);
}

void LaunchSetRows(float* data, int ld, int n, int rows_begin, int rows_end, float value,
                   cudaStream_t stream) {
  if (rows_end <= rows_begin) return;
  SetRowsKernel<<<Blocks(int64_t{rows_end - rows_begin} * n), kThreads, 0, stream>>>(
      data, ld, n, rows_begin, rows_end, value);
}

void PreloadKernels() {
  const void* kernels[] = {
      reinterpret_cast<const void*>(&PhiloxWordsKernel),
      reinterpret_cast<const void*>(&FillKernel),
      reinterpret_cast<const void*>(&UniformFloatsKernel),
      reinterpret_cast<const void*>(&NetworkInputKernel),
      reinterpret_cast<const void*>(&CopyRowsKernel),
      reinterpret_cast<const void*>(&SiluForwardKernel<1>),
      reinterpret_cast<const void*>(&SiluForwardKernel<4>),
      reinterpret_cast<const void*>(&SiluTangentKernel<1>),
      reinterpret_cast<const void*>(&SiluTangentKernel<4>),
      reinterpret_cast<const void*>(&SiluBackwardKernel<1>),
      reinterpret_cast<const void*>(&SiluBackwardKernel<4>),
      reinterpret_cast<const void*>(&SiluBackwardTangentKernel<1>),
      reinterpret_cast<const void*>(&SiluBackwardTangentKernel<4>),
      reinterpret_cast<const void*>(&DrawSamplesKernel),
      reinterpret_cast<const void*>(&PrepareTrainingKernel),
      reinterpret_cast<const void*>(&DenoisingLossKernel),
      reinterpret_cast<const void*>(&SlicedLossKernel),
      reinterpret_cast<const void*>(&PartialSumKernel<double, false>),
      reinterpret_cast<const void*>(&PartialSumKernel<float, true>),
      reinterpret_cast<const void*>(&FinalSumKernel),
      reinterpret_cast<const void*>(&PrepareUpdateKernel),
      reinterpret_cast<const void*>(&AdamEmaKernel),
      reinterpret_cast<const void*>(&ResetFailuresKernel),
      reinterpret_cast<const void*>(&PriorKernel),
      reinterpret_cast<const void*>(&AffineTransformKernel),
      reinterpret_cast<const void*>(&InferenceInputKernel),
      reinterpret_cast<const void*>(&ScoreFromOutputKernel),
      reinterpret_cast<const void*>(&GaussianProjectKernel),
      reinterpret_cast<const void*>(&GaussianExpandKernel),
      reinterpret_cast<const void*>(&UpdateKernel),
      reinterpret_cast<const void*>(&AxpbyKernel),
      reinterpret_cast<const void*>(&StageSumKernel),
      reinterpret_cast<const void*>(&ColumnSquaredNormKernel),
      reinterpret_cast<const void*>(&DenoiseKernel),
      reinterpret_cast<const void*>(&SetRowsKernel),
  };
  for (const void* kernel : kernels) {
    cudaFuncAttributes attributes;
    cudaFuncGetAttributes(&attributes, kernel);
  }
  cudaGetLastError();
}

}  // namespace scoresde::internal::cuda
