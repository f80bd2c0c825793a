// The one pybind11 file: validates dtype, shape and contiguity, converts
// errors to Python exceptions, releases the GIL and calls the engine (in its
// float environment: EngineCall).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "activations.h"
#include "dropout.h"
#include "finite.h"
#include "float_env.h"
#include "kernels.h"
#include "layernorm.h"
#include "losses.h"
#include "metrics.h"
#include "network.h"
#include "optimizers.h"
#include "rng.h"
#include "threadpool.h"

namespace py = pybind11;
using namespace fastdense;

namespace {

// How every call into the engine runs: without the GIL, and in the engine's
// float environment (subnormals flushed, as in Keras's backends; the caller's
// mode restored on return), so that a layer called on an array or an
// optimizer's apply_gradients computes as fit does.
struct EngineCall {
    py::gil_scoped_release release;
    FlushDenormals flush;
};

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s += ", ";
        s += std::to_string(a.shape(i));
    }
    if (a.ndim() == 1) s += ",";
    return s + ")";
}

// Checks dtype T, C-contiguity and shape (-1 = any) of a numpy array.
template <class T>
void check(const py::array& a, const char* name, std::initializer_list<int64_t> shape,
           bool writable = false) {
    if (!a.dtype().is(py::dtype::of<T>()))
        throw py::type_error(std::string("Argument `") + name + "` must have dtype " +
                             std::string(py::str(py::dtype::of<T>())) + ". Received: dtype=" +
                             std::string(py::str(a.dtype())));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string("Argument `") + name + "` must be C-contiguous.");
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error(std::string("Argument `") + name +
                              "` must be aligned (its data pointer is not a multiple of " +
                              std::to_string(alignof(T)) + "); pass a copy.");
    if (writable && !a.writeable())
        throw py::value_error(std::string("Argument `") + name + "` must be writable.");
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    size_t i = 0;
    for (int64_t d : shape) {
        if (!ok) break;
        if (d >= 0 && a.shape(static_cast<py::ssize_t>(i)) != d) ok = false;
        ++i;
    }
    if (!ok) {
        std::string want = "(";
        i = 0;
        for (int64_t d : shape) {
            if (i++) want += ", ";
            want += d >= 0 ? std::to_string(d) : std::string("?");
        }
        if (shape.size() == 1) want += ",";
        throw py::value_error(std::string("Argument `") + name + "` must have shape " + want +
                              ")" + ". Received: shape=" + shape_str(a));
    }
}

template <class T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <class T>
T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

Activation to_act(int a) {
    if (a < 0 || a >= kNumActivations)
        throw py::value_error("Unknown activation code " + std::to_string(a));
    return static_cast<Activation>(a);
}

// The dense kernels take only the activations they fuse.
Activation to_kernel_act(int a) {
    const Activation act = to_act(a);
    if (!kernel_fusable(act))
        throw py::value_error("Activation code " + std::to_string(a) +
                              " is not fused by the dense kernels; use activation_forward");
    return act;
}

// Targets for n rows of a U-wide output: float32 [n, U] or int32 labels [n].
Targets targets(const py::object& y, const py::object& labels, int64_t n, int64_t U,
                LossKind kind, bool need, const py::object& weights = py::none()) {
    Targets t;
    if (!weights.is_none()) {
        py::array a = weights.cast<py::array>();
        check<float>(a, "sample_weight", {n});
        t.weights = cptr<float>(a);
    }
    if (!y.is_none()) {
        py::array a = y.cast<py::array>();
        check<float>(a, "y", {n, U});
        t.dense = cptr<float>(a);
    }
    if (!labels.is_none()) {
        py::array a = labels.cast<py::array>();
        check<int32_t>(a, "labels", {n});
        const int32_t* l = cptr<int32_t>(a);
        for (int64_t i = 0; i < n; ++i)
            if (l[i] < 0 || l[i] >= U)
                throw py::value_error("Argument `labels` must hold class ids in [0, " +
                                      std::to_string(U) + "). Received: " +
                                      std::to_string(l[i]) + " at index " + std::to_string(i));
        t.labels = l;
    }
    if (need) {
        const bool sparse = kind == LossKind::SparseCategoricalCrossentropy;
        if (sparse && !t.labels)
            throw py::value_error("sparse_categorical_crossentropy needs integer labels");
        if (!sparse && !t.dense) throw py::value_error("this loss needs dense float targets");
    }
    return t;
}

py::dict stats_dict(const Stats& s) {
    py::dict d;
    d["loss_sum"] = s.loss_sum;
    d["seen"] = s.seen;
    d["metric_sums"] = s.metric_sums;
    return d;
}

// MemoryError with a message (pybind11 has no exception type for it).
[[noreturn]] void memory_error(const std::string& msg) {
    PyErr_SetString(PyExc_MemoryError, msg.c_str());
    throw py::error_already_set();
}

template <class T>
std::string list_str(const std::vector<T>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

// The most parameters a network may have: its parameters and gradients (two
// float buffers) must fit in the machine's physical memory. Asking the
// allocator for more cannot succeed usefully (and under AddressSanitizer an
// absurd request aborts instead of raising), so such sizes are refused first.
int64_t max_params() {
    constexpr int64_t kAddressable = PTRDIFF_MAX / static_cast<int64_t>(2 * sizeof(float));
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0 && pages <= INT64_MAX / page)
        return std::min(kAddressable, static_cast<int64_t>(pages) * page /
                                          static_cast<int64_t>(2 * sizeof(float)));
#endif
    return kAddressable;
}

std::string too_many_params(int64_t limit) {
    return " has more parameters than this machine's memory holds (its parameters and "
           "gradients allow at most " + std::to_string(limit) + ").";
}

// A column selection for dense_forward / dense_backward: int64 [kin], strictly
// increasing indices into w's n_rows rows.
const int64_t* check_rows(const py::array& rows, int64_t kin, int64_t n_rows) {
    check<int64_t>(rows, "rows", {kin});
    const int64_t* r = static_cast<const int64_t*>(rows.data());
    for (int64_t i = 0; i < kin; ++i)
        if (r[i] < 0 || r[i] >= n_rows || (i > 0 && r[i] <= r[i - 1]))
            throw py::value_error("Argument `rows` must hold strictly increasing indices in [0, " +
                                  std::to_string(n_rows) + "). Received: rows[" +
                                  std::to_string(i) + "]=" + std::to_string(r[i]));
    return r;
}

// Layer sizes: positive, and a parameter count that fits in memory at all
// (in*out overflowing int64 would otherwise wrap into a small buffer).
void check_units(const std::vector<int64_t>& units, const std::vector<bool>& use_bias) {
    for (int64_t u : units)
        if (u <= 0)
            throw py::value_error("Argument `units` must hold positive layer sizes. Received: "
                                  "units=" + list_str(units));
    const int64_t kMaxParams = max_params();
    int64_t total = 0;
    for (size_t l = 0; l + 1 < units.size(); ++l) {
        const int64_t in = units[l], out = units[l + 1];
        const bool bias = l < use_bias.size() && use_bias[l];
        // (every term stays <= kMaxParams, so the sums cannot overflow)
        const bool fits = in <= kMaxParams / out && out <= kMaxParams &&
                          total + in * out + (bias ? out : 0) <= kMaxParams;
        if (fits) total += in * out + (bias ? out : 0);
        if (!fits)
            memory_error("A network with units=" + list_str(units) + too_many_params(kMaxParams));
    }
}

