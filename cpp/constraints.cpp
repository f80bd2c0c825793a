#include "constraints.h"

#include <algorithm>
#include <cmath>

#include "threadpool.h"

namespace fastdense {

namespace {
constexpr float kEpsilon = 1e-7f;

// The factor each element of a group with this norm is multiplied by.
inline float norm_factor(const ConstraintSpec& c, float norm) {
    switch (c.kind) {
        case ConstraintKind::MaxNorm:
            return std::min(std::max(norm, 0.0f), c.max_value) / (kEpsilon + norm);
        case ConstraintKind::UnitNorm: return 1.0f / (kEpsilon + norm);
        case ConstraintKind::MinMaxNorm: {
            const float desired = c.rate * std::min(std::max(norm, c.min_value), c.max_value) +
                                  (1.0f - c.rate) * norm;
            return desired / (kEpsilon + norm);
        }
        default: return 1.0f;
    }
}
}  // namespace

void apply_constraint(const ConstraintSpec& c, float* w, int64_t rows, int64_t cols,
                      double* scratch) {
    const int64_t n = rows * cols;
    switch (c.kind) {
        case ConstraintKind::None: return;
        case ConstraintKind::NonNeg:  // (elementwise: chunks over the pool, the same bits)
            parallel_for((n + 16383) / 16384, [&](int64_t t) {
                const int64_t i1 = std::min(n, (t + 1) * 16384);
                for (int64_t i = t * 16384; i < i1; ++i)
                    w[i] *= w[i] >= 0.0f ? 1.0f : 0.0f;  // (NaN stays NaN)
            });
            return;
        default: break;
    }
    if (c.axis == NormAxis::All) {
        double s = 0.0;
        for (int64_t i = 0; i < n; ++i) s += static_cast<double>(w[i]) * w[i];
        const float f = norm_factor(c, std::sqrt(static_cast<float>(s)));
        for (int64_t i = 0; i < n; ++i) w[i] *= f;
    } else if (c.axis == NormAxis::Rows) {  // one norm per column
        // (in row order, serially: column slabs over the pool read each row
        // in 1 KiB pieces and measured slower, MNIST MaxNorm epoch 236 ->
        // 273-282 ms at 2 threads; the scaling pass alone over the pool gained
        // nothing measurable, 237-246 -> 233-237)
        for (int64_t j = 0; j < cols; ++j) scratch[j] = 0.0;
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) scratch[j] += static_cast<double>(w[i * cols + j]) * w[i * cols + j];
        float* f = reinterpret_cast<float*>(scratch);  // (read before overwritten)
        for (int64_t j = 0; j < cols; ++j) f[j] = norm_factor(c, std::sqrt(static_cast<float>(scratch[j])));
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) w[i * cols + j] *= f[j];
    } else {  // one norm per row (rows over the pool)
        parallel_for((rows + 63) / 64, [&](int64_t t) {
            for (int64_t i = t * 64; i < std::min(rows, t * 64 + 64); ++i) {
                float* r = w + i * cols;
                double s = 0.0;
                for (int64_t j = 0; j < cols; ++j) s += static_cast<double>(r[j]) * r[j];
                const float f = norm_factor(c, std::sqrt(static_cast<float>(s)));
                for (int64_t j = 0; j < cols; ++j) r[j] *= f;
            }
        });
    }
}

}  // namespace fastdense
