// JPEG decoding with libjpeg-turbo, configured and post-processed exactly as PIL's decoder + convert("RGB").
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <cstring>

// jpeglib.h must follow <cstdio>; keep this block out of include sorting.
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "aciq/data.hpp"

namespace aciq::data {

namespace {

// Progressive files may carry any number of scans and each one re-walks the coefficients; a crafted
// file with thousands of tiny scans would take minutes. Real encoders emit about ten.
constexpr int kMaxScans = 1000;

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  bool ran_out_of_data;
  char message[JMSG_LENGTH_MAX];
};

ErrorManager* manager(j_common_ptr cinfo) { return reinterpret_cast<ErrorManager*>(cinfo->err); }

// libjpeg's default error_exit calls exit(); jump back to the guarded step instead.
void on_error_exit(j_common_ptr cinfo) {
  (*cinfo->err->format_message)(cinfo, manager(cinfo)->message);
  std::longjmp(manager(cinfo)->jump, 1);
}

// Warnings are ignored as PIL ignores them (it installs a no-op output handler), except running out of
// data: PIL's suspending reader turns that into "image file is truncated", so it is an error here too.
void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) manager(cinfo)->ran_out_of_data = true;
}

void on_output_message(j_common_ptr) {}

void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    std::snprintf(manager(cinfo)->message, JMSG_LENGTH_MAX, "more than %d progressive scans", kMaxScans);
    std::longjmp(manager(cinfo)->jump, 1);
  }
}

// The setjmp-guarded steps. Their frames hold no objects with destructors, so longjmp out of libjpeg
// back to them skips nothing; the caller turns `false` into an aciq::Error.
bool guarded_create(jpeg_decompress_struct* cinfo, ErrorManager* err) {
  if (setjmp(err->jump)) return false;
  jpeg_create_decompress(cinfo);
  return true;
}

bool guarded_read_header(jpeg_decompress_struct* cinfo, ErrorManager* err, const unsigned char* data,
                         unsigned long size) {
  if (setjmp(err->jump)) return false;
  jpeg_mem_src(cinfo, data, size);
  jpeg_read_header(cinfo, TRUE);
  return true;
}

bool guarded_decompress(jpeg_decompress_struct* cinfo, ErrorManager* err, unsigned char* out,
                        std::size_t stride) {
  if (setjmp(err->jump)) return false;
  jpeg_start_decompress(cinfo);
  while (!err->ran_out_of_data && cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + static_cast<std::size_t>(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  if (err->ran_out_of_data) {
    std::snprintf(err->message, JMSG_LENGTH_MAX, "premature end of data (truncated file)");
    return false;
  }
  // Past the last scanline a missing EOI marker is harmless, as it is to PIL.
  jpeg_finish_decompress(cinfo);
  return true;
}

class Decompressor {
 public:
  Decompressor() {
    std::memset(&cinfo_, 0, sizeof cinfo_);
    std::memset(&err_, 0, sizeof err_);
    cinfo_.err = jpeg_std_error(&err_.pub);
    err_.pub.error_exit = on_error_exit;
    err_.pub.emit_message = on_emit_message;
    err_.pub.output_message = on_output_message;
    progress_.progress_monitor = on_progress;
    created_ = guarded_create(&cinfo_, &err_);
    cinfo_.progress = &progress_;
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo_); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  jpeg_decompress_struct* cinfo() { return &cinfo_; }
  ErrorManager* err() { return &err_; }
  bool created() const { return created_; }

 private:
  jpeg_decompress_struct cinfo_;
  ErrorManager err_;
  jpeg_progress_mgr progress_{};
  bool created_ = false;
};

// PIL's MULDIV255: a * b / 255 rounded, in integers.
inline int muldiv255(int a, int b) {
  const int tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
}

}  // namespace

RgbImage decode_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, std::int64_t max_pixels) {
  if (bytes.empty()) fail(name + ": empty file (not a JPEG)");
  Decompressor d;
  if (!d.created()) fail(name + ": cannot initialize libjpeg: " + d.err()->message);
  jpeg_decompress_struct* cinfo = d.cinfo();
  if (!guarded_read_header(cinfo, d.err(), bytes.data(), static_cast<unsigned long>(bytes.size()))) {
    fail(name + ": corrupt JPEG: " + d.err()->message);
  }
  const int components = cinfo->num_components;
  const std::int64_t width = cinfo->image_width, height = cinfo->image_height;
  if (components != 1 && components != 3 && components != 4) {
    fail(name + ": unsupported JPEG with " + std::to_string(components) + " color components");
  }
  if (width * height > max_pixels) {
    fail(name + ": " + std::to_string(width) + "x" + std::to_string(height) + " pixels exceed the limit of " +
         std::to_string(max_pixels));
  }
  // What PIL asks of libjpeg for L, RGB and CMYK files; ISLOW and fancy upsampling are libjpeg's
  // defaults and PIL keeps them (it changes them only in draft mode).
  cinfo->out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->do_fancy_upsampling = TRUE;
  cinfo->scale_num = cinfo->scale_denom = 1;

  RgbImage img;
  img.width = static_cast<int>(width);
  img.height = static_cast<int>(height);
  img.pixels.resize(static_cast<std::size_t>(width * height * 3));
  std::vector<std::uint8_t> raw;
  unsigned char* target = img.pixels.data();
  if (components != 3) {
    raw.resize(static_cast<std::size_t>(width * height * components));
    target = raw.data();
  }
  if (!guarded_decompress(cinfo, d.err(), target, static_cast<std::size_t>(width * components))) {
    fail(name + ": corrupt JPEG: " + d.err()->message);
  }
  if (cinfo->output_width != width || cinfo->output_height != height) {
    fail(name + ": libjpeg produced an unexpected output size");
  }
  const std::size_t n = static_cast<std::size_t>(width * height);
  std::uint8_t* out = img.pixels.data();
  if (components == 1) {
    // convert("RGB") from L replicates the gray value.
    for (std::size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = raw[i];
  } else if (components == 4) {
    // PIL unpacks JPEG CMYK as "CMYK;I" (Adobe's inverted polarity), then convert("RGB") computes
    // nk = 255 - K and channel = nk - MULDIV255(C, nk).
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t* p = &raw[4 * i];
      const int nk = p[3];  // 255 - (255 - K_stored)
      for (int c = 0; c < 3; ++c) {
        const int v = nk - muldiv255(255 - p[c], nk);
        out[3 * i + c] = static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
  return img;
}

}  // namespace aciq::data
