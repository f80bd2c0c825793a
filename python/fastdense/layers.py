"""Layers: ``Dense``, ``BatchNormalization``, ``LayerNormalization``,
``RMSNormalization``, ``Dropout``, ``GaussianNoise``, ``GaussianDropout``,
``AlphaDropout``, ``ActivityRegularization``, ``Flatten``,
``Activation``, ``InputLayer`` and ``Input``."""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _data
from . import activations as _activations
from . import initializers as _initializers
from ._naming import snake_case, unique_name
from .variables import Variable

__all__ = ["Layer", "Dense", "BatchNormalization", "LayerNormalization", "RMSNormalization",
           "UnitNormalization",
           "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout",
           "ActivityRegularization", "Flatten", "Reshape", "Activation",
           "ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU", "Identity", "Normalization", "Rescaling",
           "InputLayer",
           "Input", "InputSpec", "serialize", "deserialize",
           "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"]



def _weight_initializer(init: Any) -> Any:
    """Keras's add_weight default: an initializer of None means glorot_uniform
    for a float weight."""
    return _initializers.GlorotUniform() if init is None else init

def _check_name(name: Any) -> None:
    """Keras's rule for layer and model names (they become weight paths)."""
    if not isinstance(name, str) or "/" in name:
        raise ValueError("Argument `name` must be a string and cannot contain character `/`. "
                         f"Received: name={name} (of type {type(name)})")


class Layer:
    """Base class of fastdense layers (Keras's constructor keywords accepted)."""

    # Keras's layer path once built with weights: the name, or "sequential/dense"
    _path: Optional[str] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Each layer's own __call__ computes on arrays; on a KerasTensor (the
        # functional API) the layer returns its symbolic output instead.
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is None or getattr(call, "_symbolic_aware", False):
            return

        @functools.wraps(call)
        def __call__(self: "Layer", inputs: Any, *args: Any, **kw: Any) -> Any:
            if isinstance(inputs, (list, tuple)) and any(isinstance(t, KerasTensor)
                                                         for t in inputs):
                raise NotImplementedError(
                    f"fastdense layers take one input; {type(self).__name__} '{self.name}' "
                    f"received {len(inputs)}.")
            if isinstance(inputs, KerasTensor):
                return self._symbolic_call(inputs)
            return call(self, inputs, *args, **kw)

        __call__._symbolic_aware = True  # type: ignore[attr-defined]
        cls.__call__ = __call__  # type: ignore[method-assign]

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, KerasTensor):
            return self._symbolic_call(inputs)
        raise NotImplementedError(f"{type(self).__name__} has no forward pass of its own.")

    def _symbolic_call(self, inputs: "KerasTensor") -> "KerasTensor":
        """The layer applied to a symbolic tensor: built for its shape (as
        Keras builds a layer on its first call) and its output recorded."""
        shape = tuple(inputs.shape)
        if isinstance(self, InputLayer):
            raise ValueError("An InputLayer cannot be called on a tensor; use `Input()`.")
        if type(self).build is not Layer.build:
            built_for = getattr(self, "_build_shape", None)
            if not self.built:
                self.build(shape)
            elif (built_for is not None and len(built_for) == len(shape)
                  and built_for[-1] is not None and shape[-1] is not None
                  and built_for[-1] != shape[-1]):
                # (a built layer keeps its weights, an adapted one its statistics)
                raise ValueError(
                    f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                    f"axis -1 of input shape to have value {built_for[-1]}, but received input "
                    f"with shape {shape}")
        out = KerasTensor(tuple(self.compute_output_shape(shape)),
                          unique_name("keras_tensor"), "float32")
        out._history = (self, inputs)
        self._record_node(inputs, out)
        return out

    # The symbolic input and output of the layer's first call on a tensor (a
    # functional model's, or a built Sequential's), as Keras's layer.input /
    # layer.output (its node 0, also for a layer applied several times): for
    # `Model(inputs=model.input, outputs=layer.output)`.
    _node: Optional[Tuple[Any, "KerasTensor"]] = None

    def _record_node(self, inputs: Any, out: "KerasTensor") -> None:
        if self._node is None:
            self._node = (inputs, out)

    def _node_part(self, k: int, what: str) -> Any:
        if self._node is None:
            raise AttributeError(f"The layer {self.name} has never been called and thus has no "
                                 f"defined {what}.")
        return self._node[k]

    @property
    def input(self) -> Any:
        return self._node_part(0, "input")

    @property
    def output(self) -> "KerasTensor":
        return self._node_part(1, "output")

    def __init__(self, name: Optional[str] = None, trainable: bool = True,
                 dtype: Any = None, input_shape: Optional[Sequence[Optional[int]]] = None,
                 input_dim: Optional[int] = None, batch_size: Optional[int] = None,
                 activity_regularizer: Any = None, **kwargs: Any) -> None:
        allowed = {"batch_input_shape", "autocast", "input_length"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ValueError(f"Unrecognized keyword arguments passed to "
                             f"{type(self).__name__}: {({k: kwargs[k] for k in sorted(unknown)})}")
        if isinstance(dtype, dict):  # (get_config()'s serialized DTypePolicy, as Keras takes)
            if dtype.get("class_name") in ("DTypePolicy", "Policy", "FloatDTypePolicy") and \
                    (dtype.get("config") or {}).get("name") in (None, "float32"):
                dtype = "float32"
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"fastdense computes in float32. Received: dtype={dtype}")
        if name is None or name == "":
            name = unique_name(snake_case(type(self).__name__))
        _check_name(name)
        self.name = name
        from . import regularizers as _regularizers
        self.activity_regularizer = _regularizers.get(activity_regularizer)
        if self.activity_regularizer is not None:
            self.activity_regularizer._factors()  # only L1/L2 penalties run natively
        self.trainable = trainable
        self.built = False
        self._batch_input_shape: Optional[Tuple[Optional[int], ...]] = None
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if kwargs.get("batch_input_shape") is not None:
            self._batch_input_shape = tuple(kwargs["batch_input_shape"])
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)

    # -- weights -------------------------------------------------------------
    @property
    def weights(self) -> List[Variable]:
        return []

    @property
    def trainable_weights(self) -> List[Variable]:
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self) -> List[Variable]:
        return [] if self.trainable else self.weights

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
    def path(self) -> Optional[str]:
        """Keras's layer path: None until built, then the name, or
        ``"sequential/dense"`` for a layer built in a model (None for a
        layer without weights, as Keras's Dropout)."""
        return self._path if self.built else None

    @property
    def losses(self) -> List[np.float32]:
        """The weight regularization penalties of this layer's current
        weights (none while it is frozen, as Keras)."""
        if not self.trainable:
            return []
        out = []
        for w in self.weights:
            attr = w.path.rsplit("/", 1)[-1]
            reg = getattr(self, {"kernel": "kernel_regularizer", "gamma": "gamma_regularizer",
                                 "bias": "bias_regularizer", "beta": "beta_regularizer",
                                 "alpha": "alpha_regularizer"}
                          .get(attr, ""), None)
            if reg is not None:
                out.append(np.float32(reg(w.numpy())))
        return out

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        """The input shape the layer was built with (Keras's build config)."""
        shape = getattr(self, "_build_shape", None)
        return None if shape is None else {"input_shape": shape}

    def build_from_config(self, config: Optional[Mapping[str, Any]]) -> None:
        if config and config.get("input_shape") is not None:
            self.build(tuple(config["input_shape"]))

    def get_weights(self) -> List[np.ndarray]:
        """Copies of the layer's weights as numpy arrays (kernel, then bias)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets the layer's weights from numpy arrays (same order as get_weights)."""
        params = self.weights
        if len(params) != len(weights):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight "
                f"list of length {len(weights)}, but the layer was expecting "
                f"{len(params)} weights."
            )
        for var, value in zip(params, weights):
            value = np.asarray(value)
            if value.shape != var.shape:
                raise ValueError(
                    f"Layer {self.name} weight shape {var.shape} is not compatible with "
                    f"provided weight shape {value.shape}."
                )
        for var, value in zip(params, weights):
            var.assign(value)

    def count_params(self) -> int:
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        self.built = True

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]) -> Tuple[Optional[int], ...]:
        return tuple(input_shape)

    def get_config(self) -> Dict[str, Any]:
        # (the dtype as Keras 3 gives it: its float32 DTypePolicy, serialized)
        config: Dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": {"module": "keras", "class_name": "DTypePolicy",
                                            "config": {"name": "float32"},
                                            "registered_name": None}}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = _regularizers_serialize(self.activity_regularizer)
        return config

    @property
    def dtype(self) -> str:
        """The dtype of the layer's variables (Keras's ``layer.dtype``): float32."""
        return "float32"

    @property
    def compute_dtype(self) -> str:
        return "float32"

    @property
    def variable_dtype(self) -> str:
        return "float32"

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Layer":
        """The layer of ``get_config()``'s output, or of a Keras 3 layer config
        (``dtype`` as a float32 ``DTypePolicy`` dict, initializers /
        regularizers / constraints as ``{'class_name': ..., 'config': ...}``
        dicts, ``quantization_config`` / ``lora_*`` left unset)."""
        return cls(**_config_kwargs(cls, config))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


