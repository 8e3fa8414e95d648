"""Names of a package imported on first use (PEP 562), so that importing the package, or
one of its submodules, does not import what its other names need (spaCy, above all)."""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Dict, List, Tuple


def lazy_names(package: str, names: Dict[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose public ``names`` are defined
    in the modules given as names relative to it (``".runner"``)."""
    module = sys.modules[package]

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        setattr(module, name, value)  # the next look-up finds it without this function
        return value

    def dir_() -> List[str]:
        return sorted(set(vars(module)) | set(names))

    return getattr_, dir_
