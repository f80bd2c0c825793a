#include "dropout.h"

#include <cmath>

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

namespace {
// Calls f(k, r) for the generator outputs k of elements [2k, 2k+1] of n (the
// last pair of an odd n has one element: f must check), split over the pool.
template <class F>
uint64_t for_pairs(int64_t n, uint64_t state, F&& f) {
    if (n <= 0) return state;
    const int64_t pairs = (n + 1) / 2;
    parallel_chunks(pairs, kChunkPairs, [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) f(k, mix(state + static_cast<uint64_t>(k + 1) * kGamma));
    });
    return state + static_cast<uint64_t>(pairs) * kGamma;
}
}  // namespace

uint64_t gaussian_mask(float* mask, float* out, const float* in, int64_t n, float stddev,
                       bool multiplicative, uint64_t state) {
    // In float, from 24-bit uniforms (exact in float): u1 in (0, 1), so the
    // log is finite and |z| <= ~5.9 (a tail of 3.6e-9 left out). (Against the
    // double version: an MNIST epoch with GaussianNoise on the input went from
    // 1942 to 1479 ms at 1 thread.)
    constexpr float kTwoPi = 6.2831853071795864769f;
    constexpr float kInv24 = 1.0f / 16777216.0f;
    return for_pairs(n, state, [&](int64_t k, uint64_t r) {
        const float u1 = (static_cast<float>(static_cast<uint32_t>(r) >> 8) + 0.5f) * kInv24;
        const float u2 = static_cast<float>(static_cast<uint32_t>(r >> 32) >> 8) * kInv24;
        const float rho = std::sqrt(-2.0f * std::log(u1));
        const float z[2] = {rho * std::cos(kTwoPi * u2), rho * std::sin(kTwoPi * u2)};
        for (int64_t j = 0; j < 2 && 2 * k + j < n; ++j) {
            const int64_t i = 2 * k + j;
            if (multiplicative) {
                mask[i] = stddev * z[j] + 1.0f;
                out[i] = in[i] * mask[i];
            } else {
                mask[i] = 1.0f;
                out[i] = in[i] + stddev * z[j];
            }
        }
    });
}

uint64_t alpha_dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate,
                            uint64_t state) {
    const double alpha = 1.6732632423543772848170429916717;
    const double scale = 1.0507009873554804934193349852946;
    const double alpha_p = -alpha * scale;
    const double rate_d = static_cast<double>(rate);
    // (a and b in double, then float, as Keras's Python floats meet float32)
    const double a_d = std::pow((1.0 - rate_d) * (1.0 + rate_d * alpha_p * alpha_p), -0.5);
    const float a = static_cast<float>(a_d);
    const float b = static_cast<float>(-a_d * alpha_p * rate_d);
    const float dropped = a * static_cast<float>(alpha_p) + b;
    const uint32_t threshold = static_cast<uint32_t>(rate_d * 4294967296.0);
    return for_pairs(n, state, [&](int64_t k, uint64_t r) {
        const bool keep[2] = {static_cast<uint32_t>(r) >= threshold,
                              static_cast<uint32_t>(r >> 32) >= threshold};
        for (int64_t j = 0; j < 2 && 2 * k + j < n; ++j) {
            const int64_t i = 2 * k + j;
            mask[i] = keep[j] ? a : 0.0f;
            out[i] = keep[j] ? a * in[i] + b : dropped;
        }
    });
}

}  // namespace fastdense
