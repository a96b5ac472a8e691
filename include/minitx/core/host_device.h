// MINITX_HD marks a function that host code and CUDA kernels share: __host__ __device__ when nvcc
// compiles the file, nothing for g++. A shared function gives the same bits on both sides only
// if every operation in it is exact or IEEE-rounded the same way; see sampling_math.h for how
// floating point is kept so.
#pragma once

#if defined(__CUDACC__)
#define MINITX_HD __host__ __device__ inline
#else
#define MINITX_HD inline
#endif