# Keys of Keras 3 layer configs that ask for features fastdense lacks; they
# are accepted by from_config only with their "off" values.
_OFF_VALUES: Dict[str, Tuple[Any, ...]] = {
    "quantization_config": (None, {}), "lora_rank": (None, 0), "lora_alpha": (None,),
    "sparse": (None, False), "ragged": (None, False), "optional": (None, False),
}


def _config_kwargs(cls: type, config: Dict[str, Any]) -> Dict[str, Any]:
    """Constructor arguments for ``cls`` from a layer config (see
    ``Layer.from_config``)."""
    kwargs = dict(config)
    dtype = kwargs.get("dtype")
    if isinstance(dtype, dict):
        name = (dtype.get("config") or {}).get("name")
        if dtype.get("class_name") not in ("DTypePolicy", "Policy", "FloatDTypePolicy") or \
                name not in (None, "float32"):
            raise ValueError(f"fastdense computes in float32. Received: dtype={dtype}")
        kwargs["dtype"] = "float32"
    for key, off in _OFF_VALUES.items():
        if key in kwargs:
            value = kwargs.pop(key)
            if not any(value is v or value == v for v in off):
                raise NotImplementedError(f"{cls.__name__}({key}={value!r}) is not supported "
                                          "by fastdense.")
    if "batch_shape" in kwargs:  # Keras 3's InputLayer spelling
        batch_shape = kwargs.pop("batch_shape")
        if batch_shape is not None and kwargs.get("batch_input_shape") is None:
            kwargs["batch_input_shape"] = tuple(batch_shape)
    return kwargs




class Dense(Layer):
    """Densely connected layer: ``output = activation(dot(input, kernel) + bias)``.

    The kernel has shape ``(input_dim, units)`` as in Keras.
    """

    def __init__(self, units: int, activation: _activations.ActivationLike = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 lora_rank: Optional[int] = None, lora_alpha: Optional[float] = None,
                 quantization_config: Any = None, **kwargs: Any) -> None:
        for key, value in (("lora_rank", lora_rank), ("lora_alpha", lora_alpha),
                           ("quantization_config", quantization_config)):
            if value is not None and not (key == "lora_rank" and value == 0):
                raise NotImplementedError(f"Dense({key}={value!r}) is not supported by "
                                          "fastdense.")
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError("Received an invalid value for `units`, expected a positive "
                             f"integer. Received: units={units}")
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        self.activation = _activations.get(activation)
        # an activation layer as the activation (Dense(64, activation=LeakyReLU(0.2)),
        # as Keras allows) runs natively with its arguments
        self._act_params: Dict[str, float] = {}
        if isinstance(self.activation, Activation):
            code: Optional[int] = self.activation._act_code
            self._act_params = dict(self.activation._act_params)
        else:
            code = _activations.native_code(self.activation)
        if code is None:
            raise ValueError(
                f"Dense activation {activation!r} has no native kernel in fastdense yet. "
                f"Supported: {sorted(_activations._CODES)}, or an activation layer "
                "(Activation, ReLU, LeakyReLU, ELU, Softmax)"
            )
        self._act_code: int = code
        self.use_bias = bool(use_bias)
        from . import regularizers as _regularizers
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        for reg in (self.kernel_regularizer, self.bias_regularizer):
            if reg is not None:
                reg._factors()  # only L1/L2 penalties run natively
        from . import constraints as _constraints
        self.kernel_constraint = _constraints.get(kernel_constraint)
        self.bias_constraint = _constraints.get(bias_constraint)
        _constraints.native(self.kernel_constraint, 2)  # (checks the axis)
        _constraints.native(self.bias_constraint, 1)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel: Optional[Variable] = None
        self.bias: Optional[Variable] = None
        self.input_dim: Optional[int] = None

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"The last dimension of the input to Dense layer '{self.name}' "
                             f"must be defined. Received: input_shape={tuple(input_shape)}")
        if self.built:
            if in_dim != self.input_dim:
                raise ValueError(
                    f"Input {tuple(input_shape)} is incompatible with layer {self.name}: "
                    f"expected axis -1 of input shape to have value {self.input_dim}, "
                    f"but received input with shape {tuple(input_shape)}")
            return
        self.input_dim = int(in_dim)
        self._build_shape = tuple(input_shape)
        self._path = self.name
        self.kernel = Variable(_weight_initializer(self.kernel_initializer),
                               shape=(self.input_dim, self.units),
                               name="kernel")
        self.kernel.path = f"{self.name}/kernel"
        self.kernel._owner = self
        if self.use_bias:
            self.bias = Variable(_weight_initializer(self.bias_initializer), shape=(self.units,),
                                 name="bias")
            self.bias.path = f"{self.name}/bias"
            self.bias._owner = self
        self.built = True

    @property
    def weights(self) -> List[Variable]:
        if not self.built:
            return []
        return [v for v in (self.kernel, self.bias) if v is not None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def __call__(self, inputs: Any) -> np.ndarray:
        """Forward pass on a numpy array (builds the layer on first use)."""
        from . import _core
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim < 2:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected min_ndim=2, found ndim={x.ndim}. "
                             f"Full shape received: {x.shape}")
        self.build(x.shape)
        lead = x.shape[:-1]
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        b = self.bias.value if self.bias is not None else None
        if isinstance(self.activation, Activation):  # (an activation layer, in numpy)
            z = _core.dense_forward(x2, self.kernel.value, b, 0)  # type: ignore[union-attr]
            y = self.activation(z)
        elif self._act_code <= 4:  # fused in the kernel
            y = _core.dense_forward(x2, self.kernel.value, b, self._act_code)  # type: ignore[union-attr]
        else:
            z = _core.dense_forward(x2, self.kernel.value, b, 0)  # type: ignore[union-attr]
            y = _core.activation_forward(z, self._act_code)
        return y.reshape(lead + (self.units,))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": _activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _init_config(self.kernel_initializer),
            "bias_initializer": _init_config(self.bias_initializer),
            "kernel_regularizer": _regularizers_serialize(self.kernel_regularizer),
            "bias_regularizer": _regularizers_serialize(self.bias_regularizer),
            "kernel_constraint": _constraints_serialize(self.kernel_constraint),
            "bias_constraint": _constraints_serialize(self.bias_constraint),
            "quantization_config": None,
        })
        return config

    def _native_constraints(self) -> Tuple[Any, Any]:
        from . import constraints as _constraints
        return (_constraints.native(self.kernel_constraint, 2),
                _constraints.native(self.bias_constraint, 1))


def _constraints_serialize(c: Any) -> Any:
    from . import constraints as _constraints
    return _constraints.serialize(c)


def _regularizers_serialize(reg: Any) -> Any:
    from . import regularizers as _regularizers
    return _regularizers.serialize(reg)


def _width_to_build(layer: Any, shape: Tuple[Any, ...], axis: Any) -> Optional[int]:
    """Checks the feature axis (the last) of ``shape`` for a layer with one
    weight per feature: the width to build it for, or None when it is
    already built for that width."""
    dim = shape[-1]
    if dim is None:
        raise ValueError(f"Axis {axis} of input tensor should have a defined dimension but "
                         f"the layer received an input with shape {shape}.")
    if not layer.built:
        return int(dim)
    if dim != layer.input_dim:
        raise ValueError(f"Input {shape} is incompatible with layer {layer.name}: expected "
                         f"axis -1 of input shape to have value {layer.input_dim}, but "
                         f"received input with shape {shape}")
    return None


def _gamma_beta_terms(beta_regularizer: Any, gamma_regularizer: Any, beta_constraint: Any,
                      gamma_constraint: Any) -> Tuple[Any, Any, Any, Any]:
    """A normalization layer's regularizers and constraints of beta and gamma,
    checked to be ones the engine runs (L1/L2 penalties, Keras's built-in
    constraints)."""
    from . import constraints as _constraints
    from . import regularizers as _regularizers
    regs = [_regularizers.get(beta_regularizer), _regularizers.get(gamma_regularizer)]
    for reg in regs:
        if reg is not None:
            reg._factors()
    cons = [_constraints.get(beta_constraint), _constraints.get(gamma_constraint)]
    for con in cons:
        _constraints.native(con, 1)
    return regs[0], regs[1], cons[0], cons[1]


