// Helpers of the end-to-end CLI tests: running the aciq binary, a scratch directory removed at exit
// (also after failed tests), the one-line error contract, and tiny models.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../onnx/model_builder.hpp"

namespace aciq::testing {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

// The process's scratch directory; removed with everything in it when the test binary exits.
inline fs::path scratch() {
  struct Root {
    fs::path dir = fs::temp_directory_path() / ("aciq_cli_test_" + std::to_string(::getpid()));
    Root() { fs::create_directories(dir); }
    ~Root() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    Root(const Root&) = delete;
    Root& operator=(const Root&) = delete;
  };
  static const Root root;
  return root.dir;
}

// Runs `env ACIQ args` (env: "NAME=value ..." or empty) through the shell; stdout and stderr apart.
inline CliRun aciq_env(const std::string& env, const std::string& args) {
  const fs::path err = scratch() / "stderr.txt";
  const std::string cmd =
      (env.empty() ? "" : "env " + env + " ") + std::string(ACIQ_CLI) + " " + args + " 2>" + err.string();
  CliRun r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int status = ::pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

inline CliRun aciq(const std::string& args) { return aciq_env("", args); }

inline void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The error contract: exit code 1, stderr is exactly one line "aciq: error: ..." containing `needle`
// (notes before it are allowed when `allow_notes`).
inline void expect_one_line_error(const CliRun& r, const std::string& needle, bool allow_notes = true) {
  EXPECT_EQ(r.code, 1) << r.err;
  std::string text = r.err;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto nl = text.rfind('\n');
  const std::string last = text.substr(nl == std::string::npos ? 0 : nl + 1);
  if (!allow_notes) {
    EXPECT_EQ(nl, std::string::npos) << "more than one line on stderr:\n" << r.err;
  }
  EXPECT_EQ(last.rfind("aciq: error: ", 0), 0u) << r.err;
  EXPECT_NE(last.find(needle), std::string::npos) << "missing '" << needle << "' in: " << last;
}

// A tiny CNN on 1x28x28 input with random weights (enough for end-to-end plumbing).
inline std::string tiny_mnist_model(unsigned seed = 1) {
  auto m = make_model();
  add_input(m, "input", {-1, 1, 28, 28});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w1", {8, 1, 3, 3}, random_values(72, seed));
  *g->add_initializer() = make_tensor("b1", {8}, random_values(8, seed + 1));
  *g->add_initializer() = make_tensor("w2", {16, 8, 3, 3}, random_values(1152, seed + 2, -0.3f, 0.3f));
  *g->add_initializer() = make_tensor("fc", {10, 16}, random_values(160, seed + 3));
  *g->add_initializer() = make_tensor("fcb", {10}, random_values(10, seed + 4));
  auto* c1 = add_node(m, "Conv", {"input", "w1", "b1"}, {"c1"}, "conv1");
  set_ints(c1, "strides", {2, 2});
  add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
  auto* c2 = add_node(m, "Conv", {"r1", "w2"}, {"c2"}, "conv2");
  set_ints(c2, "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c2"}, {"r2"}, "relu2");
  add_node(m, "GlobalAveragePool", {"r2"}, {"gap"}, "gap");
  add_node(m, "Flatten", {"gap"}, {"flat"}, "flatten");
  set_int(add_node(m, "Gemm", {"flat", "fc", "fcb"}, {"logits"}, "fc"), "transB", 1);
  add_output(m, "logits");
  std::string s;
  m.SerializeToString(&s);
  return s;
}

inline fs::path tiny_model_file(unsigned seed = 1) {
  const fs::path p = scratch() / ("tiny" + std::to_string(seed) + ".onnx");
  if (!fs::exists(p)) write_bytes(p, tiny_mnist_model(seed));
  return p;
}

}  // namespace aciq::testing
