// A multilayer-perceptron score model for vector data, with Gaussian Fourier-feature time
// embedding (Tancik et al., NeurIPS 2020; used for the continuous-time models of Song et al.,
// ICLR 2021, appendix H), SiLU activations and optional residual connections.
//
// The score is an affine map of the network output F, with per-sample coefficients:
//
//   s(x, t) = a(t) x + b(t) F(c_in(t) x, τ(t)),   c_in = 1 / sqrt(σ_t² + α² σ_d²),
//
// where x_t | x_0 ~ N(α x_0, σ_t² I) is the SDE's kernel (ScalarAffineSde: α = MeanCoefficient,
// σ_t = MarginalStd) and σ_d = MlpConfig::data_std. c_in gives the network unit-variance input
// when the data has per-coordinate std σ_d (for VP with σ_d = 1, c_in = 1). Parameterizations:
//   kScore     a = 0, b = 1                 F is the score itself.
//   kNoise     a = 0, b = −1/σ_t            F predicts the noise ε of x = α x_0 + σ_t ε
//                                           (DDPM's ε-prediction; the paper's VE models' "scale by
//                                           1/σ" is the same family with the sign absorbed).
//   kDenoiser  EDM preconditioning (Karras et al., NeurIPS 2022) in the scaled variable
//              x̃ = x/α, σ̃ = σ_t/α:  D(x) = c_skip x̃ + c_out F(c_in x, τ),
//              c_skip = σ_d²/(σ̃² + σ_d²), c_out = σ̃ σ_d / sqrt(σ̃² + σ_d²). Tweedie's formula
//              E[x_0 | x] = (x + σ_t² s)/α gives s = (α D − x)/σ_t², which simplifies to
//              a = −1/(σ_t² + α² σ_d²),  b = α σ_d / (σ_t sqrt(σ_t² + α² σ_d²)):
//              with F = 0 the model is the exact score of N(0, σ_d² I) data.
// Time input τ: t for VP and sub-VP, log σ(t) (the VE schedule, VeSde::Sigma) for VE — as the
// paper's code conditions its DDPM/NCSN++ models on t and log σ respectively.
//
// Network F (the layout the CUDA backend mirrors; PyTorch nn.Linear conventions):
//   e   = [sin(2π w τ); cos(2π w τ)]                    w: "fourier.weight" (E/2), fixed at init
//   a_0 = [u; e]                                        u = c_in x,  (d + E) × n
//   a_1 = SiLU(W_0 a_0 + b_0)                           "input.weight" (H, d+E), "input.bias" (H)
//   a_{l+1} = [a_l +] SiLU(W_l a_l + b_l), l = 1..L−1   "hidden.<l>.weight" (H, H), ".bias" (H)
//                                                       (the residual term when residual = true)
//   F   = W_L a_L + b_L                                 "output.weight" (d, H), "output.bias" (d)
// with SiLU(z) = z·sigmoid(z), sigmoid(z) = 1/(1 + exp(−z)), H = width, L = depth (number of
// SiLU layers), E = embed_dim. Trainable parameters are one flat vector holding the tensors in the
// order input, hidden.1 … hidden.<L−1>, output, each weight before its bias, each weight row-major
// (out, in) exactly as nn.Linear stores it, so a checkpoint is a list of views of that vector.
//
// Initialization from NoiseStream(seed, Stream::kInit): trainable tensor k (0-based, in the order
// above) is filled by FillUniform(step = k + 1, substep 0, first_sample 0) on a 1 × numel row,
// u ↦ (2u − 1)/sqrt(fan_in) (PyTorch's default nn.Linear bounds for weights and biases);
// fourier.weight = fourier_scale · FillNormal(step 0, substep 0, first_sample 0) on a 1 × E/2 row.
// Draws are made in double and rounded to the network's scalar type.
//
// Passes: Forward (activations kept for the backward pass), Tangent (forward mode: Ḟ = J_F u̇ for a
// tangent u̇ of the input u; τ has no tangent), Backward (parameter gradients of gᵀF) and
// BackwardWithTangent (parameter gradients of gᵀF + ġᵀḞ: reverse mode through the tangent pass,
// needed by sliced and exact score matching). Column blocks are d × n batches, column-major, so
// each layer is one GEMM W (out × in) · A (in × n) with no transposes of activations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"

namespace scoresde {

enum class Parameterization { kScore, kNoise, kDenoiser };
std::string_view ToString(Parameterization parameterization);
// "score", "noise" or "denoiser"; throws InvalidArgument naming `name` otherwise.
Parameterization ParseParameterization(std::string_view name);

struct MlpConfig {
  int dim = 2;             // d, the data dimension
  int width = 128;         // H
  int depth = 3;           // L ≥ 1 SiLU layers
  int embed_dim = 32;      // E, even: E/2 Fourier frequencies
  // Std of the Fourier frequencies w. The paper's image models use 16 with τ = log σ; for the MLP
  // on vector data a smooth embedding (1) trains faster and keeps the probability flow smooth.
  double fourier_scale = 1.0;
  bool residual = true;    // residual connections around hidden layers 1..L−1
  Parameterization parameterization = Parameterization::kNoise;
  double data_std = 1.0;   // σ_d > 0
  // Throws InvalidArgument naming the first bad field: dim, width, embed_dim in [1, 65536]
  // (embed_dim even ≥ 2), depth in [1, 64], fourier_scale and data_std finite and > 0.
  void Validate() const;
  int input_dim() const { return dim + embed_dim; }
};

// The per-sample coefficients of s = a x + b F(c_in x, τ) for model `config` under `sde` at time
// t (see above). Throws InvalidArgument unless 0 ≤ t ≤ T and every coefficient is finite (the
// noise and denoiser forms need σ_t > 0, i.e. t > 0 for VE with the exact kernel).
struct ScoreCoefficients {
  double a = 0.0;
  double b = 1.0;
  double c_in = 1.0;
  double tau = 0.0;
};
ScoreCoefficients ComputeScoreCoefficients(const ScalarAffineSde& sde, const MlpConfig& config,
                                           double t);

template <typename Scalar>
class MlpNetwork {
 public:
  using MatrixS = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using VectorS = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using RowVectorS = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

