#include "network.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "activations.h"
#include "batchnorm.h"
#include "layernorm.h"
#include "dropout.h"
#include "finite.h"
#include "float_env.h"
#include "regularizers.h"
#include "rng.h"
#include "threadpool.h"

namespace fastdense {

namespace {
std::vector<LayerSpec> dense_specs(const std::vector<int64_t>& units,
                                   const std::vector<Activation>& acts,
                                   const std::vector<bool>& use_bias,
                                   const std::vector<float>& dropout) {
    if (units.size() < 2 || acts.size() != units.size() - 1 ||
        use_bias.size() != units.size() - 1 ||
        (!dropout.empty() && dropout.size() != units.size() - 1))
        throw std::invalid_argument("Network: inconsistent layer description");
    std::vector<LayerSpec> specs(units.size() - 1);
    for (size_t l = 0; l + 1 < units.size(); ++l) {
        if (units[l] <= 0) throw std::invalid_argument("Network: layer sizes must be positive");
        specs[l].units = units[l + 1];
        specs[l].act = acts[l];
        specs[l].use_bias = use_bias[l];
        specs[l].dropout = dropout.empty() ? 0.0f : dropout[l];
    }
    return specs;
}

// Whether some stage reads other than the stage before it (or is a Slice):
// the network is then a graph, with its own forward bookkeeping and backward.
bool is_graph(const std::vector<LayerDesc>& layers) {
    for (size_t l = 0; l < layers.size(); ++l)
        if (layers[l].src.size() != 1 || layers[l].src[0] != static_cast<int>(l) - 1 ||
            layers[l].kind == LayerKind::Slice || layers[l].alias >= 0)
            return true;
    return false;
}
}  // namespace

Network::Network(const std::vector<int64_t>& units, const std::vector<Activation>& acts,
                 const std::vector<bool>& use_bias, const std::vector<float>& dropout,
                 float input_dropout)
    : Network(units.empty() ? 0 : units[0], dense_specs(units, acts, use_bias, dropout),
              input_dropout) {}

Network::Network(int64_t input_dim, const std::vector<LayerSpec>& specs, float input_dropout)
    : input_dropout_(input_dropout) {
    auto valid_rate = [](float r) { return r >= 0.0f && r < 1.0f; };
    if (specs.empty()) throw std::invalid_argument("Network: no layers");
    if (input_dim <= 0) throw std::invalid_argument("Network: layer sizes must be positive");
    if (!valid_rate(input_dropout))
        throw std::invalid_argument("Network: dropout rates must be in [0, 1)");
    int64_t off = 0, width = input_dim;
    std::vector<int64_t> widths;  // each stage's output width
    for (const LayerSpec& sp : specs) {
        LayerDesc d;
        d.kind = sp.kind;
        const int li = static_cast<int>(layers_.size());
        d.src = sp.inputs.empty() ? std::vector<int>{li - 1} : sp.inputs;
        for (int s : d.src)
            if (s < -1 || s >= li)
                throw std::invalid_argument("Network: a stage reads only earlier stages");
        if ((sp.kind == LayerKind::Merge) != (d.src.size() >= 2))
            throw std::invalid_argument("Network: a Merge stage reads two or more stages, "
                                        "any other stage one");
        for (int s : d.src) input_readers_ += s < 0 ? 1 : 0;
        width = d.src[0] < 0 ? input_dim : widths[static_cast<size_t>(d.src[0])];
        d.in = width;
        d.act = sp.act;
        d.act_params = sp.act_params;
        d.dropout = sp.dropout;
        if (!valid_rate(d.dropout))
            throw std::invalid_argument("Network: dropout rates must be in [0, 1)");
        d.noise = sp.noise;
        d.noise_param = sp.noise_param;
        if (d.noise < 0 || d.noise >= kNumNoiseKinds)
            throw std::invalid_argument("Network: unknown noise kind");
        if (d.noise != 0 && d.dropout > 0.0f)
            throw std::invalid_argument("Network: a stage takes Dropout or noise, not both");
        if (d.noise == static_cast<int>(NoiseKind::Gaussian)
                ? !(d.noise_param >= 0.0f && std::isfinite(d.noise_param))
                : d.noise != 0 && !valid_rate(d.noise_param))
            throw std::invalid_argument(
                "Network: noise needs a finite stddev >= 0 or a rate in [0, 1)");
        if (static_cast<int>(d.act) < 0 || static_cast<int>(d.act) >= kNumActivations)
            throw std::invalid_argument("Network: unknown activation");
        switch (sp.kind) {
            case LayerKind::Dense:
                if (sp.units <= 0) throw std::invalid_argument("Network: layer sizes must be positive");
                d.out = sp.units;
                d.use_bias = sp.use_bias;
                d.has_kernel = true;
                if (sp.shares >= 0) {  // (the weights of an earlier stage, applied again)
                    const LayerDesc* o = sp.shares < li ? &layers_[static_cast<size_t>(sp.shares)]
                                                        : nullptr;
                    if (!o || o->kind != LayerKind::Dense || o->alias >= 0 || o->in != d.in ||
                        o->out != d.out || o->use_bias != d.use_bias)
                        throw std::invalid_argument(
                            "Network: a stage shares the weights of an earlier Dense stage of "
                            "the same shape");
                    d.alias = sp.shares;
                    d.w_off = o->w_off;
                    d.b_off = o->b_off;
                    d.gw_off = off;  // (its own gradient; the params there stay unused)
                    off += d.in * d.out;
                    d.gb_off = off;
                    if (d.use_bias) off += d.out;
                    break;
                }
                d.w_off = off;
                off += d.in * d.out;
                d.b_off = off;
                if (d.use_bias) off += d.out;
                break;
            case LayerKind::BatchNorm:
                if (!(sp.momentum >= 0.0 && sp.momentum <= 1.0) || !(sp.epsilon > 0.0f) ||
                    !std::isfinite(sp.epsilon))
                    throw std::invalid_argument(
                        "Network: BatchNorm needs 0 <= momentum <= 1 and epsilon > 0");
                d.out = d.in;
                d.has_kernel = sp.scale;
                d.use_bias = sp.use_bias;
                d.momentum = static_cast<float>(sp.momentum);
                d.one_minus_momentum = static_cast<float>(1.0 - sp.momentum);
                d.epsilon = sp.epsilon;
                // Keras's order: gamma, beta, moving mean, moving variance
                d.w_off = off;
                if (d.has_kernel) off += d.out;
                d.b_off = off;
                if (d.use_bias) off += d.out;
                d.mm_off = off;
                off += d.out;
                d.mv_off = off;
                off += d.out;
                break;
            case LayerKind::LayerNorm:
                if (!(sp.epsilon > 0.0f) || !std::isfinite(sp.epsilon))
                    throw std::invalid_argument("Network: LayerNorm needs epsilon > 0");
                if (sp.norm_mode < 0 || sp.norm_mode >= kNumNormModes)
                    throw std::invalid_argument("Network: unknown normalization mode");
                d.out = d.in;
                d.norm_mode = sp.norm_mode;
                d.has_kernel = sp.scale;
                // (beta only in Layer mode: y = x * r * gamma in the others;
                // no gamma in Unit mode)
                d.use_bias = sp.use_bias && sp.norm_mode == static_cast<int>(NormMode::Layer);
                if (sp.norm_mode == static_cast<int>(NormMode::Unit)) d.has_kernel = false;
                d.epsilon = sp.epsilon;
                // Keras's order: gamma, beta
                d.w_off = off;
                if (d.has_kernel) off += d.out;
                d.b_off = off;
                if (d.use_bias) off += d.out;
                break;
            case LayerKind::PReLU:
                d.out = d.in;
                d.shared = sp.shared;
                d.has_kernel = true;  // alpha
                d.use_bias = false;
                d.w_off = off;
                off += d.kernel_rows();
                d.b_off = off;
                break;
            case LayerKind::Identity:
                d.out = d.in;
                d.has_kernel = false;
                d.use_bias = false;
                if (sp.scalar_op < 0 || sp.scalar_op >= kNumScalarOps ||
                    (sp.scalar_op != 0 && (sp.act != Activation::Linear ||
                                           !std::isfinite(sp.scalar))))
                    throw std::invalid_argument(
                        "Network: a scalar op is a known code on a linear Identity stage with "
                        "a finite constant");
                d.scalar_op = sp.scalar_op;
                d.scalar = sp.scalar;
                break;
            case LayerKind::Slice:
                if (sp.units <= 0 || sp.begin < 0 || sp.begin > d.in - sp.units)
                    throw std::invalid_argument("Network: a slice takes columns of its input");
                d.out = sp.units;
                d.begin = sp.begin;
                d.has_kernel = false;
                d.use_bias = false;
                break;
            case LayerKind::Merge: {
                if (sp.merge < 0 || sp.merge >= kNumMergeModes)
                    throw std::invalid_argument("Network: unknown merge mode");
                if (d.src.size() > static_cast<size_t>(kMaxMergeInputs))
                    throw std::invalid_argument("Network: too many merge inputs");
                int64_t w[kMaxMergeInputs];
                for (size_t i = 0; i < d.src.size(); ++i)
                    w[i] = d.src[i] < 0 ? input_dim : widths[static_cast<size_t>(d.src[i])];
                d.merge = sp.merge;
                d.out = merge_width(static_cast<MergeMode>(sp.merge), w,
                                    static_cast<int>(d.src.size()));
                if (d.out <= 0)
                    throw std::invalid_argument(
                        "Network: a merge's inputs must have equal widths (Concatenate: any), "
                        "and Subtract takes two");
                // (d.in: its first input's width, as for the other kinds; the
                // first stage's is the network's input width)
                d.has_kernel = false;
                d.use_bias = false;
                break;
            }
            default: throw std::invalid_argument("Network: unknown layer kind");
        }
        if (sp.shares >= 0 && sp.kind != LayerKind::Dense)
            throw std::invalid_argument("Network: only Dense stages share weights");
        if (d.alias < 0) {
            d.gw_off = d.w_off;
            d.gb_off = d.b_off;
        }
        layers_.push_back(d);
        width = d.out;
        widths.push_back(d.out);
        max_units_ = std::max(max_units_, d.out);
    }
    max_units_ = std::max(max_units_, input_dim);
    dag_ = is_graph(layers_);
    params_.assign(static_cast<size_t>(off), 0.0f);
    grads_.assign(static_cast<size_t>(off), 0.0f);
    for (const auto& d : layers_) {
        if (d.kind == LayerKind::BatchNorm)  // Keras's initial statistics
            std::fill_n(params_.data() + d.mv_off, d.out, 1.0f);
        if ((d.kind == LayerKind::BatchNorm || d.kind == LayerKind::LayerNorm) &&
            d.has_kernel)  // gamma: ones (a PReLU's alpha: zeros)
            std::fill_n(params_.data() + d.w_off, d.out, 1.0f);
    }
    set_optimizer(OptimizerSpec{});
}

std::vector<VariableDesc> Network::variables() const {
    std::vector<VariableDesc> vars;
    for (size_t l = 0; l < layers_.size(); ++l) {
        const LayerDesc& d = layers_[l];
        const int64_t li = static_cast<int64_t>(l);
        const bool t = d.trainable;
        if (d.alias >= 0) continue;  // (its weights are the earlier stage's)
        if (d.kind == LayerKind::Dense) {
            vars.push_back({li, d.w_off, d.in, d.out, t});
            if (d.use_bias) vars.push_back({li, d.b_off, d.out, 0, t});
        } else if (d.kind == LayerKind::BatchNorm) {
            if (d.has_kernel) vars.push_back({li, d.w_off, d.out, 0, t});
            if (d.use_bias) vars.push_back({li, d.b_off, d.out, 0, t});
            vars.push_back({li, d.mm_off, d.out, 0, false});
            vars.push_back({li, d.mv_off, d.out, 0, false});
        } else if (d.kind == LayerKind::PReLU) {
            vars.push_back({li, d.w_off, d.kernel_rows(), 0, t});
        } else if (d.kind == LayerKind::LayerNorm) {
            if (d.has_kernel) vars.push_back({li, d.w_off, d.out, 0, t});
            if (d.use_bias) vars.push_back({li, d.b_off, d.out, 0, t});
        }
    }
    return vars;
}

void Network::set_metrics(const std::vector<MetricKind>& kinds, float threshold) {
    if (!kinds.empty() && !heads_.empty())
        throw std::invalid_argument("Network: no native metrics with several losses");
    metrics_ = kinds;
    threshold_ = threshold;
}

void Network::set_heads(const std::vector<LossHead>& heads, int64_t target_cols) {
    if (!heads.empty() && !metrics_.empty())
        throw std::invalid_argument("Network: no native metrics with several losses");
    const int64_t U = output_dim();
    for (const auto& h : heads) {
        const int64_t tw = h.loss.kind == LossKind::SparseCategoricalCrossentropy ? 1 : h.units;
        if (h.units < 1 || h.col < 0 || h.col + h.units > U || h.tcol < 0 ||
            h.tcol + tw > target_cols)
            throw std::invalid_argument("Network: a loss head's columns are out of range");
    }
    heads_ = heads;
    target_cols_ = heads.empty() ? 0 : target_cols;  // (the workspace grows its targets' room
                                                     // when it is short: Workspace::ensure)
}

void Network::set_optimizer(const OptimizerSpec& spec) {
    opt_ = spec;
    const int64_t n = num_params();
    opt_state_.assign(static_cast<size_t>(optimizer_state_size(spec, n)), 0.0f);
    optimizer_init_state(spec, opt_state_.data(), n);
    iterations_ = 0;
}

namespace {
// Whether a layer keeps its pre-activation for backward: an activation the
// dense kernels do not fuse, or any activation after a BatchNorm or
// LayerNorm. (An Identity stage's pre-activation is its input.)
bool keeps_pre(const LayerDesc& d) {
    if (d.kind == LayerKind::Dense) return !kernel_fusable(d.act);
    return d.kind != LayerKind::Identity && d.act != Activation::Linear;
}
}  // namespace

void Network::Workspace::ensure(const std::vector<LayerDesc>& layers, int64_t B,
                                bool input_dropout, bool deltas, int64_t target_cols) {
    const int64_t T = target_cols >= 0 ? target_cols : layers.back().out;
    if (B <= capacity && t.size() >= static_cast<size_t>(B * T)) return;
    B = std::max(B, capacity);
    int64_t max_units = layers.front().in;
    for (const auto& l : layers) max_units = std::max(max_units, l.out);
    const int64_t in = layers.front().in;
    x.resize(static_cast<size_t>(B * in));
    acts.resize(layers.size());
    pre.resize(layers.size());
    mask.resize(layers.size());
    bn_stats.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
        const size_t n = static_cast<size_t>(B * layers[l].out);
        acts[l].resize(n);
        if (keeps_pre(layers[l])) pre[l].resize(n);
        if (layers[l].perturbed()) mask[l].resize(2 * n);
        if (layers[l].kind == LayerKind::BatchNorm)
            bn_stats[l].resize(static_cast<size_t>(2 * layers[l].out));
        if (layers[l].kind == LayerKind::LayerNorm) bn_stats[l].resize(static_cast<size_t>(2 * B));
    }
    if (deltas) {  // (inference has no backward)
        d0.resize(static_cast<size_t>(B * max_units));
        d1.resize(static_cast<size_t>(B * max_units));
    }
    if (is_graph(layers)) {
        outp.assign(layers.size(), nullptr);
        if (deltas) {
            grad.resize(layers.size());
            for (size_t l = 0; l < layers.size(); ++l)
                grad[l].resize(static_cast<size_t>(B * layers[l].out));
        }
    }
    t.resize(static_cast<size_t>(B * T));
    labels.resize(static_cast<size_t>(B));
    weights.resize(static_cast<size_t>(B));
    row_loss.resize(static_cast<size_t>(B));
    scratch.resize(static_cast<size_t>(4 * max_units));
    cols.resize(static_cast<size_t>(in));
    runs.resize(static_cast<size_t>(2 * in));
    if (input_dropout) xmask.resize(static_cast<size_t>(2 * B * in));
    if (deltas && layers.size() >= 2 && layers[1].kind == LayerKind::Dense &&
        layers[1].out <= kNarrowUpstreamMax)
        wnext.resize(static_cast<size_t>(layers[1].in * layers[1].out));
    capacity = B;
}

