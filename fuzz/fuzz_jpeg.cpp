// libFuzzer target: bytes -> JPEG decode (libjpeg-turbo, PIL conventions) -> Resize/CenterCrop -> Normalize.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <vector>

#include "aciq/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A pixel cap far below the production one keeps each run fast; the code path is the same.
  constexpr std::int64_t kMaxPixels = std::int64_t{1} << 22;
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    aciq::data::ImagePreprocess pre;
    std::vector<float> out(3 * 224 * 224);
    aciq::data::preprocess_jpeg(bytes, "fuzz.jpg", pre, out, kMaxPixels);
    // A second geometry: upscaling with zero padding (crop larger than the resized image).
    pre.resize = 31;
    pre.crop = 40;
    std::vector<float> small(3 * 40 * 40);
    aciq::data::preprocess_jpeg(bytes, "fuzz.jpg", pre, small, kMaxPixels);
  } catch (const aciq::Error&) {
    // Refusing a corrupt image with a message is the expected outcome.
  } catch (const std::exception& e) {
    // Any other exception escaping the library is a bug: errors must carry aciq context.
    std::fprintf(stderr, "non-aciq exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
