// Dataset helpers, normalization tables and the CLI dataset-spec parser.
#include <cmath>
#include <filesystem>

#include "aciq/data.hpp"
#include "data/detail.hpp"

namespace aciq::data {

std::int64_t Dataset::sample_numel() const { return shape_numel(sample_shape()); }

Normalization fashion_mnist_normalization() { return {{0.2860f}, {0.3530f}}; }

Normalization imagenet_normalization() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

namespace detail {

std::vector<ChannelLut> make_luts(const Normalization& norm, int channels, const std::string& context) {
  const auto check_size = [&](const std::vector<float>& v, const char* what) {
    if (v.size() != 1 && v.size() != static_cast<std::size_t>(channels)) {
      fail(context + ": normalization " + what + " has " + std::to_string(v.size()) + " values for " +
           std::to_string(channels) + " channel(s) (give one per channel, or one for all)");
    }
  };
  check_size(norm.mean, "mean");
  check_size(norm.std, "std");
  std::vector<ChannelLut> luts(static_cast<std::size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    const float mean = norm.mean.size() == 1 ? norm.mean[0] : norm.mean[c];
    const float std = norm.std.size() == 1 ? norm.std[0] : norm.std[c];
    if (!std::isfinite(mean) || !std::isfinite(std) || std == 0.0f) {
      fail(context + ": normalization of channel " + std::to_string(c) +
           " needs a finite mean and a finite, " + "non-zero std (got mean " + std::to_string(mean) +
           ", std " + std::to_string(std) + ")");
    }
    // Same float32 operations and order as ToTensor (div 255) then Normalize (sub mean, div std), so the
    // tables reproduce torch bit for bit.
    for (int v = 0; v < 256; ++v) luts[c][v] = (static_cast<float>(v) / 255.0f - mean) / std;
  }
  return luts;
}

}  // namespace detail

namespace {

Normalization pick(const DataOptions& o, Normalization fallback) {
  if (!o.mean.empty()) fallback.mean = o.mean;
  if (!o.std.empty()) fallback.std = o.std;
  return fallback;
}

}  // namespace

std::string resolve_data_spec(const std::string& spec) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (spec.empty() || !fs::is_directory(spec, ec)) return spec;
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                        "train-images-idx3-ubyte"}) {
    if (fs::exists(fs::path(spec) / f, ec)) return "fashion-mnist:" + spec;
  }
  return "imagenet:" + spec;
}

std::shared_ptr<Dataset> open_dataset(const std::string& spec_in, const std::string& split,
                                      const DataOptions& options) {
  const std::string spec = resolve_data_spec(spec_in);
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "fashion-mnist") {
    Split s = Split::kTest;
    if (split == "train") {
      s = Split::kTrain;
    } else if (!split.empty() && split != "test") {
      fail("--data fashion-mnist: unknown split '" + split + "' (expected train or test)");
    }
    return open_fashion_mnist(arg.empty() ? "/usr/share/datasets/fashion-mnist" : arg, s,
                              pick(options, fashion_mnist_normalization()));
  }
  if (kind == "imagenet") {
    if (arg.empty()) fail("--data imagenet: give the dataset root, e.g. imagenet:/data/imagenet");
    ImagePreprocess pre;
    pre.resize = options.resize;
    pre.crop = options.crop;
    pre.norm = pick(options, imagenet_normalization());
    return open_image_folder(arg, split.empty() ? "val" : split, std::move(pre));
  }
  if (kind == "idx") {
    const auto comma = arg.find(',');
    if (comma == std::string::npos || comma == 0 || comma + 1 == arg.size()) {
      fail("--data '" + spec + "': expected idx:IMAGES,LABELS");
    }
    return open_idx(arg.substr(0, comma), arg.substr(comma + 1),
                    pick(options, fashion_mnist_normalization()));
  }
  if (kind == "npy") {
    if (arg.empty() || arg.front() == ',') fail("--data '" + spec + "': expected npy:IMAGES.npy[,LABELS.npy]");
    if (!options.mean.empty() || !options.std.empty()) {
      fail("--data npy: the samples are used as they are; --mean/--std have no effect on them");
    }
    const auto comma = arg.find(',');
    return open_npy_dataset(arg.substr(0, comma), comma == std::string::npos ? "" : arg.substr(comma + 1));
  }
  fail("--data '" + spec +
       "': unknown dataset (expected fashion-mnist[:DIR], imagenet:DIR, idx:IMAGES,LABELS, "
       "npy:IMAGES[,LABELS] or an existing directory)");
}

}  // namespace aciq::data
