// SHA-256 through OpenSSL's EVP interface, streamed so that files of any size hash in
// constant memory.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace minitx {

using Digest = std::array<std::uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  Digest finish();            // the object can't be updated afterwards
  std::string finish_hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string to_hex(const Digest& digest);
std::string sha256_hex(std::string_view data);
// Hashes a file in 1 MiB chunks; throws an Error naming the file when it can't be read.
std::string sha256_file_hex(const std::filesystem::path& path);
// True for exactly 64 lowercase hexadecimal digits, the form we pin and print.
bool is_sha256_hex(std::string_view text);

}  // namespace minitx
