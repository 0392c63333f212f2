// What a checkpoint records of its training data, and the differences a resume or an
// evaluation is refused for.
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/trained_data.h"

namespace dp {
namespace {

TrainedData cifar_like() {
  return {{"cat", "dog", "ship"},
          500,
          {"data_batch_1 ab12", "meta cd34"},
          {0.4914, 0.48216, 0.44653},
          {0.24703, 0.24349, 0.26159}};
}

TEST(TrainedData, TheSameDataPassesAndEachDifferenceIsNamed) {
  CheckpointMeta meta;
  record_trained_data(cifar_like(), meta);
  EXPECT_EQ(trained_data_difference(meta, cifar_like()), "");

  TrainedData renamed = cifar_like();
  renamed.class_names[1] = "wolf";
  EXPECT_EQ(trained_data_difference(meta, renamed),
            "class 1 is 'dog' in the checkpoint, 'wolf' in --data");
  TrainedData fewer = cifar_like();
  fewer.class_names.pop_back();
  EXPECT_EQ(class_names_difference(meta, fewer.class_names),
            "3 classes in the checkpoint, 2 in --data");
  TrainedData bigger = cifar_like();
  bigger.train_size = 600;
  EXPECT_EQ(trained_data_difference(meta, bigger),
            "500 training images in the checkpoint, 600 in --data");
  TrainedData repacked = cifar_like();
  repacked.sources[0] = "data_batch_1 ff00";
  EXPECT_EQ(trained_data_difference(meta, repacked),
            "another data_batch_1 in --data than the checkpoint's (its sha256 in the 'sources' "
            "attribute differs)");
  // The same images from other files (a .gz instead of the unpacked one): not compared.
  TrainedData gzipped = cifar_like();
  gzipped.sources[0] = "data_batch_1.gz ee11";
  EXPECT_EQ(trained_data_difference(meta, gzipped), "");
  // A user's own file has no sources: nothing to compare them with.
  TrainedData own = cifar_like();
  own.sources.clear();
  EXPECT_EQ(trained_data_difference(meta, own), "");
}

TEST(TrainedData, NamesHoldingNewlinesOrBackslashesStayApart) {
  CheckpointMeta meta;
  record_trained_data({{"a\nb", "c"}, 1, {}, {}, {}}, meta);
  EXPECT_EQ(class_names_difference(meta, {"a\nb", "c"}), "");
  EXPECT_EQ(class_names_difference(meta, {"a", "b\nc"}),
            "class 0 is 'a\nb' in the checkpoint, 'a' in --data");
  record_trained_data({{"x\\", "n"}, 1, {}, {}, {}}, meta);
  EXPECT_NE(class_names_difference(meta, {"x\n"}), "");
}

TEST(TrainedData, ACheckpointThatRecordedNoneOfItPasses) {
  const CheckpointMeta older;  // written before checkpoints recorded their data
  EXPECT_EQ(trained_data_difference(older, cifar_like()), "");
  EXPECT_TRUE(recorded_normalization(older, 3, "old.h5").mean.empty());
}

// Every double reads back as itself: eval normalises exactly as the run did.
TEST(TrainedData, NormalizationStatisticsReadBackBitForBit) {
  TrainedData data = cifar_like();
  data.mean[2] = 0.1 + 0.2;  // no short decimal
  CheckpointMeta meta;
  record_trained_data(data, meta);
  const Normalization stats = recorded_normalization(meta, 3, "c.h5");
  EXPECT_EQ(stats.mean, data.mean);
  EXPECT_EQ(stats.std, data.std);
  EXPECT_THROW(recorded_normalization(meta, 1, "c.h5"), DataError);
  meta.strings["normalize_std"] = "0.2 0.2 x";
  EXPECT_THROW(recorded_normalization(meta, 3, "c.h5"), DataError);
}

}  // namespace
}  // namespace dp
