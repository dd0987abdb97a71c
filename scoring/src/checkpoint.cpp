#include "scoresde/scoring/checkpoint.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "scoresde/scoring/array_io.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {

static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

namespace {

constexpr int64_t kMaxHeaderBytes = int64_t{100} << 20;  // 100 MiB
constexpr int kMaxNesting = 16;
constexpr const char* kFormat = "scoresde.mlp.v1";

[[noreturn]] void Reject(std::string_view source, const std::string& what) {
  throw InvalidArgument("safetensors " + std::string(source) + ": " + what);
}

// Deepest nesting of [ and { outside strings (a cheap guard before parsing).
int NestingDepth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

int64_t NonNegativeInteger(const nlohmann::json& value, std::string_view source,
                           const std::string& what) {
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
    Reject(source, what + " = " + value.dump() + "; must be a non-negative integer");
  }
  const uint64_t v = value.get<uint64_t>();
  if (v > (uint64_t{1} << 62)) Reject(source, what + " = " + value.dump() + "; too large");
  return static_cast<int64_t>(v);
}

}  // namespace

int DTypeSize(std::string_view dtype) {
  static const std::map<std::string, int, std::less<>> kSizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1}};
  const auto it = kSizes.find(dtype);
  Require(it != kSizes.end(), "safetensors", "dtype", dtype,
          "one of F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL");
  return it->second;
}

const SafeTensor* SafetensorsFile::Find(std::string_view name) const {
  for (const SafeTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string SerializeSafetensors(const SafetensorsFile& file) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> names;
  int64_t offset = 0;
  for (const SafeTensor& t : file.tensors) {
    Require(!t.name.empty() && t.name != "__metadata__", "SerializeSafetensors", "name", t.name,
            "non-empty and not __metadata__");
    Require(names.insert(t.name).second, "SerializeSafetensors", "name", t.name, "unique");
    int64_t count = 1;
    for (int64_t s : t.shape) {
      Require(s >= 0, "SerializeSafetensors", t.name + ".shape", s, ">= 0");
      count *= s;
    }
    Require(static_cast<int64_t>(t.data.size()) == count * DTypeSize(t.dtype),
            "SerializeSafetensors", t.name + ".data.size()", static_cast<int64_t>(t.data.size()),
            "shape product × dtype size = " + std::to_string(count * DTypeSize(t.dtype)));
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + static_cast<int64_t>(t.data.size())}}};
    offset += static_cast<int64_t>(t.data.size());
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t n = text.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += text;
  for (const SafeTensor& t : file.tensors) bytes += t.data;
  return bytes;
}

