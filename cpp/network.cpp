#include "network.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "activations.h"
#include "rng.h"
#include "threadpool.h"

namespace fastdense {

Network::Network(const std::vector<int64_t>& units, const std::vector<Activation>& acts,
                 const std::vector<bool>& use_bias, const std::vector<float>& dropout,
                 float input_dropout)
    : input_dropout_(input_dropout) {
    if (units.size() < 2 || acts.size() != units.size() - 1 ||
        use_bias.size() != units.size() - 1 ||
        (!dropout.empty() && dropout.size() != units.size() - 1))
        throw std::invalid_argument("Network: inconsistent layer description");
    auto valid_rate = [](float r) { return r >= 0.0f && r < 1.0f; };
    if (!valid_rate(input_dropout))
        throw std::invalid_argument("Network: dropout rates must be in [0, 1)");
    int64_t off = 0;
    for (size_t l = 0; l + 1 < units.size(); ++l) {
        if (units[l] <= 0 || units[l + 1] <= 0)
            throw std::invalid_argument("Network: layer sizes must be positive");
        LayerDesc d;
        d.in = units[l];
        d.out = units[l + 1];
        d.act = acts[l];
        d.use_bias = use_bias[l];
        d.dropout = dropout.empty() ? 0.0f : dropout[l];
        if (!valid_rate(d.dropout))
            throw std::invalid_argument("Network: dropout rates must be in [0, 1)");
        if (static_cast<int>(d.act) < 0 || static_cast<int>(d.act) >= kNumActivations)
            throw std::invalid_argument("Network: unknown activation");
        d.w_off = off;
        off += d.in * d.out;
        d.b_off = off;
        if (d.use_bias) off += d.out;
        layers_.push_back(d);
        max_units_ = std::max(max_units_, d.out);
    }
    params_.assign(static_cast<size_t>(off), 0.0f);
    grads_.assign(static_cast<size_t>(off), 0.0f);
    set_optimizer(OptimizerSpec{});
}

void Network::set_metrics(const std::vector<MetricKind>& kinds, float threshold) {
    metrics_ = kinds;
    threshold_ = threshold;
}

void Network::set_optimizer(const OptimizerSpec& spec) {
    opt_ = spec;
    const int64_t n = num_params();
    opt_state_.assign(static_cast<size_t>(optimizer_state_size(spec, n)), 0.0f);
    optimizer_init_state(spec, opt_state_.data(), n);
    iterations_ = 0;
}

void Network::Workspace::ensure(const std::vector<LayerDesc>& layers, int64_t B,
                                bool input_dropout) {
    if (B <= capacity) return;
    int64_t max_units = 0;
    for (const auto& l : layers) max_units = std::max(max_units, l.out);
    const int64_t in = layers.front().in, U = layers.back().out;
    x.resize(static_cast<size_t>(B * in));
    acts.resize(layers.size());
    pre.resize(layers.size());
    mask.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
        const size_t n = static_cast<size_t>(B * layers[l].out);
        acts[l].resize(n);
        if (!kernel_fusable(layers[l].act)) pre[l].resize(n);
        if (layers[l].dropout > 0.0f) mask[l].resize(2 * n);
    }
    d0.resize(static_cast<size_t>(B * max_units));
    d1.resize(static_cast<size_t>(B * max_units));
    t.resize(static_cast<size_t>(B * U));
    labels.resize(static_cast<size_t>(B));
    weights.resize(static_cast<size_t>(B));
    if (input_dropout) xmask.resize(static_cast<size_t>(2 * B * in));
    capacity = B;
}

// Dense layers in order; non-fused activations run in their own pass over
// the pre-activation. In training, dropout masks scale each output by
// 0 or 1/(1 - rate) (stored for backward) into the second half of mask[l].
const float* Network::forward(Workspace& ws, const float* x, int64_t B, bool training) {
    const DenseKernels& k = active_kernels();
    const float* in = x;
    if (training && input_dropout_ > 0.0f) {
        const int64_t n = B * input_dim();
        dropout_mask(ws.xmask.data(), ws.xmask.data() + n, x, n, input_dropout_);
        in = ws.xmask.data() + n;
    }
    for (size_t l = 0; l < layers_.size(); ++l) {
        const LayerDesc& d = layers_[l];
        float* y = ws.acts[l].data();
        const float* w = params_.data() + d.w_off;
        const float* b = d.use_bias ? params_.data() + d.b_off : nullptr;
        if (kernel_fusable(d.act)) {
            k.forward(y, in, w, b, B, d.in, d.out, d.act);
        } else {
            float* z = ws.pre[l].data();
            k.forward(z, in, w, b, B, d.in, d.out, Activation::Linear);
            activation_forward(d.act, y, z, B, d.out);
        }
        in = y;
        if (training && d.dropout > 0.0f) {
            const int64_t n = B * d.out;
            float* m = ws.mask[l].data();
            dropout_mask(m, m + n, y, n, d.dropout);
            in = m + n;
        }
    }
    return in;
}

