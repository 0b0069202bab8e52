"""AdmissionReview v1 (``admission.k8s.io/v1``) requests in, responses out.

The request body comes from the network: it is size-bounded, decoded with duplicate keys refused,
and every field the webhook reads is type-checked before use. Only what the webhook needs is
kept; the object itself stays a plain mapping for :mod:`assay.admission.images`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.errors import InputError
from assay.oci.model import parse_json_document

__all__ = [
    "MAX_REVIEW_SIZE",
    "AdmissionRequest",
    "parse_review",
    "review_response",
]

API_VERSION = "admission.k8s.io/v1"
MAX_REVIEW_SIZE = 3 * 1024 * 1024  # etcd's default request limit is 1.5 MiB; object + oldObject
_MAX_FIELD = 1024


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of an AdmissionReview request the webhook reads."""

    uid: str
    group: str
    version: str
    kind: str
    resource: str
    sub_resource: str
    namespace: str
    name: str
    operation: str
    username: str
    dry_run: bool
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def labels(self) -> Mapping[str, str]:
        meta = (self.object or {}).get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        if not isinstance(labels, Mapping):
            return {}
        return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}


def _str(doc: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise InputError(f"AdmissionReview: {where}.{key} is missing")
        return ""
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise InputError(f"AdmissionReview: {where}.{key} must be a string (at most {_MAX_FIELD})")
    return value


def _obj(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"AdmissionReview: {where}.{key} must be an object")
    return value


def parse_review(raw: bytes) -> AdmissionRequest:
    """Parse an AdmissionReview request body; ``InputError`` saying what is wrong."""
    doc = parse_json_document(raw, what="AdmissionReview", max_size=MAX_REVIEW_SIZE)
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "AdmissionReview":
        raise InputError(
            f"not an {API_VERSION} AdmissionReview (apiVersion {doc.get('apiVersion')!r}, "
            f"kind {doc.get('kind')!r}); set admissionReviewVersions: [v1] in the webhook "
            "configuration"
        )
    req = _obj(doc, "request", "AdmissionReview")
    if req is None:
        raise InputError("AdmissionReview: request is missing")
    kind = _obj(req, "kind", "request") or {}
    resource = _obj(req, "resource", "request") or {}
    user = _obj(req, "userInfo", "request") or {}
    dry_run = req.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InputError("AdmissionReview: request.dryRun must be true or false")
    return AdmissionRequest(
        uid=_str(req, "uid", "request", required=True),
        group=_str(kind, "group", "request.kind"),
        version=_str(kind, "version", "request.kind"),
        kind=_str(kind, "kind", "request.kind", required=True),
        resource=_str(resource, "resource", "request.resource"),
        sub_resource=_str(req, "subResource", "request"),
        namespace=_str(req, "namespace", "request"),
        name=_str(req, "name", "request"),
        operation=_str(req, "operation", "request", required=True),
        username=_str(user, "username", "request.userInfo"),
        dry_run=dry_run,
        object=_obj(req, "object", "request"),
        old_object=_obj(req, "oldObject", "request"),
    )


def review_response(
    uid: str,
    *,
    allowed: bool,
    message: str = "",
    code: int | None = None,
    warnings: Sequence[str] = (),
    patch: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The AdmissionReview response document for request ``uid``.

    A non-empty ``patch`` is sent as a base64 JSONPatch (``patchType: JSONPatch``). Kubernetes
    caps each warning at 256 characters and drops the rest, so longer ones are shortened here.
    """
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message or code is not None:
        status: dict[str, Any] = {}
        if code is not None:
            status["code"] = code
        if message:
            status["message"] = message
        if not allowed:
            status["reason"] = {400: "BadRequest", 403: "Forbidden"}.get(
                code or 403, "InternalError"
            )
        response["status"] = status
    if warnings:
        response["warnings"] = [_short(w) for w in warnings]
    if patch:
        raw = json.dumps(list(patch), separators=(",", ":"), sort_keys=True).encode()
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(raw).decode("ascii")
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _short(text: str, limit: int = 256) -> str:
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
