#include "layernorm.h"

#include <algorithm>
#include <cmath>

#include "threadpool.h"

namespace fastdense {

namespace {
// Rows per task of the row passes and columns per task of the parameter
// gradients' pass: each row's statistics and each column's sums are computed
// alone (sums in a fixed order), so any split over the pool gives the same
// bits.
constexpr int64_t kRows = 16;
constexpr int64_t kSlab = 64;
// Unit mode's cap on 1/norm: 1 / Keras's epsilon (1e-12) in float.
constexpr float kUnitMaxInv = 1e12f;

// The row's centre and r (layernorm.h), its sums in double.
//   x: [C]
inline void row_stats(float* centre, float* r, const float* x, int64_t C, float epsilon,
                      NormMode mode) {
    const double invC = 1.0 / static_cast<double>(C);
    double s = 0.0, q = 0.0;
    if (mode == NormMode::Unit) {
        for (int64_t c = 0; c < C; ++c) q += static_cast<double>(x[c]) * x[c];
        *centre = 0.0f;
        *r = std::min(1.0f / std::sqrt(static_cast<float>(q)), kUnitMaxInv);
        return;
    }
    if (mode == NormMode::RMS) {
        for (int64_t c = 0; c < C; ++c) q += static_cast<double>(x[c]) * x[c];
        *centre = 0.0f;
    } else {
        for (int64_t c = 0; c < C; ++c) s += x[c];
        s *= invC;
        for (int64_t c = 0; c < C; ++c) {
            const double d = x[c] - s;
            q += d * d;
        }
        *centre = static_cast<float>(s);
    }
    *r = 1.0f / std::sqrt(static_cast<float>(q * invC) + epsilon);
}

}  // namespace

void layernorm_forward(float* y, float* stats, const float* x, const float* gamma,
                       const float* beta, int64_t B, int64_t C, float epsilon, NormMode mode) {
    parallel_chunks(B, kRows, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const float* xr = x + b * C;
            float* yr = y + b * C;
            float centre, r;
            row_stats(&centre, &r, xr, C, epsilon, mode);
            stats[b] = centre;
            stats[B + b] = r;
            if (mode == NormMode::Layer) {
                // Keras's order: inv = r * gamma, y = x * inv + (-mean * inv + beta)
                for (int64_t c = 0; c < C; ++c) {
                    const float inv = gamma ? r * gamma[c] : r;
                    const float shift = -centre * inv + (beta ? beta[c] : 0.0f);
                    yr[c] = xr[c] * inv + shift;
                }
            } else if (gamma) {
                for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * r * gamma[c];
            } else {
                for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * r;
            }
        }
    });
}

void layernorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,
                        const float* x, const float* stats, const float* gamma, int64_t B,
                        int64_t C, NormMode mode) {
    const float* centre = stats;
    const float* rs = stats + B;
    // (the normalized input: (x - mean) * r in Layer mode, x * r otherwise)
    const bool centred = mode == NormMode::Layer;
    if (dgamma || dbeta) {
        parallel_chunks(C, kSlab, [&](int64_t c0, int64_t c1) {
            const int64_t n = c1 - c0;
            double sdy[kSlab], sdyx[kSlab];
            for (int64_t c = 0; c < n; ++c) sdy[c] = sdyx[c] = 0.0;
            for (int64_t b = 0; b < B; ++b) {
                const float* dyr = dy + b * C + c0;
                const float* xr = x + b * C + c0;
                const float m = centred ? centre[b] : 0.0f, r = rs[b];
                for (int64_t c = 0; c < n; ++c) {
                    sdy[c] += dyr[c];
                    sdyx[c] += static_cast<double>(dyr[c]) * ((xr[c] - m) * r);
                }
            }
            if (dbeta)
                for (int64_t c = 0; c < n; ++c) dbeta[c0 + c] = static_cast<float>(sdy[c]);
            if (dgamma)
                for (int64_t c = 0; c < n; ++c) dgamma[c0 + c] = static_cast<float>(sdyx[c]);
        });
    }
    if (!dx) return;
    const double invC = 1.0 / static_cast<double>(C);
    parallel_chunks(B, kRows, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const float* dyr = dy + b * C;
            const float* xr = x + b * C;
            float* dxr = dx + b * C;
            const float m = centre[b], r = rs[b];
            // h = dy * gamma; sums over the row of h and of h * (x - m)
            double sh = 0.0, shx = 0.0;
            for (int64_t c = 0; c < C; ++c) {
                const float h = gamma ? dyr[c] * gamma[c] : dyr[c];
                sh += h;
                shx += static_cast<double>(h) * (xr[c] - m);
            }
            if (centred) {
                // dx = r * (h - mean(h) - xhat * mean(h * xhat)), xhat = (x - m) * r
                const float a = static_cast<float>(sh * invC);
                const float k = static_cast<float>(shx * invC * r);  // mean(h * xhat)
                for (int64_t c = 0; c < C; ++c) {
                    const float h = gamma ? dyr[c] * gamma[c] : dyr[c];
                    const float xhat = (xr[c] - m) * r;
                    dxr[c] = r * (h - a - xhat * k);
                }
            } else {
                // y = x * r * gamma with r = (s + eps)^-1/2, s the variance
                // (m the mean) or the mean square (m = 0): ds/dx = 2 (x - m) / C,
                // so dx = r * (h - r^2 * mean(h * x) * (x - m)). (In RMS mode
                // shx sums h * x; in VarianceScale mode h * (x - mean), whose
                // sum differs from sum h * x by mean * sum h.) Unit mode's s
                // is the sum, not the mean, of x^2, and its r is a constant
                // where capped.
                const double sx = mode == NormMode::VarianceScale
                                      ? shx + static_cast<double>(m) * sh : shx;
                const float k = mode != NormMode::Unit ? static_cast<float>(sx * invC * r * r)
                                : r < kUnitMaxInv ? static_cast<float>(sx * r * r) : 0.0f;
                for (int64_t c = 0; c < C; ++c) {
                    const float h = gamma ? dyr[c] * gamma[c] : dyr[c];
                    dxr[c] = r * (h - k * (xr[c] - m));
                }
            }
        }
    });
}

}  // namespace fastdense
