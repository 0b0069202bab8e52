"""Evidence bundles: deterministic bytes, offline verification, and every kind of tampering
(a file changed, added, removed, the manifest edited, another key, hostile members) fails."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from assay.attest import keys
from assay.compliance.bundle import MANIFEST, SIGNATURE, make_bundle, verify_bundle
from assay.errors import InputError, VerificationError

FILES = {
    "image/config.json": b'{"config":{"User":"65532"}}',
    "attestations/sbom-01.json": b'{"predicateType":"https://spdx.dev/Document"}',
    "scan/scan.json": b'{"schema":"https://assay.dev/schemas/scan/v1"}',
    "report/report.html": b"<!DOCTYPE html><title>r</title>",
}
IMAGE = {"reference": "127.0.0.1:5000/acme/app:1.4", "digest": "sha256:" + "ab" * 32}


def _key() -> keys.SigningKey:
    pem, _ = keys.generate_keypair(b"")
    return keys.load_private_key(pem, b"")


KEY = _key()


def _bundle() -> bytes:
    return make_bundle(FILES, image=IMAGE, created="2026-11-20T00:00:00Z", key=KEY, epoch=1000)


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_bundle_verifies_and_lists_its_files() -> None:
    contents = verify_bundle(_bundle(), KEY.public)
    assert contents.image == IMAGE
    assert [p for p, _, _ in contents.files] == sorted(FILES)
    assert contents.created == "2026-11-20T00:00:00Z"


def test_bundle_bytes_are_deterministic() -> None:
    assert _bundle() == _bundle()
    other = make_bundle(FILES, image=IMAGE, created="2026-11-21T00:00:00Z", key=KEY, epoch=1000)
    assert other != _bundle()


def test_rewritten_but_untouched_bundle_still_verifies() -> None:
    """The tamper tests below rewrite the tar with tarfile; unchanged, that passes."""
    assert verify_bundle(_tar(_members(_bundle())), KEY.public).image == IMAGE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update({"scan/scan.json": b"{}"}), "does not match its manifest digest"),
        (lambda m: m.update({"scan/extra.json": b"{}"}), "does not list: scan/extra.json"),
        (lambda m: m.pop("image/config.json"), "missing image/config.json"),
        (
            lambda m: m.update({MANIFEST: m[MANIFEST].replace(b"acme", b"evil")}),
            "differs from the signed manifest",
        ),
        (lambda m: m.pop(SIGNATURE), "no manifest.json or manifest.dsse.json"),
        (
            lambda m: m.update(
                {SIGNATURE: json.dumps({**json.loads(m[SIGNATURE]), "payloadType": "x/y"}).encode()}
            ),
            "does not verify",
        ),
    ],
    ids=["file-changed", "file-added", "file-removed", "manifest-edited", "unsigned", "type"],
)
def test_tampered_bundles_fail(change: object, message: str) -> None:
    members = _members(_bundle())
    change(members)  # type: ignore[operator]
    with pytest.raises(VerificationError, match=message):
        verify_bundle(_tar(members), KEY.public)


def test_another_key_fails() -> None:
    with pytest.raises(VerificationError, match="does not verify with the given key"):
        verify_bundle(_bundle(), _key().public)


def test_bundle_signed_by_another_key_fails_even_if_consistent() -> None:
    forged = make_bundle(FILES, image=IMAGE, created="2026-11-20T00:00:00Z", key=_key())
    with pytest.raises(VerificationError, match="does not verify"):
        verify_bundle(forged, KEY.public)


def test_hostile_members_are_refused() -> None:
    members = _members(_bundle())
    link = tarfile.TarInfo("scan/link.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.addfile(link)
    with pytest.raises((VerificationError, InputError)):
        verify_bundle(out.getvalue(), KEY.public)
    dotdot = dict(members)
    dotdot["../escape.json"] = b"{}"
    with pytest.raises((VerificationError, InputError)):
        verify_bundle(_tar(dotdot), KEY.public)


def test_bundle_refuses_paths_it_would_not_write() -> None:
    for bad in ("../x.json", "/etc/passwd", "manifest.json", "a/b/c/d.json"):
        with pytest.raises(InputError):
            make_bundle({bad: b"x"}, image=IMAGE, created="", key=KEY)
