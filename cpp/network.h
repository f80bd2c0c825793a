// The native engine: a stack of dense layers with one flat buffer each for
// parameters, gradients and optimizer state, and a training workspace sized
// once per batch size, so the batch loop (gather, forward, loss, backward,
// update) runs with no heap allocation per step.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "aligned_buffer.h"
#include "activations.h"
#include "kernels.h"
#include "losses.h"
#include "metrics.h"
#include "constraints.h"
#include "dropout.h"
#include "merge.h"
#include "scalar_ops.h"
#include "optimizers.h"

namespace fastdense {

// What a stage of the network computes before its activation and dropout.
enum class LayerKind : int {
    Dense = 0,      // x . kernel + bias
    BatchNorm = 1,  // batch normalization of x (in == out)
    Identity = 2,   // x itself: a stage that only applies its activation / dropout
    LayerNorm = 3,  // normalization of each row over its features (in == out;
                    // layernorm.h's modes: LayerNormalization, RMSNormalization)
    PReLU = 4,      // relu(x) - alpha * relu(-x), alpha learned (in == out)
    Merge = 5,      // several earlier outputs combined (merge.h's modes: Add,
                    // Concatenate, ...): Keras's merge layers
    Slice = 6,      // columns [begin, begin + units) of its input: one of a
                    // multi-input model's inputs, which the engine takes side by side
};

// One stage of the network (a Keras Dense / BatchNormalization /
// LayerNormalization / RMSNormalization / Activation layer, with the Activation and Dropout layers that follow it merged in).
struct LayerSpec {
    LayerKind kind = LayerKind::Dense;
    int64_t units = 0;            // Dense: output width (other kinds keep the input's)
    Activation act = Activation::Linear;
    ActParams act_params;         // the activation's arguments (LeakyReLU, ELU, ReLU layers)
    bool use_bias = true;         // Dense: bias;  BatchNorm, LayerNorm: center (beta)
    bool scale = true;            // BatchNorm, LayerNorm: gamma
    float dropout = 0.0f;         // Dropout rate on the stage's output while training
    int noise = 0;                // or a NoiseKind (dropout.h) on it (not both)
    float noise_param = 0.0f;     // its stddev (Gaussian) or rate
    double momentum = 0.99;       // BatchNorm: moving statistics' momentum
    float epsilon = 1e-3f;        // BatchNorm, LayerNorm: variance epsilon
    int norm_mode = 0;            // LayerNorm: a NormMode (layernorm.h)
    bool shared = false;          // PReLU: one alpha for all features
    // Where the stage's inputs come from: empty = the stage before it (the
    // network's input for the first); else stage indices, -1 for the network's
    // input (after its Dropout), each an earlier stage: one for a layer, two
    // or more for a Merge. A network whose stages read other than the stage
    // before them is a graph (Keras's functional models with branches).
    std::vector<int> inputs;
    int merge = 0;                // Merge: a MergeMode
    int64_t begin = 0;            // Slice: the first column taken
    int shares = -1;              // Dense: the earlier Dense stage whose kernel and bias
                                  // this one uses (Keras's layer applied twice), or -1
    int scalar_op = 0;            // Identity (linear): a ScalarOp with a constant
    float scalar = 0.0f;          // (Keras's x * 0.5, 1 - x, x / 4, ...)
};


struct LayerDesc {
    LayerKind kind = LayerKind::Dense;
    int64_t in = 0, out = 0;
    Activation act = Activation::Linear;
    ActParams act_params;
    bool use_bias = true;     // Dense: has a bias; BatchNorm: has beta (center)
    bool has_kernel = true;   // Dense: always; BatchNorm: has gamma (scale)
    float dropout = 0.0f;  // Dropout rate on this layer's output while training
    int noise = 0;             // or a NoiseKind (dropout.h) on it (never both)
    float noise_param = 0.0f;  // its stddev (Gaussian) or rate
    bool trainable = true; // false: the optimizer leaves its weights alone (and a
                           // BatchNorm layer runs in inference mode, as Keras's)
    // Keras's l1 / l2 regularizers: penalty l1*sum|w| + l2*sum(w^2) added to the
    // loss ("kernel" = Dense kernel or BatchNorm gamma, "bias" = bias or beta)
    float kernel_l1 = 0.0f, kernel_l2 = 0.0f, bias_l1 = 0.0f, bias_l2 = 0.0f;
    // activity regularizer on the output: (l1*sum|y| + l2*sum(y^2)) / batch
    float activity_l1 = 0.0f, activity_l2 = 0.0f;
    ConstraintSpec kernel_constraint, bias_constraint;  // applied after each update
    float momentum = 0.99f, one_minus_momentum = 0.01f, epsilon = 1e-3f;  // BatchNorm
    int norm_mode = 0;  // LayerNorm: a NormMode (layernorm.h)
    bool shared = false;  // PReLU: one alpha (the kernel is [1])
    std::vector<int> src;  // the stages it reads (-1: the network's input); one but for a Merge
    int merge = 0;         // Merge: a MergeMode
    int64_t begin = 0;     // Slice: the first column taken (out columns from there)
    int scalar_op = 0;   // Identity: a ScalarOp and its constant (LayerSpec)
    float scalar = 0.0f;
    int alias = -1;      // a stage sharing an earlier Dense stage's weights (LayerSpec::shares):
                         // w_off / b_off are that stage's; its gradient goes to its own
                         // region (gw_off / gb_off) and is added to that stage's after the
                         // backward; the optimizer, regularizers and constraints skip it
    int64_t gw_off = 0, gb_off = 0;  // where the backward writes dW and db (w_off / b_off
                                     // but for an alias)
    int64_t w_off = 0;   // kernel [in, out] (BatchNorm, LayerNorm: gamma [out]; PReLU:
                         // alpha [out] or [1]) at params + w_off
    int64_t b_off = 0;   // bias / beta [out] at params + b_off (when use_bias)
    int64_t mm_off = 0;  // BatchNorm: moving mean [out]
    int64_t mv_off = 0;  // BatchNorm: moving variance [out]

