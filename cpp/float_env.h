// The floating-point environment the engine computes in.
//
// Keras's backends train and predict with subnormal floats flushed to zero
// (TensorFlow and JAX's XLA CPU runtime set FTZ and DAZ in every thread they
// compute on), and so does the engine: RMSprop's and Adam's velocities of
// rarely-used weights decay into the subnormal range within a few epochs,
// and every operation on a subnormal then takes a microcode assist (MNIST
// workflow, 2 threads, Intel Xeon VM: epochs 1-6 took 372 406 476 479 515
// 495 ms without flushing, 386 416 375 372 370 380 ms with it).
//
//   FlushDenormals  RAII: FTZ + DAZ (x86 MXCSR) or FZ (Arm FPCR) in this
//                   thread while it lives, the caller's setting restored after
//                   (so nothing leaks into the embedding program).
//   float_env_get() / float_env_set(e)
//                   the mode bits (rounding, flush), without the sticky
//                   exception flags: the thread pool's workers take the
//                   posting thread's, so results do not depend on which
//                   thread runs a task.
//
// Other CPUs: no-ops (IEEE subnormals, as numpy computes).
#pragma once
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define FASTDENSE_FENV_X86 1
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define FASTDENSE_FENV_ARM64 1
#endif

namespace fastdense {

#if defined(FASTDENSE_FENV_X86)
constexpr uint32_t kFenvModeMask = 0xFFC0u;  // MXCSR: DAZ, masks, rounding, FTZ
constexpr uint32_t kFenvFlush = 0x8040u;     // FTZ (bit 15) | DAZ (bit 6)
inline uint32_t float_env_get() { return _mm_getcsr() & kFenvModeMask; }
inline void float_env_set(uint32_t e) {
    _mm_setcsr((_mm_getcsr() & ~kFenvModeMask) | (e & kFenvModeMask));
}
#elif defined(FASTDENSE_FENV_ARM64)
constexpr uint32_t kFenvFlush = 1u << 24;  // FPCR.FZ
inline uint32_t float_env_get() {
    uint64_t r;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(r));
    return static_cast<uint32_t>(r);
}
inline void float_env_set(uint32_t e) {
    const uint64_t r = e;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(r));
}
#else
constexpr uint32_t kFenvFlush = 0u;
inline uint32_t float_env_get() { return 0u; }
inline void float_env_set(uint32_t) {}
#endif

class FlushDenormals {
public:
    FlushDenormals() : saved_(float_env_get()) {
        if ((saved_ & kFenvFlush) != kFenvFlush) float_env_set(saved_ | kFenvFlush);
    }
    ~FlushDenormals() {
        if (float_env_get() != saved_) float_env_set(saved_);
    }
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;

private:
    uint32_t saved_;
};

}  // namespace fastdense
