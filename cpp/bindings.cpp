// The one pybind11 file: validates dtype, shape and contiguity, converts
// errors to Python exceptions, releases the GIL and calls the engine.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "activations.h"
#include "kernels.h"
#include "losses.h"
#include "metrics.h"
#include "network.h"
#include "optimizers.h"
#include "rng.h"
#include "threadpool.h"

namespace py = pybind11;
using namespace fastdense;

namespace {

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

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastdense native engine (private; use the fastdense package)";

    // ---- kernels and threads -------------------------------------------------
    m.def("kernel_isa", []() { return std::string(active_kernels().name); },
          "Name of the active kernel table.");
    m.def("available_isas", []() { return std::string(available_kernels()); });
    m.def("set_isa", [](const std::string& name) {
        if (!set_kernels(name.c_str()))
            throw py::value_error("Unknown or unsupported ISA. Received: isa=" + name +
                                  "; available: " + available_kernels());
    });
    m.def("set_num_threads", [](int n) {
        if (n < 1) throw py::value_error("Expected n >= 1. Received: n=" + std::to_string(n));
        set_num_threads(n);
    });
    m.def("get_num_threads", []() { return get_num_threads(); });

    m.def("permutation", [](int64_t n, uint64_t seed) {
        if (n < 0) throw py::value_error("Expected n >= 0. Received: n=" + std::to_string(n));
        py::array_t<int64_t> out(n);
        int64_t* p = out.mutable_data();
        {
            py::gil_scoped_release release;
            permutation(p, n, seed);
        }
        return out;
    });

    // ---- single kernels (tests, references) ------------------------------------
    m.def("dense_forward", [](py::array x, py::array w, py::object b, int act) {
        check<float>(x, "x", {-1, -1});
        const int64_t B = x.shape(0), in = x.shape(1);
        check<float>(w, "w", {in, -1});
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
            py::gil_scoped_release release;
            active_kernels().forward(yp, cptr<float>(x), cptr<float>(w), bp, B, in, out, a);
        }
        return y;
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("act"));

    m.def("dense_backward", [](py::array dy, py::array y, py::array x, py::array w, int act,
                               bool use_bias, bool need_dx) {
        check<float>(x, "x", {-1, -1});
        const int64_t B = x.shape(0), in = x.shape(1);
        check<float>(w, "w", {in, -1});
        const int64_t out = w.shape(1);
        check<float>(dy, "dy", {B, out});
        check<float>(y, "y", {B, out});
        py::array_t<float> dz({B, out});
        std::memcpy(dz.mutable_data(), dy.data(), sizeof(float) * static_cast<size_t>(B * out));
        py::array_t<float> dw({in, out});
        py::array_t<float> db(use_bias ? out : 0);
        py::array_t<float> dx({need_dx ? B : 0, in});
        float *dzp = dz.mutable_data(), *dwp = dw.mutable_data();
        float* dbp = use_bias ? db.mutable_data() : nullptr;
        float* dxp = need_dx ? dx.mutable_data() : nullptr;
        const Activation a = to_kernel_act(act);
        {
            py::gil_scoped_release release;
            active_kernels().backward(dxp, dwp, dbp, dzp, cptr<float>(y), cptr<float>(x),
                                      cptr<float>(w), B, in, out, a);
        }
        return py::make_tuple(need_dx ? py::object(dx) : py::none(), dw,
                              use_bias ? py::object(db) : py::none(), dz);
    }, py::arg("dy"), py::arg("y"), py::arg("x"), py::arg("w"), py::arg("act"),
       py::arg("use_bias"), py::arg("need_dx"));

