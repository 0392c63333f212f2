// oracle_step: one training step of a zoo model on the CPU backend, from an HDF5 file that
// torch_oracle.py wrote, so the Python side can compare against PyTorch tensor by tensor.
//
// Input  (argv[1]): attributes arch, shortcut (A/B/auto), num_classes, in_channels, lr,
//                   momentum, weight_decay, nesterov (0/1), label_smoothing (optional, 0);
//                   /params/<state_dict name> (PyTorch layout, which is ours),
//                   /buffers/<name>, /batch/images {N,H,W,C} f32, /batch/labels {N} i32.
// Output (argv[2]): /logits {N,K}, /loss (1), /grads/<name>, /params/<name> (after the SGD
//                   step; parameters the model keeps fixed are not stepped, as torch.optim
//                   never sees one without requires_grad), /momentum/<name> (the SGD
//                   momentum buffer after the step, 0 for a fixed parameter),
//                   /buffers/<name> (after the train-mode forward).
// A test tool, not part of the application.
#include <cstdio>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "io/hdf5.h"
#include "nn/model.h"
#include "optim/optimizer.h"

using namespace dp;

namespace {

std::vector<hsize_t> dims_of(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

int run(const std::string& in_path, const std::string& out_path) {
  h5::File in(in_path, h5::File::Mode::read);
  nn::ModelSpec spec;
  spec.arch = in.string_attribute("arch");
  spec.num_classes = in.int_attribute("num_classes");
  spec.in_channels = in.int_attribute("in_channels");
  spec.shortcut = nn::parse_shortcut(in.string_attribute("shortcut"));
  SgdHyper hyper;
  hyper.lr = static_cast<float>(in.double_attribute("lr"));
  hyper.momentum = static_cast<float>(in.double_attribute("momentum"));
  hyper.weight_decay = static_cast<float>(in.double_attribute("weight_decay"));
  hyper.nesterov = in.int_attribute("nesterov") != 0;
  const float smoothing = in.has_attribute("label_smoothing")
                              ? static_cast<float>(in.double_attribute("label_smoothing"))
                              : 0.0f;

  auto backend = make_cpu_backend();
  auto model = nn::make_model(spec, *backend);
  nn::ParameterStore& store = model->store();

  // Every parameter and buffer must come from the file: a missing one is a naming bug.
  h5::Group params = in.group("params"), buffers = in.group("buffers");
  std::vector<float> host;
  for (const auto& e : store.entries()) {
    const h5::Group& g = e.kind == nn::StateKind::parameter ? params : buffers;
    host.resize(e.numel());
    g.dataset(e.name).read(host.data(), host.size());
    store.write(e.name, host.data(), host.size());
  }
  size_t file_entries = params.children().size() + buffers.children().size();
  DP_CHECK(file_entries == store.entries().size(), "{} holds {} tensors, the model {}", in_path,
           file_entries, store.entries().size());

  h5::Dataset images_ds = in.group("batch").dataset("images");
  auto idims = images_ds.dims();
  Shape image_shape(idims.begin(), idims.end());
  std::vector<float> image_host;
  images_ds.read(image_host);
  std::vector<int32_t> label_host;
  in.group("batch").dataset("labels").read(label_host);
  Tensor images = backend->allocate(image_shape);
  backend->copy_from_host(image_host.data(), images);
  Tensor labels = backend->allocate({static_cast<int64_t>(label_host.size())}, DType::i32);
  backend->copy_from_host(label_host.data(), labels);

  const Tensor& logits = model->forward(images, true);
  Tensor dlogits = backend->allocate(logits.shape());
  int64_t correct = 0;
  float loss = backend->softmax_cross_entropy(logits, labels, smoothing, dlogits, correct);
  std::vector<float> logits_host(logits.numel());
  backend->copy_to_host(logits, logits_host.data());
  model->backward(dlogits);

  // Plain torch.optim.SGD over every trainable parameter (one range, the whole buffer, where
  // all are), decaying each: the mask is all ones.
  optim::ParamGroup group;
  group.momentum = hyper.momentum;
  group.weight_decay = hyper.weight_decay;
  group.nesterov = hyper.nesterov;
  for (const auto& e : store.entries()) {
    if (e.kind != nn::StateKind::parameter || !e.trainable) continue;
    auto& r = group.ranges;
    if (!r.empty() && r.back().offset + r.back().numel == e.offset)
      r.back().numel += e.numel();
    else
      r.push_back({e.offset, e.numel()});
  }
  optim::Optimizer sgd(*backend, model->params(), model->grads(), store.make_decay_mask(false),
                       {group}, hyper.lr);
  h5::File out(out_path, h5::File::Mode::create_truncate);
  out.write<float>("logits", dims_of(logits.shape()), logits_host.data());
  out.write<float>("loss", {1}, &loss);
  h5::Group grads_out = out.create_group("grads");
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const auto& e = store.entry(id);
    if (e.kind != nn::StateKind::parameter) continue;
    host.resize(e.numel());
    store.read_grad(id, host.data(), host.size());
    grads_out.write<float>(e.name, dims_of(e.shape), host.data());
  }
  sgd.step();
  h5::Group params_out = out.create_group("params"), buffers_out = out.create_group("buffers");
  h5::Group momentum_out = out.create_group("momentum");
  std::vector<float> momentum(sgd.momentum_buffer().numel());
  backend->copy_to_host(sgd.momentum_buffer(), momentum.data());
  for (const auto& e : store.entries()) {
    host.resize(e.numel());
    store.read(e.name, host.data(), host.size());
    (e.kind == nn::StateKind::parameter ? params_out : buffers_out)
        .write<float>(e.name, dims_of(e.shape), host.data());
    if (e.kind == nn::StateKind::parameter)
      momentum_out.write<float>(e.name, dims_of(e.shape), momentum.data() + e.offset);
  }
  std::printf("oracle_step: %s, shortcut %s, loss %.6f, %lld parameters\n", spec.arch.c_str(),
              nn::shortcut_name(model->spec().shortcut).c_str(), loss,
              static_cast<long long>(store.parameter_count()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: oracle_step INPUT.h5 OUTPUT.h5\n");
    return 2;
  }
  try {
    return run(argv[1], argv[2]);
  } catch (const dp::Error& e) {
    std::fprintf(stderr, "oracle_step: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
