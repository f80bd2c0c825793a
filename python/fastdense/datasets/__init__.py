"""Built-in datasets (Keras-compatible loaders).

Each loader looks for its files locally before downloading anything: in
``$FASTDENSE_DATA`` (a directory holding the file, or a subdirectory named
after the dataset), in Keras's cache (``$KERAS_HOME/datasets`` or
``~/.keras/datasets``, where Keras's own loaders put them), then in fastdense's
(``$FASTDENSE_HOME/datasets`` or ``~/.fastdense/datasets``); only then is the
file downloaded once, from the URL Keras uses, into fastdense's cache.
"""

from . import (boston_housing, california_housing, cifar10, cifar100, fashion_mnist, imdb,
               mnist, reuters)
from ._fetch import DatasetNotFoundError

__all__ = ["boston_housing", "california_housing", "cifar10", "cifar100", "fashion_mnist",
           "imdb", "mnist", "reuters", "DatasetNotFoundError"]
