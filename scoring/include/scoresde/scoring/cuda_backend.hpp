// The CUDA backend: the MLP score model (mlp_score.hpp), its training objectives (losses.hpp) and
// optimizer (optimizer.hpp), and the reverse-time samplers, on one NVIDIA GPU, computing what the
// CPU code computes.
//
// What runs where. The network runs in float32: every layer is one cuBLAS GEMM z = S_lᵀ[a; 1]
// (nn.Linear's row-major W is column-major Wᵀ; the bias is a row of S_l, so z = W a + b is one
// product and the bias gradient is one row of the weight-gradient product), followed by one fused
// element-wise kernel (bias-free SiLU, residual, and in the reverse passes SiLU' and SiLU''). The
// Fourier embedding, the per-example time draws and score coefficients (a, b, c_in, τ of
// ComputeScoreCoefficients), the perturbation x = α x_0 + σ z, the loss and its output gradient,
// the global gradient norm, clipping, Adam/AdamW with warm-up and the EMA are fused kernels; the
// per-example and sampler arithmetic is in double, as on the CPU. A training step and a whole
// sampling run are captured once into CUDA graphs (CudaOptions::use_graphs) and replayed.
//
// Random numbers are the CPU's: Philox4x32-10 with the counter layout of random.hpp, drawn on the
// device. The 32-bit words are equal bit for bit; uniforms and Rademacher signs are exact
// functions of the words and equal bit for bit too; normals (Box–Muller in double) differ from
// the CPU's by the accuracy of the math libraries' log, sin and cos (CUDA: ≤ 1, 2, 2 ulp; glibc:
// < 1 ulp each), so |Δz| ≤ 8 ulp(z) (derivation in docs/gpu.md).
//
// Precision. CudaMath::kPedanticFp32 (default) forces cuBLAS to IEEE float32 (no TF32, no
// reduced-precision reductions): results then agree with the CPU float32 network within the
// float32 rounding bounds derived in docs/gpu.md. kFp32 is cuBLAS's default float32 mode (what
// PyTorch uses with allow_tf32 = False); kTf32 lets GEMMs round their inputs to TF32 (10-bit
// mantissa; PyTorch's allow_tf32 = True) and is only for speed.
//
// Determinism. Reductions use fixed blockings (no atomics), so a run is bit-for-bit repeatable on
// the same GPU model with the same CUDA libraries. Sampling evaluates the network on fixed-width
// chunks (chunk_size columns; the last one padded), so sample j's result does not depend on how
// many samples are drawn or which share its chunk; it may change with chunk_size (cuBLAS picks its
// kernels, hence its summation order, by shape) and between GPU models.
//
// Availability. When the library was built without CUDA, or no device is present, every
// constructor below throws Error with the reason; CudaAvailable() says so beforehand.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "scoresde/scoring/losses.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/scoring/optimizer.hpp"
#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

namespace internal {
class CudaMlpImpl;
class CudaTrainerImpl;
class CudaSamplerImpl;
}  // namespace internal

// ---- Devices and options -------------------------------------------------------------------------

struct CudaDeviceInfo {
  bool built_with_cuda = false;
  bool available = false;  // built with CUDA and the device answered
  std::string reason;      // why not, when !available
  int device = 0;
  std::string name;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  int multiprocessors = 0;
  int64_t global_memory_bytes = 0;
  int64_t l2_cache_bytes = 0;
  int driver_version = 0;   // CUDA driver API version (e.g. 13000)
  int runtime_version = 0;  // CUDA runtime linked in
  int cublas_version = 0;
};

// Never throws: a build without CUDA or a missing device is reported in the result.
CudaDeviceInfo QueryCudaDevice(int device = 0);
// QueryCudaDevice(device).available.
bool CudaAvailable(int device = 0);

enum class CudaMath { kPedanticFp32, kFp32, kTf32 };
// "pedantic-fp32", "fp32", "tf32".
std::string_view ToString(CudaMath math);
// Throws InvalidArgument naming `math` otherwise.
CudaMath ParseCudaMath(std::string_view name);

struct CudaOptions {
  int device = 0;
  CudaMath math = CudaMath::kPedanticFp32;
  bool use_graphs = true;  // capture training steps and sampling runs into CUDA graphs
  // Throws InvalidArgument: device in [0, 64).
  void Validate() const;
};

// ---- Random numbers --------------------------------------------------------------------------------

