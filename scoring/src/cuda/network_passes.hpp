// The device network's layout and its passes, written once over an "Ops" policy so that the CUDA
// path (cuBLAS + kernels, T = float) and the host emulation of the tests (plain loops, T = double)
// run the same sequence of products with the same shapes, transposes and leading dimensions.
//
// Ops provides, with cuBLAS's column-major semantics (C ← op(A) op(B) + beta C, alpha = 1):
//   Gemm(bool trans_a, bool trans_b, int m, int n, int k, const T* a, int lda, const T* b, int ldb,
//        T beta, T* c, int ldc)
// and the fused element-wise passes of device_math.cuh over rows × n blocks with leading
// dimension ld:
//   SiluForward(rows, n, ld, z, a_in /*nullable*/, a_out)
//   SiluTangent(rows, n, ld, z, z_dot, a_dot_in /*nullable*/, a_dot_out)
//   SiluBackward(rows, n, ld, z, g_a, g_z)
//   SiluBackwardTangent(rows, n, ld, z, z_dot, g_a, g_a_dot, g_z, g_z_dot)
#pragma once

#include <cstdint>
#include <vector>

#include "scoresde/scoring/mlp_score.hpp"

namespace scoresde::internal::cuda {

// Rounds up to a multiple of 4 (16-byte columns for float4 access).
inline int RoundUp4(int n) { return (n + 3) / 4 * 4; }

// Layer l is S_l, (in_pad_l × out_l) column-major, in_pad_l = RoundUp4(in_l + 1); all layers in
// one contiguous "store" so that the optimizer runs over one array.
struct NetworkLayout {
  struct Layer {
    int in = 0, out = 0, in_pad = 0;
    int64_t store_offset = 0;      // S_l in the store
    int64_t weight = 0, bias = 0;  // offsets in the canonical (MlpNetwork) vector
  };

  explicit NetworkLayout(const MlpConfig& c) : config(c) {
    config.Validate();
    const int depth = config.depth;
    int64_t store = 0, canonical = 0;
    for (int l = 0; l <= depth; ++l) {
      Layer layer;
      layer.in = l == 0 ? config.input_dim() : config.width;
      layer.out = l == depth ? config.dim : config.width;
      layer.in_pad = RoundUp4(layer.in + 1);
      layer.store_offset = store;
      store += int64_t{layer.in_pad} * layer.out;
      layer.weight = canonical;
      canonical += int64_t{layer.out} * layer.in;
      layer.bias = canonical;
      canonical += layer.out;
      layers.push_back(layer);
    }
    store_size = store;
    num_parameters = canonical;
  }

  // Leading dimensions: a[0] (input), and a[l ≥ 1], z, g_a, g_z (hidden).
  int ld_input() const { return layers.front().in_pad; }
  int ld_hidden() const { return RoundUp4(config.width + 1); }

  // Canonical vector (MlpNetwork layout) ↔ store layout.
  template <typename T>
  std::vector<T> ToStore(const T* canonical) const {
    std::vector<T> store(static_cast<size_t>(store_size), T(0));
    for (const Layer& layer : layers) {
      for (int o = 0; o < layer.out; ++o) {
        T* column = store.data() + layer.store_offset + int64_t{o} * layer.in_pad;
        const T* row = canonical + layer.weight + int64_t{o} * layer.in;
        for (int i = 0; i < layer.in; ++i) column[i] = row[i];
        column[layer.in] = canonical[layer.bias + o];
      }
    }
    return store;
  }
  template <typename T>
  void FromStore(const T* store, T* canonical) const {
    for (const Layer& layer : layers) {
      for (int o = 0; o < layer.out; ++o) {
        const T* column = store + layer.store_offset + int64_t{o} * layer.in_pad;
        T* row = canonical + layer.weight + int64_t{o} * layer.in;
        for (int i = 0; i < layer.in; ++i) row[i] = column[i];
        canonical[layer.bias + o] = column[layer.in];
      }
    }
  }

