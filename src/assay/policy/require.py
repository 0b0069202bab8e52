"""assay ImagePolicy ``require:`` — declarative checks over verified evidence only.

Every input here was verified before it arrives: the image config is the one the verified
manifest digest names; SBOM, scan, VEX and provenance are in-toto statements whose signature
an authority of the same policy verified and whose subject is the image. A check that has no
such evidence fails (it never falls back to unverified data); one that no evidence can answer
is ``skipped`` with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from assay.attest.reproducible import REPRODUCIBLE_PREDICATE_TYPE, parse_reproducible
from assay.attest.verify import VerifiedAttestation
from assay.errors import InputError
from assay.policy.controls import CHECK_CONTROLS
from assay.policy.decision import CheckResult, Status
from assay.policy.evidence import ImageEvidence
from assay.policy.layers import LayerProblem, LiveScan, SpecialFiles
from assay.policy.model import Policy
from assay.vuln.formats.json_format import result_from_json
from assay.vuln.model import ScanResult, Severity
from assay.vuln.vex import apply_vex, vex_from_statements

__all__ = [
    "PACKAGE_MANAGERS",
    "SCAN_PREDICATE_TYPES",
    "SHELLS",
    "run_checks",
]

SPDX = "https://spdx.dev/Document"
CYCLONEDX = "https://cyclonedx.org/bom"
OPENVEX = "https://openvex.dev/ns"
COSIGN_VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
ASSAY_SCAN = "https://assay.dev/schemas/scan/v1"
SCAN_PREDICATE_TYPES = (COSIGN_VULN, ASSAY_SCAN)
PROVENANCE_TYPES = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")

SHELLS = frozenset({"bash", "dash", "busybox", "zsh", "ksh", "mksh", "tcsh", "csh", "ash"})
PACKAGE_MANAGERS = frozenset(
    {"apt", "dpkg", "apk-tools", "rpm", "yum", "dnf", "microdnf", "zypper", "pip"}
)


def _rank(severity: str) -> int:
    """assay's severity order (``unknown`` between negligible and low)."""
    try:
        return Severity.parse(severity).rank
    except ValueError:
        return Severity.UNKNOWN.rank


