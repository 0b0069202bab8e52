"""The webhook's pure parts and decisions on every AdmissionReview kube-apiserver v1.36.2 sent.

The decider here is a small real implementation of the ``Decider`` protocol (tags resolve through
a table, digests are allowed by an allow-list), so these tests pin the webhook's own logic:
which images it finds, the JSONPatch it builds (applied with the ``jsonpatch`` library and the
result re-extracted), the validating path's digest-only rule, UPDATE handling, dry-run, caching,
deadlines and the response shape. The real engine is exercised in the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from assay.admission import (
    AUDIT_LOGGER,
    Settings,
    Webhook,
    canonical_ref,
    extract_images,
    is_digest_ref,
    parse_review,
)
from assay.admission.cache import DecisionCache
from assay.errors import InputError, NetworkError, UsageError
from fixtures.assets import INTEROP

CAPTURE = INTEROP / "kube-apiserver-1.36.2"
BODIES = sorted(CAPTURE.glob("[0-9][0-9]-*.json"))

D_APP_TAGGED = "sha256:ae968b896ad0a1cc95c1cb5cab8e19260153635f38d47371a478a16d8db248fe"
D_APP = "sha256:41b008cbd15321447ed0d5b070dd43ff086f40848f0b3907f6e904489b3a9011"
D_INIT = "sha256:3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804"
T = "/spec/template/spec"
CJ = "/spec/jobTemplate/spec/template/spec"

# Every image string in each captured object and where it is, as the README describes them.
EXPECTED_SITES: dict[str, list[tuple[str, str]]] = {
    "pod-create-tag": [("/spec/containers/0/image", "registry.example/acme/app:v1")],
    "pod-create-digest": [("/spec/containers/0/image", f"registry.example/acme/app@{D_APP}")],
    "pod-create-init-containers": [
        ("/spec/initContainers/0/image", "busybox:1.36"),
        ("/spec/initContainers/1/image", f"registry.example:5000/tools/migrate@{D_INIT}"),
        ("/spec/containers/0/image", f"registry.example/acme/app:v1@{D_APP_TAGGED}"),
        ("/spec/containers/1/image", "nginx"),
    ],
    "pod-create-pullsecrets-serviceaccount": [
        ("/spec/containers/0/image", "registry.example/private/app:v1")
    ],
    "pod-create-image-volume": [
        ("/spec/containers/0/image", "registry.example/acme/app:v1"),
        ("/spec/volumes/0/image/reference", "registry.example/acme/data:v1"),
    ],
    "pod-create-dryrun": [("/spec/containers/0/image", "registry.example/acme/app:v1")],
    "pod-update-label": [("/spec/containers/0/image", "registry.example/acme/app:v1")],
    "pod-update-ephemeralcontainers": [
        ("/spec/containers/0/image", "registry.example/acme/app:v1"),
        ("/spec/ephemeralContainers/0/image", "registry.example/tools/debug:v1"),
    ],
    "pod-update-label-dryrun": [
        ("/spec/containers/0/image", "registry.example/acme/app:v1"),
        ("/spec/ephemeralContainers/0/image", "registry.example/tools/debug:v1"),
    ],
    "deployment-update-set-image": [
        (f"{T}/initContainers/0/image", f"registry.example/acme/init@{D_INIT}"),
        (f"{T}/containers/0/image", "registry.example/acme/app:v2"),
    ],
}
for _w in ("deployment", "replicaset", "statefulset", "daemonset", "job"):
    EXPECTED_SITES[f"{_w}-create"] = [
        (f"{T}/initContainers/0/image", f"registry.example/acme/init@{D_INIT}"),
        (f"{T}/containers/0/image", "registry.example/acme/app:v1"),
    ]
EXPECTED_SITES["cronjob-create"] = [
    (f"{CJ}/initContainers/0/image", f"registry.example/acme/init@{D_INIT}"),
    (f"{CJ}/containers/0/image", "registry.example/acme/app:v1"),
]
# Images an UPDATE adds (what the webhook decides); CREATE decides all.
NEW_ON_UPDATE = {
    "pod-update-label": set(),
    "pod-update-label-dryrun": set(),
    "pod-update-ephemeralcontainers": {"registry.example/tools/debug:v1"},
    "deployment-update-set-image": {"registry.example/acme/app:v2"},
}


def _write(body: Path) -> str:
    return body.stem[3:].rsplit("-", 1)[0]


def _load(body: Path) -> dict[str, Any]:
    return dict(json.loads(body.read_bytes()))


def _digest_of(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    reference: str
    digest: str | None
    result: str
    status: str
    message: str
    warnings: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    policies: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Decision:
    images: tuple[Verdict, ...]
    allowed: bool
    warnings: tuple[str, ...] = ()


@dataclass
class AllowList:
    """A real, tiny decider: tags resolve to sha256(ref), digests in ``allowed`` pass."""

    allowed: set[str] = field(default_factory=set)
    warn: set[str] = field(default_factory=set)
    delay: float = 0.0
    unreachable: bool = False
    calls: list[tuple[str, ...]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(
        self, refs: Sequence[str], *, context: Any = None, credentials: Any = None
    ) -> Decision:
        with self.lock:
            self.calls.append(tuple(refs))
        time.sleep(self.delay)
        out = []
        for r in refs:
            digest = r.partition("@")[2]
            if self.unreachable:
                out.append(Verdict(r, digest, "deny", "error", f"{r}: registry unreachable"))
            elif digest in self.allowed:
                out.append(
                    Verdict(r, digest, "allow", "pass", "", evidence=("sha256:" + "e" * 64,))
                )
            elif digest in self.warn:
                w = f"{r}: policy warn-only: no matching signatures"
                out.append(Verdict(r, digest, "allow", "warn", w, warnings=(w,)))
            else:
                out.append(
                    Verdict(r, digest, "deny", "fail", f"{r}: failed policy: only: not allowed")
                )
        return Decision(tuple(out), all(v.result == "allow" for v in out))

    def resolve(self, ref: str, *, credentials: Any = None) -> str:
        self.resolved.append(ref)
        time.sleep(self.delay)
        if self.unreachable:
            raise NetworkError(f"registry for {ref} did not answer")
        return _digest_of(ref)

    def cache_key(self, digest: str) -> str:
        return f"{digest}|policies"


def _run(hook: Webhook, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = parse_review(json.dumps(body).encode())
    return asyncio.run(hook.review(path, req))  # type: ignore[arg-type]


def _patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    resp = answer["response"]
    if "patch" not in resp:
        return []
    assert resp["patchType"] == "JSONPatch"
    return list(json.loads(base64.b64decode(resp["patch"])))


# -- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", BODIES, ids=lambda p: p.stem)
def test_every_image_of_every_captured_object_is_found(body: Path) -> None:
    req = parse_review(body.read_bytes())
    assert req.uid == _load(body)["request"]["uid"]
    sites = extract_images(req.group, req.kind, req.object)
    assert [(s.pointer, s.image) for s in sites] == EXPECTED_SITES[_write(body)]
    obj = _load(body)["request"]["object"]
    for s in sites:  # each pointer resolves to that very string
        assert jsonpatch.JsonPointer(s.pointer).resolve(obj) == s.image


def test_canonical_refs_follow_the_kubelet_defaults() -> None:
    cases = {
        "nginx": "docker.io/library/nginx:latest",
        "busybox:1.36": "docker.io/library/busybox:1.36",
        "acme/app": "docker.io/acme/app:latest",
        "localhost/app:1": "localhost/app:1",
    }
    for same in [
        f"registry.example:5000/tools/migrate@{D_INIT}",
        f"registry.example/acme/app:v1@{D_APP_TAGGED}",
    ]:
        cases[same] = same
    for image, want in cases.items():
        assert str(canonical_ref(image)).removeprefix("docker://") == want
    assert is_digest_ref(f"nginx@{D_APP}") and not is_digest_ref("nginx:1")
    for bad in ["", "Registry.example/UPPER:1", "docker://x.io/a", "a b", "x.io/a:" + "t" * 200]:
        with pytest.raises(UsageError):
            canonical_ref(bad)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}', "not an"),
        (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', "request is missing"),
        (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
            b'"request":{"uid":7,"kind":{"kind":"Pod"},"operation":"CREATE"}}',
            "uid must be a string",
        ),
        (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","kind":"x"}',
            "duplicate JSON key",
        ),
        # (the shared bounded loader says "nested more than N levels"; either way refused)
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON|nested more than"),
        (b"{" + b" " * (4 << 20) + b"}", "limit"),
    ],
)
def test_hostile_reviews_are_refused_with_a_reason(raw: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_review(raw)


def test_hostile_objects_are_refused_not_crashed_on() -> None:
    for obj in [
        {"spec": {"containers": {"image": "x"}}},
        {"spec": {"containers": [{"image": 5}]}},
        {"spec": {"volumes": [{"image": "x.io/a:1"}]}},
        {"spec": []},
        {"spec": {"containers": [{"image": "x.io/a:" + "1" * 5000}]}},
    ]:
        with pytest.raises(InputError):
            extract_images("", "Pod", obj)
    assert extract_images("", "ConfigMap", {"data": {}}) == ()


def test_decision_cache_expires_and_keeps_errors_briefly() -> None:
    now = [0.0]
    cache: DecisionCache[str] = DecisionCache(60, error_ttl=5, max_entries=2, clock=lambda: now[0])
    cache.put("a", "allow")
    cache.put("e", "error", error=True)
    now[0] = 6
    assert cache.get("a") == "allow" and cache.get("e") is None
    cache.put("b", "x")
    cache.put("c", "y")  # bounded: the oldest goes
    assert cache.get("a") is None and cache.get("c") == "y"
    now[0] = 100
    assert cache.get("c") is None


# -- the webhook over every captured body --------------------------------------------------


def _mutated(hook: Webhook, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run /mutate on ``body`` and return (answer, body with the patch applied to its object)."""
    answer = _run(hook, "mutate", body)
    patched = copy.deepcopy(body)
    patched["request"]["object"] = jsonpatch.apply_patch(
        body["request"]["object"], _patch_of(answer)
    )
    return answer, patched


