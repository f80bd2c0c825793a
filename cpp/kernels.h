// The kernel function table: the engine calls dense layers only through
// this table, so ISA-specific variants (generic C++, AVX2+FMA, AVX-512) can be
// swapped in at import time without touching the engine.
//
// Conventions: every matrix is row-major and contiguous; outputs come first;
// sizes are int64_t so index arithmetic is safe past 2^31 elements.
#pragma once
#include <atomic>
#include <cstdint>
#include <limits>

namespace fastdense {

enum class Activation : int {
    // Fused into the dense kernels' epilogues:
    Linear = 0,
    Relu = 1,
    Sigmoid = 2,
    Tanh = 3,
    Softmax = 4,
    // Applied by the engine in a separate pass (activations.h); never passed
    // to a DenseKernels function:
    Elu = 5,
    Selu = 6,
    Gelu = 7,
    GeluTanh = 8,
    Silu = 9,
    LeakyRelu = 10,
    Softplus = 11,
    Softsign = 12,
    Relu6 = 13,
    HardSigmoid = 14,
    Exponential = 15,
    LogSoftmax = 16,
    HardSilu = 17,
    Mish = 18,
    ReluGeneral = 19,  // keras.layers.ReLU(max_value, negative_slope, threshold)
    Celu = 20,           // alpha = 1
    HardTanh = 21,
    HardShrink = 22,     // threshold = 0.5
    SoftShrink = 23,     // threshold = 0.5
    TanhShrink = 24,
    Squareplus = 25,     // b = 4
    SparsePlus = 26,
    LogSigmoid = 27,
    SparseSigmoid = 28,
};
constexpr int kNumActivations = 29;

// True for the activations the DenseKernels fuse (Linear..Softmax).
constexpr bool kernel_fusable(Activation a) { return static_cast<int>(a) <= 4; }

// An optimizer step fused into the store of dW (the first layer's, which
// needs no dX), each operation rounded to float32 as the engine's own update
// computes it (no FMA contraction), element by element:
//   RMSprop (Keras's, without momentum or centering):
//     v = rho*v + one_rho*(g*g);   p -= lr*g / sqrt(v + eps)
//   Adam (Keras's, without amsgrad; alpha = lr*sqrt(1-beta_2^t)/(1-beta_1^t)):
//     m = m + (g - m)*one_b1;   v = v + (g*g - v)*one_b2;
//     p -= (m*alpha) / (sqrt(v) + eps)
//   SGD (Keras's): without momentum p -= g*lr; with it (m not null)
//     m = -g*lr + m*momentum;   p += m   (nesterov: p += -g*lr + m*momentum)
// The gradient first takes the kernel regularizer's term (reg_a, reg_b not 0:
// Keras's L1/L2, l1l2_grad's form): g = g + (reg_a*sign(p) + reg_b*p), with
// sign(p) = p >= 0 ? 1 : -1, from p before the step.  Then, with wd != 0,
// Keras's weight decay: p = p - p*wd*wd_lr.  Then the update.
struct FusedStep {
    enum class Kind : int { RMSprop = 0, Adam = 1, SGD = 2 };
    Kind kind = Kind::RMSprop;
    float* p = nullptr;  // [in, out] the kernel, laid out as dw
    float* v = nullptr;  // [in, out] its velocities (RMSprop, Adam)
    float* m = nullptr;  // [in, out] its momentums (Adam; SGD with momentum)
    float eps = 0.0f;
    float lr = 0.0f, rho = 0.0f, one_rho = 0.0f;       // RMSprop (lr: SGD too)
    float alpha = 0.0f, one_b1 = 0.0f, one_b2 = 0.0f;  // Adam
    float momentum = 0.0f;                              // SGD
    bool nesterov = false;                              // SGD
    float wd = 0.0f, wd_lr = 0.0f;  // weight decay and the step's learning rate
    float reg_a = 0.0f, reg_b = 0.0f;  // kernel_regularizer: l1 and 2*l2
    // Not null: set to 1 (by any thread) when a stepped value of p comes out
    // non-finite (inf or NaN), so a caller that knows p was finite before
    // still knows whether it is after, without reading it again.
    std::atomic<int>* nonfinite = nullptr;
};

// The step above on the n contiguous elements at offset off of u's arrays,
// with gradients g [n] (the portable form, compiled without contraction; the
// SIMD kernels give the same bits).
void fused_step_ref(const FusedStep& u, int64_t off, const float* g, int64_t n);

// The first layer's dL/dy when its output feeds a narrow Dense layer and
// nothing else: dL/dy = dz_next . w_next^T, that layer's dX.
// backward_rows_up computes it as it reads it, where the narrow layer's
// backward would store it for backward_rows to read back (MNIST: 256 KiB
// of stores that missed the caches, then the same loads).
//   dz_next: [B, U]  the narrow layer's dL/dz
//   w_next:  [out, U] its kernel as the step found it (the caller keeps a
//            copy if the step updates the kernel before backward_rows_up)
// U <= kNarrowUpstreamMax.
constexpr int64_t kNarrowUpstreamMax = 16;
struct NarrowUpstream {
    const float* dz_next;
    const float* w_next;
    int64_t U;
};

// Work on finished output rows [r0, r1) of a forward (forward_epi).
struct RowsEpilogue {
    void (*fn)(void* ctx, int64_t r0, int64_t r1);
    void* ctx;
};

// The arguments of Keras's parameterized activation layers; the defaults are
// those of keras.activations (leaky_relu's 0.2, elu's 1) and an identity
// ReLU layer.
//   LeakyRelu:    x > 0 ? x : leaky_slope * x            (layers.LeakyReLU)
//   Elu:          x > 0 ? x : elu_alpha * expm1(x)       (layers.ELU)
//   ReluGeneral:  keras.layers.ReLU's formula: [x > t] * x (t = threshold;
//                 max(x, 0) when t is 0), clipped to [0, relu_max] when
//                 relu_max is finite, minus relu_slope * max(t - x, 0)
struct ActParams {
    float leaky_slope = 0.2f;
    float elu_alpha = 1.0f;
    float relu_slope = 0.0f;
    float relu_max = std::numeric_limits<float>::infinity();
    float relu_threshold = 0.0f;
};

struct DenseKernels {
    const char* name;  // "generic", "avx2", "avx512"

