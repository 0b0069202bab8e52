"""``assay build``: build the image a spec describes, write its evidence, optionally push+sign."""

from __future__ import annotations

import contextlib
import json
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from assay.cli import _console, _options

if TYPE_CHECKING:
    from assay.attest.keys import SigningKey
    from assay.oci.reference import ImageRef

HELP = """Build a minimal, reproducible OCI image from SPEC (YAML).

Uses SPEC's lock (NAME.lock.json) when present and current, or resolves and writes it. Writes the
image to --dest (oci:DIR[:TAG] or oci-archive:FILE[:TAG]), and beside it the evidence:
NAME-TAG-ARCH.spdx.json, NAME-TAG-ARCH.cdx.json and NAME-TAG-ARCH.provenance.json (NAME: the
layout directory's or archive's name; TAG: the --dest tag, default latest). An existing archive,
layout tag or evidence file is not overwritten without --force. A single-platform image is
tagged directly (its manifest); several platforms get an image index. With --push the image is
pushed to a registry (without --dest it is built in a temporary layout that is removed
afterwards); with --sign-key it is also signed and the SBOMs and provenance attached as signed
attestations. -o json prints the result as JSON on stdout; -q prints only the index digest.
"""


class BuildOutput(StrEnum):
    """What ``build -o`` prints on stdout."""

    text = "text"
    json = "json"


def build(
    spec: Path = typer.Argument(..., help="The image spec (YAML).", exists=True, dir_okay=False),
    dest: str | None = typer.Option(
        None,
        "--dest",
        envvar="ASSAY_BUILD_DEST",
        help="Where to write the image: oci:DIR[:TAG] or oci-archive:FILE[:TAG] "
        "(optional with --push).",
    ),
    source_date_epoch: int | None = typer.Option(
        None,
        "--source-date-epoch",
        min=0,
        help="Timestamp for every file and the config (default: $SOURCE_DATE_EPOCH, the spec's, "
        "else the newest Release date in the lock).",
    ),
    compression: str = typer.Option(
        "gzip", "--compression", envvar="ASSAY_COMPRESSION", help="Layer compression: gzip or zstd."
    ),
    arch: list[str] = typer.Option(
        [], "--arch", help="Build only these architectures (default: the spec's archs)."
    ),
    evidence_dir: Path | None = typer.Option(
        None,
        "--evidence-dir",
        envvar="ASSAY_EVIDENCE_DIR",
        help="Where SBOMs and provenance go (default: the layout dir, or beside the archive).",
    ),
    builder_id: str | None = typer.Option(
        None,
        "--builder-id",
        envvar="ASSAY_BUILDER_ID",
        help="runDetails.builder.id in the provenance.",
    ),
    push: str | None = typer.Option(
        None, "--push", help="Also push to this registry reference (HOST/REPO[:TAG])."
    ),
    sign_key: Path | None = _options.PUSH_SIGN_KEY,
    insecure_registry: bool = _options.INSECURE_PLAIN_HTTP,
    output: BuildOutput = typer.Option(
        BuildOutput.text,
        "--output",
        "-o",
        envvar="ASSAY_BUILD_OUTPUT",
        help="text (digest on stdout, table on stderr) or json (the result on stdout).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", envvar="ASSAY_QUIET", help="No progress, no table: only the data."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        envvar="ASSAY_FORCE",
        help="Overwrite an existing archive, layout tag or evidence files.",
    ),
    find_links: Path | None = typer.Option(
        None,
        "--find-links",
        metavar="DIR",
        envvar="ASSAY_FIND_LINKS",
        help="The wheelhouse the lock's find-links wheels come from (default: the spec's "
        "python.find-links); each wheel is checked against the lock's sha256.",
    ),
    old_dest: str | None = typer.Option(
        None, "-O", hidden=True, help="Deprecated spelling of --dest."
    ),
    old_json: bool = typer.Option(False, "--json", hidden=True, help="Deprecated: use -o json."),
) -> None:
    from assay.errors import UsageError
    from assay.oci.reference import parse_image_ref

    _console.state.quiet = quiet
    if old_dest is not None:
        _console.warn("build -O is deprecated; use --dest")
        dest = dest or old_dest
    if old_json:
        _console.warn("build --json is deprecated; use -o json")
        output = BuildOutput.json
    if compression not in ("gzip", "zstd"):
        raise UsageError(f"--compression must be gzip or zstd, not {compression!r}")
    if sign_key is not None and push is None:
        raise UsageError("--sign-key needs --push: signatures live in the registry")
    if dest is None and push is None:
        raise UsageError("give --dest oci:DIR[:TAG] (or oci-archive:FILE) and/or --push HOST/REPO")
    if dest is not None and not force:
        _refuse_overwrite(spec, parse_image_ref(dest), arch, evidence_dir)
    key = None
    if sign_key is not None:  # ask for the passphrase before the build, not after it
        from assay.cli.cmd_sign import load_signing_key

        key = load_signing_key(sign_key)
    with contextlib.ExitStack() as stack:
        if dest is None:  # --push alone: build into a layout that goes away afterwards
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="assay-build-"))
            dest = f"oci:{Path(tmp) / 'layout'}"
        _build(
            spec,
            parse_image_ref(dest),
            key,
            source_date_epoch,
            compression,
            arch,
            evidence_dir,
            builder_id,
            push,
            insecure_registry,
            output,
            quiet,
            find_links=find_links,
        )


