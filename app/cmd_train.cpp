// `dptrain train`: parse the configuration (command line over config file), then train.
#include "app/agreed_parse.h"
#include "app/commands.h"
#include "comm/mpi_session.h"
#include "train/config.h"
#include "train/preemption_signal.h"
#include "train/trainer.h"

namespace dp {

int run_train(const std::vector<std::string>& args, MpiSession& mpi,
              const PreemptionSignal& signal) {
  TrainConfig config;
  if (!parse_on_every_rank([&] { return parse_train_config(args, config); })) return 0;
  return train(config, mpi, signal);
}

}  // namespace dp
