// Histogram: exactly mergeable two-sided binning of activations (power-of-two ranges, docs/histograms.md).
#include <algorithm>
#include <cmath>
#include <sstream>

#include "aciq/calib.hpp"
#include "calib/histogram_simd.hpp"

namespace aciq::calib {

namespace {

// The smallest e with m < 2^e, for finite m > 0.
int exponent_for(double m) { return std::ilogb(m) + 1; }

// Makes `h` cover [0, 2^e) (e >= its exponent): bins merge by j >> d, exact (see the header).
void grow_to(Histogram::Half& h, int e) {
  if (h.empty()) {
    h.exponent = e;
    h.counts.assign(Histogram::kBins, 0);
    return;
  }
  if (e <= h.exponent) return;
  const int d = e - h.exponent;
  std::vector<std::int64_t> coarse(Histogram::kBins, 0);
  for (int j = 0; j < Histogram::kBins; ++j) coarse[d >= Histogram::kBinBits ? 0 : j >> d] += h.counts[j];
  h.counts = std::move(coarse);
  h.exponent = e;
}

void merge_half(Histogram::Half& into, const Histogram::Half& from) {
  if (from.empty()) return;
  grow_to(into, from.exponent);
  const int d = into.exponent - from.exponent;
  for (int j = 0; j < Histogram::kBins; ++j) {
    if (from.counts[j] != 0) into.counts[d >= Histogram::kBinBits ? 0 : j >> d] += from.counts[j];
  }
}

}  // namespace

double Histogram::Half::bin_width() const { return std::ldexp(1.0, exponent - kBinBits); }

std::int64_t Histogram::Half::total() const {
  std::int64_t t = 0;
  for (auto c : counts) t += c;
  return t;
}

namespace {

// The power-of-two bin scales 2^(kBinBits - e) of both halves (0 for an empty half), after growing the
// halves to cover [lo, hi].
struct BinScales {
  double positive = 0.0, negative = 0.0;
};
BinScales grow_for(Histogram& h, float lo, float hi) {
  if (hi > 0.0f) grow_to(h.positive, exponent_for(hi));
  if (lo < 0.0f) grow_to(h.negative, exponent_for(-static_cast<double>(lo)));
  BinScales s;
  if (!h.positive.empty()) s.positive = std::ldexp(1.0, Histogram::kBinBits - h.positive.exponent);
  if (!h.negative.empty()) s.negative = std::ldexp(1.0, Histogram::kBinBits - h.negative.exponent);
  return s;
}

// A scale the SIMD kernel may use as a float: 0 or a normal power of two (docs/histograms.md).
bool float_scale_ok(double s) { return s == 0.0 || (s >= 0x1p-126 && s <= 0x1p127); }

}  // namespace

void Histogram::add_reference(std::span<const float> x, float lo, float hi) {
  if (x.empty() || !std::isfinite(lo) || !std::isfinite(hi)) return;
  const BinScales scales = grow_for(*this, lo, hi);
  // v * 2^(kBinBits - e) is exact in double; v < 2^e keeps it below kBins (the min guards a wrong hi/lo).
  std::int64_t* pc = positive.counts.data();
  std::int64_t* nc = negative.counts.data();
  constexpr auto kLast = static_cast<std::int64_t>(kBins - 1);
  for (const float v : x) {
    if (v > 0.0f) {
      ++pc[std::min(static_cast<std::int64_t>(static_cast<double>(v) * scales.positive), kLast)];
    } else if (v < 0.0f) {
      ++nc[std::min(static_cast<std::int64_t>(-static_cast<double>(v) * scales.negative), kLast)];
    } else {
      ++zeros;
    }
  }
}

// The same bins as add_reference, faster: the SIMD kernel turns a block of values into slots of one
// combined table (positive bins, negative bins, zeros), and the increments go to four interleaved
// 32-bit tables, so that a run of values in one bin (the zeros after a ReLU, a saturated tail) does not
// make every increment wait for the previous one; the tables are added to the 64-bit counts at the end.
void Histogram::add(std::span<const float> x, float lo, float hi) {
  constexpr std::size_t kSmall = 1024;  // below this the tables cost more than they save
  if (x.empty() || !std::isfinite(lo) || !std::isfinite(hi)) return;
  const BinScales scales = grow_for(*this, lo, hi);
  if (x.size() < kSmall || !float_scale_ok(scales.positive) || !float_scale_ok(scales.negative)) {
    add_reference(x, lo, hi);  // grows nothing more: the halves already cover [lo, hi]
    return;
  }
  constexpr std::size_t kSlots = detail::kZeroSlot + 1;
  constexpr std::size_t kBlock = 4096;
  // Each table takes at most half of a flush's values: flushing every 2^31 keeps them inside uint32.
  constexpr std::size_t kFlush = std::size_t{1} << 31;
  std::vector<std::uint32_t> tables(4 * kSlots, 0);
  std::uint32_t* t0 = tables.data();
  std::uint32_t* t1 = t0 + kSlots;
  std::uint32_t* t2 = t1 + kSlots;
  std::uint32_t* t3 = t2 + kSlots;
  std::vector<std::uint32_t> slots(kBlock);
  const auto flush = [&] {
    for (int j = 0; j < kBins; ++j) {
      if (!positive.empty()) positive.counts[j] += std::int64_t{t0[j]} + t1[j] + t2[j] + t3[j];
      if (!negative.empty())
        negative.counts[j] += std::int64_t{t0[kBins + j]} + t1[kBins + j] + t2[kBins + j] + t3[kBins + j];
    }
    const std::size_t z = detail::kZeroSlot;
    zeros += std::int64_t{t0[z]} + t1[z] + t2[z] + t3[z];
    std::fill(tables.begin(), tables.end(), 0u);
  };
  std::size_t since_flush = 0;
  for (std::size_t b = 0; b < x.size(); b += kBlock) {
    const std::size_t len = std::min(kBlock, x.size() - b);
    detail::histogram_slots(x.data() + b, len, static_cast<float>(scales.positive),
                            static_cast<float>(scales.negative), slots.data());
    std::size_t i = 0;
    for (; i + 4 <= len; i += 4) {
      ++t0[slots[i]];
      ++t1[slots[i + 1]];
      ++t2[slots[i + 2]];
      ++t3[slots[i + 3]];
    }
    for (; i < len; ++i) ++t0[slots[i]];
    since_flush += len;
    if (since_flush + kBlock > kFlush) {
      flush();
      since_flush = 0;
    }
  }
  flush();
}

void Histogram::merge(const Histogram& o) {
  zeros += o.zeros;
  merge_half(positive, o.positive);
  merge_half(negative, o.negative);
}

Histogram::Half Histogram::magnitudes() const {
  Half m;
  merge_half(m, positive);
  merge_half(m, negative);
  if (zeros > 0) {
    if (m.empty()) grow_to(m, 0);
    m.counts[0] += zeros;
  }
  return m;
}

std::string Histogram::half_to_string(const Half& h) {
  if (h.empty()) return "";
  // Built by appending: GCC 12 reports a false -Wrestrict for "literal" + std::string.
  std::string s("e:");
  s += std::to_string(h.exponent);
  for (int j = 0; j < kBins; ++j) {
    if (h.counts[j] == 0) continue;
    s += ' ';
    s += std::to_string(j);
    s += ':';
    s += std::to_string(h.counts[j]);
  }
  return s;
}

Histogram::Half Histogram::half_from_string(const std::string& text) {
  Half h;
  if (text.empty()) return h;
  std::istringstream in(text);
  std::string tok;
  auto bad = [&](const std::string& why) {
    fail("malformed histogram '" + text.substr(0, 40) + "': " + why);
  };
  auto pair = [&](const std::string& t, long long& a, long long& b) {
    const auto colon = t.find(':');
    if (colon == std::string::npos) bad("expected KEY:VALUE, got '" + t + "'");
    try {
      std::size_t u1 = 0, u2 = 0;
      const std::string l = t.substr(0, colon), r = t.substr(colon + 1);
      a = std::stoll(l, &u1);
      b = std::stoll(r, &u2);
      if (u1 != l.size() || u2 != r.size()) bad("'" + t + "' is not two integers");
    } catch (const std::logic_error&) {
      bad("'" + t + "' is not two integers");
    }
  };
  in >> tok;
  if (tok.rfind("e:", 0) != 0) bad("it must start with e:EXPONENT");
  try {
    std::size_t used = 0;
    const long long e = std::stoll(tok.substr(2), &used);
    // Float data gives exponents in [-148, 128] (2^-149 is the least subnormal, FLT_MAX < 2^128).
    if (used != tok.size() - 2 || e < -148 || e > 128) bad("exponent out of range [-148, 128]");
    h.exponent = static_cast<int>(e);
  } catch (const std::logic_error&) {
    bad("exponent is not an integer");
  }
  h.counts.assign(kBins, 0);
  long long last = -1;
  while (in >> tok) {
    long long j = 0, c = 0;
    pair(tok, j, c);
    if (j <= last || j >= kBins) bad("bin indices must increase within [0, 2048)");
    // 2^50 values per bin is far beyond any collection and keeps every sum of 4097 counts inside int64.
    if (c <= 0 || c >= (1LL << 50)) bad("counts must be in [1, 2^50)");
    h.counts[static_cast<std::size_t>(j)] = c;
    last = j;
  }
  return h;
}

}  // namespace aciq::calib
