#include "nn/init.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/hash.h"

namespace dp::nn {

InitRng::InitRng(uint64_t seed, const std::string& stream_name)
    : state_(hash::splitmix64_mix(seed) ^ hash::fnv1a64(stream_name)) {}

uint64_t InitRng::next_u64() { return hash::splitmix64_next(state_); }

double InitRng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double InitRng::normal() {
  // Box-Muller; 1 - u keeps the log argument in (0, 1].
  double u1 = 1.0 - uniform();
  double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

void init_torchvision(ParameterStore& store, uint64_t seed,
                      const std::vector<std::string>& zero_gamma) {
  DP_CHECK(store.finalized(), "init before finalize");
  std::vector<float> host;
  for (ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const StateEntry& e = store.entry(id);
    host.assign(static_cast<size_t>(e.numel()), 0.0f);
    InitRng rng(seed, e.name);
    if (e.kind == StateKind::parameter) {
      switch (e.param_role) {
        case ParamRole::conv_weight: {
          // {O, I, KH, KW}: fan_out = O * KH * KW.
          double fan_out = static_cast<double>(e.shape[0] * e.shape[2] * e.shape[3]);
          double stddev = std::sqrt(2.0 / fan_out);
          for (float& v : host) v = static_cast<float>(stddev * rng.normal());
          break;
        }
        case ParamRole::linear_weight:
        case ParamRole::linear_bias: {
          // Both bounds come from the weight's fan_in; the bias is named "<layer>.bias".
          int64_t fan_in = 0;
          if (e.param_role == ParamRole::linear_weight) {
            fan_in = e.shape[1];
          } else {
            std::string weight = e.name.substr(0, e.name.rfind('.')) + ".weight";
            auto wid = store.find(weight);
            DP_CHECK(wid.has_value(), "linear bias '{}' without weight '{}'", e.name, weight);
            fan_in = store.entry(*wid).shape[1];
          }
          double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
          for (float& v : host) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
          break;
        }
        case ParamRole::bn_weight: {
          bool zero = std::find(zero_gamma.begin(), zero_gamma.end(), e.name) != zero_gamma.end();
          std::fill(host.begin(), host.end(), zero ? 0.0f : 1.0f);
          break;
        }
        case ParamRole::bn_bias:
        case ParamRole::conv_bias:
          break;
      }
    } else if (e.buffer_role == BufferRole::running_var) {
      std::fill(host.begin(), host.end(), 1.0f);
    }
    store.write(id, host.data(), host.size());
  }
}

namespace {

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = I*KH*KW, then dirac on the first filters.
void conv_uniform_dirac(const StateEntry& e, InitRng& rng, std::vector<float>& host) {
  const int64_t o = e.shape[0], i = e.shape[1], kh = e.shape[2], kw = e.shape[3];
  const double bound = 1.0 / std::sqrt(static_cast<double>(i * kh * kw));
  for (float& v : host) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
  for (int64_t f = 0; f < std::min(o, i); ++f) {
    float* filter = host.data() + f * i * kh * kw;
    std::fill(filter, filter + i * kh * kw, 0.0f);
    filter[(f * kh + kh / 2) * kw + kw / 2] = 1.0f;
  }
}

}  // namespace

void init_pytorch_dirac(ParameterStore& store, uint64_t seed) {
  // Everything but conv weights is what init_torchvision writes; conv weights are redone.
  init_torchvision(store, seed);
  std::vector<float> host;
  for (ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const StateEntry& e = store.entry(id);
    if (e.kind != StateKind::parameter || e.param_role != ParamRole::conv_weight) continue;
    host.assign(static_cast<size_t>(e.numel()), 0.0f);
    InitRng rng(seed, e.name);
    conv_uniform_dirac(e, rng, host);
    store.write(id, host.data(), host.size());
  }
}

}  // namespace dp::nn