    // y = act(x . w + b)
    //   y: [B, out]   x: [B, in]   w: [in, out]   b: [out] or nullptr
    void (*forward)(float* y, const float* x, const float* w, const float* b,
                    int64_t B, int64_t in, int64_t out, Activation act);

    // Backward through act and the affine map.
    //   dz: [B, out]  on entry dL/dy, on exit dL/dz (with act Linear only
    //                 read, never written: callers may pass read-only memory;
    //                 otherwise the act derivative applied,
    //                 computed from y; Softmax uses y*(dy - rowsum(dy*y)))
    //   dw: [in, out] = x^T . dz          (overwritten)
    //   db: [out]     = column sums of dz (overwritten; nullptr = no bias)
    //   dx: [B, in]   = dz . w^T          (overwritten; nullptr = skip)
    //   y:  [B, out]  forward output   x: [B, in]   w: [in, out]
    void (*backward)(float* dx, float* dw, float* db, float* dz, const float* y,
                     const float* x, const float* w, int64_t B, int64_t in,
                     int64_t out, Activation act);

    // FMA throughput of this ISA: `threads` tasks on the pool (each its own
    // independent chains of vector FMAs, 2 flops per lane), ~0.2 s; returns
    // the total GFLOP/s.  Uses the pool as it is (the caller sizes it).
    double (*fma_peak_gflops)(int threads);

    // forward() on a selection of the input's columns (the columns that are
    // not all zero in a batch: the terms skipped are exact zeros):
    //   y = act(x . W[rows, :] + b)
    //   y: [B, out]   x: [B, kin] (the selected columns, in rows' order)
    //   w: [in, out] (read through rows)   rows: [kin] distinct row indices of w
    void (*forward_rows)(float* y, const float* x, const float* w, const int64_t* rows,
                         const float* b, int64_t B, int64_t kin, int64_t out, Activation act);

    // backward() without dX for the same selection (rows = nullptr: every
    // row, kin = in, x whole), optionally with the optimizer step fused:
    //   dz, db: as backward    dw: [in, out], row rows[m] = (x^T . dz)[m, :]
    //   (rows not in `rows` are left untouched)    y: [B, out]   x: [B, kin]
    //   upd: nullptr, or the step applied to those rows of p, v (and m) with the
    //        gradient as it is computed (dw is then only scratch: its rows
    //        hold partial sums at most)
    void (*backward_rows)(float* dw, float* db, float* dz, const float* y, const float* x,
                          const int64_t* rows, int64_t B, int64_t kin, int64_t out,
                          Activation act, const FusedStep* upd);

    // backward_rows with dL/dy given as up.dz_next . up.w_next^T instead of
    // in dz: the same bits as backward() of the narrow layer computing that
    // product as its dX (into dz) followed by backward_rows on dz.
    void (*backward_rows_up)(float* dw, float* db, const float* y, const float* x,
                             const int64_t* rows, int64_t B, int64_t kin, int64_t out,
                             Activation act, const FusedStep* upd,
                             const NarrowUpstream& up);

    // forward() followed by epi on its finished rows, in the parallel task
    // that computed them where the kernel works by rows (the narrow output
    // layer: the rows are still in that thread's cache), else over row
    // ranges after the product.  Every row is in exactly one call; calls run
    // in any order, on any thread, so epi must treat rows independently.
    // (The engine computes the loss and its gradient this way.)
    void (*forward_epi)(float* y, const float* x, const float* w, const float* b,
                        int64_t B, int64_t in, int64_t out, Activation act,
                        const RowsEpilogue& epi);

    // The fused step on its own (fused_step_ref's bits, in this ISA's
    // vectors): u's n elements at offset off, with gradients g [n].  (The
    // engine steps the rows of a selection's left-out columns with it.)
    void (*fused_step)(const FusedStep& u, int64_t off, const float* g, int64_t n);

    // An activation the engine applies in its own pass (activations.h), on n
    // elements in this ISA's vectors, or nullptr / false where this table
    // does not vectorise `a` (the engine's scalar loop then does it):
    //   backward false: out = f(z)     backward true: out = dy * f'(z)
    //   out: [n]   dy: [n] (backward) or nullptr   z: [n]   (out may alias dy or z)
    //   p: the arguments of ELU and LeakyReLU (ActParams)
    bool (*act_elementwise)(Activation a, bool backward, float* out, const float* dy,
                            const float* z, int64_t n, const ActParams& p);
};

// epi over the rows [0, B) of an output of `out` columns, in row ranges
// spread over the pool (forward_epi's paths that do not work by rows).
void run_rows_epilogue(const RowsEpilogue& epi, int64_t B, int64_t out);

// The portable reference path, always available.
const DenseKernels& generic_kernels();

// The table the engine uses: chosen once (best ISA the CPU supports, or the
// one FASTDENSE_ISA forces) and switchable with set_kernels().
const DenseKernels& active_kernels();
// Selects a table by name; returns false if the name is unknown or the CPU
// cannot run it.
bool set_kernels(const char* name);
// Names of the tables this CPU can run, best last, comma separated.
const char* available_kernels();

}  // namespace fastdense
