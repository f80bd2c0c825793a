#include "losses.h"

#include <algorithm>
#include <cmath>

namespace fastdense {
namespace {

inline bool in_clip_range(float q) { return q >= kEpsilon && q <= 1.0f - kEpsilon; }
inline float clip_prob(float q) { return std::min(std::max(q, kEpsilon), 1.0f - kEpsilon); }

// Categorical crossentropy on probabilities, one sample.
//   g: [U] or nullptr   p: [U]   t: [U] or nullptr (then one-hot at label)
float cce_probs(float* g, const float* p, const float* t, int32_t label, int64_t U,
                bool fused, float inv_B) {
    float S = 0.0f;
    for (int64_t k = 0; k < U; ++k) S += p[k];
    const float inv_S = 1.0f / S;
    float loss = 0.0f, A = 0.0f;  // A = sum_k y_k m_k
    for (int64_t k = 0; k < U; ++k) {
        const float y = t ? t[k] : (k == label ? 1.0f : 0.0f);
        if (y == 0.0f) continue;
        const float q = p[k] * inv_S;
        loss -= y * std::log(clip_prob(q));
        if (in_clip_range(q)) A += y;
    }
    if (g) {
        for (int64_t k = 0; k < U; ++k) {
            const float y = t ? t[k] : (k == label ? 1.0f : 0.0f);
            const float ym = (y != 0.0f && in_clip_range(p[k] * inv_S)) ? y : 0.0f;
            // fused: dL/dz through softmax; else dL/dp through the normalisation
            g[k] = fused ? (p[k] * A * inv_S - ym) * inv_B
                         : ((ym != 0.0f ? -ym / p[k] : 0.0f) + A * inv_S) * inv_B;
        }
    }
    return loss;
}

// Categorical crossentropy on logits (log-softmax, no clipping), one sample.
float cce_logits(float* g, const float* z, const float* t, int32_t label, int64_t U,
                 float inv_B) {
    float zmax = z[0];
    for (int64_t k = 1; k < U; ++k) zmax = std::max(zmax, z[k]);
    float se = 0.0f;
    for (int64_t k = 0; k < U; ++k) se += std::exp(z[k] - zmax);
    const float lse = zmax + std::log(se);
    float loss = 0.0f, ysum = 0.0f;
    for (int64_t k = 0; k < U; ++k) {
        const float y = t ? t[k] : (k == label ? 1.0f : 0.0f);
        loss -= y * (z[k] - lse);
        ysum += y;
    }
    if (g) {
        for (int64_t k = 0; k < U; ++k) {
            const float y = t ? t[k] : (k == label ? 1.0f : 0.0f);
            g[k] = (std::exp(z[k] - lse) * ysum - y) * inv_B;
        }
    }
    return loss;
}

// Binary crossentropy, mean over the U outputs of one sample.
float bce(float* g, const float* p, const float* t, int64_t U, bool from_logits,
          bool fused, float inv_BU) {
    float loss = 0.0f;
    for (int64_t k = 0; k < U; ++k) {
        const float y = t[k], x = p[k];
        if (from_logits) {
            // -y log(sigmoid(x)) - (1-y) log(sigmoid(-x)), computed stably
            loss += std::max(x, 0.0f) - x * y + std::log1p(std::exp(-std::fabs(x)));
            if (g) g[k] = (1.0f / (1.0f + std::exp(-x)) - y) * inv_BU;
        } else {
            const float c = clip_prob(x);
            loss -= y * std::log(c) + (1.0f - y) * std::log(1.0f - c);
            if (g) {
                const bool m = in_clip_range(x);
                g[k] = !m ? 0.0f
                     : fused ? (x - y) * inv_BU
                             : (-y / x + (1.0f - y) / (1.0f - x)) * inv_BU;
            }
        }
    }
    return loss / static_cast<float>(U);
}

float mse(float* g, const float* p, const float* t, int64_t U, float inv_BU) {
    float loss = 0.0f;
    for (int64_t k = 0; k < U; ++k) {
        const float d = p[k] - t[k];
        loss += d * d;
        if (g) g[k] = 2.0f * d * inv_BU;
    }
    return loss / static_cast<float>(U);
}

}  // namespace

bool loss_is_fused(const LossSpec& loss, Activation out_act) {
    if (loss.from_logits) return false;
    switch (loss.kind) {
        case LossKind::CategoricalCrossentropy:
        case LossKind::SparseCategoricalCrossentropy:
            return out_act == Activation::Softmax;
        case LossKind::BinaryCrossentropy:
            return out_act == Activation::Sigmoid;
        default:
            return false;
    }
}

namespace {
// One sample's loss (times w) and, with gb, its gradient row (times w): yb,
// tb (or label), gb its rows of U values.
inline float row_loss(float* gb, const float* yb, const float* tb, int32_t label, int64_t U,
                      const LossSpec& loss, bool fused, float inv_B, float inv_BU,
                      const float* w) {
    float l = 0.0f;
    switch (loss.kind) {
        case LossKind::CategoricalCrossentropy:
        case LossKind::SparseCategoricalCrossentropy:
            l = loss.from_logits ? cce_logits(gb, yb, tb, label, U, inv_B)
                                 : cce_probs(gb, yb, tb, label, U, fused, inv_B);
            break;
        case LossKind::BinaryCrossentropy:
            l = bce(gb, yb, tb, U, loss.from_logits, fused, inv_BU);
            break;
        case LossKind::MeanSquaredError:
            l = mse(gb, yb, tb, U, inv_BU);
            break;
    }
    if (w) {
        l *= *w;
        if (gb)
            for (int64_t k = 0; k < U; ++k) gb[k] *= *w;
    }
    return l;
}

// Sample b's (weighted) loss and, with grad, its gradient row (see losses.h).
inline float sample_loss(float* grad, const float* y, const float* target,
                         const int32_t* labels, int64_t b, int64_t U, const LossSpec& loss,
                         bool fused, float inv_B, float inv_BU, const float* weights) {
    return row_loss(grad ? grad + b * U : nullptr, y + b * U, target ? target + b * U : nullptr,
                    labels ? labels[b] : -1, U, loss, fused, inv_B, inv_BU,
                    weights ? weights + b : nullptr);
}
}  // namespace

double loss_forward_backward(float* grad, float* losses, const float* y,
                             const float* target, const int32_t* labels, int64_t B,
                             int64_t U, const LossSpec& loss, Activation out_act,
                             const float* weights) {
    const bool fused = loss_is_fused(loss, out_act);
    const float inv_B = 1.0f / static_cast<float>(B);
    const float inv_BU = 1.0f / static_cast<float>(B * U);
    double total = 0.0;
    for (int64_t b = 0; b < B; ++b) {
        const float l = sample_loss(grad, y, target, labels, b, U, loss, fused, inv_B, inv_BU,
                                    weights);
        if (losses) losses[b] = l;
        total += l;
    }
    return total;
}

void loss_rows(float* grad, float* losses, const float* y, const float* target,
               const int32_t* labels, int64_t r0, int64_t r1, int64_t B, int64_t U,
               const LossSpec& loss, Activation out_act, const float* weights) {
    const bool fused = loss_is_fused(loss, out_act);
    const float inv_B = 1.0f / static_cast<float>(B);
    const float inv_BU = 1.0f / static_cast<float>(B * U);
    for (int64_t b = r0; b < r1; ++b)
        losses[b] = sample_loss(grad, y, target, labels, b, U, loss, fused, inv_B, inv_BU,
                                weights);
}

void heads_loss_rows(float* grad, float* losses, float* head_losses, const float* y,
                     int64_t U, const float* target, int64_t T, int64_t r0, int64_t r1,
                     int64_t B, const LossHead* heads, int64_t H, const float* weights,
                     int64_t wcols) {
    const float inv_B = 1.0f / static_cast<float>(B);
    for (int64_t b = r0; b < r1; ++b) {
        float* gb = grad + b * U;
        for (int64_t k = 0; k < U; ++k) gb[k] = 0.0f;
        float total = 0.0f;
        for (int64_t h = 0; h < H; ++h) {
            const LossHead& hd = heads[h];
            const bool sparse = hd.loss.kind == LossKind::SparseCategoricalCrossentropy;
            const float* tb = target + b * T + hd.tcol;
            float* g = gb + hd.col;
            const float l = row_loss(g, y + b * U + hd.col, sparse ? nullptr : tb,
                                     sparse ? static_cast<int32_t>(*tb) : -1, hd.units, hd.loss,
                                     false, inv_B, 1.0f / static_cast<float>(B * hd.units),
                                     weights ? weights + b * wcols + (wcols > 1 ? hd.wcol : 0)
                                             : nullptr);
            head_losses[h * B + b] = l;
            if (hd.weight != 1.0f)
                for (int64_t k = 0; k < hd.units; ++k) g[k] *= hd.weight;
            total += hd.weight * l;
        }
        losses[b] = total;
    }
}

}  // namespace fastdense