_DAY = 86400.0


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ts(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.timestamp()


T = TypeVar("T")


class _Checks:
    def __init__(self, policy: Policy, digests: dict[int, str]) -> None:
        self.out: list[CheckResult] = []
        self.extra = dict(policy.require.controls)
        self.digests = digests

    def digest(self, att: VerifiedAttestation) -> str:
        """The registry digest (``.att`` layer or bundle referrer) the statement came from."""
        return self.digests[id(att)]

    def add(self, name: str, status: Status, reason: str, evidence: Iterable[str] = ()) -> None:
        key = name.split(".")[0] if name not in CHECK_CONTROLS else name
        controls = CHECK_CONTROLS.get(name, CHECK_CONTROLS.get(key, ()))
        controls = tuple(dict.fromkeys((*controls, *self.extra.get(name, ()))))
        self.out.append(CheckResult(name, "check", status, reason, tuple(evidence), controls))

    def from_layers(self, name: str, read: Callable[[], T] | None, missing: str) -> T | None:
        """What ``read`` finds in the image layers; None once the check is recorded as an error
        (no layers here: ``missing``) or as the LayerProblem says."""
        if read is None:
            self.add(name, "error", missing)
            return None
        try:
            return read()
        except LayerProblem as exc:
            self.add(name, "error" if exc.status == "error" else "fail", str(exc))
            return None


def _of_type(
    atts: Sequence[VerifiedAttestation], types: Iterable[str]
) -> list[VerifiedAttestation]:
    wanted = set(types)
    return [a for a in atts if a.predicate_type in wanted]


def _packages(att: VerifiedAttestation) -> list[str]:
    predicate = att.statement.get("predicate")
    names: list[str] = []
    if not isinstance(predicate, dict):
        return names
    items = predicate.get("packages") if att.predicate_type == SPDX else predicate.get("components")
    if isinstance(items, list):
        for item in items[:200_000]:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                names.append(item["name"])
    return names


def _ntia_problems(att: VerifiedAttestation) -> list[str]:
    """The NTIA minimum elements missing from an SBOM predicate (SPDX 2.3 or CycloneDX)."""
    p = _obj(att.statement.get("predicate"))
    problems: list[str] = []
    if att.predicate_type == SPDX:
        info = _obj(p.get("creationInfo"))
        if not info.get("creators"):
            problems.append("no SBOM author (creationInfo.creators)")
        if not info.get("created"):
            problems.append("no timestamp (creationInfo.created)")
        items = [i for i in p.get("packages") or [] if isinstance(i, dict)]
        fields = {"supplier": "supplier", "versionInfo": "version", "SPDXID": "identifier"}
        if not p.get("relationships"):
            problems.append("no dependency relationships")
    else:
        meta = _obj(p.get("metadata"))
        if not (meta.get("authors") or meta.get("tools") or meta.get("manufacture")):
            problems.append("no SBOM author (metadata.authors/tools)")
        if not meta.get("timestamp"):
            problems.append("no timestamp (metadata.timestamp)")
        items = [i for i in p.get("components") or [] if isinstance(i, dict)]
        fields = {"supplier": "supplier", "version": "version", "bom-ref": "identifier"}
        if not p.get("dependencies"):
            problems.append("no dependency relationships")
    if not items:
        problems.append("no packages")
    for key, what in fields.items():
        missing = sum(
            1 for i in items if not i.get(key) and not (what == "supplier" and i.get("publisher"))
        )
        if missing:
            problems.append(f"{missing} of {len(items)} packages have no {what}")
    return problems


def _scan(att: VerifiedAttestation) -> dict[str, Any]:
    """Normalised scan: findings [(id, severity, kev|None, suppressed)], finished, db dates."""
    predicate = att.statement.get("predicate")
    predicate = predicate if isinstance(predicate, dict) else {}
    finished: float | None = None
    result: Any = predicate
    if att.predicate_type == COSIGN_VULN:
        meta = _obj(predicate.get("metadata"))
        finished = _ts(meta.get("scanFinishedOn"))
        scanner = _obj(predicate.get("scanner"))
        result = scanner.get("result")
    findings: list[tuple[str, str, bool | None, bool]] = []
    db: list[float] = []
    parsed: ScanResult | None = None
    if isinstance(result, dict) and result.get("schema") == ASSAY_SCAN:
        try:
            parsed = result_from_json(result, "the verified scan attestation")
        except InputError:
            return {"valid": False}
        for f in parsed.findings:
            findings.append((f.id, f.severity.value, f.kev, f.suppressed))
        db = [t for t in (_ts(v) for v in parsed.db_built.values()) if t is not None]
    elif isinstance(result, dict) and isinstance(result.get("Results"), list):
        for res in result["Results"]:
            vulns = res.get("Vulnerabilities") if isinstance(res, dict) else None
            for v in vulns or []:
                if isinstance(v, dict):
                    findings.append(
                        (
                            str(v.get("VulnerabilityID", "")),
                            str(v.get("Severity", "unknown")).lower(),
                            None,
                            False,
                        )
                    )
    else:
        return {"valid": False}
    return {
        "valid": True,
        "findings": findings,
        "finished": finished,
        "db": db,
        "result": parsed,
    }


def _provenance(att: VerifiedAttestation) -> tuple[str, list[str]]:
    p = att.statement.get("predicate")
    p = p if isinstance(p, dict) else {}
    sources: list[str] = []
    if att.predicate_type.endswith("/v1"):
        run = _obj(p.get("runDetails"))
        builder = _obj(run.get("builder"))
        bdef = _obj(p.get("buildDefinition"))
        ext = _obj(bdef.get("externalParameters"))
        for key in ("source", "workflow"):
            item = ext.get(key)
            if isinstance(item, dict):
                for f in ("uri", "repository"):
                    if isinstance(item.get(f), str):
                        sources.append(item[f])
        for dep in bdef.get("resolvedDependencies") or []:
            if isinstance(dep, dict) and str(dep.get("uri", "")).startswith("git+"):
                sources.append(dep["uri"])
        return str(builder.get("id", "")), sources
    builder = _obj(p.get("builder"))
    inv = _obj(p.get("invocation"))
    cfg = _obj(inv.get("configSource"))
    if isinstance(cfg.get("uri"), str):
        sources.append(cfg["uri"])
    for m in p.get("materials") or []:
        if isinstance(m, dict) and isinstance(m.get("uri"), str):
            sources.append(m["uri"])
    return str(builder.get("id", "")), sources


def _source_matches(want: str, have: str) -> bool:
    return have == want or have.split("@", 1)[0] == want


def run_checks(
    policy: Policy,
    image: ImageEvidence,
    verified: Sequence[tuple[VerifiedAttestation, str]],
    key_signers: Sequence[tuple[int, list[str]]],
    now: float,
    *,
    special_files: Callable[[], SpecialFiles] | None = None,
    live_scan: Callable[[], LiveScan] | None = None,
) -> list[CheckResult]:
    """The ``require:`` checks of ``policy``.

    ``verified``: every statement the policy's authorities verified for the image, with the
    digest of the ``.att`` layer or bundle referrer it was read from;
    ``key_signers``: for each key in ``require.signatures.keys``, the evidence digests of the
    signatures it verified (empty when none); ``special_files`` / ``live_scan``: read the
    verified image's layers (called only when a check needs them; they raise
    :class:`LayerProblem`).
    """
    req = policy.require
    attestations = [a for a, _ in verified]
    c = _Checks(policy, {id(a): d for a, d in verified})
    configs = image.configs
    config_ev = list(image.config_digests.values())
    if req.run_as_non_root:
        if image.config_error or not configs:
            c.add("runAsNonRoot", "error", f"image config unavailable: {image.config_error}")
        else:
            bad = []
            for platform, cfg in sorted(configs.items()):
                inner = _obj(cfg.get("config"))
                user = str(inner.get("User") or "")
                uid = user.split(":", 1)[0]
                if uid in ("", "0", "root"):
                    bad.append(f"{platform} runs as root (User {user!r})")
                elif not uid.isdigit():
                    bad.append(
                        f"{platform} User {user!r} is a name; use a numeric UID so non-root "
                        "can be verified"
                    )
            if bad:
                c.add("runAsNonRoot", "fail", "; ".join(bad), config_ev)
            else:
                c.add(
                    "runAsNonRoot", "pass", "image config sets a non-root numeric user", config_ev
                )
    sboms = _of_type(attestations, (SPDX, CYCLONEDX))
    if req.no_shell or req.no_package_manager:
        for name, bad_set, flag in (
            ("noShell", SHELLS, req.no_shell),
            ("noPackageManager", PACKAGE_MANAGERS, req.no_package_manager),
        ):
            if not flag:
                continue
            if not sboms:
                c.add(name, "fail", "no verified SBOM attestation (spdx or cyclonedx) to read")
                continue
            names = {n for att in sboms for n in _packages(att)}
            found = sorted(names & bad_set)
            ev = [c.digest(a) for a in sboms]
            if found:
                c.add(name, "fail", f"image contains {', '.join(found)}", ev)
            else:
                c.add(name, "pass", f"none of {len(names)} SBOM packages is one", ev)
    if req.sbom:
        wanted = {"spdx": SPDX, "cyclonedx": CYCLONEDX}
        have = _of_type(attestations, [wanted[f] for f in req.sbom])
        complete = [a for a in have if not req.sbom_ntia or not _ntia_problems(a)]
        if complete:
            kinds = sorted({"spdx" if a.predicate_type == SPDX else "cyclonedx" for a in complete})
            # distinct names: an SPDX and a CycloneDX document of one image list the same packages
            distinct = len({n for a in complete for n in _packages(a)})
            ntia = " with the NTIA minimum elements" if req.sbom_ntia else ""
            c.add(
                "sbom",
                "pass",
                f"verified {', '.join(kinds)} SBOM{ntia} ({distinct} packages)",
                [c.digest(a) for a in complete],
            )
        elif have:
            lacking = "; ".join(dict.fromkeys(p for a in have for p in _ntia_problems(a)))
            c.add(
                "sbom",
                "fail",
                f"verified SBOM lacks NTIA minimum elements: {lacking}",
                [c.digest(a) for a in have],
            )
        else:
            c.add("sbom", "fail", f"no verified SBOM attestation ({' or '.join(req.sbom)})")
    _vulnerability_checks(c, req, attestations, now, image.digest, live_scan)
    if req.builder_ids or req.source_uris:
        provs = _of_type(attestations, PROVENANCE_TYPES)
        if not provs:
            c.add("provenance", "fail", "no verified SLSA provenance attestation")
        else:
            reasons = []
            for att in provs:
                builder, sources = _provenance(att)
                problems = []
                if req.builder_ids and builder not in req.builder_ids:
                    problems.append(f"builder id {builder!r} is not one of {list(req.builder_ids)}")
                if req.source_uris and not any(
                    _source_matches(w, h) for w in req.source_uris for h in sources
                ):
                    problems.append(f"source {sources[:3]} is not one of {list(req.source_uris)}")
                if not problems:
                    c.add("provenance", "pass", f"built by {builder}", [c.digest(att)])
                    break
                reasons.extend(problems)
            else:
                c.add("provenance", "fail", "; ".join(dict.fromkeys(reasons)))
    if req.max_image_age_days is not None:
        created = [(_ts(cfg.get("created")), p) for p, cfg in sorted(configs.items())]
        if not created or any(t is None for t, _ in created):
            c.add("maxImageAgeDays", "fail", "image config has no valid created time", config_ev)
        else:
            oldest = min(t for t, _ in created if t is not None)
            age = (now - oldest) / _DAY
            status: Status = "pass" if age <= req.max_image_age_days else "fail"
            c.add(
                "maxImageAgeDays",
                status,
                f"image created {age:.0f} days ago (limit {req.max_image_age_days})",
                config_ev,
            )
    if req.reproducible:
        _reproducible_check(c, req, attestations, image)
    if req.setuid_allow is not None:
        _setuid_check(c, req.setuid_allow, special_files)
    if req.min_keys:
        signed = [(i, ev) for i, ev in key_signers if ev]
        ev = [d for _, e in signed for d in e]
        status = "pass" if len(signed) >= req.min_keys else "fail"
        c.add(
            "signatures",
            status,
            f"signed by {len(signed)} of {len(req.keys)} keys (need {req.min_keys})",
            ev,
        )
    return c.out


def _setuid_check(
    c: _Checks, allow: Sequence[str], special_files: Callable[[], SpecialFiles] | None
) -> None:
    found = c.from_layers(
        "setuid", special_files, "the image layers are not available to this check"
    )
    if found is None:
        return
    allowed = {a.strip("/") for a in allow}
    grouped: dict[tuple[str, int], list[str]] = {}
    for f in found.files:
        grouped.setdefault((f.path, f.mode), []).append(f.platform)
    many = len(found.platforms) > 1

    def show(path: str, mode: int, platforms: list[str]) -> str:
        where = f", {' '.join(platforms)}" if many else ""
        return f"/{path} ({mode:04o}{where})"

    bad = [show(p, m, pl) for (p, m), pl in sorted(grouped.items()) if p not in allowed]
    ok = sorted({p for p, _ in grouped if p in allowed})
    ev = list(found.evidence)
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        c.add("setuid", "fail", f"setuid/setgid files not in the allow list: {shown}", ev)
    elif ok:
        c.add(
            "setuid",
            "pass",
            f"only allowed setuid/setgid files: /{', /'.join(ok)} "
            f"({found.scanned} file(s) in the image layers)",
            ev,
        )
    else:
        c.add(
            "setuid",
            "pass",
            f"no setuid/setgid file among {found.scanned} file(s) in the image layers",
            ev,
        )


def _platform_digests(image: ImageEvidence) -> list[tuple[str, str]]:
    """(platform, manifest digest) of every platform image; the image itself when not an index."""
    from assay.oci.mediatypes import MANIFEST_TYPES

    entries = image.manifest.get("manifests")
    if not isinstance(entries, list):
        return [("", image.digest)]
    out = []
    for e in entries[:32]:
        if not isinstance(e, dict) or e.get("mediaType") not in MANIFEST_TYPES:
            continue
        p = _obj(e.get("platform"))
        if p.get("os") in (None, "unknown") or not isinstance(e.get("digest"), str):
            continue
        name = f"{p.get('os')}/{p.get('architecture')}" + (
            f"/{p['variant']}" if p.get("variant") else ""
        )
        out.append((name, e["digest"]))
    return out


def _subject_digests(att: VerifiedAttestation) -> set[str]:
    out = set()
    for s in att.statement.get("subject") or []:
        d = _obj(s).get("digest")
        if isinstance(d, dict) and isinstance(d.get("sha256"), str):
            out.add("sha256:" + d["sha256"])
    return out


def _reproducible_check(
    c: _Checks, req: Any, attestations: Sequence[VerifiedAttestation], image: ImageEvidence
) -> None:
    claims = [
        (a, parse_reproducible(a.statement.get("predicate")))
        for a in _of_type(attestations, (REPRODUCIBLE_PREDICATE_TYPE,))
    ]
    platforms = _platform_digests(image)
    if not platforms:
        c.add("reproducible", "fail", "the image index lists no platform image")
        return
    evidence: list[str] = []
    missing: list[str] = []
    problems: list[str] = []
    for name, digest in platforms:
        label = name or digest
        hit = None
        for att, claim in claims:
            if claim is None or digest not in _subject_digests(att):
                continue
            if claim.rebuilt != digest or claim.expected != digest or not claim.identical:
                problems.append(f"{label}: the rebuild gave {claim.rebuilt}, not {digest}")
                continue
            if req.rebuilder_ids and claim.rebuilder_id not in req.rebuilder_ids:
                problems.append(
                    f"{label}: rebuilt by {claim.rebuilder_id!r}, not one of "
                    f"{list(req.rebuilder_ids)}"
                )
                continue
            hit = att
            break
        if hit is None:
            missing.append(label)
        else:
            evidence.append(c.digest(hit))
    if missing:
        why = "; ".join(dict.fromkeys(problems))
        c.add(
            "reproducible",
            "fail",
            f"no verified reproducibility attestation for {', '.join(missing)}"
            + (f" ({why})" if why else ""),
            evidence,
        )
    else:
        c.add(
            "reproducible",
            "pass",
            f"an independent rebuild reproduced the digest of {len(platforms)} platform image(s)",
            evidence,
        )


def _live_scan_facts(scan: LiveScan, now: float) -> dict[str, Any]:
    result = scan.result
    return {
        "valid": True,
        "findings": [(f.id, f.severity.value, f.kev, f.suppressed) for f in result.findings],
        "finished": now,
        "db": [t for t in (_ts(v) for v in result.db_built.values()) if t is not None],
        "result": result,
    }


def _vulnerability_checks(
    c: _Checks,
    req: Any,
    attestations: Sequence[VerifiedAttestation],
    now: float,
    image_digest: str,
    live_scan: Callable[[], LiveScan] | None = None,
) -> None:
    wants = (
        req.max_severity
        or req.no_kev
        or req.vex_applied
        or req.max_scan_age_days is not None
        or req.max_db_age_days is not None
    )
    if not wants:
        return
    source = req.vulnerability_source
    scans = []
    if source != "live":
        scans = [(a, _scan(a)) for a in _of_type(attestations, SCAN_PREDICATE_TYPES)]
        scans = [(a, s) for a, s in scans if s["valid"]]
    if scans:
        # the newest scan (by its finish time; unknown times sort first)
        att, scan = max(scans, key=lambda item: item[1]["finished"] or 0.0)
        ev = [c.digest(att)]
    elif source == "attestation":
        c.add("vulnerabilities", "fail", "no verified vulnerability scan attestation")
        return
    else:
        live = c.from_layers(
            "vulnerabilities", live_scan, "a live scan cannot run here (no image layers)"
        )
        if live is None:
            return
        ev = list(live.evidence)
        dates = live.result.db_built
        if not dates:
            c.add(
                "vulnerabilities",
                "error",
                f"the local advisory database {live.db_path} holds no feed; run `assay db update`",
                ev,
            )
            return
        why = "no verified scan attestation; " if source == "either" else ""
        c.add(
            "vulnerabilities.scan",
            "pass",
            f"{why}live scan of {live.packages} package(s) ({', '.join(live.platforms)}) with the "
            "local advisory database ("
            + ", ".join(f"{k} data of {v}" for k, v in sorted(dates.items()))
            + ")",
            ev,
        )
        scan = _live_scan_facts(live, now)
    vexes = _of_type(attestations, (OPENVEX,))
    vex_ev = [c.digest(a) for a in vexes]
    vex_problem = ""
    docs = []
    try:
        docs = vex_from_statements([a.statement for a in vexes])
    except InputError as exc:
        vex_problem = str(exc)
    result: ScanResult | None = scan["result"]
    by_vex = 0
    if result is not None:
        # the VEX rules of `assay vex apply`: statements must name this image (digest or
        # pkg:oci purl) or the finding's package
        before = {id(f) for f in result.findings if f.suppressed}
        subject = dataclasses.replace(result, subject_digest=image_digest)
        applied = apply_vex(subject, docs) if docs else subject
        by_vex = sum(1 for f in applied.findings if f.suppressed) - len(before)
        open_findings = [
            (str(f.id), f.severity.value, f.kev) for f in applied.findings if not f.suppressed
        ]
    else:
        open_findings = [(fid, sev, kev) for fid, sev, kev, sup in scan["findings"] if not sup]
    if req.vex_applied:
        if vex_problem:
            c.add("vulnerabilities.vexApplied", "fail", vex_problem, vex_ev)
        elif not vexes:
            c.add("vulnerabilities.vexApplied", "fail", "no verified OpenVEX attestation")
        elif result is None:
            c.add(
                "vulnerabilities.vexApplied",
                "fail",
                "VEX can only be applied to an assay scan result; this scan is another format",
                ev + vex_ev,
            )
        else:
            c.add(
                "vulnerabilities.vexApplied",
                "pass",
                f"{len(vexes)} verified OpenVEX document(s); {by_vex} finding(s) not affected",
                ev + vex_ev,
            )
    if req.max_severity:
        limit = _rank(req.max_severity)
        above = sorted({f"{fid} ({sev})" for fid, sev, _ in open_findings if _rank(sev) > limit})
        if above:
            shown = ", ".join(above[:5]) + (f" and {len(above) - 5} more" if len(above) > 5 else "")
            c.add(
                "vulnerabilities.maxSeverity",
                "fail",
                f"{len(above)} finding(s) above {req.max_severity}: {shown}",
                ev + vex_ev,
            )
        else:
            c.add(
                "vulnerabilities.maxSeverity",
                "pass",
                f"no open finding above {req.max_severity}",
                ev + vex_ev,
            )
    if req.no_kev:
        if any(kev is None for _, _, kev in open_findings):
            c.add(
                "vulnerabilities.noKEV",
                "fail",
                "the scan does not say which findings are KEV-listed; attest an assay scan",
                ev,
            )
        else:
            listed = sorted({fid for fid, _, kev in open_findings if kev})
            if listed:
                c.add(
                    "vulnerabilities.noKEV",
                    "fail",
                    f"KEV-listed vulnerabilities open: {', '.join(listed[:10])}",
                    ev + vex_ev,
                )
            else:
                c.add("vulnerabilities.noKEV", "pass", "no open KEV-listed finding", ev + vex_ev)
    if req.max_scan_age_days is not None:
        finished = scan["finished"]
        if finished is None:
            c.add(
                "vulnerabilities.maxScanAgeDays",
                "fail",
                "the scan attestation has no finish time (metadata.scanFinishedOn)",
                ev,
            )
        else:
            age = (now - finished) / _DAY
            ok = age <= req.max_scan_age_days
            c.add(
                "vulnerabilities.maxScanAgeDays",
                "pass" if ok else "fail",
                f"scan is {age:.0f} days old (limit {req.max_scan_age_days})",
                ev,
            )
    if req.max_db_age_days is not None:
        if not scan["db"]:
            c.add(
                "vulnerabilities.maxDbAgeDays",
                "fail",
                "the scan does not say when its advisory database was updated",
                ev,
            )
        else:
            reference = scan["finished"] or now
            age = (reference - min(scan["db"])) / _DAY
            ok = age <= req.max_db_age_days
            c.add(
                "vulnerabilities.maxDbAgeDays",
                "pass" if ok else "fail",
                f"advisory database was {age:.0f} days old at scan time "
                f"(limit {req.max_db_age_days})",
                ev,
            )
