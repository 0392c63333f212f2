// init_dump: a zoo model's initial state as dptrain creates it (make_model: torchvision-style
// init from the seed), for test_peer_init.py to compare with the PyTorch peers' models.
//
// usage: init_dump ARCH SHORTCUT(A|B|auto) SEED OUTPUT.h5
// Output: attribute parameter_count; /params/<name> and /buffers/<name> (torchvision names,
// PyTorch shapes); attribute `order` lists the names in state_dict order.
// A test tool, not part of the application.
#include <cstdio>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "io/hdf5.h"
#include "nn/model.h"

using namespace dp;

namespace {

int run(char** argv) {
  nn::ModelSpec spec;
  spec.arch = argv[1];
  spec.shortcut = nn::parse_shortcut(argv[2]);
  spec.seed = std::stoull(argv[3]);
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(spec, *backend);
  const nn::ParameterStore& store = model->store();

  h5::File out(argv[4], h5::File::Mode::create_truncate);
  out.set_attribute("parameter_count", store.parameter_count());
  out.set_attribute("shortcut", nn::shortcut_name(model->spec().shortcut));
  h5::Group params = out.create_group("params"), buffers = out.create_group("buffers");
  std::vector<std::string> order;
  std::vector<float> host;
  for (const auto& e : store.entries()) {
    host.resize(e.numel());
    store.read(e.name, host.data(), host.size());
    std::vector<hsize_t> dims(e.shape.begin(), e.shape.end());
    (e.kind == nn::StateKind::parameter ? params : buffers).write<float>(e.name, dims, host.data());
    order.push_back(e.name);
  }
  out.set_attribute("order", order);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: init_dump ARCH SHORTCUT SEED OUTPUT.h5\n");
    return 2;
  }
  try {
    return run(argv);
  } catch (const dp::Error& e) {
    std::fprintf(stderr, "init_dump: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
