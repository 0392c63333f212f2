// The process-wide state of the HDF5 library: the one lock every wrapper call holds, automatic
// error printing switched off before the library starts, and HDF5's error stack turned into
// the one-line messages DP_H5_CHECK throws.
#include <algorithm>

#include "io/hdf5.h"

namespace dp::h5 {

std::recursive_mutex& library_lock() {
  static std::recursive_mutex lock;
  return lock;
}

namespace {

// Silence HDF5's automatic error printing once: we report errors ourselves, in one line.
// Before that first call, which starts the library: no HDF5 atexit handler. HDF5 1.10 cannot
// close a file whose writes failed (a full disk) and crashes when that handler tries again at
// exit; every file is closed by its RAII owner before exit anyway.
struct SilenceAutoPrint {
  SilenceAutoPrint() {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};
const SilenceAutoPrint silence_auto_print;

herr_t collect_message(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 || out->empty()) *out = err->desc ? err->desc : "";
  // The outermost frame is the API call ("unable to open file"); the innermost names the
  // cause ("truncated file", "file signature not found"). Keep both.
  if (n > 0 && err->desc && out->find(err->desc) == std::string::npos) {
    *out += std::string(" (") + err->desc + ")";
  }
  return 0;
}

}  // namespace

std::string last_error_message() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &message);
  H5Eclear2(H5E_DEFAULT);
  // Some HDF5 messages embed a ctime() timestamp with a newline; errors must stay one line.
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message.empty() ? "HDF5 error" : message;
}

}  // namespace dp::h5
