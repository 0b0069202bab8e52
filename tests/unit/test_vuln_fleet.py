"""Debian version sort keys order exactly like dpkg (the fleet rescan in the evidence store
compares versions as these keys in SQL; see tests/unit/test_store.py)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"


def test_sort_key_orders_exactly_like_dpkg() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from assay.debian.version import compare_versions
    from assay.vuln.vkey import deb_sort_key

    part = st.text(alphabet="0123456789abz.+~", min_size=1, max_size=8)
    version = st.builds(
        lambda e, u, r: (f"{e}:" if e else "") + "1" + u + (f"-{r}" if r else ""),
        st.integers(0, 3),
        st.text(alphabet="0123456789abz.+~", max_size=8),
        st.one_of(st.just(""), part.filter(lambda s: "-" not in s)),
    )

    @settings(max_examples=400, deadline=None)
    @given(version, version)
    def check(a: str, b: str) -> None:
        ka, kb = deb_sort_key(a), deb_sort_key(b)
        assert ka is not None and kb is not None
        assert (ka > kb) - (ka < kb) == compare_versions(a, b), (a, b)

    check()
    fixed = [
        "1.0~rc1",
        "1.0",
        "1.0-1~deb12u1",
        "1.0-1",
        "1.0-1+b1",
        "1.0-1+deb12u1",
        "1.0a",
        "1.0.0",
        "1:0.1",
    ]
    assert sorted(fixed, key=lambda v: deb_sort_key(v) or b"") == fixed
    assert deb_sort_key("not a version") is None
