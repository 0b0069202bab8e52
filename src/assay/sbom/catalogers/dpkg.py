"""Debian packages from the dpkg database: ``var/lib/dpkg/status`` (with ``info/*.list`` file
lists) and distroless-style ``var/lib/dpkg/status.d/NAME`` (with ``NAME.md5sums``).

Only packages whose ``Status`` says ``installed`` are reported (a ``deinstall ok config-files``
package is not in the image in any useful sense). Licenses come from the DEP-5
``usr/share/doc/NAME/copyright`` file.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from assay.errors import InputError
from assay.sbom.catalogers.interface import CatalogContext, refuse_oversized
from assay.sbom.fs import FileView
from assay.sbom.licenses import parse_dep5
from assay.sbom.model import Package
from assay.sbom.purl import deb_purl

__all__ = ["DpkgCataloger", "parse_control_paragraphs", "parse_source_field"]

_STATUS = "var/lib/dpkg/status"
_STATUS_D = "var/lib/dpkg/status.d/"
_INFO = "var/lib/dpkg/info/"
_DOC = "usr/share/doc/"
_LICENSE_LINE = re.compile(rb"^(?:[Ll]icense|LICENSE|[Ff]ormat|FORMAT):[^\r\n]*", re.MULTILINE)


def parse_control_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs → dicts (field names as written; continuation lines joined by ``\\n``).

    A small parser of its own: python-debian's is several times slower on a large status file.
    """
    para: dict[str, str] = {}
    last = ""
    for line in _lines(text):
        if not line.strip():
            if para:
                yield para
                para, last = {}, ""
            continue
        if line[0] in " \t":
            if last:
                para[last] += "\n" + line[1:]
            continue
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue  # not a field: ignore rather than guess
        last = key.strip()
        para[last] = value.strip()
    if para:
        yield para


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one at a time, split at ``\n`` as dpkg does (a trailing ``\r``
    dropped). ``str.splitlines`` would hold every line of a 60 MiB status file at once (~5
    million strings, over 300 MB)."""
    pos, size = 0, len(text)
    while pos < size:
        end = text.find("\n", pos)
        if end < 0:
            end = size
        line = text[pos:end]
        yield line[:-1] if line.endswith("\r") else line
        pos = end + 1


def parse_source_field(source: str, version: str) -> tuple[str, str]:
    """``bison (2:3.8.2+dfsg-1)`` → (``bison``, ``2:3.8.2+dfsg-1``); no version → binary's."""
    source = source.strip()
    if not source:
        return "", ""
    name, _, rest = source.partition(" ")
    rest = rest.strip()
    if rest.startswith("(") and rest.endswith(")"):
        return name, rest[1:-1].strip()
    return name, version


def dependency_names(para: dict[str, str]) -> list[str]:
    """Names in Depends and Pre-Depends, every alternative, without versions or ``:any``."""
    names: list[str] = []
    for field in ("Pre-Depends", "Depends"):
        for clause in para.get(field, "").split(","):
            for alt in clause.split("|"):
                name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0]
                if name:
                    names.append(name)
    return names


def _is_installed(para: dict[str, str]) -> bool:
    status = para.get("Status")
    if status is None:
        return True  # status.d paragraphs (distroless) often carry no Status field
    words = status.split()
    return len(words) == 3 and words[2] in ("installed", "half-configured", "triggers-pending")


