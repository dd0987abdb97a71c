#include "scoresde/scoring/array_io.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <vector>

#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {

static_assert(std::endian::native == std::endian::little, "scoresde assumes a little-endian host");

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kMaxHeaderBytes = 1 << 16;

[[noreturn]] void Reject(const std::string& path, const std::string& why) {
  throw InvalidArgument("ReadNpy: " + path + ": " + why);
}

std::string ReadAll(const std::string& path, const char* where, int64_t max_bytes) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) throw InvalidArgument(std::string(where) + ": cannot read " + path + ": " +
                                   error.message());
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(max_bytes)) {
    throw InvalidArgument(std::string(where) + ": " + path + " has " + std::to_string(size) +
                          " bytes; must be at most " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument(std::string(where) + ": cannot open " + path);
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) {
    throw InvalidArgument(std::string(where) + ": short read from " + path);
  }
  return bytes;
}

// The value of `key` in a NumPy header dict, as raw text up to the next top-level comma or '}'.
std::string_view HeaderValue(std::string_view header, std::string_view key,
                             const std::string& path) {
  const std::string quoted_single = "'" + std::string(key) + "'";
  const std::string quoted_double = "\"" + std::string(key) + "\"";
  size_t at = header.find(quoted_single);
  size_t length = quoted_single.size();
  if (at == std::string_view::npos) {
    at = header.find(quoted_double);
    length = quoted_double.size();
  }
  if (at == std::string_view::npos) Reject(path, "header has no '" + std::string(key) + "'");
  size_t colon = header.find(':', at + length);
  if (colon == std::string_view::npos) Reject(path, "header is malformed near " + std::string(key));
  size_t begin = colon + 1;
  int depth = 0;
  size_t end = begin;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (depth < 0 || (depth == 0 && (c == ',' || c == '}'))) break;
  }
  if (depth != 0 && end >= header.size()) Reject(path, "header is malformed near " +
                                                    std::string(key));
  std::string_view value = header.substr(begin, end - begin);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
    value.remove_prefix(1);
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  return value;
}

std::vector<int64_t> ParseShape(std::string_view text, const std::string& path) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    Reject(path, "shape '" + std::string(text) + "' is not a tuple");
  }
  text = text.substr(1, text.size() - 2);
  std::vector<int64_t> shape;
  size_t position = 0;
  while (position < text.size()) {
    while (position < text.size() && (text[position] == ' ' || text[position] == ',')) ++position;
    if (position >= text.size()) break;
    int64_t value = 0;
    const auto result = std::from_chars(text.data() + position, text.data() + text.size(), value);
    if (result.ec != std::errc() || value < 0) {
      Reject(path, "shape '" + std::string(text) + "' has a bad dimension");
    }
    shape.push_back(value);
    position = static_cast<size_t>(result.ptr - text.data());
    if (position < text.size() && text[position] != ',' && text[position] != ' ') {
      Reject(path, "shape '" + std::string(text) + "' has a bad separator");
    }
  }
  return shape;
}

}  // namespace

