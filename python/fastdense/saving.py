"""Saving and loading in Keras 3's formats.

* ``.keras``: the zip archive ``keras.saving.save_model`` writes, holding
  ``metadata.json``, ``config.json`` (Keras's serialized ``Sequential``,
  with its ``build_config`` and ``compile_config``) and ``model.weights.h5``.
* ``.weights.h5``: the same weights file on its own (``save_weights``).
* ``.h5``/``.hdf5``: Keras's legacy H5 model format, which Keras 3 still
  writes (``model.save("m.h5")``, ``ModelCheckpoint("best.h5")``) and reads
  (``keras.models.load_model``); see "legacy H5" below for its layout.

Files written here load in real Keras 3 (``keras.saving.load_model``) and
files written by Keras 3 load here, as long as they hold a ``Sequential``
stack of ``Dense``, ``BatchNormalization``, ``Dropout``, ``Flatten`` and
``Activation`` layers with what fastdense implements (weight regularizers and
constraints, activity regularizers).  The optimizer's state (step count,
learning rate and slot variables) travels with the weights in Keras's order,
so training resumes exactly where it stopped.

Layout of the weights file (as Keras 3.15 writes it)::

    vars                    attrs name=<model name>   (empty)
    layers/dense/vars/0     kernel (in, out)          attrs name=<layer name>
    layers/dense/vars/1     bias (out,)               (when use_bias)
    layers/dense_1/vars/... the next Dense layer      (keys by position, not name)
    layers/batch_normalization/vars/0..3
                            gamma (if scale), beta (if center), moving_mean,
                            moving_variance: Keras's trainable variables, then
                            its non-trainable ones (``Layer.save_own_variables``)
    layers/dropout/vars     (empty: weightless layers have a group too)
    optimizer/vars/0        iterations (int scalar)   attrs name=<optimizer name>
    optimizer/vars/1        learning_rate (float32 scalar; absent when the
                            learning rate is a schedule or a callable)
    optimizer/vars/2...     slot variables, see ``_slot_groups``, then the
                            optimizer's scalars (Nadam's u_product)

Layout of a legacy H5 model file (``legacy_h5_format.save_model_to_hdf5``)::

    attrs keras_version, backend, model_config (JSON: {"class_name": "Sequential",
          "config": ...}, each layer entry {"class_name", "config"} only),
          training_config (JSON, compiled models: the compile arguments with
          losses/metrics in Keras's legacy form, and "optimizer_config")
    model_weights           attrs layer_names (every layer, in order), backend,
                            keras_version
    model_weights/<layer>   attrs weight_names: "<model>/<layer>/kernel", ...
                            (trainable weights, then non-trainable), each a
                            dataset at that path inside the group
    model_weights/top_level_model_weights   (no weights)
    optimizer_weights       attrs weight_names: Keras 3's optimizer.variables
                            by path ("adam/iteration", "adam/learning_rate",
                            "adam/<model>_<layer>_kernel_momentum", ...), the
                            same list as optimizer/vars above

Loading it, weights go to the layers that have weights, in order (Keras's
topological loading). Note that Keras 3.15 itself restores only the
iteration count and learning rate from ``optimizer_weights`` (its loader
builds the optimizer on no variables); fastdense restores the whole state.

Loading never unpickles nor executes code from a file: functions and classes
named in a file resolve only to fastdense's own or to ``custom_objects``.
``h5py`` is an optional dependency (``pip install fastdense[h5]``); it is
imported only when a weights file is read or written.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import secrets
import warnings
import zipfile
import zlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _core
from . import activations as _activations
from . import initializers as _initializers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import schedules as _schedules
from . import constraints as _constraints
from . import _registry
from ._naming import snake_case
from ._registry import (CustomObjectScope, custom_object_scope, get_custom_objects,
                        get_registered_name, get_registered_object, register_keras_serializable)
from .layers import (ELU, Activation, ActivityRegularization, AlphaDropout, BatchNormalization,
                     GaussianDropout, GaussianNoise, Dense, Dropout, Flatten, Identity,
                     LayerNormalization, LeakyReLU, Normalization, Rescaling,
                     ReLU, Reshape, RMSNormalization, Softmax, UnitNormalization,
                     InputLayer, Layer, PReLU, _RowNormalization, _Merge, Add, Subtract,
                     Multiply, Average, Maximum, Minimum, Concatenate, _Op, _OpAdd,
                     _OpSubtract, _OpMultiply, _OpScalar)

__all__ = [
    "save_model", "load_model", "save_weights", "load_weights", "to_json", "model_from_json",
    "model_to_config", "model_from_config", "model_to_state", "model_from_state",
    "KERAS_VERSION", "layer_to_config", "layer_from_config", "register_keras_serializable", "get_registered_name",
    "get_registered_object", "get_custom_objects", "custom_object_scope", "CustomObjectScope",
]

#: The Keras release whose ``.keras`` layout this module writes (``metadata.json``).
KERAS_VERSION = "3.15.1"

_CONFIG_FILENAME = "config.json"
_METADATA_FILENAME = "metadata.json"
_WEIGHTS_FILENAME = "model.weights.h5"
_WEIGHTS_NPZ_FILENAME = "model.weights.npz"
_MAX_JSON_BYTES = 256 << 20          # a config.json larger than this is not a real model
_BOMB_FLOOR_BYTES = 1 << 32          # as Keras: members/datasets past 4 GiB ...
_BOMB_MAX_EXPANSION = 100            # ... that expand more than 100x are refused

VarGroups = Dict[str, Dict[str, np.ndarray]]   # "layers/dense" -> {"0": kernel, "1": bias}


class _FileNotFoundError(FileNotFoundError, ValueError):
    """A missing file: a ``FileNotFoundError`` that is also the ``ValueError``
    Keras raises in that case."""


# ---------------------------------------------------------------------------------- h5py
def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            "Saving and loading Keras model and weight files (`.keras`, `.weights.h5`, "
            "legacy `.h5`/`.hdf5`) requires the h5py package, an optional dependency of "
            "fastdense. Install it with "
            "`pip install h5py` (or `pip install fastdense[h5]`).") from e
    return h5py


# ---------------------------------------------------------------------------------- naming


def _layer_keys(layers: Sequence[Layer]) -> List[str]:
    """Keras's keys for the layers in the weights file: the snake-cased class
    name, made unique by position (``dense``, ``dense_1``, ...), never the
    layer's own name."""
    used: Dict[str, int] = {}
    keys = []
    for layer in layers:
        base = snake_case(type(layer).__name__)
        if base in used:
            used[base] += 1
            keys.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            keys.append(base)
    return keys


def _is_model(obj: Any) -> bool:
    """A model nested in another (an entry of its ``layers``)."""
    from .models import Model
    return isinstance(obj, Model)


def _flat(stack: Sequence[Any]) -> List[Layer]:
    """The layers of a stack, nested models' layers in their place."""
    return [l for item in stack for l in (item._layers if _is_model(item) else [item])]


def _weight_layers(layers: Sequence[Any], prefix: str, sub: str = "layers"
                   ) -> List[Tuple[str, Any]]:
    """(group path, layer or nested model) for each entry of the weights file,
    as Keras's saving walks ``layers``: a nested model's group, then its own
    layers under ``<its group>/layers``."""
    out: List[Tuple[str, Any]] = []
    for key, layer in zip(_layer_keys(layers), layers):
        path = f"{prefix}/{key}"
        out.append((path, layer))
        if _is_model(layer):
            out += _weight_layers(layer.layers, f"{path}/{sub}", sub)
    return out


# ---------------------------------------------------------------------------------- JSON
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _dtype_policy() -> Dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
            "registered_name": None}


Collector = Optional[Dict[str, Any]]


def _collect(collect: Collector, name: str, obj: Any) -> str:
    """Records ``obj`` under ``name`` (made unique) for ``model_to_state``."""
    if collect is None:
        return name
    key, k = name, 0
    while key in collect and collect[key] is not obj:
        k += 1
        key = f"{name}#{k}"
    collect[key] = obj
    return key


def _function_config(fn: Callable[..., Any], what: str,
                     collect: Collector = None) -> Dict[str, Any]:
    """A named function as Keras 3 serializes one (looked up by name on loading).
    With ``collect`` (in-memory states), any function, lambdas included, is
    recorded there and referenced by a unique name."""
    name = getattr(fn, "__name__", None)
    if name is not None:  # (a registered function is saved as "package>name", as Keras)
        name = get_registered_name(fn)
    if collect is not None:
        return {"module": "builtins", "class_name": "function",
                "config": _collect(collect, name or "function", fn),
                "registered_name": "function"}
    if not name or name == "<lambda>":
        raise ValueError(
            f"Cannot save a model whose {what} is a lambda: loading it back would mean "
            "executing code stored in the file, which fastdense never does. Use a named "
            "function instead, and pass it through `custom_objects` when loading.")
    return {"module": "builtins", "class_name": "function", "config": name,
            "registered_name": "function"}


# Keras 3.15's initializer configs, key for key.
_GLOROT_LIKE = ("seed", "input_axes", "output_axes")
_INIT_KEYS: Dict[str, Tuple[str, ...]] = {
    "Zeros": (), "Ones": (), "Constant": ("value",),
    "RandomUniform": ("seed", "minval", "maxval"),
    "RandomNormal": ("seed", "mean", "stddev"),
    "TruncatedNormal": ("seed", "mean", "stddev"),
    "VarianceScaling": ("seed", "scale", "mode", "distribution", "input_axes", "output_axes"),
    "GlorotUniform": _GLOROT_LIKE, "GlorotNormal": _GLOROT_LIKE,
    "HeUniform": _GLOROT_LIKE, "HeNormal": _GLOROT_LIKE,
    "LecunUniform": _GLOROT_LIKE, "LecunNormal": _GLOROT_LIKE,
}


def _serialize_object(obj: Any, module: str, what: str, collect: Collector = None) -> Any:
    """Keras's ``serialize_keras_object`` for fastdense's optimizers, losses,
    metrics and initializers (strings stay strings; functions by name)."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, type):
        obj = obj()
    cls = type(obj)
    if hasattr(obj, "get_config"):
        config = _jsonable(obj.get_config())
        builtin = cls.__module__ in (_initializers.__name__, _losses.__name__,
                                     _metrics.__name__, _optimizers.__name__)
        if builtin and cls.__name__ in _INIT_KEYS and module == "keras.initializers":
            config = {k: config.get(k) for k in _INIT_KEYS[cls.__name__]}
        if builtin and cls.__name__ == "LossFunctionWrapper":
            config["fn"] = _function_config(obj.fn, what, collect)
        if builtin and cls.__name__ == "MeanMetricWrapper":
            config["fn"] = _function_config(obj._fn, what, collect)
        if builtin:
            return {"module": module, "class_name": cls.__name__, "config": config,
                    "registered_name": None}
        return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
                "registered_name": _collect(collect, get_registered_name(cls), cls)}
    if callable(obj):
        return _function_config(obj, what, collect)
    raise ValueError(f"Cannot serialize the {what} {obj!r}: expected a string, a function "
                     "or an object with `get_config()`.")


def _serialize_optimizer(opt: _optimizers.Optimizer, collect: Collector = None
                         ) -> Dict[str, Any]:
    out = _serialize_object(opt, "keras.optimizers", "optimizer", collect)
    lr = getattr(opt, "_learning_rate", None)
    if isinstance(lr, _schedules.LearningRateSchedule):
        builtin = type(lr) in _schedules._BUILTIN.values()
        out["config"]["learning_rate"] = _jsonable(_schedules.serialize(lr)) if builtin else \
            _serialize_object(lr, "keras.optimizers.schedules", "learning rate schedule", collect)
    elif callable(lr):
        out["config"]["learning_rate"] = _function_config(lr, "learning rate", collect)
    else:
        # Keras stores the learning rate as its float32 variable reads back.
        out["config"]["learning_rate"] = float(np.float32(opt.learning_rate))
    return out


def _regularizer_config(reg: Any, collect: Collector = None) -> Any:
    """A weight or activity regularizer as Keras 3.15 serializes it: ``L1``
    keeps its factor as a float32 tensor, so its config reads it back as
    ``float(float32(l1))``; ``L2`` and ``L1L2`` keep the Python float."""
    if reg is None:
        return None
    cls = type(reg)
    if cls.__module__ != _regularizers.__name__:  # a user subclass (of L1L2, to run natively)
        return {"module": cls.__module__, "class_name": cls.__name__,
                "config": _jsonable(reg.get_config()),
                "registered_name": _collect(collect, get_registered_name(cls), cls)}
    out = _jsonable(_regularizers.serialize(reg))
    if cls is _regularizers.L1:
        out["config"] = {"l1": float(np.float32(reg.l1))}
    return out


def _constraint_config(constraint: Any, collect: Collector = None) -> Any:
    """A weight constraint as Keras serializes one (``keras.constraints``)."""
    if constraint is None:
        return None
    cls = type(constraint)
    if cls.__module__ != _constraints.__name__:  # a user subclass with a native kernel
        return {"module": cls.__module__, "class_name": cls.__name__,
                "config": _jsonable(constraint.get_config()),
                "registered_name": _collect(collect, get_registered_name(cls), cls)}
    return _jsonable(_constraints.serialize(constraint))


def _base_layer_config(layer: Layer, collect: Collector = None) -> Dict[str, Any]:
    """Keras's ``Layer.get_config``: name, trainable, dtype, and the activity
    regularizer only when the layer has one."""
    cfg: Dict[str, Any] = {"name": layer.name, "trainable": bool(layer.trainable),
                           "dtype": _dtype_policy()}
    if getattr(layer, "activity_regularizer", None) is not None:
        cfg["activity_regularizer"] = _regularizer_config(layer.activity_regularizer, collect)
    return cfg


def _subclass_extras(layer: Layer, cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The extra constructor arguments of a user subclass of a fastdense layer."""
    return {k: v for k, v in _jsonable(layer.get_config()).items()
            if k not in cfg and k not in _LAYER_IGNORED}


def _dense_config(layer: Dense, collect: Collector = None) -> Dict[str, Any]:
    cfg = _base_layer_config(layer, collect)
    cfg.update({
        "units": int(layer.units),
        "activation": (_weightless_config(layer.activation, None, collect)
                       if isinstance(layer.activation, Activation)
                       else _activations.serialize(layer.activation)),
        "use_bias": bool(layer.use_bias),
        "kernel_initializer": _serialize_object(layer.kernel_initializer, "keras.initializers",
                                                "kernel initializer", collect),
        "bias_initializer": _serialize_object(layer.bias_initializer, "keras.initializers",
                                              "bias initializer", collect),
        "kernel_regularizer": _regularizer_config(layer.kernel_regularizer, collect),
        "bias_regularizer": _regularizer_config(layer.bias_regularizer, collect),
        "kernel_constraint": _constraint_config(layer.kernel_constraint, collect),
        "bias_constraint": _constraint_config(layer.bias_constraint, collect),
        "quantization_config": None,
    })
    if type(layer) is not Dense:  # a user subclass: keep its extra arguments
        cfg.update(_subclass_extras(layer, cfg))
    return cfg


def _batchnorm_config(layer: BatchNormalization, collect: Collector = None) -> Dict[str, Any]:
    """Keras 3.15's ``BatchNormalization.get_config``, key for key."""
    cfg = _base_layer_config(layer, collect)
    what = f"of layer {layer.name!r}"

    def init(obj: Any, name: str) -> Any:
        return _serialize_object(obj, "keras.initializers", f"{name} {what}", collect)

    cfg.update({
        "axis": int(layer.axis),
        "momentum": layer.momentum,
        "epsilon": layer.epsilon,
        "center": bool(layer.center),
        "scale": bool(layer.scale),
        "beta_initializer": init(layer.beta_initializer, "beta initializer"),
        "gamma_initializer": init(layer.gamma_initializer, "gamma initializer"),
        "moving_mean_initializer": init(layer.moving_mean_initializer,
                                        "moving mean initializer"),
        "moving_variance_initializer": init(layer.moving_variance_initializer,
                                            "moving variance initializer"),
        "beta_regularizer": _regularizer_config(layer.beta_regularizer, collect),
        "gamma_regularizer": _regularizer_config(layer.gamma_regularizer, collect),
        "beta_constraint": _constraint_config(layer.beta_constraint, collect),
        "gamma_constraint": _constraint_config(layer.gamma_constraint, collect),
        "synchronized": False,
        "renorm": False,
        "renorm_clipping": None,
        "renorm_momentum": layer.renorm_momentum,
    })
    if type(layer) is not BatchNormalization:
        cfg.update(_subclass_extras(layer, cfg))
    return cfg


