// The optimizer steps the kernels can fuse into dW's store, in portable form
// (kernels.h).  Built with -ffp-contract=off (kernels.cmake): each product and
// sum rounded on its own, as the engine's optimizer loops (optimizers.cpp)
// compute them, so fused and separate steps give the same bits.
#include <cfloat>
#include <cmath>
#include <vector>

#include "kernels.h"

namespace fastdense {

void fused_step_ref(const FusedStep& u, int64_t off, const float* __restrict g_in,
                    int64_t n) {
    float* __restrict p = u.p + off;
    bool bad = false;
    const float* __restrict g = g_in;
    if (u.reg_a != 0.0f || u.reg_b != 0.0f) {  // (the regularizer's term, from p before the step)
        static thread_local std::vector<float> gr;
        gr.resize(static_cast<size_t>(n > 0 ? n : 1));
        for (int64_t i = 0; i < n; ++i) {
            const float sgn = p[i] >= 0.0f ? 1.0f : -1.0f;
            gr[static_cast<size_t>(i)] = g_in[i] + (u.reg_a * sgn + u.reg_b * p[i]);
        }
        g = gr.data();
    }
    if (u.wd != 0.0f)  // (Keras's weight decay, before the update)
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] - p[i] * u.wd * u.wd_lr;
    if (u.kind == FusedStep::Kind::SGD) {
        if (u.m) {
            float* __restrict m = u.m + off;
            for (int64_t i = 0; i < n; ++i) {
                const float mi = -g[i] * u.lr + m[i] * u.momentum;
                m[i] = mi;
                p[i] += u.nesterov ? -g[i] * u.lr + mi * u.momentum : mi;
                bad |= !(std::fabs(p[i]) <= FLT_MAX);
            }
        } else {
            for (int64_t i = 0; i < n; ++i) {
                p[i] -= g[i] * u.lr;
                bad |= !(std::fabs(p[i]) <= FLT_MAX);
            }
        }
        if (bad && u.nonfinite) u.nonfinite->store(1, std::memory_order_relaxed);
        return;
    }
    float* __restrict v = u.v + off;
    if (u.kind == FusedStep::Kind::Adam) {
        float* __restrict m = u.m + off;
        for (int64_t i = 0; i < n; ++i) {
            const float gi = g[i];
            const float mi = m[i] + (gi - m[i]) * u.one_b1;
            const float vi = v[i] + (gi * gi - v[i]) * u.one_b2;
            m[i] = mi;
            v[i] = vi;
            p[i] -= (mi * u.alpha) / (std::sqrt(vi) + u.eps);
            bad |= !(std::fabs(p[i]) <= FLT_MAX);
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float gi = g[i];
            const float vi = u.rho * v[i] + u.one_rho * (gi * gi);
            v[i] = vi;
            p[i] -= u.lr * gi / std::sqrt(vi + u.eps);
            bad |= !(std::fabs(p[i]) <= FLT_MAX);
        }
    }
    if (bad && u.nonfinite) u.nonfinite->store(1, std::memory_order_relaxed);
}

}  // namespace fastdense
