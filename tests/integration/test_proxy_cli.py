"""The proxy environment as a user behind a proxy meets it: the ``assay`` console script with
HTTP_PROXY / NO_PROXY (either case) against a real proxy (tinyproxy), a real registry and the
signed fixture Debian repository, all on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.assets import INTEROP
from fixtures.cli import Ran, run_script
from fixtures.debrepo import FakePkg, TestKey, make_repo, rfc2822, serve, test_key
from fixtures.proxy import RunningProxy, start_tinyproxy
from fixtures.registry import RunningRegistry, free_port
from fixtures.vulnfeeds import FEED_SITE_PATHS, feeds_dir, serve_feeds, update_args

__all__ = ["feeds_dir", "test_key"]  # pytest fixtures, imported for use here

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
LAYOUT = INTEROP / "skopeo-1.13.3-signed-oci"


def assay(*args: str, cwd: Path, env: dict[str, str]) -> Ran:
    """The installed console script, with only the proxy variables ``env`` gives."""
    proxies = tuple(k for k in os.environ if k.lower() in _PROXY_VARIABLES)  # any spelling
    return run_script(
        *args,
        env={"ASSAY_PASSWORD": "", "ASSAY_CACHE_DIR": str(cwd / "cache"), **env},
        drop=(*proxies, "ASSAY_PASSWORD", "COSIGN_PASSWORD"),
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[RunningProxy]:
    with start_tinyproxy(tmp_path / "proxy") as running:
        yield running


def _push_sign_verify(registry: RunningRegistry, tmp_path: Path, env: dict[str, str]) -> str:
    image = f"{registry.host}/proxy/{uuid.uuid4().hex[:8]}:1"
    for args in (
        ("push", "-q", f"oci:{LAYOUT}:v1", image),
        ("keygen",),
        ("sign", image, "--key", "cosign.key"),
        ("verify", image, "--key", "cosign.pub"),
    ):
        r = assay(*args, cwd=tmp_path, env=env)
        assert r.returncode == 0, (args, r.stderr)
    return image


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_push_sign_verify_go_through_the_proxy(
    registry: RunningRegistry, proxy: RunningProxy, tmp_path: Path, variable: str
) -> None:
    image = _push_sign_verify(registry, tmp_path, {variable: proxy.url})
    repo = image.split("/", 1)[1].split(":")[0]
    seen = proxy.requests()
    base = f"http://{registry.host}/v2/{repo}"
    assert f"PUT {base}/manifests/1 HTTP/1.1" in seen  # the push
    assert any(s.startswith(f"PUT {base}/manifests/sha256-") for s in seen)  # the signature
    assert any(s.startswith(f"GET {base}/manifests/sha256-") for s in seen)  # verify reads it
    assert all(s.startswith(("GET", "HEAD", "PUT", "POST", "PATCH")) for s in seen), seen


@pytest.mark.parametrize(
    ("variable", "value"),
    [("NO_PROXY", "127.0.0.1"), ("no_proxy", "localhost,127.0.0.1"), ("NO_PROXY", "127.0.0.0/8")],
)
def test_no_proxy_bypasses_the_proxy(
    registry: RunningRegistry, proxy: RunningProxy, tmp_path: Path, variable: str, value: str
) -> None:
    _push_sign_verify(registry, tmp_path, {"HTTP_PROXY": proxy.url, variable: value})
    assert proxy.requests() == []


def test_a_proxy_that_is_down_is_a_one_line_network_error(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    down = f"127.0.0.1:{free_port()}"
    env = {"http_proxy": f"http://someone:hunter2@{down}"}
    assert assay("keygen", cwd=tmp_path, env={}).returncode == 0
    r = assay("verify", f"{registry.host}/proxy/x:1", "--key", "cosign.pub", cwd=tmp_path, env=env)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"through proxy http://{down}" in lines[0] and "cannot reach registry" in lines[0]
    assert "hunter2" not in r.stderr


def test_an_unusable_proxy_setting_is_a_usage_error(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    env = {"HTTP_PROXY": "ftp://127.0.0.1:21"}
    assert assay("keygen", cwd=tmp_path, env={}).returncode == 0
    r = assay("verify", f"{registry.host}/proxy/x:1", "--key", "cosign.pub", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "HTTP_PROXY" in lines[0] and "ftp://" in lines[0], r.stderr


def test_lock_fetches_the_repository_through_the_proxy(
    proxy: RunningProxy, tmp_path: Path, test_key: TestKey
) -> None:
    pkgs = [
        FakePkg("base-files", "12.4", files={"etc/debian_version": b"12.4\n"}),
        FakePkg("hello", "1.0-1", files={"usr/bin/hello": b"#!/bin/false\n"}),
    ]
    root = tmp_path / "repo"
    make_repo(root, {"stable": pkgs}, archs=("amd64",), key=test_key, date=rfc2822(1_700_000_000))
    spec = tmp_path / "hello.yaml"
    served: list[str] = []
    with serve(root, log=served) as url:
        spec.write_text(
            f"contents:\n  repositories:\n    - uri: {url}\n      suites: [stable]\n"
            f"      components: [main]\n      signed-by: {test_key.keyring}\n"
            "  packages: [base-files, hello]\narchs: [amd64]\n"
        )
        r = assay("lock", str(spec), cwd=tmp_path, env={"HTTP_PROXY": proxy.url})
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "hello.lock.json").exists()
        assert f"GET {url}/dists/stable/InRelease HTTP/1.1" in proxy.requests()
        before, served_before = len(proxy.requests()), len(served)
        env = {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1", "ASSAY_CACHE_DIR": "cache2"}
        r = assay("lock", str(spec), cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        assert "/dists/stable/InRelease" in served[served_before:]  # fetched again, directly
        assert len(proxy.requests()) == before


def test_db_update_downloads_the_feeds_through_the_proxy(
    proxy: RunningProxy, tmp_path: Path, feeds_dir: Path
) -> None:
    served: list[str] = []
    with serve_feeds(feeds_dir, served) as url:
        r = assay(
            *update_args(url),
            "--epss-url",
            f"{url}/epss.csv.gz",
            cwd=tmp_path,
            env={"https_proxy": "http://127.0.0.1:9", "http_proxy": proxy.url},
        )
    assert r.returncode == 0, r.stderr
    assert sorted(p.split("?")[0] for p in served) == sorted(FEED_SITE_PATHS)
    seen = sorted(line.split("?")[0].split(" ")[1] for line in proxy.requests())
    assert seen == sorted(url + p for p in FEED_SITE_PATHS)
