"""The one interface every cataloger implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assay.sbom.fs import FileView
from assay.sbom.model import Distro, Package

__all__ = ["CatalogContext", "Cataloger"]


@dataclass(frozen=True)
class CatalogContext:
    """What a cataloger may know besides the files: the detected distribution."""

    distro: Distro | None = None


class Cataloger(Protocol):
    """Finds one kind of package in a filesystem view.

    ``wants`` is called for every regular file path in the image (relative, no leading ``/``)
    and must be cheap: the image source keeps the bytes only of wanted files, after ``reduce``
    has cut them down to what ``catalog`` reads (a 2 MiB copyright file keeps only its
    ``License:`` lines). ``catalog`` then reads them through the view and returns packages
    (any order; the caller sorts).
    """

    name: str

    def wants(self, path: str) -> bool: ...

    def reduce(self, path: str, data: bytes) -> bytes: ...

    def catalog(self, view: FileView, context: CatalogContext) -> list[Package]: ...
