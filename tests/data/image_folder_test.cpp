// Tests for the ImageFolder dataset: torchvision's class and file ordering, and malformed folder trees.
#include <unistd.h>

#include <cmath>

#include "aciq/data.hpp"
#include "test_util.hpp"

namespace aciq::data {
namespace {

using testing::expect_error;
using testing::TempDir;

// Gray level of a solid test image, recovered from the first pixel of channel 0 (normalization undone).
int gray_of(std::span<const float> sample) {
  return static_cast<int>(std::lround((sample[0] * 0.229f + 0.485f) * 255.0f));
}

// Files are identified by their gray level (levels 12 apart survive JPEG at quality 100).
void put(const TempDir& dir, const std::string& rel, int level) {
  const auto v = static_cast<std::uint8_t>(level);
  testing::write_bytes(dir / rel, testing::solid_jpeg(20, 16, v, v, v));
}

TEST(ImageFolder, OrderFollowsTorchvision) {
  TempDir dir;
  // torchvision sorts classes by code point ("B" < "a" < "a b" < "b"); inside a class it sorts os.walk's
  // roots as strings, so ".../a" (own files) < ".../a/sub" < ".../a/sub b" (' ' < '/') < ".../a/sub/deeper",
  // and file names by code point ("Z.jpg" < "z.jpg"). Verified against torchvision 0.14's make_dataset
  // on the same tree.
  put(dir, "val/b/z.jpg", 10);
  put(dir, "val/b/Z.jpg", 22);
  put(dir, "val/a/x.JPEG", 34);
  put(dir, "val/a/sub/w.jpeg", 46);
  put(dir, "val/a/sub b/v.jpg", 58);
  put(dir, "val/a/sub/deeper/u.jpg", 70);
  put(dir, "val/B/only.Jpg", 82);
  put(dir, "val/a b/q.jpg", 94);
  testing::write_bytes(dir / "val/a/notes.txt", {'h', 'i'});  // not an image: ignored
  testing::write_bytes(dir / "val/README", {'x'});            // top-level files are not classes
  const std::vector<std::pair<int, int>> expected{{82, 0}, {34, 1}, {46, 1}, {58, 1},
                                                  {70, 1}, {94, 2}, {22, 3}, {10, 3}};

  auto ds = open_image_folder(dir.path(), "val", {.resize = 16, .crop = 16});
  EXPECT_EQ(ds->num_classes(), 4);
  ASSERT_EQ(ds->size(), static_cast<std::int64_t>(expected.size()));
  auto r = ds->open_reader(0);
  std::vector<float> sample(3 * 16 * 16);
  for (const auto& [level, label] : expected) {
    EXPECT_EQ(r->read(sample), label);
    EXPECT_NEAR(gray_of(sample), level, 2);
  }
  // Random access: a reader opened in the middle starts there.
  auto mid = ds->open_reader(6);
  EXPECT_EQ(mid->read(sample), 3);
  EXPECT_NEAR(gray_of(sample), 22, 2);
}

TEST(ImageFolder, EmptyClassFolderIsAnError) {
  TempDir dir;
  put(dir, "val/cat/1.jpg", 100);
  std::filesystem::create_directories(dir / "val/dog");
  testing::write_bytes(dir / "val/dog/readme.txt", {'x'});
  expect_error([&] { (void)open_image_folder(dir.path(), "val"); }, {dir / "val/dog", "contains no images"});
}

TEST(ImageFolder, MissingDirectoriesAndNoClasses) {
  TempDir dir;
  expect_error([&] { (void)open_image_folder(dir / "nowhere", "val"); }, {dir / "nowhere", "does not exist"});
  expect_error([&] { (void)open_image_folder(dir.path(), "val"); }, {dir / "val", "does not exist"});
  std::filesystem::create_directories(dir / "val");
  expect_error([&] { (void)open_image_folder(dir.path(), "val"); }, {dir / "val", "no class folders"});
}

TEST(ImageFolder, NonJpegImagesAreRefusedByName) {
  TempDir dir;
  put(dir, "val/cat/1.jpg", 100);
  testing::write_bytes(dir / "val/cat/2.PNG", {0x89, 'P', 'N', 'G'});
  expect_error([&] { (void)open_image_folder(dir.path(), "val"); }, {dir / "val/cat/2.PNG", "only JPEG"});
}

TEST(ImageFolder, BadPreprocessOptions) {
  TempDir dir;
  put(dir, "val/cat/1.jpg", 100);
  expect_error([&] { (void)open_image_folder(dir.path(), "val", {.resize = 0, .crop = 224}); },
               {"must be positive"});
  expect_error(
      [&] {
        (void)open_image_folder(dir.path(), "val",
                                {.resize = 256, .crop = 224, .norm = {{0.5f, 0.5f}, {1.f}}});
      },
      {"mean has 2 values for 3 channel"});
}

}  // namespace
}  // namespace aciq::data
