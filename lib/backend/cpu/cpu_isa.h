// What oneDNN finds this CPU can run (capped by ONEDNN_MAX_CPU_ISA).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace dp::cpu {

// Whether the effective ISA includes `isa`: oneDNN's ISA values are bit sets, each containing
// those it extends (AMX's contains AVX512-BF16's; AVX2-VNNI's does not).
inline bool effective_isa_includes(dnnl::cpu_isa isa) {
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto wanted = static_cast<unsigned>(isa);
  return (effective & wanted) == wanted;
}

}  // namespace dp::cpu
