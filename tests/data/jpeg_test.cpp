// Tests for JPEG decoding and torchvision-exact preprocessing: golden parity, geometry, corrupt input.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "aciq/data.hpp"
#include "test_util.hpp"

namespace aciq::data {
namespace {

using testing::Bytes;
using testing::expect_error;
using testing::TempDir;

const std::string kFolder = testing::kGoldenDir + "/imagenet_mini";
const std::string kGoldens = testing::kGoldenDir + "/jpeg";

// The parity bound after normalization. 1e-5 is far below one uint8 step (1 / (255 * 0.229) ~ 0.017), so
// meeting it means identical pixels; in practice the difference is exactly 0 (same float32 arithmetic).
constexpr float kTolerance = 1e-5f;

struct Golden {
  std::string path;
  int label = 0;
  int width = 0, height = 0;
  std::string mode;
  int row_offset = 0, row_stride = 1;
  std::vector<float> rows;  // [3, rows, 224]
};

std::vector<Golden> load_goldens(nlohmann::json* index_out = nullptr) {
  const Bytes text = testing::read_bytes(kGoldens + "/index.json");
  const auto index = nlohmann::json::parse(text.begin(), text.end());
  if (index_out) *index_out = index;
  std::vector<Golden> out;
  for (const auto& s : index.at("samples")) {
    Golden g;
    g.path = s.at("path").get<std::string>();
    g.label = s.at("label").get<int>();
    g.width = s.at("width").get<int>();
    g.height = s.at("height").get<int>();
    g.mode = s.at("mode").get<std::string>();
    g.row_offset = s.at("row_offset").get<int>();
    g.row_stride = s.at("row_stride").get<int>();
    const Bytes raw = testing::read_bytes(kGoldens + "/" + s.at("bin").get<std::string>());
    g.rows.resize(raw.size() / 4);
    std::memcpy(g.rows.data(), raw.data(), g.rows.size() * 4);  // little-endian float32, as on x86/ARM
    out.push_back(std::move(g));
  }
  return out;
}

// Max |ours - golden| over the golden's rows of a [3, 224, 224] tensor.
float max_diff(std::span<const float> ours, const Golden& g) {
  const int rows = static_cast<int>(g.rows.size() / (3 * 224));
  float worst = 0.0f;
  for (int c = 0; c < 3; ++c) {
    for (int r = 0; r < rows; ++r) {
      const int y = g.row_offset + r * g.row_stride;
      for (int x = 0; x < 224; ++x) {
        const float a = ours[(static_cast<std::size_t>(c) * 224 + y) * 224 + x];
        const float b = g.rows[(static_cast<std::size_t>(c) * rows + r) * 224 + x];
        worst = std::max(worst, std::fabs(a - b));
      }
    }
  }
  return worst;
}

TEST(JpegGolden, PreprocessMatchesTorchvision) {
  const auto goldens = load_goldens();
  ASSERT_GE(goldens.size(), 6u);
  std::vector<float> out(3 * 224 * 224);
  for (const auto& g : goldens) {
    const std::string path = kFolder + "/val/" + g.path;
    const Bytes bytes = testing::read_bytes(path);
    const RgbImage img = decode_jpeg(bytes, path);
    EXPECT_EQ(img.width, g.width) << path;
    EXPECT_EQ(img.height, g.height) << path;
    preprocess_jpeg(bytes, path, ImagePreprocess{}, out);
    const float diff = max_diff(out, g);
    EXPECT_LE(diff, kTolerance) << path << " (" << g.mode << " " << g.width << "x" << g.height << ")";
    EXPECT_EQ(diff, 0.0f) << path << ": not bit-exact";
  }
}

// The goldens cover the cases the brief asks for; guard against them silently going away.
TEST(JpegGolden, CoversGrayCmykOddAndSmallImages) {
  bool gray = false, cmyk = false, odd = false, small = false, progressive_or_large = false;
  for (const auto& g : load_goldens()) {
    gray |= g.mode == "L";
    cmyk |= g.mode == "CMYK";
    odd |= g.width % 2 == 1 && g.height % 2 == 1;
    small |= std::min(g.width, g.height) < 256;
    progressive_or_large |= std::max(g.width, g.height) > 1000;
  }
  EXPECT_TRUE(gray && cmyk && odd && small && progressive_or_large);
}

TEST(JpegGolden, ImageFolderOrderLabelsAndLoaderMatch) {
  nlohmann::json index;
  const auto goldens = load_goldens(&index);
  auto ds = open_image_folder(kFolder, "val");
  EXPECT_EQ(ds->size(), static_cast<std::int64_t>(goldens.size()));
  EXPECT_EQ(ds->num_classes(), static_cast<int>(index.at("classes").size()));
  EXPECT_EQ(ds->sample_shape(), (Shape{3, 224, 224}));
  EXPECT_EQ(ds->describe(), "imagefolder val (" + kFolder + ")");
  BatchLoader loader(ds, {.batch_size = 3, .limit = 0, .workers = 3, .prefetch_batches = 2});
  std::size_t i = 0;
  while (auto batch = loader.next()) {
    for (std::size_t k = 0; k < batch->labels.size(); ++k, ++i) {
      ASSERT_LT(i, goldens.size());
      EXPECT_EQ(batch->labels[k], goldens[i].label) << goldens[i].path;
      const auto sample = batch->images.f32().subspan(k * 3 * 224 * 224, 3 * 224 * 224);
      EXPECT_EQ(max_diff(sample, goldens[i]), 0.0f) << goldens[i].path;
    }
  }
  EXPECT_EQ(i, goldens.size());
}

TEST(Jpeg, GrayscaleIsReplicatedToRgb) {
  const std::string path = kFolder + "/val/mono/board_gray_501x377.jpg";
  const RgbImage img = decode_jpeg(testing::read_bytes(path), path);
  ASSERT_EQ(img.pixels.size(), 501u * 377u * 3u);
  bool varied = false;
  for (std::size_t i = 0; i < img.pixels.size(); i += 3) {
    ASSERT_EQ(img.pixels[i], img.pixels[i + 1]);
    ASSERT_EQ(img.pixels[i], img.pixels[i + 2]);
    varied |= img.pixels[i] != img.pixels[0];
  }
  EXPECT_TRUE(varied);
}

TEST(Jpeg, SolidColourRoundTrip) {
  const RgbImage img = decode_jpeg(testing::solid_jpeg(19, 7, 200, 30, 90), "solid");
  ASSERT_EQ(img.width, 19);
  ASSERT_EQ(img.height, 7);
  for (std::size_t i = 0; i < img.pixels.size(); i += 3) {
    EXPECT_NEAR(img.pixels[i], 200, 2);
    EXPECT_NEAR(img.pixels[i + 1], 30, 2);
    EXPECT_NEAR(img.pixels[i + 2], 90, 2);
  }
}

TEST(Jpeg, CorruptInputsNameTheFile) {
  const std::string path = kFolder + "/val/camera/board_baseline_444.jpeg";
  const Bytes good = testing::read_bytes(path);
  Bytes truncated(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2));
  expect_error([&] { (void)decode_jpeg(truncated, "half.jpg"); }, {"half.jpg", "truncated"});
  const std::string progressive = kFolder + "/val/camera/board_progressive_422.jpg";
  Bytes ptrunc = testing::read_bytes(progressive);
  ptrunc.resize(ptrunc.size() * 3 / 4);
  expect_error([&] { (void)decode_jpeg(ptrunc, "prog.jpg"); }, {"prog.jpg", "truncated"});
  Bytes header_only(good.begin(), good.begin() + 300);
  expect_error([&] { (void)decode_jpeg(header_only, "hdr.jpg"); }, {"hdr.jpg", "JPEG"});
  Bytes garbage(4000);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 7919 % 251);
  expect_error([&] { (void)decode_jpeg(garbage, "garbage.jpg"); },
               {"garbage.jpg", "corrupt JPEG", "Not a JPEG"});
  expect_error([&] { (void)decode_jpeg({}, "empty.jpg"); }, {"empty.jpg", "empty"});
  std::vector<float> out(3 * 224 * 224);
  expect_error([&] { preprocess_jpeg(truncated, "half.jpg", {}, out); }, {"half.jpg"});
}

