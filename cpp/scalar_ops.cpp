#include "scalar_ops.h"

#include <cstring>

namespace fastdense {

void scalar_forward(float* y, const float* x, int64_t n, ScalarOp op, float c) {
    switch (op) {
        case ScalarOp::Add: for (int64_t i = 0; i < n; ++i) y[i] = x[i] + c; break;
        case ScalarOp::Subtract: for (int64_t i = 0; i < n; ++i) y[i] = x[i] - c; break;
        case ScalarOp::SubtractFrom: for (int64_t i = 0; i < n; ++i) y[i] = c - x[i]; break;
        case ScalarOp::Multiply: for (int64_t i = 0; i < n; ++i) y[i] = x[i] * c; break;
        case ScalarOp::Divide: for (int64_t i = 0; i < n; ++i) y[i] = x[i] / c; break;
        case ScalarOp::DivideInto: for (int64_t i = 0; i < n; ++i) y[i] = c / x[i]; break;
        case ScalarOp::Negative: for (int64_t i = 0; i < n; ++i) y[i] = -x[i]; break;
        case ScalarOp::None: std::memcpy(y, x, sizeof(float) * static_cast<size_t>(n)); break;
    }
}

void scalar_backward(float* dx, const float* dy, const float* x, int64_t n, ScalarOp op,
                     float c) {
    switch (op) {
        case ScalarOp::Add:
        case ScalarOp::Subtract:
        case ScalarOp::None:
            std::memcpy(dx, dy, sizeof(float) * static_cast<size_t>(n));
            break;
        case ScalarOp::SubtractFrom:
        case ScalarOp::Negative:
            for (int64_t i = 0; i < n; ++i) dx[i] = -dy[i];
            break;
        case ScalarOp::Multiply: for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * c; break;
        case ScalarOp::Divide: for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] / c; break;
        case ScalarOp::DivideInto:
            for (int64_t i = 0; i < n; ++i) dx[i] = -(dy[i] * (c / x[i])) / x[i];
            break;
    }
}

}  // namespace fastdense
