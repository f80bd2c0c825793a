// Portable (intrinsic-free) dense kernels: the reference path that compiles on
// any target, plus the naive triple loops of dense_ref.h.
//
// Layout of the work: every output element is produced by exactly one task in
// a fixed summation order, so results are bitwise reproducible for any thread
// count.  Inner loops run over contiguous memory so the compiler vectorizes
// them with whatever the baseline ISA offers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "dense_ref.h"
#include "kernels.h"
#include "threadpool.h"

namespace fastdense {
namespace {

inline float sigmoidf_(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// y[r, :] = act(y[r, :]) for rows of length n (y already holds z).
void activate_rows(float* y, int64_t rows, int64_t n, Activation act) {
    if (n <= 0) return;
    for (int64_t r = 0; r < rows; ++r) {
        float* yr = y + r * n;
        switch (act) {
            case Activation::Linear: break;
            case Activation::Relu:
                for (int64_t j = 0; j < n; ++j) yr[j] = yr[j] < 0.0f ? 0.0f : yr[j];  // (NaN stays)
                break;
            case Activation::Sigmoid:
                for (int64_t j = 0; j < n; ++j) yr[j] = sigmoidf_(yr[j]);
                break;
            case Activation::Tanh:
                for (int64_t j = 0; j < n; ++j) yr[j] = std::tanh(yr[j]);
                break;
            case Activation::Softmax: {
                float m = yr[0];
                for (int64_t j = 1; j < n; ++j) m = std::max(m, yr[j]);
                float s = 0.0f;
                for (int64_t j = 0; j < n; ++j) { yr[j] = std::exp(yr[j] - m); s += yr[j]; }
                float inv = 1.0f / s;
                for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
                break;
            }
            default: break;  // (the kernels take Linear..Softmax only: kernel_fusable)
        }
    }
}

// dz[r, :] (= dL/dy on entry) becomes dL/dz, computed from y.
void act_backward_rows(float* dz, const float* y, int64_t rows, int64_t n, Activation act) {
    for (int64_t r = 0; r < rows; ++r) {
        float* d = dz + r * n;
        const float* yr = y + r * n;
        switch (act) {
            case Activation::Linear: break;
            case Activation::Relu:
                for (int64_t j = 0; j < n; ++j) d[j] = yr[j] > 0.0f ? d[j] : 0.0f;
                break;
            case Activation::Sigmoid:
                for (int64_t j = 0; j < n; ++j) d[j] = d[j] * yr[j] * (1.0f - yr[j]);
                break;
            case Activation::Tanh:
                for (int64_t j = 0; j < n; ++j) d[j] = d[j] * (1.0f - yr[j] * yr[j]);
                break;
            case Activation::Softmax: {
                float s = 0.0f;
                for (int64_t j = 0; j < n; ++j) s += d[j] * yr[j];
                for (int64_t j = 0; j < n; ++j) d[j] = yr[j] * (d[j] - s);
                break;
            }
            default: break;  // (as above)
        }
    }
}

// Blocking parameters (floats).
constexpr int64_t kRows = 4;     // rows of the output updated together
constexpr int64_t kKC = 256;     // k block: the w/dz panel reused across rows
constexpr int64_t kNC = 1024;    // n block

// c[r, 0:n] += sum_k a(r, k) * bm[k, 0:n] for r < rows (rows <= kRows),
// a(r, k) = a[r * a_rs + k * a_ks].  bm is row-major with leading dim ldb.
inline void rows_update(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_ks,
                        const float* bm, int64_t ldb, int64_t rows, int64_t k0, int64_t k1,
                        int64_t n0, int64_t n1) {
    if (rows == kRows) {
        float* __restrict c0 = c;
        float* __restrict c1 = c + ldc;
        float* __restrict c2 = c + 2 * ldc;
        float* __restrict c3 = c + 3 * ldc;
        for (int64_t k = k0; k < k1; ++k) {
            const float a0 = a[k * a_ks], a1 = a[a_rs + k * a_ks];
            const float a2 = a[2 * a_rs + k * a_ks], a3 = a[3 * a_rs + k * a_ks];
            const float* __restrict br = bm + k * ldb;
            for (int64_t j = n0; j < n1; ++j) {
                const float bv = br[j];
                c0[j] += a0 * bv;
                c1[j] += a1 * bv;
                c2[j] += a2 * bv;
                c3[j] += a3 * bv;
            }
        }
    } else {
        for (int64_t r = 0; r < rows; ++r) {
            float* __restrict cr = c + r * ldc;
            for (int64_t k = k0; k < k1; ++k) {
                const float av = a[r * a_rs + k * a_ks];
                const float* __restrict br = bm + k * ldb;
                for (int64_t j = n0; j < n1; ++j) cr[j] += av * br[j];
            }
        }
    }
}

// C[M, N] (ldc = N) = A . Bm with A(m, k) = a[m * a_rs + k * a_ks], Bm row-major
// [K, N].  C must be initialised by the caller; parallel over row blocks.
void gemm_rows(float* c, const float* a, int64_t a_rs, int64_t a_ks, const float* bm,
               int64_t M, int64_t N, int64_t K) {
    const int64_t n_blocks = (M + kRows - 1) / kRows;
    const int64_t per_task = std::max<int64_t>(1, (n_blocks + 15) / 16);
    const int64_t n_tasks = (n_blocks + per_task - 1) / per_task;
    parallel_for(n_tasks, [&](int64_t t) {
        const int64_t r_begin = t * per_task * kRows;
        const int64_t r_end = std::min(M, r_begin + per_task * kRows);
        for (int64_t n0 = 0; n0 < N; n0 += kNC) {
            const int64_t n1 = std::min(N, n0 + kNC);
            for (int64_t k0 = 0; k0 < K; k0 += kKC) {
                const int64_t k1 = std::min(K, k0 + kKC);
                for (int64_t r = r_begin; r < r_end; r += kRows) {
                    const int64_t rows = std::min(kRows, r_end - r);
                    rows_update(c + r * N, N, a + r * a_rs, a_rs, a_ks, bm, N, rows, k0,
                                k1, n0, n1);
                }
            }
        }
    });
}

inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; ++l) acc[l] += a[j + l] * b[j + l];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; ++j) s += a[j] * b[j];
    return s;
}

