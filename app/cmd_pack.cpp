// `dptrain pack`: original dataset files -> one packed HDF5 file (rank 0 only).
#include <boost/program_options.hpp>
#include <iostream>

#include "app/agreed_parse.h"
#include "app/commands.h"
#include "app/parse_options.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "data/packer.h"

namespace po = boost::program_options;

namespace dp {

int run_pack(const std::vector<std::string>& args, MpiSession& mpi) {
  data::PackOptions options;
  po::options_description desc("dptrain pack options");
  desc.add_options()
      ("help,h", "print this help")
      ("format", enum_option(options.format, "format"),
       "cifar10 | cifar100 | mnist | fashion-mnist | folder | auto")
      ("source", po::value(&options.source_dir)->required(),
       "directory with the original files (cifar-10-batches-bin, cifar-100-binary, the four "
       "IDX files, or a folder of images: DIR/train/<class>/*, DIR/test/<class>/* or "
       "DIR/<class>/*)")
      ("output", po::value(&options.output_file)->required(), "packed HDF5 file to write")
      ("labels", enum_option(options.labels, "labels"),
       "cifar100: fine (100 classes) | coarse (20 superclasses)")
      ("image-size", po::value(&options.image_size)->default_value(0),
       "folder: resize the shorter side to S (PIL's BILINEAR, byte for byte), then crop the "
       "centre SxS, as torchvision's Resize(S) + CenterCrop(S); 0: every image must have the "
       "first one's size")
      ("jpeg-draft", po::bool_switch(&options.jpeg_draft),
       "folder, with --image-size: decode JPEGs at 1/2, 1/4 or 1/8 scale in the IDCT when they "
       "are that many times larger, as PIL's Image.draft (much faster on large photos; not "
       "torchvision's default pixels)")
      ("test-fraction", po::value(&options.test_fraction)->default_value(0),
       "folder without train/ and test/: this share of each class goes to the test split")
      ("seed", unsigned_option(options.seed), "folder: seed of --test-fraction's split")
      ("channels", po::value(&options.channels)->default_value(3),
       "folder: 3 (RGB, as ImageFolder) or 1 (greyscale, PIL's convert(\"L\"))")
      ("threads", po::value(&options.threads)->default_value(0),
       "folder: decoding threads (0: every core this process may use)")
      ("skip-bad", po::bool_switch(&options.skip_bad),
       "folder: leave out unreadable or odd-sized images (listed in the log and the file's "
       "'skipped' attribute) instead of stopping")
      ("progress-every", po::value(&options.progress_seconds)->default_value(10),
       "folder: seconds between progress lines when stderr is not a terminal");
  if (!parse_on_every_rank([&] {
        return parse_options(args, desc, "usage: dptrain pack --source DIR --output FILE.h5",
                             &options.given);
      }))
    return 0;
  if (mpi.rank() != 0) return 0;  // one writer; other ranks have nothing to do
  data::PackSummary s = data::pack_dataset(options);
  if (!s.skipped.empty())
    log::info("pack: skipped {} bad image{} (listed above and in the file's 'skipped' attribute)",
              s.skipped.size(), s.skipped.size() == 1 ? "" : "s");
  // Sizes width x height, as the per-file lines give them.
  log::info(
      "packed {} from {} into {}: train {} test {} images of {}x{} pixels, {} channel{}, {} "
      "classes, {:.1f} s",
      enum_name(s.format), options.source_dir, s.output_file, s.train_count, s.test_count, s.width,
      s.height, s.channels, s.channels == 1 ? "" : "s", s.class_names.size(), s.seconds);
  return 0;
}

}  // namespace dp
