// Dropout's training mask, drawn from SplitMix64 (rng.h): output k of the
// generator (its counter state + (k+1) * 0x9E3779B97F4A7C15, mixed) gives
// the keep decisions of elements 2k (low 32 bits) and 2k+1 (high 32 bits):
// kept when those bits are >= rate * 2^32.  Every element depends only on
// the state and its index, so the pool computes the mask in chunks with the
// bits of one pass in order.
#pragma once
#include <cstdint>

namespace fastdense {

// The noise a stage's output gets while training, besides Dropout (the
// Keras layer each stands for; the parameter is stddev or rate).
enum class NoiseKind : int {
    None = 0,
    Gaussian = 1,         // GaussianNoise(stddev)
    GaussianDropout = 2,  // GaussianDropout(rate): stddev sqrt(rate / (1 - rate))
    AlphaDropout = 3,     // AlphaDropout(rate)
};
constexpr int kNumNoiseKinds = 4;

// mask[i] = kept ? 1/(1 - rate) : 0;   out[i] = in[i] * mask[i].
//   mask: [n]   out: [n]   in: [n]
// Returns the generator's state after the ceil(n/2) outputs it used.
uint64_t dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate,
                      uint64_t state);

// The other training-time noise of Keras's regularization layers, with the
// same counter scheme: generator output k gives elements 2k and 2k+1.
//
// Gaussian noise, z_i standard normal (Box-Muller in float on the top 24
// bits of output k's two 32-bit halves: z_2k = rho cos(theta),
// z_2k+1 = rho sin(theta), with the log and sincos as polynomials that
// vectorize (no FMA contraction: every ISA clone does the same float operations)):
//   additive (GaussianNoise):         mask[i] = 1;  out[i] = in[i] + stddev * z_i
//   multiplicative (GaussianDropout): mask[i] = stddev * z_i + 1;  out[i] = in[i] * mask[i]
//   mask: [n]   out: [n]   in: [n]
uint64_t gaussian_mask(float* mask, float* out, const float* in, int64_t n, float stddev,
                       bool multiplicative, uint64_t state);

// AlphaDropout: kept as dropout_mask decides; Keras's affine map keeps the
// mean and variance of SELU activations:
//   mask[i] = kept ? a : 0;   out[i] = kept ? a * in[i] + b : a * alpha' + b
// with alpha' = -alpha * scale (SELU's), a = ((1 - rate)(1 + rate alpha'^2))^-1/2,
// b = -a alpha' rate.
//   mask: [n]   out: [n]   in: [n]
uint64_t alpha_dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate,
                            uint64_t state);

}  // namespace fastdense
