"""``assay run IMAGE -- ARGS`` and ``assay inspect IMAGE``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from assay.cli import _console
from assay.cli._choices import TextJson

RUN_HELP = """Run IMAGE (oci:DIR[:TAG] or oci-archive:FILE) for this host's architecture.

Arguments after -- replace the image's Cmd (the Entrypoint stays). The process runs as the
image's user, with no network, a read-only root and a tmpfs /tmp; the exit code is passed
through. For smoke tests and demos; needs root and the runc package.
"""


def run(
    image: str = typer.Argument(..., help="oci:DIR[:TAG] or oci-archive:FILE[:TAG]"),
    args: list[str] = typer.Argument(None, help="Arguments (after --) replacing the image's Cmd."),
    arch: str | None = typer.Option(None, "--arch", help="Platform to run (default: this host's)."),
    entrypoint: str | None = typer.Option(
        None, "--entrypoint", help="Replace the image's Entrypoint with this program."
    ),
    keep_bundle: Path | None = typer.Option(
        None, "--keep-bundle", help="Unpack into this directory and leave it there."
    ),
) -> None:
    from assay.build.run import run_image
    from assay.oci.reference import parse_image_ref

    argv = list(args or [])
    if argv[:1] == ["--"]:
        argv = argv[1:]
    code = run_image(
        parse_image_ref(image), argv, arch=arch, keep=keep_bundle, entrypoint=entrypoint
    )
    sys.stdout.flush()
    raise typer.Exit(code)


def inspect(
    image: str = typer.Argument(..., help="oci:DIR[:TAG], oci-archive:FILE or docker-archive:FILE"),
    output: TextJson = typer.Option(
        TextJson.text, "--output", "-o", envvar="ASSAY_INSPECT_OUTPUT", help="text or json"
    ),
) -> None:
    """Show an image's digest, platforms, user, entrypoint, size and package count."""
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    ref = parse_image_ref(image)
    with open_local_image(ref) as source:
        digest = source.digest
        platforms: list[dict[str, Any]] = []
        for img in source.manifests():
            cfg = img.config.get("config") or {}
            packages = _count_packages(source, img)
            platforms.append(
                {
                    "platform": str(img.platform),
                    "digest": img.digest,
                    "user": cfg.get("User", ""),
                    "entrypoint": cfg.get("Entrypoint"),
                    "cmd": cfg.get("Cmd"),
                    "workingDir": cfg.get("WorkingDir", ""),
                    "env": cfg.get("Env", []),
                    "created": img.config.get("created", ""),
                    "layers": len(img.layers),
                    "compressedSize": sum(d.size for d in img.layers),
                    "packages": packages,
                }
            )
    doc = {"reference": str(ref), "digest": digest, "platforms": platforms}
    if output == "json":
        _console.emit(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    lines = [f"{ref}", f"  digest    {digest}"]
    for p in platforms:
        lines += [
            f"  {p['platform']}",
            f"    digest      {p['digest']}",
            f"    user        {p['user'] or '(root)'}",
            f"    entrypoint  {json.dumps(p['entrypoint'])}   cmd {json.dumps(p['cmd'])}",
            f"    created     {p['created']}",
            f"    layers      {p['layers']} ({p['compressedSize']:,} bytes compressed)",
            f"    packages    {p['packages']}",
        ]
    _console.emit("\n".join(lines) + "\n")


def _count_packages(source: Any, img: Any) -> int:
    """Debian packages in the image, as ``assay sbom`` finds them (layers applied as a runtime
    applies them, so a hardlinked or symlinked dpkg database counts)."""
    from assay.sbom.catalogers import CatalogContext, DpkgCataloger
    from assay.sbom.source import image_view

    dpkg = DpkgCataloger()
    view = image_view(source, img, dpkg.wants)
    return len({p.name for p in dpkg.catalog(view, CatalogContext())})


def register(app: typer.Typer) -> None:
    app.command("run", help=RUN_HELP, context_settings={"allow_interspersed_args": False})(run)
    app.command("inspect")(inspect)
