"""Benchmark: start-up cost of ``assay`` commands beside ``python3 -c pass`` in the same run.

Runs each command N times through the installed console script (this tree's ``src`` first on
PYTHONPATH, then any PYTHONPATH given, e.g. another typer to compare) and prints, per command,
the median wall time and the median CPU time (user+sys of the child, which a busy machine
distorts less than wall time), and both minus the same figures for ``python3 -c pass``: what
assay itself adds over the interpreter's own start.

The start of ``assay verify`` is timed to the moment the command opens its ``--key`` file: the
command line is parsed, the command's module loaded, its arguments checked, and its work begins.
The child exits there, through an audit hook that this benchmark installs as a ``sitecustomize``
module on the child's PYTHONPATH (the installed console script runs unchanged, and the exit is
an ordinary one, as ``python3 -c pass``'s is). That is the start-up the goal is about: what every
command paid before any work (0.35 s when all of them imported httpx, cryptography and
sigstore); from there a command pays for what its work needs.

``assay verify (to 1st connect)`` goes on to the moment its first TCP connection reaches a
listening socket of this benchmark on 127.0.0.1 (the child is then killed, so that row has no
interpreter exit in it): by then the libraries the verification needs (the key's crypto, the
registry's HTTP client) are loaded. The ``floor:`` rows import just those libraries, and exit;
their ``gc paused`` twins load them as the console script loads modules (``assay.cli._startup``).
A loopback registry speaks plain HTTP, so that run never needs CA certificates; an HTTPS
registry does, right after the connection. The two ``verify client`` rows show that cost: the
same start (CLI, key, registry client) talking to ``http://`` and to ``https://127.0.0.1``, each
timed to the first byte it sends (the request line; the TLS ClientHello, which comes after the
CA certificates are read). They import assay's modules from ``python3 -c`` directly, without
the console script's start-up (``assay.cli._startup``).

The children run with byte-code caching on (an installed package has its ``.pyc`` files; the
ones for this tree go to a temporary ``PYTHONPYCACHEPREFIX``, never into the tree), so the
figures do not include compiling assay's sources.

    python bench/startup.py [-n 15]

Goal (issue 11): ``assay --help`` and the start of ``assay verify`` within 0.12 s, read as the
time over the interpreter's own start (``wall-py``/``cpu-py``): this sandbox's interpreter alone
imports certifi from a ``.pth`` file, which is no part of assay's cost. The ``floor:`` rows import
the libraries a verification cannot do without (the CLI framework, the key's crypto, TLS and an
HTTP client), as a lower bound for ``verify`` to its first connection, and the HTTP stack assay's
registry client uses.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _script import console_script, script_env

GOAL_S = 0.12
PYTHON = "python3 -c pass"
VERIFY_START = "assay verify (to its start: opens --key)"
VERIFY = "assay verify (to 1st connect)"
GOALS = ("assay --help", VERIFY_START)
# installed as sitecustomize for the VERIFY_START row only: ends the process (exit 0) when it opens
# the file named by the variable, before reading a byte of it. SystemExit, not os._exit: the
# interpreter still shuts down as ``python3 -c pass`` does, so both sides include that cost.
_EXIT_AT_OPEN = """\
import os, sys

_AT = os.environ.get("ASSAY_BENCH_EXIT_AT_OPEN")


def _exit_at_open(event, args):
    if event == "open" and args and isinstance(args[0], (str, os.PathLike)):
        if os.fspath(args[0]) == _AT:
            raise SystemExit(0)


if _AT:
    sys.addaudithook(_exit_at_open)
"""
# verify's start (CLI, key, registry client) up to the first byte sent over plain HTTP or TLS
_CLIENT = (
    "import sys, typer, assay.cli.main, assay.cli.cmd_sign; from assay.attest import remote; "
    "from assay.attest.keys import load_public_key; "
    "from assay.oci.registry import RegistryClient; "
    "load_public_key(open(sys.argv[1], 'rb').read()); "
    "RegistryClient(sys.argv[2], retries=0).get_manifest('x', '1')"
)
CLIENT_HTTP = "verify client, http (1st byte)"
CLIENT_HTTPS = "verify client, https (1st TLS byte)"

_CRYPTO = (
    "import cryptography.hazmat.primitives.asymmetric.ec, "
    "cryptography.hazmat.primitives.serialization"
)
_PAUSED = "import gc; gc.disable(); {}; gc.freeze(); gc.enable()"
_FLOORS = {
    "floor: typer": "import typer",
    "floor: typer+crypto+ssl+http.client": f"import typer, ssl, http.client; {_CRYPTO}",
    # what verify's registry client is built on, loaded as assay loads it (no httpx CLI, no trio)
    "floor: typer+crypto+httpx+httpcore": (
        "import sys; sys.modules['httpx._main'] = None; sys.modules['trio'] = None; "
        f"import typer, httpx, httpcore; {_CRYPTO}"
    ),
}
# the same imports loaded as assay's console script loads modules (collector paused, then frozen)
_FLOORS.update({f"{name}, gc paused": _PAUSED.format(code) for name, code in list(_FLOORS.items())})


def _once(argv: list[str], env: dict[str, str], must_succeed: bool = False) -> tuple[float, float]:
    # stderr to a file, not a pipe: the child is reaped before it is read, and a pipe it filled
    # would block it
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4
        if must_succeed and proc.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            sys.exit(f"{' '.join(argv)} exited {proc.returncode} before the timed point: {text}")
    return wall, usage.ru_utime + usage.ru_stime


def _until_connect(
    argv: list[str], env: dict[str, str], listener: socket.socket, first_byte: bool = False
) -> tuple[float, float]:
    """Wall and CPU time from starting ``argv`` to its first connection to ``listener`` (or,
    with ``first_byte``, to the first byte it sends there)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        conn, _ = listener.accept()
        if first_byte and not conn.recv(1):
            raise TimeoutError
    except TimeoutError:
        proc.kill()
        _, err = proc.communicate()
        sys.exit(f"{' '.join(argv)} never connected: {err.decode(errors='replace').strip()}")
    wall = time.perf_counter() - start
    proc.kill()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = -9  # reaped by wait4
    assert proc.stderr is not None
    proc.stderr.close()
    conn.close()
    listener.setblocking(False)  # drop any further connection the killed child had opened
    try:
        while True:
            listener.accept()[0].close()
    except BlockingIOError:
        pass
    finally:
        listener.settimeout(60)
    return wall, usage.ru_utime + usage.ru_stime


