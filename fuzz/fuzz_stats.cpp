// libFuzzer target: statistics-file text -> StatsFile parser and validation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "aciq/calib.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto f = aciq::calib::StatsFile::from_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    // A file that parses must serialize and parse back to the same text.
    const std::string text = f.to_json();
    if (aciq::calib::StatsFile::from_json(text, "roundtrip").to_json() != text) __builtin_trap();
  } catch (const aciq::Error&) {
  }
  return 0;
}