// The stages in order: a Dense layer's activation fused in the kernel's
// store when it can be, else (and for BatchNorm / Identity stages) in its own
// pass over the pre-activation. In training, dropout masks scale each output
// by 0 or 1/(1 - rate) (stored for backward) into the second half of mask[l].
const float* Network::forward(Workspace& ws, const float* x, int64_t B, bool training,
                             const RowsEpilogue* last_epi, bool* epi_ran) {
    if (epi_ran) *epi_ran = false;
    const DenseKernels& k = active_kernels();
    const float* in = x;
    if (training && input_dropout_ > 0.0f) {
        const int64_t n = B * input_dim();
        dropout_mask(ws.xmask.data(), ws.xmask.data() + n, x, n, input_dropout_);
        in = ws.xmask.data() + n;
    }
    const float* x_in = in;  // (a graph's stages may read it)
    for (size_t l = 0; l < layers_.size(); ++l) {
        const LayerDesc& d = layers_[l];
        float* y = ws.acts[l].data();
        float* p = params_.data();
        if (dag_) in = d.src[0] < 0 ? x_in : ws.outp[static_cast<size_t>(d.src[0])];
        if (d.kind == LayerKind::Dense) {
            const float* w = p + d.w_off;
            const float* b = d.use_bias ? p + d.b_off : nullptr;
            const bool sel = l == 0 && ws.kin >= 0;  // (ws.x: the selected columns)
            float* z = kernel_fusable(d.act) ? y : ws.pre[l].data();
            const Activation ka = kernel_fusable(d.act) ? d.act : Activation::Linear;
            const bool epi = last_epi && l + 1 == layers_.size() && z == y &&
                             !(training && d.perturbed());
            if (sel) {
                k.forward_rows(z, ws.x.data(), w, ws.cols.data(), b, B, ws.kin, d.out, ka);
            } else if (epi) {
                k.forward_epi(z, in, w, b, B, d.in, d.out, ka, *last_epi);
                *epi_ran = true;
            } else {
                k.forward(z, in, w, b, B, d.in, d.out, ka);
            }
            if (z != y) activation_forward(d.act, y, z, B, d.out, d.act_params);
        } else if (d.kind == LayerKind::BatchNorm) {
            float* z = d.act == Activation::Linear ? y : ws.pre[l].data();
            const float* gamma = d.has_kernel ? p + d.w_off : nullptr;
            const float* beta = d.use_bias ? p + d.b_off : nullptr;
            if (training && d.trainable) {
                float* st = ws.bn_stats[l].data();
                batchnorm_forward_train(z, st, st + d.out, p + d.mm_off, p + d.mv_off, in,
                                        gamma, beta, B, d.out, d.epsilon, d.momentum,
                                        d.one_minus_momentum, ws.scratch.data());
            } else {
                batchnorm_forward_infer(z, in, gamma, beta, p + d.mm_off, p + d.mv_off, B,
                                        d.out, d.epsilon);
            }
            if (z != y) activation_forward(d.act, y, z, B, d.out, d.act_params);
        } else if (d.kind == LayerKind::PReLU) {
            float* z = d.act == Activation::Linear ? y : ws.pre[l].data();
            prelu_forward(z, in, p + d.w_off, d.shared, B, d.out);
            if (z != y) activation_forward(d.act, y, z, B, d.out, d.act_params);
        } else if (d.kind == LayerKind::LayerNorm) {
            float* z = d.act == Activation::Linear ? y : ws.pre[l].data();
            layernorm_forward(z, ws.bn_stats[l].data(), in, d.has_kernel ? p + d.w_off : nullptr,
                              d.use_bias ? p + d.b_off : nullptr, B, d.out, d.epsilon,
                              static_cast<NormMode>(d.norm_mode));
            if (z != y) activation_forward(d.act, y, z, B, d.out, d.act_params);
        } else if (d.kind == LayerKind::Slice) {
            float* z = d.act == Activation::Linear ? y : ws.pre[l].data();
            for (int64_t b = 0; b < B; ++b)
                std::memcpy(z + b * d.out, in + b * d.in + d.begin,
                            sizeof(float) * static_cast<size_t>(d.out));
            if (z != y) activation_forward(d.act, y, z, B, d.out, d.act_params);
        } else if (d.kind == LayerKind::Merge) {
            float* z = d.act == Activation::Linear ? y : ws.pre[l].data();
            const float* xs[kMaxMergeInputs];
            int64_t w[kMaxMergeInputs];
            const int n_in = static_cast<int>(d.src.size());
            for (int i = 0; i < n_in; ++i) {
                const int s = d.src[static_cast<size_t>(i)];
                xs[i] = s < 0 ? x_in : ws.outp[static_cast<size_t>(s)];
                w[i] = s < 0 ? input_dim() : layers_[static_cast<size_t>(s)].out;
            }
            merge_forward(z, xs, w, n_in, B, static_cast<MergeMode>(d.merge));
            if (z != y) activation_forward(d.act, y, z, B, d.out, d.act_params);
        } else if (d.scalar_op != 0) {
            scalar_forward(y, in, B * d.out, static_cast<ScalarOp>(d.scalar_op), d.scalar);
        } else {
            activation_forward(d.act, y, in, B, d.out, d.act_params);
        }
        in = y;
        if (training && d.perturbed()) {
            const int64_t n = B * d.out;
            float* m = ws.mask[l].data();
            if (d.dropout > 0.0f)
                dropout_mask(m, m + n, y, n, d.dropout);
            else
                noise_mask(m, m + n, y, n, static_cast<NoiseKind>(d.noise), d.noise_param);
            in = m + n;
        }
        if (dag_) ws.outp[l] = in;
    }
    return in;
}

