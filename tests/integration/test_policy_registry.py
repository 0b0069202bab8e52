"""The policy engine end to end against a real docker-registry on 127.0.0.1.

Images are pushed, signed and attested by assay (and the skopeo-signed interop vector), then
decided by ClusterImagePolicies and assay ImagePolicies.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.oci.registry import RegistryClient
from assay.policy import Engine, MatchContext, load_policies
from fixtures.assets import INTEROP
from integration.policy_helpers import (
    attest,
    cip,
    key_authority,
    new_key,
    push_image,
    sign,
    write_policy,
)
from integration.test_attest_registry import IMAGE_DIGEST, push_interop


@pytest.fixture()
def repo() -> str:
    return "policy/" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def keypair() -> tuple[Any, str]:
    return new_key()


@pytest.fixture(scope="module")
def other_keypair() -> tuple[Any, str]:
    return new_key()


def _demo(registry: Any, client: RegistryClient, repo: str, signed_by: Any = None) -> str:
    """``HOST/REPO:demo`` of a freshly pushed one-layer image, signed when ``signed_by`` (a
    signing key) is given."""
    ref = f"{registry.host}/{repo}:demo"
    push_image(client, repo, "demo")
    if signed_by is not None:
        sign(client, ref, signed_by)
    return ref


def _engine(tmp_path: Path, *docs: str, **kw: Any) -> Engine:
    paths = []
    for i, doc in enumerate(docs):
        paths.append(write_policy(tmp_path / f"p{i}.yaml", doc))
    return Engine(load_policies(paths), **kw)


def test_key_authority_signed_unsigned_other_key(
    registry: Any,
    client: RegistryClient,
    repo: str,
    tmp_path: Path,
    keypair: Any,
    other_keypair: Any,
) -> None:
    key, pub = keypair
    other, _ = other_keypair
    signed = f"{registry.host}/{repo}:signed"
    unsigned = f"{registry.host}/{repo}:unsigned"
    wrong = f"{registry.host}/{repo}:wrong"
    push_image(client, repo, "signed", label="a")
    push_image(client, repo, "unsigned", label="b")
    push_image(client, repo, "wrong", label="c")
    sign(client, signed, key)
    sign(client, wrong, other)
    with _engine(tmp_path, cip("signed-by-key", "**", key_authority(pub))) as engine:
        decision = engine.decide([signed, unsigned, wrong])
    by_ref = {i.reference: i for i in decision.images}
    assert not decision.allowed
    assert by_ref[signed].result == "allow" and by_ref[signed].status == "pass"
    assert by_ref[signed].digest and by_ref[signed].digest.startswith("sha256:")
    assert by_ref[unsigned].result == "deny"
    assert by_ref[unsigned].message == "failed policy: signed-by-key: no signatures found"
    assert by_ref[wrong].result == "deny"
    assert by_ref[wrong].message.startswith("failed policy: signed-by-key: no matching signatures")
    # the evidence used is named by digest: the image and the verified signature layer
    assert len(by_ref[signed].policies[0].authorities[0].evidence) >= 1
    json.dumps(decision.to_dict())  # JSON-ready


def test_skopeo_vector_admitted_by_its_key(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    push_interop(client, repo)
    pub = (INTEROP / "skopeo-1.13.3-cosign.pub").read_text()
    ref = f"{registry.host}/{repo}:v1"
    with _engine(tmp_path, cip("skopeo", f"{registry.host}/{repo}**", key_authority(pub))) as e:
        ok = e.decide([ref])
    assert ok.allowed and ok.images[0].digest == IMAGE_DIGEST
    _, other_pub = keypair
    with _engine(tmp_path, cip("skopeo", "**", key_authority(other_pub))) as e:
        bad = e.decide([ref])
    assert not bad.allowed
    assert "no matching signatures" in bad.images[0].message


def test_every_matching_policy_must_pass_static_fail(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    key, pub = keypair
    ref = _demo(registry, client, repo, signed_by=key)
    fail = cip("static-fail", "**", "  - static:\n      action: fail\n")
    passing = cip("static-pass", "**", "  - static:\n      action: pass\n")
    keyed = cip("key", "**", key_authority(pub))
    with _engine(tmp_path, keyed, fail, passing) as e:
        d = e.decide([ref])
    assert not d.allowed
    assert d.images[0].message == "failed policy: static-fail: disallowed by static policy"
    with _engine(tmp_path, keyed, passing) as e:
        assert e.decide([ref]).allowed


def test_any_authority_within_a_policy(
    registry: Any,
    client: RegistryClient,
    repo: str,
    tmp_path: Path,
    keypair: Any,
    other_keypair: Any,
) -> None:
    key, pub = keypair
    _, other_pub = other_keypair
    ref = _demo(registry, client, repo, signed_by=key)
    both = cip("either", "**", key_authority(other_pub, name="a") + key_authority(pub, name="b"))
    with _engine(tmp_path, both) as e:
        d = e.decide([ref])
    assert d.allowed
    statuses = [a.status for a in d.images[0].policies[0].authorities]
    assert statuses == ["fail", "pass"]


def test_warn_mode_and_no_match(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    _, pub = keypair
    ref = _demo(registry, client, repo)
    warn = cip("warn-only", "**demo**", key_authority(pub), extra="  mode: warn\n")
    with _engine(tmp_path, warn) as e:
        d = e.decide([ref])
    assert d.allowed and d.images[0].status == "warn"
    assert d.warnings[0].startswith("failed policy: warn-only: no signatures found")
    other = f"{registry.host}/{repo}:other"
    push_image(client, repo, "other", label="o")
    for setting, allowed, status in (
        ("deny", False, "fail"),
        ("warn", True, "warn"),
        ("allow", True, "pass"),
    ):
        with _engine(tmp_path, warn, no_match=setting) as e:
            d = e.decide([other])
        assert d.allowed is allowed, setting
        assert d.images[0].status == status
        assert d.images[0].message == f"no matching policies: {other}"


def test_unsupported_key_sources_are_errors_not_crashes(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    ref = _demo(registry, client, repo)
    policy = cip("secret", "**", "  - key:\n      secretRef:\n        name: cip-secret\n")
    with _engine(tmp_path, policy) as e:
        d = e.decide([ref])
    assert not d.allowed and d.images[0].status == "error"
    assert "not supported outside the cluster" in d.images[0].message
    with _engine(tmp_path, policy, on_error="allow") as e:
        d = e.decide([ref])
    assert d.allowed and d.images[0].status == "error" and d.warnings


def test_registry_down_is_an_error_not_a_fail(tmp_path: Path, keypair: Any) -> None:
    from fixtures.registry import free_port

    _, pub = keypair
    ref = f"127.0.0.1:{free_port()}/nothing/here:1"
    with _engine(tmp_path, cip("key", "**", key_authority(pub)), timeout=5) as e:
        d = e.decide([ref])
        assert not d.allowed and d.images[0].status == "error"
    with _engine(tmp_path, cip("key", "**", key_authority(pub)), on_error="allow") as e:
        d = e.decide([ref])
        assert d.allowed and d.images[0].status == "error"
        assert "on-error=allow" in d.warnings[0]


REGO = """\
      policy:
        type: rego
        data: |
          package sigstore
          default isCompliant = false
          isCompliant {
            input.predicateType == "https://cosign.sigstore.dev/attestation/v1"
            input.predicate.Data == "foobar e2e test"
          }