const float* Network::forward(Workspace& ws, const float* x, int64_t B) const {
    // Inference never touches the generator or the masks.
    return const_cast<Network*>(this)->forward(ws, x, B, false);
}

// mask[i] = 0 or 1/(1-rate) with P(keep) = 1 - rate; out = in * mask.
//   mask: [n]   out: [n]   in: [n]
void Network::dropout_mask(float* mask, float* out, const float* in, int64_t n, float rate) {
    SplitMix64 rng(rng_state_);
    const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(rate) * 4294967296.0);
    const float scale = 1.0f / (1.0f - rate);
    for (int64_t i = 0; i < n; i += 2) {
        const uint64_t r = rng.next();
        mask[i] = static_cast<uint32_t>(r) >= threshold ? scale : 0.0f;
        if (i + 1 < n) mask[i + 1] = static_cast<uint32_t>(r >> 32) >= threshold ? scale : 0.0f;
    }
    rng_state_ = rng.state;
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * mask[i];
}

// Points xb/tb at the batch's rows: straight into the caller's arrays when
// the batch is a contiguous run, else gathered into the workspace.
void Network::gather(Workspace& ws, const float* x, const Targets& t, const int64_t* idx,
                     int64_t start, int64_t B, const float** xb, Targets& tb) const {
    const int64_t in = input_dim(), U = output_dim();
    if (!idx) {
        *xb = x + start * in;
        tb.dense = t.dense ? t.dense + start * U : nullptr;
        tb.labels = t.labels ? t.labels + start : nullptr;
        tb.weights = t.weights ? t.weights + start : nullptr;
        return;
    }
    const int64_t* rows = idx + start;
    float* gx = ws.x.data();
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(gx + b * in, x + rows[b] * in, sizeof(float) * static_cast<size_t>(in));
    *xb = gx;
    tb.dense = nullptr;
    tb.labels = nullptr;
    if (t.dense) {
        float* gt = ws.t.data();
        for (int64_t b = 0; b < B; ++b)
            std::memcpy(gt + b * U, t.dense + rows[b] * U, sizeof(float) * static_cast<size_t>(U));
        tb.dense = gt;
    }
    if (t.labels) {
        int32_t* gl = ws.labels.data();
        for (int64_t b = 0; b < B; ++b) gl[b] = t.labels[rows[b]];
        tb.labels = gl;
    }
    tb.weights = nullptr;
    if (t.weights) {
        float* gw = ws.weights.data();
        for (int64_t b = 0; b < B; ++b) gw[b] = t.weights[rows[b]];
        tb.weights = gw;
    }
}

