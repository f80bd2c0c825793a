// Loss functions: per-sample values and the gradient that starts backprop.
// Formulas follow Keras 3 (JAX backend): probabilities are normalised and
// clipped to [eps, 1 - eps] with eps = 1e-7 where Keras clips, and the
// gradient is exactly the derivative of that clipped expression.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace fastdense {

enum class LossKind : int {
    CategoricalCrossentropy = 0,
    SparseCategoricalCrossentropy = 1,
    BinaryCrossentropy = 2,
    MeanSquaredError = 3,
};

constexpr float kEpsilon = 1e-7f;

struct LossSpec {
    LossKind kind = LossKind::CategoricalCrossentropy;
    bool from_logits = false;
};

// True when the loss gradient is taken with respect to the pre-activation z
// of the output layer (softmax + categorical crossentropy, sigmoid + binary
// crossentropy); the backward pass then runs with Activation::Linear.
bool loss_is_fused(const LossSpec& loss, Activation out_act);

// Computes per-sample losses and the gradient that starts backprop.
//   grad:   [B, U]  dL/dz when fused (see loss_is_fused), else dL/dy, for the
//                   batch loss mean_b(loss_b); may be nullptr (value only)
//   losses: [B]     per-sample loss values; may be nullptr
//   y:      [B, U]  output of the last layer (after its activation)
//   target: [B, U]  float targets, or nullptr for sparse losses
//   labels: [B]     int32 class ids for SparseCategoricalCrossentropy
//   weights: [B]    per-sample weights, or nullptr (all 1); Keras's reduction:
//                   the batch loss is sum_b(w_b * loss_b) / B
// Returns the sum of the (weighted) per-sample losses (in double).
double loss_forward_backward(float* grad, float* losses, const float* y,
                             const float* target, const int32_t* labels,
                             int64_t B, int64_t U, const LossSpec& loss,
                             Activation out_act, const float* weights = nullptr);

// The per-sample part of loss_forward_backward for rows [r0, r1) of a batch
// of B: the same gradient rows, and losses[b] (not optional) the same values,
// whose sum in row order (in double) is loss_forward_backward's result.
// Rows are independent: ranges may run on different threads.
void loss_rows(float* grad, float* losses, const float* y, const float* target,
               const int32_t* labels, int64_t r0, int64_t r1, int64_t B, int64_t U,
               const LossSpec& loss, Activation out_act, const float* weights);

}  // namespace fastdense
