// Optimizer updates over the flat parameter buffer, one fused pass each,
// with Keras 3's exact formulas and defaults.
#pragma once
#include <cstdint>
#include <vector>

namespace fastdense {

enum class OptimizerKind : int {
    SGD = 0, RMSprop = 1, Adam = 2,  // Adam also serves AdamW (weight_decay below)
    Adagrad = 3, Adadelta = 4, Adamax = 5, Nadam = 6, Lion = 7,
    Lamb = 8,  // per-variable trust ratio: optimizer_update only (not optimizer_step)
    Ftrl = 9,
};
constexpr int kNumOptimizerKinds = 10;

struct OptimizerSpec {
    OptimizerKind kind = OptimizerKind::RMSprop;
    float learning_rate = 0.001f;
    float momentum = 0.0f;   // SGD, RMSprop
    bool nesterov = false;   // SGD
    // Kept in double: Keras forms 1 - rho, 1 - beta in Python (double) and
    // rounds the result to float32 once (Nadam and Lion cast beta to float32
    // first and subtract in float32, as their update_step does).
    double rho = 0.9;        // RMSprop, Adadelta
    bool centered = false;   // RMSprop
    double beta_1 = 0.9;     // Adam, Adamax, Nadam, Lion, Lamb
    double beta_2 = 0.999;   // Adam, Adamax, Nadam, Lion, Lamb
    bool amsgrad = false;    // Adam
    float epsilon = 1e-7f;   // RMSprop, Adam, Adagrad, Adadelta, Adamax, Nadam, Lamb
    float initial_accumulator_value = 0.1f;  // Adagrad, Ftrl
    // Ftrl (Keras's Python floats; the step forms its float32 constants)
    double learning_rate_power = -0.5;
    double l1_regularization_strength = 0.0;
    double l2_regularization_strength = 0.0;
    double l2_shrinkage_regularization_strength = 0.0;
    double beta = 0.0;
    // Keras's generic Optimizer arguments (0 = off). Weight decay is applied
    // as w -= w * weight_decay * lr before the update, to every variable
    // whose segment has `decay` set; then one of the clippings, on gradients:
    // clipnorm per variable, global_clipnorm over all, clipvalue elementwise.
    float weight_decay = 0.0f;
    float clipnorm = 0.0f;
    float clipvalue = 0.0f;
    float global_clipnorm = 0.0f;
};

// Number of state slots (each n floats) the optimizer keeps. Slot order:
//   SGD:      momentums (if momentum != 0)
//   RMSprop:  velocities, momentums (if momentum > 0), average_gradients (if centered)
//   Adam:     momentums, velocities, velocity_hats (if amsgrad)
//   Adagrad:  accumulators (start at initial_accumulator_value)
//   Adadelta: accumulated_grads, accumulated_delta_vars
//   Adamax:   momentums (m), norms (u)
//   Nadam:    momentums, velocities
//   Lion:     momentums
//   Lamb:     momentums, velocities
//   Ftrl:     accumulators (start at initial_accumulator_value), linears
int optimizer_slots(const OptimizerSpec& spec);
// Scalars kept after the slots (state[slots * n + k]): Nadam's u_product.
int optimizer_scalars(const OptimizerSpec& spec);
inline int64_t optimizer_state_size(const OptimizerSpec& s, int64_t n) {
    return optimizer_slots(s) * n + optimizer_scalars(s);
}
// Fills a fresh state (as Keras's build): zeros, Adagrad's and Ftrl's
// accumulators at initial_accumulator_value, Nadam's u_product at 1.
void optimizer_init_state(const OptimizerSpec& spec, float* state, int64_t n);

// Once per step, before the optimizer_step calls of that step: updates the
// scalars (Nadam's u_product *= beta_1 * (1 - 0.5 * 0.96^(iteration + 1))).
void optimizer_begin_step(const OptimizerSpec& spec, int64_t iteration, float* state,
                          int64_t n);

// What happens to a range's gradients and weights before the update:
//   mode ClipNorm:  g = (g * a) / b          (b = max(||g_var||, clipnorm))
//   mode Scale:     g = g * a                 (global_clipnorm's factor)
//   mode ClipValue: g = min(max(g, -a), a)
//   decay != 0:     w = w - w * decay * lr    (before the update, as Keras)
struct GradTransform {
    enum Mode : int { None = 0, ClipNorm = 1, Scale = 2, ClipValue = 3 };
    Mode mode = None;
    float a = 0.0f, b = 1.0f;
    float decay = 0.0f;
};

// One update step of params[i0, i1) (so it can be split across threads).
// Lamb's step needs whole variables (its trust ratio is a ratio of norms):
// it throws std::invalid_argument here; optimizer_update runs it.
//   params: [n]   state: [optimizer_state_size(spec, n)]   grads: [n]
//   iteration: number of steps applied before this one (Keras's `iterations`)
// optimizer_begin_step must have run for this step first.
void optimizer_step(const OptimizerSpec& spec, int64_t iteration, float* params,
                    float* state, const float* grads, int64_t n, int64_t i0, int64_t i1,
                    const GradTransform& t = GradTransform{});

// Adam's per-step scalars as optimizer_step computes them for `iteration`
// (t = iteration + 1): alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t),
// 1 - beta_1 and 1 - beta_2, in float32 (the fused step's, kernels.h).
void adam_step_scalars(const OptimizerSpec& spec, int64_t iteration, float& alpha,
                       float& one_b1, float& one_b2);

// One variable of the flat buffer: params[begin, end).
struct ParamSegment {
    int64_t begin = 0, end = 0;
    bool decay = true;  // weight decay applies (not excluded)
};

// Reusable buffers of optimizer_update (no heap allocation once warm).
struct UpdateScratch {
    struct Task { int64_t seg, i0, i1; };
    std::vector<Task> tasks;
    std::vector<double> partial;        // per task: sum of g^2
    std::vector<double> partial2;       // Lamb, per task: sums of w^2 and of update^2
    std::vector<float> ratios;          // Lamb, per segment: trust ratio * lr
    std::vector<GradTransform> xform;   // per segment
    std::vector<ParamSegment> merged;
};

// A whole step as Keras's apply(): clipping (norms summed per fixed-size
// chunk in double, then in chunk order: deterministic for any thread
// count), weight decay, the update (parallel over chunks), for the
// segments given (disjoint, increasing); the step uses spec.learning_rate.
// Lamb (Keras lamb.py): m and v as Adam's, update u = (m / (1 - b1^t)) /
// (sqrt(v / (1 - b2^t)) + eps), then per variable w -= (ratio * lr) * u with
// ratio = ||w|| / ||u|| (1 when either is 0), the norms summed as the clip
// norms are: two passes over each variable.
void optimizer_update(const OptimizerSpec& spec, int64_t iteration, float* params,
                      float* state, const float* grads, int64_t n,
                      const std::vector<ParamSegment>& segments, UpdateScratch& scratch);

// Keras's use_ema moving average of a variable, after a step:
// average = momentum * average + (1 - momentum) * variable, each product and
// the sum rounded to float (momentum 0: the average takes the variable).
//   average:  [n] updated in place
//   variable: [n]
void ema_update(float* average, const float* variable, int64_t n, float momentum);

}  // namespace fastdense
