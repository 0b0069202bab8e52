"""The decision engine: policies × images → :class:`Decision`.

Combination follows policy-controller: every policy whose globs (and ``match``) select the image
must pass; within a policy any authority passing suffices (a CIP-level ``policy`` then judges
``authorityMatches``); ``mode: warn`` turns a failure into a warning; an image no policy selects
follows ``no_match``. Registry or timeout problems are ``error`` — denied unless the caller chose
``on_error="allow"`` (then allowed with a warning).

Each image's evidence is fetched once per call (signature/attestation manifests, referrers and
config concurrently); identical references are decided once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from assay._closing import Closing
from assay._http import request_deadline
from assay.attest.remote import ImageRef, parse_image_ref
from assay.attest.verify import VerifiedAttestation
from assay.errors import AssayError, UsageError
from assay.oci.auth import Credentials
from assay.oci.registry import NotFoundError, RegistryClient
from assay.policy.authority import (
    AuthorityOutcome,
    Unsupported,
    check_authority,
    verify_attestations,
    verify_signatures,
)
from assay.policy.decision import CheckResult, Decision, ImageDecision, PolicyResult, Status
from assay.policy.evidence import ImageEvidence, SignedEvidence, fetch_image, fetch_signed
from assay.policy.glob import glob_matches
from assay.policy.load import labels_match, load_documents, policies_digest
from assay.policy.model import Authority, KeyAuthority, Policy
from assay.policy.rego import QUERY, evaluate_rego

if TYPE_CHECKING:
    from assay.policy.layers import ImageLayers

__all__ = ["Engine", "MatchContext", "PolicySet", "load_policies"]

_log = logging.getLogger(__name__)

NoMatch = Literal["deny", "warn", "allow"]
OnError = Literal["deny", "allow"]
NO_MATCHING_POLICIES = "no matching policies"


@dataclass(frozen=True)
class PolicySet:
    """The loaded, validated policies."""

    policies: tuple[Policy, ...]

    @property
    def digest(self) -> str:
        return policies_digest(self.policies)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)


def load_policies(paths: Sequence[str | Path]) -> PolicySet:
    """Load policy files or directories; UsageError naming file/document/field when invalid."""
    return PolicySet(tuple(load_documents(paths)))


@dataclass(frozen=True)
class MatchContext:
    """What ``spec.match`` and ``includeSpec``/``includeObjectMeta``/``includeTypeMeta`` see."""

    resource: str = "pods"
    group: str = ""
    version: str = "v1"
    kind: str = "Pod"
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    object_meta: Mapping[str, Any] | None = None
    spec: Mapping[str, Any] | None = None
    type_meta: Mapping[str, Any] | None = None


def _resource_matches(policy: Policy, ctx: MatchContext) -> bool:
    if not policy.match:
        return True
    for m in policy.match:
        if m.resource and m.resource not in ("*", ctx.resource):
            continue
        if m.group and m.group not in ("*", ctx.group):
            continue
        if m.version and m.version not in ("*", ctx.version):
            continue
        if labels_match(m.match_labels, ctx.labels):
            return True
    return False


class _Once:
    """Per-call memo: the first caller of a key computes, concurrent callers wait for it.

    Holds each image's signed evidence and its :class:`ImageLayers` (closed by ``close``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str, str], tuple[threading.Lock, list[object]]] = {}

    def get(
        self, key: tuple[str, str, str, str], make: Callable[[], SignedEvidence]
    ) -> SignedEvidence:
        return cast(SignedEvidence, self._get(key, make))

    def layers(self, key: tuple[str, str, str], make: Callable[[], ImageLayers]) -> ImageLayers:
        return cast("ImageLayers", self._get(("layers", *key), make))

    def _get(self, key: tuple[str, str, str, str], make: Callable[[], object]) -> object:
        with self._lock:
            entry = self._items.setdefault(key, (threading.Lock(), []))
        with entry[0]:
            if not entry[1]:
                entry[1].append(make())
            return entry[1][0]

    def close(self) -> None:
        """Remove the layers downloaded for this call."""
        from assay.policy.layers import ImageLayers

        with self._lock:
            items = [e[1][0] for e in self._items.values() if e[1]]
        for item in items:
            if isinstance(item, ImageLayers):
                item.close()


_DEFAULT_CONTEXT = MatchContext()


