"""OpenVEX 0.2.0 documents: create, validate, merge, and apply to scan results.

A statement applies to a finding when its vulnerability (name or aliases) is one of the
finding's ids **and** one of its products is the scanned image (by ``pkg:oci`` purl or digest)
with the finding's package among its subcomponents (or no subcomponents at all), or the product
is the finding's package itself. Purls without a version or qualifiers match more broadly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from packageurl import PackageURL

from assay._json import load_json
from assay.errors import InputError, UsageError
from assay.vuln.model import Finding, ScanResult

__all__ = [
    "CONTEXT",
    "JUSTIFICATIONS",
    "STATUSES",
    "Statement",
    "VexDocument",
    "apply_vex",
    "create_document",
    "load_vex",
    "merge_documents",
    "purl_matches",
    "validate_openvex",
    "vex_from_statements",
]

CONTEXT = "https://openvex.dev/ns/v0.2.0"
STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
JUSTIFICATIONS = (
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
)
_SUPPRESSING = ("not_affected", "fixed")
MAX_VEX_BYTES = 64 << 20


def _now() -> str:
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        dt.datetime.fromtimestamp(int(sde), dt.UTC)
        if sde and sde.isdigit()
        else dt.datetime.now(dt.UTC)
    )
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"OpenVEX timestamp {text!r} is not RFC 3339") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


_MAX_PROBLEMS = 20


def validate_openvex(doc: Any) -> list[str]:
    """Problems with an OpenVEX 0.2.0 document (empty when it has every required field)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["the document is not a JSON object"]
    for key in ("@context", "@id", "author", "timestamp", "version", "statements"):
        if key not in doc:
            problems.append(f"missing required field {key!r}")
    for key in ("@context", "@id", "author", "role", "timestamp", "last_updated", "tooling"):
        if key in doc and not isinstance(doc[key], str):
            problems.append(f"{key} must be a string")
    if isinstance(doc.get("@context"), str) and not doc["@context"].startswith(
        "https://openvex.dev/ns"
    ):
        problems.append(f"@context {doc['@context'][:80]!r} is not an OpenVEX context")
    if "version" in doc and (not isinstance(doc["version"], int) or doc["version"] < 1):
        problems.append("version must be an integer >= 1")
    stmts = doc.get("statements")
    if not isinstance(stmts, list) or not stmts:
        problems.append("statements must be a non-empty list")
        return problems
    for i, s in enumerate(stmts):
        if len(problems) >= _MAX_PROBLEMS:  # a hostile list of millions: name the first few
            problems.append(f"more problems in statements {i} to {len(stmts) - 1} not listed")
            break
        where = f"statement {i}"
        if not isinstance(s, dict):
            problems.append(f"{where} is not an object")
            continue
        vuln = s.get("vulnerability")
        if not isinstance(vuln, dict) or not isinstance(vuln.get("name"), str) or not vuln["name"]:
            problems.append(f"{where}: vulnerability.name is required")
        elif not _str_list(vuln.get("aliases", [])):
            problems.append(f"{where}: vulnerability.aliases must be a list of strings")
        for key in _STATEMENT_TEXT:
            if key in s and not isinstance(s[key], str):
                problems.append(f"{where}: {key} must be a string")
        status = s.get("status")
        if status not in STATUSES:
            problems.append(f"{where}: status must be one of {', '.join(STATUSES)}")
        if status == "not_affected":
            has_j, has_i = bool(s.get("justification")), bool(s.get("impact_statement"))
            if not (has_j or has_i):
                problems.append(f"{where}: not_affected needs a justification or impact_statement")
            if has_j and s["justification"] not in JUSTIFICATIONS:
                problems.append(f"{where}: unknown justification {str(s['justification'])[:80]!r}")
        if status == "affected" and not s.get("action_statement"):
            problems.append(f"{where}: affected needs an action_statement")
        products = s.get("products")
        if not isinstance(products, list) or not products:
            problems.append(f"{where}: products must name at least one product")
        else:
            for p in products:
                bad = _component_problem(p)
                if bad:
                    problems.append(f"{where}: a product {bad}")
                    continue
                subs = p.get("subcomponents", [])
                if not isinstance(subs, list):
                    problems.append(f"{where}: subcomponents must be a list")
                    continue
                for sc in subs:
                    bad = _component_problem(sc)
                    if bad:
                        problems.append(f"{where}: a subcomponent {bad}")
    return problems


