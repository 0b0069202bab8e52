"""Gather an image's verified evidence for the compliance evaluation.

Signatures and attestations count only when they verify with the given key (attest/remote.py);
the image config is the one the verified digest names; the scan is the newest verified scan
attestation, or a fresh scan against the advisory DB when one is given; the policy decision
comes from the policy engine; first-seen and due dates come from the store when one is given.
A registry that cannot be reached raises (NetworkError): it is never a pass.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from assay._json import load_json
from assay.attest.intoto import ASSAY_SCAN_SCHEMA as ASSAY_SCAN
from assay.attest.keys import PublicKey
from assay.attest.verify import VerifiedAttestation
from assay.compliance.evaluate import deadline
from assay.compliance.model import EvidenceRef, ImageEvidence, ReportFinding
from assay.errors import InputError, VerificationError
from assay.oci.digest import sha256_digest
from assay.policy import Engine
from assay.policy.evidence import SignedEvidence
from assay.vuln.model import ScanResult

__all__ = [
    "attestation_ref",
    "canonical_digest",
    "collect",
    "findings_from_scan",
    "scan_of",
]

log = logging.getLogger(__name__)

SPDX = "https://spdx.dev/Document"
CYCLONEDX = "https://cyclonedx.org/bom"
OPENVEX_PREFIX = "https://openvex.dev/ns"
COSIGN_VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
PROVENANCE = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")


def canonical_json(doc: Any) -> bytes:
    """A JSON value's canonical form (sorted keys, no spaces, UTF-8)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_digest(doc: Any) -> str:
    """sha256 of a JSON value's canonical form."""
    return str(sha256_digest(canonical_json(doc)))


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value[:200] if isinstance(value, str) else ""


def _kind(predicate_type: str) -> str:
    if predicate_type in (SPDX, CYCLONEDX):
        return "sbom"
    if predicate_type in PROVENANCE:
        return "provenance"
    if predicate_type in (COSIGN_VULN, ASSAY_SCAN):
        return "scan"
    if predicate_type.startswith(OPENVEX_PREFIX):
        return "vex"
    return "attestation"


def attestation_ref(att: VerifiedAttestation) -> EvidenceRef:
    """What an auditor needs to know about one verified statement."""
    pred = _obj(att.statement.get("predicate"))
    kind = _kind(att.predicate_type)
    date = tool = ""
    if att.predicate_type == SPDX:
        info = _obj(pred.get("creationInfo"))
        date = _str(info.get("created"))
        creators = info.get("creators")
        if isinstance(creators, list):
            tool = ", ".join(c for c in creators[:5] if isinstance(c, str) and c.startswith("Tool"))
    elif att.predicate_type == CYCLONEDX:
        meta = _obj(pred.get("metadata"))
        date = _str(meta.get("timestamp"))
        comps = _obj(meta.get("tools")).get("components")
        if isinstance(comps, list) and comps and isinstance(comps[0], dict):
            tool = f"{_str(comps[0].get('name'))} {_str(comps[0].get('version'))}".strip()
    elif kind == "provenance":
        build = _obj(pred.get("runDetails"))
        date = _str(_obj(build.get("metadata")).get("finishedOn"))
        tool = _str(_obj(build.get("builder")).get("id")) or _str(
            _obj(pred.get("builder")).get("id")
        )
    elif att.predicate_type == COSIGN_VULN:
        date = _str(_obj(pred.get("metadata")).get("scanFinishedOn"))
        scanner = _obj(pred.get("scanner"))
        tool = f"{_str(scanner.get('uri'))} {_str(scanner.get('version'))}".strip()
    elif kind == "vex":
        date = _str(pred.get("timestamp"))
        tool = _str(pred.get("tooling"))
    return EvidenceRef(
        kind=kind,
        digest=canonical_digest(att.statement),
        date=date,
        tool=tool,
        detail=f"{att.predicate_type} ({att.source})",
    )


def scan_of(att: VerifiedAttestation) -> ScanResult | None:
    """The assay scan result a verified scan attestation holds (bare or in cosign's wrapper)."""
    from assay.errors import InputError
    from assay.vuln.formats.json_format import result_from_json

    pred = _obj(att.statement.get("predicate"))
    doc = pred
    if att.predicate_type == COSIGN_VULN:
        doc = _obj(_obj(pred.get("scanner")).get("result"))
    if doc.get("schema") != ASSAY_SCAN:
        return None
    try:
        return result_from_json(doc, "scan attestation")
    except InputError as exc:
        log.warning("ignoring scan attestation: %s", exc)
        return None