void generic_forward(float* y, const float* x, const float* w, const float* b, int64_t B,
                     int64_t in, int64_t out, Activation act) {
    for (int64_t r = 0; r < B; ++r) {
        if (b) std::memcpy(y + r * out, b, sizeof(float) * out);
        else std::memset(y + r * out, 0, sizeof(float) * out);
    }
    gemm_rows(y, x, in, 1, w, B, out, in);
    const int64_t rows_per = std::max<int64_t>(1, (B + 15) / 16);
    parallel_for((B + rows_per - 1) / rows_per, [&](int64_t t) {
        const int64_t r0 = t * rows_per, r1 = std::min(B, r0 + rows_per);
        activate_rows(y + r0 * out, r1 - r0, out, act);
    });
}

// dx[B, in] = dz . w^T (dz [B, out], w [in, out]): dot products of contiguous rows.
void input_grad(float* dx, const float* dz, const float* w, int64_t B, int64_t in, int64_t out) {
    const int64_t rows_per = std::max<int64_t>(1, (B + 15) / 16);
    parallel_for((B + rows_per - 1) / rows_per, [&](int64_t t) {
        const int64_t r0 = t * rows_per, r1 = std::min(B, r0 + rows_per);
        for (int64_t i0 = 0; i0 < in; i0 += 64) {
            const int64_t i1 = std::min(in, i0 + 64);
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t i = i0; i < i1; ++i)
                    dx[r * in + i] = dot(dz + r * out, w + i * out, out);
        }
    });
}

