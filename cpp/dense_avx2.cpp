// The avx2 instantiation of dense_simd.inc.  Compiled with avx2 flags
// (see kernels.cmake); everything lives in namespace fastdense::avx2.
#if defined(__GNUC__) && !defined(__clang__)
// gcc 12 warns about its own _mm512_undefined_ps() inside the intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <chrono>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels.h"
#include "threadpool.h"

namespace fastdense {
namespace avx2 {
namespace {
#define FD_VEC_WIDTH 8
#include "dense_simd.inc"
#undef FD_VEC_WIDTH
const DenseKernels kTable = {"avx2", forward, backward, fma_peak_gflops,
                           forward_rows, backward_rows, backward_rows_up,
                           forward_epi, step_row, act_elementwise};
}  // namespace

const DenseKernels& avx2_kernels() { return kTable; }
}  // namespace avx2
}  // namespace fastdense
