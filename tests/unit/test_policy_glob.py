"""policy-controller's own glob test table, case by case (pkg/apis/glob/glob_test.go)."""

from __future__ import annotations

import pytest

from assay.errors import UsageError
from assay.policy.glob import glob_matches, normalise_image
from fixtures.assets import INTEROP

TABLE = INTEROP / "policy-controller" / "glob_cases.tsv"


def _cases() -> list[tuple[str, str, bool, bool]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("image\t"):
            continue
        image, glob, want, err = [*line.split("\t"), ""][:4]
        rows.append((image, glob, want == "true", err == "true"))
    return rows


CASES = _cases()


def test_table_is_complete() -> None:
    assert len(CASES) == 42


@pytest.mark.parametrize(("image", "glob", "want", "want_err"), CASES)
def test_upstream_case(image: str, glob: str, want: bool, want_err: bool) -> None:
    if want_err:
        with pytest.raises(UsageError):
            glob_matches(glob, image)
        return
    assert glob_matches(glob, image) is want


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("foo", "index.docker.io/library/foo:latest"),
        ("docker.io/foo/bar:1", "index.docker.io/foo/bar:1"),
        ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
        ("ghcr.io/a/b:1.0@sha256:" + "a" * 64, "ghcr.io/a/b@sha256:" + "a" * 64),
    ],
)
def test_normalised_names(image: str, name: str) -> None:
    assert normalise_image(image) == name


def test_literal_tag_glob_never_matches_a_digest_reference() -> None:
    # The mutating webhook rewrites images to tag@digest; the normalised name then has no tag,
    # and the fallback match against the text as written has the digest after the tag. A "*"
    # after the ":" still matches (it swallows "@sha256:…"); a literal tag never does.
    pinned = "ghcr.io/a/b:1.0@sha256:" + "a" * 64
    assert glob_matches("ghcr.io/a/b:1.0", "ghcr.io/a/b:1.0")
    assert not glob_matches("ghcr.io/a/b:1.0", pinned)
    assert glob_matches("ghcr.io/a/b:*", pinned)


@pytest.mark.parametrize("glob", ["[", "a b", "x$", "(.*)", "a+"])
def test_invalid_globs(glob: str) -> None:
    with pytest.raises(UsageError, match="invalid glob"):
        glob_matches(glob, "foo")
