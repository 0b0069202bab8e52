"""Package URLs, byte-for-byte as syft writes them, so scanners and VEX match across tools.

Debian: ``pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12&upstream=SRC`` where upstream
is ``SRC@SRCVERSION`` when the source version differs from the binary version. The epoch stays
in the version unencoded (``bison@2:3.8.2%2Bdfsg-1%2Bb1``), as both syft and packageurl-python
write it. Qualifiers are sorted by key (the purl canonical form).
"""

from __future__ import annotations

from urllib.parse import quote

from packageurl import PackageURL

__all__ = ["apk_purl", "deb_purl", "npm_purl", "oci_purl", "pypi_purl"]


def _qualifiers(**kw: str) -> dict[str, str]:
    return {k: v for k, v in kw.items() if v}


def distro_qualifier(distro_id: str, version_id: str) -> str:
    return f"{distro_id}-{version_id}" if distro_id and version_id else ""


def _distro_purl(
    kind: str, namespace: str, name: str, version: str, *, arch: str, distro: str, upstream: str
) -> str:
    """A distribution package's purl; the ``arch``, ``distro`` and ``upstream`` qualifiers are
    left out when empty."""
    qualifiers = _qualifiers(arch=arch, distro=distro, upstream=upstream)
    purl = PackageURL(
        type=kind, namespace=namespace, name=name, version=version, qualifiers=qualifiers
    )
    return str(purl.to_string())


def deb_purl(
    name: str,
    version: str,
    arch: str,
    *,
    source_name: str = "",
    source_version: str = "",
    distro_id: str = "debian",
    distro_version: str = "",
) -> str:
    upstream = ""
    if source_name and source_name != name:
        upstream = source_name
    if source_name and source_version and source_version != version:
        upstream = f"{source_name}@{source_version}"
    distro = distro_qualifier(distro_id, distro_version)
    return _distro_purl(
        "deb", distro_id or "debian", name, version, arch=arch, distro=distro, upstream=upstream
    )


def apk_purl(
    name: str,
    version: str,
    arch: str,
    *,
    origin: str = "",
    distro_id: str = "alpine",
    distro_version: str = "",
) -> str:
    upstream = origin if origin and origin != name else ""
    distro = distro_qualifier(distro_id, distro_version)
    return _distro_purl(
        "apk", distro_id or "alpine", name, version, arch=arch, distro=distro, upstream=upstream
    )


def pypi_purl(name: str, version: str) -> str:
    return str(PackageURL(type="pypi", name=name, version=version).to_string())


def npm_purl(name: str, version: str) -> str:
    namespace = None
    if name.startswith("@") and "/" in name:
        namespace, name = name.split("/", 1)
    return str(PackageURL(type="npm", namespace=namespace, name=name, version=version).to_string())


def oci_purl(
    name: str, digest: str, *, arch: str = "", repository_url: str = "", tag: str = ""
) -> str:
    """``pkg:oci/NAME@sha256%3A…?arch=…&repository_url=…`` per the purl spec's oci type.

    The spec writes the digest's ``:`` percent-encoded; packageurl-python leaves it raw, so the
    version is encoded here.
    """
    quals = _qualifiers(arch=arch, repository_url=repository_url, tag=tag)
    query = "&".join(f"{k}={quote(v, safe='/:')}" for k, v in sorted(quals.items()))
    base = f"pkg:oci/{quote(name.lower(), safe='')}@{quote(digest, safe='')}"
    return f"{base}?{query}" if query else base