// The device's NoiseStream: the same values as noise.FillNormal / FillUniform / FillRademacher
// (step, substep, first_sample) on a rows × cols batch (see the accuracy statement above). Throws
// InvalidArgument for rows < 1, cols < 1, indices beyond 32 bits or substep ≥ 2^16; Error when no
// device can be used.
Matrix CudaFillNormal(const NoiseStream& noise, uint64_t step, uint32_t substep,
                      int64_t first_sample, int rows, int64_t cols,
                      const CudaOptions& options = {});
Matrix CudaFillUniform(const NoiseStream& noise, uint64_t step, uint32_t substep,
                       int64_t first_sample, int rows, int64_t cols,
                       const CudaOptions& options = {});
Matrix CudaFillRademacher(const NoiseStream& noise, uint64_t step, uint32_t substep,
                          int64_t first_sample, int rows, int64_t cols,
                          const CudaOptions& options = {});
// The raw Philox words of NoiseStream::Raw for samples first_sample … first_sample + count − 1 and
// blocks 0 … blocks − 1: entry [k · blocks + b].
std::vector<std::array<uint32_t, 4>> CudaPhiloxWords(const NoiseStream& noise, uint64_t step,
                                                     uint32_t substep, int64_t first_sample,
                                                     int64_t count, int blocks,
                                                     const CudaOptions& options = {});

// ---- The network -------------------------------------------------------------------------------

// A device copy of an MlpNetwork<float>, with the passes of MlpNetwork on host matrices (each call
// uploads its inputs and downloads its results; for tests, tools and interoperation — training
// and sampling keep everything on the device). Not thread-safe (one workspace per object).
class CudaMlp {
 public:
  // Throws InvalidArgument for invalid options, Error when no device can be used.
  explicit CudaMlp(const MlpNetwork<float>& network, const CudaOptions& options = {});
  ~CudaMlp();
  CudaMlp(CudaMlp&&) noexcept;
  CudaMlp& operator=(CudaMlp&&) noexcept;

  const MlpConfig& config() const;
  int64_t num_parameters() const;
  // The trainable vector in the layout of MlpNetwork::parameters().
  Eigen::VectorXf Parameters() const;
  // Throws InvalidArgument unless parameters has num_parameters() finite entries.
  void SetParameters(const Eigen::VectorXf& parameters);

  // F(u, τ): u is d × n, tau has n entries (n ≥ 1); returns d × n. Throws InvalidArgument on
  // shapes or non-finite inputs.
  Eigen::MatrixXf Forward(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau) const;
  // F and Ḟ = J_F u̇ (u_dot d × n).
  void ForwardTangent(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau,
                      const Eigen::MatrixXf& u_dot, Eigen::MatrixXf* output,
                      Eigen::MatrixXf* output_dot) const;
  // ∂/∂θ Σ_j g(:, j)ᵀ F(:, j) (num_parameters() entries, MlpNetwork layout); g is d × n.
  Eigen::VectorXf Gradient(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau,
                           const Eigen::MatrixXf& g) const;
  // ∂/∂θ Σ_j [g(:, j)ᵀ F(:, j) + g_dot(:, j)ᵀ Ḟ(:, j)] with Ḟ = J_F u_dot.
  Eigen::VectorXf GradientWithTangent(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau,
                                      const Eigen::MatrixXf& u_dot, const Eigen::MatrixXf& g,
                                      const Eigen::MatrixXf& g_dot) const;

 private:
  std::unique_ptr<internal::CudaMlpImpl> impl_;
};

// ---- Training ----------------------------------------------------------------------------------

struct CudaTrainerOptions {
  int64_t batch_size = 128;  // B ≥ 1 examples per step
  uint64_t seed = 0;         // NoiseStream(seed, Stream::kTraining) for the loss draws
  int history = 1024;        // steps that may be enqueued between Wait() calls (≥ 1)
  // Throws InvalidArgument naming the bad field.
  void Validate() const;
};

// What one update did: the mean per-example loss of the batch (ScoreMatchingLoss::Block's sum
// over the batch / B) and the gradient norm before clipping (AdamOptimizer::Step's return).
struct CudaStepRecord {
  int64_t step = 0;  // the update's index k = 1, 2, …
  double loss = 0.0;
  double grad_norm = 0.0;
};

