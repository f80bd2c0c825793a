#include "metrics.h"

namespace fastdense {
namespace {

// First index of the maximum, as numpy/Keras argmax.
//   v: [U]
inline int64_t argmax(const float* v, int64_t U) {
    int64_t best = 0;
    for (int64_t k = 1; k < U; ++k)
        if (v[k] > v[best]) best = k;
    return best;
}

}  // namespace

double metric_sum(MetricKind kind, const float* y, const float* target,
                  const int32_t* labels, int64_t B, int64_t U, float threshold) {
    double total = 0.0;
    for (int64_t b = 0; b < B; ++b) {
        const float* yb = y + b * U;
        switch (kind) {
            case MetricKind::CategoricalAccuracy:
                total += argmax(target + b * U, U) == argmax(yb, U) ? 1.0 : 0.0;
                break;
            case MetricKind::SparseCategoricalAccuracy:
                total += labels[b] == argmax(yb, U) ? 1.0 : 0.0;
                break;
            case MetricKind::BinaryAccuracy: {
                const float* tb = target + b * U;
                int64_t hits = 0;
                for (int64_t k = 0; k < U; ++k)
                    hits += tb[k] == (yb[k] > threshold ? 1.0f : 0.0f);
                total += static_cast<float>(hits) / static_cast<float>(U);
                break;
            }
        }
    }
    return total;
}

}  // namespace fastdense
