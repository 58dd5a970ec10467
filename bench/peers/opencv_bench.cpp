// OpenCV DNN throughput on synthetic input: opencv_bench MODEL BATCH ITERS THREADS CxHxW
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 6) return 2;
  const int batch = std::stoi(argv[2]), iters = std::stoi(argv[3]), threads = std::stoi(argv[4]);
  int c = 0, h = 0, w = 0;
  std::sscanf(argv[5], "%dx%dx%d", &c, &h, &w);
  cv::setNumThreads(threads);
  cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[1]);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  const int dims[] = {batch, c, h, w};
  cv::Mat blob(4, dims, CV_32F);
  cv::randn(blob, 0.0, 1.0);
  for (int i = 0; i < 2; ++i) {
    net.setInput(blob);
    net.forward();
  }
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    net.setInput(blob);
    net.forward();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  std::printf("throughput: %.2f img/s\n", batch / t[t.size() / 2]);
}