const float* Network::forward(Workspace& ws, const float* x, int64_t B) const {
    // Inference never touches the generator or the masks.
    return const_cast<Network*>(this)->forward(ws, x, B, false);
}

// mask[i] = 0 or 1/(1-rate) with P(keep) = 1 - rate; out = in * mask
// (dropout.h), advancing the generator's state.
//   mask: [n]   out: [n]   in: [n]
void Network::dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate) {
    rng_state_ = fastdense::dropout_mask(mask, out, in, n, rate, rng_state_);
}

// The noise of kind `kind` (dropout.h): mask = d out / d in; out = in with
// the noise, advancing the generator's state.
//   mask: [n]   out: [n]   in: [n]
void Network::noise_mask(float* mask, float* out, const float* in, int64_t n, NoiseKind kind,
                         float param) {
    switch (kind) {
        case NoiseKind::Gaussian:
            rng_state_ = gaussian_mask(mask, out, in, n, param, false, rng_state_);
            break;
        case NoiseKind::GaussianDropout: {
            const float stddev = static_cast<float>(
                std::sqrt(static_cast<double>(param) / (1.0 - static_cast<double>(param))));
            rng_state_ = gaussian_mask(mask, out, in, n, stddev, true, rng_state_);
            break;
        }
        case NoiseKind::AlphaDropout:
            rng_state_ = alpha_dropout_mask(mask, out, in, n, param, rng_state_);
            break;
        case NoiseKind::None:  // (not called: a stage without noise is not perturbed)
            break;
    }
}

bool Network::selectable(int64_t B, bool inference) const {
    // (narrow inputs gain too little to repay the scan; so do tiny training
    // batches, whose skipped weights are checked on every step)
    // (in a graph, only where the first stage alone reads the input: the
    // others would need it whole)
    return input_readers_ == 1 && layers_.front().kind == LayerKind::Dense &&
           input_dropout_ == 0.0f &&
           input_dim() >= 32 && B >= (inference ? 2 : 8);
}

// A float's bits, read in place (a type allowed to alias float).
#if defined(__GNUC__)
typedef uint32_t __attribute__((may_alias)) Bits32;
#else
typedef uint32_t Bits32;  // (MSVC does no type-based alias analysis)
#endif

// Bit counts of a 64-bit word (m != 0 for ctz64).
static inline int popcount64(uint64_t m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcountll(m);
#else
    int n = 0;
    for (; m; m &= m - 1) ++n;
    return n;
#endif
}
static inline int ctz64(uint64_t m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(m);
#else
    int n = 0;
    for (; !(m & 1); m >>= 1) ++n;
    return n;
#endif
}

bool Network::select_columns(Workspace& ws, const float* x, const int64_t* idx, int64_t start,
                             int64_t B, bool inference, const RowsEpilogue* rows_work) const {
    ws.kin = -1;  // (every batch's own: none unless this one gets a selection)
    if (!selectable(B, inference)) return false;
    const int64_t in = input_dim();
    const int64_t limit = static_cast<int64_t>(kSelectFraction * static_cast<double>(in));
    auto row = [&](int64_t b) { return x + (idx ? idx[start + b] : start + b) * in; };
    // Dense data leaves at its first row. (NaN counts as nonzero; -0.0 as
    // zero: its products are zeros too.)
    {
        const float* r = row(0);
        int64_t nz = 0;
        for (int64_t i = 0; i < in; ++i) nz += r[i] != 0.0f;
        if (nz > limit) return false;
    }
    // The columns with a nonzero: each task ORs its rows into its own flags,
    // then folds them into a bit per column (what the serial merge reads from
    // the other tasks: 13 words for MNIST's 784 columns, not 784 flags).
    const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), B / 8));
    const int64_t words = (in + 63) / 64;
    if (ws.colacc.size() < static_cast<size_t>(nt * in))
        ws.colacc.resize(static_cast<size_t>(nt * in));  // (grows once per thread count)
    if (ws.colbits.size() < static_cast<size_t>(nt * words + 1))
        ws.colbits.resize(static_cast<size_t>(nt * words + 1));
    uint32_t* acc = ws.colacc.data();
    uint64_t* bits = ws.colbits.data();
    const int64_t per = (B + nt - 1) / nt;
    parallel_for(nt, [&](int64_t t) {
        uint32_t* a = acc + t * in;
        std::fill_n(a, in, 0u);
        // (a column is nonzero in some row iff the OR of its bit patterns,
        // sign bit aside, is: NaN counts as nonzero, -0.0 as zero)
        const int64_t b1 = std::min(B, (t + 1) * per);
        int64_t b = t * per;
        for (; b + 1 < b1; b += 2) {
            const Bits32* r0 = reinterpret_cast<const Bits32*>(row(b));
            const Bits32* r1 = reinterpret_cast<const Bits32*>(row(b + 1));
            for (int64_t i = 0; i < in; ++i) a[i] |= r0[i] | r1[i];
        }
        if (b < b1) {
            const Bits32* r0 = reinterpret_cast<const Bits32*>(row(b));
            for (int64_t i = 0; i < in; ++i) a[i] |= r0[i];
        }
        uint64_t* w = bits + t * words;
        for (int64_t k = 0; k < words; ++k) {
            const int64_t i0 = 64 * k, n = std::min<int64_t>(64, in - i0);
            uint64_t m = 0;
            for (int64_t j = 0; j < n; ++j)
                m |= static_cast<uint64_t>((a[i0 + j] & 0x7fffffffu) != 0) << j;
            w[k] = m;
        }
    });
    int64_t count = 0;
    for (int64_t k = 0; k < words; ++k) {  // (merged into the first task's bits)
        for (int64_t t = 1; t < nt; ++t) bits[k] |= bits[t * words + k];
        count += popcount64(bits[k]);
    }
    if (count > limit) return false;
    // (inference: W is the same for every batch, its finiteness cached)
    if (inference && !first_kernel_finite()) return false;
    int64_t* cols = ws.cols.data();
    int64_t* skipped = cols + count;  // (the rest of cols: the all-zero columns)
    // The selected columns as runs of consecutive ones (first column, length):
    // the compaction copies runs, not single floats (an MNIST digit's ~527
    // pixels come in ~25 runs, the rows of the image).
    int64_t* runs = ws.runs.data();
    int64_t n_runs = 0;
    bits[words] = 0;  // (the spare word: no column past the last)
    for (int64_t k = 0, c = 0, z = 0, closed = 0; k < words; ++k) {
        const int64_t i0 = 64 * k, n = std::min<int64_t>(64, in - i0);
        const uint64_t valid = n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
        const uint64_t on = bits[k];
        for (uint64_t m = on; m; m &= m - 1) cols[c++] = i0 + ctz64(m);
        for (uint64_t m = ~on & valid; m; m &= m - 1) skipped[z++] = i0 + ctz64(m);
        // runs: a one after a zero (or at column 0) starts one, a one before
        // a zero (or the last column) ends one
        const uint64_t prev = k > 0 ? bits[k - 1] >> 63 : 0;
        const uint64_t starts = on & ~((on << 1) | prev);
        const uint64_t ends = on & ~((on >> 1) | (bits[k + 1] << 63));
        for (uint64_t m = starts; m; m &= m - 1) runs[2 * n_runs++] = i0 + ctz64(m);
        for (uint64_t m = ends; m; m &= m - 1, ++closed)  // (runs close in order)
            runs[2 * closed + 1] = i0 + ctz64(m) + 1 - runs[2 * closed];
    }
    // Each task compacts its rows and checks its share of the skipped columns'
    // weights: they must be finite, since 0 * inf is NaN in the full product
    // (as Keras computes it) and skipping it would hide that.
    const LayerDesc& d0 = layers_.front();
    const float* w = params_.data() + d0.w_off;
    const int64_t n_skip = in - count;
    uint32_t* bad = acc;  // [nt] (the flags are not needed any more)
    float* xc = ws.x.data();
    parallel_for(nt, [&](int64_t t) {
        if (rows_work) rows_work->fn(rows_work->ctx, t * per, std::min(B, (t + 1) * per));
        for (int64_t b = t * per; b < std::min(B, (t + 1) * per); ++b) {
            const float* r = row(b);
            float* dst = xc + b * count;
            for (int64_t k = 0; k < n_runs; ++k) {
                const float* src = r + runs[2 * k];
                const int64_t len = runs[2 * k + 1];
                for (int64_t j = 0; j < len; ++j) dst[j] = src[j];
                dst += len;
            }
        }
        uint32_t nonfinite = 0;
        const int64_t z0 = n_skip * t / nt, z1 = n_skip * (t + 1) / nt;
        // (inference checked all of W once above; training too when the
        // first kernel's finiteness is tracked through the steps)
        if (!inference && w0_finite_.load(std::memory_order_acquire) != 1)
            for (int64_t z = z0; z < z1; ++z)
                nonfinite |= !all_finite_serial(w + skipped[z] * d0.out, d0.out);
        bad[t] = nonfinite;
    });
    for (int64_t t = 0; t < nt; ++t)
        if (bad[t]) return false;
    ws.kin = count;
    return true;
}

