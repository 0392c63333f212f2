// write_then_rename: the output is either the earlier file or the whole new one, never a
// partial write, and no "<output>.tmp" is left behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/error.h"
#include "io/replace_file.h"
#include "temp_dir.h"

namespace dp {
namespace {

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(WriteThenRename, ReplacesTheOutputAndCreatesItsFolder) {
  testing::TempDir dir;
  const std::string output = dir.file("new/folder/out.txt");
  write_then_rename(output, [](const std::string& tmp) { write_text(tmp, "whole"); });
  EXPECT_EQ(read_text(output), "whole");
  EXPECT_FALSE(std::filesystem::exists(output + ".tmp"));
  write_then_rename(output, [](const std::string& tmp) { write_text(tmp, "second"); });
  EXPECT_EQ(read_text(output), "second");
}

// The replaced output's permissions carry over (a group-readable dataset stays so); a new one
// has the umask's.
TEST(WriteThenRename, KeepsTheReplacedFilesPermissions) {
  namespace fs = std::filesystem;
  testing::TempDir dir;
  const std::string output = dir.file("out.txt");
  write_text(output, "earlier");
  fs::permissions(output, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::group_write);
  const fs::perms chosen = fs::status(output).permissions();
  write_then_rename(output, [](const std::string& tmp) { write_text(tmp, "whole"); });
  EXPECT_EQ(read_text(output), "whole");
  EXPECT_EQ(fs::status(output).permissions(), chosen);
}

TEST(WriteThenRename, AFailedWriteLeavesTheEarlierFileWholeAndNoTmp) {
  testing::TempDir dir;
  const std::string output = dir.file("out.txt");
  write_text(output, "earlier");
  EXPECT_THROW(write_then_rename(output,
                                 [](const std::string& tmp) {
                                   write_text(tmp, "par");
                                   throw std::runtime_error("disk full");
                                 }),
               std::runtime_error);
  EXPECT_EQ(read_text(output), "earlier");
  EXPECT_FALSE(std::filesystem::exists(output + ".tmp"));
}

// Whatever is at "<output>.tmp" already (another process's write in progress, a killed one's
// leftover, a link planted there) is refused in one IoError naming it, and left as it was:
// not followed, truncated or removed; the earlier output stays too.
TEST(WriteThenRename, RefusesAnExistingTmpAndTouchesNothing) {
  testing::TempDir dir;
  const std::string output = dir.file("out.h5");
  write_text(output, "earlier");
  const std::string precious = dir.file("precious.txt");
  write_text(precious, "precious");
  std::filesystem::create_symlink(precious, output + ".tmp");
  bool wrote = false;
  const auto write = [&wrote](const std::string& tmp) {
    wrote = true;
    write_text(tmp, "new");
  };
  try {
    write_then_rename(output, write);
    ADD_FAILURE() << "a link at the tmp's name was written through";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(output + ".tmp exists"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(wrote);
  EXPECT_EQ(read_text(precious), "precious");
  EXPECT_TRUE(std::filesystem::is_symlink(output + ".tmp"));
  EXPECT_EQ(read_text(output), "earlier");

  std::filesystem::remove(output + ".tmp");
  write_text(output + ".tmp", "another writer's");
  EXPECT_THROW(write_then_rename(output, write), IoError);
  EXPECT_FALSE(wrote);
  EXPECT_EQ(read_text(output + ".tmp"), "another writer's");
  EXPECT_EQ(read_text(output), "earlier");
}

TEST(WriteThenRename, AFailedWriteRemovesOnlyTheFoldersItMade) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("kept"));
  const std::string output = dir.file("kept/made/deeper/out.txt");
  EXPECT_THROW(write_then_rename(output,
                                 [](const std::string& tmp) {
                                   write_text(tmp, "par");
                                   throw std::runtime_error("bad image");
                                 }),
               std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("kept/made")));
  EXPECT_TRUE(std::filesystem::is_directory(dir.file("kept")));
  // A folder that something else filled meanwhile stays, with what it holds.
  EXPECT_THROW(write_then_rename(output,
                                 [&](const std::string& tmp) {
                                   write_text(tmp, "par");
                                   write_text(dir.file("kept/made/other.txt"), "theirs");
                                   throw std::runtime_error("bad image");
                                 }),
               std::runtime_error);
  EXPECT_EQ(read_text(dir.file("kept/made/other.txt")), "theirs");
  EXPECT_FALSE(std::filesystem::exists(dir.file("kept/made/deeper")));
  // A link to nothing where a folder was to be is the user's: left as it is.
  std::filesystem::create_symlink("/nonexistent/target", dir.file("dangling"));
  EXPECT_ANY_THROW(write_then_rename(dir.file("dangling/out.txt"), [](const std::string& tmp) {
    write_text(tmp, "whole");
    if (!std::filesystem::exists(tmp)) throw std::runtime_error("cannot create");
  }));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("dangling")));
}

TEST(WriteThenRename, MakesEveryMissingLevelOfAPathWithDotsInIt) {
  testing::TempDir dir;
  const std::string output = dir.file("a/./b/c/out.txt");
  write_then_rename(output, [](const std::string& tmp) { write_text(tmp, "whole"); });
  EXPECT_EQ(read_text(dir.file("a/b/c/out.txt")), "whole");
}

TEST(WriteThenRename, AFailedRenameNamesTheOutputAndRemovesTmp) {
  testing::TempDir dir;
  const std::string output = dir.file("taken");
  std::filesystem::create_directories(output + "/not-empty");  // rename cannot replace it
  try {
    write_then_rename(output, [](const std::string& tmp) { write_text(tmp, "whole"); });
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(output), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_directory(output + "/not-empty"));
  EXPECT_FALSE(std::filesystem::exists(output + ".tmp"));
}

}  // namespace
}  // namespace dp
