#include "dropout.h"

#include "clones.h"
#include "threadpool.h"

namespace fastdense {

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;  // (SplitMix64's increment, rng.h)
constexpr int64_t kChunkPairs = 1 << 13;            // generator outputs per task

inline uint64_t mix(uint64_t z) {  // (SplitMix64::next's output function)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Pairs [k0, k1): elements 2k and 2k+1 (all inside n).
FD_CLONES void mask_pairs(float* __restrict mask, float* __restrict out,
                          const float* __restrict in, int64_t k0, int64_t k1, uint64_t state,
                          uint32_t threshold, float scale) {
    for (int64_t k = k0; k < k1; ++k) {
        const uint64_t r = mix(state + static_cast<uint64_t>(k + 1) * kGamma);
        const float m0 = static_cast<uint32_t>(r) >= threshold ? scale : 0.0f;
        const float m1 = static_cast<uint32_t>(r >> 32) >= threshold ? scale : 0.0f;
        mask[2 * k] = m0;
        mask[2 * k + 1] = m1;
        out[2 * k] = in[2 * k] * m0;
        out[2 * k + 1] = in[2 * k + 1] * m1;
    }
}

}  // namespace

uint64_t dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate,
                      uint64_t state) {
    if (n <= 0) return state;
    const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(rate) * 4294967296.0);
    const float scale = 1.0f / (1.0f - rate);
    const int64_t full = n / 2, pairs = (n + 1) / 2;
    parallel_chunks(full, kChunkPairs, [&](int64_t k0, int64_t k1) {
        mask_pairs(mask, out, in, k0, k1, state, threshold, scale);
    });
    if (pairs > full) {  // (an odd n: the last output's low half)
        const uint64_t r = mix(state + static_cast<uint64_t>(full + 1) * kGamma);
        mask[n - 1] = static_cast<uint32_t>(r) >= threshold ? scale : 0.0f;
        out[n - 1] = in[n - 1] * mask[n - 1];
    }
    return state + static_cast<uint64_t>(pairs) * kGamma;
}

}  // namespace fastdense