def _rownorm_config(layer: _RowNormalization, collect: Collector = None) -> Dict[str, Any]:
    """Keras 3.15's ``LayerNormalization.get_config`` / ``RMSNormalization.get_config``,
    key for key (the axis a list once built, as Keras's)."""
    cfg = _base_layer_config(layer, collect)
    axis = list(layer.axis) if isinstance(layer.axis, list) else int(layer.axis)
    if isinstance(layer, UnitNormalization):
        cfg["axis"] = axis
        base: type = UnitNormalization
    elif isinstance(layer, RMSNormalization):
        cfg.update({"axis": axis, "epsilon": layer.epsilon})
        base = RMSNormalization
    else:
        assert isinstance(layer, LayerNormalization)
        what = f"of layer {layer.name!r}"

        def init(obj: Any, name: str) -> Any:
            return _serialize_object(obj, "keras.initializers", f"{name} {what}", collect)

        cfg.update({
            "axis": axis,
            "epsilon": layer.epsilon,
            "center": bool(layer.center),
            "scale": bool(layer.scale),
            "rms_scaling": bool(layer.rms_scaling),
            "beta_initializer": init(layer.beta_initializer, "beta initializer"),
            "gamma_initializer": init(layer.gamma_initializer, "gamma initializer"),
            "beta_regularizer": _regularizer_config(layer.beta_regularizer, collect),
            "gamma_regularizer": _regularizer_config(layer.gamma_regularizer, collect),
            "beta_constraint": _constraint_config(layer.beta_constraint, collect),
            "gamma_constraint": _constraint_config(layer.gamma_constraint, collect),
        })
        base = LayerNormalization
    if type(layer) is not base:
        cfg.update(_subclass_extras(layer, cfg))
    return cfg


def _prelu_config(layer: PReLU, collect: Collector = None) -> Dict[str, Any]:
    """Keras 3.15's ``PReLU.get_config``, key for key."""
    cfg = _base_layer_config(layer, collect)
    cfg.update({
        "alpha_initializer": _serialize_object(layer.alpha_initializer, "keras.initializers",
                                               f"alpha initializer of layer {layer.name!r}",
                                               collect),
        "alpha_regularizer": _regularizer_config(layer.alpha_regularizer, collect),
        "alpha_constraint": _constraint_config(layer.alpha_constraint, collect),
        "shared_axes": None if layer.shared_axes is None else list(layer.shared_axes),
    })
    if type(layer) is not PReLU:
        cfg.update(_subclass_extras(layer, cfg))
    return cfg


def _compile_config(model: Any, collect: Collector = None) -> Dict[str, Any]:
    if not getattr(model, "compiled", False) or model.optimizer is None:
        return {}
    metrics = list(getattr(model, "_metric_ids", []) or [])
    weighted = list(getattr(model, "_weighted_ids", []) or [])
    loss_weights = _plain(getattr(model, "_loss_weights_arg", None))
    if getattr(model, "_multi", None) is not None:  # (several outputs: the structures given)
        def struct(value: Any, module: str, kind: str) -> Any:
            if isinstance(value, (list, tuple)):
                return [struct(v, module, kind) for v in value]
            if isinstance(value, dict):
                return {str(k): struct(v, module, kind) for k, v in value.items()}
            return None if value is None else _serialize_object(value, module, kind, collect)
        return {
            "optimizer": _serialize_optimizer(model.optimizer, collect),
            "loss": struct(model.loss, "keras.losses", "loss"),
            "loss_weights": loss_weights,
            "metrics": struct(model._metrics_arg, "keras.metrics", "metric") or None,
            "weighted_metrics": struct(model._weighted_arg, "keras.metrics", "metric") or None,
            "run_eagerly": bool(getattr(model, "run_eagerly", False)),
            "steps_per_execution": getattr(model, "steps_per_execution", 1),
            "jit_compile": bool(getattr(model, "jit_compile", True)),
        }
    return {
        "optimizer": _serialize_optimizer(model.optimizer, collect),
        "loss": _serialize_object(model.loss, "keras.losses", "loss", collect),
        "loss_weights": loss_weights,
        "metrics": [_serialize_object(m, "keras.metrics", "metric", collect)
                    for m in metrics] or None,
        "weighted_metrics": [_serialize_object(m, "keras.metrics", "metric", collect)
                             for m in weighted] or None,
        "run_eagerly": bool(getattr(model, "run_eagerly", False)),
        "steps_per_execution": getattr(model, "steps_per_execution", 1),
        "jit_compile": bool(getattr(model, "jit_compile", True)),
    }


def _plain(value: Any) -> Any:
    """compile's ``loss_weights`` as JSON: numpy numbers as Python's, tuples
    as lists, within lists and dicts."""
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def layer_to_config(layer: Layer, input_shape: Any = None,
                    collect: Collector = None) -> Dict[str, Any]:
    """One layer as Keras's ``layers.serialize`` writes it: module,
    class_name, config, registered_name and (once built) build_config.
    ``input_shape``: the shape reaching it in a model, for the layers whose
    build config Keras keeps (Flatten, Rescaling)."""
    if _is_model(layer):
        return model_to_config(layer, collect)
    if type(layer) in _WEIGHTLESS:
        return _weightless_config(layer, input_shape, collect)
    if type(layer) is Normalization:  # (Keras 3.15's config, key for key)
        norm = _base_layer_config(layer, collect)
        norm.update({"axis": list(layer.axis), "invert": layer.invert,
                     "mean": _jsonable(np.array(layer.input_mean).tolist()),
                     "variance": _jsonable(np.array(layer.input_variance).tolist())})
        norm_entry: Dict[str, Any] = {"module": "keras.layers", "class_name": "Normalization",
                                      "config": norm, "registered_name": None}
        if layer.built:
            norm_entry["build_config"] = {"input_shape": list(layer._build_shape)}
        return norm_entry
    if isinstance(layer, Dense):
        base: type = Dense
        config: Dict[str, Any] = _dense_config(layer, collect)
    elif isinstance(layer, BatchNormalization):
        base = BatchNormalization
        config = _batchnorm_config(layer, collect)
    elif isinstance(layer, _RowNormalization):
        base = next(c for c in (UnitNormalization, RMSNormalization, LayerNormalization)
                    if isinstance(layer, c))
        config = _rownorm_config(layer, collect)
    elif isinstance(layer, PReLU):
        base = PReLU
        config = _prelu_config(layer, collect)
    else:
        raise ValueError(f"Cannot save layer {layer.name!r} of type "
                         f"{type(layer).__name__}: fastdense saves Dense, "
                         "BatchNormalization, LayerNormalization, RMSNormalization, PReLU, "
                         "Normalization, Rescaling, Dropout, the noise layers, "
                         "ActivityRegularization, Flatten, Reshape, Identity and activation "
                         "(Activation, ReLU, LeakyReLU, ELU, Softmax) layers.")
    plain = type(layer) is base
    entry: Dict[str, Any] = {
        "module": "keras.layers" if plain else type(layer).__module__,
        "class_name": type(layer).__name__,
        "config": config,
        "registered_name": None if plain else _collect(collect, type(layer).__name__,
                                                        type(layer)),
    }
    if layer.built:
        # the shape the layer was built for: (batch, features) in fastdense
        entry["build_config"] = {"input_shape": [None, int(getattr(layer, "input_dim"))]}
    return entry


def layer_from_config(config: Mapping[str, Any],
                      custom_objects: Optional[Mapping[str, Any]] = None) -> Layer:
    """Keras's ``layers.deserialize``: the layer of ``layer_to_config``'s (or
    Keras's) output, built when it has a build config."""
    ctx = _Context("Could not deserialize the layer", custom_objects)
    entry = dict(config)
    layer, _ = _layer_from_entry(entry, 0, ctx)
    build = entry.get("build_config") or {}
    if isinstance(layer, (Dense, BatchNormalization, _RowNormalization, PReLU)) and \
            build.get("input_shape") is not None:
        layer.build(tuple(build["input_shape"]))
    return layer


def _layer_from_entry(entry: Dict[str, Any], index: int, ctx: "_Context"
                      ) -> Tuple[Layer, Optional[Tuple[Any, ...]]]:
    """The layer of one entry of a Keras config, and the model input shape
    that entry declares (its build config), for when it comes first."""
    layer_cls = entry.get("class_name")
    layer_cfg = entry.get("config") or {}
    build = entry.get("build_config") or {}
    built_for = build.get("input_shape")
    if _is_model_entry(entry, ctx):
        nested = _model_from_config(entry, ctx, compile=False)
        return nested, (tuple(nested._input_shape) if nested._input_shape is not None else None)
    if layer_cls in _WEIGHTLESS_NAMES and not entry.get("registered_name"):
        declared = (tuple(built_for) if layer_cls in ("Flatten", "Rescaling")
                    and built_for is not None else None)
        return _weightless_from_config(str(layer_cls), layer_cfg, ctx), declared
    if layer_cls == "Normalization" and not entry.get("registered_name"):
        declared = ((None,) + tuple(built_for[1:])
                    if built_for is not None and len(built_for) >= 2 else None)
        return _normalization_from_config(entry, ctx), declared
    custom = ctx.custom(entry.get("registered_name"), layer_cls)
    if layer_cls == "BatchNormalization" or (
            isinstance(custom, type) and issubclass(custom, BatchNormalization)):
        return _batchnorm_from_config(entry, index, ctx)
    if layer_cls in ("LayerNormalization", "RMSNormalization", "UnitNormalization") or (
            isinstance(custom, type) and issubclass(custom, _RowNormalization)):
        return _rownorm_from_config(entry, index, ctx)
    if layer_cls == "PReLU" or (isinstance(custom, type) and issubclass(custom, PReLU)):
        return _prelu_from_config(entry, index, ctx)
    if layer_cls == "Dense" or custom is not None:
        return _dense_from_config(entry, index, ctx)
    raise ctx.error(
        f"layer {layer_cfg.get('name', f'#{index}')!r} is a {layer_cls}, which fastdense "
        "does not support: it loads Sequential stacks of Dense, BatchNormalization, "
        "LayerNormalization, RMSNormalization, PReLU, Normalization, Rescaling, Dropout, "
        "GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization, Flatten, Reshape, "
        "Identity and activation (Activation, ReLU, LeakyReLU, ELU, Softmax) layers.")


def _is_model_entry(entry: Dict[str, Any], ctx: "_Context") -> bool:
    """A config entry that is a model (nested in the model being read)."""
    from .models import Model
    if entry.get("class_name") in ("Sequential", "Functional", "Model"):
        return True
    custom = ctx.custom(entry.get("registered_name"), entry.get("class_name"))
    return isinstance(custom, type) and issubclass(custom, Model)


def _call_kwargs(layer: Layer) -> Dict[str, Any]:
    """The call arguments Keras records in a functional model's node for a
    layer called on a tensor."""
    if _is_model(layer):
        return {"mask": None}
    if isinstance(layer, (Dropout, GaussianNoise, GaussianDropout, AlphaDropout)):
        return {"training": False}
    if isinstance(layer, BatchNormalization):
        return {"mask": None}
    return {}


def _input_layer_entry(name: str, batch_shape: List[Any]) -> Dict[str, Any]:
    """An InputLayer's entry in a functional config."""
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": batch_shape, "dtype": "float32", "sparse": False,
                       "ragged": False, "name": name, "optional": False},
            "registered_name": None, "name": name, "inbound_nodes": []}


def _tensor_entry(shape: Sequence[Any], source: str, node: int = 0) -> Dict[str, Any]:
    """A symbolic tensor in a functional config: its shape and the layer
    (and that layer's call, for one applied several times) that made it
    (Keras's ``__keras_tensor__`` entry)."""
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(shape), "dtype": "float32",
                       "keras_history": [source, node, 0]}}


def _functional_entry(model: Any, layers: List[Dict[str, Any]], output: str,
                      collect: Collector) -> Dict[str, Any]:
    """A functional model's whole entry around its layer entries."""
    return {
        "module": "keras.src.models.functional", "class_name": "Functional",
        "config": {"name": model.name, "trainable": bool(model.trainable), "layers": layers,
                   "input_layers": _input_layers_config(model),
                   "output_layers": _output_layers_config(model, output)},
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": _compile_config(model, collect),
    }


def _functional_to_config(model: Any, collect: Collector = None) -> Dict[str, Any]:
    """A functional model as Keras 3 writes one: each layer's entry with its
    name and its one inbound node (the tensor of the layer before it)."""
    if model._graph is not None:
        return _graph_to_config(model, collect)
    input_layer = model._input_layer
    batch_shape = [None] + [int(d) for d in model._input_shape[1:]]
    layers = [_input_layer_entry(input_layer.name, batch_shape)]
    shape, previous = batch_shape, input_layer.name
    for layer in model._stack:
        entry = layer_to_config(layer, shape, collect)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [{"args": [_tensor_entry(shape, previous)],
                                   "kwargs": _call_kwargs(layer)}]
        layers.append(entry)
        shape, previous = list(layer.compute_output_shape(tuple(shape))), layer.name
    return _functional_entry(model, layers, previous, collect)


def _input_layers_config(model: Any) -> Any:
    """``input_layers`` as Keras writes it: ``[name, 0, 0]`` for one input, a
    list of those for several, a dict of them for dict inputs."""
    refs = [[t._layer.name, 0, 0] for t in model._input_tensors]
    if model._inputs_struct == "dict":
        return dict(zip(model._input_keys, refs))
    return refs if model._inputs_struct == "list" else refs[0]


def _output_layers_config(model: Any, name: str) -> Any:
    """``output_layers``: ``[name, 0, 0]``, in a list when the model's
    ``outputs`` were a list (as Keras keeps the structure)."""
    outs = model._outs
    if outs is not None:  # (several: a list of them, or a dict in the user's order)
        ends = [[*model._tensor_ref(t), 0] for t in model._output_tensors]
        refs = dict(zip(outs.keys, ends)) if outs.keys else None
        return {k: refs[k] for k in outs.user_keys} if refs else ends
    node = model._tensor_ref(model._output_tensor)[1] if model._graph is not None else 0
    return [[name, node, 0]] if model._outputs_list else [name, node, 0]


def _graph_to_config(model: Any, collect: Collector = None) -> Dict[str, Any]:
    """A functional model with branches as Keras 3 writes it: the layers in
    ``model.layers`` order, each with its one inbound node (a merge's: the
    list of the tensors it combines)."""
    layers: List[Dict[str, Any]] = []
    by_layer: Dict[int, Dict[str, Any]] = {}
    for layer, srcs, out in model._graph_order:
        if not srcs:  # an InputLayer
            layers.append(_input_layer_entry(layer.name, list(out.shape)))
            continue
        tensors = [_tensor_entry(t.shape, *model._tensor_ref(t)) for t in srcs]
        if isinstance(layer, _OpScalar):  # (an op with a number: x * 0.5, its own argument)
            tensors = layer._args(tensors[0])
        if isinstance(layer, _Op):  # (Keras's ops: x + y; each tensor its own argument)
            layers.append({"module": "keras.src.ops.numpy", "class_name": layer._class_name,
                           "config": {"name": layer.name}, "registered_name": layer._class_name,
                           "name": layer.name,
                           "inbound_nodes": [{"args": tensors, "kwargs": {}}]})
            continue
        node = {"args": [tensors] if isinstance(layer, _Merge) else tensors,
                "kwargs": _call_kwargs(layer)}
        entry = by_layer.get(id(layer))
        if entry is not None:  # (a layer applied again: another inbound node)
            entry["inbound_nodes"].append(node)
            continue
        entry = by_layer[id(layer)] = layer_to_config(layer, list(srcs[0].shape), collect)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [node]
        layers.append(entry)
    for entry in layers:  # (a layer's calls in Keras's node order: the order they were made)
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            calls = [c for c in model._graph_order if c[0].name == entry["name"]]
            rank = [model._node_of.get(id(c[2]), 0) for c in calls]
            entry["inbound_nodes"] = [n for _, n in sorted(zip(rank, nodes), key=lambda p: p[0])]
    return _functional_entry(model, layers, model._graph[-1][0].name, collect)


def model_to_config(model: Any, collect: Collector = None) -> Dict[str, Any]:
    """The model as ``keras.saving.serialize_keras_object`` writes a
    ``Sequential`` (or a ``Functional``): its ``config.json`` inside a
    ``.keras`` file.

    ``collect``: a dict that receives the custom functions and classes the
    config names (for in-memory copies; files never hold code)."""
    from .models import Functional
    if type(model) is Functional:
        return _functional_to_config(model, collect)
    layers: List[Dict[str, Any]] = []
    input_shape = model._input_shape
    batch_shape = None if input_shape is None else [None] + [int(d) for d in input_shape[1:]]
    if batch_shape is not None:
        names = {l.name for l in model._stack}
        input_name = getattr(model, "_input_layer_name", None) or "input_layer"
        k = 0
        while input_name in names:
            k += 1
            input_name = f"input_layer_{k}"
        layers.append({"module": "keras.layers", "class_name": "InputLayer",
                       "config": {"batch_shape": batch_shape, "dtype": "float32",
                                  "sparse": False, "ragged": False, "name": input_name,
                                  "optional": False},
                       "registered_name": None})
    shape = batch_shape
    for layer in model._stack:
        layers.append(layer_to_config(layer, shape, collect))
        if shape is not None:
            shape = list(layer.compute_output_shape(tuple(shape)))
    config = {"name": model.name, "trainable": bool(model.trainable),
              "dtype": _dtype_policy(), "layers": layers}
    if batch_shape is not None:
        config["build_input_shape"] = batch_shape
    plain_model = type(model).__name__ == "Sequential" and type(model).__module__.startswith(
        "fastdense")
    out: Dict[str, Any] = {
        "module": "keras" if plain_model else type(model).__module__,
        "class_name": "Sequential" if plain_model else type(model).__name__,
        "config": config,
        "registered_name": None if plain_model else _collect(collect, type(model).__name__,
                                                              type(model)),
    }
    if model.built and batch_shape is not None:
        out["build_config"] = {"input_shape": batch_shape}
    out["compile_config"] = _compile_config(model, collect)
    return out


