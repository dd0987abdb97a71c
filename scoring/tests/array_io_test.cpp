#include "scoresde/scoring/array_io.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

class ArrayIo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("scoresde_array_io_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void WriteRaw(const std::string& name, const std::string& bytes) const {
    std::ofstream(Path(name), std::ios::binary) << bytes;
  }
  // A v1.0 header for the given dict text, padded like NumPy's.
  static std::string NpyHeader(std::string dict) {
    const size_t unpadded = 10 + dict.size() + 1;
    dict.append((64 - unpadded % 64) % 64, ' ');
    dict.push_back('\n');
    std::string bytes("\x93NUMPY\x01\x00", 8);
    bytes.push_back(static_cast<char>(dict.size() & 0xff));
    bytes.push_back(static_cast<char>(dict.size() >> 8));
    return bytes + dict;
  }
  std::filesystem::path dir_;
};

TEST_F(ArrayIo, NpyRoundTripsInBothPrecisions) {
  const Batch x = Batch::Random(3, 5);
  WriteNpy(Path("a.npy"), x);
  EXPECT_EQ(ReadNpy(Path("a.npy")), x);
  WriteNpy(Path("b.npy"), x, NpyPrecision::kFloat32);
  EXPECT_EQ(ReadNpy(Path("b.npy")), x.cast<float>().cast<double>());
  // Data starts on a 64-byte boundary.
  EXPECT_EQ((std::filesystem::file_size(Path("a.npy")) - 15 * 8) % 64, 0u);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2);
}

TEST_F(ArrayIo, NpyReadsFortranOrderAndOneDimensionalArrays) {
  // A (2, 3) Fortran-order array holds columns of the (B, d) matrix: its bytes are a 3 × 2
  // column-major batch transposed.
  std::string bytes = NpyHeader("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }");
  const double values[6] = {1, 2, 3, 4, 5, 6};  // column-major (2, 3): rows (1,3,5), (2,4,6)
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  WriteRaw("f.npy", bytes);
  const Batch f = ReadNpy(Path("f.npy"));
  ASSERT_EQ(f.rows(), 3);
  ASSERT_EQ(f.cols(), 2);
  EXPECT_EQ(f(0, 0), 1);
  EXPECT_EQ(f(1, 0), 3);
  EXPECT_EQ(f(2, 1), 6);
  std::string one = NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }");
  one.append(reinterpret_cast<const char*>(values), 3 * sizeof(double));
  WriteRaw("one.npy", one);
  const Batch o = ReadNpy(Path("one.npy"));
  EXPECT_EQ(o.rows(), 1);
  EXPECT_EQ(o.cols(), 3);
}

TEST_F(ArrayIo, NpyRejectsHostileFiles) {
  const auto rejects = [&](const std::string& name, const std::string& bytes,
                           const std::string& why) {
    WriteRaw(name, bytes);
    EXPECT_THAT([&] { ReadNpy(Path(name)); }, ThrowsMessage<InvalidArgument>(HasSubstr(why)))
        << name;
  };
  rejects("magic.npy", "not numpy at all", "bad magic");
  rejects("short.npy", "\x93NUMPY", "bad magic");
  rejects("version.npy", std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' '),
          "version 9");
  rejects("truncated_header.npy", std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 17),
          "truncated header");
  std::string huge_header("\x93NUMPY\x02\x00", 8);
  const uint32_t length = 1u << 30;
  huge_header.append(reinterpret_cast<const char*>(&length), 4);
  rejects("huge_header.npy", huge_header, "64 KiB");
  rejects("dtype.npy", NpyHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }"),
          "dtype");
  rejects("bigendian.npy",
          NpyHeader("{'descr': '>f8', 'fortran_order': False, 'shape': (1, 1), }"), "dtype");
  rejects("rank3.npy", NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1), }"),
          "3 dimensions");
  rejects("nodescr.npy", NpyHeader("{'fortran_order': False, 'shape': (1, 1), }"), "descr");
  rejects("order.npy", NpyHeader("{'descr': '<f8', 'fortran_order': 0, 'shape': (1, 1), }"),
          "fortran_order");
  rejects("shape.npy", NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1, x), }"),
          "bad dimension");
  rejects("negative.npy",
          NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 2), }"),
          "bad dimension");
  rejects("overflow.npy",
          NpyHeader("{'descr': '<f8', 'fortran_order': False, "
                    "'shape': (4611686018427387904, 4611686018427387904), }"),
          "larger than");
  rejects("empty.npy", NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2), }"),
          "empty");
  rejects("truncated_data.npy",
          NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }") +
              std::string(31, '\0'),
          "promises 32");
  rejects("extra_data.npy",
          NpyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }") +
              std::string(9, '\0'),
          "promises 8");
  EXPECT_THROW(ReadNpy(Path("missing.npy")), InvalidArgument);
}

TEST_F(ArrayIo, CsvRoundTripsExactlyWithHeader) {
  const Batch x = Batch::Random(2, 4);
  WriteCsv(Path("a.csv"), x, "x0,x1");
  EXPECT_EQ(ReadCsv(Path("a.csv")), x);
  WriteArray(Path("b.csv"), x);
  EXPECT_EQ(ReadArray(Path("b.csv")), x);
  WriteArray(Path("c.npy"), x);
  EXPECT_EQ(ReadArray(Path("c.npy")), x);
  EXPECT_THROW(WriteArray(Path("d.txt"), x), InvalidArgument);
  EXPECT_THROW(ReadArray(Path("d.txt")), InvalidArgument);
}

TEST_F(ArrayIo, CsvRejectsRaggedAndNonNumericRows) {
  WriteRaw("ragged.csv", "1,2\n3\n");
  EXPECT_THAT([&] { ReadCsv(Path("ragged.csv")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("line 2 has 1 values")));
  WriteRaw("text.csv", "a,b\n1,2\nx,y\n");
  EXPECT_THAT([&] { ReadCsv(Path("text.csv")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("line 3 is not a list of numbers")));
  WriteRaw("empty.csv", "a,b\n\n");
  EXPECT_THAT([&] { ReadCsv(Path("empty.csv")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("no data rows")));
  WriteRaw("crlf.csv", "1.5, 2\r\n3,4\r\n");
  const Batch x = ReadCsv(Path("crlf.csv"));
  EXPECT_EQ(x(0, 0), 1.5);
  EXPECT_EQ(x(1, 1), 4.0);
}

TEST_F(ArrayIo, AtomicWriteFailsCleanlyInAMissingDirectory) {
  EXPECT_THROW(WriteFileAtomically(Path("no/such/dir/file"), "x"), Error);
}

}  // namespace
}  // namespace scoresde
