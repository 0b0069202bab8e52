"""Signing, attesting and verifying images in a registry.

Every operation first resolves the image to a digest (a tag is looked up once; the manifest's
digest is computed from the bytes received) and then works only with that digest. Signatures go
to the tag ``sha256-<hex>.sig`` (a second signer appends a layer), attestations to
``sha256-<hex>.att`` and, as Sigstore bundles, to an OCI 1.1 referrer of the image.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from assay import __version__
from assay._json import load_json
from assay.attest import bundle as _bundle
from assay.attest.dsse import Envelope, sign_envelope
from assay.attest.intoto import (
    SIGN_PREDICATE_TYPE,
    build_statement,
    parse_statement,
    resolve_predicate_type,
)
from assay.attest.keys import PublicKey, SigningKey
from assay.attest.simplesigning import (
    ATTESTATION_LAYER_MEDIA_TYPE,
    MAX_PAYLOAD,
    OCI_MANIFEST_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    SignedLayer,
    append_layer,
    build_payload,
    cosign_tag,
    parse_signature_manifest,
    signature_manifest,
)
from assay.attest.verify import (
    VerifiedAttestation,
    VerifiedSignature,
    check_attestation_envelope,
    check_attestation_layer,
    check_signature_layer,
    check_statement_subject,
    summarise_failures,
)
from assay.errors import AssayError, InputError, NetworkError, UsageError, VerificationError
from assay.oci.digest import sha256_digest
from assay.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from assay.oci.model import Descriptor, index_descriptors, parse_index
from assay.oci.reference import ImageRef as OciImageRef
from assay.oci.reference import parse_image_ref as _parse_oci_ref
from assay.oci.registry import NotFoundError, RegistryClient

__all__ = [
    "Checked",
    "ImageRef",
    "ResolvedImage",
    "SignResult",
    "Subject",
    "attest_image",
    "dedupe_attestations",
    "parse_image_ref",
    "platform_matches",
    "resolve",
    "sign_image",
    "sign_image_recursive",
    "subjects",
    "verify_image",
    "verify_image_attestations",
    "verify_image_keyless",
    "verify_recursive",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_ENVELOPE_BLOB = 16 << 20
_MAX_BUNDLE_REFERRERS = 100
_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """``HOST/REPO[:TAG][@sha256:…]`` split into its parts."""

    host: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @classmethod
    def from_reference(cls, ref: OciImageRef) -> ImageRef:
        """From ``assay.oci.reference.ImageRef``; only registry references can be signed."""
        if not ref.is_registry:
            raise UsageError(
                f"{ref} is not in a registry; signatures and attestations live in a registry — "
                "push the image first (assay push) and use the registry reference"
            )
        return cls(ref.registry, ref.repository, ref.tag or None, ref.digest or None)


def parse_image_ref(text: str) -> ImageRef:
    """Parse a registry reference ``[docker://]HOST/REPO[:TAG][@sha256:…]`` (no tag → latest)."""
    parsed = ImageRef.from_reference(_parse_oci_ref(text))
    if parsed.digest is not None and not _DIGEST_RE.match(parsed.digest):
        raise UsageError(f"{text!r}: assay verifies sha256 digests only")
    if parsed.tag is None and parsed.digest is None:
        return ImageRef(parsed.host, parsed.repository, "latest", None)
    return parsed


@dataclass(frozen=True)
class ResolvedImage:
    """An image pinned to a digest."""

    ref: ImageRef
    digest: str
    media_type: str
    size: int

    @property
    def pinned(self) -> str:
        return f"{self.ref.name}@{self.digest}"


def resolve(client: RegistryClient, ref: ImageRef) -> ResolvedImage:
    """Look the image up once and pin it to the digest of the manifest bytes received."""
    reference = ref.digest or ref.tag or "latest"
    try:
        fetched = client.get_manifest(ref.repository, reference)
    except NotFoundError as exc:
        raise VerificationError(f"image {ref} not found in the registry") from exc
    if ref.digest and fetched.digest != ref.digest:  # the client checks this too
        raise VerificationError(
            f"registry returned a manifest with digest {fetched.digest} for {ref.digest}"
        )
    return ResolvedImage(ref, fetched.digest, fetched.media_type, fetched.size)


@dataclass(frozen=True)
class Subject:
    """One image a recursive operation works on: ``platform`` is ``os/arch[/variant]`` for a
    platform manifest of an index, ``""`` for the image the reference names itself."""

    platform: str
    image: ResolvedImage

    @property
    def label(self) -> str:
        return self.platform or ("index" if self.image.media_type in INDEX_TYPES else "image")


_MAX_PLATFORMS = 256


def _is_attestation_entry(desc: Descriptor) -> bool:
    """buildkit's attestation manifests (platform unknown/unknown) are not platform images."""
    if (desc.annotations or {}).get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    return desc.platform is not None and desc.platform.os == "unknown"


def platform_matches(platform: str, want: str) -> bool:
    """``os/arch`` matches any variant; ``os/arch/variant`` only that variant."""
    return platform == want or (want.count("/") == 1 and platform.rsplit("/", 1)[0] == want)


def subjects(
    client: RegistryClient, image: ResolvedImage, *, platform: str | None = None
) -> list[Subject]:
    """What to sign or verify for ``image``, recursively.

    A single manifest is itself. An index is itself followed by each platform manifest it lists
    (as ``cosign sign --recursive`` signs them); with ``platform`` (``os/arch[/variant]``) only
    that platform's manifest. Nested indexes and attestation manifests are skipped.
    """
    if image.media_type not in INDEX_TYPES:
        return [Subject("", image)]
    fetched = client.get_manifest(image.ref.repository, image.digest, accept=tuple(INDEX_TYPES))
    doc = parse_index(fetched.data, media_type=fetched.media_type)
    children: list[Subject] = []
    for desc in index_descriptors(doc):
        if desc.media_type not in MANIFEST_TYPES or _is_attestation_entry(desc):
            continue
        name = str(desc.platform) if desc.platform else "unknown"
        pinned = ImageRef(image.ref.host, image.ref.repository, None, str(desc.digest))
        children.append(
            Subject(name, ResolvedImage(pinned, desc.digest, desc.media_type, desc.size))
        )
    if len(children) > _MAX_PLATFORMS:
        raise VerificationError(
            f"{image.pinned} lists {len(children)} platform images; assay checks at most "
            f"{_MAX_PLATFORMS}"
        )
    if platform is None:
        return [Subject("", image), *children]
    chosen = [c for c in children if platform_matches(c.platform, platform)]
    if not chosen:
        have = ", ".join(c.platform for c in children) or "none"
        raise VerificationError(f"{image.pinned} has no {platform} image (it has: {have})")
    return chosen


def _timestamp() -> int:
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde is not None:
        try:
            return int(sde)
        except ValueError as exc:
            raise UsageError(f"SOURCE_DATE_EPOCH={sde!r} is not an integer") from exc
    return int(time.time())


def _rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _existing_layers(client: RegistryClient, repository: str, tag: str) -> list[SignedLayer]:
    """The usable layers of the cosign tag; a malformed tag manifest is skipped with a warning
    (it can only lose evidence, never add any: nothing from it is counted as verified)."""
    try:
        fetched = client.get_manifest(repository, tag, accept=(OCI_MANIFEST_MEDIA_TYPE,))
        return parse_signature_manifest(fetched.data)
    except NotFoundError:
        return []
    except (InputError, VerificationError) as exc:
        _log.warning("skipping %s:%s: %s", repository, tag, exc)
        return []


def _skip(failures: list[str], exc: AssayError) -> None:
    """Record why one candidate (layer, referrer, bundle) did not verify, and warn."""
    _log.warning("skipping: %s", exc)
    failures.append(str(exc))


def _put_signature_image(
    client: RegistryClient, repository: str, tag: str, layers: list[SignedLayer]
) -> str:
    manifest, config = signature_manifest(layers)
    client.upload_blob(repository, sha256_digest(config), len(config), config)
    return client.put_manifest(repository, tag, manifest, OCI_MANIFEST_MEDIA_TYPE)


@dataclass(frozen=True)
class SignResult:
    image: ResolvedImage
    tag: str
    manifest_digest: str | None
    added: bool


def sign_image(
    client: RegistryClient, ref: ImageRef, key: SigningKey, *, referrer: bool = True
) -> SignResult:
    """Sign the image. Re-signing with a key that already signed is a no-op.

    Writes cosign's legacy layout (a layer of the ``sha256-<hex>.sig`` image) and, unless
    ``referrer`` is False, cosign v3's: a Sigstore bundle referrer holding a DSSE statement of
    type ``https://sigstore.dev/cosign/sign/v1`` whose subject is the image digest.
    """
    image = resolve(client, ref)
    tag = cosign_tag(image.digest, "sig")
    existing = _existing_layers(client, ref.repository, tag)
    for layer in existing:
        if layer.media_type != SIMPLESIGNING_MEDIA_TYPE or layer.size > MAX_PAYLOAD:
            continue
        try:
            blob = client.get_blob(ref.repository, layer.digest, size=layer.size)
            check_signature_layer(layer, blob, image.digest, key.public)
        except AssayError:
            continue
        _log.info("%s is already signed with this key", image.pinned)
        return SignResult(image, tag, None, False)
    now = _timestamp()
    optional = {"creator": f"assay {__version__}", "timestamp": now}
    payload = build_payload(ref.name, image.digest, optional)
    signature = key.sign(payload)
    layer = SignedLayer(
        SIMPLESIGNING_MEDIA_TYPE,
        sha256_digest(payload),
        len(payload),
        {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode("ascii")},
    )
    client.upload_blob(ref.repository, layer.digest, layer.size, payload)
    digest = _put_signature_image(client, ref.repository, tag, append_layer(existing, layer))
    if referrer:
        statement = build_statement(
            ref.name,
            image.digest.split(":", 1)[1],
            SIGN_PREDICATE_TYPE,
            b"{}",
            timestamp=_rfc3339(now),
        )
        _put_bundle_referrer(client, image, sign_envelope(key, statement), key, now)
    return SignResult(image, tag, digest, True)


def sign_image_recursive(
    client: RegistryClient, ref: ImageRef, key: SigningKey, *, referrer: bool = True
) -> list[SignResult]:
    """Sign the image and, for an index, every platform manifest (``cosign sign --recursive``).

    skopeo and podman verify the signature of the platform manifest they pull, so an index
    signed alone is rejected by them.
    """
    image = resolve(client, ref)
    out: list[SignResult] = []
    for subject in subjects(client, image):
        target = ref if subject.image is image else subject.image.ref
        out.append(sign_image(client, target, key, referrer=referrer))
    return out


def _put_bundle_referrer(
    client: RegistryClient, image: ResolvedImage, envelope: Envelope, key: SigningKey, now: int
) -> str:
    """Store a key-signed DSSE bundle as an OCI 1.1 referrer of ``image``."""
    repo = image.ref.repository
    statement = parse_statement(envelope.payload)
    bundle_json = _bundle.build_key_bundle(envelope, key.public)
    client.upload_blob(repo, sha256_digest(bundle_json), len(bundle_json), bundle_json)
    empty = _bundle.EMPTY_CONFIG
    client.upload_blob(repo, sha256_digest(empty), len(empty), empty)
    manifest = _bundle.bundle_referrer_manifest(
        bundle_json,
        image.media_type,
        image.digest,
        image.size,
        predicate_type=statement.predicate_type,
        created=_rfc3339(now),
    )
    return client.put_manifest(repo, sha256_digest(manifest), manifest, OCI_MANIFEST_MEDIA_TYPE)


def verify_image(
    client: RegistryClient, ref: ImageRef, key: PublicKey
) -> tuple[ResolvedImage, list[VerifiedSignature]]:
    """Verify the image's signatures with ``key``; at least one must verify.

    cosign's legacy ``.sig`` layout is checked first; only when none of those verifies are
    cosign v3 signature bundles (OCI 1.1 referrers) consulted.
    """
    image = resolve(client, ref)
    tag = cosign_tag(image.digest, "sig")
    layers = _existing_layers(client, ref.repository, tag)
    verified: list[VerifiedSignature] = []
    failures: list[str] = []
    for layer in layers:
        try:
            if layer.size > MAX_PAYLOAD:
                raise VerificationError(f"signature payload is {layer.size} bytes; too large")
            blob = client.get_blob(ref.repository, layer.digest, size=layer.size)
            verified.append(check_signature_layer(layer, blob, image.digest, key))
        except NotFoundError:
            failures.append(f"payload blob {layer.digest} is missing from the registry")
        except (InputError, VerificationError) as exc:
            _skip(failures, exc)
    if verified:
        return image, verified
    bundles = _bundle_blobs(client, image, failures, predicate_type=SIGN_PREDICATE_TYPE)
    for manifest_digest, raw in bundles:
        try:
            doc = _bundle.parse_bundle(raw)
            if "publicKey" not in doc["verificationMaterial"]:
                continue  # keyless: verified with --certificate-identity instead
            if "dsseEnvelope" not in doc:
                raise VerificationError("signature bundle holds no DSSE envelope")
            envelope = Envelope.from_dict(doc["dsseEnvelope"])
            att = check_attestation_envelope(envelope, image.digest, key, "referrer-bundle")
            if att.predicate_type != SIGN_PREDICATE_TYPE:
                raise VerificationError(
                    f"signature bundle holds a {att.predicate_type} statement, "
                    f"not {SIGN_PREDICATE_TYPE}"
                )
            verified.append(_bundle_signature(att, manifest_digest))
        except (InputError, VerificationError) as exc:
            _skip(failures, exc)
    if not verified:
        if not layers and not bundles and not failures:
            raise VerificationError(
                f"no cosign signatures found for {image.pinned} (no tag {tag} and no signature "
                "bundle referrers); sign it first"
            )
        raise VerificationError(
            summarise_failures(f"no valid signature for {image.pinned}", failures)
        )
    return image, verified


def _bundle_signature(att: VerifiedAttestation, manifest_digest: str) -> VerifiedSignature:
    """A verified cosign v3 signature statement, shown as ``cosign verify`` shows it."""
    subjects = att.statement.get("subject") or [{}]
    name = subjects[0].get("name", "") if isinstance(subjects[0], dict) else ""
    payload = {
        "critical": {
            "identity": {"docker-reference": name},
            "image": {"docker-manifest-digest": att.image_digest},
            "type": SIGN_PREDICATE_TYPE,
        },
        "optional": {},
    }
    return VerifiedSignature(att.image_digest, str(name), manifest_digest, payload)


def attest_image(
    client: RegistryClient,
    ref: ImageRef,
    key: SigningKey,
    predicate_type: str,
    predicate: bytes,
    *,
    referrer: bool = True,
) -> tuple[ResolvedImage, str]:
    """Attach a signed in-toto statement: as a ``.att`` layer and as a bundle referrer.

    Returns the image and the predicate type URI.
    """
    uri = resolve_predicate_type(predicate_type)
    image = resolve(client, ref)
    now = _timestamp()
    statement = build_statement(
        ref.name, image.digest.split(":", 1)[1], predicate_type, predicate, timestamp=_rfc3339(now)
    )
    envelope = sign_envelope(key, statement)
    # 1. cosign's tag layout
    blob = envelope.to_json()
    layer = SignedLayer(
        ATTESTATION_LAYER_MEDIA_TYPE,
        sha256_digest(blob),
        len(blob),
        {SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: uri},
    )
    client.upload_blob(ref.repository, layer.digest, layer.size, blob)
    tag = cosign_tag(image.digest, "att")
    existing = _existing_layers(client, ref.repository, tag)
    _put_signature_image(client, ref.repository, tag, append_layer(existing, layer))
    # 2. OCI 1.1 referrer holding a Sigstore bundle (cosign v3's default)
    if referrer:
        _put_bundle_referrer(client, image, envelope, key, now)
    return image, uri


def _bundle_blobs(
    client: RegistryClient,
    image: ResolvedImage,
    failures: list[str],
    *,
    predicate_type: str | None = None,
) -> list[tuple[str, bytes]]:
    """(manifest digest, bundle bytes) of the Sigstore bundle referrers of the image.

    ``predicate_type`` preselects by the referrer's ``dev.sigstore.bundle.predicateType``
    annotation (a hint only: callers still check the verified statement's type).
    """
    repo = image.ref.repository
    out: list[tuple[str, bytes]] = []
    bundles = [
        d
        for d in client.referrers(repo, image.digest)
        if d.artifact_type in _bundle.BUNDLE_MEDIA_TYPES_ACCEPTED
        and (
            predicate_type is None
            or (d.annotations or {}).get(_PREDICATE_ANNOTATION, predicate_type) == predicate_type
        )
    ]
    if len(bundles) > _MAX_BUNDLE_REFERRERS:
        failures.append(
            f"{len(bundles)} bundle referrers; only the first {_MAX_BUNDLE_REFERRERS} were checked"
        )
        bundles = bundles[:_MAX_BUNDLE_REFERRERS]
    for desc in bundles:
        try:
            fetched = client.get_manifest(repo, desc.digest, accept=(OCI_MANIFEST_MEDIA_TYPE,))
            doc = fetched.json()
            subject = doc.get("subject")
            if not isinstance(subject, dict) or subject.get("digest") != image.digest:
                raise VerificationError(
                    f"referrer {fetched.digest} does not name this image as its subject"
                )
            layers = doc.get("layers")
            if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
                raise VerificationError(f"referrer {fetched.digest} must have exactly one layer")
            layer = layers[0]
            size = layer.get("size")
            if type(size) is not int or size > _bundle.MAX_BUNDLE:
                raise VerificationError(f"referrer {fetched.digest} bundle size is invalid")
            blob = client.get_blob(repo, str(layer.get("digest")), size=size)
            out.append((fetched.digest, blob))
        except NotFoundError:
            failures.append(f"referrer {desc.digest} or its bundle is missing")
        except NetworkError:
            raise  # the registry failing is an error, never a skipped candidate
        except AssayError as exc:
            _skip(failures, exc)
    return out


def verify_image_attestations(
    client: RegistryClient, ref: ImageRef, key: PublicKey, predicate_type: str | None
) -> tuple[ResolvedImage, list[VerifiedAttestation]]:
    """Verify the image's attestations with ``key``, from ``.att`` and bundle referrers.

    With ``predicate_type`` (alias or URI) only statements of that type count. At least one
    must verify.
    """
    want = resolve_predicate_type(predicate_type) if predicate_type else None
    image = resolve(client, ref)
    failures: list[str] = []
    verified: list[VerifiedAttestation] = []
    for layer in _existing_layers(client, ref.repository, cosign_tag(image.digest, "att")):
        if want and layer.annotations.get(PREDICATE_TYPE_ANNOTATION) not in (None, want):
            continue
        try:
            if layer.size > _MAX_ENVELOPE_BLOB:
                raise VerificationError(f"attestation layer is {layer.size} bytes; too large")
            blob = client.get_blob(ref.repository, layer.digest, size=layer.size)
            known = {a.payload_digest: a for a in verified}
            att = check_attestation_layer(layer, blob, image.digest, key, known)
            if want and att.predicate_type != want:
                raise VerificationError(
                    f"attestation predicate type is {att.predicate_type}, not {want}"
                )
            verified.append(att)
        except NotFoundError:
            failures.append(f"attestation blob {layer.digest} is missing from the registry")
        except (InputError, VerificationError) as exc:
            _skip(failures, exc)
    for _digest, raw in _bundle_blobs(client, image, failures, predicate_type=want):
        try:
            doc = _bundle.parse_bundle(raw)
            if "publicKey" not in doc["verificationMaterial"]:
                continue  # keyless bundle: verified with --certificate-identity instead
            if "dsseEnvelope" not in doc:
                raise VerificationError("bundle holds no DSSE envelope")
            envelope = Envelope.from_dict(doc["dsseEnvelope"])
            known = {a.payload_digest: a for a in verified}
            att = check_attestation_envelope(envelope, image.digest, key, "referrer-bundle", known)
            if want and att.predicate_type != want:
                continue
            if not want and att.predicate_type == SIGN_PREDICATE_TYPE:
                continue  # an image signature, not an attestation
            verified.append(att)
        except (InputError, VerificationError) as exc:
            _skip(failures, exc)
    if not verified:
        what = f"no valid attestation{' of type ' + want if want else ''} for {image.pinned}"
        if not failures:
            what += " (none attached)"
            if image.media_type in INDEX_TYPES:
                what += (
                    "; it is an image index — attestations usually sit on its platform "
                    "manifests: verify every platform (the CLI does) or name one with --platform"
                )
        raise VerificationError(summarise_failures(what, failures))
    return image, dedupe_attestations(verified)


def dedupe_attestations(atts: list[VerifiedAttestation]) -> list[VerifiedAttestation]:
    """One entry per signed statement: the same DSSE payload found in the ``.att`` tag and in a
    bundle referrer is one attestation (its ``source`` names both places)."""
    first: dict[str, int] = {}
    out: list[VerifiedAttestation] = []
    for att in atts:
        key = att.payload_digest or json.dumps(att.statement, sort_keys=True)
        if key in first:
            i = first[key]
            if att.source not in out[i].source.split("+"):
                out[i] = dataclasses.replace(out[i], source=f"{out[i].source}+{att.source}")
            continue
        first[key] = len(out)
        out.append(att)
    return out


@dataclass(frozen=True)
class Checked(Generic[T]):
    """What verification found for one subject. ``covered_by_index``: the platform has no
    attestation of its own but the index (whose digest pins it) has a valid one."""

    subject: Subject
    results: tuple[T, ...]
    covered_by_index: bool = False


def verify_recursive(
    client: RegistryClient,
    ref: ImageRef,
    verify_one: Callable[[RegistryClient, ImageRef], tuple[ResolvedImage, list[T]]],
    *,
    platform: str | None = None,
    index_covers: bool = False,
) -> tuple[ResolvedImage, list[Checked[T]]]:
    """Run ``verify_one`` on the image and, for an index, on every platform manifest (or only
    ``platform``). Every checked subject must verify, or VerificationError names each failure.

    ``index_covers`` (attestations): the index's own attestations are optional and, when valid,
    cover each platform that has none of its own; the index is checked with ``platform`` too.
    """
    image = resolve(client, ref)
    todo = subjects(client, image, platform=platform)
    is_index = image.media_type in INDEX_TYPES
    index_result: tuple[T, ...] = ()
    index_error: str | None = None
    out: list[Checked[T]] = []
    failures: list[str] = []
    if is_index and index_covers:
        try:
            index_result = tuple(verify_one(client, _pinned(image))[1])
        except VerificationError as exc:
            index_error = str(exc)
        todo = [s for s in todo if s.platform]
    for subject in todo:
        target = _pinned(subject.image)
        try:
            _, results = verify_one(client, target)
            out.append(Checked(subject, tuple(results)))
        except VerificationError as exc:
            if index_result:
                out.append(Checked(subject, (), covered_by_index=True))
                continue
            where = f"{subject.label}: " if is_index else ""
            failures.append(where + str(exc))
    if failures:
        if is_index and not index_covers and platform is None:
            failures.append(
                "an index and each of its platform manifests must be signed (assay sign "
                "--recursive); or check one platform with --platform"
            )
        if index_error and index_covers:
            failures.append(f"index: {index_error}")
        raise VerificationError("; ".join(dict.fromkeys(failures)))
    if index_result:
        out.insert(0, Checked(Subject("", image), index_result))
    return image, out


def _pinned(image: ResolvedImage) -> ImageRef:
    return ImageRef(image.ref.host, image.ref.repository, None, image.digest)


def verify_image_keyless(
    client: RegistryClient,
    ref: ImageRef,
    *,
    identity: str,
    issuer: str,
    staging: bool = False,
    offline: bool = True,
    predicate_type: str | None = None,
) -> tuple[ResolvedImage, list[VerifiedAttestation]]:
    """Verify keyless Sigstore bundles attached to the image as referrers (DSSE statements).

    With ``predicate_type`` (a URI; ``SIGN_PREDICATE_TYPE`` for image signatures) only
    statements of that type count.
    """
    image = resolve(client, ref)
    failures: list[str] = []
    verified: list[VerifiedAttestation] = []
    bundles = _bundle_blobs(client, image, failures, predicate_type=predicate_type)
    for _digest, raw in bundles:
        try:
            doc = _bundle.parse_bundle(raw)
            if "publicKey" in doc["verificationMaterial"]:
                continue
            if "dsseEnvelope" not in doc:
                raise VerificationError(
                    "keyless message-signature bundles on images are not supported yet"
                )
            result = _bundle.verify_keyless(
                raw, identity=identity, issuer=issuer, staging=staging, offline=offline
            )
            assert result.payload is not None
            statement = parse_statement(result.payload)
            check_statement_subject(statement, image.digest)
            if predicate_type and statement.predicate_type != predicate_type:
                raise VerificationError(
                    f"keyless bundle holds a {statement.predicate_type} statement, "
                    f"not {predicate_type}"
                )
            verified.append(
                VerifiedAttestation(
                    image.digest,
                    statement.predicate_type,
                    "referrer-bundle",
                    load_json(result.payload, what="attestation payload", max_size=16 << 20),
                    sha256_digest(result.payload),
                )
            )
        except (InputError, VerificationError) as exc:
            _skip(failures, exc)
    if not verified:
        kind = "signature" if predicate_type == SIGN_PREDICATE_TYPE else "attestation"
        what = f"no valid keyless {kind}"
        if predicate_type and predicate_type != SIGN_PREDICATE_TYPE:
            what += f" of type {predicate_type}"
        raise VerificationError(summarise_failures(f"{what} for {image.pinned}", failures))
    return image, dedupe_attestations(verified)