_STATEMENT_TEXT = (
    "status",
    "justification",
    "impact_statement",
    "action_statement",
    "status_notes",
    "timestamp",
    "last_updated",
)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _component_problem(p: Any) -> str:
    """What is wrong with a product or subcomponent object, or ''."""
    if not isinstance(p, dict):
        return "is not an object"
    if "@id" in p and not isinstance(p["@id"], str):
        return "@id must be a string"
    for key in ("identifiers", "hashes"):
        value = p.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return f"{key} must be an object of strings"
    if not (p.get("@id") or p.get("identifiers", {}).get("purl") or p.get("hashes")):
        return "needs an @id, a purl or hashes"
    return ""


@dataclass(frozen=True)
class Product:
    id: str
    purl: str
    sha256: str  # hex, from hashes["sha-256"]
    subcomponents: tuple[str, ...]  # @id or identifiers.purl of each

    @classmethod
    def from_json(cls, p: dict[str, Any]) -> Product:
        subs = []
        for sc in p.get("subcomponents") or []:
            if isinstance(sc, dict):
                ident = sc.get("@id") or (sc.get("identifiers") or {}).get("purl") or ""
                if ident:
                    subs.append(str(ident))
        return cls(
            id=str(p.get("@id") or ""),
            purl=str((p.get("identifiers") or {}).get("purl") or ""),
            sha256=str((p.get("hashes") or {}).get("sha-256") or ""),
            subcomponents=tuple(subs),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"@id": self.id or self.purl or f"sha256:{self.sha256}"}
        if self.purl and self.purl != self.id:
            out["identifiers"] = {"purl": self.purl}
        if self.sha256:
            out["hashes"] = {"sha-256": self.sha256}
        if self.subcomponents:
            out["subcomponents"] = [{"@id": s} for s in self.subcomponents]
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(x for x in (self.id, self.purl) if x)


