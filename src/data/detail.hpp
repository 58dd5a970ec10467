// Internals shared by the data component's translation units (not part of the public API).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "aciq/data.hpp"
#include "data/byte_stream.hpp"

namespace aciq::data::detail {

// uint8 value -> normalized float for one channel, computed as torch does: (float(v) / 255 - mean) / std.
using ChannelLut = std::array<float, 256>;

// Validates `norm` for `channels` (one value per channel, or one for all; finite, std non-zero) and
// builds one table per channel. Errors start with `context`.
std::vector<ChannelLut> make_luts(const Normalization& norm, int channels, const std::string& context);

// An IDX dataset over two origins. num_classes 0 means max label + 1; otherwise labels must be below it.
std::shared_ptr<Dataset> open_idx_origins(ByteOrigin images, ByteOrigin labels, Normalization norm,
                                          std::string description, int num_classes);

// PIL's bilinear resize of `image` to out_w x out_h, computing only the output window
// [x0, x1) x [y0, y1); the result is that window (x1 - x0 wide), pixel-identical to the full resize.
RgbImage resize_window(const RgbImage& image, int out_w, int out_h, int x0, int x1, int y0, int y1);

}  // namespace aciq::data::detail
