"""``assay evidence bundle|verify``: one signed evidence tar per image digest, checked offline."""

from __future__ import annotations

import calendar
import enum
import json
from pathlib import Path

import typer

from assay.cli import _console, _options
from assay.errors import UsageError


class VerifyOutput(enum.StrEnum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="evidence",
        help="Signed evidence bundles for auditors: bundle an image's evidence, verify a bundle.",
        no_args_is_help=True,
    )

    @group.command("bundle")
    def bundle(
        image: str = typer.Argument(..., help="HOST/REPO[:TAG][@sha256:…] (a registry image)."),
        key: Path = typer.Option(
            ...,
            "--key",
            envvar="ASSAY_PUBLIC_KEY",
            help="cosign.pub that the image's signatures and attestations must verify with.",
        ),
        sign_key: Path = typer.Option(
            ...,
            "--sign-key",
            envvar="ASSAY_SIGN_KEY",
            help="cosign.key that signs the bundle's manifest (password: ASSAY_PASSWORD).",
        ),
        file: Path = typer.Option(
            ..., "--file", envvar="ASSAY_EVIDENCE_FILE", help="Write the bundle (a tar) to FILE."
        ),
        policy: list[Path] | None = typer.Option(
            None,
            "--policy",
            envvar="ASSAY_REPORT_POLICY",
            help="Policy files/directories: the decision goes into the bundle and the report.",
        ),
        store: str | None = _options.store_option(
            "Evidence store URL: dates for findings; the bundle is recorded there."
        ),
        db: Path | None = _options.vuln_db_option("Scan now against this advisory DB."),
        now: str | None = typer.Option(
            None,
            "--now",
            envvar="ASSAY_REPORT_NOW",
            help="As of this date/time (default SOURCE_DATE_EPOCH, else today).",
        ),
        insecure_registry: bool = _options.INSECURE_REGISTRY_ENV,
    ) -> None:
        """Gather the image's verified evidence (signatures, attestations, image config, scan,
        policy decision) and its compliance report into one tar with a signed manifest.
        The same evidence, key and --now give the same bytes."""
        from assay.cli.cmd_report import _as_of, gather
        from assay.cli.cmd_sign import load_signing_key
        from assay.compliance import ReportFormat, evaluate, load_catalog, render
        from assay.compliance.bundle import make_bundle
        from assay.oci.digest import sha256_digest

        today, stamp = _as_of(now)
        signing = load_signing_key(sign_key)
        evidence = gather(image, key, policy, store, db, insecure_registry, today)
        report = evaluate(load_catalog(), evidence, today)
        files = dict(evidence.documents)
        files["report/report.json"] = render(report, ReportFormat.JSON).encode()
        files["report/report.html"] = render(report, ReportFormat.HTML).encode()
        created = stamp or f"{today.isoformat()}T00:00:00Z"
        epoch = calendar.timegm(today.timetuple())
        data = make_bundle(
            files,
            image={"reference": image, "digest": evidence.digest},
            created=created,
            key=signing,
            epoch=epoch,
        )
        _console.emit(data, file)
        digest = str(sha256_digest(data))
        if store is not None:
            from assay.store import open_store

            with open_store(store) as s:
                s.record_bundle(evidence.digest, digest, len(data), str(file.resolve()), created)
        _console.info(f"{file}: {len(files)} evidence files for {evidence.digest} ({digest})")

    @group.command("verify")
    def verify(
        bundle_file: Path = typer.Argument(..., help="An evidence bundle (tar)."),
        key: Path = typer.Option(
            ...,
            "--key",
            envvar="ASSAY_PUBLIC_KEY",
            help="The public key the bundle's manifest must be signed with.",
        ),
        output: VerifyOutput = typer.Option(
            VerifyOutput.text,
            "--output",
            "-o",
            envvar="ASSAY_VERIFY_OUTPUT",
            help="text or json",
        ),
    ) -> None:
        """Check a bundle offline: signed manifest, every file with its digest, nothing missing
        or extra; list what it holds. Exit 0 valid, 1 not valid, 2 unreadable input."""
        from assay.cli.cmd_sign import load_verification_key, read_file
        from assay.compliance.bundle import MAX_BUNDLE, verify_bundle

        if bundle_file.is_dir():
            raise UsageError(f"{bundle_file} is a directory; give the bundle's tar file")
        public = load_verification_key(key)
        contents = verify_bundle(read_file(bundle_file, "evidence bundle", MAX_BUNDLE), public)
        if output is VerifyOutput.json:
            doc = {"verified": True, **contents.to_dict()}
            _console.emit(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
            return
        lines = [
            f"verified evidence bundle for {contents.image.get('digest', '?')} "
            f"({contents.image.get('reference', '')}), created {contents.created}",
            *(f"{sha}  {size:>10}  {path}" for path, size, sha in contents.files),
        ]
        _console.emit("\n".join(lines) + "\n")

    app.add_typer(group)
