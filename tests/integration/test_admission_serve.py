"""`assay admission serve` end to end over HTTPS, with the real policy engine and registry.

The AdmissionReview bodies kube-apiserver v1.36.2 sent are re-targeted (image names rewritten) at
images pushed to the loopback docker-registry and signed/attested by assay; the webhook runs as
the installed console script in a subprocess, as a user would start it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import jsonschema
import pytest

from assay.admission.certs import write_certs
from assay.oci.registry import RegistryClient
from fixtures.assets import INTEROP
from fixtures.registry import free_port, start_registry, stop_process
from integration.policy_helpers import attest, cip, key_authority, new_key, push_image, sign

CAPTURE = INTEROP / "kube-apiserver-1.36.2"
APP = "registry.example/acme/app:v1"
INIT = (
    "registry.example/acme/init@"
    "sha256:3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804"
)
REGO = """\
      policy:
        type: rego
        data: |
          package sigstore
          default isCompliant = false
          isCompliant {
            input.predicate.Data == "built by ci"
          }
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Server:
    def __init__(self, url: str, ca: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log
        ctx = ssl.create_default_context(cafile=str(ca))
        self.client = httpx.Client(base_url=url, verify=ctx, timeout=30)

    def review(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(path, json=body)
        assert r.status_code == 200, r.text
        return dict(r.json()["response"])

    def metric(self, name: str) -> float:
        text = self.client.get("/metrics").text
        total = 0.0
        for line in text.splitlines():
            if re.match(rf"^{name}(\{{.*\}})? ", line):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextlib.contextmanager
def serve(tmp: Path, policy: str, *extra: str) -> Iterator[Server]:
    tmp.mkdir(parents=True, exist_ok=True)
    certs = write_certs(tmp / "certs", ["127.0.0.1"], force=True)
    (tmp / "policy.yaml").write_text(policy)
    port = free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "assay",
                "admission",
                "serve",
                "--policy",
                str(tmp / "policy.yaml"),
                "--tls-cert",
                str(certs.cert),
                "--tls-key",
                str(certs.key),
                "--listen",
                f"127.0.0.1:{port}",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    server = Server(f"https://127.0.0.1:{port}", certs.ca_cert, proc, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if server.client.get("/readyz").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"assay admission serve did not get ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        server.client.close()
        stop_process(proc)


def _body(name: str, images: dict[str, str]) -> dict[str, Any]:
    text = (CAPTURE / name).read_text()
    for old, new in images.items():
        assert old in text
        text = text.replace(f'"{old}"', json.dumps(new))
    return dict(json.loads(text))


def _patch(resp: dict[str, Any]) -> list[dict[str, Any]]:
    return list(json.loads(base64.b64decode(resp["patch"]))) if "patch" in resp else []


@pytest.fixture(scope="module")
def world(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    key, pub = new_key()
    base = "admission/" + uuid.uuid4().hex[:8]
    refs: dict[str, str] = {}
    digests: dict[str, str] = {}
    with RegistryClient(registry.host) as client:
        for name in ("signed", "unsigned", "attested", "init"):
            digests[name] = push_image(client, f"{base}/{name}", "1", label=name)
            refs[name] = f"{registry.host}/{base}/{name}:1"
        for name in ("signed", "attested", "init"):
            sign(client, refs[name], key)
        attest(client, refs["attested"], key, "custom", b"built by ci")
    atts = (
        "    attestations:\n    - name: ci\n"
        "      predicateType: https://cosign.sigstore.dev/attestation/v1\n" + REGO
    )
    policy = (
        cip("signed-by-ci-key", f"{registry.host}/{base}/**", key_authority(pub))
        + "\n---\n"
        + cip("attested", f"{registry.host}/{base}/attested**", key_authority(pub, extra=atts))
    )
    tmp = tmp_path_factory.mktemp("admission-serve")
    with serve(tmp, policy) as server:
        yield {
            "server": server,
            "refs": refs,
            "digests": digests,
            "key": key,
            "pub": pub,
            "policy": tmp / "policy.yaml",
        }


def _mutate_then_validate(
    server: Server, mutate: str, validate: str, images: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the API server does: /mutate, apply its patch, then /validate the patched object."""
    m = server.review("/mutate", _body(mutate, images))
    body = _body(validate, images)
    body["request"]["object"] = jsonpatch.apply_patch(body["request"]["object"], _patch(m))
    # the validate body is a later state of the same write; re-apply the mutate pins to it
    return m, server.review("/validate", body)


def test_signed_pod_is_pinned_and_admitted(world: dict[str, Any]) -> None:
    server, refs, digests = world["server"], world["refs"], world["digests"]
    m, v = _mutate_then_validate(
        server,
        "01-pod-create-tag-mutate.json",
        "02-pod-create-tag-validate.json",
        {APP: refs["signed"]},
    )
    uid = json.loads((CAPTURE / "01-pod-create-tag-mutate.json").read_text())["request"]["uid"]
    assert m["uid"] == uid and m["allowed"] is True
    assert _patch(m) == [
        {
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": f"{refs['signed']}@{digests['signed']}",
        }
    ]
    assert v["allowed"] is True, v


def test_unsigned_pod_is_denied_naming_image_policy_and_reason(world: dict[str, Any]) -> None:
    server, refs = world["server"], world["refs"]
    _, v = _mutate_then_validate(
        server,
        "01-pod-create-tag-mutate.json",
        "02-pod-create-tag-validate.json",
        {APP: refs["unsigned"]},
    )
    assert v["allowed"] is False
    msg = v["status"]["message"]
    assert refs["unsigned"].rsplit(":", 1)[0] in msg
    assert "failed policy: signed-by-ci-key: no signatures found" in msg


def test_deployment_with_attested_app_and_signed_init(world: dict[str, Any]) -> None:
    server, refs, digests = world["server"], world["refs"], world["digests"]
    init = f"{refs['init']}@{digests['init']}"
    m, v = _mutate_then_validate(
        server,
        "17-deployment-create-mutate.json",
        "18-deployment-create-validate.json",
        {APP: refs["attested"], INIT: init},
    )
    assert [p["path"] for p in _patch(m)] == ["/spec/template/spec/containers/0/image"]
    assert v["allowed"] is True, v
    # the signed-only image under the attestation policy's glob would be denied: swap them
    _, v = _mutate_then_validate(
        server,
        "17-deployment-create-mutate.json",
        "18-deployment-create-validate.json",
        {APP: refs["signed"], INIT: f"{refs['attested'].rsplit(':', 1)[0]}@{digests['signed']}"},
    )
    assert v["allowed"] is False and "attested" in v["status"]["message"]


def test_validating_a_tag_is_denied(world: dict[str, Any]) -> None:
    v = world["server"].review(
        "/validate", _body("02-pod-create-tag-validate.json", {APP: world["refs"]["signed"]})
    )
    assert v["allowed"] is False and "must be an image digest" in v["status"]["message"]


def test_cache_hit_after_first_decision_counted_in_metrics(world: dict[str, Any]) -> None:
    server, refs, digests = world["server"], world["refs"], world["digests"]
    pinned = f"{refs['signed']}@{digests['signed']}"
    body = _body("02-pod-create-tag-validate.json", {APP: pinned})
    hits = server.metric("assay_admission_cache_hits_total")
    first = server.review("/validate", body)
    t0 = time.monotonic()
    second = server.review("/validate", body)
    assert time.monotonic() - t0 < 1.0
    assert first["allowed"] is second["allowed"] is True
    assert server.metric("assay_admission_cache_hits_total") >= hits + 1
    assert server.metric("assay_admission_requests_total") >= 2
    assert server.metric('assay_admission_image_decisions_total{result="allow",status="pass"}') >= 1


def test_dry_run_writes_no_audit_record(world: dict[str, Any]) -> None:
    server, refs, digests = world["server"], world["refs"], world["digests"]
    pinned = f"{refs['unsigned']}@{digests['unsigned']}"
    body = _body("12-pod-create-dryrun-validate.json", {APP: pinned})
    assert server.review("/validate", body)["allowed"] is False
    body = _body("02-pod-create-tag-validate.json", {APP: pinned})
    assert server.review("/validate", body)["allowed"] is False
    time.sleep(0.3)
    uids = [
        json.loads(line)["uid"]
        for line in server.log.read_text().splitlines()
        if line.startswith("{")
    ]
    assert body["request"]["uid"] in uids
    dry = json.loads((CAPTURE / "12-pod-create-dryrun-validate.json").read_text())
    assert dry["request"]["uid"] not in uids


# The shape of a wgpolicyk8s.io/v1alpha2 PolicyReport (from the wg-policy CRD's schema).
_OBJREF = {
    "type": "object",
    "properties": {
        k: {"type": "string"}
        for k in ("apiVersion", "kind", "name", "namespace", "uid", "resourceVersion", "fieldPath")
    },
    "additionalProperties": False,
}
POLICY_REPORT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "wgpolicyk8s.io/v1alpha2"},
        "kind": {"const": "PolicyReport"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "scope": _OBJREF,
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: {"type": "integer", "minimum": 0}
                for k in ("pass", "fail", "warn", "error", "skip")
            },
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["policy"],
                "additionalProperties": False,
                "properties": {
                    "policy": {"type": "string"},
                    "rule": {"type": "string"},
                    "category": {"type": "string"},
                    "message": {"type": "string"},
                    "source": {"type": "string"},
                    "scored": {"type": "boolean"},
                    "severity": {"enum": ["high", "low", "medium"]},
                    "result": {"enum": ["pass", "fail", "warn", "error", "skip"]},
                    "properties": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                    "resources": {"type": "array", "items": _OBJREF},
                    "timestamp": {
                        "type": "object",
                        "required": ["seconds", "nanos"],
                        "properties": {
                            "seconds": {"type": "integer"},
                            "nanos": {"type": "integer", "minimum": 0, "maximum": 999999999},
                        },
                    },
                },
            },
        },
    },
}


def test_audit_writes_policy_reports_for_running_workloads(
    world: dict[str, Any], tmp_path: Path
) -> None:
    refs, digests = world["refs"], world["digests"]
    deployment = _body(
        "18-deployment-create-validate.json",
        {
            APP: f"{refs['signed']}@{digests['signed']}",
            INIT: f"{refs['init']}@{digests['init']}",
        },
    )["request"]["object"]
    pod = _body("02-pod-create-tag-validate.json", {APP: refs["unsigned"]})["request"]["object"]
    objects = {"apiVersion": "v1", "kind": "List", "items": [deployment, pod]}
    (tmp_path / "objects.json").write_text(json.dumps(objects))
    r = subprocess.run(
        [
            "assay",
            "admission",
            "audit",
            "--policy",
            str(world["policy"]),
            "--from",
            str(tmp_path / "objects.json"),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )
    assert r.returncode == 1, r.stderr  # the unsigned Pod fails
    assert "failed or errored" in r.stderr
    reports = json.loads(r.stdout)
    assert len(reports) == 1  # one namespace
    (report,) = reports
    jsonschema.validate(report, POLICY_REPORT_SCHEMA)
    assert report["metadata"]["namespace"] == "capture-test"
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for res in report["results"]:
        by_kind.setdefault(res["resources"][0]["kind"], []).append(res)
    assert {x["result"] for x in by_kind["Deployment"]} == {"pass"}
    assert {x["properties"]["image"] for x in by_kind["Deployment"]} == {
        f"{refs['signed']}@{digests['signed']}",
        f"{refs['init']}@{digests['init']}",
    }
    (bad,) = by_kind["Pod"]
    assert bad["result"] == "fail" and bad["policy"] == "signed-by-ci-key"
    assert "no signatures found" in bad["message"]
    assert bad["properties"]["digest"] == digests["unsigned"]  # the tag, resolved
    assert report["summary"] == {"pass": 2, "fail": 1, "warn": 0, "error": 0, "skip": 0}


@contextlib.contextmanager
def _silent_listener() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


APP_DIGEST_REF = (
    "registry.example/acme/app@"
    "sha256:41b008cbd15321447ed0d5b070dd43ff086f40848f0b3907f6e904489b3a9011"
)


@pytest.mark.slow
def test_registry_outage_denies_within_deadline_or_allows_with_warning(tmp_path: Path) -> None:
    key, pub = new_key()
    reg_ctx = start_registry(tmp_path / "reg")
    reg = reg_ctx.__enter__()
    try:
        with RegistryClient(reg.host) as client:
            digest = push_image(client, "outage/app", "1", label="outage")
            sign(client, f"{reg.host}/outage/app:1", key)
    except BaseException:
        reg_ctx.__exit__(None, None, None)
        raise
    with _silent_listener() as silent:
        policy = (
            cip("key", f"{reg.host}/**", key_authority(pub))
            + "\n---\n"
            + cip("key-silent", f"{silent}/**", key_authority(pub))
        )
        down = _body(
            "04-pod-create-digest-validate.json",
            {APP_DIGEST_REF: f"{reg.host}/outage/app@{digest}"},
        )
        hung = _body(
            "04-pod-create-digest-validate.json", {APP_DIGEST_REF: f"{silent}/outage/app@{digest}"}
        )
        with (
            serve(tmp_path / "closed", policy, "--deadline", "3") as closed,
            serve(tmp_path / "open", policy, "--deadline", "3", "--on-error", "allow") as fail_open,
        ):
            assert closed.review("/validate", down)["allowed"] is True  # registry up: signed
            reg_ctx.__exit__(None, None, None)  # now stop it
            down["request"]["namespace"] = "other"  # a new context: not served from the cache
            for body, why in ((down, "cannot reach registry"), (hung, "")):
                t0 = time.monotonic()
                v = closed.review("/validate", body)
                took = time.monotonic() - t0
                assert v["allowed"] is False, v
                assert took < 3.0 + 1.0, took  # inside the deadline, not the API server's 10 s
                msg = v["status"]["message"]
                assert why in msg and "no signatures" not in msg, msg
                assert "an error, not a policy failure" in msg, msg
                v = fail_open.review("/validate", body)
                assert v["allowed"] is True and v["warnings"], v
                assert any("allow" in w for w in v["warnings"]), v
            assert closed.metric("assay_admission_registry_errors_total") >= 2


def test_root_and_kev_images_are_denied_by_an_image_policy(registry: Any, tmp_path: Path) -> None:
    from assay.vuln.model import Severity
    from integration.test_policy_require import _finding, _policy, _scan

    key, pub = new_key()
    now = time.time()
    kev = _finding("CVE-2024-3094", Severity.CRITICAL, kev=True, package="xz-utils")
    low = _finding("CVE-2023-0001", Severity.LOW)
    base = "admission-require/" + uuid.uuid4().hex[:8]
    cases = {"clean": ("65532", [low]), "root": ("", [low]), "kev": ("65532", [kev, low])}
    pinned: dict[str, str] = {}
    with RegistryClient(registry.host) as client:
        for name, (user, findings) in cases.items():
            digest = push_image(client, f"{base}/{name}", "1", user=user, label=name)
            ref = f"{registry.host}/{base}/{name}:1"
            sign(client, ref, key)
            attest(client, ref, key, "vuln", _scan(findings, finished=now - 60, db=now - 3600))
            pinned[name] = f"{ref}@{digest}"
    require = "    runAsNonRoot: true\n    vulnerabilities:\n      noKEV: true\n"
    policy = _policy(tmp_path, "no-root-no-kev", pub, require).read_text()
    with serve(tmp_path / "srv", policy) as server:
        got = {
            name: server.review("/validate", _body("02-pod-create-tag-validate.json", {APP: ref}))
            for name, ref in pinned.items()
        }
    assert got["clean"]["allowed"] is True, got["clean"]
    for name in ("root", "kev"):
        assert got[name]["allowed"] is False
        msg = got[name]["status"]["message"]
        assert pinned[name].split("@")[0].rsplit(":", 1)[0] in msg
        assert "failed policy: no-root-no-kev" in msg, msg
    assert "root" in got["root"]["status"]["message"].lower()
    assert "CVE-2024-3094" in got["kev"]["status"]["message"] or (
        "KEV" in got["kev"]["status"]["message"]
    ), got["kev"]["status"]["message"]


def test_pull_secret_credentials_reach_a_private_registry(
    registry_htpasswd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod's imagePullSecrets (read through the Kubernetes API) let the real engine read a
    password-protected registry; without them the same image cannot be verified."""
    import asyncio

    from assay.admission import Settings, Webhook, parse_review
    from assay.admission.pullsecrets import PullSecrets
    from assay.admission.serve import match_context
    from assay.oci.auth import Credentials
    from assay.policy import Engine, load_policies
    from fixtures.kubeapi import kube_api

    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))  # no fallback
    reg = registry_htpasswd
    key, pub = new_key()
    creds = Credentials(reg.username, reg.password)
    with RegistryClient(reg.host, auth=creds) as client:
        digest = push_image(client, "private/app", "1", label="private")
        sign(client, f"{reg.host}/private/app:1", key)
    (tmp_path / "p.yaml").write_text(cip("private", f"{reg.host}/**", key_authority(pub)))
    body = _body(
        "08-pod-create-pullsecrets-serviceaccount-validate.json",
        {"registry.example/private/app:v1": f"{reg.host}/private/app@{digest}"},
    )
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    secret = base64.b64encode(json.dumps({"auths": {reg.host: {"auth": auth}}}).encode())
    with (
        kube_api(tmp_path / "api") as (state, kube),
        Engine(load_policies([tmp_path / "p.yaml"]), timeout=5) as engine,
    ):
        ns = "/api/v1/namespaces/capture-test"
        state.objects[f"{ns}/serviceaccounts/builder"] = {"metadata": {"name": "builder"}}
        state.objects[f"{ns}/secrets/regcred"] = {
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": secret.decode()},
        }

        def decide(source: Any) -> dict[str, Any]:
            hook = Webhook(engine, Settings(), credentials=source, make_context=match_context)
            req = parse_review(json.dumps(body).encode())
            return dict(asyncio.run(hook.review("validate", req))["response"])

        with_secret = decide(PullSecrets(kube))
        assert with_secret["allowed"] is True, with_secret
        del state.objects[f"{ns}/secrets/regcred"]
        without = decide(PullSecrets(kube))
        assert without["allowed"] is False
        assert "an error, not a policy failure" in without["status"]["message"], without
