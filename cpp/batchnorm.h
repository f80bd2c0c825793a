// Batch normalization over the rows of a [B, C] matrix (one channel per
// column), with Keras 3's formula: y = x * inv + (beta - mean * inv), where
// inv = gamma / sqrt(variance + epsilon). Training uses the batch's mean and
// biased variance and moves the running statistics
// (moving = moving * momentum + batch * (1 - momentum)); inference uses the
// running statistics. gamma / beta may be nullptr (scale=False /
// center=False: 1 and 0).
#pragma once
#include <cstdint>

namespace fastdense {

// Training forward.
//   y: [B, C]   mean: [C] batch mean (out)   rstd: [C] 1/sqrt(var + eps) (out)
//   moving_mean: [C], moving_var: [C] (updated in place)
//   x: [B, C]   gamma: [C] or nullptr   beta: [C] or nullptr
//   scratch: [2C] doubles
void batchnorm_forward_train(float* y, float* mean, float* rstd, float* moving_mean,
                             float* moving_var, const float* x, const float* gamma,
                             const float* beta, int64_t B, int64_t C, float epsilon,
                             float momentum, float one_minus_momentum, double* scratch);

// Inference forward with the running statistics.
//   y: [B, C]   x: [B, C]   gamma, beta: [C] or nullptr
//   moving_mean, moving_var: [C]
void batchnorm_forward_infer(float* y, const float* x, const float* gamma, const float* beta,
                             const float* moving_mean, const float* moving_var, int64_t B,
                             int64_t C, float epsilon);

// Training backward (through the batch statistics).
//   dx: [B, C] or nullptr (skip)   dgamma: [C] or nullptr   dbeta: [C] or nullptr
//   dy: [B, C]   x: [B, C] forward input   mean, rstd: [C] from the forward
//   gamma: [C] or nullptr   scratch: [4C] doubles
void batchnorm_backward_train(float* dx, float* dgamma, float* dbeta, const float* dy,
                              const float* x, const float* mean, const float* rstd,
                              const float* gamma, int64_t B, int64_t C, double* scratch);

// Backward of the inference map (a frozen layer: the statistics are constants).
//   dx: [B, C]   dy: [B, C]   gamma: [C] or nullptr   moving_var: [C]
void batchnorm_backward_infer(float* dx, const float* dy, const float* gamma,
                              const float* moving_var, int64_t B, int64_t C, float epsilon);

}  // namespace fastdense
