// Datasets (IDX, ImageFolder JPEG), torchvision-exact image preprocessing and the threaded batch loader.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::data {

// Per-channel Normalize(mean, std) applied after ToTensor's /255; one value per channel, or one value
// for all channels.
struct Normalization {
  std::vector<float> mean, std;
};

// Fashion-MNIST training-set statistics (mean 0.2860, std 0.3530), the reference models' training values.
Normalization fashion_mnist_normalization();
// torchvision's ImageNet statistics (mean 0.485,0.456,0.406, std 0.229,0.224,0.225).
Normalization imagenet_normalization();

// A forward cursor over a dataset. One reader belongs to one thread; open one per worker.
class SampleReader {
 public:
  virtual ~SampleReader() = default;
  // Index of the sample the next read() returns.
  [[nodiscard]] virtual std::int64_t position() const = 0;
  // Moves to sample `index` (0 <= index <= size). Cheap on random-access datasets; on streaming ones a
  // backward seek restarts the stream and a forward seek decodes and discards the samples in between.
  virtual void seek(std::int64_t index) = 0;
  // Writes the sample at position() into `out` (sample_shape() floats, CHW, normalized), returns its
  // label and advances. Throws aciq::Error naming the file on corrupt or truncated data.
  virtual std::int64_t read(std::span<float> out) = 0;
};

// A labelled image dataset. All const methods are safe to call from several threads at once; no
// implementation keeps the samples in memory (readers stream them from disk).
class Dataset {
 public:
  virtual ~Dataset() = default;
  [[nodiscard]] virtual std::int64_t size() const = 0;
  [[nodiscard]] virtual Shape sample_shape() const = 0;  // {C, H, W}
  [[nodiscard]] virtual int num_classes() const = 0;
  // e.g. "fashion-mnist test (/usr/share/datasets/fashion-mnist)"; recorded in statistics files.
  [[nodiscard]] virtual std::string describe() const = 0;
  // True when opening a reader at any index costs the same (one file per sample), so several workers
  // can read disjoint ranges; false for streams such as gzip, which one worker reads front to back.
  [[nodiscard]] virtual bool random_access() const = 0;
  [[nodiscard]] virtual std::unique_ptr<SampleReader> open_reader(std::int64_t begin = 0) const = 0;

  [[nodiscard]] std::int64_t sample_numel() const;
};

struct LoaderOptions {
  std::int64_t batch_size = 64;
  std::int64_t offset = 0;   // skip the first `offset` samples (disjoint chunks of one dataset)
  std::int64_t limit = 0;    // then use only `limit` samples; 0 = all the rest
  int workers = 2;           // decoding threads (streaming datasets use one)
  int prefetch_batches = 2;  // batches decoded ahead of the consumer (bounds memory), >= 1
};

struct Batch {
  Tensor images;  // float32 [n, C, H, W], normalized
  std::vector<std::int64_t> labels;
  std::int64_t first_index = 0;  // dataset index of images[0]
};

// Yields total() samples from index `offset` on, in dataset order, as batches of batch_size (the last may be
// short). Worker threads decode ahead of the consumer; every sample lands at a fixed position, so batches are
// identical for any worker count. A worker's error (e.g. a corrupt JPEG, named in the message) is
// rethrown by next() when the consumer reaches the batch that failed. Destroying the loader
// mid-stream stops the workers after the sample each is decoding.
class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order, or nullopt after the last one.
  std::optional<Batch> next();
  [[nodiscard]] std::int64_t total() const;
  [[nodiscard]] std::int64_t num_batches() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---- IDX (MNIST-style) datasets -------------------------------------------------------------------

// IDX3 unsigned-byte images [N, H, W] and IDX1 unsigned-byte labels [N], each gzip-compressed (detected
// by the 1f 8b magic) or raw. Headers, sizes and (for gzip) the whole compressed stream are validated
// here, streaming, so a bad file fails at open rather than mid-evaluation. num_classes = max label + 1.
std::shared_ptr<Dataset> open_idx(const std::string& images_path, const std::string& labels_path,
                                  Normalization norm);
// The same over in-memory file contents (raw or gzip); `name` stands in for the paths in messages.
// For tests and fuzzing.
std::shared_ptr<Dataset> open_idx_bytes(std::vector<std::uint8_t> images, std::vector<std::uint8_t> labels,
                                        const std::string& name, Normalization norm);

enum class Split : std::uint8_t { kTrain, kTest };

// <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; 10 classes.
std::shared_ptr<Dataset> open_fashion_mnist(const std::string& dir, Split split,
                                            Normalization norm = fashion_mnist_normalization());

// ---- JPEG images -----------------------------------------------------------------------------------

// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;
};

// PIL refuses images above this many pixels (its DecompressionBombError threshold); so does aciq.
inline constexpr std::int64_t kMaxImagePixels = 178956970;

