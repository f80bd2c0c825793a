// Kernel selection (compiled with baseline flags only).
//   x86-64: avx512 (F+BW+DQ+VL, OS-enabled zmm state) > avx2 (AVX2+FMA) > generic.
//   elsewhere: generic only.
// FASTDENSE_ISA=generic|avx2|avx512 forces a path; if the CPU lacks it, the best
// available lower path is used.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define FD_X86 1
namespace fastdense {
namespace avx2 { const DenseKernels& avx2_kernels(); }
namespace avx512 { const DenseKernels& avx512_kernels(); }
}  // namespace fastdense
#endif

namespace fastdense {
namespace {

enum Level { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

#if defined(FD_X86)
unsigned long long xgetbv0() {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

int cpu_level() {
#if defined(FD_X86)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx") || !__builtin_cpu_supports("avx2") ||
        !__builtin_cpu_supports("fma"))
        return kGeneric;
    // OSXSAVE is implied by the builtin's AVX check in gcc >= 8; verify the OS
    // saves YMM (bits 1,2) and, for AVX-512, opmask/ZMM state (bits 5,6,7).
    const unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return kGeneric;
#ifdef FASTDENSE_EMULATE_AVX512
    return kAvx512;  // (a test build: the avx512 path emulated on AVX2)
#endif
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        (xcr0 & 0xE6) == 0xE6)
        return kAvx512;
    return kAvx2;
#else
    return kGeneric;
#endif
}

const DenseKernels& table(int level) {
#if defined(FD_X86)
    if (level >= kAvx512) return avx512::avx512_kernels();
    if (level >= kAvx2) return avx2::avx2_kernels();
#endif
    (void)level;
    return generic_kernels();
}

int level_of(const char* name) {
    if (!name) return -1;
    if (std::strcmp(name, "generic") == 0) return kGeneric;
    if (std::strcmp(name, "avx2") == 0) return kAvx2;
    if (std::strcmp(name, "avx512") == 0) return kAvx512;
    return -1;
}

int max_level() {
    static const int lvl = cpu_level();
    return lvl;
}

std::atomic<const DenseKernels*> g_active{nullptr};

const DenseKernels* initial() {
    int lvl = max_level();
    if (const char* e = std::getenv("FASTDENSE_ISA")) {
        int want = level_of(e);
        if (want >= 0 && want < lvl) lvl = want;
    }
    return &table(lvl);
}

}  // namespace

const DenseKernels& active_kernels() {
    const DenseKernels* k = g_active.load(std::memory_order_acquire);
    if (!k) {
        const DenseKernels* init = initial();
        const DenseKernels* expected = nullptr;
        g_active.compare_exchange_strong(expected, init);
        k = g_active.load(std::memory_order_acquire);
    }
    return *k;
}

bool set_kernels(const char* name) {
    const int want = level_of(name);
    if (want < 0 || want > max_level()) return false;
    g_active.store(&table(want), std::memory_order_release);
    return true;
}

const char* available_kernels() {
    switch (max_level()) {
        case kAvx512: return "generic,avx2,avx512";
        case kAvx2: return "generic,avx2";
        default: return "generic";
    }
}

}  // namespace fastdense
