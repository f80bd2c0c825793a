// The optimizer step the kernels can fuse into dW's store, in portable form
// (kernels.h).  Built with -ffp-contract=off (kernels.cmake): each product and
// sum rounded on its own, as the engine's optimizer loop (optimizers.cpp)
// computes it, so fused and separate steps give the same bits.
#include <cfloat>
#include <cmath>

#include "kernels.h"

namespace fastdense {

void fused_rmsprop_ref(float* __restrict p, float* __restrict v, const float* __restrict g,
                       int64_t n, const FusedRmsprop& u) {
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float vi = u.rho * v[i] + u.one_rho * (gi * gi);
        v[i] = vi;
        p[i] -= u.lr * gi / std::sqrt(vi + u.eps);
        bad |= !(std::fabs(p[i]) <= FLT_MAX);
    }
    if (bad && u.nonfinite) u.nonfinite->store(1, std::memory_order_relaxed);
}

}  // namespace fastdense
