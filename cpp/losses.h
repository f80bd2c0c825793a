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

// One output's loss in a model with several outputs: the network's output
// holds the outputs' columns side by side, the targets theirs.
struct LossHead {
    LossSpec loss;
    int64_t col = 0, units = 0;  // its columns [col, col + units) of the output
    int64_t tcol = 0;            // its first target column: `units` of them, or one
                                 // holding the class id (SparseCategoricalCrossentropy)
    float weight = 1.0f;         // compile's loss weight
    int64_t wcol = 0;            // its column of per-output sample weights (when given)
};

// loss_rows for several outputs (each loss on its own columns, without
// fusion: the gradient is dL/dy): rows [r0, r1) of a batch of B.
//   grad:   [B, U]  dL/dy of sum_h weight_h * mean_b(loss_h(b)); the columns no
//                   head reads are 0
//   losses: [B]     sum_h weight_h * loss_h(b)
//   head_losses: [H, B]  loss_h(b) (sample weights applied, not loss weights)
//   y: [B, U]   target: [B, T]
//   weights: [B, wcols] or nullptr (wcols 1: one per sample; else head h reads
//            column heads[h].wcol)
void heads_loss_rows(float* grad, float* losses, float* head_losses, const float* y,
                     int64_t U, const float* target, int64_t T, int64_t r0, int64_t r1,
                     int64_t B, const LossHead* heads, int64_t H, const float* weights,
                     int64_t wcols = 1);

}  // namespace fastdense