void generic_backward(float* dx, float* dw, float* db, float* dz, const float* y,
                      const float* x, const float* w, int64_t B, int64_t in, int64_t out,
                      Activation act) {
    if (act != Activation::Linear) {
        const int64_t rows_per = std::max<int64_t>(1, (B + 15) / 16);
        parallel_for((B + rows_per - 1) / rows_per, [&](int64_t t) {
            const int64_t r0 = t * rows_per, r1 = std::min(B, r0 + rows_per);
            act_backward_rows(dz + r0 * out, y + r0 * out, r1 - r0, out, act);
        });
    }
    if (db) {
        std::memset(db, 0, sizeof(float) * out);
        for (int64_t r = 0; r < B; ++r)
            for (int64_t j = 0; j < out; ++j) db[j] += dz[r * out + j];
    }
    // dw[in, out] = x^T . dz: A(m, k) = x[k * in + m].
    std::memset(dw, 0, sizeof(float) * in * out);
    gemm_rows(dw, x, 1, in, dz, in, out, B);
    if (dx) input_grad(dx, dz, w, B, in, out);
}

// The column-selection entry points (see kernels.h): the portable path
// works on compact copies of the selected rows of W / dW.
void generic_forward_rows(float* y, const float* x, const float* w, const int64_t* rows,
                          const float* b, int64_t B, int64_t kin, int64_t out, Activation act) {
    static thread_local std::vector<float> wc;
    wc.resize(static_cast<size_t>(std::max<int64_t>(kin * out, 1)));
    for (int64_t r = 0; r < kin; ++r)
        std::memcpy(wc.data() + r * out, w + rows[r] * out, sizeof(float) * out);
    generic_forward(y, x, wc.data(), b, B, kin, out, act);
}

void generic_backward_rows(float* dw, float* db, float* dz, const float* y, const float* x,
                           const int64_t* rows, int64_t B, int64_t kin, int64_t out,
                           Activation act, const FusedStep* upd) {
    static thread_local std::vector<float> dwc;
    float* d = dw;
    if (rows) {
        dwc.resize(static_cast<size_t>(std::max<int64_t>(kin * out, 1)));
        d = dwc.data();
    }
    generic_backward(nullptr, d, db, dz, y, x, nullptr, B, kin, out, act);
    for (int64_t r = 0; r < kin; ++r) {
        const int64_t row = rows ? rows[r] : r;
        if (upd)
            fused_step_ref(*upd, row * out, d + r * out, out);
        else if (rows)
            std::memcpy(dw + row * out, d + r * out, sizeof(float) * out);
    }
}

// The portable path has no fused form: it stores the narrow layer's dX (as
// generic_backward computes it) and runs backward_rows on it.
void generic_backward_rows_up(float* dw, float* db, const float* y, const float* x,
                              const int64_t* rows, int64_t B, int64_t kin, int64_t out,
                              Activation act, const FusedStep* upd, const NarrowUpstream& up) {
    static thread_local std::vector<float> dz;
    dz.resize(static_cast<size_t>(std::max<int64_t>(B * out, 1)));
    input_grad(dz.data(), up.dz_next, up.w_next, B, out, up.U);
    generic_backward_rows(dw, db, dz.data(), y, x, rows, B, kin, out, act, upd);
}

