"""`assay admission manifests|certs`: the install objects, validated against the Kubernetes
schemas (kubernetes-validate), parsed by kustomize (kubectl kustomize) where kubectl exists, and
compared with the webhook configurations kube-apiserver v1.36.2 accepted in the capture.
Also the pull-secret reader's parsing of real Secret shapes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from assay.admission.certs import write_certs
from assay.admission.pullsecrets import credentials_from_secret
from assay.errors import InputError
from fixtures.assets import INTEROP
from fixtures.cli import run_inprocess

CAPTURE = INTEROP / "kube-apiserver-1.36.2"
K8S_VERSION = "1.33.0"
ORDER = [
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ConfigMap",
    "Issuer",
    "Certificate",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "CronJob",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _assay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["assay", *args], capture_output=True, text=True, env=_env(), timeout=120, check=False
    )


def _docs(text: str) -> list[dict[str, Any]]:
    assert text.startswith("---\n")
    return [d for d in yaml.safe_load_all(text)]


@pytest.fixture(scope="module")
def full() -> str:
    r = _assay(
        "admission",
        "manifests",
        "--image",
        "registry.example/assay:0.1.0",
        "--with-crd",
        "--cert-manager",
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_every_object_in_a_stable_order_one_per_document(full: str) -> None:
    docs = _docs(full)
    assert [d["kind"] for d in docs] == ORDER
    assert full.count("\n---\n") + 1 == len(docs)
    again = _assay(
        "admission",
        "manifests",
        "--image",
        "registry.example/assay:0.1.0",
        "--with-crd",
        "--cert-manager",
    ).stdout
    assert again == full  # deterministic
    plain = _docs(
        run_inprocess("admission", "manifests", "--image", "r.example/assay:1", env=_env()).stdout
    )
    assert [d["kind"] for d in plain] == [
        k for k in ORDER if k not in ("CustomResourceDefinition", "Issuer", "Certificate")
    ]


def test_objects_validate_against_the_kubernetes_schemas(full: str) -> None:
    checked = 0
    for doc in _docs(full):
        if doc["apiVersion"].startswith("cert-manager.io/"):
            continue  # a CRD kind; not in the Kubernetes schemas
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked += 1
    assert checked == len(ORDER) - 2
    broken = _docs(full)[ORDER.index("Deployment")]
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_install_is_highly_available_and_fails_closed(full: str) -> None:
    docs = {d["kind"]: d for d in _docs(full)}
    dep = docs["Deployment"]["spec"]
    assert dep["replicas"] >= 2
    pod = dep["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]
    probe = pod["containers"][0]["readinessProbe"]["httpGet"]
    assert probe["path"] == "/readyz" and probe["scheme"] == "HTTPS"
    assert any(v.get("secret") for v in pod["volumes"])
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    rules = docs["ClusterRole"]["rules"]
    assert {
        "apiGroups": [""],
        "resources": ["secrets", "serviceaccounts"],
        "verbs": ["get", "list", "watch"],
    } in rules
    assert any("clusterimagepolicies" in r["resources"] for r in rules)
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (hook,) = docs[kind]["webhooks"]
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["timeoutSeconds"] <= 10
        sel = hook["namespaceSelector"]
        assert sel["matchLabels"] == {"policy.sigstore.dev/include": "true"}
        assert sel["matchExpressions"][0]["operator"] == "NotIn"
        assert set(sel["matchExpressions"][0]["values"]) == {"assay-system", "kube-system"}
        assert docs[kind]["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": "assay-system/assay-admission"
        }
    assert docs["MutatingWebhookConfiguration"]["webhooks"][0]["reinvocationPolicy"] == "IfNeeded"
    audit = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert audit["args"][:2] == ["admission", "audit"]


def test_url_mode_matches_the_configurations_kube_apiserver_accepted(tmp_path: Path) -> None:
    certs = write_certs(tmp_path, ["127.0.0.1"])
    r = _assay(
        "admission",
        "manifests",
        "--url",
        "https://127.0.0.1:8443",
        "--ca-bundle",
        str(certs.ca_cert),
    )
    assert r.returncode == 0, r.stderr
    ours = _docs(r.stdout)
    assert [d["kind"] for d in ours] == [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ]
    for doc in ours:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        name = "mutating" if doc["kind"].startswith("Mutating") else "validating"
        (captured,) = yaml.safe_load((CAPTURE / f"00-{name}-webhook.yaml").read_text())["webhooks"]
        (hook,) = doc["webhooks"]
        for key in ("admissionReviewVersions", "sideEffects", "failurePolicy", "timeoutSeconds"):
            assert hook[key] == captured[key], key

        def rules(hook: dict[str, Any]) -> set[tuple[str, str, str, str]]:
            return {
                (g, v, o, res)
                for rule in hook["rules"]
                for g in rule["apiGroups"]
                for v in rule["apiVersions"]
                for o in rule["operations"]
                for res in rule["resources"]
            }

        assert rules(hook) == rules(captured)
        path = "/mutate" if name == "mutating" else "/validate"
        assert hook["clientConfig"]["url"] == "https://127.0.0.1:8443" + path
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == certs.ca_cert.read_bytes()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_parses_the_install(full: str, tmp_path: Path) -> None:
    (tmp_path / "webhook.yaml").write_text(full)
    (tmp_path / "kustomization.yaml").write_text("resources:\n- webhook.yaml\n")
    r = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": "/dev/null"},
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(d["kind"] for d in _docs("---\n" + r.stdout)) == sorted(ORDER)


def test_manifest_usage_errors() -> None:
    r = _assay("admission", "manifests")
    assert r.returncode == 2 and "--image is required" in r.stderr
    r = _assay("admission", "manifests", "--url", "http://127.0.0.1:8443")
    assert r.returncode == 2 and "must be https://" in r.stderr


def test_certs_make_a_chain_for_the_names(tmp_path: Path) -> None:
    r = _assay("admission", "certs", "--dir", str(tmp_path / "c"), "--dns", "webhook.test")
    assert r.returncode == 0, r.stderr
    ca = x509.load_pem_x509_certificate((tmp_path / "c" / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((tmp_path / "c" / "tls.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "webhook.test" in san.get_values_for_type(x509.DNSName)
    assert "assay-admission.assay-system.svc" in san.get_values_for_type(x509.DNSName)
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC)
    assert (tmp_path / "c" / "tls.key").stat().st_mode & 0o077 == 0
    again = _assay("admission", "certs", "--dir", str(tmp_path / "c"))
    assert again.returncode == 2 and "--force" in again.stderr


def _secret(kind: str, doc: object, name: str = "regcred") -> dict[str, Any]:
    key = ".dockerconfigjson" if kind.endswith("json") else ".dockercfg"
    raw = base64.b64encode(json.dumps(doc).encode()).decode()
    return {"metadata": {"name": name}, "type": f"kubernetes.io/{kind}", "data": {key: raw}}


def test_pull_secret_credentials() -> None:
    auth = base64.b64encode(b"robot:s3cret").decode()
    creds = credentials_from_secret(
        _secret(
            "dockerconfigjson",
            {
                "auths": {
                    "registry.example": {"auth": auth},
                    "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
                }
            },
        )
    )
    assert creds["registry.example"].username == "robot"
    assert creds["registry.example"].password == "s3cret"
    assert creds["docker.io"].username == "hub"  # as the webhook names Docker Hub images
    old = credentials_from_secret(_secret("dockercfg", {"registry.example:5000": {"auth": auth}}))
    assert old["registry.example:5000"].username == "robot"
    assert credentials_from_secret({"type": "Opaque", "data": {"x": "eA=="}}) == {}
    with pytest.raises(InputError):
        credentials_from_secret(
            {
                "metadata": {"name": "bad"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": "%%%"},
            }
        )
    assert "s3cret" not in repr(creds)


def test_serve_and_audit_usage_errors(tmp_path: Path) -> None:
    certs = write_certs(tmp_path / "c", ["127.0.0.1"])
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\n"
        "metadata:\n  name: p\nspec:\n  images:\n  - glob: '**'\n"
        "  authorities:\n  - static:\n      action: pass\n"
    )
    common = ["--tls-cert", str(certs.cert), "--tls-key", str(certs.key)]
    cases = [
        (
            ["--policy", str(policy), "--tls-cert", "nope.crt", "--tls-key", str(certs.key)],
            "admission certs",
        ),
        (["--policy", str(policy), *common, "--listen", "8443"], "HOST:PORT"),
        (["--policy", str(policy), *common, "--on-error", "maybe"], "--on-error must be one of"),
        (["--policy", str(policy), *common, "--deadline", "30"], "--deadline"),
        (["--policy", str(tmp_path / "missing.yaml"), *common], "missing.yaml"),
    ]
    for args, why in cases:
        r = _assay("admission", "serve", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert why in r.stderr, (why, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_inprocess("admission", "audit", "--policy", str(policy), env=_env())
    assert r.returncode == 2 and "--from FILE" in r.stderr
    r = run_inprocess(
        "admission",
        "audit",
        "--policy",
        str(policy),
        "--from",
        str(policy),
        "--publish",
        env=_env(),
    )
    assert r.returncode == 2 and "--publish needs --in-cluster" in r.stderr
