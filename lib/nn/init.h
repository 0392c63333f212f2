// Deterministic torchvision-style initialisation. Each tensor draws from its own random
// stream seeded by (seed, tensor name), so a parameter's initial values do not depend on
// which other layers exist or on the order they were built in. The generator and the
// normal transform are our own (core/hash.h's splitmix64 + Box-Muller), so values are
// identical across compilers and standard libraries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/parameter_store.h"

namespace dp::nn {

class InitRng {
 public:
  InitRng(uint64_t seed, const std::string& stream_name);
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double normal();   // N(0, 1)

 private:
  uint64_t state_;
};

// Fills every parameter and buffer of a finalized store:
// conv weight ~ N(0, 2 / (out_channels * kh * kw))    (kaiming_normal_, fan_out, relu)
// linear weight, bias ~ U(-1/sqrt(in), 1/sqrt(in))   (nn.Linear default)
// conv bias 0, BN weight 1 (0 for names in `zero_gamma`), BN bias 0, running_mean 0,
// running_var 1, num_batches_tracked 0.
void init_torchvision(ParameterStore& store, uint64_t seed,
                      const std::vector<std::string>& zero_gamma = {});

// PyTorch's own defaults with airbench's identity start, from the same per-tensor streams:
// conv weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))   (nn.Conv2d's kaiming_uniform_(a=sqrt 5))
// then, for o < min(O, I), filter o = the identity on input channel o (torch.nn.init.dirac_
// on weight[:I]: 1 at the kernel's centre tap (KH/2, KW/2), 0 elsewhere in the filter);
// conv bias 0; linear weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)); BN and buffers as above.
void init_pytorch_dirac(ParameterStore& store, uint64_t seed);

}  // namespace dp::nn
