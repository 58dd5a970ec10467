// IDX (MNIST-format) datasets: header validation, streaming image reader, Fashion-MNIST layout.
#include <algorithm>
#include <filesystem>

#include "aciq/data.hpp"
#include "data/byte_stream.hpp"
#include "data/detail.hpp"

namespace aciq::data {

namespace {

using detail::ByteOrigin;
using detail::ByteStream;

constexpr std::size_t kChunk = std::size_t{1} << 16;
// Largest image one IDX sample may hold: 16M pixels is far above any IDX dataset and keeps a single
// sample's buffer bounded whatever the header says.
constexpr std::int64_t kMaxSamplePixels = std::int64_t{1} << 24;

struct IdxHeader {
  std::vector<std::int64_t> dims;
  std::uint64_t header_bytes = 0;
  std::uint64_t payload_bytes = 0;  // product of dims (unsigned bytes)
};

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(dims[i]);
  }
  return s;
}

// Reads magic + dims; checks the element type and the rank the caller expects.
IdxHeader read_header(ByteStream& in, const std::string& name, int expected_rank, const char* what) {
  std::uint8_t magic[4];
  const std::size_t got = in.read(magic, 4);
  if (got < 4) fail(name + ": too short for an IDX header (" + std::to_string(got) + " bytes)");
  if (magic[0] != 0 || magic[1] != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%02x %02x %02x %02x", magic[0], magic[1], magic[2], magic[3]);
    fail(name + ": not an IDX file (magic bytes " + hex + ", expected 00 00 08 0" +
         std::to_string(expected_rank) + ")");
  }
  if (magic[2] != 0x08) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", magic[2]);
    fail(name + ": IDX element type " + hex + " is not supported (only unsigned bytes, 0x08)");
  }
  if (magic[3] != expected_rank) {
    fail(name + ": expected an IDX" + std::to_string(expected_rank) + " " + what + " file, got rank " +
         std::to_string(magic[3]));
  }
  IdxHeader h;
  h.header_bytes = 4 + 4 * static_cast<std::uint64_t>(expected_rank);
  h.payload_bytes = 1;
  for (int i = 0; i < expected_rank; ++i) {
    std::uint8_t b[4];
    if (in.read(b, 4) < 4) fail(name + ": truncated IDX header");
    const std::int64_t d = (std::int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    h.dims.push_back(d);
    // Each dim is below 2^32, so the product of three stays below 2^96; refuse past 2^48 bytes early.
    if (d != 0 && h.payload_bytes > (std::uint64_t{1} << 48) / static_cast<std::uint64_t>(d)) {
      fail(name + ": IDX dims " + dims_str(h.dims) + " are implausibly large");
    }
    h.payload_bytes *= static_cast<std::uint64_t>(d);
  }
  return h;
}

// Confirms the payload is exactly header-declared: by file size when raw, by inflating the whole stream
// (constant memory; also verifies the gzip CRC) when compressed.
void check_payload(const ByteOrigin& origin, ByteStream& after_header, const IdxHeader& h,
                   const std::string& what) {
  std::uint64_t have = 0;
  if (detail::is_gzip(origin)) {
    have = after_header.skip(h.payload_bytes + 1);
    if (have > h.payload_bytes) have += after_header.skip(~std::uint64_t{0});
  } else {
    const std::uint64_t size = detail::stored_size(origin);
    have = size > h.header_bytes ? size - h.header_bytes : 0;
  }
  if (have < h.payload_bytes) {
    fail(origin.name + ": truncated: the header declares " + what + " (" + std::to_string(h.payload_bytes) +
         " bytes) but the file holds only " + std::to_string(have) + " bytes of data");
  }
  if (have > h.payload_bytes) {
    fail(origin.name + ": " + std::to_string(have - h.payload_bytes) + " bytes of unexpected data after " +
         what);
  }
}

