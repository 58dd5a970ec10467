// NumPy .npy files: a memory-mapped reader and an incremental, atomic writer.
//
// Format (numpy/lib/format.py, versions 1.0-3.0): the magic "\x93NUMPY", major and minor version bytes,
// the header length (uint16 for 1.0, uint32 for 2.0/3.0), then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), } padded with spaces to a multiple of 64
// bytes and ended by '\n'; the raw C-order data follows.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "aciq/data.hpp"

namespace aciq::data {

namespace {

struct Descr {
  const char* text;
  DType dtype;
};
constexpr Descr kDescrs[] = {{"<f4", DType::kFloat32}, {"<i8", DType::kInt64}, {"<i4", DType::kInt32},
                             {"|u1", DType::kUInt8},   {"|i1", DType::kInt8},  {"|b1", DType::kBool}};

std::string descr_of(DType d) {
  for (const auto& e : kDescrs) {
    if (e.dtype == d) return e.text;
  }
  fail("internal: no .npy descr for " + std::string(dtype_name(d)));
}

// The value text after 'key': in the header dict.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) fail(path + ": .npy header has no '" + key + "'");
  auto v = header.find(':', k);
  if (v == std::string::npos) fail(path + ": malformed .npy header");
  ++v;
  while (v < header.size() && header[v] == ' ') ++v;
  if (v < header.size() && header[v] == '(') {
    const auto e = header.find(')', v);
    if (e == std::string::npos) fail(path + ": malformed shape in .npy header");
    return header.substr(v, e - v + 1);
  }
  auto e = header.find_first_of(",}", v);
  return header.substr(v, e == std::string::npos ? std::string::npos : e - v);
}

std::string header_for(DType dtype, const Shape& shape) {
  // numpy's repr of a tuple: "(N,)", "(N, M)", "()".
  std::string dims;
  for (std::size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string h = "{'descr': '" + descr_of(dtype) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  const std::size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  return out + h;
}

void write_all(int fd, const void* data, std::size_t n, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path + ": write failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

struct NpyArray::Mapping {
  void* addr = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (addr && size) ::munmap(addr, size);
  }
};

NpyArray NpyArray::open(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path + ": is a directory, not a .npy file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path + ": cannot stat");
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<std::size_t>(st.st_size);
  if (map->size > 0) {
    map->addr = ::mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map->addr == MAP_FAILED) {
      map->addr = nullptr;
      ::close(fd);
      fail(path + ": cannot map the file: " + std::strerror(errno));
    }
  }
  ::close(fd);
  const auto* bytes = static_cast<const unsigned char*>(map->addr);
  if (map->size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) fail(path + ": not a .npy file (bad magic)");
  const int major = bytes[6];
  std::size_t header_len = 0, pre = 0;
  if (major == 1) {
    header_len = bytes[8] | (bytes[9] << 8);
    pre = 10;
  } else if (major == 2 || major == 3) {
    if (map->size < 12) fail(path + ": truncated .npy header");
    header_len = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (static_cast<std::size_t>(bytes[11]) << 24);
    pre = 12;
  } else {
    fail(path + ": unsupported .npy format version " + std::to_string(major));
  }
  if (pre + header_len > map->size) fail(path + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(bytes + pre), header_len);
  NpyArray a;
  a.path_ = path;
  a.data_offset_ = pre + header_len;
  std::string descr = dict_value(header, "descr", path);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  bool known = false;
  for (const auto& e : kDescrs) {
    if (descr == e.text ||
        (descr.size() == 3 && descr[0] == '=' && descr.substr(1) == std::string(e.text).substr(1))) {
      a.dtype_ = e.dtype;
      known = true;
    }
  }
  if (!known) {
    const std::string hint = descr == "<f8" ? " (float64: save it as float32, e.g. x.astype('float32'))" : "";
    fail(path + ": .npy dtype '" + descr + "' is not supported" + hint +
         "; expected float32, int64, int32, uint8, int8 or bool, little-endian");
  }
  if (dict_value(header, "fortran_order", path).find("True") != std::string::npos)
    fail(path + ": Fortran-order .npy is not supported; save it in C order (np.ascontiguousarray)");
  const std::string shape = dict_value(header, "shape", path);
  for (std::size_t i = 1; i + 1 < shape.size();) {
    while (i < shape.size() && (shape[i] == ' ' || shape[i] == ',')) ++i;
    if (i + 1 >= shape.size()) break;
    std::size_t used = 0;
    try {
      a.shape_.push_back(std::stoll(shape.substr(i), &used));
    } catch (const std::exception&) {
      fail(path + ": malformed shape " + shape + " in .npy header");
    }
    i += used;
  }
  const std::int64_t n = shape_numel(a.shape_);
  if (a.data_offset_ + static_cast<std::size_t>(n) * dtype_size(a.dtype_) > map->size) {
    fail(path + ": holds " + std::to_string(map->size - a.data_offset_) + " data bytes, shape " +
         shape_str(a.shape_) + " needs " +
         std::to_string(static_cast<std::size_t>(n) * dtype_size(a.dtype_)));
  }
  a.map_ = std::move(map);
  return a;
}

Tensor NpyArray::rows(std::int64_t begin, std::int64_t count) const {
  if (shape_.empty()) fail(path_ + ": a 0-d array has no rows");
  if (begin < 0 || count < 0 || begin + count > shape_[0]) {
    fail(path_ + ": rows " + std::to_string(begin) + ".." + std::to_string(begin + count) + " outside the " +
         std::to_string(shape_[0]) + " it holds");
  }
  Shape s = shape_;
  s[0] = count;
  Tensor t(dtype_, s);
  const std::size_t row_bytes = t.nbytes() / static_cast<std::size_t>(std::max<std::int64_t>(count, 1));
  if (t.nbytes() > 0) {
    std::memcpy(
        t.raw(),
        static_cast<const char*>(map_->addr) + data_offset_ + static_cast<std::size_t>(begin) * row_bytes,
        t.nbytes());
  }
  return t;
}

NpyWriter::NpyWriter(std::string path, DType dtype, Shape shape)
    : path_(std::move(path)), dtype_(dtype), shape_(std::move(shape)) {
  namespace fs = std::filesystem;
  const fs::path target(path_);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string name(".");
  name += target.filename().string();
  name += ".tmp.XXXXXX";
  tmp_ = (dir / name).string();
  fd_ = mkstemp(tmp_.data());
  if (fd_ < 0) fail(path_ + ": cannot create temporary file: " + std::strerror(errno));
  const std::string h = header_for(dtype_, shape_);
  write_all(fd_, h.data(), h.size(), path_);
}

NpyWriter::~NpyWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void NpyWriter::append(const Tensor& t) {
  Shape want = shape_;
  if (t.dtype() != dtype_ || t.rank() != shape_.size() || t.rank() == 0 ||
      !std::equal(want.begin() + 1, want.end(), t.shape().begin() + 1)) {
    want[0] = t.rank() ? t.shape()[0] : 0;
    fail(path_ + ": rows of " + shape_str(t.shape()) + " (" + std::string(dtype_name(t.dtype())) +
         ") do not fit the file's " + shape_str(shape_) + " (" + std::string(dtype_name(dtype_)) + ")");
  }
  if (rows_done_ + t.shape()[0] > shape_[0])
    fail(path_ + ": more rows than the " + std::to_string(shape_[0]) + " declared");
  write_all(fd_, t.raw(), t.nbytes(), path_);
  rows_done_ += t.shape()[0];
}

void NpyWriter::finish() {
  if (fd_ < 0) return;
  if (rows_done_ != shape_[0]) {
    fail(path_ + ": " + std::to_string(rows_done_) + " rows written, " + std::to_string(shape_[0]) +
         " declared");
  }
  const bool synced = ::fsync(fd_) == 0 && ::fchmod(fd_, 0644) == 0;
  const std::string err = synced ? "" : std::strerror(errno);
  const bool closed = ::close(fd_) == 0;
  fd_ = -1;
  if (!synced || !closed) {
    ::unlink(tmp_.c_str());
    fail(path_ + ": cannot finish writing: " + (synced ? std::string(std::strerror(errno)) : err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp_.c_str());
    fail(path_ + ": cannot rename into place: " + err);
  }
}

void write_npy(const std::string& path, const Tensor& t) {
  if (t.rank() == 0) {
    NpyWriter w(path, t.dtype(), {1});
    w.append(t.reshaped({1}));
    w.finish();
    return;
  }
  NpyWriter w(path, t.dtype(), t.shape());
  w.append(t);
  w.finish();
}

}  // namespace aciq::data

namespace aciq::data {

namespace {

// Already-preprocessed float32 samples (N first) with optional integer labels; unlabeled samples
// read as label -1.
class NpyDataset : public Dataset {
 public:
  NpyDataset(NpyArray images, std::optional<NpyArray> labels) : images_(std::move(images)) {
    if (images_.dtype() != DType::kFloat32) {
      fail(images_.path() + ": --data npy: samples must be float32, the file holds " +
           std::string(dtype_name(images_.dtype())));
    }
    if (images_.shape().size() < 2) {
      fail(images_.path() + ": --data npy: shape " + shape_str(images_.shape()) +
           " has no per-sample dimensions (expected [N, ...])");
    }
    if (labels) {
      const auto& ls = labels->shape();
      if (labels->dtype() != DType::kInt64 && labels->dtype() != DType::kInt32) {
        fail(labels->path() + ": --data npy: labels must be int64 or int32, the file holds " +
             std::string(dtype_name(labels->dtype())));
      }
      if (ls.size() != 1 || ls[0] != images_.shape()[0]) {
        fail(labels->path() + ": --data npy: labels of shape " + shape_str(ls) + " do not match " +
             std::to_string(images_.shape()[0]) + " samples of " + images_.path());
      }
      labels_ = labels->rows(0, ls[0]).to_i64_vector();
      for (auto l : labels_) {
        if (l < 0) fail(labels->path() + ": negative label " + std::to_string(l));
        if (l >= (1 << 24)) fail(labels->path() + ": label " + std::to_string(l) + " is not a class index");
        classes_ = std::max<std::int64_t>(classes_, l + 1);
      }
      labels_path_ = labels->path();
    }
  }
  std::int64_t size() const override { return images_.shape()[0]; }
  Shape sample_shape() const override { return Shape(images_.shape().begin() + 1, images_.shape().end()); }
  int num_classes() const override { return static_cast<int>(classes_); }
  std::string describe() const override {
    return "npy (" + images_.path() + (labels_path_.empty() ? "" : ", " + labels_path_) + ")";
  }
  bool random_access() const override { return true; }
  std::unique_ptr<SampleReader> open_reader(std::int64_t begin) const override {
    return std::make_unique<Reader>(*this, begin);
  }

 private:
  class Reader : public SampleReader {
   public:
    Reader(const NpyDataset& ds, std::int64_t at) : ds_(ds), at_(at) {}
    std::int64_t position() const override { return at_; }
    void seek(std::int64_t index) override { at_ = index; }
    std::int64_t read(std::span<float> out) override {
      const Tensor row = ds_.images_.rows(at_, 1);
      std::memcpy(out.data(), row.raw(), std::min(out.size_bytes(), row.nbytes()));
      const std::int64_t label = ds_.labels_.empty() ? -1 : ds_.labels_[static_cast<std::size_t>(at_)];
      ++at_;
      return label;
    }

   private:
    const NpyDataset& ds_;
    std::int64_t at_;
  };

  NpyArray images_;
  std::vector<std::int64_t> labels_;
  std::string labels_path_;
  std::int64_t classes_ = 0;
};

}  // namespace

std::shared_ptr<Dataset> open_npy_dataset(const std::string& images, const std::string& labels) {
  auto img = NpyArray::open(images);
  std::optional<NpyArray> lab;
  if (!labels.empty()) lab = NpyArray::open(labels);
  return std::make_shared<NpyDataset>(std::move(img), std::move(lab));
}

}  // namespace aciq::data
