#include "minitx/core/fault.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "minitx/core/error.h"

namespace minitx {

void fault_point(const char* name) {
  const char* wanted = std::getenv("MINITX_FAULT");
  if (wanted == nullptr || std::strcmp(wanted, name) != 0) return;
  const char* group = std::getenv("MINITX_FAULT_GROUP");
  if (group != nullptr && std::strcmp(group, "1") == 0) ::kill(0, SIGKILL);
  std::raise(SIGKILL);
}

std::optional<std::uint64_t> fault_disk_space() {
  const char* value = std::getenv("MINITX_FAULT_ENOSPC");
  if (value == nullptr) return std::nullopt;
  const std::string text = value;
  std::size_t used = 0;
  std::uint64_t bytes = 0;
  try {
    bytes = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || text.find_first_not_of("0123456789") != std::string::npos)
    fail("MINITX_FAULT_ENOSPC: expected a whole number of bytes, got '{}'", text);
  return bytes;
}

}  // namespace minitx