_MERGES = (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate)
_OPS = {"Add": _OpAdd, "Subtract": _OpSubtract, "Multiply": _OpMultiply}
_WEIGHTLESS = (Dropout, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization,
               Flatten, Reshape, Identity, Rescaling, Activation, ReLU, LeakyReLU, ELU,
               Softmax) + _MERGES
_WEIGHTLESS_NAMES = tuple(c.__name__ for c in _WEIGHTLESS)


def _weightless_config(layer: Layer, input_shape: Any,
                       collect: Collector = None) -> Dict[str, Any]:
    """Keras's config entry for a Dropout, noise, Flatten or activation layer."""
    config = _base_layer_config(layer, collect)
    if isinstance(layer, (Dropout, AlphaDropout)):
        config.update({"rate": layer.rate, "seed": layer.seed, "noise_shape": None})
    elif isinstance(layer, GaussianDropout):
        config.update({"rate": layer.rate, "seed": layer.seed})
    elif isinstance(layer, GaussianNoise):
        config.update({"stddev": layer.stddev, "seed": layer.seed})
    elif isinstance(layer, ActivityRegularization):
        config.pop("activity_regularizer", None)
        config.update({"l1": layer.l1, "l2": layer.l2})
    elif isinstance(layer, Flatten):
        config["data_format"] = layer.data_format
    elif isinstance(layer, Reshape):
        config["target_shape"] = list(layer.target_shape)
    elif isinstance(layer, ReLU):
        config.update({"max_value": layer.max_value, "negative_slope": layer.negative_slope,
                       "threshold": layer.threshold})
    elif isinstance(layer, LeakyReLU):
        config["negative_slope"] = layer.negative_slope
    elif isinstance(layer, ELU):
        config["alpha"] = layer.alpha  # (Keras's ELU leaves it out; its from_config takes it)
    elif isinstance(layer, Softmax):
        config["axis"] = layer.axis
    elif isinstance(layer, Identity):
        pass
    elif isinstance(layer, Rescaling):
        config.update({"scale": _jsonable(layer.scale), "offset": _jsonable(layer.offset)})
    elif isinstance(layer, Concatenate):
        config["axis"] = layer.axis
    elif isinstance(layer, _Merge):
        pass
    else:
        assert isinstance(layer, Activation)  # (the last of _WEIGHTLESS)
        config["activation"] = _activations.serialize(layer.activation)
    entry: Dict[str, Any] = {"module": "keras.layers", "class_name": type(layer).__name__,
                             "config": config, "registered_name": None}
    if isinstance(layer, (Flatten, Rescaling)) and input_shape is not None:
        entry["build_config"] = {"input_shape": list(input_shape)}
    if isinstance(layer, _Merge) and layer._build_shape is not None:
        entry["build_config"] = {"input_shape": [list(s) for s in layer._build_shape]}
    return entry


def _normalization_from_config(entry: Dict[str, Any], ctx: "_Context") -> Normalization:
    config = entry.get("config") or {}
    what = f"layer {config.get('name')!r} (Normalization)"
    _check_dtype(config.get("dtype"), what, ctx)
    try:
        layer = Normalization(axis=config.get("axis", -1), mean=config.get("mean"),
                              variance=config.get("variance"),
                              invert=config.get("invert", False), name=config.get("name"),
                              trainable=config.get("trainable", True))
        build = entry.get("build_config") or {}
        if build.get("input_shape") is not None:
            layer.build(tuple(build["input_shape"]))
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"{what}: {e}") from None
    return layer


_ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax")


def _weightless_from_config(cls_name: str, config: Dict[str, Any], ctx: "_Context") -> Layer:
    name = config.get("name")
    what = f"layer {name!r} ({cls_name})"
    _check_dtype(config.get("dtype"), what, ctx)
    kw = {"name": name, "trainable": config.get("trainable", True),
          "activity_regularizer": _regularizer_from_config(
              config.get("activity_regularizer"), ctx, what, "activity_regularizer")}
    if cls_name in ("Dropout", "AlphaDropout") and config.get("noise_shape") is not None:
        raise ctx.error(f"{what} sets noise_shape, which fastdense does not support.")
    activation = config.get("activation", "linear")
    if cls_name == "Activation" and (isinstance(activation, dict) or (
            isinstance(activation, str) and ctx.custom(activation) is not None)):
        activation = _resolve_function(activation, ctx, f"activation of {what}",
                                       _activations._FUNCTIONS)
    try:
        if cls_name == "Dropout":
            return Dropout(config.get("rate", 0.0), seed=config.get("seed"), **kw)
        if cls_name == "GaussianNoise":
            return GaussianNoise(config.get("stddev", 0.0), seed=config.get("seed"), **kw)
        if cls_name == "GaussianDropout":
            return GaussianDropout(config.get("rate", 0.0), seed=config.get("seed"), **kw)
        if cls_name == "AlphaDropout":
            return AlphaDropout(config.get("rate", 0.0), seed=config.get("seed"), **kw)
        if cls_name == "ActivityRegularization":
            kw.pop("activity_regularizer")
            return ActivityRegularization(config.get("l1", 0.0), config.get("l2", 0.0), **kw)
        if cls_name == "Flatten":
            return Flatten(data_format=config.get("data_format"), **kw)
        if cls_name == "Reshape":
            target = config.get("target_shape")
            if not isinstance(target, (list, tuple)):
                raise ctx.error(f"{what} has no target_shape list. Received: "
                                f"target_shape={target!r}")
            return Reshape(target, **kw)
        if cls_name == "Identity":
            return Identity(**kw)
        if cls_name == "Rescaling":
            return Rescaling(config.get("scale", 1.0), config.get("offset", 0.0), **kw)
        if cls_name == "ReLU":
            return ReLU(max_value=config.get("max_value"),
                        negative_slope=config.get("negative_slope", 0.0),
                        threshold=config.get("threshold", 0.0), **kw)
        if cls_name == "LeakyReLU":  # (Keras 2 files call the slope `alpha`)
            return LeakyReLU(config.get("negative_slope", config.get("alpha", 0.3)), **kw)
        if cls_name == "ELU":
            return ELU(config.get("alpha", 1.0), **kw)
        if cls_name == "Softmax":
            return Softmax(config.get("axis", -1), **kw)
        if cls_name == "Concatenate":
            return Concatenate(config.get("axis", -1), **kw)
        merge = next((c for c in _MERGES if c.__name__ == cls_name), None)
        if merge is not None:
            return merge(**kw)
        return Activation(activation, **kw)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"{what}: {e}") from None


def to_json(model: Any, **kwargs: Any) -> str:
    """``model.to_json()``: the Keras config as a JSON string (``kwargs`` go to
    ``json.dumps``)."""
    return json.dumps(model_to_config(model), **kwargs)


# ---------------------------------------------------------------------------------- variables
def _variable_layout(model: Any) -> List[Tuple[int, Tuple[int, ...]]]:
    """(offset in the flat parameter buffer, shape) of each trainable variable,
    in Keras's order (each layer's kernel, then its bias; a BatchNormalization
    layer's gamma, then beta)."""
    out: List[Tuple[int, Tuple[int, ...]]] = []
    if model._net is None or not model.trainable:
        return out
    owners = model._stage_owners
    for li, off, shape, trainable in model._net.variables():
        if trainable and owners[li].trainable:
            out.append((int(off), tuple(int(d) for d in shape)))
    return out


def _slot_groups(opt: _optimizers.Optimizer) -> List[List[int]]:
    """Keras's order of the optimizer's slot variables, as lists of the
    engine's slot indices (cpp/optimizers.h): each inner list is one
    ``add_optimizer_variables`` call, whose slots Keras interleaves per model
    variable; the calls follow one another (``Optimizer._slot_names``).

    SGD: [momentums] if momentum != 0.  RMSprop: [velocities], [momentums] if
    momentum > 0, [average_gradients] if centered.  Adam/AdamW: [momentums and
    velocities interleaved], [velocity_hats] if amsgrad.  Adagrad:
    [accumulators].  Adadelta: [accumulated_grads and accumulated_delta_vars].
    Adamax: [momentums and norms].  Nadam: [momentums and velocities] (then
    its u_product scalar).  Lion: [momentums].  Lamb: [momentums and velocities].
    Ftrl: [accumulators and linears].
    """
    names = None
    if isinstance(opt, _optimizers.Optimizer):
        try:
            names = opt._slot_names()
        except NotImplementedError:
            names = None
    if names is None:
        raise ValueError(f"Unknown optimizer {type(opt).__name__}: cannot map its state to "
                         "Keras's.")
    groups, k = [], 0
    for group in names:
        groups.append(list(range(k, k + len(group))))
        k += len(group)
    return groups


def _lr_variable(opt: _optimizers.Optimizer) -> bool:
    """Whether Keras keeps a ``learning_rate`` variable (not for schedules)."""
    return not opt._dynamic_lr()


def _optimizer_slots(model: Any) -> List[Tuple[int, int, Tuple[int, ...]]]:
    """(engine slot, offset, shape) for each Keras optimizer variable after
    ``iterations`` and ``learning_rate``."""
    layout = _variable_layout(model)
    out: List[Tuple[int, int, Tuple[int, ...]]] = []
    if getattr(model.optimizer, "use_ema", False):  # (slot -1: the averages, built first)
        out.extend((-1, off, shape) for off, shape in layout)
    if getattr(model.optimizer, "gradient_accumulation_steps", None):  # (-2: accumulators)
        out.extend((-2, off, shape) for off, shape in layout)
    groups = _slot_groups(model.optimizer)
    for group in groups:
        for off, shape in layout:
            for slot in group:
                out.append((slot, off, shape))
    # scalars after the slots: engine state[slots * n + k] = "slot" slots, offset k
    slots = sum(len(g) for g in groups)
    for k in range(len(model.optimizer._scalar_names())):
        out.append((slots, k, ()))
    return out


def _slot_source(net: Any, slot: int, state: np.ndarray, n: int, off: int
                 ) -> Tuple[np.ndarray, int]:
    """(buffer, start) of an optimizer variable: slot -1 the moving averages,
    -2 the gradient accumulators (buffers laid out as the parameters), else
    the engine's slot in the optimizer state."""
    if slot == -1:
        return net.ema, off
    if slot == -2:
        return net.grad_acc, off
    return state, slot * n + off


def _optimizer_ready(model: Any) -> bool:
    return (getattr(model, "compiled", False) and model.optimizer is not None
            and model._net is not None and getattr(model.optimizer, "_net", None) is model._net)


def _collect_variables(model: Any) -> List[Tuple[str, str, List[np.ndarray]]]:
    """(group path, name attribute, arrays) of each group of the weights file."""
    groups: List[Tuple[str, str, List[np.ndarray]]] = [("", model.name, [])]
    for path, layer in _weight_layers(model.layers, "layers"):
        groups.append((path, layer.name, [] if _is_model(layer) else
                       # (Normalization's count: an int32 scalar; np.array keeps shape ())
                       [np.array(w.value, order="C", dtype=w.value.dtype
                                 if w.value.dtype.kind in "iu" else np.float32)
                        for w in layer.weights]))
    if getattr(model, "compiled", False) and model.optimizer is not None:
        opt = model.optimizer
        arrays: List[np.ndarray] = [np.asarray(opt._raw_iterations(), dtype=np.int64)]
        if _lr_variable(opt):
            arrays.append(np.asarray(opt.learning_rate, dtype=np.float32))
        if _optimizer_ready(model):
            net = model._net
            n = int(net.num_params)
            state = net.optimizer_state
            for slot, off, shape in _optimizer_slots(model):
                size = int(np.prod(shape))
                src, start = _slot_source(net, slot, state, n, off)
                arrays.append(np.array(src[start:start + size], dtype=np.float32)
                              .reshape(shape))
        groups.append(("optimizer", str(opt.name), arrays))
    return groups


def _as_float32(arr: np.ndarray, attrs_dtype: Optional[str]) -> np.ndarray:
    if attrs_dtype == "bfloat16" and arr.dtype.itemsize == 2 and arr.dtype.kind in "uiV":
        return (arr.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.asarray(arr, dtype=np.float32)


class _Context:
    """Where we are reading from, the custom objects and the safe mode, for
    error messages and lookups."""

    def __init__(self, source: str, custom_objects: Optional[Mapping[str, Any]] = None,
                 safe_mode: bool = True) -> None:
        self.source = source
        self.custom_objects = dict(custom_objects or {})
        # (config.enable_unsafe_deserialization() lifts safe mode, as in Keras)
        from . import config as _config
        self.safe_mode = safe_mode and not getattr(_config, "_unsafe_deserialization", False)

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.source}: {message}")

    def custom(self, *names: Any) -> Any:
        """The user's object for the first of ``names`` found: in
        ``custom_objects``, a ``custom_object_scope`` or the registry
        (``register_keras_serializable``)."""
        for name in names:
            if isinstance(name, str):
                if name in self.custom_objects:
                    return self.custom_objects[name]
                found = _registry.get_registered_object(name)
                if found is not None:
                    return found
        return None


def _apply_variables(model: Any, groups: VarGroups, ctx: _Context,
                     load_optimizer: bool = True, skip_mismatch: bool = False) -> None:
    """Checks every layer variable against the model, then assigns them all,
    then the optimizer's state when the model is compiled and the file has it.
    As Keras: entries of layers the model does not have are ignored (a
    truncated model loads its layers); with ``skip_mismatch`` a layer whose
    variables do not match is left as it is, with one warning for all."""
    root = "layers"
    if not any(g.startswith("layers/") for g in groups) and any(
            g.startswith("_layer_checkpoint_dependencies/") for g in groups):
        root = "_layer_checkpoint_dependencies"  # files from Keras 2.13
    # (a Functional's InputLayer too: it has no variables)
    leaves = [(path, layer) for path, layer in _weight_layers(model.layers, root, root)
              if not _is_model(layer)]
    plan: List[Tuple[Any, np.ndarray]] = []
    skipped: List[str] = []
    for path, layer in leaves:
        entries = groups.get(path, {})
        expected = layer.weights
        names = [w.name for w in expected]
        problem = None
        if len(entries) != len(expected) or any(str(i) not in entries
                                                 for i in range(len(expected))):
            problem = (f"Layer '{layer.name}' expected {len(expected)} variables, but received "
                       f"{len(entries)} variables during loading. Expected: {names}")
        layer_plan: List[Tuple[Any, np.ndarray]] = []
        for i, var in enumerate(expected if problem is None else []):
            arr = entries[str(i)]
            if arr.dtype.kind in "iu" and np.asarray(var.value).dtype.kind in "iu":
                layer_plan.append((var, arr))  # (an integer variable: Normalization's count)
                continue
            if arr.dtype.kind != "f":
                raise ctx.error(f"variable '{path}/vars/{i}' ({var.path}) has dtype {arr.dtype}; "
                                "expected floating point values.")
            if tuple(arr.shape) != tuple(var.shape):
                problem = (f"shape mismatch for variable '{path}/vars/{i}' ({var.path}): the "
                           f"model expects shape {tuple(var.shape)} but the file holds shape "
                           f"{tuple(arr.shape)}.")
                break
            layer_plan.append((var, arr))
        if problem is not None:
            if not skip_mismatch:
                raise ctx.error(problem)
            skipped.append(f"<{type(layer).__name__} name={layer.name}>: {problem}")
            continue
        plan.extend(layer_plan)
    for var, arr in plan:
        var.assign(np.asarray(arr, dtype=np.asarray(var.value).dtype))
    if skipped:
        warnings.warn(f"A total of {len(skipped)} objects could not be loaded. Example error "
                      f"message for object {skipped[0]}", stacklevel=3)
    if load_optimizer and "optimizer" in groups and getattr(model, "compiled", False) \
            and model.optimizer is not None:
        _apply_optimizer(model, groups["optimizer"], ctx)


