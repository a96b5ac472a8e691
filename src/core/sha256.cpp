#include "minitx/core/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <vector>

#include "minitx/core/error.h"

namespace minitx {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool finished = false;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
    fail("sha256: OpenSSL could not initialise a SHA-256 context");
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(const void* data, std::size_t size) {
  MINITX_CHECK(!impl_->finished, "sha256: update after finish");
  if (size > 0 && EVP_DigestUpdate(impl_->ctx, data, size) != 1) fail("sha256: OpenSSL update failed");
}

Digest Sha256::finish() {
  MINITX_CHECK(!impl_->finished, "sha256: finish called twice");
  impl_->finished = true;
  Digest digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, digest.data(), &length) != 1 || length != digest.size())
    fail("sha256: OpenSSL finalisation failed");
  return digest;
}

std::string Sha256::finish_hex() { return to_hex(finish()); }

std::string to_hex(const Digest& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(digest.size() * 2, '0');
  for (std::size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kDigits[digest[i] >> 4];
    out[2 * i + 1] = kDigits[digest[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 hash;
  hash.update(data);
  return hash.finish_hex();
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) fail("{}: cannot open for hashing", path.string());
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), file)) > 0) hash.update(buffer.data(), got);
  const bool bad = std::ferror(file) != 0;
  std::fclose(file);
  if (bad) fail("{}: read error while hashing", path.string());
  return hash.finish_hex();
}

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace minitx
