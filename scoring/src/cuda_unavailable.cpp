// The CUDA backend's entry points in a build without CUDA (SCORESDE_CUDA_BACKEND undefined):
// the device query says why nothing is available and every constructor throws.
#ifndef SCORESDE_CUDA_BACKEND

#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde {

namespace internal {
class CudaMlpImpl {};
class CudaTrainerImpl {};
class CudaSamplerImpl {};
}  // namespace internal

namespace {

constexpr const char* kUnavailable = "scoresde was built without CUDA";

[[noreturn]] void Unavailable(const char* where) {
  throw Error(std::string(where) + ": " + kUnavailable);
}

}  // namespace

CudaDeviceInfo QueryCudaDevice(int device) {
  CudaDeviceInfo info;
  info.device = device;
  info.reason = kUnavailable;
  return info;
}

bool CudaAvailable(int) { return false; }

Matrix CudaFillNormal(const NoiseStream&, uint64_t, uint32_t, int64_t, int, int64_t,
                      const CudaOptions&) {
  Unavailable("CudaFillNormal");
}
Matrix CudaFillUniform(const NoiseStream&, uint64_t, uint32_t, int64_t, int, int64_t,
                       const CudaOptions&) {
  Unavailable("CudaFillUniform");
}
Matrix CudaFillRademacher(const NoiseStream&, uint64_t, uint32_t, int64_t, int, int64_t,
                          const CudaOptions&) {
  Unavailable("CudaFillRademacher");
}
std::vector<std::array<uint32_t, 4>> CudaPhiloxWords(const NoiseStream&, uint64_t, uint32_t,
                                                     int64_t, int64_t, int, const CudaOptions&) {
  Unavailable("CudaPhiloxWords");
}

CudaMlp::CudaMlp(const MlpNetwork<float>&, const CudaOptions&) { Unavailable("CudaMlp"); }
CudaMlp::~CudaMlp() = default;
CudaMlp::CudaMlp(CudaMlp&&) noexcept = default;
CudaMlp& CudaMlp::operator=(CudaMlp&&) noexcept = default;
const MlpConfig& CudaMlp::config() const { Unavailable("CudaMlp"); }
int64_t CudaMlp::num_parameters() const { Unavailable("CudaMlp"); }
Eigen::VectorXf CudaMlp::Parameters() const { Unavailable("CudaMlp"); }
void CudaMlp::SetParameters(const Eigen::VectorXf&) { Unavailable("CudaMlp"); }
Eigen::MatrixXf CudaMlp::Forward(const Eigen::MatrixXf&, const Eigen::RowVectorXf&) const {
  Unavailable("CudaMlp");
}
void CudaMlp::ForwardTangent(const Eigen::MatrixXf&, const Eigen::RowVectorXf&,
                             const Eigen::MatrixXf&, Eigen::MatrixXf*, Eigen::MatrixXf*) const {
  Unavailable("CudaMlp");
}
Eigen::VectorXf CudaMlp::Gradient(const Eigen::MatrixXf&, const Eigen::RowVectorXf&,
                                  const Eigen::MatrixXf&) const {
  Unavailable("CudaMlp");
}
Eigen::VectorXf CudaMlp::GradientWithTangent(const Eigen::MatrixXf&, const Eigen::RowVectorXf&,
                                             const Eigen::MatrixXf&, const Eigen::MatrixXf&,
                                             const Eigen::MatrixXf&) const {
  Unavailable("CudaMlp");
}

CudaTrainer::CudaTrainer(const MlpNetwork<float>&, std::shared_ptr<const ScalarAffineSde>,
                         const LossOptions&, const AdamOptions&, const CudaTrainerOptions&,
                         const CudaOptions&) {
  Unavailable("CudaTrainer");
}
CudaTrainer::~CudaTrainer() = default;
CudaTrainer::CudaTrainer(CudaTrainer&&) noexcept = default;
CudaTrainer& CudaTrainer::operator=(CudaTrainer&&) noexcept = default;
void CudaTrainer::Enqueue(ConstBatchRef) { Unavailable("CudaTrainer"); }
std::vector<CudaStepRecord> CudaTrainer::Wait() { Unavailable("CudaTrainer"); }
CudaStepRecord CudaTrainer::Step(ConstBatchRef) { Unavailable("CudaTrainer"); }
int64_t CudaTrainer::step() const { Unavailable("CudaTrainer"); }
int64_t CudaTrainer::ema_updates() const { Unavailable("CudaTrainer"); }
const MlpConfig& CudaTrainer::config() const { Unavailable("CudaTrainer"); }
Eigen::VectorXf CudaTrainer::Parameters() const { Unavailable("CudaTrainer"); }
Eigen::VectorXf CudaTrainer::Average() const { Unavailable("CudaTrainer"); }
Eigen::VectorXf CudaTrainer::FirstMoment() const { Unavailable("CudaTrainer"); }
Eigen::VectorXf CudaTrainer::SecondMoment() const { Unavailable("CudaTrainer"); }
MlpNetwork<float> CudaTrainer::Network(bool) const { Unavailable("CudaTrainer"); }
void CudaTrainer::Restore(int64_t, const Eigen::VectorXf&, const Eigen::VectorXf&,
                          const Eigen::VectorXf&, const Eigen::VectorXf&, int64_t) {
  Unavailable("CudaTrainer");
}

CudaSampler::CudaSampler(const MlpNetwork<float>&, std::shared_ptr<const ScalarAffineSde>,
                         const CudaOptions&) {
  Unavailable("CudaSampler");
}
CudaSampler::CudaSampler(std::unique_ptr<internal::CudaSamplerImpl> impl)
    : impl_(std::move(impl)) {}
CudaSampler CudaSampler::Gaussian(std::shared_ptr<const ScalarAffineSde>, const Eigen::VectorXd&,
                                  const Eigen::MatrixXd&, const CudaOptions&) {
  Unavailable("CudaSampler::Gaussian");
}
CudaSampler::~CudaSampler() = default;
CudaSampler::CudaSampler(CudaSampler&&) noexcept = default;
CudaSampler& CudaSampler::operator=(CudaSampler&&) noexcept = default;
int CudaSampler::dim() const { Unavailable("CudaSampler"); }
const ScalarAffineSde& CudaSampler::sde() const { Unavailable("CudaSampler"); }
CudaSampleResult CudaSampler::Sample(int64_t, const CudaSamplerOptions&) {
  Unavailable("CudaSampler");
}
CudaSampleResult CudaSampler::SampleProbabilityFlow(int64_t, const CudaFlowOptions&) {
  Unavailable("CudaSampler");
}
Matrix CudaSampler::EvaluateScore(const Matrix&, double) { Unavailable("CudaSampler"); }

CudaPeaks MeasureCudaPeaks(int, int64_t, int, const CudaOptions&) {
  Unavailable("MeasureCudaPeaks");
}

}  // namespace scoresde

#endif  // SCORESDE_CUDA_BACKEND
