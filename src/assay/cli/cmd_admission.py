"""``assay admission serve|certs|manifests|audit``: the Kubernetes admission webhook."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from assay.cli import _console
from assay.errors import UsageError

admission_app = typer.Typer(
    name="admission",
    help="The Kubernetes admission webhook: serve it, make its certificates and manifests, audit.",
    no_args_is_help=True,
)

_NO_MATCH = ("deny", "warn", "allow")


class ReportFormat(StrEnum):
    yaml = "yaml"
    json = "json"


_ON_ERROR = ("deny", "allow")
_MAX_AUDIT_FILE = 64 << 20
_MAX_AUDIT_NODES = 400_000
"""YAML nodes ``audit --from`` composes: ~1,000 Pods' worth, under 512 MB of memory."""

# Options of more than one admission command.
_POLICY = typer.Option(
    ...,
    "--policy",
    "-p",
    envvar="ASSAY_ADMISSION_POLICY",
    help="Policy file or directory (repeatable).",
)
_INSECURE_REGISTRY = typer.Option(
    [],
    "--insecure-registry",
    envvar="ASSAY_ADMISSION_INSECURE_REGISTRY",
    help="Registry host reached without TLS verification (repeatable; unsafe).",
)
_FILE = typer.Option(None, "--file", help="Write to PATH (default stdout).")


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r} must be HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]") or "0.0.0.0", int(port)


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise UsageError(f"{option} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@admission_app.command("serve")
def serve_command(
    policy: list[str] = _POLICY,
    tls_cert: Path = typer.Option(
        ..., "--tls-cert", envvar="ASSAY_ADMISSION_TLS_CERT", help="Serving certificate (PEM)."
    ),
    tls_key: Path = typer.Option(
        ..., "--tls-key", envvar="ASSAY_ADMISSION_TLS_KEY", help="Its private key (PEM)."
    ),
    listen: str = typer.Option(
        "127.0.0.1:8443",
        "--listen",
        envvar="ASSAY_ADMISSION_LISTEN",
        help="HOST:PORT to listen on.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        envvar="ASSAY_ADMISSION_WORKERS",
        help="Worker processes (each has its own cache).",
    ),
    no_match: str = typer.Option(
        "deny",
        "--no-match",
        envvar="ASSAY_ADMISSION_NO_MATCH",
        help="An image no policy matches: deny, warn or allow.",
    ),
    on_error: str = typer.Option(
        "deny",
        "--on-error",
        envvar="ASSAY_ADMISSION_ON_ERROR",
        help="Registry down or deadline passed: deny (fail closed) or allow with a warning.",
    ),
    cache_ttl: float = typer.Option(
        300.0,
        "--cache-ttl",
        envvar="ASSAY_ADMISSION_CACHE_TTL",
        help="Seconds a decision is cached.",
    ),
    deadline: float = typer.Option(
        8.0,
        "--deadline",
        envvar="ASSAY_ADMISSION_DEADLINE",
        help="Seconds to answer in; keep below the webhook timeoutSeconds (10).",
    ),
    namespace: str = typer.Option(
        "assay-system",
        "--namespace",
        envvar="ASSAY_ADMISSION_NAMESPACE",
        help="The webhook's own namespace (never blocked, nor is kube-system).",
    ),
    alert_url: str = typer.Option(
        "",
        "--alert-url",
        envvar="ASSAY_ADMISSION_ALERT_URL",
        help="POST Slack-style JSON here on deny.",
    ),
    insecure_registry: list[str] = _INSECURE_REGISTRY,
    cluster_policies: bool = typer.Option(
        False,
        "--cluster-policies",
        envvar="ASSAY_ADMISSION_CLUSTER_POLICIES",
        help="Also enforce the cluster's ClusterImagePolicy resources (re-read every 30 s).",
    ),
) -> None:
    """Serve /validate and /mutate (AdmissionReview v1), /healthz, /readyz and /metrics over TLS."""
    import uvicorn

    from assay.admission.serve import CONFIG_ENV, ServeConfig
    from assay.policy import load_policies

    host, port = _listen(listen)
    for path in (tls_cert, tls_key):
        if path.exists() and not path.is_file():
            raise UsageError(f"{path} is not a regular file; give the PEM file")
        if not path.is_file():
            raise UsageError(f"{path} does not exist; make a pair with `assay admission certs`")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if not 0 < deadline < 10:
        raise UsageError("--deadline must be between 0 and 10 seconds (the webhook timeout)")
    for h in insecure_registry:
        _console.warn(f"--insecure-registry: talking to {h} without TLS verification")
    config = ServeConfig(
        policies=tuple(policy),
        no_match=_choice("--no-match", no_match, _NO_MATCH),
        on_error=_choice("--on-error", on_error, _ON_ERROR),
        cache_ttl=cache_ttl,
        deadline=deadline,
        namespace=namespace,
        insecure_registries=tuple(insecure_registry),
        alert_url=alert_url,
        cluster_policies=cluster_policies,
    )
    if alert_url and not alert_url.startswith(("https://", "http://")):
        raise UsageError(f"--alert-url {alert_url!r} must be an http(s) URL")
    names = load_policies(list(policy)).names  # fail here, with exit 2, on a bad policy
    _console.info(f"assay admission: {len(names)} policies; listening on https://{listen}")
    os.environ[CONFIG_ENV] = config.to_env()
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {
            "audit": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stdout",
            },
            "default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "assay.admission.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False},
            "assay": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
    }
    uvicorn.run(
        "assay.admission.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=str(tls_cert),
        ssl_keyfile=str(tls_key),
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@admission_app.command("certs")
def certs_command(
    directory: Path = typer.Option(..., "--dir", help="Write ca.crt, tls.crt, tls.key here."),
    dns: list[str] = typer.Option(
        [], "--dns", help="A DNS name or IP for the certificate (repeatable)."
    ),
    namespace: str = typer.Option(
        "assay-system", "--namespace", help="Also name the in-cluster Service in this namespace."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Make a self-signed CA and a serving certificate (for tests and local development)."""
    from assay.admission.certs import service_dns_names, write_certs

    names = list(dict.fromkeys([*dns, "localhost", "127.0.0.1"]))
    names += [n for n in service_dns_names("assay-admission", namespace) if n not in names]
    files = write_certs(directory, names, force=force)
    _console.info(f"wrote {files.ca_cert}, {files.cert}, {files.key} for {', '.join(names)}")


@admission_app.command("manifests")
def manifests_command(
    namespace: str = typer.Option("assay-system", "--namespace", help="Install namespace."),
    image: str = typer.Option("", "--image", help="The assay image, REGISTRY/assay:VERSION."),
    url: str = typer.Option(
        "", "--url", help="Webhook served at this https URL: print the webhook configurations only."
    ),
    ca_bundle: Path | None = typer.Option(
        None, "--ca-bundle", help="CA certificate (PEM) the API server trusts for the webhook."
    ),
    with_crd: bool = typer.Option(
        False, "--with-crd", help="Include the ClusterImagePolicy CustomResourceDefinition."
    ),
    cert_manager: bool = typer.Option(
        False, "--cert-manager", help="Issue the serving certificate with cert-manager."
    ),
    cluster_wide: bool = typer.Option(
        False,
        "--cluster-wide",
        help="Every namespace, not only those labelled policy.sigstore.dev/include=true.",
    ),
    replicas: int = typer.Option(2, "--replicas", help="Webhook replicas (2+ for availability)."),
    file: Path | None = _FILE,
) -> None:
    """Print every object an install needs (one YAML document each, in a stable order)."""
    from assay.admission.manifests import ManifestOptions, install_objects, to_yaml

    bundle = b""
    if ca_bundle is not None:
        from assay._safefs import read_regular

        try:
            bundle = read_regular(ca_bundle, 1 << 20, f"--ca-bundle {ca_bundle}")
        except OSError as e:
            raise UsageError(f"--ca-bundle {ca_bundle}: {e.strerror}") from None
        if b"-----BEGIN CERTIFICATE-----" not in bundle:
            raise UsageError(f"--ca-bundle {ca_bundle} holds no PEM certificate")
    elif url and not cert_manager:
        _console.warn("no --ca-bundle: the API server must already trust the webhook's CA")
    opts = ManifestOptions(
        namespace=namespace,
        image=image,
        replicas=replicas,
        url=url,
        ca_bundle=bundle,
        with_crd=with_crd,
        cert_manager=cert_manager,
        cluster_wide=cluster_wide,
    )
    _console.emit(to_yaml(install_objects(opts)), file)


@admission_app.command("audit")
def audit_command(
    policy: list[str] = _POLICY,
    from_file: Path | None = typer.Option(
        None, "--from", help="Objects to audit: a YAML/JSON file (a List or several documents)."
    ),
    in_cluster: bool = typer.Option(
        False, "--in-cluster", help="Read the workloads from the Kubernetes API (in a Pod)."
    ),
    publish: bool = typer.Option(
        False, "--publish", help="Create or replace the PolicyReports in the cluster."
    ),
    no_match: str = typer.Option(
        "deny", "--no-match", envvar="ASSAY_ADMISSION_NO_MATCH", help="deny, warn or allow."
    ),
    on_error: str = typer.Option(
        "deny",
        "--on-error",
        envvar="ASSAY_ADMISSION_ON_ERROR",
        help="deny or allow (with a warning).",
    ),
    insecure_registry: list[str] = _INSECURE_REGISTRY,
    output: ReportFormat = typer.Option(
        ReportFormat.yaml,
        "--output",
        "-o",
        envvar="ASSAY_ADMISSION_AUDIT_OUTPUT",
        help="yaml or json.",
    ),
    file: Path | None = _FILE,
) -> None:
    """Decide the images of running workloads and write wg-policy PolicyReports (one per
    namespace). Exit 1 when any image fails."""
    import json

    import yaml

    from assay.admission.audit import (
        audit_reports,
        list_workloads,
        publish_reports,
        workloads_from_objects,
    )
    from assay.admission.kube import in_cluster as kube_in_cluster
    from assay.errors import VerificationError
    from assay.policy import Engine, MatchContext, load_policies

    if (from_file is None) == (not in_cluster):
        raise UsageError("give exactly one of --from FILE and --in-cluster")
    if publish and not in_cluster:
        raise UsageError("--publish needs --in-cluster (it writes PolicyReports to the cluster)")
    for h in insecure_registry:
        _console.warn(f"--insecure-registry: talking to {h} without TLS verification")
    policies = load_policies(list(policy))
    kube = None
    if from_file is not None:
        from assay._safefs import read_regular
        from assay._yaml import load_yaml_all

        what = f"--from {from_file}"
        try:
            raw = read_regular(from_file, _MAX_AUDIT_FILE, what)
        except FileNotFoundError:
            raise UsageError(f"{what}: no such file") from None
        # Composed YAML nodes cost ~650 bytes each (pure-Python PyYAML): the node bound, not the
        # byte bound, is what keeps a dense 10 MB file ("[[],[],…]") under 512 MB.
        docs = [
            d
            for d in load_yaml_all(
                raw, what=what, max_size=_MAX_AUDIT_FILE, max_nodes=_MAX_AUDIT_NODES
            )
            if d is not None
        ]
        workloads = workloads_from_objects(docs)
    else:
        kube = kube_in_cluster()
        if kube is None:
            raise UsageError("--in-cluster: not running in a Kubernetes Pod (no service account)")
        workloads = list_workloads(kube)

    def context(w: Any) -> MatchContext:
        group = w.api_version.rpartition("/")[0]
        resource = w.kind.lower() + "s"
        return MatchContext(
            resource=resource, group=group, kind=w.kind, namespace=w.namespace, labels=w.labels
        )

    with Engine(
        policies,
        no_match=_choice("--no-match", no_match, _NO_MATCH),
        on_error=_choice("--on-error", on_error, _ON_ERROR),
        insecure_registries=frozenset(insecure_registry),
    ) as engine:
        reports = audit_reports(workloads, engine, make_context=context)
    if publish and kube is not None:
        publish_reports(kube, reports)
        _console.info(f"published {len(reports)} PolicyReports")
    if output is ReportFormat.json:
        data = json.dumps(reports, indent=2, sort_keys=True) + "\n"
    else:
        data = "".join("---\n" + yaml.safe_dump(r, sort_keys=False) for r in reports)
    _console.emit(data, file)
    failed = sum(r["summary"]["fail"] + r["summary"]["error"] for r in reports)
    if failed:
        raise VerificationError(f"{failed} image policy result(s) failed or errored")


def register(app: typer.Typer) -> None:
    app.add_typer(admission_app, name="admission")
