"""The webhook's decisions, independent of HTTP: AdmissionRequest in, AdmissionReview out.

* ``/mutate`` pins every new tag to the digest it names now (JSONPatch ``repo:tag@sha256:…``),
  resolved with the registry credentials the pod would use.
* ``/validate`` decides on digests only, so what is verified is what runs: an image still given by
  tag is denied with a message saying that the mutating webhook must run first (as
  policy-controller does).

On UPDATE only images that were not already in ``oldObject`` are decided: a label change on a
running Pod is not re-judged (the background audit re-checks running images). Identical images in
one request are decided once; per-image decisions are cached (:class:`DecisionCache`); the whole
answer comes inside ``Settings.deadline``: an engine that has not answered by then gives status
``error`` (deny, or allow with a warning when the operator chose ``on_error="allow"``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio.to_thread

from assay.admission.cache import DecisionCache
from assay.admission.decider import Decider, ImageVerdict
from assay.admission.images import (
    ImageSite,
    canonical_ref,
    extract_images,
    pin_digest,
    pod_spec,
    ref_text,
)
from assay.admission.metrics import Metrics
from assay.admission.review import AdmissionRequest, review_response
from assay.errors import AssayError, InputError, UsageError
from assay.oci.auth import Credentials
from assay.oci.digest import parse_digest

__all__ = ["AUDIT_LOGGER", "CredentialSource", "Settings", "Webhook"]

log = logging.getLogger(__name__)
AUDIT_LOGGER = "assay.admission.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)

Path = Literal["validate", "mutate"]
_ERROR_NOTE = "an error, not a policy failure"


class CredentialSource(Protocol):
    """Registry credentials a pod would pull with (its pull secrets and its service account's)."""

    def for_pod(self, namespace: str, spec: Mapping[str, Any]) -> Mapping[str, Credentials]: ...


@dataclass(frozen=True)
class Settings:
    """The webhook's configuration, read once at start-up."""

    on_error: Literal["deny", "allow"] = "deny"
    deadline: float = 8.0  # seconds; below the webhook configuration's timeoutSeconds (10)
    cache_ttl: float = 300.0
    error_ttl: float = 5.0
    exempt_namespaces: frozenset[str] = frozenset({"kube-system"})
    alert_url: str = ""


@dataclass(frozen=True)
class _Unreached:
    """The webhook's own verdict for an image the engine did not decide in time."""

    reference: str
    message: str
    result: str
    digest: str | None = None
    status: str = "error"
    warnings: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    policies: tuple[Any, ...] = ()


@dataclass
class _Outcome:
    allowed: bool
    message: str = ""
    code: int | None = None
    warnings: list[str] = field(default_factory=list)
    patch: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[tuple[str, ImageVerdict]] = field(default_factory=list)


def _policy_names(v: ImageVerdict) -> list[str]:
    return sorted({str(getattr(p, "name", p)) for p in v.policies})


def _context_key(req: AdmissionRequest) -> str:
    """What, besides the image, a policy's match can depend on (namespace, kind, labels)."""
    raw = json.dumps(
        [req.group, req.kind, req.namespace, sorted(req.labels.items())], separators=(",", ":")
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class Webhook:
    def __init__(
        self,
        decider: Decider,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        credentials: CredentialSource | None = None,
        make_context: Callable[[AdmissionRequest], Any] | None = None,
        alert: Callable[[str], None] | None = None,
    ) -> None:
        self.decider = decider
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.cache: DecisionCache[ImageVerdict] = DecisionCache(
            settings.cache_ttl, error_ttl=settings.error_ttl
        )
        self._credentials = credentials
        self._make_context = make_context
        self._alert = alert

    # -- entry points -----------------------------------------------------------------------

    async def review(self, path: Path, req: AdmissionRequest) -> dict[str, Any]:
        """Answer one AdmissionReview request; never raises for bad input (that is a deny)."""
        start = time.monotonic()
        try:
            out = await self._review(path, req, start)
        except InputError as e:
            out = _Outcome(False, f"assay admission: {e}", code=400)
        elapsed = time.monotonic() - start
        self.metrics.requests.labels(path, str(out.allowed).lower()).inc()
        self.metrics.latency.labels(path).observe(elapsed)
        self._audit(path, req, out)
        return review_response(
            req.uid,
            allowed=out.allowed,
            message=out.message,
            code=out.code if out.code is not None else (None if out.allowed else 403),
            warnings=out.warnings,
            patch=out.patch,
        )

    async def _review(self, path: Path, req: AdmissionRequest, start: float) -> _Outcome:
        if req.namespace in self.settings.exempt_namespaces:
            return _Outcome(True)
        if req.operation not in ("CREATE", "UPDATE") or req.object is None:
            return _Outcome(True)
        sites = extract_images(req.group, req.kind, req.object)
        if req.operation == "UPDATE" and req.old_object is not None:
            before = {s.image for s in extract_images(req.group, req.kind, req.old_object)}
            sites = tuple(s for s in sites if s.image not in before)
        if not sites:
            return _Outcome(True)
        bad = []
        refs: dict[str, str] = {}  # image string -> canonical reference
        for s in sites:
            try:
                refs[s.image] = ref_text(canonical_ref(s.image))
            except UsageError as e:
                bad.append(f"{_where(s)}: {e}")
        if bad:
            return _Outcome(False, "; ".join(bad), code=403)
        creds = await self._pod_credentials(req)
        if path == "mutate":
            return await self._mutate(sites, refs, creds, start)
        return await self._validate(req, sites, refs, creds, start)

    # -- mutate ------------------------------------------------------------------------------

    async def _mutate(
        self,
        sites: Sequence[ImageSite],
        refs: Mapping[str, str],
        creds: Mapping[str, Credentials] | None,
        start: float,
    ) -> _Outcome:
        tags = sorted({refs[s.image] for s in sites if "@" not in refs[s.image]})
        if not tags:
            return _Outcome(True)

        async def one(ref: str) -> str:
            digest = await anyio.to_thread.run_sync(
                lambda: self.decider.resolve(ref, credentials=creds)
            )
            try:
                return parse_digest(digest)  # it goes into the patch: only a well-formed digest
            except InputError:
                raise InputError(f"the registry answered {digest!r}, not a digest") from None

        remaining = self._remaining(start)
        results: dict[str, str | BaseException] = {}
        try:
            done = await asyncio.wait_for(
                asyncio.gather(*(one(r) for r in tags), return_exceptions=True), remaining
            )
            results = dict(zip(tags, done, strict=True))
        except TimeoutError:
            why = f"the registry did not answer within {self.settings.deadline:g}s"
            results = {r: TimeoutError(why) for r in tags}
        out = _Outcome(True)
        failed: list[str] = []
        for ref, got in results.items():
            if isinstance(got, BaseException):
                self.metrics.registry_errors.inc()
                if not isinstance(got, AssayError | TimeoutError):
                    log.error("resolving %s failed unexpectedly", ref, exc_info=got)
                failed.append(f"could not resolve {ref} to a digest: {got}")
        digests = {r: d for r, d in results.items() if isinstance(d, str)}
        if failed:
            if self.settings.on_error == "allow":
                out.warnings += [f"{f} (admitted unpinned: --on-error allow)" for f in failed]
            else:
                return _Outcome(False, "; ".join(failed), code=403)
        for s in sites:
            digest = digests.get(refs[s.image])
            if digest:
                out.patch.append(
                    {"op": "replace", "path": s.pointer, "value": pin_digest(s.image, digest)}
                )
        return out

    # -- validate ----------------------------------------------------------------------------

    async def _validate(
        self,
        req: AdmissionRequest,
        sites: Sequence[ImageSite],
        refs: Mapping[str, str],
        creds: Mapping[str, Credentials] | None,
        start: float,
    ) -> _Outcome:
        unpinned = [s for s in sites if "@" not in refs[s.image]]
        if unpinned:
            names = ", ".join(f"{_where(s)} {s.image!r}" for s in unpinned)
            return _Outcome(
                False,
                f"{names}: must be an image digest; the validating webhook decides on digests "
                "only. The mutating webhook (/mutate) pins tags: check that its "
                "MutatingWebhookConfiguration is installed and matches this object, or write "
                "the image as repo:tag@sha256:…",
                code=403,
            )
        ctx_key = _context_key(req)
        unique = sorted(set(refs.values()))
        verdicts: dict[str, ImageVerdict] = {}
        todo: list[str] = []
        for ref in unique:
            hit = self.cache.get(self._key(ref, ctx_key))
            if hit is not None:
                self.metrics.cache_hits.inc()
                verdicts[ref] = hit
            else:
                self.metrics.cache_misses.inc()
                todo.append(ref)
        if todo:
            verdicts.update(await self._decide(req, todo, creds, ctx_key, start))
        out = _Outcome(True)
        denied: list[str] = []
        for ref in unique:
            v = verdicts[ref]
            self.metrics.decisions.labels(v.result, v.status).inc()
            out.verdicts.append((ref, v))
            if v.status == "error" and v.result == "allow":
                # fail-open: say so first, so the 256-character limit keeps what matters
                reason = v.message if ref in v.message else f"{ref}: {v.message}"
                out.warnings.append(
                    f"admitted unverified (--on-error allow; {_ERROR_NOTE}): {reason}"
                )
            else:
                out.warnings += list(v.warnings)
            if v.result != "allow":
                message = v.message or f"denied ({v.status})"
                message = message if ref in message else f"{ref}: {message}"
                if v.status == "error" and _ERROR_NOTE not in message:
                    message = f"{message} ({_ERROR_NOTE})"
                denied.append(message)
        if denied:
            out.allowed = False
            out.message = "; ".join(denied)
        out.warnings = list(dict.fromkeys(out.warnings))
        return out

    async def _decide(
        self,
        req: AdmissionRequest,
        todo: Sequence[str],
        creds: Mapping[str, Credentials] | None,
        ctx_key: str,
        start: float,
    ) -> dict[str, ImageVerdict]:
        context = self._make_context(req) if self._make_context else None
        t0 = time.monotonic()
        try:
            decision = await asyncio.wait_for(
                anyio.to_thread.run_sync(
                    lambda: self.decider.decide(todo, context=context, credentials=creds),
                    abandon_on_cancel=True,
                ),
                self._remaining(start),
            )
        except TimeoutError:
            self.metrics.registry_errors.inc(len(todo))
            return {r: self._unreached(r) for r in todo}
        finally:
            self.metrics.decide_latency.observe(time.monotonic() - t0)
        got: dict[str, ImageVerdict] = {d.reference: d for d in decision.images}
        out: dict[str, ImageVerdict] = {}
        for i, ref in enumerate(todo):
            # The engine answers in input order; match by reference where it kept it.
            found = got.get(ref) or (decision.images[i] if i < len(decision.images) else None)
            v: ImageVerdict = found or _Unreached(
                ref, f"{ref}: the policy engine returned no decision", "deny"
            )
            if v.status == "error":
                self.metrics.registry_errors.inc()
            if v.digest:
                self.cache.put(self._key(ref, ctx_key), v, error=v.status == "error")
            out[ref] = v
        return out

    def _unreached(self, ref: str) -> _Unreached:
        why = (
            f"{ref}: could not be verified: the registry did not answer within "
            f"{self.settings.deadline:g}s ({_ERROR_NOTE})"
        )
        if self.settings.on_error == "allow":
            return _Unreached(ref, why, "allow")
        return _Unreached(ref, why, "deny")

    # -- helpers -----------------------------------------------------------------------------

    def _key(self, ref: str, ctx_key: str) -> str:
        parsed = canonical_ref(ref)  # the repository matters: policies match names
        return f"{self.decider.cache_key(parsed.digest)}|{parsed.name}|{ctx_key}"

    def _remaining(self, start: float) -> float:
        return max(0.05, self.settings.deadline - (time.monotonic() - start))

    async def _pod_credentials(self, req: AdmissionRequest) -> Mapping[str, Credentials] | None:
        if self._credentials is None:
            return None
        spec = pod_spec(req.group, req.kind, req.object)
        source = self._credentials
        try:
            return await asyncio.wait_for(
                anyio.to_thread.run_sync(
                    lambda: source.for_pod(req.namespace, spec), abandon_on_cancel=True
                ),
                min(2.0, self.settings.deadline / 4),
            )
        except (AssayError, TimeoutError) as e:
            log.warning("pull secrets for %s/%s not read: %s", req.namespace, req.name, e)
            return None

    def _audit(self, path: Path, req: AdmissionRequest, out: _Outcome) -> None:
        record = {
            "uid": req.uid,
            "webhook": path,
            "user": req.username,
            "namespace": req.namespace,
            "kind": f"{req.group}/{req.kind}".lstrip("/"),
            "name": req.name,
            "operation": req.operation,
            "dryRun": req.dry_run,
            "allowed": out.allowed,
            "message": out.message,
            "warnings": out.warnings,
            "patched": [p["value"] for p in out.patch],
            "images": [
                {
                    "reference": ref,
                    "digest": v.digest,
                    "result": v.result,
                    "status": v.status,
                    "policies": _policy_names(v),
                    "evidence": sorted(v.evidence),
                }
                for ref, v in out.verdicts
            ],
        }
        if req.dry_run:  # decided without side effects: no audit record, no alert
            log.debug("dry-run decision: %s", json.dumps(record, sort_keys=True))
            return
        audit_log.info(json.dumps(record, sort_keys=True, separators=(",", ":")))
        if not out.allowed and self._alert is not None:
            self._alert(
                f"assay admission denied {req.operation} {record['kind']} "
                f"{req.namespace}/{req.name} by {req.username}: {out.message}"
            )


def _where(s: ImageSite) -> str:
    label = {
        "container": "container",
        "initContainer": "init container",
        "ephemeralContainer": "ephemeral container",
        "imageVolume": "image volume",
    }[s.kind]
    return f"{label} {s.name!r}" if s.name else label
