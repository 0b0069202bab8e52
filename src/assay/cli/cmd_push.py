"""``assay push SRC DEST`` and ``assay copy SRC DEST``: images between layouts and registries."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from assay.cli import _console
from assay.errors import UsageError

if TYPE_CHECKING:
    from assay.attest.copy_evidence import CopiedEvidence
    from assay.oci.layout import OciLayout
    from assay.oci.push import CopyResult, PushEvent
    from assay.oci.reference import ImageRef
    from assay.oci.registry import RegistryClient

__all__ = ["register"]


class PushOutput(StrEnum):
    text = "text"
    json = "json"


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _progress(quiet: bool) -> Callable[[PushEvent], None]:
    def show(event: PushEvent) -> None:
        if quiet:
            return
        short = event.digest.split(":", 1)[-1][:12]
        if event.kind == "tag":
            _console.info(f"tagged {event.reference} -> {event.digest}")
        elif event.kind == "manifest":
            _console.info(f"manifest {short}: {event.status}")
        else:
            _console.info(f"blob {short} ({_human(event.size)}): {event.status}")

    return show


def _client(host: str, insecure: bool) -> RegistryClient:
    from assay.oci.registry import RegistryClient, is_loopback_host

    if insecure and not is_loopback_host(host):
        _console.warn(
            f"--insecure-registry: talking to {host} without TLS verification (or over plain "
            "HTTP); anyone on the path can read and change the traffic"
        )
    return RegistryClient(host, insecure=insecure)


@contextlib.contextmanager
def _local_layout(ref_path: str, transport: str) -> Iterator[OciLayout]:
    from assay.oci.archive import open_oci_archive
    from assay.oci.layout import OciLayout

    if transport == "oci":
        yield OciLayout.open(ref_path)
    elif transport == "oci-archive":
        with open_oci_archive(ref_path) as lay:
            yield lay
    else:
        raise UsageError(
            f"{transport}: sources cannot be pushed directly; use oci:DIR[:TAG] or "
            "oci-archive:FILE[:TAG]"
        )


def _emit(result: CopyResult, dest_name: str, output: PushOutput) -> None:
    if output is PushOutput.json:
        doc = {"reference": f"{dest_name}@{result.digest}", **result.to_json()}
        _console.emit(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        _console.emit(result.digest + "\n")


def _summary(result: CopyResult, verb: str) -> None:
    _console.info(
        f"{verb} {result.digest}: {result.uploaded} blob(s) {verb} "
        f"({_human(result.uploaded_bytes)}), {result.skipped} already present, "
        f"{result.mounted} mounted"
    )


_INSECURE = typer.Option(
    False,
    "--insecure-registry",
    envvar="ASSAY_INSECURE_REGISTRY",
    help="Allow plain HTTP or unverified TLS to a non-loopback registry (unsafe; warns). "
    "Loopback registries (127.0.0.0/8, localhost, [::1]) use plain HTTP anyway.",
)
_QUIET = typer.Option(False, "--quiet", "-q", envvar="ASSAY_QUIET", help="No progress, no summary.")


def _carry(
    sc: RegistryClient,
    src_repo: str,
    dc: RegistryClient,
    dst_repo: str,
    subjects: list[str],
    kinds: frozenset[str] | None,
    progress: Callable[[PushEvent], None],
) -> list[CopiedEvidence]:
    from assay.attest.copy_evidence import EVIDENCE_KINDS, copy_evidence

    return copy_evidence(
        sc, src_repo, dc, dst_repo, subjects, kinds or frozenset(EVIDENCE_KINDS), progress
    )


def _evidence_summary(carried: list[CopiedEvidence]) -> None:
    done = [c for c in carried if not c.skipped]
    counts = {k: sum(1 for c in done if c.kind == k) for k in ("sig", "att", "sbom")}
    _console.info(
        f"evidence carried: {counts['sig']} signature, {counts['att']} attestation and "
        f"{counts['sbom']} SBOM manifest(s)"
    )
    for c in carried:
        if c.skipped:
            _console.warn(f"{c.kind} {c.digest} of {c.subject} not copied: {c.skipped}")


def _copy_evidence_only(
    sc: RegistryClient,
    s: ImageRef,
    dc: RegistryClient,
    d: ImageRef,
    kinds: frozenset[str],
    progress: Callable[[PushEvent], None],
    output: PushOutput,
) -> None:
    """``copy --only``: the evidence of the source image and its platforms, not the image."""
    from assay.attest import remote

    ref = remote.ImageRef.from_reference(s)
    image = remote.resolve(
        sc, remote.ImageRef(ref.host, ref.repository, ref.tag or "latest", ref.digest)
    )
    subjects = [str(x.image.digest) for x in remote.subjects(sc, image)]
    carried = _carry(sc, s.repository, dc, d.repository, subjects, kinds, progress)
    _evidence_summary(carried)
    if output is PushOutput.json:
        doc = {"digest": image.digest, "evidence": [c.to_json() for c in carried]}
        _console.emit(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        _console.emit(image.digest + "\n")


def register(app: typer.Typer) -> None:
    @app.command("push")
    def push(
        src: str = typer.Argument(..., help="oci:DIR[:TAG] or oci-archive:FILE[:TAG]"),
        dest: str = typer.Argument(
            ...,
            help="HOST[:PORT]/REPO[:TAG] (docker:// optional); without :TAG the image is "
            "pushed by digest only (untagged).",
        ),
        insecure_registry: bool = _INSECURE,
        output: PushOutput = typer.Option(
            PushOutput.text,
            "--output",
            "-o",
            envvar="ASSAY_PUSH_OUTPUT",
            help="text: the pushed digest; json: digest, per-platform manifests, blob counts.",
        ),
        jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=32, help="Parallel blob uploads."),
        quiet: bool = _QUIET,
    ) -> None:
        """Push an image (single or multi-arch) with all its blobs to a registry.

        Blobs the registry already has are skipped, so a second push uploads nothing. Prints the
        pushed digest on stdout. Credentials: ~/.docker/config.json, REGISTRY_AUTH_FILE or
        $XDG_RUNTIME_DIR/containers/auth.json (credential helpers are not run).

        Exit codes: 0 pushed; 1 registry or verification failure; 2 bad arguments or input.
        """
        from assay.oci.push import push_image
        from assay.oci.reference import parse_image_ref

        _console.state.quiet = quiet
        src_ref = parse_image_ref(src)
        dest_ref = parse_image_ref(dest)
        if not dest_ref.is_registry:
            raise UsageError(f"{dest}: push needs a registry destination (HOST/REPO[:TAG])")
        with (
            _local_layout(src_ref.path, src_ref.transport) as lay,
            _client(dest_ref.registry, insecure_registry) as client,
        ):
            result = push_image(
                lay,
                src_ref.tag or None,
                dest_ref,
                client,
                _progress(quiet),
                jobs=jobs,
            )
        _summary(result, "pushed")
        _emit(result, dest_ref.name, output)

    @app.command("copy")
    def copy(
        src: str = typer.Argument(..., help="oci:DIR[:TAG], oci-archive:FILE[:TAG] or HOST/REPO…"),
        dest: str = typer.Argument(..., help="HOST/REPO[:TAG] or oci:DIR[:TAG]"),
        insecure_registry: bool = _INSECURE,
        output: PushOutput = typer.Option(
            PushOutput.text, "--output", "-o", envvar="ASSAY_PUSH_OUTPUT", help="text or json"
        ),
        jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=32, help="Parallel transfers."),
        quiet: bool = _QUIET,
        only: str | None = typer.Option(
            None,
            "--only",
            envvar="ASSAY_COPY_ONLY",
            help="Registry to registry: copy only this evidence, not the image (comma-separated "
            "sig,att,sbom — as cosign copy --only).",
        ),
    ) -> None:
        """Copy an image: layout → registry, registry → layout, or registry → registry.

        All platforms of an index are copied. Registry-to-registry copies on one host mount
        blobs instead of sending them again. Everything is verified against its digest.
        Registry to registry, the image's signatures, attestations and SBOMs come along (as
        cosign copy): cosign's .sig/.att/.sbom tags and OCI 1.1 referrers, of the index and of
        every platform manifest. --only sig,att,sbom copies just those, without the image.
        """
        from assay.oci.push import copy_image, pull_image, push_image
        from assay.oci.reference import parse_image_ref

        _console.state.quiet = quiet
        s = parse_image_ref(src)
        d = parse_image_ref(dest)
        progress = _progress(quiet)
        kinds = None
        if only is not None:
            from assay.attest.copy_evidence import parse_kinds

            kinds = parse_kinds(only)
            if not (s.is_registry and d.is_registry):
                raise UsageError("--only copies evidence between registries: give two HOST/REPO")
        if not s.is_registry and d.is_registry:
            with (
                _local_layout(s.path, s.transport) as lay,
                _client(d.registry, insecure_registry) as client,
            ):
                result = push_image(lay, s.tag or None, d, client, progress, jobs=jobs)
            _summary(result, "uploaded")
            _emit(result, d.name, output)
        elif s.is_registry and d.transport == "oci":
            with _client(s.registry, insecure_registry) as client:
                result = pull_image(client, s, Path(d.path), d.tag or None, progress, jobs=jobs)
            _summary(result, "downloaded")
            _emit(result, str(d), output)
        elif s.is_registry and d.is_registry:
            with contextlib.ExitStack() as stack:
                sc = stack.enter_context(_client(s.registry, insecure_registry))
                dc = sc
                if d.registry != s.registry:
                    dc = stack.enter_context(_client(d.registry, insecure_registry))
                if kinds is not None:
                    _copy_evidence_only(sc, s, dc, d, kinds, progress, output)
                    return
                result = copy_image(sc, s, dc, d, progress, jobs=jobs)
                subjects = [str(result.digest), *(str(m.digest) for m in result.manifests)]
                carried = _carry(sc, s.repository, dc, d.repository, subjects, None, progress)
            _summary(result, "uploaded")
            _evidence_summary(carried)
            if output is PushOutput.json:
                doc = {
                    "reference": f"{d.name}@{result.digest}",
                    **result.to_json(),
                    "evidence": [c.to_json() for c in carried],
                }
                _console.emit(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            else:
                _console.emit(result.digest + "\n")
        else:
            raise UsageError(
                f"cannot copy {s.transport}: to {d.transport}:; supported: oci/oci-archive → "
                "registry, registry → oci, registry → registry"
            )