// Points xb/tb at the batch's rows: straight into the caller's arrays when
// the batch is a contiguous run, else gathered into the workspace.
void Network::gather(Workspace& ws, const float* x, const Targets& t, const int64_t* idx,
                     int64_t start, int64_t B, const float** xb, Targets& tb,
                     bool inference) const {
    const int64_t in = input_dim(), U = target_dim();
    if (!idx) {  // (a contiguous batch: read in place)
        // Sparse inputs: layer 0 reads the selected columns, compacted into
        // ws.x (nothing else reads the batch's input: no input dropout, layer
        // 0 Dense).
        const bool selected = select_columns(ws, x, idx, start, B, inference);
        *xb = selected ? ws.x.data() : x + start * in;
        tb.dense = t.dense ? t.dense + start * U : nullptr;
        tb.labels = t.labels ? t.labels + start : nullptr;
        tb.weights = t.weights ? t.weights + start * t.wcols : nullptr;
        tb.wcols = t.wcols;
        return;
    }
    // Rows [b0, b1) of a shuffled batch: its inputs (unless compacted),
    // targets, labels and sample weights, each row a read from all over the
    // arrays.
    struct Copy {
        const float* x; const Targets* t; const int64_t* rows; int64_t in, U;
        float* gx; float* gt; int32_t* gl; float* gw; bool inputs;
        static void run(void* c, int64_t b0, int64_t b1) {
            const Copy& a = *static_cast<const Copy*>(c);
            const size_t in_bytes = sizeof(float) * static_cast<size_t>(a.in);
            const size_t u_bytes = sizeof(float) * static_cast<size_t>(a.U);
            if (a.inputs)
                for (int64_t b = b0; b < b1; ++b)
                    std::memcpy(a.gx + b * a.in, a.x + a.rows[b] * a.in, in_bytes);
            if (a.t->dense)
                for (int64_t b = b0; b < b1; ++b)
                    std::memcpy(a.gt + b * a.U, a.t->dense + a.rows[b] * a.U, u_bytes);
            if (a.t->labels)
                for (int64_t b = b0; b < b1; ++b) a.gl[b] = a.t->labels[a.rows[b]];
            if (a.t->weights) {
                const int64_t wc = a.t->wcols;
                for (int64_t b = b0; b < b1; ++b)
                    for (int64_t k = 0; k < wc; ++k)
                        a.gw[b * wc + k] = a.t->weights[a.rows[b] * wc + k];
            }
        }
    } copy{x, &t, idx + start, in, U, ws.x.data(), ws.t.data(), ws.labels.data(),
           ws.weights.data(), false};
    // A column selection compacts the inputs over the pool, each thread its
    // rows, and copies those rows' targets in the same tasks (MNIST, 2
    // threads: ~5 us a step less on the calling thread alone).
    const RowsEpilogue targets{&Copy::run, &copy};
    const bool selected = select_columns(ws, x, idx, start, B, inference, &targets);
    if (!selected) {
        // Whole input rows: copied by the pool, each thread the rows it then
        // reads first (dense 784-wide inputs, batch 128: ~95 us of cache
        // misses a step on the calling thread alone, on an Intel Xeon VM).
        copy.inputs = true;
        const int64_t parts = std::max<int64_t>(
            1, std::min<int64_t>({static_cast<int64_t>(get_num_threads()), B,
                                  B * in / kGatherFloats}));
        const int64_t per = (B + parts - 1) / parts;
        if (parts > 1)
            parallel_for((B + per - 1) / per, [&](int64_t p) {
                Copy::run(&copy, p * per, std::min(B, (p + 1) * per));
            });
        else
            Copy::run(&copy, 0, B);
    }
    *xb = ws.x.data();
    tb.dense = t.dense ? ws.t.data() : nullptr;
    tb.labels = t.labels ? ws.labels.data() : nullptr;
    tb.weights = t.weights ? ws.weights.data() : nullptr;
    tb.wcols = t.wcols;
}

const float* Network::layer_input(const Workspace& ws, size_t li, const float* xb,
                                  int64_t B) const {
    return stage_output(ws, layers_[li].src[0], xb, B);
}

const float* Network::stage_output(const Workspace& ws, int s, const float* xb,
                                   int64_t B) const {
    if (s < 0) return input_dropout_ > 0.0f ? ws.xmask.data() + B * input_dim() : xb;
    const LayerDesc& p = layers_[static_cast<size_t>(s)];
    return p.perturbed() ? ws.mask[static_cast<size_t>(s)].data() + B * p.out
                         : ws.acts[static_cast<size_t>(s)].data();
}

// `times` steps of the fused RMSprop's zero-gradient update on v [n]:
// v = rho*v + (1-rho)*0, as in Network::backward's eager pass (the same
// expression, so the same bits, -0 turned +0 included).
static void decay_rows(float* v, int64_t n, uint32_t times, float rho, float one_rho) {
    for (uint32_t i = 0; i < times; ++i)
        for (int64_t j = 0; j < n; ++j) v[j] = rho * v[j] + one_rho * 0.0f;
}

// Whether the optimizer step on the first layer's kernel can run inside its
// dW computation (FusedStep): RMSprop without momentum or centering, Adam
// without amsgrad, or SGD, with or without weight decay; no gradient
// clipping (it needs every gradient first); a trainable Dense first layer
// (its kernel regularizer's gradient term, if any, is added in the step).
bool Network::first_update_fusable() const {
    const LayerDesc& d = layers_.front();
    const bool kind_ok =
        (opt_.kind == OptimizerKind::RMSprop && !(opt_.momentum > 0.0f) && !opt_.centered) ||
        (opt_.kind == OptimizerKind::Adam && !opt_.amsgrad) || opt_.kind == OptimizerKind::SGD;
    return kind_ok && opt_.clipnorm == 0.0f && opt_.clipvalue == 0.0f &&
           opt_.global_clipnorm == 0.0f && d.kind == LayerKind::Dense && d.trainable && !dag_ &&
           accum_steps_ == 0;
}

// Whether weight decay applies to layer `layer`'s kernel (or bias): the
// optimizer's exclusions, one flag per variable in layer order, kernel
// before bias.
bool Network::variable_decays(size_t layer, bool kernel) const {
    if (decay_mask_.empty()) return true;
    size_t v = 0;
    for (size_t l = 0; l < layer; ++l)
        v += (layers_[l].has_kernel ? 1 : 0) + (layers_[l].use_bias ? 1 : 0);
    if (!kernel && layers_[layer].has_kernel) ++v;
    return decay_mask_[v];
}

// The backward of stage li when it is a BatchNorm, PReLU, LayerNorm or
// Identity stage: its activation (dcur [B, out] becomes dL/dz in place), then
// its map into dx [B, in] (nullptr: no input gradient) and its weights'
// gradients (none for a frozen layer; BatchNorm then runs in inference mode).
//   in: [B, in] the stage's input
void Network::backward_map(Workspace& ws, size_t li, Activation act, float* dcur, float* dx,
                           const float* in, int64_t B) {
    const LayerDesc& d = layers_[li];
    const float* y = ws.acts[li].data();
    float* p = params_.data();
    float* g = grads_.data();
    if (d.kind == LayerKind::Identity) {
        if (dx && d.scalar_op != 0)
            scalar_backward(dx, dcur, in, B * d.out, static_cast<ScalarOp>(d.scalar_op),
                            d.scalar);
        else if (dx)
            activation_backward(act, dx, dcur, in, y, B, d.out, d.act_params);
        return;
    }
    if (act != Activation::Linear)
        activation_backward(act, dcur, dcur, ws.pre[li].data(), y, B, d.out, d.act_params);
    if (d.kind == LayerKind::BatchNorm) {
        const float* gamma = d.has_kernel ? p + d.w_off : nullptr;
        if (d.trainable) {
            const float* st = ws.bn_stats[li].data();
            batchnorm_backward_train(dx, d.has_kernel ? g + d.w_off : nullptr,
                                     d.use_bias ? g + d.b_off : nullptr, dcur, in, st,
                                     st + d.out, gamma, B, d.out, ws.scratch.data());
        } else if (dx) {
            batchnorm_backward_infer(dx, dcur, gamma, p + d.mv_off, B, d.out, d.epsilon);
        }
    } else if (d.kind == LayerKind::PReLU) {
        prelu_backward(dx, d.trainable ? g + d.w_off : nullptr, dcur, in, p + d.w_off,
                       d.shared, B, d.out, ws.scratch.data());
    } else if (d.kind == LayerKind::LayerNorm) {
        // (a frozen layer's weights get no gradient; the map is the same)
        const bool t = d.trainable;
        layernorm_backward(dx, t && d.has_kernel ? g + d.w_off : nullptr,
                           t && d.use_bias ? g + d.b_off : nullptr, dcur, in,
                           ws.bn_stats[li].data(), d.has_kernel ? p + d.w_off : nullptr, B,
                           d.out, static_cast<NormMode>(d.norm_mode));
    }
}