def findings_from_scan(
    result: ScanResult, scan_day: str, store_rows: dict[tuple[str, str], dict[str, str]]
) -> list[ReportFinding]:
    """Open (unsuppressed) findings with dates: the store's first-seen/due dates win, then the
    scan's, then the scan day; the deadline is the FedRAMP one by severity or the KEV due date."""
    out: list[ReportFinding] = []
    seen: set[tuple[str, str]] = set()
    for f in result.findings:
        if f.suppressed:
            continue
        row = store_rows.get((f.id, f.package), {})
        seen.add((f.id, f.package))
        first = row.get("first_seen") or f.first_seen or scan_day
        kev_due = row.get("kev_due") or f.kev_due
        due = row.get("due_date") or deadline(f.severity.value, first, kev_due)
        out.append(
            ReportFinding(
                vuln=f.id,
                package=f.package,
                version=f.version,
                severity=f.severity.value,
                fixed_in=f.fixed_in,
                kev=f.kev or bool(kev_due),
                kev_due=kev_due[:10],
                first_seen=first[:10],
                due_date=due[:10],
                source="store" if row else "scan",
            )
        )
    return out


def _pick_config(configs: dict[str, dict[str, Any]], digests: dict[str, str]) -> tuple[str, str]:
    for key in ("linux/amd64", *sorted(configs)):
        if key in configs:
            return key, digests[key]
    return "", ""


def collect(
    reference: str,
    key: PublicKey,
    *,
    insecure: bool = False,
    engine: Engine | None = None,
    policy_digest: str = "",
    db_path: Path | None = None,
    store_url: str | None = None,
    today: _dt.date,
) -> ImageEvidence:
    """Verify and gather everything about ``reference`` (a registry image)."""
    from assay.attest import remote
    from assay.oci.registry import RegistryClient
    from assay.policy.evidence import fetch_image, fetch_signed

    ref = remote.parse_image_ref(reference)
    items: list[EvidenceRef] = []
    documents: dict[str, bytes] = {}
    problems: list[str] = []
    atts: list[VerifiedAttestation] = []
    by_payload: dict[str, EvidenceRef] = {}  # attestation evidence by signed payload digest
    with RegistryClient(ref.host, insecure=insecure) as client:
        image = remote.resolve(client, ref)
        ref = remote.ImageRef(ref.host, ref.repository, None, image.digest)  # pin: one image
        try:
            _, sigs = remote.verify_image(client, ref, key)
            for s in sigs:
                items.append(EvidenceRef("signature", s.layer_digest, detail="cosign signature"))
                documents[f"signatures/{_hex(s.layer_digest)}.json"] = canonical_json(s.payload)
        except VerificationError as exc:
            problems.append(f"signatures: {exc}")
        try:
            _, atts = remote.verify_image_attestations(client, ref, key, None)
            for a in atts:
                item = attestation_ref(a)
                items.append(item)
                by_payload[a.payload_digest] = item
                documents[f"attestations/{item.kind}-{_hex(item.digest)}.json"] = canonical_json(
                    a.statement
                )
        except VerificationError as exc:
            problems.append(f"attestations: {exc}")
        with ThreadPoolExecutor(max_workers=4) as pool:
            fetched = fetch_image(client, ref.repository, image.digest, pool, want_config=True)
            signed = fetch_signed(client, ref.repository, image.digest, pool)
        documents.update(_as_fetched(signed, items, by_payload))
        config: dict[str, Any] | None = None
        if fetched.config_error:
            problems.append(f"config: {fetched.config_error}")
        else:
            platform, cdigest = _pick_config(fetched.configs, fetched.config_digests)
            if platform:
                config = fetched.configs[platform]
                documents["image/config.json"] = canonical_json(config)
                items.append(
                    EvidenceRef(
                        "config",
                        cdigest,
                        date=_str(config.get("created")),
                        detail=f"image config ({platform})",
                    )
                )
    pinned = image.pinned
    # the scan: a fresh one against the advisory DB, else the newest verified attestation
    scan: ScanResult | None = None
    scan_date = ""
    if db_path is not None:
        scan = _fresh_scan(pinned, db_path, today, insecure)
        scan_date = today.isoformat()
        from assay.vuln.formats.json_format import result_to_json

        documents["scan/scan.json"] = canonical_json(result_to_json(scan))
        dbs = ", ".join(f"{k} {v}" for k, v in sorted(scan.db_built.items()))
        items.append(
            EvidenceRef(
                "scan",
                canonical_digest(result_to_json(scan)),
                date=scan_date,
                tool=f"assay {_assay_version()}",
                detail=f"scan against the advisory DB ({dbs})",
            )
        )
    else:
        scans = [(attestation_ref(a), a) for a in atts if _kind(a.predicate_type) == "scan"]
        scans.sort(key=lambda p: (p[0].date, p[0].digest))
        for ref_item, att in reversed(scans):
            scan = scan_of(att)
            if scan is not None:
                scan_date = ref_item.date
                documents["scan/scan.json"] = canonical_json(att.statement.get("predicate"))
                break
    store_rows: dict[tuple[str, str], dict[str, str]] = {}
    if store_url is not None:
        store_rows = _store_findings(store_url, image.digest)
        items.append(
            EvidenceRef(
                "findings", image.digest, detail=f"{len(store_rows)} open finding(s) in the store"
            )
        )
    findings = findings_from_scan(scan, scan_date or today.isoformat(), store_rows) if scan else []
    decision = None
    if engine is not None:
        decision = engine.decide([pinned])
        documents["policy/decision.json"] = canonical_json(decision.to_dict())
        items.append(
            EvidenceRef(
                "decision",
                policy_digest or canonical_digest(decision.to_dict()),
                detail="policy decision",
            )
        )
    # an attestation stored both as a .att layer and a bundle referrer is one piece of evidence
    unique = {(i.kind, i.digest): i for i in reversed(items)}
    return ImageEvidence(
        reference=reference,
        digest=image.digest,
        items=tuple(i for i in items if unique[(i.kind, i.digest)] is i),
        config=config,
        scan_date=scan_date,
        findings=tuple(findings),
        decision=decision,
        policy_digest=policy_digest,
        problems=tuple(problems),
        documents=tuple(sorted(documents.items())),
    )


