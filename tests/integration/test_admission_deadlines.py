"""Per-operation deadlines in the admission webhook's HTTP clients and in the commands that talk
to a registry, against a server on 127.0.0.1 that sends one byte every 2 s (per-read timeouts
never fire on it): each operation ends as an error within its deadline, nothing hangs, and no
worker thread is left reading from the server after the answer was given."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.errors import NetworkError
from fixtures.assets import INTEROP
from fixtures.drip import DripServer
from integration.policy_helpers import cip, key_authority, new_key

CAPTURE = INTEROP / "kube-apiserver-1.36.2"
APP_DIGEST_REF = (
    "registry.example/acme/app@"
    "sha256:41b008cbd15321447ed0d5b070dd43ff086f40848f0b3907f6e904489b3a9011"
)
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture()
def trickle() -> Iterator[DripServer]:
    with DripServer(drip_headers=True, interval=2.0) as server:
        yield server


def test_webhook_decision_on_a_trickling_registry_ends_in_its_deadline(
    trickle: DripServer, tmp_path: Path
) -> None:
    from assay.admission import Settings, Webhook, parse_review
    from assay.admission.serve import match_context
    from assay.policy import Engine, load_policies

    host = f"127.0.0.1:{trickle.port}"
    _, pub = new_key()
    (tmp_path / "p.yaml").write_text(cip("trickle", f"{host}/**", key_authority(pub)))
    text = (CAPTURE / "04-pod-create-digest-validate.json").read_text()
    text = text.replace(f'"{APP_DIGEST_REF}"', json.dumps(f"{host}/acme/app@{DIGEST}"))
    req = parse_review(text.encode())
    with Engine(load_policies([tmp_path / "p.yaml"]), timeout=2.0) as engine:
        hook = Webhook(engine, Settings(deadline=2.0), make_context=match_context)
        started = time.monotonic()
        out = asyncio.run(hook.review("validate", req))["response"]
        took = time.monotonic() - started
        assert out["allowed"] is False, out
        assert "an error, not a policy failure" in out["status"]["message"], out
        assert took < 2.0 + 1.5, f"the 2 s deadline took {took:.1f} s"
        # The engine's own request ended at the deadline too: its connection is given up (the
        # server sees it at its next byte), not read on in an abandoned thread for minutes.
        assert trickle.wait_idle(2.0 + 2 * trickle.interval + 2.0), "a request is still reading"


def test_alert_to_a_trickling_receiver_is_cut_off_at_its_deadline(
    trickle: DripServer, caplog: pytest.LogCaptureFixture
) -> None:
    from assay.admission.alerts import WebhookAlert

    alert = WebhookAlert(f"http://127.0.0.1:{trickle.port}/hook", timeout=1.0)

    async def send() -> None:
        alert("denied")
        await alert.drain()

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="assay.admission.alerts"):
        asyncio.run(send())
    took = time.monotonic() - started
    assert took < 1.0 + 1.5, f"the 1 s deadline took {took:.1f} s"
    assert any("did not finish within 1 s" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


def test_kubernetes_api_read_from_a_trickling_server_is_cut_off(trickle: DripServer) -> None:
    from assay.admission.kube import KubeClient

    client = KubeClient(f"http://127.0.0.1:{trickle.port}", "token", False, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="did not finish within 1 s"):
        client.get("/api/v1/namespaces/x/secrets/y")
    assert time.monotonic() - started < 1.0 + 1.5
    client.close()


def _public_key(tmp: Path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp / "cosign.pub").write_bytes(pem)
    return str(tmp / "cosign.pub")


COMMANDS: dict[str, Any] = {
    "sbom": lambda ref, t: ["sbom", ref],
    "scan": lambda ref, t: ["scan", ref, "--db", str(t / "v.db")],
    "verify-key": lambda ref, t: ["verify", ref, "--key", _public_key(t)],
    "verify-policy": lambda ref, t: ["verify", ref, "--policy", _policy(t, ref)],
}


def _policy(tmp: Path, ref: str) -> str:
    _, pub = new_key()
    (tmp / "p.yaml").write_text(cip("trickle", ref.split("/")[0] + "/**", key_authority(pub)))
    return str(tmp / "p.yaml")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_commands_on_a_trickling_registry_fail_within_the_deadline(
    name: str, trickle: DripServer, tmp_path: Path
) -> None:
    ref = f"127.0.0.1:{trickle.port}/acme/app:1"
    if name == "scan":  # an empty advisory DB, so that scan gets as far as the registry
        (tmp_path / "k.json").write_text('{"vulnerabilities": []}')
        subprocess.run(
            ["assay", "db", "import", "--db", str(tmp_path / "v.db"), "--kev", "k.json"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
    env = {**os.environ, "ASSAY_HTTP_DEADLINE": "3", "ASSAY_CACHE_DIR": str(tmp_path / "c")}
    started = time.monotonic()
    proc = subprocess.run(
        ["assay", *COMMANDS[name](ref, tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    took = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # verify --policy reports per image (an error decision), the others one line
    assert "did not finish within 3 s" in proc.stderr + proc.stdout, (proc.stdout, proc.stderr)
    if name != "verify-policy":
        assert len(lines) == 1, proc.stderr
    # a few requests at most (the token probe, then the manifest), each within 3 s
    assert took < 20, f"took {took:.1f} s"
