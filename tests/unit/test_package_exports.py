"""``assay.oci``, ``assay.attest`` and ``assay.sbom`` load their exports on first use (PEP 562,
one helper: ``assay._lazy``): every exported name still resolves, to the object its module
defines, and nothing else is invented."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["assay.oci", "assay.attest", "assay.sbom"])
def test_every_export_resolves(package: str) -> None:
    pkg = importlib.import_module(package)
    assert set(pkg.__all__) == set(pkg._EXPORTS)
    for name in pkg.__all__:
        module = importlib.import_module(pkg._EXPORTS[name])
        assert getattr(pkg, name) is getattr(module, name), name
        assert name in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pkg.nope


def test_a_submodule_does_not_load_its_siblings() -> None:
    code = (
        "import sys, assay.oci.digest, assay.attest.intoto\n"
        "print(sorted(m for m in ('assay.oci.archive', 'assay.oci.layer', 'assay.oci.source',"
        " 'assay.attest.keys', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