def _apply_optimizer(model: Any, entries: Dict[str, np.ndarray], ctx: _Context) -> None:
    opt = model.optimizer
    if not _optimizer_ready(model):
        return  # unbuilt: nothing to restore into (as Keras with an unbuilt optimizer)
    # (the engine learns the loaded model's frozen layers now, not at the
    # first fit: optimizer.variables lists the trainable variables' slots)
    if hasattr(model, "_sync_trainable"):
        model._sync_trainable()
    opt._ref_paths = [w.path for w in model.trainable_weights]
    slots = _optimizer_slots(model)
    head = 2 if _lr_variable(opt) else 1  # iterations[, learning_rate]
    expected = head + len(slots)
    fresh = len(entries) == head and all(str(i) in entries for i in range(head))
    if fresh:
        slots = []  # saved before its first step (Keras builds slots lazily): fresh state
    elif len(entries) != expected or any(str(i) not in entries for i in range(len(entries))):
        warnings.warn(
            f"Skipping variable loading for optimizer '{opt.name}', because it has "
            f"{expected} variables whereas the saved optimizer has {len(entries)} "
            f"variables. ({ctx.source})", stacklevel=3)
        return
    net = model._net
    n = int(net.num_params)
    for i, (slot, off, shape) in enumerate(slots):
        arr = entries[str(i + head)]
        if tuple(arr.shape) != tuple(shape) or arr.dtype.kind != "f":
            raise ctx.error(
                f"shape mismatch for optimizer variable 'optimizer/vars/{i + head}': the model "
                f"expects shape {tuple(shape)} but the file holds shape {tuple(arr.shape)} "
                f"({arr.dtype}).")
    for name in [str(i) for i in range(head)]:
        if entries[name].shape not in ((), (1,)):
            raise ctx.error(f"optimizer variable 'optimizer/vars/{name}' should be a scalar; "
                            f"the file holds shape {entries[name].shape}.")
    state = net.optimizer_state
    if fresh:
        state[...] = _core.optimizer_init_state(opt._spec(), n)
        for extra in (net.ema, net.grad_acc):
            if extra is not None:
                extra[...] = 0.0
    for i, (slot, off, shape) in enumerate(slots):
        size = int(np.prod(shape))
        dst, start = _slot_source(net, slot, state, n, off)
        dst[start:start + size] = np.asarray(entries[str(i + head)], np.float32).reshape(-1)
    net.iterations = int(np.asarray(entries["0"]).reshape(()))
    if head == 2:
        opt.learning_rate = float(np.asarray(entries["1"], dtype=np.float32).reshape(()))


# ---------------------------------------------------------------------------------- h5 I/O
def _write_h5(fileobj: Any, groups: List[Tuple[str, str, List[np.ndarray]]]) -> None:
    h5py = _h5py()
    with h5py.File(fileobj, "w") as f:
        for path, name, arrays in groups:
            g = f.create_group(f"{path}/vars" if path else "vars")
            g.attrs["name"] = name
            for i, arr in enumerate(arrays):
                g.create_dataset(str(i), data=arr)


def _h5_bytes(groups: List[Tuple[str, str, List[np.ndarray]]]) -> bytes:
    buf = io.BytesIO()
    _write_h5(buf, groups)
    return buf.getvalue()


def _h5_child(group: Any, name: str, ctx: _Context, what: str, where: str) -> Any:
    """``group[name]``, refusing soft and external links (to other files)."""
    h5py = _h5py()
    link = group.get(name, getlink=True)
    if link is None:
        raise ctx.error(f"{what} has no '{where}'.")
    if not isinstance(link, h5py.HardLink):
        raise ctx.error(f"{what}: refusing the {type(link).__name__} at '{where}'.")
    return group[name]


def _h5_dataset_array(ds: Any, ctx: _Context, what: str, where: str) -> np.ndarray:
    """A dataset's values, refusing external or virtual datasets and shape
    bombs; floating point values (bfloat16 included) as float32."""
    if ds.external or ds.is_virtual:
        raise ctx.error(f"{what}: refusing the external or virtual dataset '{where}'.")
    declared = int(np.prod(ds.shape or ())) * ds.dtype.itemsize
    stored = ds.id.get_storage_size()
    if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_MAX_EXPANSION * stored:
        raise ctx.error(f"{what}: dataset '{where}' declares {declared} bytes but stores "
                        f"{stored}; refusing it.")
    arr = np.asarray(ds[()])
    tag = ds.attrs.get("dtype")
    if isinstance(tag, bytes):
        tag = tag.decode()
    if arr.dtype.kind == "f" or tag == "bfloat16":
        arr = _as_float32(arr, tag)
    return arr


def _read_h5(fileobj: Any, ctx: _Context, what: str) -> VarGroups:
    """Every ``.../vars/<i>`` dataset of a Keras weights file, refusing links
    to other files, external or virtual datasets, and shape bombs."""
    h5py = _h5py()
    try:
        f = h5py.File(fileobj, "r")
    except Exception as e:  # OSError for a bad signature; others for truncation
        raise ctx.error(f"{what} is not a readable HDF5 file (it may be empty, truncated or "
                        f"corrupt): {e}") from None
    out: VarGroups = {}

    def visit(group: Any, path: str) -> None:
        for name in list(group.keys()):
            where = f"{path}/{name}" if path else name
            obj = _h5_child(group, name, ctx, what, where)
            if isinstance(obj, h5py.Group):
                if name == "vars":
                    entries: Dict[str, np.ndarray] = {}
                    for key in list(obj.keys()):
                        ds = _h5_child(obj, key, ctx, what, f"{where}/{key}")
                        if isinstance(ds, h5py.Dataset):
                            entries[key] = _h5_dataset_array(ds, ctx, what, f"{where}/{key}")
                    out[path] = entries
                else:
                    visit(obj, where)

    try:
        with f:
            visit(f, "")
    except Exception as e:
        if isinstance(e, ValueError) and str(e).startswith(ctx.source):
            raise  # ours, already naming the file
        raise ctx.error(f"{what} could not be read (it may be truncated or corrupt): "
                        f"{type(e).__name__}: {e}") from None
    return out


# ---------------------------------------------------------------------------------- files
def _write_atomic(filepath: str, data: bytes) -> None:
    """Writes ``data`` to a new file in the target's folder, then renames it
    over the target: readers see the old file or the new one, never half."""
    folder = os.path.dirname(os.path.abspath(filepath))
    base = os.path.basename(filepath)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_overwrite(filepath: str, overwrite: bool) -> None:
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"File already exists: filepath={filepath}. Pass "
                              "`overwrite=True` to replace it.")


def _archive_bytes(model: Any) -> bytes:
    if not model.built:
        warnings.warn("You are saving a model that has not yet been built. It might not "
                      "contain any weights yet. Consider building the model first by "
                      "calling it on some data.", stacklevel=3)
    config_json = json.dumps(model_to_config(model))
    metadata_json = json.dumps({
        "keras_version": KERAS_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    })
    weights = _h5_bytes(_collect_variables(model))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # stored, not deflated: as Keras writes it
        zf.writestr(_METADATA_FILENAME, metadata_json)
        zf.writestr(_CONFIG_FILENAME, config_json)
        zf.writestr(_WEIGHTS_FILENAME, weights)
    return buf.getvalue()


def save_model(model: Any, filepath: Any, overwrite: bool = True,
               include_optimizer: bool = True) -> None:
    """``model.save(filepath)``: writes a Keras 3 ``.keras`` archive (config,
    weights and optimizer state) atomically. ``filepath`` may also be a
    writable binary file object.

    A ``.h5`` or ``.hdf5`` name writes Keras's legacy H5 format instead, as
    ``keras.saving.save_model`` does (Keras logs a deprecation notice there;
    fastdense stays silent): the ``model_config`` and, for a compiled model,
    ``training_config`` attributes, the ``model_weights`` group, and the
    optimizer's state under ``optimizer_weights`` unless
    ``include_optimizer=False`` (which also leaves out ``training_config``,
    so the file loads uncompiled). ``include_optimizer`` only matters there."""
    _h5py()
    if hasattr(filepath, "write"):
        filepath.write(_archive_bytes(model))
        return
    filepath = os.fspath(filepath)
    if _is_legacy_path(filepath):
        _save_legacy_h5(model, filepath, overwrite, include_optimizer)
        return
    if not str(filepath).endswith(".keras"):
        raise ValueError("Invalid `filepath` argument: expected a `.keras` extension (or "
                         "`.h5`/`.hdf5` for Keras's legacy H5 format). "
                         f"Received: filepath={filepath}")
    _check_overwrite(filepath, overwrite)
    _write_atomic(filepath, _archive_bytes(model))


class _Archive:
    """Read access to a ``.keras`` zip (or an unzipped Keras model folder)."""

    def __init__(self, source: str, ctx: _Context, zf: Optional[zipfile.ZipFile] = None,
                 folder: Optional[str] = None) -> None:
        self.source, self.ctx, self.zf, self.folder = source, ctx, zf, folder

    def names(self) -> List[str]:
        if self.zf is not None:
            return self.zf.namelist()
        return sorted(os.listdir(self.folder))  # type: ignore[arg-type]

    def read(self, name: str, limit: Optional[int] = None) -> Optional[bytes]:
        if name not in self.names():
            return None
        if self.folder is not None:
            with open(os.path.join(self.folder, name), "rb") as f:
                return f.read()
        info = self.zf.getinfo(name)  # type: ignore[union-attr]
        if (limit is not None and info.file_size > limit) or (
                info.file_size > _BOMB_FLOOR_BYTES
                and info.file_size > _BOMB_MAX_EXPANSION * max(info.compress_size, 1)):
            raise self.ctx.error(f"refusing the archive member '{name}': it declares "
                                 f"{info.file_size} bytes ({info.compress_size} stored).")
        try:
            return self.zf.read(name)  # type: ignore[union-attr]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as e:
            raise self.ctx.error(f"the archive member '{name}' could not be read (the file "
                                 f"may be truncated or corrupt): {e}") from None

    def config(self) -> Dict[str, Any]:
        raw = self.read(_CONFIG_FILENAME, limit=_MAX_JSON_BYTES)
        if raw is None:
            raise self.ctx.error(f"not a valid `.keras` file: it has no {_CONFIG_FILENAME} "
                                 f"(members: {self.names()}).")
        try:
            config = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self.ctx.error(f"{_CONFIG_FILENAME} is not valid JSON: {e}") from None
        if not isinstance(config, dict):
            raise self.ctx.error(f"{_CONFIG_FILENAME} does not hold a model config.")
        return config

    def weights(self) -> VarGroups:
        raw = self.read(_WEIGHTS_FILENAME)
        if raw is None:
            if _WEIGHTS_NPZ_FILENAME in self.names():
                raise self.ctx.error(
                    f"its weights are in {_WEIGHTS_NPZ_FILENAME} (Keras's `weights_format="
                    "'npz'`), which holds pickled objects; fastdense reads "
                    f"{_WEIGHTS_FILENAME} only. Re-save the model with Keras's default format.")
            raise self.ctx.error(f"Expected a {_WEIGHTS_FILENAME} or {_WEIGHTS_NPZ_FILENAME} "
                                 f"file. The archive holds only {self.names()}.")
        return _read_h5(io.BytesIO(raw), self.ctx, _WEIGHTS_FILENAME)


def _open_archive(filepath: Any, ctx: _Context) -> Tuple[_Archive, Optional[Any]]:
    """The archive, and something to close afterwards."""
    if hasattr(filepath, "read"):
        data = filepath.read()
        fileobj: Any = io.BytesIO(data)
    else:
        path = os.fspath(filepath)
        if os.path.isdir(path):
            if os.path.exists(os.path.join(path, _CONFIG_FILENAME)):
                return _Archive(ctx.source, ctx, folder=path), None
            raise ValueError(f"File format not supported: filepath={path}. Keras 3 only "
                             "supports V3 `.keras` files. (This is a folder without a "
                             f"{_CONFIG_FILENAME}.)")
        fileobj = path
    try:
        zf = zipfile.ZipFile(fileobj, "r")
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ctx.error(f"not a valid `.keras` file: it is not a zip archive (the file may be "
                        f"empty, truncated or corrupt): {e}") from None
    return _Archive(ctx.source, ctx, zf=zf), zf


def _check_load_path(filepath: Any, exts: Tuple[str, ...], message: str) -> str:
    path = os.fspath(filepath)
    if not str(path).endswith(exts) and not (os.path.isdir(path) and ".keras" in exts):
        raise ValueError(message.format(filepath=path))
    if not os.path.exists(path):
        kind = ("`.keras` zip file" if str(path).endswith(".keras") else
                "`.weights.h5` file" if str(path).endswith(".weights.h5") else
                "legacy H5 (`.h5`/`.hdf5`) file" if _is_legacy_path(path) else
                f"`{exts[0]}` file")
        raise _FileNotFoundError(f"File not found: filepath={path}. Please ensure the file is "
                                 f"an accessible {kind}.")
    return path


def load_model(filepath: Any, custom_objects: Optional[Mapping[str, Any]] = None,
               compile: bool = True, safe_mode: bool = True) -> Any:
    """``keras.saving.load_model`` for fastdense: reads a ``.keras`` file
    written by Keras 3 or fastdense and returns the ``Sequential``, with its
    weights, compiled as saved (``compile=True``) and with the optimizer's
    state restored, so that training resumes exactly.

    A ``.h5``/``.hdf5`` name (or a file object holding an HDF5 file) is read
    as Keras's legacy H5 format, as Keras 3 does: the model from its
    ``model_config``, compiled from its ``training_config`` when there is one
    (uncompiled otherwise), with the optimizer's state from
    ``optimizer_weights`` when it has Keras 3's layout.

    ``custom_objects`` maps names in the file to your functions or classes
    (e.g. a custom loss). Lambdas stored in a file are never loaded.
    """
    _h5py()
    if hasattr(filepath, "read"):
        source = f"{getattr(filepath, 'name', '<file object>')}"
        data = filepath.read()
        ctx = _Context(f"Error loading {source!r}", custom_objects, safe_mode)
        if data.startswith(_H5_SIGNATURE):
            return _load_legacy_h5(io.BytesIO(data), ctx, os.path.basename(source), compile)
        filepath = io.BytesIO(data)
    else:
        source = _check_load_path(
            filepath, (".keras",) + _LEGACY_EXTS,
            "File format not supported: filepath={filepath}. Keras 3 only supports V3 "
            "`.keras` files, legacy H5 format files (`.h5` extension). fastdense reads both.")
        ctx = _Context(f"Error loading {source!r}", custom_objects, safe_mode)
        if _is_legacy_path(source):
            if os.path.isdir(source):
                raise ctx.error("it is a folder, not a legacy H5 (`.h5`/`.hdf5`) model file.")
            with open(source, "rb") as f:
                data = f.read()
            return _load_legacy_h5(io.BytesIO(data), ctx, os.path.basename(source), compile)
    archive, closer = _open_archive(filepath, ctx)
    try:
        config = archive.config()
        state = np.random.get_state()  # building draws initial weights; leave no trace
        try:
            model = _model_from_config(config, ctx, compile=compile)
        finally:
            np.random.set_state(state)
        groups = archive.weights()
        _apply_variables(model, groups, ctx, load_optimizer=compile)
    finally:
        if closer is not None:
            closer.close()
    return model


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """``model.save_weights(filepath)``: the ``.weights.h5`` file of Keras 3
    (layer weights and optimizer state), written atomically."""
    _h5py()
    filepath = os.fspath(filepath)
    if not str(filepath).endswith(".weights.h5"):
        raise ValueError("The filename must end in `.weights.h5`. "
                         f"Received: filepath={filepath}")
    if not model.built:
        raise ValueError("You are saving a model that has not yet been built. Try building "
                         "the model first by calling it on some data or by using `build()`.")
    _check_overwrite(filepath, overwrite)
    _write_atomic(filepath, _h5_bytes(_collect_variables(model)))


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """``model.load_weights(filepath)`` from a ``.weights.h5`` or ``.keras``
    file; restores the optimizer's state too when the model is compiled with a
    matching optimizer. Nothing is assigned unless every layer matches.

    A legacy ``.h5``/``.hdf5`` file (a whole model, or weights saved by Keras
    2) loads its layer weights by position, as Keras's topological loading;
    as in Keras, the optimizer's state is not read from it."""
    _h5py()
    path = _check_load_path(
        filepath, (".weights.h5", ".keras") + _LEGACY_EXTS,
        "File format not supported: filepath={filepath}. Keras 3 only supports V3 `.keras` "
        "files, `.weights.h5` files, legacy H5 format files (`.h5` extension), or Orbax "
        "checkpoints. fastdense reads `.keras`, `.weights.h5` and legacy `.h5` files.")
    if not model.built:
        raise ValueError("You are loading weights into a model that has not yet been built. "
                         "Try building the model first by calling it on some data or by "
                         "using `build()`.")
    ctx = _Context(f"Error loading weights from {path!r}")
    if _is_legacy_path(path) and not path.endswith(".weights.h5"):
        with open(path, "rb") as f:
            data = f.read()
        _load_legacy_weights(model, io.BytesIO(data), ctx, os.path.basename(path),
                             skip_mismatch=skip_mismatch)
        return
    if path.endswith(".keras") or os.path.isdir(path):
        archive, closer = _open_archive(path, ctx)
        try:
            groups = archive.weights()
        finally:
            if closer is not None:
                closer.close()
    else:
        with open(path, "rb") as f:
            data = f.read()
        groups = _read_h5(io.BytesIO(data), ctx, os.path.basename(path))
    _apply_variables(model, groups, ctx, skip_mismatch=skip_mismatch)


# ---------------------------------------------------------------------------------- legacy H5
_H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OBJECT_HEADER_LIMIT = 64512  # Keras splits attributes larger than this
_LEGACY_EXTS = (".h5", ".hdf5")
_TOP_LEVEL_GROUP = "top_level_model_weights"
# Keras 3.15 creates Nadam's u_product as an unnamed backend variable.
_LEGACY_SCALAR_NAMES = {"u_product": "variable"}


def _is_legacy_path(filepath: Any) -> bool:
    """Whether Keras's ``save_model``/``load_model`` take ``filepath`` as a
    legacy H5 model file (any ``.h5``/``.hdf5`` name, ``.weights.h5`` too)."""
    return str(filepath).endswith(_LEGACY_EXTS)


