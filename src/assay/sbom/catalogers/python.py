"""Installed Python distributions: ``*.dist-info/METADATA`` (wheels, pip) and ``*.egg-info``
(a ``PKG-INFO`` file inside the directory, or the ``.egg-info`` file itself).

Files come from ``RECORD`` (dist-info) or ``installed-files.txt`` (egg-info), resolved against
the site directory; the metadata files themselves always count. De-duplication against dpkg
uses them (``assay.sbom.catalog``).
"""

from __future__ import annotations

import posixpath
import re

from assay.sbom.catalogers._deps import link_dependencies
from assay.sbom.catalogers.interface import CatalogContext, refuse_oversized
from assay.sbom.fs import FileView
from assay.sbom.licenses import free_text_expression
from assay.sbom.model import Package
from assay.sbom.purl import pypi_purl

__all__ = ["PythonCataloger", "canonical_name", "parse_metadata"]

_NAME_RE = re.compile(r"[-_.]+")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return _NAME_RE.sub("-", name).lower()


def parse_metadata(text: str) -> dict[str, list[str]]:
    """Core-metadata headers (RFC 822 style, up to the first blank line)."""
    headers: dict[str, list[str]] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and last:
            headers[last][-1] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        headers.setdefault(last, []).append(value.strip())
    return headers


def _one(headers: dict[str, list[str]], key: str) -> str:
    values = headers.get(key)
    return values[0] if values else ""


class PythonCataloger:
    name = "python"

    def wants(self, path: str) -> bool:
        if "-info" not in path:
            return False
        if ".dist-info/" in path:
            return path.endswith(("/METADATA", "/RECORD"))
        if ".egg-info" in path:
            return path.endswith((".egg-info", ".egg-info/PKG-INFO", "/installed-files.txt"))
        return False

    def reduce(self, path: str, data: bytes) -> bytes:
        if path.endswith(("/METADATA", "/PKG-INFO", ".egg-info")):
            end = data.find(b"\n\n")  # the headers; the long description is not read
            return data if end < 0 else data[: end + 1]
        return data

    def catalog(self, view: FileView, context: CatalogContext) -> list[Package]:
        found: list[tuple[Package, list[str]]] = []
        for path in view.paths():
            if path.endswith(".dist-info/METADATA"):
                meta_dir = path[: -len("/METADATA")]
                files_list = view.read(meta_dir + "/RECORD")
                record_style = True
            elif path.endswith(".egg-info/PKG-INFO"):
                meta_dir = path[: -len("/PKG-INFO")]
                files_list = view.read(meta_dir + "/installed-files.txt")
                record_style = False
            elif path.endswith(".egg-info"):
                meta_dir = path
                files_list = None
                record_style = False
            else:
                continue
            data = view.read(path)
            if data is None:
                continue
            headers = parse_metadata(data[: 1024 * 1024].decode("utf-8", errors="replace"))
            name, version = _one(headers, "name"), _one(headers, "version")
            if not name or not version:
                continue
            site = posixpath.dirname(meta_dir)
            files = {"/" + path}
            if files_list is not None:
                files.add("/" + meta_dir + ("/RECORD" if record_style else "/installed-files.txt"))
                base = site if record_style else meta_dir
                for line in files_list.decode("utf-8", errors="replace").splitlines():
                    entry = line.split(",", 1)[0] if record_style else line
                    resolved = _resolve(base, entry.strip())
                    if resolved:
                        files.add(resolved)
            license_value = _one(headers, "license-expression") or _license_field(headers)
            supplier = (
                _one(headers, "author")
                or _one(headers, "maintainer")
                or _email_name(_one(headers, "author-email"))
            )
            locations = ["/" + path]
            pkg = Package(
                name=canonical_name(name),
                version=version,
                ecosystem="pypi",
                purl=pypi_purl(name, version),
                supplier=supplier,
                license_expression=free_text_expression(license_value),
                files=tuple(sorted(files)),
                locations=tuple(locations),
                cataloger=self.name,
            )
            requires = []
            for req in headers.get("requires-dist", []):
                if "extra ==" in req.replace("  ", " "):
                    continue
                m = _REQ_NAME.match(req)
                if m:
                    requires.append(canonical_name(m.group(1)))
            refuse_oversized(len(found) + 1)  # stop at the limit, not after the layer
            found.append((pkg, requires))
        return link_dependencies(found)


def _license_field(headers: dict[str, list[str]]) -> str:
    value = _one(headers, "license")
    if value and len(value) <= 100 and "\n" not in value:
        return value
    for classifier in headers.get("classifier", []):
        if classifier.startswith("License :: OSI Approved :: "):
            return classifier.rsplit("::", 1)[1].strip()
    return value


def _email_name(value: str) -> str:
    name = value.split("<", 1)[0].strip().strip('"')
    return name or value


def _resolve(base: str, entry: str) -> str:
    if not entry or entry.startswith("/"):
        return "/" + entry.lstrip("/") if entry else ""
    joined = posixpath.normpath(posixpath.join("/", base, entry))
    return joined if joined.startswith("/") and ".." not in joined.split("/") else ""
