// Tests for BatchLoader: batch composition, limits, determinism across worker counts, errors, shutdown.
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "aciq/data.hpp"
#include "test_util.hpp"

namespace aciq::data {
namespace {

using testing::expect_error;

// A random-access dataset whose sample i is a known function of i; reads take a pseudo-random time so
// workers finish out of order. Optionally fails at one index.
class FakeDataset : public Dataset, public std::enable_shared_from_this<FakeDataset> {
 public:
  FakeDataset(std::int64_t n, bool random_access, std::int64_t fail_at = -1, int max_sleep_us = 200)
      : n_(n), random_access_(random_access), fail_at_(fail_at), max_sleep_us_(max_sleep_us) {}
  std::int64_t size() const override { return n_; }
  Shape sample_shape() const override { return {2, 3, 2}; }
  int num_classes() const override { return 10; }
  std::string describe() const override { return "fake"; }
  bool random_access() const override { return random_access_; }
  std::unique_ptr<SampleReader> open_reader(std::int64_t begin) const override {
    auto r = std::make_unique<Reader>(shared_from_this());
    r->seek(begin);
    return r;
  }
  static float value(std::int64_t i, std::size_t k) {
    return static_cast<float>(i) * 100.0f + static_cast<float>(k);
  }

 private:
  class Reader : public SampleReader {
   public:
    explicit Reader(std::shared_ptr<const FakeDataset> ds) : ds_(std::move(ds)), rng_(1234) {}
    std::int64_t position() const override { return pos_; }
    void seek(std::int64_t index) override { pos_ = index; }
    std::int64_t read(std::span<float> out) override {
      if (ds_->max_sleep_us_ > 0) {
        std::this_thread::sleep_for(
            std::chrono::microseconds(rng_() % static_cast<unsigned>(ds_->max_sleep_us_)));
      }
      if (pos_ == ds_->fail_at_) fail("/data/broken_" + std::to_string(pos_) + ".JPEG: corrupt JPEG: bad");
      for (std::size_t k = 0; k < out.size(); ++k) out[k] = value(pos_, k);
      return (pos_++) % 10;
    }

   private:
    std::shared_ptr<const FakeDataset> ds_;
    std::minstd_rand rng_;
    std::int64_t pos_ = 0;
  };

