// The process-wide state of the HDF5 library: the one lock every wrapper call holds, automatic
// error printing switched off on every thread that calls it, and HDF5's error stack turned into
// the one-line messages DP_H5_CHECK throws (a checksum mismatch among them says so).
#include <algorithm>
#include <cctype>

#include "io/hdf5.h"

namespace dp::h5 {

std::recursive_mutex& library_lock() {
  static std::recursive_mutex lock;
  return lock;
}

void silence_error_printing() {
  thread_local bool silenced = false;
  if (silenced) return;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

namespace {

// Before the first call, which starts the library: no HDF5 atexit handler. HDF5 1.10 cannot
// close a file whose writes failed (a full disk) and crashes when that handler tries again at
// exit; every file is closed by its RAII owner before exit anyway.
struct NoAtexitHandler {
  NoAtexitHandler() {
    H5dont_atexit();
    silence_error_printing();
  }
};
const NoAtexitHandler no_atexit_handler;

struct ErrorStack {
  std::string outermost;       // the API call's frame ("unable to open file")
  std::string innermost;       // the cause ("truncated file", "file signature not found")
  std::string checksum_frame;  // the frame that reports a checksum mismatch, if any
};

// A failed system call's frame ("file write failed: time = ..., filename = ..., errno = 28,
// error message = 'No space left on device', buf = ..., ...") as "file write failed: No space
// left on device"; any other frame as it is.
std::string without_call_details(const std::string& desc) {
  const std::string marker = "error message = '";
  const size_t head_end = desc.find(':');
  const size_t start = desc.find(marker);
  if (head_end == std::string::npos || start == std::string::npos) return desc;
  const size_t end = desc.find('\'', start + marker.size());
  return desc.substr(0, head_end) + ": " +
         desc.substr(start + marker.size(),
                     end == std::string::npos ? end : end - start - marker.size());
}

herr_t collect_message(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<ErrorStack*>(data);
  const std::string desc = err->desc ? err->desc : "";
  if (desc.empty()) return 0;
  if (n == 0 || out->outermost.empty())
    out->outermost = desc;
  else
    out->innermost = desc;  // the frames in between say how the call got there
  if (out->checksum_frame.empty() && is_corruption_message(desc)) out->checksum_frame = desc;
  return 0;
}

}  // namespace

std::string last_error_message() {
  ErrorStack stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &stack);
  H5Eclear2(H5E_DEFAULT);
  // A mismatch is the only thing the reader needs to know; the frames above it add nothing.
  if (!stack.checksum_frame.empty())
    return "checksum mismatch (" + stack.checksum_frame +
           "): the file is corrupted; restore it from a good copy or write it again";
  if (stack.outermost.empty()) return "HDF5 error";
  std::string message = stack.outermost;
  const std::string cause = without_call_details(stack.innermost);
  if (!cause.empty() && message.find(cause) == std::string::npos) message += " (" + cause + ")";
  // Some HDF5 messages embed a ctime() timestamp with a newline; errors must stay one line.
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message;
}

bool is_corruption_message(const std::string& message) {
  std::string lower = message;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("checksum") != std::string::npos;
}

}  // namespace dp::h5
