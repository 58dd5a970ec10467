// ExactSum: a superaccumulator of 32-bit digits held in int64 limbs.
//
// A finite double is m * 2^e with an integer |m| < 2^53 and e >= -1074. Shifted to bit position
// p = e + kBias >= 78 of the fixed-point number, m covers at most 53 + 31 bits, i.e. three digits
// starting at digit p / 32. Each add puts less than 2^32 into each limb it touches, so limbs stay far
// from overflow for 2^30 adds between carry propagations. Carrying is exact integer arithmetic, so
// the represented value is the exact sum, and any order of adds or merges gives the same value.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "aciq/calib.hpp"

namespace aciq::calib {

namespace {
constexpr std::int64_t kRadix = std::int64_t{1} << 32;
constexpr int kCarryEvery = 1 << 30;
}  // namespace

void ExactSum::add(double v) {
  if (v == 0.0) return;
  if (!std::isfinite(v)) fail("statistics: a non-finite value cannot be summed");
  int exp = 0;
  const double frac = std::frexp(v, &exp);                            // v = frac * 2^exp, 0.5 <= |frac| < 1
  const auto mant = static_cast<std::int64_t>(std::ldexp(frac, 53));  // exact: v = mant * 2^(exp - 53)
  const int pos = exp - 53 + kBias;
  const int first = pos / 32, shift = pos % 32;
  const bool negative = mant < 0;
  const unsigned __int128 mag = static_cast<unsigned __int128>(negative ? -mant : mant) << shift;
  for (int i = 0; i < 3 && first + i < kDigits; ++i) {
    const auto part = static_cast<std::int64_t>((mag >> (32 * i)) & 0xffffffffu);
    digit_[first + i] += negative ? -part : part;
  }
  if (++pending_ >= kCarryEvery) normalize();
}

void ExactSum::merge(const ExactSum& other) {
  normalize();
  other.normalize();
  for (int i = 0; i < kDigits; ++i) digit_[i] += other.digit_[i];
  normalize();
}

void ExactSum::normalize() const {
  for (int i = 0; i + 1 < kDigits; ++i) {
    // Floor division: the digit lands in [0, 2^32), the (signed) carry moves up.
    std::int64_t carry = digit_[i] >> 32;
    digit_[i] -= carry * kRadix;
    digit_[i + 1] += carry;
  }
  pending_ = 0;
}

namespace {
// The magnitude's digits, all in [0, 2^32), and the sign of normalized digits (top digit signed).
std::array<std::int64_t, ExactSum::kDigits> magnitude(std::array<std::int64_t, ExactSum::kDigits> d,
                                                      bool& negative) {
  negative = d[ExactSum::kDigits - 1] < 0;
  if (negative) {
    for (auto& x : d) x = -x;
    for (int i = 0; i + 1 < ExactSum::kDigits; ++i) {
      const std::int64_t carry = d[i] >> 32;
      d[i] -= carry * kRadix;
      d[i + 1] += carry;
    }
  }
  return d;
}
}  // namespace

double ExactSum::value() const {
  normalize();
  bool negative = false;
  const auto d = magnitude(digit_, negative);
  int hi = kDigits - 1;
  while (hi >= 0 && d[hi] == 0) --hi;
  if (hi < 0) return 0.0;
  // Round once: the top three digits (at least 65 significant bits, since d[hi] >= 1 sits above two
  // full digits) in a 128-bit integer, with every lower non-zero digit folded into its lowest bit as
  // a sticky bit far below the 53-bit rounding position; the integer-to-double conversion rounds to
  // nearest even. Exact for results in the normal range (ldexp below 2^-1022 may round again).
  const int lo = std::max(hi - 2, 0);
  unsigned __int128 top = 0;
  for (int i = hi; i >= lo; --i) top = (top << 32) | static_cast<unsigned __int128>(d[i]);
  for (int i = lo - 1; i >= 0; --i) {
    if (d[i] != 0) {
      top |= 1;
      break;
    }
  }
  const double v = std::ldexp(static_cast<double>(top), 32 * lo - kBias);
  return negative ? -v : v;
}

std::string ExactSum::to_string() const {
  normalize();
  bool negative = false;
  const auto d = magnitude(digit_, negative);
  int lo = 0, hi = kDigits - 1;
  while (hi >= 0 && d[hi] == 0) --hi;
  if (hi < 0) return "0";
  while (d[lo] == 0) ++lo;
  std::string out = std::string(negative ? "-" : "+") + std::to_string(lo) + ":";
  char buf[16];
  for (int i = hi; i >= lo; --i) {
    std::snprintf(buf, sizeof buf, i == hi ? "%llx" : "%08llx", static_cast<unsigned long long>(d[i]));
    out += buf;
  }
  return out;
}

ExactSum ExactSum::from_string(const std::string& text) {
  ExactSum s;
  if (text == "0") return s;
  auto bad = [&text]() -> ExactSum { fail("malformed exact sum '" + text + "'"); };
  if (text.size() < 4 || (text[0] != '+' && text[0] != '-')) return bad();
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon < 2) return bad();
  int lo = 0;
  for (std::size_t i = 1; i < colon; ++i) {
    if (text[i] < '0' || text[i] > '9' || lo > kDigits) return bad();
    lo = lo * 10 + (text[i] - '0');
  }
  const std::string hex = text.substr(colon + 1);
  if (hex.empty() || hex.size() > 8 * static_cast<std::size_t>(kDigits)) return bad();
  // Digits from the lowest: the last 8 hex characters are digit `lo`.
  int index = lo;
  for (std::size_t end = hex.size(); end > 0; end = end >= 8 ? end - 8 : 0, ++index) {
    const std::size_t begin = end >= 8 ? end - 8 : 0;
    if (index >= kDigits) return bad();
    std::int64_t v = 0;
    for (std::size_t i = begin; i < end; ++i) {
      const char c = hex[i];
      const int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (h < 0) return bad();
      v = v * 16 + h;
    }
    s.digit_[index] = text[0] == '-' ? -v : v;
    if (begin == 0) break;
  }
  s.normalize();
  if (s.to_string() != text) return bad();  // only the canonical spelling
  return s;
}

}  // namespace aciq::calib
