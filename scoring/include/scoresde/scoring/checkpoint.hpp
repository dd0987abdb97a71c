// Model files in the safetensors format (https://github.com/huggingface/safetensors), so PyTorch
// users can read and write them:
//
//   [8 bytes: N, unsigned little-endian] [N bytes: JSON header] [data buffer]
//   header = {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
//             "__metadata__": {"<key>": "<string>", ...}}
//
// offsets are relative to the data buffer, tensors are C-order (row-major) little-endian, the
// header is padded with spaces to a multiple of 8 bytes. The reader treats files as hostile input
// and throws InvalidArgument (never crashes) on: files shorter than 8 bytes; N above 100 MiB or
// beyond the end of the file; a header that is not a JSON object, nests deeper than 16 levels or
// repeats a name; entries that are not objects with exactly dtype/shape/data_offsets; unknown
// dtypes; negative, non-integer or overflowing shapes and offsets; begin > end; a byte count that
// is not the shape's element count times the dtype's size; and offsets that overlap, leave gaps
// or do not cover the data buffer exactly. Metadata values must be strings.
//
// A scoresde model file holds the MLP's trainable tensors under their layout names (mlp_score.hpp)
// and "fourier.weight", in F32 for float networks and F64 for double networks; optionally the EMA
// weights ("ema.<name>") and Adam's moments ("adam.m.<name>", "adam.v.<name>") for exact resume.
// __metadata__ holds "format" = "scoresde.mlp.v1", "model" (MlpConfig as JSON), "sde" (the SDE
// as JSON: {"family": "vp", "beta_min": …, "beta_max": …, "T": …}, VE with sigma_min, sigma_max,
// kernel), "step", "ema_updates" and "training" (loss, optimizer and trainer settings as JSON).
// Files are written atomically (temporary file, then rename).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

// ---- The format ---------------------------------------------------------------------------------

struct SafeTensor {
  std::string name;
  std::string dtype;            // F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL
  std::vector<int64_t> shape;
  std::string data;             // raw little-endian bytes, C order
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<SafeTensor> tensors;
  // The tensor with this name, or null.
  const SafeTensor* Find(std::string_view name) const;
};

// Size in bytes of one element of dtype; throws InvalidArgument for unknown dtypes.
int DTypeSize(std::string_view dtype);

// Bytes of a file. Throws InvalidArgument on invalid names (empty, "__metadata__", duplicates),
// unknown dtypes or data sizes that do not match the shape.
std::string SerializeSafetensors(const SafetensorsFile& file);
// Parses bytes; source names them in messages. Throws InvalidArgument as described above.
SafetensorsFile ParseSafetensors(std::string_view bytes, std::string_view source = "<bytes>");
void WriteSafetensors(const std::string& path, const SafetensorsFile& file);
// Reads at most max_bytes (default 16 GiB); throws InvalidArgument on unreadable or larger files.
SafetensorsFile ReadSafetensors(const std::string& path, int64_t max_bytes = int64_t{1} << 34);

// A tensor from values (F32 rounds, F64 keeps them) and back (F32 or F64 only; throws
// InvalidArgument otherwise or if the element count is not `expected` when expected ≥ 0).
SafeTensor MakeTensor(std::string name, const Eigen::VectorXd& values, std::vector<int64_t> shape,
                      bool float32);
Eigen::VectorXd TensorValues(const SafeTensor& tensor, int64_t expected = -1);

// ---- SDE and model descriptions (JSON text) ------------------------------------------------------

std::string DescribeSde(const ScalarAffineSde& sde);
// Builds the SDE on R^dim; throws InvalidArgument on unknown families or bad values.
std::shared_ptr<const ScalarAffineSde> SdeFromDescription(std::string_view json, int dim);
std::string DescribeMlp(const MlpConfig& config);
MlpConfig MlpFromDescription(std::string_view json);

// ---- Model checkpoints ---------------------------------------------------------------------------

struct ModelCheckpoint {
  MlpConfig config;
  std::shared_ptr<const ScalarAffineSde> sde;
  bool float32 = true;            // the network's precision (and the tensors' dtype)
  Eigen::VectorXd parameters;     // the layout's trainable vector
  Eigen::VectorXd fourier;        // fourier.weight
  Eigen::VectorXd ema;            // EMA weights (empty if absent)
  Eigen::VectorXd adam_m, adam_v; // Adam's moments (empty if absent)
  int64_t step = 0;
  int64_t ema_updates = 0;
  std::string training;           // JSON text: loss, optimizer and trainer settings ("" if none)
};

// Throws InvalidArgument if sizes do not match the layout, and Error on I/O failure.
void SaveCheckpoint(const std::string& path, const ModelCheckpoint& checkpoint);
// Throws InvalidArgument on malformed files, a format other than scoresde.mlp.v1, missing or
// mis-sized tensors.
ModelCheckpoint LoadCheckpoint(const std::string& path);
ModelCheckpoint CheckpointFromSafetensors(const SafetensorsFile& file, std::string_view source);
SafetensorsFile CheckpointToSafetensors(const ModelCheckpoint& checkpoint);

// The score model of a checkpoint: the EMA weights when present and use_ema, else the raw ones.
std::unique_ptr<MlpScore> MakeScoreModel(const ModelCheckpoint& checkpoint, bool use_ema = true);

}  // namespace scoresde
