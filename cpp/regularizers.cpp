#include "regularizers.h"

#include <cmath>

namespace fastdense {

double l1l2_penalty(const float* w, int64_t n, float l1, float l2) {
    if (l1 == 0.0f && l2 == 0.0f) return 0.0;
    double a = 0.0, s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        a += std::fabs(w[i]);
        s += static_cast<double>(w[i]) * w[i];
    }
    return l1 * a + l2 * s;
}

void l1l2_grad(float* g, const float* w, int64_t n, float l1, float l2, float scale) {
    if (l1 == 0.0f && l2 == 0.0f) return;
    const float a = scale * l1, b = scale * 2.0f * l2;
    for (int64_t i = 0; i < n; ++i) {
        const float sgn = w[i] >= 0.0f ? 1.0f : -1.0f;
        g[i] += a * sgn + b * w[i];
    }
}

}  // namespace fastdense