def _legacy_backend() -> str:
    try:
        from .backend import backend
        return str(backend())
    except ImportError:  # pragma: no cover - backend.py is part of fastdense
        return "numpy"


def _legacy_object(config: Any) -> Any:
    """A compile argument (``_serialize_object``'s output) as Keras's legacy
    ``serialize_keras_object`` writes it in ``training_config``: objects as
    ``{"class_name", "config"}`` (their nested configs unchanged), functions
    by name, strings as they are."""
    if isinstance(config, list):
        return [_legacy_object(c) for c in config]
    if not isinstance(config, dict) or "class_name" not in config:
        return config
    if config.get("class_name") == "function":
        return config.get("config")
    registered = config.get("registered_name")
    name = registered if isinstance(registered, str) and registered != "function" \
        else config["class_name"]
    return {"class_name": name, "config": config.get("config")}


def _legacy_model_config(model: Any) -> Dict[str, Any]:
    """``model_config``: Keras's ``{"class_name", "config": model.get_config()}``
    under its legacy scope, where each layer entry of the Sequential is
    ``{"class_name", "config"}`` (no module, registered name nor build
    config; the layer configs themselves are those of ``model_to_config``)."""
    full = model_to_config(model)
    inner = dict(full["config"])
    layers = []
    for entry in inner["layers"]:
        registered = entry.get("registered_name")
        legacy = {"class_name": registered if isinstance(registered, str)
                  else entry["class_name"], "config": entry["config"]}
        for key in ("name", "inbound_nodes"):  # (a functional model's graph)
            if key in entry:
                legacy[key] = entry[key]
        layers.append(legacy)
    inner["layers"] = layers
    return {"class_name": full["class_name"], "config": inner}


def _legacy_training_config(model: Any) -> Optional[Dict[str, Any]]:
    """``training_config``: the compile arguments (legacy-serialized) with the
    optimizer under ``optimizer_config``; None for an uncompiled model."""
    compile_config = _compile_config(model)
    if not compile_config:
        return None
    optimizer = compile_config.pop("optimizer")
    out = {k: _legacy_object(v) for k, v in compile_config.items()}
    out["optimizer_config"] = {"class_name": optimizer["class_name"],
                               "config": optimizer["config"]}
    return out


def _legacy_layer_weights(layer: Layer) -> List[Any]:
    """Keras's legacy weight order: trainable weights, then non-trainable."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _legacy_optimizer_names(model: Any, count: int) -> List[str]:
    """The names Keras 3 gives the optimizer's variables (``variable.path``):
    ``<optimizer>/iteration``, ``<optimizer>/learning_rate``, then (with
    use_ema) each ``..._average``, then each slot as
    ``<optimizer>/<model>_<layer>_<weight>_<slot>``, then the scalars."""
    opt = model.optimizer
    prefix = str(opt.name)
    names = [f"{prefix}/iteration"]
    if _lr_variable(opt):
        names.append(f"{prefix}/learning_rate")
    if _optimizer_ready(model) and len(names) < count:
        refs = [f"{model.name}/{layer.name}/{w.name}" for layer in model._layers
                for w in layer.trainable_weights] if model.trainable else []
        if getattr(opt, "use_ema", False):  # (the averages come first, as in Keras)
            names.extend(f"{prefix}/{ref.replace('/', '_')}_average" for ref in refs)
        if getattr(opt, "gradient_accumulation_steps", None):  # (then the accumulators)
            names.extend(f"{prefix}/{ref.replace('/', '_')}_gradient_accumulator"
                         for ref in refs)
        for group in opt._slot_names():
            for ref in refs:
                for slot in group:
                    names.append(f"{prefix}/{ref.replace('/', '_')}_{slot}")
        names.extend(_LEGACY_SCALAR_NAMES.get(n, f"{prefix}/{n}")
                     for n in opt._scalar_names())
    if len(names) != count:  # cannot happen for fastdense's optimizers; stay loadable
        names = [f"{prefix}/variable_{i}" for i in range(count)]
    return names


def _unique_names(names: List[str]) -> List[str]:
    seen: Dict[str, int] = {}
    out = []
    for name in names:
        key, k = name, 0
        while key in seen:
            k += 1
            key = f"{name}_{k}"
        seen[key] = 1
        out.append(key)
    return out


def _save_h5_attribute_list(group: Any, name: str, data: List[bytes]) -> None:
    """Keras's ``save_attributes_to_hdf5_group``: the list as one attribute,
    or split into ``name0``, ``name1``, ... when larger than the HDF5 object
    header allows."""
    if any(len(x) > _HDF5_OBJECT_HEADER_LIMIT for x in data):
        raise RuntimeError("The following attributes cannot be saved to HDF5 file because "
                           f"they are larger than {_HDF5_OBJECT_HEADER_LIMIT} bytes: "
                           f"{[x for x in data if len(x) > _HDF5_OBJECT_HEADER_LIMIT]}")
    data_npy = np.asarray(data)
    num_chunks = 1
    chunks = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > _HDF5_OBJECT_HEADER_LIMIT for x in chunks):
        num_chunks += 1
        chunks = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for i, chunk in enumerate(chunks):
            group.attrs[f"{name}{i}"] = chunk
    else:
        group.attrs[name] = data


def _save_h5_weights(group: Any, names: List[str], arrays: List[np.ndarray]) -> None:
    """Keras's ``save_subset_weights_to_hdf5_group``: ``weight_names``, then
    one dataset per weight at its (slash-separated) name."""
    encoded = [n.encode("utf8") for n in names]
    _save_h5_attribute_list(group, "weight_names", encoded)
    for name, arr in zip(encoded, arrays):
        group.create_dataset(name, data=arr)


def _legacy_h5_bytes(model: Any, include_optimizer: bool = True) -> bytes:
    """The model as Keras 3's ``legacy_h5_format.save_model_to_hdf5`` writes
    it (see ``save_model``)."""
    h5py = _h5py()
    metadata: Dict[str, Any] = {"keras_version": KERAS_VERSION, "backend": _legacy_backend(),
                                "model_config": _legacy_model_config(model)}
    optimizer_arrays: List[np.ndarray] = []
    if include_optimizer and getattr(model, "compiled", False) and model.optimizer is not None:
        metadata["training_config"] = _legacy_training_config(model)
        # the optimizer's variables, as in the `.keras` format (Keras's `optimizer.variables`)
        optimizer_arrays = next(arrays for path, _name, arrays in _collect_variables(model)
                                if path == "optimizer")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for key, value in metadata.items():
            f.attrs[key] = json.dumps(value).encode("utf8") if isinstance(value, dict) \
                else value
        weights = f.create_group("model_weights")
        _save_h5_attribute_list(weights, "layer_names",
                                [layer.name.encode("utf8") for layer in model._stack])
        weights.attrs["backend"] = metadata["backend"].encode("utf8")
        weights.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
        # sorted by name, as Keras, so that group names grow strictly
        for layer in sorted(model._stack, key=lambda l: l.name):
            variables = _legacy_layer_weights(layer)
            _save_h5_weights(weights.create_group(layer.name),
                             [w.path if _is_model(layer) else
                              f"{model.name}/{layer.name}/{w.name}" for w in variables],
                             # (np.array keeps a scalar's shape (): Normalization's
                             # int32 count)
                             [np.array(w.value, order="C", dtype=w.value.dtype
                                       if w.value.dtype.kind in "iu" else np.float32)
                              for w in variables])
        _save_h5_weights(weights.create_group(_TOP_LEVEL_GROUP), [], [])
        if optimizer_arrays:
            names = _unique_names(_legacy_optimizer_names(model, len(optimizer_arrays)))
            _save_h5_weights(f.create_group("optimizer_weights"), names, optimizer_arrays)
    return buf.getvalue()


def _save_legacy_h5(model: Any, filepath: str, overwrite: bool,
                    include_optimizer: bool) -> None:
    _check_overwrite(filepath, overwrite)
    dirname = os.path.dirname(filepath)
    if dirname:
        os.makedirs(dirname, exist_ok=True)  # as Keras's save_model_to_hdf5
    _write_atomic(filepath, _legacy_h5_bytes(model, include_optimizer))


def _h5_text(value: Any) -> Any:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, np.str_):
        return str(value)
    return value


def _load_h5_attribute_list(group: Any, name: str) -> List[str]:
    """Keras's ``load_attributes_from_hdf5_group`` (chunked attributes too)."""
    if name in group.attrs:
        values = [group.attrs[name]]
    else:
        values, k = [], 0
        while f"{name}{k}" in group.attrs:
            values.append(group.attrs[f"{name}{k}"])
            k += 1
    out: List[str] = []
    for value in values:
        for item in np.atleast_1d(np.asarray(value, dtype=object)).tolist():
            out.append(_h5_text(item))
    return out


def _legacy_json(value: Any, ctx: _Context, key: str) -> Optional[Dict[str, Any]]:
    """A JSON attribute of a legacy file, as Keras's ``json_utils.decode``
    reads it (``__tuple__`` and ``TensorShape`` entries become lists)."""
    if value is None:
        return None
    value = _h5_text(value)
    if not isinstance(value, str):
        raise ctx.error(f"the '{key}' attribute is not a string ({type(value).__name__}).")

    def hook(obj: Dict[str, Any]) -> Any:
        if obj.get("class_name") in ("__tuple__", "TensorShape") and "items" in obj:
            return obj["items"]
        return obj

    try:
        out = json.loads(value, object_hook=hook)
    except json.JSONDecodeError as e:
        raise ctx.error(f"the '{key}' attribute is not valid JSON: {e}") from None
    if not isinstance(out, dict):
        raise ctx.error(f"the '{key}' attribute does not hold a JSON object.")
    return out


LegacyWeights = List[Tuple[str, List[Tuple[str, np.ndarray]]]]


def _h5_path(group: Any, path: str, ctx: _Context, what: str, where: str) -> Any:
    """The object at a slash-separated path, following hard links only."""
    parts = path.split("/")
    if not path or any(not p for p in parts):
        raise ctx.error(f"{what}: invalid path '{where}/{path}'.")
    obj = group
    for part in parts:
        where = f"{where}/{part}" if where else part
        obj = _h5_child(obj, part, ctx, what, where)
    return obj


def _read_legacy_weights_group(group: Any, ctx: _Context, what: str, where: str
                               ) -> List[Tuple[str, np.ndarray]]:
    """(name, values) of each weight a group's ``weight_names`` lists."""
    h5py = _h5py()
    out = []
    for wname in _load_h5_attribute_list(group, "weight_names"):
        ds = _h5_path(group, str(wname), ctx, what, where)
        if not isinstance(ds, h5py.Dataset):
            raise ctx.error(f"{what}: '{where}/{wname}' is not a dataset.")
        out.append((str(wname), _h5_dataset_array(ds, ctx, what, f"{where}/{wname}")))
    return out


def _read_legacy_weights(group: Any, ctx: _Context, what: str, where: str) -> LegacyWeights:
    """(layer name, [(weight name, values)]) for each layer of a legacy
    weights group (``model_weights`` of a model file, or the root of a file
    written by Keras 2's ``save_weights``), in the order of ``layer_names``."""
    h5py = _h5py()
    if "layer_names" not in group.attrs and "layer_names0" not in group.attrs:
        raise ctx.error(f"{what} has no layer_names attribute{' in ' + where if where else ''}"
                        ": it is not a Keras legacy H5 file.")
    layers: LegacyWeights = []
    for name in _load_h5_attribute_list(group, "layer_names"):
        at = f"{where}/{name}" if where else str(name)
        layer_group = _h5_path(group, str(name), ctx, what, where)
        if not isinstance(layer_group, h5py.Group):
            raise ctx.error(f"{what}: '{at}' is not a group.")
        layers.append((str(name), _read_legacy_weights_group(layer_group, ctx, what, at)))
    if _TOP_LEVEL_GROUP in group:
        at = f"{where}/{_TOP_LEVEL_GROUP}" if where else _TOP_LEVEL_GROUP
        top = _read_legacy_weights_group(_h5_child(group, _TOP_LEVEL_GROUP, ctx, what, at),
                                         ctx, what, at)
        if top:
            raise ctx.error(f"{what} holds {len(top)} top-level model weights "
                            f"({[n for n, _ in top]}); fastdense's Sequential models have "
                            "none.")
    return layers


def _apply_legacy_weights(model: Any, saved: LegacyWeights, ctx: _Context,
                          skip_mismatch: bool = False) -> None:
    """Keras's topological loading (``load_weights_from_hdf5_group``): the
    layers with weights, in order, take the saved layers with weights, in
    order. Nothing is assigned unless everything matches."""
    layers = [layer for layer in model._stack if _legacy_layer_weights(layer)]
    saved = [(name, values) for name, values in saved if values]
    if len(saved) != len(layers):
        raise ctx.error(
            "Layer count mismatch when loading weights from file. Model expected "
            f"{len(layers)} layers, found {len(saved)} saved layers.")
    plan: List[Tuple[Any, np.ndarray]] = []
    for k, ((name, values), layer) in enumerate(zip(saved, layers)):
        expected = _legacy_layer_weights(layer)
        if len(values) != len(expected):
            raise ctx.error(
                f"Weight count mismatch for layer #{k} (named {layer.name} in the current "
                f"model, {name} in the save file). Layer expects {len(expected)} weight(s). "
                f"Received {len(values)} saved weight(s)")
        for var, (wname, arr) in zip(expected, values):
            if arr.dtype.kind in "iu" and np.asarray(var.value).dtype.kind in "iu":
                plan.append((var, arr))  # (an integer variable: Normalization's count)
                continue
            if arr.dtype.kind != "f":
                raise ctx.error(f"weight '{wname}' of layer {name!r} has dtype {arr.dtype}; "
                                "expected floating point values.")
            if tuple(arr.shape) != tuple(var.shape):
                message = (f"Shape mismatch in layer #{k} (named {layer.name}) for weight "
                           f"{var.path}. Weight expects shape {tuple(var.shape)}. Received "
                           f"saved weight {wname!r} with shape {tuple(arr.shape)}")
                if not skip_mismatch:
                    raise ctx.error(message)
                # (Keras's legacy loader: that weight skipped, with a warning)
                warnings.warn(f"Skipping loading weights for layer #{k} (named {layer.name}) "
                              f"due to mismatch in shape for weight {var.path}. Weight expects "
                              f"shape {tuple(var.shape)}. Received saved weight with shape "
                              f"{tuple(arr.shape)}", stacklevel=3)
                continue
            plan.append((var, arr))
    for var, arr in plan:
        var.assign(np.asarray(arr, dtype=np.asarray(var.value).dtype))


def _apply_legacy_optimizer(model: Any, names: List[str], arrays: List[np.ndarray],
                            ctx: _Context) -> None:
    """Restores the optimizer's state from ``optimizer_weights``: Keras 3
    writes ``optimizer.variables``, the very list the ``.keras`` format keeps
    under ``optimizer/vars``. Files whose slots do not carry the names Keras 3
    gives them (Keras 2's optimizers order their state differently) are
    skipped with a warning, as a count mismatch is."""
    opt = model.optimizer
    if not _optimizer_ready(model):
        return
    head = 2 if _lr_variable(opt) else 1
    slot_names = [n for group in opt._slot_names() for n in group]
    slots = _optimizer_slots(model)
    if len(arrays) == head + len(slots):
        for i, (slot, _off, _shape) in enumerate(slots):
            if slot >= len(slot_names) or slot < 0:
                continue  # a scalar (Nadam's u_product), or an average
            base = names[head + i].rsplit("/", 1)[-1]
            if not base.endswith(f"_{slot_names[slot]}") and base != slot_names[slot]:
                warnings.warn(
                    f"Skipping variable loading for optimizer '{opt.name}': the saved "
                    f"variable {names[head + i]!r} is not the {slot_names[slot]!r} slot "
                    f"Keras 3 keeps there. ({ctx.source})", stacklevel=3)
                return
    _apply_optimizer(model, {str(i): a for i, a in enumerate(arrays)}, ctx)