class DpkgCataloger:
    name = "dpkg"

    def wants(self, path: str) -> bool:
        if path.startswith("var/lib/dpkg/"):
            return (
                path == _STATUS
                or path.startswith(_STATUS_D)
                or (path.startswith(_INFO) and path.endswith(".list"))
            )
        return path.startswith(_DOC) and path.endswith("/copyright") and path.count("/") == 4

    def reduce(self, path: str, data: bytes) -> bytes:
        if path.startswith(_DOC):  # only Format: and License: lines matter (licenses.parse_dep5)
            return b"\n".join(_LICENSE_LINE.findall(data))
        return data

    def catalog(self, view: FileView, context: CatalogContext) -> list[Package]:
        found: list[tuple[dict[str, str], str, list[str], str]] = []  # para, db, files, listfile
        paths = list(view.paths())
        status = view.read(_STATUS)
        if status is not None:
            for para in parse_control_paragraphs(status.decode("utf-8", errors="replace")):
                if not para.get("Package") or not _is_installed(para):
                    continue
                refuse_oversized(len(found) + 1)
                files, listfile = self._list_files(view, para)
                found.append((para, "/" + _STATUS, files, listfile))
        # status.d as the image shows it: var/lib/dpkg (or status.d) may be a symlink, so list
        # the directory it resolves to and report the files under their usual name.
        status_d = _STATUS_D
        with contextlib.suppress(InputError):
            status_d = view.canonical(_STATUS_D.rstrip("/")) + "/"
        for real in paths:
            if not real.startswith(status_d) or real.endswith(".md5sums"):
                continue
            if "/" in real[len(status_d) :]:
                continue
            path = _STATUS_D + real[len(status_d) :]
            data = view.read(path)
            if data is None:
                continue
            for para in parse_control_paragraphs(data.decode("utf-8", errors="replace")):
                if not para.get("Package") or not _is_installed(para):
                    continue
                refuse_oversized(len(found) + 1)
                md5 = view.read(path + ".md5sums")
                files = _md5sums_paths(md5) if md5 is not None else []
                found.append((para, "/" + path, files, "/" + path + ".md5sums" if md5 else ""))

        distro = context.distro
        distro_id = distro.id if distro else "debian"
        distro_version = distro.version_id if distro else ""
        by_name: dict[str, list[str]] = {}
        provides: dict[str, list[str]] = {}
        packages: list[tuple[Package, list[str]]] = []
        for para, db, files, listfile in found:
            name = para["Package"]
            version = para.get("Version", "")
            arch = para.get("Architecture", "")
            src_name, src_version = parse_source_field(para.get("Source", ""), version)
            copyright_path = f"{_DOC}{name}/copyright"
            copyright_data = view.read(copyright_path)
            purl = deb_purl(
                name,
                version,
                arch,
                source_name=src_name,
                source_version=src_version,
                distro_id=distro_id if distro_id in ("debian", "ubuntu") else "debian",
                distro_version=distro_version,
            )
            locations = {db}
            if listfile:
                locations.add(listfile)
            if copyright_data is not None:
                locations.add("/" + copyright_path)
            pkg = Package(
                name=name,
                version=version,
                ecosystem="deb",
                purl=purl,
                architecture=arch,
                source_name=src_name or name,
                source_version=src_version or version,
                supplier=para.get("Maintainer", ""),
                license_expression=parse_dep5(copyright_data),
                files=tuple(sorted(set(files))),
                locations=tuple(sorted(locations)),
                cataloger=self.name,
            )
            by_name.setdefault(name, []).append(purl)
            for prov in para.get("Provides", "").split(","):
                pname = prov.strip().split(" ", 1)[0]
                if pname:
                    provides.setdefault(pname, []).append(purl)
            packages.append((pkg, dependency_names(para)))

        out = []
        edges = 0
        for pkg, dep_names in packages:
            deps: set[str] = set()
            for dep in dep_names:
                deps.update(by_name.get(dep) or provides.get(dep) or ())
            deps.discard(pkg.purl)
            edges += len(deps)
            refuse_oversized(len(packages), edges)
            out.append(_with_deps(pkg, deps))
        return out

    @staticmethod
    def _list_files(view: FileView, para: dict[str, str]) -> tuple[list[str], str]:
        name = para["Package"]
        arch = para.get("Architecture", "")
        for candidate in (f"{_INFO}{name}:{arch}.list", f"{_INFO}{name}.list"):
            data = view.read(candidate)
            if data is not None:
                lines = data.decode("utf-8", errors="replace").splitlines()
                return [ln for ln in lines if ln and ln != "/."], "/" + candidate
        return [], ""


def _md5sums_paths(data: bytes) -> list[str]:
    out = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        _, sep, path = line.partition("  ")
        if sep and path:
            out.append("/" + path.lstrip("/"))
    return out


def _with_deps(pkg: Package, deps: set[str]) -> Package:
    from dataclasses import replace

    return replace(pkg, depends_on=tuple(sorted(deps)))
