// Keras's L1 / L2 regularization terms: penalty l1 * sum|w| + l2 * sum(w^2)
// for weights (kernel_regularizer, bias_regularizer, ...) and for a layer's
// outputs (activity_regularizer, which Keras 3 divides by the batch size).
#pragma once
#include <cstdint>

namespace fastdense {

// sum over w of l1*|w| + l2*w^2, accumulated in double.
//   w: [n]
double l1l2_penalty(const float* w, int64_t n, float l1, float l2);

// g += scale * (l1 * d|w|/dw + 2 * l2 * w), with d|w|/dw = +1 at w = 0 as
// JAX's abs (the Keras 3 backend the gradients are checked against).
//   g: [n]   w: [n]
void l1l2_grad(float* g, const float* w, int64_t n, float l1, float l2, float scale = 1.0f);

}  // namespace fastdense
