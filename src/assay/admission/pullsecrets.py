"""The registry credentials a Pod would pull with: its ``imagePullSecrets`` and its service
account's, read from the Kubernetes API (``kubernetes.io/dockerconfigjson`` and ``dockercfg``
Secrets), returned as registry host → :class:`Credentials` for the policy engine.

Reads are cached for ``ttl`` seconds so a burst of Pods does not become a burst of API calls.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, TypeGuard

from assay._json import load_json
from assay.admission.kube import KubeClient
from assay.errors import AssayError, InputError
from assay.oci.auth import Credentials, _decode_entry, _normalise_key

__all__ = ["PullSecrets", "credentials_from_secret"]

log = logging.getLogger(__name__)

_MAX_SECRETS = 32
_NAME_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$")  # a DNS-1123 subdomain
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def credentials_from_secret(secret: Mapping[str, Any]) -> dict[str, Credentials]:
    """host → credentials from one Secret object (``InputError`` when it is malformed)."""
    meta = secret.get("metadata")
    name = meta.get("name", "?") if isinstance(meta, Mapping) else "?"
    source = f"Secret {name}"
    stype = secret.get("type")
    data = secret.get("data")
    if not isinstance(data, Mapping):
        return {}
    if stype == "kubernetes.io/dockerconfigjson":
        raw, nested = data.get(".dockerconfigjson"), True
    elif stype == "kubernetes.io/dockercfg":
        raw, nested = data.get(".dockercfg"), False
    else:
        return {}
    if not isinstance(raw, str):
        raise InputError(f"{source}: no docker config in its data")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputError(f"{source}: docker config is not base64 ({e})") from None
    doc = load_json(decoded, what=f"{source}: docker config", max_size=1 << 20)
    auths = doc.get("auths") if nested and isinstance(doc, dict) else doc
    if not isinstance(auths, dict):
        raise InputError(f"{source}: docker config has no 'auths' object")
    out: dict[str, Credentials] = {}
    for key, entry in auths.items():
        if not isinstance(key, str):
            continue
        creds = _decode_entry(entry, source)
        if creds is None:
            continue
        host = _normalise_key(key).split("/", 1)[0]
        for alias in _DOCKER_HUB if host in _DOCKER_HUB else (host,):
            out.setdefault(alias, creds)
    return out


class PullSecrets:
    """A ``CredentialSource`` over the Kubernetes API."""

    def __init__(self, kube: KubeClient, *, ttl: float = 30.0) -> None:
        self.kube = kube
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def _get(self, path: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(path)
        if hit is not None and hit[0] > now:
            return hit[1]
        doc = self.kube.get(path)
        with self._lock:
            self._cache[path] = (now + self.ttl, doc)
        return doc

    def for_pod(self, namespace: str, spec: Mapping[str, Any]) -> Mapping[str, Credentials]:
        if not _is_name(namespace):
            return {}
        names = _secret_names(spec.get("imagePullSecrets"))
        sa_name = spec.get("serviceAccountName") or "default"
        if _is_name(sa_name):
            sa = self._get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa_name}")
            if sa is not None:
                names += [n for n in _secret_names(sa.get("imagePullSecrets")) if n not in names]
        out: dict[str, Credentials] = {}
        for name in names[:_MAX_SECRETS]:
            try:
                secret = self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
                if secret is None:
                    log.info("pull secret %s/%s does not exist", namespace, name)
                    continue
                for host, creds in credentials_from_secret(secret).items():
                    out.setdefault(host, creds)  # the first secret naming a host wins, as kubelet
            except AssayError as e:
                log.warning("pull secret %s/%s skipped: %s", namespace, name, e)
        return out


def _is_name(name: object) -> TypeGuard[str]:
    """A valid object name: no path tricks can reach the API URL."""
    return isinstance(name, str) and bool(_NAME_RE.fullmatch(name))


def _secret_names(refs: object) -> list[str]:
    if not isinstance(refs, list):
        return []
    names = []
    for r in refs:
        name = r.get("name") if isinstance(r, Mapping) else None
        if _is_name(name) and name not in names:
            names.append(name)
    return names
