#include "batchnorm.h"

#include <cmath>

namespace fastdense {

namespace {
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

//   y: [B, C]   x: [B, C]   inv, shift: [C]
inline void affine_rows(float* y, const float* x, const float* inv, const float* shift,
                        int64_t B, int64_t C) {
    for (int64_t b = 0; b < B; ++b) {
        const float* xr = x + b * C;
        float* yr = y + b * C;
        for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * inv[c] + shift[c];
    }
}
}  // namespace

void batchnorm_forward_train(float* y, float* mean, float* rstd, float* moving_mean,
                             float* moving_var, const float* x, const float* gamma,
                             const float* beta, int64_t B, int64_t C, float epsilon,
                             float momentum, float one_minus_momentum, double* scratch) {
    double* s = scratch;
    double* q = scratch + C;
    for (int64_t c = 0; c < C; ++c) s[c] = q[c] = 0.0;
    for (int64_t b = 0; b < B; ++b) {
        const float* xr = x + b * C;
        for (int64_t c = 0; c < C; ++c) s[c] += xr[c];
    }
    const double invB = 1.0 / static_cast<double>(B);
    for (int64_t c = 0; c < C; ++c) s[c] *= invB;  // mean, in double
    for (int64_t b = 0; b < B; ++b) {
        const float* xr = x + b * C;
        for (int64_t c = 0; c < C; ++c) {
            const double d = xr[c] - s[c];
            q[c] += d * d;
        }
    }
    for (int64_t c = 0; c < C; ++c) {
        const float m = static_cast<float>(s[c]);
        const float var = static_cast<float>(q[c] * invB);
        mean[c] = m;
        rstd[c] = 1.0f / std::sqrt(var + epsilon);
        moving_mean[c] = moving_mean[c] * momentum + m * one_minus_momentum;
        moving_var[c] = moving_var[c] * momentum + var * one_minus_momentum;
    }
    // (the scale and shift reuse the double scratch's storage as floats)
    float* inv = reinterpret_cast<float*>(scratch);
    float* shift = inv + C;
    scale_shift(inv, shift, gamma, beta, mean, rstd, C);
    affine_rows(y, x, inv, shift, B, C);
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
    double* sdy = scratch;       // sum_b dy
    double* sdyx = scratch + C;  // sum_b dy * xhat
    for (int64_t c = 0; c < C; ++c) sdy[c] = sdyx[c] = 0.0;
    for (int64_t b = 0; b < B; ++b) {
        const float* dyr = dy + b * C;
        const float* xr = x + b * C;
        for (int64_t c = 0; c < C; ++c) {
            const float xhat = (xr[c] - mean[c]) * rstd[c];
            sdy[c] += dyr[c];
            sdyx[c] += static_cast<double>(dyr[c]) * xhat;
        }
    }
    if (dbeta)
        for (int64_t c = 0; c < C; ++c) dbeta[c] = static_cast<float>(sdy[c]);
    if (dgamma)
        for (int64_t c = 0; c < C; ++c) dgamma[c] = static_cast<float>(sdyx[c]);
    if (!dx) return;
    // dx = gamma * rstd * (dy - mean_b(dy) - xhat * mean_b(dy * xhat))
    const double invB = 1.0 / static_cast<double>(B);
    float* k = reinterpret_cast<float*>(scratch + 2 * C);  // [C] gamma * rstd
    float* a = k + C;                              // [C] mean_b(dy)
    float* g = a + C;                              // [C] mean_b(dy * xhat)
    for (int64_t c = 0; c < C; ++c) {
        const float mdy = static_cast<float>(sdy[c] * invB);
        const float mdyx = static_cast<float>(sdyx[c] * invB);
        k[c] = gamma ? gamma[c] * rstd[c] : rstd[c];
        a[c] = mdy;
        g[c] = mdyx;
    }
    for (int64_t b = 0; b < B; ++b) {
        const float* dyr = dy + b * C;
        const float* xr = x + b * C;
        float* dxr = dx + b * C;
        for (int64_t c = 0; c < C; ++c) {
            const float xhat = (xr[c] - mean[c]) * rstd[c];
            dxr[c] = k[c] * (dyr[c] - a[c] - xhat * g[c]);
        }
    }
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