    // The kernel's shape as [rows, cols] (a gamma or alpha is [out, 1]).
    int64_t kernel_rows() const {
        return kind == LayerKind::Dense ? in : (kind == LayerKind::PReLU && shared ? 1 : out);
    }
    int64_t kernel_cols() const { return kind == LayerKind::Dense ? out : 1; }
    int64_t kernel_size() const { return kernel_rows() * kernel_cols(); }
    bool has_activity_reg() const { return activity_l1 != 0.0f || activity_l2 != 0.0f; }
    // Whether training changes the output (Dropout or noise): its mask then
    // holds dy/d(output), and the changed output follows it in the workspace.
    bool perturbed() const { return dropout > 0.0f || noise != 0; }
};

// One variable of the network in Keras's order (a Dense layer's kernel, then
// bias; a BatchNorm layer's gamma, beta, moving mean, moving variance).
struct VariableDesc {
    int64_t layer = 0, offset = 0, rows = 0, cols = 0;  // cols = 0: a vector of `rows`
    bool trainable = true;  // updated by the optimizer: false for the moving
                            // statistics and the variables of frozen layers
};

// Targets for one dataset: dense float rows or sparse int32 labels.
struct Targets {
    const float* dense = nullptr;     // [n, U]
    const int32_t* labels = nullptr;  // [n]
    const float* weights = nullptr;   // [n, wcols] per-sample loss weights, or none
    int64_t wcols = 1;                // 1, or (with loss heads) one per output: a
                                      // head reads column LossHead::wcol
};

// Running sums of one pass (an epoch, or an evaluation).
struct Stats {
    double loss_sum = 0.0;             // sum over samples of the per-sample loss
    int64_t seen = 0;                  // samples processed
    std::vector<double> metric_sums;   // one per native metric
};

class Network {
public:
    // units: [in, u_1, ..., u_L]; acts, use_bias and dropout: one per layer
    // (dropout may be empty: none); input_dropout: Dropout rate on the inputs.
    Network(const std::vector<int64_t>& units, const std::vector<Activation>& acts,
            const std::vector<bool>& use_bias, const std::vector<float>& dropout = {},
            float input_dropout = 0.0f);
    // The general form: stages of any kind on inputs of width input_dim.
    Network(int64_t input_dim, const std::vector<LayerSpec>& layers, float input_dropout = 0.0f);

    // Every variable, in Keras's order.
    std::vector<VariableDesc> variables() const;

    // Freezes (false) or unfreezes a layer's weights.
    void set_trainable(size_t layer, bool trainable);
    // Which variables weight decay applies to: one flag per variable, in
    // order (each layer's kernel, then its bias when it has one); empty = all.
    void set_weight_decay_mask(const std::vector<bool>& mask);