  std::int64_t n_;
  bool random_access_;
  std::int64_t fail_at_;
  int max_sleep_us_;
};

// All batches of a loader, flattened: (images, labels, first indices, batch sizes).
struct Drained {
  std::vector<float> images;
  std::vector<std::int64_t> labels, firsts, sizes;
};

Drained drain(std::shared_ptr<const Dataset> ds, LoaderOptions o) {
  BatchLoader loader(std::move(ds), o);
  Drained d;
  while (auto b = loader.next()) {
    EXPECT_EQ(b->images.dim(0), static_cast<std::int64_t>(b->labels.size()));
    d.images.insert(d.images.end(), b->images.f32().begin(), b->images.f32().end());
    d.labels.insert(d.labels.end(), b->labels.begin(), b->labels.end());
    d.firsts.push_back(b->first_index);
    d.sizes.push_back(b->images.dim(0));
  }
  EXPECT_FALSE(loader.next().has_value());  // stays exhausted
  return d;
}

TEST(BatchLoader, BatchCompositionAndLimit) {
  auto ds = std::make_shared<FakeDataset>(103, true);
  BatchLoader loader(ds, {.batch_size = 16, .limit = 50, .workers = 3, .prefetch_batches = 2});
  EXPECT_EQ(loader.total(), 50);
  EXPECT_EQ(loader.num_batches(), 4);
  std::int64_t expect_first = 0;
  while (auto b = loader.next()) {
    EXPECT_EQ(b->first_index, expect_first);
    const std::int64_t n = std::min<std::int64_t>(16, 50 - expect_first);
    EXPECT_EQ(b->images.shape(), (Shape{n, 2, 3, 2}));
    EXPECT_EQ(b->images.dtype(), DType::kFloat32);
    for (std::int64_t k = 0; k < n; ++k) {
      EXPECT_EQ(b->labels[static_cast<std::size_t>(k)], (expect_first + k) % 10);
      for (std::size_t e = 0; e < 12; ++e) {
        ASSERT_EQ(b->images.f32()[static_cast<std::size_t>(k) * 12 + e],
                  FakeDataset::value(expect_first + k, e));
      }
    }
    expect_first += n;
  }
  EXPECT_EQ(expect_first, 50);
  EXPECT_EQ((BatchLoader(ds, {.batch_size = 16, .limit = 0}).total()), 103);
  EXPECT_EQ((BatchLoader(ds, {.batch_size = 16, .limit = 1000}).total()), 103);
  EXPECT_EQ((BatchLoader(ds, {.batch_size = 200}).num_batches()), 1);
}

TEST(BatchLoader, DeterministicForAnyWorkerCount) {
  for (bool random_access : {true, false}) {
    auto ds = std::make_shared<FakeDataset>(157, random_access);
    const Drained one = drain(ds, {.batch_size = 10, .limit = 0, .workers = 1, .prefetch_batches = 1});
    ASSERT_EQ(one.labels.size(), 157u);
    for (int workers : {3, 7}) {
      for (int prefetch : {1, 3}) {
        const Drained many =
            drain(ds, {.batch_size = 10, .limit = 0, .workers = workers, .prefetch_batches = prefetch});
        EXPECT_EQ(many.images, one.images) << workers << " workers, prefetch " << prefetch;
        EXPECT_EQ(many.labels, one.labels);
        EXPECT_EQ(many.firsts, one.firsts);
        EXPECT_EQ(many.sizes, one.sizes);
      }
    }
  }
}

TEST(BatchLoader, FashionMnistOneVersusThreeWorkers) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST at " << testing::kFashionDir;
  auto ds = open_fashion_mnist(testing::kFashionDir, Split::kTest);
  const Drained one = drain(ds, {.batch_size = 64, .limit = 1000, .workers = 1, .prefetch_batches = 2});
  const Drained three = drain(ds, {.batch_size = 64, .limit = 1000, .workers = 3, .prefetch_batches = 2});
  EXPECT_EQ(one.labels.size(), 1000u);
  EXPECT_EQ(one.sizes.back(), 1000 - 15 * 64);
  EXPECT_EQ(one.images, three.images);
  EXPECT_EQ(one.labels, three.labels);
  // Against a plain sequential read.
  auto r = ds->open_reader(0);
  std::vector<float> sample(784);
  for (std::size_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(r->read(sample), one.labels[i]);
    ASSERT_TRUE(
        std::equal(sample.begin(), sample.end(), one.images.begin() + static_cast<std::ptrdiff_t>(i * 784)));
  }
}

TEST(BatchLoader, JpegFolderOneVersusThreeWorkers) {
  auto ds = open_image_folder(testing::kGoldenDir + "/imagenet_mini", "val", {.resize = 64, .crop = 56});
  const Drained one = drain(ds, {.batch_size = 3, .limit = 0, .workers = 1, .prefetch_batches = 1});
  const Drained three = drain(ds, {.batch_size = 3, .limit = 0, .workers = 3, .prefetch_batches = 2});
  EXPECT_EQ(one.sizes, (std::vector<std::int64_t>{3, 3, 2}));
  EXPECT_EQ(one.images, three.images);
  EXPECT_EQ(one.labels, three.labels);
}

TEST(BatchLoader, WorkerErrorIsRethrownAtItsBatch) {
  for (bool random_access : {true, false}) {
    auto ds = std::make_shared<FakeDataset>(100, random_access, /*fail_at=*/37);
    BatchLoader loader(ds, {.batch_size = 8, .limit = 0, .workers = 3, .prefetch_batches = 3});
    for (int b = 0; b < 4; ++b) {
      auto batch = loader.next();
      ASSERT_TRUE(batch.has_value());
      EXPECT_EQ(batch->first_index, b * 8);
    }
    // Batch 4 holds sample 37.
    expect_error([&] { (void)loader.next(); }, {"/data/broken_37.JPEG", "corrupt JPEG"});
    expect_error([&] { (void)loader.next(); }, {"/data/broken_37.JPEG"});
  }
}

TEST(BatchLoader, CorruptJpegInFolderNamesTheFile) {
  testing::TempDir dir;
  testing::write_bytes(dir / "val/a/good.jpg", testing::solid_jpeg(40, 30, 10, 20, 30));
  testing::write_bytes(dir / "val/b/bad.jpg", testing::Bytes(500, 0x55));
  auto ds = open_image_folder(dir.path(), "val", {.resize = 32, .crop = 32});
  BatchLoader loader(ds, {.batch_size = 1, .limit = 0, .workers = 2, .prefetch_batches = 2});
  EXPECT_TRUE(loader.next().has_value());
  expect_error([&] { (void)loader.next(); }, {dir / "val/b/bad.jpg", "corrupt JPEG"});
}

TEST(BatchLoader, DestructionMidStreamDoesNotHang) {
  auto ds = std::make_shared<FakeDataset>(100000, true, -1, 2000);
  const auto t0 = std::chrono::steady_clock::now();
  {
    BatchLoader loader(ds, {.batch_size = 32, .limit = 0, .workers = 4, .prefetch_batches = 4});
    ASSERT_TRUE(loader.next().has_value());
  }
  { BatchLoader untouched(ds, {.batch_size = 32, .limit = 0, .workers = 4, .prefetch_batches = 4}); }
  {
    auto failing = std::make_shared<FakeDataset>(1000, true, 5, 500);
    BatchLoader loader(failing, {.batch_size = 4, .limit = 0, .workers = 3, .prefetch_batches = 2});
    EXPECT_TRUE(loader.next().has_value());
    EXPECT_THROW((void)loader.next(), Error);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(BatchLoader, EmptyDatasetAndBadOptions) {
  auto empty = std::make_shared<FakeDataset>(0, true);
  BatchLoader loader(empty, {});
  EXPECT_EQ(loader.total(), 0);
  EXPECT_FALSE(loader.next().has_value());
  auto ds = std::make_shared<FakeDataset>(10, true);
  expect_error([&] { BatchLoader(ds, {.batch_size = 0}); }, {"fake", "batch size"});
  expect_error([&] { BatchLoader(ds, {.batch_size = 4, .limit = -1}); }, {"limit"});
  expect_error([&] { BatchLoader(ds, {.batch_size = 4, .limit = 0, .workers = 0}); }, {"workers"});
  expect_error([&] { BatchLoader(ds, {.batch_size = 4, .limit = 0, .workers = 1, .prefetch_batches = 0}); },
               {"prefetch"});
  expect_error([&] { BatchLoader(nullptr, {}); }, {"no dataset"});
}

TEST(BatchLoader, RefusesBatchesPastTheTensorLimit) {
  auto ds =
      open_image_folder(testing::kGoldenDir + "/imagenet_mini", "val", {.resize = 20000, .crop = 20000});
  expect_error([&] { BatchLoader(ds, {.batch_size = 64}); }, {"batch size 64 is too large"});
}

}  // namespace
}  // namespace aciq::data
