#include "merge.h"

#include <cstring>

namespace fastdense {

int64_t merge_width(MergeMode mode, const int64_t* w, int n) {
    if (n < 2 || n > kMaxMergeInputs) return -1;
    if (mode == MergeMode::Subtract && n != 2) return -1;
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
        if (w[i] <= 0) return -1;
        if (mode != MergeMode::Concatenate && w[i] != w[0]) return -1;
        total += w[i];
    }
    return mode == MergeMode::Concatenate ? total : w[0];
}

namespace {

// The fold's step for one element: acc op x (Keras's order: acc is the
// inputs before x, combined).
inline float step(MergeMode mode, float acc, float x) {
    switch (mode) {
        case MergeMode::Subtract: return acc - x;
        case MergeMode::Multiply: return acc * x;
        case MergeMode::Maximum: return acc > x || acc != acc ? acc : x;  // (NaN kept)
        case MergeMode::Minimum: return acc < x || acc != acc ? acc : x;
        default: return acc + x;  // Add, Average
    }
}

// d(max(a, b))/da, as lax.max differentiates it: 1 where a alone is the
// maximum, 1/2 on a tie, 0 where b is.  (Min: the same with the order
// reversed.)
inline float pick(MergeMode mode, float a, float b) {
    if (a == b) return 0.5f;
    return (mode == MergeMode::Maximum ? a > b : a < b) ? 1.0f : 0.0f;
}

}  // namespace

void merge_forward(float* y, const float* const* xs, const int64_t* w, int n, int64_t B,
                   MergeMode mode) {
    if (mode == MergeMode::Concatenate) {
        int64_t C = 0;
        for (int i = 0; i < n; ++i) C += w[i];
        for (int64_t b = 0; b < B; ++b) {
            float* row = y + b * C;
            for (int i = 0; i < n; ++i) {
                std::memcpy(row, xs[i] + b * w[i], sizeof(float) * static_cast<size_t>(w[i]));
                row += w[i];
            }
        }
        return;
    }
    const int64_t count = B * w[0];
    std::memcpy(y, xs[0], sizeof(float) * static_cast<size_t>(count));
    for (int i = 1; i < n; ++i) {
        const float* x = xs[i];
        switch (mode) {  // (one loop per mode: each vectorizes)
            case MergeMode::Subtract:
                for (int64_t e = 0; e < count; ++e) y[e] = y[e] - x[e];
                break;
            case MergeMode::Multiply:
                for (int64_t e = 0; e < count; ++e) y[e] = y[e] * x[e];
                break;
            case MergeMode::Maximum:
            case MergeMode::Minimum:
                for (int64_t e = 0; e < count; ++e) y[e] = step(mode, y[e], x[e]);
                break;
            default:
                for (int64_t e = 0; e < count; ++e) y[e] = y[e] + x[e];
        }
    }
    if (mode == MergeMode::Average) {
        const float k = static_cast<float>(n);
        for (int64_t e = 0; e < count; ++e) y[e] = y[e] / k;
    }
}

void merge_backward(float* const* dxs, const float* dy, const float* const* xs,
                    const int64_t* w, int n, int64_t B, MergeMode mode) {
    if (mode == MergeMode::Concatenate) {
        int64_t C = 0;
        for (int i = 0; i < n; ++i) C += w[i];
        for (int64_t b = 0; b < B; ++b) {
            const float* row = dy + b * C;
            for (int i = 0; i < n; ++i) {
                if (dxs[i]) {
                    float* d = dxs[i] + b * w[i];
                    for (int64_t j = 0; j < w[i]; ++j) d[j] += row[j];
                }
                row += w[i];
            }
        }
        return;
    }
    const int64_t count = B * w[0];
    if (mode == MergeMode::Add || mode == MergeMode::Subtract || mode == MergeMode::Average) {
        const float k = static_cast<float>(n);
        for (int i = 0; i < n; ++i) {
            float* d = dxs[i];
            if (!d) continue;
            if (mode == MergeMode::Average)
                for (int64_t e = 0; e < count; ++e) d[e] += dy[e] / k;
            else if (mode == MergeMode::Subtract && i == 1)
                for (int64_t e = 0; e < count; ++e) d[e] += -dy[e];
            else
                for (int64_t e = 0; e < count; ++e) d[e] += dy[e];
        }
        return;
    }
    // Multiply, Maximum, Minimum: back through the fold, element by element:
    // acc_i = acc_{i-1} op x_i; g (d/d acc_i) splits into acc_{i-1}'s and x_i's.
    float accs[kMaxMergeInputs];
    for (int64_t e = 0; e < count; ++e) {
        accs[0] = xs[0][e];
        for (int i = 1; i < n; ++i) accs[i] = step(mode, accs[i - 1], xs[i][e]);
        float g = dy[e];
        for (int i = n - 1; i >= 1; --i) {
            const float a = accs[i - 1], x = xs[i][e];
            float gx, ga;
            if (mode == MergeMode::Multiply) {
                gx = g * a;
                ga = g * x;
            } else {
                gx = g * pick(mode, x, a);
                ga = g * pick(mode, a, x);
            }
            if (dxs[i]) dxs[i][e] += gx;
            g = ga;
        }
        if (dxs[0]) dxs[0][e] += g;
    }
}

}  // namespace fastdense
