// Keras's merge layers on 2D activations, each a map of several [B, *]
// inputs to one [B, C] output:
//   Add:          y = ((x0 + x1) + x2) + ...
//   Subtract:     y = x0 - x1                       (two inputs)
//   Multiply:     y = ((x0 * x1) * x2) * ...
//   Average:      y = (((x0 + x1) + x2) + ...) / n
//   Maximum:      y = max(max(x0, x1), x2) ...
//   Minimum:      y = min(min(x0, x1), x2) ...
//   Concatenate:  y = [x0 | x1 | ...] along the features (axis -1)
// The pairwise order is Keras's (its call() folds the inputs left to right),
// so the float results are its. The backward is the reverse-mode derivative
// of that fold, as JAX differentiates it: Maximum and Minimum send a tie's
// gradient half to each side (lax.max / lax.min), Multiply's factors are the
// fold's partial products.
#pragma once
#include <cstdint>

namespace fastdense {

enum class MergeMode : int {
    Add = 0, Subtract = 1, Multiply = 2, Average = 3, Maximum = 4, Minimum = 5,
    Concatenate = 6,
};
constexpr int kNumMergeModes = 7;
constexpr int kMaxMergeInputs = 64;

// The output's feature count for inputs of widths w: [n] (their sum for
// Concatenate, else the common width; -1 when the widths do not fit the mode).
int64_t merge_width(MergeMode mode, const int64_t* w, int n);

// Forward.
//   y: [B, C]   xs: n pointers, xs[i]: [B, w[i]]   w: [n]
void merge_forward(float* y, const float* const* xs, const int64_t* w, int n, int64_t B,
                   MergeMode mode);

// Backward: adds each input's gradient to dxs[i] (nullptr: not wanted; an
// input listed twice gets both terms, in input order).
//   dxs: n pointers, dxs[i]: [B, w[i]] or nullptr   dy: [B, C]
//   xs, w: as in the forward
void merge_backward(float* const* dxs, const float* dy, const float* const* xs,
                    const int64_t* w, int n, int64_t B, MergeMode mode);

}  // namespace fastdense
