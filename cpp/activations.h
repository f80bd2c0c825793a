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

// PReLU (Keras's layers.PReLU, a learned slope per feature):
// y = relu(x) + (-alpha) * relu(-x), computed as Keras writes it.
//   y: [rows, cols]   x: [rows, cols]   alpha: [cols], or [1] when shared
void prelu_forward(float* y, const float* x, const float* alpha, bool shared, int64_t rows,
                   int64_t cols);

// dx = dy * (x > 0 ? 1 : x < 0 ? alpha : 0) (relu's derivative is 0 at 0, as
// JAX's); dalpha = sum over rows (and over columns when shared) of
// dy * min(x, 0), in double, written (not accumulated).
//   dx: [rows, cols] or nullptr   dalpha: [cols] or [1] or nullptr
//   dy: [rows, cols]   x: [rows, cols]   alpha: [cols] or [1]
//   sums: [cols] scratch (when dalpha)
void prelu_backward(float* dx, float* dalpha, const float* dy, const float* x,
                    const float* alpha, bool shared, int64_t rows, int64_t cols,
                    double* sums);

// Naive float64 references for tests.
double activation_ref(Activation a, double z, const ActParams& p = ActParams());
double activation_grad_ref(Activation a, double z, const ActParams& p = ActParams());

}  // namespace fastdense
