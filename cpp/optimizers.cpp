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

void sgd(const OptimizerSpec& s, float* p, float* st, const float* g, int64_t n,
         int64_t i0, int64_t i1) {
    const float lr = s.learning_rate;
    if (s.momentum == 0.0f) {
        for (int64_t i = i0; i < i1; ++i) p[i] -= g[i] * lr;
        return;
    }
    float* m = st;
    (void)n;
    const float mu = s.momentum;
    for (int64_t i = i0; i < i1; ++i) {
        m[i] = -g[i] * lr + m[i] * mu;
        p[i] += s.nesterov ? -g[i] * lr + m[i] * mu : m[i];
    }
}

void rmsprop(const OptimizerSpec& s, float* p, float* st, const float* g, int64_t n,
             int64_t i0, int64_t i1) {
    const float lr = s.learning_rate, rho = s.rho, eps = s.epsilon, mu = s.momentum;
    float* vel = st;
    float* mom = s.momentum > 0.0f ? st + n : nullptr;
    float* avg = s.centered ? st + n * (mom ? 2 : 1) : nullptr;
    for (int64_t i = i0; i < i1; ++i) {
        const float gi = g[i];
        vel[i] = rho * vel[i] + (1.0f - rho) * (gi * gi);
        float denom;
        if (avg) {
            avg[i] = rho * avg[i] + (1.0f - rho) * gi;
            denom = vel[i] - avg[i] * avg[i] + eps;
        } else {
            denom = vel[i] + eps;
        }
        const float inc = lr * gi / std::sqrt(denom);
        if (mom) {
            mom[i] = mu * mom[i] + inc;
            p[i] -= mom[i];
        } else {
            p[i] -= inc;
        }
    }
}

void adam(const OptimizerSpec& s, int64_t iteration, float* p, float* st, const float* g,
          int64_t n, int64_t i0, int64_t i1) {
    const float step = static_cast<float>(iteration + 1);
    const float b1p = std::pow(s.beta_1, step), b2p = std::pow(s.beta_2, step);
    const float alpha = s.learning_rate * std::sqrt(1.0f - b2p) / (1.0f - b1p);
    const float one_b1 = 1.0f - s.beta_1, one_b2 = 1.0f - s.beta_2, eps = s.epsilon;
    float* m = st;
    float* v = st + n;
    float* vhat = s.amsgrad ? st + 2 * n : nullptr;
    for (int64_t i = i0; i < i1; ++i) {
        const float gi = g[i];
        m[i] += (gi - m[i]) * one_b1;
        v[i] += (gi * gi - v[i]) * one_b2;
        float vi = v[i];
        if (vhat) {
            vhat[i] = vhat[i] > vi ? vhat[i] : vi;
            vi = vhat[i];
        }
        p[i] -= (m[i] * alpha) / (std::sqrt(vi) + eps);
    }
}

}  // namespace

void optimizer_step(const OptimizerSpec& spec, int64_t iteration, float* params,
                    float* state, const float* grads, int64_t n, int64_t i0, int64_t i1) {
    switch (spec.kind) {
        case OptimizerKind::SGD:
            sgd(spec, params, state, grads, n, i0, i1);
            break;
        case OptimizerKind::RMSprop:
            rmsprop(spec, params, state, grads, n, i0, i1);
            break;
        case OptimizerKind::Adam:
            adam(spec, iteration, params, state, grads, n, i0, i1);
            break;
    }
}

}  // namespace fastdense