SafetensorsFile ParseSafetensors(std::string_view bytes, std::string_view source) {
  if (bytes.size() < 8) {
    Reject(source, "truncated: " + std::to_string(bytes.size()) +
                       " bytes; must hold at least the 8-byte header length");
  }
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > static_cast<uint64_t>(kMaxHeaderBytes)) {
    Reject(source, "header length = " + std::to_string(n) + "; must be at most 100 MiB");
  }
  if (n > bytes.size() - 8) {
    Reject(source, "header length = " + std::to_string(n) + " exceeds the file (" +
                       std::to_string(bytes.size()) + " bytes): truncated or corrupt");
  }
  const std::string_view text = bytes.substr(8, n);
  if (text.empty() || text.front() != '{') Reject(source, "header must be a JSON object");
  if (NestingDepth(text) > kMaxNesting) {
    Reject(source, "header nests deeper than " + std::to_string(kMaxNesting) + " levels");
  }
  // Parse, refusing duplicate names at the top level.
  std::set<std::string> keys;
  std::string duplicate;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        text.begin(), text.end(),
        [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (depth == 1 && event == nlohmann::json::parse_event_t::key &&
              !keys.insert(parsed.get<std::string>()).second && duplicate.empty()) {
            duplicate = parsed.get<std::string>();
          }
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    Reject(source, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!duplicate.empty()) Reject(source, "duplicate name '" + duplicate + "' in the header");
  if (!header.is_object()) Reject(source, "header must be a JSON object");

  const std::string_view buffer = bytes.substr(8 + n);
  SafetensorsFile file;
  struct Span {
    int64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) Reject(source, "__metadata__ must be an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          Reject(source, "__metadata__." + m.key() + " must be a string");
        }
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (name.empty()) Reject(source, "empty tensor name");
    if (!entry.is_object() || entry.size() != 3 || !entry.contains("dtype") ||
        !entry.contains("shape") || !entry.contains("data_offsets")) {
      Reject(source, "tensor '" + name + "' must be an object with exactly dtype, shape and "
                     "data_offsets");
    }
    SafeTensor tensor;
    tensor.name = name;
    if (!entry["dtype"].is_string()) Reject(source, name + ".dtype must be a string");
    tensor.dtype = entry["dtype"].get<std::string>();
    int element_size = 0;
    try {
      element_size = DTypeSize(tensor.dtype);
    } catch (const InvalidArgument&) {
      Reject(source, name + ".dtype = '" + tensor.dtype + "'; unknown dtype");
    }
    const nlohmann::json& shape = entry["shape"];
    if (!shape.is_array() || shape.size() > 64) {
      Reject(source, name + ".shape must be an array of at most 64 integers");
    }
    int64_t count = 1;
    for (size_t k = 0; k < shape.size(); ++k) {
      const int64_t s = NonNegativeInteger(shape[k], source, name + ".shape[" + std::to_string(k) + "]");
      tensor.shape.push_back(s);
      if (s != 0 && count > (int64_t{1} << 62) / s) {
        Reject(source, name + ".shape: element count overflows");
      }
      count *= s;
    }
    const nlohmann::json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) {
      Reject(source, name + ".data_offsets must be [begin, end]");
    }
    const int64_t begin = NonNegativeInteger(offsets[0], source, name + ".data_offsets[0]");
    const int64_t end = NonNegativeInteger(offsets[1], source, name + ".data_offsets[1]");
    if (begin > end) {
      Reject(source, name + ".data_offsets = [" + std::to_string(begin) + ", " +
                         std::to_string(end) + "]; begin must not exceed end");
    }
    if (count > (int64_t{1} << 62) / element_size || end - begin != count * element_size) {
      Reject(source, name + ": data_offsets span " + std::to_string(end - begin) +
                         " bytes; shape and dtype need " + std::to_string(count) + " × " +
                         std::to_string(element_size));
    }
    if (end > static_cast<int64_t>(buffer.size())) {
      Reject(source, name + ".data_offsets end = " + std::to_string(end) +
                         " is beyond the data buffer (" + std::to_string(buffer.size()) +
                         " bytes): truncated or corrupt");
    }
    spans.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(tensor));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  int64_t covered = 0;
  for (const Span& span : spans) {
    if (span.begin != covered) {
      Reject(source, "tensor '" + file.tensors[span.index].name + "' starts at " +
                         std::to_string(span.begin) + " but the previous data ends at " +
                         std::to_string(covered) +
                         (span.begin < covered ? " (overlap)" : " (gap)"));
    }
    covered = span.end;
  }
  if (covered != static_cast<int64_t>(buffer.size())) {
    Reject(source, "tensors cover " + std::to_string(covered) + " bytes of a " +
                       std::to_string(buffer.size()) + "-byte data buffer; must cover it exactly");
  }
  for (const Span& span : spans) {
    file.tensors[span.index].data = std::string(buffer.substr(span.begin, span.end - span.begin));
  }
  return file;
}

void WriteSafetensors(const std::string& path, const SafetensorsFile& file) {
  WriteFileAtomically(path, SerializeSafetensors(file));
}

