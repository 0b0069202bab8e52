"""The control catalog: package data (``catalog.yaml``), validated when it is loaded.

The file is data, not code: frameworks, their controls with the published section ids, and
for each control the evidence kinds and policy check ids that show it. Loading checks every
field's type, size and allowed values, so a damaged or hand-edited catalog is refused with a
message naming the field rather than half-used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from assay.errors import InputError

__all__ = [
    "EVIDENCE_KINDS",
    "RULES",
    "Catalog",
    "Control",
    "Framework",
    "load_catalog",
    "parse_catalog",
]

CATALOG_VERSION = 1
EVIDENCE_KINDS = frozenset(
    {"signature", "sbom", "provenance", "scan", "vex", "config", "decision", "findings"}
)
#: Named evaluations and the parameters each takes (evaluate.py implements them).
RULES: dict[str, frozenset[str]] = {
    "scan-age": frozenset({"days"}),
    "remediation": frozenset({"severities", "days"}),
    "kev-due": frozenset(),
    "no-kev": frozenset(),
    "no-open": frozenset({"severities"}),
    "patched-within": frozenset({"severities", "days"}),
    "non-root": frozenset(),
    "provenance-signed": frozenset(),
    "digest-identifier": frozenset(),
}
SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .()_-]{0,63}$")
_CHECK = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,63}$")
_MAX_TEXT = 2000
_MAX_ITEMS = 200
_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    description: str = ""
    evidence: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    rule: str = ""
    params: tuple[tuple[str, Any], ...] = ()
    manual: bool = False
    reason: str = ""

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "evidence": list(self.evidence),
            "checks": list(self.checks),
        }
        if self.description:
            out["description"] = self.description
        if self.rule:
            out["rule"] = {"name": self.rule, **dict(self.params)}
        if self.manual:
            out["assess"] = "manual"
        return out


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    source: str
    controls: tuple[Control, ...]


@dataclass(frozen=True)
class Catalog:
    version: int
    frameworks: tuple[Framework, ...]

    def framework(self, framework_id: str) -> Framework:
        for f in self.frameworks:
            if f.id == framework_id:
                return f
        raise KeyError(framework_id)


def _bad(where: str, what: str) -> InputError:
    return InputError(f"control catalog: {where}: {what}; reinstall assay or fix the file")


def _text(doc: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, f"{key} must be a non-empty string")
    if len(value) > _MAX_TEXT:
        raise _bad(where, f"{key} is longer than {_MAX_TEXT} characters")
    return value.strip()


def _ident(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise _bad(where, f"id {value!r} is not a short identifier")
    return value


def _strings(doc: dict[str, Any], key: str, where: str, pattern: re.Pattern[str]) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise _bad(where, f"{key} must be a list of at most {_MAX_ITEMS} strings")
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            raise _bad(where, f"{key} entry {item!r} is not valid")
    return value


def _keys(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(doc) - allowed)
    if extra:
        raise _bad(where, f"unknown field {extra[0]!r}")


def _rule(value: Any, where: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    if value is None:
        return "", ()
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise _bad(where, "rule must be a mapping with a name")
    name = value["name"]
    if name not in RULES:
        raise _bad(where, f"unknown rule {name!r}")
    params: list[tuple[str, Any]] = []
    for key in sorted(value):
        if key == "name":
            continue
        if key not in RULES[name]:
            raise _bad(where, f"rule {name} takes no parameter {key!r}")
        item = value[key]
        if key == "days":
            if type(item) is not int or not 0 < item <= 3650:
                raise _bad(where, "rule days must be an integer from 1 to 3650")
        elif key == "severities":
            if not isinstance(item, list) or not item or any(s not in SEVERITIES for s in item):
                raise _bad(where, f"rule severities must be a list of {', '.join(SEVERITIES)}")
            item = tuple(item)
        params.append((key, item))
    missing = RULES[name] - {k for k, _ in params}
    if missing:
        raise _bad(where, f"rule {name} needs {', '.join(sorted(missing))}")
    return name, tuple(params)


def _control(doc: Any, where: str) -> Control:
    if not isinstance(doc, dict):
        raise _bad(where, "a control must be a mapping")
    _keys(
        doc, {"id", "title", "description", "evidence", "checks", "rule", "assess", "reason"}, where
    )
    cid = _ident(doc.get("id"), where)
    where = f"{where} ({cid})"
    evidence = _strings(doc, "evidence", where, re.compile(r"^[a-z]+$"))
    unknown = sorted(set(evidence) - EVIDENCE_KINDS)
    if unknown:
        raise _bad(where, f"unknown evidence kind {unknown[0]!r}")
    checks = _strings(doc, "checks", where, _CHECK)
    rule, params = _rule(doc.get("rule"), where)
    assess = doc.get("assess", "evidence")
    if assess not in ("evidence", "manual"):
        raise _bad(where, "assess must be evidence or manual")
    manual = assess == "manual"
    reason = _text(doc, "reason", where, required=manual)
    if not manual and not (evidence or checks or rule):
        raise _bad(where, "a control needs evidence, checks or a rule (or assess: manual)")
    return Control(
        id=cid,
        title=_text(doc, "title", where),
        description=_text(doc, "description", where, required=False),
        evidence=tuple(evidence),
        checks=tuple(checks),
        rule=rule,
        params=params,
        manual=manual,
        reason=reason,
    )


def parse_catalog(doc: Any) -> Catalog:
    """Validate a parsed catalog document."""
    if not isinstance(doc, dict):
        raise _bad("top level", "must be a mapping")
    _keys(doc, {"version", "frameworks"}, "top level")
    if doc.get("version") != CATALOG_VERSION or type(doc.get("version")) is not int:
        raise _bad("version", f"must be {CATALOG_VERSION}")
    frameworks = doc.get("frameworks")
    if not isinstance(frameworks, list) or not frameworks or len(frameworks) > _MAX_ITEMS:
        raise _bad("frameworks", "must be a non-empty list")
    out: list[Framework] = []
    seen: set[str] = set()
    for i, fw in enumerate(frameworks):
        where = f"frameworks[{i}]"
        if not isinstance(fw, dict):
            raise _bad(where, "must be a mapping")
        _keys(fw, {"id", "title", "source", "controls"}, where)
        fid = _ident(fw.get("id"), where)
        if fid in seen:
            raise _bad(where, f"framework id {fid!r} appears twice")
        seen.add(fid)
        controls = fw.get("controls")
        if not isinstance(controls, list) or not controls or len(controls) > _MAX_ITEMS:
            raise _bad(f"{where} ({fid})", "controls must be a non-empty list")
        parsed = tuple(_control(c, f"{fid} controls[{j}]") for j, c in enumerate(controls))
        ids = [c.id for c in parsed]
        if len(set(ids)) != len(ids):
            raise _bad(f"{where} ({fid})", "a control id appears twice")
        out.append(
            Framework(
                id=fid,
                title=_text(fw, "title", where),
                source=_text(fw, "source", where),
                controls=parsed,
            )
        )
    return Catalog(version=CATALOG_VERSION, frameworks=tuple(out))


def load_catalog(text: str | bytes | None = None) -> Catalog:
    """The packaged catalog, or ``text`` (a YAML document) when given."""
    if text is None:
        text = resources.files("assay.compliance").joinpath("catalog.yaml").read_bytes()
    if len(text) > _MAX_BYTES:
        raise _bad("file", f"is larger than {_MAX_BYTES} bytes")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _bad("file", f"is not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_catalog(doc)