def _init_config(init: Any) -> Any:
    """Keras 3's form: ``{'module': 'keras.initializers', 'class_name': ...,
    'config': ..., 'registered_name': None}`` (a function: its name)."""
    return _initializers.serialize(init)


class BatchNormalization(Layer):
    """Normalizes each feature with the batch's statistics while training and
    with moving averages of them at inference, as Keras 3:
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta``, with
    ``moving = moving * momentum + batch_statistic * (1 - momentum)`` after
    each training batch (the biased batch variance). A layer with
    ``trainable = False`` runs in inference mode, as in Keras 3. Weights, in
    Keras's order: gamma, beta (trainable), moving_mean, moving_variance.
    In a model it runs natively between the layers around it."""

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, renorm: bool = False,
                 renorm_clipping: Any = None, renorm_momentum: float = 0.99,
                 synchronized: bool = False, **kwargs: Any) -> None:
        if synchronized:
            raise ValueError("Argument synchronized=True is only supported with the "
                             "TensorFlow backend.")
        if renorm:
            raise NotImplementedError("BatchNormalization(renorm=True) is not supported by "
                                      "fastdense. Received: renorm=True")
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Expected an int value for `axis`. Received: axis={axis!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"Argument `momentum` must be in [0, 1]. Received: "
                             f"momentum={momentum!r}")
        if not (self.epsilon > 0 and np.isfinite(self.epsilon)):
            raise ValueError(f"Argument `epsilon` must be a positive float. Received: "
                             f"epsilon={epsilon!r}")
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)
        (self.beta_regularizer, self.gamma_regularizer, self.beta_constraint,
         self.gamma_constraint) = _gamma_beta_terms(beta_regularizer, gamma_regularizer,
                                                    beta_constraint, gamma_constraint)
        self.renorm = False
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = float(renorm_momentum)
        self.synchronized = False
        self.gamma: Optional[Variable] = None
        self.beta: Optional[Variable] = None
        self.moving_mean: Optional[Variable] = None
        self.moving_variance: Optional[Variable] = None
        self.input_dim: Optional[int] = None

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        shape = tuple(input_shape)
        if self.axis not in (-1, len(shape) - 1):
            raise NotImplementedError(
                f"fastdense normalizes the feature axis of 2D inputs (axis=-1). Received: "
                f"axis={self.axis} for input_shape={shape}")
        width = _width_to_build(self, shape, self.axis)
        if width is None:
            return
        self.input_dim = width
        self._build_shape = tuple(input_shape)
        self._path = self.name
        n = (self.input_dim,)

        def var(init: Any, name: str) -> Variable:
            # (the moving statistics are never trained, as Keras's)
            v = Variable(_weight_initializer(init), shape=n, name=name,
                         trainable=not name.startswith("moving_"))
            v.path = f"{self.name}/{name}"
            v._owner = self
            return v

        if self.scale:
            self.gamma = var(self.gamma_initializer, "gamma")
        if self.center:
            self.beta = var(self.beta_initializer, "beta")
        self.moving_mean = var(self.moving_mean_initializer, "moving_mean")
        self.moving_variance = var(self.moving_variance_initializer, "moving_variance")
        self.built = True

    @property
    def weights(self) -> List[Variable]:
        if not self.built:
            return []
        return [v for v in (self.gamma, self.beta, self.moving_mean, self.moving_variance)
                if v is not None]

    @property
    def trainable_weights(self) -> List[Variable]:
        if not self.built or not self.trainable:
            return []
        return [v for v in (self.gamma, self.beta) if v is not None]

    @property
    def non_trainable_weights(self) -> List[Variable]:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    def __call__(self, inputs: Any, training: bool = False) -> np.ndarray:
        """Normalizes a numpy array (training=True: with its own statistics,
        updating the moving ones, as Keras's layer call)."""
        x = np.asarray(inputs, dtype=np.float32)
        self.build(x.shape)
        C = x.shape[-1]
        x2 = x.reshape(-1, C)
        if training and self.trainable:
            mean = x2.mean(axis=0, dtype=np.float64).astype(np.float32)
            var = np.square(x2 - mean, dtype=np.float64).mean(axis=0).astype(np.float32)
            m = np.float32(self.momentum)
            om = np.float32(1.0 - self.momentum)
            self.moving_mean.assign(self.moving_mean.value * m + mean * om)  # type: ignore[union-attr]
            self.moving_variance.assign(self.moving_variance.value * m + var * om)  # type: ignore[union-attr]
        else:
            mean = self.moving_mean.value  # type: ignore[union-attr]
            var = self.moving_variance.value  # type: ignore[union-attr]
        inv = np.float32(1) / np.sqrt(var + np.float32(self.epsilon))
        if self.gamma is not None:
            inv = inv * self.gamma.value
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta.value
        return (x2 * inv + shift).astype(np.float32).reshape(x.shape)

    def _native_constraints(self) -> Tuple[Any, Any]:
        from . import constraints as _constraints
        return (_constraints.native(self.gamma_constraint, 1),
                _constraints.native(self.beta_constraint, 1))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _init_config(self.beta_initializer),
            "gamma_initializer": _init_config(self.gamma_initializer),
            "moving_mean_initializer": _init_config(self.moving_mean_initializer),
            "moving_variance_initializer": _init_config(self.moving_variance_initializer),
            "beta_regularizer": _regularizers_serialize(self.beta_regularizer),
            "gamma_regularizer": _regularizers_serialize(self.gamma_regularizer),
            "beta_constraint": _constraints_serialize(self.beta_constraint),
            "gamma_constraint": _constraints_serialize(self.gamma_constraint),
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        })
        return config


def _feature_axis(axis: Any) -> Any:
    """Keras's ``axis`` argument of the row normalizations: an int or a list of
    ints (kept as given until build)."""
    if isinstance(axis, (list, tuple)):
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis', "
                            f"but received: {axis!r}")
        return [int(a) for a in axis]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis', but "
                    f"received: {axis!r}")


