// The avx512 instantiation of dense_simd.inc.  Compiled with avx512 flags
// (see kernels.cmake); everything lives in namespace fastdense::avx512.
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
namespace avx512 {
namespace {
#ifdef FASTDENSE_EMULATE_AVX512
// (a test build: the AVX-512 intrinsics emulated on AVX2, see avx512_emu.h)
#include "avx512_emu.h"
#endif
#define FD_VEC_WIDTH 16
#include "dense_simd.inc"
#undef FD_VEC_WIDTH
const DenseKernels kTable = {"avx512", forward, backward, fma_peak_gflops,
                           forward_rows, backward_rows, backward_rows_up,
                           forward_epi, step_row, act_elementwise};
}  // namespace

const DenseKernels& avx512_kernels() { return kTable; }
}  // namespace avx512
}  // namespace fastdense
