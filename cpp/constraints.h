// Keras 3's weight constraints, applied to a variable after each optimizer
// step (keras.constraints): norms are sqrt(sum(w^2)) along `axis`, and
// epsilon is Keras's backend epsilon 1e-7.
//   MaxNorm:    w * clip(norm, 0, max_value) / (eps + norm)
//   NonNeg:     w * (w >= 0)
//   UnitNorm:   w / (eps + norm)
//   MinMaxNorm: w * (rate * clip(norm, min, max) + (1 - rate) * norm) / (eps + norm)
#pragma once
#include <cstdint>

namespace fastdense {

enum class ConstraintKind : int { None = 0, MaxNorm = 1, NonNeg = 2, UnitNorm = 3, MinMaxNorm = 4 };

// Which elements share a norm, for a variable viewed as [rows, cols] (a 1-D
// variable is [n, 1]).
enum class NormAxis : int {
    Rows = 0,  // Keras axis=0: one norm per column, over the rows
    Cols = 1,  // Keras axis=1 (-1 for a kernel): one norm per row, over the columns
    All = 2,   // axis=[0, 1]: one norm over the whole variable
};

struct ConstraintSpec {
    ConstraintKind kind = ConstraintKind::None;
    float min_value = 0.0f, max_value = 0.0f, rate = 1.0f;
    NormAxis axis = NormAxis::Rows;
};

// Applies the constraint in place.
//   w: [rows, cols]   scratch: [max(rows, cols)] doubles
void apply_constraint(const ConstraintSpec& c, float* w, int64_t rows, int64_t cols,
                      double* scratch);

}  // namespace fastdense
