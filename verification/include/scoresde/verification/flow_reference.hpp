// Closed forms for the probability-flow ODE on Gaussian data: the exact flow map, and the
// per-point error a mismatched prior puts into a likelihood.
//
// Flow map. Data N(μ, Σ) under an SDE with kernel x_t | x_0 ~ N(α_t x_0, σ_t² I) (VE, VP, sub-VP)
// has p_t = N(α_t μ, C_t), C_t = α_t² Σ + σ_t² I = U diag(c_t) Uᵀ with Σ = U diag(λ) Uᵀ and
// c_{t,k} = α_t² λ_k + σ_t². The flow drift a x + ½ g² C_t⁻¹ (x − α_t μ) is linear and, in the
// basis U, diagonal, and every coordinate y_k = u_kᵀ(x − α_t μ) obeys
//   dy_k/dt = (a + g²/(2 c_{t,k})) y_k = (d/dt log √c_{t,k}) y_k
// (using dα/dt = a α and dσ²/dt = 2aσ² + g², i.e. dc/dt = 2ac + g²). Hence the flow from s to t is
//   x_t = α_t μ + U diag(√(c_{t,k}/c_{s,k})) Uᵀ (x_s − α_s μ),
// exact in both directions: the reference for ODE orders of convergence and round trips.
//
// Prior mismatch. A likelihood computed with the prior π in place of the true p_T differs from the
// one with the true p_T, over the same solve, by exactly
//   m(x_T) = log π(x_T) − log p_T(x_T),
// so with the standard prior π = N(0, σ_prior² I) the error of log p_ε is m(x_T) plus the solve's
// own error (the "prior-mismatch term").
#pragma once

#include "scoresde/sde/batch.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {

// x_t from x_s (d × B) under the exact flow above. score must describe a single Gaussian under a
// scalar-affine SDE (its Transition(t) has A = α I and Q = σ² I). Throws InvalidArgument for a
// mixture with more than one component, a LinearSde score, shapes, or times outside [0, T].
void GaussianFlowMap(const GaussianMixtureScore& score, double s, double t, ConstBatchRef x_s,
                     BatchRef x_t);

// m(x_T) = log N(x_T; 0, prior_std² I) − log p_T(x_T) per column, p_T = score.Marginal(t_final).
// x_T is d × B, out has B entries. Throws InvalidArgument on shapes or prior_std ≤ 0.
void PriorMismatch(const GaussianMixtureScore& score, double t_final, double prior_std,
                   ConstBatchRef x_T, RowVectorRef out);

}  // namespace scoresde