// One optimizer update per batch, entirely on the device, equal in exact arithmetic to
//   loss.Block(network, x0, 0, B, k − 1, NoiseStream(seed, kTraining), ws, grad)   (grad = 0)
//   optimizer.Step(params, grad)                                                   (k-th update)
// on the CPU, i.e. noise step k − 1 = updates done before. Supported losses: dsm (σ² or g²
// weights, importance sampling), ssm, ssm-vr (Rademacher or Gaussian projections), ddpm, ncsn;
// esm (d tangent passes) is CPU-only.
class CudaTrainer {
 public:
  // initial: the starting network (and the EMA's start). Throws InvalidArgument for invalid
  // options, dims that differ, kEsm, or ddpm/ncsn without their SDE; Error without a device.
  CudaTrainer(const MlpNetwork<float>& initial, std::shared_ptr<const ScalarAffineSde> sde,
              const LossOptions& loss, const AdamOptions& adam, const CudaTrainerOptions& options,
              const CudaOptions& cuda = {});
  ~CudaTrainer();
  CudaTrainer(CudaTrainer&&) noexcept;
  CudaTrainer& operator=(CudaTrainer&&) noexcept;

  // Enqueues the next update on x0 (d × batch_size, finite; copied before returning) and returns
  // without waiting for the device. Throws InvalidArgument on shapes or non-finite data.
  void Enqueue(ConstBatchRef x0);
  // Waits for the enqueued updates and returns their records. Throws NumericalFailure (step = the
  // update's index) if a gradient was not finite; that update and every later one were skipped
  // and the trainer stays at the last good state.
  std::vector<CudaStepRecord> Wait();
  // Enqueue + Wait.
  CudaStepRecord Step(ConstBatchRef x0);

  int64_t step() const;  // updates enqueued so far (plus the restored step)
  int64_t ema_updates() const;
  const MlpConfig& config() const;
  // Device state, downloaded (each waits for the enqueued work).
  Eigen::VectorXf Parameters() const;
  Eigen::VectorXf Average() const;  // EMA
  Eigen::VectorXf FirstMoment() const;
  Eigen::VectorXf SecondMoment() const;
  // The network with the current (or EMA) weights and the initial Fourier weights.
  MlpNetwork<float> Network(bool use_average = false) const;
  // Restores a saved state (checkpoint resume), as AdamOptimizer::Restore plus the parameters.
  // Throws InvalidArgument on sizes or non-finite values.
  void Restore(int64_t step, const Eigen::VectorXf& parameters, const Eigen::VectorXf& m,
               const Eigen::VectorXf& v, const Eigen::VectorXf& average, int64_t ema_updates);

 private:
  std::unique_ptr<internal::CudaTrainerImpl> impl_;
};

// ---- Sampling ----------------------------------------------------------------------------------

enum class CudaPredictor { kEulerMaruyama, kReverseDiffusion, kAncestral, kNone };
enum class CudaCorrector { kNone, kLangevin, kAnnealedLangevin };
enum class CudaFlowMethod { kEuler, kHeun, kRk4 };
// Where x_T comes from: the SDE's prior N(0, PriorStd()² I) (kStandard), or the exact marginal p_T
// of the Gaussian score's p_0 (kExact, as the CLI's --prior exact; Gaussian score only). Both draw
// standard normals from Stream::kPrior at step 0, substep 0; kExact maps them through
// α_T μ + Q diag(sqrt(α_T² λ + σ_T²)) z.
enum class CudaPrior { kStandard, kExact };
// Command-line names as the CPU samplers': euler-maruyama, reverse-diffusion, ancestral, none;
// langevin, annealed-langevin, none; euler, heun, rk4. Parse* throw InvalidArgument listing them.
std::string_view ToString(CudaPredictor predictor);
std::string_view ToString(CudaCorrector corrector);
std::string_view ToString(CudaFlowMethod method);
std::string_view ToString(CudaPrior prior);  // "standard", "exact"
CudaPrior ParseCudaPrior(std::string_view name);
CudaPredictor ParseCudaPredictor(std::string_view name);
CudaCorrector ParseCudaCorrector(std::string_view name);
CudaFlowMethod ParseCudaFlowMethod(std::string_view name);

// Predictor–corrector sampling as PcSampler (solvers/pc_sampler.hpp) defines it: x_T from the
// prior (Stream::kPrior, step 0), N predictor steps on t_i = T − i(T − ε)/N (Stream::kPredictor,
// step i, substep 0) each followed by M corrector steps at t_{i+1} (Stream::kCorrector, step i,
// substep j); the Langevin step uses the expectation rule ε_t = 2α r² d / E‖s_t‖² with E‖s_t‖² in
// closed form for the Gaussian score and from a pilot of pilot_size samples (Stream::kPilot:
// predictor substep 2, corrector substeps 4 + j) for the learned one; α = 1 − β(t)h for VP and
// sub-VP, 1 for VE. Optional Tweedie denoising at ε.
struct CudaSamplerOptions {
  CudaPredictor predictor = CudaPredictor::kEulerMaruyama;
  CudaCorrector corrector = CudaCorrector::kNone;
  int num_steps = 1000;     // N ≥ 1
  double eps = 1e-3;        // 0 ≤ ε < T (σ_ε > 0 for the noise and denoiser parameterizations)
  int corrector_steps = 1;  // M in [0, 10000]
  double snr = 0.16;        // r > 0
  int pilot_size = 1000;    // ≥ 2
  bool denoise = false;
  CudaPrior prior = CudaPrior::kStandard;
  uint64_t seed = 0;
  int64_t chunk_size = 16384;  // columns evaluated together (≥ 1): see Determinism above
  // Throws InvalidArgument naming the bad field.
  void Validate() const;
};

