"""What the webhook needs from the policy engine, as a Protocol.

``assay.policy.Engine`` satisfies it; the webhook is written against this so it knows nothing of
how a decision is made, and the engine nothing of HTTP or Kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from assay.oci.auth import Credentials

__all__ = ["Decider", "ImageVerdict", "Verdict"]


class ImageVerdict(Protocol):
    """One image's decision (``assay.policy.ImageDecision``)."""

    @property
    def reference(self) -> str: ...
    @property
    def digest(self) -> str | None: ...
    @property
    def result(self) -> str: ...  # "allow" | "deny"
    @property
    def status(self) -> str: ...  # "pass" | "fail" | "warn" | "error"
    @property
    def message(self) -> str: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...
    @property
    def evidence(self) -> tuple[str, ...]: ...
    @property
    def policies(self) -> tuple[Any, ...]: ...


class Verdict(Protocol):
    """A decision over several images (``assay.policy.Decision``)."""

    @property
    def images(self) -> Sequence[ImageVerdict]: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...


class Decider(Protocol):
    def decide(
        self,
        refs: Sequence[str],
        *,
        context: Any = None,
        credentials: Mapping[str, Credentials] | None = None,
    ) -> Verdict: ...

    def resolve(self, ref: str, *, credentials: Mapping[str, Credentials] | None = None) -> str: ...

    def cache_key(self, digest: str) -> str: ...
