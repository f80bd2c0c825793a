// Normalization of each row of a [B, C] matrix over its C features (Keras 3's
// LayerNormalization and RMSNormalization), in one of three modes:
//   Layer:          y = (x - mean) * r * gamma + beta,  r = 1/sqrt(var + eps)
//                   (Keras's form: y = x * inv + (beta - mean * inv), inv = r * gamma)
//   VarianceScale:  y = x * r * gamma,  r = 1/sqrt(var + eps)
//                   (LayerNormalization(rms_scaling=True): scaled by the row's
//                   variance, not its mean square, as Keras 3 computes it)
//   RMS:            y = x * r * gamma,  r = 1/sqrt(mean(x^2) + eps)
//                   (RMSNormalization)
//   Unit:           y = x * r,  r = min(1/sqrt(sum(x^2)), 1e12)
//                   (UnitNormalization: Keras's L2 normalize, epsilon 1e-12;
//                   no gamma or beta, and no epsilon of its own)
// mean and var are the row's mean and biased variance. gamma / beta may be
// nullptr (1 and 0). The same map in training and inference: it keeps no
// running statistics.
#pragma once
#include <cstdint>

namespace fastdense {

enum class NormMode : int { Layer = 0, VarianceScale = 1, RMS = 2, Unit = 3 };
constexpr int kNumNormModes = 4;

// Forward.
//   y: [B, C]   stats: [2, B] (out) per row: the centre subtracted for the
//   statistic (the mean; 0 in the RMS and Unit modes), then r
//   x: [B, C]   gamma: [C] or nullptr   beta: [C] or nullptr (Layer mode only)
void layernorm_forward(float* y, float* stats, const float* x, const float* gamma,
                       const float* beta, int64_t B, int64_t C, float epsilon, NormMode mode);

// Backward through the row statistics.
//   dx: [B, C] or nullptr (skip)   dgamma: [C] or nullptr   dbeta: [C] or nullptr
//   dy: [B, C]   x: [B, C] the forward input   stats: [2, B] from the forward
//   gamma: [C] or nullptr
void layernorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,
                        const float* x, const float* stats, const float* gamma, int64_t B,
                        int64_t C, NormMode mode);

}  // namespace fastdense