// Backprop from ws.d0 (dL/dy of the last layer, or dL/dz when fused) into
// grads_: through each layer's dropout mask, its activity regularizer, its
// activation (fused in the kernel, or a separate pass) and its own map; the
// first layer's kernel step runs inside its dW when first_update_fusable().
void Network::backward(Workspace& ws, const float* xb, int64_t B, bool fused) {
    if (dag_) {
        backward_graph(ws, xb, B, fused);
        return;
    }
    const bool fuse_update = first_update_fusable();
    fused_first_ = false;
    fused_rest_ = false;
    const DenseKernels& k = active_kernels();
    float* dcur = ws.d0.data();
    float* dnext = ws.d1.data();
    float* p = params_.data();
    float* g = grads_.data();
    // A narrow second layer's dX (the first layer's dL/dy) is not stored: the
    // first layer's pass over its dz computes it from that layer's dL/dz and
    // kernel (backward_rows_up; the same bits). The first layer must take
    // dL/dy as it is: no dropout, activity regularizer or separate
    // activation pass between the two. (MNIST: the dX region and the
    // reload of its 256 KiB output were ~30 us of a ~0.8 ms 2-thread step
    // on an Intel Xeon VM.)
    bool fuse_up = false;
    if (layers_.size() >= 2 && !ws.wnext.empty()) {
        const LayerDesc& d0 = layers_[0];
        const LayerDesc& d1 = layers_[1];
        fuse_up = d1.kind == LayerKind::Dense && d1.out <= kNarrowUpstreamMax &&
                  d0.kind == LayerKind::Dense && !d0.perturbed() && !d0.has_activity_reg() &&
                  kernel_fusable(d0.act) && (ws.kin >= 0 || fuse_update);
    }
    NarrowUpstream up{nullptr, nullptr, 0};
    for (size_t li = layers_.size(); li-- > 0;) {
        const LayerDesc& d = layers_[li];
        const bool last = li + 1 == layers_.size();
        const int64_t n = B * d.out;
        const float* y = ws.acts[li].data();
        if (d.perturbed()) {  // dL/dy = dL/d(dropped or noisy y) * mask
            const float* m = ws.mask[li].data();
            for (int64_t i = 0; i < n; ++i) dcur[i] *= m[i];
        }
        if (d.has_activity_reg())  // (never fused with the loss: see loss_activation)
            l1l2_grad(dcur, y, n, d.activity_l1, d.activity_l2, 1.0f / static_cast<float>(B));
        const float* in = layer_input(ws, li, xb, B);
        Activation act = last && fused ? Activation::Linear : d.act;
        if (d.kind == LayerKind::Dense) {
            if (!kernel_fusable(act)) {
                activation_backward(act, dcur, dcur, ws.pre[li].data(), y, B, d.out, d.act_params);
                act = Activation::Linear;
            }
            const bool fuse = li == 0 && fuse_update;
            if (li == 0 && (ws.kin >= 0 || fuse)) {
                // The optimizer step on the kernel fused into dW (its rows are
                // final as they are computed; W is not read after), or dW.
                FusedStep u;
                u.p = p + d.w_off;
                u.eps = opt_.epsilon;
                if (opt_.weight_decay != 0.0f && variable_decays(0, true)) {
                    u.wd = opt_.weight_decay;
                    u.wd_lr = step_lr_;
                }
                u.reg_a = d.kernel_l1;  // (l1l2_grad's a and b at scale 1)
                u.reg_b = 2.0f * d.kernel_l2;
                const bool reg = u.reg_a != 0.0f || u.reg_b != 0.0f;
                const bool adam = opt_.kind == OptimizerKind::Adam;
                const bool sgd = opt_.kind == OptimizerKind::SGD;
                if (sgd) {  // (state slot: momentums, when momentum != 0)
                    u.kind = FusedStep::Kind::SGD;
                    u.lr = step_lr_;
                    u.momentum = opt_.momentum;
                    u.nesterov = opt_.nesterov;
                    if (opt_.momentum != 0.0f) u.m = opt_state_.data() + d.w_off;
                } else if (adam) {  // (state slots: momentums, velocities)
                    OptimizerSpec s = opt_;
                    s.learning_rate = step_lr_;
                    u.kind = FusedStep::Kind::Adam;
                    u.m = opt_state_.data() + d.w_off;
                    u.v = opt_state_.data() + num_params() + d.w_off;
                    adam_step_scalars(s, iterations_, u.alpha, u.one_b1, u.one_b2);
                } else {
                    u.v = opt_state_.data() + d.w_off;
                    u.lr = step_lr_;
                    u.rho = static_cast<float>(opt_.rho);
                    u.one_rho = static_cast<float>(1.0 - opt_.rho);
                }
                w0_step_nonfinite_.store(0, std::memory_order_relaxed);
                u.nonfinite = &w0_step_nonfinite_;
                // The all-zero columns' rows of dW (cols[kin..in)) are zero: with
                // RMSprop's step, v = rho*v + (1-rho)*0 and p -= lr*0/sqrt(v + eps),
                // which leaves p as it is (to the bit) when eps > 0 and lr >= 0 (a
                // p already NaN stays NaN); SGD's without momentum, p -= 0*lr,
                // leaves p and there is no state, when lr is finite and >= 0;
                // Adam's, or SGD's with momentum, with a zero gradient still
                // moves p (by the decayed momentum); the kernel does the other rows.
                const int64_t kin = ws.kin >= 0 ? ws.kin : d.in;
                // In train_batches the zero rows' decays are deferred: a row
                // all-zero in n batches in a row gets its n decays in one pass
                // when a batch next selects it (before the kernel's step reads
                // its v), or when train_batches returns, instead of one pass
                // over its v per step. (MNIST: ~257 of 784 rows are zero in a
                // batch, ~30 a step come back; 67 are zero in every image.)
                const bool v_only =
                    !adam && !sgd && !reg && u.wd == 0.0f && u.eps > 0.0f && u.lr >= 0.0f;
                const bool no_op =
                    sgd && !u.m && !reg && u.wd == 0.0f && u.lr >= 0.0f && std::isfinite(u.lr);
                const bool defer = defer_decay_ && fuse && ws.kin >= 0 && v_only;
                if (!defer && lag_pending_) catch_up_decays();
                lagged_.clear();
                if (defer) {
                    for (int64_t z = 0; z < kin; ++z) {
                        const int64_t r = ws.cols[static_cast<size_t>(z)];
                        if (v_lag_[static_cast<size_t>(r)]) lagged_.push_back(r);
                    }
                    for (int64_t z = kin; z < d.in; ++z)
                        ++v_lag_[static_cast<size_t>(ws.cols[static_cast<size_t>(z)])];
                    lag_pending_ = lag_pending_ || kin < d.in;
                }
                // With the fused step, the other layers' steps run here too:
                // their gradients are final (RMSprop is elementwise: any split
                // gives update()'s bits), and the step's serial tail shrinks
                // to the first layer's bias (MNIST, 2 threads: the output
                // layer's 5130 weights took ~4.5 us a step after backward).
                int64_t n_rest = 0;
                rest_.clear();
                if (fuse) {
                    for (size_t lj = 1; lj < layers_.size(); ++lj) {
                        const LayerDesc& e = layers_[lj];
                        if (!e.trainable) continue;
                        if (e.has_kernel)
                            rest_.push_back({e.w_off, e.w_off + e.kernel_size(),
                                             variable_decays(lj, true)});
                        if (e.use_bias)
                            rest_.push_back({e.b_off, e.b_off + e.out, variable_decays(lj, false)});
                    }
                    for (const ParamSegment& sg : rest_) n_rest += sg.end - sg.begin;
                }
                OptimizerSpec spec = opt_;
                spec.learning_rate = step_lr_;
                // (rows split over the pool: ~1/3 of a 784x512 kernel on MNIST)
                const int64_t nz = defer || (fuse && no_op) ? 0 : d.in - kin;
                const int64_t nl = static_cast<int64_t>(lagged_.size());
                const int64_t parts = std::max<int64_t>(
                    1, std::min<int64_t>(get_num_threads(),
                                         ((nz + nl) * d.out + n_rest) / 8192));
                parallel_for(parts, [&](int64_t t) {
                    // (share t of the other layers' parameters, in order)
                    int64_t r0 = n_rest * t / parts, r1 = n_rest * (t + 1) / parts;
                    for (const ParamSegment& sg : rest_) {
                        const int64_t len = sg.end - sg.begin;
                        const int64_t a = std::max<int64_t>(r0, 0), b = std::min(r1, len);
                        GradTransform xf;  // (weight decay, as update() applies it)
                        if (sg.decay) xf.decay = spec.weight_decay;
                        if (a < b)
                            optimizer_step(spec, iterations_, p, opt_state_.data(), g,
                                           num_params(), sg.begin + a, sg.begin + b, xf);
                        r0 -= len;
                        r1 -= len;
                    }
                    for (int64_t z = kin + nz * t / parts; z < kin + nz * (t + 1) / parts; ++z) {
                        const int64_t off = ws.cols[static_cast<size_t>(z)] * d.out;
                        float* gz = g + d.w_off + off;
                        if (!fuse) {
                            std::memset(gz, 0, sizeof(float) * static_cast<size_t>(d.out));
                        } else if (v_only) {
                            float* v = u.v + off;
                            for (int64_t j = 0; j < d.out; ++j)
                                v[j] = u.rho * v[j] + u.one_rho * 0.0f;
                        } else {
                            std::memset(gz, 0, sizeof(float) * static_cast<size_t>(d.out));
                            k.fused_step(u, off, gz, d.out);
                        }
                    }
                    apply_lags(u.v, d.out, u.rho, u.one_rho, nl * t / parts,
                               nl * (t + 1) / parts);
                });
                if (fuse_up)
                    k.backward_rows_up(g + d.w_off, d.use_bias ? g + d.b_off : nullptr, y,
                                       ws.kin >= 0 ? ws.x.data() : in,
                                       ws.kin >= 0 ? ws.cols.data() : nullptr, B, kin, d.out,
                                       act, fuse ? &u : nullptr, up);
                else
                    k.backward_rows(g + d.w_off, d.use_bias ? g + d.b_off : nullptr, dcur, y,
                                    ws.kin >= 0 ? ws.x.data() : in,
                                    ws.kin >= 0 ? ws.cols.data() : nullptr, B, kin, d.out, act,
                                    fuse ? &u : nullptr);
                fused_first_ = fuse;
                fused_rest_ = fuse;
            } else if (li == 1 && fuse_up) {
                // (dX left to the first layer; its kernel copied if the
                // fused step will update it before the first layer's pass)
                k.backward(nullptr, g + d.w_off, d.use_bias ? g + d.b_off : nullptr, dcur, y,
                           in, p + d.w_off, B, d.in, d.out, act);
                const float* w1 = p + d.w_off;
                if (fuse_update) {
                    std::memcpy(ws.wnext.data(), w1,
                                sizeof(float) * static_cast<size_t>(d.in * d.out));
                    w1 = ws.wnext.data();
                }
                up = NarrowUpstream{dcur, w1, d.out};
            } else {
                k.backward(li == 0 ? nullptr : dnext, g + d.w_off,
                           d.use_bias ? g + d.b_off : nullptr, dcur, y, in, p + d.w_off, B,
                           d.in, d.out, act);
            }
        } else {
            backward_map(ws, li, act, dcur, li == 0 ? nullptr : dnext, in, B);
        }
        if (regularized_ && d.trainable)  // (the fused step took the first kernel's term)
            add_regularization_grads(d, !(li == 0 && fused_first_));
        std::swap(dcur, dnext);
    }
}

