// Finiteness checks: whether an array holds no NaN and no infinity. fit,
// evaluate and predict refuse such inputs before training on them (a clear
// ValueError instead of NaN weights); the check reads every value once, so
// on a large dataset it is split over the thread pool.
#pragma once
#include <cstdint>

namespace fastdense {

// True when none of the n values is NaN or +-inf. Large arrays are split
// over the pool (the answer does not depend on the split).
//   x: [n]
bool all_finite(const float* x, int64_t n);
bool all_finite(const double* x, int64_t n);

// The same, one thread: the reference the parallel version is tested
// against, and the path for small arrays.
//   x: [n]
bool all_finite_serial(const float* x, int64_t n);
bool all_finite_serial(const double* x, int64_t n);

}  // namespace fastdense
