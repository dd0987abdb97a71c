// Sample and data files: NumPy's .npy (format versions 1–3, float32 or float64, shape (B, d) or
// (B,)) and comma-separated text. A d × B batch is exactly a C-order (B, d) array, so reading and
// writing need no transposition. Files are written atomically (a temporary name, then rename), and
// malformed or hostile files are rejected with InvalidArgument naming the file and the problem.
#pragma once

#include <cstdint>
#include <string>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

enum class NpyPrecision { kFloat32, kFloat64 };

// Reads a (B, d) or (B,) float32/float64 array (little-endian, C or Fortran order) as a d × B
// batch. Throws InvalidArgument on anything else, on truncation, or above max_bytes of data.
Batch ReadNpy(const std::string& path, int64_t max_bytes = int64_t{1} << 34);
// Writes x (d × B) as a C-order (B, d) array.
void WriteNpy(const std::string& path, ConstBatchRef x,
              NpyPrecision precision = NpyPrecision::kFloat64);

// One sample per line, values separated by commas; a first line that is not numeric is taken as
// a header and skipped. Every row must have the same number of values.
Batch ReadCsv(const std::string& path);
// Writes one sample per line with 17 significant digits (round-trips doubles); header optional.
void WriteCsv(const std::string& path, ConstBatchRef x, const std::string& header = "");

// Reads .npy or .csv by extension.
Batch ReadArray(const std::string& path);
// Writes .npy or .csv by extension (throws InvalidArgument for anything else).
void WriteArray(const std::string& path, ConstBatchRef x);

// Writes bytes to path through a temporary file in the same directory and an atomic rename, so
// readers never see a half-written file. Throws Error on I/O failure (the temporary is removed).
void WriteFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace scoresde
