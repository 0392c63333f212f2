// Benchmark (not a test): checkpoint save and load time with and without checksums, on
// tensors of ResNet-50's sizes (25.6 M parameters and as much momentum), alternating the two
// so that a noisy machine affects both alike.
//   bench_checkpoint [repeats=5] [directory=/tmp]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "io/checkpoint.h"

using namespace dp;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// 160 tensors of 160,000 floats (25.6 M), 53 buffers of 1,000, and momentum like the params.
using Floats = std::vector<float>;

struct Tensors {
  std::vector<Floats> params = std::vector<Floats>(160, Floats(160000, 0.5f));
  std::vector<Floats> momentum = params;
  std::vector<Floats> buffers = std::vector<Floats>(53, Floats(1000, 1.f));
  CheckpointSections sections() {
    CheckpointSections s;
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string name = std::string("p").append(std::to_string(i));
      s.params.push_back({name, {400, 400}, params[i].data()});
      s.momentum.push_back({name, {400, 400}, momentum[i].data()});
    }
    for (size_t i = 0; i < buffers.size(); ++i)
      s.buffers.push_back({std::string("b").append(std::to_string(i)), {1000}, buffers[i].data()});
    return s;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::stoi(argv[1]) : 5;
  const std::string dir = argc > 2 ? argv[2] : "/tmp";
  Tensors tensors, into;
  std::vector<double> save[2], load[2];
  for (int r = 0; r < repeats; ++r) {
    for (int checked = 0; checked < 2; ++checked) {
      const std::string path =
          std::string(dir).append("/bench_checkpoint_").append(checked ? "1.h5" : "0.h5");
      auto start = std::chrono::steady_clock::now();
      save_checkpoint(path, tensors.sections(), {}, checked == 1);
      save[checked].push_back(seconds_since(start));
      start = std::chrono::steady_clock::now();
      load_checkpoint(path, into.sections());
      load[checked].push_back(seconds_since(start));
      std::filesystem::remove(path);
    }
  }
  const double mb = 2 * 25.6e6 * 4 / 1e6;
  std::printf("checkpoint of %.0f MB (params + momentum), median of %d, alternating:\n", mb,
              repeats);
  std::printf("  save: %.3f s without checksums, %.3f s with (ratio %.2f)\n", median(save[0]),
              median(save[1]), median(save[1]) / median(save[0]));
  std::printf("  load: %.3f s without checksums, %.3f s with (ratio %.2f)\n", median(load[0]),
              median(load[1]), median(load[1]) / median(load[0]));
  return 0;
}
