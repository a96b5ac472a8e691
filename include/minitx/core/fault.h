// Named points where a test may kill the process, to prove that an interruption there leaves
// nothing that looks finished: when MINITX_FAULT equals the point's name, the process sends
// itself SIGKILL (MINITX_FAULT_GROUP=1: to its whole process group, as a power cut would stop
// Make and every stage it runs). Costs one getenv per point; points sit between file renames,
// never in loops.
//
// MINITX_FAULT_ENOSPC=N stands for a full disk, which a test cannot make without root (a small
// tmpfs): every output of AtomicFile fails as a write into a full file system does, with ENOSPC,
// once it would grow past N bytes; its first N bytes reach the disk first.
#pragma once
#include <cstdint>
#include <optional>

namespace minitx {

void fault_point(const char* name);

// N of MINITX_FAULT_ENOSPC; nullopt when it is not set. Anything but a whole number is an error.
std::optional<std::uint64_t> fault_disk_space();

}  // namespace minitx
