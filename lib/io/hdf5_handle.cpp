// Handle: an owned hid_t, closed exactly once: by its destructor (under the library lock) or
// when another handle is moved into it (its callers hold the lock).
#include "io/hdf5.h"
#include "io/hdf5_types.h"

namespace dp::h5 {

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    if (valid() && close_) close_(id_);
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  if (valid() && close_) {
    Lock lock(library_lock());
    close_(id_);
  }
}

}  // namespace dp::h5
