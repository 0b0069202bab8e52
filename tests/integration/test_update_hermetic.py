"""``assay update`` end to end against a signed fixture repository on 127.0.0.1.

The image is built from a lock taken when only libhello 1.2-1 was published; the repository
then publishes 1.2-1+deb12u1 in its security suite, with a Debian-format changelog naming CVEs
inside the .deb. ``assay update`` (the console script) relocks, rebuilds, and names the upgrade
and the CVEs; a second run is a no-op.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from fixtures.debrepo import FakePkg, TestKey, make_repo, rfc2822, serve, signed_contents, test_key
from fixtures.examples import assay
from fixtures.registry import RunningRegistry

__all__ = ["test_key"]

DATE = 1_700_000_000
CODENAMES = {"stable": "bookworm", "stable-security": "bookworm-security"}
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
CHANGELOG = """\
libhello (1.2-1+deb12u1) bookworm-security; urgency=high

  * Fix a heap overflow in the greeting parser (CVE-2024-11111).
  * Reject over-long names (CVE-2024-22222, CVE-2024-33333).

 -- Hello Maintainer <hello@example.org>  Mon, 01 Jul 2024 10:00:00 +0000

libhello (1.2-1) bookworm; urgency=medium

  * Initial release; mentions the old CVE-2020-00001 that 1.2-1 already had fixed.

 -- Hello Maintainer <hello@example.org>  Mon, 01 Jan 2024 10:00:00 +0000
