"""Unique default names for layers and models (``dense``, ``dense_1``, ...)."""
from __future__ import annotations

import itertools
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
    """``CategoricalCrossentropy`` -> ``categorical_crossentropy``."""
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)