// FMA peak estimate for the portable path: 48 independent multiply-add
// chains the compiler vectorizes with the baseline ISA (no FMA contraction,
// so each lane does a multiply and an add: 2 flops, as an FMA counts).
float generic_chains(int64_t iters) {
    constexpr int kChains = 48;
    // Opaque constants: the compiler must not fold the recurrence.
    static volatile float vm = 0.9999999f, va = 1e-7f, v0 = 1.0f;
    const float m = vm, a = va, x0 = v0;
    float acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = x0 + 0.01f * float(c);
    for (int64_t i = 0; i < iters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * m + a;
    float s = 0.f;
    for (int c = 0; c < kChains; ++c) s += acc[c];
    return s;
}

double generic_fma_peak_gflops(int threads) {
    constexpr int kChains = 48;
    if (threads < 1) threads = 1;
    using clk = std::chrono::steady_clock;
    volatile float sink = 0.f;
    int64_t iters = 1 << 12;
    double dt = 0;
    for (;;) {
        const auto t0 = clk::now();
        sink = sink + generic_chains(iters);
        dt = std::chrono::duration<double>(clk::now() - t0).count();
        if (dt > 0.02 || iters > (int64_t(1) << 40)) break;
        iters *= 2;
    }
    // Three timed runs of ~0.07 s, the best kept (a shared or virtual
    // machine may steal a core for part of one).
    iters = int64_t(double(iters) * 0.07 / dt) + 1;
    std::vector<float> res(static_cast<size_t>(threads), 0.f);
    parallel_for(threads, [&](int64_t t) { res[t] = generic_chains(iters / 50 + 1); });
    double sec = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = clk::now();
        parallel_for(threads, [&](int64_t t) { res[t] += generic_chains(iters); });
        const double d = std::chrono::duration<double>(clk::now() - t0).count();
        sec = d < sec ? d : sec;
    }
    for (float r : res) sink = sink + r;
    return 2.0 * kChains * double(iters) * threads / sec * 1e-9;
}

void generic_forward_epi(float* y, const float* x, const float* w, const float* b, int64_t B,
                         int64_t in, int64_t out, Activation act, const RowsEpilogue& epi) {
    generic_forward(y, x, w, b, B, in, out, act);
    run_rows_epilogue(epi, B, out);
}

const DenseKernels kGeneric = {"generic", generic_forward, generic_backward,
                               generic_fma_peak_gflops, generic_forward_rows,
                               generic_backward_rows, generic_backward_rows_up,
                               generic_forward_epi, fused_step_ref,
                               nullptr};  // (activations.cpp's scalar loops)

}  // namespace

void run_rows_epilogue(const RowsEpilogue& epi, int64_t B, int64_t out) {
    if (B <= 0) return;
    // (~16k outputs per range at least: a small output layer stays on one thread)
    const int64_t parts = std::max<int64_t>(
        1, std::min<int64_t>(get_num_threads(), B * std::max<int64_t>(out, 1) / 16384));
    const int64_t per = (B + parts - 1) / parts;
    parallel_for((B + per - 1) / per, [&](int64_t t) {
        epi.fn(epi.ctx, t * per, std::min(B, (t + 1) * per));
    });
}

const DenseKernels& generic_kernels() { return kGeneric; }

// ---------------------------------------------------------------- naive refs
void dense_forward_naive(float* y, const float* x, const float* w, const float* b,
                         int64_t B, int64_t in, int64_t out, Activation act) {
    for (int64_t r = 0; r < B; ++r)
        for (int64_t j = 0; j < out; ++j) {
            double s = b ? b[j] : 0.0;
            for (int64_t k = 0; k < in; ++k) s += double(x[r * in + k]) * w[k * out + j];
            y[r * out + j] = float(s);
        }
    activate_rows(y, B, out, act);
}

void dense_backward_naive(float* dx, float* dw, float* db, float* dz, const float* y,
                          const float* x, const float* w, int64_t B, int64_t in,
                          int64_t out, Activation act) {
    act_backward_rows(dz, y, B, out, act);
    if (db)
        for (int64_t j = 0; j < out; ++j) {
            double s = 0.0;
            for (int64_t r = 0; r < B; ++r) s += dz[r * out + j];
            db[j] = float(s);
        }
    for (int64_t i = 0; i < in; ++i)
        for (int64_t j = 0; j < out; ++j) {
            double s = 0.0;
            for (int64_t r = 0; r < B; ++r) s += double(x[r * in + i]) * dz[r * out + j];
            dw[i * out + j] = float(s);
        }
    if (dx)
        for (int64_t r = 0; r < B; ++r)
            for (int64_t i = 0; i < in; ++i) {
                double s = 0.0;
                for (int64_t j = 0; j < out; ++j) s += double(dz[r * out + j]) * w[i * out + j];
                dx[r * in + i] = float(s);
            }
}

}  // namespace fastdense