// Backprop from ws.d0 (dL/dy of the last layer, or dL/dz when fused) into
// grads_: through each layer's dropout mask, its activation (fused in the
// kernel, or a separate pass) and its affine map.
void Network::backward(Workspace& ws, const float* xb, int64_t B, bool fused) {
    const DenseKernels& k = active_kernels();
    float* dcur = ws.d0.data();
    float* dnext = ws.d1.data();
    const bool input_dropped = input_dropout_ > 0.0f;
    for (size_t li = layers_.size(); li-- > 0;) {
        const LayerDesc& d = layers_[li];
        const bool last = li + 1 == layers_.size();
        const int64_t n = B * d.out;
        if (d.dropout > 0.0f) {  // dL/dy = dL/d(dropped y) * mask
            const float* m = ws.mask[li].data();
            for (int64_t i = 0; i < n; ++i) dcur[i] *= m[i];
        }
        Activation act = last && fused ? Activation::Linear : d.act;
        if (!kernel_fusable(act)) {
            activation_backward(act, dcur, dcur, ws.pre[li].data(), ws.acts[li].data(), B,
                                d.out);
            act = Activation::Linear;
        }
        const float* in;
        if (li == 0) {
            in = input_dropped ? ws.xmask.data() + B * input_dim() : xb;
        } else {
            const LayerDesc& p = layers_[li - 1];
            in = p.dropout > 0.0f ? ws.mask[li - 1].data() + B * p.out : ws.acts[li - 1].data();
        }
        k.backward(li == 0 ? nullptr : dnext, grads_.data() + d.w_off,
                   d.use_bias ? grads_.data() + d.b_off : nullptr, dcur, ws.acts[li].data(),
                   in, params_.data() + d.w_off, B, d.in, d.out, act);
        if (regularized_ && d.trainable) add_regularization_grads(d);
        std::swap(dcur, dnext);
    }
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

namespace {
// sum over w of l1*|w| + l2*w^2 (in double)
double penalty(const float* w, int64_t n, float l1, float l2) {
    if (l1 == 0.0f && l2 == 0.0f) return 0.0;
    double a = 0.0, s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        a += std::fabs(w[i]);
        s += static_cast<double>(w[i]) * w[i];
    }
    return l1 * a + l2 * s;
}

// g += l1*d|w|/dw + 2*l2*w, with d|w|/dw = +1 at w = 0 as JAX's abs (the
// Keras 3 backend the gradients are checked against)
void penalty_grad(float* g, const float* w, int64_t n, float l1, float l2) {
    if (l1 == 0.0f && l2 == 0.0f) return;
    for (int64_t i = 0; i < n; ++i) {
        const float sgn = w[i] >= 0.0f ? 1.0f : -1.0f;
        g[i] += l1 * sgn + 2.0f * l2 * w[i];
    }
}
}  // namespace

double Network::regularization_penalty() const {
    if (!regularized_) return 0.0;
    double total = 0.0;
    for (const auto& d : layers_) {
        if (!d.trainable) continue;  // Keras regularizes trainable weights only
        total += penalty(params_.data() + d.w_off, d.in * d.out, d.kernel_l1, d.kernel_l2);
        if (d.use_bias) total += penalty(params_.data() + d.b_off, d.out, d.bias_l1, d.bias_l2);
    }
    return total;
}

void Network::add_regularization_grads(const LayerDesc& d) {
    penalty_grad(grads_.data() + d.w_off, params_.data() + d.w_off, d.in * d.out, d.kernel_l1,
                 d.kernel_l2);
    if (d.use_bias)
        penalty_grad(grads_.data() + d.b_off, params_.data() + d.b_off, d.out, d.bias_l1,
                     d.bias_l2);
}

void Network::set_trainable(size_t layer, bool trainable) {
    if (layer >= layers_.size()) throw std::out_of_range("Network: no such layer");
    layers_[layer].trainable = trainable;
}

void Network::set_weight_decay_mask(const std::vector<bool>& mask) {
    size_t vars = 0;
    for (const auto& d : layers_) vars += d.use_bias ? 2 : 1;
    if (!mask.empty() && mask.size() != vars)
        throw std::invalid_argument("Network: the weight decay mask needs one flag per variable");
    decay_mask_ = mask;
}

// One optimizer step over the variables of the trainable layers (each
// layer's kernel, then bias), as Keras's apply(): clipping, weight decay,
// update; in fixed-size chunks so results do not depend on the thread count.
void Network::update(float lr) {
    segments_.clear();
    size_t v = 0;
    for (const auto& d : layers_) {
        const bool kd = decay_mask_.empty() || decay_mask_[v];
        const bool bd = decay_mask_.empty() || !d.use_bias || decay_mask_[v + 1];
        v += d.use_bias ? 2 : 1;
        if (!d.trainable) continue;
        segments_.push_back({d.w_off, d.w_off + d.in * d.out, kd});
        if (d.use_bias) segments_.push_back({d.b_off, d.b_off + d.out, bd});
    }
    OptimizerSpec spec = opt_;
    spec.learning_rate = lr;
    optimizer_update(spec, iterations_, params_.data(), opt_state_.data(), grads_.data(),
                     num_params(), segments_, update_scratch_);
    ++iterations_;
}

void Network::accumulate(Stats& stats, const float* y, const Targets& tb, int64_t B) const {
    stats.metric_sums.resize(metrics_.size(), 0.0);
    for (size_t m = 0; m < metrics_.size(); ++m)
        stats.metric_sums[m] +=
            metric_sum(metrics_[m], y, tb.dense, tb.labels, B, output_dim(), threshold_);
    stats.seen += B;
}

