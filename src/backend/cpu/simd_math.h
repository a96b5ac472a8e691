// Vectorised exp and the loops built on it (AVX2/FMA). Private to src/backend/cpu.
// Every element goes through the same 8-wide code (tails through a padded buffer), so a value's
// result never depends on where it sits in an array: this keeps rows batch-independent.
#pragma once
#include <cstddef>

namespace minitx::cpu::detail {

// row[j] = exp(row[j] - shift) for j < n; returns Σ row[j], summed in 8 lanes, lanes combined in
// a fixed order. Arguments below -87 give exactly 0.
float exp_shifted_sum(float* row, std::size_t n, float shift);

// out[i] = 1 / (1 + exp(-scale·in[i])), the logistic function.
void sigmoid_scaled(float* out, const float* in, std::size_t n, float scale);

}  // namespace minitx::cpu::detail
