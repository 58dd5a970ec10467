// StatsFile: JSON serialization, validation, merging and crash-safe writing of activation statistics.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "aciq/calib.hpp"

namespace aciq::calib {

namespace {
constexpr std::array<std::string_view, kStatCount> kStatNames{"max",   "min",      "mean",     "std",
                                                              "range", "kurtosis", "mean_abs", "b"};
constexpr std::array<std::string_view, kChannelStatCount> kChannelStatNames{"max", "min", "mean", "std", "b"};
constexpr const char* kFormat = "aciq-stats";
}  // namespace

std::string_view stat_name(Stat s) { return kStatNames[static_cast<std::size_t>(s)]; }
std::string_view channel_stat_name(ChannelStat s) { return kChannelStatNames[static_cast<std::size_t>(s)]; }

void Summary::add(double v) {
  if (count == 0) {
    min = max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  total.add(v);
  ++count;
}

void Summary::merge(const Summary& o) {
  if (o.count == 0) return;
  if (count == 0) {
    *this = o;
    return;
  }
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  total.merge(o.total);
  count += o.count;
}

double PointStats::column(std::string_view which, Stat s) const {
  const Summary& sm = (*this)[s];
  if (which == "min") return sm.min;
  if (which == "max") return sm.max;
  if (which == "mean") return sm.mean();
  fail("unknown summary column '" + std::string(which) + "_" + std::string(stat_name(s)) + "'");
}

const PointStats* StatsFile::find(const std::string& name) const {
  for (const auto& p : points) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

namespace {
// Sorted by (data, begin), touching runs of the same data joined: one canonical form for any merge order.
std::vector<SampleRange> normalized(std::vector<SampleRange> r) {
  std::sort(r.begin(), r.end(), [](const SampleRange& a, const SampleRange& b) {
    return std::tie(a.data, a.begin, a.end) < std::tie(b.data, b.begin, b.end);
  });
  std::vector<SampleRange> out;
  for (auto& x : r) {
    if (!out.empty() && out.back().data == x.data && out.back().end == x.begin) {
      out.back().end = x.end;
    } else {
      out.push_back(std::move(x));
    }
  }
  return out;
}
}  // namespace

std::string StatsFile::overlap(const StatsFile& other) const {
  for (const auto& a : other.ranges) {
    for (const auto& b : ranges) {
      if (a.data == b.data && a.begin < b.end && b.begin < a.end) {
        return a.data + " samples [" + std::to_string(std::max(a.begin, b.begin)) + ", " +
               std::to_string(std::min(a.end, b.end)) + ")";
      }
    }
  }
  return "";
}

bool StatsFile::ranges_complete() const {
  std::int64_t covered = 0;
  for (const auto& r : ranges) covered += r.end - r.begin;
  return covered == samples;
}

void StatsFile::merge(const StatsFile& other) {
  if (other.model_hash != model_hash) fail("cannot merge statistics of different models");
  if (const auto o = overlap(other); !o.empty())
    fail("cannot merge: " + o + " are already in the statistics");
  // Both files hold the same points (the model's collection points): a point missing from one would
  // leave it counted for fewer samples than the file claims.
  if (other.points.size() != points.size()) {
    fail("cannot merge: the files hold " + std::to_string(points.size()) + " and " +
         std::to_string(other.points.size()) + " points (collected by different aciq versions?)");
  }
  for (const auto& op : other.points) {
    auto it =
        std::find_if(points.begin(), points.end(), [&](const PointStats& p) { return p.name == op.name; });
    if (it == points.end()) fail("cannot merge: point '" + op.name + "' is in only one of the files");
    if (it->sample_numel != op.sample_numel)
      fail("cannot merge point '" + op.name + "': sample sizes differ");
    for (std::size_t s = 0; s < kStatCount; ++s) it->summaries[s].merge(op.summaries[s]);
    // A histogram stays only while both sides have one: half a histogram would misstate the data.
    if (it->histogram && op.histogram) {
      it->histogram->merge(*op.histogram);
    } else {
      it->histogram.reset();
    }
    // Per-channel summaries likewise stay only while both sides have them.
    if (!it->channels.empty() && it->channels.size() == op.channels.size()) {
      for (std::size_t c = 0; c < it->channels.size(); ++c)
        for (std::size_t s = 0; s < kChannelStatCount; ++s)
          it->channels[c].summaries[s].merge(op.channels[c].summaries[s]);
    } else {
      it->channels.clear();
    }
  }
  // Ranges stay only while both sides account for all their samples; a file from before ranges were
  // recorded makes the merged ranges unknown rather than falsely complete.
  const bool complete = ranges_complete() && other.ranges_complete();
  samples += other.samples;
  if (data_source != other.data_source) data_source += " + " + other.data_source;
  auto all = ranges;
  all.insert(all.end(), other.ranges.begin(), other.ranges.end());
  ranges = complete ? normalized(std::move(all)) : std::vector<SampleRange>{};
}

void StatsFile::validate(const std::string& source) const {
  if (samples <= 0) fail(source + ": the statistics hold no samples (collect on a non-empty dataset)");
  if (points.empty()) fail(source + ": the statistics hold no points");
  for (const auto& p : points) {
    const std::string where = source + ": point '" + p.name + "'";
    for (std::size_t s = 0; s < kStatCount; ++s) {
      const Summary& sm = p.summaries[s];
      const std::string stat(kStatNames[s]);
      if (sm.count <= 0) fail(where + ": statistic '" + stat + "' has no samples");
      if (sm.count != samples) {
        fail(where + ": statistic '" + stat + "' counts " + std::to_string(sm.count) + " samples, the file " +
             std::to_string(samples));
      }
      if (sm.count != p.summaries[0].count)
        fail(where + ": statistic '" + stat + "' has a different sample count");
      // The mean is sum / count, rounded: allow it a few ulps outside [min, max].
      const double mean = sm.mean(), slack = 1e-9 * (std::abs(sm.min) + std::abs(sm.max)) + 1e-300;
      if (sm.min > sm.max || mean < sm.min - slack || mean > sm.max + slack) {
        fail(where + ": statistic '" + stat + "' is inconsistent (min " + std::to_string(sm.min) + ", mean " +
             std::to_string(mean) + ", max " + std::to_string(sm.max) + ")");
      }
    }
    for (const Stat s : {Stat::kStd, Stat::kB, Stat::kRange, Stat::kMeanAbs}) {
      if (p[s].min < 0) {
        fail(where + ": statistic '" + std::string(stat_name(s)) + "' is negative (" +
             std::to_string(p[s].min) + "); it cannot be");
      }
    }
    std::int64_t values = 0;
    if (p.histogram &&
        (__builtin_mul_overflow(samples, p.sample_numel, &values) || p.histogram->total() != values)) {
      fail(where + ": the histogram counts " + std::to_string(p.histogram->total()) +
           " values, not samples x sample size = " + std::to_string(samples) + " x " +
           std::to_string(p.sample_numel));
    }
    if (!p.channels.empty() && p.sample_numel % static_cast<std::int64_t>(p.channels.size()) != 0)
      fail(where + ": " + std::to_string(p.channels.size()) + " channels do not divide the sample size " +
           std::to_string(p.sample_numel));
    for (std::size_t c = 0; c < p.channels.size(); ++c) {
      for (std::size_t s = 0; s < kChannelStatCount; ++s) {
        const Summary& sm = p.channels[c].summaries[s];
        const std::string what = where + ": channel " + std::to_string(c) + " statistic '" +
                                 std::string(kChannelStatNames[s]) + "'";
        if (sm.count != samples)
          fail(what + " counts " + std::to_string(sm.count) + " samples, the file " +
               std::to_string(samples));
        const double mean = sm.mean(), slack = 1e-9 * (std::abs(sm.min) + std::abs(sm.max)) + 1e-300;
        if (sm.min > sm.max || mean < sm.min - slack || mean > sm.max + slack)
          fail(what + " is inconsistent (min " + std::to_string(sm.min) + ", mean " + std::to_string(mean) +
               ", max " + std::to_string(sm.max) + ")");
      }
      for (const ChannelStat s : {ChannelStat::kStd, ChannelStat::kB})
        if (p.channels[c][s].min < 0)
          fail(where + ": channel " + std::to_string(c) + " statistic '" + std::string(channel_stat_name(s)) +
               "' is negative");
    }
    if (p[Stat::kMin].mean() > p[Stat::kMax].mean()) {
      fail(where + ": mean of per-sample minima " + std::to_string(p[Stat::kMin].mean()) +
           " exceeds mean of per-sample maxima " + std::to_string(p[Stat::kMax].mean()));
    }
  }
}

std::string StatsFile::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  // The oldest version that holds the contents: files without per-channel summaries stay version 2.
  const bool channels =
      std::any_of(points.begin(), points.end(), [](const PointStats& p) { return !p.channels.empty(); });
  j["version"] = channels ? kVersion : 2;
  j["model_hash"] = model_hash;
  j["model"] = model_path;
  j["data"] = data_source;
  j["samples"] = samples;
  if (!ranges.empty()) {
    auto& jr = j["ranges"] = nlohmann::ordered_json::array();
    for (const auto& r : ranges) jr.push_back({{"data", r.data}, {"begin", r.begin}, {"end", r.end}});
  }
  auto& pts = j["points"] = nlohmann::ordered_json::array();
  for (const auto& p : points) {
    nlohmann::ordered_json jp;
    jp["name"] = p.name;
    jp["sample_numel"] = p.sample_numel;
    for (std::size_t s = 0; s < kStatCount; ++s) {
      const Summary& sm = p.summaries[s];
      // min/mean/max are what people read (the seed's summary columns); count/sum make merging exact.
      jp["stats"][std::string(kStatNames[s])] = {{"min", sm.min},   {"mean", sm.mean()},
                                                 {"max", sm.max},   {"count", sm.count},
                                                 {"sum", sm.sum()}, {"sum_exact", sm.total.to_string()}};
    }
    if (p.histogram) {
      jp["histogram"] = {{"bins", Histogram::kBins},
                         {"zeros", p.histogram->zeros},
                         {"positive", Histogram::half_to_string(p.histogram->positive)},
                         {"negative", Histogram::half_to_string(p.histogram->negative)}};
    }
    if (!p.channels.empty()) {
      // Column arrays, one entry per channel: mean is what people read, sum_exact what merging needs.
      auto& jc = jp["channels"];
      jc["count"] = p.channels.size();
      for (std::size_t s = 0; s < kChannelStatCount; ++s) {
        std::vector<double> mn, mean, mx;
        std::vector<std::string> exact;
        for (const auto& c : p.channels) {
          mn.push_back(c.summaries[s].min);
          mean.push_back(c.summaries[s].mean());
          mx.push_back(c.summaries[s].max);
          exact.push_back(c.summaries[s].total.to_string());
        }
        jc[std::string(kChannelStatNames[s])] = {
            {"min", mn}, {"mean", mean}, {"max", mx}, {"sum_exact", exact}};
      }
    }
    pts.push_back(std::move(jp));
  }
  return j.dump(1) + "\n";
}

namespace {
// JSON integers only: converting an out-of-range float to int64 would be undefined behaviour.
std::int64_t json_int(const nlohmann::json& v, const std::string& source, const char* what) {
  if (!v.is_number_integer()) fail(source + ": '" + what + "' must be an integer");
  return v.get<std::int64_t>();
}
double json_double(const nlohmann::json& v, const std::string& source, const char* what) {
  if (!v.is_number()) fail(source + ": '" + what + "' must be a number");
  return v.get<double>();
}
}  // namespace

StatsFile StatsFile::from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(source + ": not a valid statistics file (JSON parse error; truncated?): " + std::string(e.what()));
  }
  try {
    if (!j.is_object() || j.value("format", "") != kFormat) fail(source + ": not an aciq statistics file");
    const std::int64_t version = json_int(j.at("version"), source, "version");
    if (version < 1 || version > kVersion)
      fail(source + ": statistics file version " + std::to_string(version) + " is not supported");
    StatsFile f;
    f.model_hash = j.at("model_hash").get<std::string>();
    f.model_path = j.value("model", "");
    f.data_source = j.value("data", "");
    f.samples = json_int(j.at("samples"), source, "samples");
    if (f.samples < 0) fail(source + ": negative sample count");
    if (j.contains("ranges")) {
      for (const auto& jr : j.at("ranges")) {
        SampleRange r;
        r.data = jr.at("data").get<std::string>();
        r.begin = json_int(jr.at("begin"), source, "begin");
        r.end = json_int(jr.at("end"), source, "end");
        if (r.begin < 0 || r.end <= r.begin) fail(source + ": invalid sample range");
        f.ranges.push_back(std::move(r));
      }
      f.ranges = normalized(std::move(f.ranges));
      for (std::size_t i = 1; i < f.ranges.size(); ++i) {
        if (f.ranges[i].data == f.ranges[i - 1].data && f.ranges[i].begin < f.ranges[i - 1].end) {
          fail(source + ": sample ranges overlap");
        }
      }
    }
    for (const auto& jp : j.at("points")) {
      PointStats p;
      p.name = jp.at("name").get<std::string>();
      p.sample_numel = json_int(jp.at("sample_numel"), source, "sample_numel");
      if (p.sample_numel <= 0) fail(source + ": point '" + p.name + "' has a non-positive sample size");
      for (std::size_t s = 0; s < kStatCount; ++s) {
        const auto& js = jp.at("stats").at(std::string(kStatNames[s]));
        Summary& sm = p.summaries[s];
        sm.count = json_int(js.at("count"), source, "count");
        const double sum = json_double(js.at("sum"), source, "sum");
        if (!std::isfinite(sum))
          fail(source + ": point '" + p.name + "' statistic '" + std::string(kStatNames[s]) +
               "' is not finite");
        if (js.contains("sum_exact")) {
          if (!js.at("sum_exact").is_string()) fail(source + ": 'sum_exact' must be a string");
          try {
            sm.total = ExactSum::from_string(js.at("sum_exact").get<std::string>());
          } catch (const Error& e) {
            fail(source + ": point '" + p.name + "': " + e.what());
          }
          if (sm.total.value() != sum) {
            fail(source + ": point '" + p.name + "' statistic '" + std::string(kStatNames[s]) +
                 "': sum and sum_exact disagree (edited by hand?)");
          }
        } else {
          sm.total.add(sum);  // a file from before exact sums: its rounded sum is all there is
        }
        sm.min = json_double(js.at("min"), source, "min");
        sm.max = json_double(js.at("max"), source, "max");
        if (sm.count < 0 || sm.count > f.samples)
          fail(source + ": point '" + p.name + "' has an invalid count");
        if (!std::isfinite(sm.min) || !std::isfinite(sm.max)) {
          fail(source + ": point '" + p.name + "' statistic '" + std::string(kStatNames[s]) +
               "' is not finite");
        }
      }
      if (jp.contains("histogram")) {
        const auto& jh = jp.at("histogram");
        if (json_int(jh.at("bins"), source, "bins") != Histogram::kBins)
          fail(source + ": point '" + p.name + "': histogram bin count is not " +
               std::to_string(Histogram::kBins));
        Histogram h;
        h.zeros = json_int(jh.at("zeros"), source, "zeros");
        if (h.zeros < 0 || h.zeros >= (std::int64_t{1} << 50))
          fail(source + ": point '" + p.name + "': histogram zero count outside [0, 2^50)");
        try {
          h.positive = Histogram::half_from_string(jh.at("positive").get<std::string>());
          h.negative = Histogram::half_from_string(jh.at("negative").get<std::string>());
        } catch (const Error& e) {
          fail(source + ": point '" + p.name + "': " + e.what());
        }
        p.histogram = std::move(h);
      }
      if (jp.contains("channels")) {
        const auto& jc = jp.at("channels");
        const std::int64_t count = json_int(jc.at("count"), source, "count");
        if (count <= 0 || count > p.sample_numel)
          fail(source + ": point '" + p.name + "': channel count " + std::to_string(count) + " is invalid");
        p.channels.resize(static_cast<std::size_t>(count));
        for (std::size_t s = 0; s < kChannelStatCount; ++s) {
          const std::string stat(kChannelStatNames[s]);
          const auto& js = jc.at(stat);
          const auto& mn = js.at("min");
          const auto& mx = js.at("max");
          const auto& mean = js.at("mean");
          const auto& exact = js.at("sum_exact");
          for (const auto* a : {&mn, &mx, &mean, &exact})
            if (!a->is_array() || a->size() != p.channels.size())
              fail(source + ": point '" + p.name + "': channel statistic '" + stat + "' needs " +
                   std::to_string(count) + " entries per column");
          for (std::size_t c = 0; c < p.channels.size(); ++c) {
            Summary& sm = p.channels[c].summaries[s];
            sm.count = f.samples;
            if (!exact[c].is_string()) fail(source + ": 'sum_exact' must hold strings");
            try {
              sm.total = ExactSum::from_string(exact[c].get<std::string>());
            } catch (const Error& e) {
              fail(source + ": point '" + p.name + "': " + e.what());
            }
            sm.min = json_double(mn[c], source, "min");
            sm.max = json_double(mx[c], source, "max");
            if (!std::isfinite(sm.min) || !std::isfinite(sm.max))
              fail(source + ": point '" + p.name + "' channel " + std::to_string(c) + " statistic '" + stat +
                   "' is not finite");
            if (json_double(mean[c], source, "mean") != sm.mean())
              fail(source + ": point '" + p.name + "' channel " + std::to_string(c) + " statistic '" + stat +
                   "': mean and sum_exact disagree (edited by hand?)");
          }
        }
      }
      f.points.push_back(std::move(p));
    }
    f.validate(source);
    if (!f.ranges.empty() && !f.ranges_complete())
      fail(source + ": the sample ranges do not add up to 'samples'");
    return f;
  } catch (const nlohmann::json::exception& e) {
    fail(source + ": malformed statistics file: " + std::string(e.what()));
  }
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Built by appending: GCC 12 reports a false -Wrestrict for "." + string here.
  std::string name(".");
  name += target.filename().string();
  name += ".tmp.XXXXXX";
  std::string tmpl = (dir / name).string();
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) fail(path + ": cannot create temporary file: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmpl.c_str());
      fail(path + ": write failed: " + err);
    }
    done += static_cast<std::size_t>(n);
  }
  // Data must be on disk before the rename makes it visible under the real name.
  if (::fsync(fd) != 0 || ::fchmod(fd, 0644) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail(path + ": fsync failed: " + err);
  }
  ::close(fd);
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmpl.c_str());
    fail(path + ": rename failed: " + err);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void check_writable(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  const std::string where = what + " " + path;
  if (path.empty()) fail(what + ": empty path");
  const fs::path target(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) fail(where + ": is a directory; give a file name");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::exists(dir, ec)) fail(where + ": directory " + dir.string() + " does not exist");
  if (!fs::is_directory(dir, ec)) fail(where + ": " + dir.string() + " is not a directory");
  // Built by appending: GCC 12 reports a false -Wrestrict for "." + string here.
  std::string name(".");
  name += target.filename().string();
  name += ".probe.XXXXXX";
  std::string tmpl = (dir / name).string();
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) fail(where + ": cannot create files in " + dir.string() + ": " + std::strerror(errno));
  ::close(fd);
  ::unlink(tmpl.c_str());
}

void StatsFile::save(const std::string& path) const { write_file_atomically(path, to_json()); }

StatsFile StatsFile::load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path + ": is a directory, not a statistics file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot open statistics file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

void StatsFile::require_model(const std::string& hash, const std::string& path) const {
  if (hash != model_hash) {
    fail(path + ": statistics were collected for a different model (" + model_path + ", hash " + model_hash +
         "); collect them again for this one");
  }
}

}  // namespace aciq::calib
