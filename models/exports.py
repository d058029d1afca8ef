"""Lazy public names for the project's packages: `from search import SearchEngine` without making
`import models` (which every command does first) load FAISS, torch or FastAPI."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` that import `names[attr]` (a module path) on first use."""

    def __getattr__(attr: str) -> object:
        if attr not in names:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        return getattr(importlib.import_module(names[attr]), attr)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
