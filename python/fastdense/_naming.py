"""Unique default names for layers and models (``dense``, ``dense_1``, ...)."""
from __future__ import annotations

import itertools
import re
import threading
from collections import defaultdict
from typing import DefaultDict, Iterator

_lock = threading.Lock()
_counters: DefaultDict[str, Iterator[int]] = defaultdict(itertools.count)


def unique_name(base: str) -> str:
    with _lock:
        n = next(_counters[base])
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: ``CategoricalCrossentropy`` ->
    ``categorical_crossentropy``, ``KLDivergence`` -> ``kl_divergence``,
    ``RMSNormalization`` -> ``rms_normalization``, ``AUC`` -> ``auc``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
