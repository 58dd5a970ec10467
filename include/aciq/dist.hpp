// Data-parallel execution: the process group a command runs in — one process, or the ranks of an MPI
// job (mpirun) when aciq was built with MPI. Ranks take contiguous, deterministic shards of the
// selected samples; their partial results (exactly mergeable statistics, top-k counts) are combined so
// that the result does not depend on the number of ranks (docs/scaling.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::dist {

// Thrown on a rank when another rank failed; the failing rank's own message is what gets printed.
class PeerFailed : public Error {
 public:
  using Error::Error;
};

// Failure protocol (no hang, one error line): a rank that fails calls report_failure(), which the
// others see at their next poll() (between batches) or collective; every rank then calls conclude()
// exactly once, which returns the exit code and, on rank 0 only, the first failing rank's message.
class Group {
 public:
  virtual ~Group() = default;
  [[nodiscard]] virtual int rank() const { return 0; }
  [[nodiscard]] virtual int size() const { return 1; }
  [[nodiscard]] bool leader() const { return rank() == 0; }
  // This rank's part of [begin, end): rank r gets [begin + r n / size, begin + (r + 1) n / size).
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> shard(std::int64_t begin, std::int64_t end) const;
  // Collective: every rank's string, in rank order, on every rank. Throws PeerFailed if a rank failed.
  virtual std::vector<std::string> all_gather(const std::string& mine) { return {mine}; }
  // Between batches: throws PeerFailed if another rank reported a failure. Cheap.
  virtual void poll() {}
  // This rank failed: tell the others.
  virtual void report_failure() {}
  struct Outcome {
    int exit_code = 0;
    std::string message;  // what this rank prints after "aciq: error: " (empty: nothing)
  };
  // Collective, once, at the end of the command. `peer` marks a failure that is only a PeerFailed.
  virtual Outcome conclude(bool ok, bool peer, const std::string& message);
};

// An MPI group when launched by mpirun and built with MPI (MPI is initialized here and finalized when
// the group is destroyed); otherwise the single process. Never initializes MPI outside mpirun.
std::unique_ptr<Group> make_group(int* argc, char*** argv);

// Whether this binary was built with MPI support.
bool mpi_available();

}  // namespace aciq::dist
