#include "activations.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "threadpool.h"

namespace fastdense {
namespace {

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
// Elements per task of the elementwise passes (rows of at least this many
// for softmax): each element, or row, is computed alone, so any split over
// the pool gives the same bits.
constexpr int64_t kChunk = 8192;

template <class T>
T softplus(T x) {  // log(1 + exp(x)), stable
    return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

template <class T>
T sigm(T x) { return T(1) / (T(1) + std::exp(-x)); }

// keras.layers.ReLU: x where x > threshold (relu when it is 0), clipped to
// [0, max_value], minus negative_slope * relu(threshold - x).
template <class T>
T relu_general(T x, const ActParams& p) {
    const T t = T(p.relu_threshold);
    T y = p.relu_threshold != 0.0f ? (x > t ? x : x * T(0)) : (x < T(0) ? T(0) : x);
    if (p.relu_max < std::numeric_limits<float>::infinity())
        y = std::min(std::max(y, T(0)), T(p.relu_max));
    if (p.relu_slope != 0.0f) {
        const T neg = t - x;
        y -= T(p.relu_slope) * (neg > T(0) ? neg : T(0));
    }
    return y;
}

template <class T>
T f(Activation a, T x, const ActParams& p) {
    switch (a) {
        case Activation::Linear: return x;
        case Activation::Relu: return x < T(0) ? T(0) : x;  // (NaN stays, as Keras)
        case Activation::Sigmoid: return sigm(x);
        case Activation::Tanh: return std::tanh(x);
        case Activation::Elu: return x > T(0) ? x : T(p.elu_alpha) * std::expm1(x);
        case Activation::Selu:
            return T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * std::expm1(x));
        case Activation::Gelu: return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
        case Activation::GeluTanh:
            return T(0.5) * x *
                   (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x)));
        case Activation::Silu: return x * sigm(x);
        case Activation::LeakyRelu: return x > T(0) ? x : T(p.leaky_slope) * x;
        case Activation::ReluGeneral: return relu_general(x, p);
        case Activation::Softplus: return softplus(x);
        case Activation::Softsign: return x / (std::fabs(x) + T(1));
        case Activation::Relu6: return std::min(std::max(x, T(0)), T(6));
        case Activation::HardSigmoid:
            return std::min(std::max(x / T(6) + T(0.5), T(0)), T(1));
        case Activation::Exponential: return std::exp(x);
        case Activation::HardSilu:
            return x * std::min(std::max(x / T(6) + T(0.5), T(0)), T(1));
        case Activation::Mish: return x * std::tanh(softplus(x));
        // (the formulas of Keras 3's JAX backend, jax.nn's)
        case Activation::Celu: return x > T(0) ? x : std::expm1(x);
        case Activation::HardTanh: return x > T(1) ? T(1) : (x < T(-1) ? T(-1) : x);
        // (the shrinks written so that NaN stays NaN, as in every other pass)
        case Activation::HardShrink: return std::fabs(x) <= T(0.5) ? T(0) : x;
        case Activation::SoftShrink:
            return std::fabs(x) <= T(0.5) ? T(0) : (x > T(0) ? x - T(0.5) : x + T(0.5));
        case Activation::TanhShrink: return x - std::tanh(x);
        case Activation::Squareplus: return (x + std::sqrt(x * x + T(4))) / T(2);
        case Activation::SparsePlus:
            return x <= T(-1) ? T(0) : (x >= T(1) ? x : (x + T(1)) * (x + T(1)) / T(4));
        case Activation::LogSigmoid: return -softplus(-x);
        case Activation::SparseSigmoid:
            return x <= T(-1) ? T(0) : (x >= T(1) ? T(1) : T(0.5) * (x + T(1)));
        default: break;
    }
    throw std::invalid_argument("activation has no elementwise form");
}

