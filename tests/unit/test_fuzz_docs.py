"""Property tests over every document entry point: whatever the input, only AssayError escapes.

Short and seeded (derandomized) for CI. The long campaign is fuzz/fuzz_docs.py; the entry points
and their seed documents are shared (fuzz/targets.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))

from fuzz_docs import mutate
from targets import all_targets

from assay.errors import AssayError

TARGETS = all_targets()
# Targets whose API takes a file path or writes a database run slower; fewer examples there.
SLOW = {
    "lock",
    "spec",
    "sbom-input",
    "feed-tracker",
    "feed-osv",
    "feed-kev",
    "feed-epss",
    "feed-nvd",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _run(name: str, data: bytes) -> None:
    with contextlib.suppress(AssayError):
        TARGETS[name].run(data)


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_seeds_raise_only_assay_errors(name: str) -> None:
    examples = 60 if name in SLOW else 300

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(seed=st.integers(min_value=0, max_value=2**32), rounds=st.integers(1, 4))
    def check(seed: int, rounds: int) -> None:
        rng = random.Random(seed)
        data = rng.choice(TARGETS[name].seeds)
        for _ in range(rounds):
            data = mutate(data, rng)
        _run(name, data)

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_arbitrary_json_raises_only_assay_errors(name: str) -> None:
    @settings(
        max_examples=30 if name in SLOW else 150,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(doc=json_values)
    def check(doc: Any) -> None:
        _run(name, json.dumps(doc).encode())

    check()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # found by fuzz/fuzz_docs.py: unhashable values reached set/dict membership tests
        ("bundle", b'{"mediaType": [], "verificationMaterial": {}}'),
        ("intoto-statement", b'{"_type": {}, "predicateType": "x", "subject": []}'),
        ("provenance", None),
    ],
)
def test_fuzz_findings_stay_fixed(name: str, data: bytes | None) -> None:
    if data is None:
        seed = json.loads(TARGETS["provenance"].seeds[0])
        for bad in ([["amd64"]], 5):
            seed["predicate"]["buildDefinition"]["externalParameters"]["archs"] = bad
            with pytest.raises(AssayError, match="archs must be a list of strings"):
                TARGETS[name].run(json.dumps(seed).encode())
        seed["predicate"]["buildDefinition"]["externalParameters"]["archs"] = ["amd64"]
        seed["predicate"]["buildDefinition"]["internalParameters"]["lock"] = [1.5]
        with pytest.raises(AssayError, match="lock must be a dict"):
            TARGETS[name].run(json.dumps(seed).encode())
        return
    with pytest.raises(AssayError):
        TARGETS[name].run(data)


def test_campaign_script_runs_targets_in_parallel_and_sums_up(tmp_path: Path) -> None:
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "fuzz" / "fuzz_docs.py"),
            "--target",
            "image-ref,debian-version",
            "--runs",
            "40",
            "--seed",
            "3",
            "--jobs",
            "4",
            "--findings",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    # 4 processes for 2 targets: each target split in two shards of 20 runs, then summed
    assert sum(" 20 executions in " in line for line in lines) == 4, proc.stdout
    assert any(line.startswith("image-ref: 40 executions in all") for line in lines), proc.stdout
    assert lines[-1].startswith("fuzz_docs summary: 2 targets, seed 3, 4 job(s), 80 executions")
    assert "min 40 per target" in lines[-1] and "0 unexpected" in lines[-1], lines[-1]
    assert "debian-version=40 image-ref=40" in lines[-1], lines[-1]