    // Sets a layer's kernel and bias regularization factors.
    void set_regularization(size_t layer, float kernel_l1, float kernel_l2, float bias_l1,
                            float bias_l2);
    // The regularization penalty of the trainable layers' current weights.
    double regularization_penalty() const;
    // Sets a layer's activity regularization factors (on its output).
    void set_activity_regularization(size_t layer, float l1, float l2);
    // The activity penalty of the last forward_train batch (already divided
    // by its size, as Keras adds it to the batch's loss).
    double last_activity_penalty() const { return last_activity_penalty_; }
    // Sum over the inference batches of x: [n, in] of each batch's activity
    // penalty (Keras adds penalty / B to each batch's loss, weighted by B).
    double activity_penalty_sum(const float* x, int64_t n, int64_t batch_size) const;
    // Sets the constraints applied to a layer's kernel (or gamma) and bias
    // (or beta) after each update.
    void set_constraints(size_t layer, const ConstraintSpec& kernel, const ConstraintSpec& bias);

    // Seeds the generator of the dropout masks (training only).
    void set_seed(uint64_t seed) { rng_state_ = seed; }

    int64_t num_params() const { return static_cast<int64_t>(params_.size()); }
    int64_t input_dim() const { return layers_.front().in; }
    int64_t output_dim() const { return layers_.back().out; }
    const std::vector<LayerDesc>& layers() const { return layers_; }
    float* params() { return params_.data(); }
    // Tells the engine that the parameters were written from outside (the
    // caches of facts about them, such as the first kernel's finiteness, go).
    void params_changed() { w0_finite_.store(-1, std::memory_order_release); }
    float* grads() { return grads_.data(); }

    void set_loss(const LossSpec& loss) { loss_ = loss; }
    void set_metrics(const std::vector<MetricKind>& kinds, float threshold);
    // The metric sums the engine reports: one per native metric, then (with
    // heads) one per head, its loss summed over the samples.
    int num_metrics() const { return static_cast<int>(metrics_.size() + heads_.size()); }
    // Several outputs (the last stage joins their columns): one loss per head
    // on its columns, the targets `target_cols` wide (each head's columns, or
    // one holding a class id); empty = the one loss of set_loss. The native
    // metrics must be none then.
    void set_heads(const std::vector<LossHead>& heads, int64_t target_cols);
    const std::vector<LossHead>& heads() const { return heads_; }
    // The width of a target row: the output's, or the heads' targets'.
    int64_t target_dim() const { return heads_.empty() ? output_dim() : target_cols_; }

    // Installs the optimizer and clears its state and iteration count.
    void set_optimizer(const OptimizerSpec& spec);
    void set_learning_rate(float lr) { opt_.learning_rate = lr; }
    float learning_rate() const { return opt_.learning_rate; }
    FloatBuffer& optimizer_state() { return opt_state_; }
    // Keras's use_ema: after each step (update), the trainable variables'
    // averages take average = m * average + (1 - m) * variable (m = 0 at
    // iteration 0, else `momentum`); every `every` steps (0: never) the
    // variables then take their averages.  The averages live in a buffer
    // laid out as the parameters (allocated once: views of it stay valid).
    void set_ema(bool on, float momentum, int64_t every);
    float* ema() { return ema_.empty() ? nullptr : ema_.data(); }
    // The trainable variables take their averages (Keras's
    // finalize_variable_values), or trade values with them (SwapEMAWeights).
    void finalize_ema();
    void swap_ema();
    // Keras's gradient_accumulation_steps (0: off): each step adds its
    // gradients to an accumulator; every `steps`-th step updates with
    // (gradients + accumulated) / steps and clears it.  The optimizer then
    // counts updates (iterations / steps), as Keras's `iterations`.  Turns
    // the fused first-layer step off (a step must see the whole gradient).
    void set_grad_accumulation(int64_t steps);
    float* grad_acc() { return grad_acc_.empty() ? nullptr : grad_acc_.data(); }
    int64_t iterations() const { return iterations_; }
    void set_iterations(int64_t it) { iterations_ = it; }

