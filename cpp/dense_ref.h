// Naive triple-loop reference implementations of the dense kernels (for tests).
// Same semantics as DenseKernels::forward / backward in kernels.h.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace fastdense {

void dense_forward_naive(float* y, const float* x, const float* w, const float* b,
                         int64_t B, int64_t in, int64_t out, Activation act);

void dense_backward_naive(float* dx, float* dw, float* db, float* dz, const float* y,
                          const float* x, const float* w, int64_t B, int64_t in,
                          int64_t out, Activation act);

}  // namespace fastdense
