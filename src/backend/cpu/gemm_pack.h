// Packing for sgemm's loops: private to src/backend/cpu. Panels are the layouts the
// micro-kernels read: A in kGemmMr-row panels, B in kGemmNr-column panels, each k-major and
// zero-padded, so the kernels never test for edges inside their loops.
#pragma once
#include <cstddef>

namespace minitx::cpu::detail {

struct Operand {
  const float* data;
  std::size_t ld;
  bool trans;
  // Element (row, col) of op(X).
  float at(std::size_t row, std::size_t col) const { return trans ? data[col * ld + row] : data[row * ld + col]; }
};

// op(A)[i0 .. i0+rows, k0 .. k0+kc) → panels of kGemmMr rows. `out` needs 8 floats of slack at
// the end.
void pack_a(const Operand& a, std::size_t i0, std::size_t rows, std::size_t k0, std::size_t kc, float* out);

// op(B)[k0 .. k0+kc, j0 .. j0+cols) for one kGemmNr-wide panel (cols ≤ kGemmNr).
void pack_b_panel(const Operand& b, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t cols, float* panel);

}  // namespace minitx::cpu::detail