// backward() for a graph: stages in reverse order, each taking the gradient
// its output accumulated from the stages that read it (ws.grad), passing
// its input's on (added to that stage's, through a scratch), with none of
// the chain's fused steps (first_update_fusable and the column selection are
// off for graphs).
void Network::backward_graph(Workspace& ws, const float* xb, int64_t B, bool fused) {
    fused_first_ = false;
    fused_rest_ = false;
    const DenseKernels& k = active_kernels();
    float* p = params_.data();
    float* g = grads_.data();
    const size_t L = layers_.size();
    for (size_t l = 0; l + 1 < L; ++l)
        std::fill_n(ws.grad[l].data(), B * layers_[l].out, 0.0f);
    std::memcpy(ws.grad[L - 1].data(), ws.d0.data(),
                sizeof(float) * static_cast<size_t>(B * layers_[L - 1].out));
    float* dx = ws.d1.data();
    for (size_t li = L; li-- > 0;) {
        const LayerDesc& d = layers_[li];
        const int64_t n = B * d.out;
        float* dcur = ws.grad[li].data();
        const float* y = ws.acts[li].data();
        if (d.perturbed()) {
            const float* m = ws.mask[li].data();
            for (int64_t i = 0; i < n; ++i) dcur[i] *= m[i];
        }
        if (d.has_activity_reg())
            l1l2_grad(dcur, y, n, d.activity_l1, d.activity_l2, 1.0f / static_cast<float>(B));
        const float* in = layer_input(ws, li, xb, B);
        Activation act = li + 1 == L && fused ? Activation::Linear : d.act;
        const int s0 = d.src[0];
        float* dxp = s0 < 0 ? nullptr : dx;  // (no gradient for the network's input)
        if (d.kind == LayerKind::Dense) {
            if (!kernel_fusable(act)) {
                activation_backward(act, dcur, dcur, ws.pre[li].data(), y, B, d.out, d.act_params);
                act = Activation::Linear;
            }
            if (li == 0 && ws.kin >= 0) {
                // (a column selection, xb its compacted columns: dW's rows of the
                // all-zero columns are zero, the others as backward() computes them)
                for (int64_t z = ws.kin; z < d.in; ++z)
                    std::memset(g + d.gw_off + ws.cols[static_cast<size_t>(z)] * d.out, 0,
                                sizeof(float) * static_cast<size_t>(d.out));
                k.backward_rows(g + d.gw_off, d.use_bias ? g + d.gb_off : nullptr, dcur, y, in,
                                ws.cols.data(), B, ws.kin, d.out, act, nullptr);
            } else {
                k.backward(dxp, g + d.gw_off, d.use_bias ? g + d.gb_off : nullptr, dcur, y, in,
                           p + d.w_off, B, d.in, d.out, act);
            }
        } else if (d.kind == LayerKind::Merge) {
            if (act != Activation::Linear)
                activation_backward(act, dcur, dcur, ws.pre[li].data(), y, B, d.out, d.act_params);
            const float* xs[kMaxMergeInputs];
            float* dxs[kMaxMergeInputs];
            int64_t w[kMaxMergeInputs];
            const int n_in = static_cast<int>(d.src.size());
            for (int i = 0; i < n_in; ++i) {
                const int s = d.src[static_cast<size_t>(i)];
                xs[i] = stage_output(ws, s, xb, B);
                dxs[i] = s < 0 ? nullptr : ws.grad[static_cast<size_t>(s)].data();
                w[i] = s < 0 ? input_dim() : layers_[static_cast<size_t>(s)].out;
            }
            merge_backward(dxs, dcur, xs, w, n_in, B, static_cast<MergeMode>(d.merge));
            dxp = nullptr;  // (added in place)
        } else if (d.kind == LayerKind::Slice) {
            if (act != Activation::Linear)
                activation_backward(act, dcur, dcur, ws.pre[li].data(), y, B, d.out, d.act_params);
            if (s0 >= 0) {
                float* acc = ws.grad[static_cast<size_t>(s0)].data();
                for (int64_t b = 0; b < B; ++b)
                    for (int64_t j = 0; j < d.out; ++j)
                        acc[b * d.in + d.begin + j] += dcur[b * d.out + j];
            }
            dxp = nullptr;
        } else {
            backward_map(ws, li, act, dcur, dxp, in, B);
        }
        if (dxp) {
            float* acc = ws.grad[static_cast<size_t>(s0)].data();
            const int64_t m = B * d.in;
            for (int64_t i = 0; i < m; ++i) acc[i] += dxp[i];
        }
        if (regularized_ && d.trainable && d.alias < 0) add_regularization_grads(d, true);
    }
    // A layer applied several times: its gradient is the sum of its stages'
    // (each alias's added to the first stage's, in stage order)
    for (const LayerDesc& d : layers_) {
        if (d.alias < 0) continue;
        const LayerDesc& o = layers_[static_cast<size_t>(d.alias)];
        const int64_t nk = d.in * d.out;
        for (int64_t i = 0; i < nk; ++i) g[o.gw_off + i] += g[d.gw_off + i];
        if (d.use_bias)
            for (int64_t i = 0; i < d.out; ++i) g[o.gb_off + i] += g[d.gb_off + i];
    }
}

// Applies every deferred decay of the first kernel's velocities (rows split
// over the pool; each row's lag in one pass: its bits as one pass a step).
void Network::catch_up_decays() {
    if (!lag_pending_) return;
    lag_pending_ = false;
    lagged_.clear();
    int64_t work = 0;
    for (size_t r = 0; r < v_lag_.size(); ++r)
        if (v_lag_[r]) {
            lagged_.push_back(static_cast<int64_t>(r));
            work += v_lag_[r];
        }
    const LayerDesc& d = layers_.front();
    float* v = opt_state_.data() + d.w_off;
    const float rho = static_cast<float>(opt_.rho), one_rho = static_cast<float>(1.0 - opt_.rho);
    const int64_t nl = static_cast<int64_t>(lagged_.size());
    const int64_t parts =
        std::max<int64_t>(1, std::min<int64_t>({get_num_threads(), nl, work * d.out / 65536}));
    parallel_for(parts, [&](int64_t t) {
        apply_lags(v, d.out, rho, one_rho, nl * t / parts, nl * (t + 1) / parts);
    });
}

// The pending decays of rows lagged_[i0..i1) of the first kernel's
// velocities v [in, out], each in one pass, their lags then cleared.
void Network::apply_lags(float* v, int64_t out, float rho, float one_rho, int64_t i0,
                         int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
        const size_t r = static_cast<size_t>(lagged_[static_cast<size_t>(i)]);
        decay_rows(v + static_cast<int64_t>(r) * out, out, v_lag_[r], rho, one_rho);
        v_lag_[r] = 0;
    }
}

double Network::activity_penalty(const Workspace& ws, int64_t B) const {
    if (!activity_regularized_) return 0.0;
    double total = 0.0;
    for (size_t l = 0; l < layers_.size(); ++l) {
        const LayerDesc& d = layers_[l];
        if (d.has_activity_reg())
            total += l1l2_penalty(ws.acts[l].data(), B * d.out, d.activity_l1, d.activity_l2);
    }
    return total;
}

double Network::activity_penalty_sum(const float* x, int64_t n, int64_t batch_size) const {
    if (!activity_regularized_ || n == 0) return 0.0;
    Workspace ws;
    ws.ensure(layers_, std::min(batch_size, n), false, false);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += batch_size) {
        const int64_t B = std::min(batch_size, n - start);
        forward(ws, x + start * input_dim(), B);
        total += activity_penalty(ws, B);
    }
    return total;
}

void Network::set_activity_regularization(size_t layer, float l1, float l2) {
    if (layer >= layers_.size()) throw std::out_of_range("Network: no such layer");
    layers_[layer].activity_l1 = l1;
    layers_[layer].activity_l2 = l2;
    activity_regularized_ = false;
    for (const auto& d : layers_) activity_regularized_ = activity_regularized_ || d.has_activity_reg();
}

void Network::set_constraints(size_t layer, const ConstraintSpec& kernel,
                              const ConstraintSpec& bias) {
    if (layer >= layers_.size()) throw std::out_of_range("Network: no such layer");
    LayerDesc& d = layers_[layer];
    d.kernel_constraint = d.has_kernel ? kernel : ConstraintSpec{};
    d.bias_constraint = d.use_bias ? bias : ConstraintSpec{};
    constrained_ = false;
    for (const auto& l : layers_)
        constrained_ = constrained_ || l.kernel_constraint.kind != ConstraintKind::None ||
                       l.bias_constraint.kind != ConstraintKind::None;
    constraint_scratch_.assign(static_cast<size_t>(std::max(max_units_, input_dim()) + 1), 0.0);
}

// Keras applies each trainable variable's constraint right after the update.
void Network::apply_constraints() {
    for (const auto& d : layers_) {
        if (!d.trainable || d.alias >= 0) continue;
        if (d.has_kernel)
            apply_constraint(d.kernel_constraint, params_.data() + d.w_off, d.kernel_rows(),
                             d.kernel_cols(), constraint_scratch_.data());
        if (d.use_bias)
            apply_constraint(d.bias_constraint, params_.data() + d.b_off, d.out, 1,
                             constraint_scratch_.data());
    }
}

double Network::step_flops(int64_t B) const {
    double f = 0.0;
    for (const auto& d : layers_)
        f += d.kind == LayerKind::Dense ? 6.0 * static_cast<double>(B) * d.in * d.out
                                        : 10.0 * static_cast<double>(B) * d.out;
    return f;
}

Activation Network::loss_activation() const {
    // The fused gradient assumes the loss sees the last activation's own
    // output, and nothing else adds to dL/dy.
    const LayerDesc& d = layers_.back();
    return d.perturbed() || d.has_activity_reg() ? Activation::Linear : d.act;
}

void Network::set_regularization(size_t layer, float kernel_l1, float kernel_l2,
                                 float bias_l1, float bias_l2) {
    if (layer >= layers_.size()) throw std::out_of_range("Network: no such layer");
    LayerDesc& d = layers_[layer];
    d.kernel_l1 = kernel_l1;
    d.kernel_l2 = kernel_l2;
    d.bias_l1 = bias_l1;
    d.bias_l2 = bias_l2;
    regularized_ = false;
    for (const auto& l : layers_)
        regularized_ = regularized_ || l.kernel_l1 != 0.0f || l.kernel_l2 != 0.0f ||
                       l.bias_l1 != 0.0f || l.bias_l2 != 0.0f;
}

double Network::regularization_penalty() const {
    if (!regularized_) return 0.0;
    double total = 0.0;
    for (const auto& d : layers_) {
        // (Keras regularizes trainable weights only, once per layer)
        if (!d.trainable || d.alias >= 0) continue;
        if (d.has_kernel)
            total += l1l2_penalty(params_.data() + d.w_off, d.kernel_size(), d.kernel_l1,
                                  d.kernel_l2);
        if (d.use_bias)
            total += l1l2_penalty(params_.data() + d.b_off, d.out, d.bias_l1, d.bias_l2);
    }
    return total;
}

void Network::add_regularization_grads(const LayerDesc& d, bool kernel) {
    if (d.has_kernel && kernel)
        l1l2_grad(grads_.data() + d.w_off, params_.data() + d.w_off, d.kernel_size(),
                  d.kernel_l1, d.kernel_l2);
    if (d.use_bias)
        l1l2_grad(grads_.data() + d.b_off, params_.data() + d.b_off, d.out, d.bias_l1,
                  d.bias_l2);
}

void Network::set_trainable(size_t layer, bool trainable) {
    if (layer >= layers_.size()) throw std::out_of_range("Network: no such layer");
    layers_[layer].trainable = trainable;
}

void Network::set_weight_decay_mask(const std::vector<bool>& mask) {
    size_t vars = 0;
    for (const auto& d : layers_) vars += (d.has_kernel ? 1 : 0) + (d.use_bias ? 1 : 0);
    if (!mask.empty() && mask.size() != vars)
        throw std::invalid_argument("Network: the weight decay mask needs one flag per variable");
    decay_mask_ = mask;
}

