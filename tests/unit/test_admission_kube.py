"""The webhook's Kubernetes API reader against a local HTTPS stand-in for kube-apiserver.

No kube-apiserver can run here, so a small TLS server on 127.0.0.1 answers the few GET/POST/PUT
paths the webhook and the audit use, with objects shaped as the API returns them (the Secret and
ServiceAccount of the captured pull-secret request, lists of workloads). It checks the bearer
token, so the client's authentication is exercised too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.admission.audit import list_workloads, publish_reports
from assay.admission.kube import KubeClient, in_cluster
from assay.admission.pullsecrets import PullSecrets
from assay.errors import NetworkError
from fixtures.assets import INTEROP
from fixtures.kubeapi import Api, kube_api

CAPTURE = INTEROP / "kube-apiserver-1.36.2"


def _dockerconfig(host: str, user: str) -> str:
    auth = base64.b64encode(f"{user}:pw-{user}".encode()).decode()
    return base64.b64encode(json.dumps({"auths": {host: {"auth": auth}}}).encode()).decode()


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[Api, KubeClient]]:
    with kube_api(tmp_path) as got:
        yield got


def test_pull_secrets_of_the_pod_and_its_service_account(api: tuple[Api, KubeClient]) -> None:
    state, kube = api
    pod = json.loads((CAPTURE / "07-pod-create-pullsecrets-serviceaccount-mutate.json").read_text())
    spec = pod["request"]["object"]["spec"]
    assert spec["serviceAccountName"] == "builder"
    ns = "/api/v1/namespaces/capture-test"
    state.objects[f"{ns}/serviceaccounts/builder"] = {
        "metadata": {"name": "builder"},
        "imagePullSecrets": [{"name": "sa-cred"}, {"name": "../../../etc"}],
    }
    state.objects[f"{ns}/secrets/regcred"] = {
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": _dockerconfig("registry.example", "pod")},
    }
    state.objects[f"{ns}/secrets/sa-cred"] = {
        "metadata": {"name": "sa-cred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {
            ".dockerconfigjson": base64.b64encode(
                json.dumps(
                    {
                        "auths": {
                            "registry.example": {"auth": base64.b64encode(b"sa:x").decode()},
                            "other.example:5000": {"auth": base64.b64encode(b"sa2:y").decode()},
                        }
                    }
                ).encode()
            ).decode()
        },
    }
    creds = PullSecrets(kube).for_pod("capture-test", spec)
    assert creds["registry.example"].username == "pod"  # the pod's own secret comes first
    assert creds["other.example:5000"].username == "sa2"
    assert not any(".." in p for p in state.gets)  # a hostile secret name never reaches a URL
    # cached: a second pod in the burst does not call the API again
    before = len(state.gets)
    PullSecrets(kube).for_pod("capture-test", spec)
    source = PullSecrets(kube)
    source.for_pod("capture-test", spec)
    n = len(state.gets)
    source.for_pod("capture-test", spec)
    assert len(state.gets) == n and n > before
    assert PullSecrets(kube).for_pod("../kube-system", spec) == {}


def test_audit_lists_workloads_and_publishes_reports(api: tuple[Api, KubeClient]) -> None:
    state, kube = api
    dep = json.loads((CAPTURE / "18-deployment-create-validate.json").read_text())
    item = dict(dep["request"]["object"])
    item.pop("apiVersion")
    item.pop("kind")  # list items come without them
    state.objects["/apis/apps/v1/deployments"] = {"kind": "DeploymentList", "items": [item]}
    state.objects["/api/v1/pods"] = {"kind": "PodList", "items": []}
    workloads = list_workloads(kube)
    assert [(w.kind, w.namespace, w.name) for w in workloads] == [
        ("Deployment", "capture-test", "web")
    ]
    assert workloads[0].images == (
        "registry.example/acme/init@sha256:"
        "3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804",
        "registry.example/acme/app:v1",
    )
    report = {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {"name": "assay-image-policy", "namespace": "capture-test"},
        "results": [],
    }
    publish_reports(kube, [report])
    path = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/capture-test/policyreports"
    assert state.writes[-1][:2] == ("POST", path)
    state.objects[f"{path}/assay-image-policy"] = {"metadata": {"resourceVersion": "42"}}
    publish_reports(kube, [report])
    method, where, body = state.writes[-1]
    assert (method, where) == ("PUT", f"{path}/assay-image-policy")
    assert body["metadata"]["resourceVersion"] == "42"


def test_wrong_token_is_a_clear_network_error(api: tuple[Api, KubeClient]) -> None:
    _, kube = api
    bad = KubeClient(kube.base_url, "wrong", False)
    with pytest.raises(NetworkError, match="HTTP 401"):
        bad.get("/api/v1/pods")
    bad.close()


def test_outside_a_cluster_there_is_no_client(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert in_cluster(tmp_path) is None
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert in_cluster(tmp_path) is None  # no token mounted
    (tmp_path / "token").write_text("t\n")
    client = in_cluster(tmp_path)
    assert client is not None and client.base_url == "https://10.0.0.1:443"
    client.close()


def _cip(name: str, version: str, glob: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy.sigstore.dev/v1beta1",
        "kind": "ClusterImagePolicy",
        "metadata": {
            "name": name,
            "resourceVersion": version,
            "uid": "u-" + name,
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"images": [{"glob": glob}], "authorities": [{"static": {"action": "pass"}}]},
        "status": {"conditions": []},
    }


def test_cluster_image_policies_are_loaded_and_followed(
    api: tuple[Api, KubeClient], tmp_path: Path
) -> None:
    import time

    from assay.admission.clusterpolicies import CIP_PATH, ClusterPolicySource
    from assay.policy import load_policies

    state, kube = api
    state.objects[CIP_PATH] = {
        "kind": "ClusterImagePolicyList",
        "items": [_cip("allow-acme", "1", "registry.example/acme/**")],
    }
    source = ClusterPolicySource(kube, workdir=tmp_path / "cips")
    assert source.sync() is True and source.directory is not None
    assert load_policies([source.directory]).names == ("allow-acme",)
    assert source.sync() is False  # unchanged: nothing rewritten
    seen: list[tuple[str, ...]] = []
    source.watch(0.05, lambda d: seen.append(load_policies([d]).names))
    state.objects[CIP_PATH]["items"].append(_cip("allow-tools", "7", "registry.example/tools/**"))
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    source.stop()
    time.sleep(0.2)
    assert seen and seen[0] == ("allow-acme", "allow-tools")