@dataclass(frozen=True)
class Statement:
    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[Product, ...]
    status: str
    timestamp: str  # the statement's own, else its document's
    justification: str = ""
    impact_statement: str = ""
    action_statement: str = ""
    status_notes: str = ""
    document_id: str = ""

    @property
    def ids(self) -> frozenset[str]:
        return frozenset((self.vulnerability, *self.aliases))

    def to_json(self) -> dict[str, Any]:
        vuln: dict[str, Any] = {"name": self.vulnerability}
        if self.aliases:
            vuln["aliases"] = list(self.aliases)
        out: dict[str, Any] = {
            "vulnerability": vuln,
            "timestamp": self.timestamp,
            "products": [p.to_json() for p in self.products],
            "status": self.status,
        }
        for key in ("justification", "impact_statement", "action_statement", "status_notes"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class VexDocument:
    id: str
    author: str
    timestamp: str
    version: int
    statements: tuple[Statement, ...]
    role: str = ""
    tooling: str = ""
    last_updated: str = ""

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "OpenVEX document") -> VexDocument:
        doc = load_json(data, what=where)
        problems = validate_openvex(doc)
        if problems:
            raise InputError(
                f"{where} is not a valid OpenVEX 0.2.0 document: " + "; ".join(problems)
            )
        doc_ts = str(doc["timestamp"])
        _parse_time(doc_ts)
        stmts = []
        for s in doc["statements"]:
            ts = str(
                s.get("last_updated") or s.get("timestamp") or doc.get("last_updated") or doc_ts
            )
            _parse_time(ts)
            stmts.append(
                Statement(
                    vulnerability=s["vulnerability"]["name"],
                    aliases=tuple(str(a) for a in s["vulnerability"].get("aliases") or ()),
                    products=tuple(Product.from_json(p) for p in s["products"]),
                    status=s["status"],
                    timestamp=ts,
                    justification=str(s.get("justification") or ""),
                    impact_statement=str(s.get("impact_statement") or ""),
                    action_statement=str(s.get("action_statement") or ""),
                    status_notes=str(s.get("status_notes") or ""),
                    document_id=str(doc["@id"]),
                )
            )
        return cls(
            id=str(doc["@id"]),
            author=str(doc["author"]),
            timestamp=doc_ts,
            version=int(doc["version"]),
            statements=tuple(stmts),
            role=str(doc.get("role") or ""),
            tooling=str(doc.get("tooling") or ""),
            last_updated=str(doc.get("last_updated") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@context": CONTEXT,
            "@id": self.id,
            "author": self.author,
        }
        if self.role:
            out["role"] = self.role
        out["timestamp"] = self.timestamp
        if self.last_updated:
            out["last_updated"] = self.last_updated
        out["version"] = self.version
        if self.tooling:
            out["tooling"] = self.tooling
        out["statements"] = [s.to_json() for s in self.statements]
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def _doc_id(statements: Sequence[Statement]) -> str:
    canon = json.dumps([s.to_json() for s in statements], sort_keys=True).encode()
    return "https://openvex.dev/docs/public/vex-" + hashlib.sha256(canon).hexdigest()


def load_vex(path: Path) -> VexDocument:
    from assay._safefs import open_regular

    try:
        with open_regular(path, f"VEX file {path}") as fh:
            data = fh.read(MAX_VEX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read VEX file {path}: {exc.strerror}") from None
    if len(data) > MAX_VEX_BYTES:
        raise InputError(f"VEX file {path} is larger than {MAX_VEX_BYTES} bytes")
    return VexDocument.from_json(data, f"VEX file {path}")


def _product_from_cli(text: str, subcomponents: Sequence[str]) -> Product:
    text = text.strip()
    if text.startswith("sha256:"):
        return Product(
            id=text, purl="", sha256=text.split(":", 1)[1], subcomponents=tuple(subcomponents)
        )
    if not text.startswith("pkg:"):
        raise UsageError(
            f"product {text!r} must be a purl (pkg:oci/…@sha256:…) or a sha256: digest"
        )
    try:
        PackageURL.from_string(text)
    except ValueError as exc:
        raise UsageError(f"product {text!r} is not a valid purl: {exc}") from None
    return Product(id=text, purl="", sha256="", subcomponents=tuple(subcomponents))


def create_document(
    *,
    products: Sequence[str],
    vulns: Sequence[str],
    status: str,
    author: str,
    justification: str = "",
    impact_statement: str = "",
    action_statement: str = "",
    status_notes: str = "",
    subcomponents: Sequence[str] = (),
    timestamp: str = "",
) -> VexDocument:
    """A new OpenVEX document with one statement per vulnerability; checks the spec's rules."""
    if status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    if status == "not_affected":
        if not (justification or impact_statement):
            raise UsageError(
                "not_affected needs --justification (one of: "
                + ", ".join(JUSTIFICATIONS)
                + ") or --impact-statement"
            )
        if justification and impact_statement:
            raise UsageError("give either --justification or --impact-statement, not both")
    if justification and justification not in JUSTIFICATIONS:
        raise UsageError(
            f"unknown justification {justification!r}; use one of: {', '.join(JUSTIFICATIONS)}"
        )
    if status == "affected" and not action_statement:
        raise UsageError("affected needs --action-statement (what users should do)")
    if status != "not_affected" and justification:
        raise UsageError("--justification only applies to not_affected")
    if not products or not vulns:
        raise UsageError("give at least one --product and one --vuln")
    for sub in subcomponents:
        if not sub.startswith("pkg:"):
            raise UsageError(f"subcomponent {sub!r} must be a package purl")
    ts = timestamp or _now()
    prods = tuple(_product_from_cli(p, subcomponents) for p in products)
    stmts = tuple(
        Statement(
            vulnerability=v,
            aliases=(),
            products=prods,
            status=status,
            timestamp=ts,
            justification=justification,
            impact_statement=impact_statement,
            action_statement=action_statement,
            status_notes=status_notes,
        )
        for v in vulns
    )
    return VexDocument(
        id=_doc_id(stmts), author=author, timestamp=ts, version=1, statements=stmts, tooling="assay"
    )


def merge_documents(
    docs: Iterable[VexDocument], *, author: str, timestamp: str = ""
) -> VexDocument:
    """One document keeping, for each (product, vulnerability), the latest statement."""
    latest: dict[tuple[str, tuple[str, ...], str], tuple[dt.datetime, int, Statement]] = {}
    order = 0
    for doc in docs:
        for s in doc.statements:
            for p in s.products:
                order += 1
                key = (p.id or p.purl or p.sha256, p.subcomponents, s.vulnerability)
                when = _parse_time(s.timestamp)
                prev = latest.get(key)
                # later timestamp wins; on a tie the statement given later on the command line
                if prev is None or (when, order) >= (prev[0], prev[1]):
                    latest[key] = (when, order, replace(s, products=(p,)))
    if not latest:
        raise UsageError("nothing to merge: the documents hold no statements")
    stmts = tuple(
        v[2] for _, v in sorted(latest.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1]))
    )
    ts = timestamp or _now()
    return VexDocument(
        id=_doc_id(stmts), author=author, timestamp=ts, version=1, statements=stmts, tooling="assay"
    )