class _RowNormalization(Layer):
    """Normalizes each sample over its features (the engine's LayerNorm stage,
    cpp/layernorm.h): ``LayerNormalization`` and ``RMSNormalization``."""

    _mode = 0  # the engine's NormMode
    _axis_list = True  # (Keras keeps the axis as a list once built)

    def __init__(self, axis: Any, epsilon: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = _feature_axis(axis)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) \
                or not (epsilon > 0 and np.isfinite(epsilon)):
            raise ValueError(f"Argument `epsilon` must be a positive float. Received: "
                             f"epsilon={epsilon!r}")
        self.epsilon = float(epsilon)
        self.input_dim: Optional[int] = None

    # (gamma, beta) as the engine orders them; either may be None
    def _params(self) -> Tuple[Optional[Variable], Optional[Variable]]:
        raise NotImplementedError

    def _make_weights(self, n: Tuple[int]) -> None:
        raise NotImplementedError

    def _variable(self, init: Any, name: str, n: Tuple[int]) -> Variable:
        v = Variable(_weight_initializer(init), shape=n, name=name)
        v.path = f"{self.name}/{name}"
        v._owner = self
        return v

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        shape = tuple(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if len(axes) != 1 or axes[0] not in (-1, len(shape) - 1):
            raise NotImplementedError(
                f"fastdense normalizes the last axis of its 2D activations (axis=-1). "
                f"Received: axis={self.axis} for input_shape={shape}")
        width = _width_to_build(self, shape, axes[0])
        if width is None:
            return
        self.input_dim = width
        self._build_shape = shape
        self._path = self.name
        if self._axis_list:
            self.axis = axes
        self._make_weights((self.input_dim,))
        self.built = True

    @property
    def weights(self) -> List[Variable]:
        return [v for v in self._params() if v is not None] if self.built else []

    def __call__(self, inputs: Any, training: bool = False) -> np.ndarray:
        """Normalizes a numpy array's rows in float32, as the engine does."""
        x = np.asarray(inputs, dtype=np.float32)
        self.build(x.shape)
        gamma, beta = (None if v is None else v.value for v in self._params())
        x64 = x.astype(np.float64)
        if self._mode == 3:  # (UnitNormalization: 1/norm, capped at 1e12)
            s = np.sum(x64 * x64, axis=-1, keepdims=True).astype(np.float32)
            with np.errstate(divide="ignore"):
                r = np.minimum(np.float32(1) / np.sqrt(s), np.float32(1e12))
            return (x * r).astype(np.float32)
        if self._mode == 2:
            s = np.mean(x64 * x64, axis=-1, keepdims=True)
        else:
            s = x64.var(axis=-1, keepdims=True)
        r = np.float32(1) / np.sqrt(s.astype(np.float32) + np.float32(self.epsilon))
        if self._mode != 0:
            y = x * r
            return (y * gamma if gamma is not None else y).astype(np.float32)
        inv = r * gamma if gamma is not None else r
        shift = -x64.mean(axis=-1, keepdims=True).astype(np.float32) * inv
        if beta is not None:
            shift = shift + beta
        return (x * inv + shift).astype(np.float32)

    def _stage(self) -> Dict[str, Any]:
        """The engine's stage for this layer."""
        return {"kind": 3, "norm_mode": self._mode, "activation": 0, "dropout": 0.0,
                "epsilon": self.epsilon, "scale": self._has_gamma(),
                "use_bias": self._has_beta()}

    def _has_gamma(self) -> bool:
        return True

    def _has_beta(self) -> bool:
        return False


class LayerNormalization(_RowNormalization):
    """Normalizes each sample over its features, as Keras 3:
    ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` with the sample's mean
    and (biased) variance, the same in training and inference. Weights, in
    Keras's order: gamma (``scale=True``), beta (``center=True``).
    ``rms_scaling=True`` (deprecated in Keras) computes Keras's
    ``x / sqrt(var + epsilon) * gamma`` with no beta. In a model it runs
    natively between the layers around it."""

    def __init__(self, axis: Any = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        rms_scaling = bool(kwargs.pop("rms_scaling", False))
        if rms_scaling:
            import warnings
            warnings.warn("You passed `rms_scaling=True`, which is deprecated. This argument "
                          "incorrectly scales the input by the variance, not the root mean "
                          "square. To correctly use RMS Normalization, please use "
                          "`keras.layers.RMSNormalization` instead.", stacklevel=2)
        super().__init__(axis, epsilon, **kwargs)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = rms_scaling
        self._mode = 1 if rms_scaling else 0
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        (self.beta_regularizer, self.gamma_regularizer, self.beta_constraint,
         self.gamma_constraint) = _gamma_beta_terms(beta_regularizer, gamma_regularizer,
                                                    beta_constraint, gamma_constraint)
        self.gamma: Optional[Variable] = None
        self.beta: Optional[Variable] = None

    def _has_gamma(self) -> bool:
        return self.scale or self.rms_scaling

    def _has_beta(self) -> bool:
        return self.center and not self.rms_scaling

    def _params(self) -> Tuple[Optional[Variable], Optional[Variable]]:
        return self.gamma, self.beta

    def _make_weights(self, n: Tuple[int]) -> None:
        if self._has_gamma():
            self.gamma = self._variable(self.gamma_initializer, "gamma", n)
        if self._has_beta():
            self.beta = self._variable(self.beta_initializer, "beta", n)

    def _native_constraints(self) -> Tuple[Any, Any]:
        from . import constraints as _constraints
        return (_constraints.native(self.gamma_constraint, 1),
                _constraints.native(self.beta_constraint, 1))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": _init_config(self.beta_initializer),
            "gamma_initializer": _init_config(self.gamma_initializer),
            "beta_regularizer": _regularizers_serialize(self.beta_regularizer),
            "gamma_regularizer": _regularizers_serialize(self.gamma_regularizer),
            "beta_constraint": _constraints_serialize(self.beta_constraint),
            "gamma_constraint": _constraints_serialize(self.gamma_constraint),
        })
        return config


class RMSNormalization(_RowNormalization):
    """Keras 3's ``RMSNormalization``: ``x / sqrt(mean(x^2) + epsilon) * scale``
    over each sample's features, with one trainable weight, ``scale``
    (ones). In a model it runs natively between the layers around it."""

    _mode = 2

    def __init__(self, axis: Any = -1, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(axis, epsilon, **kwargs)
        self.scale: Optional[Variable] = None

    def _params(self) -> Tuple[Optional[Variable], Optional[Variable]]:
        return self.scale, None

    def _make_weights(self, n: Tuple[int]) -> None:
        self.scale = self._variable("ones", "scale", n)

    def _native_constraints(self) -> Tuple[Any, Any]:
        from . import constraints as _constraints
        return (_constraints.native(None, 1), _constraints.native(None, 1))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config


class UnitNormalization(_RowNormalization):
    """Keras 3's ``UnitNormalization``: scales each sample to unit L2 norm,
    ``x * min(1 / sqrt(sum(x^2)), 1e12)``. No weights. In a model it runs
    natively between the layers around it."""

    _mode = 3
    _axis_list = False

    def __init__(self, axis: Any = -1, **kwargs: Any) -> None:
        super().__init__(axis, 1e-12, **kwargs)

    def _params(self) -> Tuple[Optional[Variable], Optional[Variable]]:
        return None, None

    def _make_weights(self, n: Tuple[int]) -> None:
        pass

    def _has_gamma(self) -> bool:
        return False

    def _native_constraints(self) -> Tuple[Any, Any]:
        from . import constraints as _constraints
        return (_constraints.native(None, 1), _constraints.native(None, 1))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dropout(Layer):
    """Sets inputs to 0 with probability ``rate`` while training and scales the
    rest by ``1 / (1 - rate)``; the identity at inference. In a model it runs
    natively on the preceding layer's output."""

    def __init__(self, rate: float, noise_shape: Any = None, seed: Optional[int] = None,
                 **kwargs: Any) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) \
                or not 0 <= rate <= 1:
            raise ValueError("Invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1. Received: rate={rate}")
        if noise_shape is not None:
            raise NotImplementedError("Dropout(noise_shape=...) is not supported by fastdense "
                                      f"yet. Received: noise_shape={noise_shape}")
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.noise_shape = None
        self.built = True

    def __call__(self, inputs: Any, training: bool = False) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32)
        if not training or self.rate == 0:
            return x
        rng = np.random.default_rng(self.seed) if self.seed is not None else np.random
        keep = rng.random(x.shape) >= self.rate
        return np.where(keep, x / (1 - self.rate), 0).astype(np.float32)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": None})
        return config


def _unit_interval(value: Any, arg: str) -> float:
    """Keras's check of a noise layer's rate / stddev: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= value <= 1:
        raise ValueError(f"Invalid value received for argument `{arg}`. Expected a float value "
                         f"between 0 and 1. Received: {arg}={value}")
    return float(value)


class _Noise(Layer):
    """Training-time noise on the activations, the identity at inference. In
    a model it runs natively on the preceding layer's output (the engine's
    noise kinds, cpp/dropout.h)."""

    _noise = 0  # the engine's NoiseKind

    def __init__(self, seed: Optional[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.built = True

    def _param(self) -> float:
        """The engine's noise parameter (stddev or rate); 0: no noise."""
        raise NotImplementedError

    def _noisy(self, x: np.ndarray, rng: Any) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, inputs: Any, training: bool = False) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32)
        if not training or self._param() == 0:
            return x
        rng = np.random.default_rng(self.seed) if self.seed is not None else np.random
        return self._noisy(x, rng).astype(np.float32)


