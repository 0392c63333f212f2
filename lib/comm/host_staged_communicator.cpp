#include "comm/host_staged_communicator.h"

#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace dp {

namespace {

// The bucket's device buffer is written once, when the host reduction is complete; until then
// it keeps its local gradients, as the PendingReduction contract allows.
class StagedPendingMean : public PendingReduction {
 public:
  StagedPendingMean(std::unique_ptr<PendingReduction> host, DeviceCopier& copier,
                    const float* staged, float* device, int64_t count)
      : host_(std::move(host)), copier_(copier), staged_(staged), device_(device), count_(count) {}

  bool test() override {
    if (!done_ && host_->test()) copy_back();
    return done_;
  }
  void wait() override {
    if (done_) return;
    host_->wait();
    copy_back();
  }

 private:
  void copy_back() {
    copier_.to_device(staged_, device_, sizeof(float) * count_);
    done_ = true;
  }
  std::unique_ptr<PendingReduction> host_;
  DeviceCopier& copier_;
  const float* staged_;
  float* device_;
  int64_t count_;
  bool done_ = false;
};

class HostStagedCommunicator : public Communicator {
 public:
  HostStagedCommunicator(std::unique_ptr<Communicator> host, std::unique_ptr<DeviceCopier> copier)
      : host_(std::move(host)), copier_(std::move(copier)) {}

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string name() const override { return host_->name() + " (host-staged)"; }

  void allreduce_sum(float* data, int64_t count) override { staged_sum(data, count); }
  void allreduce_sum(double* data, int64_t count) override { staged_sum(data, count); }
  void allreduce_sum(int64_t* data, int64_t count) override { staged_sum(data, count); }

  std::unique_ptr<PendingReduction> start_allreduce_mean(float* data, int64_t count) override {
    // One staging buffer per bucket address: the reducer starts the same buckets every step,
    // and several are in flight at once, so they cannot share one.
    std::vector<float>& staged = bucket_staging_[data];
    staged.resize(count);
    copier_->to_host(data, staged.data(), sizeof(float) * count);
    return std::make_unique<StagedPendingMean>(host_->start_allreduce_mean(staged.data(), count),
                                               *copier_, staged.data(), data, count);
  }

  void broadcast(float* data, int64_t count, int root) override {
    std::vector<float> staged(count);
    if (rank() == root) copier_->to_host(data, staged.data(), sizeof(float) * count);
    host_->broadcast(staged.data(), count, root);
    if (rank() != root) copier_->to_device(staged.data(), data, sizeof(float) * count);
  }

  void allgather(const double* mine, int64_t count, double* all) override {
    std::vector<double> staged_mine(count), staged_all(count * size());
    copier_->to_host(mine, staged_mine.data(), sizeof(double) * count);
    host_->allgather(staged_mine.data(), count, staged_all.data());
    copier_->to_device(staged_all.data(), all, sizeof(double) * staged_all.size());
  }

  void barrier() override { host_->barrier(); }

 private:
  template <typename T>
  void staged_sum(T* data, int64_t count) {
    std::vector<T> staged(count);
    copier_->to_host(data, staged.data(), sizeof(T) * count);
    host_->allreduce_sum(staged.data(), count);
    copier_->to_device(staged.data(), data, sizeof(T) * count);
  }

  std::unique_ptr<Communicator> host_;
  std::unique_ptr<DeviceCopier> copier_;
  std::unordered_map<const float*, std::vector<float>> bucket_staging_;
};

}  // namespace

std::unique_ptr<Communicator> make_host_staged_communicator(std::unique_ptr<Communicator> host,
                                                            std::unique_ptr<DeviceCopier> copier) {
  DP_CHECK(host && copier, "host-staged communicator needs a host communicator and a copier");
  return std::make_unique<HostStagedCommunicator>(std::move(host), std::move(copier));
}

}  // namespace dp
