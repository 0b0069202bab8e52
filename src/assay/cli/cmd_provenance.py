"""``assay verify-provenance`` and ``assay rebuild``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from assay.cli import _console, _options
from assay.cli._choices import TextJson

VERIFY_HELP = """Verify the SLSA provenance attached to IMAGE (slsa-verifier style).

The provenance attestation's signature must verify with --key, its subject must be the image's
digest (each platform's manifest for an index), runDetails.builder.id must equal --builder-id,
and the source repository/commit must match when given. Exit 0 when every platform passes.
"""

REBUILD_HELP = """Rebuild IMAGE from its provenance alone and compare digests.

The provenance comes from IMAGE's verified slsaprovenance1 attestation (--key), or from
--provenance FILE. Every .deb is fetched by its sha256 into a fresh temporary cache (from the
recorded URI, or --snapshot-mirror when the mirror no longer serves that version). Exit 0 when
every platform's rebuilt manifest digest equals both the provenance subject and IMAGE's manifest
for that platform (when IMAGE is given); otherwise print a file-level diff and exit 1.

A spec that reads files beside it (paths[].source, python.requirements and find-links, relative
keyrings) needs --source DIR: the checkout it came from (the spec's directory in it is that of
the recorded source.path, else DIR itself). The recorded spec text is built, not DIR's copy (a
different copy is only noted); each file must have the sha256 the provenance records, else
exit 1 naming it. Without --source such a spec exits 2 naming the first file it needs.