def _read_legacy_file(fileobj: Any, ctx: _Context, what: str, compile: bool
                      ) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]], LegacyWeights,
                                 Optional[Tuple[List[str], List[np.ndarray]]]]:
    """Everything ``load_model`` needs from a legacy H5 model file: the model
    config, the training config, the layer weights and the optimizer's."""
    h5py = _h5py()
    try:
        f = h5py.File(fileobj, "r")
    except Exception as e:  # OSError for a bad signature; others for truncation
        hint = ""
        try:
            if hasattr(fileobj, "seek"):
                fileobj.seek(0)
            if zipfile.is_zipfile(fileobj):
                hint = " It is a zip archive: a `.keras` file? Name it `*.keras` to load it."
        except OSError:
            pass
        raise ctx.error(f"not a readable legacy H5 (`.h5`/`.hdf5`) model file (it may be "
                        f"empty, truncated or corrupt): {e}.{hint}") from None
    try:
        with f:
            config = _legacy_json(f.attrs.get("model_config"), ctx, "model_config")
            if config is None:
                kind = ("a Keras 3 `.weights.h5` file" if "vars" in f or "layers" in f
                        else "a weights-only H5 file" if "layer_names" in f.attrs
                        else "not a Keras model file")
                raise ctx.error(f"No model config found in the file ({kind}); it is not a "
                                "legacy H5 model file. Build the model in code and use "
                                "`model.load_weights()` for weight files.")
            training = _legacy_json(f.attrs.get("training_config"), ctx,
                                    "training_config") if compile else None
            if "model_weights" not in f:
                raise ctx.error(f"{what} has no 'model_weights' group.")
            group = _h5_child(f, "model_weights", ctx, what, "model_weights")
            if not isinstance(group, h5py.Group):
                raise ctx.error(f"{what}: 'model_weights' is not a group.")
            weights = _read_legacy_weights(group, ctx, what, "model_weights")
            optimizer = None
            if training is not None and "optimizer_weights" in f:
                og = _h5_child(f, "optimizer_weights", ctx, what, "optimizer_weights")
                if isinstance(og, h5py.Group):
                    pairs = _read_legacy_weights_group(og, ctx, what, "optimizer_weights")
                    optimizer = ([n for n, _ in pairs], [a for _, a in pairs])
    except Exception as e:
        if isinstance(e, ValueError) and str(e).startswith(ctx.source):
            raise  # ours, already naming the file
        raise ctx.error(f"{what} could not be read (it may be truncated or corrupt): "
                        f"{type(e).__name__}: {e}") from None
    return config, training, weights, optimizer


def _compile_config_from_training(training: Dict[str, Any], ctx: _Context) -> Dict[str, Any]:
    """A legacy ``training_config`` as the ``compile_config`` of the ``.keras``
    format: the optimizer moves from ``optimizer_config`` to ``optimizer``."""
    config = {k: v for k, v in training.items() if k != "optimizer_config"}
    optimizer = training.get("optimizer_config")
    if optimizer is None:
        raise ctx.error("its training_config has no optimizer_config; load it with "
                        "compile=False and compile the model yourself.")
    config["optimizer"] = optimizer
    return config


def _load_legacy_h5(fileobj: Any, ctx: _Context, what: str, compile: bool) -> Any:
    config, training, weights, optimizer = _read_legacy_file(fileobj, ctx, what, compile)
    config = dict(config)
    config.pop("compile_config", None)
    if training is not None:
        config["compile_config"] = _compile_config_from_training(training, ctx)
    state = np.random.get_state()  # building draws initial weights; leave no trace
    try:
        model = _model_from_config(config, ctx, compile=compile)
    finally:
        np.random.set_state(state)
    _apply_legacy_weights(model, weights, ctx)
    if optimizer is not None and getattr(model, "compiled", False) \
            and model.optimizer is not None:
        _apply_legacy_optimizer(model, optimizer[0], optimizer[1], ctx)
    return model


def _load_legacy_weights(model: Any, fileobj: Any, ctx: _Context, what: str,
                         skip_mismatch: bool = False) -> None:
    """``load_weights`` from a legacy H5 file: a whole-model file (its
    ``model_weights``) or a Keras 2 weights file (layers at the root)."""
    h5py = _h5py()
    try:
        f = h5py.File(fileobj, "r")
    except Exception as e:
        raise ctx.error(f"{what} is not a readable HDF5 file (it may be empty, truncated or "
                        f"corrupt): {e}") from None
    try:
        with f:
            if "model_weights" in f:
                group = _h5_child(f, "model_weights", ctx, what, "model_weights")
                weights = _read_legacy_weights(group, ctx, what, "model_weights")
            else:
                weights = _read_legacy_weights(f, ctx, what, "")
    except Exception as e:
        if isinstance(e, ValueError) and str(e).startswith(ctx.source):
            raise
        raise ctx.error(f"{what} could not be read (it may be truncated or corrupt): "
                        f"{type(e).__name__}: {e}") from None
    _apply_legacy_weights(model, weights, ctx, skip_mismatch=skip_mismatch)


# ---------------------------------------------------------------------------------- state
def model_to_state(model: Any) -> Dict[str, Any]:
    """The whole model as plain data, with no h5py needed: the Keras config
    as a JSON string, the weights-file variables as numpy arrays, and the
    custom functions and classes it names (your loss, ...) as themselves: for
    pickling (which then pickles those by reference, as pickle does) and deep
    copies. ``model_from_state`` rebuilds the model."""
    custom: Dict[str, Any] = {}
    config = json.dumps(model_to_config(model, collect=custom))
    return {"format": "fastdense-keras-v3", "config": config, "custom_objects": custom,
            "variables": [(path, name, [a.copy() for a in arrays])
                          for path, name, arrays in _collect_variables(model)]}


def model_from_state(state: Mapping[str, Any],
                     custom_objects: Optional[Mapping[str, Any]] = None) -> Any:
    """Rebuilds a model from ``model_to_state``: same config, compile state,
    weights and optimizer state."""
    objects = dict(state.get("custom_objects") or {}) if isinstance(state, Mapping) else {}
    objects.update(custom_objects or {})
    ctx = _Context("Error restoring a model state", objects, safe_mode=True)
    if not isinstance(state, Mapping) or state.get("format") != "fastdense-keras-v3":
        raise ctx.error("not a state from fastdense.saving.model_to_state.")
    rng = np.random.get_state()
    try:
        model = _model_from_config(json.loads(state["config"]), ctx, compile=True)
    finally:
        np.random.set_state(rng)
    groups: VarGroups = {}
    for path, _name, arrays in state["variables"]:
        groups[path] = {str(i): np.asarray(a) for i, a in enumerate(arrays)}
    _apply_variables(model, groups, ctx)
    return model


# ---------------------------------------------------------------------------------- from config
def _check_dtype(value: Any, what: str, ctx: _Context) -> None:
    name = value
    if isinstance(value, dict):
        name = (value.get("config") or {}).get("name")
        if value.get("class_name") not in ("DTypePolicy", "Policy", "FloatDTypePolicy", None):
            raise ctx.error(f"{what} uses the dtype policy {value.get('class_name')!r}; "
                            "fastdense computes in float32 only.")
    if name not in (None, "float32"):
        raise ctx.error(f"{what} has dtype {name!r}; fastdense computes in float32 only.")


def _resolve_function(config: Any, ctx: _Context, what: str,
                      builtins: Mapping[str, Any]) -> Any:
    """A function named in a config: from custom_objects, else fastdense's."""
    if isinstance(config, dict):
        cls = config.get("class_name")
        if cls == "__lambda__":
            if ctx.safe_mode:
                raise ctx.error(
                    f"the {what} is a Python lambda. Requested the deserialization of a Python "
                    "lambda. This carries a potential risk of arbitrary code execution and thus "
                    "it is disallowed by default. If you trust the source of the artifact, "
                    "you can override this error by passing `safe_mode=False` to the loading "
                    "function, or calling `keras.config.enable_unsafe_deserialization()`.")
            raise ctx.error(
                f"the {what} is a Python lambda, stored as bytecode. fastdense never executes "
                "code from a file, even with safe_mode=False: define the function in your code "
                "and compile the loaded model with it (load with compile=False).")
        if cls != "function":
            raise ctx.error(f"cannot interpret the {what} {config!r}.")
        name = config.get("config")
        registered = config.get("registered_name")
        found = ctx.custom(registered if registered != "function" else None, name)
    else:
        name = config
        found = ctx.custom(name)
    if found is not None:
        return found
    if isinstance(name, str) and name in builtins:
        return builtins[name]
    raise ctx.error(f"unknown {what} {name!r}. If it is your own function, pass it in "
                    f"`custom_objects={{{name!r}: ...}}`.")


def _instantiate(cls: Any, config: Dict[str, Any], ctx: _Context, what: str) -> Any:
    try:
        if hasattr(cls, "from_config"):
            return cls.from_config(config)
        return cls(**config)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"unsupported {what} {getattr(cls, '__name__', cls)}({config}): "
                        f"{e}") from None


def _deserialize_object(config: Any, ctx: _Context, what: str, registry: Mapping[str, Any],
                        base: type) -> Any:
    """Keras's deserialize_keras_object for losses, metrics and initializers."""
    if config is None or isinstance(config, (str, int, float, bool)):
        if isinstance(config, str):
            custom = ctx.custom(config)
            if custom is not None:
                return custom
        return config
    if not isinstance(config, dict):
        raise ctx.error(f"cannot interpret the {what} {config!r}.")
    cls_name = config.get("class_name")
    if cls_name in ("function", "__lambda__"):
        return _resolve_function(config, ctx, what, registry)
    custom = ctx.custom(config.get("registered_name"), cls_name)
    inner = dict(config.get("config") or {})
    if custom is not None:
        return _instantiate(custom, inner, ctx, what) if isinstance(custom, type) else custom
    cls = registry.get(cls_name) if isinstance(cls_name, str) else None
    module = str(config.get("module") or "")
    if not (isinstance(cls, type) and issubclass(cls, base)) or not (
            module.startswith("keras") or module.startswith("fastdense") or module == ""):
        raise ctx.error(f"unsupported {what} {cls_name!r} (module {module or None!r}). "
                        "If it is your own class, pass it in "
                        f"`custom_objects={{{cls_name!r}: ...}}`.")
    if "fn" in inner:  # LossFunctionWrapper / MeanMetricWrapper
        fns = {k: v for k, v in registry.items() if not isinstance(v, type)}
        inner["fn"] = _resolve_function(inner["fn"], ctx, what, fns)
    return _instantiate(cls, inner, ctx, what)


def deserialize_named(config: Any, custom_objects: Optional[Mapping[str, Any]], what: str,
                      registry: Mapping[str, Any], base: type,
                      get: Callable[[Any], Any]) -> Any:
    """``losses.deserialize`` / ``metrics.deserialize``: the object of a
    serialized config or a name (``custom_objects`` and the registry first;
    other names through the module's ``get``); a class comes back instantiated."""
    ctx = _Context(f"Could not deserialize the {what}", custom_objects)
    obj = _deserialize_object(config, ctx, what, registry, base)
    if isinstance(obj, str):
        return get(obj)
    return obj() if isinstance(obj, type) else obj


def _initializer(config: Any, ctx: _Context, what: str) -> Any:
    if isinstance(config, dict) and config.get("class_name") not in ("function", "__lambda__"):
        inner = dict(config.get("config") or {})
        for key in ("input_axes", "output_axes"):
            if key in inner:
                if inner[key] is not None:
                    raise ctx.error(f"the {what} sets {key}={inner[key]!r}, which fastdense "
                                    "does not support.")
                del inner[key]
        config = dict(config, config=inner)
    registry = {k: v for k, v in _initializers._BY_NAME.items()}
    obj = _deserialize_object(config, ctx, what, registry, _initializers.Initializer)
    return "glorot_uniform" if obj is None and what == "kernel initializer" else (
        "zeros" if obj is None else obj)


# Dense arguments from Keras configs that must be empty for fastdense.
_DENSE_MUST_BE_EMPTY = ("quantization_config", "lora_rank")
# Layer arguments from Keras configs that fastdense reads elsewhere or ignores.
_LAYER_IGNORED = ("lora_alpha", "dtype", "batch_size", "input_dim", "input_shape",
                  "batch_input_shape", "autocast", "sparse", "ragged", "input_length")
_DENSE_KNOWN = ("name", "trainable", "units", "activation", "use_bias", "kernel_initializer",
                "bias_initializer", "kernel_regularizer", "bias_regularizer",
                "activity_regularizer", "kernel_constraint", "bias_constraint")
_BATCHNORM_KNOWN = ("name", "trainable", "axis", "momentum", "epsilon", "center", "scale",
                    "beta_initializer", "gamma_initializer", "moving_mean_initializer",
                    "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
                    "beta_constraint", "gamma_constraint", "synchronized", "renorm",
                    "renorm_clipping", "renorm_momentum", "activity_regularizer")


def _custom_or_builtin(value: Any, ctx: _Context, what: str, key: str, kind: str,
                       getter: Callable[[Any], Any]) -> Any:
    """A regularizer or constraint named in a layer config: the user's (from
    ``custom_objects``) or fastdense's built-in one of Keras's name."""
    if value is None:
        return None
    if isinstance(value, str):
        custom = ctx.custom(value)
        if custom is not None:
            return custom() if isinstance(custom, type) else custom
    elif isinstance(value, dict):
        cls_name = value.get("class_name")
        if cls_name == "__lambda__" or cls_name == "function":
            raise ctx.error(f"{what} sets {key} to the Python function "
                            f"{value.get('config')!r}; fastdense runs its own {kind}s "
                            "natively and never loads code from a file.")
        custom = ctx.custom(value.get("registered_name"), cls_name)
        if custom is not None:
            if isinstance(custom, type):
                return _instantiate(custom, dict(value.get("config") or {}), ctx,
                                    f"{key} of {what}")
            return custom
        module = str(value.get("module") or "")
        if not (module.startswith("keras") or module.startswith("fastdense") or module == ""):
            raise ctx.error(f"{what} has the custom {key} {cls_name!r} (module {module!r}), "
                            "which fastdense does not know. If it is your own class, pass "
                            f"it in `custom_objects={{{cls_name!r}: ...}}`.")
    else:
        raise ctx.error(f"{what} has an unsupported {key}: {value!r}")
    try:
        return getter(value)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"{what} has an unsupported {key}: {e}") from None


def _regularizer_from_config(value: Any, ctx: _Context, what: str, key: str) -> Any:
    return _custom_or_builtin(value, ctx, what, key, "regularizer", _regularizers.get)


def _constraint_from_config(value: Any, ctx: _Context, what: str, key: str) -> Any:
    return _custom_or_builtin(value, ctx, what, key, "constraint", _constraints.get)


def _shape_from_layer_config(config: Dict[str, Any]) -> Optional[Tuple[Any, ...]]:
    """The input shape an old-style config gives its first layer."""
    if config.get("batch_input_shape") is not None:
        return tuple(config["batch_input_shape"])
    if config.get("input_shape") is not None:
        return (None,) + tuple(config["input_shape"])
    if config.get("input_dim") is not None:
        return (None, config["input_dim"])
    return None


def _layer_class(entry: Dict[str, Any], base: type, what: str, ctx: _Context,
                 unknown: Dict[str, Any]) -> type:
    """``base``, or the user's subclass of it that ``custom_objects`` names."""
    cls = ctx.custom(entry.get("registered_name"), entry.get("class_name"))
    if cls is not None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ctx.error(f"{what}: custom_objects[{entry.get('class_name')!r}] must be a "
                            f"subclass of fastdense.layers.{base.__name__}.")
        return cls
    if unknown:
        raise ctx.error(f"{what} ({base.__name__}) has arguments fastdense does not support: "
                        f"{unknown}")
    return base


def _dense_from_config(entry: Dict[str, Any], index: int, ctx: _Context
                       ) -> Tuple[Dense, Optional[Tuple[Any, ...]]]:
    config = dict(entry.get("config") or {})
    name = config.get("name", f"#{index}")
    what = f"layer {name!r}"
    _check_dtype(config.get("dtype"), what, ctx)
    for key in _DENSE_MUST_BE_EMPTY:
        if config.get(key) not in (None, 0, {}):
            raise ctx.error(f"{what} (Dense) sets {key}={config[key]!r}, which fastdense does "
                            "not support yet.")
    input_shape = _shape_from_layer_config(config)
    known = {*_DENSE_KNOWN, *_DENSE_MUST_BE_EMPTY, *_LAYER_IGNORED}
    unknown = {k: v for k, v in config.items() if k not in known and v is not None}
    cls = _layer_class(entry, Dense, what, ctx, unknown)
    activation = config.get("activation")
    if (isinstance(activation, dict) and activation.get("module") == "keras.layers"
            and activation.get("class_name") in _ACTIVATION_LAYERS):
        # (an activation layer as the activation: Dense(8, activation=LeakyReLU(0.2)))
        activation = _weightless_from_config(activation["class_name"],
                                             activation.get("config") or {}, ctx)
    elif isinstance(activation, dict) or (isinstance(activation, str)
                                          and ctx.custom(activation) is not None):
        activation = _resolve_function(activation, ctx, f"activation of {what}",
                                       _activations._FUNCTIONS)
    kwargs: Dict[str, Any] = {
        "units": config.get("units"),
        "activation": activation,
        "use_bias": config.get("use_bias", True),
        "kernel_initializer": _initializer(config.get("kernel_initializer", "glorot_uniform"),
                                           ctx, "kernel initializer"),
        "bias_initializer": _initializer(config.get("bias_initializer", "zeros"), ctx,
                                         "bias initializer"),
        "name": config.get("name"),
        "trainable": config.get("trainable", True),
    }
    for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        kwargs[key] = _regularizer_from_config(config.get(key), ctx, what, key)
    for key in ("kernel_constraint", "bias_constraint"):
        kwargs[key] = _constraint_from_config(config.get(key), ctx, what, key)
    if cls is not Dense:
        kwargs.update(unknown)
    try:
        layer = cls(**kwargs)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"cannot rebuild {what}: {e}") from None
    return layer, input_shape


def _batchnorm_axis(axis: Any) -> Any:
    """Keras 3 writes the axis as an int; tf.keras wrote a one-element list."""
    if isinstance(axis, list) and len(axis) == 1:
        return axis[0]
    return axis


