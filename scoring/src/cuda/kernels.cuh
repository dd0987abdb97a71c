// Launchers of the CUDA backend's kernels (kernels.cu), as plain functions so that the host code
// (compiled by the C++ compiler) needs only the CUDA runtime header. Every launcher enqueues on
// `stream` and returns; errors surface through CheckLaunch() in cuda_internal.hpp. The arithmetic
// of each kernel is the host–device function of device_math.cuh named in its comment; the types
// and conventions are in device_types.hpp.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "device_types.hpp"

namespace scoresde::internal::cuda {

// ---- Random numbers (Philox, FillPair) ---------------------------------------------------------

// out[4 (k · blocks + b) + w] = word w of block b for sample first_sample + k.
void LaunchPhiloxWords(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                       int64_t count, int blocks, uint32_t* out, cudaStream_t stream);
// NoiseStream::FillNormal (kind 0) / FillUniform (1) / FillRademacher (2) into a rows × cols
// column-major array.
void LaunchFill(int kind, NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                int rows, int64_t cols, double* out, cudaStream_t stream);
// count floats uniform on (−1, 1) (for timing on random data).
void LaunchUniformFloats(NoiseKey key, float* out, int64_t count, cudaStream_t stream);

// ---- Network (network_passes.hpp's element-wise operations) ------------------------------------

// a0 (ld0 × n): rows 0..d−1 = u (d × n float), rows d..d+E−1 the Fourier embedding of τ_j.
void LaunchNetworkInput(int d, int half, int n, const float* u, const float* tau,
                        const float* fourier, float* a0, int ld0, cudaStream_t stream);
void LaunchCopyRows(int rows, int n, const float* src, int ld_src, float* dst, int ld_dst,
                    cudaStream_t stream);
void LaunchSiluForward(int rows, int n, int ld, const float* z, const float* a_in, float* a_out,
                       cudaStream_t stream);
void LaunchSiluTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                       const float* a_dot_in, float* a_dot_out, cudaStream_t stream);
void LaunchSiluBackward(int rows, int n, int ld, const float* z, const float* g_a, float* g_z,
                        cudaStream_t stream);
void LaunchSiluBackwardTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                               const float* g_a, const float* g_a_dot, float* g_z,
                               float* g_z_dot, cudaStream_t stream);

// ---- Training (train_step.hpp's operations) ----------------------------------------------------

void LaunchDrawSamples(SdeParams sde, ModelParams model, LossParams loss, NoiseKey key,
                       const TrainCounters* counters, int n, PerSample* out, cudaStream_t stream);
void LaunchPrepareTraining(NoiseKey key, const TrainCounters* counters, int d, int half, int n,
                           const PerSample* draws, const float* fourier, const double* x0,
                           double* x, double* z, float* a0, int ld0, int sliced, int rademacher,
                           double* v, float* a0_dot, cudaStream_t stream);
void LaunchDenoisingLoss(int d, int n, double inv_batch, const PerSample* draws, const double* x,
                         const double* z, const float* output, double* loss, float* g,
                         cudaStream_t stream);
void LaunchSlicedLoss(int d, int n, int variance_reduced, double inv_batch,
                      const PerSample* draws, const double* x, const double* v,
                      const float* output, const float* output_dot, double* loss, float* g,
                      float* g_dot, cudaStream_t stream);
// Deterministic sums with the fixed blocking of device_math.cuh: out[slot] = scale · Σ values, or
// for LaunchNorm out[slot] = sqrt(Σ values²) (summed in double); slot = counters->step % capacity
// when counters is not null, else 0. `partial` holds ReductionPartials(n) doubles.
int ReductionPartials(int64_t n);
void LaunchSum(const double* values, int64_t n, double scale, double* partial, double* out,
               const TrainCounters* counters, int capacity, cudaStream_t stream);
void LaunchNorm(const float* values, int64_t n, double* partial, double* out,
                const TrainCounters* counters, int capacity, cudaStream_t stream);
void LaunchPrepareUpdate(AdamParams adam, const double* norms, int capacity,
                         TrainCounters* counters, UpdateScalars<float>* scalars,
                         cudaStream_t stream);
void LaunchAdamEma(AdamParams adam, const UpdateScalars<float>* scalars, int64_t count,
                   float* params, float* grad, float* m, float* v, float* ema,
                   cudaStream_t stream);

// ---- Sampling (sampler_plan.hpp's operations) --------------------------------------------------

void LaunchResetFailures(int n, FailureSink sink, cudaStream_t stream);
void LaunchPrior(NoiseKey key, int d, int n, const int64_t* first_sample, double prior_std,
                 double* x, cudaStream_t stream);
void LaunchAffineTransform(int d, int n, const double* m, const double* factor, const double* z,
                           double* x, cudaStream_t stream);
void LaunchInferenceInput(int d, int embed, int n, double c_in, const double* x,
                          const float* embedding, float* a0, int ld0, cudaStream_t stream);
void LaunchScoreFromOutput(int d, int n, double a, double b, const double* x, const float* output,
                           double* s, cudaStream_t stream);
// w is d × n scratch.
void LaunchGaussianScore(int d, int n, double alpha, double sigma2, const double* q,
                         const double* lambda, const double* mean, const double* x, double* w,
                         double* s, cudaStream_t stream);
void LaunchUpdate(UpdateArgs args, int d, int n, const int64_t* first_sample, const double* s,
                  double* x, FailureSink sink, cudaStream_t stream);
void LaunchAxpby(int d, int n, double p, const double* x, double q, const double* s, double* out,
                 cudaStream_t stream);
void LaunchStageSum(int d, int n, const double* x, double c1, const double* k1, double c2,
                    const double* k2, double c3, const double* k3, double c4, const double* k4,
                    double* out, int64_t step, FailureSink sink, cudaStream_t stream);
// *out = Σ_j ‖s_j‖² / n; partial holds n + ReductionPartials(n) doubles.
void LaunchMeanSquaredNorm(int d, int n, const double* s, double* partial, double* out,
                           cudaStream_t stream);
void LaunchDenoise(int d, int n, double sigma2, double alpha, const double* s, double* x,
                   int64_t step, FailureSink sink, cudaStream_t stream);

// ---- Utilities ---------------------------------------------------------------------------------

// rows rows_begin..rows_end−1 of every column (ld) set to value.
void LaunchSetRows(float* data, int ld, int n, int rows_begin, int rows_end, float value,
                   cudaStream_t stream);
// Loads every kernel of kernels.cu (CUDA loads modules lazily; a first launch inside a graph
// capture would load it there). Idempotent.
void PreloadKernels();

}  // namespace scoresde::internal::cuda