class IdxDataset : public Dataset, public std::enable_shared_from_this<IdxDataset> {
 public:
  IdxDataset(ByteOrigin images, ByteOrigin labels, const Normalization& norm, std::string description,
             int num_classes)
      : images_(std::move(images)), description_(std::move(description)) {
    // Labels are N bytes: small enough to keep (60 KB for Fashion-MNIST train), and the count must match.
    auto lstream = detail::open_stream(labels);
    const IdxHeader lh = read_header(*lstream, labels.name, 1, "label");
    const std::int64_t nlabels = lh.dims[0];
    std::vector<std::uint8_t> chunk(kChunk);
    while (static_cast<std::int64_t>(labels_.size()) < nlabels) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::int64_t>(nlabels - static_cast<std::int64_t>(labels_.size()), kChunk));
      const std::size_t got = lstream->read(chunk.data(), want);
      // Grow with the data actually present, never with the header's claim.
      labels_.insert(labels_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
      if (got < want) {
        fail(labels.name + ": truncated: the header declares " + std::to_string(nlabels) +
             " labels but the file holds only " + std::to_string(labels_.size()));
      }
    }
    if (lstream->skip(1) != 0)
      fail(labels.name + ": unexpected data after " + std::to_string(nlabels) + " labels");

    auto istream = detail::open_stream(images_);
    const IdxHeader ih = read_header(*istream, images_.name, 3, "image");
    size_ = ih.dims[0];
    rows_ = ih.dims[1];
    cols_ = ih.dims[2];
    // Each side is checked before the product, which could overflow for two 32-bit dimensions.
    if (rows_ < 1 || cols_ < 1 || rows_ > kMaxSamplePixels || cols_ > kMaxSamplePixels ||
        rows_ * cols_ > kMaxSamplePixels) {
      fail(images_.name + ": unsupported IDX image size " + std::to_string(rows_) + "x" +
           std::to_string(cols_));
    }
    if (size_ != nlabels) {
      fail("image/label count mismatch: " + images_.name + " has " + std::to_string(size_) + " images but " +
           labels.name + " has " + std::to_string(nlabels) + " labels");
    }
    check_payload(images_, *istream, ih, std::to_string(size_) + " images of " + dims_str({rows_, cols_}));
    header_bytes_ = ih.header_bytes;

    int max_label = -1;
    for (std::uint8_t l : labels_) max_label = std::max<int>(max_label, l);
    if (num_classes > 0 && max_label >= num_classes) {
      fail(labels.name + ": label " + std::to_string(max_label) + " is out of range for " +
           std::to_string(num_classes) + " classes");
    }
    num_classes_ = num_classes > 0 ? num_classes : max_label + 1;
    lut_ = detail::make_luts(norm, 1, description_)[0];
  }

  std::int64_t size() const override { return size_; }
  Shape sample_shape() const override { return {1, rows_, cols_}; }
  int num_classes() const override { return num_classes_; }
  std::string describe() const override { return description_; }
  bool random_access() const override { return false; }
  std::unique_ptr<SampleReader> open_reader(std::int64_t begin) const override;

  const ByteOrigin& images() const { return images_; }
  std::uint64_t header_bytes() const { return header_bytes_; }
  std::int64_t pixels() const { return rows_ * cols_; }
  std::uint8_t label(std::int64_t i) const { return labels_[static_cast<std::size_t>(i)]; }
  const detail::ChannelLut& lut() const { return lut_; }

 private:
  ByteOrigin images_;
  std::string description_;
  std::vector<std::uint8_t> labels_;
  std::int64_t size_ = 0, rows_ = 0, cols_ = 0;
  std::uint64_t header_bytes_ = 0;
  int num_classes_ = 0;
  detail::ChannelLut lut_{};
};

// Streams images front to back; a backward seek reopens (and re-inflates) the file.
class IdxReader : public SampleReader {
 public:
  explicit IdxReader(std::shared_ptr<const IdxDataset> ds)
      : ds_(std::move(ds)), pixels_(static_cast<std::size_t>(ds_->pixels())) {
    restart();
  }

  std::int64_t position() const override { return pos_; }

