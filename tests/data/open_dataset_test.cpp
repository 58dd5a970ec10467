// Tests for the CLI dataset specs: fashion-mnist[:DIR], imagenet:DIR, idx:IMAGES,LABELS and their errors.
#include <unistd.h>

#include "aciq/data.hpp"
#include "test_util.hpp"

namespace aciq::data {
namespace {

using testing::expect_error;

TEST(OpenDataset, FashionMnistDefaultsAndSplits) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST at " << testing::kFashionDir;
  auto test = open_dataset("fashion-mnist", "", {});
  EXPECT_EQ(test->describe(), "fashion-mnist test (/usr/share/datasets/fashion-mnist)");
  EXPECT_EQ(test->size(), 10000);
  auto train = open_dataset("fashion-mnist:" + testing::kFashionDir, "train", {});
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(open_dataset("fashion-mnist", "test", {})->size(), 10000);
  expect_error([] { (void)open_dataset("fashion-mnist", "val", {}); }, {"unknown split 'val'"});

  // Normalization override: mean 0, std 1 leaves v / 255.
  auto plain = open_dataset("fashion-mnist", "test", {.mean = {0.0f}, .std = {1.0f}});
  std::vector<float> x(784);
  (void)plain->open_reader(0)->read(x);
  EXPECT_EQ(x[14 * 28 + 14], 110.0f / 255.0f);
  expect_error(
      [] {
        (void)open_dataset("fashion-mnist", "test", {.mean = {0.1f, 0.2f, 0.3f}});
      },
      {"mean has 3 values"});
}

TEST(OpenDataset, ImagenetFolder) {
  const std::string root = testing::kGoldenDir + "/imagenet_mini";
  auto ds = open_dataset("imagenet:" + root, "", {});
  EXPECT_EQ(ds->describe(), "imagefolder val (" + root + ")");
  EXPECT_EQ(ds->sample_shape(), (Shape{3, 224, 224}));
  auto small = open_dataset("imagenet:" + root, "val", {.resize = 64, .crop = 56});
  EXPECT_EQ(small->sample_shape(), (Shape{3, 56, 56}));
  expect_error([] { (void)open_dataset("imagenet", "", {}); }, {"give the dataset root"});
  expect_error([&] { (void)open_dataset("imagenet:" + root, "train", {}); },
               {root + "/train", "does not exist"});
}

TEST(OpenDataset, IdxPairAndUnknownSpecs) {
  testing::TempDir dir;
  testing::write_bytes(dir / "i", testing::idx3(2, 2, 2, {0, 1, 2, 3, 4, 5, 6, 7}));
  testing::write_bytes(dir / "l", testing::idx1({3, 4}));
  auto ds = open_dataset("idx:" + (dir / "i") + "," + (dir / "l"), "test", {});
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->num_classes(), 5);
  expect_error([] { (void)open_dataset("idx:only_one", "", {}); }, {"expected idx:IMAGES,LABELS"});
  expect_error([] { (void)open_dataset("idx:a,", "", {}); }, {"expected idx:IMAGES,LABELS"});
  expect_error([] { (void)open_dataset("cifar10", "", {}); }, {"'cifar10'", "unknown dataset"});
  expect_error([] { (void)open_dataset("", "", {}); }, {"unknown dataset"});
}

}  // namespace
}  // namespace aciq::data
