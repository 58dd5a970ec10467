// Forward-only byte streams over files or memory with transparent gzip decompression (IDX input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace aciq::data::detail {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to n bytes into dst; returns fewer only at the end of the data. Throws aciq::Error (with
  // the source's name) on I/O errors and corrupt or truncated gzip data.
  virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
  // Reads and discards n bytes; returns how many there were.
  std::uint64_t skip(std::uint64_t n);
};

// Where a file's bytes come from: the file `name`, or in-memory contents that `name` stands for.
struct ByteOrigin {
  std::string name;
  std::shared_ptr<const std::vector<std::uint8_t>> memory;
};

// True when the data starts with the gzip magic 1f 8b.
bool is_gzip(const ByteOrigin& origin);
// Size of the stored (possibly compressed) bytes.
std::uint64_t stored_size(const ByteOrigin& origin);
// Opens the origin from its first byte, inflating it when it is gzip (multi-member streams included).
std::unique_ptr<ByteStream> open_stream(const ByteOrigin& origin);

}  // namespace aciq::data::detail
