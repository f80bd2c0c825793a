#include "optimizers.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "clones.h"
#include "threadpool.h"

namespace fastdense {

int optimizer_slots(const OptimizerSpec& s) {
    switch (s.kind) {
        case OptimizerKind::SGD:
            return s.momentum != 0.0f ? 1 : 0;
        case OptimizerKind::RMSprop:
            return 1 + (s.momentum > 0.0f ? 1 : 0) + (s.centered ? 1 : 0);
        case OptimizerKind::Adam:
            return 2 + (s.amsgrad ? 1 : 0);
        case OptimizerKind::Adagrad:
        case OptimizerKind::Lion:
            return 1;
        case OptimizerKind::Adadelta:
        case OptimizerKind::Adamax:
        case OptimizerKind::Nadam:
        case OptimizerKind::Lamb:
        case OptimizerKind::Ftrl:
            return 2;
    }
    return 0;
}

int optimizer_scalars(const OptimizerSpec& s) {
    return s.kind == OptimizerKind::Nadam ? 1 : 0;
}

void optimizer_init_state(const OptimizerSpec& s, float* state, int64_t n) {
    const int64_t size = optimizer_state_size(s, n);
    std::fill(state, state + size, 0.0f);
    if (s.kind == OptimizerKind::Adagrad || s.kind == OptimizerKind::Ftrl)
        std::fill(state, state + n, s.initial_accumulator_value);
    if (s.kind == OptimizerKind::Nadam) state[optimizer_slots(s) * n] = 1.0f;  // u_product
}

void optimizer_begin_step(const OptimizerSpec& s, int64_t iteration, float* state, int64_t n) {
    if (s.kind == OptimizerKind::Nadam) {
        // Keras nadam.py _backend_update_step, in float32:
        //   u_product = u_product * beta_1 * (1.0 - 0.5 * 0.96 ** (iterations + 1))
        float& u = state[optimizer_slots(s) * n];
        const float t = static_cast<float>(iteration + 1);
        u = (u * static_cast<float>(s.beta_1)) * (1.0f - 0.5f * std::pow(0.96f, t));
    }
}

namespace {

// The loops below are written branch-free with restrict pointers so the
// compiler vectorizes them; on x86 with GCC/Clang each is also compiled for
// AVX2 and AVX-512 and picked at load time (target_clones). Contraction into
// FMA is off, and sqrt and division are exact, so every clone
// gives bitwise-identical results (CMake passes -ffp-contract=off: GCC would
// otherwise fuse a*b+c in the AVX-512 clone).
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

// Keras adagrad.py: acc += g^2; w -= (lr * g) / sqrt(acc + eps).
FD_CLONES void adagrad(float* R p, float* R acc, const float* R g, int64_t n, float lr,
                       float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float ai = acc[i] + gi * gi;
        acc[i] = ai;
        p[i] -= (lr * gi) / std::sqrt(ai + eps);
    }
}

// Keras adadelta.py: ag = rho*ag + (1-rho)*g^2;
// delta = -(sqrt(adv + eps) * g) / sqrt(ag + eps); adv = rho*adv + (1-rho)*delta^2;
// w += lr * delta.
FD_CLONES void adadelta(float* R p, float* R ag, float* R adv, const float* R g, int64_t n,
                        float lr, float rho, float one_rho, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float a = rho * ag[i] + one_rho * (gi * gi);
        ag[i] = a;
        const float d = -((std::sqrt(adv[i] + eps) * gi) / std::sqrt(a + eps));
        adv[i] = rho * adv[i] + one_rho * (d * d);
        p[i] += lr * d;
    }
}

// Keras adamax.py: m += (g - m)*(1-b1); u = max(b2*u, |g|);
// w -= (lr * m) / ((1 - b1^t) * (u + eps)).
FD_CLONES void adamax(float* R p, float* R m, float* R u, const float* R g, int64_t n,
                      float lr, float one_b1, float b2, float one_b1p, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_b1;
        const float bu = b2 * u[i];
        const float ag = std::fabs(gi);
        const float ui = bu > ag ? bu : ag;
        m[i] = mi;
        u[i] = ui;
        p[i] -= (lr * mi) / (one_b1p * (ui + eps));
    }
}