class GaussianNoise(_Noise):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` while
    training (Keras's ``layers.GaussianNoise``)."""

    _noise = 1

    def __init__(self, stddev: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        self.stddev = _unit_interval(stddev, "stddev")
        super().__init__(seed, **kwargs)

    def _param(self) -> float:
        return self.stddev

    def _noisy(self, x: np.ndarray, rng: Any) -> np.ndarray:
        return x + np.float32(self.stddev) * rng.standard_normal(x.shape).astype(np.float32)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


class GaussianDropout(_Noise):
    """Multiplies the activations by Gaussian noise of mean 1 and standard
    deviation ``sqrt(rate / (1 - rate))`` while training (Keras's
    ``layers.GaussianDropout``)."""

    _noise = 2

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        self.rate = _unit_interval(rate, "rate")
        super().__init__(seed, **kwargs)

    def _param(self) -> float:
        return self.rate

    def _noisy(self, x: np.ndarray, rng: Any) -> np.ndarray:
        stddev = np.float32(math.sqrt(self.rate / (1.0 - self.rate)))
        return x * (stddev * rng.standard_normal(x.shape).astype(np.float32) + np.float32(1))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


class AlphaDropout(_Noise):
    """Dropout that keeps the mean and variance of SELU activations (Keras's
    ``layers.AlphaDropout``): dropped units are set to SELU's negative
    saturation value, then an affine map restores the moments."""

    _noise = 3

    def __init__(self, rate: float, noise_shape: Any = None, seed: Optional[int] = None,
                 **kwargs: Any) -> None:
        self.rate = _unit_interval(rate, "rate")
        if noise_shape is not None:
            raise NotImplementedError("AlphaDropout(noise_shape=...) is not supported by "
                                      f"fastdense. Received: noise_shape={noise_shape}")
        self.noise_shape = None
        super().__init__(seed, **kwargs)

    def _param(self) -> float:
        return self.rate

    def _noisy(self, x: np.ndarray, rng: Any) -> np.ndarray:
        alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        kept = rng.random(x.shape) >= self.rate
        return np.float32(a) * np.where(kept, x, np.float32(alpha_p)) + np.float32(b)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": None})
        return config


class ActivityRegularization(Layer):
    """Returns its input and adds ``l1 * sum|x| + l2 * sum(x**2)`` over the
    batch, divided by the batch size, to the loss (Keras's
    ``layers.ActivityRegularization``). In a model it runs natively as the
    activity regularizer of the stage before it."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        from . import regularizers as _regularizers
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=_regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1 = l1
        self.l2 = l2
        self.built = True

    def __call__(self, inputs: Any) -> np.ndarray:
        return np.asarray(inputs, dtype=np.float32)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.pop("activity_regularizer", None)
        config.update({"l1": self.l1, "l2": self.l2})
        return config


class Flatten(Layer):
    """Flattens each sample to one axis, e.g. 28x28 images to 784 features."""

    def __init__(self, data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"
        self.built = True

    def __call__(self, inputs: Any) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32)
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest))
        return (input_shape[0], size)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1: what
    the size leaves), as Keras's ``layers.Reshape``. Samples keep their
    values in order, so in a model it works as a ``Flatten`` does: a
    one-axis target before the first Dense layer flattens images, a
    multi-axis one must be flattened again before a Dense layer."""

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            target = tuple(target_shape)
        except TypeError:
            raise TypeError(f"`target_shape` must be a tuple of ints. Received: "
                            f"target_shape={target_shape!r}") from None
        for dim in target:
            if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
                raise TypeError(f"`target_shape` must be a tuple of ints. Received: "
                                f"target_shape={target}")
            if dim < -1:
                raise ValueError("Each dimension in `target_shape` must be a non-negative "
                                 "integer, or `-1` for a single unknown dimension. Received: "
                                 f"target_shape={target}.")
        if target.count(-1) > 1:
            raise ValueError("There must be at most one unknown dimension (-1) in "
                             f"`target_shape`. Received: target_shape={target}.")
        self.target_shape = tuple(int(d) for d in target)
        self.built = True

    def _resolved(self, sample_shape: Tuple[Any, ...]) -> Tuple[Any, ...]:
        """The target shape for samples of ``sample_shape`` (-1 filled in)."""
        if any(d is None for d in sample_shape):
            return tuple(None if d == -1 else d for d in self.target_shape)
        size = math.prod(sample_shape)
        if -1 not in self.target_shape:
            if size != math.prod(self.target_shape):
                raise ValueError("The total size of the tensor must be unchanged. Received: "
                                 f"input_shape={tuple(sample_shape)}, "
                                 f"target_shape={self.target_shape}")
            return self.target_shape
        known = math.prod(d for d in self.target_shape if d != -1)
        if known == 0 or size % known:
            raise ValueError("The total size of the tensor must be unchanged, however, the "
                             "input size cannot by divided by the specified dimensions in "
                             f"target_shape. Received: input_shape={tuple(sample_shape)}, "
                             f"target_shape={self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]
                             ) -> Tuple[Optional[int], ...]:
        shape = tuple(input_shape)
        return (shape[0],) + self._resolved(shape[1:])

    def __call__(self, inputs: Any) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32)
        return x.reshape((x.shape[0],) + self._resolved(x.shape[1:]))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config


class Identity(Layer):
    """Returns its input unchanged (Keras's ``layers.Identity``); a model
    runs no work for it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = True

    def __call__(self, inputs: Any) -> np.ndarray:
        return np.asarray(inputs, dtype=np.float32)


class _Merge(Layer):
    """Base of Keras's merge layers: called on a list of tensors (2D here:
    ``(batch, features)``), it combines them into one, folding them left to
    right as Keras's ``call`` does. In a functional model the engine runs
    them natively (a graph of stages); called on arrays, in numpy."""

    _mode = 0  # the engine's MergeMode (cpp/merge.h)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build_shape: Optional[List[Tuple[Optional[int], ...]]] = None

    def _shapes(self, input_shape: Any) -> List[Tuple[Optional[int], ...]]:
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"A merge layer should be called on a list of inputs. Received: "
                             f"input_shape={_shape_str(input_shape)} (not a list of shapes)")
        return [tuple(s) for s in input_shape]

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        shapes = self._shapes(input_shape)
        first = shapes[0]
        for other in shapes[1:]:
            if len(other) != len(first) or any(a is not None and b is not None and a != b
                                               for a, b in zip(first[1:], other[1:])):
                raise ValueError(f"Inputs have incompatible shapes. Received shapes "
                                 f"{_shape_str(first[1:])} and {_shape_str(other[1:])}")
        return first

    def build(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)
        self._build_shape = [tuple(s) for s in input_shape]
        self.built = True

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        return None if self._build_shape is None else {"input_shape": list(self._build_shape)}

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        if not isinstance(inputs, (list, tuple)):
            shape = getattr(inputs, "shape", None)
            raise ValueError(f"A merge layer should be called on a list of inputs. Received: "
                             f"input_shape={_shape_str(shape)} (not a list of shapes)")
        if any(isinstance(t, KerasTensor) for t in inputs):
            if not all(isinstance(t, KerasTensor) for t in inputs):
                raise ValueError(f"Layer '{self.name}' takes symbolic tensors only (from "
                                 "`Input()` and layer calls), or arrays only.")
            shapes = [tuple(t.shape) for t in inputs]
            self.build(shapes)
            out = KerasTensor(self.compute_output_shape(shapes), unique_name("keras_tensor"),
                              "float32")
            out._history = (self, list(inputs))  # type: ignore[assignment]
            self._record_node(list(inputs), out)
            return out
        xs = [np.asarray(x, dtype=np.float32) for x in inputs]
        self.compute_output_shape([x.shape for x in xs])
        return self._fold(xs)

    __call__._symbolic_aware = True  # type: ignore[attr-defined]


def _shape_str(shape: Any) -> str:
    return str(tuple(shape)) if isinstance(shape, (list, tuple)) else str(shape)


class Add(_Merge):
    """``keras.layers.Add``: the sum of its inputs."""
    _mode = 0

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    """``keras.layers.Subtract``: its first input minus its second."""
    _mode = 1

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        shapes = self._shapes(input_shape)
        if len(shapes) != 2:
            raise ValueError(f"A `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: input_shape={[_shape_str(s) for s in shapes]}"
                             .replace("'", ""))
        return super().compute_output_shape(shapes)

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        return xs[0] - xs[1]


class Multiply(_Merge):
    """``keras.layers.Multiply``: the elementwise product of its inputs."""
    _mode = 2

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Merge):
    """``keras.layers.Average``: the mean of its inputs."""
    _mode = 3

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out / np.float32(len(xs))


class Maximum(_Merge):
    """``keras.layers.Maximum``: the elementwise maximum of its inputs."""
    _mode = 4

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        out = xs[0]
        for x in xs[1:]:
            out = np.maximum(out, x)
        return out


class Minimum(_Merge):
    """``keras.layers.Minimum``: the elementwise minimum of its inputs."""
    _mode = 5

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        out = xs[0]
        for x in xs[1:]:
            out = np.minimum(out, x)
        return out


class Concatenate(_Merge):
    """``keras.layers.Concatenate``: its inputs joined along ``axis`` (the
    feature axis, -1 or 1, for the 2D activations fastdense runs)."""
    _mode = 6

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Argument `axis` must be an integer. Received: axis={axis!r}")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        shapes = self._shapes(input_shape)
        rank = len(shapes[0])
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or any(len(s) != rank for s in shapes):
            raise ValueError(f"A `Concatenate` layer requires inputs of the same rank with "
                             f"`axis` one of their axes. Received: input_shape="
                             f"{[_shape_str(s) for s in shapes]}, axis={self.axis}"
                             .replace("'", ""))
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(shapes[0], s)):
                if i != axis and a is not None and b is not None and a != b:
                    raise ValueError(
                        "A `Concatenate` layer requires inputs with matching shapes except "
                        f"for the concatenation axis. Received: input_shape="
                        f"{[_shape_str(x) for x in shapes]}".replace("'", ""))
        sizes = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[axis] = None if any(d is None for d in sizes) else int(sum(sizes))  # type: ignore
        return tuple(out)

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs, axis=self.axis)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