def _public_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per command (median is shown)")
    args = parser.parse_args()

    exe = console_script()
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as listener:
        env = script_env(f"{tmp}/pyc")
        path = env["PYTHONPATH"]
        pub = Path(tmp) / "cosign.pub"
        _public_key(pub)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(60)
        port = listener.getsockname()[1]
        verify = [exe, "verify", f"127.0.0.1:{port}/x:1", "--key", str(pub)]
        hook = Path(tmp) / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(_EXIT_AT_OPEN)
        start_env = dict(
            env,
            PYTHONPATH=os.pathsep.join((str(hook), path)),
            ASSAY_BENCH_EXIT_AT_OPEN=str(pub),
        )
        # nothing listens on port 1: a run the hook did not end fails at once, never hangs
        verify_start = [exe, "verify", "127.0.0.1:1/x:1", "--key", str(pub)]
        cases: list[tuple[str, list[str]]] = [
            (PYTHON, [sys.executable, "-c", "pass"]),
            *((name, [sys.executable, "-c", code]) for name, code in _FLOORS.items()),
            ("assay --version", [exe, "--version"]),
            ("assay --help", [exe, "--help"]),
            ("assay verify --help", [exe, "verify", "--help"]),
            (VERIFY_START, verify_start),
            (VERIFY, verify),
            (CLIENT_HTTP, [sys.executable, "-c", _CLIENT, str(pub), f"http://127.0.0.1:{port}"]),
            (CLIENT_HTTPS, [sys.executable, "-c", _CLIENT, str(pub), f"https://127.0.0.1:{port}"]),
            ("assay scan --help", [exe, "scan", "--help"]),
            ("assay sbom --help", [exe, "sbom", "--help"]),
            ("assay build --help", [exe, "build", "--help"]),
            ("assay push --help", [exe, "push", "--help"]),
        ]

        def measure(name: str, argv: list[str]) -> tuple[float, float]:
            if name == VERIFY_START:
                return _once(argv, start_env, must_succeed=True)
            if name == VERIFY:
                return _until_connect(argv, env, listener)
            if name in (CLIENT_HTTP, CLIENT_HTTPS):
                return _until_connect(argv, env, listener, first_byte=True)
            return _once(argv, env)

        for name, argv in cases:  # warm the page cache and write the .pyc files
            measure(name, argv)
        walls: dict[str, list[float]] = {name: [] for name, _ in cases}
        cpus: dict[str, list[float]] = {name: [] for name, _ in cases}
        for _ in range(args.n):  # interleaved, so load changes hit every command alike
            for name, argv in cases:
                wall, cpu = measure(name, argv)
                walls[name].append(wall)
                cpus[name].append(cpu)
    load = os.getloadavg()[0]
    base_wall = statistics.median(walls[PYTHON])
    base_cpu = statistics.median(cpus[PYTHON])
    print(
        f"start-up, median of {args.n} runs each (load average {load:.1f}, {os.cpu_count()} CPUs)"
    )
    print(f"console script: {exe}")
    print("wall-py / cpu-py: the time over the interpreter's own start (python3 -c pass)")
    print(f"{'command':48} {'wall s':>8} {'cpu s':>8} {'wall-py':>8} {'cpu-py':>8}")
    for name, _ in cases:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:48} {wall:8.3f} {cpu:8.3f} {wall - base_wall:8.3f} {cpu - base_cpu:8.3f}")
    for name in GOALS:
        wall = statistics.median(walls[name]) - base_wall
        cpu = statistics.median(cpus[name]) - base_cpu
        verdict = "within" if max(wall, cpu) <= GOAL_S else "over"
        print(
            f"goal: {name} over python3 -c pass: wall {wall:.3f} s, cpu {cpu:.3f} s "
            f"-> {verdict} the goal of {GOAL_S} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
