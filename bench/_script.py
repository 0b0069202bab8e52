"""How the benchmarks start the ``assay`` command: through the installed console script, as a
user does, with this tree's sources first on PYTHONPATH and their byte code cached.

The byte code of this tree goes to a temporary ``PYTHONPYCACHEPREFIX`` (never into the tree) and
is written even where the environment says ``PYTHONDONTWRITEBYTECODE`` (this sandbox does): an
installed package has its ``.pyc`` files, so compiling assay's sources at every start is no part
of what a user waits for.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "console_script", "script_env"]


def console_script() -> str:
    """The ``assay`` script pip installed beside this interpreter, else the first on PATH.

    A version manager's shim found first on PATH (pyenv's is a bash script that runs pyenv to
    pick the interpreter: 0.05-0.1 s of CPU) is no part of assay, and the peers a benchmark
    compares with run this interpreter or their own binary directly."""
    beside = Path(sys.executable).with_name("assay")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("assay")
    if found is None:
        sys.exit("the assay console script is not installed (pip install -e .)")
    return found


def script_env(pycache: Path | str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the console script: this tree first, byte code cached in ``pycache``."""
    env = dict(os.environ if base is None else base)
    path = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env.update(PYTHONPATH=path, PYTHONPYCACHEPREFIX=str(pycache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