  // One trainable tensor: a view [offset, offset + size) of parameters() with PyTorch shape.
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;
    int64_t size = 0;
  };

  // Activations of one column block (reused across calls; resized on demand).
  struct Workspace {
    int cols = 0;
    std::vector<MatrixS> a;      // a[l]: input of layer l, l = 0..L (a[0] = [u; e])
    std::vector<MatrixS> z;      // pre-activations, l = 0..L−1
    std::vector<MatrixS> sig;    // sigmoid(z)
    std::vector<MatrixS> a_dot;  // tangents of a
    std::vector<MatrixS> z_dot;  // tangents of z
    MatrixS output;              // F, d × n
    MatrixS output_dot;          // Ḟ, d × n
    MatrixS g_a, g_a_dot, g_z, g_z_dot, scratch;  // backward scratch
  };

  // A fresh network initialized from (seed, Stream::kInit) as documented above. Throws
  // InvalidArgument if config is invalid.
  MlpNetwork(const MlpConfig& config, uint64_t seed);
  // A network with given parameters (e.g. from a checkpoint). Throws InvalidArgument unless
  // parameters has num_parameters() entries, fourier_weights has embed_dim/2, and all are finite.
  MlpNetwork(const MlpConfig& config, VectorS parameters, VectorS fourier_weights);

  const MlpConfig& config() const { return config_; }
  const std::vector<Tensor>& layout() const { return layout_; }
  int64_t num_parameters() const { return parameters_.size(); }
  const VectorS& parameters() const { return parameters_; }
  VectorS& mutable_parameters() { return parameters_; }
  const VectorS& fourier_weights() const { return fourier_; }

  // F(u, τ) into ws->output (d × n), keeping the activations. u is d × n, tau has n entries.
  void Forward(const MatrixS& u, const RowVectorS& tau, Workspace* ws) const;
  // After Forward on ws: ws->output_dot = J_F u_dot (d × n), keeping the tangents.
  void Tangent(const MatrixS& u_dot, Workspace* ws) const;
  // After Forward: grad[0..P) += ∂/∂θ Σ_j g(:, j)ᵀ F(:, j); g is d × n.
  void Backward(const MatrixS& g, Workspace* ws, Scalar* grad) const;
  // After Forward and Tangent: grad += ∂/∂θ Σ_j [g(:, j)ᵀ F(:, j) + g_dot(:, j)ᵀ Ḟ(:, j)].
  void BackwardWithTangent(const MatrixS& g, const MatrixS& g_dot, Workspace* ws,
                           Scalar* grad) const;

 private:
  struct Layer {
    int in = 0;
    int out = 0;
    int64_t weight = 0;  // offsets into parameters_
    int64_t bias = 0;
  };
  void BuildLayout();
  void Resize(int n, bool tangent, Workspace* ws) const;

  MlpConfig config_;
  std::vector<Layer> layers_;  // L + 1 layers: input, hidden..., output
  std::vector<Tensor> layout_;
  VectorS parameters_;
  VectorS fourier_;
};

extern template class MlpNetwork<float>;
extern template class MlpNetwork<double>;

// The network as a ScoreModel: s = a x + b F(c_in x, τ) for the SDE the model was trained with.
// Evaluation runs in the network's precision (float or double) on column blocks of 64, the last
// padded to a multiple of 8 (at least 16) columns, so that every GEMM has the same shape class and
// sample j's score does not depend on which other samples share its batch (bit for bit).
// Divergence: d forward-mode passes (exact, not estimated). Safe to call concurrently: every call
// uses its own workspace.
class MlpScore final : public ScoreModel {
 public:
  // sde must describe the SDE the model was trained with; dims must agree. Throws InvalidArgument.
  MlpScore(std::shared_ptr<const MlpNetwork<float>> network,
           std::shared_ptr<const ScalarAffineSde> sde);
  MlpScore(std::shared_ptr<const MlpNetwork<double>> network,
           std::shared_ptr<const ScalarAffineSde> sde);

  int dim() const override { return config_.dim; }
  const MlpConfig& config() const { return config_; }
  const ScalarAffineSde& sde() const { return *sde_; }
  std::shared_ptr<const ScalarAffineSde> shared_sde() const { return sde_; }
  bool is_float() const { return static_cast<bool>(float_network_); }

  // x, s: d × B; t: B entries in [0, T] (σ_t > 0 for noise/denoiser). Throws InvalidArgument on
  // shapes, non-finite x or bad t.
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override;
  bool HasDivergence() const override { return true; }
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override;
  bool HasJvp() const override { return true; }
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override;

 private:
  template <typename Scalar>
  void Run(const MlpNetwork<Scalar>& network, ConstBatchRef x, ConstRowVectorRef t,
           const ConstBatchRef* v, BatchRef* s, BatchRef* jv, RowVectorRef* div) const;
  void Dispatch(ConstBatchRef x, ConstRowVectorRef t, const ConstBatchRef* v, BatchRef* s,
                BatchRef* jv, RowVectorRef* div) const;

  MlpConfig config_;
  std::shared_ptr<const MlpNetwork<float>> float_network_;
  std::shared_ptr<const MlpNetwork<double>> double_network_;
  std::shared_ptr<const ScalarAffineSde> sde_;
};

}  // namespace scoresde
