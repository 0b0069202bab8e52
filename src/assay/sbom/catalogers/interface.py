"""The one interface every cataloger implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assay.errors import InputError
from assay.sbom.fs import FileView
from assay.sbom.model import Distro, Package

__all__ = ["MAX_DEPENDENCIES", "MAX_PACKAGES", "CatalogContext", "Cataloger", "refuse_oversized"]

MAX_PACKAGES = 40_000
"""Packages one image may list (real images: a few thousand). Each costs ~7 KB in an SBOM."""

MAX_DEPENDENCIES = 100_000
"""Dependency edges one image may list: a status file where each of 1,000 packages depends on
all the others is 1,000,000 SPDX relationships (1.6 GB) from 8 MB of text."""


def refuse_oversized(packages: int, dependencies: int = 0) -> None:
    """InputError when an image lists more packages or dependency edges than any real one."""
    if packages > MAX_PACKAGES:
        raise InputError(
            f"the image lists more than {MAX_PACKAGES} packages; refusing it "
            "(it looks malformed or hostile)"
        )
    if dependencies > MAX_DEPENDENCIES:
        raise InputError(
            f"the image's packages declare more than {MAX_DEPENDENCIES} dependencies; "
            "refusing it (it looks malformed or hostile)"
        )


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
