"""Catalogers over a directory rootfs built by tests/assets/sbom/foreign_rootfs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.sbom.catalog import catalog_view, wants_any
from assay.sbom.catalogers import default_catalogers
from assay.sbom.catalogers._deps import link_dependencies
from assay.sbom.catalogers.dpkg import parse_control_paragraphs, parse_source_field
from assay.sbom.fs import read_directory
from assay.sbom.model import Inventory, Package
from fixtures.assets import sbom_asset

fixtures = sbom_asset("foreign_rootfs")


def _catalog(root: Path) -> Inventory:
    cats = default_catalogers()
    view = read_directory(root, wants_any(cats))
    return catalog_view(
        view,
        subject_name="t",
        subject_digest="sha256:" + "0" * 64,
        architecture="amd64",
        catalogers=cats,
    )


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    root = tmp_path_factory.mktemp("debian")
    fixtures.build_debian_rootfs(root)
    return _catalog(root)


def test_dpkg_packages_and_fields(debian: Inventory) -> None:
    debs = {p.name: p for p in debian.packages if p.ecosystem == "deb"}
    # oldpkg is "deinstall ok config-files": not installed, not reported
    assert sorted(debs) == [
        "base-files",
        "bison",
        "gcc-12-base",
        "libc6",
        "libgcc-s1",
        "python3-six",
        "zlib1g",
    ]
    bison = debs["bison"]
    assert (bison.source_name, bison.source_version) == ("bison", "2:3.8.2+dfsg-1")
    assert bison.license_expression == "GFDL-1.3-no-invariants-or-later AND GPL-3.0-or-later"
    assert bison.supplier == "Chuan-kai Lin <cklin@debian.org>"
    libc = debs["libc6"]
    assert libc.depends_on == (debs["libgcc-s1"].purl,)
    assert "/usr/lib/x86_64-linux-gnu/libc.so.6" in libc.files  # from info/libc6:amd64.list
    assert debs["base-files"].license_expression == ""  # not DEP-5: NOASSERTION, not a guess
    assert debian.distro is not None and debian.distro.version_id == "12"


def test_language_packages(debian: Inventory) -> None:
    others = {(p.ecosystem, p.name, p.version) for p in debian.packages if p.ecosystem != "deb"}
    assert others == {
        ("pypi", "requests", "2.31.0"),
        ("pypi", "foo-bar", "1.0"),
        ("pypi", "legacy-egg", "0.4"),
        ("npm", "left-pad", "1.3.0"),
        ("npm", "@scope/util", "2.0.1"),
        ("npm", "ms", "2.1.3"),
    }
    util = next(p for p in debian.packages if p.name == "@scope/util")
    assert util.depends_on == ("pkg:npm/left-pad@1.3.0",)
    assert util.supplier == "Scope Maintainers <dev@scope.example>"
    requests = next(p for p in debian.packages if p.name == "requests")
    assert "/usr/local/lib/python3.11/dist-packages/requests/__init__.py" in requests.files


def test_python_package_owned_by_dpkg_is_reported_once(debian: Inventory) -> None:
    assert not any(p.purl == "pkg:pypi/six@1.16.0" for p in debian.packages)
    six = next(p for p in debian.packages if p.name == "python3-six")
    assert six.embedded == ("pkg:pypi/six@1.16.0",)


def test_distroless_status_d(tmp_path: Path) -> None:
    fixtures.build_distroless_rootfs(tmp_path)
    inv = _catalog(tmp_path)
    names = sorted(p.name for p in inv.packages)
    assert "python3-six" in names and "six" not in names and "oldpkg" not in names
    six = next(p for p in inv.packages if p.name == "python3-six")
    assert "/usr/lib/python3/dist-packages/six.py" in six.files  # from status.d/*.md5sums
    assert six.embedded == ("pkg:pypi/six@1.16.0",)


def test_apk(tmp_path: Path) -> None:
    fixtures.build_alpine_rootfs(tmp_path)
    inv = _catalog(tmp_path)
    by_name = {p.name: p for p in inv.packages}
    assert sorted(by_name) == ["busybox", "busybox-binsh", "musl"]
    assert by_name["busybox-binsh"].depends_on == (by_name["busybox"].purl,)
    assert by_name["musl"].files == ("/lib/ld-musl-x86_64.so.1",)
    assert by_name["musl"].license_expression == "MIT"


def test_control_parser_and_source_field() -> None:
    paras = list(parse_control_paragraphs("Package: a\nDescription: x\n more\n\n\nPackage: b\n"))
    assert paras == [{"Package": "a", "Description": "x\nmore"}, {"Package": "b"}]
    assert parse_source_field("glibc", "2.36-9") == ("glibc", "2.36-9")
    assert parse_source_field("bison (2:3.8.2+dfsg-1)", "2:3.8.2+dfsg-1+b1") == (
        "bison",
        "2:3.8.2+dfsg-1",
    )


def test_no_packages_is_an_empty_inventory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    assert _catalog(tmp_path).packages == ()


def test_link_dependencies_names_to_purls() -> None:
    def pkg(name: str) -> Package:
        return Package(name=name, version="1", ecosystem="pypi", purl=f"pkg:pypi/{name}@1")

    a, b, c = pkg("a"), pkg("b"), pkg("c")
    # Default: a package answers to its own name; unknown names and self-edges are dropped.
    linked = link_dependencies([(a, ["c", "b", "missing", "a"]), (b, []), (c, ["b"])])
    assert [p.depends_on for p in linked] == [
        ("pkg:pypi/b@1", "pkg:pypi/c@1"),
        (),
        ("pkg:pypi/b@1",),
    ]
    # A name map (apk's provides): "sh" resolves to b.
    linked = link_dependencies([(a, ["sh"]), (b, [])], {"sh": [b.purl], "a": [a.purl]})
    assert [p.depends_on for p in linked] == [("pkg:pypi/b@1",), ()]


@pytest.mark.parametrize("ecosystem", ["npm", "python"])
def test_npm_and_python_catalogers_stop_at_the_package_limit(ecosystem: str) -> None:
    """The cataloger itself refuses the package past MAX_PACKAGES (memory: it used to build
    every package of a 200,000-manifest layer before catalog_view counted them)."""
    from assay.errors import InputError
    from assay.sbom.catalogers.interface import MAX_PACKAGES, CatalogContext
    from assay.sbom.catalogers.npm import NpmCataloger
    from assay.sbom.catalogers.python import PythonCataloger
    from assay.sbom.fs import MemoryFileView

    view = MemoryFileView()
    cataloger: NpmCataloger | PythonCataloger
    for i in range(MAX_PACKAGES + 1):
        if ecosystem == "npm":
            cataloger = NpmCataloger()
            doc = b'{"name": "p%d", "version": "1"}' % i
            view.add_file(f"node_modules/p{i}/package.json", doc)
        else:
            cataloger = PythonCataloger()
            meta = b"Name: p%d\nVersion: 1\n" % i
            view.add_file(f"site-packages/p{i}-1.dist-info/METADATA", meta)
    with pytest.raises(InputError, match=f"more than {MAX_PACKAGES} packages"):
        cataloger.catalog(view, CatalogContext())
    view.remove(sorted(view.files)[0])  # exactly the limit: accepted
    assert len(cataloger.catalog(view, CatalogContext())) == MAX_PACKAGES
