#include "dropout.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

// Box-Muller's log and sincos in float arithmetic that vectorizes (libm's
// calls do not): within ~2 ulp of the rounded function on the arguments the
// noise uses.
//
// log(u) for a positive normal float u: u = m * 2^e with m in [sqrt(1/2),
// sqrt(2)), log(m) = 2 atanh(t), t = (m - 1)/(m + 1), |t| < 0.1716, by its
// series to t^9 (the next term is below 2e-9 relative).
inline float log_pos(float u) {
    uint32_t b;
    std::memcpy(&b, &u, sizeof b);
    const int32_t e = static_cast<int32_t>(b - 0x3F3504F3u) >> 23;  // (0x3F3504F3: sqrt(1/2))
    const uint32_t mb = b - (static_cast<uint32_t>(e) << 23);
    float m;
    std::memcpy(&m, &mb, sizeof m);
    const float t = (m - 1.0f) / (m + 1.0f);
    const float t2 = t * t;
    const float p =
        1.0f + t2 * (1.0f / 3.0f + t2 * (1.0f / 5.0f + t2 * (1.0f / 7.0f + t2 * (1.0f / 9.0f))));
    return static_cast<float>(e) * 0.693147180559945309f + 2.0f * t * p;
}

// sin and cos of 2 pi a for a in [0, 1): the quadrant q = floor(4a), then
// x = (4a - q - 1/2) pi/2 in [-pi/4, pi/4) by Taylor series (to x^9 and x^8:
// below 3e-8), turned by pi/4 and by q quarter turns.
inline void sincos_2pi(float a, float& s_out, float& c_out) {
    const float a4 = a * 4.0f;
    const int q = static_cast<int>(a4);
    const float x = (a4 - static_cast<float>(q) - 0.5f) * 1.57079632679489662f;
    const float x2 = x * x;
    const float s = x * (1.0f + x2 * (-1.0f / 6.0f + x2 * (1.0f / 120.0f +
                    x2 * (-1.0f / 5040.0f + x2 * (1.0f / 362880.0f)))));
    const float c = 1.0f + x2 * (-0.5f + x2 * (1.0f / 24.0f + x2 * (-1.0f / 720.0f +
                    x2 * (1.0f / 40320.0f))));
    constexpr float kHalfSqrt2 = 0.707106781186547524f;
    const float S = (s + c) * kHalfSqrt2, C = (c - s) * kHalfSqrt2;  // (of x + pi/4)
    const float sgn_s = 1.0f - static_cast<float>(q & 2);
    const float sgn_c = 1.0f - static_cast<float>((q + 1) & 2);
    s_out = sgn_s * ((q & 1) ? C : S);
    c_out = sgn_c * ((q & 1) ? S : C);
}

constexpr int64_t kNormBlock = 256;  // pairs of normals per block (on the stack)

// The normals of generator outputs k0 + 1 .. k0 + cnt (cnt <= kNormBlock):
// z0[j] = rho cos(2 pi u2), z1[j] = rho sin(2 pi u2), rho = sqrt(-2 log u1),
// from 24-bit uniforms u1 in (0, 1) (|z| <= ~5.9: a tail of 3.6e-9 left out)
// and u2 in [0, 1) (Box-Muller, in float).
FD_CLONES void normal_pairs(float* __restrict z0, float* __restrict z1, int64_t k0, int64_t cnt,
                            uint64_t state) {
    constexpr float kInv24 = 1.0f / 16777216.0f;
    alignas(64) float u1[kNormBlock], u2[kNormBlock];
    for (int64_t j = 0; j < cnt; ++j) {
        const uint64_t r = mix(state + static_cast<uint64_t>(k0 + j + 1) * kGamma);
        u1[j] = (static_cast<float>(static_cast<uint32_t>(r) >> 8) + 0.5f) * kInv24;
        u2[j] = static_cast<float>(static_cast<uint32_t>(r >> 32) >> 8) * kInv24;
    }
    for (int64_t j = 0; j < cnt; ++j) {
        const float rho = std::sqrt(-2.0f * log_pos(u1[j]));
        float s, c;
        sincos_2pi(u2[j], s, c);
        z0[j] = rho * c;
        z1[j] = rho * s;
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
    // (Against libm's log, sin and cos per pair, measured on the Zen 4 VM at
    // 1 thread, min of 3: an MNIST 784-256-128-10 epoch with
    // GaussianNoise(0.05) on the input, Adam, 1415 -> 1124 ms; an Identity
    // stage's forward_train on 6000 x 784 zeros, 5.7 ns an element after.)
    if (n <= 0) return state;
    const int64_t pairs = (n + 1) / 2;
    parallel_chunks(pairs, kChunkPairs, [&](int64_t k0, int64_t k1) {
        alignas(64) float z0[kNormBlock], z1[kNormBlock];
        for (int64_t b = k0; b < k1; b += kNormBlock) {
            const int64_t cnt = std::min<int64_t>(kNormBlock, k1 - b);
            normal_pairs(z0, z1, b, cnt, state);
            for (int64_t j = 0; j < cnt; ++j) {
                for (int64_t h = 0; h < 2; ++h) {
                    const int64_t i = 2 * (b + j) + h;
                    if (i >= n) break;
                    const float z = h ? z1[j] : z0[j];
                    if (multiplicative) {
                        mask[i] = stddev * z + 1.0f;
                        out[i] = in[i] * mask[i];
                    } else {
                        mask[i] = 1.0f;
                        out[i] = in[i] + stddev * z;
                    }
                }
            }
        }
    });
    return state + static_cast<uint64_t>(pairs) * kGamma;
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