    // Trains batches [first_batch, first_batch + n_batches) of an epoch over
    // n samples taken in `order` (nullptr = 0..n-1), updating stats.
    //   learning_rates: [n_batches] the rate of each batch's step (a
    //                   schedule's values), or nullptr: the optimizer's own
    //   x: [n_rows, in]  targets rows indexed like x  order: [n] or nullptr
    //   ypred_out: [n, U] or nullptr; receives each batch's predictions
    //              (made before that batch's update) at the batch's positions
    // With stop_on_nonfinite, returns right after the first batch whose loss
    // is NaN or infinite (that batch's update applied, as Keras's
    // TerminateOnNaN sees it). Returns the number of batches trained.
    int64_t train_batches(const float* x, const Targets& t, const int64_t* order, int64_t n,
                          int64_t batch_size, int64_t first_batch, int64_t n_batches,
                          Stats& stats, float* ypred_out, bool stop_on_nonfinite = false,
                          const float* learning_rates = nullptr);

    // Loss and metrics over n samples, in batches; thread-safe (own workspace).
    //   ypred_out: [n, U] or nullptr
    void evaluate(const float* x, const Targets& t, int64_t n, int64_t batch_size,
                  Stats& stats, float* ypred_out) const;

    // out: [n, U] = forward(x: [n, in]); thread-safe (own workspace).
    void predict(const float* x, int64_t n, int64_t batch_size, float* out) const;

    // The per-batch path for losses computed outside the engine: forward one
    // gathered batch keeping its activations, then backward from dL/dy and
    // update.
    //   x: [B, in]   y_out: [B, U]   grad_y: [B, U]
    void forward_train(const float* x, int64_t B, float* y_out);
    void backward_update(const float* grad_y, int64_t B);

private:
    struct Workspace {
        int64_t capacity = 0;            // batch rows allocated
        std::vector<float> x;            // [cap, in]    gathered inputs
        std::vector<std::vector<float>> acts;  // per layer [cap, out_l] activation output
        std::vector<std::vector<float>> pre;   // per layer [cap, out_l] pre-activation
                                               // (only for non-fused activations)
        std::vector<std::vector<float>> mask;  // per layer [cap, out_l] dropout or
                                               // noise scale (only when perturbed),
                                               // then the changed output
        std::vector<float> xmask;        // [cap, in] input dropout: the dropped inputs
        std::vector<float> d0, d1;       // [cap, max_units] deltas
        std::vector<float> t;            // [cap, U]     gathered targets
        std::vector<int32_t> labels;     // [cap]
        std::vector<float> weights;      // [cap]    gathered sample weights
        std::vector<float> row_loss;     // [cap]    per-sample losses (training)
        std::vector<std::vector<float>> bn_stats;  // BatchNorm layers: [2, out];
                                                   // LayerNorm layers: [2, B]
                                                   // batch mean, then 1/sqrt(var + eps)
        std::vector<double> scratch;     // [4 * max_units] BatchNorm / constraint sums
        // The batch's input column selection (select_columns): kin >= 0 when
        // layer 0 reads x's kin columns cols[0..kin) compacted into x;
        // cols[kin..in) are the all-zero columns.
        int64_t kin = -1;
        std::vector<float> wnext;        // [in_1, out_1] the second layer's kernel as the
                                         // step began (backward_rows_up)
        std::vector<int64_t> cols;       // [in]
        std::vector<int64_t> runs;       // [in, 2] cols[0..kin) as runs (first, length)
        std::vector<uint32_t> colacc;    // [threads, in] per-task column flags
        std::vector<uint64_t> colbits;   // [threads, ceil(in/64)] + 1: the same as bits
        // A graph's (dag_): each stage's output as the stages after it read it,
        // and (deltas) the gradient each stage's output accumulates from them.
        std::vector<const float*> outp;
        std::vector<std::vector<float>> grad;
        // (deltas: the backward's d0 / d1, not needed for inference)
        void ensure(const std::vector<LayerDesc>& layers, int64_t B, bool input_dropout,
                    bool deltas = true, int64_t target_cols = -1);
    };