// Decodes a JPEG as PIL's Image.open(...).convert("RGB") does with the same libjpeg-turbo: ISLOW DCT,
// fancy upsampling, grayscale replicated, CMYK read Adobe-inverted and converted with PIL's formula.
// Corrupt or truncated data, or more than max_pixels pixels, throw aciq::Error naming `name`.
RgbImage decode_jpeg(std::span<const std::uint8_t> bytes, const std::string& name,
                     std::int64_t max_pixels = kMaxImagePixels);

// PIL's Image.resize(BILINEAR) on RGB: separable antialiased triangle filter, horizontal pass then
// vertical, 22-bit fixed-point coefficients, each pass rounded and clipped to uint8.
RgbImage resize_bilinear(const RgbImage& image, int width, int height);

// torchvision 0.14 Resize(resize) (shorter side to `resize`, longer to int(resize * long / short)) then
// CenterCrop(crop) (zero padding where the image is smaller); only the cropped window is computed, with
// results identical to resizing the whole image.
RgbImage resize_center_crop(const RgbImage& image, int resize, int crop);

// ToTensor + Normalize in float32 exactly as torch computes them: (v / 255 - mean) / std, CHW order.
void normalize_to_chw(const RgbImage& image, const Normalization& norm, std::span<float> out);

struct ImagePreprocess {
  int resize = 256;
  int crop = 224;
  Normalization norm{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
};

// decode_jpeg + resize_center_crop + normalize_to_chw into out (3 * crop * crop floats).
void preprocess_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, const ImagePreprocess& pre,
                     std::span<float> out, std::int64_t max_pixels = kMaxImagePixels);

// torchvision ImageFolder over <root>/<split>/<class>/**: classes are the sorted sub-directory names
// (label = position), samples every file with an image extension, sorted as os.walk + sorted() list
// them. Only JPEG is decoded: other image formats are refused here, by file name. An empty class
// folder or a missing directory is an error.
std::shared_ptr<Dataset> open_image_folder(const std::string& root, const std::string& split,
                                           ImagePreprocess pre = {});

// ---- CLI dataset specs -----------------------------------------------------------------------------

// The seed's `--data PATH`: a bare existing directory becomes "fashion-mnist:PATH" when it holds the
// Fashion-MNIST IDX files, else "imagenet:PATH" (an ImageNet-style root with train/ and val/); every
// other spec is returned unchanged.
std::string resolve_data_spec(const std::string& spec);

struct DataOptions {
  std::vector<float> mean{}, std{};  // empty: the dataset's default normalization
  int resize = 256;                  // ImageFolder only
  int crop = 224;                    // ImageFolder only
};

// "npy:IMAGES.npy[,LABELS.npy]" (open_npy_dataset; no normalization: the samples are model inputs),
// "fashion-mnist[:DIR]" (default /usr/share/datasets/fashion-mnist; split train|test, "" = test),
// "imagenet:DIR" (ImageFolder; split "" = val) or "idx:IMAGES,LABELS" (split ignored; Fashion-MNIST
// normalization unless given). A bare directory is resolved by resolve_data_spec first. Anything else is
// an error.
std::shared_ptr<Dataset> open_dataset(const std::string& spec, const std::string& split,
                                      const DataOptions& options);

// ---- NumPy .npy tensor files ------------------------------------------------------------------------

// A .npy file (format versions 1-3, C order, little-endian float32/int64/int32/uint8/int8/bool),
// memory-mapped read-only: rows are copied out on demand, so a file larger than RAM can be read batch
// by batch. Every header problem (bad magic, Fortran order, float64, big-endian, a size that does not
// match the shape) is an error naming the file, raised by open() before any data is read.
class NpyArray {
 public:
  static NpyArray open(const std::string& path);
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] DType dtype() const { return dtype_; }
  [[nodiscard]] const Shape& shape() const { return shape_; }
  // Rows [begin, begin + count) along the first axis, as a tensor [count, shape[1:]...].
  [[nodiscard]] Tensor rows(std::int64_t begin, std::int64_t count) const;

 private:
  struct Mapping;
  std::string path_;
  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::shared_ptr<const Mapping> map_;
  std::size_t data_offset_ = 0;
};

// Writes a .npy file of a known final shape incrementally: rows are appended in order, and the file
// appears under its name only when finish() has written every row (a temporary file until then,
// removed if the writer is destroyed unfinished).
class NpyWriter {
 public:
  NpyWriter(std::string path, DType dtype, Shape shape);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;
  // Appends t's rows; t must be [k, shape[1:]...] of the writer's dtype.
  void append(const Tensor& t);
  void finish();

 private:
  std::string path_, tmp_;
  DType dtype_;
  Shape shape_;
  std::int64_t rows_done_ = 0;
  int fd_ = -1;
};

// Already-preprocessed float32 samples IMAGES.npy ([N, ...], memory-mapped) with optional int64/int32
// labels LABELS.npy ([N]; "" = unlabeled, every label -1): the `--data npy:IMAGES[,LABELS]` dataset.
std::shared_ptr<Dataset> open_npy_dataset(const std::string& images, const std::string& labels);

// The whole tensor as one .npy file (atomically).
void write_npy(const std::string& path, const Tensor& t);

}  // namespace aciq::data