def _construct(cls: type, base: type, kwargs: Dict[str, Any], unknown: Dict[str, Any],
               what: str, ctx: _Context) -> Any:
    """``cls(**kwargs)`` (a user's subclass of ``base`` also gets the config's
    other arguments), its errors as the loading context's."""
    if cls is not base:
        kwargs.update(unknown)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"cannot rebuild {what}: {e}") from None


def _batchnorm_from_config(entry: Dict[str, Any], index: int, ctx: _Context
                           ) -> Tuple[BatchNormalization, Optional[Tuple[Any, ...]]]:
    config = dict(entry.get("config") or {})
    name = config.get("name", f"#{index}")
    what = f"layer {name!r} (BatchNormalization)"
    _check_dtype(config.get("dtype"), what, ctx)
    if config.get("renorm"):
        raise ctx.error(f"{what} uses batch renormalization (renorm=True), which fastdense "
                        "does not support.")
    if config.get("synchronized"):
        raise ctx.error(f"{what} sets synchronized=True (statistics synchronized across "
                        "devices, TensorFlow only), which fastdense does not support.")
    axis = _batchnorm_axis(config.get("axis", -1))
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ctx.error(f"{what} normalizes axis {config.get('axis')!r}; fastdense normalizes "
                        "the feature axis of 2D inputs only (axis=-1).")
    known = {*_BATCHNORM_KNOWN, *_LAYER_IGNORED}
    unknown = {k: v for k, v in config.items() if k not in known and v is not None}
    cls = _layer_class(entry, BatchNormalization, what, ctx, unknown)

    def init(key: str, default: str) -> Any:
        value = config.get(key)
        return _initializer(default if value is None else value, ctx,
                            f"{key.replace('_', ' ')} of {what}")

    kwargs: Dict[str, Any] = {
        "axis": axis,
        "momentum": config.get("momentum", 0.99),
        "epsilon": config.get("epsilon", 1e-3),
        "center": config.get("center", True),
        "scale": config.get("scale", True),
        "beta_initializer": init("beta_initializer", "zeros"),
        "gamma_initializer": init("gamma_initializer", "ones"),
        "moving_mean_initializer": init("moving_mean_initializer", "zeros"),
        "moving_variance_initializer": init("moving_variance_initializer", "ones"),
        "renorm_momentum": config.get("renorm_momentum", 0.99),
        "name": config.get("name"),
        "trainable": config.get("trainable", True),
    }
    for key in ("beta_regularizer", "gamma_regularizer", "activity_regularizer"):
        kwargs[key] = _regularizer_from_config(config.get(key), ctx, what, key)
    for key in ("beta_constraint", "gamma_constraint"):
        kwargs[key] = _constraint_from_config(config.get(key), ctx, what, key)
    return (_construct(cls, BatchNormalization, kwargs, unknown, what, ctx),
            _shape_from_layer_config(config))


_LAYERNORM_KNOWN = ("name", "trainable", "axis", "epsilon", "center", "scale", "rms_scaling",
                    "beta_initializer", "gamma_initializer", "beta_regularizer",
                    "gamma_regularizer", "beta_constraint", "gamma_constraint",
                    "activity_regularizer")
_RMSNORM_KNOWN = ("name", "trainable", "axis", "epsilon", "activity_regularizer")
_UNITNORM_KNOWN = ("name", "trainable", "axis", "activity_regularizer")


def _rownorm_from_config(entry: Dict[str, Any], index: int, ctx: _Context
                         ) -> Tuple[_RowNormalization, Optional[Tuple[Any, ...]]]:
    """A LayerNormalization, RMSNormalization or UnitNormalization (or a
    user's subclass of one) from its Keras config."""
    config = dict(entry.get("config") or {})
    name = config.get("name", f"#{index}")
    custom = ctx.custom(entry.get("registered_name"), entry.get("class_name"))
    base: type = next((c for c in (UnitNormalization, RMSNormalization, LayerNormalization)
                       if entry.get("class_name") == c.__name__ or (
                           isinstance(custom, type) and issubclass(custom, c))),
                      LayerNormalization)
    rms, unit = base is RMSNormalization, base is UnitNormalization
    what = f"layer {name!r} ({base.__name__})"
    _check_dtype(config.get("dtype"), what, ctx)
    axis = config.get("axis", -1)
    axes = axis if isinstance(axis, list) else [axis]
    if len(axes) != 1 or isinstance(axes[0], bool) or not isinstance(axes[0], int):
        raise ctx.error(f"{what} normalizes axis {axis!r}; fastdense normalizes the feature "
                        "axis of 2D inputs only (axis=-1).")
    known = {*(_UNITNORM_KNOWN if unit else _RMSNORM_KNOWN if rms else _LAYERNORM_KNOWN),
             *_LAYER_IGNORED}
    unknown = {k: v for k, v in config.items() if k not in known and v is not None}
    cls = _layer_class(entry, base, what, ctx, unknown)
    kwargs: Dict[str, Any] = {"axis": axis, "name": config.get("name"),
                              "trainable": config.get("trainable", True),
                              "activity_regularizer": _regularizer_from_config(
                                  config.get("activity_regularizer"), ctx, what,
                                  "activity_regularizer")}
    if rms:
        kwargs["epsilon"] = config.get("epsilon", 1e-6)
    elif not unit:
        def init(key: str, default: str) -> Any:
            value = config.get(key)
            return _initializer(default if value is None else value, ctx,
                                f"{key.replace('_', ' ')} of {what}")

        kwargs.update({
            "epsilon": config.get("epsilon", 1e-3),
            "center": config.get("center", True),
            "scale": config.get("scale", True),
            "beta_initializer": init("beta_initializer", "zeros"),
            "gamma_initializer": init("gamma_initializer", "ones"),
        })
        if config.get("rms_scaling"):
            kwargs["rms_scaling"] = True
        for key in ("beta_regularizer", "gamma_regularizer"):
            kwargs[key] = _regularizer_from_config(config.get(key), ctx, what, key)
        for key in ("beta_constraint", "gamma_constraint"):
            kwargs[key] = _constraint_from_config(config.get(key), ctx, what, key)
    import warnings
    with warnings.catch_warnings():  # (rms_scaling's deprecation: the file's choice)
        warnings.simplefilter("ignore", UserWarning)
        layer = _construct(cls, base, kwargs, unknown, what, ctx)
    return layer, _shape_from_layer_config(config)


_PRELU_KNOWN = ("name", "trainable", "alpha_initializer", "alpha_regularizer",
                "alpha_constraint", "shared_axes", "activity_regularizer")


def _prelu_from_config(entry: Dict[str, Any], index: int, ctx: _Context
                       ) -> Tuple[PReLU, Optional[Tuple[Any, ...]]]:
    config = dict(entry.get("config") or {})
    name = config.get("name", f"#{index}")
    what = f"layer {name!r} (PReLU)"
    _check_dtype(config.get("dtype"), what, ctx)
    known = {*_PRELU_KNOWN, *_LAYER_IGNORED}
    unknown = {k: v for k, v in config.items() if k not in known and v is not None}
    cls = _layer_class(entry, PReLU, what, ctx, unknown)
    init = config.get("alpha_initializer")
    kwargs: Dict[str, Any] = {
        "alpha_initializer": _initializer("zeros" if init is None else init, ctx,
                                          f"alpha initializer of {what}"),
        "alpha_regularizer": _regularizer_from_config(config.get("alpha_regularizer"), ctx,
                                                      what, "alpha_regularizer"),
        "alpha_constraint": _constraint_from_config(config.get("alpha_constraint"), ctx, what,
                                                    "alpha_constraint"),
        "shared_axes": config.get("shared_axes"),
        "activity_regularizer": _regularizer_from_config(config.get("activity_regularizer"),
                                                         ctx, what, "activity_regularizer"),
        "name": config.get("name"),
        "trainable": config.get("trainable", True),
    }
    return (_construct(cls, PReLU, kwargs, unknown, what, ctx),
            _shape_from_layer_config(config))


def _check_layer_shapes(stack: Sequence[Layer], input_shape: Tuple[Any, ...],
                        ctx: _Context) -> None:
    """Follows the input shape through the layers: each BatchNormalization
    must normalize the feature axis of 2D inputs, the only one fastdense has."""
    shape = tuple(input_shape)
    for layer in stack:
        if isinstance(layer, (BatchNormalization, _RowNormalization)):
            kind = type(layer).__name__
            what = f"layer {layer.name!r} ({kind})"
            if len(shape) != 2:
                raise ctx.error(f"{what} gets inputs of shape {list(shape)}; fastdense "
                                "normalizes 2D inputs (batch, features) only, so a "
                                f"{kind} must come after the Flatten layer.")
            axis = layer.axis[0] if isinstance(layer.axis, list) else layer.axis
            if axis not in (-1, 1):
                raise ctx.error(f"{what} normalizes axis {layer.axis} of inputs of shape "
                                f"{list(shape)}; fastdense normalizes the feature axis "
                                "only (axis=-1).")
        shape = tuple(layer.compute_output_shape(shape))


def _node_source(node: Any) -> Optional[str]:
    """The name of the layer whose output an inbound node takes: Keras 3's
    ``{"args": [__keras_tensor__], "kwargs"}`` or Keras 2's
    ``[[name, node, tensor, kwargs]]``; None when the node takes more than
    one tensor or is not understood."""
    if isinstance(node, dict):
        args = node.get("args") or []
        if len(args) == 1 and isinstance(args[0], dict) and \
                args[0].get("class_name") == "__keras_tensor__":
            history = (args[0].get("config") or {}).get("keras_history") or []
            return history[0] if history and isinstance(history[0], str) else None
        return None
    if isinstance(node, list) and len(node) == 1 and isinstance(node[0], list) and node[0] \
            and isinstance(node[0][0], str):
        return node[0][0]
    return None


def _node_sources(node: Any) -> Optional[List[str]]:
    """The layer names whose outputs an inbound node takes: one, or a merge's
    list (Keras 3's ``{"args": [[__keras_tensor__, ...]]}``, Keras 2's
    ``[[name, 0, 0, {}], ...]``); None when the node is not understood."""
    if isinstance(node, dict):
        args = node.get("args") or []
        if len(args) == 1 and isinstance(args[0], list) and args[0] and all(
                isinstance(a, dict) and a.get("class_name") == "__keras_tensor__"
                for a in args[0]):
            names = [((a.get("config") or {}).get("keras_history") or [None])[0]
                     for a in args[0]]
            return names if all(isinstance(n, str) for n in names) else None
        if len(args) >= 2 and all(isinstance(a, dict) and a.get("class_name") ==
                                  "__keras_tensor__" for a in args):  # (an op's arguments)
            names = [((a.get("config") or {}).get("keras_history") or [None])[0] for a in args]
            return names if all(isinstance(n, str) for n in names) else None
        if len(args) == 2 and sum(_is_number(a) for a in args) == 1:  # (an op with a number)
            one = _node_source({"args": [a for a in args if not _is_number(a)]})
            return None if one is None else [one]
        one = _node_source(node)
        return None if one is None else [one]
    if isinstance(node, list) and len(node) == 1 and isinstance(node[0], list) and node[0] \
            and all(isinstance(a, list) and a and isinstance(a[0], str) for a in node[0]):
        return [a[0] for a in node[0]]
    one = _node_source(node)
    return None if one is None else [one]


def _is_number(value: Any) -> bool:
    """A number argument of an op in a functional config (``x * 0.5``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _op_number(node: Any) -> Tuple[Any, bool]:
    """An op's number argument and whether it comes first (``2.0 - x``)."""
    args = node.get("args") or [] if isinstance(node, dict) else []
    for k, a in enumerate(args):
        if _is_number(a):
            return a, k == 0
    return None, False


def _is_op_entry(entry: Dict[str, Any]) -> bool:
    """An entry of Keras's ops (x + y, x * 0.5, -x): its module says so; a
    legacy .h5 drops the module, and an op with a number (or Negative /
    TrueDivide, which are no layers) is still one."""
    if entry.get("module") == "keras.src.ops.numpy":
        return True
    name = entry.get("class_name")
    if entry.get("module") is not None or name not in ("Add", "Subtract", "Multiply",
                                                         "TrueDivide", "Negative"):
        return False
    nodes = entry.get("inbound_nodes") or []
    return name in ("TrueDivide", "Negative") or (
        bool(nodes) and _op_number(nodes[0])[0] is not None)


def _node_refs(node: Any) -> Optional[List[Tuple[str, int]]]:
    """_node_sources with each source's node index (which call of that layer:
    Keras 3's ``keras_history`` [name, node, tensor], Keras 2's [name, node,
    tensor, kwargs])."""
    names = _node_sources(node)
    if names is None:
        return None
    refs: List[Tuple[str, int]] = []
    if isinstance(node, dict):
        args = node.get("args") or []
        items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        for a in items:
            if _is_number(a):
                continue
            history = ((a.get("config") or {}).get("keras_history") or []) \
                if isinstance(a, dict) else []
            refs.append((history[0], int(history[1]) if len(history) > 1 and
                         isinstance(history[1], int) else 0))
    else:
        for a in node[0]:
            refs.append((a[0], int(a[1]) if len(a) > 1 and isinstance(a[1], int) else 0))
    return refs if [r[0] for r in refs] == names else [(n, 0) for n in names]


def _endpoint_refs(value: Any, ctx: _Context) -> Tuple[List[Tuple[str, int]], Optional[List[str]]]:
    """_input_endpoints with node indices: the (layer, node) of each of a
    functional config's ``output_layers`` (and a dict's keys)."""
    names, keys = _input_endpoints(value, ctx)
    items = list(value.values()) if isinstance(value, dict) else value
    if isinstance(items, list) and items and isinstance(items[0], str):
        items = [items]
    nodes = [int(v[1]) if isinstance(v, list) and len(v) > 1 and isinstance(v[1], int) else 0
             for v in items]
    return list(zip(names, nodes)), keys


def _listed(value: Any) -> bool:
    """Whether ``input_layers`` / ``output_layers`` is a list of [name, 0, 0]."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], list)


def _input_endpoints(value: Any, ctx: _Context) -> Tuple[List[str], Optional[List[str]]]:
    """The input layer names of a functional config's ``input_layers`` (one
    ``[name, 0, 0]``, a list of them, or a dict of them: then its keys too)."""
    keys = None
    if isinstance(value, dict):
        keys = [str(k) for k in value]
        value = list(value.values())
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        names = [v[0] if v and isinstance(v[0], str) else None for v in value]
        if any(n is None for n in names):
            raise ctx.error("the functional model's `input_layers` are not [name, 0, 0] lists.")
        return [str(n) for n in names], keys
    return [_endpoint(value, "inputs", ctx)], keys


def _graph_from_config(config: Dict[str, Any], inner: Dict[str, Any],
                       entries: Dict[str, Dict[str, Any]], firsts: List[str],
                       keys: Optional[List[str]], lasts: List[Tuple[str, int]],
                       ctx: _Context, compile: bool, in_list: bool = False,
                       out_list: bool = False, out_keys: Optional[List[str]] = None) -> Any:
    """A functional model with branches, several inputs or several outputs
    (``lasts``, with ``out_keys`` for a dict of them): its layers called in
    the config's order (Keras writes them in an order where each layer's
    inputs come before it), each on the tensors its one inbound node names."""
    from .models import Functional
    from .layers import Input
    tensors: Dict[Tuple[str, int], Any] = {}  # (by layer and node: its calls' outputs)
    for first in firsts:
        input_entry = entries.get(first)
        if input_entry is None or input_entry.get("class_name") != "InputLayer":
            raise ctx.error(f"the functional model's input {first!r} is not an InputLayer.")
        input_cfg = input_entry.get("config") or {}
        for flag in ("sparse", "ragged"):
            if input_cfg.get(flag):
                raise ctx.error(f"the InputLayer is {flag}; fastdense takes dense inputs.")
        shape = input_cfg.get("batch_shape", input_cfg.get("batch_input_shape"))
        if shape is None:
            raise ctx.error("the InputLayer has no batch_shape.")
        _check_dtype(input_cfg.get("dtype"), "the InputLayer", ctx)
        try:
            tensors[(first, 0)] = Input(batch_shape=tuple(shape), name=first)
        except (TypeError, ValueError) as e:
            raise ctx.error(f"cannot rebuild the model's input {first!r}: {e}") from None
    try:
        # Each inbound node is one call of its layer (a layer applied several
        # times has several, numbered in the order they were made); a call
        # runs once the tensors it takes exist (Keras may list a layer before
        # the layers its later calls read).
        pending: List[Tuple[int, str, Dict[str, Any], int, List[Tuple[str, int]]]] = []
        for i, (name, entry) in enumerate(entries.items()):
            if name in firsts:
                continue
            nodes = entry.get("inbound_nodes") or []
            if not nodes:
                raise ctx.error(f"layer {name!r} is never called in the functional model.")
            for k, node in enumerate(nodes):
                refs = _node_refs(node)
                if refs is None:
                    raise ctx.error(f"layer {name!r}'s call #{k} is not understood (inbound "
                                    f"node {node!r}).")
                pending.append((i, name, entry, k, refs))
        made: Dict[str, Any] = {}
        while pending:
            rest = []
            for item in pending:
                i, name, entry, k, refs = item
                if any(r not in tensors for r in refs) or (k and (name, k - 1) not in tensors):
                    rest.append(item)
                    continue
                layer: Any = made.get(name)
                if layer is None:
                    is_op = _is_op_entry(entry)
                    op = _OPS.get(str(entry.get("class_name"))) if is_op else None
                    number, number_first = _op_number(entry["inbound_nodes"][0]) if is_op \
                        else (None, False)
                    op_name = (entry.get("config") or {}).get("name", name)
                    if is_op and (number is not None or entry.get("class_name") == "Negative"):
                        key = (str(entry.get("class_name")), number_first)
                        if key not in _OpScalar._CODES:
                            raise ctx.error(f"the op {name!r} ({key[0]} with a number) is not "
                                            "one fastdense runs.")
                        layer = _OpScalar(key[0], number, number_first, name=op_name)
                    elif op is not None:
                        layer = op(name=op_name)
                    else:
                        layer, _ = _layer_from_entry(entry, i, ctx)
                    made[name] = layer
                args = [tensors[r] for r in refs]
                tensors[(name, k)] = layer(args if isinstance(layer, _Merge) and not isinstance(
                    layer, _OpScalar) else args[0])
            if len(rest) == len(pending):
                name, k, refs = rest[0][1], rest[0][3], rest[0][4]
                raise ctx.error(f"layer {name!r}'s call #{k} takes {refs}, which no call of "
                                "the model computes.")
            pending = rest
        for last in lasts:
            if last not in tensors:
                raise ctx.error(f"the functional model names an output {last[0]!r} it does "
                                "not hold.")
        starts = [tensors[(f, 0)] for f in firsts]
        ends = [tensors[last] for last in lasts]
        model = Functional(dict(zip(keys, starts)) if keys is not None else
                           starts if len(starts) > 1 or in_list else starts[0],
                           dict(zip(out_keys, ends)) if out_keys is not None else
                           ends if len(ends) > 1 or out_list else ends[0],
                           name=inner.get("name"), trainable=inner.get("trainable", True))
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"cannot rebuild the model: {e}") from None
    if len({id(c[0]) for c in model._graph_order or []} or model.layers) != len(entries):
        raise ctx.error("the functional model holds layers its output does not depend on.")
    compile_config = config.get("compile_config")
    if compile and compile_config:
        _compile_from_config(model, compile_config, ctx)
    return model


def _endpoint(value: Any, what: str, ctx: _Context) -> str:
    """The layer name of a functional config's ``input_layers`` /
    ``output_layers`` (``[name, 0, 0]``, or a list of one of those)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    if not value:
        raise ctx.error(f"the functional model's config names no {what} "
                        f"(`{'input' if what == 'inputs' else 'output'}_layers`).")
    raise ctx.error(f"the functional model has {len(value) if isinstance(value, list) else 0} "
                    f"{what}; fastdense runs models with one output (and one or more inputs).")


