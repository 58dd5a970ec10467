// torchvision 0.14 Resize + CenterCrop geometry, ToTensor + Normalize, and the whole JPEG pipeline.
#include <algorithm>

#include "aciq/data.hpp"
#include "data/detail.hpp"

namespace aciq::data {

namespace {

// Longest side a resize may produce; far beyond any real use, it keeps int arithmetic and tap tables
// bounded for extreme aspect ratios.
constexpr std::int64_t kMaxResizedSide = std::int64_t{1} << 20;

// Python's round(d / 2.0) for d >= 0: halves go to the even neighbour.
int round_half_even_half(int d) {
  const int q = d / 2;
  if (d % 2 == 0) return q;
  return q % 2 == 0 ? q : q + 1;
}

// Offset of the crop in resized coordinates along one axis: CenterCrop pads (zeros) by (crop - r) / 2
// before when the image is smaller, else starts at round((r - crop) / 2).
int crop_offset(int resized, int crop) {
  if (crop > resized) return -((crop - resized) / 2);
  return round_half_even_half(resized - crop);
}

}  // namespace

RgbImage resize_center_crop(const RgbImage& image, int resize, int crop) {
  if (resize < 1 || crop < 1) {
    fail("resize/crop sizes must be positive (got resize " + std::to_string(resize) + ", crop " +
         std::to_string(crop) + ")");
  }
  if (image.width < 1 || image.height < 1) fail("cannot preprocess an empty image");
  // torchvision's _compute_resized_output_size: short side -> resize, long side -> int(resize * long / short)
  // with Python's true division (a correctly rounded double) and truncation.
  const bool portrait = image.width <= image.height;
  const std::int64_t shorter = portrait ? image.width : image.height;
  const std::int64_t longer = portrait ? image.height : image.width;
  const auto new_long = static_cast<std::int64_t>(static_cast<double>(std::int64_t{resize} * longer) /
                                                  static_cast<double>(shorter));
  if (new_long > kMaxResizedSide) {
    fail("image of " + std::to_string(image.width) + "x" + std::to_string(image.height) +
         " would be resized to " + std::to_string(new_long) + " pixels long");
  }
  const int rw = portrait ? resize : static_cast<int>(new_long);
  const int rh = portrait ? static_cast<int>(new_long) : resize;

  const int ox = crop_offset(rw, crop), oy = crop_offset(rh, crop);
  // The part of the crop that lies inside the resized image; the rest is CenterCrop's zero padding.
  const int x0 = std::max(ox, 0), x1 = std::min(ox + crop, rw);
  const int y0 = std::max(oy, 0), y1 = std::min(oy + crop, rh);
  const RgbImage win = detail::resize_window(image, rw, rh, x0, x1, y0, y1);

  RgbImage out;
  out.width = out.height = crop;
  out.pixels.assign(static_cast<std::size_t>(crop) * static_cast<std::size_t>(crop) * 3, 0);
  const std::size_t row_bytes = static_cast<std::size_t>(win.width) * 3;
  for (int y = 0; y < win.height; ++y) {
    std::copy_n(win.pixels.data() + static_cast<std::size_t>(y) * row_bytes, row_bytes,
                out.pixels.data() + (static_cast<std::size_t>(y0 - oy + y) * static_cast<std::size_t>(crop) +
                                     static_cast<std::size_t>(x0 - ox)) *
                                        3);
  }
  return out;
}

void normalize_to_chw(const RgbImage& image, const Normalization& norm, std::span<float> out) {
  const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  if (image.pixels.size() != plane * 3) fail("normalize: invalid RGB image");
  if (out.size() != plane * 3) {
    fail("normalize: output holds " + std::to_string(out.size()) + " floats, the image needs " +
         std::to_string(plane * 3));
  }
  const auto luts = detail::make_luts(norm, 3, "normalize");
  for (int c = 0; c < 3; ++c) {
    const auto& lut = luts[static_cast<std::size_t>(c)];
    float* dst = out.data() + static_cast<std::size_t>(c) * plane;
    const std::uint8_t* src = image.pixels.data() + c;
    for (std::size_t i = 0; i < plane; ++i) dst[i] = lut[src[3 * i]];
  }
}

void preprocess_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, const ImagePreprocess& pre,
                     std::span<float> out, std::int64_t max_pixels) {
  const RgbImage decoded = decode_jpeg(bytes, name, max_pixels);
  RgbImage cropped;
  try {
    cropped = resize_center_crop(decoded, pre.resize, pre.crop);
  } catch (const Error& e) {
    fail(name + ": " + e.what());
  }
  normalize_to_chw(cropped, pre.norm, out);
}

}  // namespace aciq::data