Batch ReadNpy(const std::string& path, int64_t max_bytes) {
  const std::string bytes = ReadAll(path, "ReadNpy", max_bytes + int64_t{kMaxHeaderBytes} + 16);
  if (bytes.size() < 10 || std::string_view(bytes).substr(0, 6) != kMagic) {
    Reject(path, "not a .npy file (bad magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_length = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(bytes[8]) |
                    (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) Reject(path, "truncated header");
    uint32_t length32 = 0;
    std::memcpy(&length32, bytes.data() + 8, 4);
    header_length = length32;
    header_start = 12;
  } else {
    Reject(path, "unsupported format version " + std::to_string(major));
  }
  if (header_length > kMaxHeaderBytes) Reject(path, "header is larger than 64 KiB");
  if (header_start + header_length > bytes.size()) Reject(path, "truncated header");
  const std::string_view header(bytes.data() + header_start, header_length);

  const std::string_view descr = HeaderValue(header, "descr", path);
  size_t element_size = 0;
  if (descr == "'<f8'" || descr == "\"<f8\"" || descr == "'=f8'") {
    element_size = 8;
  } else if (descr == "'<f4'" || descr == "\"<f4\"" || descr == "'=f4'") {
    element_size = 4;
  } else {
    Reject(path, "dtype " + std::string(descr) + " is not little-endian float32 or float64");
  }
  const std::string_view order = HeaderValue(header, "fortran_order", path);
  bool fortran = false;
  if (order == "True") {
    fortran = true;
  } else if (order != "False") {
    Reject(path, "fortran_order '" + std::string(order) + "' is not True or False");
  }
  const std::vector<int64_t> shape = ParseShape(HeaderValue(header, "shape", path), path);
  if (shape.empty() || shape.size() > 2) {
    Reject(path, "array has " + std::to_string(shape.size()) + " dimensions; must be 1 or 2");
  }
  const int64_t rows = shape[0];                          // samples
  const int64_t cols = shape.size() == 2 ? shape[1] : 1;  // dimension
  if (rows == 0 || cols == 0) Reject(path, "array is empty");
  // Division, not multiplication, so that hostile shapes cannot overflow.
  if (cols > max_bytes / static_cast<int64_t>(element_size) / rows) {
    Reject(path, "array is larger than " + std::to_string(max_bytes) + " bytes");
  }
  const size_t data_bytes = static_cast<size_t>(rows * cols) * element_size;
  const size_t data_start = header_start + header_length;
  if (bytes.size() - data_start != data_bytes) {
    Reject(path, "data has " + std::to_string(bytes.size() - data_start) + " bytes; the header " +
                     "promises " + std::to_string(data_bytes));
  }
  // C order (B, d) is a d × B column-major batch; Fortran order is its transpose.
  Batch out(fortran ? rows : cols, fortran ? cols : rows);
  const char* data = bytes.data() + data_start;
  if (element_size == 8) {
    std::memcpy(out.data(), data, data_bytes);
  } else {
    for (int64_t i = 0; i < rows * cols; ++i) {
      float value;
      std::memcpy(&value, data + i * 4, 4);
      out.data()[i] = value;
    }
  }
  if (fortran) out.transposeInPlace();
  return out;
}

void WriteNpy(const std::string& path, ConstBatchRef x, NpyPrecision precision) {
  const bool f8 = precision == NpyPrecision::kFloat64;
  std::string header = "{'descr': '" + std::string(f8 ? "<f8" : "<f4") +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(x.cols()) + ", " +
                       std::to_string(x.rows()) + "), }";
  // Pad so that the data starts on a 64-byte boundary, newline last (NumPy's layout).
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes(kMagic);
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  bytes += header;
  const Batch contiguous = x;  // a Ref may have an outer stride
  if (f8) {
    bytes.append(reinterpret_cast<const char*>(contiguous.data()),
                 static_cast<size_t>(contiguous.size()) * 8);
  } else {
    const Eigen::MatrixXf single = contiguous.cast<float>();
    bytes.append(reinterpret_cast<const char*>(single.data()),
                 static_cast<size_t>(single.size()) * 4);
  }
  WriteFileAtomically(path, bytes);
}

Batch ReadCsv(const std::string& path) {
  const std::string text = ReadAll(path, "ReadCsv", int64_t{1} << 32);
  std::vector<double> values;
  int64_t width = -1;
  int64_t rows = 0;
  std::istringstream lines(text);
  std::string line;
  int64_t line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<double> row;
    bool numeric = true;
    size_t position = 0;
    while (position <= line.size()) {
      size_t comma = line.find(',', position);
      if (comma == std::string::npos) comma = line.size();
      std::string_view field(line.data() + position, comma - position);
      while (!field.empty() && std::isspace(static_cast<unsigned char>(field.front()))) {
        field.remove_prefix(1);
      }
      while (!field.empty() && std::isspace(static_cast<unsigned char>(field.back()))) {
        field.remove_suffix(1);
      }
      double value = 0.0;
      const auto result = std::from_chars(field.data(), field.data() + field.size(), value);
      if (field.empty() || result.ec != std::errc() || result.ptr != field.data() + field.size()) {
        numeric = false;
        break;
      }
      row.push_back(value);
      position = comma + 1;
    }
    if (!numeric) {
      if (rows == 0 && values.empty() && width < 0) {
        width = 0;  // a header line; remember that one was seen
        continue;
      }
      throw InvalidArgument("ReadCsv: " + path + ": line " + std::to_string(line_number) +
                            " is not a list of numbers");
    }
    if (width <= 0) width = static_cast<int64_t>(row.size());
    if (static_cast<int64_t>(row.size()) != width) {
      throw InvalidArgument("ReadCsv: " + path + ": line " + std::to_string(line_number) +
                            " has " + std::to_string(row.size()) + " values; must have " +
                            std::to_string(width));
    }
    values.insert(values.end(), row.begin(), row.end());
    ++rows;
  }
  if (rows == 0) throw InvalidArgument("ReadCsv: " + path + ": no data rows");
  Batch out(width, rows);
  std::copy(values.begin(), values.end(), out.data());
  return out;
}

void WriteCsv(const std::string& path, ConstBatchRef x, const std::string& header) {
  std::string text;
  if (!header.empty()) text += header + "\n";
  char buffer[32];
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      if (i > 0) text.push_back(',');
      const auto result = std::to_chars(buffer, buffer + sizeof(buffer), x(i, j));
      text.append(buffer, result.ptr);
    }
    text.push_back('\n');
  }
  WriteFileAtomically(path, text);
}

namespace {

std::string Extension(const std::string& path) {
  return std::filesystem::path(path).extension().string();
}

}  // namespace

Batch ReadArray(const std::string& path) {
  const std::string extension = Extension(path);
  if (extension == ".npy") return ReadNpy(path);
  if (extension == ".csv") return ReadCsv(path);
  throw InvalidArgument("ReadArray: " + path + ": extension '" + extension +
                        "'; must be .npy or .csv");
}

void WriteArray(const std::string& path, ConstBatchRef x) {
  const std::string extension = Extension(path);
  if (extension == ".npy") return WriteNpy(path, x);
  if (extension == ".csv") return WriteCsv(path, x);
  throw InvalidArgument("WriteArray: " + path + ": extension '" + extension +
                        "'; must be .npy or .csv");
}

void WriteFileAtomically(const std::string& path, const std::string& bytes) {
  const std::filesystem::path target(path);
  const std::filesystem::path temporary =
      target.parent_path() /
      ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
  FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) {
    throw Error("WriteFileAtomically: cannot create " + temporary.string() + ": " +
                std::strerror(errno));
  }
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  const bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  const bool closed = std::fclose(file) == 0;
  if (!written || !flushed || !closed) {
    std::filesystem::remove(temporary);
    throw Error("WriteFileAtomically: cannot write " + temporary.string());
  }
  std::error_code error;
  std::filesystem::rename(temporary, target, error);
  if (error) {
    std::filesystem::remove(temporary);
    throw Error("WriteFileAtomically: cannot rename to " + path + ": " + error.message());
  }
}

}  // namespace scoresde