TEST(Jpeg, PixelLimit) {
  const Bytes bytes = testing::solid_jpeg(300, 200, 1, 2, 3);
  expect_error([&] { (void)decode_jpeg(bytes, "big.jpg", 300 * 200 - 1); }, {"big.jpg", "300x200", "limit"});
  EXPECT_NO_THROW((void)decode_jpeg(bytes, "big.jpg", 300 * 200));
}

// An image whose pixel at column x, row y is (x mod 256, y mod 256, 7).
RgbImage ramp(int w, int h) {
  RgbImage img{w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = &img.pixels[(static_cast<std::size_t>(y) * w + x) * 3];
      p[0] = static_cast<std::uint8_t>(x % 256);
      p[1] = static_cast<std::uint8_t>(y % 256);
      p[2] = 7;
    }
  }
  return img;
}

TEST(Preprocess, CenterCropRoundsHalfToEvenLikePython) {
  // Short side already 256: no resampling, so pixels reveal the crop offsets. (481 - 224) / 2 = 128.5
  // rounds to 128, (483 - 224) / 2 = 129.5 to 130, as Python's round() does.
  const RgbImage a = resize_center_crop(ramp(481, 256), 256, 224);
  EXPECT_EQ(a.pixels[0], 128);
  EXPECT_EQ(a.pixels[1], 16);  // (256 - 224) / 2
  const RgbImage b = resize_center_crop(ramp(483, 256), 256, 224);
  EXPECT_EQ(b.pixels[0], 130);
  const RgbImage c = resize_center_crop(ramp(256, 257), 256, 224);  // 33 / 2 = 16.5 -> 16
  EXPECT_EQ(c.pixels[1], 16);
  EXPECT_EQ(c.pixels[0], 16);
}