@pytest.mark.parametrize("body", BODIES, ids=lambda p: p.stem)
def test_every_captured_request_mutated_then_validated(
    body: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write = _write(body)
    doc = _load(body)
    req = doc["request"]
    is_update = req["operation"] == "UPDATE"
    decided = NEW_ON_UPDATE[write] if is_update else {image for _, image in EXPECTED_SITES[write]}
    decider = AllowList()
    hook = Webhook(decider, Settings())
    answer, patched = _mutated(hook, doc)
    resp = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert resp["uid"] == req["uid"] and resp["allowed"] is True
    # The patch pins exactly the decided tags, keeping what the user wrote in front of the digest.
    tags = {i for i in decided if not is_digest_ref(i)}
    assert {p["value"].split("@")[0] for p in _patch_of(answer)} == tags
    sites = extract_images(req["kind"]["group"], req["kind"]["kind"], patched["request"]["object"])
    for s in sites:
        assert is_digest_ref(s.image) or (is_update and s.image not in decided), s
    for p in _patch_of(answer):
        assert p["value"].endswith(
            "@" + _digest_of(str(canonical_ref(p["value"].split("@")[0])).removeprefix("docker://"))
        )

    # The validating webhook denies what is not allowed, naming the image and the policy...
    denied = _run(hook, "validate", patched)["response"]
    assert denied["uid"] == req["uid"]
    if not decided:
        assert denied["allowed"] is True and decider.calls == []
        return
    assert denied["allowed"] is False and denied["status"]["code"] == 403
    assert "failed policy: only" in denied["status"]["message"]
    for s in sites:
        if s.image in {p["value"] for p in _patch_of(answer)} or s.image in decided:
            assert (
                str(canonical_ref(s.image)).removeprefix("docker://")
                in (denied["status"]["message"])
            )
    # ... and allows once every decided digest is allowed, each image decided once per request.
    decider.allowed = {canonical_ref(s.image).digest for s in sites}
    hook2 = Webhook(decider, Settings())
    decider.calls.clear()
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    allowed = _run(hook2, "validate", patched)["response"]
    assert allowed["allowed"] is True and "status" not in allowed and "warnings" not in allowed
    assert len(decider.calls) == 1
    assert len(decider.calls[0]) == len(set(decider.calls[0]))
    audit = [json.loads(r.message) for r in caplog.records if r.name == AUDIT_LOGGER]
    if req["dryRun"]:
        assert audit == []  # decided without side effects
    else:
        assert audit and audit[-1]["uid"] == req["uid"] and audit[-1]["user"] == "admin"
        assert {i["digest"] for i in audit[-1]["images"]} <= decider.allowed
        assert all(i["evidence"] == ["sha256:" + "e" * 64] for i in audit[-1]["images"])


@pytest.mark.parametrize("name", ["02-pod-create-tag-validate.json", "26-job-create-validate.json"])
def test_validating_a_tag_denies_and_says_the_mutating_webhook_must_run(name: str) -> None:
    decider = AllowList()
    resp = _run(Webhook(decider, Settings()), "validate", _load(CAPTURE / name))["response"]
    assert resp["allowed"] is False
    assert "registry.example/acme/app:v1" in resp["status"]["message"]
    assert "must be an image digest" in resp["status"]["message"]
    assert "mutating webhook" in resp["status"]["message"].lower()
    assert decider.calls == []  # a tag is never what gets verified


def test_warn_mode_failures_become_warnings() -> None:
    doc = _load(CAPTURE / "04-pod-create-digest-validate.json")
    resp = _run(Webhook(AllowList(warn={D_APP}), Settings()), "validate", doc)["response"]
    assert resp["allowed"] is True
    assert resp["warnings"] == [
        f"registry.example/acme/app@{D_APP}: policy warn-only: no matching signatures"
    ]


def test_cache_hit_after_first_decision_and_errors_never_cached_as_allow() -> None:
    doc = _load(CAPTURE / "04-pod-create-digest-validate.json")
    decider = AllowList(allowed={D_APP})
    hook = Webhook(decider, Settings())
    for _ in range(3):
        assert _run(hook, "validate", doc)["response"]["allowed"] is True
    assert len(decider.calls) == 1
    assert hook.metrics.cache_hits._value.get() == 2

    failing = AllowList(unreachable=True)
    hook = Webhook(failing, Settings(on_error="allow", error_ttl=0.0))
    for _ in range(2):
        resp = _run(hook, "validate", doc)["response"]
        assert resp["allowed"] is False and "registry unreachable" in resp["status"]["message"]
    assert len(failing.calls) == 2  # error_ttl 0: never served from the cache


def test_cache_keys_tell_registries_and_repositories_apart() -> None:
    decider = AllowList(allowed={D_APP})
    hook = Webhook(decider, Settings())
    doc = _load(CAPTURE / "04-pod-create-digest-validate.json")
    image = f"registry.example/acme/app@{D_APP}"
    for other in [
        f"127.0.0.1:5000/acme/app@{D_APP}",
        f"127.0.0.1:5001/acme/app@{D_APP}",
        f"127.0.0.1:5001/acme/other@{D_APP}",
        image,
    ]:
        text = json.dumps(doc).replace(image, other)
        assert _run(hook, "validate", json.loads(text))["response"]["allowed"] is True
    assert len(decider.calls) == 4  # same digest, four names: four decisions


def test_namespace_exemptions_and_non_pod_kinds_are_allowed_untouched() -> None:
    doc = _load(CAPTURE / "02-pod-create-tag-validate.json")
    decider = AllowList()
    hook = Webhook(decider, Settings(exempt_namespaces=frozenset({"capture-test"})))
    assert _run(hook, "validate", doc)["response"]["allowed"] is True
    doc["request"]["namespace"] = "other"
    doc["request"]["kind"] = {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert _run(hook, "validate", doc)["response"]["allowed"] is True
    assert decider.calls == [] and decider.resolved == []


def test_deadline_denies_with_a_clear_message_or_allows_with_warning_when_fail_open() -> None:
    doc = _load(CAPTURE / "04-pod-create-digest-validate.json")
    slow = AllowList(allowed={D_APP}, delay=2.0)
    t0 = time.monotonic()
    resp = _run(Webhook(slow, Settings(deadline=0.3)), "validate", doc)["response"]
    assert time.monotonic() - t0 < 1.5
    assert resp["allowed"] is False
    assert "did not answer within 0.3s" in resp["status"]["message"]
    assert "not a policy failure" in resp["status"]["message"]
    resp = _run(Webhook(slow, Settings(deadline=0.3, on_error="allow")), "validate", doc)
    assert resp["response"]["allowed"] is True
    assert resp["response"]["warnings"][0].startswith("admitted unverified (--on-error allow")


def test_mutate_on_an_unreachable_registry_denies_or_warns() -> None:
    doc = _load(CAPTURE / "01-pod-create-tag-mutate.json")
    resp = _run(Webhook(AllowList(unreachable=True), Settings()), "mutate", doc)["response"]
    assert resp["allowed"] is False and "did not answer" in resp["status"]["message"]
    assert "registry.example/acme/app:v1" in resp["status"]["message"]
    hook = Webhook(AllowList(unreachable=True), Settings(on_error="allow"))
    resp = _run(hook, "mutate", doc)["response"]
    assert resp["allowed"] is True and "patch" not in resp and resp["warnings"]


def test_malformed_image_is_denied_naming_the_container() -> None:
    doc = _load(CAPTURE / "01-pod-create-tag-mutate.json")
    doc["request"]["object"]["spec"]["containers"][0]["image"] = "Bad Image"
    resp = _run(Webhook(AllowList(), Settings()), "mutate", doc)["response"]
    assert resp["allowed"] is False and "container 'app'" in resp["status"]["message"]
    doc["request"]["object"]["spec"]["containers"] = {"image": "x"}  # not a list
    resp = _run(Webhook(AllowList(), Settings()), "validate", doc)["response"]
    assert resp["allowed"] is False and resp["status"]["code"] == 400
    assert (
        resp["status"]["reason"] == "BadRequest" and "must be a list" in resp["status"]["message"]
    )


class _BadResolver(AllowList):
    def resolve(self, ref: str, *, credentials: Any = None) -> str:
        return "sha256:../../x"


def test_a_resolved_value_that_is_not_a_digest_never_reaches_the_patch() -> None:
    doc = _load(CAPTURE / "01-pod-create-tag-mutate.json")
    resp = _run(Webhook(_BadResolver(), Settings()), "mutate", doc)["response"]
    assert resp["allowed"] is False and "patch" not in resp
    assert "not a digest" in resp["status"]["message"]