// Stage descriptions from dicts {kind, units, activation, use_bias, scale,
// dropout, momentum, epsilon, norm_mode, shared, noise, noise_param, inputs,
// merge, and the activation's arguments leaky_slope, elu_alpha, relu_slope,
// relu_max, relu_threshold} (missing keys take LayerSpec's defaults),
// checked, with the parameter count bounded as check_units does.
std::vector<LayerSpec> layer_specs(int64_t input_dim, const py::list& layers) {
    if (input_dim <= 0)
        throw py::value_error("Argument `input_dim` must be positive. Received: input_dim=" +
                              std::to_string(input_dim));
    if (layers.empty()) throw py::value_error("Argument `layers` must not be empty.");
    const int64_t kMaxParams = max_params();
    if (input_dim > kMaxParams)  // (not even one sample's row would fit)
        memory_error("The network" + too_many_params(kMaxParams));
    std::vector<LayerSpec> specs;
    int64_t width = input_dim, total = 0;
    std::vector<int64_t> widths;  // each stage's output width
    for (size_t i = 0; i < layers.size(); ++i) {
        py::dict d;
        try {
            d = layers[i].cast<py::dict>();
        } catch (const py::cast_error&) {
            throw py::type_error("Argument `layers` must be a list of dicts.");
        }
        const std::string where = "layers[" + std::to_string(i) + "]";
        LayerSpec sp;
        try {
            if (d.contains("kind")) sp.kind = static_cast<LayerKind>(d["kind"].cast<int>());
            if (d.contains("units")) sp.units = d["units"].cast<int64_t>();
            if (d.contains("activation")) sp.act = to_act(d["activation"].cast<int>());
            if (d.contains("use_bias")) sp.use_bias = d["use_bias"].cast<bool>();
            if (d.contains("scale")) sp.scale = d["scale"].cast<bool>();
            if (d.contains("dropout")) sp.dropout = d["dropout"].cast<float>();
            if (d.contains("momentum")) sp.momentum = d["momentum"].cast<double>();
            if (d.contains("epsilon")) sp.epsilon = d["epsilon"].cast<float>();
            if (d.contains("norm_mode")) sp.norm_mode = d["norm_mode"].cast<int>();
            if (d.contains("shared")) sp.shared = d["shared"].cast<bool>();
            if (d.contains("noise")) sp.noise = d["noise"].cast<int>();
            if (d.contains("noise_param")) sp.noise_param = d["noise_param"].cast<float>();
            if (d.contains("inputs")) sp.inputs = d["inputs"].cast<std::vector<int>>();
            if (d.contains("merge")) sp.merge = d["merge"].cast<int>();
            if (d.contains("begin")) sp.begin = d["begin"].cast<int64_t>();
            if (d.contains("shares")) sp.shares = d["shares"].cast<int>();
            if (d.contains("scalar_op")) sp.scalar_op = d["scalar_op"].cast<int>();
            if (d.contains("scalar")) sp.scalar = d["scalar"].cast<float>();
            ActParams& ap = sp.act_params;
            if (d.contains("leaky_slope")) ap.leaky_slope = d["leaky_slope"].cast<float>();
            if (d.contains("elu_alpha")) ap.elu_alpha = d["elu_alpha"].cast<float>();
            if (d.contains("relu_slope")) ap.relu_slope = d["relu_slope"].cast<float>();
            if (d.contains("relu_max")) ap.relu_max = d["relu_max"].cast<float>();
            if (d.contains("relu_threshold")) ap.relu_threshold = d["relu_threshold"].cast<float>();
        } catch (const py::cast_error&) {
            throw py::type_error(where + " has a value of the wrong type.");
        }
        const ActParams& ap = sp.act_params;
        if (!std::isfinite(ap.leaky_slope) || !std::isfinite(ap.elu_alpha) ||
            !std::isfinite(ap.relu_slope) || !std::isfinite(ap.relu_threshold) ||
            std::isnan(ap.relu_max))
            throw py::value_error(where + ": activation arguments must be finite numbers.");
        const int kind = static_cast<int>(sp.kind);
        if (kind < 0 || kind > 6)
            throw py::value_error(where + ": unknown kind " + std::to_string(kind) +
                                  " (0 Dense, 1 BatchNorm, 2 Identity, 3 LayerNorm, 4 PReLU, "
                                  "5 Merge, 6 Slice).");
        const int li = static_cast<int>(i);
        const std::vector<int> src = sp.inputs.empty() ? std::vector<int>{li - 1} : sp.inputs;
        for (int s : src)
            if (s < -1 || s >= li)
                throw py::value_error(where + ": `inputs` must name earlier stages (or -1, the "
                                      "network's input). Received: " + std::to_string(s));
        if ((sp.kind == LayerKind::Merge) != (src.size() >= 2))
            throw py::value_error(where + ": a Merge stage reads two or more `inputs`, any "
                                  "other stage one.");
        width = src[0] < 0 ? input_dim : widths[static_cast<size_t>(src[0])];
        if (sp.kind == LayerKind::Slice) {
            if (sp.units <= 0 || sp.begin < 0 || sp.begin > width - sp.units)
                throw py::value_error(where + ": a Slice takes `units` > 0 columns from `begin` "
                                      "within its input's " + std::to_string(width) +
                                      ". Received: begin=" + std::to_string(sp.begin) +
                                      ", units=" + std::to_string(sp.units));
            width = sp.units;
        }
        if (sp.kind == LayerKind::Merge) {
            if (sp.merge < 0 || sp.merge >= kNumMergeModes)
                throw py::value_error(where + ": unknown `merge` " + std::to_string(sp.merge) +
                                      " (0 add, 1 subtract, 2 multiply, 3 average, 4 maximum, "
                                      "5 minimum, 6 concatenate).");
            if (src.size() > static_cast<size_t>(kMaxMergeInputs))
                throw py::value_error(where + ": a merge takes at most " +
                                      std::to_string(kMaxMergeInputs) + " inputs.");
            std::vector<int64_t> w;
            for (int s : src) w.push_back(s < 0 ? input_dim : widths[static_cast<size_t>(s)]);
            width = merge_width(static_cast<MergeMode>(sp.merge), w.data(),
                                static_cast<int>(w.size()));
            if (width <= 0)
                throw py::value_error(where + ": the merge's inputs have widths " + list_str(w) +
                                      "; they must be equal (Concatenate: any), and Subtract "
                                      "takes two.");
        }
        if (!(sp.dropout >= 0.0f && sp.dropout < 1.0f))
            throw py::value_error(where + ": `dropout` must be in [0, 1). Received: dropout=" +
                                  std::to_string(sp.dropout));
        if (sp.noise < 0 || sp.noise >= kNumNoiseKinds)
            throw py::value_error(where + ": unknown `noise` " + std::to_string(sp.noise) +
                                  " (0 none, 1 Gaussian, 2 Gaussian dropout, 3 alpha dropout).");
        if (sp.noise != 0 && sp.dropout > 0.0f)
            throw py::value_error(where + ": a stage takes `dropout` or `noise`, not both.");
        if (sp.noise == static_cast<int>(NoiseKind::Gaussian)
                ? !(sp.noise_param >= 0.0f && std::isfinite(sp.noise_param))
                : sp.noise != 0 && !(sp.noise_param >= 0.0f && sp.noise_param < 1.0f))
            throw py::value_error(where + ": `noise_param` must be a finite stddev >= 0 or a "
                                  "rate in [0, 1). Received: noise_param=" +
                                  std::to_string(sp.noise_param));
        int64_t n = 0;
        if (sp.kind == LayerKind::Dense) {
            if (sp.units <= 0)
                throw py::value_error(where + ": `units` must be positive. Received: units=" +
                                      std::to_string(sp.units));
            if (width > kMaxParams / sp.units || sp.units > kMaxParams)
                memory_error("The network" + too_many_params(kMaxParams));
            n = width * sp.units + (sp.use_bias ? sp.units : 0);
            width = sp.units;
        } else if (sp.kind == LayerKind::BatchNorm) {
            if (!(sp.momentum >= 0.0 && sp.momentum <= 1.0))
                throw py::value_error(where + ": `momentum` must be in [0, 1]. Received: "
                                      "momentum=" + std::to_string(sp.momentum));
            if (!(sp.epsilon > 0.0f) || !std::isfinite(sp.epsilon))
                throw py::value_error(where + ": `epsilon` must be positive. Received: "
                                      "epsilon=" + std::to_string(sp.epsilon));
            if (width > kMaxParams / 4)
                memory_error("The network" + too_many_params(kMaxParams));
            n = 4 * width;
        } else if (sp.kind == LayerKind::LayerNorm) {
            if (!(sp.epsilon > 0.0f) || !std::isfinite(sp.epsilon))
                throw py::value_error(where + ": `epsilon` must be positive. Received: "
                                      "epsilon=" + std::to_string(sp.epsilon));
            if (sp.norm_mode < 0 || sp.norm_mode >= kNumNormModes)
                throw py::value_error(where + ": unknown `norm_mode` " +
                                      std::to_string(sp.norm_mode) +
                                      " (0 layer, 1 variance scaling, 2 RMS, 3 unit).");
            if (width > kMaxParams / 2)
                memory_error("The network" + too_many_params(kMaxParams));
            n = 2 * width;
        } else if (sp.kind == LayerKind::PReLU) {
            n = sp.shared ? 1 : width;
        }
        if (total > kMaxParams - n)
            memory_error("The network" + too_many_params(kMaxParams));
        total += n;
        widths.push_back(width);
        specs.push_back(sp);
    }
    return specs;
}

// (kind, min_value, max_value, rate, axis) as the engine's constraint.
ConstraintSpec constraint_spec(const py::tuple& t, const char* name) {
    if (t.size() != 5)
        throw py::value_error(std::string("Argument `") + name +
                              "` must be (kind, min_value, max_value, rate, axis).");
    ConstraintSpec c;
    const int kind = t[0].cast<int>(), axis = t[4].cast<int>();
    if (kind < 0 || kind > 4)
        throw py::value_error(std::string("Argument `") + name + "`: unknown constraint kind " +
                              std::to_string(kind));
    if (axis < 0 || axis > 2)
        throw py::value_error(std::string("Argument `") + name + "`: unknown axis code " +
                              std::to_string(axis));
    c.kind = static_cast<ConstraintKind>(kind);
    c.min_value = t[1].cast<float>();
    c.max_value = t[2].cast<float>();
    c.rate = t[3].cast<float>();
    c.axis = static_cast<NormAxis>(axis);
    for (float v : {c.min_value, c.max_value, c.rate})
        if (!std::isfinite(v))
            throw py::value_error(std::string("Argument `") + name + "` must be finite.");
    return c;
}

