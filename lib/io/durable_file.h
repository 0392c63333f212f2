// Writing a file so that neither a killed process nor a full disk leaves a reader a damaged
// one: the bytes go to "<path>.tmp", are fsync'ed, and the tmp is renamed over `path` (then
// the folder is fsync'ed, so the rename does not reach the disk before the bytes). A failure
// removes the tmp and leaves an earlier `path` whole.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dp {

// Pushes a file's (or a directory's) data to stable storage; an IoError on failure (a
// directory on a file system without fsync for directories passes).
void sync_path(const std::string& path, bool directory);

// Writes `bytes` to `path` (a new file: one there is unlinked first, never written through)
// and fsyncs it; on any failure removes the partial file and throws IoError
// "<path>: cannot write <what>: <call> failed: <reason>" (ENOSPC, EFBIG, EACCES, EROFS...).
void write_durably(const std::string& path, const std::vector<uint8_t>& bytes,
                   const std::string& what);

// write_durably to "<path>.tmp", then rename_into_place. `what` names the file in errors
// ("checkpoint", "metrics file").
void replace_durably(const std::string& path, const std::vector<uint8_t>& bytes,
                     const std::string& what);

// "<path>.tmp": where every replacement of `path` is written before it is renamed into place
// (a reader that finds one knows a replacement was cut short).
std::string tmp_path_for(const std::string& path);

// The last step every replacement of a file shares (replace_durably, write_then_rename,
// publish_checkpoint_as): `tmp`, written whole and synced, takes the replaced `path`'s
// permissions and is renamed over it, then the folder is fsync'ed. A failed rename removes tmp
// (a full-size copy that nothing reads: not left on a failing disk) and throws IoError
// "<path>: cannot move <what> into place: <reason>".
void rename_into_place(const std::string& tmp, const std::string& path, const std::string& what);

// Gives `replacement` the permissions of `replaced` when that exists (a group-writable run
// directory's files stay group-writable); else `replacement` keeps the umask's, as any creat().
void keep_permissions(const std::string& replaced, const std::string& replacement);

// The folder holding `path` ("." for a bare name).
std::string parent_directory(const std::string& path);

}  // namespace dp
