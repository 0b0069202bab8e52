"""Shared pytest fixtures. Keep this small and importable without optional packages.

``registry`` — a real docker-registry on 127.0.0.1 (session-scoped; see tests/fixtures/registry.py).
``registry_htpasswd`` / ``registry_token`` — the same with basic auth / bearer-token auth.
``client`` — an ``assay`` RegistryClient of ``registry`` (function-scoped).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.registry import RunningRegistry, start_registry

if TYPE_CHECKING:
    from assay.oci.registry import RegistryClient


def _registry(
    tmp_path_factory: pytest.TempPathFactory, auth: str | None
) -> Iterator[RunningRegistry]:
    try:
        ctx = start_registry(tmp_path_factory.mktemp(f"registry-{auth or 'open'}"), auth=auth)
        reg = ctx.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield reg
    finally:
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    yield from _registry(tmp_path_factory, None)


@pytest.fixture(scope="session")
def registry_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    yield from _registry(tmp_path_factory, "htpasswd")


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    yield from _registry(tmp_path_factory, "token")


@pytest.fixture()
def client(registry: RunningRegistry) -> Iterator[RegistryClient]:
    from assay.oci.registry import RegistryClient

    with RegistryClient(registry.host) as c:
        yield c