def _parse_purl(text: str) -> PackageURL | None:
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def purl_matches(pattern: str, target: str) -> bool:
    """Does a VEX purl cover ``target``? Missing version/qualifiers in the pattern match any."""
    if pattern == target:
        return True
    a, b = _parse_purl(pattern), _parse_purl(target)
    if a is None or b is None:
        return False
    if (a.type, (a.namespace or "").lower(), a.name.lower()) != (
        b.type,
        (b.namespace or "").lower(),
        b.name.lower(),
    ):
        return False
    if a.version and unquote(a.version) != unquote(b.version or ""):
        return False
    qa = a.qualifiers if isinstance(a.qualifiers, dict) else {}
    qb = b.qualifiers if isinstance(b.qualifiers, dict) else {}
    if any(qb.get(k) != v for k, v in qa.items()):
        return False
    return not (a.subpath and a.subpath != b.subpath)


def _is_subject(p: Product, digest: str, subject_purl: str) -> bool:
    if digest and p.sha256 and f"sha256:{p.sha256}" == digest:
        return True
    for name in p.names:
        if digest and name == digest:
            return True
        purl = _parse_purl(name)
        if purl is None or purl.type != "oci":
            continue
        if purl.version:
            if unquote(purl.version) == digest:
                return True
        elif subject_purl and purl_matches(name, subject_purl):
            return True
    return False


def _applies(s: Statement, f: Finding, digest: str, subject_purl: str) -> bool:
    if not (s.ids & set(f.all_ids)):
        return False
    for p in s.products:
        if _is_subject(p, digest, subject_purl):
            if not p.subcomponents or any(purl_matches(sc, f.purl) for sc in p.subcomponents):
                return True
        elif any(purl_matches(n, f.purl) for n in p.names if n.startswith("pkg:")):
            return True
    return False


def apply_vex(result: ScanResult, docs: Sequence[VexDocument]) -> ScanResult:
    """Annotate findings with the latest matching statement; not_affected/fixed suppress."""
    stmts = [s for d in docs for s in d.statements]
    out: list[Finding] = []
    for f in result.findings:
        hits = [s for s in stmts if _applies(s, f, result.subject_digest, result.subject_purl)]
        if not hits:
            out.append(f)
            continue
        best = max(hits, key=lambda s: _parse_time(s.timestamp))
        record = {**best.to_json(), "document": best.document_id}
        if best.status in _SUPPRESSING:
            out.append(f.with_(suppressed_by=record, vex_status=best.status))
        else:
            out.append(f.with_(vex_status=best.status))
    return replace(result, findings=tuple(out))


def vex_from_statements(statements: Iterable[dict[str, Any]]) -> list[VexDocument]:
    """OpenVEX documents carried as the predicate of verified in-toto statements."""
    docs = []
    for i, st in enumerate(statements):
        pred = st.get("predicate")
        if not str(st.get("predicateType", "")).startswith("https://openvex.dev/ns"):
            continue
        where = f"OpenVEX attestation {i} ({st.get('predicateType')})"
        docs.append(VexDocument.from_json(json.dumps(pred), where))
    return docs
