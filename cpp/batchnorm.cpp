#include "batchnorm.h"

#include <cmath>

#include "threadpool.h"

namespace fastdense {

namespace {
// Channels per task of the training passes: each channel's statistics and
// outputs are computed alone (sums over the batch in row order), so any
// split over the pool gives the same bits.
constexpr int64_t kSlab = 64;

// Per-channel scale and shift of y = x * inv + shift.
//   inv, shift: [C]   gamma, beta: [C] or nullptr   mean, rstd: [C]
inline void scale_shift(float* inv, float* shift, const float* gamma, const float* beta,
                        const float* mean, const float* rstd, int64_t C) {
    for (int64_t c = 0; c < C; ++c) {
        const float v = gamma ? rstd[c] * gamma[c] : rstd[c];
        inv[c] = v;
        shift[c] = -mean[c] * v + (beta ? beta[c] : 0.0f);
    }
}

}  // namespace

void batchnorm_forward_train(float* y, float* mean, float* rstd, float* moving_mean,
                             float* moving_var, const float* x, const float* gamma,
                             const float* beta, int64_t B, int64_t C, float epsilon,
                             float momentum, float one_minus_momentum, double* scratch) {
    (void)scratch;  // (each slab keeps its sums on its own stack)
    const double invB = 1.0 / static_cast<double>(B);
    parallel_chunks(C, kSlab, [&](int64_t c0, int64_t c1) {
        const int64_t n = c1 - c0;
        double s[kSlab], q[kSlab];
        for (int64_t c = 0; c < n; ++c) s[c] = q[c] = 0.0;
        for (int64_t b = 0; b < B; ++b) {
            const float* xr = x + b * C + c0;
            for (int64_t c = 0; c < n; ++c) s[c] += xr[c];
        }
        for (int64_t c = 0; c < n; ++c) s[c] *= invB;  // mean, in double
        for (int64_t b = 0; b < B; ++b) {
            const float* xr = x + b * C + c0;
            for (int64_t c = 0; c < n; ++c) {
                const double d = xr[c] - s[c];
                q[c] += d * d;
            }
        }
        for (int64_t c = 0; c < n; ++c) {
            const float m = static_cast<float>(s[c]);
            const float var = static_cast<float>(q[c] * invB);
            mean[c0 + c] = m;
            rstd[c0 + c] = 1.0f / std::sqrt(var + epsilon);
            moving_mean[c0 + c] = moving_mean[c0 + c] * momentum + m * one_minus_momentum;
            moving_var[c0 + c] = moving_var[c0 + c] * momentum + var * one_minus_momentum;
        }
        float inv[kSlab], shift[kSlab];
        scale_shift(inv, shift, gamma ? gamma + c0 : nullptr, beta ? beta + c0 : nullptr,
                    mean + c0, rstd + c0, n);
        for (int64_t b = 0; b < B; ++b) {
            const float* xr = x + b * C + c0;
            float* yr = y + b * C + c0;
            for (int64_t c = 0; c < n; ++c) yr[c] = xr[c] * inv[c] + shift[c];
        }
    });
}

void batchnorm_forward_infer(float* y, const float* x, const float* gamma, const float* beta,
                             const float* moving_mean, const float* moving_var, int64_t B,
                             int64_t C, float epsilon) {
    // inv and shift per channel, in a small stack buffer per block of channels
    constexpr int64_t kBlock = 256;
    float inv[kBlock], shift[kBlock], rstd[kBlock];
    for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
        const int64_t n = C - c0 < kBlock ? C - c0 : kBlock;
        for (int64_t c = 0; c < n; ++c) rstd[c] = 1.0f / std::sqrt(moving_var[c0 + c] + epsilon);
        scale_shift(inv, shift, gamma ? gamma + c0 : nullptr, beta ? beta + c0 : nullptr,
                    moving_mean + c0, rstd, n);
        for (int64_t b = 0; b < B; ++b) {
            const float* xr = x + b * C + c0;
            float* yr = y + b * C + c0;
            for (int64_t c = 0; c < n; ++c) yr[c] = xr[c] * inv[c] + shift[c];
        }
    }
}

void batchnorm_backward_train(float* dx, float* dgamma, float* dbeta, const float* dy,
                              const float* x, const float* mean, const float* rstd,
                              const float* gamma, int64_t B, int64_t C, double* scratch) {
    (void)scratch;  // (each slab keeps its sums on its own stack)
    const double invB = 1.0 / static_cast<double>(B);
    parallel_chunks(C, kSlab, [&](int64_t c0, int64_t c1) {
        const int64_t n = c1 - c0;
        double sdy[kSlab], sdyx[kSlab];  // sum_b dy, sum_b dy * xhat
        for (int64_t c = 0; c < n; ++c) sdy[c] = sdyx[c] = 0.0;
        for (int64_t b = 0; b < B; ++b) {
            const float* dyr = dy + b * C + c0;
            const float* xr = x + b * C + c0;
            for (int64_t c = 0; c < n; ++c) {
                const float xhat = (xr[c] - mean[c0 + c]) * rstd[c0 + c];
                sdy[c] += dyr[c];
                sdyx[c] += static_cast<double>(dyr[c]) * xhat;
            }
        }
        if (dbeta)
            for (int64_t c = 0; c < n; ++c) dbeta[c0 + c] = static_cast<float>(sdy[c]);
        if (dgamma)
            for (int64_t c = 0; c < n; ++c) dgamma[c0 + c] = static_cast<float>(sdyx[c]);
        if (!dx) return;
        // dx = gamma * rstd * (dy - mean_b(dy) - xhat * mean_b(dy * xhat))
        float k[kSlab], a[kSlab], g[kSlab];  // gamma * rstd, mean_b(dy), mean_b(dy * xhat)
        for (int64_t c = 0; c < n; ++c) {
            k[c] = gamma ? gamma[c0 + c] * rstd[c0 + c] : rstd[c0 + c];
            a[c] = static_cast<float>(sdy[c] * invB);
            g[c] = static_cast<float>(sdyx[c] * invB);
        }
        for (int64_t b = 0; b < B; ++b) {
            const float* dyr = dy + b * C + c0;
            const float* xr = x + b * C + c0;
            float* dxr = dx + b * C + c0;
            for (int64_t c = 0; c < n; ++c) {
                const float xhat = (xr[c] - mean[c0 + c]) * rstd[c0 + c];
                dxr[c] = k[c] * (dyr[c] - a[c] - xhat * g[c]);
            }
        }
    });
}

void batchnorm_backward_infer(float* dx, const float* dy, const float* gamma,
                              const float* moving_var, int64_t B, int64_t C, float epsilon) {
    constexpr int64_t kBlock = 256;
    float k[kBlock];
    for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
        const int64_t n = C - c0 < kBlock ? C - c0 : kBlock;
        for (int64_t c = 0; c < n; ++c) {
            const float r = 1.0f / std::sqrt(moving_var[c0 + c] + epsilon);
            k[c] = gamma ? gamma[c0 + c] * r : r;
        }
        for (int64_t b = 0; b < B; ++b) {
            const float* dyr = dy + b * C + c0;
            float* dxr = dx + b * C + c0;
            for (int64_t c = 0; c < n; ++c) dxr[c] = dyr[c] * k[c];
        }
    }
}

}  // namespace fastdense
