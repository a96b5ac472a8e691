// GPU tests: each compares a CUDA op with the CPU reference of the same op. On a machine without
// a GPU (or a build without CUDA) they are skipped, and doctest counts them as skipped, never as
// passed. Their names start with "gpu: " so that `make test-gpu` can select them.
#pragma once
#include <doctest/doctest.h>

#include "minitx/core/build_info.h"

namespace minitx::test {

inline bool has_gpu() {
  static const bool yes = !cuda_devices().empty();
  return yes;
}

}  // namespace minitx::test

#define GPU_TEST_CASE(name) TEST_CASE("gpu: " name * doctest::skip(!::minitx::test::has_gpu()))
