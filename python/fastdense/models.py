"""``Sequential``: Keras's model of a stack of layers, trained by the native engine.

The Python side only describes the network and moves data across; the
epoch's batch loop (gather, forward, loss, backward, update) runs in C++.
Python touches individual batches only when you ask for something that needs
it: a callback with batch hooks, a custom loss, or a metric without a native
kernel (those are updated from predictions the engine records per batch).
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

import numpy as np

from . import _core
from . import _data, _multi
from . import activations as _activations
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from ._naming import unique_name
from .callbacks import Callback, CallbackList, History
from .layers import (Activation, BatchNormalization, Concatenate, Dense, Dropout, Flatten,
                     Identity, _Merge, _Op, _OpScalar, _OutputJoin,
                     InputLayer, Normalization, Rescaling,
                     InputSpec, KerasTensor, Layer, LayerNormalization, _RowNormalization,
                     ActivityRegularization, PReLU, Reshape, _Noise, _check_name)
from .variables import Variable

__all__ = ["Model", "Sequential", "Functional", "load_model", "model_from_json", "clone_model", "save_model"]

Logs = Dict[str, Any]  # (floats; a per-class metric gives an array)


class Model:
    """Base class of fastdense models: ``Sequential`` stacks, and the
    functional ``Model(inputs, outputs)`` form for a chain of layers (a
    ``Functional`` model; branches and shared layers raise)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "Model":
        if cls is Model:
            if len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs:
                return super().__new__(Functional)
            raise NotImplementedError(
                "fastdense runs `Sequential` models and functional `Model(inputs, outputs)` "
                "chains; subclassing `Model` with a `call()` is not supported.")
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError(f"{type(self).__name__}() takes keyword arguments only here. "
                            f"Received: {len(args)} positional arguments")
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to "
                             f"{type(self).__name__}: {kwargs}")
        if name is None or name == "":
            name = unique_name(type(self).__name__.lower())
        _check_name(name)
        self.name = name
        self.trainable = trainable
        # The layers the engine runs, in order (a nested model's layers in its
        # place), and, once a model is nested, the stack as the user built it
        # (``layers``: the nested models as single entries, as Keras lists them).
        self._layers: List[Layer] = []
        self._top: Optional[List[Any]] = None
        # (the name of the model's InputLayer in its config: the Input it was
        # given, or a new unique one once built, as Keras's Sequential makes)
        self._input_layer_name: Optional[str] = None
        # A traced graph (a functional model with branches or several inputs,
        # or a subclassed model whose call() branches): each call's inputs,
        # in the order of `layers`, for the engine's stages, the summary and
        # the config; `_graph_order` with the InputLayers in their places.
        self._graph: Optional[List[Tuple[Any, List[KerasTensor], KerasTensor]]] = None
        self._graph_order: Optional[List[Tuple[Any, List[KerasTensor], KerasTensor]]] = None
        self._input_tensors: List[KerasTensor] = []
        self._input_tensor: Any = None
        self._output_tensor: Any = None
        # Several outputs (a functional model's list or dict of them): their
        # layout in the engine's joined output, the tensors, and compile's
        # arguments resolved per output. None for one output.
        self._outs: Optional[_multi.Outputs] = None
        self._output_tensors: List[KerasTensor] = []
        self._multi: Optional[_multi.Compiled] = None
        # (a subclassed model compiled with a loss per output before its call()
        # was traced: compile's arguments, for when the trace shows the outputs)
        self._pending_compile: Optional[Dict[str, Any]] = None
        self._compile_args: Dict[str, Any] = {}  # (the last compile's arguments)
        self._loss_weights_arg: Any = None  # (compile's loss_weights, as given)
        self._metrics_arg: Any = None  # (several outputs: compile's metrics structures)
        self._weighted_arg: Any = None
        self._input_layer: Any = None
        self._slices: List[Tuple[int, int]] = []  # (first column, width) of each input
        # (a graph's layers that run in numpy before the engine, by id, with each
        # input's chain of them: _set_graph works them out once)
        self._prefix: Dict[int, KerasTensor] = {}
        self._node_of: Dict[int, int] = {}  # (a graph's calls: node index by output tensor id)
        self._chains: List[List[Layer]] = []
        # (a built Sequential's symbolic input and output: _trace_stack)
        self._seq_tensors: Optional[Tuple[KerasTensor, KerasTensor]] = None
        self._input_shape: Optional[Tuple[Optional[int], ...]] = None
        self._net: Any = None
        # (an Optimizer once compiled, None before: typed Any, as Keras leaves it, so
        # that `model.optimizer.learning_rate.assign(...)` type-checks after compile)
        self.optimizer: Any = None
        self.loss: Any = None
        self.run_eagerly = False
        self.jit_compile = True
        self.steps_per_execution = 1
        self.compiled = False
        self.stop_training = False
        self.history: Optional[History] = None
        self._loss_obj: Optional[_losses.Loss] = None
        self._loss_native: Optional[Tuple[int, bool]] = None
        self._metric_ids: List[Any] = []
        self._weighted_ids: List[Any] = []
        self._metrics: Optional[List[_metrics.Metric]] = None
        self._native_metrics: List[int] = []  # positions in _metrics computed natively
        self._stage_owners: List[Layer] = []  # the layer owning each engine stage
        # (each variable and its view into this model's engine buffer; see _claim_weights)
        self._bindings: List[Tuple[Variable, np.ndarray]] = []

    # ------------------------------------------------------------------ structure
    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        """The forward pass of a subclassed model (Keras's ``Model.call``):
        fastdense traces it once, on a symbolic input of the data's shape, and
        runs the chain of layer calls it makes natively."""
        raise NotImplementedError(f"Model '{self.name}' has no `call()` method: subclasses of "
                                  "Model define one.")

    def _subclassed(self) -> bool:
        """A user's subclass of Model with its own ``call()``."""
        return not isinstance(self, Sequential) and type(self).call is not Model.call

    def _trace_call(self, input_shape: Tuple[Any, ...]) -> None:
        """Builds a subclassed model's layer stack from its ``call()``, run on
        a symbolic input: each layer call there records itself."""
        import inspect
        from .layers import Input
        inp = Input(batch_shape=(None,) + tuple(input_shape[1:]))
        kwargs: Dict[str, Any] = {}
        try:
            if "training" in inspect.signature(self.call).parameters:
                kwargs["training"] = False
        except (TypeError, ValueError):
            pass
        unbuilt = [v for v in vars(self).values() if isinstance(v, Layer) and not v.built]
        try:
            res = self.call(inp, **kwargs)
            joined = _join_outputs(res, [inp], "outputs of call()")
            out = joined[0] if joined is not None else _one_tensor(res, "the output of call()")
            order = None if joined is None and _is_chain(out) else _layer_graph([inp], out)
            chain = _layer_chain(inp, out) if order is None else []
            if order is not None:  # (call() branches: merges, x + h; several outputs)
                self._input_layer = inp._layer  # type: ignore[attr-defined]
                self._input_layer_name = self._input_layer.name
                self._set_graph(order, [inp], out)
            if joined is not None:
                self._outs, self._output_tensors = joined[2], joined[1]
                self._outs.named = self._outs.keys is not None  # (Keras: no output names)
        except (TypeError, ValueError, AttributeError, NotImplementedError) as e:
            raise NotImplementedError(
                f"fastdense runs a subclassed model by tracing its call() once: fastdense "
                f"layer calls on the input and on their outputs, merged by merge layers or "
                f"x + h. Tracing {type(self).__name__}.call() failed: {e}") from None
        for layer in [inp._layer] + chain if order is None else []:  # type: ignore[attr-defined]
            self._append_layer(layer, rebuild=False)
        for layer in unbuilt:  # (built in the model's call: Keras's my_model/dense paths)
            if layer.built and layer.weights:
                self._adopt(layer)

    @property
    def layers(self) -> List[Layer]:
        if self._subclassed() and (not self._layers or self._graph is not None):
            # (before the trace, and for a call() that branches: the layers set as
            # attributes, as Keras tracks them)
            tracked: List[Any] = [v for v in vars(self).values() if isinstance(v, (Layer, Model))
                                  and not isinstance(v, InputLayer)]
            return tracked
        return list(self._stack)

    @property
    def _stack(self) -> List[Any]:
        """The model's entries as added: layers, and nested models whole."""
        return self._top if self._top is not None else self._layers

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """A layer by name or by index in ``layers`` (as Keras)."""
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: "
                             f"index={index}, name={name}.")
        stack = self._stack
        if index is not None:
            if len(stack) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(stack)} layers.")
            return stack[index]
        if name is not None:
            for layer in stack:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: "
                             f"{[layer.name for layer in stack]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    @property
    def losses(self) -> List[np.float32]:
        """The weight regularization penalties of the current weights (one per
        regularized variable, in layer order), as Keras's ``model.losses``
        lists them; activity penalties are part of each batch's loss only."""
        if not self.trainable:  # (frozen layers add no penalty, as in training)
            return []
        return [loss for layer in self._layers for loss in layer.losses]

    @property
    def built(self) -> bool:
        return self._net is not None

    @property
    def weights(self) -> List[Variable]:
        if self._subclassed() and self._graph is not None:  # (Keras's order: its layers')
            return [w for layer in self.layers for w in layer.weights]
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # as Keras: setting it on the model sets it on every layer
        self._trainable = bool(value)
        for item in getattr(self, "_top", None) or []:
            if isinstance(item, Model):
                item.trainable = bool(value)
        for layer in getattr(self, "_layers", []):
            layer.trainable = bool(value)

    @property
    def trainable_weights(self) -> List[Variable]:
        return [w for layer in self._layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self) -> List[Variable]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def _sync_trainable(self) -> None:
        """Tells the engine which layers are frozen (``layer.trainable = False``
        or ``model.trainable = False``)."""
        for i, layer in enumerate(self._stage_owners):
            self._net.set_trainable(i, bool(self.trainable and layer.trainable))
        if self.optimizer is not None and getattr(self.optimizer, "_net", None) is self._net:
            self.optimizer._sync_weight_decay_mask(self._parameter_variables())

    def _parameter_variables(self) -> List[Variable]:
        """The variables an optimizer can update (kernels and biases, gammas
        and betas), trainable or not, in the engine's order."""
        out: List[Variable] = []
        for layer in self._layers:
            if isinstance(layer, Dense):
                out += layer.weights
            elif isinstance(layer, BatchNormalization):
                out += [v for v in (layer.gamma, layer.beta) if v is not None]
            elif isinstance(layer, (_RowNormalization, PReLU)):
                out += layer.weights
        return out

    @property
    def variables(self) -> List[Variable]:
        return self.weights

    @property
    def trainable_variables(self) -> List[Variable]:
        return self.trainable_weights

    @property
    def non_trainable_variables(self) -> List[Variable]:
        return self.non_trainable_weights

    @property
    def path(self) -> str:
        return self.name

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        """``{"input_shape": (None, ...)}`` once built (Keras's build config)."""
        if self._net is None or self._input_shape is None:
            return None
        return {"input_shape": tuple(self._input_shape)}

    def build_from_config(self, config: Optional[Mapping[str, Any]]) -> None:
        if config and config.get("input_shape") is not None:
            self.build(tuple(config["input_shape"]))

    def get_compile_config(self) -> Dict[str, Any]:
        """The arguments of ``compile()``, serialized as Keras's
        ``get_compile_config()`` gives them ({} before compile)."""
        from . import saving as _saving
        return _saving._compile_config(self)

    def compile_from_config(self, config: Mapping[str, Any]) -> None:
        """Compiles the model from ``get_compile_config()``'s output (or
        Keras's): the optimizer, loss and metrics deserialized."""
        from . import saving as _saving
        _saving._compile_from_config(self, dict(config),
                                     _saving._Context("Error reading the compile config"))

    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        if self._input_shape is None:
            raise AttributeError("The model has not been built yet: it has no defined input shape.")
        return self._input_shape

    @property
    def output_shape(self) -> Tuple[Optional[int], ...]:
        if not self._dense_layers:
            raise AttributeError("The model has no Dense layer.")
        return (None, self._output_units)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                "You tried to call `count_params` on a model that has not been built yet.")
        # (its weights': the engine's buffer also holds the gradient room of a
        # layer's repeated calls)
        return sum(int(np.prod(w.shape)) for w in self.weights)

    def get_weights(self) -> List[np.ndarray]:
        """Copies of all weights: each layer's kernel, then its bias."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets all weights from a list like ``get_weights()`` returns."""
        params = self.weights
        if len(weights) != len(params):
            raise ValueError(
                f"You called `set_weights(weights)` on model '{self.name}' with a weight list "
                f"of length {len(weights)}, but the model was expecting {len(params)} weights.")
        for var, value in zip(params, weights):
            if np.shape(value) != var.shape:
                raise ValueError(f"Weight {var.path} has shape {var.shape}; "
                                 f"received a value of shape {np.shape(value)}.")
        for var, value in zip(params, weights):
            var.assign(value)

    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None) -> None:
        """Creates the weights and the native network for ``input_shape``
        (``(batch, features)``, or ``(batch, d1, d2, ...)`` when the first
        layer is ``Flatten``; the batch may be None)."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument.")
        input_shape = tuple(input_shape)
        if self._subclassed() and not self._layers:
            self._trace_call(input_shape)
            pending, self._pending_compile = self._pending_compile, None
            if pending is not None:  # (losses per output, given before the trace)
                self.compile(**dict(pending, optimizer=self.optimizer))
            elif self._outs is not None and self.compiled and self._multi is None:
                # (one loss for every output, compiled before the trace showed them)
                self.compile(**dict(self._compile_args, optimizer=self.optimizer))
        if not self._dense_layers:
            raise ValueError(f"Sequential model '{self.name}' has no Dense layer; add some first.")
        stages, owners, activity, input_dropout = self._engine_layout()
        dims: Tuple[Any, ...] = tuple(input_shape[1:])
        if len(dims) == 0 or any(d is None for d in dims) or (
                len(dims) > 1 and not self._flatten_input()):
            raise ValueError(
                "fastdense models take 2D inputs of shape (batch, features) (start with a "
                "Flatten layer for images). Received: input_shape=" + str(input_shape))
        if any(int(d) <= 0 for d in dims):
            raise ValueError("Input dimensions must be positive. Received: input_shape="
                             + str(tuple(input_shape)))
        self._input_shape = (None,) + tuple(int(d) for d in dims)
        self._check_shapes(self._input_shape)
        if self._input_layer_name is None:
            self._input_layer_name = unique_name("input_layer")
        self._build_nested(self._input_shape)
        for norm in self._normalizers:
            if not norm.built:
                norm.build(self._input_shape)
                self._adopt(norm)
        width = int(np.prod(dims))
        widths: List[int] = []  # (each stage's output width: a graph's stages read any)
        for stage, layer in zip(stages, owners):
            if "inputs" in stage:
                reads = [int(np.prod(dims)) if i < 0 else widths[i] for i in stage["inputs"]]
                width = sum(reads) if stage.get("merge") == 6 else reads[0]
                if stage["kind"] == 6:  # (a slice: its input's columns)
                    width = stage["units"]
            if isinstance(layer, (Dense, BatchNormalization, _RowNormalization, PReLU)):
                created = not layer.built
                layer.build((None, width))
                if created:
                    self._adopt(layer)
            if isinstance(layer, Dense):
                width = layer.units
            widths.append(width)
        net = _core.Network(int(np.prod(dims)), stages, input_dropout)
        params = net.params
        by_layer: Dict[int, List[Any]] = {}
        for li, off, shape, _trainable in net.variables():
            by_layer.setdefault(li, []).append((off, shape))
        bindings: List[Tuple[Variable, np.ndarray]] = []
        for i, layer in enumerate(owners):
            for var, (off, shape) in zip(layer.weights, by_layer.get(i, [])):
                var._bind(params[off:off + int(np.prod(shape))].reshape(shape), net)
                bindings.append((var, var._value))
        for i, layer in enumerate(owners):
            if isinstance(layer, Dense):
                kreg, breg = layer.kernel_regularizer, layer.bias_regularizer
            elif isinstance(layer, (BatchNormalization, LayerNormalization)):
                kreg, breg = layer.gamma_regularizer, layer.beta_regularizer
            elif isinstance(layer, PReLU):
                kreg, breg = layer.alpha_regularizer, None
            else:
                continue
            kl1, kl2 = kreg._factors() if kreg else (0, 0)
            bl1, bl2 = breg._factors() if breg else (0, 0)
            if kl1 or kl2 or bl1 or bl2:
                net.set_regularization(i, kl1, kl2, bl1, bl2)
            kc, bc = layer._native_constraints()
            if kc[0] or bc[0]:
                net.set_constraints(i, kc, bc)
        for i, reg in enumerate(activity):
            if reg is not None:
                net.set_activity_regularization(i, *reg._factors())
        self._stage_owners = owners
        self._bindings = bindings
        self._net = net
        if self.compiled:
            self._install_training_config()
        if isinstance(self, Sequential) and not isinstance(self, Functional):
            self._trace_stack()

    def _trace_stack(self) -> None:
        """A built Sequential's layers called on its symbolic input, as Keras's
        Sequential builds its graph: ``model.input`` / ``model.output`` and
        each layer's ``input`` / ``output`` are then the tensors of that
        chain, for ``Model(inputs=model.input, outputs=layer.output)``."""
        from .layers import Input
        assert self._input_shape is not None
        given = self._input_layer
        t = given.output if isinstance(given, InputLayer) else Input(
            batch_shape=tuple(self._input_shape), name=self._input_layer_name)
        start = t
        try:
            for item in self._stack:
                t = item(t)
        except (TypeError, ValueError, AttributeError, NotImplementedError):
            self._seq_tensors = None  # (the model runs as built; only the symbolic view is off)
            return
        self._seq_tensors = (start, t)

    def _build_nested(self, input_shape: Tuple[Any, ...]) -> None:
        """Checks each nested model's input shape against what reaches it, and
        builds the nested models that are not built yet (their own engines,
        so that they run on their own too; their new weights get this model's
        path first, as Keras's ``sequential/inner/dense/kernel``)."""
        if self._top is None or self._graph is not None:
            return
        shape = tuple(input_shape)
        for item in self._top:
            if isinstance(item, Model):
                want = item._input_shape
                if want is not None and tuple(want[1:]) != tuple(shape[1:]):
                    raise ValueError(
                        f'Input 0 of layer "{item.name}" is incompatible with the layer: '
                        f"expected shape={(None,) + tuple(want[1:])}, found "
                        f"shape={(None,) + tuple(shape[1:])}")
                if item._net is None and item._dense_layers:
                    fresh = [l for l in item._layers if not l.built]
                    item.build(shape)
                    for layer in fresh:
                        if layer.built:
                            self._adopt(layer)
            shape = tuple(item.compute_output_shape(shape))

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]) -> Any:
        """The output shape for inputs of ``input_shape`` (batch axis first); for
        several outputs, a list of shapes (a dict for outputs given as a dict)."""
        if self._outs is not None:
            shapes = [(tuple(input_shape)[0],) + tuple(t.shape[1:])
                      for t in self._output_tensors]
            if self._outs.keys is None:
                return shapes
            by_key = dict(zip(self._outs.keys, shapes))
            return {k: by_key[k] for k in self._outs.user_keys}
        if self._graph is not None:
            return (tuple(input_shape)[0],) + tuple(self._output_tensor.shape[1:])
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    @property
    def _dense_layers(self) -> List[Dense]:
        return [l for l in self._layers if isinstance(l, Dense)]

    @property
    def _output_units(self) -> int:
        if self._graph is not None:
            return int(self._output_tensor.shape[-1])
        return self._dense_layers[-1].units

    def _flatten_input(self) -> bool:
        """True when a Flatten layer (or a Reshape to one axis) comes before
        the first Dense layer."""
        for layer in self._layers:
            if isinstance(layer, Dense):
                return False
            if isinstance(layer, Flatten) or (isinstance(layer, Reshape)
                                              and len(layer.target_shape) == 1):
                return True
        return False

    def _check_shapes(self, input_shape: Tuple[Any, ...]) -> None:
        """Follows the input shape through the layers: every layer but the
        shape-only ones (Flatten, Reshape, Dropout, elementwise activations,
        the input-stage layers) must see 2D activations, as the model's
        output must be."""
        if self._graph is not None:
            return  # (a graph's shapes: checked as it was built, in _set_graph)
        shape = tuple(input_shape)
        for layer in self._layers:
            if len(shape) != 2 and isinstance(
                    layer, (Dense, BatchNormalization, _RowNormalization, PReLU, _Noise,
                            ActivityRegularization)):
                raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) gets inputs of "
                                 f"shape {shape}; fastdense runs it on 2D activations (batch, "
                                 "features): flatten them first (Flatten, or Reshape((-1,))).")
            shape = tuple(layer.compute_output_shape(shape))
        if len(shape) != 2:
            raise ValueError(f"The model's output would have shape {shape}; fastdense models "
                             "output 2D arrays (batch, features).")

    def _engine_layout(self) -> Tuple[List[Dict[str, Any]], List[Layer], List[Any], float]:
        """The native network's stages: one per Dense, BatchNormalization,
        LayerNormalization and RMSNormalization layer (and an Identity stage
        per Activation, noise, Dropout or ActivityRegularization layer that
        cannot run on the stage before it), each with the activation that
        follows it, the Dropout rate or noise applied to its output and its
        activity regularizer. Returns (stage dicts, the layer owning each
        stage, each stage's activity regularizer, the Dropout rate on the
        inputs)."""
        if self._graph is not None:
            return self._graph_layout()
        linear = 0
        stages: List[Dict[str, Any]] = []
        owners: List[Layer] = []
        activity: List[Any] = []
        input_keep = 1.0

        def changed(stage: Dict[str, Any]) -> bool:  # (its output dropped or noisy)
            return bool(stage["dropout"] or stage.get("noise"))

        for layer in self._layers:
            if isinstance(layer, Dense):
                stages.append({"kind": 0, "units": layer.units, "activation": layer._act_code,
                               "use_bias": layer.use_bias, "dropout": 0.0,
                               **layer._act_params})
            elif isinstance(layer, BatchNormalization):
                stages.append({"kind": 1, "activation": linear, "use_bias": layer.center,
                               "scale": layer.scale, "momentum": layer.momentum,
                               "epsilon": layer.epsilon, "dropout": 0.0})
            elif isinstance(layer, (_RowNormalization, PReLU)):
                stages.append(layer._stage())
            elif isinstance(layer, Activation):
                # runs as the activation of the stage before it when that stage
                # is linear, unchanged and has no activity regularizer (which
                # would see the pre-activation), else as a stage of its own
                if (stages and stages[-1]["activation"] == linear and not changed(stages[-1])
                        and activity[-1] is None):
                    stages[-1]["activation"] = layer._act_code
                    stages[-1].update(layer._act_params)
                    activity[-1] = layer.activity_regularizer
                    continue
                stages.append({"kind": 2, "activation": layer._act_code, "dropout": 0.0,
                               **layer._act_params})
            elif isinstance(layer, ActivityRegularization):
                # the activity regularizer of the stage before it, when that
                # stage's output is the layer's input, else an Identity stage's
                if stages and not changed(stages[-1]) and activity[-1] is None:
                    activity[-1] = layer.activity_regularizer
                    continue
                stages.append({"kind": 2, "activation": linear, "dropout": 0.0})
            elif isinstance(layer, (Dropout, _Noise)):
                if layer.activity_regularizer is not None:
                    raise NotImplementedError(f"fastdense does not run an activity_regularizer "
                                              f"on a {type(layer).__name__} layer "
                                              f"('{layer.name}').")
                if isinstance(layer, Dropout):
                    if not stages:
                        input_keep *= 1.0 - layer.rate
                        continue
                    if not stages[-1].get("noise"):  # two dropouts keep (1 - a)(1 - b)
                        before = stages[-1]["dropout"]
                        stages[-1]["dropout"] = (layer.rate if not before else
                                                 1.0 - (1.0 - before) * (1.0 - layer.rate))
                        continue
                    stages.append({"kind": 2, "activation": linear, "dropout": layer.rate})
                else:
                    if layer._param() == 0:  # (no noise, as Keras)
                        continue
                    noise = {"noise": layer._noise, "noise_param": layer._param()}
                    if stages and not changed(stages[-1]):
                        stages[-1].update(noise)
                        continue
                    stages.append({"kind": 2, "activation": linear, "dropout": 0.0, **noise})
            else:
                if layer.activity_regularizer is not None:
                    raise NotImplementedError(f"fastdense does not run an activity_regularizer "
                                              f"on layer '{layer.name}'.")
                continue
            owners.append(layer)
            activity.append(layer.activity_regularizer)
        if any(st["dropout"] >= 1.0 for st in stages) or input_keep <= 0.0:
            raise ValueError("A Dropout rate of 1 drops everything; use a rate below 1.")
        if any(st.get("noise") in (2, 3) and st["noise_param"] >= 1.0 for st in stages):
            raise ValueError("A GaussianDropout or AlphaDropout rate of 1 drops everything; "
                             "use a rate below 1.")
        return stages, owners, activity, 1.0 - input_keep

    def _features(self, x: Any, name: str = "x") -> np.ndarray:
        """The engine's input: float32 (samples, features), flattened when the
        model starts with Flatten (a view when the input is contiguous)."""
        if len(self._slices) > 1:  # (a functional model's several inputs)
            return self._multi_features(x, name)  # type: ignore[attr-defined]
        shape = self._input_shape
        if shape is not None and len(shape) == 2 and shape[-1] == 1 and np.ndim(x) == 1:
            # (one feature per sample given as a vector: Keras's functional
            # call adds the axis the input expects, _adjust_input_rank)
            x = np.asarray(x).reshape(-1, 1)
        norms = self._normalizers
        if norms:  # (the leading Normalization layers, on the whole array at once)
            arr = _data._array(x, name)
            for layer in norms:
                if not layer.built:
                    layer.build((None,) + tuple(arr.shape[1:]))
                    self._adopt(layer)
                arr = layer(arr)
            x = arr
        if self._flatten_input() and not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if isinstance(x, np.ndarray) and x.ndim > 2 and self._flatten_input():
            if self._input_shape is not None and x.shape[1:] != self._input_shape[1:]:
                raise ValueError(
                    f"Input 0 of the model is incompatible: expected shape "
                    f"{(None,) + tuple(self._input_shape[1:])}, but received input with "
                    f"shape {x.shape}")
            x = x.reshape(x.shape[0], -1)
        dim = int(np.prod(cast(Tuple[int, ...], self._input_shape[1:]))) \
            if self._input_shape is not None else None
        return _data.features(x, name, dim)

    @property
    def _normalizers(self) -> List[Any]:
        """The model's leading Normalization / Rescaling layers (run in numpy
        on the whole input array)."""
        out: List[Any] = []
        for layer in self._layers:
            if not isinstance(layer, _INPUT_STAGE):
                break
            out.append(layer)
        return out

    def _adopt(self, layer: Layer) -> None:
        """Names a layer just built in the model's scope as Keras does:
        ``sequential/dense`` and ``sequential/dense/kernel``."""
        for w in layer.weights:
            w.path = f"{self.name}/{w.path}"
        layer._path = f"{self.name}/{layer._path or layer.name}"

    def _ensure_built(self, x: np.ndarray, original_shape: Optional[Tuple[int, ...]] = None) -> None:
        if self._net is None:
            self.build((None,) + tuple((original_shape or x.shape)[1:]))
        else:
            self._claim_weights()

    def _claim_weights(self) -> None:
        """Moves this model's variables back into its engine's buffer where
        another model took them. A layer may belong to several models (a
        model nested in another, a layer added to two models), as in Keras,
        and its values live in the buffer of whichever model ran last: each
        model takes them back, current values and all, before it runs, so
        every model sees the latest weights."""
        net = self._net
        for var, view in self._bindings:
            if var._engine is not net:
                var._bind(view, net)

    # ------------------------------------------------------------------ compile
    @property
    def _compiled_optimizer(self) -> "_optimizers.Optimizer":
        """The optimizer of the training paths (they run after compile)."""
        assert self.optimizer is not None
        return self.optimizer

    @property
    def _native_loss_code(self) -> int:
        """The engine's code for the loss (the native paths run only with one)."""
        assert self._loss_native is not None
        return self._loss_native[0]

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, run_eagerly: bool = False,
                steps_per_execution: int = 1, jit_compile: Any = "auto",
                auto_scale_loss: bool = True) -> None:
        """Configures training: optimizer, loss and metrics (strings or objects).

        ``run_eagerly``, ``steps_per_execution`` and ``jit_compile`` are accepted
        for compatibility; the native engine always runs whole chunks of steps.
        """
        self._compile_args = dict(
            optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
            weighted_metrics=weighted_metrics, run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution, jit_compile=jit_compile)
        if (self._outs is None and self._subclassed() and not self._layers
                and isinstance(loss, (list, tuple, dict))):
            # (several outputs, maybe: known once call() is traced on the first data)
            self._pending_compile = dict(self._compile_args)
            self.optimizer = _optimizers.get(optimizer)
            self.loss, self._loss_obj, self._loss_native = loss, None, None
            self.compiled = True
            return
        if self._outs is not None:  # (several outputs: a loss, weight and metrics each)
            self._compile_outputs(optimizer, loss, loss_weights, metrics, weighted_metrics)
        else:
            self._compile_one(optimizer, loss, loss_weights, metrics, weighted_metrics)
        self.run_eagerly = bool(run_eagerly)  # (kept for Keras's compile config)
        self.steps_per_execution = steps_per_execution
        self.jit_compile = True if jit_compile == "auto" else bool(jit_compile)
        self.compiled = True
        if self._net is not None:
            self._install_training_config()

    def _compile_one(self, optimizer: Any, loss: Any, loss_weights: Any, metrics: Any,
                     weighted_metrics: Any) -> None:
        """compile's optimizer, loss and metrics for one output."""
        self._loss_weight = self._parse_loss_weights(loss_weights)
        self._loss_weights_arg = loss_weights
        for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value and not isinstance(value, (list, tuple, dict)):
                raise ValueError(f"Expected `{arg}` argument to be a list, tuple, or dict. "
                                 f"Received instead: {arg}={value} of type {type(value)}")
        if isinstance(metrics, dict):
            metrics = list(metrics.values())
        if isinstance(weighted_metrics, dict):
            weighted_metrics = list(weighted_metrics.values())
        self.optimizer = _optimizers.get(optimizer)
        # (as Keras: compiling again without `loss`, or without `metrics` and
        # `weighted_metrics`, keeps the ones compiled before -- e.g. a second
        # compile with a lower learning rate for fine-tuning)
        keep_metrics = self.compiled and metrics is None and weighted_metrics is None
        if loss is None:
            if not self.compiled:
                self.loss = None
                self._loss_obj, self._loss_native = None, None
        else:
            if isinstance(loss, (list, tuple, dict)):
                raise NotImplementedError(
                    f"Model '{self.name}' has one output; pass a single loss. (fastdense runs "
                    "several outputs in functional models, Model(inputs, [out_1, out_2]); "
                    f"not in Sequential or subclassed ones.) Received: loss={loss!r}")
            self.loss = loss
            if isinstance(loss, str) and loss.lower() in ("crossentropy", "ce"):
                # Keras picks binary / sparse / categorical from the first data
                self._loss_obj, self._loss_native = None, None
            else:
                self._loss_obj = _losses.to_loss_object(loss)
                self._loss_native = self._loss_obj._native()
        if not keep_metrics:
            self._metric_ids = [m for m in (metrics or []) if m is not None]
            self._weighted_ids = [m for m in (weighted_metrics or []) if m is not None]
            for m in self._metric_ids + self._weighted_ids:  # fail early on unknown names
                if not (isinstance(m, str) and m.lower() in ("accuracy", "acc")):
                    _metrics.check(m)
            self._metrics = None

    def _compile_outputs(self, optimizer: Any, loss: Any, loss_weights: Any, metrics: Any,
                         weighted_metrics: Any) -> None:
        """compile's optimizer, losses and metrics for several outputs (``_multi``)."""
        assert self._outs is not None
        if self._multi is not None:  # (compiled again: as for one output, the loss,
            if loss is None:         # and the metrics, given before are kept)
                loss = self.loss
                loss_weights = self._loss_weights_arg if loss_weights is None else loss_weights
            if metrics is None and weighted_metrics is None:
                metrics, weighted_metrics = self._metrics_arg, self._weighted_arg
        self._multi = _multi.compile_outputs(self._outs, loss, loss_weights, metrics,
                                             weighted_metrics)
        self._loss_weight, self._loss_weights_arg = 1.0, loss_weights
        self.loss, self._loss_obj, self._loss_native = loss, None, None
        self._metric_ids, self._weighted_ids = [], []
        self._metrics_arg, self._weighted_arg = metrics, weighted_metrics
        self._metrics = None
        self.optimizer = _optimizers.get(optimizer)

    def _install_training_config(self) -> None:
        net = self._net
        opt = self.optimizer
        if not (opt is getattr(self, "_installed_optimizer", None)
                and getattr(opt, "_net", None) is net):
            # (compile again with the optimizer already installed in this
            # network -- `compile(optimizer=model.optimizer, ...)` -- keeps its
            # state and iterations, as Keras's built optimizer does)
            opt._attach(net)  # type: ignore[union-attr]
            self._installed_optimizer = opt
        opt._ref_paths = [w.path for w in self.trainable_weights]  # (its slots' names)
        code, from_logits = self._loss_native or (_losses.MSE, False)
        net.set_loss(code, from_logits)
        if self._metrics is not None:
            self._select_native_metrics()
        else:
            net.set_metrics([], 0.5)

    def _resolve_loss(self, y_shape: Tuple[int, ...]) -> None:
        """Keras's "crossentropy" / "ce": binary, sparse or categorical
        crossentropy chosen from the label and output shapes."""
        if self._loss_obj is not None or self.loss is None:
            return
        is_binary = self._output_units == 1
        is_sparse = len(y_shape) < 2 or (y_shape[-1] == 1 and self._output_units > 1)
        fn = (_losses.binary_crossentropy if is_binary else
              _losses.sparse_categorical_crossentropy if is_sparse else
              _losses.categorical_crossentropy)
        self._loss_obj = _losses.LossFunctionWrapper(fn, name=self.loss)
        self._loss_native = native = self._loss_obj._native()
        if self._net is not None and native is not None:
            self._net.set_loss(*native)

    def _resolve_metrics(self, y_shape: Tuple[int, ...]) -> List[_metrics.Metric]:
        """Builds the metric objects on the first data seen, as Keras does:
        `metrics` (unweighted), then `weighted_metrics` (given the sample
        weights); a repeated name gets Keras's suffix (``_1``, or
        ``weighted_`` for a weighted twin)."""
        if self._metrics is None:
            out_shape = (y_shape[0], self._output_units)
            resolved = [_metrics.resolve(m, y_shape, out_shape) for m in self._metric_ids]
            weighted = [_metrics.resolve(m, y_shape, out_shape) for m in self._weighted_ids]
            seen: Dict[str, int] = {}
            for m in resolved:
                if m.name in seen:
                    seen[m.name] += 1
                    m.name = f"{m.name}_{seen[m.name] - 1}"
                else:
                    seen[m.name] = 1
            for m in weighted:
                m._weighted = True  # type: ignore[attr-defined]
                if m.name in seen:
                    base = f"weighted_{m.name}"
                    m.name = base if base not in seen else f"{base}_{seen[base]}"
                    seen[base] = seen.get(base, 0) + 1
                else:
                    seen[m.name] = 1
            self._metrics = resolved + weighted
            self._select_native_metrics()
        return self._metrics

    def _select_native_metrics(self) -> None:
        """Runs natively every metric with a kernel (at most one threshold)."""
        self._native_metrics = []
        if self._multi is not None:  # (the engine's loss heads sum each output's loss)
            if self._loss_native is not None:
                self._native_metrics = [i for i, m in enumerate(self._metrics or [])
                                        if isinstance(m, _multi.OutputLoss)]
            self._net.set_metrics([], 0.5)
            return
        codes: List[int] = []
        threshold: Optional[float] = None
        if self._loss_native is not None:
            for i, m in enumerate(self._metrics or []):
                spec = None if getattr(m, "_weighted", False) else m._native()
                if spec is None or (threshold is not None and spec[1] != threshold):
                    continue
                if spec[0] != _metrics.BINARY_ACCURACY and self._sparse_targets() != (
                        spec[0] == _metrics.SPARSE_CATEGORICAL_ACCURACY):
                    continue  # native kernels read the targets the loss uses
                if spec[0] == _metrics.BINARY_ACCURACY and self._sparse_targets():
                    continue
                codes.append(spec[0])
                if spec[0] == _metrics.BINARY_ACCURACY:
                    threshold = spec[1]
                self._native_metrics.append(i)
        self._net.set_metrics(codes, 0.5 if threshold is None else threshold)

    def _parse_loss_weights(self, loss_weights: Any) -> float:
        """compile's ``loss_weights`` for the one output, as Keras takes it: a
        number, a list of one, or a dict keyed by the output layer's name."""
        value = loss_weights
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(f"`loss_weights` must have one entry, for the model's one "
                                 f"output. Received: loss_weights={loss_weights!r}")
            value = value[0]
        elif isinstance(value, dict):
            out_name = self._layers[-1].name if self._layers else None
            if len(value) != 1 or (out_name is not None and out_name not in value):
                raise ValueError(f"`loss_weights` must map the output layer's name "
                                 f"({out_name!r}) to its weight. Received: "
                                 f"loss_weights={loss_weights!r}")
            value = next(iter(value.values()))
        if value is None:
            return 1.0
        if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                or not math.isfinite(value)):
            raise ValueError(f"`loss_weights` must be a finite number. Received: "
                             f"loss_weights={loss_weights!r}")
        return float(value)

    def _weighted_samples(self, sw: Optional[np.ndarray], n: int) -> Optional[np.ndarray]:
        """The sample weights with compile's loss weight folded in: the loss
        (train and validation) is scaled as Keras scales it; weighted metrics
        are ratios, unchanged; regularization penalties stay unscaled."""
        w = getattr(self, "_loss_weight", 1.0)
        if w == 1.0:
            return sw
        base = np.ones(n, np.float32) if sw is None else np.asarray(sw, np.float32)
        return (base * np.float32(w)).astype(np.float32)

    def _sample_weights(self, sample_weight: Any, class_weight: Any, y_user: np.ndarray,
                        n: int) -> Optional[np.ndarray]:
        """fit's / evaluate's weights of the samples (``_data.sample_weights``),
        with Keras's checks for several outputs."""
        if self._outs is not None:
            return _multi.sample_weights(self._outs, sample_weight, class_weight, n)
        return _data.sample_weights(sample_weight, class_weight, y_user, n)

    def _sparse_targets(self) -> bool:
        return self._loss_native is not None and self._loss_native[0] == _losses.SCCE

    @property
    def metrics_names(self) -> List[str]:
        return ["loss"] + [m.name for m in (self._metrics or [])]

    @property
    def metrics(self) -> List[_metrics.Metric]:
        return list(self._metrics or [])

    # ------------------------------------------------------------------ data
    def _prepare(self, x: Any, y: Any, x_name: str = "x", y_name: str = "y",
                 batch_size: Optional[int] = None
                 ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        if not self.compiled:
            raise ValueError("You must call `compile()` before using the model.")
        if self.loss is None:
            raise ValueError("No loss to compute: call `compile()` with a `loss` argument.")
        shape = np.shape(x) if isinstance(x, np.ndarray) else None
        xa = self._features(x, x_name)
        self._ensure_built(xa, shape)
        self._sync_trainable()  # frozen layers: no update, no regularization
        if self._multi is not None:  # (each output's targets side by side, float32)
            if not self._multi.heads():
                raise ValueError("No loss to compute: every output's loss is None. Received: "
                                 f"loss={self.loss!r}")
            y_joined, shapes = _multi.targets(self._multi, y, xa.shape[0], y_name)
            _multi.resolve(self._multi, shapes)
            if self._metrics is None:
                self._metrics = _multi.build_metrics(self._multi, shapes)
            # Native losses (each output's on its columns) where every output's
            # loss has a kernel; else the per-batch Python path
            heads = _multi.native_heads(self._multi)
            self._net.set_heads(heads or [], y_joined.shape[1])
            self._loss_native = None if heads is None else (_losses.MSE, False)
            self._select_native_metrics()
            return xa, y_joined, None if heads is None else y_joined, None
        self._resolve_loss(_data._array(y, y_name).shape)
        code = self._loss_native[0] if self._loss_native is not None else None
        y_user, y_dense, labels = _data.targets(y, xa.shape[0], self._output_units, code,
                                                y_name, batch_size=batch_size)
        self._resolve_metrics(y_user.shape)
        return xa, y_user, y_dense, labels

    # ------------------------------------------------------------------ fit
    @staticmethod
    def _steps_argument(value: Any, name: str) -> Optional[int]:
        """``steps_per_epoch`` / ``validation_steps`` / ``steps``: None or a
        non-negative integer (0 means "the whole data", as in Keras)."""
        if value is None:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                or value < 0:
            raise ValueError(f"Argument `{name}` must be a positive integer or None. "
                             f"Received: {name}={value!r}")
        return int(value) or None

    @staticmethod
    def _default_batch_size(n: int, steps: Optional[int]) -> int:
        """Keras's array adapter without a batch_size: ceil(samples / steps)
        when steps are given, else 32."""
        return max(1, -(-n // steps)) if steps else 32

    @staticmethod
    def _warn_ran_out_of_data() -> None:
        # Keras's EpochIterator._interrupted_warning, word for word
        warnings.warn(
            "Your input ran out of data; interrupting training. Make sure that your dataset "
            "or generator can generate at least `steps_per_epoch * epochs` batches. You may "
            "need to use the `.repeat()` function when building your dataset.",
            UserWarning, stacklevel=3)

    @staticmethod
    def _first_steps(prepared: Tuple[Any, ...], batch_size: int, steps: Optional[int]
                     ) -> Tuple[Tuple[Any, ...], bool]:
        """The first ``steps`` batches of unshuffled prepared data (evaluate's
        ``steps``, fit's ``validation_steps``), and whether the data has fewer
        batches than that (Keras then warns that the input ran out of data)."""
        if not steps:
            return prepared, False
        n = prepared[0].shape[0]
        if steps * batch_size >= n:
            return prepared, steps > -(-n // batch_size)
        k = steps * batch_size
        return tuple(None if a is None else a[:k] for a in prepared), False

    def fit(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[str, int] = "auto", callbacks: Optional[List[Callback]] = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            class_weight: Any = None, sample_weight: Any = None, initial_epoch: int = 0,
            steps_per_epoch: Optional[int] = None, validation_steps: Optional[int] = None,
            validation_batch_size: Optional[int] = None, validation_freq: Any = 1) -> History:
        """Trains the model; returns a ``History`` whose ``.history`` maps each
        metric (then each ``val_`` metric) to its per-epoch values."""
        # (an optimizer with use_ema: the variables take their averages when
        # training ends, before on_train_end, or when it fails once training
        # began (on_train_begin), as Keras's finally around its epoch loop:
        # whenever epochs > 0; not when the arguments or data are refused)
        self._ema_due = False
        try:
            steps_per_epoch = self._steps_argument(steps_per_epoch, "steps_per_epoch")
            validation_steps = self._steps_argument(validation_steps, "validation_steps")
            verbose_level = _data.verbose(verbose)
            user_batch_size = batch_size
            batch_size = _data.batch_size(batch_size)
            # Keras: `validation_batch_size or batch_size` (the argument as given)
            val_batch_size: Optional[int] = _data.batch_size(
                validation_batch_size, default=batch_size, name="validation_batch_size")
            if validation_batch_size is None and user_batch_size is None:
                val_batch_size = None  # 32, or from validation_steps once the data is known
            if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
                raise ValueError(f"Argument `epochs` must be a non-negative integer. "
                                 f"Received: epochs={epochs!r}")
            if isinstance(validation_freq, (list, tuple)):
                # Keras: validate after the listed (1-based) epochs
                if not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                           for e in validation_freq):
                    raise ValueError("Argument `validation_freq` must be a positive integer or a "
                                     "list of epoch numbers. Received: "
                                     f"validation_freq={validation_freq!r}")
                val_epochs = {int(e) for e in validation_freq}
            elif (isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool)
                  and validation_freq >= 1):
                val_epochs = None
            else:
                raise ValueError("Argument `validation_freq` must be a positive integer or a list of "
                                 f"epoch numbers. Received: validation_freq={validation_freq!r}")
            if validation_split is None:
                validation_split = 0.0
            if (isinstance(validation_split, bool)
                    or not isinstance(validation_split, (int, float, np.integer, np.floating))
                    or not 0.0 <= float(validation_split) < 1.0):
                raise ValueError("Argument `validation_split` must be in [0, 1) (a float). "
                                 f"Received: validation_split={validation_split!r}")
            if (isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer))
                    or initial_epoch < 0):
                raise ValueError("Argument `initial_epoch` must be a non-negative integer. "
                                 f"Received: initial_epoch={initial_epoch!r}")
            if _data.is_stream(x):  # a PyDataset or a generator: a batch loop, as Keras's
                kind = _data.stream_kind(x)
                for arg, value, what in (("y", y, "the targets"),
                                         ("sample_weights", sample_weight, "the sample weights")):
                    if value is not None:  # (Keras's raise_unsupported_arg)
                        raise ValueError(f"When providing `x` as a {kind}, `{arg}` should not be "
                                         f"passed. Instead, {what} should be included as part "
                                         f"of the {kind}.")
                if kind == "generator" and class_weight is not None:
                    raise ValueError("Argument `class_weight` is not supported for Python "
                                     f"generator inputs. Received: class_weight={class_weight}")
                if shuffle and kind == "generator":
                    warnings.warn("`shuffle=True` was passed, but will be ignored since the data "
                                  "`x` was provided as a generator. The generator is expected to "
                                  "yield already-shuffled data.", stacklevel=2)
                if validation_split:
                    raise ValueError("Argument `validation_split` is only supported for NumPy "
                                     "arrays; pass `validation_data` with a PyDataset or a "
                                     "generator.")
                return self._fit_stream(x, epochs, verbose_level, callbacks, validation_data,
                                        shuffle, class_weight, initial_epoch, steps_per_epoch,
                                        validation_steps, validation_batch_size, val_epochs,
                                        validation_freq)
            xa, y_user, y_dense, labels = self._prepare(x, y, batch_size=batch_size)
            sw_raw = self._sample_weights(sample_weight, class_weight, y_user, xa.shape[0])
            sw = self._weighted_samples(sw_raw, xa.shape[0])
            val: Optional[Tuple[Any, Any, Any, Any, Any]] = None
            val_short = False
            if validation_data is not None:
                val = self._prepare_validation(validation_data, val_batch_size or batch_size)
            elif validation_split:
                n_all = xa.shape[0]
                split_at = int(math.floor(n_all * (1.0 - validation_split)))
                if split_at == 0 or split_at == n_all:
                    raise ValueError(
                        f"Training data contains {n_all} samples, which is not sufficient to split "
                        f"it into a validation and training set as specified by "
                        f"`validation_split={validation_split}`. Either provide more data, or a "
                        f"different value for the `validation_split` argument.")
                val = (xa[split_at:], y_user[split_at:],
                       None if y_dense is None else y_dense[split_at:],
                       None if labels is None else labels[split_at:],
                       # (as Keras: class weights apply to the training rows only;
                       # sample weights are split with the rows)
                       self._weighted_samples(
                           None if sw_raw is None or class_weight is not None
                           else sw_raw[split_at:], n_all - split_at))
                xa, y_user = xa[:split_at], y_user[:split_at]
                y_dense = None if y_dense is None else y_dense[:split_at]
                labels = None if labels is None else labels[:split_at]
                sw = None if sw is None else sw[:split_at]

            n = xa.shape[0]
            if user_batch_size is None and steps_per_epoch:
                # Keras's array adapter: no batch_size but steps -> ceil(samples / steps)
                batch_size = max(1, -(-n // steps_per_epoch))
            n_batches = -(-n // batch_size)  # one pass over the data
            # batches per epoch: Keras's progress-bar target and params["steps"]
            steps = steps_per_epoch or n_batches
            if val is not None:
                if val_batch_size is None:
                    val_batch_size = self._default_batch_size(val[0].shape[0], validation_steps)
                val, val_short = self._first_steps(val, val_batch_size, validation_steps)
            val_bs: int = val_batch_size or batch_size  # (set above whenever val is)
            cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
                callbacks, add_history=True, add_progbar=verbose_level != 0, model=self,
                verbose=verbose_level, epochs=epochs, steps=steps)
            batch_hooks = cbs.needs_batch_hooks("train")
            py_metrics = [m for i, m in enumerate(self._metrics or []) if i not in self._native_metrics]
            native_loss = self._loss_native is not None
            need_ypred = native_loss and bool(py_metrics)
            ypred = np.empty((n, self._output_units), np.float32) if need_ypred else None

            self.stop_training = False
            self._initial_epoch: Optional[int] = None
            cbs.on_train_begin()
            self._ema_due = epochs > 0
            # (a callback may resume an interrupted run there: BackupAndRestore)
            if self._initial_epoch:
                initial_epoch = int(self._initial_epoch)
            logs: Logs = {}
            # With steps_per_epoch, an epoch goes on where the previous one stopped
            # in the same pass (same shuffle), as Keras's EpochIterator does; a
            # new pass (and a new shuffle) starts once the data is used up.
            cursor = 0  # batches of the current pass already trained
            order: Optional[np.ndarray] = None
            if (native_loss and not batch_hooks and cbs.progbar is None and val is None
                    and not steps_per_epoch and not py_metrics and not cbs.nan_terminators()
                    and all(type(cb) is History for cb in cbs.callbacks)):
                # Nothing needs Python between epochs: whole epochs run natively
                logs = self._fit_epochs_native(xa, y_dense, labels, sw, shuffle, batch_size, steps,
                                               initial_epoch, epochs, cbs)
                return self._end_training(cbs, logs)
            for epoch in range(initial_epoch, epochs):
                for m in self._metrics or []:
                    m.reset_state()
                cbs.on_epoch_begin(epoch)
                # one draw per epoch seeds the dropout masks, and the shuffle of a new pass
                seed = int(np.random.randint(0, 2**63 - 1))
                if cursor == 0:
                    order = _core.permutation(n, seed) if shuffle else None
                self._net.set_seed(seed ^ 0x5DEECE66D)
                stats: Dict[str, Any] = {"loss_sum": 0.0, "seen": 0,
                                         "metric_sums": [0.0] * len(self._native_metrics)}
                run = min(steps, n_batches - cursor)
                if native_loss:
                    done = self._run_epoch_native(xa, y_user, y_dense, labels, sw, order, batch_size,
                                                  run, stats, ypred, py_metrics, cbs, batch_hooks,
                                                  first=cursor)
                else:
                    done = self._run_epoch_python(xa, y_user, sw, order, batch_size, run, stats, cbs,
                                                  batch_hooks, first=cursor)
                if steps_per_epoch:
                    if run < steps and not self.stop_training:
                        self._warn_ran_out_of_data()
                    cursor += done
                    if cursor >= n_batches:
                        cursor = 0
                logs = self._logs(stats, native_metrics=native_loss)
                if (verbose_level != 0 and not math.isfinite(logs["loss"])
                        and not cbs.nan_terminators()):
                    warnings.warn(f"Epoch {epoch + 1}: the training loss is {logs['loss']}; the "
                                  "weights have probably diverged (lower the learning rate, or "
                                  "add callbacks.TerminateOnNaN to stop).", RuntimeWarning,
                                  stacklevel=2)
                if val is not None and _validation_due(epoch, val_epochs, validation_freq):
                    if val_short:
                        self._warn_ran_out_of_data()
                    logs = self._with_validation(logs, val, val_bs, cbs)
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            return self._end_training(cbs, logs)
        finally:
            self._finalize_ema()

    def _finalize_ema(self) -> None:
        """Keras's optimizer.finalize_variable_values at the end of fit (once)."""
        if getattr(self, "_ema_due", False):
            self._ema_due = False
            opt = getattr(self, "optimizer", None)
            if opt is not None and getattr(opt, "use_ema", False):
                opt.finalize_variable_values(None)

    def _end_training(self, cbs: Any, logs: Any) -> History:
        """fit's end: the EMA finalization, on_train_end, the History."""
        self._finalize_ema()
        cbs.on_train_end(logs)
        return cbs.history if cbs.history is not None else History()

    def _fit_stream(self, data: Any, epochs: int, verbose_level: int, callbacks: Any,
                    validation_data: Any, shuffle: bool, class_weight: Any, initial_epoch: int,
                    steps_per_epoch: Optional[int], validation_steps: Optional[int],
                    validation_batch_size: Optional[int], val_epochs: Any,
                    validation_freq: Any) -> History:
        """fit on a PyDataset or a generator: each batch through the engine
        (one native step), callbacks per batch, as Keras's epoch iterator."""
        stream = _data.BatchStream(data)
        steps = steps_per_epoch or stream.num_batches
        cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=True, add_progbar=verbose_level != 0, model=self,
            verbose=verbose_level, epochs=epochs, steps=steps)
        self.stop_training = False
        self._initial_epoch = None
        cbs.on_train_begin()
        self._ema_due = epochs > 0
        if self._initial_epoch:
            initial_epoch = int(self._initial_epoch)
        logs: Logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cbs.on_epoch_begin(epoch)
            stream.on_epoch_begin()
            if self._net is not None:
                self._net.set_seed(int(np.random.randint(0, 2**63 - 1)) ^ 0x5DEECE66D)
            stats: Dict[str, Any] = {"loss_sum": 0.0, "seen": 0,
                                     "metric_sums": [0.0] * len(self._native_metrics)}
            step = 0
            for batch in stream.batches(shuffle, steps_per_epoch):
                cbs.on_train_batch_begin(step)
                xb, yb, swb = _data.unpack_batch(batch)
                if yb is None:
                    raise ValueError("The batches given to fit must hold targets: (x, y) or "
                                     "(x, y, sample_weight). Received a batch of x only.")
                self._train_stream_batch(xb, yb, swb, class_weight, stats)
                cbs.on_train_batch_end(step, self._logs(stats, self._loss_native is not None))
                step += 1
                if self.stop_training:
                    break
            stream.on_epoch_end()
            if step == 0 or (steps_per_epoch and step < steps_per_epoch
                             and not self.stop_training):
                self._warn_ran_out_of_data()  # (as Keras: training stops here)
                if step == 0:
                    break
                self.stop_training = True
            logs = self._logs(stats, self._loss_native is not None)
            if validation_data is not None and _validation_due(epoch, val_epochs,
                                                               validation_freq):
                if _data.is_stream(validation_data):
                    vx, vy, vsw, vbs = _data.collect_stream(validation_data, validation_steps,
                                                            "validation_data")
                    val = self._prepare_validation((vx, vy, vsw))
                else:
                    val = self._prepare_validation(validation_data)
                    vbs = 32
                bs = _data.batch_size(validation_batch_size, default=vbs,
                                      name="validation_batch_size")
                logs = self._with_validation(logs, val, bs, cbs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return self._end_training(cbs, logs)

    def _with_validation(self, logs: Logs, val: Tuple[Any, ...], batch_size: int,
                         cbs: Any) -> Logs:
        """The epoch's logs with the validation results (``val_`` keys, all
        keys sorted as Keras-JAX's logs), run through fit's callbacks (Keras's
        fit evaluates with them: the test hooks run)."""
        cbs.on_test_begin()
        xv, y_user, y_dense, labels, sw = val
        val_logs = self._evaluate_prepared(xv, y_user, y_dense, labels, sw,
                                           batch_size=batch_size, cbs=cbs)
        cbs.on_test_end(val_logs)
        logs.update({"val_" + k: v for k, v in val_logs.items()})
        return dict(sorted(logs.items()))

    def _train_stream_batch(self, x: Any, y: Any, sample_weight: Any, class_weight: Any,
                            stats: Dict[str, Any]) -> None:
        """One update step on one batch of a stream, its loss and metrics
        added to the epoch's running ``stats`` (train_on_batch's step)."""
        xa, y_user, y_dense, labels = self._prepare(x, y)
        n = xa.shape[0]
        sw = self._weighted_samples(
            self._sample_weights(sample_weight, class_weight, y_user, n), n)
        if len(stats["metric_sums"]) != len(self._native_metrics):
            stats["metric_sums"] = [0.0] * len(self._native_metrics)
        native = self._loss_native is not None
        py_metrics = [m for i, m in enumerate(self._metrics or [])
                      if not native or i not in self._native_metrics]
        if native:
            ypred = np.empty((n, self._output_units), np.float32) if py_metrics else None
            self._net.train_batches(xa, y_dense, labels, None, n, 0, 1, self._native_loss_code,
                                    stats, ypred, False, sw,
                                    self._compiled_optimizer._learning_rates(1))
        else:
            ypred = self._net.forward_train(xa)
            y_loss = y_user.astype(np.float32) if y_user.dtype.kind != "f" else y_user
            value, grad = self._python_loss_and_grad(y_loss, ypred, sw)
            self._compiled_optimizer._sync_step_lr()
            penalty = self._net.regularization_penalty() + self._net.last_activity_penalty()
            self._net.backward_update(np.ascontiguousarray(grad, dtype=np.float32))
            stats["loss_sum"] += (float(value) + penalty) * n
            stats["seen"] += n
        self._update_metrics(py_metrics, y_user, ypred, sw)

    def _fit_epochs_native(self, xa, y_dense, labels, sw, shuffle, batch_size, steps,
                           initial_epoch, epochs, cbs) -> Logs:
        """fit's epochs when only History listens: several epochs per engine
        call (chunks of ~0.25 s, for Ctrl-C), with the per-epoch seeds,
        shuffles and learning rates fit's loop would use; History then gets
        each epoch's logs. Returns the last epoch's logs."""
        logs: Logs = {}
        epoch, chunk = initial_epoch, 1
        while epoch < epochs:
            count = min(chunk, epochs - epoch)
            # one draw per epoch, as fit's loop: the shuffle and the dropout masks
            seeds = np.array([int(np.random.randint(0, 2**63 - 1)) for _ in range(count)],
                             dtype=np.int64)
            t0 = time.perf_counter()
            loss_sums, seen, metric_sums = self._net.train_epochs(
                xa, y_dense, labels, seeds, bool(shuffle), batch_size, self._native_loss_code, sw,
                self._compiled_optimizer._learning_rates(count * steps))
            elapsed = time.perf_counter() - t0
            for k in range(count):
                # (History's on_epoch_begin does nothing; the metric objects
                # are not used by the engine's metrics: reset as fit's loop)
                if k == 0:
                    for m in self._metrics or []:
                        m.reset_state()
                logs = self._logs({"loss_sum": float(loss_sums[k]), "seen": int(seen[k]),
                                   "metric_sums": metric_sums[k].tolist()})
                cbs.on_epoch_end(epoch, logs)
                epoch += 1
            chunk = max(1, min(int(0.25 * count / max(elapsed, 1e-7)), 4 * chunk))
        return logs

    def _prepare_validation(self, validation_data: Any,
                            batch_size: Optional[int] = None
                            ) -> Tuple[Any, Any, Any, Any, Any]:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "Argument `validation_data` must be a tuple (x_val, y_val) or "
                f"(x_val, y_val, val_sample_weight). Received: {type(validation_data).__name__}"
                + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
        prepared = self._prepare(validation_data[0], validation_data[1], "validation_data[0]",
                                 "validation_data[1]", batch_size=batch_size)
        vsw = validation_data[2] if len(validation_data) == 3 else None
        n = prepared[0].shape[0]
        x, y_user, y_dense, labels = prepared
        return x, y_user, y_dense, labels, self._weighted_samples(
            self._sample_weights(vsw, None, y_user, n), n)

    def _run_epoch_native(self, xa, y_user, y_dense, labels, sw, order, batch_size, steps,
                          stats, ypred, py_metrics, cbs, batch_hooks, first: int = 0) -> int:
        """Trains batches ``first .. first + steps - 1`` of the pass ``order``
        (None: unshuffled) in native chunks; Python runs between chunks only
        for the progress bar, and per batch only for batch hooks. Callbacks
        see the batch numbers of the epoch (from 0). Returns the batches run."""
        net = self._net
        loss_code = self._native_loss_code
        chunk = 1
        # Seconds of native work between returns to Python: enough to keep
        # Ctrl-C and the progress bar responsive, few enough to cost nothing.
        target_s = 0.05 if cbs.progbar is not None and cbs.progbar.verbose == 1 else 0.25
        terminators = [] if batch_hooks else cbs.nan_terminators()
        batch = 0
        while batch < steps:
            count = 1 if batch_hooks else min(chunk, steps - batch)
            if batch_hooks:
                cbs.on_train_batch_begin(batch)
            self._claim_weights()  # (a callback may have run a model sharing layers)
            t0 = time.perf_counter()
            done = net.train_batches(xa, y_dense, labels, order, batch_size, first + batch,
                                     count, loss_code, stats, ypred, bool(terminators), sw,
                                     self._compiled_optimizer._learning_rates(count))
            elapsed = time.perf_counter() - t0
            if py_metrics:
                self._update_py_metrics(py_metrics, y_user, sw, ypred, order, first + batch,
                                        done, batch_size)
            batch += done
            if batch_hooks:
                cbs.on_train_batch_end(batch - 1, self._logs(stats))
            else:
                logs = self._logs(stats) if (cbs.progbar is not None or terminators) else {}
                if cbs.progbar is not None:
                    cbs.progbar.on_train_batch_end(batch - 1, logs=logs)
                if terminators and not math.isfinite(stats["loss_sum"]):
                    for cb in terminators:
                        cb.on_train_batch_end(batch - 1, logs=logs)
            if not batch_hooks:
                per_batch = max(elapsed / max(done, 1), 1e-7)
                chunk = max(1, min(int(target_s / per_batch), 4 * chunk, steps))
            if self.stop_training:
                break
            if done == 0:  # the engine found no batch left in the pass
                break
        return batch

    @staticmethod
    def _update_metrics(metrics, y_true, y_pred, sw) -> None:
        """One batch's update; weighted metrics get the sample weights."""
        for m in metrics:
            if getattr(m, "_weighted", False):
                m.update_state(y_true, y_pred, sample_weight=sw)
            else:
                m.update_state(y_true, y_pred)

    def _update_py_metrics(self, py_metrics, y_user, sw, ypred, order, first, count,
                           batch_size) -> None:
        n = ypred.shape[0]
        for b in range(first, first + count):
            s, e = b * batch_size, min(n, (b + 1) * batch_size)
            if s >= n:
                break
            rows = order[s:e] if order is not None else slice(s, e)
            self._update_metrics(py_metrics, y_user[rows], ypred[s:e],
                                 None if sw is None else sw[rows])

    def _run_epoch_python(self, xa, y_user, sw, order, batch_size, steps, stats, cbs,
                          batch_hooks, first: int = 0) -> int:
        """Per-batch path for losses without a native kernel: native forward
        and backward, loss value and gradient from the loss in Python.
        Trains batches ``first .. first + steps - 1`` of the pass; returns
        how many ran."""
        net, n = self._net, xa.shape[0]
        metrics = self._metrics or []
        y_loss = y_user.astype(np.float32) if y_user.dtype.kind != "f" else y_user
        for batch in range(steps):
            if batch_hooks:
                cbs.on_train_batch_begin(batch)
            s, e = (first + batch) * batch_size, min(n, (first + batch + 1) * batch_size)
            if s >= n:
                return batch
            idx = order[s:e] if order is not None else slice(s, e)
            xb = np.ascontiguousarray(xa[idx])
            yb = y_loss[idx]
            self._claim_weights()
            yp = net.forward_train(xb)
            value, grad = self._python_loss_and_grad(yb, yp, None if sw is None else sw[idx])
            self._compiled_optimizer._sync_step_lr()
            # (the weights' penalty before the update, as Keras; the outputs' of this batch)
            penalty = net.regularization_penalty() + net.last_activity_penalty()
            net.backward_update(np.ascontiguousarray(grad, dtype=np.float32))
            stats["loss_sum"] += (float(value) + penalty) * (e - s)
            stats["seen"] += e - s
            self._update_metrics(metrics, y_user[idx], yp, None if sw is None else sw[idx])
            logs = self._logs(stats, native_metrics=False)
            if batch_hooks:
                cbs.on_train_batch_end(batch, logs)
            elif cbs.progbar is not None:
                cbs.progbar.on_train_batch_end(batch, logs=logs)
            if self.stop_training:
                return batch + 1
        return steps

    def _python_loss_and_grad(self, y_true: Any, y_pred: np.ndarray,
                              sw: Optional[np.ndarray]) -> Tuple[float, np.ndarray]:
        """Value and dL/dy_pred of a loss without a native kernel, with Keras's
        reduction and sample weights: from the loss's own ``gradient`` method
        when it has one (see ``losses.Loss``), else differentiated by
        fastdense's autodiff."""
        if self._multi is not None:
            return _multi.loss_and_grad(self._multi, self._one_loss_and_grad, y_true, y_pred,
                                        sw)
        obj = self._loss_obj
        assert obj is not None  # (compiled with a loss)
        return self._one_loss_and_grad(obj, y_true, y_pred, sw)

    @staticmethod
    def _one_loss_and_grad(obj: _losses.Loss, y_true: Any, y_pred: np.ndarray,
                           sw: Optional[np.ndarray]) -> Tuple[float, np.ndarray]:
        """_python_loss_and_grad for one loss object."""
        from ._autodiff import loss_and_grad
        if _losses.has_gradient(obj):
            return _losses.value_and_gradient(obj, y_true, y_pred, sw)
        if obj.reduction in ("sum_over_batch_size", "mean"):
            return loss_and_grad(obj.call, y_true, y_pred, sw)
        if obj.reduction in (None, "none"):
            shape = np.shape(obj(y_true, y_pred, sample_weight=sw))  # type: ignore[misc]
            if shape != ():  # (Keras: JAX's grad of a non-scalar)
                raise TypeError("Gradient only defined for scalar-output functions. Output had "
                                f"shape: {shape}.")
        return loss_and_grad(lambda t, p: obj(t, p, sample_weight=sw), y_true, y_pred)  # type: ignore[misc]

    def _logs(self, stats: Dict[str, Any], native_metrics: bool = True) -> Logs:
        """Epoch-so-far averages, keys sorted as Keras's logs are."""
        # (the averages rounded to float32, as Keras's float32 metric results
        # reach its logs: the engine sums in float64)
        seen = max(int(stats["seen"]), 1)
        logs: Logs = {"loss": float(np.float32(float(stats["loss_sum"]) / seen))}
        native = dict(zip(self._native_metrics, stats["metric_sums"])) if native_metrics else {}
        for i, m in enumerate(self._metrics or []):
            if i in native:
                logs[m.name] = float(np.float32(float(native[i]) / seen))
            else:  # (a per-class result, e.g. F1Score(average=None), stays an array)
                v = m.result()
                logs[m.name] = float(v) if np.ndim(v) == 0 else np.asarray(v, np.float32)
        logs = dict(sorted(logs.items()))
        self._metrics_result = logs
        return logs

    def get_metrics_result(self) -> Dict[str, float]:
        """The loss and metrics as last computed (the last batch's running
        averages of fit, its validation, evaluate or an ``*_on_batch`` call),
        as Keras's ``get_metrics_result()``; empty before any."""
        return dict(getattr(self, "_metrics_result", {}))

    @property
    def dtype(self) -> str:
        """The dtype of the model's variables and computations (float32)."""
        return "float32"

    @property
    def inputs(self) -> List[InputSpec]:
        """The model's symbolic input, as Keras's ``model.inputs`` (once the
        input shape is known)."""
        shape = getattr(self, "_input_shape", None)
        if shape is None:
            raise AttributeError(f"Model '{self.name}' has no defined inputs yet: build it or "
                                 "give it an Input first.")
        traced = self._seq_tensors
        if traced is not None and self._net is not None:
            return [traced[0]]
        return [InputSpec(tuple(shape), getattr(self, "_input_layer_name", None)
                          or "keras_tensor")]

    @property
    def outputs(self) -> List[InputSpec]:
        """The model's symbolic output, as Keras's ``model.outputs``."""
        traced = self._seq_tensors
        if traced is not None and self._net is not None:
            return [traced[1]]
        inputs = self.inputs
        shape = tuple(inputs[0].shape)
        for layer in self._layers:
            shape = tuple(layer.compute_output_shape(shape))
        return [InputSpec(shape, "keras_tensor_1")]

    @property
    def input(self) -> KerasTensor:
        """The model's symbolic input (``inputs[0]``), as Keras's ``model.input``."""
        return self.inputs[0]

    @property
    def output(self) -> KerasTensor:
        """The model's symbolic output (``outputs[0]``), as Keras's ``model.output``."""
        return self.outputs[0]

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None,
                 verbose: Union[str, int] = "auto", sample_weight: Any = None,
                 steps: Optional[int] = None, callbacks: Optional[List[Callback]] = None,
                 return_dict: bool = False, **kwargs: Any) -> Any:
        """Loss and metrics on the given data: a scalar when there is only the
        loss, else ``[loss, *metrics]`` (or a dict with ``return_dict=True``)."""
        if kwargs:
            raise ValueError(f"Arguments not recognized: {kwargs}")
        if _data.is_stream(x):  # a PyDataset or a generator: its batches, concatenated
            if y is not None or sample_weight is not None:
                raise ValueError("Arguments `y` and `sample_weight` are not supported when `x` "
                                 "is a PyDataset or a generator: its batches give them.")
            x, y, sample_weight, first = _data.collect_stream(
                x, self._steps_argument(steps, "steps"), "evaluate")
            batch_size, steps = batch_size or first, None
        steps = self._steps_argument(steps, "steps")
        verbose_level = _data.verbose(verbose)
        user_batch_size = batch_size
        batch_size = _data.batch_size(batch_size)
        xa, y_user, y_dense, labels = self._prepare(x, y, batch_size=batch_size)
        sw = self._weighted_samples(
            self._sample_weights(sample_weight, None, y_user, xa.shape[0]), xa.shape[0])
        if user_batch_size is None:
            batch_size = self._default_batch_size(xa.shape[0], steps)
        # `steps`: only the first `steps` batches (Keras warns when there are fewer)
        (xa, y_user, y_dense, labels, sw), short = self._first_steps(
            (xa, y_user, y_dense, labels, sw), batch_size, steps)
        if short:
            self._warn_ran_out_of_data()
        n_steps = steps or -(-xa.shape[0] // batch_size)
        cbs = CallbackList(callbacks, add_progbar=verbose_level != 0, model=self,
                           verbose=verbose_level, epochs=1, steps=n_steps)
        cbs.on_test_begin()
        logs = self._evaluate_prepared(xa, y_user, y_dense, labels, sw, batch_size=batch_size,
                                       cbs=cbs)
        if cbs.progbar is not None:
            cbs.progbar.on_test_batch_end(n_steps - 1, logs=logs)
        cbs.on_test_end(logs)
        return self._on_batch_result(logs, return_dict)

    def _evaluate_prepared(self, xa, y_user, y_dense, labels, sw, batch_size: int,
                           cbs: Optional[CallbackList] = None) -> Logs:
        """Loss and metrics over prepared arrays in batches: in one native call,
        or batch by batch when a callback in ``cbs`` has test-batch hooks (which
        then get Keras's running logs)."""
        metrics = self._metrics or []
        for m in metrics:
            m.reset_state()
        native_loss = self._loss_native is not None
        stats: Dict[str, Any] = {"loss_sum": 0.0, "seen": 0,
                                 "metric_sums": [0.0] * len(self._native_metrics)}
        n = xa.shape[0]
        if cbs is None or not cbs.needs_batch_hooks("test"):
            self._evaluate_rows(xa, y_user, y_dense, labels, sw, batch_size, stats)
            return self._logs(stats, native_metrics=native_loss)
        for batch, s in enumerate(range(0, n, batch_size)):
            e = min(n, s + batch_size)
            cbs.on_test_batch_begin(batch)
            self._evaluate_rows(xa[s:e], y_user[s:e], None if y_dense is None else y_dense[s:e],
                                None if labels is None else labels[s:e],
                                None if sw is None else sw[s:e], batch_size, stats)
            cbs.on_test_batch_end(batch, self._logs(stats, native_metrics=native_loss))
        return self._logs(stats, native_metrics=native_loss)

    def _evaluate_rows(self, xa, y_user, y_dense, labels, sw, batch_size: int,
                       stats: Dict[str, Any]) -> None:
        """Adds the loss and metric sums of these rows (in batches) to ``stats``."""
        metrics = self._metrics or []
        native_loss = self._loss_native is not None
        py_metrics = [m for i, m in enumerate(metrics)
                      if not native_loss or i not in self._native_metrics]
        n = xa.shape[0]
        need_ypred = bool(py_metrics) or not native_loss
        ypred = np.empty((n, self._output_units), np.float32) if need_ypred else None
        if native_loss:
            part = self._net.evaluate(xa, y_dense, labels, batch_size, self._native_loss_code, ypred,
                                      sw)
            stats["loss_sum"] += part["loss_sum"]
            stats["metric_sums"] = [a + b for a, b in zip(stats["metric_sums"],
                                                          part["metric_sums"])]
        else:
            ypred = self._net.predict(xa, batch_size)
            y_loss = y_user.astype(np.float32) if y_user.dtype.kind != "f" else y_user
            for s in range(0, n, batch_size):
                e = min(n, s + batch_size)
                if self._multi is not None:
                    value = _multi.loss_value(self._multi, y_loss[s:e], ypred[s:e],
                                              None if sw is None else sw[s:e])
                else:
                    value = _losses.reduce_values(
                        self._loss_obj.call(y_loss[s:e], ypred[s:e]),  # type: ignore[union-attr]
                        None if sw is None else sw[s:e], self._loss_obj.reduction)  # type: ignore[union-attr]
                # (an unreduced loss is averaged, as Keras's loss tracker does)
                stats["loss_sum"] += (float(np.mean(value)) + self._net.regularization_penalty()
                                      ) * (e - s)
            stats["loss_sum"] += self._net.activity_penalty_sum(xa, batch_size)
        stats["seen"] += n
        if py_metrics:
            assert ypred is not None  # (need_ypred)
            for s in range(0, n, batch_size):
                self._update_metrics(py_metrics, y_user[s:s + batch_size],
                                     ypred[s:s + batch_size],
                                     None if sw is None else sw[s:s + batch_size])

    # ------------------------------------------------------------------ predict
    def predict(self, x: Any, batch_size: Optional[int] = None, verbose: Union[str, int] = "auto",
                steps: Optional[int] = None, callbacks: Optional[List[Callback]] = None) -> Any:
        """Model outputs for ``x`` as a float32 array of shape (samples, units);
        for several outputs, a list of such arrays (a dict for outputs given as
        a dict), as Keras returns them."""
        out = self._predict_array(x, batch_size, verbose, steps, callbacks)
        return out if self._outs is None else self._outs.split(out)

    def _predict_array(self, x: Any, batch_size: Optional[int], verbose: Union[str, int],
                       steps: Optional[int], callbacks: Optional[List[Callback]]) -> np.ndarray:
        """predict's engine output (several outputs side by side)."""
        if (verbose == 0 and callbacks is None and steps is None and type(x) is np.ndarray
                and (batch_size is None or (type(batch_size) is int and 0 < batch_size < 2**62))):
            # the common embedded call: float32 rows the engine takes as they
            # are (checked natively, NaN included); anything else, or any
            # error, goes the long way below for conversion or a clear message
            out = self._predict_fast(x, batch_size or 32)
            if out is not None:
                return out
        if _data.is_stream(x):  # a PyDataset or a generator: its batches' x, concatenated
            x, _, _, first = _data.collect_stream(x, self._steps_argument(steps, "steps"),
                                                  "predict")
            batch_size, steps = batch_size or first, None
        steps = self._steps_argument(steps, "steps")
        verbose_level = _data.verbose(verbose)
        user_batch_size = batch_size
        batch_size = _data.batch_size(batch_size)
        shape = np.shape(x) if isinstance(x, np.ndarray) else None
        xa = self._features(x)
        self._ensure_built(xa, shape)
        if steps:  # the first `steps` batches, as Keras's array adapter gives them
            if user_batch_size is None:
                batch_size = self._default_batch_size(xa.shape[0], steps)
            (xa,), short = self._first_steps((xa,), batch_size, steps)
            if short:
                self._warn_ran_out_of_data()
        if verbose_level == 0 and not callbacks:
            return self._net.predict(xa, batch_size)
        n_steps = -(-xa.shape[0] // batch_size)
        cbs = CallbackList(callbacks, add_progbar=verbose_level != 0, model=self,
                           verbose=verbose_level, epochs=1, steps=n_steps)
        cbs.on_predict_begin()
        if cbs.needs_batch_hooks("predict"):
            # batch by batch, as Keras: logs {"outputs": that batch's predictions}
            parts = []
            for step in range(n_steps):
                cbs.on_predict_batch_begin(step)
                part = self._net.predict(xa[step * batch_size:(step + 1) * batch_size],
                                         batch_size)
                parts.append(part)
                cbs.on_predict_batch_end(step, {"outputs": part})
            out = np.concatenate(parts, axis=0)
        else:
            out = self._net.predict(xa, batch_size)
            if cbs.progbar is not None:
                cbs.progbar.on_predict_batch_end(n_steps - 1)
        cbs.on_predict_end()
        return out

    def _predict_fast(self, x: np.ndarray, batch_size: int) -> Optional[np.ndarray]:
        """The engine's predictions for a ready float32 (samples, features)
        array, or None when x needs the full path (conversion, an error)."""
        net = self._net
        if (net is None or x.dtype != np.float32 or x.ndim != 2
                or len(self._slices) > 1  # (several inputs: a list or dict)
                or isinstance(self._layers[0], _INPUT_STAGE)):  # (those run in numpy first)
            return None
        self._claim_weights()
        try:
            return net.predict(x, batch_size, True)
        except (TypeError, ValueError):
            return None

    def predict_on_batch(self, x: Any) -> Any:
        out = self._predict_on_batch(x)
        return out if self._outs is None else self._outs.split(out)

    def _predict_on_batch(self, x: Any) -> np.ndarray:
        if type(x) is np.ndarray:
            out = self._predict_fast(x, max(1, x.shape[0]) if x.ndim else 1)
            if out is not None:
                return out
        shape = np.shape(x) if isinstance(x, np.ndarray) else None
        xa = self._features(x)
        self._ensure_built(xa, shape)
        return self._net.predict(xa, max(1, xa.shape[0]))

    # ------------------------------------------------------------------ on batch
    def reset_metrics(self) -> None:
        """Resets the state of the compiled metrics."""
        for m in self._metrics or []:
            m.reset_state()
        # (what get_metrics_result() then reports, as Keras: the reset values)
        last = getattr(self, "_metrics_result", None)
        if last:
            self._metrics_result = {k: np.zeros_like(v) if np.ndim(v) else 0.0
                                    for k, v in last.items()}

    def _on_batch_result(self, logs: Logs, return_dict: bool) -> Any:
        if return_dict:
            return logs
        if self._multi is not None:
            ordered = _multi.ordered(self._multi, logs)
        else:
            ordered = [logs["loss"]] + [logs[m.name] for m in self._metrics or []]
        return ordered[0] if len(ordered) == 1 else ordered

    def train_on_batch(self, x: Any = None, y: Any = None, sample_weight: Any = None,
                       class_weight: Any = None, return_dict: bool = False) -> Any:
        """One update step on all of ``x``; returns that batch's loss (and
        metrics, computed before the update), as Keras 3 does."""
        self.reset_metrics()
        stats: Dict[str, Any] = {"loss_sum": 0.0, "seen": 0, "metric_sums": []}
        self._train_stream_batch(x, y, sample_weight, class_weight, stats)
        return self._on_batch_result(
            self._logs(stats, native_metrics=self._loss_native is not None), return_dict)

    def test_on_batch(self, x: Any = None, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """Loss (and metrics) on all of ``x``, without training."""
        xa, y_user, y_dense, labels = self._prepare(x, y)
        sw = self._weighted_samples(
            self._sample_weights(sample_weight, None, y_user, xa.shape[0]), xa.shape[0])
        logs = self._evaluate_prepared(xa, y_user, y_dense, labels, sw,
                                       batch_size=max(1, xa.shape[0]))
        return self._on_batch_result(logs, return_dict)

    def summary(self, line_length: Optional[int] = None, positions: Any = None,
                print_fn: Any = None, expand_nested: bool = False, show_trainable: bool = False,
                layer_range: Any = None) -> None:
        """Prints Keras's table of layers, output shapes and parameter counts."""
        from ._summary import summary_text
        text = summary_text(self, line_length, positions, show_trainable, expand_nested)
        if print_fn is None:
            print(text, end="")
        else:
            print_fn(text)

    def __call__(self, inputs: Any, training: Optional[bool] = None,
                 mask: Any = None) -> Any:
        """Direct forward pass on a numpy array. With ``training=True``, as in
        Keras: Dropout and the noise layers draw fresh noise each call, BatchNormalization
        normalizes with the batch's statistics and moves its moving mean and
        variance (a frozen one keeps inference mode); no weight changes."""
        if isinstance(inputs, (list, tuple)) and any(isinstance(t, KerasTensor)
                                                     for t in inputs):
            raise NotImplementedError(f"fastdense models take one input; model '{self.name}' "
                                      f"received {len(inputs)}.")
        if isinstance(inputs, KerasTensor):
            return self._symbolic_call(inputs)
        if not training or not any(isinstance(l, (Dropout, BatchNormalization, _Noise))
                                   for l in self._layers):
            return self.predict_on_batch(inputs)
        shape = np.shape(inputs) if isinstance(inputs, np.ndarray) else None
        xa = self._features(inputs)
        self._ensure_built(xa, shape)
        self._sync_trainable()
        out = self._net.forward_train(xa)
        return out if self._outs is None else self._outs.split(out)

    def _symbolic_call(self, inputs: KerasTensor) -> KerasTensor:
        """The model applied to a symbolic tensor, as one layer of a functional
        model: built for the tensor's shape, its output recorded."""
        shape = tuple(inputs.shape)
        if self._subclassed() and not self._layers:
            self._trace_call(shape)
        if self._outs is not None:
            raise NotImplementedError(f"Model '{self.name}' has several outputs; fastdense "
                                      "nests models with one output.")
        if self._input_shape is not None and tuple(self._input_shape[1:]) != shape[1:]:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                f"shape={(None,) + tuple(self._input_shape[1:])}, found shape={shape}")
        if self._net is None and self._dense_layers:
            self.build(shape)
        out = KerasTensor(self.compute_output_shape(shape), unique_name("keras_tensor"),
                          "float32")
        out._history = (self, inputs)  # type: ignore[assignment]
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # ------------------------------------------------------------------ graphs
    @property
    def _multi_input(self) -> bool:
        return len(self._input_tensors) > 1

    def _set_graph(self, order: List[Tuple[Any, List[KerasTensor], KerasTensor]],
                   inputs: List[KerasTensor], out: KerasTensor) -> None:
        """Takes a traced graph (``_layer_graph``'s order, from ``inputs`` to
        ``out``), checks its layers and sets the model's layer lists from it:
        ``layers`` in Keras's order, the engine's (nested models' layers in
        their place) in the same order."""
        graph = [c for c in order if c[1]]
        # (the join of several outputs runs in the engine, but is none of the
        # model's layers: _graph_order, which the summary and config read,
        # leaves it out)
        self._graph_order = [c for c in order if not isinstance(c[0], _OutputJoin)]
        self._graph = graph
        # (each call's node index, as Keras numbers a layer's calls: in the order
        # they were made; 0 for a layer called once)
        outs_by_layer: Dict[int, List[KerasTensor]] = {}
        for layer, _srcs, t in order:
            outs_by_layer.setdefault(id(layer), []).append(t)
        self._node_of = {id(t): k for ts in outs_by_layer.values()
                         for k, t in enumerate(sorted(ts, key=lambda u: u._seq))}
        self._input_tensors = list(inputs)
        self._input_tensor, self._output_tensor = inputs[0], out
        top: List[Any] = []
        flat: List[Layer] = []
        for layer, srcs, out in graph:
            if any(len(x.shape) != 2 for x in srcs) or len(out.shape) != 2:
                if not isinstance(layer, (Flatten, Reshape) + _INPUT_STAGE):
                    raise NotImplementedError(
                        f"Layer '{layer.name}' of a functional graph works on inputs of shape "
                        f"{[tuple(x.shape) for x in srcs]}; fastdense runs graphs on 2D "
                        "activations (batch, features): flatten the input first.")
            if isinstance(layer, Model):
                if layer._subclassed() and not layer._layers:
                    raise NotImplementedError(f"Model '{layer.name}' has not been traced.")
                if layer._graph is not None:
                    raise NotImplementedError(
                        f"Model '{layer.name}' is itself a graph; fastdense nests chains of "
                        "layers in a graph.")
                members: List[Layer] = list(layer._layers)
            else:
                members = [layer]
            for m in members:
                if isinstance(m, Concatenate) and m.axis not in (-1, 1):
                    raise NotImplementedError(
                        f"fastdense concatenates along the features (axis=-1) of 2D "
                        f"activations. Received: Concatenate '{m.name}' with axis={m.axis}")
                if not isinstance(m, (Dense, BatchNormalization, _RowNormalization, Dropout,
                                      _Noise, ActivityRegularization, PReLU, Flatten, Reshape,
                                      Activation, Identity, _Merge) + _INPUT_STAGE):
                    raise NotImplementedError(f"fastdense does not run {type(m).__name__} "
                                              f"layers ('{m.name}') in a functional graph.")
                if any(m is f for f in flat):
                    # (applied again: a Dense layer's stages share its weights; the
                    # layers without weights run again as they are)
                    if isinstance(layer, Model) or isinstance(
                            m, (BatchNormalization, _RowNormalization, PReLU) + _INPUT_STAGE):
                        raise NotImplementedError(
                            f"Layer '{m.name}' is applied more than once; fastdense applies "
                            "Dense layers and layers without weights several times, not "
                            f"{type(m).__name__} layers or models.")
                    continue
                flat.append(m)
            if not isinstance(layer, (_Op, _OutputJoin)) and not any(layer is t for t in top):
                top.append(layer)
        prefix, self._chains, ends = self._graph_prefix(graph)
        self._prefix = prefix
        for layer, _srcs, _out in graph:
            if isinstance(layer, _INPUT_STAGE) and id(layer) not in prefix:
                raise NotImplementedError(
                    f"fastdense runs {type(layer).__name__} on the model's input only, as the "
                    f"first layers of its one path (Normalization, Rescaling): it transforms "
                    f"the input array before the native engine. Received '{layer.name}'.")
        self._top, self._layers = top, flat
        if self._multi_input:
            self._slices = []
            begin = 0
            for end in ends:
                if len(end.shape) != 2 or end.shape[1] is None:
                    raise NotImplementedError(
                        f"The input {end!r} reaches the engine with shape {tuple(end.shape)}; "
                        "fastdense takes each input as (batch, features): flatten it first.")
                self._slices.append((begin, int(end.shape[1])))
                begin += int(end.shape[1])
            self._input_shape = (None, begin)
            return
        shape = tuple(self._input_tensor.shape)
        self._input_shape = (None,) + shape[1:]
        for layer, srcs, out in graph:
            if isinstance(layer, Model) and layer._net is None and layer._dense_layers:
                layer.build(tuple(srcs[0].shape))

    def _graph_prefix(self, graph: List[Tuple[Any, List[KerasTensor], KerasTensor]]
                      ) -> Tuple[Dict[int, KerasTensor], List[List[Layer]], List[KerasTensor]]:
        """The layers that run on the input arrays before the engine (from
        each input, a leading chain of Normalization, Rescaling, Flatten or
        one-axis Reshape layers, each the only reader of its input): their
        ids with their output tensors, each input's chain of them, and each
        input's tensor as the engine reads it (after its chain)."""
        readers: Dict[int, List[Any]] = {}
        for layer, srcs, _out in graph:
            for x in srcs:
                readers.setdefault(id(x), []).append(layer)
        made = {id(layer): out for layer, _srcs, out in graph}
        prefix: Dict[int, KerasTensor] = {}
        chains: List[List[Layer]] = []
        ends: List[KerasTensor] = []
        for start in self._input_tensors:
            t: KerasTensor = start
            chain: List[Layer] = []
            while len(readers.get(id(t), [])) == 1:
                layer = readers[id(t)][0]
                if isinstance(layer, _Merge) or not (
                        isinstance(layer, _INPUT_STAGE + (Flatten,)) or (
                        isinstance(layer, Reshape) and len(layer.target_shape) == 1)):
                    break
                t = made[id(layer)]
                prefix[id(layer)] = t
                chain.append(layer)
            chains.append(chain)
            ends.append(t)
        return prefix, chains, ends

    def _graph_layout(self) -> Tuple[List[Dict[str, Any]], List[Layer], List[Any], float]:
        """_engine_layout for a graph: one stage per layer (a nested model's
        layers one each, in a chain), each reading the stages its layer's
        inputs come from (-1: the engine's input)."""
        assert self._graph is not None
        prefix = self._prefix
        stages: List[Dict[str, Any]] = []
        owners: List[Layer] = []
        activity: List[Any] = []
        linear = 0
        index: Dict[int, int] = {}
        first_stage: Dict[int, int] = {}  # (each Dense layer's first stage)
        if self._multi_input:  # (the inputs side by side: a slice of columns each)
            for k, chain in enumerate(self._chains):
                end = prefix[id(chain[-1])] if chain else self._input_tensors[k]
                begin, width = self._slices[k]
                stages.append({"kind": 6, "units": width, "begin": begin, "inputs": [-1],
                               "activation": linear, "dropout": 0.0})
                owners.append(self._input_tensors[k]._layer)  # type: ignore[attr-defined]
                activity.append(None)
                index[id(end)] = k
        else:
            index[id(self._input_tensor)] = -1
            index.update({id(t): -1 for t in prefix.values()})
        for layer, srcs, out in self._graph:
            if id(layer) in prefix:
                continue
            inputs = [index[id(x)] for x in srcs]
            members = list(layer._layers) if isinstance(layer, Model) else [layer]
            for m in members:
                stage: Dict[str, Any]
                if isinstance(m, Dense):
                    stage = {"kind": 0, "units": m.units, "activation": m._act_code,
                             "use_bias": m.use_bias, "dropout": 0.0, **m._act_params}
                    if id(m) in first_stage:  # (applied again: the weights of its first stage)
                        stage["shares"] = first_stage[id(m)]
                    else:
                        first_stage[id(m)] = len(stages)
                elif isinstance(m, BatchNormalization):
                    stage = {"kind": 1, "activation": linear, "use_bias": m.center,
                             "scale": m.scale, "momentum": m.momentum, "epsilon": m.epsilon,
                             "dropout": 0.0}
                elif isinstance(m, (_RowNormalization, PReLU)):
                    stage = dict(m._stage())
                elif isinstance(m, _OpScalar):  # (x * 0.5, 1 - x, -x: the engine's ScalarOp)
                    stage = {"kind": 2, "activation": linear, "dropout": 0.0,
                             "scalar_op": m._code, "scalar": m._value}
                elif isinstance(m, _Merge) and len(inputs) > 1:
                    stage = {"kind": 5, "merge": m._mode, "activation": linear, "dropout": 0.0}
                elif isinstance(m, Activation):
                    stage = {"kind": 2, "activation": m._act_code, "dropout": 0.0,
                             **m._act_params}
                elif isinstance(m, Dropout):
                    stage = {"kind": 2, "activation": linear, "dropout": m.rate}
                elif isinstance(m, _Noise) and m._param() != 0:
                    stage = {"kind": 2, "activation": linear, "dropout": 0.0,
                             "noise": m._noise, "noise_param": m._param()}
                else:  # (Identity, Flatten and Reshape on 2D inputs, a one-input merge)
                    stage = {"kind": 2, "activation": linear, "dropout": 0.0}
                stage["inputs"] = inputs
                stages.append(stage)
                owners.append(m)
                activity.append(m.activity_regularizer)
                inputs = [len(stages) - 1]
            index[id(out)] = len(stages) - 1
        if any(st["dropout"] >= 1.0 for st in stages):
            raise ValueError("A Dropout rate of 1 drops everything; use a rate below 1.")
        if any(st.get("noise") in (2, 3) and st["noise_param"] >= 1.0 for st in stages):
            raise ValueError("A GaussianDropout or AlphaDropout rate of 1 drops everything; "
                             "use a rate below 1.")
        return stages, owners, activity, 0.0

    def _graph_rows(self) -> List[Tuple[Any, Tuple[Any, ...], str]]:
        """The summary's rows of a graph: each layer, its output shape and the
        layers it reads ("Connected to")."""
        assert self._graph_order is not None
        rows: List[Tuple[Any, Tuple[Any, ...], str]] = []
        sources: Dict[int, List[Tuple[str, int]]] = {}
        for layer, srcs, out in self._graph_order:  # (ops too, as Keras's summary lists them)
            refs = sources.get(id(layer))
            if refs is None:  # (a layer applied several times: one row, every call's inputs)
                refs = sources[id(layer)] = []
                rows.append((layer, tuple(out.shape), ""))
            refs += [self._tensor_ref(x) for x in srcs]
        return [(layer, shape, ", ".join(f"{n}[{k}][0]" for n, k in sources[id(layer)]) or "-")
                for layer, shape, _ in rows]

    def _sequential_like(self) -> bool:
        """Keras's summary test: the graph is one chain from one input (each
        call one tensor, the one before's output; no layer called twice)."""
        order = self._graph_order or []
        if len(self._input_tensors) != 1 or self._outs is not None:
            return False
        seen: set = set()
        for prev, cur in zip(order, order[1:]):
            if len(cur[1]) != 1 or cur[1][0] is not prev[2] or id(cur[0]) in seen:
                return False
            seen.add(id(cur[0]))
        return True

    def _tensor_ref(self, t: KerasTensor) -> Tuple[str, int]:
        """The layer and node index that produced ``t`` in this model's graph
        (Keras's keras_history: an InputLayer's tensor is node 0)."""
        if t._history is None:
            return t._layer.name, 0  # type: ignore[attr-defined]
        return t._history[0].name, self._node_of.get(id(t), 0)

    def _append_layer(self, layer: Any, rebuild: bool = True) -> None:
        """Appends a layer to the stack (or sets the input shape for an
        Input / InputLayer), checking that fastdense runs it there:
        ``Sequential.add``, a functional model's chain, a subclassed model's
        traced ``call``."""
        if isinstance(layer, InputSpec):
            layer = getattr(layer, "_layer", None) or InputLayer(batch_shape=layer.shape)
        if isinstance(layer, InputLayer):
            if self._input_shape is not None:
                raise ValueError(
                    f"Sequential model '{self.name}' has already been configured to use input "
                    f"shape {tuple(self._input_shape)}. You cannot add a different Input layer "
                    "to it.")
            if self._layers:
                raise ValueError("An InputLayer / Input must be the first element of a "
                                 "Sequential model.")
            shape: Tuple[Any, ...] = tuple(layer._batch_input_shape or ())
            self._input_shape = (None,) + shape[1:]
            self._input_layer_name = layer.name
            if not isinstance(self, Functional):
                self._input_layer = layer  # (its tensor starts the traced stack)
            return
        if isinstance(layer, Model):
            self._append_model(layer, rebuild)
            return
        if not isinstance(layer, Layer):
            raise ValueError("Only instances of `fastdense.layers.Layer` can be added to a "
                             f"Sequential model. Received: {layer} (of type {type(layer)})")
        self._check_runnable(layer)
        if any(layer.name == l.name for l in self._stack):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"'{layer.name}' is already the name of a layer in this model. Update the "
                "`name` argument to pass a unique name.")
        if not self._layers and layer._batch_input_shape is not None:
            self._input_shape = (None,) + tuple(layer._batch_input_shape[1:])
        elif (not self._layers and self._input_shape is None and isinstance(layer, Normalization)
              and layer.built and len(layer._build_shape) >= 2):
            # (an adapted Normalization knows the input's shape, as in Keras)
            self._input_shape = (None,) + tuple(layer._build_shape[1:])
        self._layers.append(layer)
        if self._top is not None:
            self._top.append(layer)
        self._stack_changed(rebuild)

    def _append_model(self, model: "Model", rebuild: bool) -> None:
        """Nests a model (``Sequential([encoder, decoder])``, ``decoder(encoder(inputs))``):
        one entry of ``layers``, whose layers the engine runs in its place.
        The layers are shared with that model, as in Keras: training one
        trains the other."""
        if model is self:
            raise ValueError(f"Model '{self.name}' cannot be nested in itself.")
        if model._subclassed() and not model._layers:
            raise NotImplementedError(
                f"Model '{model.name}' is a subclassed model that has not been built: fastdense "
                "nests it once its call() has been traced (call `build()` on it, or run it on "
                "data, first).")
        if not model._layers:
            raise ValueError(f"Model '{model.name}' has no layers; add its layers before "
                             "nesting it in another model.")
        if model._graph is not None:  # (its layers are no chain: they must not run as one)
            raise NotImplementedError(
                f"Model '{model.name}' is a graph (branches, merges, several inputs or outputs); "
                "fastdense nests models whose layers form a chain.")
        if any(model.name == l.name for l in self._stack):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"'{model.name}' is already the name of a layer in this model. Update the "
                "`name` argument to pass a unique name.")
        first = not self._layers
        n0 = len(self._layers)
        try:
            for layer in model._layers:
                self._check_runnable(layer)
                self._layers.append(layer)
        except Exception:
            del self._layers[n0:]
            raise
        top: List[Any] = self._layers[:n0] if self._top is None else self._top
        top.append(model)
        self._top = top
        if first and self._input_shape is None and model._input_shape is not None:
            self._input_shape = tuple(model._input_shape)
        self._stack_changed(rebuild)

    def _stack_changed(self, rebuild: bool) -> None:
        self._check_input_shape()
        self._net = None
        if self._input_shape is not None and rebuild and self._dense_layers:
            self.build(self._input_shape)

    def _check_runnable(self, layer: Layer) -> None:
        """Checks that fastdense runs ``layer`` after the model's current layers."""
        if isinstance(layer, _INPUT_STAGE) and not all(
                isinstance(l, _INPUT_STAGE) for l in self._layers):
            raise NotImplementedError(
                f"fastdense runs {type(layer).__name__} as one of the model's first layers "
                "(Normalization, Rescaling): it transforms the input array before the native "
                f"engine. Received '{layer.name}' after '{self._layers[-1].name}'.")
        if not isinstance(layer, (Dense, BatchNormalization, _RowNormalization, Dropout, _Noise,
                                  ActivityRegularization, PReLU, Flatten, Reshape, Activation,
                                  Identity) + _INPUT_STAGE):
            raise NotImplementedError(f"fastdense runs Dense, BatchNormalization, "
                                      f"LayerNormalization, RMSNormalization, "
                                      f"UnitNormalization, PReLU, Dropout, "
                                      f"GaussianNoise, GaussianDropout, AlphaDropout, "
                                      f"ActivityRegularization, "
                                      f"Flatten, Reshape, Identity and activation (Activation, "
                                      f"ReLU, "
                                      f"LeakyReLU, ELU, Softmax) layers natively; "
                                      f"{type(layer).__name__} is not supported yet.")
        if isinstance(layer, Reshape) and len(layer.target_shape) != 1 and self._dense_layers:
            raise NotImplementedError(
                f"fastdense keeps activations 2D after the first Dense layer: Reshape "
                f"'{layer.name}' may only give one axis there (e.g. Reshape((-1,))). Received: "
                f"target_shape={layer.target_shape}")
        if any(layer is l for l in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in model '{self.name}'"
                             + (" (fastdense runs each layer once per model)."
                                if self._top is not None else "."))

    def _check_input_shape(self) -> None:
        if self._input_shape is not None and len(self._input_shape) != 2 and self._layers:
            # on multi-dimensional samples, only elementwise layers may come
            # before Flatten: Dropout, and an Activation that is not a softmax
            for layer in self._layers:
                if isinstance(layer, Flatten) or (isinstance(layer, Reshape)
                                                  and len(layer.target_shape) == 1):
                    return
                elementwise = isinstance(layer, (Dropout, Identity, Reshape) + _INPUT_STAGE) or (
                    isinstance(layer, Activation)
                    and layer._act_code not in (_activations._CODES["softmax"],
                                                _activations._CODES["log_softmax"]))
                if not elementwise:
                    break
            else:
                return  # only elementwise layers so far: Flatten may come next
            raise ValueError("fastdense models take inputs of shape (features,) per sample; "
                             "start with a Flatten layer for multi-dimensional samples (only "
                             "Dropout and elementwise Activation layers may come before it; "
                             f"found layer '{layer.name}' ({type(layer).__name__})). "
                             f"Received: input_shape={self._input_shape[1:]}")

    # ------------------------------------------------------------------ saving
    def save(self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True
             ) -> None:
        """Writes Keras 3's ``.keras`` format (config, weights, optimizer state),
        or Keras's legacy HDF5 format for a ``.h5`` / ``.hdf5`` path."""
        if self._subclassed():
            raise NotImplementedError(
                f"{type(self).__name__} is a subclassed model: its architecture lives in its "
                "code, so fastdense saves its weights only (`save_weights`, then "
                "`load_weights` on a new instance).")
        from . import saving
        saving.save_model(self, filepath, overwrite=overwrite,
                          include_optimizer=include_optimizer)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Writes the weights to a ``.weights.h5`` file in Keras's layout."""
        from . import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, skip_mismatch: bool = False) -> None:
        """Reads weights from a ``.weights.h5``, ``.keras`` or legacy ``.h5``
        file; ``skip_mismatch`` leaves the layers whose weights do not match
        (with a warning), as Keras's."""
        from . import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    @classmethod
    def from_config(cls, config: Dict[str, Any],
                    custom_objects: Optional[Dict[str, Any]] = None) -> "Model":
        """A new model (fresh weights) from a ``get_config()`` output: a
        functional model's (with ``input_layers``) or a Sequential's."""
        kind = "Functional" if isinstance(config, dict) and "input_layers" in config else \
            "Sequential"
        from . import saving
        return saving.model_from_config({"module": "keras", "class_name": kind,
                                         "config": config}, custom_objects=custom_objects,
                                        compile=False)

    def to_json(self, **kwargs: Any) -> str:
        """The model's Keras config as a JSON string."""
        from . import saving
        return saving.to_json(self, **kwargs)

    def __reduce__(self) -> Any:
        from . import saving
        return (saving.model_from_state, (saving.model_to_state(self),))

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Model":
        from . import saving
        return saving.model_from_state(saving.model_to_state(self))


