"""``assay diff A B``: what changed between any two images (assay's or not).

Packages come from the SBOM catalogers (``sbom.image.catalog_image``), files and config from the
merged-filesystem comparison of ``build.layerdiff``, and the vulnerability delta from matching
both inventories against the local advisory DB (``vuln.matcher.scan_inventory``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from assay.build.layerdiff import FileDiff, diff_images
from assay.errors import UsageError
from assay.oci.reference import parse_image_ref
from assay.oci.source import ImageManifest, ImageSource
from assay.sbom.model import Inventory

__all__ = ["ImageComparison", "compare_images", "package_delta", "render"]


@dataclass(frozen=True)
class ImageComparison:
    old: str
    new: str
    old_digest: str
    new_digest: str
    packages: tuple[tuple[str, str, str | None, str | None], ...]  # (ecosystem, name, old, new)
    files: tuple[FileDiff, ...]
    config: tuple[tuple[str, str, str], ...]
    fixed: tuple[str, ...] | None  # None: no advisory DB
    introduced: tuple[str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": {"image": self.old, "digest": self.old_digest},
            "new": {"image": self.new, "digest": self.new_digest},
            "packages": [
                {"ecosystem": e, "name": n, "old": a, "new": b} for e, n, a, b in self.packages
            ],
            "files": [
                {"path": "/" + f.path, "change": f.field, "old": f.expected, "new": f.actual}
                for f in self.files
            ],
            "config": [{"key": k, "old": a, "new": b} for k, a, b in self.config],
            "vulnerabilities": None
            if self.fixed is None
            else {"fixed": list(self.fixed), "introduced": list(self.introduced or ())},
        }


def package_delta(
    a: Inventory, b: Inventory
) -> tuple[tuple[str, str, str | None, str | None], ...]:
    """Packages by (ecosystem, name, architecture): version changes, additions, removals."""

    def index(inv: Inventory) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], set[str]] = {}
        for p in inv.packages:
            name = p.name if not p.architecture else f"{p.name}:{p.architecture}"
            out.setdefault((p.ecosystem, name), set()).add(p.version)
        return {k: ", ".join(sorted(v)) for k, v in out.items()}

    ia, ib = index(a), index(b)
    return tuple(
        (eco, name, ia.get((eco, name)), ib.get((eco, name)))
        for eco, name in sorted(set(ia) | set(ib))
        if ia.get((eco, name)) != ib.get((eco, name))
    )


def _open(text: str, insecure: bool) -> ImageSource:
    ref = parse_image_ref(text)
    if ref.is_registry:
        from assay.oci.push import open_registry_image

        return open_registry_image(ref, insecure=insecure)
    if ref.transport == "dir":
        raise UsageError(f"{text}: `assay diff` compares images, not directories")
    from assay.oci.source import open_local_image

    return open_local_image(ref)


def _pick(images: list[ImageManifest], arch: str, what: str) -> ImageManifest:
    match = [m for m in images if m.platform.architecture == arch]
    if match:
        return match[0]
    if len(images) == 1:
        return images[0]
    have = ", ".join(sorted({m.platform.architecture for m in images}))
    raise UsageError(f"{what} has no image for {arch!r} (it has {have}); pass --arch")


def _vuln_ids(db: Any, inv: Inventory, today: dt.date | None) -> set[str]:
    from assay.vuln.matcher import scan_inventory

    result = scan_inventory(db, inv, today=today, record_first_seen=False)
    return {str(f.id) for f in result.findings}


def compare_images(
    old: str,
    new: str,
    *,
    architecture: str = "",
    insecure: bool = False,
    db: Any = None,
    today: dt.date | None = None,
) -> ImageComparison:
    """Compare two images (one platform each; ``architecture`` picks from an index)."""
    from assay.sbom.image import catalog_image
    from assay.sbom.source import host_architecture

    arch = architecture or host_architecture()
    inv_a = catalog_image(old, architecture=arch, insecure=insecure)
    inv_b = catalog_image(new, architecture=arch, insecure=insecure)
    with _open(old, insecure) as src_a, _open(new, insecure) as src_b:
        img_a = _pick(src_a.manifests(), arch, old)
        img_b = _pick(src_b.manifests(), arch, new)
        d = diff_images(src_a, img_a, src_b, img_b)
    fixed: tuple[str, ...] | None = None
    introduced: tuple[str, ...] | None = None
    if db is not None:
        va, vb = _vuln_ids(db, inv_a, today), _vuln_ids(db, inv_b, today)
        fixed, introduced = tuple(sorted(va - vb)), tuple(sorted(vb - va))
    return ImageComparison(
        old,
        new,
        str(img_a.digest),
        str(img_b.digest),
        package_delta(inv_a, inv_b),
        d.files,
        d.config,
        fixed,
        introduced,
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(c: ImageComparison, fmt: str, *, limit: int = 500) -> str:
    """``json``, ``markdown`` or ``table`` text."""
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2, sort_keys=True) + "\n"
    if fmt == "markdown":
        lines = [f"## `{_md(c.old)}` → `{_md(c.new)}`", "", "### Packages", ""]
        lines += ["| ecosystem | package | old | new |", "|---|---|---|---|"]
        lines += [f"| {e} | {_md(n)} | {a or ''} | {b or ''} |" for e, n, a, b in c.packages]
        lines += ["", f"### Files ({len(c.files)} differences)", ""]
        lines += [f"- `{_md(str(f))}`" for f in c.files[:limit]]
        lines += ["", "### Config", ""] + [f"- `{k}`: {_md(a)} → {_md(b)}" for k, a, b in c.config]
        if c.fixed is not None:
            lines += ["", "### Vulnerabilities", ""]
            lines += [f"- fixed {v}" for v in c.fixed] + [
                f"- introduced {v}" for v in c.introduced or ()
            ]
        return "\n".join(lines) + "\n"
    lines = [f"old {c.old_digest}  {c.old}", f"new {c.new_digest}  {c.new}"]
    lines += [f"package  {e}:{n}  {a or '-'} -> {b or '-'}" for e, n, a, b in c.packages]
    lines += [f"config   {k}: {a} -> {b}" for k, a, b in c.config]
    lines += [str(f) for f in c.files[:limit]]
    if len(c.files) > limit:
        lines.append(f"... and {len(c.files) - limit} more file differences")
    if c.fixed is None:
        lines.append("vulnerabilities: not compared (no advisory DB; run `assay db update`)")
    else:
        lines += [f"fixed      {v}" for v in c.fixed]
        lines += [f"introduced {v}" for v in c.introduced or ()]
    return "\n".join(lines) + "\n"
