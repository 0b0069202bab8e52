"""Credentials files, WWW-Authenticate parsing and small registry helpers (no network)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.errors import InputError, UsageError
from assay.oci.auth import Credentials, auth_files, load_credentials, parse_challenges
from assay.oci.registry import (
    RegistryClient,
    _parse_next_link,
    is_loopback_host,
    referrers_fallback_tag,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# ----------------------------------------------------------------------------- challenges


def test_bearer_challenge_with_quoted_params() -> None:
    [c] = parse_challenges(
        'Bearer realm="https://auth.example.test/token",service="registry.example.test",'
        'scope="repository:team/app:pull,push"'
    )
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.example.test/token"
    assert c.service == "registry.example.test"
    assert c.scopes == ("repository:team/app:pull,push",)


def test_multiple_challenges_and_escapes() -> None:
    cs = parse_challenges('Basic realm="a \\"quoted\\" realm", Bearer realm="r",service=s')
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[0].realm == 'a "quoted" realm'
    assert cs[1].service == "s"


def test_space_separated_scopes() -> None:
    [c] = parse_challenges('Bearer realm="r",scope="repository:a:pull repository:b:pull"')
    assert c.scopes == ("repository:a:pull", "repository:b:pull")


@given(st.text(max_size=300))
def test_challenge_parser_never_raises(header: str) -> None:
    parse_challenges(header)


def test_unterminated_quote_keeps_earlier_challenges() -> None:
    cs = parse_challenges('Basic realm="x", Bearer realm="unterminated')
    assert [c.scheme for c in cs] == ["basic"]


# ----------------------------------------------------------------------------- credentials


def test_docker_config_auth_field(home: Path) -> None:
    write(home / ".docker/config.json", {"auths": {"reg.test:5000": {"auth": b64("u", "p:w")}}})
    creds = load_credentials("reg.test:5000")
    assert creds is not None and (creds.username, creds.password) == ("u", "p:w")
    assert "config.json" in creds.source
    assert load_credentials("other.test") is None


def test_docker_config_url_keys_and_username_password(home: Path) -> None:
    write(
        home / ".docker/config.json",
        {"auths": {"https://reg.test/v1/": {"username": "alice", "password": "pw"}}},
    )
    creds = load_credentials("reg.test")
    assert creds is not None and creds.username == "alice" and creds.password == "pw"


def test_registry_auth_file_wins_and_is_exclusive(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home / ".docker/config.json", {"auths": {"reg.test": {"auth": b64("docker", "x")}}})
    explicit = write(home / "explicit.json", {"auths": {"reg.test": {"auth": b64("ra", "y")}}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert auth_files() == [explicit]
    creds = load_credentials("reg.test")
    assert creds is not None and creds.username == "ra"


def test_podman_runtime_auth_file_before_docker(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = home / "run"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    write(home / ".docker/config.json", {"auths": {"reg.test": {"auth": b64("docker", "x")}}})
    write(runtime / "containers/auth.json", {"auths": {"reg.test": {"auth": b64("podman", "y")}}})
    creds = load_credentials("reg.test")
    assert creds is not None and creds.username == "podman"


def test_podman_namespaced_keys_pick_the_longest_match(home: Path) -> None:
    write(
        home / ".config/containers/auth.json",
        {
            "auths": {
                "reg.test": {"auth": b64("host", "1")},
                "reg.test/team": {"auth": b64("team", "2")},
                "reg.test/team/app": {"auth": b64("app", "3")},
                "reg.test/tea": {"auth": b64("wrong-prefix", "4")},
            }
        },
    )

    def user(repo: str) -> str | None:
        c = load_credentials("reg.test", repo)
        return c.username if c else None

    assert user("team/app") == "app"
    assert user("team/other") == "team"
    assert user("teams/x") == "host"
    assert user("") == "host"


def test_malformed_auth_values_are_input_errors(home: Path) -> None:
    write(home / ".docker/config.json", {"auths": {"reg.test": {"auth": "%%%not base64"}}})
    with pytest.raises(InputError, match="base64"):
        load_credentials("reg.test")
    nocolon = base64.b64encode(b"justuser").decode()
    write(home / ".docker/config.json", {"auths": {"reg.test": {"auth": nocolon}}})
    with pytest.raises(InputError, match="no ':'"):
        load_credentials("reg.test")
    (home / ".docker/config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_credentials("reg.test")


def test_credential_helpers_are_not_run(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(home / ".docker/config.json", {"credHelpers": {"reg.test": "evil"}})
    assert load_credentials("reg.test") is None
    assert "credential helper" in caplog.text


def test_credentials_repr_hides_the_password() -> None:
    c = Credentials("u", "hunter2", "file")
    assert "hunter2" not in repr(c)
    assert c.basic_header() == "Basic " + b64("u", "hunter2")


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("[::1]", True),
        ("10.0.0.1:5000", False),
        ("192.0.2.1", False),
        ("localhost.example.test", False),
        ("example.test:443", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_fallback_tag() -> None:
    assert referrers_fallback_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    assert len(referrers_fallback_tag("sha512:" + "c" * 128)) == 128


def test_link_header_parsing() -> None:
    assert (
        _parse_next_link('</v2/a/tags/list?n=2&last=b>; rel="next"') == "/v2/a/tags/list?n=2&last=b"
    )
    assert _parse_next_link('<x>; rel="prev", </y>; rel=next') == "/y"
    assert _parse_next_link(None) is None
    assert _parse_next_link("garbage") is None


def test_host_validation() -> None:
    with pytest.raises(UsageError):
        RegistryClient("reg.test/repo")
    with pytest.raises(UsageError, match="insecure-registry"):
        RegistryClient("http://reg.test:5000")
    c = RegistryClient("docker://reg.test:5000")
    assert c.base_url == "https://reg.test:5000"
    c.close()


def test_invalid_repository_and_reference_rejected_before_any_request() -> None:
    with RegistryClient("127.0.0.1:1", retries=0) as c:
        with pytest.raises(UsageError, match="repository"):
            c.get_manifest("Upper/Case", "v1")
        with pytest.raises(UsageError, match="tag"):
            c.get_manifest("a/b", "../../etc")
        with pytest.raises(InputError, match="digest"):
            c.blob_exists("a/b", "sha256:short")


def test_identity_token_entry(home: Path) -> None:
    write(
        home / ".docker/config.json",
        {"auths": {"reg.test": {"auth": "", "identitytoken": "s3cr3t-tok"}}},
    )
    creds = load_credentials("reg.test")
    assert creds is not None and creds.identity_token == "s3cr3t-tok"
    assert "s3cr3t-tok" not in repr(creds)