  MlpConfig config;
  std::vector<Layer> layers;
  int64_t store_size = 0;
  int64_t num_parameters = 0;
};

// The activations of n columns. a[0] is ld_input() × n with rows d..d+E−1 the embedding and row
// d+E ones; a[l ≥ 1], z, g_a, g_z are ld_hidden() × n with row H of a[l] ones; output d × n.
// Tangent buffers have zeros in the ones rows. An inference workspace has a[0], a[1] and z[0].
template <typename T>
struct PassBuffers {
  int cols = 0;
  std::vector<T*> a, z, a_dot, z_dot;
  T* output = nullptr;
  T* output_dot = nullptr;
  T* g_a = nullptr;
  T* g_a_dot = nullptr;
  T* g_z = nullptr;
  T* g_z_dot = nullptr;
};

// F = network(a[0]) into b.output, keeping a[l] and z[l].
template <typename T, typename Ops>
void ForwardPass(const Ops& ops, const NetworkLayout& net, const T* store,
                 const PassBuffers<T>& b) {
  const MlpConfig& c = net.config;
  const int n = b.cols;
  const int ldh = net.ld_hidden();
  for (int l = 0; l < c.depth; ++l) {
    const auto& layer = net.layers[l];
    ops.Gemm(true, false, layer.out, n, layer.in_pad, store + layer.store_offset, layer.in_pad,
             b.a[l], layer.in_pad, T(0), b.z[l], ldh);
    const T* residual = c.residual && l >= 1 ? b.a[l] : nullptr;
    ops.SiluForward(c.width, n, ldh, b.z[l], residual, b.a[l + 1]);
  }
  const auto& out = net.layers[c.depth];
  ops.Gemm(true, false, out.out, n, out.in_pad, store + out.store_offset, out.in_pad,
           b.a[c.depth], out.in_pad, T(0), b.output, c.dim);
}

// Ḟ = J_F ȧ[0] into b.output_dot (after ForwardPass), keeping ȧ[l] and ż[l].
template <typename T, typename Ops>
void TangentPass(const Ops& ops, const NetworkLayout& net, const T* store,
                 const PassBuffers<T>& b) {
  const MlpConfig& c = net.config;
  const int n = b.cols;
  const int ldh = net.ld_hidden();
  for (int l = 0; l < c.depth; ++l) {
    const auto& layer = net.layers[l];
    ops.Gemm(true, false, layer.out, n, layer.in_pad, store + layer.store_offset, layer.in_pad,
             b.a_dot[l], layer.in_pad, T(0), b.z_dot[l], ldh);
    const T* residual = c.residual && l >= 1 ? b.a_dot[l] : nullptr;
    ops.SiluTangent(c.width, n, ldh, b.z[l], b.z_dot[l], residual, b.a_dot[l + 1]);
  }
  const auto& out = net.layers[c.depth];
  ops.Gemm(true, false, out.out, n, out.in_pad, store + out.store_offset, out.in_pad,
           b.a_dot[c.depth], out.in_pad, T(0), b.output_dot, c.dim);
}

// grad_store = ∂/∂θ Σ_j g_jᵀ F_j (store layout, overwritten); g is d × n (ld d).
template <typename T, typename Ops>
void BackwardPass(const Ops& ops, const NetworkLayout& net, const T* store, const T* g,
                  const PassBuffers<T>& b, T* grad_store) {
  const MlpConfig& c = net.config;
  const int n = b.cols;
  const int d = c.dim;
  const int width = c.width;
  const int ldh = net.ld_hidden();
  // Output layer: dS_L = [a_L; 1] gᵀ (the ones row gives the bias gradient), g_a = W_Lᵀ g.
  const auto& out = net.layers[c.depth];
  ops.Gemm(false, true, out.in_pad, d, n, b.a[c.depth], out.in_pad, g, d, T(0),
           grad_store + out.store_offset, out.in_pad);
  ops.Gemm(false, false, width, n, d, store + out.store_offset, out.in_pad, g, d, T(0), b.g_a,
           ldh);
  for (int l = c.depth - 1; l >= 0; --l) {
    const auto& layer = net.layers[l];
    ops.SiluBackward(width, n, ldh, b.z[l], b.g_a, b.g_z);
    ops.Gemm(false, true, layer.in_pad, width, n, b.a[l], layer.in_pad, b.g_z, ldh, T(0),
             grad_store + layer.store_offset, layer.in_pad);
    if (l == 0) break;
    // g_a ← [g_a +] W_lᵀ g_z (the residual path carries g_a through unchanged).
    ops.Gemm(false, false, width, n, width, store + layer.store_offset, layer.in_pad, b.g_z, ldh,
             c.residual ? T(1) : T(0), b.g_a, ldh);
  }
}

// grad_store = ∂/∂θ Σ_j [g_jᵀ F_j + ġ_jᵀ Ḟ_j] (after ForwardPass and TangentPass).
template <typename T, typename Ops>
void BackwardWithTangentPass(const Ops& ops, const NetworkLayout& net, const T* store, const T* g,
                             const T* g_dot, const PassBuffers<T>& b, T* grad_store) {
  const MlpConfig& c = net.config;
  const int n = b.cols;
  const int d = c.dim;
  const int width = c.width;
  const int ldh = net.ld_hidden();
  const auto& out = net.layers[c.depth];
  ops.Gemm(false, true, out.in_pad, d, n, b.a[c.depth], out.in_pad, g, d, T(0),
           grad_store + out.store_offset, out.in_pad);
  ops.Gemm(false, true, out.in_pad, d, n, b.a_dot[c.depth], out.in_pad, g_dot, d, T(1),
           grad_store + out.store_offset, out.in_pad);
  ops.Gemm(false, false, width, n, d, store + out.store_offset, out.in_pad, g, d, T(0), b.g_a,
           ldh);
  ops.Gemm(false, false, width, n, d, store + out.store_offset, out.in_pad, g_dot, d, T(0),
           b.g_a_dot, ldh);
  for (int l = c.depth - 1; l >= 0; --l) {
    const auto& layer = net.layers[l];
    ops.SiluBackwardTangent(width, n, ldh, b.z[l], b.z_dot[l], b.g_a, b.g_a_dot, b.g_z,
                            b.g_z_dot);
    ops.Gemm(false, true, layer.in_pad, width, n, b.a[l], layer.in_pad, b.g_z, ldh, T(0),
             grad_store + layer.store_offset, layer.in_pad);
    ops.Gemm(false, true, layer.in_pad, width, n, b.a_dot[l], layer.in_pad, b.g_z_dot, ldh, T(1),
             grad_store + layer.store_offset, layer.in_pad);
    if (l == 0) break;
    const T beta = c.residual ? T(1) : T(0);
    ops.Gemm(false, false, width, n, width, store + layer.store_offset, layer.in_pad, b.g_z, ldh,
             beta, b.g_a, ldh);
    ops.Gemm(false, false, width, n, width, store + layer.store_offset, layer.in_pad, b.g_z_dot,
             ldh, beta, b.g_a_dot, ldh);
  }
}

// Forward through an inference workspace (one hidden buffer a[1], updated in place, and z[0]).
template <typename T, typename Ops>
void InferPass(const Ops& ops, const NetworkLayout& net, const T* store, const PassBuffers<T>& b) {
  const MlpConfig& c = net.config;
  const int n = b.cols;
  const int ldh = net.ld_hidden();
  T* hidden = b.a[1];
  T* z = b.z[0];
  for (int l = 0; l < c.depth; ++l) {
    const auto& layer = net.layers[l];
    const T* input = l == 0 ? b.a[0] : hidden;
    ops.Gemm(true, false, layer.out, n, layer.in_pad, store + layer.store_offset, layer.in_pad,
             input, layer.in_pad, T(0), z, ldh);
    // a ← [a +] SiLU(z) in place: the product has consumed a already (in stream order).
    const T* residual = c.residual && l >= 1 ? hidden : nullptr;
    ops.SiluForward(c.width, n, ldh, z, residual, hidden);
  }
  const auto& out = net.layers[c.depth];
  ops.Gemm(true, false, out.out, n, out.in_pad, store + out.store_offset, out.in_pad, hidden,
           out.in_pad, T(0), b.output, c.dim);
}

}  // namespace scoresde::internal::cuda
