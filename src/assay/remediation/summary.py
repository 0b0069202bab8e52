"""The remediation summary of one ``assay update``: data, and its table/JSON/Markdown forms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from assay.remediation.update import CveChange, PackageChange

__all__ = ["UpdateSummary", "render_json", "render_markdown", "render_table"]


@dataclass(frozen=True)
class UpdateSummary:
    spec: str
    updated: bool
    changes: tuple[PackageChange, ...] = ()
    fixed: tuple[CveChange, ...] = ()  # from the DB and from changelogs, each with its source
    introduced: tuple[CveChange, ...] = ()
    old_digest: str = ""
    new_digest: str = ""
    pushed: str = ""
    lock_written: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def kev_closed(self) -> tuple[CveChange, ...]:
        return tuple(c for c in self.fixed if c.kev)

    def fixed_ids(self) -> list[str]:
        return sorted({c.id for c in self.fixed})

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "updated": self.updated,
            "packages": [c.to_dict() for c in self.changes],
            "fixed": [c.to_dict() for c in self.fixed],
            "introduced": [c.to_dict() for c in self.introduced],
            "kevClosed": sorted({c.id for c in self.kev_closed}),
            "digest": {"old": self.old_digest, "new": self.new_digest},
            "pushed": self.pushed,
            "lockWritten": self.lock_written,
            "notes": list(self.notes),
        }


def render_json(summaries: list[UpdateSummary]) -> str:
    data = {
        "updated": any(s.updated for s in summaries),
        "updates": [s.to_dict() for s in summaries],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _cve_sources(s: UpdateSummary) -> list[tuple[str, str, str]]:
    """(id, packages, sources) per fixed CVE id."""
    by_id: dict[str, tuple[set[str], set[str]]] = {}
    for c in s.fixed:
        pk, src = by_id.setdefault(c.id, (set(), set()))
        pk.add(c.package)
        src.add(c.source)
    return [
        (i, ", ".join(sorted(p)), "+".join(sorted(src))) for i, (p, src) in sorted(by_id.items())
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summaries: list[UpdateSummary]) -> str:
    """A pull-request body."""
    lines: list[str] = []
    for s in summaries:
        lines.append(f"## assay update: `{_md_cell(s.spec)}`")
        lines.append("")
        if not s.updated:
            lines += ["No update needed: the lock is current.", ""]
            continue
        if s.old_digest or s.new_digest:
            lines += [
                f"Image: `{s.old_digest or '(none)'}` → `{s.new_digest or '(not built)'}`",
                "",
            ]
        if s.pushed:
            lines += [f"Pushed: `{_md_cell(s.pushed)}`", ""]
        lines += ["### Packages", "", "| arch | package | change | old | new | suite |"]
        lines.append("|---|---|---|---|---|---|")
        for c in s.changes:
            lines.append(
                f"| {c.arch} | {_md_cell(c.name)} | {c.kind} | {c.old or ''} | {c.new or ''} "
                f"| {_md_cell(c.suite)} |"
            )
        lines += ["", f"### CVEs fixed ({len(s.fixed_ids())})", ""]
        if s.fixed:
            lines += ["| CVE | package | source |", "|---|---|---|"]
            lines += [f"| {i} | {_md_cell(p)} | {src} |" for i, p, src in _cve_sources(s)]
        else:
            lines.append("None known.")
        if s.kev_closed:
            lines += [
                "",
                "**KEV entries closed:** " + ", ".join(sorted({c.id for c in s.kev_closed})),
            ]
        lines += ["", f"### CVEs introduced ({len({c.id for c in s.introduced})})", ""]
        lines += [f"- {c.id} ({_md_cell(c.package)}, {c.severity})" for c in s.introduced] or [
            "None."
        ]
        if s.notes:
            lines += ["", "### Notes", ""] + [f"- {_md_cell(n)}" for n in s.notes]
        lines.append("")
    return "\n".join(lines) + "\n"


def render_table(summaries: list[UpdateSummary]) -> str:
    lines: list[str] = []
    for s in summaries:
        if not s.updated:
            lines.append(f"{s.spec}: up to date")
            continue
        lines.append(f"{s.spec}: {len(s.changes)} package change(s)")
        for c in s.changes:
            lines.append(
                f"  {c.arch:8} {c.name:30} {c.old or '-':>24} -> {c.new or '-'}  {c.suite}"
            )
        for i, p, src in _cve_sources(s):
            lines.append(f"  fixed {i:18} {p} [{src}]")
        for v in s.introduced:
            lines.append(f"  introduced {v.id:13} {v.package} [{v.severity}]")
        for k in s.kev_closed:
            lines.append(f"  KEV closed {k.id}")
        if s.old_digest or s.new_digest:
            lines.append(f"  image {s.old_digest or '(none)'} -> {s.new_digest or '(not built)'}")
        if s.pushed:
            lines.append(f"  pushed {s.pushed}")
        lines += [f"  note: {n}" for n in s.notes]
    return "\n".join(lines) + "\n"