# layers that transform the input array in numpy before the engine (the
# model's first layers only)
_INPUT_STAGE = (Normalization, Rescaling)


def _validation_due(epoch: int, val_epochs: Any, validation_freq: Any) -> bool:
    """Whether fit validates after ``epoch`` (0-based): ``validation_freq`` as
    an interval, or ``val_epochs``, the 1-based epochs it listed."""
    if val_epochs is not None:
        return epoch + 1 in val_epochs
    return (epoch + 1) % validation_freq == 0


class Sequential(Model):
    """A linear stack of ``Dense`` layers.

    The input size comes from ``Input(shape=...)``, an ``InputLayer``, the
    first layer's ``input_shape=`` / ``input_dim=``, ``build()``, or the
    first data the model sees.
    """

    def __init__(self, layers: Optional[Sequence[Any]] = None, trainable: bool = True,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name, trainable=trainable)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Appends a layer (or sets the input shape for Input/InputLayer)."""
        self._append_layer(layer, rebuild)

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer."""
        if not self._stack:  # (IndexError, as Keras's list pop)
            raise IndexError(f"pop from an empty model: Sequential model '{self.name}' has "
                             "no layers.")
        layer = self._stack.pop()
        if self._top is not None:
            self._layers = [l for item in self._top
                            for l in (item._layers if isinstance(item, Model) else [item])]
            if not any(isinstance(item, Model) for item in self._top):
                self._top = None
        self._net = None
        if self._dense_layers and self._input_shape is not None and rebuild:
            self.build(self._input_shape)
        return layer

    def get_config(self) -> Dict[str, Any]:
        """Keras's model config (the ``config`` part of ``to_json()``): a
        Sequential's, or a functional model's for a ``Functional``."""
        from . import saving
        return saving.model_to_config(self)["config"]

    @classmethod
    def from_config(cls, config: Dict[str, Any],
                    custom_objects: Optional[Dict[str, Any]] = None) -> "Sequential":
        """A new model (fresh weights) from ``get_config()``'s output."""
        from . import saving
        return saving.model_from_config({"module": "keras", "class_name": "Sequential",
                                         "config": config}, custom_objects=custom_objects,
                                        compile=False)

