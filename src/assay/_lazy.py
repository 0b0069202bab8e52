"""Lazy package exports (PEP 562): a name is imported from its module on first use.

A package ``__init__`` lists its public names and the module each lives in; importing the
package (or one of its submodules) then loads none of the others::

    __getattr__, __dir__ = lazy_exports(__name__, {"Digest": "assay.oci.digest", ...})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` for ``package``, whose ``exports`` map each
    public name to the module defining it. A name, once imported, is kept in the package."""
    namespace = sys.modules[package].__dict__
    where = dict(exports)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