// A step count the optimizers can count on from (they form iteration + 1).
void check_iteration(int64_t it) {
    if (it < 0 || it > (int64_t{1} << 62))
        throw py::value_error("Expected 0 <= iterations <= 2**62. Received: " +
                              std::to_string(it));
}

// Losses and metrics read each row's first output (max, argmax): one at least.
void check_outputs(int64_t U) {
    if (U < 1)
        throw py::value_error("Argument `y_pred` must have at least one column. Received: "
                              "shape=(?, " + std::to_string(U) + ")");
}

// A parameter count small enough that slots * n (at most 8 slots) cannot overflow.
void check_param_count(int64_t n) {
    constexpr int64_t kMax = PTRDIFF_MAX / static_cast<int64_t>(8 * sizeof(float));
    if (n < 0 || n > kMax)
        throw py::value_error("Expected 0 <= n <= " + std::to_string(kMax) +
                              ". Received: n=" + std::to_string(n));
}

// A Network plus what the bindings must know to validate calls on it: the
// engine reads the targets its loss and metrics need without checking they
// were given, shares one workspace between forward_train/backward_update and
// train_batches, and reallocates the optimizer state that views point into.
struct NetState : Network {
    using Network::Network;
    LossKind loss = LossSpec{}.kind;         // as set_loss last set it
    std::vector<MetricKind> metrics;         // as set_metrics last set them
    int64_t pending_rows = 0;                // forward_train rows awaiting backward_update
    std::vector<py::weakref> state_views;    // optimizer_state views handed out
    std::vector<FloatBuffer> retired;        // old states that live views still show
};

// Drops the weak references whose array is gone.
void prune_dead(std::vector<py::weakref>& refs) {
    refs.erase(std::remove_if(refs.begin(), refs.end(),
                              [](const py::weakref& w) { return w().is_none(); }),
               refs.end());
}

// The targets the network's loss and native metrics read must be there.
void check_targets_for(const NetState& n, const Targets& t) {
    auto missing = [](const char* what, const std::string& user) {
        return py::value_error(user + " needs " + what + "; received None.");
    };
    const bool sparse = n.loss == LossKind::SparseCategoricalCrossentropy;
    const std::string loss = "The network's loss (set_loss kind=" +
                             std::to_string(static_cast<int>(n.loss)) + ")";
    if (sparse && !t.labels) throw missing("`labels` (int32 class ids)", loss);
    if (!sparse && !t.dense) throw missing("`y` (float32 targets)", loss);
    for (MetricKind k : n.metrics) {
        const std::string metric =
            "The network's metric (set_metrics kind=" + std::to_string(static_cast<int>(k)) + ")";
        if (k == MetricKind::SparseCategoricalAccuracy ? !t.labels : !t.dense)
            throw missing(k == MetricKind::SparseCategoricalAccuracy ? "`labels`" : "`y`",
                          metric);
    }
}

// The targets of `rows` samples for the network's native loss `loss_kind`
// (validated), checked against its loss and metrics.
Targets network_targets(const NetState& n, const py::object& y, const py::object& labels,
                        int64_t rows, int loss_kind, const py::object& sample_weight) {
    if (loss_kind < 0 || loss_kind > 3) throw py::value_error("Unknown loss code");
    if (!n.heads().empty()) {  // (several losses: each head's target columns side by side)
        if (!labels.is_none())
            throw py::value_error("A network with several losses (set_heads) takes its class "
                                  "ids as columns of `y`; received `labels`.");
        if (y.is_none()) throw py::value_error("The network's losses need `y`; received None.");
        py::object one_weights = sample_weight;
        py::array per_output;
        const bool several = !sample_weight.is_none() &&
                             sample_weight.cast<py::array>().ndim() == 2;
        if (several) {
            per_output = sample_weight.cast<py::array>();  // (a column per output)
            check<float>(per_output, "sample_weight", {rows, -1});
            for (const LossHead& h : n.heads())
                if (h.wcol >= per_output.shape(1))
                    throw py::value_error("Argument `sample_weight` has " +
                                          std::to_string(per_output.shape(1)) +
                                          " columns; a loss reads column " +
                                          std::to_string(h.wcol));
            one_weights = py::none();
        }
        Targets t = targets(y, py::none(), rows, n.target_dim(), LossKind::MeanSquaredError,
                            true, one_weights);
        if (several) {
            t.weights = cptr<float>(per_output);
            t.wcols = per_output.shape(1);
        }
        const int64_t T = n.target_dim();
        for (const LossHead& h : n.heads()) {
            if (h.loss.kind != LossKind::SparseCategoricalCrossentropy) continue;
            for (int64_t i = 0; i < rows; ++i) {
                const float v = t.dense[i * T + h.tcol];
                if (!(v >= 0.0f && v < static_cast<float>(h.units)) || v != std::floor(v))
                    throw py::value_error(
                        "Argument `labels` must hold class ids in [0, " +
                        std::to_string(h.units) + "). Received: " + std::to_string(v) +
                        " at index " + std::to_string(i) + " (y column " +
                        std::to_string(h.tcol) + ")");
            }
        }
        return t;
    }
    Targets t = targets(y, labels, rows, n.output_dim(), static_cast<LossKind>(loss_kind), true,
                        sample_weight);
    check_targets_for(n, t);
    return t;
}

// How many of the batches [first, first + count) exist in an epoch of `rows`
// samples (the engine stops at the epoch's end), computed without overflow.
int64_t batches_in_epoch(int64_t rows, int64_t batch_size, int64_t first, int64_t count) {
    if (first < 0)
        throw py::value_error("Argument `first_batch` must be >= 0. Received: first_batch=" +
                              std::to_string(first));
    if (count < 0)
        throw py::value_error("Argument `n_batches` must be >= 0. Received: n_batches=" +
                              std::to_string(count));
    const int64_t total = rows / batch_size + (rows % batch_size != 0 ? 1 : 0);
    return first >= total ? 0 : std::min(count, total - first);
}

// Running sums passed in and out as a dict {loss_sum, seen, metric_sums}.
Stats read_stats(const py::dict& d) {
    Stats s;
    try {
        s.loss_sum = d["loss_sum"].cast<double>();
        s.seen = d["seen"].cast<int64_t>();
        s.metric_sums = d["metric_sums"].cast<std::vector<double>>();
    } catch (const py::error_already_set&) {
        throw py::type_error("Argument `stats` must be a dict with keys loss_sum (float), "
                             "seen (int) and metric_sums (list of float).");
    } catch (const py::cast_error&) {
        throw py::type_error("Argument `stats` must be a dict with keys loss_sum (float), "
                             "seen (int) and metric_sums (list of float).");
    }
    return s;
}

// Arrays given to restrict-pointer kernels must not share memory.
void check_disjoint(std::initializer_list<std::pair<const py::array*, const char*>> arrays) {
    for (auto i = arrays.begin(); i != arrays.end(); ++i)
        for (auto j = i + 1; j != arrays.end(); ++j) {
            const auto* a = static_cast<const char*>(i->first->data());
            const auto* b = static_cast<const char*>(j->first->data());
            const auto na = static_cast<size_t>(i->first->nbytes());
            const auto nb = static_cast<size_t>(j->first->nbytes());
            if (na && nb && a < b + nb && b < a + na)
                throw py::value_error(std::string("Arguments `") + i->second + "` and `" +
                                      j->second + "` must not share memory.");
        }
}

// w [in, out] for x's kin columns: in == kin, or with rows (a column
// selection, kept alive in ra) any in that the rows index. Returns the rows or
// nullptr.
const int64_t* check_w_rows(const py::array& w, const py::object& rows, int64_t kin,
                            py::array& ra) {
    if (rows.is_none()) {
        check<float>(w, "w", {kin, -1});
        return nullptr;
    }
    check<float>(w, "w", {-1, -1});
    ra = rows.cast<py::array>();
    return check_rows(ra, kin, w.shape(0));
}

