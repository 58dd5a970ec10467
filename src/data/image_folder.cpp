// torchvision ImageFolder over JPEG files: class discovery, sample ordering, per-sample decode.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "aciq/data.hpp"
#include "data/detail.hpp"

namespace aciq::data {

namespace {

namespace fs = std::filesystem;

// os.walk(followlinks=True) could loop forever on a symlink cycle; no real dataset nests this deep.
constexpr int kMaxDepth = 32;

std::string lower_ascii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// torchvision's IMG_EXTENSIONS decide which files are samples; of those only JPEG is decoded here.
bool is_image_file(const std::string& lower_name) {
  for (const char* ext : {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}) {
    if (ends_with(lower_name, ext)) return true;
  }
  return false;
}

bool is_jpeg_name(const std::string& lower_name) {
  return ends_with(lower_name, ".jpg") || ends_with(lower_name, ".jpeg");
}

// Directory entries as os.scandir sees them: is_dir() follows symlinks.
struct Listing {
  std::vector<std::string> dirs, files;
};

Listing list_dir(const std::string& dir) {
  Listing l;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) fail(dir + ": cannot list directory: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code ec2;
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec2)) {
      l.dirs.push_back(name);
    } else {
      l.files.push_back(name);
    }
  }
  if (ec) fail(dir + ": cannot list directory: " + ec.message());
  return l;
}

// Collects (root, file name) pairs like os.walk(dir, followlinks=True).
void walk(const std::string& root, int depth, std::vector<std::pair<std::string, std::string>>& out) {
  if (depth > kMaxDepth)
    fail(root + ": directories nested deeper than " + std::to_string(kMaxDepth) + " (symlink loop?)");
  const Listing l = list_dir(root);
  for (const auto& f : l.files) out.emplace_back(root, f);
  for (const auto& d : l.dirs) walk(root + "/" + d, depth + 1, out);
}

struct Sample {
  std::string path;
  int label = 0;
};

class ImageFolderDataset : public Dataset, public std::enable_shared_from_this<ImageFolderDataset> {
 public:
  ImageFolderDataset(const std::string& root, const std::string& split, ImagePreprocess pre)
      : pre_(std::move(pre)), description_("imagefolder " + split + " (" + root + ")") {
    if (pre_.resize < 1 || pre_.crop < 1) {
      fail(description_ + ": resize and crop must be positive (got " + std::to_string(pre_.resize) + ", " +
           std::to_string(pre_.crop) + ")");
    }
    detail::make_luts(pre_.norm, 3, description_);  // validate now, not in a worker
    std::error_code ec;
    if (!fs::is_directory(root, ec)) fail("image folder: directory '" + root + "' does not exist");
    const std::string dir = root + "/" + split;
    if (!fs::is_directory(dir, ec)) fail("image folder: split directory '" + dir + "' does not exist");

    classes_ = list_dir(dir).dirs;
    std::sort(classes_.begin(), classes_.end());  // sorted(entry.name ...): code-point = UTF-8 byte order
    if (classes_.empty()) fail(dir + ": no class folders (expected " + dir + "/<class>/<image>.JPEG)");
    for (std::size_t label = 0; label < classes_.size(); ++label) {
      const std::string class_dir = dir + "/" + classes_[label];
      // torchvision: for root, _, fnames in sorted(os.walk(...)): for fname in sorted(fnames).
      std::vector<std::pair<std::string, std::string>> files;
      walk(class_dir, 0, files);
      std::sort(files.begin(), files.end());
      std::size_t found = 0;
      for (const auto& [where, name] : files) {
        const std::string lower = lower_ascii(name);
        if (!is_image_file(lower)) continue;
        const std::string path = where + "/" + name;
        if (!is_jpeg_name(lower)) fail(path + ": only JPEG images are supported (convert it, or remove it)");
        samples_.push_back({path, static_cast<int>(label)});
        ++found;
      }
      if (found == 0) fail(class_dir + ": class folder '" + classes_[label] + "' contains no images");
    }
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(samples_.size()); }
  Shape sample_shape() const override { return {3, pre_.crop, pre_.crop}; }
  int num_classes() const override { return static_cast<int>(classes_.size()); }
  std::string describe() const override { return description_; }
  bool random_access() const override { return true; }
  std::unique_ptr<SampleReader> open_reader(std::int64_t begin) const override;

  const Sample& sample(std::int64_t i) const { return samples_[static_cast<std::size_t>(i)]; }
  const ImagePreprocess& preprocess() const { return pre_; }

 private:
  ImagePreprocess pre_;
  std::string description_;
  std::vector<std::string> classes_;
  std::vector<Sample> samples_;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

void read_file(const std::string& path, std::vector<std::uint8_t>& out) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path + ": cannot open: " + std::error_code(errno, std::generic_category()).message());
  out.clear();
  std::uint8_t buf[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(buf, 1, sizeof buf, f.get());
    out.insert(out.end(), buf, buf + got);
    if (got < sizeof buf) break;
  }
  if (std::ferror(f.get())) fail(path + ": read error");
}

class ImageFolderReader : public SampleReader {
 public:
  ImageFolderReader(std::shared_ptr<const ImageFolderDataset> ds, std::int64_t begin) : ds_(std::move(ds)) {
    seek(begin);
  }
  std::int64_t position() const override { return pos_; }
  void seek(std::int64_t index) override {
    if (index < 0 || index > ds_->size()) {
      fail(ds_->describe() + ": seek to sample " + std::to_string(index) + " of " +
           std::to_string(ds_->size()));
    }
    pos_ = index;
  }
  std::int64_t read(std::span<float> out) override {
    if (pos_ >= ds_->size()) fail(ds_->describe() + ": read past the last sample");
    const Sample& s = ds_->sample(pos_);
    read_file(s.path, bytes_);
    preprocess_jpeg(bytes_, s.path, ds_->preprocess(), out);
    ++pos_;
    return s.label;
  }

 private:
  std::shared_ptr<const ImageFolderDataset> ds_;
  std::vector<std::uint8_t> bytes_;  // reused across samples
  std::int64_t pos_ = 0;
};

std::unique_ptr<SampleReader> ImageFolderDataset::open_reader(std::int64_t begin) const {
  return std::make_unique<ImageFolderReader>(shared_from_this(), begin);
}

}  // namespace

std::shared_ptr<Dataset> open_image_folder(const std::string& root, const std::string& split,
                                           ImagePreprocess pre) {
  return std::make_shared<ImageFolderDataset>(root, split, std::move(pre));
}

}  // namespace aciq::data
