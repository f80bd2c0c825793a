#include "finite.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "threadpool.h"

namespace fastdense {
namespace {

// A float is finite when its exponent bits are not all ones; testing the
// bits keeps the loop branch-free, so it vectorizes.
template <class T> struct ExponentBits;
template <> struct ExponentBits<float> {
    using U = uint32_t;
    static constexpr U mask = 0x7f800000u;
};
template <> struct ExponentBits<double> {
    using U = uint64_t;
    static constexpr U mask = 0x7ff0000000000000ull;
};

template <class T>
inline typename ExponentBits<T>::U nonfinite_bits(const T* x, int64_t n) {
    using E = ExponentBits<T>;
    typename E::U bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        typename E::U u;
        std::memcpy(&u, x + i, sizeof u);
        bad |= static_cast<typename E::U>((u & E::mask) == E::mask);
    }
    return bad;
}

// Below this many bytes one thread answers sooner than waking the pool.
constexpr int64_t kParallelBytes = int64_t{1} << 20;
// Each task checks blocks of this many bytes and stops at the first bad one.
constexpr int64_t kBlockBytes = int64_t{64} << 10;

template <class T>
bool serial(const T* x, int64_t n) {
    const int64_t block = kBlockBytes / static_cast<int64_t>(sizeof(T));
    for (int64_t i = 0; i < n; i += block)
        if (nonfinite_bits(x + i, std::min(block, n - i))) return false;
    return true;
}

template <class T>
bool parallel(const T* x, int64_t n) {
    const int64_t bytes = n * static_cast<int64_t>(sizeof(T));
    const int64_t nt = std::min<int64_t>(get_num_threads(), bytes / kParallelBytes);
    if (nt <= 1) return serial(x, n);
    std::atomic<bool> bad{false};
    const int64_t block = kBlockBytes / static_cast<int64_t>(sizeof(T));
    parallel_for(nt, [&](int64_t t) {
        const int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
        for (int64_t i = i0; i < i1 && !bad.load(std::memory_order_relaxed); i += block)
            if (nonfinite_bits(x + i, std::min(block, i1 - i)))
                bad.store(true, std::memory_order_relaxed);
    });
    return !bad.load();
}

}  // namespace

bool all_finite(const float* x, int64_t n) { return parallel(x, n); }
bool all_finite(const double* x, int64_t n) { return parallel(x, n); }
bool all_finite_serial(const float* x, int64_t n) { return serial(x, n); }
bool all_finite_serial(const double* x, int64_t n) { return serial(x, n); }

}  // namespace fastdense