With --attest --sign-key KEY (IMAGE in a registry), each reproduced platform image gets a signed
reproducibility attestation (predicate type https://assay.dev/attestations/reproducible/v1,
short name `reproducible`) naming --rebuilder-id, so an ImagePolicy `require.reproducible` can
admit it. Nothing is attested unless every platform was reproduced.
"""


def _platform_refs(
    image: str, insecure: bool, platform: str | None = None
) -> tuple[Any, list[tuple[str, str]]]:
    """(registry ref, [(arch, manifest digest)]) for a registry IMAGE (index or manifest):
    every platform image, or only those matching ``platform`` (os/arch[/variant])."""
    from assay.attest import remote
    from assay.errors import VerificationError
    from assay.oci.push import open_registry_image
    from assay.oci.reference import parse_image_ref

    ref = parse_image_ref(image)
    rref = remote.ImageRef.from_reference(ref)  # refuses anything not in a registry
    with open_registry_image(ref, insecure=insecure) as source:
        images = source.manifests()
    chosen = [
        img
        for img in images
        if platform is None or remote.platform_matches(str(img.platform), platform)
    ]
    if not chosen:
        have = ", ".join(str(img.platform) for img in images) or "none"
        raise VerificationError(f"{image} has no {platform} image (it has: {have})")
    return rref, [(img.platform.architecture, str(img.digest)) for img in chosen]


def _statements(
    image: str, key: Path, insecure: bool, platform: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    from assay.attest import remote
    from assay.cli.cmd_sign import load_verification_key
    from assay.oci.registry import RegistryClient

    public = load_verification_key(key)
    rref, platforms = _platform_refs(image, insecure, platform)
    out: list[tuple[str, str, dict[str, Any]]] = []
    with RegistryClient(rref.host, insecure=insecure) as client:
        for arch, digest in platforms:
            pinned = remote.ImageRef(rref.host, rref.repository, None, digest)
            _image, atts = remote.verify_image_attestations(
                client, pinned, public, "slsaprovenance1"
            )
            out.append((arch, digest, atts[-1].statement))  # the most recently attached
    return out


def verify_provenance(
    image: str = typer.Argument(..., help="Registry reference HOST/REPO[:TAG][@sha256:…]"),
    key: Path = typer.Option(..., "--key", help="cosign public key (PEM)."),
    builder_id: str = typer.Option(
        ..., "--builder-id", envvar="ASSAY_EXPECTED_BUILDER_ID", help="Expected builder.id."
    ),
    source_uri: str | None = typer.Option(None, "--source-uri", help="Expected source repo."),
    source_commit: str | None = typer.Option(None, "--source-commit", help="Expected commit."),
    insecure_registry: bool = typer.Option(False, "--insecure-registry"),
    output: TextJson = typer.Option(
        TextJson.text, "--output", "-o", envvar="ASSAY_VERIFY_OUTPUT", help="text or json"
    ),
    platform: str | None = _options.PLATFORM,
) -> None:
    from assay.build.rebuild import ProvenanceCheck, check_provenance
    from assay.cli.cmd_sign import check_platform

    check_platform(platform)
    expect = ProvenanceCheck(builder_id, source_uri, source_commit)
    checked = []
    for arch, digest, statement in _statements(image, key, insecure_registry, platform):
        prov = check_provenance(statement, digest, expect)
        checked.append(
            {
                "arch": arch,
                "digest": digest,
                "builderId": prov.builder_id,
                "source": prov.source,
                "statement": statement,
            }
        )
        _console.info(f"provenance OK for {arch} {digest} (builder {prov.builder_id})")
    archs = ", ".join(str(c["arch"]) for c in checked)
    _console.info(f"checked {len(checked)} platform image(s): {archs}")
    if output == "json":
        _console.emit(json.dumps(checked, indent=2, sort_keys=True) + "\n")


def rebuild(
    image: str | None = typer.Argument(
        None, help="The image to reproduce (registry ref, or oci:DIR[:TAG] with --provenance)."
    ),
    key: Path | None = typer.Option(None, "--key", help="cosign public key (PEM)."),
    provenance: Path | None = typer.Option(
        None, "--provenance", help="Use this provenance file instead of the attestation."
    ),
    snapshot_mirror: str | None = typer.Option(
        None,
        "--snapshot-mirror",
        envvar="ASSAY_SNAPSHOT_MIRROR",
        help="Fetch .debs from this archive root (Filename appended) instead of the recorded URI.",
    ),
    source: Path | None = typer.Option(
        None,
        "--source",
        envvar="ASSAY_REBUILD_SOURCE",
        help="The checkout the spec came from, for the files it reads beside it (each checked "
        "against the digest the provenance records).",
    ),
    use_cache: bool = typer.Option(
        True,
        "--use-cache/--no-cache",
        help="Seed the fresh cache with .debs already in assay's cache (each re-hashed).",
    ),
    insecure_registry: bool = typer.Option(False, "--insecure-registry"),
    output: TextJson = typer.Option(
        TextJson.text, "--output", "-o", envvar="ASSAY_REBUILD_OUTPUT", help="text or json"
    ),
    attest: bool = typer.Option(
        False,
        "--attest",
        envvar="ASSAY_REBUILD_ATTEST",
        help="Attach a signed reproducibility attestation to each reproduced platform image.",
    ),
    sign_key: Path | None = typer.Option(
        None, "--sign-key", envvar="ASSAY_SIGN_KEY", help="cosign.key to sign --attest with."
    ),
    rebuilder_id: str = typer.Option(
        "urn:assay:rebuilder:local:v1",
        "--rebuilder-id",
        envvar="ASSAY_REBUILDER_ID",
        help="Who rebuilt (recorded in the attestation; policies can require it).",
    ),
) -> None:
    from assay.build.provenance import parse_provenance
    from assay.build.rebuild import rebuild_from_provenance
    from assay.cachedir import cache_dir
    from assay.cli._progress import CliObserver
    from assay.cli.cmd_sign import read_file
    from assay.errors import UsageError
    from assay.oci.reference import parse_image_ref

    if provenance is None and (image is None or key is None):
        raise UsageError("give IMAGE and --key (signed attestation), or --provenance FILE")
    if attest and (sign_key is None or image is None):
        raise UsageError("--attest needs --sign-key KEY and a registry IMAGE to attach it to")
    if sign_key is not None and not attest:
        raise UsageError("--sign-key is only used with --attest")
    signing = None
    if attest:
        from assay.attest import remote
        from assay.cli.cmd_sign import load_signing_key

        assert image is not None and sign_key is not None
        remote.ImageRef.from_reference(parse_image_ref(image))  # a registry image, or UsageError
        signing = load_signing_key(sign_key)  # before the (long) rebuild asks for nothing more
    provs = []
    if provenance is not None:
        provs.append(parse_provenance(read_file(provenance, "provenance", 64 << 20)))
    else:
        assert image is not None and key is not None
        for _arch, _digest, statement in _statements(image, key, insecure_registry):
            provs.append(parse_provenance(statement))
    original = parse_image_ref(image) if image else None
    results = []
    made_by: list[Any] = []
    with CliObserver(enabled=output != "json") as observer:
        for prov in provs:
            done = rebuild_from_provenance(
                prov,
                original=original,
                snapshot_mirror=snapshot_mirror,
                seed_cache=cache_dir() if use_cache else None,
                observer=observer,
                source_dir=source,
            )
            results += done
            made_by += [prov] * len(done)
    ok = all(r.identical for r in results)
    attested: list[str] = []
    if signing is not None and ok:
        assert image is not None
        attested = _attest_reproduced(
            image, results, made_by, signing, rebuilder_id, insecure_registry
        )
    if output == "json":
        _console.emit(
            json.dumps(
                [
                    {
                        "arch": r.arch,
                        "expected": r.expected,
                        "actual": r.actual,
                        "image": r.image,
                        "identical": r.identical,
                        "diff": r.diff.lines() if r.diff else [],
                        "notes": r.notes,
                        "attested": r.actual in attested,
                    }
                    for r in results
                ],
                indent=2,
            )
            + "\n"
        )
    else:
        for r in results:
            if r.identical:
                _console.info(f"{r.arch}: identical {r.actual}")
                for note in r.notes:
                    _console.warn(note)
                continue
            msg = f"{r.arch}: rebuilt {r.actual}, provenance names {r.expected}"
            if r.compared:
                msg += f", {image} is {r.image or '(no manifest for this architecture)'}"
            _console.error(msg)
            for line in r.diff.lines() if r.diff else []:
                _console.info(f"  {line}")
            for note in r.notes:
                _console.warn(note)
    if signing is not None and not ok:
        _console.error("nothing attested: not every platform image was reproduced")
    for digest in attested:
        _console.info(f"attested reproducibility of {digest} (rebuilder {rebuilder_id})")
    raise typer.Exit(0 if ok else 1)


def _attest_reproduced(
    image: str,
    results: list[Any],
    provs: list[Any],
    signing: Any,
    rebuilder_id: str,
    insecure: bool,
) -> list[str]:
    """Attach one signed reproducibility statement per reproduced platform image."""
    import time

    from assay.attest import remote
    from assay.attest.reproducible import REPRODUCIBLE_PREDICATE_TYPE, reproducible_predicate
    from assay.build.builder import PLATFORMS
    from assay.cli.cmd_sign import client_for
    from assay.oci.reference import parse_image_ref

    ref = remote.ImageRef.from_reference(parse_image_ref(image))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    done: list[str] = []
    with client_for(ref, insecure) as client:
        for r, prov in zip(results, provs, strict=True):
            if r.actual in done:
                continue  # the same platform image rebuilt from two provenance statements
            platform = PLATFORMS.get(r.arch)
            predicate = reproducible_predicate(
                rebuilder_id=rebuilder_id,
                platform=str(platform) if platform else f"linux/{r.arch}",
                expected=r.expected,
                rebuilt=r.actual,
                builder_id=prov.builder_id,
                build_type=prov.build_type,
                rebuilt_on=now,
            )
            pinned = remote.ImageRef(ref.host, ref.repository, None, r.actual)
            remote.attest_image(
                client,
                pinned,
                signing,
                REPRODUCIBLE_PREDICATE_TYPE,
                json.dumps(predicate, sort_keys=True).encode(),
            )
            done.append(r.actual)
    return done


def register(app: typer.Typer) -> None:
    app.command("verify-provenance", help=VERIFY_HELP)(verify_provenance)
    app.command("rebuild", help=REBUILD_HELP)(rebuild)