int64_t Network::train_batches(const float* x, const Targets& t, const int64_t* order,
                               int64_t n, int64_t batch_size, int64_t first_batch,
                               int64_t n_batches, Stats& stats, float* ypred_out,
                               bool stop_on_nonfinite, const float* learning_rates) {
    std::lock_guard<std::mutex> lock(train_mutex_);
    train_ws_.ensure(layers_, std::min(batch_size, n), input_dropout_ > 0.0f);
    const int64_t U = output_dim();
    const Activation out_act = layers_.back().act;
    // (the fused gradient assumes the loss sees the activation's own output)
    const bool dropped_out = layers_.back().dropout > 0.0f;
    const Activation loss_act = dropped_out ? Activation::Linear : out_act;
    const bool fused = loss_is_fused(loss_, loss_act);
    int64_t done = 0;
    for (int64_t bi = first_batch; bi < first_batch + n_batches; ++bi) {
        const int64_t start = bi * batch_size;
        if (start >= n) break;
        const int64_t B = std::min(batch_size, n - start);
        const float* xb;
        Targets tb;
        gather(train_ws_, x, t, order, start, B, &xb, tb);
        const float* y = forward(train_ws_, xb, B, true);
        const double batch_loss = loss_forward_backward(train_ws_.d0.data(), nullptr, y,
                                                        tb.dense, tb.labels, B, U, loss_,
                                                        loss_act, tb.weights);
        // Keras adds the regularization losses of the current weights to each
        // batch's loss (the tracker weights it by the batch size)
        stats.loss_sum += batch_loss + regularization_penalty() * static_cast<double>(B);
        accumulate(stats, y, tb, B);
        if (ypred_out)
            std::memcpy(ypred_out + start * U, y, sizeof(float) * static_cast<size_t>(B * U));
        backward(train_ws_, xb, B, fused);
        update(learning_rates ? learning_rates[bi - first_batch] : opt_.learning_rate);
        ++done;
        if (stop_on_nonfinite && !std::isfinite(batch_loss)) break;
    }
    return done;
}

void Network::evaluate(const float* x, const Targets& t, int64_t n, int64_t batch_size,
                       Stats& stats, float* ypred_out) const {
    Workspace ws;
    ws.ensure(layers_, std::min(batch_size, n), false);
    const int64_t U = output_dim();
    for (int64_t start = 0; start < n; start += batch_size) {
        const int64_t B = std::min(batch_size, n - start);
        const float* xb;
        Targets tb;
        gather(ws, x, t, nullptr, start, B, &xb, tb);
        const float* y = forward(ws, xb, B);
        stats.loss_sum += loss_forward_backward(nullptr, nullptr, y, tb.dense, tb.labels, B,
                                                U, loss_, layers_.back().act, tb.weights) +
                          regularization_penalty() * static_cast<double>(B);
        accumulate(stats, y, tb, B);
        if (ypred_out)
            std::memcpy(ypred_out + start * U, y, sizeof(float) * static_cast<size_t>(B * U));
    }
}

void Network::predict(const float* x, int64_t n, int64_t batch_size, float* out) const {
    Workspace ws;
    ws.ensure(layers_, std::min(batch_size, n), false);
    const int64_t in = input_dim(), U = output_dim();
    for (int64_t start = 0; start < n; start += batch_size) {
        const int64_t B = std::min(batch_size, n - start);
        const float* y = forward(ws, x + start * in, B);
        std::memcpy(out + start * U, y, sizeof(float) * static_cast<size_t>(B * U));
    }
}

void Network::forward_train(const float* x, int64_t B, float* y_out) {
    std::lock_guard<std::mutex> lock(train_mutex_);
    train_ws_.ensure(layers_, B, input_dropout_ > 0.0f);
    std::memcpy(train_ws_.x.data(), x, sizeof(float) * static_cast<size_t>(B * input_dim()));
    const float* y = forward(train_ws_, train_ws_.x.data(), B, true);
    std::memcpy(y_out, y, sizeof(float) * static_cast<size_t>(B * output_dim()));
    last_x_ = train_ws_.x.data();
    last_B_ = B;
}

void Network::backward_update(const float* grad_y, int64_t B) {
    std::lock_guard<std::mutex> lock(train_mutex_);
    if (!last_x_ || B != last_B_)
        throw std::logic_error("backward_update called without a matching forward_train");
    std::memcpy(train_ws_.d0.data(), grad_y, sizeof(float) * static_cast<size_t>(B * output_dim()));
    backward(train_ws_, last_x_, B, false);
    update(opt_.learning_rate);
    last_x_ = nullptr;
}

}  // namespace fastdense
