// File, memory and zlib-inflating byte streams; every error names the file it came from.
#include "data/byte_stream.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "aciq/core.hpp"

namespace aciq::data::detail {

namespace {

constexpr std::size_t kChunk = std::size_t{1} << 16;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_file(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path + ": cannot open: " + errno_text(errno));
  return f;
}

class FileStream : public ByteStream {
 public:
  explicit FileStream(std::string path) : path_(std::move(path)), file_(open_file(path_)) {}
  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    const std::size_t got = std::fread(dst, 1, n, file_.get());
    if (got < n && std::ferror(file_.get())) fail(path_ + ": read error: " + errno_text(errno));
    return got;
  }

 private:
  std::string path_;
  FilePtr file_;
};

class MemoryStream : public ByteStream {
 public:
  explicit MemoryStream(std::shared_ptr<const std::vector<std::uint8_t>> bytes) : bytes_(std::move(bytes)) {}
  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    const std::size_t got = std::min(n, bytes_->size() - pos_);
    if (got) std::memcpy(dst, bytes_->data() + pos_, got);
    pos_ += got;
    return got;
  }

 private:
  std::shared_ptr<const std::vector<std::uint8_t>> bytes_;
  std::size_t pos_ = 0;
};

// Inflates gzip members back to back, as gzip -d does; CRC and length trailers are checked by zlib.
class GzipStream : public ByteStream {
 public:
  GzipStream(std::unique_ptr<ByteStream> raw, std::string name)
      : raw_(std::move(raw)), name_(std::move(name)), in_(kChunk) {
    // 16 + MAX_WBITS: expect a gzip wrapper (the caller saw the magic).
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail(name_ + ": cannot initialize zlib");
  }
  ~GzipStream() override { inflateEnd(&zs_); }
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    std::size_t produced = 0;
    while (produced < n && !done_) {
      if (zs_.avail_in == 0) {
        const std::size_t got = raw_->read(in_.data(), in_.size());
        compressed_ += got;
        if (got == 0) {
          if (member_ended_) {
            done_ = true;
            break;
          }
          fail(name_ + ": truncated gzip stream (ends after " + std::to_string(compressed_) +
               " compressed bytes)");
        }
        zs_.next_in = in_.data();
        zs_.avail_in = static_cast<uInt>(got);
      }
      if (member_ended_) {
        // More bytes after a complete member: they must form another member.
        if (inflateReset(&zs_) != Z_OK) fail(name_ + ": cannot reset zlib");
        member_ended_ = false;
      }
      const std::size_t want = std::min<std::size_t>(n - produced, 1u << 30);
      zs_.next_out = dst + produced;
      zs_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      produced += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        member_ended_ = true;
      } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
        fail(name_ + ": corrupt gzip data: " + (zs_.msg ? zs_.msg : "invalid stream"));
      } else if (rc == Z_MEM_ERROR) {
        fail(name_ + ": out of memory while inflating");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        fail(name_ + ": zlib error " + std::to_string(rc));
      }
    }
    return produced;
  }

 private:
  std::unique_ptr<ByteStream> raw_;
  std::string name_;
  std::vector<std::uint8_t> in_;
  z_stream zs_{};
  std::uint64_t compressed_ = 0;
  bool member_ended_ = false;
  bool done_ = false;
};

std::unique_ptr<ByteStream> open_raw(const ByteOrigin& origin) {
  if (origin.memory) return std::make_unique<MemoryStream>(origin.memory);
  return std::make_unique<FileStream>(origin.name);
}

}  // namespace

std::uint64_t ByteStream::skip(std::uint64_t n) {
  std::uint8_t scratch[4096];
  std::uint64_t done = 0;
  while (done < n) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, sizeof scratch));
    const std::size_t got = read(scratch, want);
    done += got;
    if (got < want) break;
  }
  return done;
}

bool is_gzip(const ByteOrigin& origin) {
  std::uint8_t magic[2] = {0, 0};
  const std::size_t got = open_raw(origin)->read(magic, 2);
  return got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

std::uint64_t stored_size(const ByteOrigin& origin) {
  if (origin.memory) return origin.memory->size();
  std::error_code ec;
  const auto size = std::filesystem::file_size(origin.name, ec);
  if (ec) fail(origin.name + ": cannot stat: " + ec.message());
  return size;
}

std::unique_ptr<ByteStream> open_stream(const ByteOrigin& origin) {
  if (is_gzip(origin)) return std::make_unique<GzipStream>(open_raw(origin), origin.name);
  return open_raw(origin);
}

}  // namespace aciq::data::detail
