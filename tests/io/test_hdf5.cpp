#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>

#include "io/hdf5.h"
#include "temp_dir.h"

namespace dp {
namespace {

TEST(Hdf5, ReadRowsReadsOneHyperslabAndRefusesRowsPastTheEnd) {
  testing::TempDir dir;
  std::vector<int32_t> values(10 * 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int32_t>(i);
  {
    h5::File file(dir.file("a.h5"), h5::File::Mode::create_truncate);
    file.write<int32_t>("x", {10, 3}, values.data(), 4);
  }
  h5::File file(dir.file("a.h5"), h5::File::Mode::read);
  std::vector<int32_t> slab(2 * 3);
  file.dataset("x").read_rows<int32_t>(4, 2, slab.data());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(slab[i], 12 + i);
  EXPECT_THROW(file.dataset("x").read_rows<int32_t>(9, 2, slab.data()), DataError);
}

// No object carries a timestamp (HDF5's modification time reads 0 then): the root, groups and
// datasets created by name, and the groups created along a longer path, as a checkpoint's
// optimizer/momentum; so the same contents written again are the same bytes.
TEST(Hdf5, NoObjectCarriesATimestamp) {
  testing::TempDir dir;
  const std::vector<float> values = {1, 2, 3};
  {
    h5::File file(dir.file("t.h5"), h5::File::Mode::create_truncate);
    file.create_group("group");
    file.require_group("optimizer/momentum");
    file.write<float>("deep/path/x", {3}, values.data());
    file.write_strings("names", {"a", "b"});
  }
  const hid_t file = H5Fopen(dir.file("t.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  for (const char* object : {"/", "/group", "/optimizer", "/optimizer/momentum", "/deep",
                             "/deep/path", "/deep/path/x", "/names"}) {
    H5O_info_t info;  // HDF5 1.10 (Debian 12)
    ASSERT_GE(H5Oget_info_by_name2(file, object, &info, H5O_INFO_TIME, H5P_DEFAULT), 0) << object;
    EXPECT_EQ(info.mtime, 0) << object;
    EXPECT_EQ(info.ctime, 0) << object;
  }
  H5Fclose(file);
}

TEST(Hdf5, AppendRowsExtendsAndAttributesRoundTrip) {
  testing::TempDir dir;
  {
    h5::File file(dir.file("b.h5"), h5::File::Mode::create_truncate);
    auto ds = file.write<double>("g/h", {0}, nullptr, 8);
    double a[2] = {1.5, 2.5};
    ds.append_rows<double>(2, a);
    file.set_attribute("name", std::string("hello"));
    file.set_attribute("n", int64_t{42});
    file.set_attribute("names", std::vector<std::string>{"a", "bc"});
    file.write_strings("s", {"x", "yz"});
  }
  h5::File file(dir.file("b.h5"), h5::File::Mode::read);
  std::vector<double> h;
  file.dataset("g/h").read(h);
  EXPECT_EQ(h, (std::vector<double>{1.5, 2.5}));
  EXPECT_EQ(file.string_attribute("name"), "hello");
  EXPECT_EQ(file.int_attribute("n"), 42);
  EXPECT_EQ(file.strings_attribute("names"), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(file.dataset("s").read_strings(), (std::vector<std::string>{"x", "yz"}));
  EXPECT_TRUE(file.has("g/h"));
  EXPECT_FALSE(file.has("nope/h"));
}

// Small groups keep their links compact, large ones (more than 8) in a heap with a name index
// in hash order: either way children() lists the names sorted.
TEST(Hdf5, ChildrenAreListedInNameOrder) {
  testing::TempDir dir;
  std::vector<std::string> names;
  for (int i = 40; i > 0; --i)
    names.push_back(std::string(1, 'n').append(std::to_string(i * 7 % 41)));
  {
    h5::File file(dir.file("c.h5"), h5::File::Mode::create_truncate);
    for (size_t i = 0; i < names.size(); ++i)
      file.create_group(i < 3 ? "small/" + names[i] : "large/" + names[i]);
  }
  h5::File file(dir.file("c.h5"), h5::File::Mode::read);
  std::vector<std::string> small(names.begin(), names.begin() + 3),
      large(names.begin() + 3, names.end());
  std::sort(small.begin(), small.end());
  std::sort(large.begin(), large.end());
  EXPECT_EQ(file.group("small").children(), small);
  EXPECT_EQ(file.group("large").children(), large);
}

TEST(Hdf5, MissingOrCorruptFileErrorNamesTheFile) {
  testing::TempDir dir;
  try {
    h5::File file(dir.file("missing.h5"), h5::File::Mode::read);
    FAIL() << "no exception";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5"), std::string::npos) << e.what();
  }
  {
    std::FILE* f = std::fopen(dir.file("junk.h5").c_str(), "wb");
    std::fputs("not an hdf5 file at all", f);
    std::fclose(f);
  }
  EXPECT_THROW(h5::File(dir.file("junk.h5"), h5::File::Mode::read), DataError);
}

// No write may reach the disk for the object's life, as on a full one (SIGXFSZ ignored, so a
// write fails with EFBIG); the limit and the handler come back however the test ends.
class NoFileWrites {
 public:
  NoFileWrites() : old_handler_(std::signal(SIGXFSZ, SIG_IGN)) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    const rlimit none{0, saved_.rlim_max};
    setrlimit(RLIMIT_FSIZE, &none);
  }
  ~NoFileWrites() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }
  NoFileWrites(const NoFileWrites&) = delete;
  NoFileWrites& operator=(const NoFileWrites&) = delete;

 private:
  void (*old_handler_)(int);
  rlimit saved_{};
};

// A write that fails only as the file is closed (HDF5 keeps the last metadata until then):
// close() throws IoError naming the file, where it passed over the failure and the writer
// renamed a broken file into place. And an error stack's system call frame reads as its
// reason, not its call details.
TEST(Hdf5, AWriteThatFailsAtCloseIsAnOutputError) {
  testing::TempDir dir;
  const std::string path = dir.file("closing.h5");
  h5::File file(path, h5::File::Mode::create_truncate);
  std::vector<double> values(64, 1.0);
  file.write<double>("x", {64}, values.data(), 0);
  file.set_attribute("note", std::string("written last"));
  std::string message;
  {
    const NoFileWrites full_disk;
    try {
      file.close();
    } catch (const IoError& e) {
      message = e.what();
    }
  }
  EXPECT_NE(message.find("closing.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_EQ(message.find("errno"), std::string::npos) << message;
}

}  // namespace
}  // namespace dp

namespace dp {
namespace {

TEST(Hdf5, StringsAreFixedLengthAndRoundTrip) {
  testing::TempDir dir;
  const std::vector<std::string> names = {"", "cat", "caf\xc3\xa9 au lait", "x"};
  {
    h5::File file(dir.file("s.h5"), h5::File::Mode::create_truncate);
    file.set_attribute("one", std::string("r\xc3\xa9sum\xc3\xa9"));
    file.set_attribute("empty", std::string());
    file.set_attribute("many", names);
    file.write_strings("names", names);
  }
  h5::File file(dir.file("s.h5"), h5::File::Mode::read);
  EXPECT_EQ(file.string_attribute("one"), "r\xc3\xa9sum\xc3\xa9");
  EXPECT_EQ(file.string_attribute("empty"), "");
  EXPECT_EQ(file.strings_attribute("many"), names);
  EXPECT_EQ(file.dataset("names").read_strings(), names);
  hid_t attr = H5Aopen(file.id(), "many", H5P_DEFAULT);
  hid_t type = H5Aget_type(attr);
  EXPECT_EQ(H5Tis_variable_str(type), 0);
  EXPECT_EQ(H5Tget_cset(type), H5T_CSET_UTF8);
  EXPECT_EQ(H5Tget_size(type), 13u);  // the longest value; shorter ones are NUL-padded
  H5Tclose(type);
  H5Aclose(attr);
}

// Files of earlier versions hold variable-length strings: they still read.
TEST(Hdf5, VariableLengthStringsOfEarlierFilesStillRead) {
  testing::TempDir dir;
  {
    hid_t file = H5Fcreate(dir.file("v.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hsize_t two = 2;
    hid_t space = H5Screate_simple(1, &two, nullptr);
    const char* values[2] = {"dog", "horse"};
    hid_t attr = H5Acreate2(file, "names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, values);
    H5Aclose(attr);
    hid_t ds = H5Dcreate2(file, "names", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
    H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(file);
  }
  h5::File file(dir.file("v.h5"), h5::File::Mode::read);
  EXPECT_EQ(file.strings_attribute("names"), (std::vector<std::string>{"dog", "horse"}));
  EXPECT_EQ(file.dataset("names").read_strings(), (std::vector<std::string>{"dog", "horse"}));
}

TEST(Hdf5, EmptyArrayAttributesRoundTrip) {
  testing::TempDir dir;
  {
    h5::File file(dir.file("e.h5"), h5::File::Mode::create_truncate);
    file.set_attribute("none", std::vector<std::string>{});
    file.set_attribute("nothing", std::vector<double>{});
  }
  h5::File file(dir.file("e.h5"), h5::File::Mode::read);
  EXPECT_TRUE(file.strings_attribute("none").empty());
  EXPECT_TRUE(file.doubles_attribute("nothing").empty());
}

// An array read as one number would overrun the value it is read into (a stack overwrite); a
// float read as an integer would be truncated.
TEST(Hdf5, ANumberAttributeThatIsAnArrayAStringOrAFractionIsRefusedByName) {
  testing::TempDir dir;
  {
    h5::File file(dir.file("a.h5"), h5::File::Mode::create_truncate);
    file.set_attribute("classes", std::vector<double>{10, 11, 12, 13, 14, 15, 16, 17});
    file.set_attribute("one", std::vector<double>{7});
    file.set_attribute("word", std::string("ten"));
    file.set_attribute("height", 8.9);
  }
  h5::File file(dir.file("a.h5"), h5::File::Mode::read);
  for (const char* name : {"classes", "word"}) {
    for (bool as_int : {true, false}) {
      try {
        if (as_int)
          file.int_attribute(name);
        else
          file.double_attribute(name);
        ADD_FAILURE() << name << " was read as one number";
      } catch (const DataError& e) {
        EXPECT_NE(std::string(e.what()).find(std::string("attribute '") + name + "'"),
                  std::string::npos)
            << e.what();
      }
    }
  }
  EXPECT_THROW(file.int_attribute("height"), DataError);  // not truncated to 8
  EXPECT_EQ(file.double_attribute("height"), 8.9);
  EXPECT_EQ(file.double_attribute("one"), 7.0);  // a one-element array is one number
}

}  // namespace
}  // namespace dp
