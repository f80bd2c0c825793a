#include "optimizers.h"

#include <cmath>

namespace fastdense {

int optimizer_slots(const OptimizerSpec& s) {
    switch (s.kind) {
        case OptimizerKind::SGD:
            return s.momentum != 0.0f ? 1 : 0;
        case OptimizerKind::RMSprop:
            return 1 + (s.momentum > 0.0f ? 1 : 0) + (s.centered ? 1 : 0);
        case OptimizerKind::Adam:
            return 2 + (s.amsgrad ? 1 : 0);
    }
    return 0;
}

namespace {

// The loops below are written branch-free with restrict pointers so the
// compiler vectorizes them; on x86 with GCC/Clang each is also compiled for
// AVX2 and AVX-512 and picked at load time (target_clones). Contraction into
// FMA is off, and sqrt and division are exact, so every clone
// gives bitwise-identical results (CMake passes -ffp-contract=off: GCC would
// otherwise fuse a*b+c in the AVX-512 clone).
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(_M_X64)) && \
    defined(__linux__) && !defined(FASTDENSE_NO_CLONES)
#define FD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FD_CLONES
#endif
#define R __restrict

FD_CLONES void sgd_plain(float* R p, const float* R g, int64_t n, float lr) {
    for (int64_t i = 0; i < n; ++i) p[i] -= g[i] * lr;
}

FD_CLONES void sgd_momentum(float* R p, float* R m, const float* R g, int64_t n, float lr,
                            float mu, bool nesterov) {
    if (nesterov) {
        for (int64_t i = 0; i < n; ++i) {
            const float mi = -g[i] * lr + m[i] * mu;
            m[i] = mi;
            p[i] += -g[i] * lr + mi * mu;
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float mi = -g[i] * lr + m[i] * mu;
            m[i] = mi;
            p[i] += mi;
        }
    }
}

// velocity = rho*v + (1-rho)*g^2; increment = lr*g/sqrt(v + eps) (centered:
// sqrt(v - avg^2 + eps)); with momentum m = mu*m + increment, p -= m.
FD_CLONES void rmsprop_plain(float* R p, float* R v, const float* R g, int64_t n, float lr,
                             float rho, float one_rho, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float vi = rho * v[i] + one_rho * (gi * gi);
        v[i] = vi;
        p[i] -= lr * gi / std::sqrt(vi + eps);
    }
}

FD_CLONES void rmsprop_general(float* R p, float* R v, float* R m, float* R a,
                               const float* R g, int64_t n, float lr, float rho, float one_rho,
                               float eps, float mu) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float vi = rho * v[i] + one_rho * (gi * gi);
        v[i] = vi;
        float denom = vi + eps;
        if (a) {
            const float ai = rho * a[i] + one_rho * gi;
            a[i] = ai;
            denom = vi - ai * ai + eps;
        }
        const float inc = lr * gi / std::sqrt(denom);
        if (m) {
            const float mi = mu * m[i] + inc;
            m[i] = mi;
            p[i] -= mi;
        } else {
            p[i] -= inc;
        }
    }
}

FD_CLONES void adam_plain(float* R p, float* R m, float* R v, const float* R g, int64_t n,
                          float alpha, float one_b1, float one_b2, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_b1;
        const float vi = v[i] + (gi * gi - v[i]) * one_b2;
        m[i] = mi;
        v[i] = vi;
        p[i] -= (mi * alpha) / (std::sqrt(vi) + eps);
    }
}

FD_CLONES void adam_amsgrad(float* R p, float* R m, float* R v, float* R vh, const float* R g,
                            int64_t n, float alpha, float one_b1, float one_b2, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_b1;
        const float vi = v[i] + (gi * gi - v[i]) * one_b2;
        const float hi = vh[i] > vi ? vh[i] : vi;
        m[i] = mi;
        v[i] = vi;
        vh[i] = hi;
        p[i] -= (mi * alpha) / (std::sqrt(hi) + eps);
    }
}

}  // namespace

void optimizer_step(const OptimizerSpec& s, int64_t iteration, float* params,
                    float* state, const float* grads, int64_t n, int64_t i0, int64_t i1) {
    float* p = params + i0;
    const float* g = grads + i0;
    const int64_t len = i1 - i0;
    const float lr = s.learning_rate;
    switch (s.kind) {
        case OptimizerKind::SGD:
            if (s.momentum == 0.0f)
                sgd_plain(p, g, len, lr);
            else
                sgd_momentum(p, state + i0, g, len, lr, s.momentum, s.nesterov);
            break;
        case OptimizerKind::RMSprop: {
            float* v = state + i0;
            float* m = s.momentum > 0.0f ? state + n + i0 : nullptr;
            float* a = s.centered ? state + n * (m ? 2 : 1) + i0 : nullptr;
            if (!m && !a)
                rmsprop_plain(p, v, g, len, lr, static_cast<float>(s.rho),
                              static_cast<float>(1.0 - s.rho), s.epsilon);
            else
                rmsprop_general(p, v, m, a, g, len, lr, static_cast<float>(s.rho),
                                static_cast<float>(1.0 - s.rho), s.epsilon, s.momentum);
            break;
        }
        case OptimizerKind::Adam: {
            // Keras 3: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), t = iterations + 1
            const float t = static_cast<float>(iteration + 1);
            const float b1 = static_cast<float>(s.beta_1), b2 = static_cast<float>(s.beta_2);
            const float b1p = std::pow(b1, t), b2p = std::pow(b2, t);
            const float alpha = lr * std::sqrt(1.0f - b2p) / (1.0f - b1p);
            float* m = state + i0;
            float* v = state + n + i0;
            if (s.amsgrad)
                adam_amsgrad(p, m, v, state + 2 * n + i0, g, len, alpha,
                             static_cast<float>(1.0 - s.beta_1),
                             static_cast<float>(1.0 - s.beta_2), s.epsilon);
            else
                adam_plain(p, m, v, g, len, alpha, static_cast<float>(1.0 - s.beta_1),
                           static_cast<float>(1.0 - s.beta_2), s.epsilon);
            break;
        }
    }
}

}  // namespace fastdense
