// Device kernels of the CUDA backend, declared as plain launch functions so that the host code
// (compiled by the C++ compiler) needs only the CUDA runtime header. Every launcher enqueues on
// `stream` and returns; errors surface through CheckLaunch() in cuda_internal.hpp.
//
// Conventions shared with the CPU code (mlp_score.hpp, losses.hpp, optimizer.hpp, random.hpp):
// - Column-major d × n batches; float activations; double for per-sample coefficients, noise
//   and sampler states (the CPU keeps those in double too).
// - Layer l of the network is stored on the device as S_l, a column-major (in_pad × out) matrix
//   whose column o is [W(o, 0..in−1), b(o), 0 …]: nn.Linear's row-major W is W^T column-major,
//   and the bias rides in row `in`, so z = S_lᵀ [a; 1] is one GEMM and the bias gradient is the
//   row `in` of the weight-gradient GEMM (activation buffers carry a row of ones there).
// - Philox4x32-10 counters as sde/src/random_internal.hpp: key = (seed lo, seed hi), counter =
//   (block, sample, step, stream << 16 | substep); normals by Box–Muller on two 53-bit uniforms.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace scoresde::internal::cuda {

// ---- Plain parameter blocks (copied by value into kernels) -------------------------------------

enum SdeFamilyCode : int { kFamilyVe = 0, kFamilyVp = 1, kFamilySubVp = 2 };

struct SdeParams {
  int family = kFamilyVp;
  int ve_exact = 1;  // VE kernel: 1 exact (σ(t)² − σmin²), 0 reference (σ(t))
  double t_final = 1.0;
  double sigma_min = 0.01, sigma_max = 50.0, log_ratio = 0.0;  // VE
  double beta_min = 0.1, beta_max = 20.0;                       // VP, sub-VP
};

enum ParameterizationCode : int { kParamScore = 0, kParamNoise = 1, kParamDenoiser = 2 };

struct ModelParams {
  int parameterization = kParamNoise;
  double data_std = 1.0;
};

enum LossCode : int { kLossDsm = 0, kLossSsm = 1, kLossSsmVr = 2, kLossDdpm = 4, kLossNcsn = 5 };

struct LossParams {
  int kind = kLossDsm;
  int likelihood_weighting = 0;
  int importance = 0;
  int rademacher = 1;
  double eps = 1e-5;
  int num_scales = 1000;
  double phi_eps = 0.0, phi_t = 0.0;  // TimeSampler::Potential at ε and T (host-computed)
  const double* alpha_bar = nullptr;  // DDPM's ᾱ_i, num_scales entries (device)
};

// Per-example draw of a training step: time, kernel, weight, score coefficients, and τ rounded to
// float as MlpScore/ScoreMatchingLoss round it.
struct PerSample {
  double t, alpha, sigma, weight, a, b, c_in;
  float tau;
};

struct NoiseKey {
  uint64_t seed = 0;
  uint32_t stream = 0;
};

struct AdamParams {
  double learning_rate, beta1, beta2, epsilon, weight_decay;
  int decoupled;
  int64_t warmup_steps;
  double clip_norm, ema_decay;
};

// Scalars of one optimizer update, computed on the device from the step counter and the
// gradient norm exactly as AdamOptimizer::Step computes them on the host.
struct UpdateScalars {
  int skip;            // 1: a previous or this update's gradient was not finite
  int clip;            // 1: multiply the gradient by clip_coef
  float clip_coef;
  float step_size;     // η_k / (1 − β₁^k)
  float root_correction2;
  float shrink;        // 1 − η_k λ (decoupled decay)
  float ema_keep_new;  // 1 − min(decay, (1 + n)/(10 + n))
};

// Device counters of a trainer: updates done, EMA updates, first failed update (−1: none).
struct TrainCounters {
  int64_t step;
  int64_t ema_updates;
  int64_t failed_step;
};

// ---- Random numbers ----------------------------------------------------------------------------

// out[4 (k · blocks + b) + w] = word w of block b for sample first_sample + k.
void LaunchPhiloxWords(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                       int64_t count, int blocks, uint32_t* out, cudaStream_t stream);
// NoiseStream::FillNormal / FillUniform / FillRademacher into a rows × cols column-major array.
void LaunchFillNormal(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                      int rows, int64_t cols, double* out, cudaStream_t stream);
void LaunchFillUniform(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                       int rows, int64_t cols, double* out, cudaStream_t stream);
void LaunchFillRademacher(NoiseKey key, uint64_t step, uint32_t substep, uint64_t first_sample,
                          int rows, int64_t cols, double* out, cudaStream_t stream);

// ---- Network passes ----------------------------------------------------------------------------

