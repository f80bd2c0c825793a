#include "regularizers.h"

#include <cmath>
#include <vector>

#include "clones.h"
#include "threadpool.h"

namespace fastdense {

namespace {

#define R __restrict

// Fixed-size chunks, summed in chunk order: the same bits for any thread
// count (and the work spread over the pool: a 784x512 kernel's penalty, one
// double chain, took ~0.6 ms a training step).
constexpr int64_t kChunk = 1 << 14;

// sum|w| (l1) or sum w^2 (!l1) of w[0:n] in double, 8 independent lanes
// added in a fixed tree (one simple loop each, which the compilers vectorize).
FD_CLONES double lane_sum(const float* R w, int64_t n, bool l1) {
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    if (l1) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; ++k) a[k] += std::fabs(static_cast<double>(w[i + k]));
        for (; i < n; ++i) a[0] += std::fabs(static_cast<double>(w[i]));
    } else {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; ++k) {
                const double x = w[i + k];
                a[k] += x * x;
            }
        for (; i < n; ++i) a[0] += static_cast<double>(w[i]) * w[i];
    }
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

FD_CLONES void grad_range(float* R g, const float* R w, int64_t n, float a, float b) {
    for (int64_t i = 0; i < n; ++i) {
        const float sgn = w[i] >= 0.0f ? 1.0f : -1.0f;
        g[i] += a * sgn + b * w[i];
    }
}

}  // namespace

double l1l2_penalty(const float* w, int64_t n, float l1, float l2) {
    if ((l1 == 0.0f && l2 == 0.0f) || n <= 0) return 0.0;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    static thread_local std::vector<double> part;  // (grows once)
    if (part.size() < static_cast<size_t>(2 * chunks)) part.resize(static_cast<size_t>(2 * chunks));
    double* pp = part.data();
    parallel_chunks(n, kChunk, [&](int64_t i0, int64_t i1) {
        double* out = pp + 2 * (i0 / kChunk);
        out[0] = l1 != 0.0f ? lane_sum(w + i0, i1 - i0, true) : 0.0;
        out[1] = l2 != 0.0f ? lane_sum(w + i0, i1 - i0, false) : 0.0;
    });
    double a = 0.0, s = 0.0;
    for (int64_t c = 0; c < chunks; ++c) {
        a += pp[2 * c];
        s += pp[2 * c + 1];
    }
    return l1 * a + l2 * s;
}

void l1l2_grad(float* g, const float* w, int64_t n, float l1, float l2, float scale) {
    if ((l1 == 0.0f && l2 == 0.0f) || n <= 0) return;
    const float a = scale * l1, b = scale * 2.0f * l2;
    parallel_chunks(n, kChunk, [&](int64_t i0, int64_t i1) {
        grad_range(g + i0, w + i0, i1 - i0, a, b);
    });
}

}  // namespace fastdense