def add(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.add``: ``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.subtract``: ``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.multiply``: ``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.average``: ``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.maximum``: ``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.minimum``: ``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Any, axis: int = -1, **kwargs: Any) -> Any:
    """``keras.layers.concatenate``: ``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


class Normalization(Layer):
    """Keras's ``layers.Normalization``: ``(x - mean) / max(sqrt(variance),
    epsilon)`` per feature (or ``mean + x * max(...)`` with ``invert``), the
    statistics from ``adapt(data)`` or given as ``mean`` and ``variance``.

    In a model it runs as the first layer(s), on the whole input array once
    per ``fit`` / ``evaluate`` / ``predict`` call, before the native engine.
    """

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None,
                 invert: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis: Tuple[int, ...] = axis
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        if (mean is not None) != (variance is not None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be "
                             f"set. Received: mean={mean} and variance={variance}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("When setting values directly, `mean` and `variance` must have "
                                 f"the same shape. Received: mean shape {np.shape(mean)} and "
                                 f"variance shape {np.shape(variance)}")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError("The rank of `mean` must be less than or equal to the number "
                                 f"of axes ({len(self.axis)}). Received: mean shape "
                                 f"{np.shape(mean)} for axis {self.axis}")
        self.adapt_mean: Optional[Variable] = None
        self.adapt_variance: Optional[Variable] = None
        self.count: Optional[Variable] = None
        self._keep_axis: Tuple[int, ...] = ()
        self._reduce_axis: Tuple[int, ...] = ()
        self._broadcast_shape: List[int] = []
        self._fixed: Optional[Tuple[np.ndarray, np.ndarray]] = None

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        shape = tuple(input_shape)
        ndim = len(shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError("All `axis` values must be in the range [-ndim, ndim). Received "
                             f"inputs with ndim={ndim}, while axis={self.axis}")
        keep = tuple(sorted(a if a >= 0 else a + ndim for a in self.axis))
        for d in keep:
            if shape[d] is None:
                raise ValueError(f"All `axis` values to be kept must have a known shape. "
                                 f"Received axis={self.axis}, inputs.shape={shape}, with "
                                 f"unknown axis at index {d}")
        self._build_shape = shape
        self._keep_axis = keep
        self._reduce_axis = tuple(d for d in range(ndim) if d not in keep)
        self._broadcast_shape = [int(shape[d]) if d in keep else 1  # type: ignore[arg-type]
                                 for d in range(ndim)]
        stats_shape = tuple(int(shape[d]) for d in keep)  # type: ignore[arg-type]
        if self.input_mean is None:
            self.adapt_mean = Variable(np.zeros(stats_shape, np.float32), name="mean",
                                       trainable=False)
            self.adapt_variance = Variable(np.ones(stats_shape, np.float32), name="variance",
                                           trainable=False)
            self.count = Variable(np.int32(0), dtype="int32", name="count", trainable=False)
            for v in (self.adapt_mean, self.adapt_variance, self.count):
                v.path = f"{self.name}/{v.name}"
                v._owner = self
            self._path = self.name
        else:
            mean = np.asarray(self.input_mean, np.float32)
            variance = np.asarray(self.input_variance, np.float32)
            if mean.ndim:
                expanded = [1] * ndim
                for i in range(1, mean.ndim + 1):
                    expanded[keep[-i]] = mean.shape[-i]
                mean, variance = mean.reshape(expanded), variance.reshape(expanded)
            self._fixed = (np.broadcast_to(mean, self._broadcast_shape).astype(np.float32),
                           np.broadcast_to(variance, self._broadcast_shape).astype(np.float32))
        self.built = True

    @property
    def weights(self) -> List[Variable]:
        return [v for v in (self.adapt_mean, self.adapt_variance, self.count) if v is not None]

    @property
    def trainable_weights(self) -> List[Variable]:
        return []

    @property
    def non_trainable_weights(self) -> List[Variable]:
        return self.weights

    def adapt(self, data: Any) -> None:
        """Computes the mean and variance of ``data``: an array (one pass,
        as Keras: ``np.mean`` / ``np.var``), or an iterable of batches
        (merged batch by batch, as Keras)."""
        batches: Optional[Any] = None
        data = _data.dense(data)
        if isinstance(data, (np.ndarray, list)) and not (
                isinstance(data, list) and data and hasattr(data[0], "shape")):
            data = np.asarray(data)
            shape = data.shape
        elif hasattr(data, "__iter__"):
            it = iter(data)
            first = next(it, None)
            if first is None:
                raise ValueError("adapt() received an empty iterable (no batches). Expected at "
                                 "least one batch. Pass a non-empty iterable of arrays or "
                                 "tensors, e.g. layer.adapt([x]) or layer.adapt(list_of_batches).")
            first = np.asarray(first[0] if isinstance(first, tuple) else first)
            shape = first.shape
            batches = itertools.chain([first], it)
        else:
            raise TypeError(f"Unsupported data type: {type(data)}. `adapt` supports "
                            "`np.ndarray` and iterables of batches (e.g. list, generator).")
        if not self.built:
            self.build(shape)
        else:
            for d in self._keep_axis:
                if shape[d] != self._build_shape[d]:
                    raise ValueError(f"The layer was built with input_shape={self._build_shape}, "
                                     "but adapt() is being called with data with an "
                                     f"incompatible shape, data.shape={shape}")
        if self.adapt_mean is None:
            return  # (mean and variance were given: Keras's adapt changes nothing)
        if batches is None:
            total_mean = np.mean(data, axis=self._reduce_axis)
            total_var = np.var(data, axis=self._reduce_axis)
        else:
            stats = tuple(int(self._build_shape[d]) for d in self._keep_axis)  # type: ignore[arg-type]
            total_mean = np.zeros(stats, np.float32)
            total_var = np.zeros(stats, np.float32)
            total_count = 0
            for batch in batches:
                b = np.asarray(batch[0] if isinstance(batch, tuple) else batch, np.float32)
                for d in self._keep_axis:
                    if b.shape[d] != self._build_shape[d]:
                        raise ValueError("adapt() yielded a batch with incompatible shape. "
                                         f"Expected {self._build_shape}, got {tuple(b.shape)}.")
                b_mean = np.mean(b, axis=self._reduce_axis)
                b_var = np.var(b, axis=self._reduce_axis)
                count = int(np.prod([b.shape[d] for d in self._reduce_axis])) \
                    if self._reduce_axis else 1
                total_count += count
                w_new = float(count) / total_count
                w_old = 1.0 - w_new
                new_mean = total_mean * w_old + b_mean * w_new
                total_var = ((total_var + (total_mean - new_mean) ** 2) * w_old
                             + (b_var + (b_mean - new_mean) ** 2) * w_new)
                total_mean = new_mean
        self.adapt_mean.assign(np.asarray(total_mean, np.float32))
        assert self.adapt_variance is not None
        self.adapt_variance.assign(np.asarray(total_var, np.float32))

    @property
    def mean(self) -> Variable:
        """The mean it subtracts, in the shape that broadcasts against its
        input (``(1, features)`` for ``axis=-1``), as Keras's ``layer.mean``
        (after ``adapt`` or ``build``; ``.numpy()`` gives the array)."""
        return self._stat(0, "mean")

    @property
    def variance(self) -> Variable:
        """The variance it divides by (its square root), shaped as ``mean``."""
        return self._stat(1, "variance")

    def _stat(self, i: int, name: str) -> Variable:
        if not self.built:
            raise AttributeError(f"'Normalization' object has no attribute '{name}' (it is "
                                 "set when the layer is built or adapted)")
        return Variable(self._stats()[i].copy(), name=name, trainable=False)

    def _stats(self) -> Tuple[np.ndarray, np.ndarray]:
        if self._fixed is not None:
            return self._fixed
        assert self.adapt_mean is not None and self.adapt_variance is not None
        return (self.adapt_mean.numpy().reshape(self._broadcast_shape),
                self.adapt_variance.numpy().reshape(self._broadcast_shape))

    def __call__(self, inputs: Any) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32)
        if not self.built:
            raise ValueError("You must call `.build(input_shape)` on the layer before using it.")
        if self._keep_axis and x.ndim != len(self._build_shape):  # (axis=None: scalars)
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected ndim={len(self._build_shape)}, found ndim={x.ndim}. "
                             f"Full shape received: {x.shape}")
        mean, variance = self._stats()
        from .backend import epsilon
        scale = np.maximum(np.sqrt(variance), np.float32(epsilon()))
        if self.invert:
            return np.asarray(mean + x * scale, np.float32)
        return np.asarray((x - mean) / scale, np.float32)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"axis": self.axis, "invert": self.invert,
                       "mean": np.array(self.input_mean).tolist(),
                       "variance": np.array(self.input_variance).tolist()})
        return config


class Rescaling(Layer):
    """Keras's ``layers.Rescaling``: ``x * scale + offset`` in float32 (e.g.
    ``Rescaling(1 / 255)`` for images). In a model it runs as a first layer,
    like Normalization, on the whole input array before the engine."""

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg, value in (("scale", scale), ("offset", offset)):
            v = np.asarray(value)
            if v.dtype.kind not in "biuf" or not np.all(np.isfinite(v)):
                raise ValueError(f"Argument `{arg}` of Rescaling must be a finite number (or "
                                 f"an array of them). Received: {arg}={value!r}")
        self.scale = scale
        self.offset = offset
        self.built = True

    def __call__(self, inputs: Any) -> np.ndarray:
        x = np.asarray(inputs).astype(np.float32, copy=False)
        return np.asarray(x * np.asarray(self.scale, np.float32)
                          + np.asarray(self.offset, np.float32), np.float32)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset})
        return config


class Activation(Layer):
    """Applies an activation function (by name or as a callable). In a model
    it runs natively with the preceding Dense layer."""

    # the activation's arguments for the engine (none: its defaults)
    _act_params: Dict[str, float] = {}

    def __init__(self, activation: _activations.ActivationLike, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)
        self._act_code = _activations.native_code(self.activation)
        if self._act_code is None:
            raise ValueError(
                f"Activation {activation!r} has no native kernel in fastdense. "
                f"Supported: {sorted(_activations._CODES)}")
        self.built = True

    def __call__(self, inputs: Any) -> np.ndarray:
        return np.asarray(self.activation(np.asarray(inputs, dtype=np.float32)),
                          dtype=np.float32)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["activation"] = _activations.serialize(self.activation)
        return config


def _nonnegative(value: Any, what: str, arg: str) -> float:
    """A layer argument that must be a number >= 0 (Keras's check and text)."""
    if (value is None or isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not value >= 0 or not math.isfinite(value)):
        raise ValueError(f"{arg} of a {what} layer cannot be None or a negative value. "
                         f"Received: {arg}={value}")
    return float(value)


class _ParametricActivation(Activation):
    """An activation layer with arguments (ReLU, LeakyReLU, ELU, Softmax): in a
    model it runs natively, like Activation, with its arguments passed to the
    engine; called on an array it computes in numpy."""

    def _setup(self, fn: Any, code: int, params: Dict[str, float]) -> None:
        self.activation = fn
        self._act_code = code
        self._act_params = params
        self.built = True

    def get_config(self) -> Dict[str, Any]:
        return Layer.get_config(self)  # (no `activation` key: the class says it)


class ReLU(_ParametricActivation):
    """``keras.layers.ReLU``: ``max(x, 0)``, or with its arguments: values
    at or below ``threshold`` become 0 (minus ``negative_slope * (threshold -
    x)``) and values are capped at ``max_value``."""

    def __init__(self, max_value: Optional[float] = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        if max_value is not None:
            if (isinstance(max_value, bool)
                    or not isinstance(max_value, (int, float, np.integer, np.floating))
                    or not max_value >= 0):
                raise ValueError("max_value of a ReLU layer cannot be a negative value. "
                                 f"Received: max_value={max_value}")
        slope = _nonnegative(negative_slope, "ReLU", "negative_slope")
        thr = _nonnegative(threshold, "ReLU", "threshold")
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold
        self._setup(functools.partial(_activations.relu, negative_slope=slope,
                                      max_value=None if max_value is None else float(max_value),
                                      threshold=thr),
                    19, {"relu_slope": slope, "relu_threshold": thr,
                         "relu_max": math.inf if max_value is None else float(max_value)})

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config


class LeakyReLU(_ParametricActivation):
    """``keras.layers.LeakyReLU``: ``x`` if ``x > 0`` else ``negative_slope * x``
    (the layer's default slope is 0.3; the ``leaky_relu`` function's is 0.2)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:  # (Keras 2's name for it, deprecated in Keras 3)
            negative_slope = kwargs.pop("alpha")
        Layer.__init__(self, **kwargs)
        if (negative_slope is None or isinstance(negative_slope, bool)
                or not isinstance(negative_slope, (int, float, np.integer, np.floating))
                or not negative_slope >= 0 or not math.isfinite(negative_slope)):
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None "
                             "or negative value. Expected a float. Received: "
                             f"negative_slope={negative_slope}")
        self.negative_slope = negative_slope
        slope = float(negative_slope)
        self._setup(functools.partial(_activations.leaky_relu, negative_slope=slope),
                    _activations._CODES["leaky_relu"], {"leaky_slope": slope})

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class ELU(_ParametricActivation):
    """``keras.layers.ELU``: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating))
                or not math.isfinite(alpha)):
            raise ValueError(f"Argument `alpha` of ELU must be a finite number. "
                             f"Received: alpha={alpha!r}")
        self.alpha = alpha
        self._setup(functools.partial(_activations.elu, alpha=float(alpha)),
                    _activations._CODES["elu"], {"elu_alpha": float(alpha)})

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