def _context_fingerprint(ctx: MatchContext) -> str:
    """A short hash of everything in ``ctx`` that can change a decision."""
    if ctx == _DEFAULT_CONTEXT:
        return "default"
    raw = json.dumps(
        [
            ctx.resource,
            ctx.group,
            ctx.version,
            ctx.kind,
            ctx.namespace,
            dict(ctx.labels),
            ctx.object_meta,
            ctx.spec,
            ctx.type_meta,
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def _parse_ref(text: str) -> ImageRef:
    return parse_image_ref(text)


class Engine(Closing):
    """Decides images against a :class:`PolicySet`. Thread-safe; reuse one per process."""

    def __init__(
        self,
        policies: PolicySet,
        *,
        no_match: NoMatch = "deny",
        on_error: OnError = "deny",
        insecure_registries: frozenset[str] = frozenset(),
        timeout: float = 8.0,
        workers: int = 8,
        clock: Callable[[], float] | None = None,
        cache_size: int = 0,
        cache_ttl: float = 300.0,
        vuln_db: Path | None = None,
    ) -> None:
        if no_match not in ("deny", "warn", "allow"):
            raise UsageError(f"no_match must be deny, warn or allow, not {no_match!r}")
        if on_error not in ("deny", "allow"):
            raise UsageError(f"on_error must be deny or allow, not {on_error!r}")
        self.policies = policies
        self.no_match: NoMatch = no_match
        self.on_error: OnError = on_error
        self.insecure_registries = frozenset(insecure_registries)
        self.timeout = timeout
        # the advisory DB of live scans (require.vulnerabilities.source); default: $ASSAY_VULN_DB
        self.vuln_db = vuln_db
        self._clock = clock or time.time
        self._cache_size = max(0, cache_size)
        self._cache_ttl = cache_ttl
        self._cache: OrderedDict[str, tuple[float, ImageDecision]] = OrderedDict()
        self._digest = policies.digest
        self._clients: dict[tuple[str, Credentials | None], RegistryClient] = {}
        self._lock = threading.Lock()
        self._outer = ThreadPoolExecutor(max(1, workers // 2), thread_name_prefix="policy")
        self._inner = ThreadPoolExecutor(max(2, workers), thread_name_prefix="policy-fetch")

    def close(self) -> None:
        self._outer.shutdown(wait=False, cancel_futures=True)
        self._inner.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # ------------------------------------------------------------------ public API
    def cache_key(self, digest: str) -> str:
        return f"{digest}|{self._digest}|{self.no_match}|{self.on_error}"

    def resolve(self, ref: str, *, credentials: Mapping[str, Credentials] | None = None) -> str:
        """Tag → ``sha256:…`` digest (for the mutating webhook)."""
        parsed = parse_image_ref(ref)
        if parsed.digest:
            return parsed.digest
        client = self._client(parsed.host, credentials)
        return str(client.resolve(parsed.repository, parsed.tag or "latest").digest)

    def decide(
        self,
        refs: Sequence[str],
        *,
        context: MatchContext | None = None,
        credentials: Mapping[str, Credentials] | None = None,
    ) -> Decision:
        """Decide every reference; UsageError only for references that cannot be parsed."""
        ctx = context or MatchContext()
        parsed = {text: _parse_ref(text) for text in dict.fromkeys(refs)}
        deadline = time.monotonic() + self.timeout
        results: dict[str, ImageDecision] = {}
        keys: dict[str, str] = {}
        if self._cache_size:
            fingerprint = _context_fingerprint(ctx)
            now = time.monotonic()
            with self._lock:
                for text, ref in parsed.items():
                    if not ref.digest:
                        continue
                    keys[text] = f"{self.cache_key(ref.digest)}|{text}|{fingerprint}"
                    hit = self._cache.get(keys[text])
                    if hit is not None and hit[0] > now:
                        self._cache.move_to_end(keys[text])
                        results[text] = hit[1]
        shared = _Once()
        try:
            return self._decide_all(refs, parsed, ctx, credentials, deadline, results, keys, shared)
        finally:
            shared.close()

    def _decide_all(
        self,
        refs: Sequence[str],
        parsed: dict[str, ImageRef],
        ctx: MatchContext,
        credentials: Mapping[str, Credentials] | None,
        deadline: float,
        results: dict[str, ImageDecision],
        keys: dict[str, str],
        shared: _Once,
    ) -> Decision:
        futures = {
            text: self._outer.submit(
                self._decide_one, text, ref, ctx, credentials, deadline, shared
            )
            for text, ref in parsed.items()
            if text not in results
        }
        for text, fut in futures.items():
            try:
                results[text] = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                fut.cancel()
                results[text] = self._error_decision(
                    text, None, f"timed out after {self.timeout:g}s deciding {text}"
                )
            if text in keys and results[text].status != "error":
                self._remember(keys[text], results[text])
        images = tuple(results[text] for text in refs if text in results)
        unique = tuple(results[text] for text in dict.fromkeys(refs))
        warnings = tuple(dict.fromkeys(w for image in unique for w in image.warnings))
        return Decision(images, all(i.result == "allow" for i in unique), warnings)

    # ------------------------------------------------------------------ internals
    def _remember(self, key: str, decision: ImageDecision) -> None:
        with self._lock:
            self._cache[key] = (time.monotonic() + self._cache_ttl, decision)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _client(self, host: str, credentials: Mapping[str, Credentials] | None) -> RegistryClient:
        creds = (credentials or {}).get(host)
        key = (host, creds)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = RegistryClient(
                    host,
                    insecure=host in self.insecure_registries,
                    auth=creds,
                    timeout=self.timeout,
                    retries=1,
                    # each request also ends by the decision's deadline: a registry that
                    # trickles must not keep a worker thread after the answer was given
                    deadline=min(self.timeout, request_deadline()),
                )
                self._clients[key] = client
            return client

    def _error_decision(self, text: str, digest: str | None, message: str) -> ImageDecision:
        if self.on_error == "allow":
            warning = f"{message} (allowed: on-error=allow)"
            return ImageDecision(text, digest, "allow", "error", message, (warning,))
        return ImageDecision(text, digest, "deny", "error", message)

    def _matching(self, text: str, ref: ImageRef, ctx: MatchContext) -> list[Policy]:
        name = str(ref)
        out = []
        for policy in self.policies.policies:
            try:
                hit = any(glob_matches(g, name) for g in policy.globs)
            except UsageError:
                hit = False
            if hit and _resource_matches(policy, ctx):
                out.append(policy)
        return out

    def _decide_one(
        self,
        text: str,
        ref: ImageRef,
        ctx: MatchContext,
        credentials: Mapping[str, Credentials] | None,
        deadline: float,
        shared: _Once,
    ) -> ImageDecision:
        matching = self._matching(text, ref, ctx)
        if not matching:
            message = f"{NO_MATCHING_POLICIES}: {text}"
            if self.no_match == "allow":
                return ImageDecision(text, ref.digest, "allow", "pass", message)
            if self.no_match == "warn":
                return ImageDecision(text, ref.digest, "allow", "warn", message, (message,))
            return ImageDecision(text, ref.digest, "deny", "fail", message)
        want_config = any(
            (p.policy is not None and p.policy.fetch_config_file) or p.require.enabled()
            for p in matching
        )
        try:
            client = self._client(ref.host, credentials)
            image = fetch_image(
                client,
                ref.repository,
                ref.digest or ref.tag or "latest",
                self._inner,
                want_config=want_config,
            )
        except NotFoundError:
            return ImageDecision(
                text, ref.digest, "deny", "fail", f"image {text} not found in the registry"
            )
        except AssayError as exc:
            return self._error_decision(text, ref.digest, f"cannot fetch {text}: {exc}")
        from assay.policy.layers import ImageLayers

        # one download of an image's layers per call, however many references name it
        layers = shared.layers(
            (client.host, image.repository, image.digest),
            lambda: ImageLayers(client, image, self._inner),
        )
        results = [
            self._evaluate_safely(policy, image, ref, ctx, credentials, shared, layers)
            for policy in matching
        ]
        evidence = [image.digest, *image.config_digests.values()]
        for r in results:
            for a in (*r.authorities, *r.checks):
                evidence.extend(a.evidence)
        evidence = list(dict.fromkeys(evidence))
        warnings = [w for r in results for w in r.warnings]
        failed = [r for r in results if r.status == "fail"]
        errored = [r for r in results if r.status == "error"]
        if failed:
            message = "; ".join(f"failed policy: {r.name}: {r.reason}" for r in failed)
            return ImageDecision(
                text,
                image.digest,
                "deny",
                "fail",
                message,
                tuple(warnings),
                tuple(results),
                tuple(evidence),
            )
        if errored:
            message = "; ".join(f"error in policy: {r.name}: {r.reason}" for r in errored)
            if self.on_error == "allow":
                warnings.append(f"{message} (allowed: on-error=allow)")
                return ImageDecision(
                    text,
                    image.digest,
                    "allow",
                    "error",
                    message,
                    tuple(warnings),
                    tuple(results),
                    tuple(evidence),
                )
            return ImageDecision(
                text,
                image.digest,
                "deny",
                "error",
                message,
                tuple(warnings),
                tuple(results),
                tuple(evidence),
            )
        status: Literal["pass", "warn"] = "warn" if warnings else "pass"
        names = ", ".join(r.name for r in results)
        return ImageDecision(
            text,
            image.digest,
            "allow",
            status,
            f"admitted by {names}",
            tuple(warnings),
            tuple(results),
            tuple(evidence),
        )

    def _signed_for(
        self,
        auth: Authority,
        image: ImageEvidence,
        ref: ImageRef,
        credentials: Mapping[str, Credentials] | None,
        cache: _Once,
    ) -> list[SignedEvidence]:
        places: list[tuple[str, str, str]] = []
        for source in auth.sources or ():
            host, repo = ref.host, ref.repository
            if source.oci:
                if "/" not in source.oci:
                    raise UsageError(f"source.oci {source.oci!r} is not HOST/REPOSITORY")
                host, repo = source.oci.split("/", 1)
            places.append((host, repo, source.tag_prefix))
        if not places:
            places.append((ref.host, ref.repository, ""))
        out = []
        for host, repo, prefix in places:

            def make(host: str = host, repo: str = repo, prefix: str = prefix) -> SignedEvidence:
                try:
                    client = self._client(host, credentials)
                    return fetch_signed(client, repo, image.digest, self._inner, tag_prefix=prefix)
                except AssayError as exc:
                    return SignedEvidence(repo, error=str(exc))

            out.append(cache.get((host, repo, prefix, image.digest), make))
        return out

    def _evaluate_safely(
        self,
        policy: Policy,
        image: ImageEvidence,
        ref: ImageRef,
        ctx: MatchContext,
        credentials: Mapping[str, Credentials] | None,
        cache: _Once,
        layers: ImageLayers,
    ) -> PolicyResult:
        """``_evaluate``, but a bug or an unexpected library exception is an ``error`` result
        (denied unless on_error=allow) instead of escaping ``decide()``."""
        try:
            return self._evaluate(policy, image, ref, ctx, credentials, cache, layers)
        except Exception as exc:
            _log.exception("evaluating policy %s for %s", policy.name, ref)
            reason = f"internal error evaluating the policy: {type(exc).__name__}: {exc}"
            return PolicyResult(policy.name, policy.kind, policy.mode, "error", reason)

    def _evaluate(
        self,
        policy: Policy,
        image: ImageEvidence,
        ref: ImageRef,
        ctx: MatchContext,
        credentials: Mapping[str, Credentials] | None,
        cache: _Once,
        layers: ImageLayers,
    ) -> PolicyResult:
        outcomes: list[AuthorityOutcome] = []
        for auth in policy.authorities:
            if auth.static is not None:
                outcomes.append(check_authority(auth, image, None))
                continue
            tries = [
                check_authority(auth, image, signed)
                for signed in self._signed_for(auth, image, ref, credentials, cache)
            ]
            passing = [t for t in tries if t.result.status == "pass"]
            outcomes.append(passing[0] if passing else tries[0])
        authorities = tuple(o.result for o in outcomes)
        warnings = [w for a in authorities for w in a.warnings]
        checks: list[CheckResult] = []
        status: Status
        if policy.authorities:
            passed = [o for o in outcomes if o.result.status == "pass"]
            if passed:
                status, reason = "pass", f"authority {passed[0].result.name} passed"
            elif any(a.status == "error" for a in authorities):
                status = "error"
                reason = "; ".join(a.reason for a in authorities if a.status == "error")
            else:
                status = "fail"
                reason = "; ".join(dict.fromkeys(a.reason for a in authorities))
        else:
            status, reason = "pass", "no authorities"
        if status == "pass" and policy.policy is not None:
            status, reason, warn = self._cip_policy(policy, outcomes, image, ctx)
            warnings.extend(warn)
        if status == "pass" and policy.require.enabled():
            checks = self._require(policy, image, ref, credentials, cache, layers)
            bad = [c for c in checks if c.status in ("fail", "error")]
            if bad:
                status = "fail" if any(c.status == "fail" for c in bad) else "error"
                reason = "; ".join(f"{c.name}: {c.reason}" for c in bad)
        if status in ("fail", "error") and policy.mode == "warn":
            warnings.append(f"failed policy: {policy.name}: {reason}")
            status = "warn"
        return PolicyResult(
            policy.name,
            policy.kind,
            policy.mode,
            status,
            reason,
            authorities,
            tuple(checks),
            tuple(dict.fromkeys(warnings)),
        )

    def _require(
        self,
        policy: Policy,
        image: ImageEvidence,
        ref: ImageRef,
        credentials: Mapping[str, Credentials] | None,
        cache: _Once,
        layers: ImageLayers,
    ) -> list[CheckResult]:
        from assay.policy.require import run_checks

        attestations: dict[str, tuple[VerifiedAttestation, str]] = {}
        errors: list[str] = []
        # An index pins its platform manifests, and `assay build --push --sign-key` attests each
        # platform: the require checks read attestations on the index and on every platform it
        # lists (each verified against its own digest).
        subjects = [image, *_platform_children(image)]
        for auth in policy.authorities:
            if auth.static is not None:
                continue
            for subject in subjects:
                for signed in self._signed_for(auth, subject, ref, credentials, cache):
                    if signed.error:
                        errors.append(signed.error)
                        continue
                    try:
                        found = verify_attestations(auth, subject, signed)
                    except Unsupported:
                        continue
                    for att, digest in found.pairs:
                        key = json.dumps(att.statement, sort_keys=True)
                        attestations.setdefault(key, (att, digest))
        signers: list[tuple[int, list[str]]] = []
        if policy.require.keys:
            own = Authority(name="require.signatures")
            signed = self._signed_for(own, image, ref, credentials, cache)[0]
            if signed.error:
                errors.append(signed.error)
            for i, pem in enumerate(policy.require.keys):
                auth = Authority(name=f"require.signatures.keys[{i}]", key=KeyAuthority(data=pem))
                try:
                    signers.append((i, verify_signatures(auth, image, signed).evidence))
                except Unsupported:
                    signers.append((i, []))
        if errors:
            return [CheckResult("require", "check", "error", f"cannot fetch evidence: {errors[0]}")]
        now = self._clock()
        return run_checks(
            policy,
            image,
            list(attestations.values()),
            signers,
            now,
            special_files=layers.special_files,
            live_scan=lambda: layers.live_scan(self._vuln_db(), now),
        )

    def _vuln_db(self) -> Path:
        if self.vuln_db is not None:
            return self.vuln_db
        from assay.vuln.db import default_db_path

        return default_db_path()

    def _cip_policy(
        self,
        policy: Policy,
        outcomes: list[AuthorityOutcome],
        image: ImageEvidence,
        ctx: MatchContext,
    ) -> tuple[Status, str, list[str]]:
        code = policy.policy
        assert code is not None
        if code.type != "rego":
            return "error", f"policy type {code.type} is not supported (no CUE evaluator)", []
        if not code.data:
            return "error", "remote and configMapRef policies are not supported; inline it", []
        doc: dict[str, Any] = {
            "authorityMatches": {
                a.name: o.match
                for a, o in zip(policy.authorities, outcomes, strict=True)
                if o.match is not None
            }
        }
        if code.fetch_config_file:
            if image.config_error:
                return "error", f"cannot fetch the image config: {image.config_error}", []
            doc["config"] = image.configs
        if code.include_spec:
            doc["spec"] = dict(ctx.spec or {})
        if code.include_object_meta:
            doc["metadata"] = dict(ctx.object_meta or {})
        if code.include_type_meta:
            doc["typemeta"] = dict(ctx.type_meta or {"kind": ctx.kind, "apiVersion": ctx.version})
        outcome = evaluate_rego(code.data, doc)
        prefix = "failed evaluating rego policy for ClusterImagePolicy"
        warn = [outcome.warning] if outcome.warning else []
        if outcome.broken:
            return "error", f"{prefix}: {outcome.error}", warn
        if outcome.compliant:
            return "pass", "policy is compliant", warn
        reason = f"{prefix}: policy is not compliant for query '{QUERY}'"
        if outcome.error:
            reason += f" with errors: {outcome.error}"
        return "fail", reason, warn


MAX_PLATFORMS = 32


def _platform_children(image: ImageEvidence) -> list[ImageEvidence]:
    """The platform manifests an index lists (none for a plain manifest), as evidence subjects."""
    from assay.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES

    if image.media_type not in INDEX_TYPES:
        return []
    entries = image.manifest.get("manifests")
    if not isinstance(entries, list):
        return []
    out: list[ImageEvidence] = []
    for entry in entries[:MAX_PLATFORMS]:
        if not isinstance(entry, dict) or entry.get("mediaType") not in MANIFEST_TYPES:
            continue
        digest, size = entry.get("digest"), entry.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            continue
        out.append(
            ImageEvidence(
                image.host,
                image.repository,
                digest,
                str(entry.get("mediaType")),
                size if isinstance(size, int) else 0,
                {},
            )
        )
    return out
