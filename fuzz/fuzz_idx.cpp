// libFuzzer target: bytes -> IDX parser (raw and gzip) as an image file and as a label file, then streaming
// reads.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "aciq/data.hpp"
#include "data/byte_stream.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

// Enough samples to cover the streaming reader without letting a large header make a run slow.
constexpr std::int64_t kMaxSamples = 4096;

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// Count field of the (possibly gzipped) IDX header in `bytes`, or -1.
std::int64_t declared_count(const Bytes& bytes) {
  auto in = aciq::data::detail::open_stream({"fuzz", std::make_shared<const Bytes>(bytes)});
  std::uint8_t h[8];
  if (in->read(h, 8) < 8) return -1;
  return (std::int64_t{h[4]} << 24) | (h[5] << 16) | (h[6] << 8) | h[7];
}

void read_all(const aciq::data::Dataset& ds) {
  const std::int64_t n = std::min(ds.size(), kMaxSamples);
  std::vector<float> sample(static_cast<std::size_t>(ds.sample_numel()));
  auto r = ds.open_reader(0);
  for (std::int64_t i = 0; i < n; ++i) (void)r->read(sample);
  if (n > 1) {
    r->seek(n / 2);  // backward: restarts the stream
    (void)r->read(sample);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, data + size);
  const aciq::data::Normalization norm{{0.5f}, {0.25f}};
  try {
    // As an image file, with labels made to match the count it declares.
    const std::int64_t n = declared_count(input);
    if (n >= 0 && n <= kMaxSamples) {
      Bytes labels{0, 0, 8, 1};
      put_be32(labels, static_cast<std::uint32_t>(n));
      for (std::int64_t i = 0; i < n; ++i) labels.push_back(static_cast<std::uint8_t>(i % 10));
      read_all(*aciq::data::open_idx_bytes(input, labels, "fuzz", norm));
    }
  } catch (const aciq::Error&) {
    // Refusing a malformed file with a message is the expected outcome.
  } catch (const std::exception& e) {
    // Any other exception escaping the library is a bug: errors must carry aciq context.
    std::fprintf(stderr, "non-aciq exception: %s\n", e.what());
    std::abort();
  }
  try {
    // As a label file, with 1x1 images to match.
    const std::int64_t n = declared_count(input);
    if (n >= 0 && n <= kMaxSamples) {
      Bytes images{0, 0, 8, 3};
      put_be32(images, static_cast<std::uint32_t>(n));
      put_be32(images, 1);
      put_be32(images, 1);
      images.resize(images.size() + static_cast<std::size_t>(n), 0x80);
      read_all(*aciq::data::open_idx_bytes(images, input, "fuzz", norm));
    }
  } catch (const aciq::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-aciq exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
