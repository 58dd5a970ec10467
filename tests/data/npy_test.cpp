// .npy reading and writing: files numpy itself wrote (tests/data/golden/npy_*), round trips, bad headers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aciq/data.hpp"

namespace aciq::data {
namespace {

namespace fs = std::filesystem;
const fs::path kGolden = fs::path(ACIQ_SOURCE_DIR) / "tests/data/golden";

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("aciq_npy_test_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Written by numpy 1.24: np.save of arange(6).reshape(2,3) - 2.5 (float32), [7, -1, 0, 2^40] (int64)
// and format.write_array(version=(2,0)) of arange(8).reshape(2,2,2) (uint8).
TEST(Npy, ReadsWhatNumpyWrote) {
  const auto f = NpyArray::open((kGolden / "npy_f32_2x3.npy").string());
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.shape(), (Shape{2, 3}));
  const Tensor rows = f.rows(1, 1);
  ASSERT_EQ(rows.shape(), (Shape{1, 3}));
  EXPECT_EQ(rows.data<float>()[0], 0.5f);
  EXPECT_EQ(rows.data<float>()[2], 2.5f);
  const auto i = NpyArray::open((kGolden / "npy_i64_4.npy").string());
  EXPECT_EQ(i.dtype(), DType::kInt64);
  EXPECT_EQ(i.rows(0, 4).to_i64_vector(), (std::vector<std::int64_t>{7, -1, 0, std::int64_t{1} << 40}));
  const auto u = NpyArray::open((kGolden / "npy_v2_u8_2x2x2.npy").string());
  EXPECT_EQ(u.dtype(), DType::kUInt8);
  EXPECT_EQ(u.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(u.rows(1, 1).data<std::uint8_t>()[3], 7);
}

// Our writer produces numpy's exact bytes for the same array (header padding included).
TEST(Npy, WriterMatchesNumpyBytes) {
  TempDir t;
  Tensor x(DType::kFloat32, {2, 3});
  for (int k = 0; k < 6; ++k) x.data<float>()[k] = static_cast<float>(k) - 2.5f;
  const auto out = (t.dir / "x.npy").string();
  NpyWriter w(out, DType::kFloat32, {2, 3});
  w.append(x.reshaped({2, 3}));
  w.finish();
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(slurp(out), slurp(kGolden / "npy_f32_2x3.npy"));
  Tensor v = Tensor::from_i64({4}, std::vector<std::int64_t>{7, -1, 0, std::int64_t{1} << 40});
  write_npy((t.dir / "i.npy").string(), v);
  EXPECT_EQ(slurp(t.dir / "i.npy"), slurp(kGolden / "npy_i64_4.npy"));
}

TEST(Npy, UnfinishedWriterLeavesNothing) {
  TempDir t;
  {
    NpyWriter w((t.dir / "y.npy").string(), DType::kFloat32, {4, 2});
    w.append(Tensor(DType::kFloat32, {1, 2}));
    EXPECT_THROW(w.append(Tensor(DType::kFloat32, {1, 3})), Error);  // wrong row shape
    EXPECT_THROW(w.finish(), Error);                                 // 1 of 4 rows
  }
  EXPECT_TRUE(fs::is_empty(t.dir));
}

TEST(Npy, BadFilesAreOneLineErrorsNamingTheFile) {
  TempDir t;
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream((t.dir / name).string(), std::ios::binary) << bytes;
    return (t.dir / name).string();
  };
  auto expect_error = [](const std::string& path, const std::string& needle) {
    try {
      (void)NpyArray::open(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect_error(write("magic.npy", "not numpy at all"), "bad magic");
  std::ifstream in(kGolden / "npy_f32_2x3.npy", std::ios::binary);
  std::string good(std::istreambuf_iterator<char>(in), {});
  expect_error(write("short.npy", good.substr(0, good.size() - 4)), "needs 24");
  std::string f8 = good;
  f8.replace(f8.find("<f4"), 3, "<f8");
  expect_error(write("f8.npy", f8), "float64");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  expect_error(write("fortran.npy", fortran), "Fortran");
  expect_error(t.dir.string(), "is a directory");
}

}  // namespace
}  // namespace aciq::data
