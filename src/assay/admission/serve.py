"""Serving the webhook: one frozen configuration, the app factory uvicorn workers import.

``assay admission serve`` checks the configuration (policies load, TLS files exist) in its own
process, then hands it to uvicorn's workers through the ``ASSAY_ADMISSION_CONFIG`` environment
variable (JSON) and :func:`app_from_env`; each worker loads the policies again and builds its own
engine, cache and metrics (the cache is per process, as the design says).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette

from assay.admission.alerts import WebhookAlert
from assay.admission.app import create_app
from assay.admission.clusterpolicies import ClusterPolicySource
from assay.admission.kube import in_cluster
from assay.admission.metrics import Metrics
from assay.admission.pullsecrets import PullSecrets
from assay.admission.review import AdmissionRequest
from assay.admission.webhook import Settings, Webhook
from assay.errors import AssayError, UsageError

__all__ = ["CONFIG_ENV", "ServeConfig", "app_from_env", "build_webhook", "match_context"]

log = logging.getLogger(__name__)
CONFIG_ENV = "ASSAY_ADMISSION_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    policies: tuple[str, ...]
    no_match: Literal["deny", "warn", "allow"] = "deny"
    on_error: Literal["deny", "allow"] = "deny"
    cache_ttl: float = 300.0
    error_ttl: float = 5.0
    deadline: float = 8.0
    namespace: str = "assay-system"  # the webhook's own namespace: never blocked
    exempt_namespaces: tuple[str, ...] = field(default=("kube-system",))
    insecure_registries: tuple[str, ...] = ()
    alert_url: str = ""
    cluster_policies: bool = False  # also ClusterImagePolicy resources from the cluster
    cluster_policies_interval: float = 30.0

    def to_env(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, text: str) -> ServeConfig:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise UsageError(f"{CONFIG_ENV} must be a JSON object")
        for key in ("policies", "exempt_namespaces", "insecure_registries"):
            doc[key] = tuple(doc.get(key, ()))
        return cls(**doc)

    def settings(self) -> Settings:
        return Settings(
            on_error=self.on_error,
            deadline=self.deadline,
            cache_ttl=self.cache_ttl,
            error_ttl=self.error_ttl,
            exempt_namespaces=frozenset({self.namespace, *self.exempt_namespaces}),
            alert_url=self.alert_url,
        )


def match_context(req: AdmissionRequest) -> Any:
    """What a policy's ``match``/``include*`` sees of the object under review."""
    from assay.policy import MatchContext

    obj: Mapping[str, Any] = req.object or {}
    meta = obj.get("metadata")
    spec = obj.get("spec")
    return MatchContext(
        resource=req.resource,
        group=req.group,
        version=req.version,
        kind=req.kind,
        namespace=req.namespace,
        labels=req.labels,
        object_meta=meta if isinstance(meta, Mapping) else None,
        spec=spec if isinstance(spec, Mapping) else None,
        type_meta={"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", "")},
    )


def build_webhook(config: ServeConfig, metrics: Metrics) -> Webhook:
    """Load the policies and build the engine and webhook (``UsageError`` on a bad policy)."""
    from assay.policy import Engine, load_policies

    kube = in_cluster()
    source = None
    paths = list(config.policies)
    if config.cluster_policies:
        if kube is None:
            log.warning("--cluster-policies: not in a cluster; using the policy files only")
        else:
            source = ClusterPolicySource(kube)
            source.sync()
            if source.directory is not None:
                paths.append(str(source.directory))

    def engine_for(paths: list[str]) -> Engine:
        policies = load_policies(paths)
        log.info(
            "policies loaded: %s (%s)", ", ".join(policies.names) or "none", policies.digest[:19]
        )
        return Engine(
            policies,
            no_match=config.no_match,
            on_error=config.on_error,
            insecure_registries=frozenset(config.insecure_registries),
            timeout=config.deadline,
        )

    webhook = Webhook(
        engine_for(paths),
        config.settings(),
        metrics=metrics,
        credentials=PullSecrets(kube) if kube is not None else None,
        make_context=match_context,
        alert=WebhookAlert(config.alert_url) if config.alert_url else None,
    )
    if source is not None:

        def swap(directory: Path) -> None:
            try:
                # the cache keys carry the policy digest, so old decisions simply stop matching
                webhook.decider = engine_for([*config.policies, str(directory)])
            except AssayError as e:  # a broken CR: keep deciding with the current policies
                log.error("ClusterImagePolicies changed but do not load, keeping the old: %s", e)

        source.watch(config.cluster_policies_interval, swap)
    return webhook


def app_from_env() -> Starlette:
    """The app for one uvicorn worker, configured from ``ASSAY_ADMISSION_CONFIG``."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise UsageError(f"{CONFIG_ENV} is not set; start the webhook with `assay admission serve`")
    config = ServeConfig.from_env(text)
    return create_app(lambda m: build_webhook(config, m))