// Keras nadam.py update_step (u_t, u_t_1, u_product as constants of the step).
FD_CLONES void nadam(float* R p, float* R m, float* R v, const float* R g, int64_t n, float lr,
                     float one_b1, float one_b2, float u_t_1, float one_upt1, float one_ut,
                     float one_upt, float one_b2p, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_b1;
        const float vi = v[i] + (gi * gi - v[i]) * one_b2;
        m[i] = mi;
        v[i] = vi;
        const float mh = (u_t_1 * mi) / one_upt1 + (one_ut * gi) / one_upt;
        const float vh = vi / one_b2p;
        p[i] -= (mh * lr) / (std::sqrt(vh) + eps);
    }
}

// Keras lion.py: w -= lr * sign(m*b1 + g*(1-b1)); m = m*b2 + g*(1-b2).
FD_CLONES void lion(float* R p, float* R m, const float* R g, int64_t n, float lr, float b1,
                    float one_b1, float b2, float one_b2) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float c = m[i] * b1 + gi * one_b1;
        const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : c);  // sign; keeps 0, NaN
        p[i] -= lr * s;
        m[i] = m[i] * b2 + gi * one_b2;
    }
}

// Keras lamb.py, first pass: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
// returns (through sw, su) the sums of w^2 and of u^2, u = (m / c1) /
// (sqrt(v / c2) + eps), c1 = 1 - b1^t, c2 = 1 - b2^t.
//   u: [n] out (the update, for the caller's sums)
FD_CLONES void lamb_moments(float* R u, float* R m, float* R v, const float* R g, int64_t n,
                            float one_b1, float one_b2, float c1, float c2, float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_b1;
        const float vi = v[i] + (gi * gi - v[i]) * one_b2;
        m[i] = mi;
        v[i] = vi;
        u[i] = (mi / c1) / (std::sqrt(vi / c2) + eps);
    }
}

// Second pass: w -= rl * u (rl = ratio * lr), u recomputed from m and v as
// the first pass computed it.
FD_CLONES void lamb_apply(float* R p, const float* R m, const float* R v, int64_t n, float c1,
                          float c2, float eps, float rl) {
    for (int64_t i = 0; i < n; ++i) p[i] -= rl * ((m[i] / c1) / (std::sqrt(v[i] / c2) + eps));
}

// Keras ftrl.py: gu = g + shrink2 * w; na = acc + g^2;
// linear += gu - ((na^p - acc^p) / lr) * w; quadratic = na^p / lr + two_l2;
// w = (clip(linear, -l1, l1) - linear) / quadratic; acc = na  (p = -lr_power;
// x^p is pw(x): sqrt for the default p = 0.5, which vectorizes, else pow).
template <class Pow>
inline void ftrl_loop(float* R w, float* R acc, float* R lin, const float* R g, int64_t n,
                      float lr, float shrink2, float two_l2, float l1, Pow pw) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i], wi = w[i], ai = acc[i];
        const float gu = gi + shrink2 * wi;
        const float na = ai + gi * gi;
        const float pn = pw(na);
        const float li = lin[i] + (gu - ((pn - pw(ai)) / lr) * wi);
        lin[i] = li;
        const float quadratic = pn / lr + two_l2;
        float lc = li < -l1 ? -l1 : li;
        lc = lc > l1 ? l1 : lc;
        w[i] = (lc - li) / quadratic;
        acc[i] = na;
    }
}
FD_CLONES void ftrl_sqrt(float* R w, float* R acc, float* R lin, const float* R g, int64_t n,
                         float lr, float shrink2, float two_l2, float l1) {
    ftrl_loop(w, acc, lin, g, n, lr, shrink2, two_l2, l1, [](float x) { return std::sqrt(x); });
}
void ftrl(float* R w, float* R acc, float* R lin, const float* R g, int64_t n, float lr,
          float p, float shrink2, float two_l2, float l1) {
    if (p == 0.5f)
        ftrl_sqrt(w, acc, lin, g, n, lr, shrink2, two_l2, l1);
    else
        ftrl_loop(w, acc, lin, g, n, lr, shrink2, two_l2, l1,
                  [p](float x) { return std::pow(x, p); });
}