def _functional_from_config(config: Dict[str, Any], ctx: _Context, compile: bool) -> Any:
    """A functional model whose layers form a chain from its one input to its
    one output (each layer called once, on the previous one's output)."""
    from .models import Functional

    inner = config.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise ctx.error("the functional model's config has no layer list.")
    _check_dtype(inner.get("dtype"), "the model", ctx)
    entries: Dict[str, Dict[str, Any]] = {}
    for i, entry in enumerate(inner["layers"]):
        if not isinstance(entry, dict):
            raise ctx.error(f"layer entry #{i} is not a JSON object.")
        name = entry.get("name", (entry.get("config") or {}).get("name"))
        entries[str(name)] = entry
    firsts, keys = _input_endpoints(inner.get("input_layers"), ctx)
    outputs = inner.get("output_layers")
    if isinstance(outputs, dict) or (isinstance(outputs, list) and _listed(outputs)
                                     and len(outputs) > 1):
        # (several outputs: a list of [name, 0, 0], or a dict of them)
        lasts, out_keys = _endpoint_refs(outputs, ctx)
        return _graph_from_config(config, inner, entries, firsts, keys, lasts, ctx, compile,
                                  _listed(inner.get("input_layers")), True, out_keys)
    last = _endpoint(outputs, "outputs", ctx)
    in_list, out_list = _listed(inner.get("input_layers")), _listed(outputs)
    if len(firsts) > 1 or any(len(_node_sources((e.get("inbound_nodes") or [None])[0]) or [])
                              > 1 or len(e.get("inbound_nodes") or []) > 1
                              or _is_op_entry(e)
                              for e in entries.values()):
        # (branches, several inputs, a layer applied several times, or ops)
        return _graph_from_config(config, inner, entries, firsts, keys,
                                  _endpoint_refs(outputs, ctx)[0], ctx, compile, in_list,
                                  out_list)
    first = firsts[0]
    chain: List[Dict[str, Any]] = []
    name = last
    while name != first:
        entry = entries.get(name)
        if entry is None:
            raise ctx.error(f"the functional model names a layer {name!r} it does not hold.")
        nodes = entry.get("inbound_nodes") or []
        source = _node_source(nodes[0]) if len(nodes) == 1 else None
        if source is None or len(chain) > len(entries):
            raise ctx.error(f"layer {name!r} is not one step of a chain (it takes "
                            f"{len(nodes)} inbound calls, or several inputs); fastdense loads "
                            "functional models whose layers form one chain.")
        chain.append(entry)
        name = source
    chain.reverse()
    if len(chain) + 1 != len(entries):
        raise ctx.error("the functional model holds layers outside the chain from its input "
                        "to its output; fastdense loads functional models whose layers form "
                        "one chain.")
    input_entry = entries[first]
    input_cfg = input_entry.get("config") or {}
    if input_entry.get("class_name") != "InputLayer":
        raise ctx.error(f"the functional model's input {first!r} is not an InputLayer.")
    for flag in ("sparse", "ragged"):
        if input_cfg.get(flag):
            raise ctx.error(f"the InputLayer is {flag}; fastdense takes dense inputs.")
    _check_dtype(input_cfg.get("dtype"), "the InputLayer", ctx)
    shape = input_cfg.get("batch_shape", input_cfg.get("batch_input_shape"))
    if shape is None:
        raise ctx.error("the InputLayer has no batch_shape.")
    try:
        from .layers import Input
        start = tensor = Input(batch_shape=tuple(shape), name=first)
        for i, entry in enumerate(chain):
            layer, _ = _layer_from_entry(entry, i + 1, ctx)
            tensor = layer(tensor)
        model = Functional([start] if in_list else start, [tensor] if out_list else tensor,
                           name=inner.get("name"),
                           trainable=inner.get("trainable", True))
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"cannot rebuild the model: {e}") from None
    compile_config = config.get("compile_config")
    if compile and compile_config:
        _compile_from_config(model, compile_config, ctx)
    return model


def _model_from_config(config: Dict[str, Any], ctx: _Context, compile: bool = True) -> Any:
    from .models import Sequential  # models imports this module's users lazily

    if not isinstance(config, dict):
        raise ctx.error("the config is not a JSON object.")
    cls_name = config.get("class_name")
    model_cls: Any = Sequential
    custom = ctx.custom(config.get("registered_name"), cls_name)
    if cls_name in ("Functional", "Model") and not (
            isinstance(custom, type) and issubclass(custom, Sequential)):
        return _functional_from_config(config, ctx, compile)
    if isinstance(custom, type) and issubclass(custom, Sequential):
        model_cls = custom
    elif cls_name != "Sequential":
        raise ctx.error(f"unsupported model class {cls_name!r}; fastdense loads Sequential "
                        "models only.")
    inner = config.get("config")
    if isinstance(inner, list):  # very old Sequential configs: the layer list itself
        inner = {"layers": inner}
    if not isinstance(inner, dict) or not isinstance(inner.get("layers", []), list):
        raise ctx.error("the Sequential config has no layer list.")
    _check_dtype(inner.get("dtype"), "the model", ctx)
    try:
        model = model_cls(name=inner.get("name"), trainable=inner.get("trainable", True))
    except (TypeError, ValueError) as e:
        raise ctx.error(f"cannot create the model: {e}") from None
    input_shape: Optional[Tuple[Any, ...]] = None
    stack: List[Layer] = []
    layer: Layer
    for i, entry in enumerate(inner.get("layers") or []):
        if not isinstance(entry, dict):
            raise ctx.error(f"layer entry #{i} is not a JSON object.")
        layer_cls = entry.get("class_name")
        layer_cfg = entry.get("config") or {}
        if not isinstance(layer_cfg, dict):
            raise ctx.error(f"the config of layer entry #{i} is not a JSON object.")
        if layer_cls == "InputLayer":
            if stack:
                raise ctx.error("an InputLayer appears after other layers.")
            for flag in ("sparse", "ragged"):
                if layer_cfg.get(flag):
                    raise ctx.error(f"the InputLayer is {flag}; fastdense takes dense inputs.")
            _check_dtype(layer_cfg.get("dtype"), "the InputLayer", ctx)
            shape = layer_cfg.get("batch_shape", layer_cfg.get("batch_input_shape"))
            if shape is None and layer_cfg.get("shape") is not None:
                shape = [layer_cfg.get("batch_size")] + list(layer_cfg["shape"])
            if shape is None:
                raise ctx.error("the InputLayer has no batch_shape.")
            input_shape = tuple(shape)
            if isinstance(layer_cfg.get("name"), str):
                model._input_layer_name = layer_cfg["name"]  # written back by model_to_config
            continue
        layer, shape_from_layer = _layer_from_entry(entry, i, ctx)
        if not stack and input_shape is None and shape_from_layer is not None:
            input_shape = shape_from_layer
        stack.append(layer)
    if input_shape is None:
        build = config.get("build_config") or {}
        shape = build.get("input_shape", inner.get("build_input_shape"))
        if shape is not None:
            input_shape = tuple(shape)
    flat = _flat(stack)
    has_dense = any(isinstance(l, Dense) for l in flat)
    if not has_dense and any(isinstance(l, (BatchNormalization, _RowNormalization))
                             for l in flat):
        raise ctx.error("the model has normalization layers but no Dense layer; fastdense "
                        "models need at least one Dense layer.")
    if input_shape is not None:
        _check_layer_shapes(flat, input_shape, ctx)
    # (a Flatten before the first Dense: after Rescaling, Dropout and the like)
    first_weighted = next((k for k, layer in enumerate(flat)
                           if isinstance(layer, (Dense, BatchNormalization, _RowNormalization,
                                                 PReLU))),
                          len(stack))
    flatten_first = any(isinstance(layer, Flatten) or (
        isinstance(layer, Reshape) and len(layer.target_shape) == 1)
        for layer in flat[:first_weighted])
    if input_shape is not None and (
            (len(input_shape) != 2 and not flatten_first) or input_shape[-1] is None):
        raise ctx.error(f"the model's input shape is {list(input_shape)}; fastdense takes "
                        "inputs of shape (batch, features), or images through Flatten.")
    try:
        if input_shape is not None:
            model.add(InputLayer(shape=tuple(input_shape[1:]), name=model._input_layer_name))
        for layer in stack:
            model.add(layer, rebuild=False)
        if input_shape is not None and has_dense:
            model.build((None,) + tuple(int(d) for d in input_shape[1:]))
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"cannot rebuild the model: {e}") from None
    compile_config = config.get("compile_config")
    if compile and compile_config:
        _compile_from_config(model, compile_config, ctx)
    return model


def _optimizer_from_config(config: Any, ctx: _Context) -> _optimizers.Optimizer:
    if isinstance(config, str):
        custom = ctx.custom(config)
        if custom is not None:
            return custom() if isinstance(custom, type) else custom
        try:
            return _optimizers.get(config)
        except ValueError as e:
            raise ctx.error(f"unsupported optimizer {config!r}: {e}") from None
    if not isinstance(config, dict):
        raise ctx.error(f"cannot interpret the optimizer {config!r}.")
    cls_name = config.get("class_name")
    inner = dict(config.get("config") or {})
    custom = ctx.custom(config.get("registered_name"), cls_name)
    if custom is not None:
        return _instantiate(custom, inner, ctx, "optimizer") if isinstance(custom, type) \
            else custom
    cls = _optimizers._BY_NAME.get(str(cls_name).lower())
    if cls is None or cls.__name__ != cls_name:
        raise ctx.error(f"unsupported optimizer {cls_name!r}; fastdense implements "
                        f"{', '.join(c.__name__ for c in _optimizers._BY_NAME.values())}.")
    lr = inner.get("learning_rate")
    if isinstance(lr, dict):
        if lr.get("class_name") in ("function", "__lambda__"):
            inner["learning_rate"] = _resolve_function(lr, ctx, "learning rate", {})
        else:
            custom_lr = ctx.custom(lr.get("registered_name"), lr.get("class_name"))
            module = str(lr.get("module") or "")
            if custom_lr is None and not (module.startswith("keras") or module == ""
                                          or module.startswith("fastdense")):
                raise ctx.error(f"unsupported learning rate schedule {lr.get('class_name')!r} "
                                f"(module {module!r}); pass it in custom_objects.")
            try:
                inner["learning_rate"] = _schedules.deserialize(lr, ctx.custom_objects)
            except (TypeError, ValueError) as e:
                raise ctx.error(f"unsupported learning rate schedule: {e}") from None
    if not inner.get("use_ema"):
        inner.pop("ema_momentum", None)
    if inner.get("use_ema") is False:
        inner.pop("use_ema")
    if inner.get("is_legacy_optimizer") is False:
        inner.pop("is_legacy_optimizer")
    inner = {k: v for k, v in inner.items() if v is not None}
    return _instantiate(cls, inner, ctx, "optimizer")


def _compile_from_config(model: Any, config: Dict[str, Any], ctx: _Context) -> None:
    config = dict(config)
    optimizer = _optimizer_from_config(config.get("optimizer", "rmsprop"), ctx)
    loss_registry = dict(_losses._BY_NAME)
    loss = config.get("loss")
    metric_registry = dict(_metrics._BY_NAME)
    if getattr(model, "_outs", None) is not None:  # (several outputs: the structures saved)
        def struct(value: Any, kind: str, registry: Any, base: Any) -> Any:
            if isinstance(value, list):
                return [struct(v, kind, registry, base) for v in value]
            if isinstance(value, dict) and "class_name" not in value:
                return {k: struct(v, kind, registry, base) for k, v in value.items()}
            return None if value is None else _deserialize_object(value, ctx, kind, registry,
                                                                  base)
        kwargs = {k: config[k] for k in ("run_eagerly", "steps_per_execution", "jit_compile",
                                          "auto_scale_loss") if k in config}
        try:
            model.compile(optimizer=optimizer,
                          loss=struct(loss, "loss", loss_registry, _losses.Loss),
                          metrics=struct(config.get("metrics"), "metric", metric_registry,
                                         _metrics.Metric),
                          weighted_metrics=struct(config.get("weighted_metrics"), "metric",
                                                  metric_registry, _metrics.Metric),
                          loss_weights=config.get("loss_weights"), **kwargs)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise ctx.error(f"cannot compile the model as saved: {e}") from None
        return
    if isinstance(loss, list) or (isinstance(loss, dict) and "class_name" not in loss):
        raise ctx.error(f"the model was compiled with several losses ({loss!r}) but has one "
                        "output.")
    loss = _deserialize_object(loss, ctx, "loss", loss_registry, _losses.Loss)

    def metric_list(key: str) -> Optional[List[Any]]:
        metrics = config.get(key)
        if isinstance(metrics, dict) and "class_name" not in metrics:
            metrics = list(metrics.values())
        if metrics is not None and not isinstance(metrics, list):
            metrics = [metrics]
        flat: List[Any] = []
        for m in metrics or []:
            flat.extend(m if isinstance(m, list) else [m])
        return [_deserialize_object(m, ctx, "metric", metric_registry, _metrics.Metric)
                for m in flat] or None

    metrics, weighted = metric_list("metrics"), metric_list("weighted_metrics")
    kwargs = {k: config[k] for k in ("run_eagerly", "steps_per_execution", "jit_compile",
                                      "auto_scale_loss") if k in config}
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      weighted_metrics=weighted, loss_weights=config.get("loss_weights"),
                      **kwargs)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ctx.error(f"cannot compile the model as saved: {e}") from None


def model_from_config(config: Mapping[str, Any],
                      custom_objects: Optional[Mapping[str, Any]] = None,
                      compile: bool = True, safe_mode: bool = True) -> Any:
    """A new model from a Keras config (``model_to_config`` or a Keras
    ``config.json``), with freshly initialized weights; compiled when the
    config has a ``compile_config`` and ``compile`` is true."""
    ctx = _Context("Error reading the model config", custom_objects, safe_mode)
    return _model_from_config(dict(config), ctx, compile=compile)


def model_from_json(json_string: str, custom_objects: Optional[Mapping[str, Any]] = None
                    ) -> Any:
    """``keras.models.model_from_json``: a new model (fresh weights) from
    ``to_json``'s output or Keras's; compiled if the JSON has a compile config,
    as Keras does."""
    ctx = _Context("Error reading the model JSON", custom_objects, safe_mode=True)
    try:
        config = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as e:
        raise ctx.error(f"not valid JSON: {e}") from None
    return _model_from_config(config, ctx, compile=True)
