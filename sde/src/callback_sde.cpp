#include "scoresde/sde/callback_sde.hpp"

#include <cmath>
#include <string>

#include "scoresde/sde/check.hpp"

namespace scoresde {

CallbackSde::CallbackSde(int dim, int noise_dim, NoiseType type, double t_final,
                         Functions functions)
    : dim_(dim), noise_dim_(noise_dim), type_(type), t_final_(t_final),
      functions_(std::move(functions)) {
  constexpr const char* kWhere = "CallbackSde";
  Require(dim >= 1, kWhere, "dim", dim, ">= 1");
  Require(noise_dim >= 1, kWhere, "noise_dim", noise_dim, ">= 1");
  Require(type == NoiseType::kGeneral || noise_dim == dim, kWhere, "noise_dim", noise_dim,
          "equal to dim (" + std::to_string(dim) + ") unless the noise is general");
  Require(std::isfinite(t_final) && t_final > 0.0, kWhere, "t_final", t_final, "finite and > 0");
  Require(static_cast<bool>(functions_.drift), kWhere, "functions.drift",
          std::string_view("empty"), "a callable function");
  const char* needed = type == NoiseType::kScalar     ? "functions.scalar_diffusion"
                       : type == NoiseType::kDiagonal ? "functions.diagonal_diffusion"
                                                      : "functions.diffusion_matrix";
  const bool has = type == NoiseType::kScalar     ? static_cast<bool>(functions_.scalar_diffusion)
                   : type == NoiseType::kDiagonal ? static_cast<bool>(functions_.diagonal_diffusion)
                                                  : static_cast<bool>(functions_.diffusion_matrix);
  Require(has, kWhere, needed, std::string_view("empty"),
          "a callable function for " + std::string(ToString(type)) + " noise");
}

void CallbackSde::Drift(ConstBatchRef x, double t, BatchRef f) const { functions_.drift(x, t, f); }

double CallbackSde::ScalarDiffusion(double t) const {
  if (type_ != NoiseType::kScalar) return Sde::ScalarDiffusion(t);
  return functions_.scalar_diffusion(t);
}

void CallbackSde::DiagonalDiffusion(ConstBatchRef x, double t, BatchRef g) const {
  if (type_ != NoiseType::kDiagonal) return Sde::DiagonalDiffusion(x, t, g);
  functions_.diagonal_diffusion(x, t, g);
}

void CallbackSde::DiffusionMatrix(ConstVectorRef x, double t, MatrixRef g) const {
  if (type_ != NoiseType::kGeneral) return Sde::DiffusionMatrix(x, t, g);
  functions_.diffusion_matrix(x, t, g);
}

void CallbackSde::DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const {
  if (functions_.divergence_of_ggt) return functions_.divergence_of_ggt(x, t, div);
  FiniteDifferenceDivergenceOfGGt(*this, x, t, div);
}

}  // namespace scoresde
