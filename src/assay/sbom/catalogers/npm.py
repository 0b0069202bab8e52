"""npm packages installed under ``node_modules`` (``node_modules/**/package.json``)."""

from __future__ import annotations

from typing import Any

from assay._json import load_json
from assay.errors import InputError
from assay.sbom.catalogers._deps import link_dependencies
from assay.sbom.catalogers.interface import CatalogContext, refuse_oversized
from assay.sbom.fs import FileView
from assay.sbom.licenses import expression_from_names, free_text_expression
from assay.sbom.model import Package
from assay.sbom.purl import npm_purl

__all__ = ["NpmCataloger"]

_MAX_PACKAGE_JSON = 4 << 20  # a package.json larger than this is not a package manifest


def _license(doc: dict[str, Any]) -> str:
    value = doc.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str):
        return free_text_expression(value)
    values = doc.get("licenses")
    if isinstance(values, list):
        names = []
        for item in values:
            name = item.get("type") if isinstance(item, dict) else item
            if isinstance(name, str):
                names.append(free_text_expression(name))
        return expression_from_names(names)
    return ""


def _author(doc: dict[str, Any]) -> str:
    author = doc.get("author")
    if isinstance(author, dict):
        name = author.get("name")
        email = author.get("email")
        if isinstance(name, str) and name:
            return f"{name} <{email}>" if isinstance(email, str) and email else name
        return ""
    return author.strip() if isinstance(author, str) else ""


class NpmCataloger:
    name = "npm"

    def wants(self, path: str) -> bool:
        return path.endswith("/package.json") and "node_modules/" in path

    def reduce(self, path: str, data: bytes) -> bytes:
        return data

    def catalog(self, view: FileView, context: CatalogContext) -> list[Package]:
        found: list[tuple[Package, list[str]]] = []
        for path in view.paths():
            if not self.wants(path):
                continue
            # Only a package's own manifest: node_modules/NAME/package.json or
            # node_modules/@scope/NAME/package.json (not files deeper inside a package).
            rest = path.rsplit("node_modules/", 1)[1].split("/")
            if not (len(rest) == 2 or (len(rest) == 3 and rest[0].startswith("@"))):
                continue
            data = view.read(path)
            if data is None:
                continue
            try:
                doc = load_json(data, what=path, max_size=_MAX_PACKAGE_JSON)
            except InputError:
                continue  # a broken manifest is not a package; nothing to report
            if not isinstance(doc, dict):
                continue
            name, version = doc.get("name"), doc.get("version")
            if not isinstance(name, str) or not isinstance(version, str) or not name:
                continue
            deps = doc.get("dependencies")
            dep_names = [k for k in deps if isinstance(k, str)] if isinstance(deps, dict) else []
            pkg = Package(
                name=name,
                version=version,
                ecosystem="npm",
                purl=npm_purl(name, version),
                supplier=_author(doc),
                license_expression=_license(doc),
                files=("/" + path,),
                locations=("/" + path,),
                cataloger=self.name,
            )
            refuse_oversized(len(found) + 1)  # stop at the limit, not after the layer
            found.append((pkg, dep_names))
        return link_dependencies(found)
