// Optimizer updates over the flat parameter buffer, one fused pass each,
// with Keras 3's exact formulas and defaults.
#pragma once
#include <cstdint>

namespace fastdense {

enum class OptimizerKind : int { SGD = 0, RMSprop = 1, Adam = 2 };

struct OptimizerSpec {
    OptimizerKind kind = OptimizerKind::RMSprop;
    float learning_rate = 0.001f;
    float momentum = 0.0f;   // SGD, RMSprop
    bool nesterov = false;   // SGD
    // Kept in double: Keras forms 1 - rho, 1 - beta in Python (double) and
    // rounds the result to float32 once.
    double rho = 0.9;        // RMSprop
    bool centered = false;   // RMSprop
    double beta_1 = 0.9;     // Adam
    double beta_2 = 0.999;   // Adam
    bool amsgrad = false;    // Adam
    float epsilon = 1e-7f;   // RMSprop, Adam
};

// Number of state slots (each n floats) the optimizer keeps. Slot order:
//   SGD:     momentums (if momentum != 0)
//   RMSprop: velocities, momentums (if momentum > 0), average_gradients (if centered)
//   Adam:    momentums, velocities, velocity_hats (if amsgrad)
int optimizer_slots(const OptimizerSpec& spec);

// One update step of params[i0, i1) (so it can be split across threads).
//   params: [n]   state: [slots * n]   grads: [n]
//   iteration: number of steps applied before this one (Keras's `iterations`)
void optimizer_step(const OptimizerSpec& spec, int64_t iteration, float* params,
                    float* state, const float* grads, int64_t n, int64_t i0, int64_t i1);

}  // namespace fastdense
