"""Every Kubernetes object an install of the webhook needs, one object per YAML document.

Stable order (kustomize-friendly): Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding,
[ClusterImagePolicy CRD], policies ConfigMap, [cert-manager Issuer + Certificate], Deployment,
Service, PodDisruptionBudget, MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
audit CronJob. ``webhook_configurations(url=…)`` gives the two webhook configurations alone, for
a webhook served outside the cluster (``assay admission serve`` on a developer machine).

Both webhook configurations fail closed (``failurePolicy: Fail``), declare ``sideEffects: None``
and a ``timeoutSeconds`` of 10 (the server answers within its own 8 s deadline). Namespaces opt in
with policy-controller's label ``policy.sigstore.dev/include=true`` unless ``cluster_wide``; the
webhook's own namespace and ``kube-system`` are excluded either way.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from assay.admission.certs import service_dns_names
from assay.errors import UsageError

__all__ = [
    "INCLUDE_LABEL",
    "ManifestOptions",
    "install_objects",
    "to_yaml",
    "webhook_configurations",
]

INCLUDE_LABEL = "policy.sigstore.dev/include"
NAME = "assay-admission"
APP_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "assay"}
TIMEOUT_SECONDS = 10
POLICY_DIR = "/etc/assay/policies"
TLS_DIR = "/etc/assay/tls"

_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "pods/ephemeralcontainers")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
)


@dataclass(frozen=True)
class ManifestOptions:
    namespace: str = "assay-system"
    image: str = ""
    replicas: int = 2
    url: str = ""  # webhook served at this URL: webhook configurations only
    ca_bundle: bytes = b""  # PEM of the CA that signed the serving certificate
    with_crd: bool = False
    cert_manager: bool = False
    cluster_wide: bool = False
    audit_schedule: str = "17 * * * *"


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(APP_LABELS)
    meta.update(extra)
    return meta


def _namespace_selector(o: ManifestOptions) -> dict[str, Any]:
    never = sorted({o.namespace, "kube-system"})
    selector: dict[str, Any] = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": never}
        ]
    }
    if not o.cluster_wide:
        selector["matchLabels"] = {INCLUDE_LABEL: "true"}
    return selector


def _webhook(o: ManifestOptions, path: str, mutating: bool) -> dict[str, Any]:
    client: dict[str, Any]
    if o.url:
        client = {"url": o.url.rstrip("/") + path}
    else:
        client = {"service": {"name": NAME, "namespace": o.namespace, "path": path, "port": 443}}
    if o.ca_bundle:
        client["caBundle"] = base64.b64encode(o.ca_bundle).decode("ascii")
    hook: dict[str, Any] = {
        "name": f"{'mutate' if mutating else 'validate'}.admission.assay.dev",
        "admissionReviewVersions": ["v1"],
        "clientConfig": client,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "namespaceSelector": _namespace_selector(o),
        "rules": [
            {
                "apiGroups": [group],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": list(resources),
                "scope": "Namespaced",
            }
            for group, resources in _RULES
        ],
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
    }
    if mutating:
        hook["reinvocationPolicy"] = "IfNeeded"
    return hook


def webhook_configurations(o: ManifestOptions) -> list[dict[str, Any]]:
    """The Mutating- and ValidatingWebhookConfiguration (mutating first: it runs first)."""
    if o.url and not o.url.startswith("https://"):
        raise UsageError(f"--url {o.url!r} must be https:// (the API server only calls HTTPS)")
    annotations = (
        {"cert-manager.io/inject-ca-from": f"{o.namespace}/{NAME}"} if o.cert_manager else None
    )
    out = []
    for kind, path, mutating in (
        ("MutatingWebhookConfiguration", "/mutate", True),
        ("ValidatingWebhookConfiguration", "/validate", False),
    ):
        meta = _meta(NAME)
        if annotations:
            meta["annotations"] = dict(annotations)
        out.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": meta,
                "webhooks": [_webhook(o, path, mutating)],
            }
        )
    return out


def _cluster_role() -> dict[str, Any]:
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(NAME),
        "rules": [
            {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": read},
            {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": read},
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
                "verbs": read,
            },
            {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": read},
            {
                "apiGroups": ["policy.sigstore.dev"],
                "resources": ["clusterimagepolicies"],
                "verbs": read,
            },
            {
                "apiGroups": ["wgpolicyk8s.io"],
                "resources": ["policyreports"],
                "verbs": ["get", "list", "create", "update", "patch"],
            },
        ],
    }


def _crd() -> dict[str, Any]:
    def version(name: str, storage: bool) -> dict[str, Any]:
        return {
            "name": name,
            "served": True,
            "storage": storage,
            "schema": {
                "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "status": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        },
                    },
                }
            },
        }

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": _meta("clusterimagepolicies.policy.sigstore.dev"),
        "spec": {
            "group": "policy.sigstore.dev",
            "names": {
                "kind": "ClusterImagePolicy",
                "listKind": "ClusterImagePolicyList",
                "plural": "clusterimagepolicies",
                "singular": "clusterimagepolicy",
                "shortNames": ["cip"],
                "categories": ["all", "sigstore"],
            },
            "scope": "Cluster",
            "versions": [version("v1alpha1", False), version("v1beta1", True)],
        },
    }


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _policy_volume() -> dict[str, Any]:
    return {"name": "policies", "configMap": {"name": f"{NAME}-policies"}}


def _deployment(o: ManifestOptions) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": NAME}
    container = {
        "name": "webhook",
        "image": o.image,
        "args": [
            "admission",
            "serve",
            "--policy",
            POLICY_DIR,
            "--tls-cert",
            f"{TLS_DIR}/tls.crt",
            "--tls-key",
            f"{TLS_DIR}/tls.key",
            "--listen",
            "0.0.0.0:8443",
            "--namespace",
            o.namespace,
            "--workers",
            "2",
            "--cluster-policies",
        ],
        "ports": [{"name": "https", "containerPort": 8443, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"},
            "periodSeconds": 10,
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": _security_context(),
        "volumeMounts": [
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            {"name": "policies", "mountPath": POLICY_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME, o.namespace),
        "spec": {
            "replicas": o.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": dict(APP_LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": selector},
                                        "topologyKey": "kubernetes.io/hostname",
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "tls", "secret": {"secretName": f"{NAME}-tls"}},
                        _policy_volume(),
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _cert_manager(o: ManifestOptions) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": _meta(f"{NAME}-selfsigned", o.namespace),
            "spec": {"selfSigned": {}},
        },
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": _meta(NAME, o.namespace),
            "spec": {
                "secretName": f"{NAME}-tls",
                "dnsNames": service_dns_names(NAME, o.namespace)[2:],
                "issuerRef": {"name": f"{NAME}-selfsigned", "kind": "Issuer"},
                "privateKey": {"algorithm": "ECDSA", "size": 256},
            },
        },
    ]


def _cronjob(o: ManifestOptions) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(f"{NAME}-audit", o.namespace),
        "spec": {
            "schedule": o.audit_schedule,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 1,
                    "template": {
                        "metadata": {"labels": dict(APP_LABELS)},
                        "spec": {
                            "serviceAccountName": NAME,
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "audit",
                                    "image": o.image,
                                    "args": [
                                        "admission",
                                        "audit",
                                        "--policy",
                                        POLICY_DIR,
                                        "--in-cluster",
                                        "--publish",
                                    ],
                                    "securityContext": _security_context(),
                                    "volumeMounts": [
                                        {
                                            "name": "policies",
                                            "mountPath": POLICY_DIR,
                                            "readOnly": True,
                                        },
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [_policy_volume(), {"name": "tmp", "emptyDir": {}}],
                        },
                    },
                }
            },
        },
    }


def install_objects(o: ManifestOptions) -> list[dict[str, Any]]:
    """Every object of an install, in the stable order of the module docstring."""
    if o.url:
        return webhook_configurations(o)
    if not o.image:
        raise UsageError("--image is required (REGISTRY/assay:VERSION), or --url for a local serve")
    if o.replicas < 1:
        raise UsageError("--replicas must be at least 1 (2+ for availability)")
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(o.namespace)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, o.namespace)},
        _cluster_role(),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(NAME),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": o.namespace}],
        },
    ]
    if o.with_crd:
        objs.append(_crd())
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{NAME}-policies", o.namespace),
            "data": {},
        }
    )
    if o.cert_manager:
        objs += _cert_manager(o)
    objs.append(_deployment(o))
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(NAME, o.namespace),
            "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "https", "port": 443, "targetPort": "https"}],
            },
        }
    )
    objs.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(NAME, o.namespace),
            "spec": {
                "minAvailable": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            },
        }
    )
    objs += webhook_configurations(o)
    objs.append(_cronjob(o))
    return objs


def to_yaml(objs: Sequence[dict[str, Any]]) -> str:
    """One YAML document per object, ``---`` separated, keys in a fixed order."""
    return "".join(
        "---\n" + yaml.safe_dump(obj, sort_keys=False, default_flow_style=False) for obj in objs
    )