    // last_epi (training): run by the last layer's forward_epi on its finished
    // rows when that layer is Dense with a fused activation and no dropout
    // (*epi_ran tells whether it ran; else the caller works on the output).
    const float* forward(Workspace& ws, const float* x, int64_t B, bool training,
                         const RowsEpilogue* last_epi = nullptr, bool* epi_ran = nullptr);
    const float* forward(Workspace& ws, const float* x, int64_t B) const;  // inference
    void dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate);
    void noise_mask(float* mask, float* out, const float* in, int64_t n, NoiseKind kind,
                    float param);
    void gather(Workspace& ws, const float* x, const Targets& t, const int64_t* idx,
                int64_t start, int64_t B, const float** xb, Targets& tb,
                bool inference) const;
    void backward(Workspace& ws, const float* xb, int64_t B, bool fused);
    // Adds each head's per-sample losses ([heads, B]) to its metric sum.
    void add_head_losses(Stats& stats, const float* head_losses, int64_t B) const;
    // Sparse inputs: when the first stage is Dense (and there is no input
    // dropout), a batch whose input has all-zero columns (image borders,
    // one-hot or bag-of-words features) multiplies only the other columns.
    // The skipped terms are exact zeros, so the results are those of the
    // full product up to the grouping of the sums. Returns whether the batch
    // (rows idx[start..start+B), or start.. when idx is null) got a selection:
    // at most kSelectFraction of the columns nonzero (below, the compaction
    // costs more than it saves); on success ws.x holds the compacted rows.
    // Either way ws.kin is the batch's own (-1: none); batches that are not
    // selectable() get none.  Inference (evaluate, predict: the weights do not
    // change between its batches) selects from 2 rows on and relies on the
    // first kernel's cached finiteness; training relies on it too while the
    // steps keep it known (the fused RMSprop step reports non-finite results;
    // see w0_step_nonfinite_), else checks the skipped columns' weights batch
    // by batch.
    void prefetch_rows(const float* x, const int64_t* order, int64_t start, int64_t count) const;
    void prefetch_targets(const Targets& t, const int64_t* order, int64_t start,
                          int64_t count) const;
    bool select_row(Workspace& ws, const float* x) const;
    bool first_kernel_finite() const;
    mutable std::atomic<int> w0_finite_{-1};  // first kernel all finite: 1 / 0 / -1 unknown
    // Training keeps w0_finite_ = 1 through a step when the first kernel's
    // step is the fused RMSprop (which reports non-finite results here) and
    // nothing else writes that kernel; the column selection then skips its
    // per-batch check of the skipped rows' weights.
    std::atomic<int> w0_step_nonfinite_{0};
    bool first_kernel_tracked() const;
    // rows_work: run on the batch rows [r0, r1) of each compaction task (the
    // caller's per-row copies), when the selection gets that far
    bool select_columns(Workspace& ws, const float* x, const int64_t* idx, int64_t start,
                        int64_t B, bool inference, const RowsEpilogue* rows_work = nullptr) const;
    bool selectable(int64_t B, bool inference) const;
    static constexpr double kSelectFraction = 0.9;
    // gather: each part of a pooled row copy moves at least this many floats
    static constexpr int64_t kGatherFloats = 8192;
    void update(float lr);
    bool first_update_fusable() const;
    bool variable_decays(size_t layer, bool kernel) const;
    float step_lr_ = 0.0f;       // the learning rate of the step being trained
    bool fused_first_ = false;   // backward applied the first kernel's step
    bool fused_rest_ = false;    // ... and the other layers' steps (not the first bias)
    void apply_constraints();
    void add_regularization_grads(const LayerDesc& d, bool kernel = true);
    // The sum over the batch's layer outputs of their activity penalties
    // (not yet divided by the batch size).
    double activity_penalty(const Workspace& ws, int64_t B) const;
    // Floating-point operations of one training step on B rows (forward,
    // backward); below kSerialStepFlops a step runs without the thread pool
    // (measured: the 1-64-64-64-64-1 model's 100-epoch fit at batch 10, about
    // 1 MFLOP per step, took 4.2 ms with 2 threads and 3.1 ms with 1), from
    // kPoolStepFlops with it, and in between as the steps measure faster
    // (StepThreads).
    double step_flops(int64_t B) const;
    static constexpr double kSerialStepFlops = 3e6;
    static constexpr double kPoolStepFlops = 40e6;
    // Whether steps of `flops` in the range above run faster in this thread
    // or with the pool depends on the machine (on a 2-vCPU Intel Xeon VM,
    // MNIST 784-h-10 steps with 2 threads against 1: 0.66x at 4.9 MFLOP,
    // 0.73-0.93x at 9.8, 1.0x at 19.5, 1.2-1.35x at 39, 1.5x at 78).  So
    // train_batches measures it on the training steps themselves: blocks of
    // kBlock steps, alternately serial and pooled, each block's first step
    // left out (the pool waking, the caches of the other mode), until each
    // way has kSamples timed steps; then the way with the lower median
    // (the pool only if 5% faster) runs every later step of that size.
    // Results are the same either way: every kernel and engine region gives
    // the same bits for any thread count.  Kept per model, for one step size
    // and thread count at a time.
    struct StepThreads {
        static constexpr int kBlock = 4, kSamples = 12;
        double flops = -1.0;
        int threads = 0;
        int decided = -1;  // -1 measuring, 0 serial, 1 pool
        int64_t step = 0;  // steps measured so far
        std::vector<double> serial_ns, pool_ns;
        // Serial (true) or pooled for the next step.
        bool next_serial() const { return (step / kBlock) % 2 == 0; }
        void record(bool serial, double ns);
    };
    StepThreads step_threads_;
    // evaluate / predict: the rows of each forward chunk (see infer_chunk)
    static constexpr int64_t kInferMin = 128, kInferMax = 1024;
    static constexpr int64_t kInferBytes = int64_t{64} << 20;
    int64_t infer_chunk(int64_t batch_size, int64_t n) const;
    // The activation the loss sees when it can fuse with the last layer.
    Activation loss_activation() const;
    // The input of layer li in the workspace (the dropped output of the layer before).
    const float* layer_input(const Workspace& ws, size_t li, const float* xb, int64_t B) const;
    // The output of stage s as later stages read it (s = -1: the input).
    const float* stage_output(const Workspace& ws, int s, const float* xb, int64_t B) const;
    // The backward of a BatchNorm, PReLU, LayerNorm or Identity stage.
    void backward_map(Workspace& ws, size_t li, Activation act, float* dcur, float* dx,
                      const float* in, int64_t B);
    // backward() for a graph: each stage's gradient accumulated in ws.grad.
    void backward_graph(Workspace& ws, const float* xb, int64_t B, bool fused);
    bool dag_ = false;  // some stage reads other than the stage before it
    int input_readers_ = 0;  // how many stage inputs are the network's input
    bool regularized_ = false, activity_regularized_ = false, constrained_ = false;
    double last_activity_penalty_ = 0.0;
    std::vector<double> constraint_scratch_;
    void accumulate(Stats& stats, const float* y, const Targets& tb, int64_t B) const;

