// Unpacking an archive onto disk, safe by construction: each member path is walked one
// component at a time from an open directory with O_NOFOLLOW, files are created new (O_EXCL),
// and no link of any kind is created or followed. Whatever the archive holds, and whatever is
// already under the root, nothing is written outside it. Only regular files and directories
// are unpacked; any other member is an error.
#pragma once
#include <filesystem>
#include <string_view>
#include <vector>

#include "minitx/core/tar.h"

namespace minitx {

// Writes `entries` under the existing directory `root`; `what` names the archive in errors. On
// an error, what was written so far stays under `root` for the caller to remove.
void extract_tar(const std::vector<TarEntry>& entries, const std::filesystem::path& root, std::string_view what);

}  // namespace minitx
