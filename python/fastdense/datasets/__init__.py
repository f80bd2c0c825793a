"""Built-in datasets (Keras-compatible loaders)."""

from . import mnist

__all__ = ["mnist"]
