#include <doctest/doctest.h>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"

using namespace minitx;

TEST_CASE("sha256: FIPS 180-2 test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("sha256: streaming equals one shot, files hash like strings") {
  std::string data;
  for (int i = 0; i < 3'000'000; ++i) data.push_back(static_cast<char>(i * 7 + i / 256));
  Sha256 streamed;
  for (std::size_t i = 0; i < data.size(); i += 1000 + i % 77) streamed.update(std::string_view(data).substr(i, 1000 + i % 77));
  const std::string expected = sha256_hex(data);
  CHECK(streamed.finish_hex() == expected);

  TempDir dir;
  write_file_atomic(dir.path() / "blob", data);
  CHECK(sha256_file_hex(dir.path() / "blob") == expected);
  CHECK_ERROR_CONTAINS(sha256_file_hex(dir.path() / "missing"), "missing: cannot open");
}

TEST_CASE("sha256: misuse and hex validation") {
  Sha256 hash;
  hash.finish();
  CHECK_ERROR_CONTAINS(hash.update("x"), "update after finish");
  CHECK_ERROR_CONTAINS(hash.finish(), "finish called twice");
  CHECK(is_sha256_hex(sha256_hex("x")));
  CHECK_FALSE(is_sha256_hex(std::string(63, 'a')));
  CHECK_FALSE(is_sha256_hex(std::string(64, 'A')));
  CHECK_FALSE(is_sha256_hex(std::string(64, 'g')));
}