// One optimizer step over the variables of the trainable layers (each
// layer's kernel or gamma, then bias or beta), as Keras's apply(): clipping,
// weight decay, update, constraints; in fixed-size chunks so results do not
// depend on the thread count.
void Network::update(float lr) {
    segments_.clear();
    for (size_t l = 0; l < layers_.size(); ++l) {
        const LayerDesc& d = layers_[l];
        if (!d.trainable || d.alias >= 0) continue;
        // (the first kernel's step already ran inside its backward, and the
        // other layers' steps beside it when fused_rest_)
        const bool first = l == 0;
        if (!first && fused_rest_) continue;
        if (d.has_kernel && !(fused_first_ && first))
            segments_.push_back({d.w_off, d.w_off + d.kernel_size(), variable_decays(l, true)});
        if (d.use_bias)
            segments_.push_back({d.b_off, d.b_off + d.out, variable_decays(l, false)});
    }
    OptimizerSpec spec = opt_;
    spec.learning_rate = lr;
    bool step = true;
    if (accum_steps_ > 0) {
        // Keras's accumulation (its JAX backend's order): a step that does
        // not update adds its gradients (g + acc); the updating one takes
        // (g + acc) / steps and clears the accumulator.  (No fused step ran:
        // segments_ holds every trainable variable.)
        step = (iterations_ + 1) % accum_steps_ == 0;
        const float steps = static_cast<float>(accum_steps_);
        float* g = grads_.data();
        float* acc = grad_acc_.data();
        for (const ParamSegment& s : segments_)
            for (int64_t i = s.begin; i < s.end; ++i) {
                if (step) {
                    g[i] = (g[i] + acc[i]) / steps;
                    acc[i] = 0.0f;
                } else {
                    acc[i] = g[i] + acc[i];
                }
            }
    }
    if (step)
        optimizer_update(spec, accum_steps_ > 0 ? iterations_ / accum_steps_ : iterations_,
                         params_.data(), opt_state_.data(), grads_.data(), num_params(),
                         segments_, update_scratch_);
    if (constrained_) apply_constraints();
    ++iterations_;
    if (ema_on_) ema_step();
    // The first kernel known finite stays so when only the fused step wrote it
    // (its skipped rows: unchanged, or stepped by the same reporting code) and
    // it reported finite values.
    const bool kept = fused_first_ && first_kernel_tracked() &&
                      w0_step_nonfinite_.load(std::memory_order_relaxed) == 0;
    fused_first_ = false;
    fused_rest_ = false;
    if (!kept || w0_finite_.load(std::memory_order_acquire) != 1) params_changed();
}

// The trainable variables (kernels and biases, gammas and betas, of the
// trainable layers that own their weights): the optimizer's variables.
void Network::trainable_segments(std::vector<ParamSegment>& out) const {
    out.clear();
    for (const LayerDesc& d : layers_) {
        if (!d.trainable || d.alias >= 0) continue;
        if (d.has_kernel) out.push_back({d.w_off, d.w_off + d.kernel_size(), true});
        if (d.use_bias) out.push_back({d.b_off, d.b_off + d.out, true});
    }
}

void Network::set_ema(bool on, float momentum, int64_t every) {
    if (on && !(momentum >= 0.0f && momentum <= 1.0f))
        throw std::invalid_argument("`ema_momentum` must be in the range [0, 1]. Received: "
                                    "ema_momentum=" + std::to_string(momentum));
    if (every < 0)
        throw std::invalid_argument("`ema_overwrite_frequency` must be >= 0 (0: never). "
                                    "Received: " + std::to_string(every));
    ema_on_ = on;
    ema_momentum_ = momentum;
    ema_every_ = every;
    if (on && ema_.size() != params_.size()) ema_.assign(params_.size(), 0.0f);
}

// After a step (iterations_ already counts it): Keras's
// _update_model_variables_moving_average, then the overwrite every
// ema_every_ steps.  Each element on its own: the same bits at any thread
// count.
void Network::ema_step() {
    trainable_segments(ema_segments_);
    // (the optimizer's count before this step; with accumulation, of updates)
    const int64_t it = accum_steps_ > 0 ? (iterations_ - 1) / accum_steps_ : iterations_ - 1;
    const float m = it == 0 ? 0.0f : ema_momentum_;
    const bool overwrite = ema_every_ > 0 && (it + 1) % ema_every_ == 0;
    for (const ParamSegment& s : ema_segments_) {
        const int64_t n = s.end - s.begin;
        const int64_t parts =
            std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), n / 65536));
        float* avg = ema_.data() + s.begin;
        float* var = params_.data() + s.begin;
        auto run = [&](int64_t t) {
            const int64_t i0 = n * t / parts, i1 = n * (t + 1) / parts;
            ema_update(avg + i0, var + i0, i1 - i0, m);
            if (overwrite) std::memcpy(var + i0, avg + i0, sizeof(float) * size_t(i1 - i0));
        };
        if (parts > 1) parallel_for(parts, run);
        else run(0);
    }
    if (overwrite) params_changed();
}

void Network::set_grad_accumulation(int64_t steps) {
    if (steps != 0 && steps < 2)
        throw std::invalid_argument("`gradient_accumulation_steps` must be an integer >= 2 (0: "
                                    "off). Received: gradient_accumulation_steps=" +
                                    std::to_string(steps));
    accum_steps_ = steps;
    if (steps > 0 && grad_acc_.size() != params_.size()) grad_acc_.assign(params_.size(), 0.0f);
}

void Network::finalize_ema() {
    if (ema_.size() != params_.size()) return;
    trainable_segments(ema_segments_);
    for (const ParamSegment& s : ema_segments_)
        std::memcpy(params_.data() + s.begin, ema_.data() + s.begin,
                    sizeof(float) * size_t(s.end - s.begin));
    params_changed();
}

void Network::swap_ema() {
    if (ema_.size() != params_.size()) return;
    trainable_segments(ema_segments_);
    for (const ParamSegment& s : ema_segments_)
        std::swap_ranges(params_.data() + s.begin, params_.data() + s.end,
                         ema_.data() + s.begin);
    params_changed();
}

// Whether a training step can keep the first kernel's finiteness known
// (update()): its step is fused (first_update_fusable) and no constraint
// rewrites it after.
bool Network::first_kernel_tracked() const {
    return first_update_fusable() &&
           layers_.front().kernel_constraint.kind == ConstraintKind::None;
}

// Asks for the input rows order[start..start+count) to be brought towards the
// cache while this batch computes: a shuffled epoch reads its rows from all
// over x, and the next batch's gather would otherwise wait on each of them.
void Network::prefetch_rows(const float* x, const int64_t* order, int64_t start,
                            int64_t count) const {
#if defined(__GNUC__) || defined(__clang__)
    const int64_t in = input_dim();
    for (int64_t b = 0; b < count; ++b) {
        const char* r = reinterpret_cast<const char*>(x + order[start + b] * in);
        for (int64_t off = 0; off < in * static_cast<int64_t>(sizeof(float)); off += 64)
            __builtin_prefetch(r + off, 0, 1);
    }
#else
    (void)x; (void)order; (void)start; (void)count;
#endif
}

// The same for the targets of rows order[start..start+count) (at any thread
// count: a step's gather of 128 shuffled one-hot rows took ~3.6 us, nearly
// all of it cache misses, serial time between the pool's regions).
void Network::prefetch_targets(const Targets& t, const int64_t* order, int64_t start,
                               int64_t count) const {
#if defined(__GNUC__) || defined(__clang__)
    const int64_t U = target_dim();
    for (int64_t b = 0; b < count; ++b) {
        const int64_t r = order[start + b];
        if (t.dense) {  // (a row's first and last float: it may straddle two lines)
            __builtin_prefetch(t.dense + r * U, 0, 1);
            __builtin_prefetch(t.dense + r * U + U - 1, 0, 1);
        }
        if (t.labels) __builtin_prefetch(t.labels + r, 0, 1);
        if (t.weights) __builtin_prefetch(t.weights + r * t.wcols, 0, 1);
    }
#else
    (void)t; (void)order; (void)start; (void)count;
#endif
}

void Network::accumulate(Stats& stats, const float* y, const Targets& tb, int64_t B) const {
    stats.metric_sums.resize(static_cast<size_t>(num_metrics()), 0.0);
    for (size_t m = 0; m < metrics_.size(); ++m)
        stats.metric_sums[m] +=
            metric_sum(metrics_[m], y, tb.dense, tb.labels, B, output_dim(), threshold_);
    stats.seen += B;
}

void Network::add_head_losses(Stats& stats, const float* head_losses, int64_t B) const {
    const size_t M = metrics_.size();
    for (size_t h = 0; h < heads_.size(); ++h) {
        double sum = 0.0;
        for (int64_t r = 0; r < B; ++r) sum += head_losses[h * static_cast<size_t>(B) + r];
        stats.metric_sums[M + h] += sum;
    }
}

void Network::StepThreads::record(bool serial, double ns) {
    if (step % kBlock != 0) (serial ? serial_ns : pool_ns).push_back(ns);
    ++step;
    if (static_cast<int>(serial_ns.size()) >= kSamples &&
        static_cast<int>(pool_ns.size()) >= kSamples) {
        auto median = [](std::vector<double>& v) {
            std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
            return v[v.size() / 2];
        };
        decided = median(pool_ns) < 0.95 * median(serial_ns) ? 1 : 0;
    }
}