class Softmax(_ParametricActivation):
    """``keras.layers.Softmax`` over the last axis (fastdense's layers are 2D:
    ``axis`` must be -1 or 1)."""

    def __init__(self, axis: Any = -1, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        if axis not in (-1, 1, [-1], (-1,), [1], (1,)):
            raise ValueError(f"fastdense runs Softmax over the features (axis=-1). "
                             f"Received: axis={axis!r}")
        self.axis = axis
        self._setup(_activations.softmax, _activations._CODES["softmax"], {})

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


class PReLU(Layer):
    """Parametric ReLU, as Keras 3's: ``relu(x) - alpha * relu(-x)`` with a
    learned slope ``alpha`` per feature (one for all with
    ``shared_axes=[1]``), initialized by ``alpha_initializer`` (zeros). In a
    model it runs natively between the layers around it."""

    def __init__(self, alpha_initializer: Any = "Zeros", alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from . import constraints as _constraints
        from . import regularizers as _regularizers
        self.alpha_initializer = _initializers.get(alpha_initializer)
        self.alpha_regularizer = _regularizers.get(alpha_regularizer)
        if self.alpha_regularizer is not None:
            self.alpha_regularizer._factors()
        self.alpha_constraint = _constraints.get(alpha_constraint)
        _constraints.native(self.alpha_constraint, 1)
        if shared_axes is None:
            self.shared_axes: Optional[List[int]] = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = list(shared_axes)
        else:
            self.shared_axes = [shared_axes]
        if self.shared_axes is not None and not all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                for a in self.shared_axes):
            raise TypeError(f"Expected `shared_axes` to be an int or a list of ints. "
                            f"Received: shared_axes={shared_axes!r}")
        self.alpha: Optional[Variable] = None
        self.input_dim: Optional[int] = None

    def _shared(self) -> bool:
        return bool(self.shared_axes)

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        shape = tuple(input_shape)
        if len(shape) != 2:
            raise NotImplementedError(f"fastdense runs PReLU on 2D activations (batch, "
                                      f"features). Received: input_shape={shape}")
        if self.shared_axes is not None and any(a != 1 for a in self.shared_axes):
            raise ValueError(f"PReLU on inputs of shape {shape} can share axis 1 only. "
                             f"Received: shared_axes={self.shared_axes}")
        width = _width_to_build(self, shape, -1)
        if width is None:
            return
        self.input_dim = width
        self._build_shape = shape
        self._path = self.name
        self.alpha = Variable(_weight_initializer(self.alpha_initializer),
                              shape=(1 if self._shared() else self.input_dim,), name="alpha")
        self.alpha.path = f"{self.name}/alpha"
        self.alpha._owner = self
        self.built = True

    @property
    def weights(self) -> List[Variable]:
        return [self.alpha] if self.built and self.alpha is not None else []

    def __call__(self, inputs: Any) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32)
        self.build((None, x.shape[-1]) if x.ndim == 2 else x.shape)
        alpha = self.alpha.value  # type: ignore[union-attr]
        return (np.maximum(x, 0) + -alpha * np.maximum(-x, 0)).astype(np.float32)

    def _stage(self) -> Dict[str, Any]:
        """The engine's stage for this layer."""
        return {"kind": 4, "shared": self._shared(), "activation": 0, "dropout": 0.0}

    def _native_constraints(self) -> Tuple[Any, Any]:
        from . import constraints as _constraints
        return (_constraints.native(self.alpha_constraint, 1), _constraints.native(None, 1))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "alpha_initializer": _init_config(self.alpha_initializer),
            "alpha_regularizer": _regularizers_serialize(self.alpha_regularizer),
            "alpha_constraint": _constraints_serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        })
        return config


_TENSOR_SEQ = itertools.count()


