// The single-process group and the choice between it and MPI.
#include <cstdlib>

#include "aciq/dist.hpp"

namespace aciq::dist {

#ifdef ACIQ_HAVE_MPI
std::unique_ptr<Group> make_mpi_group(int* argc, char*** argv);  // mpi_group.cpp
#endif

std::pair<std::int64_t, std::int64_t> Group::shard(std::int64_t begin, std::int64_t end) const {
  const std::int64_t n = end - begin, r = rank(), s = size();
  // n * r fits: n is a sample count (< 2^40) and s a rank count (< 2^20).
  return {begin + n * r / s, begin + n * (r + 1) / s};
}

Group::Outcome Group::conclude(bool ok, bool /*peer*/, const std::string& message) {
  return ok ? Outcome{} : Outcome{1, message};
}

bool mpi_available() {
#ifdef ACIQ_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Group> make_group(int* argc, char*** argv) {
  // Launched by an MPI launcher: Open MPI and PMIx set these for every rank.
  const bool launched =
      std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
#ifdef ACIQ_HAVE_MPI
  if (launched) return make_mpi_group(argc, argv);
#else
  if (launched) {
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (size && std::string(size) != "1") {
      fail(
          "mpirun: this aciq was built without MPI (install libopenmpi-dev and rebuild); each rank would "
          "redo the whole job");
    }
  }
#endif
  return std::make_unique<Group>();
}

}  // namespace aciq::dist
