// Tests for IDX parsing: real Fashion-MNIST (gzip and raw), synthetic files, and every malformed input.
#include <unistd.h>

#include <cmath>
#include <numeric>

#include "aciq/data.hpp"
#include "data/byte_stream.hpp"
#include "test_util.hpp"

namespace aciq::data {
namespace {

using testing::Bytes;
using testing::expect_error;
using testing::TempDir;

// Undo Normalize + ToTensor to recover the stored byte (exact: the normalization is monotonic and the
// values are 1/255 apart).
int to_byte(float x, float mean = 0.2860f, float std = 0.3530f) {
  return static_cast<int>(std::lround((x * std + mean) * 255.0f));
}

std::vector<float> read_sample(SampleReader& r, const Dataset& ds, std::int64_t* label = nullptr) {
  std::vector<float> v(static_cast<std::size_t>(ds.sample_numel()));
  const std::int64_t l = r.read(v);
  if (label) *label = l;
  return v;
}

std::int64_t byte_sum(const std::vector<float>& v) {
  std::int64_t s = 0;
  for (float x : v) s += to_byte(x);
  return s;
}

// Expected values were computed once with Python (gzip + numpy.frombuffer over the same files):
//   lb = frombuffer(gzip.open('t10k-labels-idx1-ubyte.gz').read(), uint8, offset=8)
//   im = frombuffer(gzip.open('t10k-images-idx3-ubyte.gz').read(), uint8, offset=16).reshape(-1, 28, 28)
//   lb[:12], im[i].sum(), im[i, 14, 14], im[i, 5, 10]
TEST(FashionMnist, TestSplitMatchesIndependentDecode) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST at " << testing::kFashionDir;
  auto ds = open_fashion_mnist(testing::kFashionDir, Split::kTest);
  EXPECT_EQ(ds->size(), 10000);
  EXPECT_EQ(ds->sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(ds->num_classes(), 10);
  EXPECT_EQ(ds->describe(), "fashion-mnist test (" + testing::kFashionDir + ")");
  EXPECT_FALSE(ds->random_access());

  auto r = ds->open_reader(0);
  const std::vector<std::int64_t> first_labels{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};
  std::vector<std::vector<float>> imgs;
  for (std::int64_t want : first_labels) {
    std::int64_t label = -1;
    imgs.push_back(read_sample(*r, *ds, &label));
    EXPECT_EQ(label, want);
  }
  EXPECT_EQ(byte_sum(imgs[0]), 33456);
  EXPECT_EQ(to_byte(imgs[0][14 * 28 + 14]), 110);
  EXPECT_EQ(to_byte(imgs[0][5 * 28 + 10]), 0);
  EXPECT_EQ(byte_sum(imgs[1]), 100994);
  EXPECT_EQ(to_byte(imgs[1][14 * 28 + 14]), 234);
  EXPECT_EQ(to_byte(imgs[1][5 * 28 + 10]), 47);
  // The normalized value itself, computed as torch does in float32.
  EXPECT_EQ(imgs[0][14 * 28 + 14], (110.0f / 255.0f - 0.2860f) / 0.3530f);

  r->seek(9999);  // forward: skips by inflating
  std::int64_t label = -1;
  const auto last = read_sample(*r, *ds, &label);
  EXPECT_EQ(label, 5);
  EXPECT_EQ(byte_sum(last), 24390);
  EXPECT_EQ(to_byte(last[14 * 28 + 14]), 132);
  EXPECT_EQ(r->position(), 10000);
  EXPECT_THROW((void)read_sample(*r, *ds), Error);

  r->seek(1);  // backward: restarts the stream
  EXPECT_EQ(byte_sum(read_sample(*r, *ds)), 100994);
}

TEST(FashionMnist, TrainSplit) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST at " << testing::kFashionDir;
  auto ds = open_fashion_mnist(testing::kFashionDir, Split::kTrain);
  EXPECT_EQ(ds->size(), 60000);
  auto r = ds->open_reader(0);
  for (std::int64_t want : {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9}) {
    std::int64_t label = -1;
    const auto img = read_sample(*r, *ds, &label);
    EXPECT_EQ(label, want);
    if (r->position() == 1) {
      EXPECT_EQ(byte_sum(img), 76247);
    }
  }
  auto tail = ds->open_reader(59999);
  std::int64_t label = -1;
  EXPECT_EQ(byte_sum(read_sample(*tail, *ds, &label)), 16684);
  EXPECT_EQ(label, 5);
}

// The raw (gunzipped) files give the same samples as the .gz files.
TEST(FashionMnist, RawFilesMatchGzip) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST at " << testing::kFashionDir;
  TempDir dir;
  for (const std::string stem : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    auto in = detail::open_stream({testing::kFashionDir + "/" + stem + ".gz", nullptr});
    Bytes raw(1 << 24);
    raw.resize(in->read(raw.data(), raw.size()));
    testing::write_bytes(dir / stem, raw);
  }
  auto gz = open_fashion_mnist(testing::kFashionDir, Split::kTest);
  auto plain = open_fashion_mnist(dir.path(), Split::kTest);  // finds the files without .gz
  EXPECT_EQ(plain->size(), 10000);
  auto a = gz->open_reader(0), b = plain->open_reader(0);
  for (int i = 0; i < 300; ++i) {
    std::int64_t la = -1, lb = -2;
    EXPECT_EQ(read_sample(*a, *gz, &la), read_sample(*b, *plain, &lb));
    EXPECT_EQ(la, lb);
  }
  auto c = plain->open_reader(9998);
  std::int64_t label = -1;
  (void)read_sample(*c, *plain, &label);
  EXPECT_EQ(label, 1);  // lb[-2]
}