// dense_backward's fused step: rmsprop = (p, v, learning_rate, rho, epsilon),
// adam = (p, m, v, alpha, beta_1, beta_2, epsilon) (alpha: Adam's
// lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)) or sgd = (p, m or None,
// learning_rate, momentum, nesterov), at most one of them; all None: no step
// (a FusedStep with null p).  The arrays [in, out] are updated in place;
// `keep` holds them alive.
FusedStep parse_step(const py::object& rmsprop, const py::object& adam, const py::object& sgd,
                     int64_t in, int64_t out, bool rows, int64_t kin,
                     std::vector<py::array>& keep) {
    const int given = int(!rmsprop.is_none()) + int(!adam.is_none()) + int(!sgd.is_none());
    if (given == 0) return FusedStep{};
    if (given > 1)
        throw py::value_error("Only one of the arguments `rmsprop`, `adam` and `sgd` can be "
                              "given.");
    const FusedStep::Kind kind = !adam.is_none()  ? FusedStep::Kind::Adam
                                 : !sgd.is_none() ? FusedStep::Kind::SGD
                                                  : FusedStep::Kind::RMSprop;
    const char* name = kind == FusedStep::Kind::Adam  ? "adam"
                       : kind == FusedStep::Kind::SGD ? "sgd"
                                                      : "rmsprop";
    const char* form = kind == FusedStep::Kind::Adam  ? "(p, m, v, alpha, beta_1, beta_2, epsilon)"
                       : kind == FusedStep::Kind::SGD ? "(p, m or None, learning_rate, momentum, "
                                                        "nesterov)"
                                                      : "(p, v, learning_rate, rho, epsilon)";
    py::tuple t = (kind == FusedStep::Kind::Adam  ? adam
                   : kind == FusedStep::Kind::SGD ? sgd
                                                  : rmsprop).cast<py::tuple>();
    const size_t want = kind == FusedStep::Kind::Adam ? 7 : 5;
    if (t.size() != want)
        throw py::value_error(std::string("Argument `") + name + "` must be " + form +
                              ". Received: " + std::to_string(t.size()) + " items");
    std::vector<const char*> names{"p"};
    if (kind == FusedStep::Kind::Adam) names = {"p", "m", "v"};
    else if (kind == FusedStep::Kind::RMSprop) names = {"p", "v"};
    else if (!t[1].is_none()) names = {"p", "m"};
    keep.clear();
    for (size_t i = 0; i < names.size(); ++i) {
        keep.push_back(t[i].cast<py::array>());
        check<float>(keep.back(), names[i], {in, out}, true);
    }
    if (keep.size() == 3)
        check_disjoint({{&keep[0], names[0]}, {&keep[1], names[1]}, {&keep[2], names[2]}});
    else if (keep.size() == 2)
        check_disjoint({{&keep[0], names[0]}, {&keep[1], names[1]}});
    if (!rows && in != kin) throw py::value_error("Argument `w` must have x's columns as rows.");
    FusedStep u;
    u.kind = kind;
    u.p = mptr<float>(keep[0]);
    if (kind == FusedStep::Kind::Adam) {
        u.m = mptr<float>(keep[1]);
        u.v = mptr<float>(keep[2]);
        u.alpha = t[3].cast<float>();
        u.one_b1 = static_cast<float>(1.0 - t[4].cast<double>());
        u.one_b2 = static_cast<float>(1.0 - t[5].cast<double>());
        u.eps = t[6].cast<float>();
    } else if (kind == FusedStep::Kind::SGD) {
        u.m = keep.size() > 1 ? mptr<float>(keep[1]) : nullptr;
        u.lr = t[2].cast<float>();
        u.momentum = t[3].cast<float>();
        u.nesterov = t[4].cast<bool>();
        if (!u.m && u.momentum != 0.0f)
            throw py::value_error("Argument `sgd` needs m (the momentums) when momentum != 0.");
    } else {
        const double rho = t[3].cast<double>();
        u.v = mptr<float>(keep[1]);
        u.lr = t[2].cast<float>();
        u.rho = static_cast<float>(rho);
        u.one_rho = static_cast<float>(1.0 - rho);
        u.eps = t[4].cast<float>();
    }
    return u;
}


}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastdense native engine (private; use the fastdense package)";

    // ---- kernels and threads -------------------------------------------------
    m.def("kernel_isa", []() { return std::string(active_kernels().name); },
          "Name of the active kernel table.");
    m.def("available_isas", []() { return std::string(available_kernels()); });
    m.def("flushes_subnormals", []() { return kFenvFlush != 0u; },
          "Whether the engine's training and inference flush subnormal floats to zero "
          "on this CPU (FTZ + DAZ on x86, FZ on Arm; float_env.h).");
    m.def("set_isa", [](const std::string& name) {
        if (!set_kernels(name.c_str()))
            throw py::value_error("Unknown or unsupported ISA. Received: isa=" + name +
                                  "; available: " + available_kernels());
    }, py::arg("name"));
    m.def("set_num_threads", [](int n) {
        if (n < 1 || n > 1024)
            throw py::value_error("Expected 1 <= n <= 1024. Received: n=" + std::to_string(n));
        set_num_threads(n);
    }, py::arg("n"));
    m.def("get_num_threads", []() { return get_num_threads(); });
    m.def("fma_peak_gflops", [](int threads) {
        if (threads < 1 || threads > 1024)
            throw py::value_error("Expected 1 <= threads <= 1024. Received: threads=" +
                                  std::to_string(threads));
        EngineCall call;
        const int prev = get_num_threads();
        if (prev != threads) set_num_threads(threads);
        const double g = active_kernels().fma_peak_gflops(threads);
        if (prev != threads) set_num_threads(prev);
        return g;
    }, py::arg("threads"),
       "FMA peak of the active kernels' ISA on `threads` threads (GFLOP/s, ~0.2 s).");

    m.def("cross_core_roundtrip_ns", [](double seconds) {
        if (!(seconds > 0.0 && seconds <= 10.0))
            throw py::value_error("Expected 0 < seconds <= 10. Received: seconds=" +
                                  std::to_string(seconds));
        EngineCall call;
        return cross_core_roundtrip_ns(seconds);
    }, py::arg("seconds") = 0.3,
       "Round trip (ns) of a cache line between this thread and another, best of 3 "
       "slices of ~seconds/3.");

    m.def("permutation", [](int64_t n, uint64_t seed) {
        if (n < 0) throw py::value_error("Expected n >= 0. Received: n=" + std::to_string(n));
        py::array_t<int64_t> out(n);
        int64_t* p = out.mutable_data();
        {
            EngineCall call;
            permutation(p, n, seed);
        }
        return out;
    }, py::arg("n"), py::arg("seed"));

    // ---- single kernels (tests, references) ------------------------------------
    m.def("all_finite", [](py::array a, bool serial) {
        const bool f64 = a.dtype().is(py::dtype::of<double>());
        if (!f64 && !a.dtype().is(py::dtype::of<float>()))
            throw py::type_error("Argument `a` must have dtype float32 or float64. Received: "
                                 "dtype=" + std::string(py::str(a.dtype())));
        if (!(a.flags() & py::array::c_style) ||
            !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
            throw py::value_error("Argument `a` must be C-contiguous and aligned.");
        const int64_t n = static_cast<int64_t>(a.size());
        const void* p = a.data();
        EngineCall call;
        if (f64) {
            const double* d = static_cast<const double*>(p);
            return serial ? all_finite_serial(d, n) : all_finite(d, n);
        }
        const float* f = static_cast<const float*>(p);
        return serial ? all_finite_serial(f, n) : all_finite(f, n);
    }, py::arg("a"), py::arg("serial") = false,
       "Whether a float32 / float64 C-contiguous array holds no NaN and no infinity "
       "(large arrays are checked over the thread pool; serial=True: one thread).");

    m.def("dense_forward", [](py::array x, py::array w, py::object b, int act,
                              py::object rows) {
        check<float>(x, "x", {-1, -1});
        const int64_t B = x.shape(0), in = x.shape(1);
        py::array ra;  // (with rows, x holds the columns `rows` of the input)
        const int64_t* rp = check_w_rows(w, rows, in, ra);
        const int64_t out = w.shape(1);
        const float* bp = nullptr;
        py::array ba;
        if (!b.is_none()) {
            ba = b.cast<py::array>();
            check<float>(ba, "b", {out});
            bp = cptr<float>(ba);
        }
        py::array_t<float> y({B, out});
        float* yp = y.mutable_data();
        const Activation a = to_kernel_act(act);
        {
            EngineCall call;
            if (rp)
                active_kernels().forward_rows(yp, cptr<float>(x), cptr<float>(w), rp, bp, B, in,
                                              out, a);
            else
                active_kernels().forward(yp, cptr<float>(x), cptr<float>(w), bp, B, in, out, a);
        }
        return y;
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("act"), py::arg("rows") = py::none(),
       "y = act(x . w + b); with rows (int64, strictly increasing), x holds only the input "
       "columns `rows` and w's rows are read through them.");

    m.def("dense_backward", [](py::array dy, py::array y, py::array x, py::array w, int act,
                               bool use_bias, bool need_dx, py::object rows,
                               py::object rmsprop, py::object adam, py::object sgd) {
        check<float>(x, "x", {-1, -1});
        const int64_t B = x.shape(0), kin = x.shape(1);
        if (!rows.is_none() && need_dx)
            throw py::value_error("Argument `need_dx` must be False with `rows` (the "
                                  "gradient of a column selection's input is not "
                                  "computed).");
        py::array ra;
        const int64_t* rp = check_w_rows(w, rows, kin, ra);
        const int64_t in = w.shape(0), out = w.shape(1);
        check<float>(dy, "dy", {B, out});
        check<float>(y, "y", {B, out});
        // rmsprop / adam: the fused step on p and its state [in, out]
        // (updated in place) instead of returning dw
        std::vector<py::array> keep;
        const bool fused = !rmsprop.is_none() || !adam.is_none() || !sgd.is_none();
        if (fused && need_dx)
            throw py::value_error(std::string("Argument `need_dx` must be False with `") +
                                  (!adam.is_none() ? "adam" : !sgd.is_none() ? "sgd" : "rmsprop") +
                                  "` (the step is fused only where no dX is computed).");
        const FusedStep upd = parse_step(rmsprop, adam, sgd, in, out, rp != nullptr, kin, keep);
        const Activation a = to_kernel_act(act);
        // The kernels turn dz into dL/dz in place; with a linear activation
        // they only read it (kernels.h), so dy itself is passed, uncopied.
        const bool copy_dy = a != Activation::Linear;
        py::array_t<float> dz({copy_dy ? B : 0, out});
        if (copy_dy)
            std::memcpy(dz.mutable_data(), dy.data(),
                        sizeof(float) * static_cast<size_t>(B * out));
        // (scratch for the kernel when fused: not returned, so not cleared)
        py::array_t<float> dw({in, out});
        if (rp && !fused)
            std::memset(dw.mutable_data(), 0, sizeof(float) * static_cast<size_t>(in * out));
        py::array_t<float> db(use_bias ? out : 0);
        py::array_t<float> dx({need_dx ? B : 0, in});
        float* dzp = copy_dy ? dz.mutable_data() : const_cast<float*>(cptr<float>(dy));
        float* dwp = dw.mutable_data();
        float* dbp = use_bias ? db.mutable_data() : nullptr;
        float* dxp = need_dx ? dx.mutable_data() : nullptr;
        {
            EngineCall call;
            if (rp || fused)
                active_kernels().backward_rows(dwp, dbp, dzp, cptr<float>(y), cptr<float>(x),
                                               rp, B, kin, out, a, fused ? &upd : nullptr);
            else
                active_kernels().backward(dxp, dwp, dbp, dzp, cptr<float>(y), cptr<float>(x),
                                          cptr<float>(w), B, in, out, a);
        }
        return py::make_tuple(need_dx ? py::object(dx) : py::none(),
                              fused ? py::none() : py::object(dw),
                              use_bias ? py::object(db) : py::none(),
                              copy_dy ? py::object(dz) : py::object(dy));
    }, py::arg("dy"), py::arg("y"), py::arg("x"), py::arg("w"), py::arg("act"),
       py::arg("use_bias"), py::arg("need_dx"), py::arg("rows") = py::none(),
       py::arg("rmsprop") = py::none(), py::arg("adam") = py::none(),
       py::arg("sgd") = py::none(),
       "Backward of dense_forward: (dx or None, dw, db or None, dz); dz is dy itself (not "
       "copied, only read) when act is linear. With rows, dw's rows "
       "outside `rows` are zero. With rmsprop=(p, v, learning_rate, rho, epsilon), the "
       "RMSprop step (no momentum, not centered) is fused into dW's computation: p and v "
       "[in, out] are updated in place on dW's rows (those in `rows`) and dw is None. "
       "adam=(p, m, v, alpha, beta_1, beta_2, epsilon) does the same with Adam's step "
       "(no amsgrad; alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)), "
       "sgd=(p, m or None, learning_rate, momentum, nesterov) with SGD's.");

    m.def("dense_backward_upstream", [](py::array dz_next, py::array w_next, py::array y,
                                        py::array x, py::array w, int act, bool use_bias,
                                        py::object rows, py::object rmsprop,
                                        py::object adam, py::object sgd) {
        check<float>(x, "x", {-1, -1});
        const int64_t B = x.shape(0), kin = x.shape(1);
        py::array ra;
        const int64_t* rp = check_w_rows(w, rows, kin, ra);
        const int64_t in = w.shape(0), out = w.shape(1);
        check<float>(y, "y", {B, out});
        check<float>(dz_next, "dz_next", {B, -1});
        const int64_t U = dz_next.shape(1);
        if (U < 1 || U > kNarrowUpstreamMax)
            throw py::value_error("Argument `dz_next` must have 1 to " +
                                  std::to_string(kNarrowUpstreamMax) +
                                  " columns (a narrow layer's). Received: shape=" +
                                  shape_str(dz_next));
        check<float>(w_next, "w_next", {out, U});
        std::vector<py::array> keep;
        const bool fused = !rmsprop.is_none() || !adam.is_none() || !sgd.is_none();
        const FusedStep upd = parse_step(rmsprop, adam, sgd, in, out, rp != nullptr, kin, keep);
        py::array_t<float> dw({in, out});
        if (rp && !fused)
            std::memset(dw.mutable_data(), 0, sizeof(float) * static_cast<size_t>(in * out));
        py::array_t<float> db(use_bias ? out : 0);
        float* dbp = use_bias ? db.mutable_data() : nullptr;
        const NarrowUpstream up{cptr<float>(dz_next), cptr<float>(w_next), U};
        {
            EngineCall call;
            active_kernels().backward_rows_up(dw.mutable_data(), dbp, cptr<float>(y),
                                              cptr<float>(x), rp, B, kin, out, to_kernel_act(act),
                                              fused ? &upd : nullptr, up);
        }
        return py::make_tuple(fused ? py::none() : py::object(dw),
                              use_bias ? py::object(db) : py::none());
    }, py::arg("dz_next"), py::arg("w_next"), py::arg("y"), py::arg("x"), py::arg("w"),
       py::arg("act"), py::arg("use_bias"), py::arg("rows") = py::none(),
       py::arg("rmsprop") = py::none(), py::arg("adam") = py::none(),
       py::arg("sgd") = py::none(),
       "dense_backward without dX whose dy is dz_next . w_next^T (the input gradient of a "
       "narrow next layer: dz_next [B, U], w_next [out, U], U <= 16), computed as the "
       "kernel reads it: (dw or None, db or None), the same bits as dense_backward of the "
       "next layer's dX. rows, rmsprop, adam and sgd as in dense_backward.");

    m.def("activation_forward", [](py::array z, int act) {
        check<float>(z, "z", {-1, -1});
        const int64_t R = z.shape(0), C = z.shape(1);
        const Activation a = to_act(act);
        py::array_t<float> y({R, C});
        float* yp = y.mutable_data();
        if (R > 0 && C > 0) {  // (the row-wise activations read a row's first element)
            EngineCall call;
            activation_forward(a, yp, cptr<float>(z), R, C);
        }
        return y;
    }, py::arg("z"), py::arg("act"), "y = f(z) for any activation code.");

    m.def("activation_backward", [](py::array dy, py::array z, py::array y, int act) {
        check<float>(z, "z", {-1, -1});
        const int64_t R = z.shape(0), C = z.shape(1);
        check<float>(dy, "dy", {R, C});
        check<float>(y, "y", {R, C});
        const Activation a = to_act(act);
        py::array_t<float> dz({R, C});
        float* dzp = dz.mutable_data();
        if (R > 0 && C > 0) {
            EngineCall call;
            activation_backward(a, dzp, cptr<float>(dy), cptr<float>(z), cptr<float>(y), R, C);
        }
        return dz;
    }, py::arg("dy"), py::arg("z"), py::arg("y"), py::arg("act"), "dz = dy * f'(z).");

    m.def("loss", [](py::array y, py::object target, py::object labels, int kind,
                     bool from_logits, int out_act) {
        check<float>(y, "y_pred", {-1, -1});
        const int64_t B = y.shape(0), U = y.shape(1);
        check_outputs(U);
        if (kind < 0 || kind > 3) throw py::value_error("Unknown loss code");
        LossSpec spec{static_cast<LossKind>(kind), from_logits};
        Targets t = targets(target, labels, B, U, spec.kind, true);
        py::array_t<float> grad({B, U});
        py::array_t<float> per(B);
        float *gp = grad.mutable_data(), *pp = per.mutable_data();
        const Activation a = to_act(out_act);
        double total;
        {
            EngineCall call;
            total = loss_forward_backward(gp, pp, cptr<float>(y), t.dense, t.labels, B, U,
                                          spec, a);
        }
        return py::make_tuple(total, per, grad, loss_is_fused(spec, a));
    }, py::arg("y_pred"), py::arg("y_true"), py::arg("labels"), py::arg("kind"),
       py::arg("from_logits"), py::arg("out_act"));

    m.def("metric_sum", [](int kind, py::array y, py::object target, py::object labels,
                           float threshold) {
        check<float>(y, "y_pred", {-1, -1});
        const int64_t B = y.shape(0), U = y.shape(1);
        check_outputs(U);
        if (kind < 0 || kind > 2) throw py::value_error("Unknown metric code");
        const MetricKind k = static_cast<MetricKind>(kind);
        Targets t = targets(target, labels, B, U, LossKind::MeanSquaredError, false);
        if (k == MetricKind::SparseCategoricalAccuracy ? !t.labels : !t.dense)
            throw py::value_error("metric targets missing");
        return metric_sum(k, cptr<float>(y), t.dense, t.labels, B, U, threshold);
    }, py::arg("kind"), py::arg("y_pred"), py::arg("y_true"), py::arg("labels"),
       py::arg("threshold"));

    py::class_<OptimizerSpec>(m, "OptimizerSpec")
        .def(py::init<>())
        .def_property("kind", [](const OptimizerSpec& s) { return static_cast<int>(s.kind); },
                      [](OptimizerSpec& s, int k) {
                          if (k < 0 || k >= kNumOptimizerKinds)
                              throw py::value_error("Unknown optimizer code");
                          s.kind = static_cast<OptimizerKind>(k);
                      })
        .def_readwrite("learning_rate", &OptimizerSpec::learning_rate)
        .def_readwrite("momentum", &OptimizerSpec::momentum)
        .def_readwrite("nesterov", &OptimizerSpec::nesterov)
        .def_readwrite("rho", &OptimizerSpec::rho)
        .def_readwrite("centered", &OptimizerSpec::centered)
        .def_readwrite("beta_1", &OptimizerSpec::beta_1)
        .def_readwrite("beta_2", &OptimizerSpec::beta_2)
        .def_readwrite("amsgrad", &OptimizerSpec::amsgrad)
        .def_readwrite("epsilon", &OptimizerSpec::epsilon)
        .def_readwrite("initial_accumulator_value", &OptimizerSpec::initial_accumulator_value)
        .def_readwrite("learning_rate_power", &OptimizerSpec::learning_rate_power)
        .def_readwrite("l1_regularization_strength", &OptimizerSpec::l1_regularization_strength)
        .def_readwrite("l2_regularization_strength", &OptimizerSpec::l2_regularization_strength)
        .def_readwrite("l2_shrinkage_regularization_strength",
                       &OptimizerSpec::l2_shrinkage_regularization_strength)
        .def_readwrite("beta", &OptimizerSpec::beta)
        .def_readwrite("weight_decay", &OptimizerSpec::weight_decay)
        .def_readwrite("clipnorm", &OptimizerSpec::clipnorm)
        .def_readwrite("clipvalue", &OptimizerSpec::clipvalue)
        .def_readwrite("global_clipnorm", &OptimizerSpec::global_clipnorm)
        .def("slots", [](const OptimizerSpec& s) { return optimizer_slots(s); })
        .def("scalars", [](const OptimizerSpec& s) { return optimizer_scalars(s); })
        .def("state_size", [](const OptimizerSpec& s, int64_t n) {
            check_param_count(n);
            return optimizer_state_size(s, n);
        }, py::arg("n"), "Floats of state for n parameters: slots * n + scalars.");

    m.def("optimizer_init_state", [](const OptimizerSpec& spec, int64_t n) {
        if (n < 0) throw py::value_error("n must be >= 0");
        check_param_count(n);
        py::array_t<float> state(static_cast<py::ssize_t>(optimizer_state_size(spec, n)));
        optimizer_init_state(spec, state.mutable_data(), n);
        return state;
    }, py::arg("spec"), py::arg("n"), "A fresh optimizer state for n parameters.");

    m.def("optimizer_step", [](const OptimizerSpec& spec, int64_t iteration, py::array params,
                               py::array state, py::array grads) {
        check<float>(params, "params", {-1}, true);
        const int64_t n = params.shape(0);
        check<float>(grads, "grads", {n});
        check<float>(state, "state", {optimizer_state_size(spec, n)}, true);
        check_disjoint({{&params, "params"}, {&state, "state"}, {&grads, "grads"}});
        check_iteration(iteration);
        float *p = mptr<float>(params), *st = mptr<float>(state);
        const float* g = cptr<float>(grads);
        EngineCall call;
        optimizer_begin_step(spec, iteration, st, n);
        optimizer_step(spec, iteration, p, st, g, n, 0, n);
    }, py::arg("spec"), py::arg("iteration"), py::arg("params"), py::arg("state"),
       py::arg("grads"));

    m.def("optimizer_apply", [](const OptimizerSpec& spec, int64_t iteration, py::array params,
                                py::array state, py::array grads,
                                const std::vector<std::tuple<int64_t, int64_t, bool>>& segments) {
        check<float>(params, "params", {-1}, true);
        const int64_t n = params.shape(0);
        check<float>(grads, "grads", {n});
        check<float>(state, "state", {optimizer_state_size(spec, n)}, true);
        check_disjoint({{&params, "params"}, {&state, "state"}, {&grads, "grads"}});
        check_iteration(iteration);
        std::vector<ParamSegment> segs;
        int64_t last = 0;
        for (const auto& t : segments) {
            ParamSegment sg{std::get<0>(t), std::get<1>(t), std::get<2>(t)};
            if (sg.begin < last || sg.end < sg.begin || sg.end > n)
                throw py::value_error("Argument `segments` must hold increasing, disjoint "
                                      "(begin, end, decay) ranges within the parameters");
            last = sg.end;
            segs.push_back(sg);
        }
        float *p = mptr<float>(params), *st = mptr<float>(state);
        const float* g = cptr<float>(grads);
        UpdateScratch scratch;
        EngineCall call;
        optimizer_update(spec, iteration, p, st, g, n, segs, scratch);
    }, py::arg("spec"), py::arg("iteration"), py::arg("params"), py::arg("state"),
       py::arg("grads"), py::arg("segments"),
       "One whole step as Keras's apply(): clipping per segment (clipnorm) or over all "
       "(global_clipnorm) or by value, weight decay on segments whose flag is set, update.");

    // ---- the network -------------------------------------------------------------
    // (the engine class is registered as a base so that bindings taking
    // Network& work; instances are NetState, which the checks below read)
    py::class_<Network>(m, "_NetworkBase");
    py::class_<NetState, Network>(m, "Network")
        .def(py::init([](const std::vector<int64_t>& units, const std::vector<int>& acts,
                         const std::vector<bool>& use_bias, const std::vector<float>& dropout,
                         float input_dropout) {
                 std::vector<Activation> a;
                 for (int v : acts) a.push_back(to_act(v));
                 check_units(units, use_bias);
                 return new NetState(units, a, use_bias, dropout, input_dropout);
             }),
             py::arg("units"), py::arg("activations"), py::arg("use_bias"),
             py::arg("dropout") = std::vector<float>{}, py::arg("input_dropout") = 0.0f)
        .def(py::init([](int64_t input_dim, const py::list& layers, float input_dropout) {
                 if (!(input_dropout >= 0.0f && input_dropout < 1.0f))
                     throw py::value_error("Argument `input_dropout` must be in [0, 1).");
                 return new NetState(input_dim, layer_specs(input_dim, layers), input_dropout);
             }),
             py::arg("input_dim"), py::arg("layers"), py::arg("input_dropout") = 0.0f,
             "Stages from dicts {kind (0 Dense, 1 BatchNorm, 2 Identity, 3 LayerNorm, 4 PReLU, "
             "5 Merge, 6 Slice), units, begin (Slice), "
             "activation, use_bias, scale, dropout, momentum, epsilon, norm_mode, shared, noise "
             "(0 none, 1 Gaussian, 2 Gaussian dropout, 3 alpha dropout), noise_param, inputs "
             "(the earlier stages it reads, -1 the input; default: the stage before), merge "
             "(0 add, 1 subtract, 2 multiply, 3 average, 4 maximum, 5 minimum, 6 concatenate)}.")
        .def("variables", [](const Network& n) {
            py::list out;
            for (const auto& v : n.variables())
                out.append(py::make_tuple(v.layer, v.offset,
                                          v.cols ? py::tuple(py::make_tuple(v.rows, v.cols))
                                                 : py::tuple(py::make_tuple(v.rows)),
                                          v.trainable));
            return out;
        }, "(layer, offset, shape, trainable) of every variable, in Keras's order "
           "(trainable: the optimizer updates it; not the moving statistics nor frozen layers).")
        .def("set_activity_regularization", [](NetState& n, size_t layer, float l1, float l2) {
            for (float v : {l1, l2})
                if (!(v >= 0.0f) || !std::isfinite(v))
                    throw py::value_error("Regularization factors must be finite and >= 0.");
            if (layer >= n.layers().size()) throw py::index_error("layer index out of range");
            n.set_activity_regularization(layer, l1, l2);
        }, py::arg("layer"), py::arg("l1"), py::arg("l2"))
        .def("last_activity_penalty", [](const NetState& n) { return n.last_activity_penalty(); })
        .def("set_constraints", [](NetState& n, size_t layer, const py::tuple& kernel,
                                   const py::tuple& bias) {
            const ConstraintSpec k = constraint_spec(kernel, "kernel");
            const ConstraintSpec b = constraint_spec(bias, "bias");
            if (layer >= n.layers().size()) throw py::index_error("layer index out of range");
            n.set_constraints(layer, k, b);
        }, py::arg("layer"), py::arg("kernel"), py::arg("bias"),
           "Constraints as (kind 0 none 1 max_norm 2 non_neg 3 unit_norm 4 min_max_norm, "
           "min_value, max_value, rate, axis 0 rows 1 cols 2 all).")
        .def("set_trainable", [](NetState& n, size_t layer, bool trainable) {
            if (layer >= n.layers().size()) throw py::index_error("layer index out of range");
            n.set_trainable(layer, trainable);
        }, py::arg("layer"), py::arg("trainable"))
        .def("set_regularization", [](NetState& n, size_t layer, float kl1, float kl2, float bl1,
                                      float bl2) {
            for (float v : {kl1, kl2, bl1, bl2})
                if (!(v >= 0.0f) || !std::isfinite(v))
                    throw py::value_error("Regularization factors must be finite and >= 0.");
            if (layer >= n.layers().size()) throw py::index_error("layer index out of range");
            n.set_regularization(layer, kl1, kl2, bl1, bl2);
        }, py::arg("layer"), py::arg("kernel_l1"), py::arg("kernel_l2"), py::arg("bias_l1"),
           py::arg("bias_l2"))
        .def("regularization_penalty",
             [](const NetState& n) { return n.regularization_penalty(); })
        .def("set_weight_decay_mask", &Network::set_weight_decay_mask, py::arg("mask"),
             "One flag per variable (kernel, then bias, per layer): weight decay applies; "
             "empty: all.")
        .def("set_seed", &Network::set_seed, py::arg("seed"),
             "Seeds the dropout masks' generator.")
        .def("params_changed", [](Network& n) { n.params_changed(); },
             "Tells the engine that `params` was written from Python (a Variable's assign).")
        // (properties take the network by reference: pybind11 lets None through
        // as a null `this` for getters bound from member function pointers)
        .def_property_readonly("num_params", [](const Network& n) { return n.num_params(); })
        .def_property_readonly("input_dim", [](const Network& n) { return n.input_dim(); })
        .def_property_readonly("output_dim", [](const Network& n) { return n.output_dim(); })
        .def_property_readonly("params", [](py::object self) {
            Network& n = self.cast<Network&>();
            return py::array_t<float>({n.num_params()}, {sizeof(float)}, n.params(), self);
        }, "Writable float32 view of the flat parameter buffer (kept alive with the network).")
        .def_property_readonly("grads", [](py::object self) {
            Network& n = self.cast<Network&>();
            return py::array_t<float>({n.num_params()}, {sizeof(float)}, n.grads(), self);
        })
        .def_property_readonly("optimizer_state", [](py::object self) {
            NetState& n = self.cast<NetState&>();
            auto& st = n.optimizer_state();
            py::array_t<float> view({static_cast<int64_t>(st.size())}, {sizeof(float)},
                                    st.data(), self);
            prune_dead(n.state_views);
            n.state_views.emplace_back(view);
            return view;
        }, "View of the optimizer state; set_optimizer detaches it (it then shows the old "
           "state, kept alive with the network).")
        .def("set_ema", [](Network& n, bool on, float momentum, int64_t every) {
            n.set_ema(on, momentum, every);  // (invalid_argument: ValueError)
        }, py::arg("on"), py::arg("momentum"), py::arg("every"),
           "use_ema: the trainable variables' moving averages, updated after each step.")
        .def_property_readonly("ema", [](py::object self) -> py::object {
            Network& n = self.cast<Network&>();
            if (n.ema() == nullptr) return py::none();
            return py::array_t<float>({n.num_params()}, {sizeof(float)}, n.ema(), self);
        }, "Writable float32 view of the moving averages (laid out as params; None before "
           "set_ema(True, ...)).")
        .def("set_grad_accumulation", [](Network& n, int64_t steps) {
            n.set_grad_accumulation(steps);  // (invalid_argument: ValueError)
        }, py::arg("steps"), "gradient_accumulation_steps (0: off).")
        .def_property_readonly("grad_acc", [](py::object self) -> py::object {
            Network& n = self.cast<Network&>();
            if (n.grad_acc() == nullptr) return py::none();
            return py::array_t<float>({n.num_params()}, {sizeof(float)}, n.grad_acc(), self);
        }, "Writable float32 view of the gradient accumulators (laid out as params; None "
           "before set_grad_accumulation(>= 2)).")
        .def("finalize_ema", [](Network& n) {
            py::gil_scoped_release release;
            n.finalize_ema();
        }, "The trainable variables take their moving averages.")
        .def("swap_ema", [](Network& n) {
            py::gil_scoped_release release;
            n.swap_ema();
        }, "The trainable variables and their moving averages trade values.")
        .def_property("iterations", [](const Network& n) { return n.iterations(); },
                      [](Network& n, int64_t it) {
            check_iteration(it);
            n.set_iterations(it);
        })
        .def_property("learning_rate", [](const Network& n) { return n.learning_rate(); },
                      [](Network& n, float lr) { n.set_learning_rate(lr); })
        .def("layer_offsets", [](const Network& n) {
            py::list out;
            for (const auto& d : n.layers())
                out.append(py::make_tuple(d.w_off, d.in, d.out, d.use_bias ? d.b_off : -1));
            return out;
        })
        .def("set_loss", [](NetState& n, int kind, bool from_logits) {
            if (kind < 0 || kind > 3) throw py::value_error("Unknown loss code");
            n.set_loss(LossSpec{static_cast<LossKind>(kind), from_logits});
            n.loss = static_cast<LossKind>(kind);
        }, py::arg("kind"), py::arg("from_logits"))
        .def("set_heads", [](NetState& n, const std::vector<py::tuple>& heads,
                             int64_t target_cols) {
            // heads: (kind, from_logits, col, units, tcol, weight, wcol) each
            std::vector<LossHead> hs;
            for (const py::tuple& t : heads) {
                if (t.size() != 7) throw py::value_error("A loss head is a 7-tuple");
                const int kind = t[0].cast<int>();
                if (kind < 0 || kind > 3) throw py::value_error("Unknown loss code");
                LossHead h;
                h.loss = LossSpec{static_cast<LossKind>(kind), t[1].cast<bool>()};
                h.col = t[2].cast<int64_t>();
                h.units = t[3].cast<int64_t>();
                h.tcol = t[4].cast<int64_t>();
                h.weight = t[5].cast<float>();
                h.wcol = t[6].cast<int64_t>();
                if (h.wcol < 0) throw py::value_error("A loss head's weight column is negative");
                if (!std::isfinite(h.weight)) throw py::value_error("A loss weight is not finite");
                hs.push_back(h);
            }
            n.set_heads(hs, target_cols);  // (invalid_argument: ValueError)
        }, py::arg("heads"), py::arg("target_cols"))
        .def("set_metrics", [](NetState& n, const std::vector<int>& kinds, float threshold) {
            std::vector<MetricKind> k;
            for (int v : kinds) {
                if (v < 0 || v > 2) throw py::value_error("Unknown metric code");
                k.push_back(static_cast<MetricKind>(v));
            }
            n.set_metrics(k, threshold);
            n.metrics = k;
        }, py::arg("kinds"), py::arg("threshold"))
        .def("set_optimizer", [](NetState& n, const OptimizerSpec& spec) {
            // Views of the old state stay valid: while one is alive, its
            // buffer is kept (detached) until the network goes.
            auto& views = n.state_views;
            prune_dead(views);
            if (!views.empty()) {
                n.retired.push_back(std::move(n.optimizer_state()));
                n.optimizer_state() = FloatBuffer();
                views.clear();
            }
            n.set_optimizer(spec);
        }, py::arg("spec"))
        .def("train_batches", [](NetState& n, py::array x, py::object y, py::object labels,
                                 py::object order, int64_t batch_size, int64_t first_batch,
                                 int64_t n_batches, int loss_kind, py::dict stats,
                                 py::object ypred_out, bool stop_on_nonfinite,
                                 py::object sample_weight, py::object learning_rates) {
            check<float>(x, "x", {-1, n.input_dim()});
            const int64_t rows = x.shape(0);
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            const int64_t* op = nullptr;
            int64_t count = rows;
            py::array oa;
            if (!order.is_none()) {
                oa = order.cast<py::array>();
                check<int64_t>(oa, "order", {-1});
                count = oa.shape(0);
                op = cptr<int64_t>(oa);
                for (int64_t i = 0; i < count; ++i)
                    if (op[i] < 0 || op[i] >= rows)
                        throw py::value_error("Argument `order` holds an index out of range");
            }
            Targets t = network_targets(n, y, labels, rows, loss_kind, sample_weight);
            const int64_t batches = batches_in_epoch(count, batch_size, first_batch, n_batches);
            float* yo = nullptr;
            py::array ya;
            if (!ypred_out.is_none()) {
                ya = ypred_out.cast<py::array>();
                check<float>(ya, "ypred_out", {count, n.output_dim()}, true);
                yo = mptr<float>(ya);
            }
            const float* lrp = nullptr;
            py::array la;
            if (!learning_rates.is_none()) {
                la = learning_rates.cast<py::array>();
                check<float>(la, "learning_rates", {n_batches});
                lrp = cptr<float>(la);
            }
            Stats s = read_stats(stats);
            n.pending_rows = 0;  // the workspace forward_train filled is reused
            int64_t done;
            {
                EngineCall call;
                done = n.train_batches(cptr<float>(x), t, op, count, batch_size, first_batch,
                                       batches, s, yo, stop_on_nonfinite, lrp);
            }
            stats["loss_sum"] = s.loss_sum;
            stats["seen"] = s.seen;
            stats["metric_sums"] = s.metric_sums;
            return done;
        }, py::arg("x"), py::arg("y"), py::arg("labels"), py::arg("order"),
           py::arg("batch_size"), py::arg("first_batch"), py::arg("n_batches"),
           py::arg("loss_kind"), py::arg("stats"), py::arg("ypred_out"),
           py::arg("stop_on_nonfinite") = false, py::arg("sample_weight") = py::none(),
           py::arg("learning_rates") = py::none())
        .def("train_epochs", [](NetState& n, py::array x, py::object y, py::object labels,
                                py::array seeds, bool shuffle, int64_t batch_size, int loss_kind,
                                py::object sample_weight, py::object learning_rates) {
            // Whole epochs in one call (fit without callbacks that need Python
            // between epochs): epoch e draws its shuffle with permutation(seeds[e])
            // and seeds the dropout masks with seeds[e] ^ 0x5DEECE66D, as fit's
            // loop does with the same seeds; returns each epoch's
            // (loss sums, samples, metric sums).
            check<float>(x, "x", {-1, n.input_dim()});
            const int64_t rows = x.shape(0);
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            Targets t = network_targets(n, y, labels, rows, loss_kind, sample_weight);
            check<int64_t>(seeds, "seeds", {-1});
            const int64_t E = seeds.shape(0);
            const int64_t steps = rows == 0 ? 0 : (rows - 1) / batch_size + 1;
            const float* lrp = nullptr;
            py::array la;
            if (!learning_rates.is_none()) {
                la = learning_rates.cast<py::array>();
                check<float>(la, "learning_rates", {E * steps});
                lrp = cptr<float>(la);
            }
            const int M = n.num_metrics();
            py::array_t<double> loss_sums(E), metric_sums({E, static_cast<int64_t>(M)});
            py::array_t<int64_t> seen(E);
            double *lp = loss_sums.mutable_data(), *mp = metric_sums.mutable_data();
            int64_t* sp = seen.mutable_data();
            const int64_t* sd = cptr<int64_t>(seeds);
            n.pending_rows = 0;
            {
                EngineCall call;
                std::vector<int64_t> order(shuffle ? static_cast<size_t>(rows) : 0);
                for (int64_t e = 0; e < E; ++e) {
                    const uint64_t seed = static_cast<uint64_t>(sd[e]);
                    if (shuffle) permutation(order.data(), rows, seed);
                    n.set_seed(seed ^ 0x5DEECE66DULL);
                    Stats st;
                    st.metric_sums.assign(static_cast<size_t>(M), 0.0);
                    n.train_batches(cptr<float>(x), t, shuffle ? order.data() : nullptr, rows,
                                    batch_size, 0, steps, st, nullptr, false,
                                    lrp ? lrp + e * steps : nullptr);
                    lp[e] = st.loss_sum;
                    sp[e] = st.seen;
                    for (int m = 0; m < M; ++m) mp[e * M + m] = st.metric_sums[static_cast<size_t>(m)];
                }
            }
            return py::make_tuple(loss_sums, seen, metric_sums);
        }, py::arg("x"), py::arg("y"), py::arg("labels"), py::arg("seeds"), py::arg("shuffle"),
           py::arg("batch_size"), py::arg("loss_kind"), py::arg("sample_weight") = py::none(),
           py::arg("learning_rates") = py::none())
        .def("evaluate", [](const NetState& n, py::array x, py::object y, py::object labels,
                            int64_t batch_size, int loss_kind, py::object ypred_out,
                            py::object sample_weight) {
            check<float>(x, "x", {-1, n.input_dim()});
            const int64_t rows = x.shape(0);
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            Targets t = network_targets(n, y, labels, rows, loss_kind, sample_weight);
            float* yo = nullptr;
            py::array ya;
            if (!ypred_out.is_none()) {
                ya = ypred_out.cast<py::array>();
                check<float>(ya, "ypred_out", {rows, n.output_dim()}, true);
                yo = mptr<float>(ya);
            }
            Stats s;
            {
                EngineCall call;
                n.evaluate(cptr<float>(x), t, rows, batch_size, s, yo);
            }
            return stats_dict(s);
        }, py::arg("x"), py::arg("y"), py::arg("labels"), py::arg("batch_size"),
           py::arg("loss_kind"), py::arg("ypred_out"), py::arg("sample_weight") = py::none())
        .def("predict", [](const Network& n, py::array x, int64_t batch_size, bool strict) {
            check<float>(x, "x", {-1, n.input_dim()});
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            const int64_t rows = x.shape(0);
            if (strict && rows == 0)
                throw py::value_error("Argument `x` is empty. Received: x.shape=(0, " +
                                      std::to_string(n.input_dim()) + ")");
            py::array_t<float> out({rows, n.output_dim()});
            float* op = out.mutable_data();
            bool finite = true;
            {
                EngineCall call;
                if (strict) finite = all_finite(cptr<float>(x), rows * n.input_dim());
                if (finite) n.predict(cptr<float>(x), rows, batch_size, op);
            }
            if (!finite) throw py::value_error("Argument `x` contains NaN or infinite values.");
            return out;
        }, py::arg("x"), py::arg("batch_size"), py::arg("strict") = false,
           "strict: refuse an empty x or one holding NaN or infinity (ValueError).")
        .def("activity_penalty_sum", [](const Network& n, py::array x, int64_t batch_size) {
            check<float>(x, "x", {-1, n.input_dim()});
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            EngineCall call;
            return n.activity_penalty_sum(cptr<float>(x), x.shape(0), batch_size);
        }, py::arg("x"), py::arg("batch_size"),
           "Sum over the inference batches of x of their activity penalties.")
        .def("forward_train", [](NetState& n, py::array x) {
            check<float>(x, "x", {-1, n.input_dim()});
            const int64_t B = x.shape(0);
            if (B < 1)
                throw py::value_error("Argument `x` must have at least one row. Received: "
                                      "shape=" + shape_str(x));
            py::array_t<float> out({B, n.output_dim()});
            float* op = out.mutable_data();
            n.pending_rows = 0;
            {
                EngineCall call;
                n.forward_train(cptr<float>(x), B, op);
            }
            n.pending_rows = B;
            return out;
        }, py::arg("x"))
        .def("backward_update", [](NetState& n, py::array grad) {
            check<float>(grad, "grad", {-1, n.output_dim()});
            const float* g = cptr<float>(grad);
            const int64_t B = grad.shape(0);
            if (n.pending_rows == 0 || B != n.pending_rows)
                throw py::value_error(
                    "backward_update needs the gradient of the last forward_train (" +
                    std::to_string(n.pending_rows) + " rows, 0: none pending, or train_batches "
                    "ran since). Received: grad.shape=" + shape_str(grad));
            n.pending_rows = 0;
            EngineCall call;
            n.backward_update(g, B);
        }, py::arg("grad"));

    // (Memory errors here; the engine's argument checks throw
    // std::invalid_argument, which pybind11's own translation raises as
    // ValueError with the message.)
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::bad_alloc&) {
            PyErr_SetString(PyExc_MemoryError, "fastdense: out of memory");
        } catch (const std::length_error& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());
        }
    });
}