template <class T>
T df(Activation a, T x, const ActParams& p) {
    switch (a) {
        case Activation::Linear: return T(1);
        case Activation::Relu: return x > T(0) ? T(1) : T(0);
        case Activation::Sigmoid: { const T s = sigm(x); return s * (T(1) - s); }
        case Activation::Tanh: { const T t = std::tanh(x); return T(1) - t * t; }
        case Activation::Elu: return x > T(0) ? T(1) : T(p.elu_alpha) * std::exp(x);
        case Activation::Selu:
            return T(kSeluScale) * (x > T(0) ? T(1) : T(kSeluAlpha) * std::exp(x));
        case Activation::Gelu:
            return T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2))) +
                   x * T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
        case Activation::GeluTanh: {
            const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
            const T t = std::tanh(u);
            const T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
            return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
        }
        case Activation::Silu: { const T s = sigm(x); return s * (T(1) + x * (T(1) - s)); }
        case Activation::LeakyRelu: return x > T(0) ? T(1) : T(p.leaky_slope);
        case Activation::ReluGeneral: {
            const T t = T(p.relu_threshold);
            const bool clipped = p.relu_max < std::numeric_limits<float>::infinity();
            T d = x > t && (!clipped || (x > T(0) && x < T(p.relu_max))) ? T(1) : T(0);
            if (p.relu_slope != 0.0f && x < t) d += T(p.relu_slope);
            return d;
        }
        case Activation::Softplus: return sigm(x);
        case Activation::Softsign: { const T d = std::fabs(x) + T(1); return T(1) / (d * d); }
        case Activation::Relu6: return x > T(0) && x < T(6) ? T(1) : T(0);
        case Activation::HardSigmoid: return x > T(-3) && x < T(3) ? T(1) / T(6) : T(0);
        case Activation::Exponential: return std::exp(x);
        case Activation::HardSilu: {
            if (x <= T(-3)) return T(0);
            if (x >= T(3)) return T(1);
            return x / T(3) + T(0.5);
        }
        case Activation::Mish: {
            const T sp = softplus(x), t = std::tanh(sp);
            return t + x * (T(1) - t * t) * sigm(x);
        }
        case Activation::Celu: return x > T(0) ? T(1) : std::exp(x);
        case Activation::HardTanh: return x > T(-1) && x < T(1) ? T(1) : T(0);
        case Activation::HardShrink:
        case Activation::SoftShrink: return std::fabs(x) > T(0.5) ? T(1) : T(0);
        case Activation::TanhShrink: { const T t = std::tanh(x); return t * t; }
        case Activation::Squareplus: return (T(1) + x / std::sqrt(x * x + T(4))) / T(2);
        case Activation::SparsePlus:
            return x <= T(-1) ? T(0) : (x >= T(1) ? T(1) : (x + T(1)) / T(2));
        case Activation::LogSigmoid: return sigm(-x);
        case Activation::SparseSigmoid: return x > T(-1) && x < T(1) ? T(0.5) : T(0);
        default: break;
    }
    throw std::invalid_argument("activation has no elementwise derivative");
}

}  // namespace

void activation_forward(Activation a, float* y, const float* z, int64_t rows, int64_t cols,
                        const ActParams& p) {
    if (a == Activation::Softmax || a == Activation::LogSoftmax) {
        const int64_t per = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
        parallel_chunks(rows, per, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* zr = z + r * cols;
            float* yr = y + r * cols;
            float m = zr[0];
            for (int64_t c = 1; c < cols; ++c) m = std::max(m, zr[c]);
            float s = 0.0f;
            for (int64_t c = 0; c < cols; ++c) s += std::exp(zr[c] - m);
            if (a == Activation::LogSoftmax) {
                const float lse = m + std::log(s);
                for (int64_t c = 0; c < cols; ++c) yr[c] = zr[c] - lse;
            } else {
                const float inv = 1.0f / s;
                for (int64_t c = 0; c < cols; ++c) yr[c] = std::exp(zr[c] - m) * inv;
            }
        }
        });
        return;
    }
    const int64_t n = rows * cols;
    const auto vec = active_kernels().act_elementwise;
    parallel_chunks(n, kChunk, [&](int64_t i0, int64_t i1) {
        if (vec && vec(a, false, y + i0, nullptr, z + i0, i1 - i0, p)) return;
        for (int64_t i = i0; i < i1; ++i) y[i] = f<float>(a, z[i], p);
    });
}

