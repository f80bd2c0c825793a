// Activations the dense kernels do not fuse, applied in their own pass over a
// layer's pre-activation z. Formulas and defaults follow Keras 3
// (keras.activations): elu alpha=1, selu's fixed alpha/scale, gelu exact
// (erf) and tanh-approximate, leaky_relu negative_slope=0.2, hard_sigmoid
// = clip(x/6 + 1/2, 0, 1), hard_silu = x * hard_sigmoid(x), mish.
#pragma once
#include <cstdint>
#include <limits>

#include "kernels.h"

namespace fastdense {

// The arguments of Keras's parameterized activation layers; the defaults are
// those of keras.activations (leaky_relu's 0.2, elu's 1) and an identity
// ReLU layer.
//   LeakyRelu:    x > 0 ? x : leaky_slope * x            (layers.LeakyReLU)
//   Elu:          x > 0 ? x : elu_alpha * expm1(x)       (layers.ELU)
//   ReluGeneral:  keras.layers.ReLU's formula: [x > t] * x (t = threshold;
//                 max(x, 0) when t is 0), clipped to [0, relu_max] when
//                 relu_max is finite, minus relu_slope * max(t - x, 0)
struct ActParams {
    float leaky_slope = 0.2f;
    float elu_alpha = 1.0f;
    float relu_slope = 0.0f;
    float relu_max = std::numeric_limits<float>::infinity();
    float relu_threshold = 0.0f;
};

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
