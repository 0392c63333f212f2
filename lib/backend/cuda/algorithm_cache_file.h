// The cuDNN convolution algorithms a timed search chose, kept in a file across processes
// (DPTRAIN_CUDNN_ALGORITHM_CACHE=FILE): a later run of the same shapes on the same GPU, cuDNN
// and options takes them instead of timing every algorithm again, as a PyTorch process that
// runs many short trainings pays cudnn.benchmark's search once. Plain C++ (no CUDA headers),
// built in every build.
//
// The file is text: a format line, a context line (what the choices depend on: GPU, cuDNN
// version, options), then one line per choice, "<key> <algorithm> <math type>". A file of
// another context, or one that does not parse, is ignored with a warning and rewritten with
// this process's choices. It is optional: writing it can fail with only a warning. Each write
// replaces the whole file through a tmp of this process's own (host and pid) and a rename, so
// processes sharing it (ranks, runs side by side) never read a half-written one; the last writer's
// choices win.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace dp::cuda {

class AlgorithmCacheFile {
 public:
  struct Choice {
    int algorithm = 0;
    int math = 0;
    bool operator==(const Choice&) const = default;
  };

  // `path` empty: nothing is read or written. Reads the file's choices when its context is
  // `context`.
  AlgorithmCacheFile(std::string path, std::string context);

  // `key`: one token without white space naming the convolution (direction, types, shape).
  std::optional<Choice> find(const std::string& key) const;
  // Adds (or replaces) the choice for `key` and rewrites the file.
  void remember(const std::string& key, Choice choice);
  size_t size() const { return choices_.size(); }

 private:
  void load();
  void save();

  std::string path_, context_;
  std::map<std::string, Choice> choices_;
  bool writable_ = true;  // false after a failed write: warned once, not again
};

}  // namespace dp::cuda