void activation_backward(Activation a, float* dz, const float* dy, const float* z,
                         const float* y, int64_t rows, int64_t cols, const ActParams& p) {
    if (a == Activation::Softmax || a == Activation::LogSoftmax) {
        const int64_t per = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
        parallel_chunks(rows, per, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* dyr = dy + r * cols;
            const float* yr = y + r * cols;
            float* dzr = dz + r * cols;
            float s = 0.0f;
            if (a == Activation::Softmax) {
                for (int64_t c = 0; c < cols; ++c) s += dyr[c] * yr[c];
                for (int64_t c = 0; c < cols; ++c) dzr[c] = yr[c] * (dyr[c] - s);
            } else {  // y = log_softmax(z): dz = dy - exp(y) * sum(dy)
                for (int64_t c = 0; c < cols; ++c) s += dyr[c];
                for (int64_t c = 0; c < cols; ++c) dzr[c] = dyr[c] - std::exp(yr[c]) * s;
            }
        }
        });
        return;
    }
    const int64_t n = rows * cols;
    const auto vec = active_kernels().act_elementwise;
    parallel_chunks(n, kChunk, [&](int64_t i0, int64_t i1) {
        if (vec && vec(a, true, dz + i0, dy + i0, z + i0, i1 - i0, p)) return;
        for (int64_t i = i0; i < i1; ++i) dz[i] = dy[i] * df<float>(a, z[i], p);
    });
}

void prelu_forward(float* y, const float* x, const float* alpha, bool shared, int64_t rows,
                   int64_t cols) {
    const int64_t per = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
    parallel_chunks(rows, per, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* xr = x + r * cols;
            float* yr = y + r * cols;
            for (int64_t c = 0; c < cols; ++c) {
                const float v = xr[c];
                const float pos = v > 0.0f ? v : 0.0f, neg = v < 0.0f ? -v : 0.0f;
                const float out = pos + -alpha[shared ? 0 : c] * neg;
                yr[c] = v == v ? out : v;  // (NaN stays NaN, as relu's)
            }
        }
    });
}

void prelu_backward(float* dx, float* dalpha, const float* dy, const float* x,
                    const float* alpha, bool shared, int64_t rows, int64_t cols,
                    double* sums) {
    if (dalpha) {
        // Column sums over the rows in row order (any split: the same bits),
        // then, when shared, over the columns in order.
        constexpr int64_t kSlab = 64;
        parallel_chunks(cols, kSlab, [&](int64_t c0, int64_t c1) {
            double s[kSlab] = {};
            for (int64_t r = 0; r < rows; ++r) {
                const float* xr = x + r * cols;
                const float* dyr = dy + r * cols;
                for (int64_t c = c0; c < c1; ++c)
                    if (xr[c] < 0.0f) s[c - c0] += static_cast<double>(dyr[c]) * xr[c];
            }
            for (int64_t c = c0; c < c1; ++c) sums[c] = s[c - c0];
        });
        if (shared) {
            double t = 0.0;
            for (int64_t c = 0; c < cols; ++c) t += sums[c];
            dalpha[0] = static_cast<float>(t);
        } else {
            for (int64_t c = 0; c < cols; ++c) dalpha[c] = static_cast<float>(sums[c]);
        }
    }
    if (!dx) return;
    const int64_t per = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
    parallel_chunks(rows, per, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* xr = x + r * cols;
            const float* dyr = dy + r * cols;
            float* dxr = dx + r * cols;
            for (int64_t c = 0; c < cols; ++c) {
                const float v = xr[c];
                dxr[c] = v > 0.0f ? dyr[c] : (v < 0.0f ? dyr[c] * alpha[shared ? 0 : c] : 0.0f);
            }
        }
    });
}

double activation_ref(Activation a, double z, const ActParams& p) { return f<double>(a, z, p); }
double activation_grad_ref(Activation a, double z, const ActParams& p) {
    return df<double>(a, z, p);
}

}  // namespace fastdense
