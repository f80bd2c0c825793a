"""Keras's registry of custom objects (``keras.saving.register_keras_serializable``,
``get_custom_objects``, ``custom_object_scope``): what a saved model's names
resolve to when they are not fastdense's own, besides ``custom_objects``."""
from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional

__all__ = ["register_keras_serializable", "get_registered_name", "get_registered_object",
           "get_custom_objects", "custom_object_scope", "CustomObjectScope"]

# (Keras's GLOBAL_CUSTOM_OBJECTS / GLOBAL_CUSTOM_NAMES: filled only by the user)
_GLOBAL_CUSTOM_OBJECTS: Dict[str, Any] = {}
_GLOBAL_CUSTOM_NAMES: Dict[Any, str] = {}
_scopes = threading.local()


def _scope_stack() -> List[Dict[str, Any]]:
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack  # type: ignore[no-any-return]


class CustomObjectScope:
    """``with custom_object_scope({"my_loss": my_loss}): load_model(...)``:
    the names resolve while the block runs (in this thread)."""

    def __init__(self, custom_objects: Optional[Mapping[str, Any]]) -> None:
        if custom_objects is not None and not isinstance(custom_objects, Mapping):
            raise TypeError("Argument `custom_objects` must be a dict mapping names to "
                            f"objects. Received: custom_objects={custom_objects!r}")
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self) -> "CustomObjectScope":
        _scope_stack().append(self.custom_objects)
        return self

    def __exit__(self, *args: Any) -> None:
        _scope_stack().pop()


custom_object_scope = CustomObjectScope


def get_custom_objects() -> Dict[str, Any]:
    """The global dictionary of registered objects (mutable, as Keras's)."""
    return _GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package: str = "Custom", name: Optional[str] = None
                                ) -> Callable[[Any], Any]:
    """Registers a class or function under ``"package>name"`` so that saved
    models naming it load without ``custom_objects``."""
    def decorator(arg: Any) -> Any:
        class_name = name if name is not None else arg.__name__
        registered_name = f"{package}>{class_name}"
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        _GLOBAL_CUSTOM_OBJECTS[registered_name] = arg
        _GLOBAL_CUSTOM_NAMES[arg] = registered_name
        return arg
    return decorator


def get_registered_name(obj: Any) -> str:
    """The name ``obj`` is registered under, else its Python name."""
    try:
        if obj in _GLOBAL_CUSTOM_NAMES:
            return _GLOBAL_CUSTOM_NAMES[obj]
    except TypeError:  # (an unhashable object)
        pass
    return str(obj.__name__)


def get_registered_object(name: str, custom_objects: Optional[Mapping[str, Any]] = None,
                          module_objects: Optional[Mapping[str, Any]] = None) -> Any:
    """The object for ``name``: from the innermost custom_object_scope, the
    registry, ``custom_objects``, then ``module_objects``; else None."""
    for scope in reversed(_scope_stack()):
        if name in scope:
            return scope[name]
    if name in _GLOBAL_CUSTOM_OBJECTS:
        return _GLOBAL_CUSTOM_OBJECTS[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None
