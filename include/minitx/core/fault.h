// Named points where a test may kill the process, to prove that an interruption there leaves
// nothing that looks finished: when MINITX_FAULT equals the point's name, the process sends
// itself SIGKILL (MINITX_FAULT_GROUP=1: to its whole process group, as a power cut would stop
// Make and every stage it runs). Costs one getenv per point; points sit between file renames,
// never in loops.
#pragma once

namespace minitx {

void fault_point(const char* name);

}  // namespace minitx
