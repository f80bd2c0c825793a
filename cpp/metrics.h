// Native metrics: sums of per-sample values, accumulated across batches and
// divided by the sample count, as Keras's MeanMetricWrapper does.
#pragma once
#include <cstdint>

namespace fastdense {

enum class MetricKind : int {
    CategoricalAccuracy = 0,        // argmax(target) == argmax(y)
    SparseCategoricalAccuracy = 1,  // label == argmax(y)
    BinaryAccuracy = 2,             // mean_k (target_k == (y_k > threshold))
};

// Returns the sum over the B samples of the per-sample metric value.
//   y: [B, U]   target: [B, U] (nullptr for sparse)   labels: [B] int32
double metric_sum(MetricKind kind, const float* y, const float* target,
                  const int32_t* labels, int64_t B, int64_t U, float threshold);

}  // namespace fastdense