// Fixed-step probability flow dx/dt = f − ½ g² s from T down to ε (num_steps uniform steps of the
// chosen Runge–Kutta method, as ProbabilityFlow's fixed-step methods), starting from the prior.
struct CudaFlowOptions {
  CudaFlowMethod method = CudaFlowMethod::kRk4;
  int num_steps = 100;  // ≥ 1
  double eps = 1e-3;    // 0 ≤ ε < T
  CudaPrior prior = CudaPrior::kStandard;
  uint64_t seed = 0;    // prior draws
  int64_t chunk_size = 16384;
  void Validate() const;
};

struct CudaSampleResult {
  Matrix x;                 // d × num_samples
  int64_t nfe = 0;          // score evaluations per sample
  int64_t steps = 0;
  double seconds = 0.0;     // wall time of the call
  double setup_seconds = 0.0;  // graph capture and instantiation (0 when reused)
  std::vector<double> expected_squared_norms;  // E‖s‖² per level (Langevin), else empty
};

class CudaSampler {
 public:
  // The learned score s = a x + b F(c_in x, τ) of `network` trained under `sde`. Throws
  // InvalidArgument on dims that differ; Error without a device.
  CudaSampler(const MlpNetwork<float>& network, std::shared_ptr<const ScalarAffineSde> sde,
              const CudaOptions& cuda = {});
  // The exact score of p_0 = N(mean, cov) under `sde`: p_t = N(α μ, α² Σ + σ_t² I),
  // s = −(α² Σ + σ_t² I)⁻¹ (x − α μ) (through Σ = Q Λ Qᵀ). Throws InvalidArgument unless cov is
  // d × d, symmetric and positive semi-definite and mean has d finite entries.
  static CudaSampler Gaussian(std::shared_ptr<const ScalarAffineSde> sde,
                              const Eigen::VectorXd& mean, const Eigen::MatrixXd& cov,
                              const CudaOptions& cuda = {});
  ~CudaSampler();
  CudaSampler(CudaSampler&&) noexcept;
  CudaSampler& operator=(CudaSampler&&) noexcept;

  int dim() const;
  const ScalarAffineSde& sde() const;

  // Samples 0 … num_samples − 1 (num_samples ≥ 1). Throws InvalidArgument for invalid options or
  // unsupported combinations (ancestral needs VE or VP; VP/sub-VP chains need β(t)h < 1; the exact
  // prior needs the Gaussian score), and
  // NumericalFailure naming the first non-finite value (smallest step, then sample; coordinate).
  CudaSampleResult Sample(int64_t num_samples, const CudaSamplerOptions& options);
  CudaSampleResult SampleProbabilityFlow(int64_t num_samples, const CudaFlowOptions& options);
  // s(x, t) for every column at one time t (x d × n finite, 0 ≤ t ≤ T).
  Matrix EvaluateScore(const Matrix& x, double t);

 private:
  explicit CudaSampler(std::unique_ptr<internal::CudaSamplerImpl> impl);
  std::unique_ptr<internal::CudaSamplerImpl> impl_;
};

// ---- Device ceilings -----------------------------------------------------------------------------

// The card's measured ceilings: cuBLAS SGEMM of size n × n × n on random data (median of
// `repeats` timed products after warm-up) in float32 (kFp32) and TF32 (kTf32), and device-to-device
// copy bandwidth counting bytes read plus written (copy of `copy_bytes`).
struct CudaPeaks {
  double sgemm_fp32_tflops = 0.0;
  double sgemm_tf32_tflops = 0.0;
  double copy_gbytes_per_second = 0.0;
  int gemm_size = 0;
  int64_t copy_bytes = 0;
};
CudaPeaks MeasureCudaPeaks(int gemm_size = 8192, int64_t copy_bytes = int64_t{1} << 30,
                           int repeats = 10, const CudaOptions& options = {});

}  // namespace scoresde