"""


def _base() -> list[FakePkg]:
    return [
        FakePkg("base-files", "12.4", files={"usr/lib/os-release": OS_RELEASE}),
        FakePkg("hello", "1.0-1", depends="libhello (>= 1.0)", files={"usr/bin/hello": b"hi\n"}),
        FakePkg("libhello", "1.2-1", files={"usr/lib/libhello.so.1": b"\x7fELF old\n"}),
    ]


def _fixed() -> FakePkg:
    return FakePkg(
        "libhello",
        "1.2-1+deb12u1",
        files={
            "usr/lib/libhello.so.1": b"\x7fELF fixed\n",
            "usr/share/doc/libhello/changelog.Debian.gz": gzip.compress(
                CHANGELOG.encode(), mtime=0
            ),
        },
    )


def _spec(tmp: Path, url: str, key: TestKey) -> Path:
    spec = tmp / "hello.yaml"
    spec.write_text(
        signed_contents(url, key.keyring, "[base-files, hello]", "[stable, stable-security]")
        + "entrypoint: [/usr/bin/hello]\narchs: [amd64]\n"
    )
    return spec


TRACKER = {
    "libhello": {
        "CVE-2024-11111": {
            "description": "greeting parser overflow (fixture)",
            "releases": {
                "bookworm": {
                    "status": "resolved",
                    "repositories": {"bookworm": "1.2-1"},
                    "fixed_version": "1.2-1+deb12u1",
                    "urgency": "high",
                }
            },
        },
        "CVE-2024-44444": {
            "description": "still open in every version (fixture)",
            "releases": {
                "bookworm": {
                    "status": "open",
                    "repositories": {"bookworm": "1.2-1"},
                    "urgency": "low",
                }
            },
        },
    }
}
KEV = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2024.07.01",
    "dateReleased": "2024-07-01T00:00:00.0000Z",
    "count": 1,
    "vulnerabilities": [
        {
            "cveID": "CVE-2024-11111",
            "vendorProject": "Hello",
            "product": "libhello",
            "vulnerabilityName": "fixture entry, not a real KEV listing",
            "dateAdded": "2024-07-01",
            "shortDescription": "fixture",
            "requiredAction": "update",
            "dueDate": "2024-07-22",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
        }
    ],
}


def _publish(
    root: Path,
    key: TestKey,
    stable: list[FakePkg],
    security: list[FakePkg],
    *,
    day: int = 0,
    codenames: dict[str, str] | None = None,
) -> None:
    """(Re)write the amd64 repository of suites stable and stable-security, dated DATE + ``day``
    days."""
    suites = {"stable": stable, "stable-security": security}
    date = rfc2822(DATE + day * 86400)
    make_repo(root, suites, archs=("amd64",), key=key, date=date, codenames=codenames)


def _touch_inrelease(root: Path) -> None:
    """http.server's Last-Modified has one-second resolution: a republish within the second of
    the last fetch would be answered 304 to If-Modified-Since."""
    later = time.time() + 5
    for inrelease in root.glob("dists/*/InRelease"):
        os.utime(inrelease, (later, later))


def _advisory_db(tmp: Path) -> Path:
    from assay.vuln.db import AdvisoryDB
    from assay.vuln.feeds import FEEDS

    (tmp / "tracker.json").write_text(json.dumps(TRACKER))
    (tmp / "kev.json").write_text(json.dumps(KEV))
    with AdvisoryDB(tmp / "vuln.db") as db:
        FEEDS["debian-tracker"].import_path(db, tmp / "tracker.json")
        FEEDS["kev"].import_path(db, tmp / "kev.json")
    return tmp / "vuln.db"


def test_update_rebuilds_names_cves_and_is_then_a_noop(
    tmp_path: Path, test_key: TestKey, registry: RunningRegistry
) -> None:
    root = tmp_path / "repo"
    _publish(root, test_key, _base(), [], codenames=CODENAMES)
    env = {
        "ASSAY_CACHE_DIR": str(tmp_path / "cache"),
        "ASSAY_VULN_DB": str(_advisory_db(tmp_path)),
        "ASSAY_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "ASSAY_PASSWORD": "pw",
    }
    assay("keygen", cwd=tmp_path, env=env)
    push = f"{registry.host}/acme/hello:1"
    with serve(root) as url:
        spec = _spec(tmp_path, url, test_key)
        dest = f"oci:{tmp_path}/out:h"
        first = json.loads(
            assay("build", str(spec), "--dest", dest, "-o", "json", "-q", env=env).stdout
        )
        shutil.copytree(tmp_path / "out", tmp_path / "old")
        noop = json.loads(assay("update", str(spec), "-o", "json", "-q", env=env).stdout)
        assert noop["updated"] is False and noop["updates"][0]["packages"] == []

        _publish(root, test_key, _base(), [_fixed()], day=1, codenames=CODENAMES)
        _touch_inrelease(root)
        proc = assay(
            "update",
            str(spec),
            "--dest",
            dest,
            "--push",
            push,
            "--sign-key",
            str(tmp_path / "cosign.key"),
            "-o",
            "json",
            "-q",
            env=env,
        )
        out = json.loads(proc.stdout)["updates"][0]
        assert out["updated"] is True
        assert out["packages"] == [
            {
                "arch": "amd64",
                "name": "libhello",
                "change": "upgraded",
                "old": "1.2-1",
                "new": "1.2-1+deb12u1",
                "suite": "stable-security",
            }
        ]
        fixed = {(c["id"], c["package"], c["source"]) for c in out["fixed"]}
        assert fixed == {
            ("CVE-2024-11111", "libhello", "changelog"),
            ("CVE-2024-22222", "libhello", "changelog"),
            ("CVE-2024-33333", "libhello", "changelog"),
            ("CVE-2024-11111", "libhello", "db"),  # resolved in the tracker by the new version
        }
        assert out["kevClosed"] == ["CVE-2024-11111"]
        assert out["introduced"] == []  # CVE-2024-44444 is open before and after
        assert out["digest"]["old"] == first["digest"]
        assert out["digest"]["new"] not in ("", first["digest"])
        lock = json.loads((tmp_path / "hello.lock.json").read_text())
        assert {p["name"]: p["version"] for p in lock["packages"]["amd64"]}["libhello"] == (
            "1.2-1+deb12u1"
        )
        # the new image is what a plain `assay build` of the new lock gives (reproducible)
        again = json.loads(
            assay(
                "build", str(spec), "--dest", f"oci:{tmp_path}/again:h", "-o", "json", "-q", env=env
            ).stdout
        )
        assert again["digest"] == out["digest"]["new"]
        assert out["pushed"] == f"{registry.host}/acme/hello@{out['digest']['new']}"
        verified = assay("verify", out["pushed"], "--key", str(tmp_path / "cosign.pub"), env=env)
        assert verified.returncode == 0

        status = json.loads(assay("remediation", "status", "-o", "json", env=env).stdout)
        rows = {r["vuln"]: r for r in status["remediation"]}
        assert set(rows) == {"CVE-2024-11111", "CVE-2024-22222", "CVE-2024-33333"}
        row = rows["CVE-2024-11111"]
        assert row["image"] == f"{registry.host}/acme/hello"
        assert row["package"] == "libhello" and row["fixedIn"] == "1.2-1+deb12u1"
        assert row["sources"] == "changelog+db" and row["severity"] == "high"
        assert row["kevDue"] == "2024-07-22" and row["dueDate"] == "2024-07-22"
        assert rows["CVE-2024-22222"]["sources"] == "changelog"
        assert (
            row["fixAvailable"] and row["shippedAt"] and row["builtDigest"] == out["digest"]["new"]
        )
        assert row["shippedRef"] == out["pushed"]
        assert row["firstSeen"] <= row["fixAvailable"] <= row["shippedAt"]

        md = assay("update", str(spec), "-o", "markdown", "--exit-code", env=env, check=False)
        assert md.returncode == 0 and "No update needed" in md.stdout
        second = json.loads(assay("update", str(spec), "-o", "json", env=env).stdout)
        assert second["updated"] is False
        _check_diff(tmp_path, env)


def _check_diff(tmp_path: Path, env: dict[str, str]) -> None:
    """`assay diff` of the two real builds agrees with comparing their SBOMs and file lists."""
    from assay.oci.layer import apply_layers, read_layer
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    old, new = f"oci:{tmp_path}/old:h", f"oci:{tmp_path}/out:h"
    got = json.loads(assay("diff", old, new, "-o", "json", "--arch", "amd64", env=env).stdout)

    def spdx(d: str) -> dict[str, str]:
        (path,) = (tmp_path / d).glob("*amd64.spdx.json")  # the build's evidence naming
        doc = json.loads(path.read_text())
        return {
            p["name"]: p["versionInfo"]
            for p in doc["packages"]
            if any(r["referenceLocator"].startswith("pkg:deb/") for r in p.get("externalRefs", []))
        }

    a, b = spdx("old"), spdx("out")
    plain = {(n, a.get(n), b.get(n)) for n in set(a) | set(b) if a.get(n) != b.get(n)}
    names = {(p["name"].split(":")[0], p["old"], p["new"]) for p in got["packages"]}
    assert names == plain == {("libhello", "1.2-1", "1.2-1+deb12u1")}

    def files(ref: str) -> dict[str, tuple[object, ...]]:
        with open_local_image(parse_image_ref(ref)) as src:
            img = src.manifests()[0]
            tree = apply_layers(
                [read_layer(src.open_layer(d), media_type=d.media_type) for d in img.layers]
            )
        return {
            p: (e.type, e.mode, e.uid, e.gid, e.size, e.mtime, e.link, e.data)
            for p, e in tree.items()
        }

    fa, fb = files(old), files(new)
    changed = {"/" + p for p in set(fa) | set(fb) if fa.get(p) != fb.get(p)}
    assert {f["path"] for f in got["files"]} == changed
    assert "/usr/lib/libhello.so.1" in changed
    assert got["old"]["digest"] != got["new"]["digest"]
    assert got["vulnerabilities"] == {"fixed": ["CVE-2024-11111"], "introduced": []}
    md = assay("diff", old, new, "-o", "markdown", "--arch", "amd64", env=env).stdout
    assert "| deb | libhello:amd64 | 1.2-1 | 1.2-1+deb12u1 |" in md


def test_security_only_takes_only_security_suite_versions(
    tmp_path: Path, test_key: TestKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay.build.lock import lock_spec
    from assay.build.spec import ImageSpec
    from assay.debian.repo import RepoClient
    from assay.remediation import plan_update

    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    _publish(root, test_key, _base(), [])
    with serve(root) as url:
        spec = _spec(tmp_path, url, test_key)
        raw = spec.read_bytes()
        image = ImageSpec.from_yaml(raw, str(spec))
        with RepoClient(keyrings=image.keyring_paths(tmp_path)) as client:
            old = lock_spec(image, spec, client, raw)
        newer_hello = FakePkg(
            "hello", "1.0-2", depends="libhello (>= 1.0)", files={"usr/bin/hello": b"hi2\n"}
        )
        _publish(root, test_key, [*_base(), newer_hello], [_fixed()], day=1)
        _touch_inrelease(root)
        with RepoClient(keyrings=image.keyring_paths(tmp_path)) as client:
            everything = plan_update(spec, raw, old, client)
            security = plan_update(spec, raw, old, client, security_only=True)
            unchanged = plan_update(spec, raw, everything.new_lock, client)
    assert {(c.name, c.new, c.suite) for c in everything.changes} == {
        ("hello", "1.0-2", "stable"),
        ("libhello", "1.2-1+deb12u1", "stable-security"),
    }
    assert [(c.name, c.old, c.new) for c in security.changes] == [
        ("libhello", "1.2-1", "1.2-1+deb12u1")
    ]
    assert not unchanged.changed