def _one_tensor(value: Any, arg: str) -> KerasTensor:
    """The single symbolic tensor a functional model's ``inputs`` / ``outputs``
    give (a tensor, or a list / tuple of one)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, KerasTensor):
        return value
    if isinstance(value, (list, tuple, dict)):
        raise NotImplementedError(f"fastdense runs several outputs in functional models only, "
                                  f"Model(inputs, [out_1, out_2]). Received: {arg} with "
                                  f"{len(value)} entries")
    raise ValueError(f"`{arg}` must be a symbolic tensor from `Input()` and layer calls. "
                     f"Received: {arg}={value!r} (of type {type(value).__name__})")


def _join_outputs(outputs: Any, inputs: List[KerasTensor], arg: str
                  ) -> Optional[Tuple[KerasTensor, List[KerasTensor], _multi.Outputs]]:
    """Several outputs (a list or tuple of more than one, or a dict): the
    hidden join of their columns that the engine runs as its output, the
    output tensors in Keras's order (a dict's by key) and their layout; None
    for one output."""
    keys: Optional[List[str]] = None
    if isinstance(outputs, dict):  # (Keras flattens a dict in the order of its keys)
        keys = sorted(str(k) for k in outputs)
        by_key = {str(k): v for k, v in outputs.items()}
        outs = [_output_tensor(by_key[k], f"{arg}[{k!r}]") for k in keys]
    elif isinstance(outputs, (list, tuple)) and len(outputs) > 1:
        outs = [_output_tensor(t, f"{arg}[{k}]") for k, t in enumerate(outputs)]
    else:
        return None
    if len({id(t) for t in outs}) != len(outs):
        raise NotImplementedError(f"The model's {arg} list the same tensor more than once; "
                                  "fastdense runs each output once.")
    for t in outs:
        if any(t is i for i in inputs) or len(t.shape) != 2 or t.shape[1] is None:
            raise NotImplementedError(f"fastdense runs several outputs of shape (batch, units), "
                                      f"each computed by a layer. Received: {t!r}")
    layout = _multi.Outputs([t._history[0].name for t in outs],  # type: ignore[index]
                            [int(t.shape[1] or 0) for t in outs], keys,
                            [str(k) for k in outputs] if keys else None)
    return _OutputJoin()(outs), outs, layout


def _output_tensor(value: Any, arg: str) -> KerasTensor:
    """One of several outputs: a symbolic tensor."""
    if isinstance(value, KerasTensor):
        return value
    raise ValueError(f"All `outputs` values must be KerasTensors. Received: {arg}={value!r} "
                     f"of type {type(value)}")


def _layer_chain(inp: KerasTensor, out: KerasTensor) -> List[Layer]:
    """The layers that computed ``out`` from ``inp``, in order (each called
    once, on the previous one's output)."""
    chain: List[Layer] = []
    t = out
    while t is not inp:
        if t._history is None:
            raise ValueError(f"The output {out!r} is not computed from the model's input "
                             f"{inp!r}.")
        layer, t = t._history
        chain.append(layer)
    chain.reverse()
    seen: set = set()
    for layer in chain:
        if id(layer) in seen:
            raise NotImplementedError(f"Layer '{layer.name}' is applied more than once; "
                                      "fastdense runs each layer once, in a chain.")
        seen.add(id(layer))
    return chain


def _is_chain(out: KerasTensor) -> bool:
    """Whether ``out`` comes from one chain of single-input layer calls, each
    layer called once."""
    t: Any = out
    seen: set = set()
    while t is not None and getattr(t, "_history", None) is not None:
        if id(t._history[0]) in seen or isinstance(t._history[0], _Op):
            return False  # (a layer called again, or an op: x * 0.5, -x)
        seen.add(id(t._history[0]))
        t = t._history[1]
        if isinstance(t, list):
            return False
    return True


def _layer_graph(inputs: Sequence[KerasTensor], out: KerasTensor
                 ) -> List[Tuple[Any, List[KerasTensor], KerasTensor]]:
    """The layer calls that compute ``out`` from ``inputs`` as (layer, its
    input tensors, its output tensor), the InputLayers as (layer, [], their
    tensor), in Keras's order for ``model.layers``: by depth from the output,
    deepest first, ties in the order a depth-first walk from the output
    meets them. A layer applied several times has an entry per call."""
    order: Dict[int, int] = {}
    calls: Dict[int, Tuple[Any, List[KerasTensor], KerasTensor]] = {}
    post: List[int] = []
    is_input = {id(t) for t in inputs}

    def visit(t: KerasTensor) -> None:
        if id(t) in is_input:
            key = id(t._layer)  # type: ignore[attr-defined]
            order.setdefault(key, len(order))
            if key not in calls:
                calls[key] = (t._layer, [], t)  # type: ignore[attr-defined]
                post.append(key)
            return
        if t._history is None:
            raise ValueError(f"The output {out!r} is not computed from the model's inputs "
                             f"{list(inputs)!r}.")
        layer, src = t._history
        key = id(t)  # (one entry per call: a layer may be applied several times)
        if key in calls:
            return
        order.setdefault(key, len(order))
        srcs = list(src) if isinstance(src, list) else [src]
        calls[key] = (layer, srcs, t)
        for x in srcs:
            visit(x)
        post.append(key)

    visit(out)
    for t in inputs:
        if id(t._layer) not in calls:  # type: ignore[attr-defined]
            raise ValueError(f"The model's output does not depend on its input {t!r}.")
    depth: Dict[int, int] = {}
    producer = {id(c[2]): key for key, c in calls.items()}
    for key in reversed(post):
        d = depth.setdefault(key, 0)
        for x in calls[key][1]:
            pk = producer.get(id(x))
            if pk is not None:
                depth[pk] = max(depth.get(pk, 0), d + 1)
    keys = sorted(calls, key=lambda k: (-depth[k], order[k]))
    return [calls[k] for k in keys]


class Functional(Sequential):
    """Keras's functional model, ``Model(inputs=Input(...), outputs=...)``, for
    a chain of layers (each applied once, to the previous one's output): it
    runs as the ``Sequential`` stack of those layers. ``layers`` starts with
    the ``InputLayer``, as Keras's; files are written in Keras's functional
    format."""

    def __init__(self, inputs: Any = None, outputs: Any = None, name: Optional[str] = None,
                 trainable: bool = True, **kwargs: Any) -> None:
        if inputs is None or outputs is None:
            raise ValueError("A functional model needs both `inputs` and `outputs`.")
        keys: Optional[List[str]] = None
        # (Keras keeps the structures given: a list of one input or output is
        # written as a list, and `input` / `output` are lists then)
        struct = "dict" if isinstance(inputs, dict) else \
            "list" if isinstance(inputs, (list, tuple)) else "single"
        outputs_list = isinstance(outputs, (list, tuple))
        if isinstance(inputs, dict):  # (Keras's dict inputs: x is then a dict too)
            keys = [str(k) for k in inputs]
            inputs = list(inputs.values())
        ins = ([_one_tensor(t, "inputs") for t in inputs]
               if isinstance(inputs, (list, tuple)) and len(inputs) > 1
               else [_one_tensor(inputs, "inputs")])
        joined = _join_outputs(outputs, ins, "outputs")
        out = joined[0] if joined is not None else _one_tensor(outputs, "outputs")
        outs = None if joined is None else joined[1]
        for inp in ins:
            if getattr(inp, "_layer", None) is None or inp._history is not None:
                raise ValueError("The model's `inputs` must come from `keras.Input()`. "
                                 f"Received: inputs={inp!r}")
        if len({id(t) for t in ins}) != len(ins):
            raise ValueError("The model's `inputs` list the same Input more than once.")
        inp = ins[0]
        input_layer = inp._layer  # type: ignore[attr-defined]
        order = None if len(ins) == 1 and outs is None and _is_chain(out) \
            else _layer_graph(ins, out)
        chain = _layer_chain(inp, out) if order is None else []
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        super().__init__(name=name or unique_name("functional"), trainable=trainable)
        self._input_layer = input_layer
        self._input_layer_name = input_layer.name
        self._input_tensors = ins
        self._input_keys = keys if keys is not None else [t._layer.name  # type: ignore
                                                          for t in ins]
        self._inputs_struct = struct
        self._outputs_list = outputs_list
        if joined is not None:
            self._outs, self._output_tensors = joined[2], joined[1]
        if len(ins) == 1:
            for layer in [input_layer] + chain:
                self._append_layer(layer, rebuild=False)
        self._input_tensor, self._output_tensor = inp, out
        if order is not None:
            self._set_graph(order, ins, out)
        if self._dense_layers and self._input_shape is not None:
            self.build(self._input_shape)

    @property
    def layers(self) -> List[Layer]:
        if self._graph_order is not None:  # (as Keras: its ops, x + y, are not layers)
            out: List[Layer] = []
            for c in self._graph_order:  # (a layer applied several times: once)
                if not isinstance(c[0], _Op) and not any(c[0] is l for l in out):
                    out.append(c[0])
            return out
        return [self._input_layer] + list(self._stack)


    @property
    def input_shape(self) -> Any:
        if self._multi_input:
            return [tuple(t.shape) for t in self._input_tensors]
        return super().input_shape

    def _multi_features(self, x: Any, name: str) -> np.ndarray:
        """The engine's input for several inputs: each array (from a list or
        tuple in the inputs' order, or a dict keyed by their names) through
        its leading Normalization / Rescaling / Flatten layers, then side by
        side."""
        n = len(self._input_tensors)
        if isinstance(x, dict):
            missing = [k for k in self._input_keys if k not in x]
            if missing:
                raise ValueError(f"Missing data for input(s) {missing}: `{name}` is a dict; the "
                                 f"model's inputs are {self._input_keys}. Received keys: "
                                 f"{sorted(map(str, x))}")
            parts = [x[k] for k in self._input_keys]
        elif isinstance(x, (list, tuple)) and len(x) == n and not np.isscalar(x[0]):
            parts = list(x)
        else:
            got = f"a {type(x).__name__} of {len(x)}" if isinstance(x, (list, tuple)) else \
                f"{type(x).__name__} of shape {np.shape(x)}"
            raise ValueError(f"The model has {n} inputs {self._input_keys}: pass `{name}` as a "
                             f"list or tuple of {n} arrays, in that order, or a dict keyed by "
                             f"those names. Received: {got}")
        chains = self._chains
        arrays = []
        for k, part in enumerate(parts):
            what = f"{name}[{self._input_keys[k]!r}]" if isinstance(x, dict) else f"{name}[{k}]"
            arr = _data._array(part, what)
            want = tuple(self._input_tensors[k].shape)
            if arr.ndim != len(want) or any(w is not None and w != d
                                            for w, d in zip(want[1:], arr.shape[1:])):
                raise ValueError(f'Input {k} of layer "{self.name}" is incompatible with the '
                                 f"layer: expected shape={want}, found shape={arr.shape}")
            for layer in chains[k]:
                arr = np.asarray(layer(arr))
            arrays.append(_data.features(arr, what, self._slices[k][1]))
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the "
                             "same number of samples. Received: "
                             + ", ".join(f"{name}[{k}] sizes: {a.shape[0]}"
                                         for k, a in enumerate(arrays)))
        return np.concatenate(arrays, axis=1)

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        if index is not None and name is None:
            layers = self.layers
            if len(layers) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(layers)} layers.")
            return layers[index]
        if name is not None and index is None:
            for t in self._input_tensors:  # (each InputLayer of several inputs)
                if t._layer.name == name:  # type: ignore[attr-defined]
                    return t._layer  # type: ignore[attr-defined]
        return super().get_layer(name, index)

    @property
    def inputs(self) -> List[KerasTensor]:
        return list(self._input_tensors)

    @property
    def input(self) -> Any:
        if self._inputs_struct == "dict":
            return dict(zip(self._input_keys, self._input_tensors))
        return list(self._input_tensors) if self._inputs_struct == "list" else self._input_tensor

    @property
    def output(self) -> Any:
        if self._outs is not None:
            if self._outs.keys is not None:
                by_key = dict(zip(self._outs.keys, self._output_tensors))
                return {k: by_key[k] for k in self._outs.user_keys}
            return list(self._output_tensors)
        return [self._output_tensor] if self._outputs_list else self._output_tensor

    @property
    def outputs(self) -> List[KerasTensor]:
        if self._outs is not None:
            return list(self._output_tensors)
        return [self._output_tensor]

    @property
    def output_names(self) -> List[str]:
        """The names of the layers that compute the outputs, as Keras's."""
        if self._outs is not None:
            return list(self._outs.names)
        return [self._output_tensor._history[0].name]  # type: ignore[union-attr]

    def add(self, layer: Any, rebuild: bool = True) -> None:
        if getattr(self, "_output_tensor", None) is not None:
            raise ValueError("A functional model's layers are fixed by its inputs and "
                             "outputs; `add` is for Sequential models.")
        super().add(layer, rebuild)

    def pop(self, rebuild: bool = True) -> Layer:
        raise ValueError("A functional model's layers are fixed by its inputs and outputs; "
                         "`pop` is for Sequential models.")

    @classmethod
    def from_config(cls, config: Dict[str, Any],  # type: ignore[override]
                    custom_objects: Optional[Dict[str, Any]] = None) -> "Functional":
        from . import saving
        model = saving.model_from_config({"module": "keras", "class_name": "Functional",
                                          "config": config}, custom_objects=custom_objects,
                                         compile=False)
        assert isinstance(model, Functional)
        return model