    m.def("activation_forward", [](py::array z, int act) {
        check<float>(z, "z", {-1, -1});
        const int64_t R = z.shape(0), C = z.shape(1);
        const Activation a = to_act(act);
        py::array_t<float> y({R, C});
        float* yp = y.mutable_data();
        {
            py::gil_scoped_release release;
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
        {
            py::gil_scoped_release release;
            activation_backward(a, dzp, cptr<float>(dy), cptr<float>(z), cptr<float>(y), R, C);
        }
        return dz;
    }, py::arg("dy"), py::arg("z"), py::arg("y"), py::arg("act"), "dz = dy * f'(z).");

    m.def("loss", [](py::array y, py::object target, py::object labels, int kind,
                     bool from_logits, int out_act) {
        check<float>(y, "y_pred", {-1, -1});
        const int64_t B = y.shape(0), U = y.shape(1);
        if (kind < 0 || kind > 3) throw py::value_error("Unknown loss code");
        LossSpec spec{static_cast<LossKind>(kind), from_logits};
        Targets t = targets(target, labels, B, U, spec.kind, true);
        py::array_t<float> grad({B, U});
        py::array_t<float> per(B);
        float *gp = grad.mutable_data(), *pp = per.mutable_data();
        const Activation a = to_act(out_act);
        double total;
        {
            py::gil_scoped_release release;
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
        if (kind < 0 || kind > 2) throw py::value_error("Unknown metric code");
        const MetricKind k = static_cast<MetricKind>(kind);
        Targets t = targets(target, labels, B, U, LossKind::MeanSquaredError, false);
        if (k == MetricKind::SparseCategoricalAccuracy ? !t.labels : !t.dense)
            throw py::value_error("metric targets missing");
        return metric_sum(k, cptr<float>(y), t.dense, t.labels, B, U, threshold);
    });

    py::class_<OptimizerSpec>(m, "OptimizerSpec")
        .def(py::init<>())
        .def_property("kind", [](const OptimizerSpec& s) { return static_cast<int>(s.kind); },
                      [](OptimizerSpec& s, int k) {
                          if (k < 0 || k > 2) throw py::value_error("Unknown optimizer code");
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
        .def("slots", [](const OptimizerSpec& s) { return optimizer_slots(s); });

    m.def("optimizer_step", [](const OptimizerSpec& spec, int64_t iteration, py::array params,
                               py::array state, py::array grads) {
        check<float>(params, "params", {-1}, true);
        const int64_t n = params.shape(0);
        check<float>(grads, "grads", {n});
        check<float>(state, "state", {static_cast<int64_t>(optimizer_slots(spec)) * n}, true);
        float *p = mptr<float>(params), *st = mptr<float>(state);
        const float* g = cptr<float>(grads);
        py::gil_scoped_release release;
        optimizer_step(spec, iteration, p, st, g, n, 0, n);
    }, py::arg("spec"), py::arg("iteration"), py::arg("params"), py::arg("state"),
       py::arg("grads"));

    // ---- the network -------------------------------------------------------------
    py::class_<Network>(m, "Network")
        .def(py::init([](const std::vector<int64_t>& units, const std::vector<int>& acts,
                         const std::vector<bool>& use_bias, const std::vector<float>& dropout,
                         float input_dropout) {
                 std::vector<Activation> a;
                 for (int v : acts) a.push_back(to_act(v));
                 return new Network(units, a, use_bias, dropout, input_dropout);
             }),
             py::arg("units"), py::arg("activations"), py::arg("use_bias"),
             py::arg("dropout") = std::vector<float>{}, py::arg("input_dropout") = 0.0f)
        .def("set_trainable", &Network::set_trainable, py::arg("layer"), py::arg("trainable"))
        .def("set_seed", &Network::set_seed, py::arg("seed"),
             "Seeds the dropout masks' generator.")
        .def_property_readonly("num_params", &Network::num_params)
        .def_property_readonly("input_dim", &Network::input_dim)
        .def_property_readonly("output_dim", &Network::output_dim)
        .def_property_readonly("params", [](py::object self) {
            Network& n = self.cast<Network&>();
            return py::array_t<float>({n.num_params()}, {sizeof(float)}, n.params(), self);
        }, "Writable float32 view of the flat parameter buffer (kept alive with the network).")
        .def_property_readonly("grads", [](py::object self) {
            Network& n = self.cast<Network&>();
            return py::array_t<float>({n.num_params()}, {sizeof(float)}, n.grads(), self);
        })
        .def_property_readonly("optimizer_state", [](py::object self) {
            Network& n = self.cast<Network&>();
            auto& st = n.optimizer_state();
            return py::array_t<float>({static_cast<int64_t>(st.size())}, {sizeof(float)},
                                      st.data(), self);
        }, "View of the optimizer state; invalidated by set_optimizer.")
        .def_property("iterations", &Network::iterations, &Network::set_iterations)
        .def_property("learning_rate", &Network::learning_rate, &Network::set_learning_rate)
        .def("layer_offsets", [](const Network& n) {
            py::list out;
            for (const auto& d : n.layers())
                out.append(py::make_tuple(d.w_off, d.in, d.out, d.use_bias ? d.b_off : -1));
            return out;
        })
        .def("set_loss", [](Network& n, int kind, bool from_logits) {
            if (kind < 0 || kind > 3) throw py::value_error("Unknown loss code");
            n.set_loss(LossSpec{static_cast<LossKind>(kind), from_logits});
        })
        .def("set_metrics", [](Network& n, const std::vector<int>& kinds, float threshold) {
            std::vector<MetricKind> k;
            for (int v : kinds) {
                if (v < 0 || v > 2) throw py::value_error("Unknown metric code");
                k.push_back(static_cast<MetricKind>(v));
            }
            n.set_metrics(k, threshold);
        })
        .def("set_optimizer", &Network::set_optimizer)
        .def("train_batches", [](Network& n, py::array x, py::object y, py::object labels,
                                 py::object order, int64_t batch_size, int64_t first_batch,
                                 int64_t n_batches, int loss_kind, py::dict stats,
                                 py::object ypred_out, bool stop_on_nonfinite,
                                 py::object sample_weight) {
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
            Targets t = targets(y, labels, rows, n.output_dim(),
                                static_cast<LossKind>(loss_kind), true, sample_weight);
            float* yo = nullptr;
            py::array ya;
            if (!ypred_out.is_none()) {
                ya = ypred_out.cast<py::array>();
                check<float>(ya, "ypred_out", {count, n.output_dim()}, true);
                yo = mptr<float>(ya);
            }
            Stats s;
            s.loss_sum = stats["loss_sum"].cast<double>();
            s.seen = stats["seen"].cast<int64_t>();
            s.metric_sums = stats["metric_sums"].cast<std::vector<double>>();
            int64_t done;
            {
                py::gil_scoped_release release;
                done = n.train_batches(cptr<float>(x), t, op, count, batch_size, first_batch,
                                       n_batches, s, yo, stop_on_nonfinite);
            }
            stats["loss_sum"] = s.loss_sum;
            stats["seen"] = s.seen;
            stats["metric_sums"] = s.metric_sums;
            return done;
        }, py::arg("x"), py::arg("y"), py::arg("labels"), py::arg("order"),
           py::arg("batch_size"), py::arg("first_batch"), py::arg("n_batches"),
           py::arg("loss_kind"), py::arg("stats"), py::arg("ypred_out"),
           py::arg("stop_on_nonfinite") = false, py::arg("sample_weight") = py::none())
        .def("evaluate", [](const Network& n, py::array x, py::object y, py::object labels,
                            int64_t batch_size, int loss_kind, py::object ypred_out,
                            py::object sample_weight) {
            check<float>(x, "x", {-1, n.input_dim()});
            const int64_t rows = x.shape(0);
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            Targets t = targets(y, labels, rows, n.output_dim(),
                                static_cast<LossKind>(loss_kind), true, sample_weight);
            float* yo = nullptr;
            py::array ya;
            if (!ypred_out.is_none()) {
                ya = ypred_out.cast<py::array>();
                check<float>(ya, "ypred_out", {rows, n.output_dim()}, true);
                yo = mptr<float>(ya);
            }
            Stats s;
            {
                py::gil_scoped_release release;
                n.evaluate(cptr<float>(x), t, rows, batch_size, s, yo);
            }
            return stats_dict(s);
        }, py::arg("x"), py::arg("y"), py::arg("labels"), py::arg("batch_size"),
           py::arg("loss_kind"), py::arg("ypred_out"), py::arg("sample_weight") = py::none())
        .def("predict", [](const Network& n, py::array x, int64_t batch_size) {
            check<float>(x, "x", {-1, n.input_dim()});
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
            const int64_t rows = x.shape(0);
            py::array_t<float> out({rows, n.output_dim()});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                n.predict(cptr<float>(x), rows, batch_size, op);
            }
            return out;
        }, py::arg("x"), py::arg("batch_size"))
        .def("forward_train", [](Network& n, py::array x) {
            check<float>(x, "x", {-1, n.input_dim()});
            const int64_t B = x.shape(0);
            py::array_t<float> out({B, n.output_dim()});
            float* op = out.mutable_data();
            {
                py::gil_scoped_release release;
                n.forward_train(cptr<float>(x), B, op);
            }
            return out;
        })
        .def("backward_update", [](Network& n, py::array grad) {
            check<float>(grad, "grad", {-1, n.output_dim()});
            const float* g = cptr<float>(grad);
            const int64_t B = grad.shape(0);
            py::gil_scoped_release release;
            n.backward_update(g, B);
        });

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
