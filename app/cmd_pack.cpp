// `dptrain pack`: original dataset files -> one packed HDF5 file (rank 0 only).
#include <boost/program_options.hpp>
#include <iostream>

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
      ("format", po::value(&options.format)->default_value("auto"),
       "cifar10 | mnist | fashion-mnist | auto")
      ("source", po::value(&options.source_dir)->required(),
       "directory with the original files (cifar-10-batches-bin, or the four IDX files)")
      ("output", po::value(&options.output_file)->required(), "packed HDF5 file to write");
  if (!parse_options(args, desc, "usage: dptrain pack --source DIR --output FILE.h5")) return 0;
  if (mpi.rank() != 0) return 0;  // one writer; other ranks have nothing to do
  data::PackSummary s = data::pack_dataset(options);
  log::info("packed {} from {} into {}: train {} test {} images of {}x{}x{}, {} classes, {:.1f} s",
            s.format, options.source_dir, s.output_file, s.train_count, s.test_count, s.height,
            s.width, s.channels, s.class_names.size(), s.seconds);
  return 0;
}

}  // namespace dp
