"""ImagePolicy checks that read the verified image's layers: ``setuid`` (real registry, layers
written by assay's layer writer, signatures by assay)."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.oci.entry import Entry, EntryType
from assay.oci.registry import RegistryClient
from assay.policy import Engine, load_policies
from integration.policy_helpers import new_key, push_layers, sign
from integration.test_policy_cli import assay

NOW = 1_795_000_000.0


def _file(path: str, mode: int, data: bytes = b"\x7fELF\n") -> Entry:
    return Entry(path, EntryType.FILE, mode, data=data)


def _dir(path: str) -> Entry:
    return Entry(path, EntryType.DIR, 0o755)


BASE = [_dir("usr"), _dir("usr/bin"), _file("usr/bin/hello", 0o755)]
SU = _file("usr/bin/su", 0o4755)
WALL = _file("usr/bin/wall", 0o2755)


@pytest.fixture(scope="module")
def signer() -> tuple[Any, str]:
    return new_key()


def _policy(tmp: Path, pub: str, allow: list[str], name: str = "setuid") -> Path:
    pem = "".join(f"        {line}\n" for line in pub.strip().splitlines())
    path = tmp / f"{name}.yaml"
    path.write_text(
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\nspec:\n  images:\n  - glob: '**'\n"
        f"  authorities:\n  - key:\n      data: |\n{pem}"
        f"  require:\n    setuid:\n      allow: {json.dumps(allow)}\n"
    )
    return path


def _push(
    client: RegistryClient,
    registry: Any,
    key: Any,
    layers: list[list[Entry]],
    tmp: Path,
    **kw: Any,
) -> str:
    repo = f"setuid/{uuid.uuid4().hex[:8]}/img"
    work = tmp / uuid.uuid4().hex[:8]
    digest = push_layers(client, repo, "v1", layers, work, **kw)
    ref = f"{registry.host}/{repo}@{digest}"
    sign(client, ref, key)
    return ref


def _check(engine: Engine, ref: str) -> Any:
    decision = engine.decide([ref])
    checks = decision.images[0].policies[0].checks
    assert [c.name for c in checks] == ["setuid"], decision.images[0].message
    return decision, checks[0]


def test_setuid_file_fails_and_allow_list_passes(
    registry: Any, client: RegistryClient, tmp_path: Path, signer: tuple[Any, str]
) -> None:
    key, pub = signer
    ref = _push(client, registry, key, [[*BASE, SU, WALL]], tmp_path)
    with Engine(load_policies([_policy(tmp_path, pub, [])]), clock=lambda: NOW) as engine:
        decision, check = _check(engine, ref)
    assert not decision.allowed and check.status == "fail"
    assert check.reason == (
        "setuid/setgid files not in the allow list: /usr/bin/su (4755), /usr/bin/wall (2755)"
    )
    assert check.controls == ("CIS-Docker:4.8", "NIST-800-190:4.1.2")
    assert len(check.evidence) == 1 and check.evidence[0].startswith("sha256:")
    allow = _policy(tmp_path, pub, ["/usr/bin/su", "usr/bin/wall"], "allowed")
    with Engine(load_policies([allow]), clock=lambda: NOW) as engine:
        decision, check = _check(engine, ref)
    assert decision.allowed and check.status == "pass"
    assert check.reason.startswith("only allowed setuid/setgid files: /usr/bin/su, /usr/bin/wall")
    partly = _policy(tmp_path, pub, ["/usr/bin/su"], "partly")
    with Engine(load_policies([partly]), clock=lambda: NOW) as engine:
        decision, check = _check(engine, ref)
    assert not decision.allowed and check.reason.endswith(": /usr/bin/wall (2755)")


def test_later_layer_removing_or_chmodding_the_file_passes(
    registry: Any, client: RegistryClient, tmp_path: Path, signer: tuple[Any, str]
) -> None:
    key, pub = signer
    removed = _push(
        client,
        registry,
        key,
        [[*BASE, SU], [Entry("usr/bin/su", EntryType.WHITEOUT, 0)]],
        tmp_path,
    )
    chmodded = _push(client, registry, key, [[*BASE, SU], [_file("usr/bin/su", 0o755)]], tmp_path)
    # an opaque directory in a later layer hides everything below it
    opaque = _push(
        client,
        registry,
        key,
        [[*BASE, SU], [Entry("usr/bin", EntryType.OPAQUE, 0), _file("usr/bin/hello", 0o755)]],
        tmp_path,
    )
    # ... while a setuid file added by a later layer counts
    added = _push(client, registry, key, [BASE, [SU]], tmp_path)
    with Engine(load_policies([_policy(tmp_path, pub, [])]), clock=lambda: NOW) as engine:
        for ref in (removed, chmodded, opaque):
            decision, check = _check(engine, ref)
            assert decision.allowed and check.status == "pass", check.reason
            assert len(check.evidence) == 2
        decision, check = _check(engine, added)
    assert not decision.allowed and "/usr/bin/su (4755)" in check.reason


def test_hardlink_to_a_setuid_file_counts(
    registry: Any, client: RegistryClient, tmp_path: Path, signer: tuple[Any, str]
) -> None:
    key, pub = signer
    link = Entry("usr/bin/su2", EntryType.HARDLINK, 0o4755, link="usr/bin/su")
    ref = _push(client, registry, key, [[*BASE, SU, link]], tmp_path)
    policy = _policy(tmp_path, pub, ["/usr/bin/su"])
    with Engine(load_policies([policy]), clock=lambda: NOW) as engine:
        decision, check = _check(engine, ref)
    assert not decision.allowed
    assert check.reason == "setuid/setgid files not in the allow list: /usr/bin/su2 (4755)"


def test_layer_that_does_not_match_its_diff_id_fails_closed(
    registry: Any, client: RegistryClient, tmp_path: Path, signer: tuple[Any, str]
) -> None:
    key, pub = signer
    ref = _push(client, registry, key, [BASE], tmp_path, diff_ids=["sha256:" + "1" * 64])
    with Engine(load_policies([_policy(tmp_path, pub, [])]), clock=lambda: NOW) as engine:
        decision, check = _check(engine, ref)
    assert not decision.allowed and check.status == "fail"
    assert check.reason.startswith("the image layers are invalid: ")
    assert "diff_id" in check.reason


def test_config_that_miscounts_the_layers_fails_closed(
    registry: Any, client: RegistryClient, tmp_path: Path, signer: tuple[Any, str]
) -> None:
    key, pub = signer
    ids = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    ref = _push(client, registry, key, [BASE], tmp_path, diff_ids=ids)
    with Engine(load_policies([_policy(tmp_path, pub, [])]), clock=lambda: NOW) as engine:
        decision, check = _check(engine, ref)
    assert not decision.allowed and check.status == "fail"
    assert check.reason.endswith("1 layers but 2 diff_ids in its config")


def _scratch() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("assay-policy-layers-*")}


def test_layers_are_fetched_once_per_decision(
    registry: Any,
    client: RegistryClient,
    tmp_path: Path,
    signer: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import assay.policy.layers as layers_mod

    key, pub = signer
    ref = _push(client, registry, key, [BASE, [SU]], tmp_path)
    real = layers_mod.download_layers
    fetched: list[str] = []

    def counting(*args: Any, **kw: Any) -> Any:
        fetched.extend(layer.digest for layer in args[2])
        return real(*args, **kw)

    monkeypatch.setattr(layers_mod, "download_layers", counting)
    before = _scratch()
    one, two = _policy(tmp_path, pub, [], "one"), _policy(tmp_path, pub, ["/usr/bin/su"], "two")
    with Engine(load_policies([one, two]), clock=lambda: NOW) as engine:
        decision = engine.decide([ref])
    statuses = {p.name: p.checks[0].status for p in decision.images[0].policies}
    assert statuses == {"one": "fail", "two": "pass"}
    assert len(fetched) == 2 and len(set(fetched)) == 2  # two layers, each downloaded once
    # two references (tag and digest) to one image in one call: still one download
    fetched.clear()
    tagged = ref.split("@", 1)[0] + ":v1"
    with Engine(load_policies([one, two]), clock=lambda: NOW) as engine:
        decision = engine.decide([tagged, ref])
    assert [i.result for i in decision.images] == ["deny", "deny"]
    assert len(fetched) == 2 and len(set(fetched)) == 2
    # and nothing downloaded is left behind
    assert _scratch() - before == set()
    # a policy that does not ask for file checks downloads no layer
    fetched.clear()
    nonroot = tmp_path / "nonroot.yaml"
    nonroot.write_text(one.read_text().replace("    setuid:\n      allow: []\n", "") + "")
    nonroot.write_text(
        nonroot.read_text().replace("  require:\n", "  require:\n    runAsNonRoot: true\n")
    )
    with Engine(load_policies([nonroot]), clock=lambda: NOW) as engine:
        assert engine.decide([ref]).allowed
    assert fetched == []


def test_verify_cli_reports_setuid_files(
    registry: Any, client: RegistryClient, tmp_path: Path, signer: tuple[Any, str]
) -> None:
    key, pub = signer
    ref = _push(client, registry, key, [[*BASE, SU]], tmp_path)
    proc = assay(
        "verify", ref, "--policy", str(_policy(tmp_path, pub, [])), "-o", "json", cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    check = json.loads(proc.stdout)["images"][0]["policies"][0]["checks"][0]
    assert check["name"] == "setuid" and check["status"] == "fail"
    assert check["reason"].endswith("/usr/bin/su (4755)")