"""


def test_attestation_rego_pass_fail(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    key, pub = keypair
    ref = _demo(registry, client, repo, signed_by=key)
    atts = (
        "    attestations:\n    - name: custom-match-predicate\n"
        "      predicateType: https://cosign.sigstore.dev/attestation/v1\n" + REGO
    )
    policy = cip("rego", "**", key_authority(pub, extra=atts, name="att"))
    with _engine(tmp_path, policy) as e:
        d = e.decide([ref])
    assert not d.allowed
    assert d.images[0].message == "failed policy: rego: no matching attestations"
    attest(client, ref, key, "custom", b"wrong data")
    with _engine(tmp_path, policy) as e:
        d = e.decide([ref])
    assert not d.allowed
    assert (
        "failed evaluating rego policy for type custom-match-predicate: policy is not "
        "compliant for query 'isCompliant = data.sigstore.isCompliant'" in d.images[0].message
    )
    attest(client, ref, key, "custom", b"foobar e2e test")
    with _engine(tmp_path, policy) as e:
        d = e.decide([ref])
    assert d.allowed, d.images[0].message


def test_match_resource_and_labels(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    _, pub = keypair
    ref = _demo(registry, client, repo)
    match = (
        "  match:\n  - resource: pods\n    version: '*'\n"
        "    selector:\n      matchLabels:\n        match: match\n"
    )
    policy = cip("match-label", "**demo**", key_authority(pub), extra=match)
    with _engine(tmp_path, policy, no_match="allow") as e:
        blocked = e.decide([ref], context=MatchContext(labels={"match": "match"}))
        other = e.decide([ref], context=MatchContext(labels={"test": "staging"}))
        deploy = e.decide([ref], context=MatchContext(resource="deployments", group="apps"))
    assert not blocked.allowed
    assert other.allowed and other.images[0].message.startswith("no matching policies")
    assert deploy.allowed


def test_identical_images_fetched_once_and_cache(
    registry: Any,
    client: RegistryClient,
    repo: str,
    tmp_path: Path,
    keypair: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import assay.policy.engine as engine_mod

    key, pub = keypair
    digest = push_image(client, repo, "demo")
    sign(client, f"{registry.host}/{repo}:demo", key)
    calls: list[str] = []
    real = engine_mod.fetch_signed

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(args[2])
        return real(*args, **kw)

    monkeypatch.setattr(engine_mod, "fetch_signed", counting)
    by_tag = f"{registry.host}/{repo}:demo"
    by_digest = f"{registry.host}/{repo}@{digest}"
    policy = cip("key", "**", key_authority(pub))
    with _engine(tmp_path, policy, cache_size=100) as e:
        d = e.decide([by_tag, by_digest, by_tag])
        assert d.allowed and len(d.images) == 3
        assert calls == [digest]  # one evidence fetch for three references to one image
        assert e.cache_key(digest) == f"{digest}|{e.policies.digest}|deny|deny"
        again = e.decide([by_digest])
        assert calls == [digest]  # served from the decision cache
        assert again.images[0] == d.images[1]


def test_signature_format_bundle_reads_referrers_only(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    from assay.attest import remote

    key, pub = keypair
    push_image(client, repo, "legacy", label="legacy")
    push_image(client, repo, "bundle", label="bundle")
    legacy = f"{registry.host}/{repo}:legacy"
    bundled = f"{registry.host}/{repo}:bundle"
    remote.sign_image(client, remote.parse_image_ref(legacy), key, referrer=False)
    remote.sign_image(client, remote.parse_image_ref(bundled), key)
    fmt = "    signatureFormat: bundle\n"
    policy = cip("bundles", "**", key_authority(pub, extra=fmt))
    with _engine(tmp_path, policy) as e:
        d = e.decide([legacy, bundled])
    by_ref = {i.reference: i for i in d.images}
    assert by_ref[bundled].result == "allow"
    assert by_ref[legacy].result == "deny"
    assert by_ref[legacy].message == "failed policy: bundles: no signatures found"


CIP_REGO = """\
  policy:
    type: rego
    fetchConfigFile: true
    includeSpec: true
    includeObjectMeta: true
    includeTypeMeta: true
    data: |
      package sigstore
      default isCompliant = false
      isCompliant {
        input.config["linux/amd64"].config.User == "65532"
        input.spec.serviceAccountName == "builder"
        input.metadata.namespace == "prod"
        input.typemeta.kind == "Pod"
        count(input.authorityMatches.signed.signatures) >= 1
      }