int64_t Network::train_batches(const float* x, const Targets& t, const int64_t* order,
                               int64_t n, int64_t batch_size, int64_t first_batch,
                               int64_t n_batches, Stats& stats, float* ypred_out,
                               bool stop_on_nonfinite, const float* learning_rates) {
    FlushDenormals flush;  // (as Keras computes: float_env.h)
    std::lock_guard<std::mutex> lock(train_mutex_);
    train_ws_.ensure(layers_, std::min(batch_size, n), input_dropout_ > 0.0f, true,
                     target_dim());
    const int64_t H = static_cast<int64_t>(heads_.size());
    head_loss_.resize(static_cast<size_t>(H * std::min(batch_size, n)));
    if (t.wcols > 1)  // (per-output sample weights: a row of them per sample)
        train_ws_.weights.resize(static_cast<size_t>(t.wcols * std::min(batch_size, n)));
    // Steps too small to repay the pool's synchronization run in this thread;
    // mid-sized ones as they measure faster (StepThreads).
    const double flops = step_flops(std::min(batch_size, n));
    const int nt = get_num_threads();
    const bool one_thread = nt == 1 || flops < kSerialStepFlops;
    StepThreads& st = step_threads_;
    int way = one_thread ? 0 : 1;  // 0 serial, 1 pooled, -1 still measuring (StepThreads)
    if (!one_thread && flops < kPoolStepFlops) {
        if (st.flops != flops || st.threads != nt) {
            st = StepThreads{};
            st.flops = flops;
            st.threads = nt;
        }
        way = st.decided;
    }
    const bool measure = way < 0, all_serial = way == 0;
    SerialRegion serial(all_serial);
    // (the first kernel's finiteness, read once here and then kept through the
    // steps, replaces the column selection's per-batch check of skipped rows)
    if (first_kernel_tracked() && selectable(std::min(batch_size, n), false))
        first_kernel_finite();
    const int64_t U = output_dim();
    const Activation loss_act = loss_activation();
    const bool fused = H == 0 && loss_is_fused(loss_, loss_act);
    // (deferred decays: see backward; all applied before this returns, even
    // by an exception)
    v_lag_.assign(static_cast<size_t>(layers_.front().in), 0u);
    struct Deferral {
        Network& n;
        explicit Deferral(Network& net) : n(net) { n.defer_decay_ = true; }
        ~Deferral() {
            n.defer_decay_ = false;
            n.catch_up_decays();
        }
    } deferral(*this);
    int64_t done = 0;
    for (int64_t bi = first_batch; bi < first_batch + n_batches; ++bi) {
        const int64_t start = bi * batch_size;
        if (start >= n) break;
        const int64_t B = std::min(batch_size, n - start);
        // (a measured step: timed, serial or pooled by its block; the last,
        // partial batch is not measured)
        const bool timed = measure && st.decided < 0 && B == batch_size;
        bool step_serial = all_serial;
        if (measure) step_serial = timed ? st.next_serial() : st.decided == 0;
        SerialRegion step_region(step_serial && !all_serial);
        const auto t_start = std::chrono::steady_clock::now();
        const float* xb;
        Targets tb;
        gather(train_ws_, x, t, order, start, B, &xb, tb, false);
        // (one thread: the prefetch hides the next batch's reads; with the
        // pool, the threads' column scans overlap their own misses and the
        // prefetch only delays the step: 2-thread MNIST gather + prefetch
        // 80 us per step vs 71 us without, 1 thread 3% faster per epoch with)
        if (order && step_serial)
            prefetch_rows(x, order, start + B, std::min(batch_size, n - start - B));
        if (order) prefetch_targets(t, order, start + B, std::min(batch_size, n - start - B));
        // The loss and its gradient, row by row inside the output layer's
        // forward tasks when it allows (forward_epi), else after it on the
        // stage's output; the per-sample losses summed in row order either
        // way (loss_forward_backward's bits).
        struct LossRows {
            float* grad; float* losses; const float* y; const Targets* tb;
            int64_t B, U; const LossSpec* loss; Activation act;
            const LossHead* heads; int64_t H, T; float* head_losses;
            static void run(void* c, int64_t r0, int64_t r1) {
                const LossRows& a = *static_cast<const LossRows*>(c);
                if (a.H)
                    heads_loss_rows(a.grad, a.losses, a.head_losses, a.y, a.U, a.tb->dense, a.T,
                                    r0, r1, a.B, a.heads, a.H, a.tb->weights, a.tb->wcols);
                else
                    loss_rows(a.grad, a.losses, a.y, a.tb->dense, a.tb->labels, r0, r1, a.B,
                              a.U, *a.loss, a.act, a.tb->weights);
            }
        } rows_loss{train_ws_.d0.data(), train_ws_.row_loss.data(),
                    train_ws_.acts.back().data(), &tb, B, U, &loss_, loss_act,
                    heads_.data(), H, target_cols_, head_loss_.data()};
        const RowsEpilogue epi{&LossRows::run, &rows_loss};
        bool epi_ran = false;
        const float* y = forward(train_ws_, xb, B, true, &epi, &epi_ran);
        if (!epi_ran) {
            rows_loss.y = y;  // (a dropout's output, or a stage the kernel did not end)
            LossRows::run(&rows_loss, 0, B);
        }
        double batch_loss = 0.0;
        for (int64_t r = 0; r < B; ++r) batch_loss += rows_loss.losses[r];
        // Keras adds the regularization losses of the current weights and the
        // activity losses (divided by B) to each batch's loss (the tracker
        // weights it by the batch size)
        stats.loss_sum += batch_loss + regularization_penalty() * static_cast<double>(B) +
                          activity_penalty(train_ws_, B);
        accumulate(stats, y, tb, B);
        add_head_losses(stats, head_loss_.data(), B);
        if (ypred_out)
            std::memcpy(ypred_out + start * U, y, sizeof(float) * static_cast<size_t>(B * U));
        step_lr_ = learning_rates ? learning_rates[bi - first_batch] : opt_.learning_rate;
        backward(train_ws_, xb, B, fused);
        update(step_lr_);
        ++done;
        if (timed)
            st.record(step_serial, std::chrono::duration<double, std::nano>(
                                       std::chrono::steady_clock::now() - t_start)
                                       .count());
        if (stop_on_nonfinite && !std::isfinite(batch_loss)) break;
    }
    return done;
}

// Inference runs its forward over chunks of rows, not over the caller's
// batches: small batches (Keras's default for evaluate and predict is 32)
// would repack W's blocks every 32 rows, so they grow to kInferMin rows while
// the workspace stays within kInferBytes; batches above kInferMax rows (one
// batch of 10000) would spill the activations out of the caches and need a
// workspace as large as the batch, so they shrink to kInferMax rows, or to
// what fits kInferBytes (at least kInferMin).  The loss and the metrics are
// sums over samples and each prediction is its own row, so the chunking
// changes no result beyond the grouping of float sums (a column selection's
// summation blocks depend on the chunk's nonzero columns).
int64_t Network::infer_chunk(int64_t batch_size, int64_t n) const {
    int64_t row = input_dim();  // floats per row of an inference workspace
    for (const auto& l : layers_) row += (keeps_pre(l) ? 2 : 1) * l.out;
    const int64_t fit = std::max<int64_t>(1, kInferBytes / (4 * row));
    const int64_t b = std::min(batch_size, n);
    if (b > kInferMax) return std::min(std::max(fit, kInferMin), kInferMax);
    if (b < kInferMin) return std::max(b, std::min(std::min(fit, kInferMin), n));
    return b;
}

void Network::evaluate(const float* x, const Targets& t, int64_t n, int64_t batch_size,
                       Stats& stats, float* ypred_out) const {
    FlushDenormals flush;  // (as Keras computes: float_env.h)
    if (n <= 0) return;
    const int64_t chunk = infer_chunk(batch_size, n);
    Workspace ws;
    ws.ensure(layers_, chunk, false, false);
    const int64_t U = output_dim();
    const size_t H = heads_.size();
    std::vector<float> grad(H ? static_cast<size_t>(chunk * U) : 0),
        losses(H ? static_cast<size_t>(chunk) : 0), head_losses(H * static_cast<size_t>(chunk));
    for (int64_t start = 0; start < n; start += chunk) {
        const int64_t B = std::min(chunk, n - start);
        const float* xb;
        Targets tb;
        gather(ws, x, t, nullptr, start, B, &xb, tb, true);
        const float* y = forward(ws, xb, B);
        double batch_loss = 0.0;
        if (!heads_.empty()) {  // (the heads' gradient rows are scratch here)
            heads_loss_rows(grad.data(), losses.data(), head_losses.data(), y, U, tb.dense,
                            target_cols_, 0, B, B, heads_.data(),
                            static_cast<int64_t>(heads_.size()), tb.weights, tb.wcols);
            for (int64_t r = 0; r < B; ++r) batch_loss += losses[static_cast<size_t>(r)];
        } else {
            batch_loss = loss_forward_backward(nullptr, nullptr, y, tb.dense, tb.labels, B, U,
                                               loss_, layers_.back().act, tb.weights);
        }
        stats.loss_sum += batch_loss + regularization_penalty() * static_cast<double>(B) +
                          activity_penalty(ws, B);
        accumulate(stats, y, tb, B);
        add_head_losses(stats, head_losses.data(), B);
        if (ypred_out)
            std::memcpy(ypred_out + start * U, y, sizeof(float) * static_cast<size_t>(B * U));
    }
}

// One input row (a one-sample predict) with mostly zero inputs: the first
// layer then reads only W's rows of its nonzero inputs (an MNIST digit: about
// 150 of 784, a fifth of W's bytes, which bound this product). The terms
// left out are exact zeros when W is finite (checked once per change of the
// weights), so the result is the full product's up to the grouping of sums.
bool Network::select_row(Workspace& ws, const float* x) const {
    ws.kin = -1;
    const int64_t in = input_dim();
    if (input_readers_ != 1 || layers_.front().kind != LayerKind::Dense || input_dropout_ > 0.0f ||
        in < 32)
        return false;
    int64_t* cols = ws.cols.data();
    float* xc = ws.x.data();
    int64_t c = 0;
    for (int64_t i = 0; i < in; ++i) {  // (NaN counts as nonzero, -0.0 as zero)
        cols[c] = i;
        xc[c] = x[i];
        c += x[i] != 0.0f;
    }
    if (c > in / 2 || !first_kernel_finite()) return false;
    ws.kin = c;
    return true;
}

bool Network::first_kernel_finite() const {
    int state = w0_finite_.load(std::memory_order_acquire);
    if (state < 0) {
        const LayerDesc& d = layers_.front();
        const float* w = params_.data() + d.w_off;
        state = all_finite(w, d.kernel_size()) ? 1 : 0;
        w0_finite_.store(state, std::memory_order_release);
    }
    return state == 1;
}

void Network::predict(const float* x, int64_t n, int64_t batch_size, float* out) const {
    FlushDenormals flush;  // (as Keras computes: float_env.h)
    if (n <= 0) return;
    const int64_t chunk = infer_chunk(batch_size, n);
    Workspace ws;
    ws.ensure(layers_, chunk, false, false);
    const int64_t in = input_dim(), U = output_dim();
    for (int64_t start = 0; start < n; start += chunk) {
        const int64_t B = std::min(chunk, n - start);
        // (sparse inputs: layer 0 reads only their nonzero columns, as in fit)
        const float* xb = x + start * in;
        if (B == 1) select_row(ws, xb);
        else select_columns(ws, xb, nullptr, 0, B, true);
        const float* y = forward(ws, xb, B);
        std::memcpy(out + start * U, y, sizeof(float) * static_cast<size_t>(B * U));
    }
}

void Network::forward_train(const float* x, int64_t B, float* y_out) {
    FlushDenormals flush;  // (as Keras computes: float_env.h)
    std::lock_guard<std::mutex> lock(train_mutex_);
    train_ws_.ensure(layers_, B, input_dropout_ > 0.0f);
    std::memcpy(train_ws_.x.data(), x, sizeof(float) * static_cast<size_t>(B * input_dim()));
    train_ws_.kin = -1;  // (this path keeps whole rows)
    const float* y = forward(train_ws_, train_ws_.x.data(), B, true);
    std::memcpy(y_out, y, sizeof(float) * static_cast<size_t>(B * output_dim()));
    last_activity_penalty_ = activity_penalty(train_ws_, B) / static_cast<double>(B);
    last_x_ = train_ws_.x.data();
    last_B_ = B;
}

void Network::backward_update(const float* grad_y, int64_t B) {
    FlushDenormals flush;  // (as Keras computes: float_env.h)
    std::lock_guard<std::mutex> lock(train_mutex_);
    if (!last_x_ || B != last_B_)
        throw std::logic_error("backward_update called without a matching forward_train");
    std::memcpy(train_ws_.d0.data(), grad_y, sizeof(float) * static_cast<size_t>(B * output_dim()));
    step_lr_ = opt_.learning_rate;
    backward(train_ws_, last_x_, B, false);
    update(step_lr_);
    last_x_ = nullptr;
}

}  // namespace fastdense
