#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dp

namespace dp {
namespace {

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

}  // namespace
}  // namespace dp