"""


def test_cip_level_rego_with_config_spec_and_meta(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    key, pub = keypair
    ref = f"{registry.host}/{repo}:demo"
    digest = push_image(client, repo, "demo", user="65532")
    sign(client, ref, key)
    policy = cip("cip-rego", "**", key_authority(pub, name="signed"), extra=CIP_REGO)
    good = MatchContext(
        namespace="prod",
        spec={"serviceAccountName": "builder"},
        object_meta={"namespace": "prod", "name": "p"},
        type_meta={"kind": "Pod", "apiVersion": "v1"},
    )
    bad = MatchContext(
        spec={"serviceAccountName": "default"},
        object_meta={"namespace": "prod"},
        type_meta={"kind": "Pod", "apiVersion": "v1"},
    )
    with _engine(tmp_path, policy) as e:
        assert e.resolve(ref) == digest
        ok = e.decide([ref], context=good)
        no = e.decide([ref], context=bad)
    assert ok.allowed, ok.images[0].message
    assert not no.allowed
    assert no.images[0].message == (
        "failed policy: cip-rego: failed evaluating rego policy for ClusterImagePolicy: "
        "policy is not compliant for query 'isCompliant = data.sigstore.isCompliant'"
    )
    # the config digest is part of the evidence the decision names
    # manifest, config, the .sig layer and the signature bundle referrer (assay writes both)
    assert len(ok.images[0].evidence) == 4
    assert ok.images[0].evidence[0] == digest


def test_hostile_referrer_and_copied_signature(
    registry: Any, client: RegistryClient, repo: str, tmp_path: Path, keypair: Any
) -> None:
    import hashlib

    from assay.attest import bundle as _bundle
    from assay.attest.simplesigning import cosign_tag

    key, pub = keypair
    digest = push_image(client, repo, "good", label="good")
    other = push_image(client, repo, "victim", label="victim")
    good = f"{registry.host}/{repo}:good"
    sign(client, good, key)
    # a referrer claiming to be a Sigstore bundle whose blob is garbage
    junk = b"\x00not a bundle"
    client.upload_blob(repo, "sha256:" + hashlib.sha256(junk).hexdigest(), len(junk), junk)
    empty = _bundle.EMPTY_CONFIG
    client.upload_blob(repo, "sha256:" + hashlib.sha256(empty).hexdigest(), len(empty), empty)
    manifest = _bundle.bundle_referrer_manifest(
        junk,
        "application/vnd.oci.image.manifest.v1+json",
        digest,
        100,
        predicate_type=None,
        created="2026-01-01T00:00:00Z",
    )
    client.put_manifest(
        repo,
        "sha256:" + hashlib.sha256(manifest).hexdigest(),
        manifest,
        "application/vnd.oci.image.manifest.v1+json",
    )
    # the good image's signature manifest copied onto the other image's .sig tag
    sig = client.get_manifest(
        repo, cosign_tag(digest, "sig"), accept=("application/vnd.oci.image.manifest.v1+json",)
    )
    client.put_manifest(repo, cosign_tag(other, "sig"), sig.data, sig.media_type)
    victim = f"{registry.host}/{repo}:victim"
    expected = {
        "": "it was copied from another image",  # the .sig layer verifies but names `digest`
        "    signatureFormat: bundle\n": "no signatures found",  # no bundle for the victim
    }
    for fmt, reason in expected.items():
        with _engine(tmp_path, cip("key", "**", key_authority(pub, extra=fmt))) as e:
            d = e.decide([good, victim])
        by_ref = {i.reference: i for i in d.images}
        assert by_ref[good].result == "allow", by_ref[good].message
        assert by_ref[victim].result == "deny" and by_ref[victim].status == "fail"
        assert reason in by_ref[victim].message