def _refuse_overwrite(
    spec: Path, ref: ImageRef, arch: list[str], evidence_dir: Path | None
) -> None:
    """Without --force, nothing a build would write may exist yet (checked before building)."""
    from assay.build.evidence import evidence_paths, existing_outputs
    from assay.build.spec import ImageSpec
    from assay.errors import UsageError

    if ref.transport not in ("oci", "oci-archive"):
        return  # build_image refuses it with its own message
    if evidence_dir is None:
        evidence_dir = Path(ref.path) if ref.transport == "oci" else Path(ref.path).parent
    archs = arch or list(ImageSpec.from_file(spec).archs)
    taken = existing_outputs(ref, evidence_paths(ref, evidence_dir, archs))
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UsageError(
            f"{taken[0]} already exists{more}; pass --force to overwrite, or choose another "
            "--dest/--evidence-dir"
        )


def _build(
    spec: Path,
    ref: ImageRef,
    key: SigningKey | None,
    source_date_epoch: int | None,
    compression: str,
    arch: list[str],
    evidence_dir: Path | None,
    builder_id: str | None,
    push: str | None,
    insecure_registry: bool,
    output: BuildOutput,
    quiet: bool,
    *,
    find_links: Path | None = None,
) -> None:
    from assay.build.builder import BuildOptions, build_image
    from assay.build.evidence import write_evidence
    from assay.build.provenance import DEFAULT_BUILDER_ID, now
    from assay.cli._progress import CliObserver  # rich.progress: only for a build that runs
    from assay.oci.mediatypes import INDEX_TYPES

    started = now()
    options = BuildOptions(
        source_date_epoch=source_date_epoch,
        compression=compression,  # type: ignore[arg-type]
        archs=arch or None,  # cache: assay.cachedir (ASSAY_CACHE_DIR, else XDG)
        find_links=find_links,
    )
    with CliObserver(enabled=not quiet) as observer:
        result = build_image(spec, ref, options=options, observer=observer)
        if evidence_dir is None:
            evidence_dir = Path(ref.path) if ref.transport == "oci" else Path(ref.path).parent
        observer.stage("writing SBOMs and provenance")
        evidence = write_evidence(
            result,
            evidence_dir,
            builder_id=builder_id or DEFAULT_BUILDER_ID,
            started=started,
            finished=now(),
        )
        pushed: dict[str, Any] | None = None
        if push is not None:
            from assay.build.publish import publish

            if insecure_registry:
                _console.warn("--insecure-registry: plain HTTP / unverified TLS to the registry")
            pushed = publish(
                result, evidence, push, key=key, insecure=insecure_registry, observer=observer
            )
    if result.lock_written:
        _console.info(f"wrote lock {result.spec_path.with_suffix('')}.lock.json")
    for image in result.images:
        for line in image.assembly.setuid_dropped:
            _console.warn(f"setuid/setgid bit dropped: {line} (allow it with setuid-allow)")
        for line in image.assembly.warnings:
            _console.warn(line)
    summary = {
        "output": str(ref),
        "digest": result.index.digest,  # what the tag names
        "mediaType": result.index.media_type,
        "sourceDateEpoch": result.source_date_epoch,
        "images": [
            {
                "arch": img.arch,
                "platform": str(img.platform),
                "digest": img.manifest.digest,
                "layers": len(img.layers) + (len(img.base.layers) if img.base else 0),
                "compressedSize": img.compressed_size,
                "uncompressedSize": img.uncompressed_size,
                "packages": len(img.packages),
                "setuidDropped": img.assembly.setuid_dropped,
            }
            for img in result.images
        ],
        "evidence": {e.arch: {k: str(v) for k, v in e.files.items()} for e in evidence},
    }
    if result.index.media_type in INDEX_TYPES:  # several platforms
        summary["index"] = result.index.digest
    if pushed is not None:
        summary["pushed"] = pushed
    if output == BuildOutput.json:
        _console.emit(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return
    if quiet:
        typer.echo(result.index.digest)
        return
    from rich.table import Table

    kind = "index" if result.index.media_type in INDEX_TYPES else "manifest"
    table = Table(title=f"{ref}  {kind} {result.index.digest}", title_justify="left")
    for col in ("arch", "digest", "layers", "size (compressed)", "unpacked", "packages"):
        table.add_column(col, justify="right" if col in ("layers", "packages") else "left")
    for img in result.images:
        table.add_row(
            img.arch,
            img.manifest.digest,
            str(len(img.layers)),
            _human(img.compressed_size),
            _human(img.uncompressed_size),
            str(len(img.packages)),
        )
    _console.err.print(table)
    if pushed is not None:
        _console.info(f"pushed {pushed['reference']}")
    typer.echo(result.index.digest)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1000
    return f"{n} B"


def register(app: typer.Typer) -> None:
    app.command("build", help=HELP)(build)
