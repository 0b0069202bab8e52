"""Reading policy files: YAML (one or several documents) or directories of them.

Every document is validated field by field, with policy-controller's rules for
ClusterImagePolicy; an error names the file, the document's index and the field
(``policies/a.yaml#2: spec.authorities[0].key: exactly one of data, secretRef, kms``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from assay._yaml import load_yaml_all
from assay.errors import InputError, UsageError
from assay.policy.glob import compile_glob
from assay.policy.model import (
    Attestation,
    Authority,
    Identity,
    KeyAuthority,
    KeylessAuthority,
    MatchResource,
    Policy,
    PolicyCode,
    Require,
    Source,
    StaticAuthority,
)

__all__ = ["CIP_API_VERSIONS", "IMAGE_POLICY_API_VERSION", "load_documents", "parse_document"]

CIP_API_VERSIONS = ("policy.sigstore.dev/v1alpha1", "policy.sigstore.dev/v1beta1")
IMAGE_POLICY_API_VERSION = "assay.dev/v1alpha1"
MAX_POLICY_FILE = 1 << 20
MAX_FILES = 1000
_SEVERITIES = ("negligible", "low", "medium", "high", "critical")
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class _V:
    """Field access with errors that name the document and the path."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, what: str) -> UsageError:
        return UsageError(f"{self.where}: {path}: {what}")

    def obj(self, value: Any, path: str, allowed: Sequence[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise self.fail(
                    f"{path}.{unknown[0]}", f"unknown field; expected one of {', '.join(allowed)}"
                )
        return value

    def lst(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, "must be a list")
        return value

    def s(self, value: Any, path: str, *, required: bool = False) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.fail(path, "must be a non-empty string" if required else "must be a string")
        return value

    def b(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def n(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if type(value) is not int or not 0 <= value <= 100_000:
            raise self.fail(path, "must be a whole number between 0 and 100000")
        return value

    def regexp(self, value: Any, path: str) -> str:
        text = self.s(value, path)
        try:
            re.compile(text)
        except re.error as exc:
            raise self.fail(path, f"invalid regular expression: {exc}") from exc
        return text


def load_documents(paths: Sequence[str | Path]) -> list[Policy]:
    """Every policy document in ``paths`` (files or directories of ``*.yaml``/``*.yml``)."""
    if not paths:
        raise UsageError("no policy given; pass a policy file or directory")
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            if not found:
                raise UsageError(f"{path}: no *.yaml or *.yml policy files in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            from assay._safefs import file_kind

            kind = file_kind(path.stat().st_mode)
            raise UsageError(f"{path} is {kind}, not a policy file or directory; refusing it")
        else:
            raise UsageError(f"{path}: no such policy file or directory")
        if len(files) > MAX_FILES:
            raise UsageError(f"more than {MAX_FILES} policy files; split them up")
    policies: list[Policy] = []
    for file in files:
        policies.extend(_load_file(file))
    seen: dict[str, str] = {}
    for policy in policies:
        key = f"{policy.kind}/{policy.name}"
        if key in seen:
            raise UsageError(f"{policy.where}: {key} is defined twice (also in {seen[key]})")
        seen[key] = policy.where
    return policies


def _load_file(path: Path) -> list[Policy]:
    from assay._safefs import open_regular

    try:
        with open_regular(path, str(path)) as fh:
            raw = fh.read(MAX_POLICY_FILE + 1)
        if len(raw) > MAX_POLICY_FILE:
            raise UsageError(f"{path}: policy file is larger than 1 MiB")
        text = raw.decode("utf-8")
    except InputError as exc:  # not a regular file (swapped in after the listing)
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text") from exc
    try:
        docs = load_yaml_all(text, what=str(path), max_size=MAX_POLICY_FILE, aliases=False)
    except InputError as exc:  # a policy is configuration: a usage error, as elsewhere here
        raise UsageError(str(exc)) from None
    out = []
    for index, doc in enumerate(docs, 1):
        if doc is None:
            continue
        out.append(parse_document(doc, f"{path}#{index}"))
    if not out:
        raise UsageError(f"{path}: holds no policy document")
    return out


def parse_document(doc: Any, where: str) -> Policy:
    """Validate one document (already parsed from YAML or JSON)."""
    v = _V(where)
    top = v.obj(doc, "document")
    api = top.get("apiVersion")
    kind = top.get("kind")
    is_cip = api in CIP_API_VERSIONS and kind == "ClusterImagePolicy"
    if not is_cip and not (api == IMAGE_POLICY_API_VERSION and kind == "ImagePolicy"):
        raise v.fail(
            "apiVersion/kind",
            f"{api}/{kind} is not a policy; expected ClusterImagePolicy "
            f"({' or '.join(CIP_API_VERSIONS)}) or {IMAGE_POLICY_API_VERSION} ImagePolicy",
        )
    v.obj(top, "document", ("apiVersion", "kind", "metadata", "spec", "status"))
    meta = v.obj(top.get("metadata"), "metadata")
    name = v.s(meta.get("name"), "metadata.name", required=True)
    if not _NAME_RE.fullmatch(name):
        raise v.fail("metadata.name", f"{name!r} is not a valid Kubernetes object name")
    allowed = ["images", "authorities", "mode", "match", "policy"]
    if kind == "ImagePolicy":
        allowed.append("require")
    spec = v.obj(top.get("spec"), "spec", allowed)
    images = v.lst(spec.get("images"), "spec.images")
    if not images:
        raise v.fail("spec.images", "must list at least one glob")
    globs = []
    for i, item in enumerate(images):
        entry = v.obj(item, f"spec.images[{i}]", ("glob",))
        glob = v.s(entry.get("glob"), f"spec.images[{i}].glob", required=True)
        try:
            compile_glob(glob)
        except UsageError as exc:
            raise v.fail(f"spec.images[{i}].glob", f"invalid value: {glob}: {exc}") from exc
        globs.append(glob)
    raw_auth = spec.get("authorities")
    require = (
        _require(v, spec.get("require"), "spec.require")
        if spec.get("require") is not None
        else None
    )
    if raw_auth is None and require is not None and kind == "ImagePolicy":
        authorities: tuple[Authority, ...] = ()
    else:
        items = v.lst(raw_auth, "spec.authorities")
        if not items:
            raise v.fail("spec.authorities", "must list at least one authority")
        authorities = tuple(
            _authority(v, item, f"spec.authorities[{i}]", i) for i, item in enumerate(items)
        )
        names = [a.name for a in authorities]
        for a in authorities:
            if names.count(a.name) > 1:
                raise v.fail("spec.authorities", f"authority name {a.name!r} is used twice")
    mode = spec.get("mode", "enforce")
    if mode not in ("enforce", "warn"):
        raise v.fail("spec.mode", f"{mode!r}: must be enforce or warn")
    match = tuple(
        _match(v, item, f"spec.match[{i}]")
        for i, item in enumerate(v.lst(spec.get("match", []), "spec.match"))
    )
    code = _code(v, spec["policy"], "spec.policy", cip=True) if "policy" in spec else None
    return Policy(
        name=name,
        kind=str(kind),
        api_version=str(api),
        where=where,
        globs=tuple(globs),
        authorities=authorities,
        mode=mode,
        match=match,
        policy=code,
        require=require or Require(),
        canonical=json.dumps(
            {"apiVersion": api, "kind": kind, "name": name, "spec": spec},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        ),
        raw=top,
    )


def _authority(v: _V, item: Any, path: str, index: int) -> Authority:
    a = v.obj(
        item,
        path,
        (
            "name",
            "key",
            "keyless",
            "static",
            "source",
            "ctlog",
            "attestations",
            "rfc3161timestamp",
            "signatureFormat",
        ),
    )
    name = v.s(a.get("name"), f"{path}.name") or f"authority-{index}"
    kinds = [k for k in ("key", "keyless", "static") if k in a]
    if len(kinds) != 1:
        raise v.fail(path, "expected exactly one, got both or neither: key, keyless, static")
    key = keyless = static = None
    if "key" in a:
        k = v.obj(a["key"], f"{path}.key", ("data", "secretRef", "kms", "hashAlgorithm"))
        set_ = [f for f in ("data", "secretRef", "kms") if k.get(f)]
        if len(set_) != 1:
            raise v.fail(
                f"{path}.key", "expected exactly one, got both or neither: data, kms, secretRef"
            )
        secret = ""
        if "secretRef" in k:
            ref = v.obj(k["secretRef"], f"{path}.key.secretRef", ("name", "namespace"))
            secret = v.s(ref.get("name"), f"{path}.key.secretRef.name", required=True)
        hash_alg = v.s(k.get("hashAlgorithm"), f"{path}.key.hashAlgorithm") or "sha256"
        if hash_alg not in ("sha224", "sha256", "sha384", "sha512"):
            raise v.fail(f"{path}.key.hashAlgorithm", f"unsupported hash algorithm {hash_alg!r}")
        key = KeyAuthority(
            data=v.s(k.get("data"), f"{path}.key.data"),
            secret_ref=secret,
            kms=v.s(k.get("kms"), f"{path}.key.kms"),
            hash_algorithm=hash_alg,
        )
    if "keyless" in a:
        kl = v.obj(
            a["keyless"],
            f"{path}.keyless",
            ("url", "identities", "ca-cert", "trustRootRef", "insecureIgnoreSCT"),
        )
        ids = v.lst(kl.get("identities", []), f"{path}.keyless.identities")
        if not ids:
            raise v.fail(
                f"{path}.keyless.identities", "Invalid value: at least one identity required"
            )
        identities = []
        for j, raw in enumerate(ids):
            ip = f"{path}.keyless.identities[{j}]"
            ident = v.obj(raw, ip, ("issuer", "subject", "issuerRegExp", "subjectRegExp"))
            built = Identity(
                issuer=v.s(ident.get("issuer"), f"{ip}.issuer"),
                subject=v.s(ident.get("subject"), f"{ip}.subject"),
                issuer_regexp=v.regexp(ident.get("issuerRegExp"), f"{ip}.issuerRegExp"),
                subject_regexp=v.regexp(ident.get("subjectRegExp"), f"{ip}.subjectRegExp"),
            )
            if built.issuer and built.issuer_regexp:
                raise v.fail(ip, "expected exactly one, got both: issuer, issuerRegExp")
            if built.subject and built.subject_regexp:
                raise v.fail(ip, "expected exactly one, got both: subject, subjectRegExp")
            if not (built.issuer or built.issuer_regexp) or not (
                built.subject or built.subject_regexp
            ):
                raise v.fail(
                    ip, "needs an issuer (or issuerRegExp) and a subject (or subjectRegExp)"
                )
            identities.append(built)
        keyless = KeylessAuthority(
            url=v.s(kl.get("url"), f"{path}.keyless.url"),
            identities=tuple(identities),
            trust_root_ref=v.s(kl.get("trustRootRef"), f"{path}.keyless.trustRootRef"),
            ca_cert="ca-cert" in kl,
            insecure_ignore_sct=v.b(
                kl.get("insecureIgnoreSCT"), f"{path}.keyless.insecureIgnoreSCT"
            ),
        )
    if "static" in a:
        st = v.obj(a["static"], f"{path}.static", ("action", "message"))
        action = st.get("action")
        if action not in ("pass", "fail"):
            raise v.fail(f"{path}.static.action", f"{action!r}: must be pass or fail")
        message = v.s(st.get("message"), f"{path}.static.message")
        if message and action == "pass":
            raise v.fail(f"{path}.static.message", "only allowed with action: fail")
        static = StaticAuthority(action=action, message=message)
        for other in ("source", "attestations", "ctlog"):
            if other in a:
                raise v.fail(f"{path}.{other}", "not allowed on a static authority")
    sources = []
    for j, raw in enumerate(v.lst(a.get("source", []), f"{path}.source")):
        sp = f"{path}.source[{j}]"
        src = v.obj(raw, sp, ("oci", "tagPrefix", "signaturePullSecrets"))
        secrets = tuple(
            v.s(
                v.obj(s, f"{sp}.signaturePullSecrets[{m}]", ("name",)).get("name"),
                f"{sp}.signaturePullSecrets[{m}].name",
                required=True,
            )
            for m, s in enumerate(
                v.lst(src.get("signaturePullSecrets", []), f"{sp}.signaturePullSecrets")
            )
        )
        oci = v.s(src.get("oci"), f"{sp}.oci")
        if oci and ("/" not in oci or "@" in oci or ":" in oci.split("/", 1)[1]):
            raise v.fail(f"{sp}.oci", f"{oci!r} is not a repository (HOST/REPOSITORY)")
        sources.append(
            Source(
                oci=oci,
                tag_prefix=v.s(src.get("tagPrefix"), f"{sp}.tagPrefix"),
                pull_secrets=secrets,
            )
        )
    attestations = []
    att_names: set[str] = set()
    for j, raw in enumerate(v.lst(a.get("attestations", []), f"{path}.attestations")):
        ap = f"{path}.attestations[{j}]"
        att = v.obj(raw, ap, ("name", "predicateType", "policy"))
        att_name = v.s(att.get("name"), f"{ap}.name", required=True)
        if att_name in att_names:
            raise v.fail(f"{ap}.name", f"attestation name {att_name!r} is used twice")
        att_names.add(att_name)
        attestations.append(
            Attestation(
                name=att_name,
                predicate_type=v.s(att.get("predicateType"), f"{ap}.predicateType", required=True),
                policy=_code(v, att["policy"], f"{ap}.policy", cip=False)
                if "policy" in att
                else None,
            )
        )
    fmt = v.s(a.get("signatureFormat"), f"{path}.signatureFormat") or "simplesigning"
    if fmt not in ("simplesigning", "bundle"):
        raise v.fail(f"{path}.signatureFormat", f"{fmt!r}: must be simplesigning or bundle")
    if "ctlog" in a:
        v.obj(a["ctlog"], f"{path}.ctlog", ("url", "trustRootRef"))
    if "rfc3161timestamp" in a:
        v.obj(a["rfc3161timestamp"], f"{path}.rfc3161timestamp", ("trustRootRef",))
    return Authority(
        name=name,
        key=key,
        keyless=keyless,
        static=static,
        sources=tuple(sources),
        attestations=tuple(attestations),
        signature_format=fmt,
        ctlog="ctlog" in a,
        rfc3161="rfc3161timestamp" in a,
    )


def _code(v: _V, raw: Any, path: str, *, cip: bool) -> PolicyCode:
    fields = ["type", "data", "remote", "configMapRef"]
    if cip:
        fields += ["fetchConfigFile", "includeSpec", "includeObjectMeta", "includeTypeMeta"]
    p = v.obj(raw, path, fields)
    ptype = p.get("type")
    if ptype not in ("rego", "cue"):
        raise v.fail(f"{path}.type", f"{ptype!r}: only rego and cue are allowed")
    sources = [f for f in ("data", "remote", "configMapRef") if p.get(f)]
    if len(sources) != 1:
        raise v.fail(path, "expected exactly one, got both or neither: configMapRef, data, remote")
    remote_url = sha = cm = ""
    if "remote" in p:
        r = v.obj(p["remote"], f"{path}.remote", ("url", "sha256sum"))
        remote_url = v.s(r.get("url"), f"{path}.remote.url", required=True)
        sha = v.s(r.get("sha256sum"), f"{path}.remote.sha256sum", required=True)
        if not remote_url.startswith("https://"):
            raise v.fail(f"{path}.remote.url", "must be an https URL")
    if "configMapRef" in p:
        ref = v.obj(p["configMapRef"], f"{path}.configMapRef", ("name", "namespace", "key"))
        cm = v.s(ref.get("name"), f"{path}.configMapRef.name", required=True)
    return PolicyCode(
        type=ptype,
        data=v.s(p.get("data"), f"{path}.data"),
        remote_url=remote_url,
        remote_sha256=sha,
        config_map=cm,
        fetch_config_file=v.b(p.get("fetchConfigFile"), f"{path}.fetchConfigFile"),
        include_spec=v.b(p.get("includeSpec"), f"{path}.includeSpec"),
        include_object_meta=v.b(p.get("includeObjectMeta"), f"{path}.includeObjectMeta"),
        include_type_meta=v.b(p.get("includeTypeMeta"), f"{path}.includeTypeMeta"),
    )


def _match(v: _V, raw: Any, path: str) -> MatchResource:
    m = v.obj(raw, path, ("resource", "group", "version", "selector"))
    labels: tuple[tuple[str, str], ...] = ()
    if "selector" in m:
        sel = v.obj(m["selector"], f"{path}.selector", ("matchLabels",))
        ml = v.obj(sel.get("matchLabels", {}), f"{path}.selector.matchLabels")
        labels = tuple(
            sorted(
                (str(k), v.s(val, f"{path}.selector.matchLabels.{k}", required=False))
                for k, val in ml.items()
            )
        )
    return MatchResource(
        resource=v.s(m.get("resource"), f"{path}.resource"),
        group=v.s(m.get("group"), f"{path}.group"),
        version=v.s(m.get("version"), f"{path}.version"),
        match_labels=labels,
    )


_REQUIRE_FIELDS = (
    "runAsNonRoot",
    "noShell",
    "noPackageManager",
    "vulnerabilities",
    "sbom",
    "provenance",
    "maxImageAgeDays",
    "reproducible",
    "setuid",
    "signatures",
    "controls",
)


def _strs(v: _V, raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    return tuple(v.s(x, f"{path}[{i}]", required=True) for i, x in enumerate(v.lst(raw, path)))


def _require(v: _V, raw: Any, path: str) -> Require:
    r = v.obj(raw, path, _REQUIRE_FIELDS)
    vuln = v.obj(
        r.get("vulnerabilities", {}),
        f"{path}.vulnerabilities",
        ("maxSeverity", "noKEV", "vexApplied", "maxScanAgeDays", "maxDbAgeDays", "source"),
    )
    vuln_source = v.s(vuln.get("source"), f"{path}.vulnerabilities.source") or "attestation"
    if vuln_source not in ("attestation", "live", "either"):
        raise v.fail(
            f"{path}.vulnerabilities.source", f"{vuln_source!r}: attestation, live or either"
        )
    max_sev = v.s(vuln.get("maxSeverity"), f"{path}.vulnerabilities.maxSeverity").lower()
    if max_sev and max_sev not in _SEVERITIES:
        raise v.fail(
            f"{path}.vulnerabilities.maxSeverity", f"{max_sev!r}: one of {', '.join(_SEVERITIES)}"
        )
    sbom_raw = r.get("sbom")
    sbom: tuple[str, ...] = ()
    sbom_ntia = False
    if sbom_raw is True:
        sbom = ("cyclonedx", "spdx")
    elif sbom_raw not in (None, False):
        s = v.obj(sbom_raw, f"{path}.sbom", ("formats", "ntia"))
        sbom_ntia = v.b(s.get("ntia"), f"{path}.sbom.ntia")
        sbom = _strs(v, s.get("formats", ["spdx", "cyclonedx"]), f"{path}.sbom.formats")
        for fmt in sbom:
            if fmt not in ("spdx", "cyclonedx"):
                raise v.fail(f"{path}.sbom.formats", f"{fmt!r}: spdx or cyclonedx")
    prov = v.obj(r.get("provenance", {}), f"{path}.provenance", ("builderId", "sourceUri"))
    setuid_allow: tuple[str, ...] | None = None
    if "setuid" in r:
        su = v.obj(r["setuid"], f"{path}.setuid", ("allow",))
        setuid_allow = _strs(v, su.get("allow", []), f"{path}.setuid.allow")
        for i, item in enumerate(setuid_allow):
            if not item.strip("/") or "\0" in item or ".." in item.split("/"):
                raise v.fail(f"{path}.setuid.allow[{i}]", f"{item!r}: an absolute file path")
    reproducible = False
    rebuilder_ids: tuple[str, ...] = ()
    raw_repro = r.get("reproducible")
    if isinstance(raw_repro, dict):
        rp = v.obj(raw_repro, f"{path}.reproducible", ("rebuilderId",))
        rebuilder_ids = _strs(v, rp.get("rebuilderId"), f"{path}.reproducible.rebuilderId")
        reproducible = True
    else:
        reproducible = v.b(raw_repro, f"{path}.reproducible")
    sig = v.obj(r.get("signatures", {}), f"{path}.signatures", ("minKeys", "keys"))
    keys = _strs(v, sig.get("keys"), f"{path}.signatures.keys")
    min_keys = v.n(sig.get("minKeys"), f"{path}.signatures.minKeys") or 0
    if keys and not 1 <= min_keys <= len(keys):
        raise v.fail(
            f"{path}.signatures.minKeys", f"must be between 1 and {len(keys)} (the keys listed)"
        )
    if min_keys and not keys:
        raise v.fail(f"{path}.signatures.keys", "list the public keys (PEM) to count")
    ctl = v.obj(r.get("controls", {}), f"{path}.controls")
    controls = tuple(sorted((str(k), _strs(v, c, f"{path}.controls.{k}")) for k, c in ctl.items()))
    return Require(
        run_as_non_root=v.b(r.get("runAsNonRoot"), f"{path}.runAsNonRoot"),
        no_shell=v.b(r.get("noShell"), f"{path}.noShell"),
        no_package_manager=v.b(r.get("noPackageManager"), f"{path}.noPackageManager"),
        max_severity=max_sev,
        no_kev=v.b(vuln.get("noKEV"), f"{path}.vulnerabilities.noKEV"),
        vex_applied=v.b(vuln.get("vexApplied"), f"{path}.vulnerabilities.vexApplied"),
        max_scan_age_days=v.n(vuln.get("maxScanAgeDays"), f"{path}.vulnerabilities.maxScanAgeDays"),
        max_db_age_days=v.n(vuln.get("maxDbAgeDays"), f"{path}.vulnerabilities.maxDbAgeDays"),
        vulnerability_source=vuln_source,  # type: ignore[arg-type]
        sbom=sbom,
        sbom_ntia=sbom_ntia,
        builder_ids=_strs(v, prov.get("builderId"), f"{path}.provenance.builderId"),
        source_uris=_strs(v, prov.get("sourceUri"), f"{path}.provenance.sourceUri"),
        max_image_age_days=v.n(r.get("maxImageAgeDays"), f"{path}.maxImageAgeDays"),
        reproducible=reproducible,
        rebuilder_ids=rebuilder_ids,
        setuid_allow=setuid_allow,
        min_keys=min_keys,
        keys=keys,
        controls=controls,
    )


def policies_digest(policies: Sequence[Policy]) -> str:
    """sha256 over the canonical content of the policies, in name order."""
    h = hashlib.sha256()
    for policy in sorted(policies, key=lambda p: (p.kind, p.name)):
        h.update(policy.canonical.encode("utf-8"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def labels_match(selector: Sequence[tuple[str, str]], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == val for k, val in selector)