// ---- gradient transforms and weight decay (Keras's _clip_gradients and
// _apply_weight_decay), into a tile buffer kept in L1.
FD_CLONES void xf_clipnorm(float* R out, const float* R g, int64_t n, float a, float b) {
    for (int64_t i = 0; i < n; ++i) out[i] = (g[i] * a) / b;
}
FD_CLONES void xf_scale(float* R out, const float* R g, int64_t n, float a) {
    for (int64_t i = 0; i < n; ++i) out[i] = g[i] * a;
}
FD_CLONES void xf_clipvalue(float* R out, const float* R g, int64_t n, float a) {
    for (int64_t i = 0; i < n; ++i) {
        float x = g[i];
        x = x < -a ? -a : x;  // NaN stays NaN, as ops.clip
        x = x > a ? a : x;
        out[i] = x;
    }
}
FD_CLONES void weight_decay(float* R p, int64_t n, float wd, float lr) {
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] - p[i] * wd * lr;
}

// Calls f(j0, len, g) for tiles [j0, j0 + len) of [i0, i1) with the tile's
// gradients after transform t (clipping, in a small buffer kept in L1) and
// the tile's weights after t's weight decay: still one pass over memory.
constexpr int64_t kTile = 1024;  // (elements per tile of transformed_tiles)

template <class F>
void transformed_tiles(const GradTransform& t, float lr, float* params, const float* grads,
                       int64_t i0, int64_t i1, F&& f) {
    alignas(64) float buf[kTile];
    for (int64_t j0 = i0; j0 < i1; j0 += kTile) {
        const int64_t len = std::min(kTile, i1 - j0);
        const float* g = grads + j0;
        switch (t.mode) {
            case GradTransform::ClipNorm: xf_clipnorm(buf, g, len, t.a, t.b); g = buf; break;
            case GradTransform::Scale: xf_scale(buf, g, len, t.a); g = buf; break;
            case GradTransform::ClipValue: xf_clipvalue(buf, g, len, t.a); g = buf; break;
            default: break;
        }
        if (t.decay != 0.0f) weight_decay(params + j0, len, t.decay, lr);
        f(j0, len, g);
    }
}

