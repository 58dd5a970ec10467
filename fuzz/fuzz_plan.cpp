// libFuzzer target: quantization-plan text -> QuantPlan parser and validation, plus the JSON round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "aciq/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aciq::plan::QuantPlan plan;
  try {
    plan =
        aciq::plan::QuantPlan::from_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
  } catch (const aciq::Error&) {
    return 0;  // refused with a message: the expected outcome for most inputs
  }
  // An accepted plan must serialize to a file that is accepted again and serializes to the same text.
  // A refusal here is a bug too (the writer produced what the reader rejects), so it is not caught.
  const std::string text = plan.to_json();
  if (aciq::plan::QuantPlan::from_json(text, "roundtrip").to_json() != text) __builtin_trap();
  return 0;
}
