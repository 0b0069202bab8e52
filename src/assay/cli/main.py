"""The ``assay`` command. Each command group lives in its own module and registers itself here.

Only this package prints or exits. Library errors arrive as ``AssayError`` and become a one-line
message on stderr with the documented exit code (0 ok, 1 failed check, 2 usage/input error).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
import typer.core
import typer.main

from assay import __version__
from assay.cli import _console, _startup
from assay.errors import AssayError

# httpx imports its own command-line client (click, rich, pygments: most of httpx's import
# time) whenever those happen to be installed, as they are beside typer. assay never runs it;
# a None entry makes that optional import fail the way httpx expects when they are missing.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


#: Every command, in the order ``--help`` lists them (the build flow, evidence, then scanning):
#: name -> (module under assay.cli that registers it, its one-line help). ``assay --help`` is
#: drawn from this table and a command's module is imported only when that command runs, so a
#: command pays only for the libraries it uses. tests/unit/test_cli_startup.py checks the table
#: against the commands the modules really register.
COMMANDS: dict[str, tuple[str, str]] = {
    "lock": (
        "cmd_lock",
        "Resolve SPEC's packages against the signed Debian repositories and write the lock.",
    ),
    "build": ("cmd_build", "Build a minimal, reproducible OCI image from SPEC (YAML)."),
    "update": (
        "cmd_update",
        "Relock SPEC; if the package set changed, rebuild (push, sign) and report the CVEs fixed.",
    ),
    "diff": ("cmd_diff", "Compare two images: packages, files, config and the CVEs fixed/added."),
    "remediation": (
        "cmd_remediation",
        "The remediation record kept by `assay update` in the evidence store.",
    ),
    "run": (
        "cmd_run",
        "Run IMAGE (oci:DIR[:TAG] or oci-archive:FILE) for this host's architecture.",
    ),
    "inspect": (
        "cmd_run",
        "Show an image's digest, platforms, user, entrypoint, size and package count.",
    ),
    "push": ("cmd_push", "Push an image (single or multi-arch) with all its blobs to a registry."),
    "copy": (
        "cmd_push",
        "Copy an image: layout → registry, registry → layout, or registry → registry.",
    ),
    "keygen": (
        "cmd_keygen",
        "Generate an ECDSA P-256 key pair in cosign's format (cosign.key + cosign.pub).",
    ),
    "sign": ("cmd_sign", "Sign an image in a registry (cosign's layout: tag sha256-<hex>.sig)."),
    "verify": (
        "cmd_sign",
        "Verify an image's signatures with a key, or keyless with an identity and issuer.",
    ),
    "attest": ("cmd_attest", "Attach a signed in-toto attestation (DSSE) to an image."),
    "verify-attestation": (
        "cmd_attest",
        "Verify an image's attestations; -o json prints the verified in-toto statements.",
    ),
    "verify-provenance": (
        "cmd_provenance",
        "Verify the SLSA provenance attached to IMAGE (slsa-verifier style).",
    ),
    "rebuild": ("cmd_provenance", "Rebuild IMAGE from its provenance alone and compare digests."),
    "policy": (
        "cmd_policy",
        "Check ClusterImagePolicy and ImagePolicy files (decide with: assay verify --policy).",
    ),
    "sbom": ("cmd_sbom", "Catalogue IMAGE's packages (dpkg, apk, Python, npm) and print an SBOM."),
    "scan": (
        "cmd_scan",
        "Scan an image, directory or SBOM against the local vulnerability database.",
    ),
    "db": (
        "cmd_db",
        "Manage the local vulnerability database (Debian tracker, OSV, NVD, CISA KEV, EPSS).",
    ),
    "vex": ("cmd_vex", "Create, merge and apply OpenVEX 0.2.0 documents."),
    "admission": (
        "cmd_admission",
        "The Kubernetes admission webhook: serve it, make its certificates and manifests, audit.",
    ),
    "report": (
        "cmd_report",
        "Evaluate an image's verified evidence against the control catalog (PCI DSS, FedRAMP, "
        "NIST SP 800-190, SSDF, SLSA, CIS Docker, NTIA, EU CRA). Exit 0 when the report was "
        "written (whatever the controls' results), 1 registry/verification errors, 2 bad input.",
    ),
    "evidence": (
        "cmd_evidence",
        "Signed evidence bundles for auditors: bundle an image's evidence, verify a bundle.",
    ),
}


def _command_modules() -> list[str]:
    import pkgutil

    import assay.cli as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_"))


def _plain_help(command: Any) -> None:
    """Draw ``--help`` with click's plain formatter: typer's rich help imports rich's markdown,
    traceback and pretty-printing modules, which alone cost more than the start-up budget."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class _LazyGroup(typer.core.TyperGroup):
    """The top-level group: imports a command's module only when the command is looked up.

    While help is drawn, commands in ``COMMANDS`` are stand-ins carrying their one-line help.
    A ``cmd_*`` module missing from the table still works; it is imported for every lookup.
    """

    _loaded: set[str]
    _drawing_help = False

    def _load(self, module: str) -> None:
        loaded = self.__dict__.setdefault("_loaded", set())
        if module in loaded:
            return
        loaded.add(module)
        import importlib

        sub = typer.Typer()
        with _startup.loading():
            importlib.import_module(f"assay.cli.{module}").register(sub)
        for name, command in typer.main.get_group(sub).commands.items():
            _plain_help(command)
            self.add_command(command, name)

    def _load_unlisted(self) -> None:
        listed = {module for module, _ in COMMANDS.values()}
        for module in _command_modules():
            if module not in listed:
                self._load(module)

    def list_commands(self, ctx: Any) -> list[str]:
        self._load_unlisted()
        extra = sorted(name for name in self.commands if name not in COMMANDS)
        return [*COMMANDS, *extra]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, summary = COMMANDS[cmd_name]
            if self._drawing_help:
                return typer.core.TyperCommand(cmd_name, help=summary, short_help=summary)
            self._load(module)
        elif cmd_name not in self.commands:
            self._load_unlisted()
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._drawing_help = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._drawing_help = False


