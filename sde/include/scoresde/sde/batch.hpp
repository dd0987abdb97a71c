// Batches: one sample per column.
//
// A batch of B samples in R^d is an Eigen column-major d × B matrix; column j is sample j. Its
// memory is exactly a row-major (B, d) NumPy or PyTorch array, so .npy and safetensors exchange
// needs no copy, each sample is contiguous, and a thread's share of a batch is the view
// x.middleCols(first, count).
#pragma once

#include <cstdint>

#include <Eigen/Core>

namespace scoresde {

using Vector = Eigen::VectorXd;
using Matrix = Eigen::MatrixXd;
using Batch = Eigen::MatrixXd;                    // d × B
using BatchRef = Eigen::Ref<Batch>;               // writable view of a batch or of some columns
using ConstBatchRef = Eigen::Ref<const Batch>;    // read-only view
using RowVector = Eigen::RowVectorXd;             // one value per sample (times, log-densities)
using RowVectorRef = Eigen::Ref<RowVector>;
using ConstRowVectorRef = Eigen::Ref<const RowVector>;
using VectorRef = Eigen::Ref<Vector>;
using ConstVectorRef = Eigen::Ref<const Vector>;
using MatrixRef = Eigen::Ref<Matrix>;
using ConstMatrixRef = Eigen::Ref<const Matrix>;

}  // namespace scoresde
