// Names and option checks of the CUDA backend; compiled in every build (with or without CUDA) so
// that options can be parsed and validated before a device is needed.
#include <cmath>
#include <string>

#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {

std::string_view ToString(CudaMath math) {
  switch (math) {
    case CudaMath::kPedanticFp32:
      return "pedantic-fp32";
    case CudaMath::kFp32:
      return "fp32";
    case CudaMath::kTf32:
      return "tf32";
  }
  return "unknown";
}

CudaMath ParseCudaMath(std::string_view name) {
  for (CudaMath math : {CudaMath::kPedanticFp32, CudaMath::kFp32, CudaMath::kTf32}) {
    if (name == ToString(math)) return math;
  }
  Require(false, "CudaOptions", "math", name, "pedantic-fp32, fp32 or tf32");
  return CudaMath::kPedanticFp32;
}

void CudaOptions::Validate() const {
  Require(device >= 0 && device < 64, "CudaOptions", "device", device, "in [0, 64)");
}

void CudaTrainerOptions::Validate() const {
  constexpr const char* kWhere = "CudaTrainerOptions";
  Require(batch_size >= 1 && batch_size <= (int64_t{1} << 31) - 1, kWhere, "batch_size",
          batch_size, "in [1, 2^31)");
  Require(history >= 1 && history <= (1 << 24), kWhere, "history", history, "in [1, 2^24]");
}

std::string_view ToString(CudaPredictor predictor) {
  switch (predictor) {
    case CudaPredictor::kEulerMaruyama:
      return "euler-maruyama";
    case CudaPredictor::kReverseDiffusion:
      return "reverse-diffusion";
    case CudaPredictor::kAncestral:
      return "ancestral";
    case CudaPredictor::kNone:
      return "none";
  }
  return "unknown";
}

std::string_view ToString(CudaCorrector corrector) {
  switch (corrector) {
    case CudaCorrector::kNone:
      return "none";
    case CudaCorrector::kLangevin:
      return "langevin";
    case CudaCorrector::kAnnealedLangevin:
      return "annealed-langevin";
  }
  return "unknown";
}

std::string_view ToString(CudaFlowMethod method) {
  switch (method) {
    case CudaFlowMethod::kEuler:
      return "euler";
    case CudaFlowMethod::kHeun:
      return "heun";
    case CudaFlowMethod::kRk4:
      return "rk4";
  }
  return "unknown";
}

std::string_view ToString(CudaPrior prior) {
  return prior == CudaPrior::kStandard ? "standard" : "exact";
}

CudaPrior ParseCudaPrior(std::string_view name) {
  if (name == "standard") return CudaPrior::kStandard;
  if (name == "exact") return CudaPrior::kExact;
  Require(false, "CudaSamplerOptions", "prior", name, "standard or exact");
  return CudaPrior::kStandard;
}

CudaPredictor ParseCudaPredictor(std::string_view name) {
  for (CudaPredictor p : {CudaPredictor::kEulerMaruyama, CudaPredictor::kReverseDiffusion,
                          CudaPredictor::kAncestral, CudaPredictor::kNone}) {
    if (name == ToString(p)) return p;
  }
  Require(false, "CudaSamplerOptions", "predictor", name,
          "one of euler-maruyama, reverse-diffusion, ancestral, none (on the cuda backend)");
  return CudaPredictor::kNone;
}

CudaCorrector ParseCudaCorrector(std::string_view name) {
  for (CudaCorrector c :
       {CudaCorrector::kNone, CudaCorrector::kLangevin, CudaCorrector::kAnnealedLangevin}) {
    if (name == ToString(c)) return c;
  }
  Require(false, "CudaSamplerOptions", "corrector", name,
          "one of langevin, annealed-langevin, none");
  return CudaCorrector::kNone;
}

CudaFlowMethod ParseCudaFlowMethod(std::string_view name) {
  for (CudaFlowMethod m : {CudaFlowMethod::kEuler, CudaFlowMethod::kHeun, CudaFlowMethod::kRk4}) {
    if (name == ToString(m)) return m;
  }
  Require(false, "CudaFlowOptions", "method", name,
          "one of euler, heun, rk4 (fixed-step methods on the cuda backend)");
  return CudaFlowMethod::kRk4;
}

void CudaSamplerOptions::Validate() const {
  constexpr const char* kWhere = "CudaSamplerOptions";
  Require(num_steps >= 1 && num_steps <= (1 << 24), kWhere, "num_steps", num_steps,
          "in [1, 2^24]");
  Require(std::isfinite(eps) && eps >= 0.0, kWhere, "eps", eps, "finite and >= 0");
  Require(corrector_steps >= 0 && corrector_steps <= 10000, kWhere, "corrector_steps",
          corrector_steps, "in [0, 10000]");
  Require(std::isfinite(snr) && snr > 0.0, kWhere, "snr", snr, "finite and > 0");
  Require(pilot_size >= 2, kWhere, "pilot_size", pilot_size, ">= 2");
  Require(chunk_size >= 1 && chunk_size <= (int64_t{1} << 26), kWhere, "chunk_size", chunk_size,
          "in [1, 2^26]");
}

void CudaFlowOptions::Validate() const {
  constexpr const char* kWhere = "CudaFlowOptions";
  Require(num_steps >= 1 && num_steps <= (1 << 24), kWhere, "num_steps", num_steps,
          "in [1, 2^24]");
  Require(std::isfinite(eps) && eps >= 0.0, kWhere, "eps", eps, "finite and >= 0");
  Require(chunk_size >= 1 && chunk_size <= (int64_t{1} << 26), kWhere, "chunk_size", chunk_size,
          "in [1, 2^26]");
}

}  // namespace scoresde