// a0 (ld0 × n): rows 0..d−1 = u (d × n, column-major float), rows d..d+E−1 the Fourier
// embedding of τ_j (computed in double from float w and τ, then rounded, as the CPU does).
void LaunchNetworkInput(int d, int half, int n, const float* u, const float* tau,
                        const float* fourier, float* a0, int ld0, cudaStream_t stream);
// a0_dot rows 0..d−1 = u_dot; the embedding rows stay zero.
void LaunchCopyRows(int rows, int n, const float* src, int ld_src, float* dst, int ld_dst,
                    cudaStream_t stream);

// a_out = [a_in +] SiLU(z) over rows × n (ld for all three). a_in may be null (no residual).
void LaunchSiluForward(int rows, int n, int ld, const float* z, const float* a_in, float* a_out,
                       cudaStream_t stream);
// a_dot_out = [a_dot_in +] SiLU'(z) z_dot.
void LaunchSiluTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                       const float* a_dot_in, float* a_dot_out, cudaStream_t stream);
// g_z = g_a SiLU'(z).
void LaunchSiluBackward(int rows, int n, int ld, const float* z, const float* g_a, float* g_z,
                        cudaStream_t stream);
// g_z_dot = g_a_dot SiLU'(z); g_z = g_a SiLU'(z) + g_a_dot SiLU''(z) z_dot.
void LaunchSiluBackwardTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                               const float* g_a, const float* g_a_dot, float* g_z,
                               float* g_z_dot, cudaStream_t stream);

// ---- Training ----------------------------------------------------------------------------------

// Per-example time draws and coefficients at noise step counters->step (uniform from substep 0).
void LaunchDrawSamples(SdeParams sde, ModelParams model, LossParams loss, NoiseKey key,
                       const TrainCounters* counters, int n, PerSample* out, cudaStream_t stream);
// z ~ N(0, I) (substep 1), x = α x0 + σ z, a0 = [c_in x; embedding(τ)]; for sliced losses also
// v (substep 2, Rademacher or Gaussian) and a0_dot = [c_in v; 0].
void LaunchPrepareTraining(NoiseKey key, const TrainCounters* counters, int d, int half, int n,
                           const PerSample* draws, const float* fourier, const double* x0,
                           double* x, double* z, float* a0, int ld0, int sliced, int rademacher,
                           double* v, float* a0_dot, cudaStream_t stream);
// Denoising losses: per-example loss W/σ² ‖σ s + z‖² and g = 2 (W/σ) (1/B) b (σ s + z) (d × n).
void LaunchDenoisingLoss(int d, int n, double inv_batch, const PerSample* draws, const double* x,
                         const double* z, const float* output, double* loss, float* g,
                         cudaStream_t stream);
// Sliced losses (variance_reduced: ½‖s‖² instead of ½(vᵀs)²): per-example loss, g and g_dot.
void LaunchSlicedLoss(int d, int n, int variance_reduced, double inv_batch,
                      const PerSample* draws, const double* x, const double* v,
                      const float* output, const float* output_dot, double* loss, float* g,
                      float* g_dot, cudaStream_t stream);

// Deterministic sums (fixed blocking, fixed order): out[slot] = scale · Σ values, or for
// LaunchSumSquaresFloat out[slot] = sqrt(Σ values²) (the Euclidean norm, summed in double);
// slot = counters->step % capacity when counters is not null, else 0. `partial` holds at least
// ReductionPartials(n) doubles.
int ReductionPartials(int64_t n);
void LaunchSum(const double* values, int64_t n, double scale, double* partial, double* out,
               const TrainCounters* counters, int capacity, cudaStream_t stream);
void LaunchSumSquaresFloat(const float* values, int64_t n, double* partial, double* out,
                           const TrainCounters* counters, int capacity, cudaStream_t stream);

// Reads the gradient norm of this step from norms[step % capacity], fills *scalars and advances
// the counters (or records the failed update and skips it and every later one).
void LaunchPrepareUpdate(AdamParams adam, const double* norms, int capacity,
                         TrainCounters* counters, UpdateScalars* scalars, cudaStream_t stream);
// Clip, Adam/AdamW and EMA over `count` parameters, as AdamOptimizer<float>::Step.
void LaunchAdamEma(AdamParams adam, const UpdateScalars* scalars, int64_t count, float* params,
                   float* grad, float* m, float* v, float* ema, cudaStream_t stream);

// ---- Sampling ----------------------------------------------------------------------------------

// Where the first non-finite value of a run was seen: per sample the smallest (step, coordinate)
// packed as step << 32 | coordinate, plus a flag.
struct FailureSink {
  unsigned long long* per_sample;  // n entries, initialized to ~0
  int* any;
};

// x = prior_std · N(0, I) from (key, step 0, substep 0) for samples *first_sample + j.
void LaunchPrior(NoiseKey key, int d, int n, const int64_t* first_sample, double prior_std,
                 double* x, cudaStream_t stream);