    std::vector<LayerDesc> layers_;
    FloatBuffer params_, grads_, opt_state_;  // (64-byte aligned)
    LossSpec loss_;
    std::vector<MetricKind> metrics_;
    float threshold_ = 0.5f;
    OptimizerSpec opt_;
    int64_t iterations_ = 0;
    std::vector<bool> decay_mask_;          // per variable; empty = all
    std::vector<ParamSegment> segments_;    // reused by update()
    std::vector<ParamSegment> rest_;        // reused by backward(): layers 1.. (fused_rest_)
    UpdateScratch update_scratch_;
    int64_t max_units_ = 0;
    float input_dropout_ = 0.0f;
    uint64_t rng_state_ = 0x853c49e6748fea9bull;
    Workspace train_ws_;
    const float* last_x_ = nullptr;  // input of the last forward_train batch
    int64_t last_B_ = 0;
    std::mutex train_mutex_;
    // Deferred RMSprop decays of the first kernel's all-zero input rows
    // (train_batches only; see Network::backward): v_lag_[r] steps of
    // v = rho*v + (1-rho)*0 not yet applied to row r of its velocities.
    // Every lag is applied before anything reads those velocities (the row's
    // next fused step, an unfused step) and when train_batches returns, so
    // the state any caller sees holds the same bits as with each step applied
    // in its turn.
    bool defer_decay_ = false;             // set inside train_batches
    bool lag_pending_ = false;
    std::vector<uint32_t> v_lag_;          // [first layer's in]
    std::vector<int64_t> lagged_;          // reused: rows to catch up
    void catch_up_decays();                // applies every pending lag
    void apply_lags(float* v, int64_t out, float rho, float one_rho, int64_t i0, int64_t i1);
    // (last: the members above keep the layout they had before the heads)
    std::vector<LossHead> heads_;  // (see set_heads)
    int64_t target_cols_ = 0;
    std::vector<float> head_loss_;  // [heads, batch] per-head per-sample losses
    // (use_ema: see set_ema)
    bool ema_on_ = false;
    float ema_momentum_ = 0.99f;
    int64_t ema_every_ = 0;
    std::vector<float> ema_;                // [num_params] (trainable variables' parts used)
    std::vector<ParamSegment> ema_segments_;
    void trainable_segments(std::vector<ParamSegment>& out) const;
    void ema_step();
    // (gradient accumulation: see set_grad_accumulation)
    int64_t accum_steps_ = 0;
    std::vector<float> grad_acc_;           // [num_params] (allocated once)
};

}  // namespace fastdense