struct Synthetic {
  Bytes images, labels;
  std::vector<Bytes> pixels;
};

Synthetic synthetic(int n, int rows, int cols) {
  Synthetic s;
  Bytes payload, labels;
  for (int i = 0; i < n; ++i) {
    Bytes img;
    for (int p = 0; p < rows * cols; ++p) img.push_back(static_cast<std::uint8_t>((i * 37 + p * 11) % 256));
    payload.insert(payload.end(), img.begin(), img.end());
    s.pixels.push_back(img);
    labels.push_back(static_cast<std::uint8_t>((i * 3) % 7));
  }
  s.images = testing::idx3(static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(rows),
                           static_cast<std::uint32_t>(cols), payload);
  s.labels = testing::idx1(labels);
  return s;
}

void expect_synthetic(const Dataset& ds, const Synthetic& s) {
  ASSERT_EQ(ds.size(), static_cast<std::int64_t>(s.pixels.size()));
  auto r = ds.open_reader(0);
  int max_label = 0;
  for (std::size_t i = 0; i < s.pixels.size(); ++i) {
    std::int64_t label = -1;
    const auto img = read_sample(*r, ds, &label);
    EXPECT_EQ(label, static_cast<std::int64_t>((i * 3) % 7));
    max_label = std::max<int>(max_label, static_cast<int>(label));
    for (std::size_t p = 0; p < img.size(); ++p) {
      EXPECT_EQ(img[p], (static_cast<float>(s.pixels[i][p]) / 255.0f - 0.5f) / 0.25f);
    }
  }
  EXPECT_EQ(ds.num_classes(), max_label + 1);
}

