"""The background audit: decide the images of running workloads against the current policies and
publish the results as wg-policy ``PolicyReport`` objects (``wgpolicyk8s.io/v1alpha2``, the
format Kyverno writes), one report per namespace.

Images that were admitted but went bad later (a new KEV entry, an expired scan, a revoked key)
show up here as ``fail`` results. Workloads come from a file of objects (a ``List`` or YAML
documents; ``--from``) or from the Kubernetes API in a cluster.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.admission.decider import Decider, ImageVerdict
from assay.admission.images import POD_TEMPLATE_PATHS, canonical_ref, extract_images, ref_text
from assay.admission.kube import KubeClient
from assay.errors import InputError, UsageError

__all__ = [
    "REPORT_NAME",
    "Workload",
    "audit_reports",
    "list_workloads",
    "publish_reports",
    "workloads_from_objects",
]

log = logging.getLogger(__name__)

REPORT_API = "wgpolicyk8s.io/v1alpha2"
REPORT_NAME = "assay-image-policy"
SOURCE = "assay"
MAX_OBJECTS = 100_000
_RESULTS = {"pass": "pass", "fail": "fail", "warn": "warn", "error": "error"}
_API_PATHS = (
    ("v1", "pods"),
    ("apps/v1", "deployments"),
    ("apps/v1", "replicasets"),
    ("apps/v1", "statefulsets"),
    ("apps/v1", "daemonsets"),
    ("batch/v1", "jobs"),
    ("batch/v1", "cronjobs"),
)


@dataclass(frozen=True)
class Workload:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    images: tuple[str, ...]  # canonical references, unique, in document order

    def reference(self) -> dict[str, str]:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.uid:
            ref["uid"] = self.uid
        return ref


def _items(doc: object) -> Iterable[Mapping[str, Any]]:
    if not isinstance(doc, Mapping):
        return
    items = doc.get("items")
    if isinstance(items, list) and str(doc.get("kind", "")).endswith("List"):
        for item in items:
            yield from _items(item)
    else:
        yield doc


def workloads_from_objects(docs: Iterable[object]) -> list[Workload]:
    """The workloads (Pods and pod-template kinds) among ``docs`` and the images they run."""
    out: list[Workload] = []
    seen = 0
    for doc in docs:
        for obj in _items(doc):
            seen += 1
            if seen > MAX_OBJECTS:
                raise InputError(f"more than {MAX_OBJECTS} objects; audit namespaces separately")
            api_version = obj.get("apiVersion")
            kind = obj.get("kind")
            if not isinstance(api_version, str) or not isinstance(kind, str):
                continue
            group = api_version.rpartition("/")[0]
            if (group, kind) not in POD_TEMPLATE_PATHS:
                continue
            meta = obj.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            labels = meta.get("labels")
            images: list[str] = []
            for site in extract_images(group, kind, obj):
                text = ref_text(canonical_ref(site.image))
                if text not in images:
                    images.append(text)
            out.append(
                Workload(
                    api_version,
                    kind,
                    str(meta.get("namespace", "")),
                    str(meta.get("name", "")),
                    str(meta.get("uid", "")),
                    {
                        k: v
                        for k, v in (labels.items() if isinstance(labels, Mapping) else ())
                        if isinstance(k, str) and isinstance(v, str)
                    },
                    tuple(images),
                )
            )
    return out


def _result(
    w: Workload, v: ImageVerdict, policy: str, status: str, message: str, seconds: int
) -> dict[str, Any]:
    return {
        "policy": policy,
        "rule": "image-verification",
        "result": _RESULTS.get(status, "error"),
        "message": message,
        "source": SOURCE,
        "scored": True,
        "timestamp": {"seconds": seconds, "nanos": 0},
        "resources": [w.reference()],
        "properties": {
            "image": v.reference,
            "digest": v.digest or "",
            "evidence": ",".join(sorted(set(v.evidence))),
        },
    }


def audit_reports(
    workloads: Sequence[Workload],
    decider: Decider,
    *,
    make_context: Callable[[Workload], Any] | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Decide every workload's images; one PolicyReport per namespace, sorted, deterministic."""
    seconds = int((now or dt.datetime.now(dt.UTC)).timestamp())
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for w in workloads:
        if not w.images:
            continue
        try:
            decision = decider.decide(
                list(w.images), context=make_context(w) if make_context else None
            )
            verdicts: Sequence[ImageVerdict] = decision.images
        except UsageError as e:
            log.warning("%s %s/%s not audited: %s", w.kind, w.namespace, w.name, e)
            continue
        results = by_ns.setdefault(w.namespace, [])
        for v in verdicts:
            if not v.policies:
                results.append(_result(w, v, "no-matching-policy", v.status, v.message, seconds))
                continue
            for p in v.policies:
                status = str(getattr(p, "status", v.status))
                reason = str(getattr(p, "reason", "")) or v.message
                results.append(_result(w, v, str(getattr(p, "name", p)), status, reason, seconds))
    reports = []
    for ns in sorted(by_ns):
        results = sorted(
            by_ns[ns],
            key=lambda r: (
                r["resources"][0]["kind"],
                r["resources"][0]["name"],
                r["properties"]["image"],
                r["policy"],
            ),
        )
        summary = {k: 0 for k in ("pass", "fail", "warn", "error", "skip")}
        for r in results:
            summary[r["result"]] += 1
        meta: dict[str, Any] = {
            "name": REPORT_NAME,
            "labels": {"app.kubernetes.io/managed-by": SOURCE},
        }
        if ns:
            meta["namespace"] = ns
        reports.append(
            {
                "apiVersion": REPORT_API,
                "kind": "PolicyReport",
                "metadata": meta,
                "summary": summary,
                "results": results,
            }
        )
    return reports


def list_workloads(kube: KubeClient) -> list[Workload]:
    """Every workload in the cluster, through the Kubernetes API."""
    docs: list[object] = []
    for api, resource in _API_PATHS:
        prefix = "/api/v1" if api == "v1" else f"/apis/{api}"
        doc = kube.get(f"{prefix}/{resource}")
        if doc is None:
            continue
        kind = {
            "pods": "Pod",
            "deployments": "Deployment",
            "replicasets": "ReplicaSet",
            "statefulsets": "StatefulSet",
            "daemonsets": "DaemonSet",
            "jobs": "Job",
            "cronjobs": "CronJob",
        }[resource]
        items = doc.get("items")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):  # list items carry no apiVersion/kind of their own
                docs.append({"apiVersion": api, "kind": kind, **item})
    return workloads_from_objects(docs)


def publish_reports(kube: KubeClient, reports: Sequence[Mapping[str, Any]]) -> None:
    """Create or replace each namespace's report (``AssayError`` naming the first failure)."""
    for report in reports:
        ns = report["metadata"].get("namespace")
        if not ns:
            continue
        base = f"/apis/{REPORT_API}/namespaces/{ns}/policyreports"
        current = kube.get(f"{base}/{REPORT_NAME}")
        body = dict(report)
        if current is None:
            kube.send("POST", base, body)
        else:
            meta = dict(body["metadata"])
            rv = current.get("metadata", {}).get("resourceVersion")
            if isinstance(rv, str):
                meta["resourceVersion"] = rv
            body["metadata"] = meta
            kube.send("PUT", f"{base}/{REPORT_NAME}", body)
