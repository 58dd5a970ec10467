// The MPI group: sharding, string all-gather, and the failure protocol of dist.hpp on MPI_COMM_WORLD.
//
// Collectives must pair up on every rank. A rank that fails skips straight to conclude(), whose first
// step is an allreduce of "ok"; the other ranks meet that allreduce either inside their next
// all_gather (which therefore starts with the same allreduce, and remembers that it saw a failure so
// that conclude() does not run it twice) or inside their own conclude(). Failure notices are small
// point-to-point messages polled between batches, so the others stop within one batch.
#include <mpi.h>

#include <cstdio>

#include "aciq/dist.hpp"

namespace aciq::dist {

namespace {

constexpr int kFailTag = 7301;

class MpiGroup : public Group {
 public:
  MpiGroup(int* argc, char*** argv) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("mpirun: MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiGroup() override {
    for (auto& r : sends_) MPI_Wait(&r, MPI_STATUS_IGNORE);
    MPI_Finalize();
  }
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }

  std::vector<std::string> all_gather(const std::string& mine) override {
    if (!all_ok(true)) {
      failure_seen_ = true;
      throw PeerFailed("another rank failed");
    }
    const int len = static_cast<int>(mine.size());
    std::vector<int> lens(static_cast<std::size_t>(size_)), offsets(lens.size());
    MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = total;
      total += lens[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR,
                   MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(offsets[r], lens[r]));
    return out;
  }

  void poll() override {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kFailTag, MPI_COMM_WORLD, &flag, &status);
    if (flag) throw PeerFailed("rank " + std::to_string(status.MPI_SOURCE) + " failed");
  }

  void report_failure() override {
    if (reported_) return;
    reported_ = true;
    static const int one = 1;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      sends_.emplace_back();
      MPI_Isend(&one, 1, MPI_INT, r, kFailTag, MPI_COMM_WORLD, &sends_.back());
    }
  }

  Outcome conclude(bool ok, bool peer, const std::string& message) override {
    bool all = false;
    if (!failure_seen_) all = all_ok(ok);
    // Every rank's status and message to rank 0, which reports the first real failure in rank order.
    const std::string mine = ok ? std::string() : std::string(1, peer ? 'p' : 'f') + message;
    const int len = static_cast<int>(mine.size());
    std::vector<int> lens(static_cast<std::size_t>(size_)), offsets(lens.size());
    MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = total;
      total += lens[r];
    }
    std::string gathered(static_cast<std::size_t>(rank_ == 0 ? total : 0), '\0');
    MPI_Gatherv(mine.data(), len, MPI_CHAR, gathered.data(), lens.data(), offsets.data(), MPI_CHAR, 0,
                MPI_COMM_WORLD);
    drain();
    if (ok && all) return {};
    if (rank_ != 0) return {1, ""};
    std::string first_peer;
    for (int r = 0; r < size_; ++r) {
      if (lens[r] == 0) continue;
      const std::string m = gathered.substr(offsets[r], lens[r]);
      if (m[0] == 'f') return {1, m.substr(1)};
      if (first_peer.empty()) first_peer = m.substr(1);
    }
    return {1, first_peer.empty() ? "a rank failed" : first_peer};
  }

 private:
  bool all_ok(bool ok) {
    int mine = ok ? 1 : 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all == 1;
  }
  // Receives every failure notice sent to this rank (poll() only probes), so none is left pending at
  // MPI_Finalize: which ranks reported is exchanged first, then each notice is received blocking.
  void drain() {
    const int mine = reported_ ? 1 : 0;
    std::vector<int> reported(static_cast<std::size_t>(size_));
    MPI_Allgather(&mine, 1, MPI_INT, reported.data(), 1, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_ || !reported[r]) continue;
      int value = 0;
      MPI_Recv(&value, 1, MPI_INT, r, kFailTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  }

  int rank_ = 0, size_ = 1;
  bool failure_seen_ = false;
  bool reported_ = false;
  std::vector<MPI_Request> sends_;
};

}  // namespace

std::unique_ptr<Group> make_mpi_group(int* argc, char*** argv) {
  return std::make_unique<MpiGroup>(argc, argv);
}

}  // namespace aciq::dist
