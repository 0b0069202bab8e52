"""Shared pytest fixtures. Keep this small and importable without optional packages.

``registry`` — a real docker-registry on 127.0.0.1 (session-scoped; see tests/fixtures/registry.py).
``registry_htpasswd`` / ``registry_token`` — the same with basic auth / bearer-token auth.
``client`` — an ``assay`` RegistryClient of ``registry`` (function-scoped).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.registry import RunningRegistry, start_registry

if TYPE_CHECKING:
    from assay.oci.registry import RegistryClient

# assay honours the proxy environment (assay/_http.py). A runner behind a proxy must still reach
# the tests' own services on loopback directly: add them to NO_PROXY (the proxy tests set their
# own environment for the commands they run).
_PROXIES = ("http_proxy", "https_proxy", "all_proxy")
if any(os.environ.get(v) for n in _PROXIES for v in (n, n.upper())):
    _have = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""  # lower case wins
    _loopback = ",".join(p for p in (_have, "127.0.0.1,localhost,::1") if p)
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = _loopback


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
