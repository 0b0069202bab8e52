"""``assay update SPEC...``: relock; when the package set moved, rebuild (and push, sign) and
print what the update fixed."""

from __future__ import annotations

import contextlib
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from assay.cli import _console, _options
from assay.errors import InputError, UsageError

if TYPE_CHECKING:
    from assay.attest.keys import SigningKey
    from assay.remediation.summary import UpdateSummary

__all__ = ["register"]


class UpdateOutput(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def update_command(
    specs: list[Path] = typer.Argument(..., help="Image specs (YAML) to relock and rebuild."),
    dest: str | None = typer.Option(
        None,
        "--dest",
        envvar="ASSAY_BUILD_DEST",
        help="Where to write the rebuilt image: oci:DIR[:TAG] or oci-archive:FILE[:TAG] "
        "(one SPEC only; optional with --push). Without --dest and --push the lock is "
        "updated and the summary printed, but nothing is built.",
    ),
    push: str | None = typer.Option(
        None, "--push", help="Push the rebuilt image to this registry reference (HOST/REPO[:TAG])."
    ),
    sign_key: Path | None = _options.PUSH_SIGN_KEY,
    security_only: bool = typer.Option(
        False,
        "--security-only",
        help="Take new versions only from security suites (SUITE-security); everything else "
        "stays at its locked version.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Write nothing, build nothing: report what would change."
    ),
    db: Path | None = _options.vuln_db_option(
        "Advisory DB for the fixed/introduced CVEs (default: the cache's, when present)."
    ),
    store: str | None = _options.store_option(
        "Evidence store for the remediation record (sqlite:///PATH, PATH, postgresql://...; "
        "default: the cache's store.db)."
    ),
    exit_code: bool = typer.Option(
        False,
        "--exit-code",
        help="Exit 1 when an update happened (like `git diff --exit-code`); default: 0.",
    ),
    insecure_registry: bool = _options.INSECURE_PLAIN_HTTP,
    output: UpdateOutput = typer.Option(
        UpdateOutput.table,
        "--output",
        "-o",
        envvar="ASSAY_UPDATE_OUTPUT",
        help="table, json, or markdown (a pull-request body).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", envvar="ASSAY_QUIET", help="No progress: only the data."
    ),
) -> None:
    """Relock SPEC; if the package set changed, rebuild (push, sign) and report the CVEs fixed.

    Resolves exactly as `assay lock` does. When nothing changed it says so and builds
    nothing. Otherwise it writes the new lock, rebuilds reproducibly (--dest, --push and
    --sign-key as in `assay build`), and prints the packages upgraded/added/removed, the CVE
    ids fixed (source "db": open in the advisory DB for the old packages, gone for the new;
    source "changelog": named by changelog.Debian entries between the old and new versions),
    CVEs introduced, KEV entries closed, and the image digests old -> new. The remediation
    record in the evidence store is updated (`assay remediation status`).

    Examples: `assay update examples/*.yaml --dry-run`;
    `assay update app.yaml --push REG/acme/app:1.4 --sign-key cosign.key -o markdown > PR.md`.

    Exit codes: 0 ok (updated or not; the JSON field "updated" tells); with --exit-code, 1
    when an update happened; 1 resolution, network, or push failure; 2 bad spec or arguments.
    """
    from assay.remediation.summary import render_json, render_markdown, render_table

    _console.state.quiet = quiet
    if sign_key is not None and push is None:
        raise UsageError("--sign-key needs --push: signatures live in the registry")
    if (dest is not None or push is not None) and len(specs) != 1:
        raise UsageError("--dest and --push take one SPEC; run `assay update` once per image")
    if dry_run and (dest is not None or push is not None):
        raise UsageError("--dry-run builds nothing: leave out --dest and --push")
    key = None
    if sign_key is not None:
        from assay.cli.cmd_sign import load_signing_key

        key = load_signing_key(sign_key)
    if insecure_registry:
        _console.warn("--insecure-registry: plain HTTP / unverified TLS to the registry")
    summaries = [
        _update_one(
            spec, dest, push, key, security_only, dry_run, db, store, insecure_registry, quiet
        )
        for spec in specs
    ]
    if output is UpdateOutput.json:
        _console.emit(render_json(summaries))
    elif output is UpdateOutput.markdown:
        _console.emit(render_markdown(summaries))
    else:
        _console.emit(render_table(summaries))
    if exit_code and any(s.updated for s in summaries):
        raise typer.Exit(1)


def _old_digest(dest: str | None) -> str:
    """The index digest the destination layout's tag points at before the rebuild, or ""."""
    if dest is None:
        return ""
    from assay.oci.layout import OciLayout, is_layout
    from assay.oci.reference import parse_image_ref

    ref = parse_image_ref(dest)
    if ref.transport != "oci" or not is_layout(Path(ref.path)):
        return ""
    try:
        desc = OciLayout.open(ref.path).tags().get(ref.tag or "latest")
    except InputError:
        return ""
    return str(desc.digest) if desc is not None else ""


def _update_one(
    spec: Path,
    dest: str | None,
    push: str | None,
    key: SigningKey | None,
    security_only: bool,
    dry_run: bool,
    db: Path | None,
    store: str | None,
    insecure: bool,
    quiet: bool,
) -> UpdateSummary:
    from assay.build.lock import lock_path_for, read_lock, write_lock
    from assay.build.spec import ImageSpec, read_spec
    from assay.debian.repo import RepoClient
    from assay.remediation.summary import UpdateSummary
    from assay.remediation.update import plan_update

    spec_bytes = read_spec(spec)
    image = ImageSpec.from_yaml(spec_bytes, str(spec))
    lock_path = lock_path_for(spec)
    old = read_lock(lock_path) if lock_path.exists() else None
    progress = None if quiet else _console.info
    with RepoClient(keyrings=image.keyring_paths(spec.parent), progress=progress) as client:
        plan = plan_update(spec, spec_bytes, old, client, security_only=security_only)
    if not plan.changed:
        _console.info(f"{spec}: up to date; nothing to rebuild")
        return UpdateSummary(str(spec), False, notes=plan.notes)
    fixed, introduced, notes = _cves(plan, db)
    notes = [*plan.notes, *notes]
    if dry_run:
        return UpdateSummary(
            str(spec), True, plan.changes, tuple(fixed), tuple(introduced), notes=tuple(notes)
        )
    write_lock(lock_path, plan.new_lock)
    _console.info(f"wrote {lock_path}")
    old_digest = _old_digest(dest)
    new_digest, pushed = "", ""
    if dest is not None or push is not None:
        new_digest, pushed = _rebuild(spec, dest, push, key, insecure, quiet)
    else:
        notes.append("not rebuilt: give --dest and/or --push to build the updated image")
    summary = UpdateSummary(
        str(spec),
        True,
        plan.changes,
        tuple(fixed),
        tuple(introduced),
        old_digest,
        new_digest,
        pushed,
        True,
        tuple(notes),
    )
    _record(store, push, spec, plan, summary)
    return summary


def _cves(plan: Any, db: Path | None) -> tuple[list[Any], list[Any], list[str]]:
    from assay.debian.fetch import DebCache
    from assay.remediation.update import changelog_fixes, db_delta
    from assay.vuln.db import AdvisoryDB, default_db_path

    notes: list[str] = []
    with DebCache() as cache:

        def fetch(p: Any) -> Path:
            return cache.fetch_all([(p.url, p.sha256, p.size)])[p.sha256]

        fixed, cl_notes = changelog_fixes(plan, fetch)
    notes += cl_notes
    introduced: list[Any] = []
    path = db or default_db_path()
    if plan.old_lock is None:
        return fixed, introduced, notes
    if not path.exists():
        notes.append(f"no advisory DB at {path}: CVEs from changelogs only (run `assay db update`)")
        return fixed, introduced, notes
    with AdvisoryDB(path, create=False) as adb:
        db_fixed, introduced = db_delta(adb, plan.old_lock, plan.new_lock, str(plan.spec_path))
    return sorted([*fixed, *db_fixed], key=lambda c: (c.id, c.package, c.source)), introduced, notes


def _rebuild(
    spec: Path,
    dest: str | None,
    push: str | None,
    key: SigningKey | None,
    insecure: bool,
    quiet: bool,
) -> tuple[str, str]:
    """Build (and push/sign) as `assay build` does; returns (index digest, pushed reference)."""
    from assay.build.builder import build_image
    from assay.build.evidence import write_evidence
    from assay.build.provenance import DEFAULT_BUILDER_ID, now
    from assay.oci.reference import parse_image_ref

    started = now()
    with contextlib.ExitStack() as stack:
        if dest is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="assay-update-"))
            dest = f"oci:{Path(tmp) / 'layout'}"
        ref = parse_image_ref(dest)
        from assay.cli._progress import CliObserver  # rich.progress: only when it rebuilds

        with CliObserver(enabled=not quiet) as observer:
            result = build_image(spec, ref, observer=observer)
            evidence_dir = Path(ref.path) if ref.transport == "oci" else Path(ref.path).parent
            observer.stage("writing SBOMs and provenance")
            evidence = write_evidence(
                result, evidence_dir, builder_id=DEFAULT_BUILDER_ID, started=started, finished=now()
            )
            pushed = ""
            if push is not None:
                from assay.build.publish import publish

                out = publish(result, evidence, push, key=key, insecure=insecure, observer=observer)
                pushed = str(out["reference"])
        return str(result.index.digest), pushed


def _record(store: str | None, push: str | None, spec: Path, plan: Any, s: UpdateSummary) -> None:
    """Keep the remediation record: fixes available, built (and pushed) in this update."""
    from assay.remediation.record import record_fixes
    from assay.store import open_store

    if not s.fixed:
        return
    image = str(spec.resolve())
    if push is not None:
        from assay.oci.reference import parse_image_ref

        ref = parse_image_ref(push)
        image = f"{ref.registry}/{ref.repository}"
    versions = {c.name: c.new for c in plan.changes if c.new is not None}
    with open_store(store) as st:
        record_fixes(st, image, s.fixed, versions, built_digest=s.new_digest, shipped_ref=s.pushed)


def register(app: typer.Typer) -> None:
    app.command(name="update")(update_command)
