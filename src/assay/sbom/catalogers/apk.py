"""Alpine (and Wolfi) packages from the apk database ``lib/apk/db/installed``."""

from __future__ import annotations

from assay.sbom.catalogers._deps import link_dependencies
from assay.sbom.catalogers.interface import CatalogContext
from assay.sbom.fs import FileView
from assay.sbom.licenses import free_text_expression
from assay.sbom.model import Package
from assay.sbom.purl import apk_purl

__all__ = ["ApkCataloger"]

_DB = "lib/apk/db/installed"


def _first(rec: dict[str, list[str]], key: str) -> str:
    values = rec.get(key)
    return values[0].strip() if values else ""


def _files(rec_lines: list[tuple[str, str]]) -> list[str]:
    out = []
    directory = ""
    for key, value in rec_lines:
        if key == "F":
            directory = value.strip("/")
        elif key == "R":
            out.append("/" + (f"{directory}/{value}" if directory else value))
    return out


class ApkCataloger:
    name = "apk"

    def wants(self, path: str) -> bool:
        return path == _DB

    def reduce(self, path: str, data: bytes) -> bytes:
        return data

    def catalog(self, view: FileView, context: CatalogContext) -> list[Package]:
        data = view.read(_DB)
        if data is None:
            return []
        text = data.decode("utf-8", errors="replace")
        distro = context.distro
        distro_id = distro.id if distro else "alpine"
        distro_version = distro.version_id if distro else ""
        packages: list[tuple[Package, list[str]]] = []
        by_name: dict[str, list[str]] = {}
        for block in text.split("\n\n"):
            lines = [(ln[0], ln[2:]) for ln in block.splitlines() if len(ln) >= 2 and ln[1] == ":"]
            rec: dict[str, list[str]] = {}
            for key, value in lines:
                rec.setdefault(key, []).append(value)
            name, version = _first(rec, "P"), _first(rec, "V")
            if not name:
                continue
            arch, origin = _first(rec, "A"), _first(rec, "o")
            purl = apk_purl(
                name,
                version,
                arch,
                origin=origin,
                distro_id=distro_id or "alpine",
                distro_version=distro_version,
            )
            pkg = Package(
                name=name,
                version=version,
                ecosystem="apk",
                purl=purl,
                architecture=arch,
                source_name=origin or name,
                source_version=version,
                supplier=_first(rec, "m"),
                license_expression=free_text_expression(_first(rec, "L")),
                files=tuple(sorted(set(_files(lines)))),
                locations=("/" + _DB,),
                cataloger=self.name,
            )
            by_name.setdefault(name, []).append(purl)
            for prov in " ".join(rec.get("p", [])).split():
                by_name.setdefault(prov.split("=", 1)[0], []).append(purl)
            deps = [
                d.lstrip("!").split("=", 1)[0].split(">", 1)[0].split("<", 1)[0].split("~", 1)[0]
                for d in " ".join(rec.get("D", [])).split()
                if not d.startswith("!")
            ]
            packages.append((pkg, deps))
        return link_dependencies(packages, by_name)