  void seek(std::int64_t index) override {
    if (index < 0 || index > ds_->size()) {
      fail(ds_->images().name + ": seek to sample " + std::to_string(index) + " of " +
           std::to_string(ds_->size()));
    }
    if (index < pos_) restart();
    const auto bytes = static_cast<std::uint64_t>(index - pos_) * pixels_.size();
    if (stream_->skip(bytes) != bytes) truncated(index);
    pos_ = index;
  }

  std::int64_t read(std::span<float> out) override {
    if (pos_ >= ds_->size()) fail(ds_->images().name + ": read past the last sample");
    if (out.size() != pixels_.size())
      fail(ds_->images().name + ": output buffer does not match the sample size");
    if (stream_->read(pixels_.data(), pixels_.size()) != pixels_.size()) truncated(pos_);
    const auto& lut = ds_->lut();
    for (std::size_t i = 0; i < pixels_.size(); ++i) out[i] = lut[pixels_[i]];
    return ds_->label(pos_++);
  }

 private:
  void restart() {
    stream_ = detail::open_stream(ds_->images());
    if (stream_->skip(ds_->header_bytes()) != ds_->header_bytes()) truncated(0);
    pos_ = 0;
  }
  // The file was validated at open, so a short read means it changed on disk since.
  [[noreturn]] void truncated(std::int64_t index) const {
    fail(ds_->images().name + ": unexpected end of data at image " + std::to_string(index) +
         " (file changed since it was opened?)");
  }

  std::shared_ptr<const IdxDataset> ds_;
  std::unique_ptr<ByteStream> stream_;
  std::vector<std::uint8_t> pixels_;
  std::int64_t pos_ = 0;
};

std::unique_ptr<SampleReader> IdxDataset::open_reader(std::int64_t begin) const {
  auto reader = std::make_unique<IdxReader>(shared_from_this());
  if (begin) reader->seek(begin);
  return reader;
}

std::string first_existing(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    const std::string path = dir + "/" + name;
    if (std::filesystem::is_regular_file(path)) return path;
  }
  fail("fashion-mnist: neither " + dir + "/" + stem + ".gz nor " + dir + "/" + stem + " exists");
}

}  // namespace

namespace detail {

std::shared_ptr<Dataset> open_idx_origins(ByteOrigin images, ByteOrigin labels, Normalization norm,
                                          std::string description, int num_classes) {
  return std::make_shared<IdxDataset>(std::move(images), std::move(labels), norm, std::move(description),
                                      num_classes);
}

}  // namespace detail

std::shared_ptr<Dataset> open_idx(const std::string& images_path, const std::string& labels_path,
                                  Normalization norm) {
  return detail::open_idx_origins({images_path, nullptr}, {labels_path, nullptr}, std::move(norm),
                                  "idx (" + images_path + ", " + labels_path + ")", 0);
}

std::shared_ptr<Dataset> open_idx_bytes(std::vector<std::uint8_t> images, std::vector<std::uint8_t> labels,
                                        const std::string& name, Normalization norm) {
  return detail::open_idx_origins(
      {name + " images", std::make_shared<const std::vector<std::uint8_t>>(std::move(images))},
      {name + " labels", std::make_shared<const std::vector<std::uint8_t>>(std::move(labels))},
      std::move(norm), "idx (" + name + ")", 0);
}

std::shared_ptr<Dataset> open_fashion_mnist(const std::string& dir, Split split, Normalization norm) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) fail("fashion-mnist: directory '" + dir + "' does not exist");
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string name = split == Split::kTrain ? "train" : "test";
  // Images first, so a directory missing both files reports the images file.
  std::string images = first_existing(dir, prefix + "-images-idx3-ubyte");
  std::string labels = first_existing(dir, prefix + "-labels-idx1-ubyte");
  return detail::open_idx_origins({std::move(images), nullptr}, {std::move(labels), nullptr}, std::move(norm),
                                  "fashion-mnist " + name + " (" + dir + ")", 10);
}

}  // namespace aciq::data
