"""A throw-away apt configuration, to ask apt itself what it would install.

Used by the apt comparison tests and by ``bench/resolve.py``. Nothing of the host's apt setup is
read: ``APT_CONFIG`` points at our own file, ``Dir`` at a temporary root with an empty dpkg status
(so nothing counts as installed) and its own sources, lists and cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]
    keyring: str | None


class AptRoot:
    def __init__(self, root: Path, sources: Sequence[AptSource], arch: str) -> None:
        self.root = root
        self.arch = arch
        for d in (
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "var/lib/dpkg/status").write_text("")
        lines = []
        for s in sources:
            opts = f"[arch={arch}" + (f" signed-by={s.keyring}" if s.keyring else "") + "] "
            lines.append(f"deb {opts}{s.uri} {s.suite} {' '.join(s.components)}\n")
        (root / "etc/apt/sources.list").write_text("".join(lines))
        self.config = root / "apt.conf"
        self.config.write_text(
            f'Dir "{root}/";\n'
            f'Dir::State::status "{root}/var/lib/dpkg/status";\n'
            f'Dir::Log "{root}/var/log/apt";\n'
            f'APT::Architecture "{arch}";\n'
            f'APT::Architectures {{ "{arch}"; }};\n'
            'Acquire::Languages "none";\n'
            'Acquire::GzipIndexes "false";\n'
            'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";\n'
            'Debug::NoLocking "true";\n'
            'APT::Sandbox::User "root";\n'
            'APT::Install-Recommends "false";\n'
            'APT::Install-Suggests "false";\n'
            'APT::Get::Assume-Yes "true";\n'
        )

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["APT_CONFIG"] = str(self.config)
        env["LC_ALL"] = "C"
        return env

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["apt-get", *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def update(self) -> None:
        proc = self.run("update")
        if proc.returncode != 0 or "W: " in proc.stderr or "E: " in proc.stderr:
            raise RuntimeError(f"apt-get update failed:\n{proc.stdout}\n{proc.stderr}")

    def simulate(self, packages: Sequence[str]) -> dict[str, str]:
        """``apt-get install --no-install-recommends -s``: name → version apt would install."""
        proc = self.run("install", "--no-install-recommends", "-s", *packages)
        if proc.returncode != 0:
            raise RuntimeError(f"apt-get -s failed:\n{proc.stdout}\n{proc.stderr}")
        out: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            m = _INST.match(line)
            if m:
                name = m[1].split(":", 1)[0]
                out[name] = m[2]
        return out

    def simulate_timed(self, packages: Sequence[str]) -> tuple[dict[str, str], float]:
        t0 = time.perf_counter()
        result = self.simulate(packages)
        return result, time.perf_counter() - t0

    def packages_files(self) -> list[Path]:
        lists = self.root / "var/lib/apt/lists"
        return sorted(p for p in lists.iterdir() if p.name.endswith("_Packages"))


class RepoSourceLike(Protocol):
    """What ``apt_root`` reads of a source (assay's ``RepoSource`` has it)."""

    @property
    def uri(self) -> str: ...
    @property
    def suite(self) -> str: ...
    @property
    def components(self) -> tuple[str, ...]: ...
    @property
    def signed_by(self) -> str | None: ...


def apt_root(root: Path, sources: Sequence[RepoSourceLike], arch: str) -> AptRoot:
    """A throw-away apt for ``sources`` and ``arch`` in ``root``, after its ``apt-get update``."""
    apt = AptRoot(
        root, [AptSource(s.uri, s.suite, s.components, s.signed_by) for s in sources], arch
    )
    apt.update()
    return apt
