// The cuDNN algorithm cache file (lib/backend/cuda/algorithm_cache_file.h): plain C++, so it is
// tested on every build; CudnnConv's use of it runs on a GPU only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "backend/cuda/algorithm_cache_file.h"

namespace dp::cuda {
namespace {

namespace fs = std::filesystem;
using Choice = AlgorithmCacheFile::Choice;
constexpr const char* kContext =
    "NVIDIA H200 (sm 9.0), cuDNN 91900, tf32 false, deterministic false";

class AlgorithmCacheFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dp_algorithm_cache_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file() const { return (dir_ / "algorithms.txt").string(); }
  std::string contents() const {
    std::ifstream in(file());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  int files_in_dir() const {
    return static_cast<int>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  fs::path dir_;
};

TEST_F(AlgorithmCacheFileTest, ChoicesComeBackInTheNextProcess) {
  {
    AlgorithmCacheFile cache(file(), kContext);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_FALSE(cache.find("0,1,1024,32,32,3,24,2,1,0"));
    cache.remember("0,1,1024,32,32,3,24,2,1,0", {6, 1});
    cache.remember("2,1,1024,15,15,64,256,3,1,1", {1, 2});
    cache.remember("0,1,1024,32,32,3,24,2,1,0", {7, 1});  // replaces
  }
  EXPECT_EQ(files_in_dir(), 1) << "no tmp left beside the file";
  AlgorithmCacheFile again(file(), kContext);
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ(again.find("0,1,1024,32,32,3,24,2,1,0"), (Choice{7, 1}));
  EXPECT_EQ(again.find("2,1,1024,15,15,64,256,3,1,1"), (Choice{1, 2}));
  EXPECT_FALSE(again.find("1,1,1024,15,15,64,256,3,1,1"));
}

TEST_F(AlgorithmCacheFileTest, BlankLinesAreSkipped) {
  std::ofstream(file()) << "dptrain cudnn algorithms 1\ncontext: " << kContext << "\n\nk 4 1\n\n";
  EXPECT_EQ(AlgorithmCacheFile(file(), kContext).find("k"), (Choice{4, 1}));
}

TEST_F(AlgorithmCacheFileTest, AnotherContextsFileIsIgnoredAndRewritten) {
  AlgorithmCacheFile(file(), kContext).remember("k", {3, 0});
  AlgorithmCacheFile other(file(),
                           "NVIDIA H100 (sm 9.0), cuDNN 91900, tf32 false, deterministic false");
  EXPECT_EQ(other.size(), 0u);
  other.remember("k", {5, 0});
  EXPECT_NE(contents().find("NVIDIA H100"), std::string::npos);
  EXPECT_EQ(AlgorithmCacheFile(file(), kContext).size(), 0u);
}

TEST_F(AlgorithmCacheFileTest, AFileThatDoesNotParseIsIgnoredAndRewritten) {
  const std::string head = std::string("dptrain cudnn algorithms 1\ncontext: ") + kContext + "\n";
  for (const std::string& text :
       {std::string("something else\nk 1 2\n"), std::string("dptrain cudnn algorithms 1\n"),
        head + "k 1\n",              // a line of two fields
        head + "k 1 2\nk2 1 2 3\n",  // a line of four
        head + "k one 2\n"}) {
    std::ofstream(file()) << text;
    AlgorithmCacheFile cache(file(), kContext);
    EXPECT_EQ(cache.size(), 0u) << text;
    cache.remember("k", {2, 1});
    EXPECT_EQ(AlgorithmCacheFile(file(), kContext).find("k"), (Choice{2, 1})) << text;
  }
}

TEST_F(AlgorithmCacheFileTest, NoPathMeansNoFileAndAnUnwritableOneOnlyWarns) {
  AlgorithmCacheFile none("", kContext);
  none.remember("k", {1, 0});
  EXPECT_EQ(none.find("k"), (Choice{1, 0}));
  EXPECT_EQ(files_in_dir(), 0);
  const std::string missing = (dir_ / "no-such-dir" / "algorithms.txt").string();
  AlgorithmCacheFile unwritable(missing, kContext);
  unwritable.remember("k", {1, 0});
  unwritable.remember("k2", {2, 0});
  EXPECT_EQ(unwritable.find("k2"), (Choice{2, 0})) << "still kept in memory";
  EXPECT_FALSE(fs::exists(dir_ / "no-such-dir"));
  EXPECT_EQ(files_in_dir(), 0) << "no tmp left behind";
}

}  // namespace
}  // namespace dp::cuda