TEST(Idx, SyntheticRawGzipAndMultiMember) {
  const Synthetic s = synthetic(9, 3, 5);
  const Normalization norm{{0.5f}, {0.25f}};
  TempDir dir;
  testing::write_bytes(dir / "img", s.images);
  testing::write_bytes(dir / "lab", s.labels);
  testing::write_bytes(dir / "img.gz", testing::gzip(s.images));
  // Two gzip members back to back, split inside the header: must read as one stream, as gzip -d does.
  Bytes two = testing::gzip(Bytes(s.labels.begin(), s.labels.begin() + 6));
  const Bytes rest = testing::gzip(Bytes(s.labels.begin() + 6, s.labels.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  testing::write_bytes(dir / "lab.gz", two);

  auto raw = open_idx(dir / "img", dir / "lab", norm);
  EXPECT_EQ(raw->sample_shape(), (Shape{1, 3, 5}));
  EXPECT_EQ(raw->describe(), "idx (" + (dir / "img") + ", " + (dir / "lab") + ")");
  expect_synthetic(*raw, s);
  expect_synthetic(*open_idx(dir / "img.gz", dir / "lab.gz", norm), s);
  expect_synthetic(*open_idx_bytes(testing::gzip(s.images), s.labels, "mem", norm), s);
}

TEST(Idx, EmptyDatasetIsValid) {
  auto ds = open_idx_bytes(testing::idx3(0, 28, 28, {}), testing::idx1({}), "empty", {{0.f}, {1.f}});
  EXPECT_EQ(ds->size(), 0);
  EXPECT_EQ(ds->num_classes(), 0);
}

class IdxErrors : public ::testing::Test {
 protected:
  // Writes both files and opens them, returning whatever open_idx throws.
  void open(const Bytes& images, const Bytes& labels) {
    testing::write_bytes(dir_ / "images", images);
    testing::write_bytes(dir_ / "labels", labels);
    (void)open_idx(dir_ / "images", dir_ / "labels", fashion_mnist_normalization());
  }
  std::string images() const { return dir_ / "images"; }
  std::string labels() const { return dir_ / "labels"; }
  TempDir dir_;
  Synthetic s_ = synthetic(4, 2, 2);
};

TEST_F(IdxErrors, TruncatedGzip) {
  Bytes gz = testing::gzip(s_.images);
  gz.resize(gz.size() / 2);
  expect_error([&] { open(gz, s_.labels); }, {images(), "truncated gzip stream"});
  if (testing::have_fashion_mnist()) {
    Bytes real = testing::read_bytes(testing::kFashionDir + "/t10k-labels-idx1-ubyte.gz");
    real.resize(real.size() - 100);
    expect_error([&] { open(s_.images, real); }, {labels(), "truncated gzip stream"});
  }
}

TEST_F(IdxErrors, CorruptGzip) {
  Bytes gz = testing::gzip(s_.images);
  gz[gz.size() - 6] ^= 0xff;  // inside the CRC32 trailer
  expect_error([&] { open(gz, s_.labels); }, {images(), "corrupt gzip data"});
  Bytes garbage{0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x03, 0xff, 0xff, 0xff, 0xff};
  expect_error([&] { open(garbage, s_.labels); }, {images(), "gzip"});
}

TEST_F(IdxErrors, DimsClaimMoreDataThanTheFileHas) {
  // 1M images of 28x28 declared, 4 present: refused at open, before anything is sized from the header.
  Bytes lie = testing::idx3(1000000, 28, 28, Bytes(4 * 28 * 28, 7));
  Bytes lab = testing::idx1(Bytes(1000000, 1));
  expect_error([&] { open(lie, lab); },
               {images(), "truncated", "1000000 images of 28x28", "784000000 bytes"});
  expect_error([&] { open(testing::gzip(lie), lab); }, {images(), "truncated", "3136 bytes"});
  // Labels claiming 2^32 - 1 entries with 3 present: no 4 GB allocation, just the error.
  Bytes huge_labels{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  expect_error([&] { open(s_.images, huge_labels); }, {labels(), "truncated", "4294967295 labels"});
  // Dims whose product is absurd.
  expect_error([&] { open(testing::idx3(0xffffffff, 0xffffffff, 0xffffffff, {}), s_.labels); },
               {images(), "implausibly large"});
  expect_error([&] { open(testing::idx3(4, 1 << 13, 1 << 13, {}), s_.labels); },
               {images(), "unsupported IDX image size"});
}

TEST_F(IdxErrors, WrongMagicTypeAndRank) {
  Bytes bad = s_.images;
  bad[0] = 0x12;
  expect_error([&] { open(bad, s_.labels); }, {images(), "not an IDX file", "12 00 08 03"});
  bad = s_.images;
  bad[2] = 0x0d;  // float elements
  expect_error([&] { open(bad, s_.labels); }, {images(), "element type 0x0d"});
  expect_error([&] { open(s_.labels, s_.labels); }, {images(), "expected an IDX3 image file, got rank 1"});
  expect_error([&] { open(s_.images, s_.images); }, {labels(), "expected an IDX1 label file, got rank 3"});
  expect_error([&] { open(Bytes{0, 0}, s_.labels); }, {images(), "too short"});
  expect_error([&] { open(Bytes{0, 0, 8, 3, 0, 0}, s_.labels); }, {images(), "truncated IDX header"});
}

TEST_F(IdxErrors, CountMismatchAndTrailingData) {
  expect_error(
      [&] {
        open(s_.images, testing::idx1({1, 2, 3}));
      },
      {"image/label count mismatch", images(), "4 images", labels(), "3 labels"});
  Bytes extra = s_.images;
  extra.push_back(0);
  expect_error([&] { open(extra, s_.labels); }, {images(), "1 bytes of unexpected data"});
  expect_error([&] { open(testing::gzip(extra), s_.labels); }, {images(), "unexpected data"});
  Bytes extra_labels = s_.labels;
  extra_labels.push_back(0);
  expect_error([&] { open(s_.images, extra_labels); }, {labels(), "unexpected data"});
}

TEST_F(IdxErrors, MissingFilesAndDirectories) {
  expect_error([&] { (void)open_idx(dir_ / "nope", dir_ / "nope2", fashion_mnist_normalization()); },
               {dir_ / "nope2", "cannot open"});
  expect_error([&] { (void)open_fashion_mnist(dir_ / "missing", Split::kTest); },
               {dir_ / "missing", "does not exist"});
  expect_error([&] { (void)open_fashion_mnist(dir_.path(), Split::kTrain); },
               {"train-images-idx3-ubyte", "nor"});
}

TEST_F(IdxErrors, FashionMnistLabelsOutOfRange) {
  TempDir fm;
  Synthetic s = synthetic(3, 28, 28);
  testing::write_bytes(fm / "t10k-images-idx3-ubyte", s.images);
  testing::write_bytes(fm / "t10k-labels-idx1-ubyte", testing::idx1({1, 12, 3}));
  expect_error([&] { (void)open_fashion_mnist(fm.path(), Split::kTest); },
               {"label 12 is out of range for 10 classes"});
}

TEST_F(IdxErrors, BadNormalization) {
  testing::write_bytes(images(), s_.images);
  testing::write_bytes(labels(), s_.labels);
  expect_error(
      [&] {
        (void)open_idx(images(), labels(), {{0.1f, 0.2f, 0.3f}, {1.f}});
      },
      {"mean has 3 values for 1 channel"});
  expect_error([&] { (void)open_idx(images(), labels(), {{0.1f}, {0.f}}); }, {"non-zero std"});
}

}  // namespace
}  // namespace aciq::data
