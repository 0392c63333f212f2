// What built and runs this binary (versions of the compiler and libraries, backends compiled
// in), recorded in metrics.h5 so a result can be traced to its build.
#pragma once

#include <map>
#include <string>

namespace dp {

std::map<std::string, std::string> build_info();

}  // namespace dp