SafetensorsFile ReadSafetensors(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  Require(std::filesystem::is_regular_file(path, ec), "ReadSafetensors", "path", path,
          "an existing regular file");
  const auto size = std::filesystem::file_size(path, ec);
  Require(!ec && static_cast<int64_t>(size) <= max_bytes, "ReadSafetensors", "file size",
          static_cast<int64_t>(size), "at most " + std::to_string(max_bytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  Require(static_cast<uint64_t>(in.gcount()) == size, "ReadSafetensors", "path", path,
          "readable");
  return ParseSafetensors(bytes, path);
}

SafeTensor MakeTensor(std::string name, const Eigen::VectorXd& values,
                      std::vector<int64_t> shape, bool float32) {
  SafeTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.dtype = float32 ? "F32" : "F64";
  if (float32) {
    const Eigen::VectorXf f = values.cast<float>();
    t.data.assign(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
  } else {
    t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
  }
  return t;
}

Eigen::VectorXd TensorValues(const SafeTensor& tensor, int64_t expected) {
  constexpr const char* kWhere = "TensorValues";
  Require(tensor.dtype == "F32" || tensor.dtype == "F64", kWhere, tensor.name + ".dtype",
          tensor.dtype, "F32 or F64");
  const int size = tensor.dtype == "F32" ? 4 : 8;
  const int64_t count = static_cast<int64_t>(tensor.data.size()) / size;
  Require(expected < 0 || count == expected, kWhere, tensor.name + " element count", count,
          std::to_string(expected));
  Eigen::VectorXd values(count);
  if (size == 4) {
    Eigen::VectorXf f(count);
    std::memcpy(f.data(), tensor.data.data(), tensor.data.size());
    values = f.cast<double>();
  } else {
    std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  }
  return values;
}

// ---- Descriptions --------------------------------------------------------------------------------

std::string DescribeSde(const ScalarAffineSde& sde) {
  nlohmann::ordered_json j;
  switch (sde.family()) {
    case SdeFamily::kVe: {
      const auto& o = static_cast<const VeSde&>(sde).options();
      j = {{"family", "ve"},
           {"sigma_min", o.sigma_min},
           {"sigma_max", o.sigma_max},
           {"T", o.t_final},
           {"kernel", o.kernel == VeKernel::kExact ? "exact" : "reference"}};
      break;
    }
    case SdeFamily::kVp:
    case SdeFamily::kSubVp: {
      const BetaSchedule& o = sde.family() == SdeFamily::kVp
                                  ? static_cast<const VpSde&>(sde).options()
                                  : static_cast<const SubVpSde&>(sde).options();
      j = {{"family", sde.family() == SdeFamily::kVp ? "vp" : "subvp"},
           {"beta_min", o.beta_min},
           {"beta_max", o.beta_max},
           {"T", o.t_final}};
      break;
    }
  }
  return j.dump();
}

namespace {

nlohmann::json ParseObject(std::string_view text, const char* what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string(what) + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw InvalidArgument(std::string(what) + ": must be a JSON object");
  return j;
}

template <typename T>
T Field(const nlohmann::json& j, const char* what, const char* key) {
  if (!j.contains(key)) {
    throw InvalidArgument(std::string(what) + ": missing key '" + key + "'");
  }
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InvalidArgument(std::string(what) + ": key '" + key + "' has the wrong type");
  }
}

}  // namespace

std::shared_ptr<const ScalarAffineSde> SdeFromDescription(std::string_view json, int dim) {
  constexpr const char* kWhat = "sde description";
  const nlohmann::json j = ParseObject(json, kWhat);
  const std::string family = Field<std::string>(j, kWhat, "family");
  if (family == "ve") {
    VeSde::Options o;
    o.sigma_min = Field<double>(j, kWhat, "sigma_min");
    o.sigma_max = Field<double>(j, kWhat, "sigma_max");
    o.t_final = Field<double>(j, kWhat, "T");
    const std::string kernel = Field<std::string>(j, kWhat, "kernel");
    Require(kernel == "exact" || kernel == "reference", kWhat, "kernel", kernel,
            "exact or reference");
    o.kernel = kernel == "exact" ? VeKernel::kExact : VeKernel::kReference;
    return std::make_shared<VeSde>(dim, o);
  }
  if (family == "vp" || family == "subvp") {
    BetaSchedule o;
    o.beta_min = Field<double>(j, kWhat, "beta_min");
    o.beta_max = Field<double>(j, kWhat, "beta_max");
    o.t_final = Field<double>(j, kWhat, "T");
    if (family == "vp") return std::make_shared<VpSde>(dim, o);
    return std::make_shared<SubVpSde>(dim, o);
  }
  Require(false, kWhat, "family", family, "ve, vp or subvp");
  return nullptr;
}

std::string DescribeMlp(const MlpConfig& c) {
  nlohmann::ordered_json j = {{"type", "mlp"},
                              {"dim", c.dim},
                              {"width", c.width},
                              {"depth", c.depth},
                              {"embed_dim", c.embed_dim},
                              {"fourier_scale", c.fourier_scale},
                              {"residual", c.residual},
                              {"parameterization", ToString(c.parameterization)},
                              {"data_std", c.data_std}};
  return j.dump();
}

MlpConfig MlpFromDescription(std::string_view json) {
  constexpr const char* kWhat = "model description";
  const nlohmann::json j = ParseObject(json, kWhat);
  Require(Field<std::string>(j, kWhat, "type") == "mlp", kWhat, "type",
          Field<std::string>(j, kWhat, "type"), "mlp");
  MlpConfig c;
  c.dim = Field<int>(j, kWhat, "dim");
  c.width = Field<int>(j, kWhat, "width");
  c.depth = Field<int>(j, kWhat, "depth");
  c.embed_dim = Field<int>(j, kWhat, "embed_dim");
  c.fourier_scale = Field<double>(j, kWhat, "fourier_scale");
  c.residual = Field<bool>(j, kWhat, "residual");
  c.parameterization = ParseParameterization(Field<std::string>(j, kWhat, "parameterization"));
  c.data_std = Field<double>(j, kWhat, "data_std");
  c.Validate();
  return c;
}

// ---- Checkpoints ---------------------------------------------------------------------------------

namespace {

int64_t ParameterCount(const MlpConfig& c) {
  int64_t p = 0;
  for (int l = 0; l <= c.depth; ++l) {
    const int64_t in = l == 0 ? c.input_dim() : c.width;
    const int64_t out = l == c.depth ? c.dim : c.width;
    p += in * out + out;
  }
  return p;
}

std::vector<MlpNetwork<double>::Tensor> LayoutOf(const MlpConfig& config) {
  // Building a double network just for its layout would draw the initialization; the layout only
  // depends on the config, so construct from zeros of the right size.
  MlpConfig c = config;
  c.Validate();
  const int64_t p = ParameterCount(c);
  const MlpNetwork<double> net(c, Eigen::VectorXd::Zero(p), Eigen::VectorXd::Zero(c.embed_dim / 2));
  return net.layout();
}

}  // namespace

SafetensorsFile CheckpointToSafetensors(const ModelCheckpoint& ck) {
  constexpr const char* kWhere = "SaveCheckpoint";
  Require(ck.sde != nullptr, kWhere, "sde", std::string("null"), "non-null");
  const auto layout = LayoutOf(ck.config);
  const int64_t p = layout.back().offset + layout.back().size;
  Require(ck.parameters.size() == p, kWhere, "parameters.size()",
          static_cast<int64_t>(ck.parameters.size()), std::to_string(p));
  Require(ck.fourier.size() == ck.config.embed_dim / 2, kWhere, "fourier.size()",
          static_cast<int64_t>(ck.fourier.size()), std::to_string(ck.config.embed_dim / 2));
  for (const auto* v : {&ck.ema, &ck.adam_m, &ck.adam_v}) {
    Require(v->size() == 0 || v->size() == p, kWhere, "optional state size",
            static_cast<int64_t>(v->size()), "0 or " + std::to_string(p));
  }
  SafetensorsFile file;
  file.metadata["format"] = kFormat;
  file.metadata["model"] = DescribeMlp(ck.config);
  file.metadata["sde"] = DescribeSde(*ck.sde);
  file.metadata["step"] = std::to_string(ck.step);
  file.metadata["ema_updates"] = std::to_string(ck.ema_updates);
  if (!ck.training.empty()) file.metadata["training"] = ck.training;
  auto add = [&](const std::string& prefix, const Eigen::VectorXd& v) {
    if (v.size() == 0) return;
    for (const auto& t : layout) {
      file.tensors.push_back(
          MakeTensor(prefix + t.name, v.segment(t.offset, t.size), t.shape, ck.float32));
    }
  };
  add("", ck.parameters);
  file.tensors.push_back(MakeTensor("fourier.weight", ck.fourier,
                                    {static_cast<int64_t>(ck.fourier.size())}, ck.float32));
  add("ema.", ck.ema);
  add("adam.m.", ck.adam_m);
  add("adam.v.", ck.adam_v);
  return file;
}

void SaveCheckpoint(const std::string& path, const ModelCheckpoint& checkpoint) {
  WriteSafetensors(path, CheckpointToSafetensors(checkpoint));
}

ModelCheckpoint CheckpointFromSafetensors(const SafetensorsFile& file, std::string_view source) {
  const std::string where = "model file " + std::string(source);
  auto meta = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) {
      throw InvalidArgument(where + ": __metadata__ has no '" + key +
                            "' (not a scoresde model file)");
    }
    return it->second;
  };
  if (meta("format") != kFormat) {
    throw InvalidArgument(where + ": format = '" + meta("format") + "'; must be " + kFormat);
  }
  ModelCheckpoint ck;
  ck.config = MlpFromDescription(meta("model"));
  ck.sde = SdeFromDescription(meta("sde"), ck.config.dim);
  auto integer = [&](const char* key) {
    const std::string& text = meta(key);
    int64_t value = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || value < 0) {
      throw InvalidArgument(where + ": " + key + " = '" + text + "'; must be an integer >= 0");
    }
    return value;
  };
  ck.step = integer("step");
  ck.ema_updates = integer("ema_updates");
  if (const auto it = file.metadata.find("training"); it != file.metadata.end()) {
    ck.training = it->second;
  }
  // A hostile description could ask for a huge network: its tensors must be in the file, so
  // bound the size by the file's data before allocating anything.
  int64_t stored = 0;
  for (const SafeTensor& t : file.tensors) stored += static_cast<int64_t>(t.data.size());
  if (ParameterCount(ck.config) > stored / 4) {
    throw InvalidArgument(where + ": the model description needs " +
                          std::to_string(ParameterCount(ck.config)) +
                          " parameters but the file holds " + std::to_string(stored) +
                          " bytes of tensors");
  }
  const auto layout = LayoutOf(ck.config);
  const int64_t p = layout.back().offset + layout.back().size;
  const SafeTensor* first = file.Find(layout.front().name);
  if (first == nullptr) throw InvalidArgument(where + ": missing tensor " + layout.front().name);
  ck.float32 = first->dtype == "F32";
  auto read = [&](const std::string& prefix, bool required) {
    Eigen::VectorXd v(p);
    for (const auto& t : layout) {
      const SafeTensor* tensor = file.Find(prefix + t.name);
      if (tensor == nullptr) {
        if (required) throw InvalidArgument(where + ": missing tensor " + prefix + t.name);
        return Eigen::VectorXd();
      }
      if (tensor->shape != t.shape) {
        throw InvalidArgument(where + ": tensor " + prefix + t.name +
                              " has the wrong shape for the model description");
      }
      v.segment(t.offset, t.size) = TensorValues(*tensor, t.size);
    }
    return v;
  };
  ck.parameters = read("", true);
  const SafeTensor* fourier = file.Find("fourier.weight");
  if (fourier == nullptr) throw InvalidArgument(where + ": missing tensor fourier.weight");
  ck.fourier = TensorValues(*fourier, ck.config.embed_dim / 2);
  ck.ema = read("ema.", false);
  ck.adam_m = read("adam.m.", false);
  ck.adam_v = read("adam.v.", false);
  for (const auto* v : {&ck.parameters, &ck.fourier, &ck.ema, &ck.adam_m, &ck.adam_v}) {
    if (!v->allFinite()) throw InvalidArgument(where + ": tensors hold non-finite values");
  }
  return ck;
}

ModelCheckpoint LoadCheckpoint(const std::string& path) {
  return CheckpointFromSafetensors(ReadSafetensors(path), path);
}

std::unique_ptr<MlpScore> MakeScoreModel(const ModelCheckpoint& ck, bool use_ema) {
  const Eigen::VectorXd& weights = use_ema && ck.ema.size() > 0 ? ck.ema : ck.parameters;
  if (ck.float32) {
    auto net = std::make_shared<MlpNetwork<float>>(ck.config, weights.cast<float>(),
                                                   ck.fourier.cast<float>());
    return std::make_unique<MlpScore>(std::move(net), ck.sde);
  }
  auto net = std::make_shared<MlpNetwork<double>>(ck.config, weights, ck.fourier);
  return std::make_unique<MlpScore>(std::move(net), ck.sde);
}

}  // namespace scoresde
