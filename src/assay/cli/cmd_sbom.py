"""``assay sbom IMAGE``: catalogue an image (or a directory) and print its SBOM."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from assay.cli import _console
from assay.errors import UsageError
from assay.sbom.formats import SbomFormat


def register(app: typer.Typer) -> None:
    @app.command("sbom")
    def sbom(
        image: str = typer.Argument(
            ...,
            metavar="IMAGE",
            help=(
                "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], dir:PATH, "
                "or HOST/REPO[:TAG][@sha256:…]"
            ),
        ),
        output: SbomFormat = typer.Option(
            SbomFormat.SPDX_JSON,
            "--output",
            "-o",
            envvar="ASSAY_SBOM_OUTPUT",
            help="spdx-json, cyclonedx-json, table or json (assay's inventory).",
        ),
        file: Path | None = typer.Option(
            None,
            "--file",
            envvar="ASSAY_SBOM_FILE",
            help="Write to FILE (atomically, once complete) instead of stdout.",
        ),
        old_file: Path | None = typer.Option(
            None, "-f", hidden=True, help="Deprecated spelling of --file."
        ),
        arch: str = typer.Option(
            "",
            "--arch",
            envvar="ASSAY_ARCH",
            help="Architecture to pick from a multi-arch image (default: this machine's).",
        ),
        insecure_registry: bool = typer.Option(
            False,
            "--insecure-registry",
            envvar="ASSAY_INSECURE_REGISTRY",
            help="Allow plain HTTP to a non-loopback registry (unsafe).",
        ),
    ) -> None:
        """Catalogue IMAGE's packages (dpkg, apk, Python, npm) and print an SBOM.

        The timestamp comes from SOURCE_DATE_EPOCH when set, else the image's creation time,
        so the same image gives byte-identical output. Exit codes: 0 ok; 1 a digest check
        failed or a registry could not be reached; 2 bad arguments or malformed input.
        """
        from assay.sbom.formats import render
        from assay.sbom.image import catalog_image

        if old_file is not None:
            _console.warn("sbom -f is deprecated; use --file")
            file = file or old_file
        if insecure_registry:
            _console.warn("--insecure-registry: registry traffic may be read or altered in transit")
        raw_epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        if raw_epoch and not raw_epoch.isdigit():
            raise UsageError(f"SOURCE_DATE_EPOCH={raw_epoch!r} is not a non-negative integer")
        inventory = catalog_image(
            image,
            architecture=arch,
            insecure=insecure_registry,
            source_date_epoch=int(raw_epoch) if raw_epoch else None,
        )
        data = render(inventory, output)
        if file is not None and file.exists() and not file.is_file():
            # /dev/null, a FIFO, /dev/stdout: write into it; an atomic rename would replace it
            with open(file, "wb") as fh:
                fh.write(data)
        else:
            _console.emit(data, file)
        if file is not None:
            _console.info(f"wrote {len(inventory.packages)} packages to {file}")
