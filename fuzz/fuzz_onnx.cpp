// libFuzzer target: model bytes -> ONNX import -> graph passes -> executor planning (shape inference).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "aciq/onnx.hpp"
#include "aciq/runtime.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto g = aciq::onnx_import::load_model_from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    std::vector<aciq::Shape> shapes;
    for (const auto& in : g.inputs) {
      aciq::Shape s = in.shape;
      for (auto& d : s) d = d < 0 ? 1 : d;
      // Keep planning cheap: the fuzzer explores structure, not big tensors.
      if (aciq::shape_numel(s) > (1 << 16)) return 0;
      shapes.push_back(s);
    }
    aciq::Context ctx(1);
    aciq::runtime::Executor exec(std::move(g), ctx, {.backend = aciq::runtime::Backend::kReference});
    (void)exec.infer_shapes(shapes);
  } catch (const aciq::Error&) {
    // Refusing a broken model with a message is the expected outcome.
  } catch (const std::exception& e) {
    // Any other exception escaping the library is a bug: errors must carry aciq context.
    std::fprintf(stderr, "non-aciq exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