// x = m + M z column by column (M d × d column-major): the exact prior's map of standard normals.
void LaunchAffineTransform(int d, int n, const double* m, const double* factor, const double* z,
                           double* x, cudaStream_t stream);
// a0 = [float(c_in x); e] with e (E floats, device) the same for every column.
void LaunchInferenceInput(int d, int embed, int n, double c_in, const double* x,
                          const float* embedding, float* a0, int ld0, cudaStream_t stream);
// s = a x + b F (F float d × n).
void LaunchScoreFromOutput(int d, int n, double a, double b, const double* x, const float* output,
                           double* s, cudaStream_t stream);
// Analytic Gaussian score s = −Q diag(1/(α²λ + σ²)) Qᵀ (x − α μ), in two passes through w.
void LaunchGaussianScore(int d, int n, double alpha, double sigma2, const double* q,
                         const double* lambda, const double* mean, const double* x, double* w,
                         double* s, cudaStream_t stream);

// One noisy update, written in the operation order of the CPU steppers (predictors.cpp,
// correctors.cpp) so that the two agree to a few double roundings per step:
//   kEuler          x ← x + (dt (f x − g2 s) + g dw)       Euler–Maruyama, reverse SDE
//   kAffine         x ← (p x + q s) + r dw                 reverse diffusion (p = 1 − drift)
//   kAdd            x ← x + (q s + r dw)                   NCSN ancestral step
//   kDdpm           x ← (x + q s)/p + r dw                 DDPM ancestral step
//   kLangevin       x ← x + (ε s + √(2ε) z),  ε = 2α r² d / expected[level]
//   kFixedLangevin  the same with ε = q                    annealed Langevin
// with dw = √h z and z from (key, step, substep) for sample *first_sample + j; has_noise = 0
// drops the noise term. Non-finite results are recorded in the failure sink at `step`.
enum UpdateKind : int { kUpdateEuler = 0, kUpdateAffine = 1, kUpdateAdd = 2, kUpdateDdpm = 3,
                        kUpdateLangevin = 4, kUpdateFixedLangevin = 5 };
struct UpdateArgs {
  int kind = kUpdateEuler;
  double p = 1.0, q = 0.0, r = 0.0;
  double dt = 0.0, f = 0.0, g2 = 0.0, g = 0.0, sqrt_h = 1.0;
  double langevin_alpha = 1.0, snr = 0.16;
  const double* expected = nullptr;
  int level = 0;
  int has_noise = 1;
  NoiseKey key;
  uint64_t noise_step = 0;   // the Philox step of z
  uint32_t substep = 0;
  int64_t report_step = 0;   // the sampler step reported on failure
};
void LaunchUpdate(UpdateArgs args, int d, int n, const int64_t* first_sample, const double* s,
                  double* x, FailureSink failure, cudaStream_t stream);
// out = p x + q s (the probability-flow derivative), and out = c0 x + Σ c_i k_i (stage sums; null
// k_i are skipped); failures are recorded for the final combination.
void LaunchAxpby(int d, int n, double p, const double* x, double q, const double* s, double* out,
                 cudaStream_t stream);
void LaunchStageSum(int d, int n, const double* x, double c1, const double* k1, double c2,
                    const double* k2, double c3, const double* k3, double c4, const double* k4,
                    double* out, int64_t step, FailureSink failure, cudaStream_t stream);
// *out = Σ_j ‖s_j‖² / n; partial holds n + ReductionPartials(n) doubles.
void LaunchMeanSquaredNorm(int d, int n, const double* s, double* partial, double* out,
                           cudaStream_t stream);
// Tweedie: x ← (x + σ² s)/α.
void LaunchDenoise(int d, int n, double sigma2, double alpha, const double* s, double* x,
                   int64_t step, FailureSink failure, cudaStream_t stream);

// ---- Utilities ---------------------------------------------------------------------------------

// Loads every kernel of this file (CUDA loads modules lazily; a first launch inside a graph
// capture would load it there). Idempotent.
void PreloadKernels();

void LaunchFillFloat(float* data, int64_t count, float value, cudaStream_t stream);
// rows rows_begin..rows_end−1 of every column (ld) set to value.
void LaunchSetRows(float* data, int ld, int n, int rows_begin, int rows_end, float value,
                   cudaStream_t stream);
// count floats uniform on (−1, 1) from (key, step 0, substep 0), sample = index / 4 (for timing
// on random data).
void LaunchUniformFloats(NoiseKey key, float* out, int64_t count, cudaStream_t stream);
void LaunchFillU64(unsigned long long* data, int64_t count, unsigned long long value,
                   cudaStream_t stream);

}  // namespace scoresde::internal::cuda