class KerasTensor:
    """A symbolic tensor, as Keras's ``KerasTensor``: ``shape`` includes the
    batch axis (``(None, 784)``). ``Input()`` makes one; calling a layer on
    one gives the layer's symbolic output, which remembers the layer and its
    input (``keras.Model(inputs, outputs)`` follows that chain)."""

    def __init__(self, shape: Sequence[Optional[int]], name: Optional[str] = None,
                 dtype: str = "float32") -> None:
        self.shape = tuple(shape)
        self.name = name
        self.dtype = dtype
        self.sparse = False
        # (the layer that produced it and that layer's input; None for an Input)
        self._history: Optional[Tuple["Layer", "KerasTensor"]] = None
        # (the order of creation: a layer called several times numbers its
        # calls, Keras's node indices, in this order)
        self._seq = next(_TENSOR_SEQ)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype}, sparse=False, "
                f"ragged=False, name={self.name}>")

    # x + y, x - y, x * y between two symbolic tensors: Keras's ops.add,
    # ops.subtract, ops.multiply (operations in the model's graph, not layers)
    def _op(self, other: Any, cls: Any, swap: bool = False) -> "KerasTensor":
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(
                other, (bool, np.bool_)):
            if not math.isfinite(float(other)):
                raise NotImplementedError(f"fastdense runs {cls._symbol} with a finite number. "
                                          f"Received: {other!r}")
            return _OpScalar(cls._class_name, other, swap)(self)
        if cls is _OpTrueDivide:
            raise NotImplementedError("fastdense runs `/` between a symbolic tensor and a "
                                      f"number. Received: {type(other).__name__} {other!r}")
        if not isinstance(other, KerasTensor):
            raise NotImplementedError(
                f"fastdense runs {cls._symbol} between two symbolic tensors of the same shape, "
                f"or a tensor and a number; received {type(other).__name__} {other!r}.")
        if tuple(self.shape) != tuple(other.shape):
            raise NotImplementedError(
                f"fastdense runs {cls._symbol} between tensors of the same shape (no "
                f"broadcasting). Received shapes {self.shape} and {other.shape}")
        return cls()([other, self] if swap else [self, other])

    def __add__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpAdd)

    def __radd__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpAdd, swap=True)

    def __sub__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpSubtract)

    def __rsub__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpSubtract, swap=True)

    def __mul__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpMultiply)

    def __truediv__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpTrueDivide)

    def __rtruediv__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpTrueDivide, swap=True)

    def __neg__(self) -> "KerasTensor":
        return _OpScalar("Negative")(self)

    def __rmul__(self, other: Any) -> "KerasTensor":
        return self._op(other, _OpMultiply, swap=True)


class _Op(_Merge):
    """An operation of Keras's ops module on two symbolic tensors (``x + y``
    in a functional model): a node of the graph that runs as a merge stage
    but is not one of the model's ``layers``, as in Keras."""
    _symbol = ""
    _class_name = ""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("name") is None:  # (a name given, e.g. by a loaded config, takes no number)
            kwargs["name"] = unique_name(snake_case(self._class_name))
        super().__init__(**kwargs)


class _OpAdd(_Op):
    _mode, _symbol, _class_name = 0, "`+`", "Add"

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        return xs[0] + xs[1]


class _OpSubtract(_Op):
    _mode, _symbol, _class_name = 1, "`-`", "Subtract"

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        return xs[0] - xs[1]


class _OpMultiply(_Op):
    _mode, _symbol, _class_name = 2, "`*`", "Multiply"

    def _fold(self, xs: List[np.ndarray]) -> np.ndarray:
        return xs[0] * xs[1]


class _OpScalar(_Op):
    """An operation of Keras's ops module between a symbolic tensor and a
    number (``x * 0.5``, ``1 - x``, ``x / 4``, ``-x``): a node of the graph
    that runs as an engine stage with the constant (cpp/scalar_ops.h), not
    one of the model's ``layers``, as in Keras."""

    # (Keras's op, the number first) -> the engine's ScalarOp
    _CODES = {("Add", False): 1, ("Add", True): 1, ("Subtract", False): 2,
              ("Subtract", True): 3, ("Multiply", False): 4, ("Multiply", True): 4,
              ("TrueDivide", False): 5, ("TrueDivide", True): 6, ("Negative", False): 7}

    def __init__(self, class_name: str, const: Any = None, first: bool = False,
                 **kwargs: Any) -> None:
        self._class_name = class_name
        self._code = self._CODES[(class_name, first)]
        self._const, self._first = const, first  # (as given: Keras's config keeps it)
        self._symbol = {"Add": "`+`", "Subtract": "`-`", "Multiply": "`*`",
                        "TrueDivide": "`/`", "Negative": "unary `-`"}[class_name]
        super().__init__(**kwargs)

    @property
    def _value(self) -> float:
        return 0.0 if self._const is None else float(self._const)

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        return tuple(input_shape)

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        if not isinstance(inputs, KerasTensor):
            raise ValueError(f"Op '{self.name}' takes one symbolic tensor. Received: {inputs!r}")
        out = KerasTensor(tuple(inputs.shape), unique_name("keras_tensor"), "float32")
        out._history = (self, inputs)
        self._record_node(inputs, out)
        self.built = True
        return out

    __call__._symbolic_aware = True  # type: ignore[attr-defined]

    def _args(self, tensor: Any) -> List[Any]:
        """The op's arguments as Keras writes them: the tensor and the number,
        in the order they were given."""
        if self._class_name == "Negative":
            return [tensor]
        return [self._const, tensor] if self._first else [tensor, self._const]


class _OpTrueDivide:
    """``x / c`` and ``c / x`` (Keras's ops.true_divide with a number; between
    two tensors fastdense has no merge stage for it)."""
    _symbol, _class_name = "`/`", "TrueDivide"


class _OutputJoin(Concatenate):
    """A model's several outputs side by side: the engine runs one output
    array and the model splits it (``_multi.Outputs``). Not one of the
    model's layers: not in ``layers``, its config or its summary."""

    def __init__(self) -> None:
        super().__init__(axis=-1, name="_outputs")


InputSpec = KerasTensor  # (the name fastdense used for it first)


def _input_dtype(dtype: Any) -> str:
    """An Input's dtype: any real numeric dtype (the data is cast to float32,
    as the Dense layers after it compute in float32)."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):  # (a serialized DTypePolicy)
        dtype = (dtype.get("config") or {}).get("name", "float32")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biuf":
        raise ValueError(f"Invalid dtype for an Input: fastdense takes real numbers. "
                         f"Received: dtype={dtype!r}")
    return dt.name


class InputLayer(Layer):
    """Declares the model's input: ``shape`` excludes the batch axis,
    ``batch_shape`` includes it (Keras 3's arguments)."""

    def __init__(self, shape: Optional[Sequence[Optional[int]]] = None,
                 batch_size: Optional[int] = None, dtype: Any = None,
                 sparse: Optional[bool] = None, batch_shape: Optional[Sequence[Any]] = None,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        if shape is None:
            shape = kwargs.pop("input_shape", None)
        if batch_shape is None:
            batch_shape = kwargs.pop("batch_input_shape", None)
        if kwargs.pop("ragged", None):
            raise ValueError("fastdense does not support ragged inputs (ragged=True).")
        if sparse:
            raise ValueError("fastdense takes dense inputs: `sparse=True` is not supported "
                             "(a scipy.sparse matrix passed to fit/predict is densified).")
        if isinstance(shape, int):
            shape = (shape,)
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
        if batch_size is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `batch_size` and `batch_shape` at the same "
                             "time.")
        if shape is None and batch_shape is None:
            raise ValueError("You must pass a `shape` argument.")
        self.input_dtype = _input_dtype(dtype)
        super().__init__(name=name or unique_name("input_layer"), **kwargs)
        if batch_shape is not None:
            self._batch_input_shape = tuple(batch_shape)
        else:
            self._batch_input_shape = (batch_size,) + tuple(shape)  # type: ignore[arg-type]
        self.batch_shape = self._batch_input_shape
        self.built = True

    @property
    def output(self) -> InputSpec:
        if self._tensor is None:  # (its one symbolic tensor, as Input() returns it)
            self._tensor = InputSpec(self._batch_input_shape, self.name,  # type: ignore[arg-type]
                                     self.input_dtype)
            self._tensor._layer = self  # type: ignore[attr-defined]
        return self._tensor

    @property
    def input(self) -> InputSpec:
        return self.output

    _tensor: Optional[InputSpec] = None


def Input(shape: Optional[Sequence[Optional[int]]] = None, batch_size: Optional[int] = None,
          dtype: Any = None, sparse: Optional[bool] = None,
          batch_shape: Optional[Sequence[Any]] = None, name: Optional[str] = None,
          **kwargs: Any) -> InputSpec:
    """A symbolic input of the given shape (excluding the batch axis; or
    ``batch_shape`` including it), for ``Sequential([Input(shape=(784,)),
    Dense(...)])``."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, name=name, **kwargs)
    return layer.output


def serialize(layer: Layer) -> Dict[str, Any]:
    """Keras's ``layers.serialize``: ``{"module", "class_name", "config",
    "registered_name"}`` (and ``build_config`` once built)."""
    from . import saving as _saving
    return _saving.layer_to_config(layer)


def deserialize(config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None
                ) -> Layer:
    """Keras's ``layers.deserialize``: the layer of ``serialize``'s (or
    Keras's) output."""
    from . import saving as _saving
    return _saving.layer_from_config(config, custom_objects)
