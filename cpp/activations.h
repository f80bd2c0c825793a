// Activations the dense kernels do not fuse, applied in their own pass over a
// layer's pre-activation z. Formulas and defaults follow Keras 3
// (keras.activations): elu alpha=1, selu's fixed alpha/scale, gelu exact
// (erf) and tanh-approximate, leaky_relu negative_slope=0.2, hard_sigmoid
// = clip(x/6 + 1/2, 0, 1), hard_silu = x * hard_sigmoid(x), mish, and
// celu, hard_tanh, hard_shrink / soft_shrink (threshold 0.5), tanh_shrink,
// squareplus (b=4), sparse_plus, log_sigmoid, sparse_sigmoid as jax.nn's.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace fastdense {

// (ActParams, the parameterized activations' arguments: kernels.h)

// y = f(z), elementwise (log_softmax row-wise).
//   y: [rows, cols]   z: [rows, cols]   (y may alias z)
void activation_forward(Activation a, float* y, const float* z, int64_t rows, int64_t cols,
                        const ActParams& p = ActParams());

// dz = dy * f'(z) (log_softmax: dy - softmax(z) * rowsum(dy)).
//   dz: [rows, cols]   dy: [rows, cols] (dz may alias dy)
//   z: [rows, cols] pre-activation   y: [rows, cols] = f(z)
void activation_backward(Activation a, float* dz, const float* dy, const float* z,
                         const float* y, int64_t rows, int64_t cols,
                         const ActParams& p = ActParams());

// Naive float64 references for tests.
double activation_ref(Activation a, double z, const ActParams& p = ActParams());
double activation_grad_ref(Activation a, double z, const ActParams& p = ActParams());

}  // namespace fastdense
