// Dropout's training mask, drawn from SplitMix64 (rng.h): output k of the
// generator (its counter state + (k+1) * 0x9E3779B97F4A7C15, mixed) gives
// the keep decisions of elements 2k (low 32 bits) and 2k+1 (high 32 bits):
// kept when those bits are >= rate * 2^32.  Every element depends only on
// the state and its index, so the pool computes the mask in chunks with the
// bits of one pass in order.
#pragma once
#include <cstdint>

namespace fastdense {

// mask[i] = kept ? 1/(1 - rate) : 0;   out[i] = in[i] * mask[i].
//   mask: [n]   out: [n]   in: [n]
// Returns the generator's state after the ceil(n/2) outputs it used.
uint64_t dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate,
                      uint64_t state);

}  // namespace fastdense