def load_model(filepath: Any, custom_objects: Optional[Dict[str, Any]] = None,
               compile: bool = True, safe_mode: bool = True) -> Model:
    """Loads a ``.keras`` file written by fastdense or Keras 3."""
    from . import saving
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                             safe_mode=safe_mode)


def model_from_json(json_string: str, custom_objects: Optional[Dict[str, Any]] = None) -> Model:
    """A model (fresh weights) from ``model.to_json()``."""
    from . import saving
    return saving.model_from_json(json_string, custom_objects=custom_objects)


def save_model(model: Model, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
    """``keras.models.save_model``: ``model.save(filepath)``."""
    model.save(filepath, overwrite=overwrite, **kwargs)


def clone_model(model: Model, **kwargs: Any) -> Model:
    """A new model with the same architecture and fresh weights; compiled as
    the original was when it is (as Keras 3 does: a fresh optimizer from its
    config, the same loss, metrics and loss weights; metric objects copied so
    the two models keep their own state)."""
    if kwargs:
        raise NotImplementedError(f"clone_model arguments are not supported yet: {sorted(kwargs)}")
    import copy
    from . import saving
    clone = saving.model_from_config(saving.model_to_config(model), compile=False)
    if model.compiled and model.optimizer is not None:
        opt = model.optimizer
        fresh = lambda ms: [copy.deepcopy(m) if isinstance(m, _metrics.Metric) else m
                            for m in ms] or None
        if model._multi is not None:  # (several outputs: the structures given, copied)
            clone.compile(optimizer=type(opt).from_config(opt.get_config()),
                          loss=copy.deepcopy(model.loss), metrics=copy.deepcopy(model._metrics_arg),
                          weighted_metrics=copy.deepcopy(model._weighted_arg),
                          loss_weights=copy.deepcopy(model._loss_weights_arg))
            return clone
        clone.compile(optimizer=type(opt).from_config(opt.get_config()),
                      loss=copy.deepcopy(model.loss) if isinstance(model.loss, _losses.Loss)
                      else model.loss,
                      metrics=fresh(model._metric_ids), weighted_metrics=fresh(model._weighted_ids),
                      loss_weights=getattr(model, "_loss_weights_arg", None))
    return clone
