// A small seeded generator (SplitMix64) for the per-epoch shuffle, so the
// batch order depends only on the seed, not on the platform's std library.
#pragma once
#include <cstdint>

namespace fastdense {

struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform integer in [0, bound) without modulo bias (Lemire's method).
    uint64_t below(uint64_t bound) {
        __uint128_t m = static_cast<__uint128_t>(next()) * bound;
        uint64_t lo = static_cast<uint64_t>(m);
        if (lo < bound) {
            const uint64_t t = (0 - bound) % bound;
            while (lo < t) {
                m = static_cast<__uint128_t>(next()) * bound;
                lo = static_cast<uint64_t>(m);
            }
        }
        return static_cast<uint64_t>(m >> 64);
    }
};

// Fisher-Yates permutation of 0..n-1.
//   order: [n]
inline void permutation(int64_t* order, int64_t n, uint64_t seed) {
    SplitMix64 rng(seed);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    for (int64_t i = n - 1; i > 0; --i) {
        const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
        const int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

}  // namespace fastdense