app = typer.Typer(
    name="assay",
    help=(
        "Build minimal, reproducible, signed OCI images from Debian packages, and produce and "
        "check their evidence (SBOM, signatures, provenance, vulnerabilities)."
    ),
    cls=_LazyGroup,
    rich_markup_mode=None,  # plain help: see _plain_help
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"assay {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log output; -vv shows tracebacks."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    from assay.cli import _logging

    _logging.configure(verbose)
    _console.state.verbose = verbose


def full_app() -> typer.Typer:
    """A Typer app with every command registered eagerly (for introspection by the tests)."""
    import importlib

    full = typer.Typer(name="assay", add_completion=False)
    for module in _command_modules():
        importlib.import_module(f"assay.cli.{module}").register(full)
    return full


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """The ``ClickException`` and ``Abort`` classes of the click typer really uses.

    typer up to 0.2x depends on click; later versions bundle their own copy (``typer._click``),
    whose exceptions are not ``click``'s. ``typer.BadParameter`` comes from whichever it uses.
    """
    module = sys.modules[typer.BadParameter.__module__]
    abort: type[Exception] = getattr(module, "Abort", typer.Abort)  # 0.29 has only typer's
    return module.ClickException, abort


def _usage_error(exc: Exception) -> int:
    """Say what was wrong with the command line in one line on stderr; return the exit code."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `assay` or `assay db`: show the help
        text = str(getattr(exc, "message", "") or "")
        if text.strip():  # plain click puts the help in the message; rich printed it already
            typer.echo(text)
        return 2
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split())  # one line, whatever click wrapped
    where = getattr(ctx, "command_path", "") or "assay"
    _console.error(f"{message} (see `{where} --help`)")
    return int(getattr(exc, "exit_code", 2) or 2)


def run() -> None:
    """Console-script entry point."""
    click_exception, click_abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except AssayError as exc:
        if _console.state.verbose >= 2 or os.environ.get("ASSAY_DEBUG"):
            raise
        _console.error(str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, click_abort):
        _console.error("aborted")
        sys.exit(130)
    except click_exception as exc:  # usage errors arrive here in non-standalone mode
        sys.exit(_usage_error(exc))
    sys.exit(code if isinstance(code, int) else 0)