def _payload_digest(envelope_doc: Any) -> str:
    """The sha256 of the statement bytes inside a DSSE envelope document ("" if none).

    Matched against :attr:`VerifiedAttestation.payload_digest`: parsing the statement again to
    compare canonical digests held a second parsed copy of a 10 MB statement (~350 MB) next to
    the verified one.
    """
    import hashlib

    from assay.attest.dsse import Envelope

    try:
        env = Envelope.from_dict(envelope_doc)
    except (VerificationError, InputError):
        return ""
    return "sha256:" + hashlib.sha256(env.payload).hexdigest()


def _as_fetched(
    signed: SignedEvidence, items: list[EvidenceRef], by_payload: dict[str, EvidenceRef]
) -> dict[str, bytes]:
    """The registry bytes behind the verified evidence: cosign signature payloads with their
    annotations (signature, certificate), DSSE envelopes and Sigstore bundles, kept only when
    they carry a statement or signature that verified above."""
    import base64

    sig_layers = {i.digest for i in items if i.kind == "signature"}
    out: dict[str, bytes] = {}
    for blob in signed.signatures:
        if blob.data is not None and blob.layer is not None and blob.digest in sig_layers:
            doc = {
                "payload": base64.b64encode(blob.data).decode("ascii"),
                "annotations": dict(sorted(blob.layer.annotations.items())),
                "layer": blob.layer.descriptor(),
            }
            out[f"signatures/{_hex(blob.digest)}.cosign.json"] = canonical_json(doc)
    for blob in signed.attestations:
        if blob.data is None:
            continue
        try:
            doc = load_json(blob.data, what=f"evidence {blob.digest}")
        except InputError:
            continue
        item = by_payload.get(_payload_digest(doc))
        if item is not None:
            out[f"envelopes/{item.kind}-{_hex(item.digest)}.dsse.json"] = blob.data
    for blob in signed.bundles:
        if blob.data is None:
            continue
        try:
            doc = load_json(blob.data, what=f"evidence {blob.digest}")
        except InputError:
            continue
        env = doc.get("dsseEnvelope") if isinstance(doc, dict) else None
        item = by_payload.get(_payload_digest(env)) if env is not None else None
        if item is not None:
            out[f"envelopes/{item.kind}-{_hex(item.digest)}.sigstore.json"] = blob.data
    return out


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1][:64]


def _assay_version() -> str:
    from assay import __version__

    return __version__


def _fresh_scan(pinned: str, db_path: Path, today: _dt.date, insecure: bool) -> ScanResult:
    from assay.errors import UsageError
    from assay.vuln.db import AdvisoryDB
    from assay.vuln.scanner import ScanOptions, load_target, run_scan

    inventory = load_target(pinned, insecure=insecure)
    with AdvisoryDB(db_path, create=False) as adb:
        if not adb.sources():
            raise UsageError(
                f"the vulnerability database {adb.path} is empty; run `assay db update`"
            )
        return run_scan(adb, inventory, ScanOptions(today=today))


def _store_findings(url: str, digest: str) -> dict[tuple[str, str], dict[str, str]]:
    """The store's open findings for one image: (vuln, package) -> dates."""
    from sqlalchemy import select

    from assay.store import open_store
    from assay.store import schema as s

    out: dict[tuple[str, str], dict[str, str]] = {}
    with open_store(url) as store:
        q = (
            select(
                s.findings.c.vuln,
                s.findings.c.package,
                s.findings.c.first_seen,
                s.findings.c.due_date,
                s.findings.c.kev_due,
            )
            .select_from(s.findings.join(s.images, s.images.c.id == s.findings.c.image_id))
            .where(s.images.c.digest == digest)
            .where(s.findings.c.resolved_at.is_(None))
        )
        with store.engine.connect() as conn:
            for vuln, package, first, due, kev_due in conn.execute(q):
                out[(str(vuln), str(package))] = {
                    "first_seen": str(first or ""),
                    "due_date": str(due or ""),
                    "kev_due": str(kev_due or ""),
                }
    return out
