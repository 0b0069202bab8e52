"""ClusterImagePolicy custom resources read from the cluster (a drop-in for policy-controller).

The webhook lists ``policy.sigstore.dev/v1beta1`` ``clusterimagepolicies`` at start-up and again
every ``interval`` seconds; when the set changes (names or ``resourceVersion``s) the policies are
written to a fresh directory and loaded with the same loader as policy files, and the webhook
switches to a new engine. A list that fails keeps the current policies (and says so in the log);
a bad policy keeps them too, so one broken CR cannot open or close the whole cluster.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from assay._atomic import atomic_write_bytes
from assay.admission.kube import KubeClient
from assay.errors import AssayError

__all__ = ["CIP_PATH", "ClusterPolicySource"]

log = logging.getLogger(__name__)

CIP_PATH = "/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies"
_MAX_POLICIES = 1000


class ClusterPolicySource:
    def __init__(self, kube: KubeClient, *, workdir: Path | None = None) -> None:
        self.kube = kube
        self._root = Path(workdir or tempfile.mkdtemp(prefix="assay-cips-"))
        self._fingerprint: tuple[tuple[str, str], ...] | None = None
        self.directory: Path | None = None
        self._generation = 0
        self._stop = threading.Event()

    def sync(self) -> bool:
        """Fetch the CIPs; write them to a new directory when they changed. True if changed."""
        doc = self.kube.get(CIP_PATH)
        items = doc.get("items") if doc is not None else []
        if not isinstance(items, list):
            raise AssayError(f"Kubernetes API {CIP_PATH}: 'items' is not a list")
        if len(items) > _MAX_POLICIES:
            raise AssayError(f"more than {_MAX_POLICIES} ClusterImagePolicies; refusing them")
        docs: list[dict[str, Any]] = []
        fingerprint = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            meta = item.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            name, version = str(meta.get("name", "")), str(meta.get("resourceVersion", ""))
            fingerprint.append((name, version))
            docs.append(
                {
                    "apiVersion": item.get("apiVersion", "policy.sigstore.dev/v1beta1"),
                    "kind": item.get("kind", "ClusterImagePolicy"),
                    "metadata": {"name": name},
                    "spec": item.get("spec", {}),
                }
            )
        key = tuple(sorted(fingerprint))
        if key == self._fingerprint:
            return False
        self._generation += 1
        new = self._root / f"gen-{self._generation}"
        new.mkdir(parents=True)
        for i, d in enumerate(sorted(docs, key=lambda d: d["metadata"]["name"])):
            text = yaml.safe_dump(d, sort_keys=True)
            atomic_write_bytes(new / f"{i:04d}-cip.yaml", text.encode(), mode=0o600)
        old, self.directory, self._fingerprint = self.directory, new, key
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log.info("ClusterImagePolicies from the cluster: %s", ", ".join(n for n, _ in key))
        return True

    def watch(self, interval: float, on_change: Callable[[Path], None]) -> threading.Thread:
        """Poll every ``interval`` seconds in a daemon thread; call ``on_change(directory)``."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    if self.sync() and self.directory is not None:
                        on_change(self.directory)
                except AssayError as e:
                    log.warning("ClusterImagePolicies not refreshed, keeping the current: %s", e)

        thread = threading.Thread(target=loop, name="assay-cip-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End the watch loop (at its next wake-up)."""
        self._stop.set()
