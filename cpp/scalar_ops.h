// Keras's ops between a tensor and a number on 2D activations (an Identity
// stage's op in a functional graph): elementwise y = op(x, c) over n values,
// in float32 as numpy / XLA compute them; the backward is JAX's derivative.
#pragma once
#include <cstdint>

namespace fastdense {

// x + c, x - c, c - x, x * c, x / c, c / x, -x (ops.add, subtract, multiply,
// true_divide with the number on either side; ops.negative).
enum class ScalarOp : int {
    None = 0, Add = 1, Subtract = 2, SubtractFrom = 3, Multiply = 4, Divide = 5, DivideInto = 6,
    Negative = 7,
};
constexpr int kNumScalarOps = 8;

// y = op(x, c) elementwise.
//   y: [n]  x: [n]
void scalar_forward(float* y, const float* x, int64_t n, ScalarOp op, float c);

// dx = dy * d op(x, c) / dx elementwise (x / c: dy / c; c / x: -(dy * (c / x)) / x).
//   dx: [n]  dy: [n]  x: [n] (the forward's input)
void scalar_backward(float* dx, const float* dy, const float* x, int64_t n, ScalarOp op,
                     float c);

}  // namespace fastdense