// Sum of squares in double, 8 independent lanes (fixed order: deterministic).
double sum_squares(const float* g, int64_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(g[i + k]) * g[i + k];
    for (; i < n; ++i) acc[0] += static_cast<double>(g[i]) * g[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Per-step constants, computed once per optimizer_step call.
struct StepConsts {
    float lr = 0, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, h = 0, k = 0;
};

StepConsts step_consts(const OptimizerSpec& s, int64_t iteration, const float* state,
                       int64_t n) {
    StepConsts c;
    c.lr = s.learning_rate;
    const float t = static_cast<float>(iteration + 1);
    const float b1 = static_cast<float>(s.beta_1), b2 = static_cast<float>(s.beta_2);
    switch (s.kind) {
        case OptimizerKind::Adam: {
            // Keras 3: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), t = iterations + 1
            const float b1p = std::pow(b1, t), b2p = std::pow(b2, t);
            c.a = c.lr * std::sqrt(1.0f - b2p) / (1.0f - b1p);
            c.b = static_cast<float>(1.0 - s.beta_1);
            c.c = static_cast<float>(1.0 - s.beta_2);
            break;
        }
        case OptimizerKind::Adamax:
            c.a = static_cast<float>(1.0 - s.beta_1);
            c.b = b2;
            c.c = 1.0f - std::pow(b1, t);
            break;
        case OptimizerKind::Nadam: {
            // beta_1, beta_2 cast to float32 first: 1 - beta in float32
            const float decay = 0.96f;
            const float u_t = b1 * (1.0f - 0.5f * std::pow(decay, t));
            const float u_t_1 = b1 * (1.0f - 0.5f * std::pow(decay, t + 1.0f));
            const float upt = state[optimizer_slots(s) * n];  // already this step's
            const float upt1 = upt * u_t_1;
            c.a = 1.0f - b1;
            c.b = 1.0f - b2;
            c.c = u_t_1;
            c.d = 1.0f - upt1;
            c.e = 1.0f - u_t;
            c.f = 1.0f - upt;
            c.h = 1.0f - std::pow(b2, t);
            break;
        }
        case OptimizerKind::Lion:
            c.a = b1;
            c.b = 1.0f - b1;
            c.c = b2;
            c.d = 1.0f - b2;
            break;
        case OptimizerKind::Ftrl: {
            // l2_reg = l2 + beta / (2 * lr) in float32; 2 * l2_reg; 2 * shrinkage
            const float l2 = static_cast<float>(s.l2_regularization_strength) +
                             static_cast<float>(s.beta) / (2.0f * c.lr);
            c.a = static_cast<float>(-s.learning_rate_power);
            c.b = static_cast<float>(2.0 * s.l2_shrinkage_regularization_strength);
            c.c = 2.0f * l2;
            c.d = static_cast<float>(s.l1_regularization_strength);
            break;
        }
        case OptimizerKind::Lamb:
            // Keras: 1 - beta in Python (double), beta^t in float32
            c.a = static_cast<float>(1.0 - s.beta_1);
            c.b = static_cast<float>(1.0 - s.beta_2);
            c.c = 1.0f - std::pow(b1, t);
            c.d = 1.0f - std::pow(b2, t);
            break;
        default:
            break;
    }
    return c;
}

// The update of len elements at flat index i0 (params p and grads g point there).
void step_range(const OptimizerSpec& s, const StepConsts& c, float* p, float* state,
                const float* g, int64_t n, int64_t i0, int64_t len) {
    float* s0 = state + i0;
    float* s1 = state + n + i0;
    const float lr = c.lr;
    switch (s.kind) {
        case OptimizerKind::SGD:
            if (s.momentum == 0.0f)
                sgd_plain(p, g, len, lr);
            else
                sgd_momentum(p, s0, g, len, lr, s.momentum, s.nesterov);
            break;
        case OptimizerKind::RMSprop: {
            float* m = s.momentum > 0.0f ? s1 : nullptr;
            float* a = s.centered ? state + n * (m ? 2 : 1) + i0 : nullptr;
            if (!m && !a)
                rmsprop_plain(p, s0, g, len, lr, static_cast<float>(s.rho),
                              static_cast<float>(1.0 - s.rho), s.epsilon);
            else
                rmsprop_general(p, s0, m, a, g, len, lr, static_cast<float>(s.rho),
                                static_cast<float>(1.0 - s.rho), s.epsilon, s.momentum);
            break;
        }
        case OptimizerKind::Adam:
            if (s.amsgrad)
                adam_amsgrad(p, s0, s1, state + 2 * n + i0, g, len, c.a, c.b, c.c, s.epsilon);
            else
                adam_plain(p, s0, s1, g, len, c.a, c.b, c.c, s.epsilon);
            break;
        case OptimizerKind::Adagrad:
            adagrad(p, s0, g, len, lr, s.epsilon);
            break;
        case OptimizerKind::Adadelta:
            adadelta(p, s0, s1, g, len, lr, static_cast<float>(s.rho),
                     static_cast<float>(1.0 - s.rho), s.epsilon);
            break;
        case OptimizerKind::Adamax:
            adamax(p, s0, s1, g, len, lr, c.a, c.b, c.c, s.epsilon);
            break;
        case OptimizerKind::Nadam:
            nadam(p, s0, s1, g, len, lr, c.a, c.b, c.c, c.d, c.e, c.f, c.h, s.epsilon);
            break;
        case OptimizerKind::Lion:
            lion(p, s0, g, len, lr, c.a, c.b, c.c, c.d);
            break;
        case OptimizerKind::Ftrl:
            ftrl(p, s0, s1, g, len, lr, c.a, c.b, c.c, c.d);
            break;
        case OptimizerKind::Lamb:
            break;  // (optimizer_update's two passes)
    }
}

}  // namespace

void adam_step_scalars(const OptimizerSpec& s, int64_t iteration, float& alpha,
                       float& one_b1, float& one_b2) {
    OptimizerSpec a = s;
    a.kind = OptimizerKind::Adam;
    const StepConsts c = step_consts(a, iteration, nullptr, 0);
    alpha = c.a;
    one_b1 = c.b;
    one_b2 = c.c;
}

void optimizer_step(const OptimizerSpec& s, int64_t iteration, float* params,
                    float* state, const float* grads, int64_t n, int64_t i0, int64_t i1,
                    const GradTransform& t) {
    if (s.kind == OptimizerKind::Lamb)
        throw std::invalid_argument(
            "Lamb's step needs whole variables (a per-variable trust ratio): "
            "use optimizer_update");
    const StepConsts c = step_consts(s, iteration, state, n);
    if (t.mode == GradTransform::None && t.decay == 0.0f) {
        step_range(s, c, params + i0, state, grads + i0, n, i0, i1 - i0);
        return;
    }
    transformed_tiles(t, s.learning_rate, params, grads, i0, i1,
                      [&](int64_t j0, int64_t len, const float* g) {
                          step_range(s, c, params + j0, state, g, n, j0, len);
                      });
}

namespace {

// Lamb's two passes over the tasks of optimizer_update (one variable per
// merged segment): the moments, with the transformed gradients and weight
// decay first, and each task's sums; then each variable's trust ratio and
// the update.
void lamb_update(const OptimizerSpec& s, int64_t iteration, float* params, float* state,
                 const float* grads, int64_t n, UpdateScratch& sc) {
    const StepConsts c = step_consts(s, iteration, state, n);
    const int64_t ntasks = static_cast<int64_t>(sc.tasks.size());
    sc.partial2.assign(2 * sc.tasks.size(), 0.0);
    parallel_for(ntasks, [&](int64_t k) {
        const auto& tk = sc.tasks[static_cast<size_t>(k)];
        const GradTransform& t = sc.xform[static_cast<size_t>(tk.seg)];
        double* sums = sc.partial2.data() + 2 * k;
        alignas(64) float u[kTile];  // (one tile's updates)
        transformed_tiles(t, s.learning_rate, params, grads, tk.i0, tk.i1,
                          [&](int64_t j0, int64_t len, const float* g) {
                              lamb_moments(u, state + j0, state + n + j0, g, len, c.a, c.b,
                                           c.c, c.d, s.epsilon);
                              sums[0] += sum_squares(params + j0, len);
                              sums[1] += sum_squares(u, len);
                          });
    });
    // Per variable, in task order: ratio = ||w|| / ||u|| (1 when either is 0),
    // as Keras's where(w_norm > 0, where(g_norm > 0, w_norm / g_norm, 1), 1).
    std::vector<float>& rl = sc.ratios;
    rl.assign(sc.merged.size(), 0.0f);
    size_t k = 0;
    for (size_t v = 0; v < sc.merged.size(); ++v) {
        double sw = 0.0, su = 0.0;
        for (; k < sc.tasks.size() && sc.tasks[k].seg == static_cast<int64_t>(v); ++k) {
            sw += sc.partial2[2 * k];
            su += sc.partial2[2 * k + 1];
        }
        const float wn = std::sqrt(static_cast<float>(sw));
        const float un = std::sqrt(static_cast<float>(su));
        const float ratio = wn > 0.0f ? (un > 0.0f ? wn / un : 1.0f) : 1.0f;
        rl[v] = ratio * s.learning_rate;
    }
    parallel_for(ntasks, [&](int64_t k2) {
        const auto& tk = sc.tasks[static_cast<size_t>(k2)];
        lamb_apply(params + tk.i0, state + tk.i0, state + n + tk.i0, tk.i1 - tk.i0, c.c, c.d,
                   s.epsilon, rl[static_cast<size_t>(tk.seg)]);
    });
}

}  // namespace

void optimizer_update(const OptimizerSpec& s, int64_t iteration, float* params, float* state,
                      const float* grads, int64_t n, const std::vector<ParamSegment>& segs,
                      UpdateScratch& sc) {
    constexpr int64_t kChunk = 1 << 14;
    const bool lamb = s.kind == OptimizerKind::Lamb;
    const bool per_var = s.clipnorm > 0.0f;
    const bool global = !per_var && s.global_clipnorm > 0.0f;
    const bool by_value = !per_var && !global && s.clipvalue > 0.0f;
    const bool decays = s.weight_decay != 0.0f;
    // Adjacent variables treated alike share chunks.
    sc.merged.clear();
    for (const ParamSegment& seg : segs) {
        if (seg.end <= seg.begin) continue;
        if (!per_var && !lamb && !sc.merged.empty() && sc.merged.back().end == seg.begin &&
            (!decays || sc.merged.back().decay == seg.decay))
            sc.merged.back().end = seg.end;
        else
            sc.merged.push_back(seg);
    }
    sc.tasks.clear();
    for (size_t k = 0; k < sc.merged.size(); ++k)
        for (int64_t i0 = sc.merged[k].begin; i0 < sc.merged[k].end; i0 += kChunk)
            sc.tasks.push_back({static_cast<int64_t>(k), i0,
                                std::min(sc.merged[k].end, i0 + kChunk)});
    const int64_t ntasks = static_cast<int64_t>(sc.tasks.size());
    sc.xform.assign(sc.merged.size(), GradTransform{});
    if (per_var || global) {
        sc.partial.resize(sc.tasks.size());
        parallel_for(ntasks, [&](int64_t k) {
            const auto& tk = sc.tasks[static_cast<size_t>(k)];
            sc.partial[static_cast<size_t>(k)] = sum_squares(grads + tk.i0, tk.i1 - tk.i0);
        });
    }
    if (per_var) {
        // Keras _clip_by_norm: g * clipnorm / max(||g||, clipnorm), ||g|| = 0 when g = 0
        const float cn = s.clipnorm;
        size_t k = 0;
        for (size_t v = 0; v < sc.merged.size(); ++v) {
            double sum = 0.0;
            for (; k < sc.tasks.size() && sc.tasks[k].seg == static_cast<int64_t>(v); ++k)
                sum += sc.partial[k];
            const float l2sum = static_cast<float>(sum);
            const float l2norm = l2sum > 0.0f ? std::sqrt(l2sum) : l2sum;
            sc.xform[v].mode = GradTransform::ClipNorm;
            sc.xform[v].a = cn;
            sc.xform[v].b = l2norm < cn ? cn : l2norm;
        }
    } else if (global) {
        // Keras clip_by_global_norm: scale = c * min(1/norm, 1/c) + (norm - norm)
        double sum = 0.0;
        for (double x : sc.partial) sum += x;
        const float norm = std::sqrt(static_cast<float>(sum));
        const float inv = 1.0f / norm;
        const float inv_c = static_cast<float>(1.0 / static_cast<double>(s.global_clipnorm));
        const float scale = s.global_clipnorm * (inv < inv_c ? inv : inv_c) + (norm - norm);
        for (auto& x : sc.xform) {
            x.mode = GradTransform::Scale;
            x.a = scale;
        }
    } else if (by_value) {
        for (auto& x : sc.xform) {
            x.mode = GradTransform::ClipValue;
            x.a = s.clipvalue;
        }
    }
    if (decays)
        for (size_t v = 0; v < sc.merged.size(); ++v)
            sc.xform[v].decay = sc.merged[v].decay ? s.weight_decay : 0.0f;
    optimizer_begin_step(s, iteration, state, n);
    if (lamb) {
        lamb_update(s, iteration, params, state, grads, n, sc);
        return;
    }
    parallel_for(ntasks, [&](int64_t k) {
        const auto& tk = sc.tasks[static_cast<size_t>(k)];
        optimizer_step(s, iteration, params, state, grads, n, tk.i0, tk.i1,
                       sc.xform[static_cast<size_t>(tk.seg)]);
    });
}

void ema_update(float* average, const float* variable, int64_t n, float momentum) {
    const float keep = momentum, take = 1.0f - momentum;  // (Keras: 1 - m in float32)
    for (int64_t i = 0; i < n; ++i) average[i] = keep * average[i] + take * variable[i];
}

}  // namespace fastdense