TEST(Preprocess, PadsWithZerosWhenCropExceedsResize) {
  // resize 100 on a 100x100 image is the identity; CenterCrop(120) pads 10 zeros on each side.
  const RgbImage img = resize_center_crop(ramp(100, 100), 100, 120);
  ASSERT_EQ(img.width, 120);
  const auto px = [&](int x, int y, int c) {
    return img.pixels[(static_cast<std::size_t>(y) * 120 + x) * 3 + c];
  };
  EXPECT_EQ(px(9, 50, 2), 0);
  EXPECT_EQ(px(10, 50, 2), 7);
  EXPECT_EQ(px(10, 10, 0), 0);  // image (0, 0)
  EXPECT_EQ(px(109, 109, 0), 99);
  EXPECT_EQ(px(110, 60, 2), 0);
  // Odd padding: 121 - 100 = 21 -> 10 before, 11 after.
  const RgbImage odd = resize_center_crop(ramp(100, 100), 100, 121);
  EXPECT_EQ(odd.pixels[(10 * 121 + 10) * 3 + 2], 7);
  EXPECT_EQ(odd.pixels[(10 * 121 + 9) * 3 + 2], 0);
}

TEST(Preprocess, ConstantImageStaysConstantAtAnyScale) {
  RgbImage flat{37, 23, std::vector<std::uint8_t>(37 * 23 * 3)};
  for (std::size_t i = 0; i < flat.pixels.size(); ++i)
    flat.pixels[i] = static_cast<std::uint8_t>(i % 3 == 0 ? 255 : i % 3 == 1 ? 0 : 131);
  for (auto [w, h] : {std::pair{256, 300}, {5, 3}, {37, 64}, {1, 1}, {1000, 7}}) {
    const RgbImage out = resize_bilinear(flat, w, h);
    ASSERT_EQ(out.pixels.size(), static_cast<std::size_t>(w) * h * 3);
    for (std::size_t i = 0; i < out.pixels.size(); i += 3) {
      ASSERT_EQ(out.pixels[i], 255);
      ASSERT_EQ(out.pixels[i + 1], 0);
      ASSERT_EQ(out.pixels[i + 2], 131);
    }
  }
}

TEST(Preprocess, WindowEqualsFullResizeThenCrop) {
  const RgbImage src = decode_jpeg(testing::read_bytes(kFolder + "/val/small/logo_245x60.jpg"), "logo");
  // 245x60 -> 1045x256 (int(256 * 245 / 60) = 1045), crop left round(821 / 2) = 410, top 16.
  const RgbImage full = resize_bilinear(src, 1045, 256);
  const RgbImage crop = resize_center_crop(src, 256, 224);
  for (int y = 0; y < 224; ++y) {
    for (int x = 0; x < 224; ++x) {
      for (int c = 0; c < 3; ++c) {
        ASSERT_EQ(crop.pixels[(static_cast<std::size_t>(y) * 224 + x) * 3 + c],
                  full.pixels[(static_cast<std::size_t>(y + 16) * 1045 + x + 410) * 3 + c]);
      }
    }
  }
}

TEST(Preprocess, NormalizeMatchesTorchFormula) {
  RgbImage img{2, 1, {0, 128, 255, 1, 2, 3}};
  std::vector<float> out(6);
  const Normalization norm = imagenet_normalization();
  normalize_to_chw(img, norm, out);
  EXPECT_EQ(out[0], (0.0f / 255.0f - 0.485f) / 0.229f);
  EXPECT_EQ(out[1], (1.0f / 255.0f - 0.485f) / 0.229f);  // CHW: channel 0 of pixel 1
  EXPECT_EQ(out[2], (128.0f / 255.0f - 0.456f) / 0.224f);
  EXPECT_EQ(out[5], (3.0f / 255.0f - 0.406f) / 0.225f);
  std::vector<float> wrong(5);
  EXPECT_THROW(normalize_to_chw(img, norm, wrong), Error);
  EXPECT_THROW(resize_center_crop(img, 0, 224), Error);
}

}  // namespace
}  // namespace aciq::data
