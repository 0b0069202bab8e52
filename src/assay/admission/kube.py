"""A minimal Kubernetes API reader for the webhook and the audit (in-cluster only).

Inside a Pod the API server is at ``$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`` and the
service-account token and CA are mounted under ``/var/run/secrets/kubernetes.io/serviceaccount``;
:func:`in_cluster` returns ``None`` anywhere else (the caller logs that and goes on without).
Responses are bounded and decoded with the same bounded JSON loader as every outside document.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from assay._http import client_transports
from assay.errors import InputError, NetworkError
from assay.oci.model import parse_json_document

__all__ = ["KubeClient", "in_cluster"]

log = logging.getLogger(__name__)

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_MAX_RESPONSE = 32 * 1024 * 1024  # a list of every Pod in a large cluster stays far below
DEFAULT_DEADLINE = 30.0  # seconds for one API request, its whole answer included


class KubeClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        ca: str | bool,
        *,
        timeout: float = 5.0,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            # every request, body included, within ``deadline`` s (assay._http), not only
            # each read within ``timeout``: an API server that trickles must not hang a thread;
            # HTTPS_PROXY/NO_PROXY apply, as they do to client-go
            **client_transports(
                deadline,
                verify=ssl.create_default_context(cafile=ca) if isinstance(ca, str) else ca,
            ),
        )

    def get(self, path: str) -> dict[str, Any] | None:
        """GET an API path; ``None`` on 404, ``NetworkError`` on anything else unusable."""
        try:
            with self._client.stream("GET", path) as resp:
                if resp.status_code == 404:
                    return None
                if resp.status_code != 200:
                    raise NetworkError(
                        f"Kubernetes API {path}: HTTP {resp.status_code}; check the webhook's "
                        "RBAC (assay admission manifests grants get/list on what it reads)"
                    )
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_RESPONSE:
                        raise InputError(f"Kubernetes API {path}: response over {_MAX_RESPONSE}")
        except httpx.HTTPError as e:
            raise NetworkError(f"Kubernetes API {path} not reached: {e}") from None
        what = f"Kubernetes API {path}"
        return parse_json_document(bytes(body), what=what, max_size=_MAX_RESPONSE)

    def send(self, method: str, path: str, body: Mapping[str, Any]) -> None:
        """POST/PUT a JSON object; ``NetworkError`` naming the path and status on failure."""
        try:
            resp = self._client.request(method, path, json=dict(body))
        except httpx.HTTPError as e:
            raise NetworkError(f"Kubernetes API {method} {path} not reached: {e}") from None
        if resp.status_code >= 300:
            raise NetworkError(
                f"Kubernetes API {method} {path}: HTTP {resp.status_code}: {resp.text[:200]}"
            )

    def close(self) -> None:
        self._client.close()


def in_cluster(sa_dir: Path = SA_DIR) -> KubeClient | None:
    """A client with this Pod's service account, or ``None`` outside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = sa_dir / "token"
    if not host or not token_file.is_file():
        log.debug("not in a cluster (no KUBERNETES_SERVICE_HOST or token): Kubernetes API unused")
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    ca = sa_dir / "ca.crt"
    token = token_file.read_text(encoding="utf-8").strip()
    return KubeClient(f"https://{host}:{port}", token, str(ca) if ca.is_file() else True)
